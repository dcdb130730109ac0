//! The HIS interface Immuni calls (known from Immuni's public code, APIS.md):
//! `POST /his/v1/cun/verify` and `POST /his/v1/cun/invalidate`.
//!
//! Answers: 200 with the data; otherwise `{"response_code": <status>, "id_transaction"}`
//! with 400 (bad schema), 401 (no positive, live CUN for that card), 409 (already
//! used), 429 (too many failed checks for those card digits, ecosim's brute-force
//! protection).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ecosim_core::accounts::{Caller, Role};
use ecosim_core::store::CachedSql;
use ecosim_domain::codes::{CardLast8, is_sha256_hex};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::state::SistemaTs;

/// A live test result found for an unlock.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub(crate) cun: String,
    pub(crate) esito: String,
    pub(crate) codice_fiscale: String,
    pub(crate) data_esecuzione: String,
}

/// The live (unexpired) record whose `column` equals `value`.
pub(crate) fn live_by(
    ts: &SistemaTs,
    column: &str,
    value: &str,
) -> Result<Option<Live>, ecosim_core::store::StoreError> {
    let now = ts.ctx.clock().now().as_millisecond();
    ts.store.with(|c| {
        c.row(
            &format!(
                "SELECT cun, esito, codice_fiscale, data_esecuzione FROM test_results WHERE {column} = ?1 AND expires_ms > ?2"
            ),
            params![value, now],
            |r| Ok(Live { cun: r.get(0)?, esito: r.get(1)?, codice_fiscale: r.get(2)?, data_esecuzione: r.get(3)? }),
        )
        .optional()
    })
}

/// Whether the person's card ends with `last8`.
pub(crate) fn card_matches(ts: &SistemaTs, codice_fiscale: &str, last8: &CardLast8) -> bool {
    ecosim_domain::codes::CodiceFiscale::parse(codice_fiscale)
        .ok()
        .and_then(|cf| ts.ctx.population().by_codice_fiscale(&cf).map(|p| p.card().last8() == *last8))
        .unwrap_or(false)
}

/// Whether the CUN was already used for an unlock (invalidated).
pub(crate) fn already_used(ts: &SistemaTs, cun: &str) -> Result<bool, ecosim_core::store::StoreError> {
    ts.store
        .with(|c| {
            c.row("SELECT COUNT(*) FROM cun_verifications WHERE cun = ?1 AND invalidated_at IS NOT NULL", [cun], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n > 0)
}

fn answer(ts: &SistemaTs, status: StatusCode) -> Response {
    (status, Json(json!({"response_code": status.as_u16(), "id_transaction": ts.ids.next()}))).into_response()
}

fn fields(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Some(m),
        _ => None,
    }
}

/// `POST /his/v1/cun/verify` `{"cun": "<sha256 of CUN-xxxxxxxxxx>", "last_his_number": "12345678"}`.
pub(crate) async fn verify(State(ts): State<Arc<SistemaTs>>, caller: Caller, body: Bytes) -> Response {
    if let Err(p) = caller.require_role(&[Role::Service]) {
        return p.into_response();
    }
    let Some(map) = fields(&body) else { return answer(&ts, StatusCode::BAD_REQUEST) };
    let cun_sha = map.get("cun").and_then(Value::as_str).map(str::to_ascii_lowercase).filter(|c| is_sha256_hex(c));
    let last8 = map.get("last_his_number").and_then(Value::as_str).and_then(|l| CardLast8::parse(l).ok());
    let (Some(cun_sha), Some(last8)) = (cun_sha, last8) else { return answer(&ts, StatusCode::BAD_REQUEST) };
    match verify_inner(&ts, &cun_sha, &last8) {
        Ok(Ok(ok)) => (StatusCode::OK, Json(ok)).into_response(),
        Ok(Err(status)) => answer(&ts, status),
        Err(e) => {
            tracing::error!(error = %e, "HIS verify failed");
            answer(&ts, StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

fn verify_inner(
    ts: &SistemaTs,
    cun_sha: &str,
    last8: &CardLast8,
) -> Result<Result<Value, StatusCode>, ecosim_core::store::StoreError> {
    if ts.card_locked(last8.as_str())? {
        return Ok(Err(StatusCode::TOO_MANY_REQUESTS));
    }
    let found = live_by(ts, "cun_sha", cun_sha)?
        .filter(|r| r.esito == "POSITIVO" && card_matches(ts, &r.codice_fiscale, last8));
    let Some(record) = found else {
        ts.card_failed(last8.as_str())?;
        return Ok(Err(StatusCode::UNAUTHORIZED));
    };
    if already_used(ts, &record.cun)? {
        return Ok(Err(StatusCode::CONFLICT));
    }
    let id = ts.ids.next();
    let now = ts.ctx.clock().now();
    ts.store.with(|c| {
        c.exec(
            "INSERT INTO cun_verifications (id_test_verification, cun, verified_at) VALUES (?1, ?2, ?3)",
            params![id, record.cun, now.to_string()],
        )
    })?;
    Ok(Ok(json!({"id_transaction": ts.ids.next(), "id_test_verification": id, "date_test": record.data_esecuzione})))
}

/// `POST /his/v1/cun/invalidate` `{"cun": "<sha>", "id_test_verification": "<uuid>"}`.
pub(crate) async fn invalidate(State(ts): State<Arc<SistemaTs>>, caller: Caller, body: Bytes) -> Response {
    if let Err(p) = caller.require_role(&[Role::Service]) {
        return p.into_response();
    }
    let Some(map) = fields(&body) else { return answer(&ts, StatusCode::BAD_REQUEST) };
    let cun_sha = map.get("cun").and_then(Value::as_str).map(str::to_ascii_lowercase).filter(|c| is_sha256_hex(c));
    let id = map.get("id_test_verification").and_then(Value::as_str).filter(|s| !s.is_empty());
    let (Some(cun_sha), Some(id)) = (cun_sha, id) else { return answer(&ts, StatusCode::BAD_REQUEST) };
    let now = ts.ctx.clock().now();
    let outcome = ts.store.transaction(|tx| {
        let row: Option<(String, Option<String>)> = tx
            .row(
                "SELECT v.cun, v.invalidated_at FROM cun_verifications v JOIN test_results t ON t.cun = v.cun
                 WHERE v.id_test_verification = ?1 AND t.cun_sha = ?2",
                params![id, cun_sha],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((cun, invalidated)) = row else { return Ok(StatusCode::UNAUTHORIZED) };
        let used: i64 = tx.row(
            "SELECT COUNT(*) FROM cun_verifications WHERE cun = ?1 AND invalidated_at IS NOT NULL",
            [&cun],
            |r| r.get(0),
        )?;
        if invalidated.is_some() || used > 0 {
            return Ok(StatusCode::CONFLICT);
        }
        tx.exec(
            "UPDATE cun_verifications SET invalidated_at = ?2 WHERE id_test_verification = ?1",
            params![id, now.to_string()],
        )?;
        SistemaTs::event(tx, &cun, now, "unlocked", json!({"modalita": "self", "requirement": "DM-A.1b"}))?;
        Ok::<_, ecosim_core::store::StoreError>(StatusCode::OK)
    });
    match outcome {
        Ok(StatusCode::OK) => {
            (StatusCode::OK, Json(json!({"response_code": 200, "id_transaction": ts.ids.next()}))).into_response()
        }
        Ok(status) => answer(&ts, status),
        Err(e) => {
            tracing::error!(error = %e, "HIS invalidate failed");
            answer(&ts, StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}
