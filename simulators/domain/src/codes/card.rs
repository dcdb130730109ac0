//! The health card (Tessera Sanitaria, TS-CNS / TEAM).
//!
//! The card identification number has 20 digits: the first 10 name the issuing body,
//! the last 10 the card. There is no public check digit, so none is invented. ecosim
//! writes the issuer as `80380` (health, Italy) + `00` + the region's three-digit code.

use jiff::civil::Date;

use super::CodeError;
use crate::regions::Region;
use crate::rng::SeededRng;

fn all_digits(kind: &'static str, s: &str) -> Result<(), CodeError> {
    match s.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, c)) => Err(CodeError::Character { kind, position: i + 1, found: c, expected: "a digit" }),
        None => Ok(()),
    }
}

/// The 20-digit card identification number.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardNumber([u8; 20]);

impl CardNumber {
    /// Parses exactly 20 digits.
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s = input.trim();
        super::expect_len("health card number", s, 20, "20")?;
        all_digits("health card number", s)?;
        let mut b = [0u8; 20];
        b.copy_from_slice(s.as_bytes());
        Ok(Self(b))
    }

    /// The number ecosim gives a card of `region` whose last 10 digits are `serial`.
    pub fn for_region(region: &Region, serial: u64) -> Self {
        let mut b = [b'0'; 20];
        b[..7].copy_from_slice(b"8038000");
        b[7..10].copy_from_slice(&region.code.as_bytes()[..3]);
        let mut n = serial % 10_000_000_000;
        for slot in b[10..].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        Self(b)
    }

    /// A random card number issued by `region`.
    pub fn generate(rng: &mut SeededRng, region: &Region) -> Self {
        Self::for_region(region, rng.below(10_000_000_000))
    }

    /// All 20 digits.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The first 10 digits: the issuing region or body.
    pub fn issuer(&self) -> &str {
        &self.as_str()[..10]
    }

    /// The last 8 digits, which citizens type into Immuni and dgc.gov.it.
    pub fn last8(&self) -> CardLast8 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[12..]);
        CardLast8(b)
    }
}

impl std::fmt::Display for CardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardNumber({})", self.as_str())
    }
}

/// The last 8 digits of a health card (`^[0-9]{8}$`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardLast8([u8; 8]);

impl CardLast8 {
    /// Parses exactly 8 digits.
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s = input.trim();
        super::expect_len("last 8 digits of the health card", s, 8, "8")?;
        all_digits("last 8 digits of the health card", s)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(s.as_bytes());
        Ok(Self(b))
    }

    /// The 8 digits.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The digits as a number (for compact indexes).
    pub fn as_u32(&self) -> u32 {
        self.0.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    }
}

impl std::fmt::Display for CardLast8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for CardLast8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardLast8({})", self.as_str())
    }
}

/// A health card: its number and its expiry date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TesseraSanitaria {
    /// The 20-digit identification number.
    pub number: CardNumber,
    /// Expiry date (6 years from issue; 1 year for newborns).
    pub expiry: Date,
}

impl TesseraSanitaria {
    /// Years of validity of a card issued to anyone but a newborn.
    pub const VALIDITY_YEARS: i16 = 6;

    /// Parses a number and an expiry date (`YYYY-MM-DD`).
    pub fn parse(number: &str, expiry: &str) -> Result<Self, CodeError> {
        let number = CardNumber::parse(number)?;
        let expiry: Date = expiry.trim().parse().map_err(|_| CodeError::Invalid {
            kind: "health card expiry",
            message: format!("{expiry:?} is not a date YYYY-MM-DD"),
        })?;
        Ok(Self { number, expiry })
    }

    /// The last 8 digits of the number.
    pub fn last8(&self) -> CardLast8 {
        self.number.last8()
    }

    /// Whether the card is still valid on `day`.
    pub fn is_valid_on(&self, day: Date) -> bool {
        day <= self.expiry
    }
}

macro_rules! serde_via_str {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_via_str!(CardNumber);
serde_via_str!(CardLast8);
