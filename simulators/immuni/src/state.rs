//! Immuni's state: authorised OTPs (keyed by their SHA-256, write-once, with a TTL on
//! the shared clock) and the uploads received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecosim_core::client::SystemClient;
use ecosim_core::store::{CachedSql, Store, StoreError};
use ecosim_core::{Context, Problem, System};
use ecosim_domain::rng::SeededRng;
use jiff::civil::Date;
use rusqlite::{OptionalExtension, params};

/// Schema migrations, in order; never edit a shipped one.
pub(crate) static MIGRATIONS: &[&str] = &["CREATE TABLE otps (
        key TEXT PRIMARY KEY,
        symptoms_started_on TEXT NOT NULL,
        id_test_verification TEXT,
        expires_ms INTEGER NOT NULL,
        authorised_at TEXT NOT NULL
    );
    CREATE TABLE uploads (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        province TEXT NOT NULL,
        countries_of_interest TEXT NOT NULL,
        teks TEXT NOT NULL,
        summaries INTEGER NOT NULL,
        symptoms_started_on TEXT NOT NULL,
        from_cun INTEGER NOT NULL
    );"];

/// An authorised OTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OtpData {
    pub(crate) symptoms_started_on: Date,
    pub(crate) id_test_verification: Option<String>,
}

/// The Immuni backend.
pub struct Immuni {
    pub(crate) ctx: Context,
    pub(crate) store: Store,
    pub(crate) his: SystemClient,
    pub(crate) pn_dgc: SystemClient,
    waits: Mutex<SeededRng>,
}

impl std::fmt::Debug for Immuni {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Immuni").field("store", &self.store).finish_non_exhaustive()
    }
}

/// Outcome of authorising an OTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authorised {
    /// Stored.
    New,
    /// A live authorisation already exists under that key.
    Collision,
}

impl Immuni {
    /// Opens Immuni's store.
    pub fn new(ctx: &Context) -> Result<Arc<Self>, StoreError> {
        let store = ctx.open_store(System::Immuni, MIGRATIONS)?;
        let waits = SeededRng::derive(ctx.config().seed, &format!("immuni/waits/{}", store.generation()));
        let http = ecosim_core::client::http_client();
        let his =
            SystemClient::new(http.clone(), &ctx.config().url_of(System::SistemaTs), ctx.accounts().get("immuni"));
        let pn_dgc = SystemClient::new(http, &ctx.config().url_of(System::PnDgc), ctx.accounts().get("immuni"));
        Ok(Arc::new(Self { ctx: ctx.clone(), store, his, pn_dgc, waits: Mutex::new(waits) }))
    }

    /// The anti-brute-force wait (normal, mean 150 ms, sigma 20 ms by default; none
    /// in fast mode), real time.
    pub(crate) async fn slow_down(&self) {
        let t = &self.ctx.config().timing;
        if t.fast {
            return;
        }
        let ms = {
            let mut rng = self.waits.lock().unwrap_or_else(|p| p.into_inner());
            rng.normal(t.immuni_wait_mean.0.as_millis() as f64, t.immuni_wait_sigma.0.as_millis() as f64)
        };
        tokio::time::sleep(Duration::from_micros((ms.max(0.0) * 1000.0) as u64)).await;
    }

    /// `true` with the dummy-traffic error chance (1%), seeded.
    pub(crate) fn dummy_fails(&self) -> bool {
        self.waits.lock().unwrap_or_else(|p| p.into_inner()).chance(0.01)
    }

    /// Stores an authorisation under `key` (the OTP's SHA-256), write-once while alive.
    pub(crate) fn authorise(&self, key: &str, data: &OtpData) -> Result<Authorised, StoreError> {
        let now = self.ctx.clock().now();
        let expires = now.checked_add(self.ctx.config().retention.otp_ttl.0).unwrap_or(now);
        self.store.transaction(|tx| {
            let alive: Option<i64> = tx
                .row("SELECT expires_ms FROM otps WHERE key = ?1 AND expires_ms > ?2", params![key, now.as_millisecond()], |r| r.get(0))
                .optional()?;
            if alive.is_some() {
                return Ok(Authorised::Collision);
            }
            tx.exec(
                "INSERT OR REPLACE INTO otps (key, symptoms_started_on, id_test_verification, expires_ms, authorised_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key, data.symptoms_started_on.to_string(), data.id_test_verification, expires.as_millisecond(), now.to_string()],
            )?;
            Ok(Authorised::New)
        })
    }

    /// The live authorisation under `key`; with `consume`, deleted in the same step.
    pub(crate) fn lookup(&self, key: &str, consume: bool) -> Result<Option<OtpData>, StoreError> {
        let now = self.ctx.clock().now().as_millisecond();
        self.store.transaction(|tx| {
            let found: Option<(String, Option<String>)> = tx
                .row(
                    "SELECT symptoms_started_on, id_test_verification FROM otps WHERE key = ?1 AND expires_ms > ?2",
                    params![key, now],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if consume {
                tx.exec("DELETE FROM otps WHERE key = ?1", [key])?;
            }
            Ok(found.and_then(|(d, id)| {
                d.parse().ok().map(|symptoms_started_on| OtpData { symptoms_started_on, id_test_verification: id })
            }))
        })
    }
}

impl ecosim_core::admin::SimulatorAdmin for Immuni {
    fn reset(&self) -> Result<(), Problem> {
        Ok(self.store.reset()?)
    }
    fn state(&self) -> Result<serde_json::Value, Problem> {
        Ok(serde_json::Value::Object(self.store.counts()?))
    }
}
