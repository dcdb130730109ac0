//! The synthetic population: determinism, consistency and realistic shares.

use ecosim_domain::codes::{BirthplaceKind, CodiceFiscale, PersonData};
use ecosim_domain::population::{DEFAULT_REFERENCE_DATE, Population};

#[test]
fn same_seed_and_size_give_the_same_population() {
    let a = Population::generate(42, 2_000);
    let b = Population::generate(42, 2_000);
    let c = Population::generate(43, 2_000);
    let records = |p: &Population| p.iter().map(|c| c.record()).collect::<Vec<_>>();
    assert_eq!(records(&a), records(&b));
    assert_ne!(records(&a), records(&c));
}

#[test]
fn every_codice_fiscale_is_consistent_with_its_person() {
    let p = Population::generate(7, 5_000);
    for c in p.iter() {
        let cf = c.codice_fiscale();
        let expected = CodiceFiscale::from_person(&PersonData {
            surname: c.surname(),
            name: c.name(),
            sex: c.sex(),
            birth_date: c.birth_date(),
            birthplace: c.birthplace().code,
        })
        .expect("table birthplaces are valid");
        assert_eq!(cf.base_form(), expected, "{}", cf);
        assert_eq!(CodiceFiscale::parse(cf.as_str()), Ok(*cf));
        assert_eq!(cf.birth_date(DEFAULT_REFERENCE_DATE), Some(c.birth_date()));
    }
}

#[test]
fn colliding_people_get_omocode_variants_and_stay_unique() {
    // A large registry with a skewed name distribution is certain to collide.
    let p = Population::generate(1, 200_000);
    let omocodes: Vec<_> = p.iter().filter(|c| c.codice_fiscale().is_omocode()).collect();
    assert!(!omocodes.is_empty(), "no omocodia in 200k people");
    for c in omocodes {
        let base = c.codice_fiscale().base_form();
        let holder = p.by_codice_fiscale(&base).expect("the base form belongs to someone else");
        assert_ne!(holder.codice_fiscale(), c.codice_fiscale());
    }
    let unique: std::collections::HashSet<_> = p.iter().map(|c| *c.codice_fiscale()).collect();
    assert_eq!(unique.len(), p.len());
}

#[test]
fn lookups_by_codice_fiscale_and_card_digits_find_the_person() {
    let p = Population::generate(3, 10_000);
    for c in p.iter().step_by(97) {
        let found = p.by_codice_fiscale(c.codice_fiscale()).expect("by cf");
        assert_eq!(found.codice_fiscale(), c.codice_fiscale());
        let found = p.by_card_last8(&c.card().last8()).expect("by last 8");
        assert_eq!(found.codice_fiscale(), c.codice_fiscale());
    }
    let nobody = CodiceFiscale::parse("RSSMRA45D25F205N").expect("valid");
    if let Some(found) = p.by_codice_fiscale(&nobody) {
        assert_eq!(found.codice_fiscale(), &nobody);
    }
}

#[test]
fn shares_of_contacts_ages_and_places_are_realistic() {
    let p = Population::generate(11, 20_000);
    let today = p.reference_date();
    let n = p.len() as f64;
    let share = |f: &dyn Fn(&ecosim_domain::population::Citizen) -> bool| p.iter().filter(|c| f(c)).count() as f64 / n;
    let mobile = share(&|c| c.mobile().is_some());
    let email = share(&|c| c.email().is_some());
    let minors = share(&|c| c.is_minor_on(today));
    let abroad = share(&|c| c.birthplace().kind == BirthplaceKind::Abroad);
    let lombardy = share(&|c| c.region().code == "030");
    assert!((0.80..0.90).contains(&mobile), "mobile {mobile}");
    assert!((0.54..0.66).contains(&email), "email {email}");
    assert!((0.12..0.22).contains(&minors), "minors {minors}");
    assert!((0.04..0.12).contains(&abroad), "abroad {abroad}");
    assert!((0.14..0.20).contains(&lombardy), "lombardy {lombardy}");
    assert!(p.iter().all(|c| (0..=100).contains(&c.age_on(today))));
    assert!(p.iter().any(|c| c.age_on(today) >= 90));
    assert!(p.iter().any(|c| c.age_on(today) == 0));
}

#[test]
fn minors_carry_a_parent_mobile_and_adults_do_not() {
    let p = Population::generate(5, 5_000);
    let today = p.reference_date();
    for c in p.iter() {
        assert_eq!(c.parent_mobile().is_some(), c.is_minor_on(today), "{}", c.codice_fiscale());
    }
}

#[test]
fn cards_belong_to_the_region_and_are_valid_today() {
    let p = Population::generate(9, 5_000);
    let today = p.reference_date();
    for c in p.iter() {
        let card = c.card();
        assert_eq!(&card.number.issuer()[7..], c.region().code);
        assert!(card.is_valid_on(today), "{} expires {}", c.codice_fiscale(), card.expiry);
        assert!(c.asl().starts_with(c.region().code));
    }
}

#[test]
fn records_have_the_documented_fields() {
    let p = Population::generate(42, 50);
    let c = p.get(0).expect("one citizen");
    let json = serde_json::to_value(c.record()).expect("json");
    let keys: Vec<&str> = json.as_object().expect("object").keys().map(String::as_str).collect();
    let mut expected = ecosim_domain::population::CitizenRecord::FIELDS.to_vec();
    expected.sort_unstable();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(keys, expected);
}

#[test]
fn nobody_is_born_in_a_place_before_it_existed() {
    use ecosim_domain::codes::belfiore_table::existed_on;
    // Latina dates from 1932, Carbonia from 1938, Verbania from 1939; Massa was
    // Apuania in 1938-46. 100,000 people include some born earlier in each region.
    let p = Population::generate(42, 100_000);
    let wrong: Vec<String> = p
        .iter()
        .filter(|c| !existed_on(c.birthplace().code, c.birth_date()))
        .map(|c| format!("{} born {} in {}", c.codice_fiscale(), c.birth_date(), c.birthplace().name))
        .collect();
    assert!(wrong.is_empty(), "{} people: {:?}", wrong.len(), &wrong[..wrong.len().min(5)]);
}
