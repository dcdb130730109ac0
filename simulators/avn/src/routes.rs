//! AVN's HTTP routes.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ecosim_core::accounts::{Caller, Role};
use ecosim_core::problem::{Problem, from_json, parse_date};
use ecosim_core::store::{CachedSql, StoreError};
use ecosim_core::vaccination::Somministrazione;
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::state::Avn;

/// `POST /avn/v1/somministrazioni` (an AVR account of the region that gave the dose).
pub(crate) async fn create(
    State(avn): State<Arc<Avn>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_role(&[Role::Avr])?;
    let region = caller.region()?.to_owned();
    let dose: Somministrazione = from_json(&body)?;
    dose.check(avn.ctx.clock().today()).map_err(|p| p.with_requirement("AVR-1.3a"))?;
    if dose.regione_somministrazione != region {
        return Err(Problem::forbidden(format!(
            "{} sends the doses region {region} gave; this one says regione_somministrazione {}",
            caller.0.name, dose.regione_somministrazione
        ))
        .with_field("regione_somministrazione", format!("must be {region}, the caller's region")));
    }
    let id = format!("{}:{}", dose.regione_somministrazione, dose.id_regionale);
    let record = serde_json::to_string(&dose).map_err(|e| Problem::internal(e.to_string()))?;
    let clock = avn.ctx.clock();
    let now = clock.now();
    let answer = |versione: u32| json!({"id": id, "id_regionale": dose.id_regionale, "versione": versione});
    let outcome = avn.store.transaction(|tx| {
        let held: Option<(String, u32)> = tx
            .row("SELECT record, versione FROM somministrazioni WHERE id = ?1", [&id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let status = match held {
            Some((held_record, v)) if held_record == record => return Ok(Ok((StatusCode::OK, answer(v)))),
            Some((_, v)) if dose.versione <= v => {
                return Ok(Err(Problem::conflict(format!(
                    "dose {id} version {v} is held with other data: send a correction with versione > {v}"
                ))
                .with_field("versione", format!("must be greater than {v} to correct the dose"))));
            }
            Some(_) => {
                tx.exec(
                    "UPDATE somministrazioni SET record = ?2, versione = ?3, assistito = ?4, data = ?5,
                         regione_residenza = ?6, inoltro = 'in_attesa', received_at = ?7, received_ms = ?8,
                         received_day = ?9
                     WHERE id = ?1",
                    params![
                        id,
                        record,
                        dose.versione,
                        dose.id_assistito.valore,
                        dose.data_somministrazione.to_string(),
                        dose.regione_residenza,
                        now.to_string(),
                        now.as_millisecond(),
                        clock.date_of(now).to_string(),
                    ],
                )?;
                StatusCode::OK
            }
            None => {
                tx.exec(
                    "INSERT INTO somministrazioni (id, regione_somministrazione, id_regionale, regione_residenza,
                         assistito, data, record, versione, received_at, received_ms, received_day, inoltro)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'in_attesa')",
                    params![
                        id,
                        dose.regione_somministrazione,
                        dose.id_regionale,
                        dose.regione_residenza,
                        dose.id_assistito.valore,
                        dose.data_somministrazione.to_string(),
                        record,
                        dose.versione,
                        now.to_string(),
                        now.as_millisecond(),
                        clock.date_of(now).to_string(),
                    ],
                )?;
                StatusCode::CREATED
            }
        };
        if avn.ctx.config().timing.avn_forwarding == ecosim_core::config::Forwarding::Immediate {
            avn.queue_due(tx)?;
        }
        Ok::<_, StoreError>(Ok((status, answer(dose.versione))))
    })?;
    let (status, body) = outcome?;
    avn.outbox.wake();
    Ok((status, Json(body)))
}

/// `GET /avn/v1/somministrazioni/{regione}/{id_regionale}` (the region's AVR, or a service).
pub(crate) async fn get_one(
    State(avn): State<Arc<Avn>>,
    caller: Caller,
    Path((regione, id_regionale)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    let account = caller.require_role(&[Role::Avr, Role::Service])?;
    if account.role == Role::Avr && account.region.as_deref() != Some(regione.as_str()) {
        return Err(Problem::forbidden(format!("{} reads only its own region's doses", account.name)));
    }
    let id = format!("{regione}:{id_regionale}");
    let row = avn.store.with(|c| {
        c.row(
            "SELECT record, versione, received_at, inoltro, inoltrata_il FROM somministrazioni WHERE id = ?1",
            [&id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<String>>(4)?,
                ))
            },
        )
        .optional()
    })?;
    let Some((record, versione, received, inoltro, inoltrata)) = row else {
        return Err(Problem::not_found(format!("AVN holds no dose {id_regionale} from region {regione}")));
    };
    Ok(Json(json!({
        "somministrazione": serde_json::from_str::<Value>(&record).unwrap_or(Value::Null),
        "versione": versione, "ricevuta_il": received, "inoltro_ts": inoltro, "inoltrata_il": inoltrata,
    })))
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct MobilityQuery {
    dal: Option<String>,
}

/// `GET /avn/v1/regioni/{codice}/mobilita?dal=YYYY-MM-DD` (the region's AVR): doses
/// given in other regions to its residents, received from `dal` on, in the order AVN
/// received them (AVR-1.3c).
pub(crate) async fn mobility(
    State(avn): State<Arc<Avn>>,
    caller: Caller,
    Path(codice): Path<String>,
    Query(q): Query<MobilityQuery>,
) -> Result<Json<Value>, Problem> {
    let account = caller.require_role(&[Role::Avr])?;
    if account.region.as_deref() != Some(codice.as_str()) {
        return Err(Problem::forbidden(format!("{} reads only region {}'s mobility feed", account.name, codice)));
    }
    let dal = match &q.dal {
        None => None,
        Some(d) => Some(parse_date(d).map_err(|why| Problem::invalid_field("dal", why))?),
    };
    let from = dal.map(|d| d.to_string()).unwrap_or_default();
    let list = avn.store.with(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT record, received_at, versione FROM somministrazioni
             WHERE regione_residenza = ?1 AND regione_somministrazione != ?1 AND received_day >= ?2 ORDER BY seq",
        )?;
        stmt.query_map(params![codice, from], |r| {
            let record: String = r.get(0)?;
            let mut v = serde_json::from_str::<Value>(&record).unwrap_or(Value::Null);
            v["ricevuta_il"] = Value::String(r.get(1)?);
            Ok(v)
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(Json(json!({"regione": codice, "dal": dal, "somministrazioni": list, "requirement": "AVR-1.3c"})))
}
