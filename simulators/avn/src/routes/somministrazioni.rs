//! `/avn/v1/somministrazioni`: doses from the regions' AVRs.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ecosim_core::accounts::{Authorised, Regional, Role, roles};
use ecosim_core::problem::{ApiJson, Problem};
use ecosim_core::store::StoreError;
use ecosim_domain::vaccination::Somministrazione;
use serde::Serialize;

use crate::domain::{self, Arrival};
use crate::state::Avn;
use crate::store::{self, Received};

/// The answer to a dose sent.
#[derive(Debug, Serialize)]
pub(crate) struct Receipt {
    id: String,
    id_regionale: String,
    versione: u32,
}

/// A dose as AVN holds it.
#[derive(Debug, Serialize)]
pub(crate) struct HeldDose {
    somministrazione: Somministrazione,
    versione: u32,
    ricevuta_il: String,
    inoltro_ts: String,
    inoltrata_il: Option<String>,
}

/// `POST /avn/v1/somministrazioni` (an AVR account of the region that gave the dose).
pub(crate) async fn create(
    State(avn): State<Arc<Avn>>,
    caller: Regional<roles::Avr>,
    ApiJson(dose): ApiJson<Somministrazione>,
) -> Result<(StatusCode, Json<Receipt>), Problem> {
    let region = caller.region.as_str();
    dose.check(avn.ctx.clock().today()).map_err(|p| p.with_requirement("AVR-1.3a"))?;
    if dose.regione_somministrazione != region {
        return Err(Problem::forbidden(format!(
            "{} sends the doses region {region} gave; this one says regione_somministrazione {}",
            caller.account.name, dose.regione_somministrazione
        ))
        .with_field("regione_somministrazione", format!("must be {region}, the caller's region")));
    }
    let id = format!("{}:{}", dose.regione_somministrazione, dose.id_regionale);
    let record = serde_json::to_string(&dose).map_err(|e| Problem::internal(e.to_string()))?;
    let clock = avn.ctx.clock();
    let now = clock.now();
    let received = Received {
        id: &id,
        regione_somministrazione: &dose.regione_somministrazione,
        id_regionale: &dose.id_regionale,
        regione_residenza: &dose.regione_residenza,
        assistito: &dose.id_assistito.valore,
        data: dose.data_somministrazione.to_string(),
        record: &record,
        versione: dose.versione,
        received_at: now.to_string(),
        received_ms: now.as_millisecond(),
        received_day: clock.date_of(now).to_string(),
    };
    let outcome = avn.store.transaction(|tx| {
        let held = store::held(tx, &id)?;
        let (status, versione) =
            match domain::arrival(held.as_ref().map(|h| (h.record.as_str(), h.versione)), &record, dose.versione) {
                Arrival::Again { versione } => return Ok(Ok((StatusCode::OK, versione))),
                Arrival::Conflict { versione } => {
                    return Ok(Err(Problem::conflict(format!(
                    "dose {id} version {versione} is held with other data: send a correction with versione > {versione}"
                ))
                .with_field("versione", format!("must be greater than {versione} to correct the dose"))));
                }
                Arrival::Correction => {
                    store::correct(tx, &received)?;
                    (StatusCode::OK, dose.versione)
                }
                Arrival::New => {
                    store::insert(tx, &received)?;
                    (StatusCode::CREATED, dose.versione)
                }
            };
        if avn.ctx.config().timing.avn_forwarding == ecosim_core::config::Forwarding::Immediate {
            avn.queue_due(tx)?;
        }
        Ok::<_, StoreError>(Ok((status, versione)))
    })?;
    let (status, versione) = outcome?;
    avn.outbox.wake();
    Ok((status, Json(Receipt { id, id_regionale: dose.id_regionale, versione })))
}

/// `GET /avn/v1/somministrazioni/{regione}/{id_regionale}` (the region's AVR).
pub(crate) async fn get_one(
    State(avn): State<Arc<Avn>>,
    caller: Authorised<roles::Avr>,
    Path((regione, id_regionale)): Path<(String, String)>,
) -> Result<Json<HeldDose>, Problem> {
    let account = &caller.account;
    if account.role == Role::Avr && account.region.as_deref() != Some(regione.as_str()) {
        return Err(Problem::forbidden(format!("{} reads only its own region's doses", account.name)));
    }
    let id = format!("{regione}:{id_regionale}");
    let Some(held) = avn.store.with(|c| store::held(c, &id))? else {
        return Err(Problem::not_found(format!("AVN holds no dose {id_regionale} from region {regione}")));
    };
    let somministrazione = serde_json::from_str(&held.record)
        .map_err(|e| Problem::internal(format!("dose {id} is stored unreadable: {e}")))?;
    Ok(Json(HeldDose {
        somministrazione,
        versione: held.versione,
        ricevuta_il: held.received_at,
        inoltro_ts: held.inoltro,
        inoltrata_il: held.inoltrata_il,
    }))
}
