//! PN-DGC's HTTP routes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use base64::Engine as _;
use ecosim_core::accounts::{Caller, Role};
use ecosim_core::codes::is_sha256_hex;
use ecosim_core::problem::{Fields, Problem, from_json};
use ecosim_core::store::{CachedSql, StoreError};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::event::{Evento, Plan};
use crate::state::{Found, PnDgc};

/// `POST /pn-dgc/v1/eventi` (Sistema TS's service account): a dose, a test or a
/// recovery. 202 with the planned issue time (or why none); the same id again is 200.
pub(crate) async fn event(
    State(pn): State<Arc<PnDgc>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_role(&[Role::Service])?;
    let e: Evento = from_json(&body)?;
    e.check()?;
    let clock = pn.ctx.clock();
    let now = clock.now();
    let plan = e.plan(now, |d| clock.midnight(d), clock.today());
    let payload = serde_json::to_string(&e).map_err(|err| Problem::internal(err.to_string()))?;
    let (status, answer) = pn.store.transaction(|tx| {
        let held: Option<(String, String, i64, Option<String>)> = tx
            .row("SELECT payload, stato, emissione_ms, motivo FROM eventi WHERE id = ?1", [&e.id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        if let Some((held_payload, stato, at, motivo)) = held {
            if held_payload != payload {
                return Ok::<_, StoreError>((
                    StatusCode::CONFLICT,
                    json!({"id": e.id, "detail": "another event already has this id"}),
                ));
            }
            return Ok((StatusCode::OK, view(&e.id, &stato, at, motivo.as_deref())));
        }
        let (stato, at, motivo) = match &plan {
            Plan::Issue(at) => ("in_attesa", at.as_millisecond(), None),
            Plan::Discard(why) => ("scartato", now.as_millisecond(), Some(why.clone())),
        };
        tx.exec(
            "INSERT INTO eventi (id, tipo, assistito, payload, ricevuto_il, emissione_ms, stato, motivo)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![e.id, e.kind(), e.assistito.id, payload, now.to_string(), at, stato, motivo],
        )?;
        Ok((StatusCode::ACCEPTED, view(&e.id, stato, at, motivo.as_deref())))
    })?;
    if status == StatusCode::CONFLICT {
        return Err(
            Problem::conflict(format!("event {} was received with other data", e.id)).with_field("id", "already used")
        );
    }
    pn.issue_due()?;
    Ok((status, Json(answer)))
}

fn view(id: &str, stato: &str, at_ms: i64, motivo: Option<&str>) -> Value {
    let at = jiff::Timestamp::from_millisecond(at_ms).map(|t| t.to_string()).unwrap_or_default();
    let mut v = json!({"id": id, "stato": stato, "requirement": "DGC-TIMING"});
    match motivo {
        Some(m) => v["motivo"] = json!(m),
        None => v["emissione_prevista"] = json!(at),
    }
    v
}

fn sha(f: &mut Fields, field: &str, v: Option<&String>) -> Option<String> {
    let v = v?;
    if is_sha256_hex(v) {
        Some(v.to_ascii_lowercase())
    } else {
        f.error(field, "must be a SHA-256 in hex (64 characters)");
        None
    }
}

fn not_found() -> Problem {
    Problem::not_found("no certificate matches these data").with_requirement("DGC-RETRIEVE")
}

/// `GET /v1/dgc?mode=ONLY_QRCODE&healthInsuranceCardNumber=&healthInsuranceCardDate=&authCodeSHA256=|sourceDocumentIDSHA256=`:
/// the certificate for a code and the health card's last 8 digits and expiry; any
/// mismatch is 404 (DGC-RETRIEVE). Open to anyone, as dgc.gov.it.
pub(crate) async fn retrieve(
    State(pn): State<Arc<PnDgc>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, Problem> {
    let mut f = Fields::new();
    if let Some(mode) = q.get("mode")
        && mode != "ONLY_QRCODE"
    {
        f.error("mode", "only ONLY_QRCODE is supported");
    }
    let last8 = f.required("healthInsuranceCardNumber", &q.get("healthInsuranceCardNumber").cloned()).cloned();
    if last8.as_ref().is_some_and(|l| !(l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))) {
        f.error("healthInsuranceCardNumber", "must be the last 8 digits of the health card");
    }
    let expiry = f.date("healthInsuranceCardDate", &q.get("healthInsuranceCardDate").cloned()).map(|d| d.to_string());
    let auth = sha(&mut f, "authCodeSHA256", q.get("authCodeSHA256"));
    let source = sha(&mut f, "sourceDocumentIDSHA256", q.get("sourceDocumentIDSHA256"));
    if q.contains_key("authCodeSHA256") == q.contains_key("sourceDocumentIDSHA256") {
        f.error("authCodeSHA256", "give exactly one of authCodeSHA256 and sourceDocumentIDSHA256");
    }
    f.finish()?;
    let (Some(last8), Some(expiry)) = (last8, expiry) else {
        return Err(Problem::internal("validated fields missing"));
    };
    let (column, hash) = match (auth, source) {
        (Some(a), None) => ("authcode_sha", a),
        (None, Some(s)) => ("source_sha", s),
        _ => return Err(Problem::internal("validated fields missing")),
    };
    let found = pn.find(column, &hash, &[("ultime8", &last8), ("scadenza_ts", &expiry)])?.ok_or_else(not_found)?;
    Ok(Json(json!({"data": answer(&found, "qrcode")?})))
}

fn answer(found: &Found, qr_name: &str) -> Result<Value, Problem> {
    let mut data = json!({qr_name: found.qrcode_b64()?, "hc1": found.hc1});
    if let Some(fgl) = &found.fgl {
        data["fglTipoDgc"] = json!(fgl);
    }
    Ok(data)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IoRequest {
    #[serde(rename = "authCodeSHA256")]
    auth_code_sha256: Option<String>,
    #[serde(rename = "cfSHA256")]
    cf_sha256: Option<String>,
}

/// `POST /v1/certificate/citizen/io` `{"authCodeSHA256","cfSHA256"}`: the IO app's retrieval.
pub(crate) async fn io(State(pn): State<Arc<PnDgc>>, body: Bytes) -> Result<Json<Value>, Problem> {
    let req: IoRequest = from_json(&body)?;
    let mut f = Fields::new();
    let auth = f.required("authCodeSHA256", &req.auth_code_sha256).cloned();
    let auth = sha(&mut f, "authCodeSHA256", auth.as_ref());
    let cf = f.required("cfSHA256", &req.cf_sha256).cloned();
    let cf = sha(&mut f, "cfSHA256", cf.as_ref());
    f.finish()?;
    let (Some(auth), Some(cf)) = (auth, cf) else { return Err(Problem::internal("validated fields missing")) };
    let found = pn.find("authcode_sha", &auth, &[("cf_sha", &cf)])?.ok_or_else(not_found)?;
    let mut data = answer(&found, "qrcodeB64")?;
    data["uvci"] = json!(found.uvci);
    Ok(Json(json!({"data": data})))
}

/// `GET /v1/dgc/signer`: the signing certificate (PEM) and its `kid`, so any EU DCC
/// verifier can check the signature.
pub(crate) async fn signer(State(pn): State<Arc<PnDgc>>) -> Json<Value> {
    let kid = pn.signer.kid();
    Json(json!({
        "kid": base64::engine::general_purpose::STANDARD.encode(kid),
        "kid_hex": hex::encode(kid),
        "certificate": pn.signer.certificate_pem(),
        "subject": crate::signer::SUBJECT,
    }))
}
