//! Recoveries (Flow 4).

use ecosim_core::store::CachedSql;
use rusqlite::{Connection, params};

/// Whether a NUCG was issued before.
pub(crate) fn nucg_used(c: &Connection, nucg: &str) -> rusqlite::Result<bool> {
    c.row("SELECT EXISTS (SELECT 1 FROM guarigioni WHERE nucg = ?1)", [nucg], |r| r.get(0))
}

/// A recovery as an ASL registers it.
#[derive(Debug, Clone)]
pub(crate) struct NewRecovery<'a> {
    pub(crate) id: &'a str,
    pub(crate) nucg: &'a str,
    pub(crate) assistito: &'a str,
    pub(crate) regione: &'a str,
    pub(crate) data_primo_positivo: String,
    pub(crate) data_guarigione: String,
    pub(crate) created_at: String,
}

/// Writes a recovery.
pub(crate) fn insert(tx: &Connection, r: &NewRecovery<'_>) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO guarigioni (id, nucg, assistito, regione, data_primo_positivo, data_guarigione, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![r.id, r.nucg, r.assistito, r.regione, r.data_primo_positivo, r.data_guarigione, r.created_at],
    )?;
    Ok(())
}
