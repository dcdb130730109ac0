//! Sistema TS's rules on test results (ORD-3.1a, ORD-3.2), as plain functions.
//!
//! The shape and field checks are shared ([`ecosim_domain::test_result`]); what only
//! Sistema TS can check (the registry, the retention window) is here, answering 422
//! with the requirement id.

pub use ecosim_domain::test_result::*;

use ecosim_core::problem::Problem;
use ecosim_domain::population::Population;
use jiff::civil::Date;

/// The registry and date rules (422, ORD-3.1a): the person exists, the test is not
/// in the future nor older than the retention window.
pub fn check_rules(r: &TestResult, registry: &Population, today: Date, window_days: i64) -> Result<(), Problem> {
    if registry.by_codice_fiscale(&r.codice_fiscale).is_none() {
        return Err(Problem::unprocessable(format!(
            "codice fiscale {} is not in the national registry (anagrafe)",
            r.codice_fiscale
        ))
        .with_field("codice_fiscale", "unknown to the registry")
        .with_requirement("ORD-3.1a"));
    }
    if r.data_esecuzione > today {
        return Err(Problem::unprocessable(format!(
            "the test date {} is in the future (today is {today})",
            r.data_esecuzione
        ))
        .with_field("data_esecuzione", "is in the future")
        .with_requirement("ORD-3.1a"));
    }
    let oldest = today.checked_sub(jiff::Span::new().days(window_days)).unwrap_or(today);
    if r.data_esecuzione < oldest {
        return Err(Problem::unprocessable(format!(
            "the test date {} is more than {window_days} days ago (oldest accepted {oldest})",
            r.data_esecuzione
        ))
        .with_field("data_esecuzione", format!("is older than {window_days} days"))
        .with_requirement("ORD-3.2"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(cf: &str, date: &str) -> TestResult {
        validate(&RawTestResult {
            codice_fiscale: Some(cf.into()),
            esito: Some("POSITIVO".into()),
            tipo_test: Some("MOLECOLARE".into()),
            data_esecuzione: Some(date.into()),
            struttura: Some("LAB-160-001".into()),
            ..Default::default()
        })
        .expect("valid")
    }

    #[test]
    fn dates_in_the_future_or_too_old_are_refused() {
        let registry = Population::generate(1, 10);
        let someone = registry.get(0).expect("one").codice_fiscale().to_string();
        let today = jiff::civil::date(2021, 10, 1);
        assert!(check_rules(&result(&someone, "2021-10-01"), &registry, today, 14).is_ok());
        assert!(check_rules(&result(&someone, "2021-09-17"), &registry, today, 14).is_ok());
        let p = check_rules(&result(&someone, "2021-09-16"), &registry, today, 14).unwrap_err();
        assert_eq!((p.status, p.errors[0].field.as_str()), (422, "data_esecuzione"));
        let p = check_rules(&result(&someone, "2021-10-02"), &registry, today, 14).unwrap_err();
        assert_eq!(p.requirement.as_deref(), Some("ORD-3.1a"));
    }

    #[test]
    fn a_person_unknown_to_the_registry_is_refused() {
        let p = check_rules(
            &result("RSSMRA45D25F205N", "2021-10-01"),
            &Population::generate(2, 0),
            jiff::civil::date(2021, 10, 1),
            14,
        )
        .unwrap_err();
        assert_eq!((p.status, p.errors[0].field.as_str()), (422, "codice_fiscale"));
    }
}
