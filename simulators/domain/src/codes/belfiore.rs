//! Belfiore codes of birthplaces.
//!
//! Two tables. The **full table** ([`known`], [`existed_on`], [`name_of`]) is every
//! Italian comune with the dates it existed and every foreign state (`Z` codes), from
//! public ISTAT/ANPR data (`data/belfiore.tsv`, built and checked by
//! `tools/belfiore/build.py`): parsing a codice fiscale refuses a code it does not
//! know. The **birthplaces** ([`birthplaces`]) are the provincial capitals and the
//! foreign countries most represented among residents of Italy, which the synthetic
//! population is born in (never before the place existed).

use std::collections::HashMap;
use std::sync::OnceLock;

use jiff::civil::Date;

/// The full table, as built by `tools/belfiore/build.py`.
static TABLE: &str = include_str!("../../data/belfiore.tsv");

/// A period in which a code named a place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// First day it existed.
    pub from: Date,
    /// First day it no longer existed (`None`: it still does).
    pub until: Option<Date>,
    /// Province abbreviation, `EE` abroad.
    pub province: &'static str,
    /// The place's (latest) name.
    pub name: &'static str,
}

fn table() -> &'static HashMap<&'static str, Vec<Period>> {
    static PARSED: OnceLock<HashMap<&'static str, Vec<Period>>> = OnceLock::new();
    PARSED.get_or_init(|| {
        let mut map: HashMap<&'static str, Vec<Period>> = HashMap::new();
        for line in TABLE.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let f: Vec<&'static str> = line.split('\t').collect();
            let (Some(&code), Some(from), Some(until), Some(&province), Some(&name)) =
                (f.first(), f.get(1).and_then(|d| d.parse().ok()), f.get(2), f.get(3), f.get(4))
            else {
                continue;
            };
            let until = if until.is_empty() { None } else { until.parse().ok() };
            map.entry(code).or_default().push(Period { from, until, province, name });
        }
        map
    })
}

/// Whether `code` names, or named, a comune or a foreign state.
pub fn known(code: &str) -> bool {
    table().contains_key(code)
}

/// The periods of `code` (empty if unknown).
pub fn periods(code: &str) -> &'static [Period] {
    table().get(code).map(Vec::as_slice).unwrap_or_default()
}

/// Whether `code` named a place on `day`.
pub fn existed_on(code: &str, day: Date) -> bool {
    periods(code).iter().any(|p| p.from <= day && p.until.is_none_or(|u| day < u))
}

/// The place's latest name.
pub fn name_of(code: &str) -> Option<&'static str> {
    periods(code).last().map(|p| p.name)
}

/// Whether a birthplace is an Italian comune or a foreign country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BirthplaceKind {
    /// An Italian comune, with its province abbreviation and region code.
    Italy {
        /// Province abbreviation (`MI`).
        province: &'static str,
        /// The Ministry's three-digit region code (`030`).
        region: &'static str,
    },
    /// A foreign country (`Z` code).
    Abroad,
}

/// A birthplace with its Belfiore code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Birthplace {
    /// Belfiore code (`F205`, `Z112`).
    pub code: &'static str,
    /// Name (`Milano`, `Germania`).
    pub name: &'static str,
    /// Italian comune or foreign country.
    pub kind: BirthplaceKind,
}

const fn place(code: &'static str, name: &'static str, kind: BirthplaceKind) -> Birthplace {
    Birthplace { code, name, kind }
}

use BirthplaceKind::{Abroad, Italy};

static PLACES: &[Birthplace] = &[
    place("A089", "Agrigento", Italy { province: "AG", region: "190" }),
    place("A182", "Alessandria", Italy { province: "AL", region: "010" }),
    place("A271", "Ancona", Italy { province: "AN", region: "110" }),
    place("A326", "Aosta", Italy { province: "AO", region: "020" }),
    place("A390", "Arezzo", Italy { province: "AR", region: "090" }),
    place("A462", "Ascoli Piceno", Italy { province: "AP", region: "110" }),
    place("A479", "Asti", Italy { province: "AT", region: "010" }),
    place("A509", "Avellino", Italy { province: "AV", region: "150" }),
    place("A662", "Bari", Italy { province: "BA", region: "160" }),
    place("A669", "Barletta", Italy { province: "BT", region: "160" }),
    place("A285", "Andria", Italy { province: "BT", region: "160" }),
    place("L328", "Trani", Italy { province: "BT", region: "160" }),
    place("A757", "Belluno", Italy { province: "BL", region: "050" }),
    place("A783", "Benevento", Italy { province: "BN", region: "150" }),
    place("A794", "Bergamo", Italy { province: "BG", region: "030" }),
    place("A859", "Biella", Italy { province: "BI", region: "010" }),
    place("A944", "Bologna", Italy { province: "BO", region: "080" }),
    place("A952", "Bolzano", Italy { province: "BZ", region: "041" }),
    place("B157", "Brescia", Italy { province: "BS", region: "030" }),
    place("B180", "Brindisi", Italy { province: "BR", region: "160" }),
    place("B354", "Cagliari", Italy { province: "CA", region: "200" }),
    place("B429", "Caltanissetta", Italy { province: "CL", region: "190" }),
    place("B519", "Campobasso", Italy { province: "CB", region: "140" }),
    place("B963", "Caserta", Italy { province: "CE", region: "150" }),
    place("C351", "Catania", Italy { province: "CT", region: "190" }),
    place("C352", "Catanzaro", Italy { province: "CZ", region: "180" }),
    place("C632", "Chieti", Italy { province: "CH", region: "130" }),
    place("C933", "Como", Italy { province: "CO", region: "030" }),
    place("D086", "Cosenza", Italy { province: "CS", region: "180" }),
    place("D150", "Cremona", Italy { province: "CR", region: "030" }),
    place("D122", "Crotone", Italy { province: "KR", region: "180" }),
    place("D205", "Cuneo", Italy { province: "CN", region: "010" }),
    place("C342", "Enna", Italy { province: "EN", region: "190" }),
    place("D542", "Fermo", Italy { province: "FM", region: "110" }),
    place("D548", "Ferrara", Italy { province: "FE", region: "080" }),
    place("D612", "Firenze", Italy { province: "FI", region: "090" }),
    place("D643", "Foggia", Italy { province: "FG", region: "160" }),
    place("D704", "Forlì", Italy { province: "FC", region: "080" }),
    place("C573", "Cesena", Italy { province: "FC", region: "080" }),
    place("D810", "Frosinone", Italy { province: "FR", region: "120" }),
    place("D969", "Genova", Italy { province: "GE", region: "070" }),
    place("E098", "Gorizia", Italy { province: "GO", region: "060" }),
    place("E202", "Grosseto", Italy { province: "GR", region: "090" }),
    place("E290", "Imperia", Italy { province: "IM", region: "070" }),
    place("E335", "Isernia", Italy { province: "IS", region: "140" }),
    place("A345", "L'Aquila", Italy { province: "AQ", region: "130" }),
    place("E463", "La Spezia", Italy { province: "SP", region: "070" }),
    place("E472", "Latina", Italy { province: "LT", region: "120" }),
    place("E506", "Lecce", Italy { province: "LE", region: "160" }),
    place("E507", "Lecco", Italy { province: "LC", region: "030" }),
    place("E625", "Livorno", Italy { province: "LI", region: "090" }),
    place("E648", "Lodi", Italy { province: "LO", region: "030" }),
    place("E715", "Lucca", Italy { province: "LU", region: "090" }),
    place("E783", "Macerata", Italy { province: "MC", region: "110" }),
    place("E897", "Mantova", Italy { province: "MN", region: "030" }),
    place("F023", "Massa", Italy { province: "MS", region: "090" }),
    place("F052", "Matera", Italy { province: "MT", region: "170" }),
    place("F158", "Messina", Italy { province: "ME", region: "190" }),
    place("F205", "Milano", Italy { province: "MI", region: "030" }),
    place("F257", "Modena", Italy { province: "MO", region: "080" }),
    place("F704", "Monza", Italy { province: "MB", region: "030" }),
    place("F839", "Napoli", Italy { province: "NA", region: "150" }),
    place("F952", "Novara", Italy { province: "NO", region: "010" }),
    place("F979", "Nuoro", Italy { province: "NU", region: "200" }),
    place("G113", "Oristano", Italy { province: "OR", region: "200" }),
    place("G224", "Padova", Italy { province: "PD", region: "050" }),
    place("G273", "Palermo", Italy { province: "PA", region: "190" }),
    place("G337", "Parma", Italy { province: "PR", region: "080" }),
    place("G388", "Pavia", Italy { province: "PV", region: "030" }),
    place("G478", "Perugia", Italy { province: "PG", region: "100" }),
    place("G479", "Pesaro", Italy { province: "PU", region: "110" }),
    place("L500", "Urbino", Italy { province: "PU", region: "110" }),
    place("G482", "Pescara", Italy { province: "PE", region: "130" }),
    place("G535", "Piacenza", Italy { province: "PC", region: "080" }),
    place("G702", "Pisa", Italy { province: "PI", region: "090" }),
    place("G713", "Pistoia", Italy { province: "PT", region: "090" }),
    place("G888", "Pordenone", Italy { province: "PN", region: "060" }),
    place("G942", "Potenza", Italy { province: "PZ", region: "170" }),
    place("G999", "Prato", Italy { province: "PO", region: "090" }),
    place("H163", "Ragusa", Italy { province: "RG", region: "190" }),
    place("H199", "Ravenna", Italy { province: "RA", region: "080" }),
    place("H224", "Reggio Calabria", Italy { province: "RC", region: "180" }),
    place("H223", "Reggio Emilia", Italy { province: "RE", region: "080" }),
    place("H282", "Rieti", Italy { province: "RI", region: "120" }),
    place("H294", "Rimini", Italy { province: "RN", region: "080" }),
    place("H501", "Roma", Italy { province: "RM", region: "120" }),
    place("H620", "Rovigo", Italy { province: "RO", region: "050" }),
    place("H703", "Salerno", Italy { province: "SA", region: "150" }),
    place("I452", "Sassari", Italy { province: "SS", region: "200" }),
    place("I480", "Savona", Italy { province: "SV", region: "070" }),
    place("I726", "Siena", Italy { province: "SI", region: "090" }),
    place("I754", "Siracusa", Italy { province: "SR", region: "190" }),
    place("I829", "Sondrio", Italy { province: "SO", region: "030" }),
    place("B745", "Carbonia", Italy { province: "SU", region: "200" }),
    place("L049", "Taranto", Italy { province: "TA", region: "160" }),
    place("L103", "Teramo", Italy { province: "TE", region: "130" }),
    place("L117", "Terni", Italy { province: "TR", region: "100" }),
    place("L219", "Torino", Italy { province: "TO", region: "010" }),
    place("L331", "Trapani", Italy { province: "TP", region: "190" }),
    place("L378", "Trento", Italy { province: "TN", region: "042" }),
    place("L407", "Treviso", Italy { province: "TV", region: "050" }),
    place("L424", "Trieste", Italy { province: "TS", region: "060" }),
    place("L483", "Udine", Italy { province: "UD", region: "060" }),
    place("L682", "Varese", Italy { province: "VA", region: "030" }),
    place("L736", "Venezia", Italy { province: "VE", region: "050" }),
    place("L746", "Verbania", Italy { province: "VB", region: "010" }),
    place("L750", "Vercelli", Italy { province: "VC", region: "010" }),
    place("L781", "Verona", Italy { province: "VR", region: "050" }),
    place("F537", "Vibo Valentia", Italy { province: "VV", region: "180" }),
    place("L840", "Vicenza", Italy { province: "VI", region: "050" }),
    place("M082", "Viterbo", Italy { province: "VT", region: "120" }),
    place("Z100", "Albania", Abroad),
    place("Z102", "Austria", Abroad),
    place("Z103", "Belgio", Abroad),
    place("Z110", "Francia", Abroad),
    place("Z112", "Germania", Abroad),
    place("Z114", "Regno Unito", Abroad),
    place("Z115", "Grecia", Abroad),
    place("Z127", "Polonia", Abroad),
    place("Z129", "Romania", Abroad),
    place("Z131", "Spagna", Abroad),
    place("Z133", "Svizzera", Abroad),
    place("Z138", "Ucraina", Abroad),
    place("Z140", "Moldavia", Abroad),
    place("Z210", "Cina", Abroad),
    place("Z216", "Filippine", Abroad),
    place("Z222", "India", Abroad),
    place("Z236", "Pakistan", Abroad),
    place("Z249", "Bangladesh", Abroad),
    place("Z330", "Marocco", Abroad),
    place("Z336", "Egitto", Abroad),
    place("Z343", "Senegal", Abroad),
    place("Z352", "Tunisia", Abroad),
    place("Z404", "Stati Uniti d'America", Abroad),
    place("Z600", "Argentina", Abroad),
    place("Z602", "Brasile", Abroad),
    place("Z611", "Perù", Abroad),
];

/// Every birthplace known to ecosim.
pub fn birthplaces() -> &'static [Birthplace] {
    PLACES
}

/// The birthplace with Belfiore code `code`, if listed.
pub fn birthplace(code: &str) -> Option<&'static Birthplace> {
    PLACES.iter().find(|p| p.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for p in birthplaces() {
            assert!(seen.insert(p.code), "duplicate {}", p.code);
            let b = p.code.as_bytes();
            assert_eq!(b.len(), 4);
            assert!(b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit));
            assert_eq!(b[0] == b'Z', p.kind == Abroad, "{}", p.code);
        }
        assert!(birthplaces().iter().filter(|p| p.kind != Abroad).count() >= 107);
        // Every birthplace is in the full table.
        for p in birthplaces() {
            assert!(known(p.code), "{} {} is not in data/belfiore.tsv", p.code, p.name);
        }
    }

    #[test]
    fn milan_is_f205_in_lombardy() {
        let p = birthplace("F205").expect("listed");
        assert_eq!(p.name, "Milano");
        assert_eq!(p.kind, Italy { province: "MI", region: "030" });
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn the_full_table_knows_comuni_and_states_with_their_dates() {
        assert!(table().len() > 9_000, "{} codes", table().len());
        assert_eq!(name_of("F205"), Some("Milano"));
        assert_eq!(name_of("Z112"), Some("Germania"));
        for unknown in ["Z999", "Y123", "K899"] {
            assert!(!known(unknown), "{unknown}");
        }
        // Latina (as Littoria) from 6 November 1932; Massa suppressed 1938-1946 (Apuania).
        assert!(!existed_on("E472", date(1925, 1, 1)) && existed_on("E472", date(1950, 1, 1)));
        assert!(existed_on("F023", date(1930, 1, 1)) && !existed_on("F023", date(1940, 1, 1)));
        assert!(existed_on("F023", date(1950, 1, 1)));
    }
}
