//! The AVR wing's tables: doses, the mobility feed and its cursor, infections,
//! imported people and the green-pass contacts. Every statement, rows typed.

use ecosim_core::store::CachedSql;
use ecosim_domain::vaccination::ContattiDgc;
use rusqlite::{Connection, OptionalExtension, params};

/// A dose as written.
#[derive(Debug, Clone)]
pub(crate) struct NewDose<'a> {
    pub(crate) id: &'a str,
    pub(crate) regione: &'a str,
    pub(crate) vaccinatore: &'a str,
    pub(crate) assistito: &'a str,
    pub(crate) tipo_id: &'a str,
    pub(crate) data: String,
    pub(crate) aic: &'a str,
    pub(crate) dose: u8,
    pub(crate) tipo_dose: &'a str,
    pub(crate) proposto: u8,
    pub(crate) forzature: i32,
    /// The country, for a dose given abroad.
    pub(crate) estero: Option<&'a str>,
    /// The dose as sent to AVN (or as declared, abroad), JSON.
    pub(crate) record: String,
    /// The warnings given when it was registered, JSON.
    pub(crate) avvisi: String,
    pub(crate) created_at: &'a str,
}

/// Writes a first version of a dose.
pub(crate) fn insert_dose(tx: &Connection, d: &NewDose<'_>) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO vaccinazioni (id, regione, vaccinatore, assistito, tipo_id, data, aic, dose, tipo_dose,
             proposto, forzature, estero, record, versione, avvisi, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 1, ?14, ?15)",
        params![
            d.id,
            d.regione,
            d.vaccinatore,
            d.assistito,
            d.tipo_id,
            d.data,
            d.aic,
            d.dose,
            d.tipo_dose,
            d.proposto,
            d.forzature,
            d.estero,
            d.record,
            d.avvisi,
            d.created_at,
        ],
    )?;
    Ok(())
}

/// A dose as held.
#[derive(Debug, Clone)]
pub(crate) struct HeldDose {
    /// As sent to AVN (or declared), JSON.
    pub(crate) record: String,
    pub(crate) versione: u32,
    pub(crate) dose: u8,
    pub(crate) proposto: u8,
    pub(crate) forzature: i64,
    pub(crate) estero: Option<String>,
    /// JSON.
    pub(crate) avvisi: String,
}

/// `region`'s dose `id`.
pub(crate) fn dose(c: &Connection, region: &str, id: &str) -> rusqlite::Result<Option<HeldDose>> {
    c.row(
        "SELECT record, versione, dose, proposto, forzature, estero, avvisi FROM vaccinazioni
         WHERE id = ?1 AND regione = ?2",
        params![id, region],
        |r| {
            Ok(HeldDose {
                record: r.get(0)?,
                versione: r.get(1)?,
                dose: r.get(2)?,
                proposto: r.get(3)?,
                forzature: r.get(4)?,
                estero: r.get(5)?,
                avvisi: r.get(6)?,
            })
        },
    )
    .optional()
}

/// A forced dose number: the new record and version.
pub(crate) fn force_number(tx: &Connection, id: &str, numero: u8, record: &str, versione: u32) -> rusqlite::Result<()> {
    tx.exec(
        "UPDATE vaccinazioni SET dose = ?2, record = ?3, versione = ?4, forzature = forzature + 1 WHERE id = ?1",
        params![id, numero, record, versione],
    )?;
    Ok(())
}

/// `(id, record, versione)` of `region`'s doses held under `assistito`.
pub(crate) fn doses_under(
    c: &Connection,
    region: &str,
    assistito: &str,
) -> rusqlite::Result<Vec<(String, String, u32)>> {
    let mut stmt =
        c.prepare_cached("SELECT id, record, versione FROM vaccinazioni WHERE regione = ?1 AND assistito = ?2")?;
    stmt.query_map(params![region, assistito], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect()
}

/// Moves a dose to the person's current code, as a new version.
pub(crate) fn move_dose(
    tx: &Connection,
    id: &str,
    assistito: &str,
    record: &str,
    versione: u32,
) -> rusqlite::Result<()> {
    tx.exec(
        "UPDATE vaccinazioni SET assistito = ?2, record = ?3, versione = ?4 WHERE id = ?1",
        params![id, assistito, record, versione],
    )?;
    Ok(())
}

/// Moves `region`'s infections from an obsolete code to the current one.
pub(crate) fn move_infections(tx: &Connection, region: &str, from: &str, to: &str) -> rusqlite::Result<()> {
    tx.exec("UPDATE infezioni SET assistito = ?3 WHERE regione = ?1 AND assistito = ?2", params![region, from, to])?;
    Ok(())
}

/// A dose of `region`'s own, as a person's list shows it.
#[derive(Debug, Clone)]
pub(crate) struct OwnDose {
    pub(crate) id: String,
    pub(crate) data: String,
    pub(crate) aic: String,
    pub(crate) dose: u8,
    pub(crate) tipo_dose: String,
    pub(crate) estero: Option<String>,
    pub(crate) forzature: i64,
}

/// `region`'s own doses under `assistito`, by date.
pub(crate) fn own_doses(c: &Connection, region: &str, assistito: &str) -> rusqlite::Result<Vec<OwnDose>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, data, aic, dose, tipo_dose, estero, forzature FROM vaccinazioni
         WHERE regione = ?1 AND assistito = ?2 ORDER BY data",
    )?;
    stmt.query_map(params![region, assistito], |r| {
        Ok(OwnDose {
            id: r.get(0)?,
            data: r.get(1)?,
            aic: r.get(2)?,
            dose: r.get(3)?,
            tipo_dose: r.get(4)?,
            estero: r.get(5)?,
            forzature: r.get(6)?,
        })
    })?
    .collect()
}

/// A dose given in another region to a resident, from AVN's feed.
#[derive(Debug, Clone)]
pub(crate) struct MobilityDose {
    pub(crate) id: String,
    pub(crate) data: String,
    pub(crate) aic: String,
    pub(crate) dose: u8,
    pub(crate) regione_somministrazione: String,
}

/// The mobility doses `region` holds for `assistito`.
pub(crate) fn mobility_doses(c: &Connection, region: &str, assistito: &str) -> rusqlite::Result<Vec<MobilityDose>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, data, aic, dose, regione_somministrazione FROM mobilita WHERE regione = ?1 AND assistito = ?2",
    )?;
    stmt.query_map(params![region, assistito], |r| {
        Ok(MobilityDose {
            id: r.get(0)?,
            data: r.get(1)?,
            aic: r.get(2)?,
            dose: r.get(3)?,
            regione_somministrazione: r.get(4)?,
        })
    })?
    .collect()
}

/// Where `region` last pulled AVN's mobility feed from.
pub(crate) fn mobility_cursor(c: &Connection, region: &str) -> rusqlite::Result<Option<String>> {
    c.row("SELECT dal FROM mobilita_cursori WHERE regione = ?1", [region], |r| r.get(0)).optional()
}

/// A dose of AVN's feed, kept (a newer version replaces an older one).
#[derive(Debug, Clone)]
pub(crate) struct FeedDose<'a> {
    /// `regione_somministrazione:id_regionale`.
    pub(crate) id: String,
    pub(crate) assistito: &'a str,
    pub(crate) data: String,
    pub(crate) aic: &'a str,
    pub(crate) dose: u8,
    pub(crate) regione_somministrazione: &'a str,
    pub(crate) versione: u32,
}

/// Keeps a dose of `region`'s feed.
pub(crate) fn keep_mobility(tx: &Connection, region: &str, d: &FeedDose<'_>) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO mobilita (id, regione, assistito, data, aic, dose, regione_somministrazione, versione)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET assistito = ?3, data = ?4, aic = ?5, dose = ?6, versione = ?8
         WHERE versione < ?8",
        params![d.id, region, d.assistito, d.data, d.aic, d.dose, d.regione_somministrazione, d.versione],
    )?;
    Ok(())
}

/// Moves `region`'s feed cursor to `dal`.
pub(crate) fn set_mobility_cursor(tx: &Connection, region: &str, dal: &str) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO mobilita_cursori (regione, dal) VALUES (?1, ?2) ON CONFLICT (regione) DO UPDATE SET dal = ?2",
        params![region, dal],
    )?;
    Ok(())
}

/// Records a person of another region imported from the national registry; `false`
/// if they were already.
pub(crate) fn import_person(c: &Connection, region: &str, id: &str, record: &str, at: &str) -> rusqlite::Result<bool> {
    Ok(c.exec(
        "INSERT OR IGNORE INTO assistiti_importati (regione, id, record, importato_il) VALUES (?1, ?2, ?3, ?4)",
        params![region, id, record, at],
    )? == 1)
}

/// A prior infection.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Infection {
    pub(crate) id: String,
    pub(crate) data_prelievo: String,
    pub(crate) data_esito: String,
    pub(crate) data_guarigione: Option<String>,
    pub(crate) luogo: String,
}

/// Records an infection of `assistito` in `region`.
pub(crate) fn insert_infection(
    c: &Connection,
    region: &str,
    assistito: &str,
    i: &Infection,
    at: &str,
) -> rusqlite::Result<()> {
    c.exec(
        "INSERT INTO infezioni (id, regione, assistito, data_prelievo, data_esito, data_guarigione, luogo, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![i.id, region, assistito, i.data_prelievo, i.data_esito, i.data_guarigione, i.luogo, at],
    )?;
    Ok(())
}

/// `region`'s infections of `assistito`, by sample date.
pub(crate) fn infections(c: &Connection, region: &str, assistito: &str) -> rusqlite::Result<Vec<Infection>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, data_prelievo, data_esito, data_guarigione, luogo FROM infezioni
         WHERE regione = ?1 AND assistito = ?2 ORDER BY data_prelievo",
    )?;
    stmt.query_map(params![region, assistito], |r| {
        Ok(Infection {
            id: r.get(0)?,
            data_prelievo: r.get(1)?,
            data_esito: r.get(2)?,
            data_guarigione: r.get(3)?,
            luogo: r.get(4)?,
        })
    })?
    .collect()
}

/// The green-pass contacts `region` holds for `assistito`, and where they came from.
pub(crate) fn contacts(
    c: &Connection,
    region: &str,
    assistito: &str,
) -> rusqlite::Result<Option<(ContattiDgc, String)>> {
    c.row(
        "SELECT cellulare, email, fonte FROM contatti_dgc WHERE regione = ?1 AND assistito = ?2",
        params![region, assistito],
        |r| Ok((ContattiDgc { cellulare: r.get(0)?, email: r.get(1)? }, r.get(2)?)),
    )
    .optional()
}

/// Holds green-pass contacts (replacing any), noting where they came from.
pub(crate) fn hold_contacts(
    tx: &Connection,
    region: &str,
    assistito: &str,
    c: &ContattiDgc,
    fonte: &str,
    at: &str,
) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO contatti_dgc (regione, assistito, cellulare, email, fonte, aggiornato_il)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (regione, assistito) DO UPDATE SET cellulare = ?3, email = ?4, fonte = ?5, aggiornato_il = ?6",
        params![region, assistito, c.cellulare, c.email, fonte, at],
    )?;
    Ok(())
}

/// Deletes the green-pass contacts held.
pub(crate) fn delete_contacts(tx: &Connection, region: &str, assistito: &str) -> rusqlite::Result<()> {
    tx.exec("DELETE FROM contatti_dgc WHERE regione = ?1 AND assistito = ?2", params![region, assistito])?;
    Ok(())
}

/// `(regione, record, versione)` of dose `id`, for its delivery to AVN.
pub(crate) fn for_avn(c: &Connection, id: &str) -> rusqlite::Result<Option<(String, String, u32)>> {
    c.row("SELECT regione, record, versione FROM vaccinazioni WHERE id = ?1", [id], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .optional()
}
