//! Reading an app request the way the real backend does, in its order: content
//! type and JSON schema, then the bearer token's format, then the dummy header.
//! Anything off is 400 / 1001.

use axum::http::HeaderMap;
use ecosim_domain::codes::is_sha256_hex;
use jiff::civil::Date;
use serde_json::{Map, Value};

use crate::error::ImmuniError;

/// Longest padding accepted (`^[a-f0-9]{0,150000}$`).
pub(crate) const MAX_PADDING: usize = 150_000;
/// How far back an ISO date may go.
pub(crate) const MAX_DAYS_BACK: i64 = 180;

/// The JSON body as an object, with only `allowed` keys; `padding` checked.
pub(crate) fn json_object(
    headers: &HeaderMap,
    body: &[u8],
    allowed: &[&str],
) -> Result<Map<String, Value>, ImmuniError> {
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("missing");
    if !matches!(content_type.to_ascii_lowercase().as_str(), "application/json; charset=utf-8" | "application/json") {
        return Err(ImmuniError::schema("Content-Type must be application/json; charset=utf-8"));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| ImmuniError::schema(format!("body: {e}")))?;
    let Value::Object(map) = value else { return Err(ImmuniError::schema("body: must be a JSON object")) };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ImmuniError::schema(format!("{unknown}: unknown field")));
    }
    if let Some(p) = map.get("padding") {
        let ok = p.as_str().is_some_and(|s| {
            s.len() <= MAX_PADDING && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if !ok {
            return Err(ImmuniError::schema("padding: must match ^[a-f0-9]{0,150000}$"));
        }
    }
    Ok(map)
}

/// The bearer token: 64 hex characters (either case), returned lower-case.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<String, ImmuniError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_ascii_lowercase)
        .filter(|t| is_sha256_hex(t))
        .ok_or_else(|| ImmuniError::schema("Authorization: must be Bearer <64 hex characters>"))?;
    Ok(token)
}

/// `Immuni-Dummy-Data`: 0 or 1 (required).
pub(crate) fn dummy(headers: &HeaderMap) -> Result<bool, ImmuniError> {
    match headers.get("immuni-dummy-data").and_then(|v| v.to_str().ok()).map(str::trim) {
        Some("0") => Ok(false),
        Some("1") => Ok(true),
        _ => Err(ImmuniError::schema("Immuni-Dummy-Data: must be 0 or 1")),
    }
}

/// `Immuni-Client-Clock`: an integer (Unix seconds), required on upload.
pub(crate) fn client_clock(headers: &HeaderMap) -> Result<i64, ImmuniError> {
    headers
        .get("immuni-client-clock")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or_else(|| ImmuniError::schema("Immuni-Client-Clock: must be an integer"))
}

/// An ISO date `YYYY-MM-DD`, not after `today`, at most 180 days before it.
pub(crate) fn iso_date(field: &str, value: &Value, today: Date) -> Result<Date, ImmuniError> {
    let text = value
        .as_str()
        .filter(|s| s.len() == 10)
        .ok_or_else(|| ImmuniError::schema(format!("{field}: must be YYYY-MM-DD")))?;
    let date: Date = text.parse().map_err(|_| ImmuniError::schema(format!("{field}: must be YYYY-MM-DD")))?;
    if date > today {
        return Err(ImmuniError::schema(format!("{field}: {date} is in the future")));
    }
    let oldest = today.checked_sub(jiff::Span::new().days(MAX_DAYS_BACK)).unwrap_or(today);
    if date < oldest {
        return Err(ImmuniError::schema(format!("{field}: {date} is too far back in time")));
    }
    Ok(date)
}

/// The last 8 digits of the health card.
pub(crate) fn last_his_number(value: Option<&Value>) -> Result<String, ImmuniError> {
    value
        .and_then(Value::as_str)
        .filter(|s| s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
        .ok_or_else(|| ImmuniError::schema("last_his_number: must be 8 digits"))
}
