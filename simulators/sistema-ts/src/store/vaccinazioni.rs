//! COVID doses (from AVN and given abroad) and the anomalies found on them.

use ecosim_core::store::CachedSql;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// A dose as stored, as the registry's checks and `GET .../vaccinazioni` read it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DoseRow {
    pub(crate) aic: String,
    pub(crate) farmaco: String,
    pub(crate) data: String,
    pub(crate) dose: u8,
    pub(crate) tipo_dose: String,
    pub(crate) regione: String,
    /// `avn` or `estero`.
    #[serde(skip)]
    pub(crate) fonte: String,
}

/// The doses held under identifier `assistito`, oldest first.
pub(crate) fn doses_of(c: &Connection, assistito: &str) -> rusqlite::Result<Vec<DoseRow>> {
    let mut stmt = c.prepare_cached(
        "SELECT aic, farmaco, data, dose, tipo_dose, regione, fonte FROM vaccinazioni
         WHERE assistito = ?1 ORDER BY data, id",
    )?;
    stmt.query_map([assistito], |r| {
        Ok(DoseRow {
            aic: r.get(0)?,
            farmaco: r.get(1)?,
            data: r.get(2)?,
            dose: r.get(3)?,
            tipo_dose: r.get(4)?,
            regione: r.get(5)?,
            fonte: r.get(6)?,
        })
    })?
    .collect()
}

/// `(data, aic)` of the doses held under `assistito` but dose `except`.
pub(crate) fn others_of(c: &Connection, assistito: &str, except: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = c.prepare_cached("SELECT data, aic FROM vaccinazioni WHERE assistito = ?1 AND id != ?2")?;
    stmt.query_map(params![assistito, except], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
}

/// The version and state of dose `id`, if held.
pub(crate) fn held(c: &Connection, id: &str) -> rusqlite::Result<Option<(u32, String)>> {
    c.row("SELECT versione, stato FROM vaccinazioni WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?))).optional()
}

/// A dose as written.
#[derive(Debug, Clone)]
pub(crate) struct NewDose<'a> {
    pub(crate) id: &'a str,
    /// `avn` or `estero`.
    pub(crate) fonte: &'a str,
    pub(crate) assistito: &'a str,
    pub(crate) regione: &'a str,
    pub(crate) id_regionale: Option<&'a str>,
    pub(crate) data: String,
    pub(crate) aic: &'a str,
    pub(crate) farmaco: &'a str,
    pub(crate) dose: u8,
    pub(crate) tipo_dose: &'a str,
    pub(crate) paese: Option<&'a str>,
    /// The green-pass contacts, JSON.
    pub(crate) contatti: String,
    /// The dose as received, JSON.
    pub(crate) record: String,
    /// `valida` or `anomala`.
    pub(crate) stato: &'a str,
    /// `in_coda` (for PN-DGC), `sospesa` or `inviato`.
    pub(crate) dgc: &'a str,
    pub(crate) versione: u32,
    pub(crate) received_at: &'a str,
}

/// Writes a dose, or its new version.
pub(crate) fn upsert(tx: &Connection, d: &NewDose<'_>) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO vaccinazioni (id, fonte, assistito, regione, id_regionale, data, aic, farmaco, dose, tipo_dose,
                                   paese, contatti, record, stato, dgc, versione, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
         ON CONFLICT (id) DO UPDATE SET assistito = ?3, data = ?6, aic = ?7, farmaco = ?8, dose = ?9, tipo_dose = ?10,
             contatti = ?12, record = ?13, stato = ?14, dgc = ?15, versione = ?16, received_at = ?17",
        params![
            d.id,
            d.fonte,
            d.assistito,
            d.regione,
            d.id_regionale,
            d.data,
            d.aic,
            d.farmaco,
            d.dose,
            d.tipo_dose,
            d.paese,
            d.contatti,
            d.record,
            d.stato,
            d.dgc,
            d.versione,
            d.received_at,
        ],
    )?;
    Ok(())
}

/// Marks dose `id` as sent to PN-DGC.
pub(crate) fn mark_sent_to_dgc(c: &Connection, id: &str) -> rusqlite::Result<()> {
    c.exec("UPDATE vaccinazioni SET dgc = 'inviato' WHERE id = ?1", [id])?;
    Ok(())
}

/// Closes the open anomalies of dose `id` (a new version is checked afresh).
pub(crate) fn resolve_anomalies(tx: &Connection, id: &str, at: &str) -> rusqlite::Result<()> {
    tx.exec("UPDATE anomalie SET risolta_il = ?2 WHERE vaccinazione = ?1 AND risolta_il IS NULL", params![id, at])?;
    Ok(())
}

/// An inconsistency found on a dose, as the region reads it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Anomaly {
    pub(crate) id: i64,
    pub(crate) vaccinazione: String,
    pub(crate) id_regionale: Option<String>,
    pub(crate) tipo: String,
    pub(crate) dettaglio: String,
    pub(crate) rilevata_il: String,
    pub(crate) risolta_il: Option<String>,
    pub(crate) requirement: &'static str,
}

/// Records an anomaly of dose `vaccinazione` given in `regione`.
pub(crate) fn insert_anomaly(
    tx: &Connection,
    regione: &str,
    vaccinazione: &str,
    id_regionale: &str,
    tipo: &str,
    dettaglio: &str,
    at: &str,
) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO anomalie (regione, vaccinazione, id_regionale, tipo, dettaglio, rilevata_il)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![regione, vaccinazione, id_regionale, tipo, dettaglio, at],
    )?;
    Ok(())
}

/// `regione`'s anomalies (only the open ones with `only_open`), oldest first.
pub(crate) fn anomalies(c: &Connection, regione: &str, only_open: bool) -> rusqlite::Result<Vec<Anomaly>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, vaccinazione, id_regionale, tipo, dettaglio, rilevata_il, risolta_il FROM anomalie
         WHERE regione = ?1 AND (?2 = 0 OR risolta_il IS NULL) ORDER BY id",
    )?;
    stmt.query_map(params![regione, only_open], |r| {
        Ok(Anomaly {
            id: r.get(0)?,
            vaccinazione: r.get(1)?,
            id_regionale: r.get(2)?,
            tipo: r.get(3)?,
            dettaglio: r.get(4)?,
            rilevata_il: r.get(5)?,
            risolta_il: r.get(6)?,
            requirement: "AVR-TS-CHECK",
        })
    })?
    .collect()
}
