//! Booting an ecosystem: every system on its listener, all sharing one context.
//!
//! Listeners are bound first (on the configured ports, or port 0 for tests), then
//! each system's base URL is written into the configuration, then the shared
//! [`Context`] is made: so every simulator knows where the others really are. Every
//! simulator is then opened, served and given its background work alike, through
//! [`ecosim_core::simulator::Simulator`].
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use ecosim_core::System;
//! let eco = ecosim_harness::ecosystem::Ecosystem::builder().seed(42).start().await?;
//! println!("control plane at {}", eco.url(System::ControlPlane));
//! // A lab of Puglia reporting to the SAR; the citizen's Immuni app.
//! let lab = eco.client(System::Sar, "lab-160");
//! let res = lab.request(ecosim_core::client::Method::GET, "/_admin/health").send().await?;
//! let mut app = eco.app(7);
//! let otp = app.new_otp();
//! assert_eq!(app.check_otp(&otp, false).await.status, 401);
//! eco.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use axum::routing::get;
use ecosim_core::admin::{self, Stateless};
use ecosim_core::config::Config;
use ecosim_core::simulator::{self, Running, Simulator as _};
use ecosim_core::{Context, System, boundary};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The systems this build of ecosim runs: all of them.
pub const SYSTEMS: &[System] = &System::ALL;

/// Builds an [`Ecosystem`].
#[derive(Debug, Clone)]
pub struct EcosystemBuilder {
    config: Config,
}

impl EcosystemBuilder {
    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }
    /// Sets the population size.
    pub fn population(mut self, size: usize) -> Self {
        self.config.population = size;
        self
    }
    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }
    /// Binds the listeners and starts every system.
    pub async fn start(self) -> anyhow::Result<Ecosystem> {
        Ecosystem::start(self.config).await
    }
}

/// What a scenario needs of a running ecosystem: its context (clock, journal,
/// registry, accounts) and where each system listens. Cheap to clone; the dashboard
/// plays scenarios through one.
#[derive(Debug, Clone)]
pub struct EcoHandle {
    ctx: Context,
}

impl EcoHandle {
    /// The handle of the ecosystem `ctx` belongs to.
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// The shared context.
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// The base URL of `system`.
    pub fn url(&self, system: System) -> String {
        self.ctx.config().url_of(system)
    }
}

/// A running ecosystem.
pub struct Ecosystem {
    ctx: Context,
    addrs: Vec<(System, SocketAddr)>,
    smtp: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: JoinSet<std::io::Result<()>>,
}

impl std::fmt::Debug for Ecosystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ecosystem").field("addrs", &self.addrs).finish_non_exhaustive()
    }
}

impl Ecosystem {
    /// A builder with the configuration for tests: port 0, small population, no waits.
    pub fn builder() -> EcosystemBuilder {
        EcosystemBuilder { config: Config::for_tests(42) }
    }

    /// Starts every system of this build with `config`.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        Self::start_without(config, &[]).await
    }

    /// Starts every system but those in `external`, which are reached at the URLs the
    /// configuration gives (a vendor's SAR in place of the reference one).
    pub async fn start_without(mut config: Config, external: &[System]) -> anyhow::Result<Self> {
        let mut listeners = Vec::new();
        for &system in SYSTEMS.iter().filter(|s| !external.contains(s)) {
            let addr = SocketAddr::new(config.bind, config.port_of(system));
            let listener =
                TcpListener::bind(addr).await.with_context(|| format!("cannot listen for {system} on {addr}"))?;
            let local = listener.local_addr()?;
            config.set_url(system, format!("http://{local}"));
            listeners.push((system, listener, local));
        }
        // The SMTP listener belongs to the gateway: an ecosystem that reaches an
        // external gateway sends its e-mail there.
        let smtp = if external.contains(&System::SmsGateway) {
            None
        } else {
            let smtp_addr = SocketAddr::new(config.bind, config.smtp_port());
            let smtp =
                TcpListener::bind(smtp_addr).await.with_context(|| format!("cannot listen for SMTP on {smtp_addr}"))?;
            config.urls.smtp = Some(smtp.local_addr()?.to_string());
            Some(smtp)
        };
        let smtp_local: SocketAddr =
            config.smtp_addr().parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));

        let ctx = Context::new(config);
        let (stop, stopped) = watch::channel(false);
        let here = |s: System| !external.contains(&s);
        // Every simulated system this ecosystem runs, opened alike; the gateway is
        // also kept typed for its SMTP listener.
        let gateway = if here(System::SmsGateway) {
            Some(
                ecosim_sms_gateway::Gateway::open(&ctx)
                    .map_err(|e| anyhow::anyhow!("cannot open the SMS gateway: {e}"))?,
            )
        } else {
            None
        };
        let mut running: Vec<Arc<dyn Running>> = Vec::new();
        for &system in SYSTEMS.iter().filter(|s| here(**s)) {
            let opened = match system {
                System::ControlPlane => continue,
                System::SmsGateway => match &gateway {
                    Some(g) => Ok(Arc::new(g.clone()) as Arc<dyn Running>),
                    None => continue,
                },
                System::SistemaTs => simulator::open::<ecosim_sistema_ts::SistemaTs>(&ctx),
                System::Immuni => simulator::open::<ecosim_immuni::Immuni>(&ctx),
                System::Avn => simulator::open::<ecosim_avn::Avn>(&ctx),
                System::PnDgc => simulator::open::<ecosim_pn_dgc::PnDgc>(&ctx),
                System::Sar => simulator::open::<ecosim_sar::Sar>(&ctx),
            };
            running.push(opened.map_err(|e| anyhow::anyhow!("cannot start {system}: {e}"))?);
        }
        let own_threads = ctx.config().thread_per_system;
        if !own_threads {
            for sim in &running {
                sim.spawn_workers(stopped.clone());
            }
        }

        let mut tasks = JoinSet::new();
        let mut addrs = Vec::new();
        let urls = urls_of(&ctx);
        for (system, listener, local) in listeners {
            let sim = running.iter().find(|r| r.system() == system).cloned();
            let app = match (&sim, system) {
                (_, System::ControlPlane) => control_plane(&ctx, &urls),
                (Some(sim), _) => sim.router(),
                (None, _) => anyhow::bail!("{system} has a listener but was not started"),
            };
            let stop = stopped.clone();
            let limits = ctx.config().connections.limits();
            if own_threads {
                let listener = listener.into_std()?;
                tasks.spawn(on_own_thread(system.name(), move || async move {
                    // Each system's background work runs beside its server, on its thread.
                    if let Some(sim) = &sim {
                        sim.spawn_workers(stop.clone());
                    }
                    let listener = TcpListener::from_std(listener)?;
                    let mut stop = stop;
                    ecosim_core::server::serve_within(listener, app, limits, async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await
                }));
            } else {
                tasks.spawn(ecosim_core::server::serve_within(listener, app, limits, async move {
                    let mut stop = stop;
                    let _ = stop.wait_for(|s| *s).await;
                }));
            }
            addrs.push((system, local));
        }
        match (smtp, gateway) {
            (Some(smtp), Some(gateway)) if own_threads => {
                let smtp = smtp.into_std()?;
                let stop = stopped.clone();
                tasks.spawn(on_own_thread("smtp", move || async move {
                    let mut stop = stop;
                    ecosim_sms_gateway::smtp::serve(TcpListener::from_std(smtp)?, gateway, async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await
                }));
            }
            (Some(smtp), Some(gateway)) => {
                let mut stop = stopped.clone();
                tasks.spawn(ecosim_sms_gateway::smtp::serve(smtp, gateway, async move {
                    let _ = stop.wait_for(|s| *s).await;
                }));
            }
            _ => {}
        }
        Ok(Self { ctx, addrs, smtp: smtp_local, stop, tasks })
    }

    /// Starts only the reference SAR/AVR, reaching the national systems at the URLs
    /// `config` gives (those of another ecosystem, say): a stand-in for a vendor's
    /// system, with its own journal and clock, as `ecosim certify` sees one.
    pub async fn start_sar_only(config: Config) -> anyhow::Result<Self> {
        let external: Vec<System> = SYSTEMS.iter().copied().filter(|s| *s != System::Sar).collect();
        Self::start_without(config, &external).await
    }

    /// The configuration another system needs to reach this ecosystem's systems
    /// (every URL filled in, the SMTP address included), on port 0 of its own.
    pub fn config_for_neighbours(&self) -> Config {
        let mut config = self.ctx.config().clone();
        for &system in SYSTEMS {
            config.set_url(system, config.url_of(system));
        }
        config.urls.smtp = Some(self.smtp.to_string());
        config.base_port = 0;
        config
    }

    /// The shared context (clock, journal, faults, population...).
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// A handle for scenario runs.
    pub fn handle(&self) -> EcoHandle {
        EcoHandle::new(self.ctx.clone())
    }

    /// Where `system` listens.
    pub fn addr(&self, system: System) -> Option<SocketAddr> {
        self.addrs.iter().find(|(s, _)| *s == system).map(|(_, a)| *a)
    }

    /// The base URL of `system`.
    pub fn url(&self, system: System) -> String {
        self.ctx.config().url_of(system)
    }

    /// Where the SMTP listener is.
    pub fn smtp_addr(&self) -> SocketAddr {
        self.smtp
    }

    /// A client of `system` authenticated as `account` (password from the accounts),
    /// for tests that play a lab, a region or an operator.
    pub fn client(&self, system: System, account: &str) -> ecosim_core::client::SystemClient {
        ecosim_core::client::SystemClient::new(
            ecosim_core::client::http_client(),
            &self.url(system),
            self.ctx.accounts().get(account),
        )
    }

    /// A virtual Immuni app talking to this ecosystem's Immuni, its randomness from `seed`.
    pub fn app(&self, seed: u64) -> crate::app::VirtualApp {
        crate::app::VirtualApp::new(&self.url(System::Immuni), seed)
    }

    /// Every system with its address.
    pub fn endpoints(&self) -> &[(System, SocketAddr)] {
        &self.addrs
    }

    /// Stops every system and waits for open requests to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Runs the future `make` builds on a thread of its own with a single-threaded
/// runtime; the returned future ends when it does.
async fn on_own_thread<F, Fut>(name: &str, make: F) -> std::io::Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::io::Result<()>>,
{
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name(format!("ecosim-{name}")).spawn(move || {
        let result =
            tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|rt| rt.block_on(make()));
        let _ = done_tx.send(result);
    })?;
    done_rx.await.unwrap_or_else(|_| Err(std::io::Error::other("a system's thread ended abruptly")))
}

fn urls_of(ctx: &Context) -> Vec<(System, String)> {
    SYSTEMS.iter().map(|&s| (s, ctx.config().url_of(s))).collect()
}

/// The control plane: the shared admin API and a summary of the ecosystem.
fn control_plane(ctx: &Context, endpoints: &[(System, String)]) -> Router {
    let summary = json!({
        "ecosim": env!("CARGO_PKG_VERSION"),
        "seed": ctx.config().seed,
        "population": ctx.population().len(),
        "systems": endpoints.iter().map(|(s, url)| json!({"system": s.name(), "url": url})).collect::<Vec<_>>(),
    });
    // A browser gets the workshop dashboard; any other client the JSON summary.
    let routes = Router::new().route(
        "/",
        get(move |headers: axum::http::HeaderMap| async move {
            if crate::dashboard::wants_page(&headers) {
                crate::dashboard::page()
            } else {
                axum::response::IntoResponse::into_response(axum::Json(summary))
            }
        }),
    );
    boundary::mount(
        routes.merge(crate::dashboard::router(ctx, endpoints)).merge(admin::router(
            ctx.clone(),
            System::ControlPlane,
            Arc::new(Stateless),
        )),
        ctx,
        System::ControlPlane,
    )
}
