//! An EU DCC verifier, written apart from PN-DGC's encoder (its own Base45 decoder,
//! COSE parsed with the `coset` crate, CBOR with `ciborium`): it decodes an `HC1:`
//! string (Base45, zlib, COSE_Sign1, CWT), checks the signing chain PN-DGC
//! publishes (the DSC issued by the CSCA, key usage digitalSignature), the ES256
//! signature against the DSC and its `kid`, that the DSC's extended key usages allow
//! the certificate's type (test, vaccination, recovery), and applies the Italian
//! validity rules (DOMAIN.md flow 4) at a given time.
//!
//! | certificate | valid |
//! |---|---|
//! | vaccination, cycle not complete (`dn < sd`) | from day 15 to day 42 (mRNA) or 84 (Vaxzevria) |
//! | vaccination, single Janssen dose (1/1) | from day 15 to day 270 |
//! | vaccination, cycle complete (`dn = sd <= 2`) | from day 0 to day 270 |
//! | vaccination, booster (`dn >= 3` or `dn > sd`) | from day 0, no expiry |
//! | test | not detected only; molecular 72 h, rapid 48 h from the sample |
//! | recovery | from `df` to `du` |
//!
//! ```no_run
//! # async fn demo(pn_dgc: &str, hc1: &str) -> anyhow::Result<()> {
//! use ecosim_harness::verifier::{Status, Verifier};
//! let verifier = Verifier::fetch(pn_dgc).await?;
//! assert_eq!(verifier.status(hc1, jiff::Timestamp::now()), Status::Valid);
//! # Ok(()) }
//! ```

use std::io::Read;

use coset::{CoseSign1, TaggedCborSerializable};
use jiff::Timestamp;
use jiff::civil::Date;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{Decode, DecodePem, Encode};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages};

/// The EU DCC extended key usages: which certificate types a DSC may sign.
const EKU_TEST: &str = "1.3.6.1.4.1.1847.2021.1.1";
const EKU_VACCINATION: &str = "1.3.6.1.4.1.1847.2021.1.2";
const EKU_RECOVERY: &str = "1.3.6.1.4.1.1847.2021.1.3";

/// Base45 (RFC 9285), decoded here rather than with ecosim's encoder's code.
fn base45(text: &str) -> Result<Vec<u8>, String> {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let values: Vec<u32> = text
        .bytes()
        .map(|b| {
            ALPHABET.iter().position(|a| *a == b).map(|p| p as u32).ok_or(format!("{:?} is not Base45", b as char))
        })
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(values.len() * 2 / 3 + 1);
    for chunk in values.chunks(3) {
        match chunk {
            [c, d, e] => {
                let n = c + d * 45 + e * 45 * 45;
                let [hi, lo] = u16::try_from(n).map_err(|_| format!("{n} is over 65535"))?.to_be_bytes();
                out.extend([hi, lo]);
            }
            [c, d] => out.push(u8::try_from(c + d * 45).map_err(|_| "a trailing pair over 255".to_owned())?),
            _ => return Err("a single trailing character".into()),
        }
    }
    Ok(out)
}

/// A verdict, as the Italian verifier apps show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Valid now.
    Valid,
    /// Not valid yet.
    NotValidYet,
    /// No longer valid.
    Expired,
    /// Never valid (bad signature, positive test...).
    NotValid,
    /// Not an EU DCC at all.
    NotEuDcc,
}

impl Status {
    /// As shown (`VALID`, `NOT_VALID_YET`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "VALID",
            Status::NotValidYet => "NOT_VALID_YET",
            Status::Expired => "EXPIRED",
            Status::NotValid => "NOT_VALID",
            Status::NotEuDcc => "NOT_EU_DCC",
        }
    }
}

/// Why a string could not be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Not `HC1:` + Base45 + zlib + COSE_Sign1 + CWT.
    #[error("not an EU DCC: {0}")]
    NotEuDcc(String),
    /// Signed by another key, or tampered with.
    #[error("signature: {0}")]
    Signature(String),
}

/// A decoded, verified certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The DCC JSON (`hcert` claim 1).
    pub dcc: Value,
    /// CWT issuer.
    pub iss: Option<String>,
    /// CWT issued-at (Unix seconds).
    pub iat: i64,
    /// CWT expiry (Unix seconds).
    pub exp: i64,
    /// Key id from the protected header.
    pub kid: Vec<u8>,
}

/// Verifies certificates signed by one document signer.
#[derive(Debug, Clone)]
pub struct Verifier {
    key: VerifyingKey,
    kid: Vec<u8>,
    /// The DSC's extended key usages (empty: no restriction, as the EU rules say).
    usages: Vec<String>,
}

/// The P-256 key of `cert`.
fn key_of(cert: &Certificate) -> Result<VerifyingKey, String> {
    VerifyingKey::from_sec1_bytes(cert.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes())
        .map_err(|e| format!("not a P-256 key: {e}"))
}

/// Whether `issuer`'s key signed `cert` (ECDSA P-256 with SHA-256, DER signature).
fn signed_by(cert: &Certificate, issuer: &VerifyingKey) -> Result<(), String> {
    let tbs = cert.tbs_certificate.to_der().map_err(|e| e.to_string())?;
    let sig = p256::ecdsa::DerSignature::from_bytes(cert.signature.raw_bytes()).map_err(|e| e.to_string())?;
    issuer.verify(&tbs, &sig).map_err(|e| e.to_string())
}

impl Verifier {
    /// From the document signer certificate alone, PEM (trusted as given).
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let cert = Certificate::from_pem(pem.as_bytes()).map_err(|e| format!("certificate: {e}"))?;
        Self::from_certificate(&cert)
    }

    /// From the document signer certificate alone, DER (trusted as given).
    pub fn from_der(der: &[u8]) -> Result<Self, String> {
        let cert = Certificate::from_der(der).map_err(|e| format!("certificate: {e}"))?;
        Self::from_certificate(&cert)
    }

    /// From a chain, PEM: the DSC must be issued and signed by the CSCA (itself a
    /// self-signed CA), and be a signing certificate (digitalSignature, not a CA).
    pub fn from_chain(csca_pem: &str, dsc_pem: &str) -> Result<Self, String> {
        let csca = Certificate::from_pem(csca_pem.as_bytes()).map_err(|e| format!("CSCA: {e}"))?;
        let dsc = Certificate::from_pem(dsc_pem.as_bytes()).map_err(|e| format!("DSC: {e}"))?;
        let ca_key = key_of(&csca)?;
        signed_by(&csca, &ca_key).map_err(|e| format!("the CSCA is not self-signed: {e}"))?;
        let is_ca = csca.tbs_certificate.get::<BasicConstraints>().ok().flatten().is_some_and(|(_, bc)| bc.ca);
        if !is_ca {
            return Err("the CSCA is not a CA (basicConstraints)".into());
        }
        if dsc.tbs_certificate.issuer != csca.tbs_certificate.subject {
            return Err(format!("the DSC is issued by {}, not by the CSCA", dsc.tbs_certificate.issuer));
        }
        signed_by(&dsc, &ca_key).map_err(|e| format!("the CSCA did not sign the DSC: {e}"))?;
        let usage = dsc.tbs_certificate.get::<KeyUsage>().map_err(|e| e.to_string())?;
        if !usage.is_some_and(|(_, ku)| ku.0.contains(KeyUsages::DigitalSignature)) {
            return Err("the DSC's key usage lacks digitalSignature".into());
        }
        Self::from_certificate(&dsc)
    }

    fn from_certificate(cert: &Certificate) -> Result<Self, String> {
        let der = cert.to_der().map_err(|e| e.to_string())?;
        let usages = cert
            .tbs_certificate
            .get::<ExtendedKeyUsage>()
            .map_err(|e| e.to_string())?
            .map(|(_, eku)| eku.0.iter().map(|o| o.to_string()).collect())
            .unwrap_or_default();
        Ok(Self { key: key_of(cert)?, kid: Sha256::digest(&der)[..8].to_vec(), usages })
    }

    /// Fetches the chain PN-DGC publishes (`GET /v1/dgc/signer`) and checks it.
    pub async fn fetch(pn_dgc_url: &str) -> anyhow::Result<Self> {
        let v: Value = reqwest::get(format!("{pn_dgc_url}/v1/dgc/signer")).await?.error_for_status()?.json().await?;
        let dsc = v["certificate"].as_str().ok_or_else(|| anyhow::anyhow!("no certificate in {v}"))?;
        let csca = v["csca"].as_str().ok_or_else(|| anyhow::anyhow!("no csca in {v}"))?;
        Self::from_chain(csca, dsc).map_err(anyhow::Error::msg)
    }

    /// The key id (first 8 bytes of the SHA-256 of the certificate's DER).
    pub fn kid(&self) -> &[u8] {
        &self.kid
    }

    /// Decodes `hc1` and checks its signature.
    pub fn decode(&self, hc1: &str) -> Result<Verified, VerifyError> {
        let bad = |e: &dyn std::fmt::Display| VerifyError::NotEuDcc(e.to_string());
        let body = hc1.strip_prefix("HC1:").ok_or_else(|| bad(&"no HC1: prefix"))?;
        let compressed = base45(body).map_err(|e| bad(&e))?;
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&compressed[..]).read_to_end(&mut raw).map_err(|e| bad(&e))?;
        let sign1 = CoseSign1::from_tagged_slice(&raw)
            .or_else(|_| <CoseSign1 as coset::CborSerializable>::from_slice(&raw))
            .map_err(|e| bad(&e))?;
        let kid = sign1.protected.header.key_id.clone();
        if kid != self.kid {
            return Err(VerifyError::Signature(format!("kid {} is not the signer's", hex_of(&kid))));
        }
        if sign1.protected.header.alg != Some(coset::Algorithm::Assigned(coset::iana::Algorithm::ES256)) {
            return Err(VerifyError::Signature("not ES256".into()));
        }
        sign1
            .verify_signature(b"", |sig, data| {
                let sig = Signature::from_slice(sig).map_err(|e| e.to_string())?;
                self.key.verify(data, &sig).map_err(|e| e.to_string())
            })
            .map_err(VerifyError::Signature)?;
        let payload = sign1.payload.ok_or_else(|| bad(&"no payload"))?;
        let claims: ciborium::Value = ciborium::from_reader(&payload[..]).map_err(|e| bad(&e))?;
        let map = claims.as_map().ok_or_else(|| bad(&"claims are not a map"))?;
        let claim = |k: i64| map.iter().find(|(key, _)| key.as_integer() == Some(k.into())).map(|(_, v)| v);
        let int = |v: Option<&ciborium::Value>| v.and_then(|v| v.as_integer()).and_then(|i| i64::try_from(i).ok());
        let hcert = claim(-260).and_then(|h| h.as_map()).ok_or_else(|| bad(&"no hcert claim"))?;
        let dcc = hcert
            .iter()
            .find(|(k, _)| k.as_integer() == Some(1.into()))
            .map(|(_, v)| json_of(v))
            .ok_or_else(|| bad(&"no DCC in hcert"))?;
        let (kind, usage) = if dcc.get("t").is_some() {
            ("test", EKU_TEST)
        } else if dcc.get("r").is_some() {
            ("recovery", EKU_RECOVERY)
        } else {
            ("vaccination", EKU_VACCINATION)
        };
        if !self.usages.is_empty() && !self.usages.iter().any(|u| u == usage) {
            return Err(VerifyError::Signature(format!("the DSC may not sign {kind} certificates")));
        }
        Ok(Verified {
            dcc,
            iss: claim(1).and_then(|v| v.as_text()).map(str::to_owned),
            iat: int(claim(6)).unwrap_or(0),
            exp: int(claim(4)).unwrap_or(i64::MAX),
            kid,
        })
    }

    /// The verdict on `hc1` at `at`.
    pub fn status(&self, hc1: &str, at: Timestamp) -> Status {
        match self.decode(hc1) {
            Err(VerifyError::NotEuDcc(_)) => Status::NotEuDcc,
            Err(VerifyError::Signature(_)) => Status::NotValid,
            Ok(v) if at.as_second() > v.exp => Status::Expired,
            Ok(v) => rules(&v.dcc, at),
        }
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// CBOR to JSON (byte strings as hex; DCCs carry none).
pub fn json_of(v: &ciborium::Value) -> Value {
    use ciborium::Value as C;
    match v {
        C::Integer(i) => i64::try_from(*i).map(Value::from).unwrap_or(Value::Null),
        C::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
        C::Text(s) => Value::String(s.clone()),
        C::Bool(b) => Value::Bool(*b),
        C::Bytes(b) => Value::String(hex_of(b)),
        C::Array(a) => Value::Array(a.iter().map(json_of).collect()),
        C::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_text().map(str::to_owned).unwrap_or_else(|| format!("{k:?}")), json_of(v)))
                .collect(),
        ),
        C::Tag(_, inner) => json_of(inner),
        _ => Value::Null,
    }
}

const VAXZEVRIA: &str = "EU/1/21/1529";
const JANSSEN: &str = "EU/1/20/1525";
const NOT_DETECTED: &str = "260415000";
const MOLECULAR: &str = "LP6464-4";

/// The Italian validity rules for a decoded DCC at `at` (days counted on Italian dates).
pub fn rules(dcc: &Value, at: Timestamp) -> Status {
    let today = at.to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Rome").unwrap_or(jiff::tz::TimeZone::UTC)).date();
    let date = |v: &Value| v.as_str().and_then(|s| s.get(..10)).and_then(|s| s.parse::<Date>().ok());
    let window = |from: Date, start: i32, end: Option<i32>| {
        let day = (today - from).get_days();
        if day < start {
            Status::NotValidYet
        } else if end.is_some_and(|e| day > e) {
            Status::Expired
        } else {
            Status::Valid
        }
    };
    if let Some(v) = dcc["v"].get(0) {
        let (Some(dt), Some(dn), Some(sd)) = (date(&v["dt"]), v["dn"].as_i64(), v["sd"].as_i64()) else {
            return Status::NotValid;
        };
        let mp = v["mp"].as_str().unwrap_or_default();
        return if dn < sd {
            window(dt, 15, Some(if mp == VAXZEVRIA { 84 } else { 42 }))
        } else if dn >= 3 || dn > sd {
            window(dt, 0, None)
        } else if mp == JANSSEN && dn == 1 {
            window(dt, 15, Some(270))
        } else {
            window(dt, 0, Some(270))
        };
    }
    if let Some(t) = dcc["t"].get(0) {
        if t["tr"].as_str() != Some(NOT_DETECTED) {
            return Status::NotValid;
        }
        let Some(sc) = t["sc"].as_str().and_then(|s| s.parse::<Timestamp>().ok()) else { return Status::NotValid };
        let hours = if t["tt"].as_str() == Some(MOLECULAR) { 72 } else { 48 };
        return if at < sc {
            Status::NotValidYet
        } else if at > sc.checked_add(jiff::SignedDuration::from_hours(hours)).unwrap_or(sc) {
            Status::Expired
        } else {
            Status::Valid
        };
    }
    if let Some(r) = dcc["r"].get(0) {
        let (Some(df), Some(du)) = (date(&r["df"]), date(&r["du"])) else { return Status::NotValid };
        return if today < df {
            Status::NotValidYet
        } else if today > du {
            Status::Expired
        } else {
            Status::Valid
        };
    }
    Status::NotValid
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(day: &str) -> Timestamp {
        format!("{day}T10:00:00Z").parse().unwrap()
    }

    #[test]
    fn vaccination_windows() {
        let first = json!({"v": [{"dt": "2021-06-01", "dn": 1, "sd": 2, "mp": "EU/1/20/1528"}]});
        assert_eq!(rules(&first, at("2021-06-15")), Status::NotValidYet);
        assert_eq!(rules(&first, at("2021-06-16")), Status::Valid);
        assert_eq!(rules(&first, at("2021-07-14")), Status::Expired);
        let vax = json!({"v": [{"dt": "2021-06-01", "dn": 1, "sd": 2, "mp": VAXZEVRIA}]});
        assert_eq!(rules(&vax, at("2021-08-20")), Status::Valid);
        let complete = json!({"v": [{"dt": "2021-06-01", "dn": 2, "sd": 2, "mp": "EU/1/20/1528"}]});
        assert_eq!(rules(&complete, at("2021-06-01")), Status::Valid);
        assert_eq!(rules(&complete, at("2022-03-01")), Status::Expired);
        let booster = json!({"v": [{"dt": "2021-06-01", "dn": 3, "sd": 3, "mp": "EU/1/20/1528"}]});
        assert_eq!(rules(&booster, at("2025-06-01")), Status::Valid);
        let janssen = json!({"v": [{"dt": "2021-06-01", "dn": 1, "sd": 1, "mp": JANSSEN}]});
        assert_eq!(rules(&janssen, at("2021-06-10")), Status::NotValidYet);
        assert_eq!(rules(&janssen, at("2021-06-16")), Status::Valid);
    }

    #[test]
    fn tests_and_recoveries() {
        let negative = json!({"t": [{"tt": MOLECULAR, "tr": NOT_DETECTED, "sc": "2021-06-01T08:00:00Z"}]});
        assert_eq!(rules(&negative, at("2021-06-03")), Status::Valid);
        assert_eq!(rules(&negative, at("2021-06-05")), Status::Expired);
        let rapid = json!({"t": [{"tt": "LP217198-3", "tr": NOT_DETECTED, "sc": "2021-06-01T08:00:00Z"}]});
        assert_eq!(rules(&rapid, at("2021-06-02")), Status::Valid);
        assert_eq!(rules(&rapid, at("2021-06-04")), Status::Expired);
        let positive = json!({"t": [{"tt": MOLECULAR, "tr": "260373001", "sc": "2021-06-01T08:00:00Z"}]});
        assert_eq!(rules(&positive, at("2021-06-01")), Status::NotValid);
        let recovery = json!({"r": [{"df": "2021-06-12", "du": "2021-11-28"}]});
        assert_eq!(rules(&recovery, at("2021-06-11")), Status::NotValidYet);
        assert_eq!(rules(&recovery, at("2021-07-01")), Status::Valid);
        assert_eq!(rules(&recovery, at("2021-12-01")), Status::Expired);
        assert_eq!(rules(&json!({}), at("2021-07-01")), Status::NotValid);
    }

    #[test]
    fn garbage_is_not_an_eu_dcc() {
        let signer = ecosim_pn_dgc::domain::signer::Signer::from_seed(1).unwrap();
        let v = Verifier::from_der(signer.certificate_der()).unwrap();
        assert_eq!(v.status("hello", Timestamp::now()), Status::NotEuDcc);
        assert_eq!(v.status("HC1:ABC", Timestamp::now()), Status::NotEuDcc);
        // Signed by another key: not valid.
        let other = ecosim_pn_dgc::domain::signer::Signer::from_seed(2).unwrap();
        let dcc = json!({"v": [{"dt": "2021-06-01", "dn": 3, "sd": 3}]});
        let foreign = ecosim_pn_dgc::domain::dcc::hc1(&other, &dcc, 0, i64::MAX / 2);
        assert_eq!(v.status(&foreign, at("2021-07-01")), Status::NotValid);
        let own = ecosim_pn_dgc::domain::dcc::hc1(&signer, &dcc, 0, i64::MAX / 2);
        assert_eq!(v.status(&own, at("2021-07-01")), Status::Valid);
        assert_eq!(v.decode(&own).unwrap().dcc, dcc);
    }

    #[test]
    fn base45_decodes_the_rfc_examples() {
        assert_eq!(base45("BB8").unwrap(), b"AB");
        assert_eq!(base45("%69 VD92EX0").unwrap(), b"Hello!!");
        assert_eq!(base45("UJCLQE7W581").unwrap(), b"base-45");
        assert!(base45("GGW").is_err(), "65536 is not two bytes");
        assert!(base45("a").is_err());
    }

    #[test]
    fn the_chain_must_hold() {
        let s = ecosim_pn_dgc::domain::signer::Signer::from_seed(1).unwrap();
        let other = ecosim_pn_dgc::domain::signer::Signer::from_seed(2).unwrap();
        let v = Verifier::from_chain(s.csca_pem(), s.certificate_pem()).unwrap();
        assert_eq!(v.kid(), &s.kid()[..]);
        let err = Verifier::from_chain(other.csca_pem(), s.certificate_pem()).unwrap_err();
        assert!(err.contains("did not sign"), "{err}");
        let err = Verifier::from_chain(s.certificate_pem(), s.certificate_pem()).unwrap_err();
        assert!(err.contains("self-signed") || err.contains("not a CA"), "{err}");
        // A DSC limited to vaccinations may not sign a test certificate.
        let mut only_vaccinations = v.clone();
        only_vaccinations.usages = vec![EKU_VACCINATION.into()];
        let test = json!({"t": [{"tt": MOLECULAR, "tr": NOT_DETECTED, "sc": "2021-06-01T08:00:00Z"}]});
        let hc1 = ecosim_pn_dgc::domain::dcc::hc1(&s, &test, 0, i64::MAX / 2);
        assert!(v.decode(&hc1).is_ok());
        assert_eq!(
            only_vaccinations.decode(&hc1).unwrap_err(),
            VerifyError::Signature("the DSC may not sign test certificates".into())
        );
    }
}
