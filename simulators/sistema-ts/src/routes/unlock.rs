//! Unlocks by operators: the Immuni call centre under a supervising health operator
//! (ORD-8) and ASL prevention operators (ORD-7.2). Sistema TS checks what it must,
//! authorises the citizen's OTP at Immuni (`POST /v1/otp`) and records the unlock on
//! the CUN with its mode (ORD-7.3).

use std::sync::Arc;

use ecosim_domain::validation::AllSome;

use axum::extract::State;
use axum::http::StatusCode;
use ecosim_core::accounts::{Authorised, Role, roles};
use ecosim_core::client::Method;
use ecosim_core::problem::{ApiJson, Fields, Problem, parse_date};
use ecosim_domain::codes::{CardLast8, CodiceFiscale, Cun, Otp};

use crate::routes::his::{Check, already_used, check_pair};
use crate::state::SistemaTs;
use crate::store::{self, cun::Happened};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallCenter {
    cun: Option<String>,
    ultime_8_cifre_ts: Option<String>,
    otp: Option<String>,
    data_inizio_sintomi: Option<String>,
    supervisore: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Asl {
    codice_fiscale: Option<String>,
    otp: Option<String>,
    data_inizio_sintomi: Option<String>,
}

/// An OTP as the operator typed it: DM-2.2 (10 characters) and DM-2.5 (check character).
fn otp(ts: &SistemaTs, f: &mut Fields, raw: &Option<String>) -> Option<Otp> {
    let raw = f.required("otp", raw)?;
    let mutant = |id| ts.ctx.config().mutant(id);
    // The mutants: any length (DM-2.2) or any check character (DM-2.5) goes through,
    // as the first ten characters with the check character put right.
    let lenient = (mutant("DM-2.2") && raw.len() >= 9) || (mutant("DM-2.5") && raw.len() == 10);
    if lenient && Otp::parse(raw).is_err() {
        let body: String = raw.chars().take(9).collect();
        if let Some(o) =
            ecosim_domain::codes::ALPHABET25.iter().find_map(|c| Otp::parse(&format!("{body}{}", char::from(*c))).ok())
        {
            return Some(o);
        }
    }
    f.check("otp", Otp::parse(raw).map_err(|e| format!("{e} (DM-2.5: a mistyped OTP is refused)")))
}

/// `POST /ts/v1/sblocchi/call-center` (role `callcenter`).
pub(crate) async fn call_center(
    State(ts): State<Arc<SistemaTs>>,
    caller: Authorised<roles::Callcenter>,
    ApiJson(req): ApiJson<CallCenter>,
) -> Result<StatusCode, Problem> {
    let mut f = Fields::new();
    let cun = f.required("cun", &req.cun).and_then(|c| f.check("cun", Cun::parse(c)));
    let last8 = f
        .required("ultime_8_cifre_ts", &req.ultime_8_cifre_ts)
        .and_then(|l| f.check("ultime_8_cifre_ts", CardLast8::parse(l)));
    let otp = otp(&ts, &mut f, &req.otp);
    let symptoms = req.data_inizio_sintomi.as_deref().and_then(|d| f.check("data_inizio_sintomi", parse_date(d)));
    let supervisor = f.required("supervisore", &req.supervisore).cloned();
    let (cun, last8, otp, supervisor) = f.into_result((cun, last8, otp, supervisor).all_some())?;
    // ORD-8.6: only under an active supervising health operator.
    let mutant = |id| ts.ctx.config().mutant(id);
    if !mutant("ORD-8.6") && ts.ctx.accounts().get(&supervisor).is_none_or(|a| a.role != Role::Supervisore) {
        return Err(Problem::forbidden(format!("{supervisor:?} is not an active supervising health operator"))
            .with_field("supervisore", "must name a health-operator account (role supervisore)")
            .with_requirement("ORD-8.6"));
    }
    // ORD-8.1: CUN + last 8 card digits must match a live result.
    let record = match check_pair(&ts, &cun.sha256(), &last8, mutant("ORD-8.1"), |_| true)? {
        Check::Matched(record) => record,
        Check::Locked => {
            let mut p = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-failures",
                "too many failed checks of this CUN or these card digits; try later",
            );
            p.retry_after = Some(ts.ctx.config().brute_force.window.0.as_secs().max(0) as u64);
            return Err(p);
        }
        Check::Failed => {
            return Err(Problem::not_found(format!("no live test result with {cun} for a card ending {last8}"))
                .with_requirement("ORD-8.1"));
        }
    };
    // ORD-2.6: only a positive result unlocks.
    if record.esito != "POSITIVO" && !mutant("ORD-2.6") {
        return Err(Problem::unprocessable(format!("{cun} is a negative result: unlock needs a positive one"))
            .with_field("cun", "belongs to a negative result")
            .with_requirement("ORD-2.6"));
    }
    if already_used(&ts, &record.cun)? && !mutant("DM-A.1b") {
        return Err(Problem::conflict(format!("{cun} was already used to unlock Immuni")).with_requirement("DM-A.1b"));
    }
    // ORD-8.3 / 8.4: the symptom-onset date if given, else the swab date.
    let mut swab = record.data_esecuzione.clone();
    if mutant("ORD-8.4") {
        // Not the swab date: the day before it.
        swab = swab.parse::<jiff::civil::Date>().ok().and_then(|d| d.yesterday().ok()).map_or(swab, |d| d.to_string());
    }
    let symptoms = symptoms.filter(|_| !mutant("ORD-8.3"));
    let symptoms_started_on = symptoms.map(|d| d.to_string()).unwrap_or_else(|| swab.clone());
    authorise_at_immuni(&ts, &otp, &symptoms_started_on).await?;
    let now = ts.ctx.clock().now();
    let what = Happened::Unlocked {
        modalita: "call_center",
        operatore: Some(caller.name()),
        supervisore: Some(&supervisor),
        requirement: "ORD-7.3",
    };
    if !mutant("ORD-7.3") {
        ts.store.with(|c| store::cun::record(c, &record.cun, now, &what))?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /ts/v1/sblocchi/asl` (role `asl`): OTP + symptom date + codice fiscale, no CUN.
pub(crate) async fn asl(
    State(ts): State<Arc<SistemaTs>>,
    caller: Authorised<roles::Asl>,
    ApiJson(req): ApiJson<Asl>,
) -> Result<StatusCode, Problem> {
    let mut f = Fields::new();
    let cf = f
        .required("codice_fiscale", &req.codice_fiscale)
        .and_then(|c| f.check("codice_fiscale", CodiceFiscale::parse(c)));
    let otp = otp(&ts, &mut f, &req.otp);
    let symptoms = f
        .required("data_inizio_sintomi", &req.data_inizio_sintomi)
        .and_then(|d| f.check("data_inizio_sintomi", parse_date(d)));
    let (cf, otp, symptoms) = f.into_result((cf, otp, symptoms).all_some())?;
    if ts.ctx.population().by_codice_fiscale(&cf).is_none() {
        return Err(Problem::unprocessable(format!("codice fiscale {cf} is not in the national registry"))
            .with_field("codice_fiscale", "unknown to the registry")
            .with_requirement("ORD-7.2"));
    }
    if !ts.ctx.config().mutant("ORD-7.2") {
        authorise_at_immuni(&ts, &otp, &symptoms.to_string()).await?;
    }
    // ORD-7.3: recorded on the person's live positive CUN, if there is one.
    let now = ts.ctx.clock().now();
    let cun = ts.store.with(|c| store::test_results::latest_positive(c, cf.as_str(), now.as_millisecond()))?;
    if let Some(cun) = cun.filter(|_| !ts.ctx.config().mutant("ORD-7.3")) {
        let what = Happened::Unlocked {
            modalita: "asl",
            operatore: Some(caller.name()),
            supervisore: None,
            requirement: "ORD-7.3",
        };
        ts.store.with(|c| store::cun::record(c, &cun, now, &what))?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// What `POST /v1/otp` at Immuni takes.
#[derive(Debug, serde::Serialize)]
struct OtpAuthorisation<'a> {
    otp: &'a str,
    symptoms_started_on: &'a str,
}

/// `POST /v1/otp` at Immuni, its answers turned into problems for the operator.
async fn authorise_at_immuni(ts: &SistemaTs, otp: &Otp, symptoms_started_on: &str) -> Result<(), Problem> {
    let res = ts
        .immuni
        .request(Method::POST, "/v1/otp")
        .json(&OtpAuthorisation { otp: otp.as_str(), symptoms_started_on })
        .send()
        .await
        .map_err(|e| {
            Problem::new(StatusCode::BAD_GATEWAY, "immuni-unreachable", format!("Immuni did not answer: {e}"))
        })?;
    match res.status().as_u16() {
        204 => Ok(()),
        409 => Err(Problem::conflict("Immuni: OTP already authorised")
            .with_field("otp", "already authorised")
            .with_requirement("IMM-OTP")),
        400 => {
            let why = res.headers().get("x-ecosim-detail").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let field = if why.starts_with("symptoms_started_on") { "data_inizio_sintomi" } else { "otp" };
            Err(Problem::invalid_field(field, format!("Immuni refused it: {why}")))
        }
        other => Err(Problem::new(StatusCode::BAD_GATEWAY, "immuni-error", format!("Immuni answered {other}"))),
    }
}
