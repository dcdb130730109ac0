//! `POST /pn-dgc/v1/eventi`: doses, tests and recoveries from Sistema TS.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ecosim_core::accounts::{Authorised, roles};
use ecosim_core::problem::{ApiJson, Problem};
use ecosim_core::store::StoreError;
use jiff::Timestamp;
use serde::Serialize;

use crate::domain::event::{Evento, Plan, Rules};
use crate::state::PnDgc;
use crate::store::{self, HeldEvent, NewEvent};

/// An event's state: when its certificate is due, or why there is none.
#[derive(Debug, Serialize)]
pub(crate) struct EventView {
    id: String,
    stato: String,
    requirement: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    motivo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emissione_prevista: Option<String>,
}

impl EventView {
    fn of(id: &str, held: &HeldEvent) -> Self {
        let at = Timestamp::from_millisecond(held.emissione_ms).map(|t| t.to_string()).unwrap_or_default();
        Self {
            id: id.to_owned(),
            stato: held.stato.clone(),
            requirement: "DGC-TIMING",
            emissione_prevista: held.motivo.is_none().then_some(at),
            motivo: held.motivo.clone(),
        }
    }
}

/// `POST /pn-dgc/v1/eventi` (Sistema TS's service account): a dose, a test or a
/// recovery. 202 with the planned issue time (or why none); the same event again is
/// 200; another event under a used id is 409.
pub(crate) async fn create(
    State(pn): State<Arc<PnDgc>>,
    _caller: Authorised<roles::SistemaTs>,
    ApiJson(e): ApiJson<Evento>,
) -> Result<(StatusCode, Json<EventView>), Problem> {
    e.check()?;
    let clock = pn.ctx.clock();
    let now = clock.now();
    let mut plan = e.plan(now, |d| clock.midnight(d), clock.today());
    if pn.ctx.config().mutant("DGC-TIMING") && matches!(plan, Plan::Issue(_)) {
        plan = Plan::Issue(now);
    }
    let payload = serde_json::to_string(&e).map_err(|err| Problem::internal(err.to_string()))?;
    let answer = pn.store.transaction(|tx| {
        if let Some(held) = store::held_event(tx, &e.id)? {
            if held.payload != payload {
                return Ok::<_, StoreError>(None);
            }
            return Ok(Some((StatusCode::OK, EventView::of(&e.id, &held))));
        }
        let (stato, at, motivo) = match &plan {
            Plan::Issue(at) => ("in_attesa", at.as_millisecond(), None),
            Plan::Discard(why) => ("scartato", now.as_millisecond(), Some(why.clone())),
        };
        let held = HeldEvent { payload: payload.clone(), stato: stato.to_owned(), emissione_ms: at, motivo };
        let new =
            NewEvent { id: &e.id, tipo: e.kind(), assistito: &e.assistito.id, received_at: now.to_string(), held };
        store::insert_event(tx, &new)?;
        Ok(Some((StatusCode::ACCEPTED, EventView::of(&e.id, &new.held))))
    })?;
    let Some((status, view)) = answer else {
        return Err(
            Problem::conflict(format!("event {} was received with other data", e.id)).with_field("id", "already used")
        );
    };
    match plan {
        // Due later: a clock job issues it then (armed when it first arrived).
        Plan::Issue(at) if at > now => {
            if status == StatusCode::ACCEPTED {
                pn.issue_at(at);
            }
        }
        // Due now (or a retry of one whose issuing failed): this event only.
        Plan::Issue(_) => pn.issue_received(&e)?,
        Plan::Discard(_) => {}
    }
    Ok((status, Json(view)))
}
