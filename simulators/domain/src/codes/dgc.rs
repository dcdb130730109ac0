//! Green-certificate codes: AUTHCODE, NUCG, CUEV (33-character alphabet) and NRFE.

use super::alphabet::{ALPHABET33, CheckedAlphabet, checked_code};
use super::{CodeError, sha256_hex};
use crate::rng::SeededRng;

const ALPHABET33_NAME: &str = "one of ABCDEFHIJKLMNPQRSTUVWXYZ123456789";

checked_code!(
    /// The 12-character code PN-DGC sends the citizen to retrieve a certificate.
    Authcode,
    CheckedAlphabet {
        kind: "AUTHCODE",
        alphabet: ALPHABET33,
        alphabet_name: ALPHABET33_NAME,
        len: 12,
        len_text: "12",
    },
    prefix = None
);

checked_code!(
    /// Numero Univoco Certificato di Guarigione: identifies a recovery certificate.
    Nucg,
    CheckedAlphabet {
        kind: "NUCG",
        alphabet: ALPHABET33,
        alphabet_name: ALPHABET33_NAME,
        len: 10,
        len_text: "10",
    },
    prefix = Some("NUCG-")
);

checked_code!(
    /// Codice Univoco Esenzione Vaccinale: identifies an exemption certificate.
    Cuev,
    CheckedAlphabet {
        kind: "CUEV",
        alphabet: ALPHABET33,
        alphabet_name: ALPHABET33_NAME,
        len: 10,
        len_text: "10",
    },
    prefix = Some("CUEV-")
);

impl Authcode {
    /// `sha256(code)`.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.0)
    }
}

impl Nucg {
    /// `sha256("NUCG-" + code)`.
    pub fn sha256(&self) -> String {
        sha256_hex(&format!("NUCG-{}", self.0))
    }
}

impl Cuev {
    /// `sha256("CUEV-" + code)`.
    pub fn sha256(&self) -> String {
        sha256_hex(&format!("CUEV-{}", self.0))
    }
}

impl std::fmt::Display for Authcode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Nucg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Cuev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Numero di Referto Fiscale Elettronico: 17 digits starting with `99`, no check digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Nrfe(String);

impl Nrfe {
    /// Parses 17 digits starting with `99`.
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        let s = input.trim();
        super::expect_len("NRFE", s, 17, "17")?;
        if let Some((i, c)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(CodeError::Character { kind: "NRFE", position: i + 1, found: c, expected: "a digit" });
        }
        if !s.starts_with("99") {
            return Err(CodeError::Invalid { kind: "NRFE", message: "must start with 99".into() });
        }
        Ok(Self(s.to_owned()))
    }

    /// A random valid NRFE.
    pub fn generate(rng: &mut SeededRng) -> Self {
        Self(format!("99{}", rng.string_from(b"0123456789", 15)))
    }

    /// The 17 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `sha256(code)`.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.0)
    }
}

impl std::fmt::Display for Nrfe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Nrfe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}
