//! Contacts: Italian mobile numbers, international MSISDNs and e-mail addresses.

use super::CodeError;

/// An Italian mobile number, normalised to E.164 (`+393331234567`).
///
/// Accepts `3331234567`, `+393331234567` and `00393331234567`; the national number
/// starts with `3` and has 9 or 10 digits. Letters, spaces and other separators
/// inside are refused, as the regional registries refuse them (AVR-5b).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MobileNumber(String);

impl MobileNumber {
    /// Parses and normalises an Italian mobile number.
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        const KIND: &str = "mobile number";
        let s = input.trim();
        let (offset, rest) = if let Some(r) = s.strip_prefix('+') { (1, r) } else { (0, s) };
        if let Some((i, c)) = rest.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(CodeError::Character {
                kind: KIND,
                position: i + 1 + offset,
                found: c,
                expected: "a digit (only a leading '+' is allowed)",
            });
        }
        let national = if offset == 1 {
            rest.strip_prefix("39").ok_or_else(|| CodeError::Invalid {
                kind: KIND,
                message: "an international number must start with +39".into(),
            })?
        } else if let Some(r) = rest.strip_prefix("0039") {
            r
        } else {
            rest
        };
        if !national.starts_with('3') {
            return Err(CodeError::Invalid {
                kind: KIND,
                message: format!("{national:?} is not an Italian mobile number (it must start with 3)"),
            });
        }
        if !(9..=10).contains(&national.len()) {
            return Err(CodeError::Length { kind: KIND, expected: "9 or 10 (national number)", found: national.len() });
        }
        Ok(Self(format!("+39{national}")))
    }

    /// The E.164 form, `+39...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The national number, without `+39`.
    pub fn national(&self) -> &str {
        &self.0[3..]
    }
}

/// Any E.164 number (`+` and 8 to 15 digits, first not 0), for gateways that deliver abroad.
///
/// Italian mobile numbers written nationally (`3331234567`) are accepted and normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msisdn(String);

impl Msisdn {
    /// Parses `+<digits>`, `00<digits>`, or an Italian national mobile number.
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        const KIND: &str = "E.164 number";
        let s = input.trim();
        if let Ok(m) = MobileNumber::parse(s) {
            return Ok(Self(m.0));
        }
        let (digits, offset) = match (s.strip_prefix('+'), s.strip_prefix("00")) {
            (Some(d), _) => (d, 1),
            (None, Some(d)) => (d, 2),
            (None, None) => {
                return Err(CodeError::Invalid {
                    kind: KIND,
                    message: "must start with + and the country code (or be an Italian mobile number)".into(),
                });
            }
        };
        if let Some((i, c)) = digits.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
            return Err(CodeError::Character { kind: KIND, position: i + 1 + offset, found: c, expected: "a digit" });
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(CodeError::Length { kind: KIND, expected: "8 to 15 digits", found: digits.len() });
        }
        if digits.starts_with('0') {
            return Err(CodeError::Invalid { kind: KIND, message: "a country code cannot start with 0".into() });
        }
        Ok(Self(format!("+{digits}")))
    }

    /// The E.164 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether it is an Italian mobile number.
    pub fn is_italian_mobile(&self) -> bool {
        MobileNumber::parse(&self.0).is_ok()
    }
}

impl From<MobileNumber> for Msisdn {
    fn from(m: MobileNumber) -> Self {
        Self(m.0)
    }
}

/// An e-mail address: one `@`, a sensible local part, a dotted domain; domain lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    /// Parses an address like `mario.rossi@example.it`.
    pub fn parse(input: &str) -> Result<Self, CodeError> {
        const KIND: &str = "e-mail address";
        let invalid = |message: &str| CodeError::Invalid { kind: KIND, message: message.into() };
        let s = input.trim();
        if s.len() > 254 {
            return Err(CodeError::Length { kind: KIND, expected: "at most 254", found: s.len() });
        }
        let (local, domain) = s.split_once('@').ok_or_else(|| invalid("must contain '@'"))?;
        if domain.contains('@') {
            return Err(invalid("must contain only one '@'"));
        }
        if local.is_empty() || local.len() > 64 {
            return Err(invalid("the part before '@' must have 1 to 64 characters"));
        }
        if let Some((i, c)) = s.chars().enumerate().find(|(_, c)| c.is_whitespace() || c.is_control()) {
            return Err(CodeError::Character { kind: KIND, position: i + 1, found: c, expected: "no spaces" });
        }
        let local_ok = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c);
        if !local.chars().all(local_ok) || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(invalid("the part before '@' has characters or dots that are not allowed"));
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return Err(invalid("the domain must have a dot (example.it)"));
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !ok {
                return Err(invalid("the domain has an empty or malformed part"));
            }
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! display_serde {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $t {
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
display_serde!(MobileNumber, Msisdn, Email);
