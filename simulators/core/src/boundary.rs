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

/// Longest request target (path and query) a simulator reads: 414 beyond it.
pub const MAX_URI: usize = 8 * 1024;

/// Most bytes of request headers (names and values) a simulator reads: 431 beyond.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

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

/// A request the boundary refuses before anything else reads it: a target or
/// headers over the limits.
fn oversized(req: &Request) -> Option<Problem> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI {
        return Some(
            Problem::new(
                StatusCode::URI_TOO_LONG,
                "uri-too-long",
                format!("the request target is {target} bytes; at most {MAX_URI} are read"),
            )
            .with_field("path", format!("at most {MAX_URI} bytes with the query")),
        );
    }
    let headers: usize = req.headers().iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
    (headers > MAX_HEADER_BYTES).then(|| {
        Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            format!("the request headers are {headers} bytes; at most {MAX_HEADER_BYTES} are read"),
        )
        .with_field("headers", format!("at most {MAX_HEADER_BYTES} bytes"))
    })
}

/// Why an admin call is refused: the admin token is set and the call does not
/// carry it as `Authorization: Bearer <token>` (compared in constant time).
fn admin_refusal(token: Option<&str>, headers: &axum::http::HeaderMap) -> Option<Problem> {
    let token = token?;
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let same = given.len() == token.len() && given.bytes().zip(token.bytes()).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0;
    (!same).then(|| {
        Problem::unauthorized(
            "the admin API needs the admin token (printed by `ecosim up`, or [admin] token): \
             Authorization: Bearer <token>",
        )
        .with_field("Authorization", "Bearer <admin token>")
    })
}

/// Runs the system's router, then makes any error answer the framework wrote
/// itself (404 and 405 with no body, a `text/plain` query-string or path
/// rejection) a problem document in the system's format, like every other error.
async fn routed(edge: &Edge, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if !(status.is_client_error() || status.is_server_error())
        || is_json
        || response.extensions().get::<DropConnection>().is_some()
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let problem = match status {
        StatusCode::NOT_FOUND => Problem::not_found(format!("no such route: {method} {path}"))
            .with_field("path", "not a route of this system"),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts.headers.get(axum::http::header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("");
            Problem::new(status, "method-not-allowed", format!("{path} does not take {method}; it takes {allowed}"))
                .with_field("method", format!("one of {allowed}"))
        }
        _ => {
            let field = if text.contains("query string") {
                "query"
            } else if text.contains("path param") || text.contains("URL") {
                "path"
            } else {
                "body"
            };
            let detail = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text };
            let slug = status.canonical_reason().unwrap_or("error").to_ascii_lowercase().replace(' ', "-");
            Problem::new(status, &slug, detail.clone()).with_field(field, detail)
        }
    };
    let mut answer = edge.error(problem);
    for name in [axum::http::header::ALLOW, axum::http::header::WWW_AUTHENTICATE, axum::http::header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, v.clone());
        }
    }
    answer
}

async fn journalled(edge: Edge, mut req: Request, next: Next) -> Response {
    let identity = Identity::of(req.headers(), edge.ctx.accounts());
    let caller = identity.label().to_owned();
    req.extensions_mut().insert(identity);
    let path = req.uri().path().to_owned();
    let observer = req.method() == axum::http::Method::GET && req.headers().contains_key(OBSERVER_HEADER);
    if let Some(problem) = oversized(&req) {
        // Not journaled either: what was too large to read is not worth keeping.
        return edge.error(problem);
    }
    if path.starts_with("/_admin")
        && path != "/_admin/health"
        && let Some(refusal) = admin_refusal(edge.ctx.config().admin.token.as_deref(), req.headers())
    {
        let mut res = refusal.into_response();
        res.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"ecosim-admin\""),
        );
        return res;
    }
    // The control plane's own page (the dashboard) is not an exchange of the flow.
    if is_control(&path) || observer || edge.system == System::ControlPlane {
        return routed(&edge, req, next).await;
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
    let deadline = edge.ctx.config().connections.body_timeout;
    let request_body = match tokio::time::timeout(deadline.to_std(), axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return edge.error(
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", "the request body is over 16 MiB")
                    .with_field("body", "at most 16 MiB"),
            );
        }
        Err(_) => {
            let mut late = edge.error(
                Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request-timeout",
                    format!(
                        "the request body did not arrive within {} ([connections] body_timeout)",
                        crate::duration::format_duration(deadline.0)
                    ),
                )
                .with_field("body", "sent too slowly"),
            );
            // The rest of the body may still be on its way: do not read it as a request.
            late.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            return late;
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
            let mut served = routed(&edge, Request::from_parts(parts, Body::from(request_body.clone())), next).await;
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
