//! Italian regions (the Ministry's three-digit codes) and their health authorities (ASL).

/// A region or autonomous province.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Three-digit code (`160`).
    pub code: &'static str,
    /// Name (`Puglia`).
    pub name: &'static str,
    /// Residents, in thousands (ISTAT, 1 Jan 2021, rounded): weighs the synthetic population.
    pub residents_k: u32,
    /// How many local health authorities it has (ASL, ATS, ASP... all called ASL here).
    pub asl_count: u8,
}

const fn region(code: &'static str, name: &'static str, residents_k: u32, asl_count: u8) -> Region {
    Region { code, name, residents_k, asl_count }
}

static REGIONS: [Region; 21] = [
    region("010", "Piemonte", 4_274, 12),
    region("020", "Valle d'Aosta", 124, 1),
    region("030", "Lombardia", 9_981, 8),
    region("041", "PA Bolzano", 533, 1),
    region("042", "PA Trento", 542, 1),
    region("050", "Veneto", 4_870, 9),
    region("060", "Friuli-Venezia Giulia", 1_201, 3),
    region("070", "Liguria", 1_509, 5),
    region("080", "Emilia-Romagna", 4_438, 8),
    region("090", "Toscana", 3_692, 3),
    region("100", "Umbria", 865, 2),
    region("110", "Marche", 1_501, 5),
    region("120", "Lazio", 5_731, 10),
    region("130", "Abruzzo", 1_285, 4),
    region("140", "Molise", 295, 1),
    region("150", "Campania", 5_712, 7),
    region("160", "Puglia", 3_933, 6),
    region("170", "Basilicata", 547, 2),
    region("180", "Calabria", 1_860, 5),
    region("190", "Sicilia", 4_834, 9),
    region("200", "Sardegna", 1_598, 8),
];

/// All 21 regions and autonomous provinces, in code order.
pub fn regions() -> &'static [Region] {
    &REGIONS
}

/// The region with three-digit code `code`.
pub fn region_by_code(code: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.code == code)
}

impl Region {
    /// The code of the region's `n`-th ASL (0-based): region code + `1nn`, e.g. `160101`.
    pub fn asl_code(&self, n: u8) -> String {
        format!("{}{}", self.code, 101 + u16::from(n))
    }

    /// Codes of all its ASLs.
    pub fn asl_codes(&self) -> Vec<String> {
        (0..self.asl_count).map(|n| self.asl_code(n)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_ministry_ones() {
        assert_eq!(region_by_code("160").map(|r| r.name), Some("Puglia"));
        assert_eq!(region_by_code("030").map(|r| r.name), Some("Lombardia"));
        assert!(region_by_code("999").is_none());
        assert_eq!(region_by_code("160").map(|r| r.asl_codes().len()), Some(6));
        assert_eq!(region_by_code("160").map(|r| r.asl_code(0)), Some("160101".to_owned()));
    }
}
