//! The COVID-19 vaccine catalogue the AVR, AVN, Sistema TS and PN-DGC share.
//!
//! Each vaccine has a catalogue code (`COMIRNATY`, `COMIRNATY-10`, `SPUTNIK-V`...),
//! its Italian AIC code where CODES.md gives one, whether EMA authorised it, the
//! doses of its primary cycle, the minimum interval between them (GIAVA ch. 6, the
//! ministry's circulars: Comirnaty 21 days, Spikevax and Vaxzevria 28, never beyond
//! 42 for the mRNA vaccines), and its EU DCC value-set codes.
//!
//! Wherever an interface takes an `aic` field it accepts the AIC code or, for a
//! vaccine whose AIC is not known here, the catalogue code ([`find`] takes both,
//! and the product name, case-insensitively).
//!
//! ```
//! use ecosim_domain::vaccines;
//! let c = vaccines::find("049269018").unwrap();
//! assert_eq!(c.code, "COMIRNATY");
//! assert_eq!(c.primary_doses, 2);
//! assert!(!vaccines::find("Sputnik-V").unwrap().ema);
//! ```

/// One vaccine of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Vaccine {
    /// Catalogue code (`COMIRNATY`, `COMIRNATY-10`...).
    pub code: &'static str,
    /// Italian AIC code of the pack, where known (CODES.md).
    pub aic: Option<&'static str>,
    /// Product name as registries show it (`COMIRNATY`).
    pub farmaco: &'static str,
    /// The formulation, when it matters (`30 mcg`, `10 mcg pediatrico`).
    pub formulazione: Option<&'static str>,
    /// Authorised by EMA.
    pub ema: bool,
    /// An mRNA vaccine (the only kind allowed as a booster after a non-EMA cycle, AVR-6d).
    pub mrna: bool,
    /// The paediatric formulation for ages 5-11 (AVR-7).
    pub pediatrico: bool,
    /// Doses in the primary cycle.
    pub primary_doses: u8,
    /// Minimum days between primary doses.
    pub min_interval_days: Option<u16>,
    /// EU DCC `mp` (medicinal product).
    pub dcc_product: &'static str,
    /// EU DCC `ma` (marketing authorisation holder).
    pub dcc_manufacturer: &'static str,
    /// EU DCC `vp` (vaccine type).
    pub dcc_type: &'static str,
}

impl Vaccine {
    /// The code an `aic` field carries: the AIC where known, else the catalogue code.
    pub fn aic_or_code(&self) -> &'static str {
        self.aic.unwrap_or(self.code)
    }

    /// Days beyond which a second mRNA dose is late (warning only).
    pub fn max_interval_days(&self) -> Option<u16> {
        self.mrna.then_some(MRNA_MAX_INTERVAL_DAYS)
    }
}

/// Never beyond 42 days between mRNA primary doses (ministry circular of 2021-05-05).
pub const MRNA_MAX_INTERVAL_DAYS: u16 = 42;

/// Days after a cycle with a vaccine EMA did not authorise up to which an mRNA dose
/// is a booster (dose n+1); later it starts a new cycle as dose 1 (GIAVA 6.3, AVR-6d).
/// The AVR assigns by it and Sistema TS checks by it.
pub const NON_EMA_BOOSTER_UNTIL_DAYS: i32 = 180;

const MRNA: &str = "1119349007";
const GENERIC: &str = "J07BX03";
const ANTIGEN: &str = "1119305005";

static CATALOGUE: &[Vaccine] = &[
    Vaccine {
        code: "COMIRNATY",
        aic: Some("049269018"),
        farmaco: "COMIRNATY",
        formulazione: Some("30 mcg"),
        ema: true,
        mrna: true,
        pediatrico: false,
        primary_doses: 2,
        min_interval_days: Some(21),
        dcc_product: "EU/1/20/1528",
        dcc_manufacturer: "ORG-100030215",
        dcc_type: MRNA,
    },
    Vaccine {
        code: "COMIRNATY-10",
        aic: None,
        farmaco: "COMIRNATY",
        formulazione: Some("10 mcg pediatrico"),
        ema: true,
        mrna: true,
        pediatrico: true,
        primary_doses: 2,
        min_interval_days: Some(21),
        dcc_product: "EU/1/20/1528",
        dcc_manufacturer: "ORG-100030215",
        dcc_type: MRNA,
    },
    Vaccine {
        code: "SPIKEVAX",
        aic: Some("049283017"),
        farmaco: "SPIKEVAX",
        formulazione: None,
        ema: true,
        mrna: true,
        pediatrico: false,
        primary_doses: 2,
        min_interval_days: Some(28),
        dcc_product: "EU/1/20/1507",
        dcc_manufacturer: "ORG-100031184",
        dcc_type: MRNA,
    },
    Vaccine {
        code: "VAXZEVRIA",
        aic: Some("049314026"),
        farmaco: "VAXZEVRIA",
        formulazione: None,
        ema: true,
        mrna: false,
        pediatrico: false,
        primary_doses: 2,
        min_interval_days: Some(28),
        dcc_product: "EU/1/21/1529",
        dcc_manufacturer: "ORG-100001699",
        dcc_type: GENERIC,
    },
    Vaccine {
        code: "JANSSEN",
        aic: None,
        farmaco: "COVID-19 VACCINE JANSSEN",
        formulazione: None,
        ema: true,
        mrna: false,
        pediatrico: false,
        primary_doses: 1,
        min_interval_days: None,
        dcc_product: "EU/1/20/1525",
        dcc_manufacturer: "ORG-100001417",
        dcc_type: GENERIC,
    },
    Vaccine {
        code: "NUVAXOVID",
        aic: None,
        farmaco: "NUVAXOVID",
        formulazione: None,
        ema: true,
        mrna: false,
        pediatrico: false,
        primary_doses: 2,
        min_interval_days: Some(21),
        dcc_product: "EU/1/21/1618",
        dcc_manufacturer: "ORG-100032020",
        dcc_type: ANTIGEN,
    },
    Vaccine {
        code: "SPUTNIK-V",
        aic: None,
        farmaco: "SPUTNIK V",
        formulazione: None,
        ema: false,
        mrna: false,
        pediatrico: false,
        primary_doses: 2,
        min_interval_days: Some(21),
        dcc_product: "Sputnik-V",
        dcc_manufacturer: "Gamaleya-Research-Institute",
        dcc_type: GENERIC,
    },
    Vaccine {
        code: "CORONAVAC",
        aic: None,
        farmaco: "CORONAVAC",
        formulazione: None,
        ema: false,
        mrna: false,
        pediatrico: false,
        primary_doses: 2,
        min_interval_days: Some(14),
        dcc_product: "CoronaVac",
        dcc_manufacturer: "Sinovac-Biotech",
        dcc_type: GENERIC,
    },
    Vaccine {
        code: "BBIBP-CORV",
        aic: None,
        farmaco: "BBIBP-CORV",
        formulazione: None,
        ema: false,
        mrna: false,
        pediatrico: false,
        primary_doses: 2,
        min_interval_days: Some(21),
        dcc_product: "BBIBP-CorV",
        dcc_manufacturer: "ORG-100020693",
        dcc_type: GENERIC,
    },
    Vaccine {
        code: "COVAXIN",
        aic: None,
        farmaco: "COVAXIN",
        formulazione: None,
        ema: false,
        mrna: false,
        pediatrico: false,
        primary_doses: 2,
        min_interval_days: Some(28),
        dcc_product: "Covaxin",
        dcc_manufacturer: "Bharat-Biotech",
        dcc_type: GENERIC,
    },
];

/// Every vaccine of the catalogue.
pub fn catalogue() -> &'static [Vaccine] {
    CATALOGUE
}

/// The vaccine with this AIC code, catalogue code or DCC product name (case-insensitive).
pub fn find(code: &str) -> Option<&'static Vaccine> {
    let code = code.trim();
    CATALOGUE
        .iter()
        .find(|v| v.aic == Some(code) || v.code.eq_ignore_ascii_case(code) || v.dcc_product.eq_ignore_ascii_case(code))
}

/// The catalogue codes, for error messages.
pub fn known_codes() -> String {
    CATALOGUE.iter().map(|v| v.aic_or_code()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aic_codes_of_codes_md_are_in_the_catalogue() {
        assert_eq!(find("049269018").map(|v| v.code), Some("COMIRNATY"));
        assert_eq!(find("049283017").map(|v| v.code), Some("SPIKEVAX"));
        assert_eq!(find("049314026").map(|v| v.code), Some("VAXZEVRIA"));
    }

    #[test]
    fn codes_are_unique_and_non_ema_vaccines_are_the_four_foreign_ones() {
        let mut codes: Vec<_> = catalogue().iter().map(Vaccine::aic_or_code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), catalogue().len());
        let foreign: Vec<_> = catalogue().iter().filter(|v| !v.ema).map(|v| v.code).collect();
        assert_eq!(foreign, ["SPUTNIK-V", "CORONAVAC", "BBIBP-CORV", "COVAXIN"]);
    }

    #[test]
    fn intervals_follow_the_circulars() {
        assert_eq!(find("COMIRNATY").unwrap().min_interval_days, Some(21));
        assert_eq!(find("spikevax").unwrap().min_interval_days, Some(28));
        assert_eq!(find("VAXZEVRIA").unwrap().min_interval_days, Some(28));
        assert_eq!(find("SPIKEVAX").unwrap().max_interval_days(), Some(42));
        assert_eq!(find("VAXZEVRIA").unwrap().max_interval_days(), None);
        assert_eq!(find("JANSSEN").unwrap().primary_doses, 1);
        assert!(find("COMIRNATY-10").unwrap().pediatrico);
        assert!(find("nothing").is_none());
    }
}
