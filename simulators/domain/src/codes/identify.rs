//! Telling what kind of code a string is, and whether it is valid (`ecosim codes check`).

use super::{
    Authcode, CardLast8, CardNumber, CodeError, CodiceFiscale, Cuev, Cun, Email, MobileNumber, Msisdn, Nrfe, Nucg, Otp,
    birthplace,
};

/// One reading of a string as a kind of code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The kind (`codice fiscale`, `OTP/CUN`...).
    pub kind: &'static str,
    /// Details when valid, the reason when not.
    pub verdict: Result<String, CodeError>,
}

/// Every plausible reading of `input`, most specific first. A string is valid if any
/// reading is; an empty list means it looks like no code ecosim knows. Two-digit
/// birth years of a codice fiscale are read as the latest year not after `today`.
pub fn identify(input: &str, today: jiff::civil::Date) -> Vec<Reading> {
    let s = input.trim();
    let upper = s.to_ascii_uppercase();
    let read = |kind, verdict| Reading { kind, verdict };
    if upper.starts_with("CUN-") {
        return vec![read("CUN", Cun::parse(s).map(|c| format!("{c}, hash {}", c.sha256())))];
    }
    if upper.starts_with("NUCG-") {
        return vec![read("NUCG", Nucg::parse(s).map(|c| format!("hash {}", c.sha256())))];
    }
    if upper.starts_with("CUEV-") {
        return vec![read("CUEV", Cuev::parse(s).map(|c| format!("hash {}", c.sha256())))];
    }
    if s.contains('@') {
        return vec![read("e-mail address", Email::parse(s).map(|e| e.to_string()))];
    }
    let digits = s.bytes().all(|b| b.is_ascii_digit());
    if s.starts_with('+') || (s.starts_with("00") && s.len() > 10) || (digits && s.starts_with('3') && s.len() <= 10) {
        return vec![match MobileNumber::parse(s) {
            Ok(m) => read("Italian mobile number", Ok(m.to_string())),
            Err(e) => match Msisdn::parse(s) {
                Ok(m) => read("E.164 number", Ok(m.to_string())),
                Err(_) => read("mobile number", Err(e)),
            },
        }];
    }
    match s.chars().count() {
        20 if digits => vec![read(
            "health card number",
            CardNumber::parse(s).map(|c| format!("issuer {}, last 8 digits {}", c.issuer(), c.last8())),
        )],
        17 if digits => vec![read("NRFE", Nrfe::parse(s).map(|c| format!("hash {}", c.sha256())))],
        8 if digits => vec![read("last 8 digits of a health card", CardLast8::parse(s).map(|c| c.to_string()))],
        16 => vec![read("codice fiscale", CodiceFiscale::parse(s).map(|cf| describe_cf(&cf, today)))],
        12 => vec![read("AUTHCODE", Authcode::parse(s).map(|c| format!("hash {}", c.sha256())))],
        10 => {
            let otp = read(
                "OTP/CUN",
                Otp::parse(s).map(|o| {
                    format!("OTP {}, CUN {}", o.grouped(), Cun::parse(s).map(|c| c.to_string()).unwrap_or_default())
                }),
            );
            let nucg = read("NUCG/CUEV", Nucg::parse(s).map(|n| format!("NUCG-{n} or CUEV-{n}")));
            vec![otp, nucg]
        }
        _ => Vec::new(),
    }
}

fn describe_cf(cf: &CodiceFiscale, today: jiff::civil::Date) -> String {
    let place = cf.birthplace();
    let name = birthplace(&place).map(|p| p.name).or_else(|| super::belfiore_table::name_of(&place));
    let place_name = name.map(|n| format!("{n} ({place})")).unwrap_or(place);
    let born = cf.birth_date(today).map(|d| d.to_string()).unwrap_or_else(|| "an impossible date".into());
    let omocode = if cf.is_omocode() { format!(" (omocode; base form {})", cf.base_form()) } else { String::new() };
    format!("{cf}{omocode}: sex {:?}, born {born} in {place_name}", cf.sex())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::population::DEFAULT_REFERENCE_DATE;

    fn kinds(s: &str) -> Vec<(&'static str, bool)> {
        identify(s, DEFAULT_REFERENCE_DATE).into_iter().map(|r| (r.kind, r.verdict.is_ok())).collect()
    }

    #[test]
    fn recognises_each_kind() {
        assert_eq!(kinds("RSSMRA45D25F205N"), vec![("codice fiscale", true)]);
        assert_eq!(kinds("CUN-6HQ5EW73HE"), vec![("CUN", true)]);
        assert_eq!(kinds("KJ23IWY5UJ"), vec![("OTP/CUN", true), ("NUCG/CUEV", false)]);
        assert_eq!(kinds("HNZHEDP843"), vec![("OTP/CUN", false), ("NUCG/CUEV", true)]);
        assert_eq!(kinds("WK2DEHZD9PC1"), vec![("AUTHCODE", true)]);
        assert_eq!(kinds("99123456789012345"), vec![("NRFE", true)]);
        assert_eq!(kinds("80380001601234567890"), vec![("health card number", true)]);
        assert_eq!(kinds("3331234567"), vec![("Italian mobile number", true)]);
        assert_eq!(kinds("+447700900123"), vec![("E.164 number", true)]);
        assert_eq!(kinds("a@b.it"), vec![("e-mail address", true)]);
        assert!(identify("hello", DEFAULT_REFERENCE_DATE).is_empty());
    }

    #[test]
    fn describes_an_omocode() {
        let r = identify("RSSMRA45D25F20RI", DEFAULT_REFERENCE_DATE);
        let text = r[0].verdict.clone().expect("valid");
        assert!(text.contains("base form RSSMRA45D25F205N") && text.contains("Milano (F205)"), "{text}");
        assert!(text.contains("born 1945-04-25"), "{text}");
    }
}
