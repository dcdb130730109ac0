//! `GET /_admin/uploads`: what the app uploaded, for assertions.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::error::ImmuniError;
use crate::state::Immuni;
use crate::store::{self};

/// What was uploaded.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Uploads {
    uploads: Vec<store::Upload>,
}

/// `GET /_admin/uploads`: what was uploaded, for assertions.
pub(crate) async fn uploads(State(im): State<Arc<Immuni>>) -> Result<Json<Uploads>, ImmuniError> {
    Ok(Json(Uploads { uploads: im.store.with(store::uploads)? }))
}
