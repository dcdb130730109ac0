//! Temporary Exposure Keys and exposure summaries as the app uploads them.
//!
//! The real backend drops an inconsistent TEK batch silently (and answers 204); the
//! simulator refuses it with 400 / 1001 and says why (IMM-UPLOAD), so a client
//! under test learns its keys are wrong.

use base64::Engine;
use serde_json::Value;

use crate::error::ImmuniError;

/// Most keys in one upload (14 days).
pub const MAX_TEKS: usize = 14;
/// Ten-minute intervals in a day: rolling periods and the start-number grid.
pub const INTERVALS_PER_DAY: i64 = 144;

/// A validated key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Tek {
    /// Base64 of the 16-byte key.
    pub key_data: String,
    /// Start, in 10-minute intervals since the Unix epoch.
    pub rolling_start_number: i64,
    /// Validity, in 10-minute intervals.
    pub rolling_period: i64,
}

fn int(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64)
}

/// Validates the `teks` list against the current (virtual) time.
pub fn validate_teks(value: Option<&Value>, now_unix: i64) -> Result<Vec<Tek>, ImmuniError> {
    let list = value.and_then(Value::as_array).ok_or_else(|| ImmuniError::schema("teks: must be a list"))?;
    if list.len() > MAX_TEKS {
        return Err(ImmuniError::schema(format!("teks: {} keys, at most {MAX_TEKS}", list.len())));
    }
    let now_interval = now_unix.div_euclid(600);
    let mut teks = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let bad = |what: &str| ImmuniError::schema(format!("teks[{i}].{what}"));
        let key_data = item.get("key_data").and_then(Value::as_str).ok_or_else(|| bad("key_data: required string"))?;
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(key_data).map_err(|_| bad("key_data: not base64"))?;
        if decoded.len() != 16 {
            return Err(bad(&format!("key_data: {} bytes, must be 16", decoded.len())));
        }
        let rsn = int(item.get("rolling_start_number"))
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad("rolling_start_number: required integer >= 0"))?;
        if rsn % INTERVALS_PER_DAY != 0 {
            return Err(bad("rolling_start_number: must be aligned to 144 (a day)"));
        }
        if rsn > now_interval {
            return Err(bad("rolling_start_number: in the future"));
        }
        let period = match item.get("rolling_period") {
            None => INTERVALS_PER_DAY,
            Some(v) => v
                .as_i64()
                .filter(|p| (1..=INTERVALS_PER_DAY).contains(p))
                .ok_or_else(|| bad("rolling_period: must be 1-144"))?,
        };
        if let Some(unknown) = item.as_object().and_then(|o| {
            o.keys().find(|k| !["key_data", "rolling_start_number", "rolling_period"].contains(&k.as_str()))
        }) {
            return Err(bad(&format!("{unknown}: unknown field")));
        }
        teks.push(Tek { key_data: key_data.to_owned(), rolling_start_number: rsn, rolling_period: period });
    }
    for (i, a) in teks.iter().enumerate() {
        if teks[..i].iter().any(|b| b.rolling_start_number == a.rolling_start_number) {
            return Err(ImmuniError::schema(format!("teks[{i}].rolling_start_number: duplicate")));
        }
        if teks[..i].iter().any(|b| b.key_data == a.key_data) {
            return Err(ImmuniError::schema(format!("teks[{i}].key_data: duplicate")));
        }
    }
    Ok(teks)
}

/// Checks the `exposure_detection_summaries` list (shape and non-negative counts).
pub fn validate_summaries(value: Option<&Value>) -> Result<usize, ImmuniError> {
    let list = value
        .and_then(Value::as_array)
        .ok_or_else(|| ImmuniError::schema("exposure_detection_summaries: must be a list"))?;
    for (i, s) in list.iter().enumerate() {
        let bad = |what: &str| ImmuniError::schema(format!("exposure_detection_summaries[{i}].{what}"));
        if s.get("date").and_then(Value::as_str).is_none_or(|d| d.parse::<jiff::civil::Date>().is_err()) {
            return Err(bad("date: must be YYYY-MM-DD"));
        }
        for field in ["matched_key_count", "days_since_last_exposure", "maximum_risk_score"] {
            if int(s.get(field)).is_none_or(|n| n < 0) {
                return Err(bad(&format!("{field}: required integer >= 0")));
            }
        }
        let durations = s.get("attenuation_durations").and_then(Value::as_array);
        if !durations
            .is_some_and(|d| (3..=4).contains(&d.len()) && d.iter().all(|x| x.as_i64().is_some_and(|n| n >= 0)))
        {
            return Err(bad("attenuation_durations: 3 or 4 integers >= 0"));
        }
        if !s.get("exposure_info").is_none_or(Value::is_array) {
            return Err(bad("exposure_info: must be a list"));
        }
    }
    Ok(list.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_633_068_000; // 2021-10-01T06:00:00Z

    fn key(n: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([n; 16])
    }

    fn day(d: i64) -> i64 {
        (NOW / 600 / 144 - d) * 144
    }

    #[test]
    fn fourteen_aligned_distinct_keys_pass() {
        let teks: Vec<Value> = (0..14)
            .map(|d| json!({"key_data": key(d as u8), "rolling_start_number": day(d), "rolling_period": 144}))
            .collect();
        assert_eq!(validate_teks(Some(&json!(teks)), NOW).map(|t| t.len()), Ok(14));
    }

    #[test]
    fn bad_batches_are_refused_with_the_reason() {
        let cases = [
            (json!([{"key_data": key(1), "rolling_start_number": day(0) + 1}]), "aligned"),
            (json!([{"key_data": "AAAA", "rolling_start_number": day(0)}]), "16"),
            (json!([{"key_data": key(1), "rolling_start_number": day(0), "rolling_period": 145}]), "1-144"),
            (json!([{"key_data": key(1), "rolling_start_number": day(-2)}]), "future"),
            (
                json!([{"key_data": key(1), "rolling_start_number": day(0)}, {"key_data": key(2), "rolling_start_number": day(0)}]),
                "duplicate",
            ),
            (
                json!([{"key_data": key(1), "rolling_start_number": day(0)}, {"key_data": key(1), "rolling_start_number": day(1)}]),
                "duplicate",
            ),
        ];
        for (teks, why) in cases {
            let err = validate_teks(Some(&teks), NOW).expect_err(why);
            let res = axum::response::IntoResponse::into_response(err);
            let detail = res.headers()["x-ecosim-detail"].to_str().expect("ascii").to_owned();
            assert!(detail.contains(why), "{detail}");
        }
        let fifteen: Vec<Value> =
            (0..15).map(|d| json!({"key_data": key(d as u8), "rolling_start_number": day(d)})).collect();
        assert!(validate_teks(Some(&json!(fifteen)), NOW).is_err());
    }
}
