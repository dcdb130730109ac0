//! Sistema TS's outbox work, typed: the CUN to the citizen (ORD-6.2) and events to
//! PN-DGC (Flow 4). The serde tag is the kind the outbox stores.

use std::sync::Arc;

use ecosim_core::outbox::{Handler, Item};
use ecosim_domain::green_pass::Evento;
use serde::{Deserialize, Serialize};

use crate::state::SistemaTs;

pub(crate) mod dgc;
pub(crate) mod notify;

/// A delivery Sistema TS owes another system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Work {
    /// The CUN by SMS, for a region that asked Sistema TS to send it.
    Sms(CunNotice),
    /// The CUN by e-mail.
    Email(CunNotice),
    /// An event to PN-DGC.
    Dgc {
        /// The event as `POST /pn-dgc/v1/eventi` takes it.
        event: Box<Evento>,
        /// The dose it carries, marked `inviato` once PN-DGC has it.
        vaccinazione: Option<String>,
    },
}

/// What a CUN SMS or e-mail carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CunNotice {
    /// The CUN.
    pub(crate) cun: String,
    /// The number or address.
    pub(crate) to: String,
    /// The test date, `YYYY-MM-DD`.
    pub(crate) date: String,
}

/// The outbox handler.
pub(crate) fn handler(ts: Arc<SistemaTs>) -> Handler<Work> {
    Arc::new(move |item: Item<Work>| {
        let ts = ts.clone();
        Box::pin(async move {
            match &item.work {
                Work::Sms(n) => crate::outbox::notify::deliver(&ts, n, crate::outbox::notify::Channel::Sms).await,
                Work::Email(n) => crate::outbox::notify::deliver(&ts, n, crate::outbox::notify::Channel::Email).await,
                Work::Dgc { event, vaccinazione } => {
                    crate::outbox::dgc::deliver(&ts, event, vaccinazione.as_deref()).await
                }
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecosim_core::outbox::kind_of;

    #[test]
    fn kinds_are_the_ones_stored_before_the_work_was_typed() {
        let n = CunNotice { cun: "6HQ5EW73HE".into(), to: "+393331234567".into(), date: "2021-01-19".into() };
        let kinds: Vec<String> = [Work::Sms(n.clone()), Work::Email(n)].iter().map(kind_of).collect();
        assert_eq!(kinds, ["sms", "email"]);
    }
}
