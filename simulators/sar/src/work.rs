//! The SAR's outbox work, typed: which delivery an item is, and what a notice carries.
//!
//! The outbox stores a kind string and a JSON payload per item (`ecosim_core::outbox`);
//! this is the only place those strings and shapes are spelt.

use ecosim_core::outbox::Item;

/// A kind of delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// A test result to Sistema TS.
    ToTs,
    /// The CUN by SMS.
    Sms,
    /// The CUN by e-mail.
    Email,
    /// A dose to AVN.
    ToAvn,
}

impl Work {
    /// The kind as the outbox stores it.
    pub(crate) const fn kind(self) -> &'static str {
        match self {
            Self::ToTs => "ts",
            Self::Sms => "sms",
            Self::Email => "email",
            Self::ToAvn => "avn",
        }
    }

    /// The work an outbox item is, if the SAR knows its kind.
    pub(crate) fn of(item: &Item) -> Option<Self> {
        [Self::ToTs, Self::Sms, Self::Email, Self::ToAvn].into_iter().find(|w| w.kind() == item.kind)
    }
}

/// What an SMS or e-mail item carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

    #[test]
    fn every_kind_reads_back_as_itself() {
        for w in [Work::ToTs, Work::Sms, Work::Email, Work::ToAvn] {
            let item =
                Item { id: 1, kind: w.kind().into(), key: "k".into(), payload: serde_json::Value::Null, attempts: 0 };
            assert_eq!(Work::of(&item), Some(w));
        }
        let odd = Item { id: 1, kind: "fax".into(), key: "k".into(), payload: serde_json::Value::Null, attempts: 0 };
        assert_eq!(Work::of(&odd), None);
    }

    #[test]
    fn a_notice_without_a_leak_has_no_cf_field() {
        let n = Notice { to: "+393331234567".into(), cun: "6HQ5EW73HE".into(), date: "2021-01-19".into(), cf: None };
        let v = serde_json::to_value(&n).expect("json");
        assert!(v.get("cf").is_none(), "{v}");
        assert_eq!(serde_json::from_value::<Notice>(v).expect("back"), n);
    }
}
