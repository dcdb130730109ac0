//! AVN's state: its store, the queueing of batches for Sistema TS and the midnight forwarding.

use std::sync::Arc;

use ecosim_core::client::SystemClient;
use ecosim_core::config::Forwarding;
use ecosim_core::outbox::{self, Outbox};
use ecosim_core::store::{CachedSql, Store, StoreError};
use ecosim_core::{Context, Problem, System};
use rusqlite::{Connection, params};
use serde_json::Value;
use tokio::sync::watch;

use crate::outbox::Work;

/// Schema migrations, in order; never edit a shipped one.
pub(crate) static MIGRATIONS: &[&str] = &[
    "CREATE TABLE somministrazioni (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        regione_somministrazione TEXT NOT NULL,
        id_regionale TEXT NOT NULL,
        regione_residenza TEXT NOT NULL,
        assistito TEXT NOT NULL,
        data TEXT NOT NULL,
        record TEXT NOT NULL,
        versione INTEGER NOT NULL,
        received_at TEXT NOT NULL,
        received_ms INTEGER NOT NULL,
        received_day TEXT NOT NULL,
        inoltro TEXT NOT NULL,
        inoltrata_il TEXT
    );
    CREATE INDEX somministrazioni_mobilita ON somministrazioni (regione_residenza, received_day);
    CREATE INDEX somministrazioni_inoltro ON somministrazioni (inoltro, received_ms);",
    ecosim_core::outbox::MIGRATION,
];

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
        let store = Arc::new(ctx.open_store(System::Avn, MIGRATIONS)?);
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
        let cutoff = match self.ctx.config().timing.avn_forwarding {
            Forwarding::Immediate => i64::MAX,
            Forwarding::Daily => self.ctx.clock().midnight(self.ctx.clock().today()).as_millisecond(),
        };
        let ids: Vec<(i64, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, id FROM somministrazioni WHERE inoltro = 'in_attesa' AND received_ms < ?1 ORDER BY seq",
            )?;
            stmt.query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
        };
        let Some((first, _)) = ids.first() else { return Ok(0) };
        let (last, _) = ids[ids.len() - 1];
        // Each batch its own key: a corrected dose is sent again in a later batch.
        let n: i64 = tx.row("SELECT COALESCE(MAX(id), 0) + 1 FROM outbox", [], |r| r.get(0))?;
        let key = format!("lotto-{n}-{}", self.ctx.clock().today());
        let list: Vec<String> = ids.iter().map(|(_, id)| id.clone()).collect();
        outbox::enqueue(tx, &key, &Work::Ts { ids: list })?;
        tx.exec(
            "UPDATE somministrazioni SET inoltro = 'in_coda' WHERE inoltro = 'in_attesa' AND seq BETWEEN ?1 AND ?2
             AND received_ms < ?3",
            params![first, last, cutoff],
        )?;
        Ok(ids.len())
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

/// Every time the shared clock moves (and once at start, to catch up after a
/// restart), queues the doses whose midnight has passed.
pub(crate) async fn forward_daily(avn: Arc<Avn>, mut stop: watch::Receiver<bool>) {
    let mut clock = avn.ctx.clock().subscribe();
    loop {
        avn.queue_due_now();
        tokio::select! {
            changed = clock.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

impl ecosim_core::admin::SimulatorAdmin for Avn {
    fn reset(&self) -> Result<(), Problem> {
        Ok(self.store.reset()?)
    }
    fn state(&self) -> Result<Value, Problem> {
        let mut counts = self.store.counts()?;
        let waiting: i64 = self
            .store
            .with(|c| c.row("SELECT COUNT(*) FROM somministrazioni WHERE inoltro != 'inoltrata'", [], |r| r.get(0)))?;
        counts.insert("da_inoltrare".into(), waiting.into());
        Ok(Value::Object(counts))
    }
}
