//! `ecosim-avn`: the Anagrafe Vaccinale Nazionale (Ministry of Health) simulator.
//!
//! Flow 3 of DOMAIN.md: every dose a regional registry (AVR) records comes here; AVN
//! sends the COVID doses to Sistema TS and gives each region the doses its residents
//! received elsewhere.
//!
//! | route | what | requirements |
//! |---|---|---|
//! | `POST /avn/v1/somministrazioni` | an AVR sends one dose (its region's `avr-R` account) | AVR-1.3a |
//! | `GET /avn/v1/somministrazioni/{regione}/{id_regionale}` | a dose as AVN holds it, with its forwarding state | AVR-1.3a |
//! | `GET /avn/v1/regioni/{codice}/mobilita?dal=YYYY-MM-DD` | doses given elsewhere to the region's residents | AVR-1.3c |
//!
//! A dose is validated field by field (400 naming each, the rules of
//! [`ecosim_domain::vaccination`]); a region sends only doses it gave (403 otherwise).
//! It is identified by (`regione_somministrazione`, `id_regionale`): the same dose
//! sent again is answered as the first time (200, nothing duplicated); a correction
//! carries a higher `versione` and replaces the held one (200, forwarded again); a
//! different dose under a used id and version is 409.
//!
//! Forwarding to Sistema TS (`POST /ts/v1/avn/vaccinazioni`, AVR-1.3b) follows
//! `timing.avn_forwarding`: `daily` (the default, DPCM 17-6-2021 art. 5) sends, when
//! the shared clock passes midnight, one batch with the doses received before it
//! (by date of administration, then id: the AVRs deliver concurrently, so arrival
//! order is not the same from one run to the next); `immediate` sends each dose at
//! once. Batches go from a durable outbox with retries, and Sistema TS is idempotent
//! on dose and version, so an outage delays doses but never loses or duplicates them.
//!
//! | module | what |
//! |---|---|
//! | `routes` | thin HTTP handlers, one file per resource |
//! | `domain` | the rules: which version wins, when a dose is due |
//! | `store` | the schema and every statement, rows typed |
//! | `outbox` | the outbox's work (batches for Sistema TS), typed, and its handler |
//! | `state` | the simulator: store, outbox, client, the midnight forwarding |

mod domain;
mod outbox;
mod routes;
mod state;
mod store;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use ecosim_core::System;
use tokio::sync::watch;

pub use state::Avn;

/// AVN's OpenAPI document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The HTTP app (routes, admin API, OpenAPI, boundary layer).
pub fn router(avn: Arc<Avn>) -> Router {
    let routes = Router::new()
        .route("/avn/v1/somministrazioni", post(routes::somministrazioni::create))
        .route("/avn/v1/somministrazioni/{regione}/{id_regionale}", get(routes::somministrazioni::get_one))
        .route("/avn/v1/regioni/{codice}/mobilita", get(routes::mobilita::feed))
        .with_state(avn.clone());
    let ctx = avn.ctx.clone();
    ecosim_core::app::app(&ctx, System::Avn, routes, avn, OPENAPI)
}

/// Starts the outbox worker and the midnight forwarding until `stop` turns true.
pub fn spawn_workers(avn: &Arc<Avn>, stop: watch::Receiver<bool>) {
    tokio::spawn(avn.outbox.clone().run(outbox::handler(avn.clone()), stop.clone()));
    state::forward_daily(avn, stop);
}

impl ecosim_core::simulator::Simulator for Avn {
    const SYSTEM: System = System::Avn;

    fn open(ctx: &ecosim_core::Context) -> Result<Arc<Self>, ecosim_core::simulator::OpenError> {
        Ok(Avn::new(ctx)?)
    }

    fn router(self: Arc<Self>) -> Router {
        router(self)
    }

    fn spawn_workers(self: &Arc<Self>, stop: watch::Receiver<bool>) {
        spawn_workers(self, stop);
    }
}
