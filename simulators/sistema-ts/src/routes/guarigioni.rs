//! Recoveries: an ASL registers that a person recovered; Sistema TS issues the NUCG
//! (recovery certificate number) and sends the event to PN-DGC, which issues the
//! recovery certificate the next day (`fglTipoDgc: cbis` when the person was
//! vaccinated before).

use ecosim_domain::validation::AllSome;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use ecosim_core::accounts::{Caller, Role};
use ecosim_core::problem::{Fields, Problem, from_json};
use ecosim_core::store::{CachedSql, StoreError};
use ecosim_domain::codes::Nucg;
use ecosim_domain::vaccination::ContattiDgc;
use rusqlite::params;
use serde_json::{Value, json};

use crate::state::SistemaTs;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecovery {
    codice_fiscale: Option<String>,
    data_primo_positivo: Option<String>,
    data_guarigione: Option<String>,
    #[serde(default)]
    contatti_dgc: ContattiDgc,
}

/// `POST /ts/v1/guarigioni` (ASL account) -> 201 `{"id","nucg"}`.
pub(crate) async fn create(
    State(ts): State<Arc<SistemaTs>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_role(&[Role::Asl])?;
    let region = caller.region()?.to_owned();
    let raw: RawRecovery = from_json(&body)?;
    let today = ts.ctx.clock().today();
    let mut f = Fields::new();
    let cf = f.required("codice_fiscale", &raw.codice_fiscale).cloned();
    if let Some(c) = &cf {
        f.check("codice_fiscale", ecosim_domain::codes::CodiceFiscale::parse(c));
    }
    let first = f.past_date("data_primo_positivo", &raw.data_primo_positivo, today);
    let recovered = f.past_date("data_guarigione", &raw.data_guarigione, today);
    if let (Some(a), Some(b)) = (first, recovered)
        && b < a
    {
        f.error("data_guarigione", "must not be before the first positive test");
    }
    raw.contatti_dgc.check("contatti_dgc", &mut f);
    let (cf, first, recovered) = f.into_result((cf, first, recovered).all_some())?;
    let p = crate::routes::assistiti::person(&ts, &cf, "codice_fiscale")?;
    let id = ts.ids.next();
    let now = ts.ctx.clock().now().to_string();
    let nucg = ts.store.transaction(|tx| {
        let nucg = loop {
            let candidate = ts.nucgs.with_rng(Nucg::generate);
            let used: bool =
                tx.row("SELECT EXISTS (SELECT 1 FROM guarigioni WHERE nucg = ?1)", [candidate.as_str()], |r| r.get(0))?;
            if !used {
                break candidate;
            }
        };
        tx.exec(
            "INSERT INTO guarigioni (id, nucg, assistito, regione, data_primo_positivo, data_guarigione, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![id, nucg.as_str(), p.id, region, first.to_string(), recovered.to_string(), now],
        )?;
        let event = json!({
            "id": format!("guarigione:{id}"),
            "assistito": crate::dgc::assistito(&p),
            "contatti": raw.contatti_dgc,
            "guarigione": {"nucg": nucg.as_str(), "data_primo_positivo": first, "data_guarigione": recovered},
        });
        crate::dgc::enqueue(tx, &event, None)?;
        Ok::<_, StoreError>(nucg)
    })?;
    ts.outbox.wake();
    Ok((StatusCode::CREATED, Json(json!({"id": id, "assistito": p.id, "nucg": nucg.as_str()}))))
}
