//! Events for PN-DGC (Flow 4): every valid COVID dose (from AVN or given abroad),
//! every negative test result and every recovery goes to `POST /pn-dgc/v1/eventi`
//! from Sistema TS's durable outbox ([`Work::Dgc`]), with the person as the registry
//! knows them and the contacts registered with the event.

use ecosim_core::outbox::{self, Outcome};
use ecosim_core::store::CachedSql;
use reqwest::Method;
use rusqlite::Connection;
use serde_json::{Value, json};

use crate::outbox::Work;
use crate::registry::Person;
use crate::state::SistemaTs;

/// The person part of an event.
pub(crate) fn assistito(p: &Person) -> Value {
    json!({
        "id": p.id, "tipo": p.tipo,
        "cognome": p.record["cognome"], "nome": p.record["nome"], "data_nascita": p.record["data_nascita"],
        "ultime_8_cifre_ts": p.card_last8, "scadenza_ts": p.record.get("scadenza_ts").filter(|v| !v.is_null()),
    })
}

/// Queues an event (inside the caller's transaction), unique by its id; `dose` is
/// the dose it carries, if any, marked `inviato` once PN-DGC has it.
pub(crate) fn enqueue(tx: &Connection, event: &Value, dose: Option<&str>) -> rusqlite::Result<bool> {
    let key = event["id"].as_str().unwrap_or_default().to_owned();
    outbox::enqueue(tx, &key, &Work::Dgc { event: event.clone(), vaccinazione: dose.map(str::to_owned) })
}

/// [`Work::Dgc`]: the event to PN-DGC; a dose's `dgc` state becomes `inviato`.
pub(crate) async fn deliver(ts: &SistemaTs, event: &Value, dose: Option<&str>) -> Outcome {
    let res = ts.pn_dgc.request(Method::POST, "/pn-dgc/v1/eventi").json(event).send().await;
    let outcome = ecosim_core::client::outcome_of(res).await;
    if outcome == Outcome::Done
        && let Some(dose) = dose
    {
        let marked = ts.store.with(|c| c.exec("UPDATE vaccinazioni SET dgc = 'inviato' WHERE id = ?1", [dose]));
        if let Err(e) = marked {
            tracing::error!(error = %e, "cannot mark a dose as sent to PN-DGC");
        }
    }
    outcome
}
