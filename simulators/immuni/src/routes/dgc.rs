//! `POST /v1/ingestion/get-dgc`: a green certificate, from PN-DGC.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use ecosim_core::client::Method;
use serde_json::Value;

use super::Answer;
use crate::domain::request::{bearer, dummy, json_object, last_his_number};
use crate::error::ImmuniError;
use crate::state::Immuni;

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
        // Like the other dummy checks: now and then a 401, so dummy traffic looks real.
        return if im.dummy_fails() {
            Err(ImmuniError::unauthorized_otp())
        } else {
            Ok(no_store(axum::http::StatusCode::OK.into_response()))
        };
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
            let v: PnDgcAnswer =
                res.json().await.map_err(|_| ImmuniError::unknown().with_detail("PN-DGC answered no qrcode"))?;
            Ok(no_store(Json(Certificate { qrcode: v.data.qrcode, fgl: v.data.fgl }).into_response()))
        }
        404 => Err(ImmuniError::no_dgc()),
        other => Err(ImmuniError::unknown().with_detail(format!("PN-DGC answered {other}"))),
    }
}

/// What PN-DGC's `GET /v1/dgc` answers (`{"data": {...}}`), as far as the app needs it.
#[derive(Debug, serde::Deserialize)]
struct PnDgcAnswer {
    data: Certificate,
}

/// A certificate as get-dgc answers it (and as PN-DGC gives it).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Certificate {
    qrcode: String,
    #[serde(rename = "fglTipoDgc", default, skip_serializing_if = "Option::is_none")]
    fgl: Option<String>,
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    res
}
