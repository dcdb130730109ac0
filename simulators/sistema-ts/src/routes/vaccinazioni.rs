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
use axum::extract::{Query, State};
use axum::http::StatusCode;
use ecosim_core::accounts::{Authorised, Regional, roles};
use ecosim_core::problem::{ApiJson, Fields, Problem};
use ecosim_core::store::StoreError;
use ecosim_domain::green_pass::{Evento, Vaccinazione};
use ecosim_domain::vaccination::{ContattiDgc, IdAssistito, Somministrazione, TipoId, check_id};
use ecosim_domain::vaccines;
use jiff::civil::Date;
use rusqlite::Connection;
use serde::Serialize;

use crate::domain::registry::{Lookup, Person};
use crate::domain::vaccinazioni::{Held, expected_dose};
use crate::state::SistemaTs;
use crate::store;
use crate::store::vaccinazioni::{Anomaly, DoseRow, NewDose};

impl SistemaTs {
    /// The doses held for `p` (under any of their codes), oldest first; with
    /// `abroad`, doses given abroad too.
    pub(crate) fn doses_of(&self, c: &Connection, p: &Person, abroad: bool) -> rusqlite::Result<Vec<DoseRow>> {
        let mut out = Vec::new();
        for id in p.ids() {
            out.extend(store::vaccinazioni::doses_of(c, id)?.into_iter().filter(|d| abroad || d.fonte == "avn"));
        }
        out.sort_by(|a, b| a.data.cmp(&b.data));
        Ok(out)
    }

    fn held_except(&self, c: &Connection, p: &Person, except: &str) -> rusqlite::Result<Vec<Held>> {
        let mut held = Vec::new();
        for id in p.ids() {
            for (data, aic) in store::vaccinazioni::others_of(c, id, except)? {
                if let (Ok(date), Some(vaccine)) = (data.parse::<Date>(), vaccines::find(&aic)) {
                    held.push(Held { date, vaccine });
                }
            }
        }
        Ok(held)
    }
}

/// An anomaly of a dose, in the answer to AVN.
#[derive(Debug, Clone, Serialize)]
struct Found {
    tipo: &'static str,
    dettaglio: String,
}

/// What became of one dose of a batch.
#[derive(Debug, Clone, Serialize)]
struct Outcome {
    id_regionale: String,
    /// `valida` or `anomala`.
    esito: String,
    versione: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    gia_ricevuta: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    anomalie: Vec<Found>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requirement: Option<&'static str>,
}

/// The answer to a batch.
#[derive(Debug, Serialize)]
pub(crate) struct BatchAnswer {
    ricevute: usize,
    anomale: usize,
    esiti: Vec<Outcome>,
}

/// The answer to a dose given abroad.
#[derive(Debug, Serialize)]
pub(crate) struct AbroadAnswer {
    id: String,
    assistito: String,
    farmaco: &'static str,
    ema: bool,
    dose: u8,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Batch {
    vaccinazioni: Vec<Somministrazione>,
}

/// `POST /ts/v1/avn/vaccinazioni` (AVN's service account): a batch of doses. Each is
/// validated; a malformed dose fails the batch (400, naming `vaccinazioni[i].field`)
/// so AVN can fix its forwarding. Well-formed doses are kept, checked against the
/// registry and the doses held, and answered one by one.
pub(crate) async fn from_avn(
    State(ts): State<Arc<SistemaTs>>,
    _caller: Authorised<roles::Avn>,
    // Malformed JSON is named by its path (`vaccinazioni[2].ora`); the field rules too.
    ApiJson(Batch { vaccinazioni: doses }): ApiJson<Batch>,
) -> Result<Json<BatchAnswer>, Problem> {
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
    // Checked in date order, so a back-dated earlier dose in the same batch counts
    // before the later one; answered in the order sent.
    let mut order: Vec<usize> = (0..doses.len()).collect();
    order.sort_by_key(|&i| doses[i].data_somministrazione);
    let esiti = ts.store.transaction(|tx| {
        let mut esiti = vec![None; doses.len()];
        for &i in &order {
            esiti[i] = Some(accept(&ts, tx, &doses[i], &now)?);
        }
        Ok::<_, StoreError>(esiti.into_iter().flatten().collect::<Vec<_>>())
    })?;
    ts.outbox.wake();
    let anomale = esiti.iter().filter(|e| e.esito == "anomala").count();
    Ok(Json(BatchAnswer { ricevute: esiti.len(), anomale, esiti }))
}

fn accept(ts: &SistemaTs, tx: &Connection, d: &Somministrazione, now: &str) -> rusqlite::Result<Outcome> {
    let id = format!("avn:{}:{}", d.regione_somministrazione, d.id_regionale);
    if let Some((v, stato)) = store::vaccinazioni::held(tx, &id)?
        && v >= d.versione
    {
        return Ok(Outcome {
            id_regionale: d.id_regionale.clone(),
            esito: stato,
            versione: v,
            gia_ricevuta: true,
            anomalie: Vec::new(),
            requirement: None,
        });
    }
    let mut anomalies: Vec<(&'static str, String)> = Vec::new();
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
    if ts.ctx.config().mutant("AVR-TS-CHECK") {
        anomalies.clear();
    }
    let valid = anomalies.is_empty();
    let vaccine = d.vaccine();
    let aic = vaccine.map(|v| v.aic_or_code()).unwrap_or(&d.aic);
    store::vaccinazioni::upsert(
        tx,
        &NewDose {
            id: &id,
            fonte: "avn",
            assistito: &assistito,
            regione: &d.regione_somministrazione,
            id_regionale: Some(&d.id_regionale),
            data: d.data_somministrazione.to_string(),
            aic,
            farmaco: vaccine.map(|v| v.farmaco).unwrap_or_default(),
            dose: d.dose,
            tipo_dose: d.tipo_dose.as_str(),
            paese: None,
            contatti: serde_json::to_string(&d.contatti_dgc).unwrap_or_default(),
            record: serde_json::to_string(d).unwrap_or_default(),
            stato: if valid { "valida" } else { "anomala" },
            dgc: if valid { "in_coda" } else { "sospesa" },
            versione: d.versione,
            received_at: now,
        },
    )?;
    store::vaccinazioni::resolve_anomalies(tx, &id, now)?;
    for (kind, detail) in &anomalies {
        store::vaccinazioni::insert_anomaly(tx, &d.regione_somministrazione, &id, &d.id_regionale, kind, detail, now)?;
    }
    if valid && let Lookup::Found(p) = &person {
        let event = Evento {
            id: format!("dose:{id}@{}", d.versione),
            assistito: crate::outbox::dgc::assistito(p),
            contatti: crate::outbox::dgc::contatti(&d.contatti_dgc),
            vaccinazione: Some(Vaccinazione {
                data: d.data_somministrazione,
                aic: aic.to_owned(),
                dose: d.dose,
                tipo_dose: d.tipo_dose.as_str().to_owned(),
                paese: "IT".into(),
            }),
            test: None,
            guarigione: None,
        };
        crate::outbox::dgc::enqueue(tx, &event, Some(&id))?;
    }
    Ok(Outcome {
        id_regionale: d.id_regionale.clone(),
        esito: if valid { "valida" } else { "anomala" }.to_owned(),
        versione: d.versione,
        gia_ricevuta: false,
        anomalie: anomalies.into_iter().map(|(tipo, dettaglio)| Found { tipo, dettaglio }).collect(),
        requirement: (!valid).then_some("AVR-TS-CHECK"),
    })
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
    caller: Regional<roles::RegistryReader>,
    Query(q): Query<AnomalieQuery>,
) -> Result<Json<Vec<Anomaly>>, Problem> {
    let region = caller.region;
    let only_open = q.aperte.unwrap_or(false);
    Ok(Json(ts.store.with(|c| store::vaccinazioni::anomalies(c, &region, only_open))?))
}

#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAbroad {
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
    caller: Regional<roles::Asl>,
    ApiJson(raw): ApiJson<RawAbroad>,
) -> Result<(StatusCode, Json<AbroadAnswer>), Problem> {
    let region = caller.region;
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
    let event = Evento {
        id: format!("dose:{id}@1"),
        assistito: crate::outbox::dgc::assistito(&p),
        contatti: crate::outbox::dgc::contatti(&raw.contatti_dgc),
        vaccinazione: Some(Vaccinazione {
            data: date,
            aic: vaccine.aic_or_code().to_owned(),
            dose,
            tipo_dose: "ciclo_primario".into(),
            paese: paese.clone(),
        }),
        test: None,
        guarigione: None,
    };
    ts.store.transaction(|c| {
        crate::outbox::dgc::enqueue(c, &event, Some(&id))?;
        store::vaccinazioni::upsert(
            c,
            &NewDose {
                id: &id,
                fonte: "estero",
                assistito: &p.id,
                regione: &region,
                id_regionale: None,
                data: date.to_string(),
                aic: vaccine.aic_or_code(),
                farmaco: vaccine.farmaco,
                dose,
                tipo_dose: "ciclo_primario",
                paese: Some(&paese),
                contatti: serde_json::to_string(&raw.contatti_dgc).unwrap_or_default(),
                record: serde_json::to_string(&raw).unwrap_or_default(),
                stato: "valida",
                dgc: "in_coda",
                versione: 1,
                received_at: &now,
            },
        )?;
        Ok::<_, StoreError>(())
    })?;
    ts.outbox.wake();
    Ok((
        StatusCode::CREATED,
        Json(AbroadAnswer { id, assistito: p.id, farmaco: vaccine.farmaco, ema: vaccine.ema, dose }),
    ))
}
