//! Human durations (`150ms`, `30s`, `15d`, `1h30m`) for configuration, the admin API and scenarios.

use jiff::SignedDuration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a duration: {reason} (write e.g. 150ms, 30s, 5m, 2h, 15d or 1h30m)")]
pub struct DurationError {
    input: String,
    reason: &'static str,
}

/// Parses `<number><unit>` groups with units `ms`, `s`, `m`, `h`, `d` (24 h), `w` (7 d).
pub fn parse_duration(input: &str) -> Result<SignedDuration, DurationError> {
    let err = |reason| DurationError { input: input.to_owned(), reason };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("it is empty"));
    }
    let mut total: i64 = 0; // milliseconds
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(err("a number must come before each unit"));
        }
        let n: i64 = rest[..digits].parse().map_err(|_| err("the number is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let factor = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "" => return Err(err("each number needs a unit")),
            _ => return Err(err("unknown unit")),
        };
        rest = rest[unit_len..].trim_start();
        total = n.checked_mul(factor).and_then(|v| total.checked_add(v)).ok_or_else(|| err("it is too long"))?;
    }
    Ok(SignedDuration::from_millis(total))
}

/// Formats a duration the way [`parse_duration`] reads it (`1d2h`, `150ms`, `0s`).
pub fn format_duration(d: SignedDuration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
        ms = -ms;
    }
    for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

/// A [`SignedDuration`] that (de)serialises as a human duration string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub SignedDuration);

impl HumanDuration {
    /// As a `std` duration (negative values become zero).
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::try_from(self.0).unwrap_or_default()
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(self.0))
    }
}

impl<'de> serde::Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration(&s).map(Self).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit_and_combinations() {
        assert_eq!(parse_duration("150ms"), Ok(SignedDuration::from_millis(150)));
        assert_eq!(parse_duration("15d"), Ok(SignedDuration::from_hours(15 * 24)));
        assert_eq!(parse_duration("1h30m"), Ok(SignedDuration::from_mins(90)));
        assert_eq!(parse_duration("1w"), Ok(SignedDuration::from_hours(168)));
        assert_eq!(parse_duration("2h 5s"), Ok(SignedDuration::from_secs(7205)));
    }

    #[test]
    fn refuses_what_it_cannot_read_and_says_how_to_write_it() {
        for bad in ["", "15", "d", "15x", "-3s", "1.5h"] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(e.to_string().contains("write e.g."), "{e}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for s in ["1d2h", "150ms", "0s", "3m20s"] {
            assert_eq!(format_duration(parse_duration(s).expect(s)), s);
        }
    }
}
