//! Immuni's state: authorised OTPs (keyed by their SHA-256, write-once, with a TTL on
//! the shared clock) and the uploads received.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ecosim_core::client::SystemClient;
use ecosim_core::store::{Store, StoreError};

use crate::store::{self, Authorised, OtpData};
use ecosim_core::{Context, Problem, System};
use ecosim_domain::rng::SeededRng;

/// The Immuni backend.
pub struct Immuni {
    pub(crate) ctx: Context,
    pub(crate) store: Store,
    pub(crate) his: SystemClient,
    pub(crate) pn_dgc: SystemClient,
    waits: Mutex<SeededRng>,
    pub(crate) throttle: crate::domain::throttle::Throttle,
}

impl std::fmt::Debug for Immuni {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Immuni").field("store", &self.store).finish_non_exhaustive()
    }
}

impl Immuni {
    /// Opens Immuni's store.
    pub fn new(ctx: &Context) -> Result<Arc<Self>, StoreError> {
        let store = ctx.open_store(System::Immuni, store::MIGRATIONS)?;
        let waits = SeededRng::derive(ctx.config().seed, &format!("immuni/waits/{}", store.generation()));
        let http = ecosim_core::client::http_client();
        let his =
            SystemClient::new(http.clone(), &ctx.config().url_of(System::SistemaTs), ctx.accounts().get("immuni"));
        let pn_dgc = SystemClient::new(http, &ctx.config().url_of(System::PnDgc), ctx.accounts().get("immuni"));
        Ok(Arc::new(Self {
            ctx: ctx.clone(),
            store,
            his,
            pn_dgc,
            waits: Mutex::new(waits),
            throttle: Default::default(),
        }))
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

    /// `true` with the dummy-traffic error chance (`immuni.dummy_error_percent`, 1% by
    /// default), seeded.
    pub(crate) fn dummy_fails(&self) -> bool {
        let percent = f64::from(self.ctx.config().immuni.dummy_error_percent.min(100));
        self.waits.lock().unwrap_or_else(|p| p.into_inner()).chance(percent / 100.0)
    }

    /// Stores an authorisation under `key` (the OTP's SHA-256), write-once while
    /// alive for the configured TTL on the shared clock.
    pub(crate) fn authorise(&self, key: &str, data: &OtpData) -> Result<Authorised, StoreError> {
        let now = self.ctx.clock().now();
        let expires = now.checked_add(self.ctx.config().retention.otp_ttl.0).unwrap_or(now);
        self.store.transaction(|tx| Ok(store::authorise(tx, key, data, now, expires)?))
    }

    /// The live authorisation under `key`; with `consume`, deleted in the same step.
    pub(crate) fn lookup(&self, key: &str, consume: bool) -> Result<Option<OtpData>, StoreError> {
        let now = self.ctx.clock().now().as_millisecond();
        self.store.transaction(|tx| Ok(store::lookup(tx, key, now, consume)?))
    }
}

impl ecosim_core::admin::SimulatorAdmin for Immuni {
    fn reset(&self) -> Result<(), Problem> {
        Ok(self.store.reset()?)
    }
    fn state(&self) -> Result<serde_json::Value, Problem> {
        Ok(serde_json::Value::Object(self.store.counts()?))
    }
    /// Faults and over-long bodies answer in Immuni's own format, as real apps parse it.
    fn native_error(&self, status: axum::http::StatusCode) -> Option<axum::response::Response> {
        Some(axum::response::IntoResponse::into_response(crate::error::ImmuniError::for_status(status)))
    }
}
