//! The reference SAR's state: its store, ids, outbox and clients.

use std::sync::Arc;

use ecosim_core::client::SystemClient;
use ecosim_core::ids::IdGen;
use ecosim_core::outbox::Outbox;
use ecosim_core::store::{Store, StoreError};
use ecosim_core::{Context, Problem, System};

/// The reference SAR/AVR.
pub struct Sar {
    pub(crate) ctx: Context,
    pub(crate) store: Arc<Store>,
    pub(crate) ids: IdGen,
    pub(crate) outbox: Arc<Outbox<crate::outbox::Work>>,
    pub(crate) ts: SystemClient,
    pub(crate) sms: SystemClient,
    pub(crate) avn: SystemClient,
    pub(crate) dose_ids: IdGen,
}

impl std::fmt::Debug for Sar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sar").field("store", &self.store).finish_non_exhaustive()
    }
}

impl Sar {
    /// Opens the store and makes the clients to Sistema TS and the SMS gateway.
    pub fn new(ctx: &Context) -> Result<Arc<Self>, StoreError> {
        let store = Arc::new(ctx.open_store(System::Sar, crate::store::MIGRATIONS)?);
        let generation = store.generation();
        let seed = ctx.config().seed;
        let http = ecosim_core::client::http_client();
        Ok(Arc::new(Self {
            ctx: ctx.clone(),
            outbox: Outbox::for_system(ctx, System::Sar, store.clone()),
            ids: IdGen::new(seed, "sar/esiti", generation),
            ts: SystemClient::new(http.clone(), &ctx.config().url_of(System::SistemaTs), None),
            sms: SystemClient::new(http.clone(), &ctx.config().url_of(System::SmsGateway), ctx.accounts().get("sar")),
            avn: SystemClient::new(http, &ctx.config().url_of(System::Avn), None),
            dose_ids: IdGen::new(seed, "sar/vaccinazioni", generation),
            store,
        }))
    }
}

impl ecosim_core::admin::SimulatorAdmin for Sar {
    fn reset(&self) -> Result<(), Problem> {
        Ok(self.store.reset()?)
    }
    fn state(&self) -> Result<serde_json::Value, Problem> {
        Ok(serde_json::Value::Object(self.store.counts()?))
    }
}
