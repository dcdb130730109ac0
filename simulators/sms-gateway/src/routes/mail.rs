//! `/mail/v1`: the mailboxes the SMTP listener fills.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use ecosim_core::problem::Problem;
use ecosim_domain::codes::Email;
use serde::Serialize;

use crate::state::Gateway;
use crate::store::{self, Mail};

/// A mailbox.
#[derive(Debug, Serialize)]
pub(crate) struct Mailbox {
    address: String,
    messages: Vec<Mail>,
}

/// Every mail received for an address, oldest first. Open to every caller.
pub(crate) async fn inbox(State(gw): State<Arc<Gateway>>, Path(raw): Path<String>) -> Result<Json<Mailbox>, Problem> {
    let address = Email::parse(&raw).map_err(|e| Problem::invalid_field("address", e.to_string()))?;
    let messages = gw.store.with(|c| store::mails_to(c, address.as_str()))?;
    Ok(Json(Mailbox { address: address.as_str().to_owned(), messages }))
}
