//! The reference SAR's state: its store, ids, outbox and clients.

use std::sync::Arc;

use ecosim_core::client::SystemClient;
use ecosim_core::ids::IdGen;
use ecosim_core::outbox::Outbox;
use ecosim_core::store::{Store, StoreError};
use ecosim_core::{Context, Problem, System};

/// Schema migrations, in order; never edit a shipped one.
pub(crate) static MIGRATIONS: &[&str] = &[
    "CREATE TABLE esiti (
        id TEXT PRIMARY KEY,
        lab TEXT NOT NULL,
        region TEXT NOT NULL,
        payload TEXT NOT NULL,
        stato TEXT NOT NULL,
        cun TEXT,
        errore TEXT,
        sms_to TEXT,
        email_to TEXT,
        sms_stato TEXT NOT NULL,
        email_stato TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX esiti_by_region ON esiti (region);",
    ecosim_core::idempotency::MIGRATION,
    ecosim_core::outbox::MIGRATION,
    // The AVR (Flow 3).
    "CREATE TABLE vaccinazioni (
        id TEXT PRIMARY KEY,
        regione TEXT NOT NULL,
        vaccinatore TEXT NOT NULL,
        assistito TEXT NOT NULL,
        tipo_id TEXT NOT NULL,
        data TEXT NOT NULL,
        aic TEXT NOT NULL,
        dose INTEGER NOT NULL,
        tipo_dose TEXT NOT NULL,
        proposto INTEGER NOT NULL,
        forzature INTEGER NOT NULL DEFAULT 0,
        estero TEXT,
        record TEXT NOT NULL,
        versione INTEGER NOT NULL,
        avvisi TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX vaccinazioni_by_assistito ON vaccinazioni (regione, assistito, data);
    CREATE TABLE mobilita (
        id TEXT PRIMARY KEY,
        regione TEXT NOT NULL,
        assistito TEXT NOT NULL,
        data TEXT NOT NULL,
        aic TEXT NOT NULL,
        dose INTEGER NOT NULL,
        regione_somministrazione TEXT NOT NULL,
        versione INTEGER NOT NULL
    );
    CREATE INDEX mobilita_by_assistito ON mobilita (regione, assistito);
    CREATE TABLE mobilita_cursori (regione TEXT PRIMARY KEY, dal TEXT NOT NULL);
    CREATE TABLE infezioni (
        id TEXT PRIMARY KEY,
        regione TEXT NOT NULL,
        assistito TEXT NOT NULL,
        data_prelievo TEXT NOT NULL,
        data_esito TEXT NOT NULL,
        data_guarigione TEXT,
        luogo TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX infezioni_by_assistito ON infezioni (regione, assistito);
    CREATE TABLE assistiti_importati (
        regione TEXT NOT NULL,
        id TEXT NOT NULL,
        record TEXT NOT NULL,
        importato_il TEXT NOT NULL,
        PRIMARY KEY (regione, id)
    );",
    // Green-pass contacts, kept apart from any other contact (AVR-5c, GIAVA 5).
    "CREATE TABLE contatti_dgc (
        regione TEXT NOT NULL,
        assistito TEXT NOT NULL,
        cellulare TEXT,
        email TEXT,
        fonte TEXT NOT NULL,
        aggiornato_il TEXT NOT NULL,
        PRIMARY KEY (regione, assistito)
    );",
];

/// The reference SAR/AVR.
pub struct Sar {
    pub(crate) ctx: Context,
    pub(crate) store: Arc<Store>,
    pub(crate) ids: IdGen,
    pub(crate) outbox: Arc<Outbox<crate::work::Work>>,
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
        let store = Arc::new(ctx.open_store(System::Sar, MIGRATIONS)?);
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
