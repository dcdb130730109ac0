//! The HIS interface Immuni calls (known from Immuni's public code, APIS.md):
//! `POST /his/v1/cun/verify` and `POST /his/v1/cun/invalidate`.
//!
//! Answers: 200 with the data; otherwise `{"response_code": <status>, "id_transaction"}`
//! with 400 (bad schema), 401 (no positive, live CUN for that card), 409 (already
//! used). Card digits locked by ecosim's brute-force protection (too many failed
//! checks) are answered 401 as well, inside the known interface (whose callers, like
//! the real Immuni, map anything else to 500), with `X-Ecosim-Detail` saying why: the
//! app hears "Unauthorized OTP." and the guesser learns nothing.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ecosim_core::Problem;
use ecosim_core::accounts::{Caller, Role};
use ecosim_core::store::StoreError;
use ecosim_domain::codes::{CardLast8, is_sha256_hex};
use serde::{Deserialize, Serialize};

use crate::state::SistemaTs;
pub(crate) use crate::store::test_results::Live;
use crate::store::{self, cun::Happened};

/// The live record whose CUN hashes to `cun_sha`.
pub(crate) fn live_by(ts: &SistemaTs, cun_sha: &str) -> Result<Option<Live>, StoreError> {
    let now = ts.ctx.clock().now().as_millisecond();
    ts.store.with(|c| store::test_results::live_by(c, cun_sha, now))
}

/// Whether the person's card ends with `last8`.
pub(crate) fn card_matches(ts: &SistemaTs, codice_fiscale: &str, last8: &CardLast8) -> bool {
    ecosim_domain::codes::CodiceFiscale::parse(codice_fiscale)
        .ok()
        .and_then(|cf| ts.ctx.population().by_codice_fiscale(&cf).map(|p| p.card().last8() == *last8))
        .unwrap_or(false)
}

/// The outcome of a CUN + card digits check, with the brute-force counters kept.
pub(crate) enum Check {
    /// The CUN, or the card digits of a pair that does not match, are locked.
    Locked,
    /// No live result for that CUN and those digits (counted as a failure).
    Failed,
    /// The live result the pair names.
    Matched(Live),
}

/// Checks a CUN (found by its hash) against the last 8 card digits:
/// refused when the CUN is locked; a match when the digits are the person's and
/// `accept` takes the record (`any_card`: the digits are not compared, a mutant);
/// otherwise refused when the digits are locked, else a failure counted against
/// the digits and, when the CUN exists and the digits were wrong, the CUN.
pub(crate) fn check_pair(
    ts: &SistemaTs,
    cun_sha: &str,
    last8: &CardLast8,
    any_card: bool,
    accept: impl Fn(&Live) -> bool,
) -> Result<Check, StoreError> {
    let live = live_by(ts, cun_sha)?;
    if let Some(r) = &live
        && ts.cun_locked(&r.cun)?
    {
        return Ok(Check::Locked);
    }
    let digits_right = live.as_ref().map(|r| any_card || card_matches(ts, &r.codice_fiscale, last8));
    match live {
        Some(r) if digits_right == Some(true) && accept(&r) => Ok(Check::Matched(r)),
        live => {
            if ts.card_locked(last8.as_str())? {
                return Ok(Check::Locked);
            }
            let guessed = live.filter(|_| digits_right == Some(false)).map(|r| r.cun);
            ts.card_failed(last8.as_str(), guessed.as_deref())?;
            Ok(Check::Failed)
        }
    }
}

/// Whether the CUN was already used for an unlock (invalidated).
pub(crate) fn already_used(ts: &SistemaTs, cun: &str) -> Result<bool, StoreError> {
    ts.store.with(|c| store::unlock::used(c, cun))
}

/// The HIS's answer to anything but success.
#[derive(Debug, Serialize)]
struct Refusal {
    response_code: u16,
    id_transaction: String,
}

/// A verified CUN.
#[derive(Debug, Serialize)]
struct Verified {
    id_transaction: String,
    id_test_verification: String,
    date_test: String,
}

/// An invalidated CUN.
#[derive(Debug, Serialize)]
struct Invalidated {
    response_code: u16,
    id_transaction: String,
}

/// The fields of a request, as the HIS reads them (a malformed body is a 400 answer).
#[derive(Debug, Deserialize)]
struct HisRequest {
    cun: Option<String>,
    last_his_number: Option<String>,
    id_test_verification: Option<String>,
}

fn answer(ts: &SistemaTs, status: StatusCode) -> Response {
    (status, Json(Refusal { response_code: status.as_u16(), id_transaction: ts.ids.next() })).into_response()
}

/// A caller refused (401 without credentials, 403 for any account but Immuni's),
/// in the HIS's own shape like its other refusals, the reason in `X-Ecosim-Detail`.
fn refused(ts: &SistemaTs, p: &Problem) -> Response {
    let mut res = answer(ts, p.status_code());
    if let Ok(v) = axum::http::HeaderValue::from_str(&p.detail.replace(['\r', '\n'], " ")) {
        res.headers_mut().insert("x-ecosim-detail", v);
    }
    if p.status == 401 {
        res.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Basic realm=\"ecosim\""),
        );
    }
    res
}

/// A HIS request as both calls read it: only from Immuni's service account (else
/// [`refused`]), and only a JSON document (declared `application/json`, nothing
/// after the value) of the right shape, else the HIS's one refusal of a malformed
/// request, its 400.
fn his_request(
    ts: &SistemaTs,
    caller: Result<Caller, Problem>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<HisRequest, Box<Response>> {
    let immuni_only = caller.and_then(|c| {
        c.require_role(&[Role::Service])?;
        c.require_service(&["immuni"]).map(|_| ())
    });
    if let Err(p) = immuni_only {
        return Err(Box::new(refused(ts, &p)));
    }
    ecosim_core::problem::require_json(headers)
        .ok()
        .and_then(|()| serde_json::from_slice(body).ok())
        .ok_or_else(|| Box::new(answer(ts, StatusCode::BAD_REQUEST)))
}

/// The CUN hash of a request, lower-cased, if well formed.
fn cun_sha(req: &HisRequest) -> Option<String> {
    req.cun.as_deref().map(str::to_ascii_lowercase).filter(|c| is_sha256_hex(c))
}

/// `POST /his/v1/cun/verify` `{"cun": "<sha256 of CUN-xxxxxxxxxx>", "last_his_number": "12345678"}`.
pub(crate) async fn verify(
    State(ts): State<Arc<SistemaTs>>,
    caller: Result<Caller, Problem>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match his_request(&ts, caller, &headers, &body) {
        Ok(req) => req,
        Err(refusal) => return *refusal,
    };
    let last8 = req.last_his_number.as_deref().and_then(|l| CardLast8::parse(l).ok());
    let (Some(cun_sha), Some(last8)) = (cun_sha(&req), last8) else { return answer(&ts, StatusCode::BAD_REQUEST) };
    match verify_inner(&ts, &cun_sha, &last8) {
        Ok(Ok(ok)) => (StatusCode::OK, Json(ok)).into_response(),
        Ok(Err(StatusCode::TOO_MANY_REQUESTS)) => {
            let mut res = answer(&ts, StatusCode::UNAUTHORIZED);
            res.headers_mut().insert(
                "x-ecosim-detail",
                axum::http::HeaderValue::from_static(
                    "locked: too many failed checks of this CUN or these card digits within the brute_force window",
                ),
            );
            res
        }
        Ok(Err(status)) => answer(&ts, status),
        Err(e) => {
            tracing::error!(error = %e, "HIS verify failed");
            answer(&ts, StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

fn verify_inner(ts: &SistemaTs, cun_sha: &str, last8: &CardLast8) -> Result<Result<Verified, StatusCode>, StoreError> {
    let mutant = |id| ts.ctx.config().mutant(id);
    let record = match check_pair(ts, cun_sha, last8, mutant("DM-A.1a"), |r| r.esito == "POSITIVO")? {
        Check::Matched(record) => record,
        // (mapped to 401 with its detail by `verify`)
        Check::Locked => return Ok(Err(StatusCode::TOO_MANY_REQUESTS)),
        Check::Failed => return Ok(Err(StatusCode::UNAUTHORIZED)),
    };
    if already_used(ts, &record.cun)? && !mutant("DM-A.1b") {
        return Ok(Err(StatusCode::CONFLICT));
    }
    let id = ts.ids.next();
    let now = ts.ctx.clock().now();
    ts.store.with(|c| store::unlock::insert_verification(c, &id, &record.cun, &now.to_string()))?;
    Ok(Ok(Verified { id_transaction: ts.ids.next(), id_test_verification: id, date_test: record.data_esecuzione }))
}

/// `POST /his/v1/cun/invalidate` `{"cun": "<sha>", "id_test_verification": "<uuid>"}`.
pub(crate) async fn invalidate(
    State(ts): State<Arc<SistemaTs>>,
    caller: Result<Caller, Problem>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let req = match his_request(&ts, caller, &headers, &body) {
        Ok(req) => req,
        Err(refusal) => return *refusal,
    };
    let id = req.id_test_verification.as_deref().filter(|s| !s.is_empty());
    let (Some(cun_sha), Some(id)) = (cun_sha(&req), id) else { return answer(&ts, StatusCode::BAD_REQUEST) };
    let now = ts.ctx.clock().now();
    let outcome = ts.store.transaction(|tx| {
        let Some((cun, invalidated)) = store::unlock::verification(tx, id, &cun_sha)? else {
            return Ok(StatusCode::UNAUTHORIZED);
        };
        let mutant = |id| ts.ctx.config().mutant(id);
        if (invalidated || store::unlock::used(tx, &cun)?) && !mutant("DM-A.1b") {
            return Ok(StatusCode::CONFLICT);
        }
        if mutant("DM-A.1b") {
            return Ok(StatusCode::OK);
        }
        store::unlock::invalidate(tx, id, &now.to_string())?;
        if !mutant("ORD-7.3") {
            let what =
                Happened::Unlocked { modalita: "self", operatore: None, supervisore: None, requirement: "DM-A.1b" };
            store::cun::record(tx, &cun, now, &what)?;
        }
        Ok::<_, StoreError>(StatusCode::OK)
    });
    match outcome {
        Ok(StatusCode::OK) => {
            (StatusCode::OK, Json(Invalidated { response_code: 200, id_transaction: ts.ids.next() })).into_response()
        }
        Ok(status) => answer(&ts, status),
        Err(e) => {
            tracing::error!(error = %e, "HIS invalidate failed");
            answer(&ts, StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}
