//! The admin API every simulator mounts under `/_admin` (APIS.md).
//!
//! | route | what |
//! |---|---|
//! | `GET /_admin/health` | `{"status":"ok","system","version"}` |
//! | `GET /_admin/clock`, `POST /_admin/clock` | read, `{"advance":"15d"}` or `{"set":"<RFC 3339>"}` |
//! | `POST /_admin/reset` | empty the simulator's state (same population) |
//! | `GET /_admin/journal?since=N` | exchanges after sequence N |
//! | `GET/POST/DELETE /_admin/faults`, `DELETE /_admin/faults/{id}` | fault rules |
//! | `GET /_admin/state` | counts of what the simulator holds |
//!
//! With `[admin] token` set (as `ecosim up` does when it listens beyond loopback),
//! every route but health needs `Authorization: Bearer <token>` (401 otherwise),
//! checked at the boundary; the journal is then masked ([`crate::mask`]) unless
//! `[admin] mask_journal = false`.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use crate::clock::ClockError;
use crate::context::Context;
use crate::duration::{HumanDuration, format_duration};
use crate::faults::FaultRule;
use crate::problem::{ApiJson, Problem};
use crate::systems::System;

/// What a simulator contributes to its admin API.
pub trait SimulatorAdmin: Send + Sync + 'static {
    /// Empties the simulator's own state.
    fn reset(&self) -> Result<(), Problem>;
    /// Counts of what it holds (merged into `GET /_admin/state`).
    fn state(&self) -> Result<Value, Problem>;
    /// The answer to an error the boundary makes for this system (an injected
    /// fault's status, a body over the limit) when the system has an error format
    /// of its own that real clients parse (Immuni's `{"error_code","message"}`);
    /// `None` (the default): problem+json.
    fn native_error(&self, status: axum::http::StatusCode) -> Option<axum::response::Response> {
        let _ = status;
        None
    }
}

/// A simulator with no state of its own (the control plane).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stateless;

impl SimulatorAdmin for Stateless {
    fn reset(&self) -> Result<(), Problem> {
        Ok(())
    }
    fn state(&self) -> Result<Value, Problem> {
        Ok(Value::Object(serde_json::Map::new()))
    }
}

#[derive(Clone)]
struct Admin {
    ctx: Context,
    system: System,
    sim: Arc<dyn SimulatorAdmin>,
}

/// The `/_admin` routes of `system`.
pub fn router(ctx: Context, system: System, sim: Arc<dyn SimulatorAdmin>) -> Router {
    Router::new()
        .route("/_admin/health", get(health))
        .route("/_admin/clock", get(clock).post(move_clock))
        .route("/_admin/reset", post(reset))
        .route("/_admin/journal", get(journal))
        .route("/_admin/faults", get(list_faults).post(add_fault).delete(clear_faults))
        .route("/_admin/faults/{id}", delete(remove_fault))
        .route("/_admin/state", get(state))
        .with_state(Admin { ctx, system, sim })
}

/// `GET /_admin/health`.
#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    system: &'static str,
    version: &'static str,
}

async fn health(State(a): State<Admin>) -> Json<Health> {
    Json(Health { status: "ok", system: a.system.name(), version: env!("CARGO_PKG_VERSION") })
}

/// The shared clock, as the admin API shows it.
#[derive(Debug, Serialize)]
struct ClockView {
    now: String,
    today: String,
    pending_jobs: usize,
}

fn clock_view(ctx: &Context) -> ClockView {
    let c = ctx.clock();
    ClockView { now: c.now().to_string(), today: c.today().to_string(), pending_jobs: c.pending_jobs() }
}

async fn clock(State(a): State<Admin>) -> Json<ClockView> {
    Json(clock_view(&a.ctx))
}

/// `POST /_admin/clock` body.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockMove {
    advance: Option<HumanDuration>,
    set: Option<Timestamp>,
}

async fn move_clock(State(a): State<Admin>, ApiJson(m): ApiJson<ClockMove>) -> Result<Json<ClockView>, Problem> {
    let now = a.ctx.clock().now();
    let (field, target) = match (m.advance, m.set) {
        (Some(d), None) if d.0.is_negative() => {
            return Err(Problem::invalid_field("advance", "the clock only moves forward"));
        }
        (Some(d), None) => ("advance", now.checked_add(d.0).map_err(|_| ClockError::Overflow)),
        (None, Some(t)) => ("set", Ok(t)),
        _ => {
            return Err(Problem::invalid_field("advance", "give exactly one of advance (e.g. \"15d\") and set"));
        }
    };
    let moved = match target {
        Ok(t) => a.ctx.move_clock(t).await,
        Err(e) => Err(e),
    };
    match moved {
        Ok(_) => Ok(Json(clock_view(&a.ctx))),
        Err(ClockError::Job(e)) => Err(Problem::internal(format!("a scheduled job failed: {e}"))),
        Err(e) => Err(Problem::invalid_field(field, e.to_string())),
    }
}

/// `POST /_admin/reset`.
#[derive(Debug, Serialize)]
struct Reset {
    reset: &'static str,
}

async fn reset(State(a): State<Admin>) -> Result<Json<Reset>, Problem> {
    a.sim.reset()?;
    Ok(Json(Reset { reset: a.system.name() }))
}

async fn journal(State(a): State<Admin>, RawQuery(q): RawQuery) -> Result<Response, Problem> {
    let mut since = 0;
    for pair in q.as_deref().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("since", v)) => {
                since =
                    v.parse().map_err(|_| Problem::invalid_field("since", "must be a sequence number (0 or more)"))?;
            }
            _ => {
                return Err(Problem::invalid_field(pair, "unknown query parameter; use since=<seq>"));
            }
        }
    }
    let mut page = a.ctx.journal().since(since);
    if a.ctx.config().masks_journal() {
        page.exchanges = page.exchanges.iter().map(crate::mask::exchange).collect();
    }
    Ok(Json(page).into_response())
}

async fn list_faults(State(a): State<Admin>) -> Json<Vec<FaultRule>> {
    let own = a.system.name();
    let rules = a.ctx.faults().list();
    let rules = match a.system {
        // The control plane sees every rule.
        System::ControlPlane => rules,
        _ => rules.into_iter().filter(|r| r.matcher.system.as_deref().is_none_or(|s| s == own)).collect(),
    };
    Json(rules)
}

async fn add_fault(State(a): State<Admin>, ApiJson(mut rule): ApiJson<FaultRule>) -> Result<Response, Problem> {
    if a.system != System::ControlPlane {
        match rule.matcher.system.as_deref() {
            None => rule.matcher.system = Some(a.system.name().to_owned()),
            Some(s) if s == a.system.name() => {}
            Some(s) => {
                return Err(Problem::invalid_field(
                    "match.system",
                    format!("this is {}; post rules for {s} to {s}'s admin API or the control plane", a.system),
                ));
            }
        }
    } else if let Some(s) = rule.matcher.system.as_deref()
        && System::from_name(s).is_none()
    {
        return Err(Problem::invalid_field("match.system", format!("unknown system {s:?}")));
    }
    let rule = a.ctx.faults().add(rule)?;
    Ok((StatusCode::CREATED, Json(rule)).into_response())
}

async fn clear_faults(State(a): State<Admin>) -> StatusCode {
    match a.system {
        System::ControlPlane => a.ctx.faults().clear(None),
        s => a.ctx.faults().clear(Some(s.name())),
    }
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(a): State<Admin>, Path(id): Path<String>) -> Result<StatusCode, Problem> {
    let id: u64 = id.parse().map_err(|_| Problem::invalid_field("id", "must be a rule number"))?;
    if a.ctx.faults().remove(id) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found(format!("no fault rule {id}")))
    }
}

/// `GET /_admin/state`: the ecosystem's figures and the simulator's own.
#[derive(Debug, Serialize)]
struct StateView {
    system: &'static str,
    seed: u64,
    population: usize,
    clock: ClockView,
    journal: JournalView,
    fault_rules: usize,
    durations: Durations,
    simulator: Value,
}

#[derive(Debug, Serialize)]
struct JournalView {
    kept: usize,
    last_seq: u64,
    dropped: u64,
}

#[derive(Debug, Serialize)]
struct Durations {
    test_results_retention: String,
    otp_ttl: String,
}

async fn state(State(a): State<Admin>) -> Result<Json<StateView>, Problem> {
    let journal = a.ctx.journal().since(a.ctx.journal().last_seq());
    Ok(Json(StateView {
        system: a.system.name(),
        seed: a.ctx.config().seed,
        population: a.ctx.population().len(),
        clock: clock_view(&a.ctx),
        journal: JournalView { kept: a.ctx.journal().len(), last_seq: journal.last_seq, dropped: journal.dropped },
        fault_rules: a.ctx.faults().list().len(),
        durations: Durations {
            test_results_retention: format_duration(a.ctx.config().retention.test_results.0),
            otp_ttl: format_duration(a.ctx.config().retention.otp_ttl.0),
        },
        simulator: a.sim.state()?,
    }))
}
