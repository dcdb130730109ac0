//! `ecosim-sistema-ts`: the Sistema Tessera Sanitaria simulator (MEF / Sogei).
//!
//! The national registry (anagrafe) is the ecosystem's seeded population. This crate
//! holds the test-result part of Flow 1 (DOMAIN.md):
//!
//! | route | what | requirements |
//! |---|---|---|
//! | `POST /ts/v1/test-results` | a region's SAR (or a lab, ORD-5.2) sends a result; 201 with a new CUN | ORD-3.1a, 3.1b, ORD-4, ORD-5.2 |
//! | `GET /ts/v1/test-results/{cun}` | the region's record and its history, without identifiers | ORD-3.3b |
//! | `GET /ts/v1/test-results?dal=&al=` | the region's records by test date, without identifiers | ORD-3.3b |
//! | `PATCH /ts/v1/test-results/{cun}` | correct a record; earlier versions kept | ORD-3.3a |
//! | `POST /his/v1/cun/verify` | Immuni: a positive, live, unused CUN for a card ending with 8 digits | DM-A.1a |
//! | `POST /his/v1/cun/invalidate` | Immuni, after an upload: the CUN cannot be used again | DM-A.1b |
//! | `POST /ts/v1/sblocchi/call-center` | call-centre unlock under a supervisor: CUN + card digits, then Immuni's OTP | ORD-8.1, 8.3, 8.4, 8.6, ORD-2.6 |
//! | `POST /ts/v1/sblocchi/asl` | ASL unlock: OTP + symptom date + codice fiscale | ORD-7.2 |
//! | `GET /ts/v1/assistiti/{id}` | a person by codice fiscale (current or obsolete) or TS identifier | AVR-2.1, 2.2, 2.3 |
//! | `GET /ts/v1/assistiti/{id}/vaccinazioni` | their COVID doses in all regions (not those abroad, GIAVA 1.3) | AVR-1.3d |
//! | `POST /ts/v1/assistiti/stranieri` | an ASL registers a person outside the SSN: a `TS` identifier | AVR-2.3 |
//! | `POST /ts/v1/anagrafe/variazioni-cf` | the registry changes a person's codice fiscale (scenarios) | AVR-2.1 |
//! | `POST /ts/v1/avn/vaccinazioni` | AVN forwards a batch of COVID doses; each checked | AVR-1.3b, AVR-TS-CHECK |
//! | `POST /ts/v1/vaccinazioni-estero` | an ASL registers a dose given abroad | AVR-6d |
//! | `GET /ts/v1/anomalie` | the region's inconsistencies (`?aperte=true`: open ones) | AVR-TS-CHECK |
//! | `POST /ts/v1/guarigioni` | an ASL registers a recovery: a NUCG, then a recovery certificate | DGC-ISSUE |
//!
//! Every unlock is recorded on the CUN with its mode (`self`, `call_center`, `asl`;
//! ORD-7.3). Failed CUN + card checks are counted per CUN and per card digits (no
//! codice fiscale is logged), `brute_force.max_failures` within `brute_force.window`
//! (5 in an hour by default):
//! - **per CUN**, checks of an existing CUN with wrong digits (someone guessing the
//!   8 digits of a CUN they know): past the limit the CUN is locked, every check of
//!   it refused, the right digits too, until the window passes;
//! - **per card digits**, failed checks with those digits (someone trying CUNs for
//!   digits they know): past the limit further failing pairs are refused as locked,
//!   but the citizen's own CUN with their digits still passes, so strangers cannot
//!   lock a citizen out.
//!
//! A locked check is 429 with `Retry-After` at the operator unlocks and 401 at the
//! HIS (its known interface has no other refusal; Immuni turns it into 401/1101).
//!
//! Every field is validated (400 naming each bad field); a codice fiscale unknown
//! to the registry, a test date in the future or older than the retention window is
//! 422 with the requirement id. `Idempotency-Key` makes retries safe: same key and
//! body, same answer; same key, other body, 409. CUNs are unique nationwide among
//! live records (ORD-4). Records are purged when the shared clock passes their
//! retention (14 days by default, ORD-3.2), and with each everything kept about it:
//! earlier versions, the CUN's registry entry and history (issued, corrected,
//! notified, unlocked: no personal data, read with the record), its HIS
//! verifications and the `Idempotency-Key` that made it (a retry after the purge is
//! a new request, refused as too old: never a replay of a CUN that is gone); failed
//! checks past the brute-force window are swept at the same time. No table grows
//! with the results ever received. With `invio_cun_da_ts: true` Sistema TS
//! sends the CUN itself by SMS and e-mail from its durable outbox (ORD-6.2).
//!
//! Vaccinations (Flow 3): doses from AVN are kept and checked (person known to the
//! registry, dose number = doses held before it + 1, or 1 when more than 180 days
//! after a non-EMA cycle abroad); inconsistencies are kept as `anomala` and listed
//! for the region, and a corrected version closes them. Valid doses wait for PN-DGC
//! (`dgc = in_coda`) and go to PN-DGC from the outbox (`inviato`), as do negative
//! test results and recoveries (Flow 4). While test results arrive at a national
//! peak (5,000 a second or more, [`ecosim_core::outbox::Outbox::hold_at_peak`]) the
//! events for PN-DGC wait in the outbox and go once the rate falls: on the one machine
//! ecosim shares among all the systems they would take the cores the peak's CUNs
//! need. The CUN SMS and e-mail Sistema TS sends itself (ORD-6.2) end a journey under
//! way and go at once, peak or not.
//!
//! | module | what |
//! |---|---|
//! | `routes` | thin HTTP handlers, one file per resource |
//! | [`domain`] | the rules: test results, the dose-count check, the registry (population + codice fiscale variations + people outside the SSN) |
//! | `store` | the schema and every statement, rows typed, one file per area |
//! | `outbox` | the outbox's work, typed, its handler, and the deliveries: the CUN by SMS/e-mail (`notify`, ORD-6.2), events for PN-DGC (`dgc`) |
//! | `state` | the simulator: store, id and CUN streams, clients, CUN issuance, purge scheduling |

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

pub use state::SistemaTs;

/// Sistema TS's OpenAPI document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The HTTP app (routes, admin API, OpenAPI, boundary layer).
pub fn router(ts: Arc<SistemaTs>) -> Router {
    let routes = Router::new()
        .route("/ts/v1/test-results", post(routes::test_results::create).get(routes::test_results::list))
        .route("/ts/v1/test-results/{cun}", get(routes::test_results::get_one).patch(routes::test_results::correct))
        .route("/his/v1/cun/verify", post(routes::his::verify))
        .route("/his/v1/cun/invalidate", post(routes::his::invalidate))
        .route("/ts/v1/sblocchi/call-center", post(routes::unlock::call_center))
        .route("/ts/v1/sblocchi/asl", post(routes::unlock::asl))
        .route("/ts/v1/assistiti/stranieri", post(routes::assistiti::register_foreigner))
        .route("/ts/v1/assistiti/{id}", get(routes::assistiti::get_one))
        .route("/ts/v1/assistiti/{id}/vaccinazioni", get(routes::assistiti::doses))
        .route("/ts/v1/anagrafe/variazioni-cf", post(routes::assistiti::change_cf))
        .route("/ts/v1/avn/vaccinazioni", post(routes::vaccinazioni::from_avn))
        .route("/ts/v1/vaccinazioni-estero", post(routes::vaccinazioni::abroad))
        .route("/ts/v1/anomalie", get(routes::vaccinazioni::anomalies))
        .route("/ts/v1/guarigioni", post(routes::guarigioni::create))
        .with_state(ts.clone());
    let ctx = ts.ctx.clone();
    ecosim_core::app::app(&ctx, System::SistemaTs, routes, ts, OPENAPI)
}

/// Starts the background work (the ORD-6.2 outbox) until `stop` turns true.
pub fn spawn_workers(ts: &Arc<SistemaTs>, stop: watch::Receiver<bool>) {
    tokio::spawn(ts.outbox.clone().run(outbox::handler(ts.clone()), stop));
}

impl ecosim_core::simulator::Simulator for SistemaTs {
    const SYSTEM: System = System::SistemaTs;

    fn open(ctx: &ecosim_core::Context) -> Result<Arc<Self>, ecosim_core::simulator::OpenError> {
        Ok(SistemaTs::new(ctx)?)
    }

    fn router(self: Arc<Self>) -> Router {
        router(self)
    }

    fn spawn_workers(self: &Arc<Self>, stop: watch::Receiver<bool>) {
        spawn_workers(self, stop);
    }
}
