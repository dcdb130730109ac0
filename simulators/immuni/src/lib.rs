//! `ecosim-immuni`: the Immuni backend, answering exactly as the real one did
//! (APIS.md; the open-source `immuni-backend-otp` and `-exposure-ingestion`).
//!
//! | route | caller | what | requirements |
//! |---|---|---|---|
//! | `POST /v1/otp` | Sistema TS (service account) | authorise an OTP; write-once, TTL 150 s on the shared clock | IMM-OTP, DM-2.2, DM-2.5 |
//! | `POST /v1/ingestion/check-otp` | the app | 204 if the bearer's OTP is authorised, else 401/1101 | IMM-OTP |
//! | `POST /v1/ingestion/upload` | the app | TEKs and summaries; consumes the OTP; invalidates the CUN it came from | IMM-UPLOAD, DM-A.1b |
//! | `POST /v1/ingestion/check-cun` | the app | CUN + last 8 card digits, verified at Sistema TS | DM-A.1a, DM-A.1c |
//! | `POST /v1/ingestion/get-dgc` | the app | a green certificate by code type, code hash, card digits and expiry, from PN-DGC | DGC-RETRIEVE |
//! | `GET /_admin/uploads` | tests | every upload received | |
//!
//! App requests are checked in the real order: content type and JSON schema, the
//! bearer (64 hex), then `Immuni-Dummy-Data` (0 or 1). check-otp and check-cun wait
//! about 150 ms first (normal, sigma 20 ms, seeded; none with `timing.fast`). A dummy
//! request is fully validated, waits like a real one, has no effect, and answers 204
//! (1% of dummy checks answer 401) (IMM-DUMMY). Errors are exactly
//! `{"error_code","message"}` (IMM-ERR); what the simulator knows beyond that is in
//! the `X-Ecosim-Detail` header. Every answer carries `Cache-Control: no-store`.
//!
//! Upload checks keys as the real backend (IMM-UPLOAD, [`domain::tek`]): the schema
//! (16-byte base64 keys, start numbers >= 0, periods 0-144) is 400/1001; a batch
//! that is not one device's (a period other than 144, more than
//! `immuni.max_keys_per_upload` = 30 keys, start numbers off one grid of days from
//! the earliest) is answered **204 and its keys dropped**, as the real backend did,
//! and the drop is visible: an `Ecosim-Warning` header, the journal entry's `note`,
//! `teks_dropped` in `GET /_admin/uploads`, and `expect.warning` in scenarios. With
//! `immuni.strict_teks = true` such a batch is refused 400/1001 instead.
//!
//! Where the public code and APIS.md differ, APIS.md is followed: a symptom date later
//! than the test date is replaced by the test date (the real check-cun refused it).
//! get-dgc forwards to PN-DGC's `GET /v1/dgc` (`authCodeSHA256` for an AUTHCODE,
//! `sourceDocumentIDSHA256` for CUN, NRFE, NUCG, CUEV): 200 `{"qrcode",
//! "fglTipoDgc"?}`, 404/1102 when PN-DGC has nothing, 500/1000 when it fails; a dummy
//! get-dgc answers 200 with an empty body (or, like every dummy check, 401 with
//! `immuni.dummy_error_percent`, 1% by default). Errors the boundary makes (an
//! injected fault's status, a body over the limit) are in Immuni's format too.
//!
//! **Parity with the real backend**: `tests/it/real_suites.rs` replays every case of
//! the real backend's own suites (`immuni-backend-exposure-ingestion`
//! `tests/test_upload.py`, `immuni-backend-otp` `tests/test_apis/test_otp.py`),
//! their requests and expected statuses and bodies, against the simulator.
//!
//! | module | what |
//! |---|---|
//! | `routes` | the endpoints, one file per service (`otp`, `ingestion`, `dgc`, `admin`) |
//! | [`domain`] | the request rules as the real backend checks them: schema, headers, TEKs |
//! | `store` | the schema and every statement, rows typed |
//! | `error` | Immuni's own error format, `{"error_code","message"}` |
//! | `state` | the backend: store, clients to the HIS and PN-DGC, the anti-brute-force wait |

pub mod domain;
mod error;
mod routes;
mod state;
mod store;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use ecosim_core::System;

pub use error::ImmuniError;
pub use state::Immuni;

/// Immuni's OpenAPI document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The HTTP app (routes, admin API, OpenAPI, boundary layer).
pub fn router(im: Arc<Immuni>) -> Router {
    // The app's calls, throttled per client on failed checks.
    let app_calls = Router::new()
        .route("/v1/ingestion/check-otp", post(routes::ingestion::check_otp))
        .route("/v1/ingestion/upload", post(routes::ingestion::upload))
        .route("/v1/ingestion/check-cun", post(routes::ingestion::check_cun))
        .route("/v1/ingestion/get-dgc", post(routes::dgc::get_dgc))
        .route_layer(axum::middleware::from_fn_with_state(im.clone(), routes::throttled));
    let routes = Router::new()
        .route("/v1/otp", post(routes::otp::authorise_otp))
        .merge(app_calls)
        .route("/_admin/uploads", get(routes::admin::uploads))
        .fallback(|| async { error::ImmuniError::framework(StatusCode::NOT_FOUND).with_detail("no such route") })
        .method_not_allowed_fallback(|| async {
            error::ImmuniError::framework(StatusCode::METHOD_NOT_ALLOWED)
                .with_detail("this route does not take that method")
        })
        .with_state(im.clone());
    let routes = if im.ctx.config().mutant("IMM-ERR") {
        routes.layer(axum::middleware::map_response(error::as_problem))
    } else {
        routes
    };
    let ctx = im.ctx.clone();
    ecosim_core::app::app(&ctx, System::Immuni, routes, im, OPENAPI)
}

impl ecosim_core::simulator::Simulator for Immuni {
    const SYSTEM: System = System::Immuni;

    fn open(ctx: &ecosim_core::Context) -> Result<Arc<Self>, ecosim_core::simulator::OpenError> {
        Ok(Immuni::new(ctx)?)
    }

    fn router(self: Arc<Self>) -> Router {
        router(self)
    }
}
