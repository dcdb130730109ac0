//! `/v1/ingestion/check-otp`, `upload` and `check-cun`: the exposure-ingestion
//! service the app calls.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use ecosim_core::client::Method;
use serde_json::Value;

use super::Answer;

/// What the HIS's `POST /his/v1/cun/verify` takes.
#[derive(Debug, serde::Serialize)]
struct HisVerify<'a> {
    cun: &'a str,
    last_his_number: &'a str,
}

/// What the HIS's `POST /his/v1/cun/invalidate` takes.
#[derive(Debug, serde::Serialize)]
struct HisInvalidate<'a> {
    cun: &'a str,
    id_test_verification: &'a str,
}
use crate::domain::request::{bearer, client_clock, dummy, iso_date, json_object, last_his_number};
use crate::domain::tek::{consistency, parse_teks, validate_summaries};
use crate::error::{ImmuniError, no_content};
use crate::state::Immuni;
use crate::store::{self, Dropped, OtpData};

/// `POST /v1/ingestion/check-otp`.
pub(crate) async fn check_otp(State(im): State<Arc<Immuni>>, headers: HeaderMap, body: Bytes) -> Answer {
    json_object(&headers, &body, &["padding"])?;
    let token = bearer(&headers)?;
    im.slow_down().await;
    if dummy(&headers)? && !im.ctx.config().mutant("IMM-DUMMY") {
        im.slow_down().await;
        return if im.dummy_fails() { Err(ImmuniError::unauthorized_otp()) } else { Ok(no_content()) };
    }
    match im.lookup(&token, false)? {
        Some(_) => Ok(no_content()),
        None => Err(ImmuniError::unauthorized_otp()),
    }
}

/// `POST /v1/ingestion/upload`: consumes the OTP; invalidates the CUN it came from.
pub(crate) async fn upload(State(im): State<Arc<Immuni>>, headers: HeaderMap, body: Bytes) -> Answer {
    client_clock(&headers)?;
    let map = json_object(
        &headers,
        &body,
        &["province", "countries_of_interest", "teks", "exposure_detection_summaries", "padding"],
    )?;
    let province = map
        .get("province")
        .and_then(Value::as_str)
        .filter(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_uppercase()))
        .ok_or_else(|| ImmuniError::schema("province: must match ^[A-Z]{2}$"))?
        .to_owned();
    let countries: Vec<String> = match map.get("countries_of_interest") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) if list.len() <= 27 => list
            .iter()
            .map(|c| {
                c.as_str().filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())).map(str::to_owned)
            })
            .collect::<Option<_>>()
            .ok_or_else(|| ImmuniError::schema("countries_of_interest: two-letter codes"))?,
        Some(_) => return Err(ImmuniError::schema("countries_of_interest: a list of at most 27 codes")),
    };
    let mut teks = parse_teks(map.get("teks"))?;
    let summaries = validate_summaries(map.get("exposure_detection_summaries"))?;
    let token = bearer(&headers)?;
    if dummy(&headers)? {
        im.slow_down().await;
        return Ok(no_content());
    }
    let settings = &im.ctx.config().immuni;
    // IMM-UPLOAD: an inconsistent batch is dropped and answered 204 (the real
    // backend), or refused (strict_teks).
    let checked =
        if im.ctx.config().mutant("IMM-UPLOAD") { Ok(()) } else { consistency(&teks, settings.max_keys_per_upload) };
    let dropped = match checked {
        Ok(()) => None,
        Err(reason) if settings.strict_teks => {
            return Err(ImmuniError::schema(format!("teks: {reason} (immuni.strict_teks)")));
        }
        Err(reason) => Some(Dropped { count: std::mem::take(&mut teks).len(), reason }),
    };
    let otp = im.lookup(&token, true)?.ok_or_else(ImmuniError::unauthorized_otp)?;
    let now = im.ctx.clock().now();
    let upload = store::Upload {
        at: now.to_string(),
        province: province.to_owned(),
        countries_of_interest: countries,
        teks,
        exposure_detection_summaries: summaries as i64,
        symptoms_started_on: otp.symptoms_started_on.to_string(),
        from_cun: otp.id_test_verification.is_some(),
        teks_dropped: dropped.clone(),
    };
    // Exposure keys are kept 14 days (the real backend's retention), uploads with them.
    let keep_from = now.checked_sub(im.ctx.config().retention.uploads.0).unwrap_or(now).as_millisecond();
    im.store.with(|c| store::insert_upload(c, &upload, now.as_millisecond(), keep_from))?;
    if let Some(id) = otp.id_test_verification {
        let res = im
            .his
            .request(Method::POST, "/his/v1/cun/invalidate")
            .json(&HisInvalidate { cun: &token, id_test_verification: &id })
            .send()
            .await;
        his_status(res)?;
    }
    let mut answer = no_content();
    if let Some(d) = dropped {
        answer.extensions_mut().insert(ecosim_core::journal::Note(format!(
            "IMM-UPLOAD: {} keys dropped, answered 204 as the real backend: {}",
            d.count, d.reason
        )));
    }
    Ok(answer)
}

/// Maps an HIS answer the way Immuni does: 400 -> 1001, 401 -> 1101, 409 -> 1400,
/// anything else not 2xx -> 1000.
fn his_status(
    res: Result<ecosim_core::client::Response, ecosim_core::client::ClientError>,
) -> Result<ecosim_core::client::Response, ImmuniError> {
    let res = res.map_err(|e| ImmuniError::unknown().with_detail(format!("HIS unreachable: {e}")))?;
    match res.status().as_u16() {
        200..=299 => Ok(res),
        400 => Err(ImmuniError::schema("HIS answered 400")),
        401 => Err(ImmuniError::unauthorized_otp()),
        409 => Err(ImmuniError::otp_collision()),
        other => Err(ImmuniError::unknown().with_detail(format!("HIS answered {other}"))),
    }
}

/// `POST /v1/ingestion/check-cun`: the app unlocks itself with CUN + card digits.
pub(crate) async fn check_cun(State(im): State<Arc<Immuni>>, headers: HeaderMap, body: Bytes) -> Answer {
    let map = json_object(&headers, &body, &["last_his_number", "symptoms_started_on", "padding"])?;
    let last8 = last_his_number(map.get("last_his_number"))?;
    let symptoms = match map.get("symptoms_started_on") {
        None | Some(Value::Null) => None,
        Some(v) => Some(iso_date("symptoms_started_on", v, im.ctx.clock().today())?),
    };
    let token = bearer(&headers)?;
    im.slow_down().await;
    if dummy(&headers)? {
        im.slow_down().await;
        return if im.dummy_fails() { Err(ImmuniError::unauthorized_otp()) } else { Ok(no_content()) };
    }
    let res = im
        .his
        .request(Method::POST, "/his/v1/cun/verify")
        .json(&HisVerify { cun: &token, last_his_number: &last8 })
        .send()
        .await;
    let verified: Value = his_status(res)?.json().await.map_err(|_| ImmuniError::unknown())?;
    let id = verified["id_test_verification"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(ImmuniError::unauthorized_otp)?;
    let date_test: jiff::civil::Date =
        verified["date_test"].as_str().and_then(|d| d.parse().ok()).ok_or_else(ImmuniError::unknown)?;
    // DM-A.1c: no symptoms, or symptoms later than the swab: the swab date.
    let fallback = if im.ctx.config().mutant("DM-A.1c") { im.ctx.clock().today() } else { date_test };
    let symptoms_started_on = match symptoms {
        Some(d) if d <= date_test => d,
        _ => fallback,
    };
    // An OTP already authorised for this CUN is not an error here (as in Immuni).
    im.authorise(&token, &OtpData { symptoms_started_on, id_test_verification: Some(id.to_owned()) })?;
    Ok(no_content())
}
