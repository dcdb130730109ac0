//! AVN's database: the schema, and every statement with its rows typed.

use ecosim_core::store::CachedSql;
use rusqlite::{Connection, OptionalExtension, params};

/// Schema migrations, in order; never edit a shipped one.
pub(crate) static MIGRATIONS: &[&str] = &[
    "CREATE TABLE somministrazioni (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        regione_somministrazione TEXT NOT NULL,
        id_regionale TEXT NOT NULL,
        regione_residenza TEXT NOT NULL,
        assistito TEXT NOT NULL,
        data TEXT NOT NULL,
        record TEXT NOT NULL,
        versione INTEGER NOT NULL,
        received_at TEXT NOT NULL,
        received_ms INTEGER NOT NULL,
        received_day TEXT NOT NULL,
        inoltro TEXT NOT NULL,
        inoltrata_il TEXT
    );
    CREATE INDEX somministrazioni_mobilita ON somministrazioni (regione_residenza, received_day);
    CREATE INDEX somministrazioni_inoltro ON somministrazioni (inoltro, received_ms);",
    ecosim_core::outbox::MIGRATION,
    ecosim_core::outbox::DUE_MIGRATION,
    // Plain row ids: no `sqlite_sequence` write per enqueue (#14).
    ecosim_core::outbox::ROWID_MIGRATION,
];

/// A dose as received: what is written.
#[derive(Debug, Clone)]
pub(crate) struct Received<'a> {
    /// `regione_somministrazione:id_regionale`.
    pub(crate) id: &'a str,
    pub(crate) regione_somministrazione: &'a str,
    pub(crate) id_regionale: &'a str,
    pub(crate) regione_residenza: &'a str,
    pub(crate) assistito: &'a str,
    pub(crate) data: String,
    /// The dose as JSON.
    pub(crate) record: &'a str,
    pub(crate) versione: u32,
    pub(crate) received_at: String,
    pub(crate) received_ms: i64,
    pub(crate) received_day: String,
}

/// A dose as held, with its forwarding state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Held {
    /// The dose as JSON.
    pub(crate) record: String,
    pub(crate) versione: u32,
    pub(crate) received_at: String,
    /// `in_attesa`, `in_coda` or `inoltrata`.
    pub(crate) inoltro: String,
    pub(crate) inoltrata_il: Option<String>,
}

/// The dose held under `id`.
pub(crate) fn held(c: &Connection, id: &str) -> rusqlite::Result<Option<Held>> {
    c.row(
        "SELECT record, versione, received_at, inoltro, inoltrata_il FROM somministrazioni WHERE id = ?1",
        [id],
        |r| {
            Ok(Held {
                record: r.get(0)?,
                versione: r.get(1)?,
                received_at: r.get(2)?,
                inoltro: r.get(3)?,
                inoltrata_il: r.get(4)?,
            })
        },
    )
    .optional()
}

/// Writes a first version.
pub(crate) fn insert(tx: &Connection, d: &Received<'_>) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO somministrazioni (id, regione_somministrazione, id_regionale, regione_residenza,
             assistito, data, record, versione, received_at, received_ms, received_day, inoltro)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'in_attesa')",
        params![
            d.id,
            d.regione_somministrazione,
            d.id_regionale,
            d.regione_residenza,
            d.assistito,
            d.data,
            d.record,
            d.versione,
            d.received_at,
            d.received_ms,
            d.received_day,
        ],
    )?;
    Ok(())
}

/// Replaces the held version with a correction, to be forwarded again.
pub(crate) fn correct(tx: &Connection, d: &Received<'_>) -> rusqlite::Result<()> {
    tx.exec(
        "UPDATE somministrazioni SET record = ?2, versione = ?3, assistito = ?4, data = ?5,
             regione_residenza = ?6, inoltro = 'in_attesa', received_at = ?7, received_ms = ?8,
             received_day = ?9
         WHERE id = ?1",
        params![
            d.id,
            d.record,
            d.versione,
            d.assistito,
            d.data,
            d.regione_residenza,
            d.received_at,
            d.received_ms,
            d.received_day,
        ],
    )?;
    Ok(())
}

/// Doses given in other regions to `region`'s residents, received on or after `from`
/// (`YYYY-MM-DD`, empty for all), in the order received: `(record, received_at)`.
pub(crate) fn mobility(c: &Connection, region: &str, from: &str) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = c.prepare_cached(
        "SELECT record, received_at FROM somministrazioni
         WHERE regione_residenza = ?1 AND regione_somministrazione != ?1 AND received_day >= ?2 ORDER BY seq",
    )?;
    stmt.query_map(params![region, from], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
}

/// The doses waiting to be forwarded that were received before `cutoff_ms`, by date
/// of administration then id. Not by arrival: the AVRs deliver doses concurrently, so
/// two doses recorded one after the other may arrive in either order, and the same
/// doses must make the same batch.
pub(crate) fn waiting(tx: &Connection, cutoff_ms: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id FROM somministrazioni WHERE inoltro = 'in_attesa' AND received_ms < ?1 ORDER BY data, id",
    )?;
    stmt.query_map([cutoff_ms], |r| r.get(0))?.collect()
}

/// Marks the waiting doses received before `cutoff_ms` as queued: in the same
/// transaction, the ones [`waiting`] listed.
pub(crate) fn mark_queued(tx: &Connection, cutoff_ms: i64) -> rusqlite::Result<()> {
    tx.exec(
        "UPDATE somministrazioni SET inoltro = 'in_coda' WHERE inoltro = 'in_attesa' AND received_ms < ?1",
        [cutoff_ms],
    )?;
    Ok(())
}

/// A number no earlier batch has used (batches are keyed by it).
pub(crate) fn next_batch_number(tx: &Connection) -> rusqlite::Result<i64> {
    tx.row("SELECT COALESCE(MAX(id), 0) + 1 FROM outbox", [], |r| r.get(0))
}

/// The latest record of each dose in `ids`.
pub(crate) fn records(c: &Connection, ids: &[String]) -> rusqlite::Result<Vec<String>> {
    let mut stmt = c.prepare_cached("SELECT record FROM somministrazioni WHERE id = ?1")?;
    ids.iter().map(|id| stmt.query_row([id], |r| r.get(0))).collect()
}

/// Marks queued doses as forwarded at `at`.
pub(crate) fn mark_forwarded(tx: &Connection, ids: &[String], at: &str) -> rusqlite::Result<()> {
    for id in ids {
        tx.exec(
            "UPDATE somministrazioni SET inoltro = 'inoltrata', inoltrata_il = ?2 WHERE id = ?1 AND inoltro = 'in_coda'",
            params![id, at],
        )?;
    }
    Ok(())
}

/// How many doses are not forwarded yet.
pub(crate) fn not_forwarded(c: &Connection) -> rusqlite::Result<i64> {
    c.row("SELECT COUNT(*) FROM somministrazioni WHERE inoltro != 'inoltrata'", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecosim_core::store::{Store, StoreError, StoreLocation};

    fn received<'a>(id: &'a str, data: &str, received_ms: i64) -> Received<'a> {
        Received {
            id,
            regione_somministrazione: "160",
            id_regionale: id,
            regione_residenza: "160",
            assistito: "RSSMRA80A01H501U",
            data: data.into(),
            record: "{}",
            versione: 1,
            received_at: "2021-10-26T10:00:00Z".into(),
            received_ms,
            received_day: "2021-10-26".into(),
        }
    }

    #[test]
    fn a_batch_is_in_date_then_id_order_whatever_the_order_of_arrival() {
        let store = Store::open(&StoreLocation::Memory, "avn", MIGRATIONS).expect("open");
        let arrivals = [("160:c", "2021-10-26", 1), ("160:b", "2021-10-26", 2), ("160:a", "2021-10-27", 3)];
        let (due, late) = store
            .transaction(|tx| {
                for (id, data, ms) in arrivals {
                    insert(tx, &received(id, data, ms))?;
                }
                insert(tx, &received("160:0", "2021-10-25", 10))?;
                let due = waiting(tx, 5)?;
                mark_queued(tx, 5)?;
                Ok::<_, StoreError>((due, waiting(tx, 11)?))
            })
            .expect("written");
        assert_eq!(due, ["160:b", "160:c", "160:a"], "by date, then id, not by arrival");
        assert_eq!(late, ["160:0"], "the three are queued, the one received after the cutoff waits");
    }
}
