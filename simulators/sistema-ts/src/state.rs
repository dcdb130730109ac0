//! Sistema TS's state: its SQLite store, id and CUN streams, its outbox.

use std::sync::Arc;

use ecosim_core::client::SystemClient;
use ecosim_core::ids::IdGen;
use ecosim_core::outbox::Outbox;
use ecosim_core::store::{Store, StoreError};
use ecosim_core::{Context, Problem, System};
use ecosim_domain::codes::Cun;
use jiff::Timestamp;

use crate::store;

/// Sistema TS.
pub struct SistemaTs {
    pub(crate) ctx: Context,
    pub(crate) store: Arc<Store>,
    pub(crate) ids: IdGen,
    pub(crate) cuns: IdGen,
    pub(crate) nucgs: IdGen,
    pub(crate) outbox: Arc<Outbox<crate::outbox::Work>>,
    pub(crate) sms: SystemClient,
    pub(crate) immuni: SystemClient,
    pub(crate) pn_dgc: SystemClient,
    /// The instants a purge is scheduled at (one job per instant, whatever the
    /// number of records expiring then).
    purges: std::sync::Mutex<std::collections::BTreeSet<i64>>,
}

impl std::fmt::Debug for SistemaTs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SistemaTs").field("store", &self.store).finish_non_exhaustive()
    }
}

impl SistemaTs {
    /// Opens the store, purges what expired while it was down, and schedules the
    /// purge of everything else on the shared clock.
    pub fn new(ctx: &Context) -> Result<Arc<Self>, StoreError> {
        let store = Arc::new(ctx.open_store(System::SistemaTs, store::MIGRATIONS)?);
        let generation = store.generation();
        let seed = ctx.config().seed;
        let outbox = Outbox::for_system(ctx, System::SistemaTs, store.clone());
        let http = ecosim_core::client::http_client();
        let sms =
            SystemClient::new(http.clone(), &ctx.config().url_of(System::SmsGateway), ctx.accounts().get("sistema-ts"));
        let immuni =
            SystemClient::new(http.clone(), &ctx.config().url_of(System::Immuni), ctx.accounts().get("sistema-ts"));
        let pn_dgc = SystemClient::new(http, &ctx.config().url_of(System::PnDgc), ctx.accounts().get("sistema-ts"));
        let ts = Arc::new(Self {
            ctx: ctx.clone(),
            store,
            ids: IdGen::new(seed, "sistema-ts/test-results", generation),
            cuns: IdGen::new(seed, "sistema-ts/cun", generation),
            nucgs: IdGen::new(seed, "sistema-ts/nucg", generation),
            outbox,
            sms,
            immuni,
            pn_dgc,
            purges: Default::default(),
        });
        ts.schedule_purges()?;
        Ok(ts)
    }

    /// Writes `record` with a CUN drawn from the seed, drawing again while a record
    /// held has the one drawn (inside `tx`): no CUN is issued twice.
    pub(crate) fn insert_with_fresh_cun(
        &self,
        tx: &rusqlite::Connection,
        record: &store::test_results::NewRecord<'_>,
    ) -> rusqlite::Result<Cun> {
        loop {
            let mut cun = self.cuns.with_rng(Cun::generate);
            if self.ctx.config().mutant("ORD-4") {
                cun = cun.mutated();
            }
            if store::test_results::insert(tx, record, &cun)? {
                return Ok(cun);
            }
        }
    }

    fn schedule_purges(self: &Arc<Self>) -> Result<(), StoreError> {
        for expires_ms in self.store.with(store::test_results::expiries)? {
            if let Ok(at) = Timestamp::from_millisecond(expires_ms) {
                self.schedule_purge(at);
            }
        }
        Ok(())
    }

    /// Purges the records expiring at `at` when the clock reaches it (ORD-3.2): one
    /// clock job per instant, however many records expire then.
    pub(crate) fn schedule_purge(self: &Arc<Self>, at: Timestamp) {
        let fresh = self.purges.lock().unwrap_or_else(|p| p.into_inner()).insert(at.as_millisecond());
        if !fresh {
            return;
        }
        let weak = Arc::downgrade(self);
        self.ctx.clock().schedule_at(at, move |now| {
            if let Some(ts) = weak.upgrade() {
                ts.purges.lock().unwrap_or_else(|p| p.into_inner()).remove(&at.as_millisecond());
                if let Err(e) = ts.purge(now) {
                    tracing::error!(error = %e, "cannot purge expired test results");
                }
            }
        });
    }

    /// Deletes every expired record and everything kept about it (ORD-3.2): its
    /// earlier versions, its CUN's history and HIS verifications, the
    /// `Idempotency-Key` that made it (a retry is then a new request, refused as too
    /// old, never a replay of a CUN that is gone); and sweeps failed checks older than
    /// the brute-force window. Nothing about a record outlives it, so no table grows
    /// with the results ever received.
    fn purge(&self, now: Timestamp) -> Result<(), StoreError> {
        let failures_before = self.failure_window_start();
        self.store.transaction(|tx| {
            for (id, cun) in store::test_results::purge_expired(tx, now.as_millisecond())? {
                store::cun::forget(tx, &cun)?;
                ecosim_core::idempotency::forget(tx, &id)?;
            }
            store::unlock::sweep_failures(tx, failures_before)?;
            Ok::<_, StoreError>(())
        })
    }

    /// Start of the brute-force window, in milliseconds.
    fn failure_window_start(&self) -> i64 {
        let bf = &self.ctx.config().brute_force;
        self.ctx.clock().now().checked_sub(bf.window.0).map(|t| t.as_millisecond()).unwrap_or(i64::MIN)
    }

    /// Whether the CUN is locked: too many recent checks of it with wrong card
    /// digits (someone guessing the digits of a CUN they know). Every check of a
    /// locked CUN is refused, the right digits too, until the window passes.
    pub(crate) fn cun_locked(&self, cun: &str) -> Result<bool, StoreError> {
        let since = self.failure_window_start();
        let n = self.store.with(|c| store::unlock::cun_failures_since(c, cun, since))?;
        Ok(n >= i64::from(self.ctx.config().brute_force.max_failures))
    }

    /// Whether the card digits are locked: too many recent failed checks with them
    /// (someone trying CUNs for digits they know). A locked card refuses only checks
    /// that would fail anyway: the citizen's own CUN with their digits still passes,
    /// so strangers cannot lock a citizen out.
    pub(crate) fn card_locked(&self, last8: &str) -> Result<bool, StoreError> {
        let since = self.failure_window_start();
        let n = self.store.with(|c| store::unlock::failures_since(c, last8, since))?;
        Ok(n >= i64::from(self.ctx.config().brute_force.max_failures))
    }

    /// Counts a failed CUN + card check: per card digits, and per CUN when the CUN
    /// checked exists (no codice fiscale is kept).
    pub(crate) fn card_failed(&self, last8: &str, cun: Option<&str>) -> Result<(), StoreError> {
        let now = self.ctx.clock().now().as_millisecond();
        self.store.with(|c| store::unlock::add_failure(c, last8, cun, now))
    }
}

impl ecosim_core::admin::SimulatorAdmin for SistemaTs {
    fn reset(&self) -> Result<(), Problem> {
        Ok(self.store.reset()?)
    }
    fn state(&self) -> Result<serde_json::Value, Problem> {
        Ok(serde_json::Value::Object(self.store.counts()?))
    }
}
