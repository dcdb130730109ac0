//! The gateway's state: messages and mails in its SQLite store.

use std::collections::HashSet;
use std::sync::Arc;

use ecosim_core::ids::IdGen;
use ecosim_core::store::{Store, StoreError};
use ecosim_core::{Context, System};
use ecosim_domain::codes::Msisdn;

/// Shared by the HTTP routes and the SMTP listener.
pub struct Gateway {
    pub(crate) ctx: Context,
    pub(crate) store: Store,
    pub(crate) ids: IdGen,
    pub(crate) http: ecosim_core::client::Http,
    pub(crate) unreachable: HashSet<String>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("store", &self.store).finish_non_exhaustive()
    }
}

impl Gateway {
    /// Opens the gateway's store.
    pub fn new(ctx: &Context) -> Result<Arc<Self>, StoreError> {
        let store = ctx.open_store(System::SmsGateway, crate::store::MIGRATIONS)?;
        let ids = IdGen::new(ctx.config().seed, "sms-gateway/messages", store.generation());
        let unreachable =
            ctx.config().sms.unreachable.iter().filter_map(|n| Msisdn::parse(n).ok()).map(|m| m.to_string()).collect();
        Ok(Arc::new(Self { ctx: ctx.clone(), store, ids, http: ecosim_core::client::http_client(), unreachable }))
    }
}

impl ecosim_core::admin::SimulatorAdmin for Gateway {
    fn reset(&self) -> Result<(), ecosim_core::Problem> {
        Ok(self.store.reset()?)
    }
    fn state(&self) -> Result<serde_json::Value, ecosim_core::Problem> {
        let mut counts = self.store.counts()?;
        // SMS by sender alias (`sistema Ts` for CUNs, `Min Salute` for AUTHCODEs).
        let by_sender = self.store.with(crate::store::counts_by_sender)?;
        counts.insert(
            "per_mittente".into(),
            serde_json::Value::Object(by_sender.into_iter().map(|(k, v)| (k, v.into())).collect()),
        );
        Ok(serde_json::Value::Object(counts))
    }
}
