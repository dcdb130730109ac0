//! Sistema TS's state: its SQLite store, id and CUN streams, its outbox.

use std::sync::Arc;

use ecosim_core::client::SystemClient;
use ecosim_core::ids::IdGen;
use ecosim_core::outbox::Outbox;
use ecosim_core::store::{CachedSql, Store, StoreError};
use ecosim_core::{Context, Problem, System};
use ecosim_domain::codes::Cun;
use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

/// Schema migrations, in order; never edit a shipped one.
pub(crate) static MIGRATIONS: &[&str] = &[
    "CREATE TABLE test_results (
        id TEXT PRIMARY KEY,
        cun TEXT NOT NULL UNIQUE,
        region TEXT NOT NULL,
        submitted_by TEXT NOT NULL,
        codice_fiscale TEXT NOT NULL,
        esito TEXT NOT NULL,
        tipo_test TEXT NOT NULL,
        data_esecuzione TEXT NOT NULL,
        struttura TEXT NOT NULL,
        cellulare TEXT,
        email TEXT,
        invio_cun_da_ts INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        expires_ms INTEGER NOT NULL,
        cun_sha TEXT NOT NULL
    );
    CREATE INDEX test_results_by_region_date ON test_results (region, data_esecuzione);
    CREATE UNIQUE INDEX test_results_by_cun_sha ON test_results (cun_sha);
    CREATE INDEX test_results_by_cf ON test_results (codice_fiscale);
    -- Every CUN ever issued: never purged, so no CUN is issued twice.
    CREATE TABLE cun_registry (cun TEXT PRIMARY KEY, issued_at TEXT NOT NULL);
    -- What happened to each CUN; no personal data, kept after the purge.
    CREATE TABLE cun_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        cun TEXT NOT NULL,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX cun_events_by_cun ON cun_events (cun);
    -- Earlier versions of corrected records (purged with them).
    CREATE TABLE test_result_versions (
        test_result TEXT NOT NULL,
        version INTEGER NOT NULL,
        at TEXT NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (test_result, version)
    );",
    ecosim_core::idempotency::MIGRATION,
    ecosim_core::outbox::MIGRATION,
    // The Immuni unlock: HIS verifications bound to CUNs, failed card checks.
    "CREATE TABLE cun_verifications (
        id_test_verification TEXT PRIMARY KEY,
        cun TEXT NOT NULL,
        verified_at TEXT NOT NULL,
        invalidated_at TEXT
    );
    CREATE INDEX cun_verifications_by_cun ON cun_verifications (cun);
    CREATE TABLE card_failures (last8 TEXT NOT NULL, at_ms INTEGER NOT NULL);
    CREATE INDEX card_failures_by_card ON card_failures (last8, at_ms);",
    // Vaccinations (Flow 3): registry changes, people outside the SSN, doses, anomalies.
    "CREATE TABLE cf_variazioni (vecchio TEXT PRIMARY KEY, nuovo TEXT NOT NULL UNIQUE, at TEXT NOT NULL);
    CREATE TABLE stranieri (
        id_ts TEXT PRIMARY KEY,
        cognome TEXT NOT NULL,
        nome TEXT NOT NULL,
        sesso TEXT NOT NULL,
        data_nascita TEXT NOT NULL,
        regione TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE vaccinazioni (
        id TEXT PRIMARY KEY,
        fonte TEXT NOT NULL,
        assistito TEXT NOT NULL,
        regione TEXT NOT NULL,
        id_regionale TEXT,
        data TEXT NOT NULL,
        aic TEXT NOT NULL,
        farmaco TEXT NOT NULL,
        dose INTEGER NOT NULL,
        tipo_dose TEXT NOT NULL,
        paese TEXT,
        contatti TEXT NOT NULL,
        record TEXT NOT NULL,
        stato TEXT NOT NULL,
        dgc TEXT NOT NULL,
        versione INTEGER NOT NULL,
        received_at TEXT NOT NULL
    );
    CREATE INDEX vaccinazioni_by_assistito ON vaccinazioni (assistito, data);
    CREATE TABLE anomalie (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        regione TEXT NOT NULL,
        vaccinazione TEXT NOT NULL,
        id_regionale TEXT,
        tipo TEXT NOT NULL,
        dettaglio TEXT NOT NULL,
        rilevata_il TEXT NOT NULL,
        risolta_il TEXT
    );
    CREATE INDEX anomalie_by_regione ON anomalie (regione, id);",
    // Recoveries (Flow 4: recovery certificates).
    "CREATE TABLE guarigioni (
        id TEXT PRIMARY KEY,
        nucg TEXT NOT NULL UNIQUE,
        assistito TEXT NOT NULL,
        regione TEXT NOT NULL,
        data_primo_positivo TEXT NOT NULL,
        data_guarigione TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX guarigioni_by_assistito ON guarigioni (assistito);",
];

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
        let store = Arc::new(ctx.open_store(System::SistemaTs, MIGRATIONS)?);
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
        });
        ts.schedule_purges()?;
        Ok(ts)
    }

    /// A fresh CUN, never issued before, recorded in the registry (inside `tx`).
    pub(crate) fn issue_cun(&self, tx: &rusqlite::Connection, now: Timestamp) -> rusqlite::Result<Cun> {
        loop {
            let cun = self.cuns.with_rng(Cun::generate);
            let added = tx.exec(
                "INSERT OR IGNORE INTO cun_registry (cun, issued_at) VALUES (?1, ?2)",
                params![cun.as_str(), now.to_string()],
            )?;
            if added == 1 {
                return Ok(cun);
            }
        }
    }

    /// Records an event on a CUN.
    pub(crate) fn event(
        tx: &rusqlite::Connection,
        cun: &str,
        at: Timestamp,
        kind: &str,
        detail: serde_json::Value,
    ) -> rusqlite::Result<()> {
        tx.exec(
            "INSERT INTO cun_events (cun, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![cun, at.to_string(), kind, detail.to_string()],
        )?;
        Ok(())
    }

    fn schedule_purges(self: &Arc<Self>) -> Result<(), StoreError> {
        let rows: Vec<(String, i64)> = self.store.with(|c| {
            let mut stmt = c.prepare("SELECT id, expires_ms FROM test_results")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })?;
        for (id, expires_ms) in rows {
            let expires_ms: i64 = expires_ms;
            if let Ok(at) = Timestamp::from_millisecond(expires_ms) {
                self.schedule_purge(id, at);
            }
        }
        Ok(())
    }

    /// Deletes record `id` when the clock reaches `at` (ORD-3.2).
    pub(crate) fn schedule_purge(self: &Arc<Self>, id: String, at: Timestamp) {
        let weak = Arc::downgrade(self);
        self.ctx.clock().schedule_at(at, move |now| {
            if let Some(ts) = weak.upgrade()
                && let Err(e) = ts.purge(&id, now)
            {
                tracing::error!(error = %e, id, "cannot purge an expired test result");
            }
        });
    }

    fn purge(&self, id: &str, now: Timestamp) -> Result<(), StoreError> {
        self.store.transaction(|tx| {
            let cun: Option<String> = tx
                .query_row(
                    "SELECT cun FROM test_results WHERE id = ?1 AND expires_ms <= ?2",
                    params![id, now.as_millisecond()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(cun) = cun {
                tx.exec("DELETE FROM test_result_versions WHERE test_result = ?1", [id])?;
                tx.exec("DELETE FROM test_results WHERE id = ?1", [id])?;
                Self::event(tx, &cun, now, "purged", serde_json::json!({"requirement": "ORD-3.2"}))?;
            }
            Ok::<_, StoreError>(())
        })
    }
}

impl SistemaTs {
    /// Whether the card digits are locked out by too many recent failures.
    pub(crate) fn card_locked(&self, last8: &str) -> Result<bool, StoreError> {
        let bf = &self.ctx.config().brute_force;
        let since = self.ctx.clock().now().checked_sub(bf.window.0).map(|t| t.as_millisecond()).unwrap_or(i64::MIN);
        let n: i64 = self.store.with(|c| {
            c.row("SELECT COUNT(*) FROM card_failures WHERE last8 = ?1 AND at_ms > ?2", params![last8, since], |r| {
                r.get(0)
            })
        })?;
        Ok(n >= i64::from(bf.max_failures))
    }

    /// Counts a failed CUN + card check (only the card digits are kept, no CF).
    pub(crate) fn card_failed(&self, last8: &str) -> Result<(), StoreError> {
        let now = self.ctx.clock().now().as_millisecond();
        self.store
            .with(|c| c.exec("INSERT INTO card_failures (last8, at_ms) VALUES (?1, ?2)", params![last8, now]))
            .map(|_| ())
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
