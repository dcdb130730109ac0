//! The codes of CODES.md: every test vector, and properties over generated codes.

use ecosim_domain::codes::{
    ALPHABET25, ALPHABET33, Authcode, CardLast8, CardNumber, CodeError, CodiceFiscale, Cuev, Cun, Email, MobileNumber,
    Msisdn, Nrfe, Nucg, Otp, PersonData, Sex, TesseraSanitaria, check_sum, sha256_hex,
};
use ecosim_domain::rng::SeededRng;
use jiff::civil::date;
use proptest::prelude::*;

#[test]
fn codes_md_codice_fiscale_vectors() {
    for ok in ["RSSMRA45D25F205N", "RSSMRA80A01H501U", "MRTMTT25D09F205Z"] {
        let cf = CodiceFiscale::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(cf.as_str(), ok);
        assert!(!cf.is_omocode());
    }
    for omo in ["RSSMRA45D25F20RI", "RSSMRA45D25F2LRT"] {
        let cf = CodiceFiscale::parse(omo).unwrap_or_else(|e| panic!("{omo}: {e}"));
        assert!(cf.is_omocode());
        assert_eq!(cf.base_form().as_str(), "RSSMRA45D25F205N");
    }
    assert_eq!(
        CodiceFiscale::parse("RSSMRA45D25F205X"),
        Err(CodeError::Check { kind: "codice fiscale", expected: 'N', found: 'X' })
    );
}

#[test]
fn codice_fiscale_errors_name_the_position() {
    let err = CodiceFiscale::parse("RSSMRA45Z25F205N").unwrap_err();
    assert!(matches!(err, CodeError::Character { position: 9, found: 'Z', .. }), "{err}");
    assert!(err.to_string().contains("month"), "{err}");
    let err = CodiceFiscale::parse("RSSMRA45D25F205").unwrap_err();
    assert_eq!(err.to_string(), "codice fiscale must be 16 characters long, found 15");
    // Day 35 is neither a man's nor a woman's day.
    let body = "RSSMRA45D35F205";
    let check = (b'A' + (ecosim_domain::codes::check_sum(body.as_bytes()) % 26) as u8) as char;
    let err = CodiceFiscale::parse(&format!("{body}{check}")).unwrap_err();
    assert!(err.to_string().contains("day field 35"), "{err}");
}

#[test]
fn codice_fiscale_is_accepted_in_lower_case() {
    assert_eq!(CodiceFiscale::parse(" rssmra45d25f205n ").map(|c| c.to_string()), Ok("RSSMRA45D25F205N".into()));
}

#[test]
fn codice_fiscale_from_a_person_matches_the_vectors() {
    let mario =
        PersonData { surname: "Rossi", name: "Mario", sex: Sex::M, birth_date: date(1945, 4, 25), birthplace: "F205" };
    assert_eq!(CodiceFiscale::from_person(&mario).map(|c| c.to_string()), Ok("RSSMRA45D25F205N".into()));
    let maria = PersonData { name: "Maria", sex: Sex::F, ..mario };
    let cf = CodiceFiscale::from_person(&maria).expect("valid person");
    assert_eq!(&cf.as_str()[..11], "RSSMRA45D65");
    assert_eq!(cf.sex(), Sex::F);
    assert_eq!(cf.birth_date(date(2021, 10, 1)), Some(date(1945, 4, 25)));
    assert_eq!(cf.birthplace(), "F205");
}

#[test]
fn omocode_variants_decode_to_the_base_form() {
    let base = CodiceFiscale::parse("RSSMRA45D25F205N").expect("valid");
    assert_eq!(base.omocode_variant(1).map(|c| c.to_string()), Some("RSSMRA45D25F20RI".into()));
    assert_eq!(base.omocode_variant(2).map(|c| c.to_string()), Some("RSSMRA45D25F2LRT".into()));
    for level in 1..=7 {
        let v = base.omocode_variant(level).expect("level in range");
        assert_eq!(CodiceFiscale::parse(v.as_str()), Ok(v));
        assert_eq!(v.base_form(), base);
        assert_eq!(v.birth_date(date(2021, 1, 1)), base.birth_date(date(2021, 1, 1)));
    }
    assert_eq!(base.omocode_variant(8), None);
}

#[test]
fn codes_md_otp_and_cun_vectors() {
    for ok in ["KJ23IWY5UJ", "9K2RAY8UUQ", "59FU36KR46", "6HQ5EW73HE"] {
        assert!(Otp::parse(ok).is_ok(), "{ok}");
        assert!(Cun::parse(ok).is_ok(), "{ok}");
    }
    assert!(matches!(Otp::parse("KJ23IWY5UA"), Err(CodeError::Check { expected: 'J', found: 'A', .. })));
    assert!(matches!(Otp::parse("KJ23IWY5U0"), Err(CodeError::Character { position: 10, found: '0', .. })));
}

#[test]
fn cun_parses_with_or_without_prefix_and_displays_with_it() {
    let a = Cun::parse("CUN-6HQ5EW73HE").expect("valid");
    let b = Cun::parse("6HQ5EW73HE").expect("valid");
    assert_eq!(a, b);
    assert_eq!(a.to_string(), "CUN-6HQ5EW73HE");
    assert_eq!(a.as_str(), "6HQ5EW73HE");
    assert_eq!(a.sha256(), sha256_hex("CUN-6HQ5EW73HE"));
    assert_eq!(Otp::parse("6HQ5EW73HE").map(|o| o.sha256()), Ok(sha256_hex("6HQ5EW73HE")));
}

#[test]
fn otp_is_grouped_three_four_three_for_dictation() {
    assert_eq!(Otp::parse("KJ23IWY5UJ").map(|o| o.grouped()), Ok("KJ2-3IWY-5UJ".into()));
}

#[test]
fn codes_md_green_certificate_vectors() {
    for ok in ["WK2DEHZD9PC1", "F43ERF4DIQD6", "2DQCJU3KIVMA"] {
        let a = Authcode::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(a.sha256(), sha256_hex(ok));
    }
    for ok in ["HNZHEDP843", "W66ZVRMRFM"] {
        let n = Nucg::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        let c = Cuev::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(n.sha256(), sha256_hex(&format!("NUCG-{ok}")));
        assert_eq!(c.sha256(), sha256_hex(&format!("CUEV-{ok}")));
    }
    assert!(Nucg::parse("NUCG-HNZHEDP843").is_ok());
    assert!(matches!(Authcode::parse("WK2DEHZD9PCG"), Err(CodeError::Character { position: 12, .. })));
}

#[test]
fn nrfe_is_17_digits_starting_with_99() {
    assert!(Nrfe::parse("99123456789012345").is_ok());
    assert!(matches!(Nrfe::parse("98123456789012345"), Err(CodeError::Invalid { .. })));
    assert!(matches!(Nrfe::parse("9912345678901234"), Err(CodeError::Length { found: 16, .. })));
    assert!(matches!(Nrfe::parse("9912345678901234X"), Err(CodeError::Character { position: 17, .. })));
}

#[test]
fn health_card_gives_its_last_8_digits_and_issuer() {
    let card = TesseraSanitaria::parse("80380001601234567890", "2026-05-31").expect("valid");
    assert_eq!(card.last8().as_str(), "34567890");
    assert_eq!(card.number.issuer(), "8038000160");
    assert!(card.is_valid_on(date(2026, 5, 31)));
    assert!(!card.is_valid_on(date(2026, 6, 1)));
    assert!(CardNumber::parse("8038000160123456789").is_err());
    assert!(matches!(CardNumber::parse("8038000160123456789A"), Err(CodeError::Character { position: 20, .. })));
    assert!(CardLast8::parse("1234567").is_err());
    assert!(TesseraSanitaria::parse("80380001601234567890", "31/05/2026").is_err());
}

#[test]
fn mobile_numbers_are_normalised_to_e164() {
    for ok in ["3331234567", "+393331234567", "00393331234567"] {
        assert_eq!(MobileNumber::parse(ok).map(|m| m.to_string()), Ok("+393331234567".into()), "{ok}");
    }
    for bad in ["333 1234567", "333123456A", "+44 7700900123", "0612345678", "33312", "+33612345678"] {
        assert!(MobileNumber::parse(bad).is_err(), "{bad}");
    }
    let err = MobileNumber::parse("333 1234567").unwrap_err();
    assert!(matches!(err, CodeError::Character { position: 4, found: ' ', .. }), "{err}");
}

#[test]
fn msisdn_takes_foreign_numbers_too() {
    assert_eq!(Msisdn::parse("+447700900123").map(|m| m.to_string()), Ok("+447700900123".into()));
    assert_eq!(Msisdn::parse("3331234567").map(|m| m.to_string()), Ok("+393331234567".into()));
    assert!(Msisdn::parse("+44 7700").is_err());
    assert!(Msisdn::parse("7700900123").is_err());
}

#[test]
fn email_addresses_are_checked() {
    assert_eq!(Email::parse("Mario.Rossi@Example.IT").map(|e| e.to_string()), Ok("Mario.Rossi@example.it".into()));
    for bad in ["mario", "mario@", "@example.it", "ma rio@example.it", "mario@example", "a@@b.it", "a..b@c.it"] {
        assert!(Email::parse(bad).is_err(), "{bad}");
    }
}

fn seeds() -> impl Strategy<Value = u64> {
    any::<u64>()
}

/// Every position and every replacement character from `alphabet` but the original.
fn single_changes(code: &str, alphabet: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..code.len() {
        for &c in alphabet {
            if code.as_bytes()[i] != c {
                let mut b = code.as_bytes().to_vec();
                b[i] = c;
                out.push(String::from_utf8(b).expect("ascii"));
            }
        }
    }
    out
}

/// The table value a character adds to `sum()` at 0-based position `i`.
fn table_value(c: u8, i: usize) -> u32 {
    if i.is_multiple_of(2) { check_sum(&[c]) } else { check_sum(&[b'B', c]) }
}

/// A single change of a body character is caught unless the old and new characters
/// add the same value mod the alphabet size (e.g. `4` and `E` share the value 4);
/// a change of the check character is always caught.
fn assert_single_changes_behave(
    code: &str,
    alphabet: &[u8],
    parses: impl Fn(&str) -> bool,
) -> Result<(), TestCaseError> {
    let m = alphabet.len() as u32;
    let last = code.len() - 1;
    for changed in single_changes(code, alphabet) {
        let i = changed.bytes().zip(code.bytes()).position(|(a, b)| a != b).expect("one change");
        let (new, old) = (table_value(changed.as_bytes()[i], i), table_value(code.as_bytes()[i], i));
        let undetectable = i != last && (new + m * 26 - old).is_multiple_of(m);
        prop_assert_eq!(parses(&changed), undetectable, "{} from {}", changed, code);
    }
    Ok(())
}

proptest! {
    #[test]
    fn generated_otps_and_cuns_parse_and_round_trip(seed in seeds()) {
        let mut rng = SeededRng::new(seed);
        let otp = Otp::generate(&mut rng);
        prop_assert_eq!(Otp::parse(otp.as_str()), Ok(otp.clone()));
        let cun = Cun::generate(&mut rng);
        prop_assert_eq!(Cun::parse(&cun.to_string()), Ok(cun.clone()));
        prop_assert_eq!(serde_json::from_str::<Cun>(&serde_json::to_string(&cun).expect("json")).ok(), Some(cun));
    }

    #[test]
    fn single_changes_of_an_otp_are_rejected_exactly_where_the_check_can_tell(seed in seeds()) {
        let otp = Otp::generate(&mut SeededRng::new(seed));
        assert_single_changes_behave(otp.as_str(), ALPHABET25, |s| Otp::parse(s).is_ok())?;
    }

    #[test]
    fn generated_green_certificate_codes_parse(seed in seeds()) {
        let mut rng = SeededRng::new(seed);
        let a = Authcode::generate(&mut rng);
        prop_assert_eq!(Authcode::parse(a.as_str()), Ok(a.clone()));
        let n = Nucg::generate(&mut rng);
        prop_assert_eq!(Nucg::parse(n.as_str()), Ok(n));
        let c = Cuev::generate(&mut rng);
        prop_assert_eq!(Cuev::parse(c.as_str()), Ok(c));
        let r = Nrfe::generate(&mut rng);
        prop_assert_eq!(Nrfe::parse(r.as_str()), Ok(r));
    }

    #[test]
    fn single_changes_of_an_authcode_are_rejected_exactly_where_the_check_can_tell(seed in seeds()) {
        let a = Authcode::generate(&mut SeededRng::new(seed));
        assert_single_changes_behave(a.as_str(), ALPHABET33, |s| Authcode::parse(s).is_ok())?;
    }

    #[test]
    fn every_single_character_change_of_a_codice_fiscale_is_rejected(seed in seeds()) {
        let cf = ecosim_domain::population::Population::random_codice_fiscale(&mut SeededRng::new(seed));
        prop_assert_eq!(CodiceFiscale::parse(cf.as_str()), Ok(cf));
        // Every character's table value is distinct within the characters allowed at
        // its position, and differs by less than 26: any single change moves the
        // sum off its residue, so every one is refused.
        for changed in single_changes(cf.as_str(), b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") {
            prop_assert!(CodiceFiscale::parse(&changed).is_err(), "{} accepted", changed);
        }
    }

    #[test]
    fn mobile_numbers_round_trip_in_every_written_form(national in "3[0-9]{8,9}") {
        let e164 = format!("+39{national}");
        for form in [national.clone(), e164.clone(), format!("0039{national}")] {
            prop_assert_eq!(MobileNumber::parse(&form).map(|m| m.to_string()), Ok(e164.clone()));
        }
    }

    #[test]
    fn codice_fiscale_parser_never_panics(s in "\\PC{0,20}") {
        let _ = CodiceFiscale::parse(&s);
        let _ = Cun::parse(&s);
        let _ = Email::parse(&s);
        let _ = MobileNumber::parse(&s);
    }
}
