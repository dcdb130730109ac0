//! `ecosim-sar`: the reference SAR (Sistema di Accoglienza Regionale) and AVR
//! (Anagrafe Vaccinale Regionale), the part a regional vendor replaces with their own.
//!
//! The vaccination part (Flow 3, the GIAVA rules) is documented in the `avr` module:
//! `POST /avr/v1/vaccinazioni` and friends; see the README's Flow 3 section.
//!
//! The test-result part of Flow 1 (DOMAIN.md):
//!
//! | route | what | requirements |
//! |---|---|---|
//! | `POST /sar/v1/esiti` | a lab of any region reports a result; 202 once it is stored | ORD-3.1a |
//! | `GET /sar/v1/esiti/{id}` | its state (`accettato`, `inviato`, `cun_ricevuto`, `notificato`, `errore`), CUN, attempts | ORD-3.1b |
//!
//! A result is validated (400 naming each field; a test date in the future is 422),
//! written to the SAR's database with an outbox item in one transaction, and
//! acknowledged. From the outbox it goes to Sistema TS as the lab's region's SAR
//! account (`lab-160` -> `sar-160`) with an `Idempotency-Key`, retried with
//! exponential backoff and seeded jitter (honouring `Retry-After`) until Sistema TS
//! answers; the CUN is stored (ORD-3.1b) and sent to the citizen whatever the result
//! (ORD-3.1c): by SMS from `sistema Ts` with the real wording, one GSM-7 segment, to
//! the citizen's mobile or, for a minor, the parent's (ORD-6.1a); and by e-mail
//! (ORD-6.1b). An outage of Sistema TS or of the gateway only delays delivery:
//! nothing acknowledged is lost, nothing is sent twice.
//!
//! Two wings with the same rooms, `esiti` (Flow 1) and `avr` (Flow 3), beside what
//! they share:
//!
//! | module | what |
//! |---|---|
//! | `esiti` | test results: `routes`, `delivery`, `store` |
//! | `avr` | the vaccination registry: `routes`, the GIAVA `rules`, what it `knowledge`s of a person, `delivery` to AVN, `store` |
//! | `outbox` | the outbox's work, typed (one variant per delivery), its handler and bookkeeping |
//! | `store` | the schema of both wings |
//! | `state` | the simulator: store, ids, outbox, clients |

mod avr;
mod esiti;
mod outbox;
mod state;
mod store;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};
use ecosim_core::System;
use tokio::sync::watch;

pub use state::Sar;

/// The SAR's OpenAPI document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The HTTP app (routes, admin API, OpenAPI, boundary layer).
pub fn router(sar: Arc<Sar>) -> Router {
    let routes = Router::new()
        .route("/sar/v1/esiti", post(esiti::routes::create))
        .route("/sar/v1/esiti/{id}", get(esiti::routes::get_one))
        .route("/avr/v1/vaccinazioni", post(avr::routes::vaccinazioni::create))
        .route("/avr/v1/vaccinazioni/{id}", get(avr::routes::vaccinazioni::get_one))
        .route("/avr/v1/vaccinazioni/{id}/numero-dose", put(avr::routes::vaccinazioni::force_number))
        .route("/avr/v1/assistiti/{cf}/vaccinazioni", get(avr::routes::assistiti::doses))
        .route("/avr/v1/assistiti/{cf}/verifica-nazionale", get(avr::routes::assistiti::national_check))
        .route(
            "/avr/v1/assistiti/{cf}/infezioni",
            post(avr::routes::assistiti::add_infection).get(avr::routes::assistiti::infections),
        )
        .route(
            "/avr/v1/assistiti/{cf}/contatti-dgc",
            get(avr::routes::assistiti::contacts)
                .put(avr::routes::assistiti::update_contacts)
                .delete(avr::routes::assistiti::delete_contacts),
        )
        .with_state(sar.clone());
    let ctx = sar.ctx.clone();
    ecosim_core::app::app(&ctx, System::Sar, routes, sar, OPENAPI)
}

/// Starts the outbox worker until `stop` turns true.
pub fn spawn_workers(sar: &Arc<Sar>, stop: watch::Receiver<bool>) {
    let hook: ecosim_core::outbox::FinishHook<outbox::Work> = std::sync::Arc::new(outbox::record);
    tokio::spawn(sar.outbox.clone().run_with(outbox::handler(sar.clone()), Some(hook), stop));
}

impl ecosim_core::simulator::Simulator for Sar {
    const SYSTEM: System = System::Sar;

    fn open(ctx: &ecosim_core::Context) -> Result<Arc<Self>, ecosim_core::simulator::OpenError> {
        Ok(Sar::new(ctx)?)
    }

    fn router(self: Arc<Self>) -> Router {
        router(self)
    }

    fn spawn_workers(self: &Arc<Self>, stop: watch::Receiver<bool>) {
        spawn_workers(self, stop);
    }
}
