//! EU Digital COVID Certificates: the DCC JSON (EU schema 1.3.0), the CWT claims,
//! COSE_Sign1 with ES256, zlib, Base45, `HC1:`, and a QR code PNG of it.

use ciborium::Value as Cbor;
use ecosim_domain::codes::sha256_hex;
use jiff::{Timestamp, ToSpan};
use serde_json::{Value, json};

use super::event::{Evento, doses};
use super::signer::Signer;

/// Disease targeted: COVID-19.
pub const TARGET: &str = "840539006";
/// Certificate issuer.
pub const ISSUER: &str = "Ministero della Salute";
/// DCC schema version.
pub const SCHEMA_VERSION: &str = "1.3.0";
/// CWT claim key of the health certificate.
const HCERT: i64 = -260;

/// ICAO 9303 transliteration for `fnt`/`gnt`: upper case, accents dropped, spaces
/// and hyphens as `<`, anything else dropped.
pub fn icao(name: &str) -> String {
    name.chars()
        .flat_map(|c| {
            let base = match c {
                'à' | 'á' | 'â' | 'ä' | 'À' | 'Á' | 'Â' | 'Ä' => 'A',
                'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => 'E',
                'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
                'ò' | 'ó' | 'ô' | 'ö' | 'Ò' | 'Ó' | 'Ô' | 'Ö' => 'O',
                'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
                ' ' | '-' => '<',
                c if c.is_ascii_alphabetic() => c.to_ascii_uppercase(),
                _ => '\0',
            };
            (base != '\0').then_some(base)
        })
        .collect()
}

/// The `nam` and `dob` members.
pub fn person(surname: &str, name: &str, dob: &str) -> Value {
    serde_json::json!({
        "nam": {"fn": surname.to_uppercase(), "fnt": icao(surname), "gn": name.to_uppercase(), "gnt": icao(name)},
        "dob": dob,
    })
}

/// An Italian-shaped UVCI from 16 bytes: `01IT` + 32 hex + `#` + a check digit (the
/// real rule is not public: ecosim uses the sum of the hex digits mod 10).
pub fn uvci(bytes: [u8; 16]) -> String {
    let hex = hex::encode_upper(bytes);
    let check = hex.chars().filter_map(|c| c.to_digit(16)).sum::<u32>() % 10;
    format!("01IT{hex}#{check}")
}

fn to_cbor(v: &Value) -> Cbor {
    match v {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Cbor::Integer(i.into()),
            (None, Some(f)) => Cbor::Float(f),
            _ => Cbor::Null,
        },
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(a) => Cbor::Array(a.iter().map(to_cbor).collect()),
        Value::Object(o) => Cbor::Map(o.iter().map(|(k, v)| (Cbor::Text(k.clone()), to_cbor(v))).collect()),
    }
}

fn cbor_bytes(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::into_writer(v, &mut out);
    out
}

/// Signs `dcc` as issued at `iat` and expiring at `exp` (Unix seconds): the `HC1:` string.
pub fn hc1(signer: &Signer, dcc: &Value, iat: i64, exp: i64) -> String {
    let claims = Cbor::Map(vec![
        (Cbor::Integer(1.into()), Cbor::Text("IT".into())),
        (Cbor::Integer(6.into()), Cbor::Integer(iat.into())),
        (Cbor::Integer(4.into()), Cbor::Integer(exp.into())),
        (Cbor::Integer(HCERT.into()), Cbor::Map(vec![(Cbor::Integer(1.into()), to_cbor(dcc))])),
    ]);
    let payload = cbor_bytes(&claims);
    let protected = cbor_bytes(&Cbor::Map(vec![
        (Cbor::Integer(1.into()), Cbor::Integer((-7).into())), // alg: ES256
        (Cbor::Integer(4.into()), Cbor::Bytes(signer.kid().to_vec())), // kid
    ]));
    let to_be_signed = cbor_bytes(&Cbor::Array(vec![
        Cbor::Text("Signature1".into()),
        Cbor::Bytes(protected.clone()),
        Cbor::Bytes(Vec::new()),
        Cbor::Bytes(payload.clone()),
    ]));
    let signature = signer.sign(&to_be_signed);
    let sign1 = Cbor::Tag(
        18,
        Box::new(Cbor::Array(vec![
            Cbor::Bytes(protected),
            Cbor::Map(Vec::new()),
            Cbor::Bytes(payload),
            Cbor::Bytes(signature),
        ])),
    );
    format!("HC1:{}", ecosim_domain::base45::encode(&zlib(&cbor_bytes(&sign1))))
}

thread_local! {
    /// A zlib compressor per thread, reset for each certificate: making one zeroes
    /// and allocates about 300 KiB of tables (15 µs a certificate against 10 µs with
    /// a reset one, on a COSE message of 330 bytes).
    static DEFLATE: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::best(), true));
}

/// `data` as a zlib stream (best compression): the same bytes as a fresh
/// `ZlibEncoder` writes.
fn zlib(data: &[u8]) -> Vec<u8> {
    DEFLATE.with(|deflate| {
        let mut deflate = deflate.borrow_mut();
        deflate.reset();
        let mut out = Vec::with_capacity(data.len() + 64);
        loop {
            let read = usize::try_from(deflate.total_in()).unwrap_or(usize::MAX).min(data.len());
            match deflate.compress_vec(&data[read..], &mut out, flate2::FlushCompress::Finish) {
                Ok(flate2::Status::StreamEnd) => return out,
                Ok(_) => out.reserve(out.capacity().max(64)),
                Err(_) => return Vec::new(),
            }
        }
    })
}

/// A QR code of `text` (error correction Q, as the EU DCC guidelines), as PNG bytes:
/// 4 pixels a module, a 4-module quiet zone.
pub fn qr_png(text: &str) -> Result<Vec<u8>, String> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::Q).map_err(|e| e.to_string())?;
    let width = code.width();
    let colors = code.to_colors();
    const SCALE: usize = 4;
    const QUIET: usize = 4;
    let side = (width + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (x, y) = (i % width + QUIET, i / width + QUIET);
            for dy in 0..SCALE {
                let row = (y * SCALE + dy) * side;
                pixels[row + x * SCALE..row + x * SCALE + SCALE].fill(0);
            }
        }
    }
    let mut png_bytes = Vec::new();
    {
        let side = u32::try_from(side).map_err(|e| e.to_string())?;
        let mut enc = png::Encoder::new(&mut png_bytes, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(&pixels).map_err(|e| e.to_string())?;
    }
    Ok(png_bytes)
}

/// The rapid antigen test device ecosim certifies (EU value set id 1232: Abbott
/// Rapid Diagnostics, Panbio COVID-19 Ag Rapid Test).
pub const RAT_DEVICE: &str = "1232";

/// What a certificate says: the DCC document, when it expires (Unix seconds), the
/// hash of the source document it can be retrieved by, and the Italian `fglTipoDgc`.
#[derive(Debug, Clone, PartialEq)]
pub struct Contents {
    /// The DCC (`nam`, `dob`, `ver` and one of `v`, `t`, `r`).
    pub doc: Value,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds): vaccination + 365 days, test sample + 72/48 h, recovery `du`.
    pub exp: i64,
    /// SHA-256 of the source document (`CUN-...`, `NUCG-...`), for retrieval.
    pub source_sha: Option<String>,
    /// `cbis`: a recovery after vaccination.
    pub fgl: Option<&'static str>,
}

/// The certificate of event `e` issued `now` as `uvci`; `vaccinated`: the person
/// already has a vaccination certificate. `None` for an event with nothing to certify.
pub fn contents(e: &Evento, uvci: &str, now: Timestamp, vaccinated: bool) -> Option<Contents> {
    let a = &e.assistito;
    let mut doc = person(&a.cognome, &a.nome, &a.data_nascita.to_string());
    doc["ver"] = json!(SCHEMA_VERSION);
    let tz = jiff::tz::TimeZone::get("Europe/Rome").unwrap_or(jiff::tz::TimeZone::UTC);
    let iat = now.as_second();
    let (exp, source_sha, fgl) = if let Some(v) = &e.vaccinazione {
        let vaccine = ecosim_domain::vaccines::find(&v.aic);
        let (dn, sd) = vaccine.map(|vx| doses(vx, v.dose)).unwrap_or((v.dose, v.dose));
        doc["v"] = json!([{
            "tg": TARGET, "vp": vaccine.map(|x| x.dcc_type), "mp": vaccine.map(|x| x.dcc_product),
            "ma": vaccine.map(|x| x.dcc_manufacturer), "dn": dn, "sd": sd, "dt": v.data.to_string(),
            "co": v.paese, "is": ISSUER, "ci": uvci,
        }]);
        (now.checked_add(jiff::SignedDuration::from_hours(365 * 24)).map(|t| t.as_second()).unwrap_or(iat), None, None)
    } else if let Some(t) = &e.test {
        let sc = t.data_esecuzione.at(8, 0, 0, 0).to_zoned_datetime(tz.clone()).map(|z| z.timestamp()).unwrap_or(now);
        let molecular = t.tipo_test == "MOLECOLARE";
        doc["t"] = json!([{
            "tg": TARGET, "tt": if molecular { "LP6464-4" } else { "LP217198-3" },
            "sc": sc.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "tr": if t.esito == "NEGATIVO" { "260415000" } else { "260373001" },
            "tc": t.struttura, "co": "IT", "is": ISSUER, "ci": uvci,
        }]);
        if !molecular {
            // A rapid antigen test names its device (eHN guidelines, EU value set
            // covid-19-lab-test-manufacturer-and-name): the region's default, Abbott Panbio.
            doc["t"][0]["ma"] = json!(RAT_DEVICE);
        }
        let hours = if molecular { 72 } else { 48 };
        let exp = sc.checked_add(jiff::SignedDuration::from_hours(hours)).map(|x| x.as_second()).unwrap_or(iat);
        let cun10 = t.cun.trim_start_matches("CUN-");
        (exp, Some(sha256_hex(&format!("CUN-{cun10}"))), None)
    } else if let Some(g) = &e.guarigione {
        let du = g.data_primo_positivo.checked_add(180.days()).unwrap_or(g.data_primo_positivo);
        let df = g.data_guarigione.max(g.data_primo_positivo.checked_add(11.days()).unwrap_or(g.data_primo_positivo));
        doc["r"] = json!([{
            "tg": TARGET, "fr": g.data_primo_positivo.to_string(), "co": "IT", "is": ISSUER,
            "df": df.to_string(), "du": du.to_string(), "ci": uvci,
        }]);
        let exp = du.to_zoned_datetime(tz.clone()).map(|z| z.timestamp().as_second()).unwrap_or(iat);
        (exp, Some(sha256_hex(&format!("NUCG-{}", g.nucg))), vaccinated.then_some("cbis"))
    } else {
        // Refused at the door (`Evento::check`); never issue from an empty event.
        return None;
    };
    Some(Contents { doc, iat, exp, source_sha, fgl })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rapid_antigen_test_names_its_device_and_a_molecular_one_does_not() {
        let event = |tipo: &str| -> Evento {
            serde_json::from_value(json!({
                "id": "t",
                "assistito": {"id": "RSSMRA45D25F205N", "tipo": "CF", "cognome": "ROSSI", "nome": "MARIO",
                              "data_nascita": "1945-04-25"},
                "test": {"cun": "CUN-6HQ5EW73HE", "tipo_test": tipo, "esito": "NEGATIVO",
                         "data_esecuzione": "2021-10-01", "struttura": "LAB1"},
            }))
            .expect("event")
        };
        let now = Timestamp::from_second(1_633_078_800).expect("time");
        let rat = contents(&event("ANTIGENICO"), "URN:UVCI:01:IT:X#1", now, false).expect("certified");
        assert_eq!(
            (rat.doc["t"][0]["tt"].as_str(), rat.doc["t"][0]["ma"].as_str()),
            (Some("LP217198-3"), Some(RAT_DEVICE))
        );
        let naat = contents(&event("MOLECOLARE"), "URN:UVCI:01:IT:X#2", now, false).expect("certified");
        assert!(naat.doc["t"][0].get("ma").is_none(), "{}", naat.doc);
    }

    #[test]
    fn icao_transliteration() {
        assert_eq!(icao("D'Amico"), "DAMICO");
        assert_eq!(icao("Nicolò"), "NICOLO");
        assert_eq!(icao("De Luca"), "DE<LUCA");
        assert_eq!(icao("Anna-Maria"), "ANNA<MARIA");
    }

    #[test]
    fn uvci_has_the_italian_shape() {
        let u = uvci([0xAB; 16]);
        assert!(u.starts_with("01IT") && u.len() == 4 + 32 + 2, "{u}");
        assert_eq!(&u[36..37], "#");
        assert!(u[37..].chars().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn hc1_decodes_back_with_coset_and_verifies() {
        use coset::{CborSerializable, CoseSign1, TaggedCborSerializable};
        use p256::ecdsa::signature::Verifier;
        let signer = Signer::from_seed(42).unwrap();
        let dcc = serde_json::json!({"ver": SCHEMA_VERSION, "dob": "1980-01-01", "v": [{"dn": 2, "sd": 2}]});
        let text = hc1(&signer, &dcc, 1_633_068_000, 1_664_604_000);
        let z = ecosim_domain::base45::decode(text.strip_prefix("HC1:").unwrap()).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&z[..]), &mut raw).unwrap();
        let sign1 = CoseSign1::from_tagged_slice(&raw).unwrap();
        assert_eq!(sign1.protected.header.key_id, signer.kid().to_vec());
        assert_eq!(sign1.protected.header.alg, Some(coset::Algorithm::Assigned(coset::iana::Algorithm::ES256)));
        let key = p256::ecdsa::VerifyingKey::from(signer_verifying_key(&signer));
        sign1
            .verify_signature(b"", |sig, data| {
                let sig = p256::ecdsa::Signature::from_slice(sig).map_err(|e| e.to_string())?;
                key.verify(data, &sig).map_err(|e| e.to_string())
            })
            .unwrap();
        let claims = ciborium::from_reader::<Cbor, _>(&sign1.payload.unwrap()[..]).unwrap();
        let hcert = claims.as_map().unwrap().iter().find(|(k, _)| k.as_integer() == Some((-260).into())).unwrap();
        let dcc_back = hcert.1.as_map().unwrap()[0].1.clone();
        assert_eq!(dcc_back, to_cbor(&dcc));
        let _ = CoseSign1::from_slice; // both forms exist; the tagged one is what HC1 carries
    }

    fn signer_verifying_key(s: &Signer) -> p256::ecdsa::VerifyingKey {
        use x509_cert::der::Decode;
        let cert = x509_cert::Certificate::from_der(s.certificate_der()).unwrap();
        p256::ecdsa::VerifyingKey::from_sec1_bytes(
            cert.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes(),
        )
        .unwrap()
    }

    proptest::proptest! {
        #[test]
        fn the_kept_compressor_writes_what_a_fresh_one_does(
            // Compressible and not, one after another on the same compressor.
            messages in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(0u8..8, 0..3000),
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
                ],
                1..4,
            ),
        ) {
            use std::io::Write;
            for message in &messages {
                let mut fresh = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
                fresh.write_all(message).expect("in memory");
                proptest::prop_assert_eq!(zlib(message), fresh.finish().expect("in memory"));
            }
        }
    }

    #[test]
    fn the_qr_code_is_a_png() {
        let png = qr_png("HC1:TEST").unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
