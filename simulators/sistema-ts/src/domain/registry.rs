//! The national registry (anagrafe) as Sistema TS answers it: the seeded population,
//! plus what changed since it was generated.
//!
//! - **Codice fiscale variations** (AVR-2.1, GIAVA 2.1): `POST
//!   /ts/v1/anagrafe/variazioni-cf` gives a citizen a new code (the registry's own
//!   update, as when the Agenzia delle Entrate corrects a birthplace); the old code
//!   stays known as obsolete and every lookup answers with the current one.
//! - **People outside the SSN** (AVR-2.3, GIAVA 2.3): `POST /ts/v1/assistiti/stranieri`
//!   (ASL account) issues a Sistema TS identifier (`TS` + 14 digits, ecosim's form: the
//!   real one is not public).

use jiff::civil::Date;
use rusqlite::Connection;
use serde::Serialize;

use ecosim_domain::codes::{CodiceFiscale, PersonData, Sex, birthplaces};
use ecosim_domain::vaccination::check_ts_id;

use crate::state::SistemaTs;
use crate::store::{self, registry::ForeignerRow};

/// A person as the registry knows them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Person {
    /// The current identifier (codice fiscale, or the TS identifier).
    pub(crate) id: String,
    /// `CF` or `TS`.
    pub(crate) tipo: &'static str,
    pub(crate) birth_date: Date,
    /// Region of residence (for people outside the SSN, the ASL's region that registered them).
    pub(crate) region: String,
    /// The registry entry as `GET /ts/v1/assistiti/{id}` shows it.
    pub(crate) record: Anagrafica,
    /// Obsolete codes that now mean this person.
    pub(crate) previous: Vec<String>,
    /// Last 8 digits of the health card (never shown; PN-DGC checks them at retrieval).
    pub(crate) card_last8: Option<String>,
}

impl Person {
    /// Every code of the person, current first, then the obsolete ones (doses may be
    /// held under any of them).
    pub(crate) fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.previous.iter().map(String::as_str))
    }
}

/// A registry entry, as `GET /ts/v1/assistiti/{id}` shows it (never the card number).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Anagrafica {
    /// The current codice fiscale; `null` for people outside the SSN.
    pub(crate) codice_fiscale: Option<String>,
    /// The Sistema TS identifier of a person outside the SSN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) identificativo_ts: Option<String>,
    /// `CF` or `TS`.
    pub(crate) tipo_identificativo: &'static str,
    pub(crate) cognome: String,
    pub(crate) nome: String,
    /// `M` or `F`.
    pub(crate) sesso: Sex,
    pub(crate) data_nascita: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) comune_nascita: Option<String>,
    pub(crate) regione: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) asl: Option<String>,
    /// The health card's expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) scadenza_ts: Option<String>,
    pub(crate) iscritto_ssn: bool,
    /// Obsolete codes that now mean this person (AVR-2.1).
    pub(crate) codici_fiscali_precedenti: Vec<String>,
    /// The obsolete code asked for, when the answer is under the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) codice_fiscale_richiesto: Option<String>,
}

/// Why a lookup found nobody.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lookup {
    Found(Box<Person>),
    /// Not a codice fiscale nor a TS identifier.
    Malformed(String),
    Unknown,
}

impl SistemaTs {
    /// Finds `id` (a codice fiscale, current or obsolete, or a TS identifier).
    pub(crate) fn lookup(&self, conn: &Connection, id: &str) -> rusqlite::Result<Lookup> {
        let id = id.trim().to_ascii_uppercase();
        if check_ts_id(&id).is_ok() {
            return self.foreigner(conn, &id);
        }
        let cf = match CodiceFiscale::parse(&id) {
            Ok(cf) => cf,
            Err(e) => return Ok(Lookup::Malformed(e.to_string())),
        };
        // The population knows the code a person was generated with; a variation maps
        // it to the current one.
        let changed_to = store::registry::changed_to(conn, cf.as_str())?;
        let changed_from = store::registry::changed_from(conn, cf.as_str())?;
        let (generated, current) = match (changed_to, changed_from) {
            (Some(new), _) => (cf.as_str().to_owned(), new),
            (None, Some(old)) => (old, cf.as_str().to_owned()),
            (None, None) => (cf.as_str().to_owned(), cf.as_str().to_owned()),
        };
        let Some(citizen) =
            CodiceFiscale::parse(&generated).ok().and_then(|g| self.ctx.population().by_codice_fiscale(&g))
        else {
            return Ok(Lookup::Unknown);
        };
        let previous = if generated == current { Vec::new() } else { vec![generated] };
        let r = citizen.record();
        let record = Anagrafica {
            codice_fiscale: Some(current.clone()),
            identificativo_ts: None,
            tipo_identificativo: "CF",
            cognome: r.cognome,
            nome: r.nome,
            sesso: r.sesso,
            data_nascita: r.data_nascita,
            comune_nascita: Some(r.comune_nascita),
            regione: r.regione.clone(),
            asl: Some(r.asl),
            scadenza_ts: Some(r.scadenza_ts),
            iscritto_ssn: true,
            codici_fiscali_precedenti: previous.clone(),
            codice_fiscale_richiesto: None,
        };
        Ok(Lookup::Found(Box::new(Person {
            id: current,
            tipo: "CF",
            birth_date: citizen.birth_date(),
            region: r.regione,
            record,
            previous,
            card_last8: Some(citizen.card().number.last8().as_str().to_owned()),
        })))
    }

    fn foreigner(&self, conn: &Connection, id: &str) -> rusqlite::Result<Lookup> {
        let Some(ForeignerRow { cognome, nome, sesso, data_nascita: nascita, regione, .. }) =
            store::registry::foreigner(conn, id)?
        else {
            return Ok(Lookup::Unknown);
        };
        let record = Anagrafica {
            codice_fiscale: None,
            identificativo_ts: Some(id.to_owned()),
            tipo_identificativo: "TS",
            cognome,
            nome,
            sesso: if sesso == "M" { Sex::M } else { Sex::F },
            data_nascita: nascita.clone(),
            comune_nascita: None,
            regione: regione.clone(),
            asl: None,
            scadenza_ts: None,
            iscritto_ssn: false,
            codici_fiscali_precedenti: Vec::new(),
            codice_fiscale_richiesto: None,
        };
        Ok(Lookup::Found(Box::new(Person {
            id: id.to_owned(),
            tipo: "TS",
            birth_date: nascita.parse().unwrap_or(Date::MIN),
            region: regione,
            record,
            previous: Vec::new(),
            card_last8: None,
        })))
    }

    /// Gives the citizen with code `cf` a new one (inside `tx`): the same person with
    /// a corrected birthplace. `None` if the code is unknown or already changed.
    pub(crate) fn change_cf(&self, tx: &Connection, cf: &CodiceFiscale) -> rusqlite::Result<Option<String>> {
        let Some(citizen) = self.ctx.population().by_codice_fiscale(cf) else { return Ok(None) };
        if store::registry::ever_changed(tx, cf.as_str())? {
            return Ok(None);
        }
        let places = birthplaces();
        let mut rng = self.ctx.rng(&format!("sistema-ts/cf-change/{cf}"));
        let new = loop {
            let place = rng.pick(places);
            if place.code == citizen.birthplace().code {
                continue;
            }
            let candidate = CodiceFiscale::from_person(&PersonData {
                surname: citizen.surname(),
                name: citizen.name(),
                sex: citizen.sex(),
                birth_date: citizen.birth_date(),
                birthplace: place.code,
            });
            if let Ok(c) = candidate
                && self.ctx.population().by_codice_fiscale(&c).is_none()
            {
                break c;
            }
        };
        store::registry::insert_change(tx, cf.as_str(), new.as_str(), &self.ctx.clock().now().to_string())?;
        Ok(Some(new.to_string()))
    }

    /// Registers a person outside the SSN and issues their identifier (inside `tx`).
    pub(crate) fn register_foreigner(&self, tx: &Connection, f: &Foreigner, region: &str) -> rusqlite::Result<String> {
        let id = format!("TS{:014}", 10_000_000_000_000 + store::registry::foreigners(tx)? + 1);
        let row = ForeignerRow {
            id_ts: id.clone(),
            cognome: f.cognome.clone(),
            nome: f.nome.clone(),
            sesso: if f.sesso == Sex::M { "M" } else { "F" }.to_owned(),
            data_nascita: f.data_nascita.to_string(),
            regione: region.to_owned(),
        };
        store::registry::insert_foreigner(tx, &row, &self.ctx.clock().now().to_string())?;
        Ok(id)
    }
}

/// A person outside the SSN, as an ASL registers them.
#[derive(Debug, Clone)]
pub(crate) struct Foreigner {
    pub(crate) cognome: String,
    pub(crate) nome: String,
    pub(crate) sesso: Sex,
    pub(crate) data_nascita: Date,
}
