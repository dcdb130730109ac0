//! The layer every simulator mounts at its edge: identity, faults, journal.
//!
//! For each request it finds who is calling (the [`Identity`] handlers read through
//! [`Caller`](crate::accounts::Caller)), applies the first fault rule that fires, and
//! records the exchange in the journal with the virtual time, both bodies and the
//! real time taken. Admin and OpenAPI requests are neither faulted nor journaled, nor
//! are reads marked `Ecosim-Observer: 1` (the scenario runner polling an inbox: it
//! watches the ecosystem, it is not part of it).
//!
//! Every answer carries the virtual time in [`VIRTUAL_TIME_HEADER`], so a system under
//! test that wants to follow ecosim's clock can (the clock contract of
//! `docs/certification.md`).

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use crate::accounts::Identity;
use crate::admin::SimulatorAdmin;
use crate::context::Context;
use crate::faults::Fired;
use crate::journal::{NOTE_HEADER, NewExchange, Note};
use crate::problem::Problem;
use crate::systems::System;

/// Largest request body a simulator reads.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// The header every answer carries: the virtual time, RFC 3339.
pub const VIRTUAL_TIME_HEADER: &str = "ecosim-virtual-time";

/// The header that keeps a read out of the journal (see the module doc).
pub const OBSERVER_HEADER: &str = "ecosim-observer";

/// Marks a response whose connection must be closed without answering (a fault).
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

#[derive(Clone)]
struct Edge {
    ctx: Context,
    system: System,
    sim: Option<Arc<dyn SimulatorAdmin>>,
}

impl Edge {
    /// An error the boundary answers itself (an injected fault's status, a body over
    /// the limit), in the system's own error format when it has one
    /// ([`SimulatorAdmin::native_error`]), problem+json otherwise.
    fn error(&self, problem: Problem) -> Response {
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match self.sim.as_ref().and_then(|s| s.native_error(status)) {
            Some(mut native) => {
                if let Some(secs) = problem.retry_after
                    && let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string())
                {
                    native.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
                }
                native
            }
            None => problem.into_response(),
        }
    }
}

/// Mounts the boundary layer on `router` for `system` (errors it makes itself are
/// problem+json).
pub fn mount(router: Router, ctx: &Context, system: System) -> Router {
    router.layer(axum::middleware::from_fn_with_state(Edge { ctx: ctx.clone(), system, sim: None }, edge))
}

/// Mounts the boundary layer for the simulator `sim`, whose errors the boundary
/// answers in the simulator's own format (see [`SimulatorAdmin::native_error`]).
pub fn mount_for(router: Router, ctx: &Context, system: System, sim: Arc<dyn SimulatorAdmin>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(Edge { ctx: ctx.clone(), system, sim: Some(sim) }, edge))
}

fn is_control(path: &str) -> bool {
    path.starts_with("/_admin") || path == "/openapi.json"
}

async fn edge(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let clock = edge.ctx.clock().clone();
    let mut response = journalled(edge, req, next).await;
    if let Ok(v) = axum::http::HeaderValue::from_str(&clock.now().to_string()) {
        response.headers_mut().insert(VIRTUAL_TIME_HEADER, v);
    }
    response
}

async fn journalled(edge: Edge, mut req: Request, next: Next) -> Response {
    let identity = Identity::of(req.headers(), edge.ctx.accounts());
    let caller = identity.label().to_owned();
    req.extensions_mut().insert(identity);
    let path = req.uri().path().to_owned();
    let observer = req.method() == axum::http::Method::GET && req.headers().contains_key(OBSERVER_HEADER);
    if is_control(&path) || observer {
        return next.run(req).await;
    }
    let started = Instant::now();
    let wall_time = jiff::Timestamp::now();
    let time = edge.ctx.clock().now();
    let method = req.method().to_string();
    let path_and_query = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or(path.clone());

    let (parts, body) = req.into_parts();
    let idempotency_key = parts
        .headers
        .get(crate::idempotency::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|k| k.chars().take(200).collect::<String>());
    let request_body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return edge.error(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                "the request body is over 16 MiB",
            ));
        }
    };

    let fired = edge.ctx.faults().decide(edge.system.name(), &method, &path, &caller);
    let response = match &fired {
        Some(Fired { action, rule }) => {
            if let Some(d) = action.delay {
                tokio::time::sleep(d.to_std()).await;
            }
            if let Some(status) = action.status {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                let mut p = Problem::new(status, "injected-fault", format!("fault rule {rule} of {}", edge.system));
                p.retry_after = action.retry_after;
                Some(edge.error(p))
            } else if action.drop {
                Some(dropped())
            } else if let Some(t) = action.timeout {
                tokio::time::sleep(t.to_std()).await;
                Some(dropped())
            } else {
                None
            }
        }
        None => None,
    };
    let response = match response {
        Some(r) => r,
        None => {
            let mut served = next.run(Request::from_parts(parts, Body::from(request_body.clone()))).await;
            if fired.as_ref().is_some_and(|f| f.action.drop_reply) {
                served.extensions_mut().insert(DropConnection);
            }
            served
        }
    };

    let dropped_conn = response.extensions().get::<DropConnection>().is_some();
    let note = response.extensions().get::<Note>().map(|n| n.0.clone());
    let (mut parts, body) = response.into_parts();
    if let Some(n) = &note
        && let Ok(v) = axum::http::HeaderValue::from_str(&n.replace(['\r', '\n'], " "))
    {
        parts.headers.insert(NOTE_HEADER, v);
    }
    let response_body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    edge.ctx.journal().record(NewExchange {
        time: Some(time),
        wall_time: Some(wall_time),
        from: caller,
        to: edge.system.name().to_owned(),
        method,
        path: path_and_query,
        status: if dropped_conn { 0 } else { parts.status.as_u16() },
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        request_body: request_body.into(),
        response_body: response_body.clone().into(),
        fault: fired.map(|f| f.rule),
        idempotency_key,
        note,
    });
    Response::from_parts(parts, Body::from(response_body))
}

fn dropped() -> Response {
    let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    r.extensions_mut().insert(DropConnection);
    r
}
