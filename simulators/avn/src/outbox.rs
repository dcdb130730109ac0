//! AVN's outbox work, typed: batches of doses for Sistema TS. The serde tag is the
//! kind the outbox stores.

use std::sync::Arc;

use ecosim_core::client::Method;
use ecosim_core::outbox::{Handler, Item, Outcome};
use ecosim_core::store::StoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::state::Avn;

/// A batch as Sistema TS's `POST /ts/v1/avn/vaccinazioni` takes it.
#[derive(Debug, Serialize)]
struct Batch {
    vaccinazioni: Vec<Value>,
}

/// A delivery AVN owes another system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Work {
    /// A batch of doses to Sistema TS, each in its latest version when sent.
    Ts {
        /// The doses' ids, by date of administration then id.
        ids: Vec<String>,
    },
}

/// The outbox handler: one batch to Sistema TS.
pub(crate) fn handler(avn: Arc<Avn>) -> Handler<Work> {
    Arc::new(move |item: Item<Work>| {
        let avn = avn.clone();
        Box::pin(async move {
            match &item.work {
                Work::Ts { ids } => send_batch(&avn, &item.key, ids).await,
            }
        })
    })
}

async fn send_batch(avn: &Avn, key: &str, ids: &[String]) -> Outcome {
    // The latest version of each dose (a correction may have come since it was queued).
    let records = avn.store.with(|c| crate::store::records(c, ids));
    let records: Vec<Value> = match records {
        Ok(r) => r.iter().map(|r| serde_json::from_str(r).unwrap_or(Value::Null)).collect(),
        Err(e) => return Outcome::Retry { after: None, error: e.to_string() },
    };
    let res = avn
        .ts
        .request(Method::POST, "/ts/v1/avn/vaccinazioni")
        .header("Idempotency-Key", format!("avn-{key}"))
        .json(&Batch { vaccinazioni: records })
        .send()
        .await;
    let outcome = ecosim_core::client::outcome_of(res).await;
    if outcome == Outcome::Done {
        let now = avn.ctx.clock().now().to_string();
        let marked = avn.store.transaction(|tx| Ok::<_, StoreError>(crate::store::mark_forwarded(tx, ids, &now)?));
        if let Err(e) = marked {
            tracing::error!(error = %e, "cannot mark doses as forwarded");
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_stored_as_before_the_work_was_typed() {
        let w = Work::Ts { ids: vec!["a".into(), "b".into()] };
        assert_eq!(ecosim_core::outbox::kind_of(&w), "ts");
        assert_eq!(serde_json::to_value(&w).expect("json"), serde_json::json!({"kind": "ts", "ids": ["a", "b"]}));
    }
}
