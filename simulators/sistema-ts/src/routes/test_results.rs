//! `/ts/v1/test-results`: regions (and labs, ORD-5.2) send results, get CUNs, correct
//! and download what they sent, never another region's data and never direct
//! identifiers (ORD-3.3b).

use ecosim_domain::validation::AllSome;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ecosim_core::accounts::{Regional, roles};
use ecosim_core::idempotency;
use ecosim_core::problem::{ApiJson, Fields, JsonBytes, Problem, from_json, parse_date};
use ecosim_core::store::StoreError;
use ecosim_domain::codes::Cun;
use ecosim_domain::green_pass::{Contatti, Evento, Test};
use jiff::Timestamp;
use serde::Serialize;

use crate::domain::test_result::{RawContatti, RawTestResult, check_rules, validate};
use crate::state::SistemaTs;
use crate::store;
use crate::store::cun::{CunEvent, Happened};
use crate::store::test_results::{NewRecord, Record};

/// A region's SAR, or a lab of a region without one (ORD-5.2).
type Caller = Regional<roles::SarOrLab>;

/// A record as a region may see it: no codice fiscale, no contacts (ORD-3.3b).
#[derive(Debug, Serialize)]
pub(crate) struct PublicRecord {
    id: String,
    cun: String,
    regione: String,
    esito: String,
    tipo_test: String,
    data_esecuzione: String,
    struttura: String,
    invio_cun_da_ts: bool,
    ricevuto_il: String,
    conservato_fino_al: String,
    /// What happened to the CUN (on single reads).
    #[serde(skip_serializing_if = "Option::is_none")]
    storia: Option<Vec<CunEvent>>,
    /// Never sent (ORD-3.3b), except by the ORD-3.3b mutant.
    #[serde(skip_serializing_if = "Option::is_none")]
    codice_fiscale: Option<String>,
}

impl PublicRecord {
    fn of(r: &Record, ts: &SistemaTs) -> Self {
        let expiry = Timestamp::from_millisecond(r.expires_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        Self {
            id: r.id.clone(),
            cun: format!("CUN-{}", r.cun),
            regione: r.region.clone(),
            esito: r.esito.clone(),
            tipo_test: r.tipo_test.clone(),
            data_esecuzione: r.data_esecuzione.clone(),
            struttura: r.struttura.clone(),
            invio_cun_da_ts: r.invio_cun_da_ts,
            ricevuto_il: r.created_at.clone(),
            conservato_fino_al: ts.ctx.clock().date_of(expiry).to_string(),
            storia: None,
            codice_fiscale: ts.ctx.config().mutant("ORD-3.3b").then(|| r.codice_fiscale.clone()),
        }
    }

    /// With the CUN's history.
    fn with_history(r: &Record, ts: &SistemaTs) -> Result<Self, StoreError> {
        let storia = ts.store.with(|c| store::cun::history(c, r))?;
        Ok(Self { storia: Some(storia), ..Self::of(r, ts) })
    }
}

/// The record as it was before a correction (kept, ORD-3.3a).
#[derive(Debug, Serialize)]
struct Snapshot<'a> {
    codice_fiscale: &'a str,
    esito: &'a str,
    tipo_test: &'a str,
    data_esecuzione: &'a str,
    struttura: &'a str,
    cellulare: Option<&'a str>,
    email: Option<&'a str>,
}

impl<'a> Snapshot<'a> {
    fn of(r: &'a Record) -> Self {
        Self {
            codice_fiscale: &r.codice_fiscale,
            esito: &r.esito,
            tipo_test: &r.tipo_test,
            data_esecuzione: &r.data_esecuzione,
            struttura: &r.struttura,
            cellulare: r.cellulare.as_deref(),
            email: r.email.as_deref(),
        }
    }
}

/// The answer to a result sent: its id and CUN.
#[derive(Debug, Serialize)]
struct Issued {
    id: String,
    cun: String,
    conservato_fino_al: String,
}

/// A region's records by test date.
#[derive(Debug, Serialize)]
pub(crate) struct Listing {
    regione: String,
    dal: String,
    al: String,
    risultati: Vec<PublicRecord>,
}

/// Sistema TS takes the number to text as `cellulare`; the parent's number is the
/// SAR's business (it picks which number to send, ORD-6.1a).
fn refuse_parent_number(raw: &RawTestResult) -> Result<(), Problem> {
    if raw.contatti.as_ref().is_some_and(|c| c.cellulare_genitore.is_some()) {
        return Err(Problem::invalid_field(
            "contatti.cellulare_genitore",
            "not part of this interface: send the number to text (a minor's parent's) as cellulare",
        ));
    }
    Ok(())
}

fn retention_days(ts: &SistemaTs) -> i64 {
    (ts.ctx.config().retention.test_results.0.as_hours() / 24).max(1)
}

/// `POST /ts/v1/test-results`.
pub(crate) async fn create(
    State(ts): State<Arc<SistemaTs>>,
    caller: Caller,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> Result<Response, Problem> {
    // What Sistema TS queues for later (PN-DGC's events) waits out a national peak.
    ts.outbox.hold_at_peak();
    let region = caller.region.clone();
    // The raw body is the idempotency fingerprint, so it is read as bytes here.
    let (key, replay) =
        idempotency::precheck(&ts.store, &headers, caller.name(), &body, idempotency::Window::of(&ts.ctx)).await?;
    if let Some(answer) = replay {
        return Ok(answer);
    }
    if ts.ctx.config().mutant("ORD-5.2") && caller.account.role == ecosim_core::accounts::Role::Lab {
        return Err(Problem::forbidden("labs may not send results").with_requirement("ORD-5.2"));
    }
    let raw: RawTestResult = from_json(&body)?;
    refuse_parent_number(&raw)?;
    let result = validate(&raw)?;
    check_rules(&result, ts.ctx.population(), ts.ctx.clock().today(), retention_days(&ts))?;

    let now = ts.ctx.clock().now();
    let retention = if ts.ctx.config().mutant("ORD-3.2") {
        jiff::SignedDuration::from_hours(24)
    } else {
        ts.ctx.config().retention.test_results.0
    };
    let expires = now.checked_add(retention).unwrap_or(now);
    let negative = result.esito == ecosim_domain::test_result::Esito::Negativo;
    let submitted_by = caller.name().to_owned();
    let (work, after) = (ts.clone(), ts.clone());
    // Group commit: this write shares its transaction (and, on disk, its fsync) with
    // the others arriving at the same time; the answer waits for the commit, and
    // what follows a commit happens even if the client is gone by then.
    let created = ts
        .store
        .grouped_then(
            move |tx| {
                let ts = &work;
                // Checked again inside the transaction: two racing retries make one record.
                if let Some(key) = &key
                    && let Some(stored) = idempotency::replay(tx, key)?
                {
                    return Ok(Err(stored));
                }
                let id = ts.ids.next();
                let record = NewRecord {
                    id: &id,
                    region: &region,
                    submitted_by: &submitted_by,
                    result: &result,
                    created_at: now.to_string(),
                    expires_ms: expires.as_millisecond(),
                };
                let cun = ts.insert_with_fresh_cun(tx, &record)?;
                let mut notices = Vec::new();
                if result.invio_cun_da_ts && !ts.ctx.config().mutant("ORD-6.2") {
                    notices = crate::outbox::notify::enqueue(tx, &cun, &result)?;
                }
                if negative
                    && let crate::domain::registry::Lookup::Found(p) = ts.lookup(tx, result.codice_fiscale.as_str())?
                {
                    // A negative test yields a test certificate (Flow 4).
                    let event = Evento {
                        id: format!("test:{id}"),
                        assistito: crate::outbox::dgc::assistito(&p),
                        contatti: Contatti {
                            cellulare: result.cellulare.as_ref().map(|m| m.to_string()),
                            email: result.email.as_ref().map(|e| e.to_string()),
                        },
                        test: Some(Test {
                            cun: cun.to_string(),
                            tipo_test: result.tipo_test.as_str().to_owned(),
                            esito: result.esito.as_str().to_owned(),
                            data_esecuzione: result.data_esecuzione,
                            struttura: result.struttura.clone(),
                        }),
                        vaccinazione: None,
                        guarigione: None,
                    };
                    crate::outbox::dgc::enqueue(tx, &event, None)?;
                }
                let answer = Issued {
                    id: id.clone(),
                    cun: cun.to_string(),
                    conservato_fino_al: ts.ctx.clock().date_of(expires).to_string(),
                };
                if let Some(key) = &key {
                    let text = serde_json::to_string(&answer).map_err(|e| Problem::internal(e.to_string()))?;
                    idempotency::remember(tx, key, 201, &text, Some(&answer.id))?;
                }
                Ok::<_, Problem>(Ok((answer, notices)))
            },
            move |created| {
                if let Ok((_, notices)) = created {
                    after.schedule_purge(expires);
                    if !notices.is_empty() {
                        after.outbox.dispatch(notices.iter().cloned());
                    } else if negative {
                        after.outbox.wake();
                    }
                }
            },
        )
        .await?;
    match created {
        Err((status, stored)) => Ok(idempotency::replayed(status, stored)),
        Ok((answer, _)) => Ok((StatusCode::CREATED, Json(answer)).into_response()),
    }
}

fn parse_cun(raw: &str) -> Result<Cun, Problem> {
    Cun::parse(raw).map_err(|e| Problem::invalid_field("cun", e.to_string()))
}

/// The caller region's live record for `cun`, else 404 (another region's CUN looks
/// exactly like an unknown one).
fn find(ts: &SistemaTs, cun: &Cun, region: &str) -> Result<Record, Problem> {
    let now = ts.ctx.clock().now().as_millisecond();
    let row = ts.store.with(|c| store::test_results::live(c, &cun.sha256(), region, now))?;
    row.ok_or_else(|| Problem::not_found(format!("no test result of region {region} with {cun}")))
}

/// `GET /ts/v1/test-results/{cun}`.
pub(crate) async fn get_one(
    State(ts): State<Arc<SistemaTs>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<PublicRecord>, Problem> {
    let cun = parse_cun(&raw)?;
    let row = find(&ts, &cun, &caller.region)?;
    Ok(Json(PublicRecord::with_history(&row, &ts)?))
}

/// `GET /ts/v1/test-results?dal=YYYY-MM-DD&al=YYYY-MM-DD`.
pub(crate) async fn list(
    State(ts): State<Arc<SistemaTs>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Listing>, Problem> {
    let region = caller.region.clone();
    let mut f = Fields::new();
    let (mut dal, mut al) = (None, None);
    for pair in query.as_deref().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("dal", v)) => dal = f.check("dal", parse_date(v)),
            Some(("al", v)) => al = f.check("al", parse_date(v)),
            _ => f.error(pair.split('=').next().unwrap_or(pair), "unknown parameter; use dal and al"),
        }
    }
    f.required("dal", &dal);
    f.required("al", &al);
    if let (Some(d), Some(a)) = (dal, al)
        && d > a
    {
        f.error("al", "must not be before dal");
    }
    let (dal, al) = f.into_result((dal, al).all_some())?;
    let now = ts.ctx.clock().now().as_millisecond();
    let (dal, al) = (dal.to_string(), al.to_string());
    let rows = ts.store.with(|c| store::test_results::in_range(c, &region, &dal, &al, now))?;
    let risultati = rows.iter().map(|r| PublicRecord::of(r, &ts)).collect();
    Ok(Json(Listing { regione: region, dal, al, risultati }))
}

/// `PATCH /ts/v1/test-results/{cun}`: correct any field (ORD-3.3a); the earlier
/// version is kept, the correction recorded on the CUN.
pub(crate) async fn correct(
    State(ts): State<Arc<SistemaTs>>,
    caller: Caller,
    Path(raw): Path<String>,
    ApiJson(patch): ApiJson<RawTestResult>,
) -> Result<Json<PublicRecord>, Problem> {
    let cun = parse_cun(&raw)?;
    let row = find(&ts, &cun, &caller.region)?;
    refuse_parent_number(&patch)?;
    if patch.invio_cun_da_ts.is_some() {
        return Err(Problem::invalid_field("invio_cun_da_ts", "cannot be changed after the CUN was issued"));
    }
    let mut changed = Vec::new();
    let mut pick = |name: &'static str, new: &Option<String>, old: &str| match new {
        Some(v) => {
            if v != old {
                changed.push(name);
            }
            Some(v.clone())
        }
        None => Some(old.to_owned()),
    };
    let merged = RawTestResult {
        codice_fiscale: pick("codice_fiscale", &patch.codice_fiscale, &row.codice_fiscale),
        esito: pick("esito", &patch.esito, &row.esito),
        tipo_test: pick("tipo_test", &patch.tipo_test, &row.tipo_test),
        data_esecuzione: pick("data_esecuzione", &patch.data_esecuzione, &row.data_esecuzione),
        struttura: pick("struttura", &patch.struttura, &row.struttura),
        contatti: match &patch.contatti {
            Some(c) => {
                if c.cellulare != row.cellulare || c.email != row.email {
                    changed.push("contatti");
                }
                Some(c.clone())
            }
            None => Some(RawContatti {
                cellulare: row.cellulare.clone(),
                email: row.email.clone(),
                cellulare_genitore: None,
            }),
        },
        invio_cun_da_ts: None,
    };
    if patch.codice_fiscale.is_none()
        && patch.esito.is_none()
        && patch.tipo_test.is_none()
        && patch.data_esecuzione.is_none()
        && patch.struttura.is_none()
        && patch.contatti.is_none()
    {
        return Err(Problem::invalid_field("body", "give at least one field to correct"));
    }
    let result = validate(&merged)?;
    check_rules(&result, ts.ctx.population(), ts.ctx.clock().today(), retention_days(&ts))?;
    let now = ts.ctx.clock().now();
    let snapshot = serde_json::to_string(&Snapshot::of(&row)).map_err(|e| Problem::internal(e.to_string()))?;
    ts.store.transaction(|tx| {
        store::test_results::keep_version(tx, &row.id, &now.to_string(), &snapshot)?;
        if !ts.ctx.config().mutant("ORD-3.3a") {
            store::test_results::correct(tx, &row.id, &result)?;
        }
        store::cun::record(tx, &row.cun, now, &Happened::Corrected { campi: &changed, da: caller.name() })?;
        Ok::<_, StoreError>(())
    })?;
    let row = find(&ts, &cun, &row.region)?;
    Ok(Json(PublicRecord::with_history(&row, &ts)?))
}
