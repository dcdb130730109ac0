//! `ecosim-sms-gateway`: the SMS gateway and e-mail catcher citizens' messages go through.
//!
//! Designed like a commercial SMS API (APIS.md):
//!
//! | route | what |
//! |---|---|
//! | `POST /sms/v1/messages` | send (Bearer or Basic, roles `sms_client` and `service`); `Idempotency-Key` honoured |
//! | `GET /sms/v1/messages/{id}` | a message the caller sent, with its status |
//! | `GET /sms/v1/inbox/{msisdn}` | every message delivered to a number, oldest first |
//! | `GET /mail/v1/inbox/{address}` | every e-mail received for an address, oldest first |
//!
//! A message is validated (E.164 number; alias up to 11 characters; at most 10
//! segments), counted in segments as GSM-7 or UCS-2 exactly ([`domain::encoding`]), then
//! delivered to the number's inbox, or marked `failed` for numbers the configuration
//! lists as unreachable. A delivery report is POSTed to `callback_url` if given (plain
//! `http://`, up to five attempts; a redirect is not followed, it counts as a refusal).
//! E-mail arrives over SMTP ([`smtp`]) on base port + 25.
//!
//! | module | what |
//! |---|---|
//! | `routes` | thin HTTP handlers, one file per resource (`sms`, `mail`) |
//! | [`smtp`] | the SMTP listener: the mail front door, beside `routes` |
//! | [`domain`] | the rules: GSM 03.38 / UCS-2 segments, senders, callbacks |
//! | `store` | the schema and every statement, rows typed |
//! | `state` | the gateway: store, ids, unreachable numbers |

pub mod domain;
mod routes;
pub mod smtp;
mod state;
mod store;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use ecosim_core::{Context, System};

pub use state::Gateway;

/// The gateway's OpenAPI document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The gateway's HTTP app (routes, admin API, OpenAPI, boundary layer).
pub fn router(gw: Arc<Gateway>) -> Router {
    let routes = Router::new()
        .route("/sms/v1/messages", post(routes::sms::send))
        .route("/sms/v1/messages/{id}", get(routes::sms::get_message))
        .route("/sms/v1/inbox/{msisdn}", get(routes::sms::inbox))
        .route("/mail/v1/inbox/{address}", get(routes::mail::inbox))
        .with_state(gw.clone());
    let ctx: Context = gw.ctx.clone();
    ecosim_core::app::app(&ctx, System::SmsGateway, routes, gw, OPENAPI)
}

impl ecosim_core::simulator::Simulator for Gateway {
    const SYSTEM: System = System::SmsGateway;

    fn open(ctx: &ecosim_core::Context) -> Result<Arc<Self>, ecosim_core::simulator::OpenError> {
        Ok(Gateway::new(ctx)?)
    }

    fn router(self: Arc<Self>) -> Router {
        router(self)
    }
}
