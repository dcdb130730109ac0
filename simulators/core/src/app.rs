//! Assembling a simulator's HTTP app: its routes, the admin API, its OpenAPI
//! document, all behind the boundary layer.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::get;

use crate::admin::{self, SimulatorAdmin};
use crate::context::Context;
use crate::systems::System;

/// The full app of `system`: `routes` + `/_admin` + `GET /openapi.json`, with the
/// boundary layer (identity, faults, journal) in front.
pub fn app(
    ctx: &Context,
    system: System,
    routes: Router,
    sim: Arc<dyn SimulatorAdmin>,
    openapi: &'static str,
) -> Router {
    let doc = Router::new()
        .route("/openapi.json", get(move || async move { ([(header::CONTENT_TYPE, "application/json")], openapi) }));
    crate::boundary::mount_for(
        routes.merge(doc).merge(admin::router(ctx.clone(), system, sim.clone())),
        ctx,
        system,
        sim,
    )
}
