//! Retrieval as dgc.gov.it and the IO app do it, and the signing certificate
//! (DGC-RETRIEVE, DGC-HC1).

use ecosim_domain::validation::AllSome;
use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use base64::Engine as _;
use ecosim_core::problem::{ApiJson, Fields, Problem};
use ecosim_domain::codes::is_sha256_hex;
use serde::Serialize;

use crate::domain::{dcc, signer};
use crate::state::PnDgc;
use crate::store::{self, Found, Key};

/// `{"data": ...}`, as the real services wrap their answers.
#[derive(Debug, Serialize)]
pub(crate) struct Data<T> {
    data: T,
}

/// A certificate as `GET /v1/dgc` gives it.
#[derive(Debug, Serialize)]
pub(crate) struct Certificate {
    qrcode: String,
    hc1: String,
    #[serde(rename = "fglTipoDgc", skip_serializing_if = "Option::is_none")]
    fgl: Option<String>,
}

/// A certificate as the IO app's call gives it.
#[derive(Debug, Serialize)]
pub(crate) struct IoCertificate {
    #[serde(rename = "qrcodeB64")]
    qrcode_b64: String,
    hc1: String,
    #[serde(rename = "fglTipoDgc", skip_serializing_if = "Option::is_none")]
    fgl: Option<String>,
    uvci: String,
}

/// The signing chain: the DSC (with its `kid`) and the CSCA that issued it.
#[derive(Debug, Serialize)]
pub(crate) struct SignerView {
    kid: String,
    kid_hex: String,
    /// The document signer certificate (DSC), PEM.
    certificate: String,
    subject: &'static str,
    /// The country signing CA (CSCA) that issued the DSC, PEM.
    csca: String,
    csca_subject: &'static str,
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

/// The QR code of a certificate, as a base64 PNG.
fn qrcode_b64(found: &Found) -> Result<String, Problem> {
    let png = dcc::qr_png(&found.hc1).map_err(Problem::internal)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(png))
}

/// `GET /v1/dgc?mode=ONLY_QRCODE&healthInsuranceCardNumber=&healthInsuranceCardDate=&authCodeSHA256=|sourceDocumentIDSHA256=`:
/// the certificate for a code and the health card's last 8 digits and expiry; any
/// mismatch is 404 (DGC-RETRIEVE). Open to anyone, as dgc.gov.it.
pub(crate) async fn retrieve(
    State(pn): State<Arc<PnDgc>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Data<Certificate>>, Problem> {
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
    let by = match (auth, source) {
        (Some(a), None) => Some((Key::Authcode, a)),
        (None, Some(s)) => Some((Key::Source, s)),
        _ => None,
    };
    let (last8, expiry, (key, hash)) = f.into_result((last8, expiry, by).all_some())?;
    let found = if pn.ctx.config().mutant("DGC-RETRIEVE") {
        pn.store.with(|c| store::find_ignoring_expiry(c, key, &hash, &last8))?
    } else {
        pn.store.with(|c| store::find(c, key, &hash, Some((&last8, &expiry)), None))?
    }
    .ok_or_else(not_found)?;
    Ok(Json(Data { data: Certificate { qrcode: qrcode_b64(&found)?, hc1: found.hc1, fgl: found.fgl } }))
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
pub(crate) async fn io(
    State(pn): State<Arc<PnDgc>>,
    ApiJson(req): ApiJson<IoRequest>,
) -> Result<Json<Data<IoCertificate>>, Problem> {
    let mut f = Fields::new();
    let auth = f.required("authCodeSHA256", &req.auth_code_sha256).cloned();
    let auth = sha(&mut f, "authCodeSHA256", auth.as_ref());
    let cf = f.required("cfSHA256", &req.cf_sha256).cloned();
    let cf = sha(&mut f, "cfSHA256", cf.as_ref());
    let (auth, cf) = f.into_result((auth, cf).all_some())?;
    let found = pn.store.with(|c| store::find(c, Key::Authcode, &auth, None, Some(&cf)))?.ok_or_else(not_found)?;
    Ok(Json(Data {
        data: IoCertificate { qrcode_b64: qrcode_b64(&found)?, hc1: found.hc1, fgl: found.fgl, uvci: found.uvci },
    }))
}

/// `GET /v1/dgc/signer`: the signing certificate (PEM) and its `kid`, so any EU DCC
/// verifier can check the signature.
pub(crate) async fn signer(State(pn): State<Arc<PnDgc>>) -> Json<SignerView> {
    let kid = pn.signer.kid();
    Json(SignerView {
        kid: base64::engine::general_purpose::STANDARD.encode(kid),
        kid_hex: hex::encode(kid),
        certificate: pn.signer.certificate_pem().to_owned(),
        subject: signer::SUBJECT,
        csca: pn.signer.csca_pem().to_owned(),
        csca_subject: signer::CSCA_SUBJECT,
    })
}
