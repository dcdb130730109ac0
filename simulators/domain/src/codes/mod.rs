//! National codes and identifiers (`shared/spec/CODES.md`).
//!
//! Every type here is a newtype that can only hold a valid value: `parse` refuses
//! anything else with a [`CodeError`] that says what is wrong (length, alphabet,
//! position, check character), and `generate` draws a valid value from a
//! [`SeededRng`](crate::rng::SeededRng).
//!
//! | type | what |
//! |---|---|
//! | [`CodiceFiscale`] | the 16-character tax code, omocodia included |
//! | [`CardNumber`], [`CardLast8`], [`TesseraSanitaria`] | the health card |
//! | [`Otp`], [`Cun`] | Immuni's 10-character codes over the 25-character alphabet |
//! | [`Authcode`], [`Nucg`], [`Cuev`], [`Nrfe`] | green-certificate codes |
//! | [`MobileNumber`], [`Msisdn`], [`Email`] | contacts |

mod alphabet;
mod belfiore;
mod card;
mod cf;
mod contact;
mod dgc;
mod identify;
mod immuni;

pub use alphabet::{ALPHABET25, ALPHABET33, check_sum};
pub use belfiore::{Birthplace, BirthplaceKind, birthplace, birthplaces};
/// The full Belfiore table: every comune with its dates, every foreign state.
pub mod belfiore_table {
    pub use super::belfiore::{Period, existed_on, known, name_of, periods};
}
pub use card::{CardLast8, CardNumber, TesseraSanitaria};
pub use cf::{CodiceFiscale, PersonData, Sex};
pub use contact::{Email, MobileNumber, Msisdn};
pub use dgc::{Authcode, Cuev, Nrfe, Nucg};
pub use identify::{Reading, identify};
pub use immuni::{Cun, Otp};

use sha2::{Digest, Sha256};

/// Why a string is not a valid code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The string has the wrong number of characters.
    #[error("{kind} must be {expected} characters long, found {found}")]
    Length {
        /// The kind of code.
        kind: &'static str,
        /// The expected length (or a description of the range).
        expected: &'static str,
        /// The length found.
        found: usize,
    },
    /// A character is not allowed at that position.
    #[error("{kind}: character {found:?} at position {position} is not allowed (expected {expected})")]
    Character {
        /// The kind of code.
        kind: &'static str,
        /// 1-based position of the character.
        position: usize,
        /// The character found.
        found: char,
        /// What is allowed there.
        expected: &'static str,
    },
    /// The check character does not match the rest of the code.
    #[error("{kind}: check character is {found:?}, expected {expected:?}")]
    Check {
        /// The kind of code.
        kind: &'static str,
        /// The check character the rest of the code gives.
        expected: char,
        /// The check character found.
        found: char,
    },
    /// A part of the code has an impossible value (day 32, Belfiore `000`...).
    #[error("{kind}: {message}")]
    Invalid {
        /// The kind of code.
        kind: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Lowercase hex SHA-256 of `text`, the form every hash on the wire takes.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Whether `text` is a lowercase-hex SHA-256 (64 characters `[0-9a-f]`).
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks the length of `s` in characters, naming the code kind in the error.
fn expect_len(kind: &'static str, s: &str, len: usize, expected: &'static str) -> Result<(), CodeError> {
    let found = s.chars().count();
    if found == len { Ok(()) } else { Err(CodeError::Length { kind, expected, found }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_is_lowercase_hex_of_the_text() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(is_sha256_hex(&sha256_hex("x")));
        assert!(!is_sha256_hex(&sha256_hex("x").to_uppercase()));
    }
}
