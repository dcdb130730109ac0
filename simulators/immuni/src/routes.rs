//! Immuni's endpoints: the OTP service (`/v1/otp`, called by Sistema TS) and the
//! exposure-ingestion service the app calls (`/v1/ingestion/*`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use ecosim_core::accounts::{Caller, Role};
use ecosim_core::store::CachedSql;
use ecosim_domain::codes::{Otp, is_sha256_hex, sha256_hex};
use reqwest::Method;
use serde_json::{Value, json};

use crate::error::{ImmuniError, no_content};
use crate::request::{bearer, client_clock, dummy, iso_date, json_object, last_his_number};
use crate::state::{Authorised, Immuni, OtpData};
use crate::tek::{validate_summaries, validate_teks};

type Answer = Result<Response, ImmuniError>;

/// `POST /v1/otp`: Sistema TS authorises an OTP (10 characters, or the SHA-256 of a
/// CUN with its `id_test_verification`).
pub(crate) async fn authorise_otp(
    State(im): State<Arc<Immuni>>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Response> {
    use axum::response::IntoResponse;
    caller.require_role(&[Role::Service]).map_err(IntoResponse::into_response)?;
    otp(&im, &headers, &body).await.map_err(IntoResponse::into_response)
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
        Authorised::New => Ok(no_content()),
        Authorised::Collision => Err(ImmuniError::otp_collision()),
    }
}

/// `POST /v1/ingestion/check-otp`.
pub(crate) async fn check_otp(State(im): State<Arc<Immuni>>, headers: HeaderMap, body: Bytes) -> Answer {
    json_object(&headers, &body, &["padding"])?;
    let token = bearer(&headers)?;
    im.slow_down().await;
    if dummy(&headers)? {
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
    let teks = validate_teks(map.get("teks"), im.ctx.clock().now().as_second())?;
    let summaries = validate_summaries(map.get("exposure_detection_summaries"))?;
    let token = bearer(&headers)?;
    if dummy(&headers)? {
        im.slow_down().await;
        return Ok(no_content());
    }
    let otp = im.lookup(&token, true)?.ok_or_else(ImmuniError::unauthorized_otp)?;
    let now = im.ctx.clock().now();
    im.store.with(|c| {
        c.exec(
            "INSERT INTO uploads (at, province, countries_of_interest, teks, summaries, symptoms_started_on, from_cun)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                now.to_string(),
                province,
                serde_json::to_string(&countries).unwrap_or_default(),
                serde_json::to_string(&teks).unwrap_or_default(),
                summaries as i64,
                otp.symptoms_started_on.to_string(),
                otp.id_test_verification.is_some(),
            ],
        )
    })?;
    if let Some(id) = otp.id_test_verification {
        let res = im
            .his
            .request(Method::POST, "/his/v1/cun/invalidate")
            .json(&json!({"cun": token, "id_test_verification": id}))
            .send()
            .await;
        his_status(res)?;
    }
    Ok(no_content())
}

/// Maps an HIS answer the way Immuni does: 400 -> 1001, 401 -> 1101, 409 -> 1400,
/// anything else not 2xx -> 1000.
fn his_status(res: reqwest::Result<reqwest::Response>) -> Result<reqwest::Response, ImmuniError> {
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
        .json(&json!({"cun": token, "last_his_number": last8}))
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
    let symptoms_started_on = match symptoms {
        Some(d) if d <= date_test => d,
        _ => date_test,
    };
    // An OTP already authorised for this CUN is not an error here (as in Immuni).
    im.authorise(&token, &OtpData { symptoms_started_on, id_test_verification: Some(id.to_owned()) })?;
    Ok(no_content())
}

/// `POST /v1/ingestion/get-dgc`: the app retrieves a green certificate; Immuni asks
/// PN-DGC with the code's hash (the bearer), the card's last 8 digits and its expiry.
pub(crate) async fn get_dgc(State(im): State<Arc<Immuni>>, headers: HeaderMap, body: Bytes) -> Answer {
    use axum::response::IntoResponse;
    let map = json_object(&headers, &body, &["token_type", "last_his_number", "his_expiring_date", "padding"])?;
    let token_type = map
        .get("token_type")
        .and_then(Value::as_str)
        .filter(|t| ["authcode", "cun", "nrfe", "nucg", "cuev"].contains(t))
        .ok_or_else(|| ImmuniError::schema("token_type: one of authcode, cun, nrfe, nucg, cuev"))?
        .to_owned();
    let last8 = last_his_number(map.get("last_his_number"))?;
    let expiry: jiff::civil::Date = map
        .get("his_expiring_date")
        .and_then(Value::as_str)
        .filter(|d| d.len() == 10)
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| ImmuniError::schema("his_expiring_date: must be YYYY-MM-DD"))?;
    let token = bearer(&headers)?;
    im.slow_down().await;
    if dummy(&headers)? {
        im.slow_down().await;
        return Ok(no_store(axum::http::StatusCode::OK.into_response()));
    }
    let hash_param = if token_type == "authcode" { "authCodeSHA256" } else { "sourceDocumentIDSHA256" };
    let res = im
        .pn_dgc
        .request(Method::GET, "/v1/dgc")
        .query(&[
            ("mode", "ONLY_QRCODE"),
            ("healthInsuranceCardNumber", last8.as_str()),
            ("healthInsuranceCardDate", &expiry.to_string()),
            (hash_param, token.as_str()),
        ])
        .send()
        .await
        .map_err(|e| ImmuniError::unknown().with_detail(format!("PN-DGC unreachable: {e}")))?;
    match res.status().as_u16() {
        200 => {
            let v: Value =
                res.json().await.map_err(|_| ImmuniError::unknown().with_detail("PN-DGC answered no JSON"))?;
            let data = &v["data"];
            let qrcode = data["qrcode"]
                .as_str()
                .ok_or_else(|| ImmuniError::unknown().with_detail("PN-DGC answered no qrcode"))?;
            let mut out = json!({"qrcode": qrcode});
            if let Some(flag) = data.get("fglTipoDgc").filter(|f| !f.is_null()) {
                out["fglTipoDgc"] = flag.clone();
            }
            Ok(no_store(Json(out).into_response()))
        }
        404 => Err(ImmuniError::no_dgc()),
        other => Err(ImmuniError::unknown().with_detail(format!("PN-DGC answered {other}"))),
    }
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    res
}

/// `GET /_admin/uploads`: what was uploaded, for assertions.
pub(crate) async fn uploads(State(im): State<Arc<Immuni>>) -> Result<Json<Value>, ImmuniError> {
    let rows = im.store.with(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT at, province, countries_of_interest, teks, summaries, symptoms_started_on, from_cun FROM uploads ORDER BY id",
        )?;
        stmt.query_map([], |r| {
            let teks: String = r.get(3)?;
            let countries: String = r.get(2)?;
            Ok(json!({
                "at": r.get::<_, String>(0)?,
                "province": r.get::<_, String>(1)?,
                "countries_of_interest": serde_json::from_str::<Value>(&countries).unwrap_or(Value::Null),
                "teks": serde_json::from_str::<Value>(&teks).unwrap_or(Value::Null),
                "exposure_detection_summaries": r.get::<_, i64>(4)?,
                "symptoms_started_on": r.get::<_, String>(5)?,
                "from_cun": r.get::<_, bool>(6)?,
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(Json(json!({"uploads": rows})))
}
