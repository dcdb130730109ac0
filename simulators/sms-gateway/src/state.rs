//! The gateway's state: messages and mails in its SQLite store.

use std::collections::HashSet;
use std::sync::Arc;

use ecosim_core::codes::Msisdn;
use ecosim_core::ids::IdGen;
use ecosim_core::store::{Store, StoreError};
use ecosim_core::{Context, System};

/// Schema migrations, in order; never edit a shipped one.
pub(crate) static MIGRATIONS: &[&str] = &[
    "CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        text TEXT NOT NULL,
        encoding TEXT NOT NULL,
        segments INTEGER NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        callback_url TEXT,
        accepted_at TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX messages_by_recipient ON messages (recipient, status);
    CREATE TABLE mails (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient TEXT NOT NULL,
        sender TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        message_id TEXT,
        received_at TEXT NOT NULL
    );
    CREATE INDEX mails_by_recipient ON mails (recipient);
    CREATE UNIQUE INDEX mails_once ON mails (recipient, message_id) WHERE message_id IS NOT NULL;",
    ecosim_core::idempotency::MIGRATION,
];

/// Shared by the HTTP routes and the SMTP listener.
pub struct Gateway {
    pub(crate) ctx: Context,
    pub(crate) store: Store,
    pub(crate) ids: IdGen,
    pub(crate) http: reqwest::Client,
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
        let store = ctx.open_store(System::SmsGateway, MIGRATIONS)?;
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
        let by_sender: Vec<(String, i64)> = self.store.with(|c| {
            let mut stmt = c.prepare_cached("SELECT sender, COUNT(*) FROM messages GROUP BY sender ORDER BY sender")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })?;
        counts.insert(
            "per_mittente".into(),
            serde_json::Value::Object(by_sender.into_iter().map(|(k, v)| (k, v.into())).collect()),
        );
        Ok(serde_json::Value::Object(counts))
    }
}
