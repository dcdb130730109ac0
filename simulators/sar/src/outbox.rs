//! The SAR's outbox: its work, typed (which delivery an item is, and what it
//! carries), the handler that runs each kind (the deliveries are in the wings:
//! `esiti::delivery`, `avr::delivery`) and the bookkeeping run with each outcome.
//!
//! The outbox stores the serde tag as the item's kind and the fields as its payload
//! (`ecosim_core::outbox::Work`); this is the only place those shapes are spelt.
//!
//! The `[sar] defects` of the configuration break some of these on purpose (see
//! `SarDefect`); they exist so `ecosim certify` can be shown to catch each.

use std::sync::Arc;

use ecosim_core::config::SarDefect;
use ecosim_core::outbox::{Handler, Item, Outcome};
use serde::{Deserialize, Serialize};

use crate::state::Sar;
use crate::{avr, esiti};

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

/// An attempt's outcome as a SAR with `sar`'s defects would take it.
fn with_defects(sar: &Sar, outcome: Outcome) -> Outcome {
    let has = |d| sar.ctx.config().sar.has(d);
    match outcome {
        Outcome::Retry { error, .. } if has(SarDefect::NoRetry) => Outcome::Failed(format!("gave up: {error}")),
        Outcome::Retry { error, .. } if has(SarDefect::IgnoreRetryAfter) => Outcome::Retry { after: None, error },
        Outcome::Failed(error) if has(SarDefect::Retry4xx) => Outcome::Retry { after: None, error },
        other => other,
    }
}

/// The outbox handler.
pub(crate) fn handler(sar: Arc<Sar>) -> Handler<Work> {
    Arc::new(move |item: Item<Work>| {
        let sar = sar.clone();
        Box::pin(async move {
            let outcome = match &item.work {
                Work::Ts { id } => esiti::delivery::send_to_ts(&sar, &item, id).await,
                Work::Sms(notice) => esiti::delivery::notify(&sar, &item, notice, Channel::Sms).await,
                Work::Email(notice) => esiti::delivery::notify(&sar, &item, notice, Channel::Email).await,
                Work::Avn { id } => avr::delivery::send_to_avn(&sar, &item, id).await,
            };
            with_defects(&sar, outcome)
        })
    })
}

/// How a CUN goes to the citizen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Channel {
    /// By SMS.
    Sms,
    /// By e-mail.
    Email,
}

/// Moves the result's state along with the attempt's outcome (run by the outbox in
/// the transaction that records the attempt).
pub(crate) fn record(tx: &rusqlite::Connection, item: &Item<Work>, outcome: &Outcome) -> rusqlite::Result<()> {
    let id = &item.key;
    match (&item.work, outcome) {
        (Work::Ts { .. }, Outcome::Retry { .. }) => esiti::store::mark_sent(tx, id)?,
        (Work::Ts { .. }, Outcome::Failed(e)) => esiti::store::mark_error(tx, id, e)?,
        (work @ (Work::Sms(_) | Work::Email(_)), Outcome::Done | Outcome::Failed(_)) => {
            let channel = if matches!(work, Work::Sms(_)) { Channel::Sms } else { Channel::Email };
            esiti::store::channel_done(tx, id, channel, matches!(outcome, Outcome::Done))?;
            if let Outcome::Failed(e) = outcome {
                esiti::store::mark_error(tx, id, e)?;
            }
            esiti::store::notified_if_delivered(tx, id)?;
        }
        // A delivered "ts" item moved the state along with the CUN itself.
        _ => {}
    }
    Ok(())
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
