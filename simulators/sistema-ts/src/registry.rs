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
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use ecosim_core::store::CachedSql;
use ecosim_domain::codes::{CodiceFiscale, PersonData, Sex, birthplaces};
use ecosim_domain::vaccination::check_ts_id;

use crate::state::SistemaTs;

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
    pub(crate) record: Value,
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

/// Why a lookup found nobody.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lookup {
    Found(Person),
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
        let changed_to: Option<String> =
            conn.row("SELECT nuovo FROM cf_variazioni WHERE vecchio = ?1", [cf.as_str()], |r| r.get(0)).optional()?;
        let changed_from: Option<String> =
            conn.row("SELECT vecchio FROM cf_variazioni WHERE nuovo = ?1", [cf.as_str()], |r| r.get(0)).optional()?;
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
        let record = json!({
            "codice_fiscale": current,
            "tipo_identificativo": "CF",
            "cognome": r.cognome, "nome": r.nome, "sesso": r.sesso, "data_nascita": r.data_nascita,
            "comune_nascita": r.comune_nascita, "regione": r.regione, "asl": r.asl,
            "scadenza_ts": r.scadenza_ts,
            "iscritto_ssn": true,
            "codici_fiscali_precedenti": previous,
        });
        Ok(Lookup::Found(Person {
            id: current,
            tipo: "CF",
            birth_date: citizen.birth_date(),
            region: r.regione,
            record,
            previous,
            card_last8: Some(citizen.card().number.last8().as_str().to_owned()),
        }))
    }

    fn foreigner(&self, conn: &Connection, id: &str) -> rusqlite::Result<Lookup> {
        let row = conn
            .row("SELECT cognome, nome, sesso, data_nascita, regione FROM stranieri WHERE id_ts = ?1", [id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .optional()?;
        let Some((cognome, nome, sesso, nascita, regione)) = row else { return Ok(Lookup::Unknown) };
        let record = json!({
            "codice_fiscale": null, "identificativo_ts": id, "tipo_identificativo": "TS",
            "cognome": cognome, "nome": nome, "sesso": sesso, "data_nascita": nascita, "regione": regione,
            "iscritto_ssn": false, "codici_fiscali_precedenti": [],
        });
        Ok(Lookup::Found(Person {
            id: id.to_owned(),
            tipo: "TS",
            birth_date: nascita.parse().unwrap_or(Date::MIN),
            region: regione,
            record,
            previous: Vec::new(),
            card_last8: None,
        }))
    }

    /// Gives the citizen with code `cf` a new one (inside `tx`): the same person with
    /// a corrected birthplace. `None` if the code is unknown or already changed.
    pub(crate) fn change_cf(&self, tx: &Connection, cf: &CodiceFiscale) -> rusqlite::Result<Option<String>> {
        let Some(citizen) = self.ctx.population().by_codice_fiscale(cf) else { return Ok(None) };
        let already: bool = tx.row(
            "SELECT EXISTS (SELECT 1 FROM cf_variazioni WHERE vecchio = ?1 OR nuovo = ?1)",
            [cf.as_str()],
            |r| r.get(0),
        )?;
        if already {
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
        tx.exec(
            "INSERT INTO cf_variazioni (vecchio, nuovo, at) VALUES (?1, ?2, ?3)",
            params![cf.as_str(), new.as_str(), self.ctx.clock().now().to_string()],
        )?;
        Ok(Some(new.to_string()))
    }

    /// Registers a person outside the SSN and issues their identifier (inside `tx`).
    pub(crate) fn register_foreigner(&self, tx: &Connection, f: &Foreigner, region: &str) -> rusqlite::Result<String> {
        let n: i64 = tx.row("SELECT COUNT(*) FROM stranieri", [], |r| r.get(0))?;
        let id = format!("TS{:014}", 10_000_000_000_000 + n + 1);
        tx.exec(
            "INSERT INTO stranieri (id_ts, cognome, nome, sesso, data_nascita, regione, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                f.cognome,
                f.nome,
                if f.sesso == Sex::M { "M" } else { "F" },
                f.data_nascita.to_string(),
                region,
                self.ctx.clock().now().to_string()
            ],
        )?;
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
