//! `/sar/v1/esiti`: labs report results; the SAR acknowledges at once (202) and
//! delivers from its outbox.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ecosim_core::accounts::{Caller, Role};
use ecosim_core::idempotency;
use ecosim_core::outbox;
use ecosim_core::problem::{Problem, from_json};
use ecosim_core::store::CachedSql;
use ecosim_domain::test_result::{RawTestResult, validate};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::delivery::sms_recipient;
use crate::state::Sar;
use crate::work::Work;

/// `POST /sar/v1/esiti`.
pub(crate) async fn create(
    State(sar): State<Arc<Sar>>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    caller.require_role(&[Role::Lab])?;
    let region = caller.region()?.to_owned();
    let (key, replay) = idempotency::precheck(&sar.store, &headers, &caller.0.name, &body)?;
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
    let outcome = sar.store.transaction(|tx| {
        if let Some(key) = &key
            && let Some(stored) = idempotency::replay(tx, key)?
        {
            return Ok(Err(stored));
        }
        let id = sar.ids.next();
        tx.exec(
            "INSERT INTO esiti (id, lab, region, payload, stato, sms_to, email_to, sms_stato, email_stato, created_at)
             VALUES (?1, ?2, ?3, ?4, 'accettato', ?5, ?6, ?7, ?8, ?9)",
            params![
                id,
                caller.0.name,
                region,
                String::from_utf8_lossy(&body),
                sms_to,
                email_to,
                if sms_to.is_some() { "in_attesa" } else { "nessuno" },
                if email_to.is_some() { "in_attesa" } else { "nessuno" },
                now.to_string(),
            ],
        )?;
        // Claimed at once: the worker starts on it without scanning the queue.
        let item = outbox::enqueue_claimed(tx, &id, &Work::Ts { id: id.clone() })?;
        let answer = json!({"id": id, "stato": "accettato"});
        if let Some(key) = &key {
            idempotency::remember(tx, key, 202, &answer.to_string())?;
        }
        Ok::<_, Problem>(Ok((answer, item)))
    })?;
    match outcome {
        Err((status, stored)) => Ok(idempotency::replayed(status, stored)),
        Ok((answer, item)) => {
            sar.outbox.dispatch(item);
            Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
        }
    }
}

/// `GET /sar/v1/esiti/{id}`: the state, the CUN once known, every delivery attempt.
pub(crate) async fn get_one(
    State(sar): State<Arc<Sar>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_role(&[Role::Lab])?;
    let region = caller.region()?.to_owned();
    let row = sar.store.with(|c| {
        c.row(
            "SELECT stato, cun, errore, sms_stato, email_stato FROM esiti WHERE id = ?1 AND region = ?2",
            params![id, region],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()
    })?;
    let Some((stato, cun, errore, sms, email)) = row else {
        return Err(Problem::not_found(format!("no result {id} from region {region}")));
    };
    let attempts = sar.store.with(|c| outbox::attempts_of(c, &id))?;
    let ts_kind = outbox::kind_of(&Work::Ts { id: id.clone() });
    let to_ts = attempts.iter().filter(|a| a.kind == ts_kind).count();
    let mut view = json!({
        "id": id,
        "stato": stato,
        "tentativi": to_ts,
        "notifiche": {"sms": sms, "email": email},
        "consegne": attempts,
    });
    if let Some(cun) = cun {
        view["cun"] = Value::String(format!("CUN-{cun}"));
    }
    if let Some(e) = errore {
        view["errore"] = Value::String(e);
    }
    Ok(Json(view))
}
