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

/// One simulator served alone on port 0: for a crate's own HTTP tests, with its
/// neighbours stood in for by mock servers (point the configuration's URLs at them).
/// Stops when dropped.
pub struct Spawned<S> {
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The context it shares (clock, journal, accounts...).
    pub ctx: Context,
    /// The simulator itself.
    pub sim: Arc<S>,
    stop: watch::Sender<bool>,
}

impl<S> std::fmt::Debug for Spawned<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawned").field("url", &self.url).finish_non_exhaustive()
    }
}

impl<S> Spawned<S> {
    /// A client that calls it with `account`'s credentials from the configuration
    /// (anonymous when the account is unknown).
    pub fn client(&self, account: &str) -> crate::client::SystemClient {
        crate::client::SystemClient::new(crate::client::http_client(), &self.url, self.ctx.accounts().get(account))
    }
}

impl<S> Drop for Spawned<S> {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Opens `S` on `config` (whose `bind` address it listens on, port 0), serves it and
/// starts its background work.
pub async fn spawn<S: Simulator>(mut config: crate::config::Config) -> Result<Spawned<S>, OpenError> {
    let listener = tokio::net::TcpListener::bind((config.bind, 0)).await?;
    let url = format!("http://{}", listener.local_addr()?);
    config.set_url(S::SYSTEM, url.clone());
    let ctx = Context::new(config);
    let sim = S::open(&ctx)?;
    let (stop, stopped) = watch::channel(false);
    sim.spawn_workers(stopped.clone());
    let app = S::router(sim.clone());
    let mut shutdown = stopped;
    let limits = ctx.config().connections.limits();
    tokio::spawn(crate::server::serve_within(listener, app, limits, async move {
        let _ = shutdown.wait_for(|s| *s).await;
    }));
    Ok(Spawned { url, ctx, sim, stop })
}
