//! A test result as labs, SARs and Sistema TS exchange it (ORD-3.1a).
//!
//! [`validate`] turns a raw request into a [`TestResult`] or a problem naming every
//! bad field (400). The registry and date rules live with the systems that enforce
//! them.

use jiff::civil::Date;

use crate::codes::{CodiceFiscale, Email, Msisdn};
use crate::validation::{Fields, Invalid, parse_date};

/// Result of a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Esito {
    /// Positive.
    Positivo,
    /// Negative.
    Negativo,
}

/// Kind of test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TipoTest {
    /// Molecular (PCR).
    Molecolare,
    /// Rapid antigen.
    Antigenico,
}

impl Esito {
    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Esito::Positivo => "POSITIVO",
            Esito::Negativo => "NEGATIVO",
        }
    }
    fn parse(s: &str) -> Result<Self, &'static str> {
        match s {
            "POSITIVO" => Ok(Esito::Positivo),
            "NEGATIVO" => Ok(Esito::Negativo),
            _ => Err("must be POSITIVO or NEGATIVO"),
        }
    }
}

impl TipoTest {
    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            TipoTest::Molecolare => "MOLECOLARE",
            TipoTest::Antigenico => "ANTIGENICO",
        }
    }
    fn parse(s: &str) -> Result<Self, &'static str> {
        match s {
            "MOLECOLARE" => Ok(TipoTest::Molecolare),
            "ANTIGENICO" => Ok(TipoTest::Antigenico),
            _ => Err("must be MOLECOLARE or ANTIGENICO"),
        }
    }
}

/// Contacts as received (any may be absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContatti {
    /// Mobile number.
    pub cellulare: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// A parent's mobile number, for minors (SAR input only).
    pub cellulare_genitore: Option<String>,
}

/// `POST /ts/v1/test-results` as received; every field checked by [`validate`].
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTestResult {
    /// Codice fiscale.
    pub codice_fiscale: Option<String>,
    /// `POSITIVO` or `NEGATIVO`.
    pub esito: Option<String>,
    /// `MOLECOLARE` or `ANTIGENICO`.
    pub tipo_test: Option<String>,
    /// `YYYY-MM-DD`.
    pub data_esecuzione: Option<String>,
    /// Facility code.
    pub struttura: Option<String>,
    /// Contacts.
    pub contatti: Option<RawContatti>,
    /// Ask Sistema TS to send the CUN itself (ORD-6.2).
    pub invio_cun_da_ts: Option<bool>,
}

/// A valid test result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// Codice fiscale.
    pub codice_fiscale: CodiceFiscale,
    /// Result.
    pub esito: Esito,
    /// Kind of test.
    pub tipo_test: TipoTest,
    /// Date the test was performed.
    pub data_esecuzione: Date,
    /// Facility that performed it.
    pub struttura: String,
    /// Mobile number, if given.
    pub cellulare: Option<Msisdn>,
    /// E-mail, if given.
    pub email: Option<Email>,
    /// A parent's mobile number, if given.
    pub cellulare_genitore: Option<Msisdn>,
    /// ORD-6.2.
    pub invio_cun_da_ts: bool,
}

/// A facility code: 1-32 letters, digits, `.`, `-` or `_`.
pub fn check_struttura(s: &str) -> Result<(), &'static str> {
    if !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)) {
        Ok(())
    } else {
        Err("must be a facility code of 1-32 letters, digits, '.', '-' or '_'")
    }
}

/// Checks every field (400 naming each bad one), without registry or date rules.
pub fn validate(raw: &RawTestResult) -> Result<TestResult, Invalid> {
    let mut f = Fields::new();
    let cf = f
        .required("codice_fiscale", &raw.codice_fiscale)
        .and_then(|v| f.check("codice_fiscale", CodiceFiscale::parse(v)));
    let esito = f.required("esito", &raw.esito).and_then(|v| f.check("esito", Esito::parse(v)));
    let tipo = f.required("tipo_test", &raw.tipo_test).and_then(|v| f.check("tipo_test", TipoTest::parse(v)));
    let date =
        f.required("data_esecuzione", &raw.data_esecuzione).and_then(|v| f.check("data_esecuzione", parse_date(v)));
    let struttura = f
        .required("struttura", &raw.struttura)
        .and_then(|v| f.check("struttura", check_struttura(v)).map(|()| v.clone()));
    let contatti = raw.contatti.clone().unwrap_or_default();
    let cellulare = contatti.cellulare.as_deref().and_then(|v| f.check("contatti.cellulare", Msisdn::parse(v)));
    let email = contatti.email.as_deref().and_then(|v| f.check("contatti.email", Email::parse(v)));
    let parent =
        contatti.cellulare_genitore.as_deref().and_then(|v| f.check("contatti.cellulare_genitore", Msisdn::parse(v)));
    let invio = raw.invio_cun_da_ts.unwrap_or(false);
    if invio && contatti.cellulare.is_none() && contatti.email.is_none() {
        f.error("contatti", "invio_cun_da_ts needs a mobile number or an e-mail to send the CUN to (ORD-6.2)");
    }
    let built = (|| {
        Some(TestResult {
            codice_fiscale: cf?,
            esito: esito?,
            tipo_test: tipo?,
            data_esecuzione: date?,
            struttura: struttura?,
            cellulare,
            email,
            cellulare_genitore: parent,
            invio_cun_da_ts: invio,
        })
    })();
    f.into_result(built)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn raw() -> RawTestResult {
        RawTestResult {
            codice_fiscale: Some("RSSMRA45D25F205N".into()),
            esito: Some("POSITIVO".into()),
            tipo_test: Some("MOLECOLARE".into()),
            data_esecuzione: Some("2021-10-01".into()),
            struttura: Some("LAB-160-001".into()),
            contatti: Some(RawContatti { cellulare: Some("3331234567".into()), ..Default::default() }),
            invio_cun_da_ts: None,
        }
    }

    #[test]
    fn a_complete_result_validates() {
        let r = validate(&raw()).expect("valid");
        assert_eq!(r.esito, Esito::Positivo);
        assert_eq!(r.cellulare.map(|m| m.to_string()), Some("+393331234567".into()));
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let bad = RawTestResult {
            codice_fiscale: Some("RSSMRA45D25F205X".into()),
            esito: Some("FORSE".into()),
            tipo_test: None,
            data_esecuzione: Some("01/10/2021".into()),
            struttura: Some("lab 1".into()),
            contatti: Some(RawContatti {
                cellulare: Some("333 123".into()),
                email: Some("nope".into()),
                cellulare_genitore: Some("x".into()),
            }),
            invio_cun_da_ts: None,
        };
        let p = validate(&bad).unwrap_err();
        let fields: Vec<&str> = p.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "codice_fiscale",
                "esito",
                "tipo_test",
                "data_esecuzione",
                "struttura",
                "contatti.cellulare",
                "contatti.email",
                "contatti.cellulare_genitore"
            ]
        );
    }

    #[test]
    fn sending_from_ts_needs_a_contact() {
        let r = RawTestResult { contatti: None, invio_cun_da_ts: Some(true), ..raw() };
        assert_eq!(validate(&r).unwrap_err().errors[0].field, "contatti");
    }
}
