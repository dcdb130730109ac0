//! `/avr/v1/assistiti/{cf}/...`: what the region's AVR knows of a person: their
//! doses, Sistema TS's national check, prior infections, green-pass contacts.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ecosim_core::config::SarDefect;
use ecosim_core::problem::{ApiJson, Fields, Problem};
use ecosim_core::store::StoreError;
use ecosim_domain::vaccination::{ContattiDgc, check_avr_mobile};
use ecosim_domain::validation::AllSome;
use serde::{Deserialize, Serialize};

use super::{Vaccinator, held_contacts, person_at};
use crate::avr::domain::request::refusal;
use crate::avr::domain::rules::{Avviso, Refusal};
use crate::avr::knowledge::{self, KnownDose};
use crate::avr::store::{self, Infection};
use crate::state::Sar;

/// A dose of a person's list.
#[derive(Debug, Serialize)]
pub(crate) struct ListedDose {
    id: String,
    data: String,
    aic: String,
    dose: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    tipo_dose: Option<String>,
    /// `avr`, `estero` or `mobilita`.
    fonte: &'static str,
    /// The country, for the region's own doses (`null` unless given abroad).
    #[serde(skip_serializing_if = "Option::is_none")]
    paese: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    forzato: Option<bool>,
    regione: String,
}

/// A person's doses as the region's AVR knows them.
#[derive(Debug, Serialize)]
pub(crate) struct PersonDoses {
    assistito: String,
    vaccinazioni: Vec<ListedDose>,
    avvisi: Vec<Avviso>,
}

/// `GET /avr/v1/assistiti/{cf}/vaccinazioni`: the doses the region's AVR knows:
/// its own, doses declared as given abroad, doses AVN reported from other regions.
pub(crate) async fn doses(
    State(sar): State<Arc<Sar>>,
    caller: Vaccinator,
    Path(cf): Path<String>,
) -> Result<Json<PersonDoses>, Problem> {
    let region = caller.region.as_str();
    let mut avvisi = Vec::new();
    let person = person_at(&sar, region, &cf, &mut avvisi).await?;
    knowledge::refresh_mobility(&sar, region, &person, &mut avvisi).await;
    let mut list = Vec::new();
    for id in person.ids() {
        for d in sar.store.with(|c| store::own_doses(c, region, &id))? {
            list.push(ListedDose {
                id: d.id,
                data: d.data,
                aic: d.aic,
                dose: d.dose,
                tipo_dose: Some(d.tipo_dose),
                fonte: if d.estero.is_some() { "estero" } else { "avr" },
                paese: Some(d.estero.clone()),
                forzato: Some(d.forzature > 0),
                regione: region.to_owned(),
            });
        }
        for d in sar.store.with(|c| store::mobility_doses(c, region, &id))? {
            list.push(ListedDose {
                id: d.id,
                data: d.data,
                aic: d.aic,
                dose: d.dose,
                tipo_dose: None,
                fonte: "mobilita",
                paese: None,
                forzato: None,
                regione: d.regione_somministrazione,
            });
        }
    }
    list.sort_by(|a, b| a.data.cmp(&b.data));
    Ok(Json(PersonDoses { assistito: person.id, vaccinazioni: list, avvisi }))
}

/// A dose the AVR knows of, by source.
#[derive(Debug, Serialize)]
pub(crate) struct KnownView {
    data: jiff::civil::Date,
    aic: &'static str,
    farmaco: &'static str,
    dose: Option<u8>,
    fonte: &'static str,
    regione: Option<String>,
}

impl From<&KnownDose> for KnownView {
    fn from(d: &KnownDose) -> Self {
        Self {
            data: d.date,
            aic: d.vaccine.aic_or_code(),
            farmaco: d.vaccine.farmaco,
            dose: d.dose,
            fonte: d.fonte,
            regione: d.regione.clone(),
        }
    }
}

/// Sistema TS's national check and what the AVR makes of it.
#[derive(Debug, Serialize)]
pub(crate) struct NationalCheck {
    assistito: String,
    situazione_nazionale: Vec<KnownView>,
    dosi_note: Vec<KnownView>,
    numero_dose_proposto: usize,
    avvisi: Vec<Avviso>,
    requirement: &'static str,
}

/// `GET /avr/v1/assistiti/{cf}/verifica-nazionale`: Sistema TS's "anti-SARS-CoV-2 in
/// all regions" check and the dose number it suggests for a dose today (AVR-1.3d).
pub(crate) async fn national_check(
    State(sar): State<Arc<Sar>>,
    caller: Vaccinator,
    Path(cf): Path<String>,
) -> Result<Json<NationalCheck>, Problem> {
    let region = caller.region.as_str();
    let mut avvisi = Vec::new();
    let person = person_at(&sar, region, &cf, &mut avvisi).await?;
    let known = knowledge::doses(&sar, region, &person, &mut avvisi).await;
    Ok(Json(NationalCheck {
        assistito: person.id,
        situazione_nazionale: known.iter().filter(|d| d.fonte == "sistema_ts").map(KnownView::from).collect(),
        dosi_note: known.iter().map(KnownView::from).collect(),
        numero_dose_proposto: known.len() + 1,
        avvisi,
        requirement: "AVR-1.3d",
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInfezione {
    data_prelievo: Option<String>,
    data_esito: Option<String>,
    data_guarigione: Option<String>,
    luogo: Option<String>,
}

/// The answer to an infection registered.
#[derive(Debug, Serialize)]
pub(crate) struct InfectionRegistered {
    id: String,
    assistito: String,
    requirement: &'static str,
}

/// `POST /avr/v1/assistiti/{cf}/infezioni`: a prior infection (AVR-3, GIAVA 3.2).
/// Sample date <= positive result date < recovery date; an infection after the first
/// dose is not registered (the recovery certificate covers it, GIAVA 3.2.2).
pub(crate) async fn add_infection(
    State(sar): State<Arc<Sar>>,
    caller: Vaccinator,
    Path(cf): Path<String>,
    ApiJson(raw): ApiJson<RawInfezione>,
) -> Result<(StatusCode, Json<InfectionRegistered>), Problem> {
    let region = caller.region.as_str();
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
    let mutant = sar.ctx.config().mutant("AVR-3");
    if !mutant && (esito > today || prelievo > today) {
        return Err(broken("data_esito", "la data è nel futuro".into(), "the date is in the future".into()));
    }
    if prelievo > esito && !mutant {
        return Err(broken(
            "data_prelievo",
            "la data del prelievo deve essere antecedente o pari alla data dell'esito positivo".into(),
            "the sample date must be on or before the positive result date".into(),
        ));
    }
    if let Some(g) = guarigione
        && g <= esito
        && !mutant
    {
        return Err(broken(
            "data_guarigione",
            "la data di guarigione deve essere successiva alla data dell'esito".into(),
            "the recovery date must be after the result date".into(),
        ));
    }
    let mut avvisi = Vec::new();
    let person = person_at(&sar, region, &cf, &mut avvisi).await?;
    let known = knowledge::doses(&sar, region, &person, &mut avvisi).await;
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
    let infection = Infection {
        id: sar.dose_ids.next(),
        data_prelievo: prelievo.to_string(),
        data_esito: esito.to_string(),
        data_guarigione: guarigione.map(|g| g.to_string()),
        luogo,
    };
    let now = sar.ctx.clock().now().to_string();
    sar.store.with(|c| store::insert_infection(c, region, &person.id, &infection, &now))?;
    Ok((
        StatusCode::CREATED,
        Json(InfectionRegistered { id: infection.id, assistito: person.id, requirement: "AVR-3" }),
    ))
}

/// A person's infections.
#[derive(Debug, Serialize)]
pub(crate) struct Infections {
    assistito: String,
    infezioni: Vec<Infection>,
}

/// `GET /avr/v1/assistiti/{cf}/infezioni`: the infections the region registered.
pub(crate) async fn infections(
    State(sar): State<Arc<Sar>>,
    caller: Vaccinator,
    Path(cf): Path<String>,
) -> Result<Json<Infections>, Problem> {
    let region = caller.region.as_str();
    let person = person_at(&sar, region, &cf, &mut Vec::new()).await?;
    let infezioni = sar.store.with(|c| store::infections(c, region, &person.id))?;
    Ok(Json(Infections { assistito: person.id, infezioni }))
}

/// The green-pass contacts held for a person.
#[derive(Debug, Serialize)]
pub(crate) struct Contacts {
    assistito: String,
    cellulare: Option<String>,
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fonte: Option<String>,
    requirement: &'static str,
}

/// `GET /avr/v1/assistiti/{cf}/contatti-dgc`: the green-pass contacts the AVR holds,
/// apart from any other contact, proposed for the next COVID dose (AVR-5c).
pub(crate) async fn contacts(
    State(sar): State<Arc<Sar>>,
    caller: Vaccinator,
    Path(cf): Path<String>,
) -> Result<Json<Contacts>, Problem> {
    let region = caller.region.as_str();
    let person = person_at(&sar, region, &cf, &mut Vec::new()).await?;
    match held_contacts(&sar, region, &person.id)? {
        Some((c, fonte)) => Ok(Json(Contacts {
            assistito: person.id,
            cellulare: c.cellulare,
            email: c.email,
            fonte: Some(fonte),
            requirement: "AVR-5c",
        })),
        None => {
            Err(Problem::not_found(format!("no green-pass contacts held for {}", person.id)).with_requirement("AVR-5c"))
        }
    }
}

/// `PUT /avr/v1/assistiti/{cf}/contatti-dgc`: the citizen changes them (AVR-5c, 5b).
pub(crate) async fn update_contacts(
    State(sar): State<Arc<Sar>>,
    caller: Vaccinator,
    Path(cf): Path<String>,
    ApiJson(c): ApiJson<ContattiDgc>,
) -> Result<Json<Contacts>, Problem> {
    let region = caller.region.as_str();
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
    let person = person_at(&sar, region, &cf, &mut Vec::new()).await?;
    let now = sar.ctx.clock().now().to_string();
    sar.store.transaction(|tx| {
        store::hold_contacts(tx, region, &person.id, &c, "richiesta dell'assistito", &now).map_err(StoreError::from)
    })?;
    Ok(Json(Contacts {
        assistito: person.id,
        cellulare: c.cellulare,
        email: c.email,
        fonte: None,
        requirement: "AVR-5c",
    }))
}

/// `DELETE /avr/v1/assistiti/{cf}/contatti-dgc`: the citizen has them deleted (AVR-5c).
pub(crate) async fn delete_contacts(
    State(sar): State<Arc<Sar>>,
    caller: Vaccinator,
    Path(cf): Path<String>,
) -> Result<StatusCode, Problem> {
    let region = caller.region.as_str();
    let person = person_at(&sar, region, &cf, &mut Vec::new()).await?;
    sar.store.transaction(|tx| store::delete_contacts(tx, region, &person.id).map_err(StoreError::from))?;
    Ok(StatusCode::NO_CONTENT)
}
