//! What the AVR knows of a person: who they are (Sistema TS's registry, with imports
//! for people of other regions and moves for changed codes) and which doses they had
//! (its own, AVN's mobility feed, Sistema TS's national check).

use ecosim_core::Problem;
use ecosim_core::client::Method;
use ecosim_core::store::StoreError;
use ecosim_domain::vaccination::{IdAssistito, TipoId};
use ecosim_domain::vaccines;
use jiff::civil::Date;
use serde::Deserialize;

use super::domain::rules::{Avviso, Known};
use super::store;
use crate::state::Sar;

/// A person as the AVR resolved them.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    /// Current identifier (codice fiscale or TS identifier).
    pub(crate) id: String,
    pub(crate) tipo: TipoId,
    pub(crate) birth_date: Date,
    /// Region of residence.
    pub(crate) region: String,
    pub(crate) asl: Option<String>,
    /// Obsolete codes that mean this person (AVR-2.1).
    pub(crate) previous: Vec<String>,
}

impl Person {
    /// Every code of the person: current first.
    pub(crate) fn ids(&self) -> Vec<String> {
        let mut ids = vec![self.id.clone()];
        ids.extend(self.previous.iter().cloned());
        ids
    }

    pub(crate) fn age_on(&self, day: Date) -> i16 {
        ecosim_domain::population::age_on(self.birth_date, day)
    }
}

fn avviso(regola: &'static str, it: String, en: String) -> Avviso {
    Avviso { regola, messaggio: it, message: en }
}

/// Finds the person on Sistema TS (as the region's `sar-R` account). A person of
/// another region is imported into the AVR (AVR-2.2); an obsolete codice fiscale
/// resolves to the current one (AVR-2.1). When Sistema TS cannot be reached, a
/// codice fiscale is looked up in the regional copy of the registry.
pub(crate) async fn resolve(
    sar: &Sar,
    region: &str,
    tipo: TipoId,
    valore: &str,
    field: &str,
    avvisi: &mut Vec<Avviso>,
) -> Result<Person, Problem> {
    if !matches!(tipo, TipoId::Cf | TipoId::Ts) {
        return Err(Problem::invalid_field(
            "id_assistito.tipo",
            "the reference AVR identifies people by codice fiscale (CF) or Sistema TS identifier (TS)",
        ));
    }
    let asked = valore.trim().to_ascii_uppercase();
    if tipo == TipoId::Ts && sar.ctx.config().mutant("AVR-2.3") {
        return Err(Problem::unprocessable(format!("{asked}: only codici fiscali are accepted"))
            .with_field(field, "a codice fiscale is required")
            .with_requirement("AVR-2.3"));
    }
    let account = sar.ctx.accounts().get(&format!("sar-{region}")).cloned();
    let Some(account) = account else {
        return Err(Problem::internal(format!("no account sar-{region} to reach Sistema TS with")));
    };
    let res = sar.ts.as_account(&account).request(Method::GET, &format!("/ts/v1/assistiti/{asked}")).send().await;
    let text = match res {
        Ok(r) if r.status().is_success() => r.text().await.map_err(|e| Problem::internal(e.to_string()))?,
        Ok(r) if r.status().as_u16() == 404 => {
            let requirement = if tipo == TipoId::Ts { "AVR-2.3" } else { "AVR-2.2" };
            return Err(Problem::unprocessable(format!("{asked} is not in the national registry (Sistema TS)"))
                .with_field(field, "not in the national registry")
                .with_requirement(requirement));
        }
        Ok(r) if r.status().as_u16() == 400 => {
            return Err(Problem::invalid_field(field, format!("Sistema TS refused the code: {}", r.status())));
        }
        other => {
            let why = match other {
                Ok(r) => r.status().to_string(),
                Err(e) => e.to_string(),
            };
            return offline(sar, &asked, tipo, field, &why, avvisi);
        }
    };
    let record: RegistryEntry = serde_json::from_str(&text)
        .map_err(|e| Problem::internal(format!("Sistema TS answered an unreadable registry entry: {e}")))?;
    let id = record.codice_fiscale.or(record.identificativo_ts).unwrap_or_else(|| asked.clone());
    let mut previous = record.codici_fiscali_precedenti;
    if id != asked && !previous.contains(&asked) {
        previous.push(asked.clone());
    }
    let person = Person {
        id,
        tipo,
        birth_date: record.data_nascita.parse().unwrap_or(Date::MIN),
        region: record.regione,
        asl: record.asl,
        previous,
    };
    if person.region != region && sar.ctx.config().mutant("AVR-2.2") {
        return Err(Problem::unprocessable(format!("{asked} is a resident of region {}", person.region))
            .with_field(field, "not a resident of this region")
            .with_requirement("AVR-2.2"));
    }
    if person.region != region {
        let now = sar.ctx.clock().now().to_string();
        let added = sar.store.with(|c| store::import_person(c, region, &person.id, &text, &now))?;
        if added {
            avvisi.push(avviso(
                "AVR-2.2",
                format!("assistito di un'altra regione ({}) importato dall'anagrafe nazionale", person.region),
                format!("a person of another region ({}) imported from the national registry", person.region),
            ));
        }
    }
    Ok(person)
}

fn offline(
    sar: &Sar,
    asked: &str,
    tipo: TipoId,
    field: &str,
    why: &str,
    avvisi: &mut Vec<Avviso>,
) -> Result<Person, Problem> {
    let citizen = (tipo == TipoId::Cf)
        .then(|| ecosim_domain::codes::CodiceFiscale::parse(asked).ok())
        .flatten()
        .and_then(|cf| sar.ctx.population().by_codice_fiscale(&cf));
    let Some(c) = citizen else {
        return Err(Problem::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "upstream-unavailable",
            format!("Sistema TS cannot be reached ({why}) and {asked} is not in the regional registry: retry"),
        )
        .with_field(field, "cannot be checked now"));
    };
    avvisi.push(avviso(
        "AVR-1.3d",
        format!("Sistema TS non raggiungibile ({why}): dati dall'anagrafe regionale, verifica nazionale non fatta"),
        format!("Sistema TS unreachable ({why}): registry data from the regional copy, no national check"),
    ));
    Ok(Person {
        id: c.codice_fiscale().to_string(),
        tipo,
        birth_date: c.birth_date(),
        region: c.region().code.to_owned(),
        asl: Some(c.asl()),
        previous: Vec::new(),
    })
}

/// A registry entry from Sistema TS, as far as the AVR needs it.
#[derive(Debug, Deserialize)]
struct RegistryEntry {
    codice_fiscale: Option<String>,
    identificativo_ts: Option<String>,
    #[serde(default)]
    codici_fiscali_precedenti: Vec<String>,
    data_nascita: String,
    #[serde(default)]
    regione: String,
    asl: Option<String>,
}

/// A dose of Sistema TS's national check, as far as the AVR needs it.
#[derive(Debug, Deserialize)]
struct NationalDose {
    data: String,
    aic: String,
    dose: Option<u8>,
    regione: Option<String>,
}

/// AVN's mobility feed, as far as the AVR needs it.
#[derive(Debug, Deserialize)]
struct Feed {
    somministrazioni: Vec<FeedItem>,
}

/// A dose of AVN's feed.
#[derive(Debug, Deserialize)]
struct FeedItem {
    regione_somministrazione: String,
    id_regionale: String,
    id_assistito: IdAssistito,
    data_somministrazione: String,
    aic: String,
    dose: u8,
    #[serde(default = "first_version")]
    versione: u32,
}

fn first_version() -> u32 {
    1
}

/// A dose known for a person, with where it came from.
#[derive(Debug, Clone)]
pub(crate) struct KnownDose {
    pub(crate) date: Date,
    pub(crate) vaccine: &'static vaccines::Vaccine,
    pub(crate) dose: Option<u8>,
    pub(crate) fonte: &'static str,
    pub(crate) regione: Option<String>,
}

/// For a resident of `region`, pulls AVN's mobility feed (a warning if AVN cannot be
/// reached); says whether `p` is a resident, i.e. whether the feed concerns them.
pub(crate) async fn refresh_mobility(sar: &Sar, region: &str, p: &Person, avvisi: &mut Vec<Avviso>) -> bool {
    if p.region != region {
        return false;
    }
    if let Err(why) = sync_mobility(sar, region).await {
        avvisi.push(avviso(
            "AVR-1.3c",
            format!("AVN non raggiungibile ({why}): dosi in mobilità non aggiornate"),
            format!("AVN unreachable ({why}): doses given elsewhere not refreshed"),
        ));
    }
    true
}

/// Every dose known for `p` in the AVR of `region`: its own (with doses declared as
/// given abroad), AVN's mobility feed (residents only) and Sistema TS's national
/// check; the same dose from two sources counts once (same day, same vaccine).
pub(crate) async fn doses(sar: &Sar, region: &str, p: &Person, avvisi: &mut Vec<Avviso>) -> Vec<KnownDose> {
    let mut all = own(sar, region, p).unwrap_or_default();
    if refresh_mobility(sar, region, p, avvisi).await {
        all.extend(mobility(sar, region, p).unwrap_or_default());
    }
    match national(sar, region, p).await {
        Ok(list) => all.extend(list),
        Err(why) => avvisi.push(avviso(
            "AVR-1.3d",
            format!("verifica nazionale non disponibile ({why})"),
            format!("national check unavailable ({why})"),
        )),
    }
    let mut seen = std::collections::HashSet::new();
    all.sort_by_key(|d| d.date);
    all.retain(|d| seen.insert((d.date, d.vaccine.code)));
    all
}

pub(crate) fn as_known(doses: &[KnownDose]) -> Vec<Known> {
    doses.iter().map(|d| Known { date: d.date, vaccine: d.vaccine }).collect()
}

fn own(sar: &Sar, region: &str, p: &Person) -> Result<Vec<KnownDose>, StoreError> {
    let mut out = Vec::new();
    for id in p.ids() {
        for d in sar.store.with(|c| store::own_doses(c, region, &id))? {
            if let (Ok(date), Some(vaccine)) = (d.data.parse(), vaccines::find(&d.aic)) {
                let fonte = if d.estero.is_some() { "estero" } else { "avr" };
                let regione = d.estero.or_else(|| Some(region.to_owned()));
                out.push(KnownDose { date, vaccine, dose: Some(d.dose), fonte, regione });
            }
        }
    }
    Ok(out)
}

fn mobility(sar: &Sar, region: &str, p: &Person) -> Result<Vec<KnownDose>, StoreError> {
    let mut out = Vec::new();
    for id in p.ids() {
        for d in sar.store.with(|c| store::mobility_doses(c, region, &id))? {
            if let (Ok(date), Some(vaccine)) = (d.data.parse(), vaccines::find(&d.aic)) {
                let regione = Some(d.regione_somministrazione);
                out.push(KnownDose { date, vaccine, dose: Some(d.dose), fonte: "mobilita", regione });
            }
        }
    }
    Ok(out)
}

async fn national(sar: &Sar, region: &str, p: &Person) -> Result<Vec<KnownDose>, String> {
    let account = sar.ctx.accounts().get(&format!("sar-{region}")).cloned().ok_or("no sar account")?;
    let res = sar
        .ts
        .as_account(&account)
        .request(Method::GET, &format!("/ts/v1/assistiti/{}/vaccinazioni", p.id))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(res.status().to_string());
    }
    let list: Vec<NationalDose> = res.json().await.map_err(|e| e.to_string())?;
    Ok(list
        .into_iter()
        .filter_map(|d| {
            Some(KnownDose {
                date: d.data.parse().ok()?,
                vaccine: vaccines::find(&d.aic)?,
                dose: d.dose,
                fonte: "sistema_ts",
                regione: d.regione,
            })
        })
        .collect())
}

/// Pulls AVN's mobility feed for `region` from the last pull on (AVR-1.3c).
async fn sync_mobility(sar: &Sar, region: &str) -> Result<usize, String> {
    let account = sar.ctx.accounts().get(&format!("avr-{region}")).cloned().ok_or("no avr account")?;
    let cursor = sar.store.with(|c| store::mobility_cursor(c, region)).map_err(|e| e.to_string())?;
    let mut req = sar.avn.as_account(&account).request(Method::GET, &format!("/avn/v1/regioni/{region}/mobilita"));
    if let Some(dal) = &cursor {
        req = req.query(&[("dal", dal)]);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(res.status().to_string());
    }
    let feed: Feed = res.json().await.map_err(|e| e.to_string())?;
    let today = sar.ctx.clock().today().to_string();
    let list = feed.somministrazioni;
    sar.store
        .transaction(|tx| {
            for d in &list {
                let kept = store::FeedDose {
                    id: format!("{}:{}", d.regione_somministrazione, d.id_regionale),
                    assistito: &d.id_assistito.valore,
                    data: d.data_somministrazione.clone(),
                    aic: &d.aic,
                    dose: d.dose,
                    regione_somministrazione: &d.regione_somministrazione,
                    versione: d.versione,
                };
                store::keep_mobility(tx, region, &kept)?;
            }
            store::set_mobility_cursor(tx, region, &today)?;
            Ok::<_, StoreError>(())
        })
        .map_err(|e| e.to_string())?;
    Ok(list.len())
}
