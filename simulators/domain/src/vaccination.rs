//! A dose as AVRs, AVN and Sistema TS exchange it (APIS.md, AVN).
//!
//! [`Somministrazione`] is the record an AVR sends AVN (`POST /avn/v1/somministrazioni`)
//! and AVN forwards to Sistema TS; [`Somministrazione::check`] applies the rules
//! every receiver enforces, naming each bad field (400): identifier type and value,
//! region codes, the vaccine (an AIC or catalogue code, [`crate::vaccines`]), dose
//! number, time, and the green-pass contacts (a mobile is digits only with an
//! optional leading `+`, AVR-5b).

use jiff::civil::Date;

use crate::codes::{CodiceFiscale, Email};
use crate::regions::region_by_code;
use crate::vaccines;
use crate::validation::{Fields, Invalid};

/// Which identifier names the person (APIS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TipoId {
    /// Codice fiscale.
    Cf,
    /// European health card (TEAM).
    Team,
    /// Regional code for EU citizens without one (ENI).
    Eni,
    /// Regional code for foreigners temporarily present (STP).
    Stp,
    /// The identifier Sistema TS issues to people outside the SSN (AVR-2.3).
    Ts,
}

impl TipoId {
    /// As sent.
    pub fn as_str(self) -> &'static str {
        match self {
            TipoId::Cf => "CF",
            TipoId::Team => "TEAM",
            TipoId::Eni => "ENI",
            TipoId::Stp => "STP",
            TipoId::Ts => "TS",
        }
    }
}

/// The person a dose was given to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdAssistito {
    /// Identifier type.
    pub tipo: TipoId,
    /// The identifier.
    pub valore: String,
}

/// Kind of dose (GIAVA 6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TipoDose {
    /// A dose of the primary cycle.
    CicloPrimario,
    /// An additional dose completing the primary cycle of the vulnerable (AVR-6b).
    Addizionale,
    /// A booster after a completed cycle (AVR-6c).
    Booster,
}

impl TipoDose {
    /// As sent.
    pub fn as_str(self) -> &'static str {
        match self {
            TipoDose::CicloPrimario => "ciclo_primario",
            TipoDose::Addizionale => "addizionale",
            TipoDose::Booster => "booster",
        }
    }
}

/// Risk category (APIS.md, GIAVA 6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoriaRischio {
    /// Health worker.
    OperatoreSanitario,
    /// Over 60.
    #[serde(rename = "eta_over_60")]
    EtaOver60,
    /// Resident of a care home.
    OspiteStruttura,
    /// Non-health staff of a care home.
    OperatoreNonSanitarioStruttura,
    /// Vulnerable for a pathology.
    SoggettoVulnerabile,
    /// Anyone else.
    Altro,
}

impl CategoriaRischio {
    /// The categories a booster is allowed for (GIAVA 6.1, AVR-6c).
    pub fn allows_booster(self) -> bool {
        matches!(
            self,
            CategoriaRischio::OperatoreSanitario
                | CategoriaRischio::EtaOver60
                | CategoriaRischio::OspiteStruttura
                | CategoriaRischio::OperatoreNonSanitarioStruttura
        )
    }
}

/// Health condition meaning "no risk condition".
pub const NESSUNA_CONDIZIONE: &str = "nessuna";

/// Contacts for the green pass's AUTHCODE (GIAVA ch. 5).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContattiDgc {
    /// Mobile number: digits only, an optional leading `+` (AVR-5b).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cellulare: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl ContattiDgc {
    /// Records a complaint for each malformed contact under `prefix` (`contatti_dgc`).
    pub fn check(&self, prefix: &str, fields: &mut Fields) {
        if let Some(m) = &self.cellulare {
            fields.check(&format!("{prefix}.cellulare"), check_avr_mobile(m));
        }
        if let Some(e) = &self.email {
            fields.check(&format!("{prefix}.email"), Email::parse(e));
        }
    }
}

/// AVR-5b: a mobile number as entered in a regional registry is digits only, with an
/// optional leading `+` (6 to 16 digits).
pub fn check_avr_mobile(m: &str) -> Result<(), String> {
    let digits = m.strip_prefix('+').unwrap_or(m);
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_digit()) {
        return Err(format!(
            "AVR-5b: only digits are allowed, with an optional leading '+'; found {bad:?} (remove spaces and separators)"
        ));
    }
    if !(6..=16).contains(&digits.len()) {
        return Err(format!("AVR-5b: must have 6 to 16 digits, found {}", digits.len()));
    }
    Ok(())
}

/// One dose as AVN receives it and forwards it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Somministrazione {
    /// The AVR's own id of the dose; unique within `regione_somministrazione`.
    pub id_regionale: String,
    /// The person.
    pub id_assistito: IdAssistito,
    /// Region of residence (three-digit code).
    pub regione_residenza: String,
    /// Region where the dose was given.
    pub regione_somministrazione: String,
    /// ASL code.
    pub asl: String,
    /// Facility code.
    pub struttura: String,
    /// Date given.
    pub data_somministrazione: Date,
    /// Time given, `HH:MM`.
    pub ora: String,
    /// AIC code (or catalogue code, [`crate::vaccines`]).
    pub aic: String,
    /// Batch.
    pub lotto: String,
    /// Dose number.
    pub dose: u8,
    /// Kind of dose.
    pub tipo_dose: TipoDose,
    /// Risk category.
    pub categoria_rischio: CategoriaRischio,
    /// Health condition (`nessuna` or a named condition).
    pub condizione_sanitaria: String,
    /// Route (`IM`...).
    pub via: String,
    /// Site (`deltoide_sx`...).
    pub sito: String,
    /// Payment mode (`CO`).
    pub modalita: String,
    /// Green-pass contacts.
    #[serde(default)]
    pub contatti_dgc: ContattiDgc,
    /// Version, raised by each correction (a forced dose number...); 1 first.
    #[serde(default = "first_version")]
    pub versione: u32,
}

fn first_version() -> u32 {
    1
}

impl Somministrazione {
    /// The vaccine of the catalogue.
    pub fn vaccine(&self) -> Option<&'static vaccines::Vaccine> {
        vaccines::find(&self.aic)
    }

    /// The rules every receiver enforces (400 naming each bad field). `today` bounds
    /// the date.
    pub fn check(&self, today: Date) -> Result<(), Invalid> {
        let mut f = Fields::new();
        let nonempty = |f: &mut Fields, name: &str, v: &str, max: usize| {
            f.text(name, Some(v), true, max);
        };
        nonempty(&mut f, "id_regionale", &self.id_regionale, 64);
        check_id(&self.id_assistito, "id_assistito", &mut f);
        for (name, code) in [
            ("regione_residenza", &self.regione_residenza),
            ("regione_somministrazione", &self.regione_somministrazione),
        ] {
            if region_by_code(code).is_none() {
                f.error(name, format!("{code:?} is not a region code (010 ... 200)"));
            }
        }
        nonempty(&mut f, "asl", &self.asl, 16);
        nonempty(&mut f, "struttura", &self.struttura, 64);
        if self.data_somministrazione > today {
            f.error("data_somministrazione", format!("{} is in the future", self.data_somministrazione));
        }
        f.check("ora", check_time(&self.ora));
        if self.vaccine().is_none() {
            f.error("aic", format!("unknown vaccine {:?}; known: {}", self.aic, vaccines::known_codes()));
        }
        nonempty(&mut f, "lotto", &self.lotto, 32);
        if !(1..=9).contains(&self.dose) {
            f.error("dose", "must be between 1 and 9");
        }
        nonempty(&mut f, "condizione_sanitaria", &self.condizione_sanitaria, 64);
        nonempty(&mut f, "via", &self.via, 16);
        nonempty(&mut f, "sito", &self.sito, 32);
        nonempty(&mut f, "modalita", &self.modalita, 8);
        self.contatti_dgc.check("contatti_dgc", &mut f);
        if self.versione == 0 {
            f.error("versione", "starts at 1");
        }
        f.finish()
    }
}

/// Checks an identifier: a codice fiscale for `CF`, a Sistema TS identifier for `TS`.
pub fn check_id(id: &IdAssistito, prefix: &str, f: &mut Fields) {
    let field = format!("{prefix}.valore");
    match id.tipo {
        TipoId::Cf => {
            f.check(&field, CodiceFiscale::parse(&id.valore));
        }
        TipoId::Ts => {
            f.check(&field, check_ts_id(&id.valore));
        }
        TipoId::Team | TipoId::Eni | TipoId::Stp => {
            let v = id.valore.trim();
            if v.is_empty() || v.len() > 20 || !v.chars().all(|c| c.is_ascii_alphanumeric()) {
                f.error(&field, "must be 1 to 20 letters and digits");
            }
        }
    }
}

/// The identifier Sistema TS issues to people outside the SSN (GIAVA 2.3): ecosim
/// writes it `TS` followed by 14 digits (the real format is not public).
pub fn check_ts_id(v: &str) -> Result<(), String> {
    let ok = v.len() == 16 && v.starts_with("TS") && v[2..].bytes().all(|b| b.is_ascii_digit());
    if ok { Ok(()) } else { Err(format!("{v:?} is not a Sistema TS identifier (TS followed by 14 digits)")) }
}

/// `HH:MM`, 24-hour.
pub fn check_time(t: &str) -> Result<(), String> {
    let ok = t.len() == 5
        && t.as_bytes()[2] == b':'
        && t[..2].parse::<u8>().is_ok_and(|h| h < 24)
        && t[3..].parse::<u8>().is_ok_and(|m| m < 60)
        && t.bytes().enumerate().all(|(i, b)| i == 2 || b.is_ascii_digit());
    if ok { Ok(()) } else { Err(format!("{t:?} is not a time HH:MM")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Somministrazione {
        serde_json::from_value(serde_json::json!({
            "id_regionale": "d-1",
            "id_assistito": {"tipo": "CF", "valore": "RSSMRA45D25F205N"},
            "regione_residenza": "030", "regione_somministrazione": "160", "asl": "160101",
            "struttura": "HUB-BARI", "data_somministrazione": "2021-09-01", "ora": "10:30",
            "aic": "049269018", "lotto": "FC5089", "dose": 1, "tipo_dose": "ciclo_primario",
            "categoria_rischio": "altro", "condizione_sanitaria": "nessuna", "via": "IM",
            "sito": "deltoide_sx", "modalita": "CO", "contatti_dgc": {"cellulare": "+393331234567"}
        }))
        .expect("sample")
    }

    #[test]
    fn a_well_formed_dose_passes_and_starts_at_version_1() {
        let d = sample();
        assert_eq!(d.versione, 1);
        d.check(jiff::civil::date(2021, 10, 1)).expect("valid");
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut d = sample();
        d.regione_residenza = "999".into();
        d.ora = "25:00".into();
        d.aic = "123".into();
        d.dose = 0;
        d.contatti_dgc.cellulare = Some("333 1234567".into());
        let p = d.check(jiff::civil::date(2021, 10, 1)).unwrap_err();
        let fields: Vec<_> = p.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["regione_residenza", "ora", "aic", "dose", "contatti_dgc.cellulare"]);
    }

    #[test]
    fn avr_5b_mobile_digits_with_an_optional_plus() {
        assert!(check_avr_mobile("+393331234567").is_ok());
        assert!(check_avr_mobile("3333333333333333").is_ok());
        assert!(check_avr_mobile("333 1234567").unwrap_err().contains("AVR-5b"));
        assert!(check_avr_mobile("39+3331234567").is_err());
        assert!(check_avr_mobile("333-1234567").is_err());
    }

    #[test]
    fn ts_identifiers_and_times() {
        assert!(check_ts_id("TS00000000000042").is_ok());
        assert!(check_ts_id("TS0000000000004").is_err());
        assert!(check_ts_id("XX00000000000042").is_err());
        assert!(check_time("09:05").is_ok());
        assert!(check_time("9:05").is_err());
        assert!(check_time("23:60").is_err());
    }
}
