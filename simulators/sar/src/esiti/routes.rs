//! `/sar/v1/esiti`: labs report results; the SAR acknowledges at once (202) and
//! delivers from its outbox.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ecosim_core::accounts::{Regional, roles};
use ecosim_core::idempotency;
use ecosim_core::outbox;
use ecosim_core::outbox::Attempt;
use ecosim_core::problem::{JsonBytes, Problem, from_json};
use ecosim_domain::test_result::{RawTestResult, validate};
use serde::Serialize;

use super::delivery::sms_recipient;
use super::store::{self, NewEsito};
use crate::outbox::Work;
use crate::state::Sar;

/// The acknowledgement of a result (202).
#[derive(Debug, Serialize)]
struct Accepted {
    id: String,
    stato: &'static str,
}

/// A result's state, CUN and every delivery attempt (fields in the order the answer
/// has always had).
#[derive(Debug, Serialize)]
pub(crate) struct EsitoView {
    #[serde(skip_serializing_if = "Option::is_none")]
    cun: Option<String>,
    consegne: Vec<Attempt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errore: Option<String>,
    id: String,
    notifiche: Notifiche,
    stato: String,
    tentativi: usize,
}

/// Where each channel stands.
#[derive(Debug, Serialize)]
struct Notifiche {
    email: String,
    sms: String,
}

/// `POST /sar/v1/esiti`.
pub(crate) async fn create(
    State(sar): State<Arc<Sar>>,
    caller: Regional<roles::Lab>,
    headers: HeaderMap,
    // The raw body is the idempotency fingerprint, so it is read as bytes here.
    JsonBytes(body): JsonBytes,
) -> Result<Response, Problem> {
    // Labs are answered first: deliveries yield while results arrive.
    sar.outbox.intake();
    let region = caller.region.clone();
    let (key, replay) =
        idempotency::precheck(&sar.store, &headers, caller.name(), &body, idempotency::Window::of(&sar.ctx)).await?;
    if let Some(answer) = replay {
        return Ok(answer);
    }
    let raw: RawTestResult = from_json(&body)?;
    if raw.invio_cun_da_ts.is_some() {
        return Err(Problem::invalid_field("invio_cun_da_ts", "the SAR sends the CUN itself; not a lab's field"));
    }
    let result = validate(&raw)?;
    let today = sar.ctx.clock().today();
    let defects = &sar.ctx.config().sar;
    if result.data_esecuzione > today && !defects.has(ecosim_core::config::SarDefect::AcceptFutureDate) {
        return Err(Problem::unprocessable(format!("the test date {} is in the future", result.data_esecuzione))
            .with_field("data_esecuzione", "is in the future")
            .with_requirement("ORD-3.1a"));
    }
    let sms_to = sms_recipient(&result, today, defects.has(ecosim_core::config::SarDefect::MinorOwnPhone));
    let email_to = result.email.as_ref().map(|e| e.to_string());
    let now = sar.ctx.clock().now();
    let lab = caller.name().to_owned();
    let (work, after) = (sar.clone(), sar.clone());
    // Group commit: shared with the reports arriving at the same time; the 202
    // waits for the commit, and the worker gets the report even if the lab is gone.
    let outcome = sar
        .store
        .grouped_then(
            move |tx| {
                let sar = &work;
                if let Some(key) = &key
                    && let Some(stored) = idempotency::replay(tx, key)?
                {
                    return Ok(Err(stored));
                }
                let id = sar.ids.next();
                let payload = String::from_utf8_lossy(&body);
                store::insert(
                    tx,
                    &NewEsito {
                        id: &id,
                        lab: &lab,
                        region: &region,
                        payload: &payload,
                        sms_to: sms_to.as_deref(),
                        email_to: email_to.as_deref(),
                        created_at: now.to_string(),
                    },
                )?;
                // Claimed at once: the worker starts on it without scanning the queue.
                let item = outbox::enqueue_claimed(tx, &id, &Work::Ts { id: id.clone() })?;
                let answer = Accepted { id, stato: "accettato" };
                if let Some(key) = &key {
                    let text = serde_json::to_string(&answer).map_err(|e| Problem::internal(e.to_string()))?;
                    idempotency::remember(tx, key, 202, &text, None)?;
                }
                Ok::<_, Problem>(Ok((answer, item)))
            },
            move |outcome| {
                if let Ok((_, item)) = outcome {
                    after.outbox.dispatch(item.clone());
                }
            },
        )
        .await?;
    match outcome {
        Err((status, stored)) => Ok(idempotency::replayed(status, stored)),
        Ok((answer, _)) => Ok((StatusCode::ACCEPTED, Json(answer)).into_response()),
    }
}

/// `GET /sar/v1/esiti/{id}`: the state, the CUN once known, every delivery attempt.
pub(crate) async fn get_one(
    State(sar): State<Arc<Sar>>,
    caller: Regional<roles::Lab>,
    Path(id): Path<String>,
) -> Result<Json<EsitoView>, Problem> {
    let region = caller.region;
    let Some(state) = sar.store.with(|c| store::state(c, &id, &region))? else {
        return Err(Problem::not_found(format!("no result {id} from region {region}")));
    };
    let consegne = sar.store.with(|c| outbox::attempts_of(c, &id))?;
    let ts_kind = outbox::kind_of(&Work::Ts { id: id.clone() });
    let tentativi = consegne.iter().filter(|a| a.kind == ts_kind).count();
    Ok(Json(EsitoView {
        cun: state.cun.map(|c| format!("CUN-{c}")),
        consegne,
        errore: state.errore,
        id,
        notifiche: Notifiche { email: state.email, sms: state.sms },
        stato: state.stato,
        tentativi,
    }))
}
