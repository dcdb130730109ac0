//! `/ts/v1/test-results`: regions (and labs, ORD-5.2) send results, get CUNs, correct
//! and download what they sent, never another region's data and never direct
//! identifiers (ORD-3.3b).

use ecosim_domain::validation::AllSome;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ecosim_core::accounts::{Caller, Role};
use ecosim_core::idempotency;
use ecosim_core::problem::{Fields, Problem, from_json, parse_date};
use ecosim_core::store::{CachedSql, StoreError};
use ecosim_domain::codes::Cun;
use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::domain::test_result::{RawContatti, RawTestResult, TestResult, check_rules, validate};
use crate::state::SistemaTs;

const ROLES: &[Role] = &[Role::Sar, Role::Lab];

/// A stored record, with its identifiers (never sent out as is).
#[derive(Debug, Clone)]
struct Row {
    id: String,
    cun: String,
    region: String,
    codice_fiscale: String,
    esito: String,
    tipo_test: String,
    data_esecuzione: String,
    struttura: String,
    cellulare: Option<String>,
    email: Option<String>,
    invio_cun_da_ts: bool,
    created_at: String,
    expires_ms: i64,
}

const COLUMNS: &str = "id, cun, region, codice_fiscale, esito, tipo_test, data_esecuzione, struttura, cellulare, email, \
                       invio_cun_da_ts, created_at, expires_ms";

fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok(Row {
        id: r.get(0)?,
        cun: r.get(1)?,
        region: r.get(2)?,
        codice_fiscale: r.get(3)?,
        esito: r.get(4)?,
        tipo_test: r.get(5)?,
        data_esecuzione: r.get(6)?,
        struttura: r.get(7)?,
        cellulare: r.get(8)?,
        email: r.get(9)?,
        invio_cun_da_ts: r.get(10)?,
        created_at: r.get(11)?,
        expires_ms: r.get(12)?,
    })
}

impl Row {
    /// What a region may see: no codice fiscale, no contacts (ORD-3.3b).
    fn public(&self, ts: &SistemaTs) -> Value {
        let expiry = Timestamp::from_millisecond(self.expires_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        json!({
            "id": self.id,
            "cun": format!("CUN-{}", self.cun),
            "regione": self.region,
            "esito": self.esito,
            "tipo_test": self.tipo_test,
            "data_esecuzione": self.data_esecuzione,
            "struttura": self.struttura,
            "invio_cun_da_ts": self.invio_cun_da_ts,
            "ricevuto_il": self.created_at,
            "conservato_fino_al": ts.ctx.clock().date_of(expiry).to_string(),
        })
    }

    fn snapshot(&self) -> Value {
        json!({
            "codice_fiscale": self.codice_fiscale, "esito": self.esito, "tipo_test": self.tipo_test,
            "data_esecuzione": self.data_esecuzione, "struttura": self.struttura,
            "cellulare": self.cellulare, "email": self.email,
        })
    }
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
    body: Bytes,
) -> Result<Response, Problem> {
    caller.require_role(ROLES)?;
    let region = caller.region()?.to_owned();
    let (key, replay) = idempotency::precheck(&ts.store, &headers, &caller.0.name, &body)?;
    if let Some(answer) = replay {
        return Ok(answer);
    }
    let raw: RawTestResult = from_json(&body)?;
    refuse_parent_number(&raw)?;
    let result = validate(&raw)?;
    check_rules(&result, ts.ctx.population(), ts.ctx.clock().today(), retention_days(&ts))?;

    let now = ts.ctx.clock().now();
    let expires = now.checked_add(ts.ctx.config().retention.test_results.0).unwrap_or(now);
    let created = ts.store.transaction(|tx| {
        // Checked again inside the transaction: two racing retries make one record.
        if let Some(key) = &key
            && let Some(stored) = idempotency::replay(tx, key)?
        {
            return Ok(Err(stored));
        }
        let id = ts.ids.next();
        let cun = ts.issue_cun(tx, now)?;
        insert(tx, &id, &cun, &region, &caller.0.name, &result, now, expires)?;
        SistemaTs::event(tx, cun.as_str(), now, "issued", json!({"regione": region, "da": caller.0.name}))?;
        if result.invio_cun_da_ts {
            crate::notify::enqueue(tx, &cun, &result)?;
        }
        let dgc = result.esito == ecosim_domain::test_result::Esito::Negativo;
        if dgc && let crate::registry::Lookup::Found(p) = ts.lookup(tx, result.codice_fiscale.as_str())? {
            // A negative test yields a test certificate (Flow 4).
            let event = json!({
                "id": format!("test:{id}"),
                "assistito": crate::dgc::assistito(&p),
                "contatti": {"cellulare": result.cellulare.as_ref().map(|m| m.to_string()),
                             "email": result.email.as_ref().map(|e| e.to_string())},
                "test": {"cun": cun.to_string(), "tipo_test": result.tipo_test.as_str(), "esito": result.esito.as_str(),
                         "data_esecuzione": result.data_esecuzione.to_string(), "struttura": result.struttura},
            });
            crate::dgc::enqueue(tx, &event, None)?;
        }
        let answer = json!({
            "id": id,
            "cun": cun.to_string(),
            "conservato_fino_al": ts.ctx.clock().date_of(expires).to_string(),
        });
        if let Some(key) = &key {
            idempotency::remember(tx, key, 201, &answer.to_string())?;
        }
        Ok::<_, Problem>(Ok((id, answer)))
    })?;
    match created {
        Err((status, stored)) => Ok(idempotency::replayed(status, stored)),
        Ok((id, answer)) => {
            ts.schedule_purge(id, expires);
            if result.invio_cun_da_ts || result.esito == ecosim_domain::test_result::Esito::Negativo {
                ts.outbox.wake();
            }
            Ok((StatusCode::CREATED, Json(answer)).into_response())
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn insert(
    tx: &rusqlite::Connection,
    id: &str,
    cun: &Cun,
    region: &str,
    by: &str,
    r: &TestResult,
    now: Timestamp,
    expires: Timestamp,
) -> rusqlite::Result<()> {
    tx.exec(
        &format!(
            "INSERT INTO test_results ({COLUMNS}, submitted_by, cun_sha)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ),
        params![
            id,
            cun.as_str(),
            region,
            r.codice_fiscale.as_str(),
            r.esito.as_str(),
            r.tipo_test.as_str(),
            r.data_esecuzione.to_string(),
            r.struttura,
            r.cellulare.as_ref().map(|m| m.to_string()),
            r.email.as_ref().map(|e| e.to_string()),
            r.invio_cun_da_ts,
            now.to_string(),
            expires.as_millisecond(),
            by,
            cun.sha256(),
        ],
    )?;
    Ok(())
}

fn parse_cun(raw: &str) -> Result<Cun, Problem> {
    Cun::parse(raw).map_err(|e| Problem::invalid_field("cun", e.to_string()))
}

/// The caller region's live record for `cun`, else 404 (another region's CUN looks
/// exactly like an unknown one).
fn find(ts: &SistemaTs, cun: &Cun, region: &str) -> Result<Row, Problem> {
    let now = ts.ctx.clock().now().as_millisecond();
    let row = ts.store.with(|c| {
        c.row(
            &format!("SELECT {COLUMNS} FROM test_results WHERE cun = ?1 AND region = ?2 AND expires_ms > ?3"),
            params![cun.as_str(), region, now],
            row_of,
        )
        .optional()
    })?;
    row.ok_or_else(|| Problem::not_found(format!("no test result of region {region} with {cun}")))
}

fn history(ts: &SistemaTs, cun: &str) -> Result<Vec<Value>, StoreError> {
    ts.store.with(|c| {
        let mut stmt = c.prepare_cached("SELECT at, kind, detail FROM cun_events WHERE cun = ?1 ORDER BY id")?;
        stmt.query_map([cun], |r| {
            let detail: String = r.get(2)?;
            Ok(json!({"at": r.get::<_, String>(0)?, "evento": r.get::<_, String>(1)?,
                      "dettaglio": serde_json::from_str::<Value>(&detail).unwrap_or(Value::Null)}))
        })?
        .collect()
    })
}

/// `GET /ts/v1/test-results/{cun}`.
pub(crate) async fn get_one(
    State(ts): State<Arc<SistemaTs>>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_role(ROLES)?;
    let cun = parse_cun(&raw)?;
    let row = find(&ts, &cun, caller.region()?)?;
    let mut view = row.public(&ts);
    view["storia"] = Value::Array(history(&ts, &row.cun)?);
    Ok(Json(view))
}

/// `GET /ts/v1/test-results?dal=YYYY-MM-DD&al=YYYY-MM-DD`.
pub(crate) async fn list(
    State(ts): State<Arc<SistemaTs>>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, Problem> {
    caller.require_role(ROLES)?;
    let region = caller.region()?.to_owned();
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
    let rows = ts.store.with(|c| {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM test_results WHERE region = ?1 AND data_esecuzione BETWEEN ?2 AND ?3
             AND expires_ms > ?4 ORDER BY data_esecuzione, created_at, id"
        ))?;
        stmt.query_map(params![region, dal.to_string(), al.to_string(), now], row_of)?
            .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    let risultati: Vec<Value> = rows.iter().map(|r| r.public(&ts)).collect();
    Ok(Json(json!({"regione": region, "dal": dal.to_string(), "al": al.to_string(), "risultati": risultati})))
}

/// `PATCH /ts/v1/test-results/{cun}`: correct any field (ORD-3.3a); the earlier
/// version is kept, the correction recorded on the CUN.
pub(crate) async fn correct(
    State(ts): State<Arc<SistemaTs>>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    caller.require_role(ROLES)?;
    let cun = parse_cun(&raw)?;
    let row = find(&ts, &cun, caller.region()?)?;
    let patch: RawTestResult = from_json(&body)?;
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
    ts.store.transaction(|tx| {
        let version: i64 =
            tx.row("SELECT COUNT(*) FROM test_result_versions WHERE test_result = ?1", [&row.id], |r| r.get(0))?;
        tx.exec(
            "INSERT INTO test_result_versions (test_result, version, at, record) VALUES (?1, ?2, ?3, ?4)",
            params![row.id, version + 1, now.to_string(), row.snapshot().to_string()],
        )?;
        tx.exec(
            "UPDATE test_results SET codice_fiscale = ?2, esito = ?3, tipo_test = ?4, data_esecuzione = ?5,
                                     struttura = ?6, cellulare = ?7, email = ?8 WHERE id = ?1",
            params![
                row.id,
                result.codice_fiscale.as_str(),
                result.esito.as_str(),
                result.tipo_test.as_str(),
                result.data_esecuzione.to_string(),
                result.struttura,
                result.cellulare.as_ref().map(|m| m.to_string()),
                result.email.as_ref().map(|e| e.to_string()),
            ],
        )?;
        SistemaTs::event(tx, &row.cun, now, "corrected", json!({"campi": changed, "da": caller.0.name}))?;
        Ok::<_, StoreError>(())
    })?;
    let row = find(&ts, &cun, &row.region)?;
    let mut view = row.public(&ts);
    view["storia"] = Value::Array(history(&ts, &row.cun)?);
    Ok(Json(view))
}
