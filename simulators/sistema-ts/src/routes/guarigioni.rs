//! Recoveries: an ASL registers that a person recovered; Sistema TS issues the NUCG
//! (recovery certificate number) and sends the event to PN-DGC, which issues the
//! recovery certificate the next day (`fglTipoDgc: cbis` when the person was
//! vaccinated before).

use ecosim_domain::validation::AllSome;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ecosim_core::accounts::{Regional, roles};
use ecosim_core::problem::{ApiJson, Fields, Problem};
use ecosim_core::store::StoreError;
use ecosim_domain::codes::Nucg;
use ecosim_domain::green_pass::{Evento, Guarigione};
use ecosim_domain::vaccination::ContattiDgc;

use crate::state::SistemaTs;
use crate::store::{self, guarigioni::NewRecovery};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecovery {
    codice_fiscale: Option<String>,
    data_primo_positivo: Option<String>,
    data_guarigione: Option<String>,
    #[serde(default)]
    contatti_dgc: ContattiDgc,
}

/// The answer to a recovery registered: its NUCG.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Registered {
    id: String,
    assistito: String,
    nucg: String,
}

/// `POST /ts/v1/guarigioni` (ASL account) -> 201 `{"id","nucg"}`.
pub(crate) async fn create(
    State(ts): State<Arc<SistemaTs>>,
    caller: Regional<roles::Asl>,
    ApiJson(raw): ApiJson<RawRecovery>,
) -> Result<(StatusCode, Json<Registered>), Problem> {
    let region = caller.region;
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
            if !store::guarigioni::nucg_used(tx, candidate.as_str())? {
                break candidate;
            }
        };
        let recovery = NewRecovery {
            id: &id,
            nucg: nucg.as_str(),
            assistito: &p.id,
            regione: &region,
            data_primo_positivo: first.to_string(),
            data_guarigione: recovered.to_string(),
            created_at: now.clone(),
        };
        store::guarigioni::insert(tx, &recovery)?;
        let event = Evento {
            id: format!("guarigione:{id}"),
            assistito: crate::outbox::dgc::assistito(&p),
            contatti: crate::outbox::dgc::contatti(&raw.contatti_dgc),
            guarigione: Some(Guarigione {
                nucg: nucg.as_str().to_owned(),
                data_primo_positivo: first,
                data_guarigione: recovered,
            }),
            vaccinazione: None,
            test: None,
        };
        crate::outbox::dgc::enqueue(tx, &event, None)?;
        Ok::<_, StoreError>(nucg)
    })?;
    ts.outbox.wake();
    Ok((StatusCode::CREATED, Json(Registered { id, assistito: p.id, nucg: nucg.as_str().to_owned() })))
}
