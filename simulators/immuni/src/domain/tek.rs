//! Temporary Exposure Keys and exposure summaries as the app uploads them, checked as
//! the real exposure-ingestion service checks them (IMM-UPLOAD).
//!
//! Two levels, as in the real backend:
//! - the **schema** ([`parse_teks`]): a list of keys, each the base64 of 16 bytes, a
//!   rolling start number >= 0 and an optional rolling period 0-144. Anything off
//!   is 400/1001. Two keys with the same rolling start number are refused here too:
//!   the real suite's `test_upload_too_many_keys` expects 400 for such a batch.
//! - the **batch consistency** ([`consistency`]): every rolling period 144, at most
//!   `MAX_KEYS_PER_UPLOAD` keys (30), and every start number on one grid of days
//!   from the earliest, `(n - min) % 144 == 0` within that many days. Start numbers
//!   need not fall on midnight (the real suite sends `int((now - i days) / 600)`)
//!   and days may be missing (Bluetooth off for a day). The real backend answers an
//!   inconsistent batch 204 and drops its keys; the simulator does too, and says so
//!   ([`crate::routes`]), unless `immuni.strict_teks` asks for a 400.

use base64::Engine;
use serde_json::Value;

use crate::error::ImmuniError;

/// Ten-minute intervals in a day: the rolling period of a day's key, and the grid of
/// start numbers.
pub const INTERVALS_PER_DAY: i64 = 144;
/// Most keys a request may carry at all (`MAX_KEYS_PER_BATCH`): beyond it, 400.
pub const MAX_KEYS_PER_BATCH: usize = 10_000;

/// A key that passed the schema.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tek {
    /// Base64 of the 16-byte key.
    pub key_data: String,
    /// Start, in 10-minute intervals since the Unix epoch.
    pub rolling_start_number: i64,
    /// Validity, in 10-minute intervals (absent when the app sent none).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rolling_period: Option<i64>,
}

/// Reads the `teks` list: the schema level (400/1001 with the reason).
pub fn parse_teks(value: Option<&Value>) -> Result<Vec<Tek>, ImmuniError> {
    let list = value.and_then(Value::as_array).ok_or_else(|| ImmuniError::schema("teks: must be a list"))?;
    if list.len() >= MAX_KEYS_PER_BATCH {
        return Err(ImmuniError::schema(format!("teks: {} keys, fewer than {MAX_KEYS_PER_BATCH} allowed", list.len())));
    }
    let mut teks: Vec<Tek> = Vec::with_capacity(list.len());
    let mut starts = std::collections::HashSet::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let bad = |what: &str| ImmuniError::schema(format!("teks[{i}].{what}"));
        let object = item.as_object().ok_or_else(|| bad("must be an object"))?;
        if let Some(unknown) =
            object.keys().find(|k| !["key_data", "rolling_start_number", "rolling_period"].contains(&k.as_str()))
        {
            return Err(bad(&format!("{unknown}: unknown field")));
        }
        let key_data =
            object.get("key_data").and_then(Value::as_str).ok_or_else(|| bad("key_data: required string"))?;
        let decoded =
            base64::engine::general_purpose::STANDARD.decode(key_data).map_err(|_| bad("key_data: not base64"))?;
        if decoded.len() != 16 {
            return Err(bad(&format!("key_data: {} bytes, must be 16", decoded.len())));
        }
        let rsn = object
            .get("rolling_start_number")
            .and_then(Value::as_i64)
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad("rolling_start_number: required integer >= 0"))?;
        let period = match object.get("rolling_period") {
            None => None,
            Some(v) => Some(
                v.as_i64()
                    .filter(|p| (0..=INTERVALS_PER_DAY).contains(p))
                    .ok_or_else(|| bad("rolling_period: an integer 0-144"))?,
            ),
        };
        if !starts.insert(rsn) {
            return Err(bad("rolling_start_number: two keys share it"));
        }
        teks.push(Tek { key_data: key_data.to_owned(), rolling_start_number: rsn, rolling_period: period });
    }
    Ok(teks)
}

/// Whether the keys make one device's batch (see the module doc); `Err` says why not.
pub fn consistency(teks: &[Tek], max_keys: usize) -> Result<(), String> {
    if let Some(i) = teks.iter().position(|t| t.rolling_period != Some(INTERVALS_PER_DAY)) {
        return Err(format!("teks[{i}].rolling_period is not 144"));
    }
    if teks.len() > max_keys {
        return Err(format!("{} keys, at most {max_keys} (MAX_KEYS_PER_UPLOAD)", teks.len()));
    }
    let Some(min) = teks.iter().map(|t| t.rolling_start_number).min() else { return Ok(()) };
    let span = i64::try_from(max_keys).unwrap_or(i64::MAX);
    if let Some(i) = teks.iter().position(|t| {
        let d = t.rolling_start_number - min;
        d % INTERVALS_PER_DAY != 0 || d / INTERVALS_PER_DAY >= span
    }) {
        return Err(format!(
            "teks[{i}].rolling_start_number is not a whole number of days (144) after the earliest key, within {max_keys} days"
        ));
    }
    Ok(())
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
            if s.get(field).and_then(Value::as_i64).is_none_or(|n| n < 0) {
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
    use proptest::prelude::*;
    use serde_json::json;

    const NOW: i64 = 1_633_068_000; // 2021-10-01T06:00:00Z

    fn key(n: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([n; 16])
    }

    /// The real suite's keys: `int((now - i days) / 600)`, not on midnight.
    fn suite_keys(n: i64) -> Vec<Tek> {
        (0..n)
            .map(|i| Tek {
                key_data: key(i as u8),
                rolling_start_number: (NOW - i * 86_400) / 600,
                rolling_period: Some(144),
            })
            .collect()
    }

    #[test]
    fn the_real_suites_keys_are_consistent_even_with_a_day_missing() {
        let mut teks = suite_keys(14);
        assert_eq!(consistency(&teks, 30), Ok(()));
        teks.remove(5);
        assert_eq!(consistency(&teks, 30), Ok(()));
        assert_eq!(consistency(&suite_keys(30), 30), Ok(()));
    }

    #[test]
    fn inconsistent_batches_say_why() {
        let mut shifted = suite_keys(14);
        shifted[1].rolling_start_number += 10;
        assert!(consistency(&shifted, 30).unwrap_err().contains("teks[1].rolling_start_number"));
        let mut period = suite_keys(3);
        period[2].rolling_period = None;
        assert!(consistency(&period, 30).unwrap_err().contains("teks[2].rolling_period"));
        assert!(consistency(&suite_keys(31), 30).unwrap_err().contains("31 keys"));
        let mut far = suite_keys(2);
        far[0].rolling_start_number = far[1].rolling_start_number + 144 * 30;
        assert!(consistency(&far, 30).is_err());
    }

    #[test]
    fn the_schema_refuses_what_the_real_schema_refuses() {
        let cases = [
            (json!([{"key_data": "AAAA", "rolling_start_number": 1}]), "16"),
            (json!([{"key_data": "%%%", "rolling_start_number": 1}]), "base64"),
            (json!([{"key_data": key(1), "rolling_start_number": -1}]), ">= 0"),
            (json!([{"key_data": key(1), "rolling_start_number": 1, "rolling_period": 145}]), "0-144"),
            (json!([{"key_data": key(1), "rolling_start_number": 1, "x": 1}]), "unknown"),
            (
                json!([{"key_data": key(1), "rolling_start_number": 7}, {"key_data": key(2), "rolling_start_number": 7}]),
                "share",
            ),
            (json!(null), "list"),
        ];
        for (teks, why) in cases {
            let err = parse_teks(Some(&teks)).expect_err(why);
            let res = axum::response::IntoResponse::into_response(err);
            let detail = res.headers()["x-ecosim-detail"].to_str().expect("ascii").to_owned();
            assert!(detail.contains(why), "{detail}");
        }
        let ok = json!([{"key_data": key(1), "rolling_start_number": 12345}]);
        assert_eq!(parse_teks(Some(&ok)).map(|t| t[0].rolling_period), Ok(None));
    }

    proptest! {
        /// Any day-spaced batch within the limit is consistent, whatever its
        /// offset from midnight and whichever days are missing; moving one key by
        /// less than a day makes it inconsistent.
        #[test]
        fn day_grids_pass_and_off_grid_keys_fail(
            start in 0i64..10_000_000, days in proptest::collection::btree_set(0i64..30, 1..30), shift in 1i64..144,
        ) {
            let teks: Vec<Tek> = days.iter().map(|d| Tek {
                key_data: key(*d as u8), rolling_start_number: start + d * 144, rolling_period: Some(144),
            }).collect();
            prop_assert_eq!(consistency(&teks, 30), Ok(()));
            if teks.len() > 1 {
                let mut moved = teks.clone();
                let last = moved.len() - 1;
                moved[last].rolling_start_number += shift;
                prop_assert!(consistency(&moved, 30).is_err());
            }
        }
    }
}
