//! The codice fiscale check tables, and the alphabets of the checked codes built on them.

use super::CodeError;
use crate::rng::SeededRng;

/// Immuni's OTP/CUN alphabet, in check-value order.
pub const ALPHABET25: &[u8; 25] = b"AEFHIJKLQRSUWXYZ123456789";
/// The green-certificate alphabet (AUTHCODE, NUCG, CUEV), in check-value order.
pub const ALPHABET33: &[u8; 33] = b"ABCDEFHIJKLMNPQRSTUVWXYZ123456789";

/// ODD table values for `0-9` then `A-Z`.
const ODD: [u32; 36] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, // 0-9
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23,
];

fn table_index(b: u8) -> Option<usize> {
    match b {
        b'0'..=b'9' => Some(usize::from(b - b'0')),
        b'A'..=b'Z' => Some(usize::from(b - b'A') + 10),
        _ => None,
    }
}

/// `sum(s)` of CODES.md: ODD at 0-based even indices, EVEN at 0-based odd indices.
///
/// Characters outside `0-9A-Z` count as zero; callers validate the alphabet first.
pub fn check_sum(s: &[u8]) -> u32 {
    s.iter()
        .enumerate()
        .map(|(i, &b)| match table_index(b) {
            None => 0,
            Some(t) if i % 2 == 0 => ODD[t],
            Some(t) => {
                if t < 10 {
                    t as u32
                } else {
                    (t - 10) as u32
                }
            }
        })
        .sum()
}

/// A checked code: fixed length, one alphabet, last character `alphabet[sum(body) mod len]`.
pub(crate) struct CheckedAlphabet {
    pub(crate) kind: &'static str,
    pub(crate) alphabet: &'static [u8],
    pub(crate) alphabet_name: &'static str,
    pub(crate) len: usize,
    pub(crate) len_text: &'static str,
}

impl CheckedAlphabet {
    pub(crate) fn check_char(&self, body: &[u8]) -> u8 {
        self.alphabet[check_sum(body) as usize % self.alphabet.len()]
    }

    /// Validates `s` (already upper-cased by the caller if it wants to).
    pub(crate) fn validate(&self, s: &str) -> Result<(), CodeError> {
        super::expect_len(self.kind, s, self.len, self.len_text)?;
        for (i, c) in s.chars().enumerate() {
            if !c.is_ascii() || !self.alphabet.contains(&(c as u8)) {
                return Err(CodeError::Character {
                    kind: self.kind,
                    position: i + 1,
                    found: c,
                    expected: self.alphabet_name,
                });
            }
        }
        let b = s.as_bytes();
        let expected = self.check_char(&b[..self.len - 1]);
        let found = b[self.len - 1];
        if expected != found {
            return Err(CodeError::Check { kind: self.kind, expected: char::from(expected), found: char::from(found) });
        }
        Ok(())
    }

    pub(crate) fn generate(&self, rng: &mut SeededRng) -> String {
        let mut body = rng.string_from(self.alphabet, self.len - 1).into_bytes();
        let c = self.check_char(&body);
        body.push(c);
        String::from_utf8(body).unwrap_or_default()
    }
}

/// Defines a newtype over a [`CheckedAlphabet`] with parse, generate, Display, serde.
macro_rules! checked_code {
    ($(#[$doc:meta])* $name:ident, $spec:expr, prefix = $prefix:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            const SPEC: $crate::codes::alphabet::CheckedAlphabet = $spec;

            /// Parses the code (case-insensitive; surrounding spaces and, where the
            /// code has one, the display prefix are accepted).
            pub fn parse(input: &str) -> Result<Self, $crate::codes::CodeError> {
                let upper = input.trim().to_ascii_uppercase();
                let prefix: Option<&str> = $prefix;
                let body = match prefix {
                    Some(p) => upper.strip_prefix(p).unwrap_or(&upper),
                    None => &upper,
                };
                Self::SPEC.validate(body)?;
                Ok(Self(body.to_owned()))
            }

            /// A random valid code.
            pub fn generate(rng: &mut $crate::rng::SeededRng) -> Self {
                Self(Self::SPEC.generate(rng))
            }

            /// The bare code, without any display prefix.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::codes::CodeError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use checked_code;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_table_matches_codes_md_for_letters() {
        // Spot checks straight from CODES.md.
        let odd = |c: u8| check_sum(&[c]);
        assert_eq!(odd(b'A'), 1);
        assert_eq!(odd(b'K'), 2);
        assert_eq!(odd(b'M'), 18);
        assert_eq!(odd(b'Z'), 23);
        assert_eq!(odd(b'5'), 13);
    }

    #[test]
    fn even_positions_use_the_plain_index() {
        assert_eq!(check_sum(b"0Z"), 1 + 25);
        assert_eq!(check_sum(b"09"), 1 + 9);
    }
}
