//! The dose-count check Sistema TS applies to doses from AVN (AVR-TS-CHECK).
//!
//! Sistema TS holds every COVID dose of a person: those AVN forwards and those ASLs
//! register as given abroad. A dose from AVN is consistent when its number is the
//! count of doses held before its date plus one; after a cycle abroad with a vaccine
//! EMA did not authorise, a dose more than 180 days after the last one starts a new
//! cycle as dose 1 (GIAVA 6.3, AVR-6d).

use ecosim_domain::vaccines::{NON_EMA_BOOSTER_UNTIL_DAYS, Vaccine};
use jiff::civil::Date;

/// A dose Sistema TS holds.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    /// When it was given.
    pub date: Date,
    /// The vaccine.
    pub vaccine: &'static Vaccine,
}

/// The dose number Sistema TS expects for a dose given on `date`, from the doses it
/// holds (any order).
pub fn expected_dose(held: &[Held], date: Date) -> u8 {
    let mut before: Vec<&Held> = held.iter().filter(|h| h.date < date).collect();
    before.sort_by_key(|h| h.date);
    match before.last() {
        None => 1,
        Some(last)
            if before.iter().all(|h| !h.vaccine.ema) && (date - last.date).get_days() > NON_EMA_BOOSTER_UNTIL_DAYS =>
        {
            1
        }
        Some(_) => u8::try_from(before.len() + 1).unwrap_or(u8::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecosim_domain::vaccines::find;
    use jiff::civil::date;

    fn held(d: Date, code: &str) -> Held {
        Held { date: d, vaccine: find(code).expect("vaccine") }
    }

    #[test]
    fn doses_count_from_those_held_before() {
        let h = [held(date(2021, 5, 1), "COMIRNATY"), held(date(2021, 5, 22), "COMIRNATY")];
        assert_eq!(expected_dose(&[], date(2021, 5, 1)), 1);
        assert_eq!(expected_dose(&h[..1], date(2021, 5, 22)), 2);
        assert_eq!(expected_dose(&h, date(2021, 12, 1)), 3);
        // A dose dated before the ones held is counted where it falls.
        assert_eq!(expected_dose(&h[1..], date(2021, 5, 1)), 1);
    }

    #[test]
    fn a_non_ema_cycle_abroad_then_mrna_is_n_plus_1_until_day_180_then_1() {
        let h = [held(date(2021, 3, 1), "SPUTNIK-V"), held(date(2021, 3, 22), "SPUTNIK-V")];
        let last = date(2021, 3, 22);
        assert_eq!(expected_dose(&h, last.checked_add(jiff::Span::new().days(180)).unwrap()), 3);
        assert_eq!(expected_dose(&h, last.checked_add(jiff::Span::new().days(181)).unwrap()), 1);
        // Not for EMA vaccines: a late dose is still the next one.
        let ema = [held(date(2021, 3, 1), "JANSSEN")];
        assert_eq!(expected_dose(&ema, date(2022, 3, 1)), 2);
    }
}
