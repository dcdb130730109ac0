//! The registry for regions: a person by code (AVR-2.2, AVR-2.3), their COVID doses
//! in all regions (AVR-1.3d), people outside the SSN, codice fiscale variations
//! (AVR-2.1).

use ecosim_domain::validation::AllSome;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ecosim_core::accounts::{Authorised, Regional, roles};
use ecosim_core::problem::{ApiJson, Fields, Problem};
use ecosim_core::store::StoreError;
use ecosim_domain::codes::{CodiceFiscale, Sex};

use crate::domain::registry::{Anagrafica, Foreigner, Lookup, Person};
use crate::state::SistemaTs;
use crate::store::vaccinazioni::DoseRow;

/// Finds `id` or answers 400 (malformed) / 404 (unknown), naming `field`.
pub(crate) fn person(ts: &SistemaTs, id: &str, field: &str) -> Result<Person, Problem> {
    match ts.store.with(|c| ts.lookup(c, id))? {
        Lookup::Found(p) => Ok(*p),
        Lookup::Malformed(why) => Err(Problem::invalid_field(field, why)),
        Lookup::Unknown => Err(Problem::not_found(format!("{id} is not in the national registry"))
            .with_field(field, "not in the national registry")),
    }
}

/// `GET /ts/v1/assistiti/{id}`: the registry entry, never the full card number. An
/// obsolete codice fiscale answers with the person's current one.
pub(crate) async fn get_one(
    State(ts): State<Arc<SistemaTs>>,
    _caller: Authorised<roles::RegistryReader>,
    Path(id): Path<String>,
) -> Result<Json<Anagrafica>, Problem> {
    let p = person(&ts, &id, "id")?;
    let mut record = p.record;
    if !p.id.eq_ignore_ascii_case(id.trim()) {
        record.codice_fiscale_richiesto = Some(id.trim().to_ascii_uppercase());
    }
    Ok(Json(record))
}

/// `GET /ts/v1/assistiti/{id}/vaccinazioni`: the COVID doses AVN sent for the person,
/// from every region, oldest first (AVR-1.3d). As the real service, doses given
/// abroad are not returned (GIAVA 1.3).
pub(crate) async fn doses(
    State(ts): State<Arc<SistemaTs>>,
    _caller: Authorised<roles::RegistryReader>,
    Path(id): Path<String>,
) -> Result<Json<Vec<DoseRow>>, Problem> {
    let p = person(&ts, &id, "id")?;
    if ts.ctx.config().mutant("AVR-1.3d") {
        return Ok(Json(Vec::new()));
    }
    Ok(Json(ts.store.with(|c| ts.doses_of(c, &p, false))?))
}

/// The answer to a person outside the SSN registered: their identifier.
#[derive(Debug, serde::Serialize)]
pub(crate) struct ForeignerRegistered {
    identificativo: String,
    tipo_identificativo: &'static str,
    requirement: &'static str,
}

/// The answer to a codice fiscale changed.
#[derive(Debug, serde::Serialize)]
pub(crate) struct CfChanged {
    codice_fiscale_precedente: String,
    codice_fiscale: String,
    requirement: &'static str,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawForeigner {
    cognome: Option<String>,
    nome: Option<String>,
    sesso: Option<String>,
    data_nascita: Option<String>,
}

fn name(f: &mut Fields, field: &str, v: &Option<String>) -> Option<String> {
    let v = f.required(field, v)?.trim();
    if v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_alphabetic() || " '-".contains(c)) {
        f.error(field, "must be 1 to 64 letters, spaces, apostrophes or hyphens");
        return None;
    }
    Some(v.to_uppercase())
}

/// `POST /ts/v1/assistiti/stranieri` (ASL account): registers a person outside the
/// SSN and issues their Sistema TS identifier (AVR-2.3).
pub(crate) async fn register_foreigner(
    State(ts): State<Arc<SistemaTs>>,
    caller: Regional<roles::Asl>,
    ApiJson(raw): ApiJson<RawForeigner>,
) -> Result<(StatusCode, Json<ForeignerRegistered>), Problem> {
    let region = caller.region;
    let mut f = Fields::new();
    let cognome = name(&mut f, "cognome", &raw.cognome);
    let nome = name(&mut f, "nome", &raw.nome);
    let sesso = f.required("sesso", &raw.sesso).and_then(|s| match s.as_str() {
        "M" => Some(Sex::M),
        "F" => Some(Sex::F),
        _ => {
            f.error("sesso", "must be M or F");
            None
        }
    });
    let today = ts.ctx.clock().today();
    let nascita = f.past_date("data_nascita", &raw.data_nascita, today);
    let (cognome, nome, sesso, data_nascita) = f.into_result((cognome, nome, sesso, nascita).all_some())?;
    let person = Foreigner { cognome, nome, sesso, data_nascita };
    let id = ts.store.transaction(|tx| Ok::<_, StoreError>(ts.register_foreigner(tx, &person, &region)?))?;
    Ok((
        StatusCode::CREATED,
        Json(ForeignerRegistered { identificativo: id, tipo_identificativo: "TS", requirement: "AVR-2.3" }),
    ))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChange {
    codice_fiscale: Option<String>,
}

/// `POST /ts/v1/anagrafe/variazioni-cf`: the registry gives a citizen a new codice
/// fiscale (what the Agenzia delle Entrate does when it corrects personal data); the
/// old one stays known as obsolete (AVR-2.1). For scenarios and tests.
pub(crate) async fn change_cf(
    State(ts): State<Arc<SistemaTs>>,
    _caller: Authorised<roles::Asl>,
    ApiJson(raw): ApiJson<RawChange>,
) -> Result<(StatusCode, Json<CfChanged>), Problem> {
    let mut f = Fields::new();
    let cf = f
        .required("codice_fiscale", &raw.codice_fiscale)
        .and_then(|c| f.check("codice_fiscale", CodiceFiscale::parse(c)));
    let cf = f.into_result(cf)?;
    let new = ts.store.transaction(|tx| Ok::<_, StoreError>(ts.change_cf(tx, &cf)?))?;
    match new {
        Some(new) => Ok((
            StatusCode::CREATED,
            Json(CfChanged { codice_fiscale_precedente: cf.to_string(), codice_fiscale: new, requirement: "AVR-2.1" }),
        )),
        None => Err(Problem::unprocessable(format!(
            "{cf} is unknown to the registry or has already changed (one change per person)"
        ))
        .with_field("codice_fiscale", "unknown or already changed")
        .with_requirement("AVR-2.1")),
    }
}
