//! `/avr/v1/vaccinazioni`: vaccinators register doses; the AVR assigns the dose
//! number (GIAVA rules), keeps the dose and sends it to AVN from its outbox.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ecosim_core::config::SarDefect;
use ecosim_core::outbox::{self, ItemState};
use ecosim_core::problem::{ApiJson, Problem};
use ecosim_core::store::StoreError;
use ecosim_domain::regions::region_by_code;
use ecosim_domain::vaccination::{IdAssistito, NESSUNA_CONDIZIONE, Somministrazione, TipoDose};
use jiff::civil::Date;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Vaccinator, held_contacts};
use crate::avr::domain::request::{RawVaccinazione, refusal, validate};
use crate::avr::domain::rules::{self, Avviso, NewDose};
use crate::avr::knowledge::{self, Person};
use crate::avr::store;
use crate::outbox::Work;
use crate::state::Sar;

/// A dose as the AVR keeps it: as sent to AVN, or declared as given abroad.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum Record {
    /// Given abroad (it never goes to AVN).
    Abroad(Abroad),
    /// Given here, as AVN has it.
    Dose(Box<Somministrazione>),
}

impl Record {
    /// The same dose under the person's current code, as version `versione`.
    fn moved_to(self, id: &str, versione: u32) -> Self {
        match self {
            Self::Abroad(mut a) => {
                a.id_assistito.valore = id.to_owned();
                Self::Abroad(a)
            }
            Self::Dose(mut d) => {
                d.id_assistito.valore = id.to_owned();
                d.versione = versione;
                Self::Dose(d)
            }
        }
    }
}

/// A dose declared as given abroad, as the AVR keeps it (it never goes to AVN).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Abroad {
    estero: String,
    aic: String,
    data_somministrazione: Date,
    id_assistito: IdAssistito,
}

/// The answer to a dose registered.
#[derive(Debug, Serialize)]
pub(crate) struct Registered {
    id: String,
    assistito: String,
    numero_dose: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    numero_dose_proposto: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    forzato: Option<bool>,
    tipo_dose: TipoDose,
    #[serde(skip_serializing_if = "Option::is_none")]
    estero: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ema: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inviata_ad_avn: Option<bool>,
    avvisi: Vec<Avviso>,
}

/// The GIAVA rules `[sar] defects` (and `ecosim mutants`) switch off (never by default).
fn broken_rules(config: &ecosim_core::config::Config) -> rules::Broken {
    let sar = &config.sar;
    rules::Broken {
        additional_for_anyone: sar.has(SarDefect::Avr6b),
        booster_for_anyone: sar.has(SarDefect::Avr6c),
        non_ema_like_any: sar.has(SarDefect::Avr6d),
        no_age_rule: sar.has(SarDefect::Avr7),
        ignore_known: config.mutant("AVR-6a"),
        paediatric_only_to_11: config.mutant("AVR-7b"),
    }
}

/// Moves the doses and infections held under a person's obsolete codes to the
/// current one (AVR-2.1); moved doses go to AVN again as corrections.
fn move_doses(sar: &Sar, tx: &Connection, region: &str, p: &Person) -> rusqlite::Result<usize> {
    let mut moved = 0;
    if sar.ctx.config().mutant("AVR-2.1") {
        return Ok(0);
    }
    for old in &p.previous {
        for (id, record, versione) in store::doses_under(tx, region, old)? {
            let Ok(d) = serde_json::from_str::<Record>(&record) else { continue };
            let d = d.moved_to(&p.id, versione + 1);
            let text = serde_json::to_string(&d).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            store::move_dose(tx, &id, &p.id, &text, versione + 1)?;
            if !sar.ctx.config().mutant("AVR-2.1b") {
                enqueue_avn(tx, &id, versione + 1, matches!(d, Record::Abroad(_)))?;
            }
            moved += 1;
        }
        store::move_infections(tx, region, old, &p.id)?;
    }
    Ok(moved)
}

/// Queues version `versione` of dose `id` for AVN (doses given abroad stay in the
/// AVR: ASLs register them on Sistema TS).
fn enqueue_avn(tx: &Connection, id: &str, versione: u32, abroad: bool) -> rusqlite::Result<()> {
    if !abroad {
        outbox::enqueue(tx, &format!("{id}@{versione}"), &Work::Avn { id: id.to_owned() })?;
    }
    Ok(())
}

/// Whether the person had an infection before their first dose (AVR-3b).
fn infected_before(sar: &Sar, region: &str, p: &Person, first_dose: Option<Date>) -> Result<bool, StoreError> {
    let infections = sar.store.with(|c| store::infections(c, region, &p.id))?;
    // The defect counts an infection after the first dose too (AVR-3b broken).
    let any = sar.ctx.config().sar.has(SarDefect::Avr3b);
    Ok(infections
        .iter()
        .filter_map(|i| i.data_prelievo.parse::<Date>().ok())
        .any(|d| any || first_dose.is_none_or(|first| d < first)))
}

/// AVR-6a: a person gets at most one dose a day. A second registration for a day
/// that already has one (the AVR's own, AVN's mobility feed or Sistema TS's national
/// check) is a duplicate: it would take the next dose number and complete a cycle with
/// two doses given together. The operator corrects the dose already registered instead.
fn same_day_dose(vaccine: &str, fonte: &str, person: &str, date: Date) -> Problem {
    Problem::conflict(format!(
        "{person} already has a dose on {date} ({vaccine}, known from {fonte}): one dose a day; correct the dose \
         already registered instead"
    ))
    .with_field("data_somministrazione", format!("a dose on {date} is already registered for {person}"))
    .with_requirement("AVR-6a")
}

/// The same-day check on the doses read before the rules ran.
fn known_that_day(known: &[knowledge::KnownDose], person: &str, date: Date) -> Result<(), Problem> {
    let Some(held) = known.iter().find(|d| d.date == date) else { return Ok(()) };
    let fonte = match held.fonte {
        "avr" | "estero" => "this AVR",
        "mobilita" => "AVN's mobility feed",
        _ => "Sistema TS's national check",
    };
    Err(same_day_dose(held.vaccine.code, fonte, person, date))
}

/// The same-day check again inside the registering transaction: two operators
/// registering the same person at once both read no dose for the day (the reading
/// waits on Sistema TS and AVN); the second to commit finds the first's here.
fn none_of_ours_that_day(tx: &rusqlite::Connection, region: &str, person: &str, date: Date) -> Result<(), Problem> {
    let day = date.to_string();
    match store::own_doses(tx, region, person)?.into_iter().find(|d| d.data == day) {
        Some(d) => Err(same_day_dose(&d.aic, "this AVR", person, date)),
        None => Ok(()),
    }
}

/// `POST /avr/v1/vaccinazioni` (vaccinator account).
pub(crate) async fn create(
    State(sar): State<Arc<Sar>>,
    caller: Vaccinator,
    ApiJson(raw): ApiJson<RawVaccinazione>,
) -> Result<(StatusCode, Json<Registered>), Problem> {
    let region = caller.region.as_str();
    let req = validate(&raw, sar.ctx.clock().today(), &sar.ctx.config().sar)?;
    let mut avvisi: Vec<Avviso> = Vec::new();
    let person = knowledge::resolve(&sar, region, req.tipo, &req.valore, req.id_field, &mut avvisi).await?;
    let known = knowledge::doses(&sar, region, &person, &mut avvisi).await;
    known_that_day(&known, &person.id, req.date)?;
    let id = sar.dose_ids.next();
    let now = sar.ctx.clock().now().to_string();

    if let Some(paese) = &req.estero {
        // A dose declared as given abroad: part of the history the rules read.
        let record = Abroad {
            estero: paese.clone(),
            aic: req.vaccine.aic_or_code().to_owned(),
            data_somministrazione: req.date,
            id_assistito: IdAssistito { tipo: person.tipo, valore: person.id.clone() },
        };
        let n = u8::try_from(known.iter().filter(|d| d.date < req.date).count() + 1).unwrap_or(u8::MAX);
        let numero = raw.numero_dose_forzato.unwrap_or(n);
        let new = store::NewDose {
            id: &id,
            regione: region,
            vaccinatore: &caller.account.name,
            assistito: &person.id,
            tipo_id: person.tipo.as_str(),
            data: req.date.to_string(),
            aic: req.vaccine.aic_or_code(),
            dose: numero,
            tipo_dose: TipoDose::CicloPrimario.as_str(),
            proposto: n,
            forzature: 0,
            estero: Some(paese),
            record: serde_json::to_string(&record).map_err(|e| Problem::internal(e.to_string()))?,
            avvisi: "[]".into(),
            created_at: &now,
        };
        sar.store.transaction(|tx| {
            move_doses(&sar, tx, region, &person)?;
            none_of_ours_that_day(tx, region, &person.id, req.date)?;
            store::insert_dose(tx, &new)?;
            Ok::<_, Problem>(())
        })?;
        return Ok((
            StatusCode::CREATED,
            Json(Registered {
                id,
                assistito: person.id,
                numero_dose: numero,
                numero_dose_proposto: None,
                forzato: None,
                tipo_dose: TipoDose::CicloPrimario,
                estero: Some(paese.clone()),
                ema: Some(req.vaccine.ema),
                inviata_ad_avn: Some(false),
                avvisi,
            }),
        ));
    }

    let first_dose = known.first().map(|d| d.date);
    let new = NewDose {
        date: req.date,
        vaccine: req.vaccine,
        categoria: req.categoria,
        no_condition: req.condizione.eq_ignore_ascii_case(NESSUNA_CONDIZIONE),
        requested: raw.tipo_dose,
        forced_number: raw.numero_dose_forzato,
        forza: raw.forza,
        age: person.age_on(req.date),
        infected_before: infected_before(&sar, region, &person, first_dose)?,
        broken: broken_rules(sar.ctx.config()),
    };
    let assigned = rules::assign(&knowledge::as_known(&known), &new).map_err(refusal)?;
    avvisi.extend(assigned.avvisi.iter().cloned());
    let asl = match &person.asl {
        Some(asl) if person.region == region => asl.clone(),
        _ => region_by_code(region).map(|r| r.asl_code(0)).unwrap_or_default(),
    };
    let contatti_dgc = match &raw.contatti_dgc {
        Some(c) => c.clone(),
        None => held_contacts(&sar, region, &person.id)?.map(|(c, _)| c).unwrap_or_default(),
    };
    let dose = Somministrazione {
        id_regionale: id.clone(),
        id_assistito: IdAssistito { tipo: person.tipo, valore: person.id.clone() },
        regione_residenza: if person.region.is_empty() { region.to_owned() } else { person.region.clone() },
        regione_somministrazione: region.to_owned(),
        asl,
        struttura: req.struttura,
        data_somministrazione: req.date,
        ora: req.ora,
        aic: req.vaccine.aic_or_code().to_owned(),
        lotto: req.lotto,
        dose: assigned.numero,
        tipo_dose: assigned.tipo,
        categoria_rischio: req.categoria,
        condizione_sanitaria: req.condizione,
        via: req.via,
        sito: req.sito,
        modalita: "CO".into(),
        contatti_dgc,
        versione: 1,
    };
    let forced = raw.numero_dose_forzato.is_some_and(|n| n != assigned.proposto);
    let new = store::NewDose {
        id: &id,
        regione: region,
        vaccinatore: &caller.account.name,
        assistito: &person.id,
        tipo_id: person.tipo.as_str(),
        data: req.date.to_string(),
        aic: &dose.aic,
        dose: assigned.numero,
        tipo_dose: assigned.tipo.as_str(),
        proposto: assigned.proposto,
        forzature: i32::from(forced),
        estero: None,
        record: serde_json::to_string(&dose).map_err(|e| Problem::internal(e.to_string()))?,
        avvisi: serde_json::to_string(&avvisi).map_err(|e| Problem::internal(e.to_string()))?,
        created_at: &now,
    };
    // Contacts given with the dose are held for the next one (AVR-5c).
    let keep = raw.contatti_dgc.as_ref().filter(|c| c.cellulare.is_some() || c.email.is_some());
    let moved = sar.store.transaction(|tx| {
        let moved = move_doses(&sar, tx, region, &person)?;
        none_of_ours_that_day(tx, region, &person.id, req.date)?;
        if let Some(c) = keep {
            store::hold_contacts(tx, region, &person.id, c, &format!("vaccinazione {id}"), &now)?;
        }
        store::insert_dose(tx, &new)?;
        enqueue_avn(tx, &id, 1, false)?;
        Ok::<_, Problem>(moved)
    })?;
    if moved > 0 {
        avvisi.push(Avviso {
            regola: "AVR-2.1",
            messaggio: format!("{moved} dose/i spostate dal codice fiscale obsoleto a {}", person.id),
            message: format!("{moved} dose(s) moved from the obsolete codice fiscale to {}", person.id),
        });
    }
    sar.outbox.wake();
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            id,
            assistito: person.id,
            numero_dose: assigned.numero,
            numero_dose_proposto: Some(assigned.proposto),
            forzato: Some(forced),
            tipo_dose: assigned.tipo,
            estero: None,
            ema: None,
            inviata_ad_avn: None,
            avvisi,
        }),
    ))
}

/// `region`'s dose `id`, or 404.
fn load(sar: &Sar, region: &str, id: &str) -> Result<store::HeldDose, Problem> {
    sar.store
        .with(|c| store::dose(c, region, id))?
        .ok_or_else(|| Problem::not_found(format!("no dose {id} in region {region}'s AVR")))
}

/// A held record, as JSON.
fn record_of(held: &store::HeldDose, id: &str) -> Result<Record, Problem> {
    serde_json::from_str(&held.record).map_err(|e| Problem::internal(format!("dose {id} is stored unreadable: {e}")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NumeroDose {
    numero_dose: u8,
}

/// A warning in Italian and English.
#[derive(Debug, Serialize)]
struct Note {
    messaggio: &'static str,
    message: &'static str,
}

/// The answer to a forced dose number.
#[derive(Debug, Serialize)]
pub(crate) struct Forced {
    id: String,
    numero_dose: u8,
    numero_dose_precedente: u8,
    forzato: bool,
    versione: u32,
    gia_forzato: bool,
    requirement: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    avviso: Option<Note>,
}

/// `PUT /avr/v1/vaccinazioni/{id}/numero-dose`: any vaccinator of the region forces
/// the dose number (AVR-6a, GIAVA 6.2); recorded as forced, sent to AVN again as a
/// new version.
pub(crate) async fn force_number(
    State(sar): State<Arc<Sar>>,
    caller: Vaccinator,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NumeroDose>,
) -> Result<Json<Forced>, Problem> {
    if !(1..=9).contains(&req.numero_dose) {
        return Err(Problem::invalid_field("numero_dose", "must be between 1 and 9"));
    }
    let held = load(&sar, &caller.region, &id)?;
    let mut record = record_of(&held, &id)?;
    let versione = held.versione + 1;
    let abroad = matches!(record, Record::Abroad(_));
    if let Record::Dose(d) = &mut record {
        d.dose = req.numero_dose;
        d.versione = versione;
    }
    let text = serde_json::to_string(&record).map_err(|e| Problem::internal(e.to_string()))?;
    sar.store.transaction(|tx| {
        store::force_number(tx, &id, req.numero_dose, &text, versione)?;
        enqueue_avn(tx, &id, versione, abroad)?;
        Ok::<_, StoreError>(())
    })?;
    sar.outbox.wake();
    let again = held.forzature > 0;
    Ok(Json(Forced {
        id,
        numero_dose: req.numero_dose,
        numero_dose_precedente: held.dose,
        forzato: true,
        versione,
        gia_forzato: again,
        requirement: "AVR-6a",
        avviso: again.then_some(Note {
            messaggio: "il numero dose di questa somministrazione è stato già forzato in altra occasione",
            message: "this dose's number had already been forced before",
        }),
    }))
}

/// A dose as the AVR shows it.
#[derive(Debug, Serialize)]
pub(crate) struct DoseView {
    id: String,
    numero_dose: u8,
    numero_dose_proposto: u8,
    forzato: bool,
    forzature: i64,
    versione: u32,
    somministrazione: Record,
    /// The warnings given at registration, as stored.
    avvisi: Value,
    /// `consegnata`, `in_attesa`, `errore` or `non_inviata` (abroad).
    avn: &'static str,
    consegna: Option<ItemState>,
}

/// `GET /avr/v1/vaccinazioni/{id}`: the dose, its number (forced or not) and its
/// delivery to AVN.
pub(crate) async fn get_one(
    State(sar): State<Arc<Sar>>,
    caller: Vaccinator,
    Path(id): Path<String>,
) -> Result<Json<DoseView>, Problem> {
    let held = load(&sar, &caller.region, &id)?;
    let somministrazione = record_of(&held, &id)?;
    let key = format!("{id}@{}", held.versione);
    let consegna = sar.store.with(|c| outbox::item_state(c, &Work::Avn { id: id.clone() }, &key))?;
    let avn = match (&held.estero, &consegna) {
        (Some(_), _) => "non_inviata",
        (None, Some(s)) if s.state == "done" => "consegnata",
        (None, Some(s)) if s.state == "failed" => "errore",
        _ => "in_attesa",
    };
    Ok(Json(DoseView {
        id,
        numero_dose: held.dose,
        numero_dose_proposto: held.proposto,
        forzato: held.forzature > 0,
        forzature: held.forzature,
        versione: held.versione,
        somministrazione,
        avvisi: serde_json::from_str(&held.avvisi).unwrap_or(Value::Null),
        avn,
        consegna,
    }))
}
