//! `/mail/v1`: the mailboxes the SMTP listener fills.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use ecosim_core::codes::Email;
use ecosim_core::problem::Problem;
use serde_json::{Value, json};

use crate::state::Gateway;

/// A received e-mail.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Mail {
    from: String,
    to: String,
    subject: String,
    body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
    received_at: String,
}

/// Every mail received for an address, oldest first. Open to every caller.
pub(crate) async fn inbox(State(gw): State<Arc<Gateway>>, Path(raw): Path<String>) -> Result<Json<Value>, Problem> {
    let address = Email::parse(&raw).map_err(|e| Problem::invalid_field("address", e.to_string()))?;
    let mails = gw.store.with(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT sender, recipient, subject, body, message_id, received_at FROM mails
             WHERE recipient = ?1 ORDER BY id",
        )?;
        stmt.query_map([address.as_str()], |r| {
            Ok(Mail {
                from: r.get(0)?,
                to: r.get(1)?,
                subject: r.get(2)?,
                body: r.get(3)?,
                message_id: r.get(4)?,
                received_at: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(Json(json!({"address": address.as_str(), "messages": mails})))
}
