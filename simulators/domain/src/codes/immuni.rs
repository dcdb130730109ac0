//! Immuni's OTP and the CUN: 10 characters over the 25-character alphabet.

use super::alphabet::{ALPHABET25, CheckedAlphabet, checked_code};
use super::sha256_hex;

const fn spec(kind: &'static str) -> CheckedAlphabet {
    CheckedAlphabet {
        kind,
        alphabet: ALPHABET25,
        alphabet_name: "one of AEFHIJKLQRSUWXYZ123456789",
        len: 10,
        len_text: "10",
    }
}

checked_code!(
    /// A one-time password the Immuni app shows, to be authorised by Sistema TS (DM-2.2, DM-2.5).
    Otp,
    spec("OTP"),
    prefix = None
);

checked_code!(
    /// The Codice Univoco Nazionale bound to a test result (ORD-4). Displays as `CUN-XXXXXXXXXX`
    /// and parses with or without the prefix.
    Cun,
    spec("CUN"),
    prefix = Some("CUN-")
);

impl Otp {
    /// `sha256(otp)`, the key Immuni stores the authorisation under.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.0)
    }

    /// The OTP as the app displays it for dictation, grouped 3-4-3.
    pub fn grouped(&self) -> String {
        format!("{}-{}-{}", &self.0[..3], &self.0[3..7], &self.0[7..])
    }
}

impl std::fmt::Display for Otp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Cun {
    /// `sha256("CUN-" + cun10)`, the hash the app and Immuni send on the wire.
    pub fn sha256(&self) -> String {
        sha256_hex(&self.to_string())
    }

    /// The same ten characters read as an OTP (the self-service unlock does this).
    pub fn as_otp(&self) -> Otp {
        Otp(self.0.clone())
    }

    /// The same code with its check character changed: an invalid CUN. Only for
    /// `ecosim mutants` (ORD-4 broken on purpose); never issue it otherwise.
    pub fn mutated(&self) -> Cun {
        let mut chars: Vec<char> = self.0.chars().collect();
        if let Some(last) = chars.last_mut() {
            let alphabet: Vec<char> = ALPHABET25.iter().map(|b| char::from(*b)).collect();
            let at = alphabet.iter().position(|c| c == last).unwrap_or(0);
            *last = alphabet[(at + 1) % alphabet.len()];
        }
        Cun(chars.into_iter().collect())
    }
}

impl std::fmt::Display for Cun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CUN-{}", self.0)
    }
}
