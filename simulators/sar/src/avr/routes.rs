//! `/avr/v1/...`: vaccinators register doses; the AVR assigns the dose number, keeps
//! the dose and sends it to AVN from its outbox.

use ecosim_domain::validation::AllSome;
use std::sync::Arc;

use crate::outbox::Work;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ecosim_core::accounts::{Caller, Role};
use ecosim_core::config::{SarConfig, SarDefect};
use ecosim_core::outbox;
use ecosim_core::problem::{Fields, Problem, from_json};
use ecosim_core::store::{CachedSql, StoreError};
use ecosim_domain::regions::region_by_code;
use ecosim_domain::vaccination::{
    CategoriaRischio, ContattiDgc, IdAssistito, NESSUNA_CONDIZIONE, Somministrazione, TipoDose, TipoId,
    check_avr_mobile, check_time,
};
use ecosim_domain::vaccines::{self, Vaccine};
use jiff::civil::Date;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::knowledge::{self, Person};
use super::rules::{self, Avviso, NewDose, Refusal};
use crate::state::Sar;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVaccinazione {
    codice_fiscale: Option<String>,
    id_assistito: Option<IdAssistito>,
    data_somministrazione: Option<String>,
    ora: Option<String>,
    aic: Option<String>,
    lotto: Option<String>,
    categoria_rischio: Option<CategoriaRischio>,
    condizione_sanitaria: Option<String>,
    via: Option<String>,
    sito: Option<String>,
    struttura: Option<String>,
    /// Absent: the green-pass contacts the AVR holds for the person (AVR-5c);
    /// `{}`: none.
    contatti_dgc: Option<ContattiDgc>,
    conferma_contatti: Option<bool>,
    tipo_dose: Option<TipoDose>,
    numero_dose_forzato: Option<u8>,
    #[serde(default)]
    forza: bool,
    estero: Option<Estero>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Estero {
    paese: String,
}

/// A 422 for a broken rule, in Italian and English, naming the field.
pub(crate) fn refusal(r: Refusal) -> Problem {
    Problem::unprocessable(r.message.clone())
        .with_field(r.field, r.message)
        .with_requirement(r.regola)
        .with_extension("regola", r.regola)
        .with_extension("messaggio", r.messaggio)
}

/// The validated request.
struct Request {
    tipo: TipoId,
    valore: String,
    id_field: &'static str,
    date: Date,
    ora: String,
    vaccine: &'static Vaccine,
    lotto: String,
    categoria: CategoriaRischio,
    condizione: String,
    via: String,
    sito: String,
    struttura: String,
    estero: Option<String>,
}

fn validate(raw: &RawVaccinazione, today: Date, defects: &SarConfig) -> Result<Request, Problem> {
    let mut f = Fields::new();
    let who = match (&raw.codice_fiscale, &raw.id_assistito) {
        (Some(cf), None) => {
            f.check("codice_fiscale", ecosim_domain::codes::CodiceFiscale::parse(cf));
            Some((TipoId::Cf, cf.clone(), "codice_fiscale"))
        }
        (None, Some(id)) => {
            ecosim_domain::vaccination::check_id(id, "id_assistito", &mut f);
            Some((id.tipo, id.valore.clone(), "id_assistito.valore"))
        }
        _ => {
            f.error("codice_fiscale", "give exactly one of codice_fiscale and id_assistito");
            None
        }
    };
    let date = f.date("data_somministrazione", &raw.data_somministrazione);
    if date.is_some_and(|d| d > today) {
        f.error("data_somministrazione", "is in the future: register a dose when it is given");
    }
    let estero = raw.estero.as_ref().map(|e| e.paese.clone());
    if let Some(p) = &estero
        && !(p.len() == 2 && p.bytes().all(|b| b.is_ascii_uppercase()) && p != "IT")
    {
        f.error("estero.paese", "must be an ISO 3166 alpha-2 country code other than IT");
    }
    let in_italy = estero.is_none();
    let ora = match &raw.ora {
        Some(t) => f.check("ora", check_time(t)).map(|()| t.clone()),
        None if in_italy => {
            f.error("ora", "is required");
            None
        }
        None => Some("00:00".into()),
    };
    let vaccine = f.required("aic", &raw.aic).and_then(|a| {
        let v = vaccines::find(a);
        if v.is_none() {
            f.error("aic", format!("unknown vaccine {a:?}; known: {}", vaccines::known_codes()));
        }
        v
    });
    let lotto = f.text("lotto", raw.lotto.as_deref(), in_italy, 32);
    let categoria = match raw.categoria_rischio {
        Some(c) => Some(c),
        None if in_italy => {
            f.error("categoria_rischio", "is required");
            None
        }
        None => Some(CategoriaRischio::Altro),
    };
    let condizione = f.text("condizione_sanitaria", raw.condizione_sanitaria.as_deref(), in_italy, 64);
    let via = f.text("via", raw.via.as_deref(), in_italy, 16);
    let sito = f.text("sito", raw.sito.as_deref(), in_italy, 32);
    let struttura = f.text("struttura", raw.struttura.as_deref(), in_italy, 64);
    let given = raw.contatti_dgc.clone().unwrap_or_default();
    if let Some(e) = &given.email {
        f.check("contatti_dgc.email", ecosim_domain::codes::Email::parse(e));
    }
    if raw.numero_dose_forzato.is_some_and(|n| !(1..=9).contains(&n)) {
        f.error("numero_dose_forzato", "must be between 1 and 9");
    }
    let ((tipo, valore, id_field), date, ora, vaccine, categoria) =
        f.into_result((who, date, ora, vaccine, categoria).all_some())?;
    // AVR-5b before AVR-5a: a malformed number cannot be confirmed.
    if let Some(m) = &given.cellulare
        && let Err(why) = check_avr_mobile(m)
        && !defects.has(SarDefect::Avr5b)
    {
        return Err(refusal(Refusal {
            regola: "AVR-5b",
            field: "contatti_dgc.cellulare",
            messaggio: "il numero di cellulare ammette solo cifre, con un eventuale '+' iniziale: togliere spazi e \
                        separatori"
                .into(),
            message: why,
        }));
    }
    if in_italy && raw.conferma_contatti != Some(true) && !defects.has(SarDefect::Avr5a) {
        return Err(refusal(Refusal {
            regola: "AVR-5a",
            field: "conferma_contatti",
            messaggio: "è necessario confermare i dati di contatto per la certificazione verde, o la loro assenza \
                        (conferma_contatti: true)"
                .into(),
            message: "confirm the green-pass contacts, or that there are none (conferma_contatti: true)".into(),
        }));
    }
    Ok(Request {
        tipo,
        valore,
        id_field,
        date,
        ora,
        vaccine,
        lotto: lotto.unwrap_or_else(|| "ESTERO".into()),
        categoria,
        condizione: condizione.unwrap_or_else(|| NESSUNA_CONDIZIONE.into()),
        via: via.unwrap_or_else(|| "IM".into()),
        sito: sito.unwrap_or_else(|| "ND".into()),
        struttura: struttura.unwrap_or_else(|| "ESTERO".into()),
        estero,
    })
}

/// Moves the doses and infections held under a person's obsolete codes to the
/// current one (AVR-2.1); moved doses go to AVN again as corrections.
fn move_doses(tx: &Connection, region: &str, p: &Person) -> rusqlite::Result<usize> {
    let mut moved = 0;
    for old in &p.previous {
        let rows: Vec<(String, String, u32)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT id, record, versione FROM vaccinazioni WHERE regione = ?1 AND assistito = ?2",
            )?;
            stmt.query_map(params![region, old], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        for (id, record, versione) in rows {
            let mut d: Value = serde_json::from_str(&record).unwrap_or(Value::Null);
            d["id_assistito"]["valore"] = Value::String(p.id.clone());
            d["versione"] = json!(versione + 1);
            tx.exec(
                "UPDATE vaccinazioni SET assistito = ?2, record = ?3, versione = ?4 WHERE id = ?1",
                params![id, p.id, d.to_string(), versione + 1],
            )?;
            enqueue_avn(tx, &id, versione + 1, &d)?;
            moved += 1;
        }
        tx.exec(
            "UPDATE infezioni SET assistito = ?3 WHERE regione = ?1 AND assistito = ?2",
            params![region, old, p.id],
        )?;
    }
    Ok(moved)
}

fn enqueue_avn(tx: &Connection, id: &str, versione: u32, record: &Value) -> rusqlite::Result<()> {
    // Doses given abroad stay in the AVR (ASLs register them on Sistema TS).
    if record.get("estero").is_none() {
        outbox::enqueue(tx, &format!("{id}@{versione}"), &Work::Avn { id: id.to_owned() })?;
    }
    Ok(())
}

fn infected_before(sar: &Sar, region: &str, p: &Person, first_dose: Option<Date>) -> Result<bool, StoreError> {
    let dates: Vec<String> = sar.store.with(|c| {
        let mut stmt = c.prepare_cached("SELECT data_prelievo FROM infezioni WHERE regione = ?1 AND assistito = ?2")?;
        stmt.query_map(params![region, p.id], |r| r.get(0))?.collect()
    })?;
    // The defect counts an infection after the first dose too (AVR-3b broken).
    let any = sar.ctx.config().sar.has(SarDefect::Avr3b);
    Ok(dates.iter().filter_map(|d| d.parse::<Date>().ok()).any(|d| any || first_dose.is_none_or(|first| d < first)))
}

/// `POST /avr/v1/vaccinazioni` (vaccinator account).
pub(crate) async fn create(
    State(sar): State<Arc<Sar>>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_role(&[Role::Vaccinatore])?;
    let region = caller.region()?.to_owned();
    let raw: RawVaccinazione = from_json(&body)?;
    let req = validate(&raw, sar.ctx.clock().today(), &sar.ctx.config().sar)?;
    let mut avvisi: Vec<Avviso> = Vec::new();
    let person = knowledge::resolve(&sar, &region, req.tipo, &req.valore, req.id_field, &mut avvisi).await?;
    let known = knowledge::doses(&sar, &region, &person, &mut avvisi).await;
    let first_dose = known.first().map(|d| d.date);
    let id = sar.dose_ids.next();
    let now = sar.ctx.clock().now().to_string();

    if let Some(paese) = &req.estero {
        // A dose declared as given abroad: part of the history the rules read.
        let record = json!({"estero": paese, "aic": req.vaccine.aic_or_code(), "data_somministrazione": req.date,
                            "id_assistito": {"tipo": person.tipo, "valore": person.id}});
        let n = u8::try_from(known.iter().filter(|d| d.date < req.date).count() + 1).unwrap_or(u8::MAX);
        let numero = raw.numero_dose_forzato.unwrap_or(n);
        sar.store.transaction(|tx| {
            move_doses(tx, &region, &person)?;
            tx.exec(
                "INSERT INTO vaccinazioni (id, regione, vaccinatore, assistito, tipo_id, data, aic, dose, tipo_dose,
                     proposto, forzature, estero, record, versione, avvisi, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'ciclo_primario', ?9, 0, ?10, ?11, 1, '[]', ?12)",
                params![
                    id,
                    region,
                    caller.0.name,
                    person.id,
                    person.tipo.as_str(),
                    req.date.to_string(),
                    req.vaccine.aic_or_code(),
                    numero,
                    n,
                    paese,
                    record.to_string(),
                    now
                ],
            )?;
            Ok::<_, StoreError>(())
        })?;
        return Ok((
            StatusCode::CREATED,
            Json(json!({
                "id": id, "assistito": person.id, "numero_dose": numero, "tipo_dose": "ciclo_primario",
                "estero": paese, "ema": req.vaccine.ema, "inviata_ad_avn": false, "avvisi": avvisi,
            })),
        ));
    }

    let infected = infected_before(&sar, &region, &person, first_dose)?;
    let new = NewDose {
        date: req.date,
        vaccine: req.vaccine,
        categoria: req.categoria,
        no_condition: req.condizione.eq_ignore_ascii_case(NESSUNA_CONDIZIONE),
        requested: raw.tipo_dose,
        forced_number: raw.numero_dose_forzato,
        forza: raw.forza,
        age: person.age_on(req.date),
        infected_before: infected,
        broken: broken_rules(&sar.ctx.config().sar),
    };
    let assigned = rules::assign(&knowledge::as_known(&known), &new).map_err(refusal)?;
    avvisi.extend(assigned.avvisi.iter().cloned());
    let asl = match &person.asl {
        Some(asl) if person.region == region => asl.clone(),
        _ => region_by_code(&region).map(|r| r.asl_code(0)).unwrap_or_default(),
    };
    let dose = Somministrazione {
        id_regionale: id.clone(),
        id_assistito: IdAssistito { tipo: person.tipo, valore: person.id.clone() },
        regione_residenza: if person.region.is_empty() { region.clone() } else { person.region.clone() },
        regione_somministrazione: region.clone(),
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
        contatti_dgc: match &raw.contatti_dgc {
            Some(c) => c.clone(),
            None => held_contacts(&sar, &region, &person.id)?.map(|(c, _)| c).unwrap_or_default(),
        },
        versione: 1,
    };
    let record = serde_json::to_value(&dose).map_err(|e| Problem::internal(e.to_string()))?;
    let forced = raw.numero_dose_forzato.is_some_and(|n| n != assigned.proposto);
    let avvisi_json = serde_json::to_string(&avvisi).unwrap_or_default();
    let keep = raw.contatti_dgc.as_ref().filter(|c| c.cellulare.is_some() || c.email.is_some());
    let moved = sar.store.transaction(|tx| {
        let moved = move_doses(tx, &region, &person)?;
        if let Some(c) = keep.filter(|_| raw.estero.is_none()) {
            hold_contacts(
                tx,
                &region,
                &person.id,
                c,
                &format!("vaccinazione {id}"),
                &sar.ctx.clock().now().to_string(),
            )?;
        }
        tx.exec(
            "INSERT INTO vaccinazioni (id, regione, vaccinatore, assistito, tipo_id, data, aic, dose, tipo_dose,
                 proposto, forzature, estero, record, versione, avvisi, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, NULL, ?12, 1, ?13, ?14)",
            params![
                id,
                region,
                caller.0.name,
                person.id,
                person.tipo.as_str(),
                req.date.to_string(),
                dose.aic,
                assigned.numero,
                assigned.tipo.as_str(),
                assigned.proposto,
                i32::from(forced),
                record.to_string(),
                avvisi_json,
                now
            ],
        )?;
        enqueue_avn(tx, &id, 1, &record)?;
        Ok::<_, StoreError>(moved)
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
        Json(json!({
            "id": id, "assistito": person.id, "numero_dose": assigned.numero, "numero_dose_proposto": assigned.proposto,
            "forzato": forced, "tipo_dose": assigned.tipo, "avvisi": avvisi,
        })),
    ))
}

/// The stored dose `id` of `region`.
fn load(sar: &Sar, region: &str, id: &str) -> Result<(Value, u32, u8, i64, Option<String>), Problem> {
    let row = sar.store.with(|c| {
        c.row(
            "SELECT record, versione, dose, forzature, estero FROM vaccinazioni WHERE id = ?1 AND regione = ?2",
            params![id, region],
            |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()
    })?;
    let Some((record, versione, dose, forzature, estero)) = row else {
        return Err(Problem::not_found(format!("no dose {id} in region {region}'s AVR")));
    };
    Ok((serde_json::from_str(&record).unwrap_or(Value::Null), versione, dose, forzature, estero))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NumeroDose {
    numero_dose: u8,
}

/// `PUT /avr/v1/vaccinazioni/{id}/numero-dose`: any vaccinator of the region forces
/// the dose number (AVR-6a, GIAVA 6.2); recorded as forced, sent to AVN again as a
/// new version.
pub(crate) async fn force_number(
    State(sar): State<Arc<Sar>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    caller.require_role(&[Role::Vaccinatore])?;
    let region = caller.region()?.to_owned();
    let req: NumeroDose = from_json(&body)?;
    if !(1..=9).contains(&req.numero_dose) {
        return Err(Problem::invalid_field("numero_dose", "must be between 1 and 9"));
    }
    let (mut record, versione, before, forzature, _) = load(&sar, &region, &id)?;
    let versione = versione + 1;
    if record.get("estero").is_none() {
        record["dose"] = json!(req.numero_dose);
        record["versione"] = json!(versione);
    }
    sar.store.transaction(|tx| {
        tx.exec(
            "UPDATE vaccinazioni SET dose = ?2, record = ?3, versione = ?4, forzature = forzature + 1 WHERE id = ?1",
            params![id, req.numero_dose, record.to_string(), versione],
        )?;
        enqueue_avn(tx, &id, versione, &record)?;
        Ok::<_, StoreError>(())
    })?;
    sar.outbox.wake();
    let mut answer = json!({
        "id": id, "numero_dose": req.numero_dose, "numero_dose_precedente": before, "forzato": true,
        "versione": versione, "gia_forzato": forzature > 0, "requirement": "AVR-6a",
    });
    if forzature > 0 {
        answer["avviso"] = json!({
            "messaggio": "il numero dose di questa somministrazione è stato già forzato in altra occasione",
            "message": "this dose's number had already been forced before",
        });
    }
    Ok(Json(answer))
}

/// `GET /avr/v1/vaccinazioni/{id}`: the dose, its number (forced or not) and its
/// delivery to AVN.
pub(crate) async fn get_one(
    State(sar): State<Arc<Sar>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    caller.require_role(&[Role::Vaccinatore])?;
    let region = caller.region()?.to_owned();
    let (record, versione, dose, forzature, estero) = load(&sar, &region, &id)?;
    let (proposto, avvisi): (u8, String) = sar.store.with(|c| {
        c.row("SELECT proposto, avvisi FROM vaccinazioni WHERE id = ?1", [&id], |r| Ok((r.get(0)?, r.get(1)?)))
    })?;
    let delivery =
        sar.store.with(|c| outbox::item_state(c, &Work::Avn { id: id.clone() }, &format!("{id}@{versione}")))?;
    let avn = match (&estero, &delivery) {
        (Some(_), _) => "non_inviata",
        (None, Some(s)) if s.state == "done" => "consegnata",
        (None, Some(s)) if s.state == "failed" => "errore",
        _ => "in_attesa",
    };
    Ok(Json(json!({
        "id": id, "numero_dose": dose, "numero_dose_proposto": proposto, "forzato": forzature > 0,
        "forzature": forzature, "versione": versione, "somministrazione": record,
        "avvisi": serde_json::from_str::<Value>(&avvisi).unwrap_or(Value::Null),
        "avn": avn, "consegna": delivery,
    })))
}

/// `GET /avr/v1/assistiti/{cf}/vaccinazioni`: the doses the region's AVR knows:
/// its own, doses declared as given abroad, doses AVN reported from other regions.
pub(crate) async fn person_doses(
    State(sar): State<Arc<Sar>>,
    caller: Caller,
    Path(cf): Path<String>,
) -> Result<Json<Value>, Problem> {
    let mut avvisi = Vec::new();
    let (region, person) = vaccinator_and_person(&sar, &caller, &cf, &mut avvisi).await?;
    knowledge::refresh_mobility(&sar, &region, &person, &mut avvisi).await;
    let mut local = Vec::new();
    sar.store.with(|c| {
        let mut own = c.prepare_cached(
            "SELECT id, data, aic, dose, tipo_dose, estero, forzature FROM vaccinazioni
             WHERE regione = ?1 AND assistito = ?2 ORDER BY data",
        )?;
        let mut mob = c.prepare_cached(
            "SELECT id, data, aic, dose, regione_somministrazione FROM mobilita WHERE regione = ?1 AND assistito = ?2",
        )?;
        for id in person.ids() {
            for row in own.query_map(params![region, id], |r| {
                let estero: Option<String> = r.get(5)?;
                Ok(json!({"id": r.get::<_, String>(0)?, "data": r.get::<_, String>(1)?, "aic": r.get::<_, String>(2)?,
                          "dose": r.get::<_, u8>(3)?, "tipo_dose": r.get::<_, String>(4)?,
                          "fonte": if estero.is_some() { "estero" } else { "avr" }, "paese": estero,
                          "forzato": r.get::<_, i64>(6)? > 0, "regione": region}))
            })? {
                local.push(row?);
            }
            for row in mob.query_map(params![region, id], |r| {
                Ok(json!({"id": r.get::<_, String>(0)?, "data": r.get::<_, String>(1)?, "aic": r.get::<_, String>(2)?,
                          "dose": r.get::<_, u8>(3)?, "fonte": "mobilita", "regione": r.get::<_, String>(4)?}))
            })? {
                local.push(row?);
            }
        }
        Ok(())
    })?;
    local.sort_by(|a, b| a["data"].as_str().cmp(&b["data"].as_str()));
    Ok(Json(json!({"assistito": person.id, "vaccinazioni": local, "avvisi": avvisi})))
}

/// The person a path names: a codice fiscale or a Sistema TS identifier.
async fn resolve_path(sar: &Sar, region: &str, id: &str, avvisi: &mut Vec<Avviso>) -> Result<Person, Problem> {
    let tipo = if ecosim_domain::vaccination::check_ts_id(id.trim()).is_ok() { TipoId::Ts } else { TipoId::Cf };
    knowledge::resolve(sar, region, tipo, id, "cf", avvisi).await
}

/// `GET /avr/v1/assistiti/{cf}/verifica-nazionale`: Sistema TS's "anti-SARS-CoV-2 in
/// all regions" check and the dose number it suggests for a dose today (AVR-1.3d).
pub(crate) async fn national_check(
    State(sar): State<Arc<Sar>>,
    caller: Caller,
    Path(cf): Path<String>,
) -> Result<Json<Value>, Problem> {
    let mut avvisi = Vec::new();
    let (region, person) = vaccinator_and_person(&sar, &caller, &cf, &mut avvisi).await?;
    let known = knowledge::doses(&sar, &region, &person, &mut avvisi).await;
    let national: Vec<Value> =
        known.iter().filter(|d| d.fonte == "sistema_ts").map(knowledge::KnownDose::view).collect();
    Ok(Json(json!({
        "assistito": person.id,
        "situazione_nazionale": national,
        "dosi_note": known.iter().map(knowledge::KnownDose::view).collect::<Vec<_>>(),
        "numero_dose_proposto": known.len() + 1,
        "avvisi": avvisi,
        "requirement": "AVR-1.3d",
    })))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInfezione {
    data_prelievo: Option<String>,
    data_esito: Option<String>,
    data_guarigione: Option<String>,
    luogo: Option<String>,
}

/// `POST /avr/v1/assistiti/{cf}/infezioni`: a prior infection (AVR-3, GIAVA 3.2).
/// Sample date <= positive result date < recovery date; an infection after the first
/// dose is not registered (the recovery certificate covers it, GIAVA 3.2.2).
pub(crate) async fn add_infection(
    State(sar): State<Arc<Sar>>,
    caller: Caller,
    Path(cf): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), Problem> {
    caller.require_role(&[Role::Vaccinatore])?;
    let region = caller.region()?.to_owned();
    let raw: RawInfezione = from_json(&body)?;
    let mut f = Fields::new();
    let prelievo = f.date("data_prelievo", &raw.data_prelievo);
    let esito = f.date("data_esito", &raw.data_esito);
    let guarigione = match &raw.data_guarigione {
        None => None,
        Some(_) => f.date("data_guarigione", &raw.data_guarigione),
    };
    let luogo = raw.luogo.clone().unwrap_or_else(|| "regione".into());
    if !["regione", "altra_regione", "estero"].contains(&luogo.as_str()) {
        f.error("luogo", "must be regione, altra_regione or estero");
    }
    let (prelievo, esito) = f.into_result((prelievo, esito).all_some())?;
    let today = sar.ctx.clock().today();
    let broken = |field: &'static str, it: String, en: String| {
        refusal(Refusal { regola: "AVR-3", field, messaggio: it, message: en })
    };
    if esito > today || prelievo > today {
        return Err(broken("data_esito", "la data è nel futuro".into(), "the date is in the future".into()));
    }
    if prelievo > esito {
        return Err(broken(
            "data_prelievo",
            "la data del prelievo deve essere antecedente o pari alla data dell'esito positivo".into(),
            "the sample date must be on or before the positive result date".into(),
        ));
    }
    if let Some(g) = guarigione
        && g <= esito
    {
        return Err(broken(
            "data_guarigione",
            "la data di guarigione deve essere successiva alla data dell'esito".into(),
            "the recovery date must be after the result date".into(),
        ));
    }
    let mut avvisi = Vec::new();
    let person = resolve_path(&sar, &region, &cf, &mut avvisi).await?;
    let known = knowledge::doses(&sar, &region, &person, &mut avvisi).await;
    if let Some(first) = known.first().filter(|d| d.date <= prelievo)
        && !sar.ctx.config().sar.has(SarDefect::Avr3b)
    {
        return Err(broken(
            "data_prelievo",
            format!(
                "infezione successiva alla prima somministrazione ({}): non va registrata; il green pass seguirà \
                 il certificato di guarigione",
                first.date
            ),
            format!(
                "an infection after the first dose ({}) is not registered; the recovery certificate covers it",
                first.date
            ),
        ));
    }
    let id = sar.dose_ids.next();
    let now = sar.ctx.clock().now().to_string();
    sar.store.with(|c| {
        c.exec(
            "INSERT INTO infezioni (id, regione, assistito, data_prelievo, data_esito, data_guarigione, luogo, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                region,
                person.id,
                prelievo.to_string(),
                esito.to_string(),
                guarigione.map(|g| g.to_string()),
                luogo,
                now
            ],
        )
    })?;
    Ok((StatusCode::CREATED, Json(json!({"id": id, "assistito": person.id, "requirement": "AVR-3"}))))
}

/// `GET /avr/v1/assistiti/{cf}/infezioni`: the infections the region registered.
pub(crate) async fn infections(
    State(sar): State<Arc<Sar>>,
    caller: Caller,
    Path(cf): Path<String>,
) -> Result<Json<Value>, Problem> {
    let mut avvisi = Vec::new();
    let (region, person) = vaccinator_and_person(&sar, &caller, &cf, &mut avvisi).await?;
    let list = sar.store.with(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT id, data_prelievo, data_esito, data_guarigione, luogo FROM infezioni
             WHERE regione = ?1 AND assistito = ?2 ORDER BY data_prelievo",
        )?;
        stmt.query_map(params![region, person.id], |r| {
            Ok(json!({"id": r.get::<_, String>(0)?, "data_prelievo": r.get::<_, String>(1)?,
                      "data_esito": r.get::<_, String>(2)?, "data_guarigione": r.get::<_, Option<String>>(3)?,
                      "luogo": r.get::<_, String>(4)?}))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(Json(json!({"assistito": person.id, "infezioni": list})))
}

/// The GIAVA rules `[sar] defects` switch off (never by default).
fn broken_rules(config: &SarConfig) -> rules::Broken {
    rules::Broken {
        additional_for_anyone: config.has(SarDefect::Avr6b),
        booster_for_anyone: config.has(SarDefect::Avr6c),
        non_ema_like_any: config.has(SarDefect::Avr6d),
        no_age_rule: config.has(SarDefect::Avr7),
    }
}

/// The vaccinator's region and the person at `cf` (the prelude of the routes under
/// `/avr/v1/assistiti/{cf}`); lookup notes go to `avvisi`.
async fn vaccinator_and_person(
    sar: &Sar,
    caller: &Caller,
    cf: &str,
    avvisi: &mut Vec<Avviso>,
) -> Result<(String, Person), Problem> {
    caller.require_role(&[Role::Vaccinatore])?;
    let region = caller.region()?.to_owned();
    let person = resolve_path(sar, &region, cf, avvisi).await?;
    Ok((region, person))
}

/// The green-pass contacts held for `person` and where they came from.
fn held_contacts(sar: &Sar, region: &str, person: &str) -> Result<Option<(ContattiDgc, String)>, StoreError> {
    if sar.ctx.config().sar.has(SarDefect::Avr5c) {
        // The defect: green-pass contacts are not kept, so never proposed.
        return Ok(None);
    }
    sar.store.with(|c| {
        c.row(
            "SELECT cellulare, email, fonte FROM contatti_dgc WHERE regione = ?1 AND assistito = ?2",
            params![region, person],
            |r| Ok((ContattiDgc { cellulare: r.get(0)?, email: r.get(1)? }, r.get::<_, String>(2)?)),
        )
        .optional()
    })
}

fn hold_contacts(
    tx: &Connection,
    region: &str,
    person: &str,
    c: &ContattiDgc,
    fonte: &str,
    now: &str,
) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO contatti_dgc (regione, assistito, cellulare, email, fonte, aggiornato_il)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (regione, assistito) DO UPDATE SET cellulare = ?3, email = ?4, fonte = ?5, aggiornato_il = ?6",
        params![region, person, c.cellulare, c.email, fonte, now],
    )
    .map(|_| ())
}

/// `GET /avr/v1/assistiti/{cf}/contatti-dgc`: the green-pass contacts the AVR holds,
/// apart from any other contact, proposed for the next COVID dose (AVR-5c).
pub(crate) async fn green_pass_contacts(
    State(sar): State<Arc<Sar>>,
    caller: Caller,
    Path(cf): Path<String>,
) -> Result<Json<Value>, Problem> {
    let (region, person) = vaccinator_and_person(&sar, &caller, &cf, &mut Vec::new()).await?;
    match held_contacts(&sar, &region, &person.id)? {
        Some((c, fonte)) => Ok(Json(json!({
            "assistito": person.id, "cellulare": c.cellulare, "email": c.email, "fonte": fonte, "requirement": "AVR-5c",
        }))),
        None => {
            Err(Problem::not_found(format!("no green-pass contacts held for {}", person.id)).with_requirement("AVR-5c"))
        }
    }
}

/// `PUT /avr/v1/assistiti/{cf}/contatti-dgc`: the citizen changes them (AVR-5c, 5b).
pub(crate) async fn update_green_pass_contacts(
    State(sar): State<Arc<Sar>>,
    caller: Caller,
    Path(cf): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, Problem> {
    caller.require_role(&[Role::Vaccinatore])?;
    let region = caller.region()?.to_owned();
    let c: ContattiDgc = from_json(&body)?;
    let mut f = Fields::new();
    if let Some(e) = &c.email {
        f.check("email", ecosim_domain::codes::Email::parse(e));
    }
    if let Some(m) = &c.cellulare
        && let Err(why) = check_avr_mobile(m)
    {
        f.error("cellulare", &why);
    }
    f.finish()?;
    let person = resolve_path(&sar, &region, &cf, &mut Vec::new()).await?;
    let now = sar.ctx.clock().now().to_string();
    sar.store.transaction(|tx| {
        hold_contacts(tx, &region, &person.id, &c, "richiesta dell'assistito", &now).map_err(StoreError::from)
    })?;
    Ok(Json(json!({"assistito": person.id, "cellulare": c.cellulare, "email": c.email, "requirement": "AVR-5c"})))
}

/// `DELETE /avr/v1/assistiti/{cf}/contatti-dgc`: the citizen has them deleted (AVR-5c).
pub(crate) async fn delete_green_pass_contacts(
    State(sar): State<Arc<Sar>>,
    caller: Caller,
    Path(cf): Path<String>,
) -> Result<StatusCode, Problem> {
    let (region, person) = vaccinator_and_person(&sar, &caller, &cf, &mut Vec::new()).await?;
    sar.store.transaction(|tx| {
        tx.exec("DELETE FROM contatti_dgc WHERE regione = ?1 AND assistito = ?2", params![region, person.id])
            .map_err(StoreError::from)
    })?;
    Ok(StatusCode::NO_CONTENT)
}
