//! The requirement catalogue (`shared/spec/REQUIREMENTS.md`), built in so reports can
//! list every id, covered or not. An id no scenario cites is "not covered", never
//! passed; an id whose actor is not certified in a run is "not applicable".
//!
//! The catalogue is the Markdown file itself (`requirements.md`, a copy of the spec's),
//! read once: one place to edit, and the tables a reader sees are the ones the reports use.

use std::sync::OnceLock;

/// The spec's catalogue, as shipped in this crate.
const SOURCE: &str = include_str!("requirements.md");

/// Who must satisfy a requirement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Actor {
    /// A regional SAR (test results), the vendor's system.
    Sar,
    /// A regional AVR (vaccinations), the vendor's system.
    Avr,
    /// A national system ecosim simulates (Sistema TS, Immuni, AVN, PN-DGC).
    National,
}

/// What a certification run certifies: which vendor systems are under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Profile {
    /// A SAR only.
    #[serde(rename = "sar")]
    Sar,
    /// An AVR only.
    #[serde(rename = "avr")]
    Avr,
    /// Both.
    #[serde(rename = "sar+avr")]
    SarAvr,
}

impl Profile {
    /// `sar`, `avr` or `sar+avr`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sar => "sar",
            Self::Avr => "avr",
            Self::SarAvr => "sar+avr",
        }
    }

    /// Parses `sar`, `avr` or `sar+avr`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sar" => Some(Self::Sar),
            "avr" => Some(Self::Avr),
            "sar+avr" | "avr+sar" => Some(Self::SarAvr),
            _ => None,
        }
    }

    /// Whether the profile certifies `actor`.
    pub fn certifies(self, actor: Actor) -> bool {
        matches!((self, actor), (Self::Sar | Self::SarAvr, Actor::Sar) | (Self::Avr | Self::SarAvr, Actor::Avr))
    }
}

/// One requirement.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Requirement {
    /// Stable id (`ORD-3.1a`).
    pub id: &'static str,
    /// The catalogue section it belongs to.
    pub area: &'static str,
    /// Who must satisfy it, as the catalogue writes it (`SAR`, `SAR, AVR`, `Sistema TS`).
    pub actor_text: &'static str,
    /// Who must satisfy it.
    pub actors: Vec<Actor>,
    /// What it requires.
    pub text: &'static str,
}

impl Requirement {
    /// A vendor's system (SAR or AVR) must satisfy it.
    pub fn is_vendor_side(&self) -> bool {
        self.actors.iter().any(|a| *a != Actor::National)
    }

    /// Whether a run certifying `profile` judges it.
    pub fn applies_to(&self, profile: Profile) -> bool {
        self.actors.iter().any(|a| profile.certifies(*a))
    }
}

fn actors_of(text: &str) -> Vec<Actor> {
    let mut out: Vec<Actor> = text
        .split(',')
        .map(|a| match a.trim() {
            "SAR" => Actor::Sar,
            "AVR" => Actor::Avr,
            _ => Actor::National,
        })
        .collect();
    out.dedup();
    out
}

/// Reads the tables of the catalogue: a `## ` heading names the area, a row
/// `| id | actor | requirement |` is a requirement.
fn parse(source: &'static str) -> Vec<Requirement> {
    let mut area = "";
    let mut out = Vec::new();
    for line in source.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            area = h.trim();
            continue;
        }
        let cells: Vec<&'static str> = line.trim().trim_matches('|').split(" | ").map(str::trim).collect();
        let [id, actor, text] = cells[..] else { continue };
        if !line.starts_with('|') || id == "id" || id.starts_with("---") {
            continue;
        }
        out.push(Requirement { id, area, actor_text: actor, actors: actors_of(actor), text });
    }
    out
}

/// Every requirement, in catalogue order.
pub fn catalogue() -> &'static [Requirement] {
    static CATALOGUE: OnceLock<Vec<Requirement>> = OnceLock::new();
    CATALOGUE.get_or_init(|| parse(SOURCE))
}

/// The requirement with this id.
pub fn requirement(id: &str) -> Option<&'static Requirement> {
    catalogue().iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_every_id_once_with_its_actor() {
        let all = catalogue();
        assert_eq!(all.len(), 58);
        let mut ids: Vec<&str> = all.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 58, "duplicate ids");
        let ord = requirement("ORD-3.1a5").expect("ORD-3.1a5");
        assert_eq!(ord.actors, vec![Actor::Sar]);
        assert_eq!(ord.area, "Test results and CUN (Sistema TS <-> SAR)");
        assert_eq!(requirement("IFC-RETRY").expect("IFC").actors, vec![Actor::Sar, Actor::Avr]);
        assert_eq!(requirement("ORD-4").expect("ORD-4").actors, vec![Actor::National]);
        assert!(all.iter().all(|r| !r.text.is_empty() && !r.actor_text.is_empty()));
    }

    #[test]
    fn a_profile_judges_only_its_actors() {
        let retry = requirement("IFC-RETRY").expect("IFC");
        let giava = requirement("AVR-6b").expect("AVR-6b");
        let dgc = requirement("DGC-HC1").expect("DGC");
        assert!(retry.applies_to(Profile::Sar) && retry.applies_to(Profile::Avr));
        assert!(!giava.applies_to(Profile::Sar) && giava.applies_to(Profile::SarAvr));
        assert!(!dgc.applies_to(Profile::SarAvr) && !dgc.is_vendor_side());
        let vendor = all_vendor_side();
        assert_eq!(vendor, 27, "SAR and AVR ids");
    }

    fn all_vendor_side() -> usize {
        catalogue().iter().filter(|r| r.is_vendor_side()).count()
    }
}
