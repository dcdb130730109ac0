//! COVID doses: from AVN (checked, AVR-TS-CHECK), from ASLs for doses given abroad,
//! and the anomalies a region must fix.
//!
//! A dose from AVN whose person is not in the registry, or whose number disagrees
//! with the doses Sistema TS holds, is kept as `anomala` and listed at `GET
//! /ts/v1/anomalie` for the region that gave it; a later version of the dose (AVN
//! forwards corrections, such as a forced dose number) is checked again and closes
//! the old anomalies. Valid doses wait for PN-DGC (`dgc: in_coda`).

use ecosim_domain::validation::AllSome;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use ecosim_core::accounts::{Caller, Role};
use ecosim_core::problem::{Fields, Problem, from_json};
use ecosim_core::store::{CachedSql, StoreError};
use ecosim_domain::vaccination::{ContattiDgc, IdAssistito, Somministrazione, TipoId, check_id};
use ecosim_domain::vaccines;
use jiff::civil::Date;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::domain::vaccinazioni::{Held, expected_dose};
use crate::registry::{Lookup, Person};
use crate::state::SistemaTs;

/// A dose as stored.
#[derive(Debug, Clone)]
pub(crate) struct DoseRow {
    pub(crate) aic: String,
    pub(crate) farmaco: String,
    pub(crate) data: String,
    pub(crate) dose: u8,
    pub(crate) tipo_dose: String,
    pub(crate) regione: String,
}

impl SistemaTs {
    /// The doses held for `p` (under any of their codes), oldest first; with
    /// `abroad`, doses given abroad too.
    pub(crate) fn doses_of(&self, c: &Connection, p: &Person, abroad: bool) -> rusqlite::Result<Vec<DoseRow>> {
        let mut out = Vec::new();
        let mut stmt = c.prepare_cached(
            "SELECT aic, farmaco, data, dose, tipo_dose, regione, fonte FROM vaccinazioni
             WHERE assistito = ?1 ORDER BY data, id",
        )?;
        for id in p.ids() {
            let rows = stmt.query_map([id], |r| {
                Ok((
                    DoseRow {
                        aic: r.get(0)?,
                        farmaco: r.get(1)?,
                        data: r.get(2)?,
                        dose: r.get(3)?,
                        tipo_dose: r.get(4)?,
                        regione: r.get(5)?,
                    },
                    r.get::<_, String>(6)?,
                ))
            })?;
            for row in rows {
                let (dose, fonte) = row?;
                if abroad || fonte == "avn" {
                    out.push(dose);
                }
            }
        }
        out.sort_by(|a, b| a.data.cmp(&b.data));
        Ok(out)
    }

    fn held_except(&self, c: &Connection, p: &Person, except: &str) -> rusqlite::Result<Vec<Held>> {
        let mut held = Vec::new();
        let mut stmt = c.prepare_cached("SELECT data, aic FROM vaccinazioni WHERE assistito = ?1 AND id != ?2")?;
        for id in p.ids() {
            for row in stmt.query_map(params![id, except], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
                let (data, aic) = row?;
                if let (Ok(date), Some(vaccine)) = (data.parse::<Date>(), vaccines::find(&aic)) {
                    held.push(Held { date, vaccine });
                }
            }
        }
        Ok(held)
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    vaccinazioni: Vec<Somministrazione>,
}

/// `POST /ts/v1/avn/vaccinazioni` (AVN's service account): a batch of doses. Each is
/// validated; a malformed dose fails the batch (400, naming `vaccinazioni[i].field`)
/// so AVN can fix its forwarding. Well-formed doses are kept, checked against the
/// registry and the doses held, and answered one by one.
pub(crate) async fn from_avn(
    State(ts): State<Arc<SistemaTs>>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    caller.require_role(&[Role::Service])?;
    // Malformed JSON is named by its path (`vaccinazioni[2].ora`); the field rules too.
    let Batch { vaccinazioni: doses } = from_json(&body)?;
    let today = ts.ctx.clock().today();
    for (i, d) in doses.iter().enumerate() {
        d.check(today).map_err(|mut p| {
            for e in &mut p.errors {
                e.field = format!("vaccinazioni[{i}].{}", e.field);
            }
            p
        })?;
    }
    let now = ts.ctx.clock().now().to_string();
    let esiti = ts.store.transaction(|tx| {
        let mut esiti = Vec::new();
        for d in &doses {
            esiti.push(accept(&ts, tx, d, &now)?);
        }
        Ok::<_, StoreError>(esiti)
    })?;
    ts.outbox.wake();
    let anomale = esiti.iter().filter(|e| e["esito"] == "anomala").count();
    Ok(Json(json!({"ricevute": esiti.len(), "anomale": anomale, "esiti": esiti})))
}

fn accept(ts: &SistemaTs, tx: &Connection, d: &Somministrazione, now: &str) -> rusqlite::Result<Value> {
    let id = format!("avn:{}:{}", d.regione_somministrazione, d.id_regionale);
    let held_version: Option<u32> =
        tx.row("SELECT versione FROM vaccinazioni WHERE id = ?1", [&id], |r| r.get(0)).optional()?;
    if let Some(v) = held_version
        && v >= d.versione
    {
        let stato: String = tx.row("SELECT stato FROM vaccinazioni WHERE id = ?1", [&id], |r| r.get(0))?;
        return Ok(json!({"id_regionale": d.id_regionale, "esito": stato, "versione": v, "gia_ricevuta": true}));
    }
    let mut anomalies: Vec<(&str, String)> = Vec::new();
    let person = match d.id_assistito.tipo {
        TipoId::Cf | TipoId::Ts => ts.lookup(tx, &d.id_assistito.valore)?,
        _ => Lookup::Unknown,
    };
    let assistito = match &person {
        Lookup::Found(p) => {
            let held = ts.held_except(tx, p, &id)?;
            let expected = expected_dose(&held, d.data_somministrazione);
            if d.dose != expected {
                anomalies.push((
                    "numero_dose",
                    format!(
                        "dose {} of {}: Sistema TS holds {} earlier dose(s), so it expects dose {expected}",
                        d.dose,
                        d.data_somministrazione,
                        held.iter().filter(|h| h.date < d.data_somministrazione).count()
                    ),
                ));
            }
            p.id.clone()
        }
        _ => {
            anomalies.push((
                "identificativo_sconosciuto",
                format!(
                    "{} {} is not in the national registry: check the codice fiscale",
                    d.id_assistito.tipo.as_str(),
                    d.id_assistito.valore
                ),
            ));
            d.id_assistito.valore.clone()
        }
    };
    let valid = anomalies.is_empty();
    let vaccine = d.vaccine();
    tx.exec(
        "INSERT INTO vaccinazioni (id, fonte, assistito, regione, id_regionale, data, aic, farmaco, dose, tipo_dose,
                                   paese, contatti, record, stato, dgc, versione, received_at)
         VALUES (?1, 'avn', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (id) DO UPDATE SET assistito = ?2, data = ?5, aic = ?6, farmaco = ?7, dose = ?8, tipo_dose = ?9,
             contatti = ?10, record = ?11, stato = ?12, dgc = ?13, versione = ?14, received_at = ?15",
        params![
            id,
            assistito,
            d.regione_somministrazione,
            d.id_regionale,
            d.data_somministrazione.to_string(),
            vaccine.map(|v| v.aic_or_code()).unwrap_or(&d.aic),
            vaccine.map(|v| v.farmaco).unwrap_or_default(),
            d.dose,
            d.tipo_dose.as_str(),
            serde_json::to_string(&d.contatti_dgc).unwrap_or_default(),
            serde_json::to_string(d).unwrap_or_default(),
            if valid { "valida" } else { "anomala" },
            if valid { "in_coda" } else { "sospesa" },
            d.versione,
            now,
        ],
    )?;
    tx.exec("UPDATE anomalie SET risolta_il = ?2 WHERE vaccinazione = ?1 AND risolta_il IS NULL", params![id, now])?;
    for (kind, detail) in &anomalies {
        tx.exec(
            "INSERT INTO anomalie (regione, vaccinazione, id_regionale, tipo, dettaglio, rilevata_il)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![d.regione_somministrazione, id, d.id_regionale, kind, detail, now],
        )?;
    }
    if valid && let Lookup::Found(p) = &person {
        let event = json!({
            "id": format!("dose:{id}@{}", d.versione),
            "assistito": crate::dgc::assistito(p),
            "contatti": d.contatti_dgc,
            "vaccinazione": {"data": d.data_somministrazione, "aic": vaccine.map(|v| v.aic_or_code()).unwrap_or(&d.aic),
                             "dose": d.dose, "tipo_dose": d.tipo_dose.as_str(), "paese": "IT"},
        });
        crate::dgc::enqueue(tx, &event, Some(&id))?;
    }
    let mut esito = json!({
        "id_regionale": d.id_regionale,
        "esito": if valid { "valida" } else { "anomala" },
        "versione": d.versione,
    });
    if !valid {
        esito["anomalie"] = anomalies.iter().map(|(k, v)| json!({"tipo": k, "dettaglio": v})).collect();
        esito["requirement"] = "AVR-TS-CHECK".into();
    }
    Ok(esito)
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct AnomalieQuery {
    #[serde(default)]
    aperte: Option<bool>,
}

/// `GET /ts/v1/anomalie[?aperte=true]`: inconsistencies found on the region's doses
/// (AVR-TS-CHECK), oldest first.
pub(crate) async fn anomalies(
    State(ts): State<Arc<SistemaTs>>,
    caller: Caller,
    Query(q): Query<AnomalieQuery>,
) -> Result<Json<Value>, Problem> {
    caller.require_role(&[Role::Sar, Role::Avr, Role::Asl])?;
    let region = caller.region()?.to_owned();
    let only_open = q.aperte.unwrap_or(false);
    let list = ts.store.with(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT id, vaccinazione, id_regionale, tipo, dettaglio, rilevata_il, risolta_il FROM anomalie
             WHERE regione = ?1 AND (?2 = 0 OR risolta_il IS NULL) ORDER BY id",
        )?;
        stmt.query_map(params![region, only_open], |r| {
            Ok(json!({
                "id": r.get::<_, i64>(0)?, "vaccinazione": r.get::<_, String>(1)?,
                "id_regionale": r.get::<_, Option<String>>(2)?, "tipo": r.get::<_, String>(3)?,
                "dettaglio": r.get::<_, String>(4)?, "rilevata_il": r.get::<_, String>(5)?,
                "risolta_il": r.get::<_, Option<String>>(6)?, "requirement": "AVR-TS-CHECK",
            }))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(Json(Value::Array(list)))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAbroad {
    codice_fiscale: Option<String>,
    id_assistito: Option<IdAssistito>,
    data_somministrazione: Option<String>,
    aic: Option<String>,
    paese: Option<String>,
    dose: Option<u8>,
    #[serde(default)]
    contatti_dgc: ContattiDgc,
}

/// `POST /ts/v1/vaccinazioni-estero` (ASL account): a dose given abroad, any vaccine
/// of the catalogue including those EMA did not authorise (GIAVA 1.3, 6.3). It
/// reaches neither AVR nor AVN.
pub(crate) async fn abroad(
    State(ts): State<Arc<SistemaTs>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_role(&[Role::Asl])?;
    let region = caller.region()?.to_owned();
    let raw: RawAbroad = from_json(&body)?;
    let mut f = Fields::new();
    let who = match (&raw.codice_fiscale, &raw.id_assistito) {
        (Some(cf), None) => Some((cf.clone(), "codice_fiscale")),
        (None, Some(id)) => {
            check_id(id, "id_assistito", &mut f);
            Some((id.valore.clone(), "id_assistito.valore"))
        }
        _ => {
            f.error("codice_fiscale", "give exactly one of codice_fiscale and id_assistito");
            None
        }
    };
    let today = ts.ctx.clock().today();
    let date = f.past_date("data_somministrazione", &raw.data_somministrazione, today);
    let vaccine = f.required("aic", &raw.aic).and_then(|a| {
        let v = vaccines::find(a);
        if v.is_none() {
            f.error("aic", format!("unknown vaccine {a:?}; known: {}", vaccines::known_codes()));
        }
        v
    });
    let paese = f.required("paese", &raw.paese).and_then(|p| {
        if p.len() == 2 && p.bytes().all(|b| b.is_ascii_uppercase()) && p != "IT" {
            Some(p.clone())
        } else {
            f.error("paese", "must be an ISO 3166 alpha-2 country code other than IT");
            None
        }
    });
    let dose = f.required("dose", &raw.dose).copied().filter(|d| (1..=9).contains(d));
    if raw.dose.is_some() && dose.is_none() {
        f.error("dose", "must be between 1 and 9");
    }
    raw.contatti_dgc.check("contatti_dgc", &mut f);
    let ((who, field), date, vaccine, paese, dose) = f.into_result((who, date, vaccine, paese, dose).all_some())?;
    let p = crate::routes::assistiti::person(&ts, &who, field)?;
    let id = format!("estero:{}", ts.ids.next());
    let now = ts.ctx.clock().now().to_string();
    let event = json!({
        "id": format!("dose:{id}@1"),
        "assistito": crate::dgc::assistito(&p),
        "contatti": raw.contatti_dgc,
        "vaccinazione": {"data": date, "aic": vaccine.aic_or_code(), "dose": dose, "tipo_dose": "ciclo_primario",
                         "paese": paese},
    });
    ts.store.transaction(|c| {
        crate::dgc::enqueue(c, &event, Some(&id))?;
        c.exec(
            "INSERT INTO vaccinazioni (id, fonte, assistito, regione, id_regionale, data, aic, farmaco, dose, tipo_dose,
                                       paese, contatti, record, stato, dgc, versione, received_at)
             VALUES (?1, 'estero', ?2, ?3, NULL, ?4, ?5, ?6, ?7, 'ciclo_primario', ?8, ?9, ?10, 'valida', 'in_coda', 1, ?11)",
            params![
                id,
                p.id,
                region,
                date.to_string(),
                vaccine.aic_or_code(),
                vaccine.farmaco,
                dose,
                paese,
                serde_json::to_string(&raw.contatti_dgc).unwrap_or_default(),
                String::from_utf8_lossy(&body),
                now
            ],
        )?;
        Ok::<_, StoreError>(())
    })?;
    ts.outbox.wake();
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "assistito": p.id, "farmaco": vaccine.farmaco, "ema": vaccine.ema, "dose": dose})),
    ))
}
