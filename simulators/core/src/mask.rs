//! Masking the journal's personal identifiers: codici fiscali, CUNs, OTPs, card
//! numbers and digits, AUTHCODEs (and NUCGs), wherever they stand in a path or a
//! body, so a journal shown beyond this machine (`--bind` off loopback, where it is
//! on by default; `[admin] mask_journal`) tells the flow without the identities.
//!
//! Identifiers with a shape of their own are found by it anywhere in the text (a
//! codice fiscale, `CUN-` and ten characters, a 20-digit card number); those that
//! look like any other word (an OTP, eight card digits, an AUTHCODE) by the JSON
//! member that holds them. A masked value keeps its length in stars.

use std::sync::LazyLock;

use regex::{Captures, Regex};

use crate::journal::{Body, Exchange};

static CODICE_FISCALE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]\b")
        .expect("pattern")
});

static CUN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bCUN-[A-Z0-9]{10}\b").expect("pattern"));

static CARD_NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b80380\d{15}\b").expect("pattern"));

/// JSON members whose string value is an identifier (as every simulator names them).
static MEMBERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"("(?:otp|cun|ultime_8_cifre_ts|last_his_number|authcode|nucg|codice_fiscale|codiceFiscale|tessera_sanitaria)"\s*:\s*")([^"\\]*)(")"#,
    )
    .expect("pattern")
});

fn stars(n: usize) -> String {
    "*".repeat(n)
}

/// `text` with every identifier it holds masked.
pub fn text(text: &str) -> String {
    let t = MEMBERS.replace_all(text, |c: &Captures<'_>| format!("{}{}{}", &c[1], stars(c[2].chars().count()), &c[3]));
    let t = CUN.replace_all(&t, |c: &Captures<'_>| format!("CUN-{}", stars(c[0].len() - 4)));
    let t = CODICE_FISCALE.replace_all(&t, |c: &Captures<'_>| stars(c[0].len()));
    CARD_NUMBER.replace_all(&t, |c: &Captures<'_>| stars(c[0].len())).into_owned()
}

fn body(b: &Body) -> Body {
    if b.is_empty() { b.clone() } else { Body::from(text(&b.text()).into_bytes()) }
}

/// `e` with its path, bodies and idempotency key masked.
pub fn exchange(e: &Exchange) -> Exchange {
    Exchange {
        path: text(&e.path),
        request_body: body(&e.request_body),
        response_body: body(&e.response_body),
        idempotency_key: e.idempotency_key.as_deref().map(text),
        note: e.note.as_deref().map(text),
        ..e.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_identifier_is_masked_and_the_rest_kept() {
        let raw = r#"{"codice_fiscale":"RSSMRA45D25F205N","otp":"KJ23IWY5UJ","cun":"CUN-6HQ5EW73HE","ultime_8_cifre_ts":"12345678","esito":"POSITIVO","testo":"Il tuo CUN è CUN-6HQ5EW73HE per MRTMTT25D09F205Z","authcode": "WK2DEHZD9PC1"}"#;
        let masked = text(raw);
        for secret in ["RSSMRA45D25F205N", "KJ23IWY5UJ", "6HQ5EW73HE", "12345678", "MRTMTT25D09F205Z", "WK2DEHZD9PC1"] {
            assert!(!masked.contains(secret), "{secret} in {masked}");
        }
        assert!(masked.contains(r#""esito":"POSITIVO""#), "{masked}");
        assert!(masked.contains("Il tuo CUN è CUN-**********"), "{masked}");
        let v: serde_json::Value = serde_json::from_str(&masked).expect("still JSON");
        assert_eq!(v["otp"], "**********");
        assert_eq!(text("/ts/v1/anagrafica/RSSMRA45D25F20RI"), "/ts/v1/anagrafica/****************");
        assert_eq!(text("tessera 80380000123456789012"), "tessera ********************");
    }
}
