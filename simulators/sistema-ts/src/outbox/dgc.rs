//! Events for PN-DGC (Flow 4): every valid COVID dose (from AVN or given abroad),
//! every negative test result and every recovery goes to `POST /pn-dgc/v1/eventi`
//! from Sistema TS's durable outbox ([`Work::Dgc`]), with the person as the registry
//! knows them and the contacts registered with the event.

use ecosim_core::client::Method;
use ecosim_core::outbox::{self, Outcome};
use ecosim_domain::green_pass::{Assistito, Contatti, Evento};
use ecosim_domain::vaccination::ContattiDgc;
use jiff::civil::Date;
use rusqlite::Connection;

use crate::domain::registry::Person;
use crate::outbox::Work;
use crate::state::SistemaTs;

/// The person part of an event.
pub(crate) fn assistito(p: &Person) -> Assistito {
    Assistito {
        id: p.id.clone(),
        tipo: p.tipo.to_owned(),
        cognome: p.record.cognome.clone(),
        nome: p.record.nome.clone(),
        data_nascita: p.birth_date,
        ultime_8_cifre_ts: p.card_last8.clone(),
        scadenza_ts: p.record.scadenza_ts.as_deref().and_then(|d| d.parse::<Date>().ok()),
    }
}

/// The AUTHCODE contacts of an event, from the green-pass contacts given.
pub(crate) fn contatti(c: &ContattiDgc) -> Contatti {
    Contatti { cellulare: c.cellulare.clone(), email: c.email.clone() }
}

/// Queues an event (inside the caller's transaction), unique by its id; `dose` is
/// the dose it carries, if any, marked `inviato` once PN-DGC has it.
pub(crate) fn enqueue(tx: &Connection, event: &Evento, dose: Option<&str>) -> rusqlite::Result<bool> {
    outbox::enqueue(tx, &event.id, &Work::Dgc { event: Box::new(event.clone()), vaccinazione: dose.map(str::to_owned) })
}

/// [`Work::Dgc`]: the event to PN-DGC; a dose's `dgc` state becomes `inviato`.
pub(crate) async fn deliver(ts: &SistemaTs, event: &Evento, dose: Option<&str>) -> Outcome {
    let res = ts.pn_dgc.request(Method::POST, "/pn-dgc/v1/eventi").json(event).send().await;
    let outcome = ecosim_core::client::outcome_of(res).await;
    if outcome == Outcome::Done
        && let Some(dose) = dose
    {
        let marked = ts.store.with(|c| crate::store::vaccinazioni::mark_sent_to_dgc(c, dose));
        if let Err(e) = marked {
            tracing::error!(error = %e, "cannot mark a dose as sent to PN-DGC");
        }
    }
    outcome
}
