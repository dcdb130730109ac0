//! The one shape of every simulator: opened from the shared context, served by a
//! router, with background work (outboxes, scheduled jobs) beside it.
//!
//! The ecosystem starts every system with one loop over [`Simulator`]s, so adding a
//! system is adding a crate that implements it.

use std::sync::Arc;

use axum::Router;
use tokio::sync::watch;

use crate::context::Context;
use crate::systems::System;

/// Why a simulator could not be opened (its store, its keys...).
pub type OpenError = Box<dyn std::error::Error + Send + Sync>;

/// A simulated system.
pub trait Simulator: Send + Sync + Sized + 'static {
    /// Which system it is.
    const SYSTEM: System;

    /// Opens its state (store, clients) on the shared context.
    fn open(ctx: &Context) -> Result<Arc<Self>, OpenError>;

    /// Its HTTP app: routes, admin API, OpenAPI, boundary layer.
    fn router(self: Arc<Self>) -> Router;

    /// Starts its background work until `stop` turns true (none by default).
    fn spawn_workers(self: &Arc<Self>, stop: watch::Receiver<bool>) {
        let _ = stop;
    }
}

/// A running simulator of any kind, as the ecosystem holds it.
pub trait Running: Send + Sync {
    /// Which system.
    fn system(&self) -> System;
    /// Its HTTP app.
    fn router(&self) -> Router;
    /// Starts its background work.
    fn spawn_workers(&self, stop: watch::Receiver<bool>);
}

impl<S: Simulator> Running for Arc<S> {
    fn system(&self) -> System {
        S::SYSTEM
    }
    fn router(&self) -> Router {
        S::router(self.clone())
    }
    fn spawn_workers(&self, stop: watch::Receiver<bool>) {
        S::spawn_workers(self, stop);
    }
}

/// Opens `S` and erases its type.
pub fn open<S: Simulator>(ctx: &Context) -> Result<Arc<dyn Running>, OpenError> {
    Ok(Arc::new(S::open(ctx)?))
}
