//! `POST /v1/otp`: the OTP service Sistema TS calls.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use ecosim_core::accounts::{Authorised as Caller, roles};
use ecosim_domain::codes::{Otp, is_sha256_hex, sha256_hex};
use serde_json::Value;

use super::Answer;
use crate::domain::request::{iso_date, json_object};
use crate::error::{ImmuniError, no_content};
use crate::state::Immuni;
use crate::store::{Authorised, OtpData};

/// `POST /v1/otp`: Sistema TS authorises an OTP (10 characters, or the SHA-256 of a
/// CUN with its `id_test_verification`).
pub(crate) async fn authorise_otp(
    State(im): State<Arc<Immuni>>,
    _caller: Caller<roles::SistemaTs>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    otp(&im, &headers, &body).await
}

async fn otp(im: &Immuni, headers: &HeaderMap, body: &[u8]) -> Answer {
    let map = json_object(headers, body, &["otp", "symptoms_started_on", "id_test_verification"])?;
    let otp = map.get("otp").and_then(Value::as_str).ok_or_else(|| ImmuniError::schema("otp: required"))?;
    let symptoms = iso_date(
        "symptoms_started_on",
        map.get("symptoms_started_on").unwrap_or(&Value::Null),
        im.ctx.clock().today(),
    )?;
    let id_test_verification = match map.get("id_test_verification") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => return Err(ImmuniError::schema("id_test_verification: must be a string")),
    };
    let key = if is_sha256_hex(&otp.to_ascii_lowercase()) {
        if id_test_verification.is_none() {
            return Err(ImmuniError::schema("id_test_verification: required with a hashed OTP"));
        }
        otp.to_ascii_lowercase()
    } else {
        // The real validator takes the OTP as typed: no trimming, no case folding.
        if otp.len() != 10 || otp != otp.to_ascii_uppercase() || Otp::parse(otp).is_err() {
            return Err(ImmuniError::schema("otp: invalid OTP code (length, alphabet or check character)"));
        }
        sha256_hex(otp)
    };
    match im.authorise(&key, &OtpData { symptoms_started_on: symptoms, id_test_verification })? {
        Authorised::Collision if !im.ctx.config().mutant("IMM-OTP") => Err(ImmuniError::otp_collision()),
        _ => Ok(no_content()),
    }
}
