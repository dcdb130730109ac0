//! The synthetic population: the national registry (anagrafe) every simulator shares.
//!
//! [`Population::generate`] draws `size` citizens from a seed: surname, name, sex,
//! birth date (ages 0-100 with the Italian age pyramid), birthplace, a codice fiscale
//! consistent with all of them (the omocode variant when two people collide), a
//! health card of the region of residence, an ASL, and contacts (a mobile number for
//! about 85%, an e-mail for about 60%; minors carry a parent's mobile). Same seed and
//! size, same population, on every machine.
//!
//! Citizens are stored compactly (names and places are indices into static tables,
//! contacts are numbers rendered on demand) so a million of them fit easily in memory.
//!
//! ## Measured
//! `ecosim bench population --size 1000000` on the 2-core CI machine (release build):
//! 1,000,000 citizens in 0.7-0.9 s (target < 3 s), 129 MiB of heap and 144 MiB peak
//! resident for the whole process with mimalloc (target < 600 MB). The README's "Measured figures"
//! table has the same numbers.

mod names;

use std::collections::HashMap;

use jiff::civil::Date;

use crate::codes::{
    Birthplace, BirthplaceKind, CardLast8, CardNumber, CodiceFiscale, Email, MobileNumber, PersonData, Sex,
    TesseraSanitaria, birthplaces,
};
use crate::regions::{Region, regions};
use crate::rng::SeededRng;

/// The date populations are generated against when none is given: the default start
/// of the shared clock.
pub const DEFAULT_REFERENCE_DATE: Date = jiff::civil::date(2021, 10, 1);

const EMAIL_DOMAINS: &[&str] = &["posta.test", "libero.test", "gmail.test", "alice.test", "tiscali.test"];

/// Age in whole years on `day` of someone born on `born` (the one age rule of the
/// workspace: minors for ORD-6.1a, the AVR's age bands, the registry).
pub fn age_on(born: Date, day: Date) -> i16 {
    let had_birthday = (day.month(), day.day()) >= (born.month(), born.day());
    day.year() - born.year() - i16::from(!had_birthday)
}

/// Share of residents per 5-year age band 0-4 ... 95-100, per mille (ISTAT 2021, rounded).
const AGE_BANDS: [u32; 20] = [39, 45, 48, 48, 50, 52, 54, 60, 70, 79, 81, 77, 67, 61, 56, 46, 37, 23, 10, 3];

/// One person of the registry.
#[derive(Debug, Clone)]
pub struct Citizen {
    codice_fiscale: CodiceFiscale,
    card: CardNumber,
    card_expiry: Date,
    birth_date: Date,
    surname: u16,
    name: u16,
    birthplace: u16,
    sex: Sex,
    region: u8,
    asl: u8,
    /// National mobile number as a number, 0 for none.
    mobile: u64,
    /// A parent's national mobile number (minors), 0 for none.
    parent_mobile: u64,
    /// E-mail: domain index + 1 in the high byte, numeric suffix in the low; 0 for none.
    email: u16,
}

/// A citizen as the registry exports it (`ecosim population`, Sistema TS).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CitizenRecord {
    /// Codice fiscale.
    pub codice_fiscale: String,
    /// Surname.
    pub cognome: String,
    /// Given name.
    pub nome: String,
    /// `M` or `F`.
    pub sesso: Sex,
    /// `YYYY-MM-DD`.
    pub data_nascita: String,
    /// Belfiore code of the birthplace.
    pub comune_nascita: String,
    /// Three-digit region code of residence.
    pub regione: String,
    /// ASL code.
    pub asl: String,
    /// 20-digit health card number.
    pub tessera_sanitaria: String,
    /// Card expiry, `YYYY-MM-DD`.
    pub scadenza_ts: String,
    /// E.164 mobile, or empty.
    pub cellulare: String,
    /// E-mail, or empty.
    pub email: String,
    /// A parent's E.164 mobile for minors, or empty.
    pub cellulare_genitore: String,
}

impl CitizenRecord {
    /// Column names, in order, for CSV output.
    pub const FIELDS: [&'static str; 13] = [
        "codice_fiscale",
        "cognome",
        "nome",
        "sesso",
        "data_nascita",
        "comune_nascita",
        "regione",
        "asl",
        "tessera_sanitaria",
        "scadenza_ts",
        "cellulare",
        "email",
        "cellulare_genitore",
    ];

    /// The values in [`Self::FIELDS`] order.
    pub fn values(&self) -> [&str; 13] {
        [
            &self.codice_fiscale,
            &self.cognome,
            &self.nome,
            match self.sesso {
                Sex::M => "M",
                Sex::F => "F",
            },
            &self.data_nascita,
            &self.comune_nascita,
            &self.regione,
            &self.asl,
            &self.tessera_sanitaria,
            &self.scadenza_ts,
            &self.cellulare,
            &self.email,
            &self.cellulare_genitore,
        ]
    }
}

fn mobile_from(n: u64) -> Option<MobileNumber> {
    (n != 0).then(|| MobileNumber::parse(&n.to_string()).ok()).flatten()
}

/// Lower-case ASCII letters of a name, for e-mail local parts.
fn ascii_slug(text: &str) -> String {
    let folded: String = text
        .chars()
        .map(|c| match c {
            'à' | 'á' => 'a',
            'è' | 'é' => 'e',
            'ì' | 'í' => 'i',
            'ò' | 'ó' => 'o',
            'ù' | 'ú' => 'u',
            c => c,
        })
        .collect();
    folded.chars().filter(char::is_ascii_alphabetic).map(|c| c.to_ascii_lowercase()).collect()
}

impl Citizen {
    /// Codice fiscale (an omocode variant for the later of two colliding people).
    pub fn codice_fiscale(&self) -> &CodiceFiscale {
        &self.codice_fiscale
    }
    /// Surname.
    pub fn surname(&self) -> &'static str {
        names::SURNAMES[usize::from(self.surname)]
    }
    /// Given name.
    pub fn name(&self) -> &'static str {
        match self.sex {
            Sex::M => names::MALE_NAMES[usize::from(self.name)],
            Sex::F => names::FEMALE_NAMES[usize::from(self.name)],
        }
    }
    /// Sex.
    pub fn sex(&self) -> Sex {
        self.sex
    }
    /// Date of birth.
    pub fn birth_date(&self) -> Date {
        self.birth_date
    }
    /// Age in whole years on `today`.
    pub fn age_on(&self, today: Date) -> i16 {
        age_on(self.birth_date, today)
    }
    /// Under 18 on `today`.
    pub fn is_minor_on(&self, today: Date) -> bool {
        self.age_on(today) < 18
    }
    /// Birthplace.
    pub fn birthplace(&self) -> &'static Birthplace {
        &birthplaces()[usize::from(self.birthplace)]
    }
    /// Region of residence.
    pub fn region(&self) -> &'static Region {
        &regions()[usize::from(self.region)]
    }
    /// ASL code.
    pub fn asl(&self) -> String {
        self.region().asl_code(self.asl)
    }
    /// The health card.
    pub fn card(&self) -> TesseraSanitaria {
        TesseraSanitaria { number: self.card, expiry: self.card_expiry }
    }
    /// The citizen's own mobile number, if registered.
    pub fn mobile(&self) -> Option<MobileNumber> {
        mobile_from(self.mobile)
    }
    /// A parent's mobile number (minors only).
    pub fn parent_mobile(&self) -> Option<MobileNumber> {
        mobile_from(self.parent_mobile)
    }
    /// The e-mail address, if registered.
    pub fn email(&self) -> Option<Email> {
        if self.email == 0 {
            return None;
        }
        let domain = EMAIL_DOMAINS[usize::from(self.email >> 8) - 1];
        let suffix = self.email & 0xff;
        let name = ascii_slug(self.name());
        let surname = ascii_slug(self.surname());
        Email::parse(&format!("{name}.{surname}{suffix}@{domain}")).ok()
    }

    /// The registry export of this citizen.
    pub fn record(&self) -> CitizenRecord {
        let text = |m: Option<MobileNumber>| m.map(|m| m.to_string()).unwrap_or_default();
        CitizenRecord {
            codice_fiscale: self.codice_fiscale.to_string(),
            cognome: self.surname().to_owned(),
            nome: self.name().to_owned(),
            sesso: self.sex,
            data_nascita: self.birth_date.to_string(),
            comune_nascita: self.birthplace().code.to_owned(),
            regione: self.region().code.to_owned(),
            asl: self.asl(),
            tessera_sanitaria: self.card.to_string(),
            scadenza_ts: self.card_expiry.to_string(),
            cellulare: text(self.mobile()),
            email: self.email().map(|e| e.to_string()).unwrap_or_default(),
            cellulare_genitore: text(self.parent_mobile()),
        }
    }
}

/// A cumulative-weight table for fast weighted draws.
struct Weighted(Vec<u64>);

impl Weighted {
    fn new(weights: impl IntoIterator<Item = u64>) -> Self {
        let mut total = 0;
        Self(
            weights
                .into_iter()
                .map(|w| {
                    total += w;
                    total
                })
                .collect(),
        )
    }
    fn zipf(len: usize) -> Self {
        Self::new((0..len).map(|rank| 100_000 / (rank as u64 + 8)))
    }
    fn draw(&self, rng: &mut SeededRng) -> usize {
        let total = self.0.last().copied().unwrap_or(1);
        let x = rng.below(total);
        self.0.partition_point(|&c| c <= x)
    }
}

/// The seeded national registry.
#[derive(Debug)]
pub struct Population {
    seed: u64,
    reference_date: Date,
    citizens: Vec<Citizen>,
    by_cf: HashMap<CodiceFiscale, u32>,
    by_last8: HashMap<u32, u32>,
}

struct Generator {
    rng: SeededRng,
    today: Date,
    surnames: Weighted,
    male: Weighted,
    female: Weighted,
    regions: Weighted,
    italian_places: Vec<u16>,
    places_by_region: HashMap<&'static str, Vec<u16>>,
    abroad: Vec<u16>,
}

impl Generator {
    fn new(seed: u64, today: Date) -> Self {
        let mut italian_places = Vec::new();
        let mut abroad = Vec::new();
        let mut places_by_region: HashMap<&'static str, Vec<u16>> = HashMap::new();
        for (i, p) in birthplaces().iter().enumerate() {
            match p.kind {
                BirthplaceKind::Italy { region, .. } => {
                    italian_places.push(i as u16);
                    places_by_region.entry(region).or_default().push(i as u16);
                }
                BirthplaceKind::Abroad => abroad.push(i as u16),
            }
        }
        Self {
            rng: SeededRng::derive(seed, "population"),
            today,
            surnames: Weighted::zipf(names::SURNAMES.len()),
            male: Weighted::zipf(names::MALE_NAMES.len()),
            female: Weighted::zipf(names::FEMALE_NAMES.len()),
            regions: Weighted::new(regions().iter().map(|r| u64::from(r.residents_k))),
            italian_places,
            places_by_region,
            abroad,
        }
    }

    fn birth_date(&mut self) -> (Date, i16) {
        let band = self.rng.weighted(&AGE_BANDS) as i64;
        let age = (band * 5 + self.rng.range_inclusive(0, 4)).min(100);
        let days = age * 365 + self.rng.range_inclusive(0, 364) + age / 4;
        let born = self.today.checked_sub(jiff::Span::new().days(days)).unwrap_or(self.today);
        (born, age_on(born, self.today))
    }

    fn mobile(&mut self) -> u64 {
        const PREFIXES: [u64; 12] = [320, 327, 328, 329, 333, 335, 338, 340, 347, 348, 349, 393];
        let prefix = *self.rng.pick(&PREFIXES);
        prefix * 10_000_000 + self.rng.below(10_000_000)
    }

    fn citizen(&mut self) -> Citizen {
        let sex = if self.rng.chance(0.513) { Sex::F } else { Sex::M };
        let surname = self.surnames.draw(&mut self.rng) as u16;
        let name = match sex {
            Sex::M => self.male.draw(&mut self.rng),
            Sex::F => self.female.draw(&mut self.rng),
        } as u16;
        let (birth_date, age) = self.birth_date();
        let region_index = self.regions.draw(&mut self.rng);
        let region = &regions()[region_index];
        let abroad_share = if age >= 18 { 0.09 } else { 0.02 };
        let pool: &[u16] = if self.rng.chance(abroad_share) {
            &self.abroad
        } else if self.rng.chance(0.8) {
            self.places_by_region.get(region.code).map(Vec::as_slice).unwrap_or(&self.italian_places)
        } else {
            &self.italian_places
        };
        let drawn = self.rng.index(pool.len());
        // Never born in a place before it existed (Latina before 1932, Massa in 1938-46):
        // the next place of the same pool that did, with no extra draw, so everyone
        // else keeps the same birthplace for the same seed.
        let birthplace = (0..pool.len())
            .map(|k| pool[(drawn + k) % pool.len()])
            .find(|&i| crate::codes::belfiore_table::existed_on(birthplaces()[usize::from(i)].code, birth_date))
            .unwrap_or(pool[drawn]);
        let asl = self.rng.below(u64::from(region.asl_count)) as u8;
        // Cards last 6 years (1 for newborns), issued at some point of the last 6.
        let card_expiry = if age < 1 {
            birth_date.checked_add(jiff::Span::new().years(1)).unwrap_or(self.today)
        } else {
            let days_ago = self.rng.range_inclusive(0, 6 * 365 - 1);
            let issued = self.today.checked_sub(jiff::Span::new().days(days_ago)).unwrap_or(self.today);
            let issued = issued.max(birth_date);
            issued.checked_add(jiff::Span::new().years(TesseraSanitaria::VALIDITY_YEARS)).unwrap_or(self.today)
        };
        let has_mobile = match age {
            0..=13 => false,
            14..=17 => self.rng.chance(0.75),
            18..=79 => self.rng.chance(0.97),
            _ => self.rng.chance(0.75),
        };
        let mobile = if has_mobile { self.mobile() } else { 0 };
        let parent_mobile = if age < 18 { self.mobile() } else { 0 };
        let has_email = match age {
            0..=13 => false,
            14..=17 => self.rng.chance(0.4),
            18..=64 => self.rng.chance(0.82),
            _ => self.rng.chance(0.35),
        };
        let email = if has_email {
            let domain = self.rng.index(EMAIL_DOMAINS.len()) as u16 + 1;
            (domain << 8) | self.rng.below(100) as u16
        } else {
            0
        };
        let codice_fiscale = CodiceFiscale::from_person_unchecked(&PersonData {
            surname: names::SURNAMES[usize::from(surname)],
            name: match sex {
                Sex::M => names::MALE_NAMES[usize::from(name)],
                Sex::F => names::FEMALE_NAMES[usize::from(name)],
            },
            sex,
            birth_date,
            birthplace: birthplaces()[usize::from(birthplace)].code,
        });
        Citizen {
            codice_fiscale,
            card: CardNumber::generate(&mut self.rng, region),
            card_expiry,
            birth_date,
            surname,
            name,
            birthplace,
            sex,
            region: region_index as u8,
            asl,
            mobile,
            parent_mobile,
            email,
        }
    }
}

impl Population {
    /// `size` citizens from `seed`, aged against [`DEFAULT_REFERENCE_DATE`].
    pub fn generate(seed: u64, size: usize) -> Self {
        Self::generate_on(seed, size, DEFAULT_REFERENCE_DATE)
    }

    /// `size` citizens from `seed`, with ages and card expiries relative to `today`.
    pub fn generate_on(seed: u64, size: usize, today: Date) -> Self {
        let mut g = Generator::new(seed, today);
        let mut citizens = Vec::with_capacity(size);
        let mut by_cf = HashMap::with_capacity(size);
        let mut by_last8 = HashMap::with_capacity(size);
        for _ in 0..size {
            let mut c = g.citizen();
            let base = c.codice_fiscale;
            // Omocodia: the first holder keeps the base form, the next ones take
            // variants 1, 2, ... as the Agenzia delle Entrate assigns them.
            let cf = std::iter::once(Some(base))
                .chain((1..=7).map(|level| base.omocode_variant(level)))
                .flatten()
                .find(|cf| !by_cf.contains_key(cf));
            let Some(cf) = cf else {
                // Eight people with one code: vanishingly rare; draw another person.
                continue;
            };
            c.codice_fiscale = cf;
            // The last 8 card digits identify a citizen to Immuni and PN-DGC, so
            // keep them unique across the registry.
            while by_last8.contains_key(&c.card.last8().as_u32()) {
                c.card = CardNumber::generate(&mut g.rng, c.region());
            }
            let last8 = c.card.last8().as_u32();
            let i = citizens.len() as u32;
            by_cf.insert(cf, i);
            by_last8.insert(last8, i);
            citizens.push(c);
        }
        Self { seed, reference_date: today, citizens, by_cf, by_last8 }
    }

    /// A random, self-consistent codice fiscale (for `ecosim codes gen cf` and tests).
    pub fn random_codice_fiscale(rng: &mut SeededRng) -> CodiceFiscale {
        Generator::new(rng.next_u64(), DEFAULT_REFERENCE_DATE).citizen().codice_fiscale
    }

    /// The seed it was generated from.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// The date ages were computed against.
    pub fn reference_date(&self) -> Date {
        self.reference_date
    }
    /// How many citizens.
    pub fn len(&self) -> usize {
        self.citizens.len()
    }
    /// Whether there is nobody.
    pub fn is_empty(&self) -> bool {
        self.citizens.is_empty()
    }
    /// Every citizen, in generation order.
    pub fn iter(&self) -> impl Iterator<Item = &Citizen> {
        self.citizens.iter()
    }
    /// The `i`-th citizen.
    pub fn get(&self, i: usize) -> Option<&Citizen> {
        self.citizens.get(i)
    }
    /// The citizen with exactly this codice fiscale.
    pub fn by_codice_fiscale(&self, cf: &CodiceFiscale) -> Option<&Citizen> {
        self.by_cf.get(cf).map(|&i| &self.citizens[i as usize])
    }
    /// The citizen whose health card ends with these 8 digits (unique in the registry).
    pub fn by_card_last8(&self, last8: &CardLast8) -> Option<&Citizen> {
        self.by_last8.get(&last8.as_u32()).map(|&i| &self.citizens[i as usize])
    }
    /// Approximate heap bytes held (citizens and both indexes).
    pub fn heap_bytes(&self) -> usize {
        let citizens = self.citizens.capacity() * std::mem::size_of::<Citizen>();
        // hashbrown: one control byte per bucket plus the entries, buckets ~ 8/7 of capacity.
        let map = |cap: usize, entry: usize| cap * 8 / 7 * (entry + 1);
        citizens
            + map(self.by_cf.capacity(), std::mem::size_of::<(CodiceFiscale, u32)>())
            + map(self.by_last8.capacity(), std::mem::size_of::<(u32, u32)>())
    }
}
