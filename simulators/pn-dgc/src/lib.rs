//! `ecosim-pn-dgc`: the Piattaforma Nazionale DGC simulator (Ministry of Health,
//! run by Sogei): Flow 4 of DOMAIN.md, the green pass.
//!
//! | route | what | requirements |
//! |---|---|---|
//! | `POST /pn-dgc/v1/eventi` | Sistema TS sends a dose, a test or a recovery (service account) | DGC-ISSUE, DGC-TIMING |
//! | `GET /v1/dgc?...` | retrieval by AUTHCODE or source-document hash + card digits + card expiry | DGC-RETRIEVE |
//! | `POST /v1/certificate/citizen/io` | the IO app's retrieval: AUTHCODE hash + codice fiscale hash | DGC-RETRIEVE |
//! | `GET /v1/dgc/signer` | the signing certificate (PEM) and its `kid` | DGC-HC1 |
//!
//! Events wait for their time on the shared clock (DGC-TIMING): a first dose of a
//! two-dose cycle from day 12, a single Janssen dose from day 15, a completed cycle or
//! a booster the next day, a negative test at once, a recovery the next day; a
//! vaccine EMA did not authorise yields nothing (a booster will), nor does a positive
//! test. Then PN-DGC issues a **real EU DCC**: the JSON of the EU schema 1.3.0
//! ([`domain::dcc`]), CWT claims (`iss` IT, `iat`, `exp`, `hcert`), COSE_Sign1 with ES256 by a
//! P-256 key derived from the seed ([`domain::signer`]; `kid` = the first 8 bytes of the
//! SHA-256 of its self-signed certificate), zlib, Base45, `HC1:`, and a QR code PNG.
//! An AUTHCODE (12 characters, CODES.md) goes to the contacts registered with the
//! event: SMS from `Min Salute` with the real wording (name masked to initials) and
//! e-mail, from a durable outbox (DGC-AUTHCODE).
//!
//! Retrieval answers exactly as APIS.md: `{"data":{"qrcode","fglTipoDgc"?,"hc1"}}`
//! (`hc1` is ecosim's extension for tests); the newest certificate for the code wins;
//! `fglTipoDgc` is `cbis` for a recovery after vaccination.
//!
//! | module | what |
//! |---|---|
//! | `routes` | thin HTTP handlers: `eventi` (from Sistema TS), `dgc` (retrieval, signer) |
//! | [`domain`] | the rules: when an event yields a certificate, what it says, how it is signed |
//! | `store` | the schema and every statement, rows typed |
//! | `outbox` | the AUTHCODE by SMS and e-mail, typed, and its handler |
//! | `state` | the simulator: store, signer, outbox, issuing on the clock |

pub mod domain;
mod outbox;
mod routes;
mod state;
mod store;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use ecosim_core::System;
use tokio::sync::watch;

pub use state::{PnDgc, StartError};

/// PN-DGC's OpenAPI document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The HTTP app (routes, admin API, OpenAPI, boundary layer).
pub fn router(pn: Arc<PnDgc>) -> Router {
    let routes = Router::new()
        .route("/pn-dgc/v1/eventi", post(routes::eventi::create))
        .route("/v1/dgc", get(routes::dgc::retrieve))
        .route("/v1/certificate/citizen/io", post(routes::dgc::io))
        .route("/v1/dgc/signer", get(routes::dgc::signer))
        .with_state(pn.clone());
    let ctx = pn.ctx.clone();
    ecosim_core::app::app(&ctx, System::PnDgc, routes, pn, OPENAPI)
}

/// Starts the issuing on the clock and the AUTHCODE outbox until `stop` turns true.
pub fn spawn_workers(pn: &Arc<PnDgc>, stop: watch::Receiver<bool>) {
    tokio::spawn(pn.outbox.clone().run(outbox::handler(pn.clone()), stop.clone()));
    if let Err(e) = state::issue_on_clock(pn, stop) {
        tracing::error!(error = %e, "cannot plan the certificates waiting");
    }
}

impl ecosim_core::simulator::Simulator for PnDgc {
    const SYSTEM: System = System::PnDgc;

    fn open(ctx: &ecosim_core::Context) -> Result<Arc<Self>, ecosim_core::simulator::OpenError> {
        Ok(PnDgc::new(ctx)?)
    }

    fn router(self: Arc<Self>) -> Router {
        router(self)
    }

    fn spawn_workers(self: &Arc<Self>, stop: watch::Receiver<bool>) {
        spawn_workers(self, stop);
    }
}
