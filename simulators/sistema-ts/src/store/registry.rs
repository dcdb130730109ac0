//! What changed in the national registry since the population was generated: codice
//! fiscale variations and people outside the SSN.

use ecosim_core::store::CachedSql;
use rusqlite::{Connection, OptionalExtension, params};

/// The code `cf` was changed to, if it was.
pub(crate) fn changed_to(c: &Connection, cf: &str) -> rusqlite::Result<Option<String>> {
    c.row("SELECT nuovo FROM cf_variazioni WHERE vecchio = ?1", [cf], |r| r.get(0)).optional()
}

/// The code `cf` replaced, if any.
pub(crate) fn changed_from(c: &Connection, cf: &str) -> rusqlite::Result<Option<String>> {
    c.row("SELECT vecchio FROM cf_variazioni WHERE nuovo = ?1", [cf], |r| r.get(0)).optional()
}

/// Whether `cf` took part in a variation, old or new.
pub(crate) fn ever_changed(c: &Connection, cf: &str) -> rusqlite::Result<bool> {
    c.row("SELECT EXISTS (SELECT 1 FROM cf_variazioni WHERE vecchio = ?1 OR nuovo = ?1)", [cf], |r| r.get(0))
}

/// Records a variation.
pub(crate) fn insert_change(tx: &Connection, old: &str, new: &str, at: &str) -> rusqlite::Result<()> {
    tx.exec("INSERT INTO cf_variazioni (vecchio, nuovo, at) VALUES (?1, ?2, ?3)", params![old, new, at])?;
    Ok(())
}

/// A person outside the SSN, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ForeignerRow {
    pub(crate) id_ts: String,
    pub(crate) cognome: String,
    pub(crate) nome: String,
    /// `M` or `F`.
    pub(crate) sesso: String,
    pub(crate) data_nascita: String,
    pub(crate) regione: String,
}

/// The person outside the SSN with identifier `id`.
pub(crate) fn foreigner(c: &Connection, id: &str) -> rusqlite::Result<Option<ForeignerRow>> {
    c.row("SELECT id_ts, cognome, nome, sesso, data_nascita, regione FROM stranieri WHERE id_ts = ?1", [id], |r| {
        Ok(ForeignerRow {
            id_ts: r.get(0)?,
            cognome: r.get(1)?,
            nome: r.get(2)?,
            sesso: r.get(3)?,
            data_nascita: r.get(4)?,
            regione: r.get(5)?,
        })
    })
    .optional()
}

/// How many people outside the SSN are registered (identifiers are numbered from it).
pub(crate) fn foreigners(c: &Connection) -> rusqlite::Result<i64> {
    c.row("SELECT COUNT(*) FROM stranieri", [], |r| r.get(0))
}

/// Registers a person outside the SSN.
pub(crate) fn insert_foreigner(tx: &Connection, f: &ForeignerRow, at: &str) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO stranieri (id_ts, cognome, nome, sesso, data_nascita, regione, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![f.id_ts, f.cognome, f.nome, f.sesso, f.data_nascita, f.regione, at],
    )?;
    Ok(())
}
