//! The events Sistema TS sends PN-DGC (`POST /pn-dgc/v1/eventi`, Flow 4): a dose, a
//! test result or a recovery, with the person as the registry knows them and the
//! contacts the AUTHCODE goes to. Both sides use these types; PN-DGC's rules on
//! them live in PN-DGC.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// The person, as the registry knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assistito {
    /// Codice fiscale or Sistema TS identifier.
    pub id: String,
    /// `CF` or `TS`.
    pub tipo: String,
    /// Surname.
    pub cognome: String,
    /// Given name.
    pub nome: String,
    /// `YYYY-MM-DD`.
    pub data_nascita: Date,
    /// Last 8 digits of the health card (retrieval checks them).
    #[serde(default)]
    pub ultime_8_cifre_ts: Option<String>,
    /// Health card expiry (retrieval checks it).
    #[serde(default)]
    pub scadenza_ts: Option<Date>,
}

/// Where the AUTHCODE goes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contatti {
    /// Mobile number.
    #[serde(default)]
    pub cellulare: Option<String>,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
}

/// A dose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vaccinazione {
    /// Date given.
    pub data: Date,
    /// AIC or catalogue code.
    pub aic: String,
    /// Dose number.
    pub dose: u8,
    /// `ciclo_primario`, `addizionale`, `booster`.
    pub tipo_dose: String,
    /// ISO country (`IT` unless given abroad).
    #[serde(default = "italy")]
    pub paese: String,
}

fn italy() -> String {
    "IT".into()
}

/// A test result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Test {
    /// `CUN-XXXXXXXXXX`.
    pub cun: String,
    /// `MOLECOLARE` or `ANTIGENICO`.
    pub tipo_test: String,
    /// `POSITIVO` or `NEGATIVO`.
    pub esito: String,
    /// Date of the test.
    pub data_esecuzione: Date,
    /// Facility.
    pub struttura: String,
}

/// A recovery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Guarigione {
    /// The recovery certificate number (10 characters, CODES.md).
    pub nucg: String,
    /// Date of the first positive test.
    pub data_primo_positivo: Date,
    /// Date declared recovered.
    pub data_guarigione: Date,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evento {
    /// Sistema TS's id of the event (a new version of a dose is a new id).
    pub id: String,
    /// The person.
    pub assistito: Assistito,
    /// AUTHCODE contacts.
    #[serde(default)]
    pub contatti: Contatti,
    /// A dose...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vaccinazione: Option<Vaccinazione>,
    /// ...or a test...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Test>,
    /// ...or a recovery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guarigione: Option<Guarigione>,
}

impl Evento {
    /// `vaccinazione`, `test` or `guarigione`.
    pub fn kind(&self) -> &'static str {
        if self.vaccinazione.is_some() {
            "vaccinazione"
        } else if self.test.is_some() {
            "test"
        } else {
            "guarigione"
        }
    }
}
