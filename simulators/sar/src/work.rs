//! The SAR's outbox work, typed: which delivery an item is, and what it carries.
//!
//! The outbox stores the serde tag as the item's kind and the fields as its payload
//! (`ecosim_core::outbox::Work`); this is the only place those shapes are spelt.

use serde::{Deserialize, Serialize};

/// A delivery the SAR owes another system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Work {
    /// The test result `id` to Sistema TS.
    Ts {
        /// The result's id.
        id: String,
    },
    /// The CUN by SMS.
    Sms(Notice),
    /// The CUN by e-mail.
    Email(Notice),
    /// The current version of dose `id` to AVN.
    Avn {
        /// The dose's id.
        id: String,
    },
}

/// What an SMS or e-mail item carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Notice {
    /// The number or address.
    pub(crate) to: String,
    /// The CUN, ten characters.
    pub(crate) cun: String,
    /// The test date, `YYYY-MM-DD`.
    pub(crate) date: String,
    /// The codice fiscale, only with the defect that leaks it (IFC-MINIMISE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cf: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecosim_core::outbox::kind_of;

    #[test]
    fn kinds_are_the_ones_stored_before_the_work_was_typed() {
        let n = Notice { to: "+393331234567".into(), cun: "6HQ5EW73HE".into(), date: "2021-01-19".into(), cf: None };
        let kinds: Vec<String> =
            [Work::Ts { id: "a".into() }, Work::Sms(n.clone()), Work::Email(n), Work::Avn { id: "b".into() }]
                .iter()
                .map(kind_of)
                .collect();
        assert_eq!(kinds, ["ts", "sms", "email", "avn"]);
    }

    #[test]
    fn a_notice_without_a_leak_has_no_cf_field() {
        let n = Notice { to: "+393331234567".into(), cun: "6HQ5EW73HE".into(), date: "2021-01-19".into(), cf: None };
        let v = serde_json::to_value(Work::Sms(n.clone())).expect("json");
        assert!(v.get("cf").is_none(), "{v}");
        assert_eq!(serde_json::from_value::<Work>(v).expect("back"), Work::Sms(n));
    }
}
