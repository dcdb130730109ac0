//! AVN's state: its store, the queueing of batches for Sistema TS and the midnight forwarding.

use std::sync::Arc;

use ecosim_core::client::SystemClient;
use ecosim_core::outbox::{self, Outbox};
use ecosim_core::store::{Store, StoreError};
use ecosim_core::{Context, Problem, System};
use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::watch;

use crate::outbox::Work;
use crate::{domain, store};

/// The AVN simulator.
pub struct Avn {
    pub(crate) ctx: Context,
    pub(crate) store: Arc<Store>,
    pub(crate) outbox: Arc<Outbox<Work>>,
    pub(crate) ts: SystemClient,
}

impl std::fmt::Debug for Avn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Avn").field("store", &self.store).finish_non_exhaustive()
    }
}

impl Avn {
    /// Opens the store and makes the client to Sistema TS (as the `avn` service account).
    pub fn new(ctx: &Context) -> Result<Arc<Self>, StoreError> {
        let store = Arc::new(ctx.open_store(System::Avn, store::MIGRATIONS)?);
        Ok(Arc::new(Self {
            ctx: ctx.clone(),
            outbox: Outbox::for_system(ctx, System::Avn, store.clone()),
            ts: SystemClient::new(
                ecosim_core::client::http_client(),
                &ctx.config().url_of(System::SistemaTs),
                ctx.accounts().get("avn"),
            ),
            store,
        }))
    }

    /// Queues for Sistema TS, in one batch, the doses waiting whose time has come:
    /// with `daily` forwarding those received before today's midnight, with
    /// `immediate` all (inside `tx`). Returns how many.
    pub(crate) fn queue_due(&self, tx: &Connection) -> rusqlite::Result<usize> {
        if self.ctx.config().mutant("AVR-1.3b") {
            return Ok(0);
        }
        let clock = self.ctx.clock();
        let cutoff =
            domain::cutoff_ms(self.ctx.config().timing.avn_forwarding, clock.midnight(clock.today()).as_millisecond());
        let due = store::waiting(tx, cutoff)?;
        if due.is_empty() {
            return Ok(0);
        }
        // Each batch its own key: a corrected dose is sent again in a later batch.
        let key = format!("lotto-{}-{}", store::next_batch_number(tx)?, clock.today());
        let n = due.len();
        outbox::enqueue(tx, &key, &Work::Ts { ids: due })?;
        store::mark_queued(tx, cutoff)?;
        Ok(n)
    }

    fn queue_due_now(&self) {
        match self.store.transaction(|tx| Ok::<_, StoreError>(self.queue_due(tx)?)) {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(doses = n, "queued for Sistema TS");
                self.outbox.wake();
            }
            Err(e) => tracing::error!(error = %e, "cannot queue doses for Sistema TS"),
        }
    }
}

/// Catches up once (after a restart, doses whose midnight passed while AVN was
/// down), then forwards at every Italian midnight on the shared clock: a clock job at
/// each midnight, so the batch leaves stamped with that midnight however far one
/// clock move goes (the clock waits for its delivery before moving on). Ends when
/// `stop` turns true.
pub(crate) fn forward_daily(avn: &Arc<Avn>, stop: watch::Receiver<bool>) {
    avn.queue_due_now();
    arm_midnight(avn, stop);
}

fn arm_midnight(avn: &Arc<Avn>, stop: watch::Receiver<bool>) {
    let clock = avn.ctx.clock();
    let today = clock.today();
    let next = clock.midnight(today.tomorrow().unwrap_or(today));
    let weak = Arc::downgrade(avn);
    clock.schedule_at(next, move |_| {
        if *stop.borrow() {
            return;
        }
        if let Some(avn) = weak.upgrade() {
            avn.queue_due_now();
            arm_midnight(&avn, stop);
        }
    });
}

impl ecosim_core::admin::SimulatorAdmin for Avn {
    fn reset(&self) -> Result<(), Problem> {
        Ok(self.store.reset()?)
    }
    fn state(&self) -> Result<Value, Problem> {
        let mut counts = self.store.counts()?;
        let waiting = self.store.with(store::not_forwarded)?;
        counts.insert("da_inoltrare".into(), waiting.into());
        Ok(Value::Object(counts))
    }
}
