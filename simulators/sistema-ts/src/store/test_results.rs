//! Test results (Flow 1): the records regions send, their earlier versions, and the
//! lookups the unlocks make.

use ecosim_core::store::CachedSql;
use ecosim_domain::codes::Cun;
use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::test_result::TestResult;

/// A stored record, with its identifiers (never sent out as is).
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) cun: String,
    pub(crate) region: String,
    /// The account that sent it.
    pub(crate) submitted_by: String,
    pub(crate) codice_fiscale: String,
    pub(crate) esito: String,
    pub(crate) tipo_test: String,
    pub(crate) data_esecuzione: String,
    pub(crate) struttura: String,
    pub(crate) cellulare: Option<String>,
    pub(crate) email: Option<String>,
    pub(crate) invio_cun_da_ts: bool,
    pub(crate) created_at: String,
    pub(crate) expires_ms: i64,
}

const COLUMNS: &str = "id, cun, region, submitted_by, codice_fiscale, esito, tipo_test, data_esecuzione, struttura, \
                       cellulare, email, invio_cun_da_ts, created_at, expires_ms";

fn record_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        id: r.get(0)?,
        cun: r.get(1)?,
        region: r.get(2)?,
        submitted_by: r.get(3)?,
        codice_fiscale: r.get(4)?,
        esito: r.get(5)?,
        tipo_test: r.get(6)?,
        data_esecuzione: r.get(7)?,
        struttura: r.get(8)?,
        cellulare: r.get(9)?,
        email: r.get(10)?,
        invio_cun_da_ts: r.get(11)?,
        created_at: r.get(12)?,
        expires_ms: r.get(13)?,
    })
}

/// A record to write (with its CUN): the result, who sent it and its lifetime.
#[derive(Debug, Clone)]
pub(crate) struct NewRecord<'a> {
    pub(crate) id: &'a str,
    pub(crate) region: &'a str,
    pub(crate) submitted_by: &'a str,
    pub(crate) result: &'a TestResult,
    pub(crate) created_at: String,
    pub(crate) expires_ms: i64,
}

/// Writes a record with `cun`; `false` (and nothing written) if a record held has
/// that CUN already (found by the CUN's unique hash: no CUN is issued twice while a
/// record keeps it).
pub(crate) fn insert(tx: &Connection, n: &NewRecord<'_>, cun: &Cun) -> rusqlite::Result<bool> {
    let r = n.result;
    let written = tx.exec(
        &format!(
            "INSERT INTO test_results ({COLUMNS}, cun_sha)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        ),
        params![
            n.id,
            cun.as_str(),
            n.region,
            n.submitted_by,
            r.codice_fiscale.as_str(),
            r.esito.as_str(),
            r.tipo_test.as_str(),
            r.data_esecuzione.to_string(),
            r.struttura,
            r.cellulare.as_ref().map(|m| m.to_string()),
            r.email.as_ref().map(|e| e.to_string()),
            r.invio_cun_da_ts,
            n.created_at,
            n.expires_ms,
            cun.sha256(),
        ],
    );
    match written {
        Ok(_) => Ok(true),
        Err(rusqlite::Error::SqliteFailure(e, Some(why)))
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE && why.contains("test_results.cun_sha") =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// `region`'s live record whose CUN hashes to `cun_sha`, at `now_ms`.
pub(crate) fn live(c: &Connection, cun_sha: &str, region: &str, now_ms: i64) -> rusqlite::Result<Option<Record>> {
    c.row(
        &format!("SELECT {COLUMNS} FROM test_results WHERE cun_sha = ?1 AND region = ?2 AND expires_ms > ?3"),
        params![cun_sha, region, now_ms],
        record_of,
    )
    .optional()
}

/// `region`'s live records with a test date between `dal` and `al`, in date order.
pub(crate) fn in_range(
    c: &Connection,
    region: &str,
    dal: &str,
    al: &str,
    now_ms: i64,
) -> rusqlite::Result<Vec<Record>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM test_results WHERE region = ?1 AND data_esecuzione BETWEEN ?2 AND ?3
         AND expires_ms > ?4 ORDER BY data_esecuzione, created_at, id"
    ))?;
    stmt.query_map(params![region, dal, al, now_ms], record_of)?.collect()
}

/// Keeps the current version of record `id` (as `snapshot`) before a correction.
pub(crate) fn keep_version(tx: &Connection, id: &str, at: &str, snapshot: &str) -> rusqlite::Result<()> {
    let version: i64 =
        tx.row("SELECT COUNT(*) FROM test_result_versions WHERE test_result = ?1", [id], |r| r.get(0))?;
    tx.exec(
        "INSERT INTO test_result_versions (test_result, version, at, record) VALUES (?1, ?2, ?3, ?4)",
        params![id, version + 1, at, snapshot],
    )?;
    Ok(())
}

/// Replaces the fields of record `id` with a corrected result.
pub(crate) fn correct(tx: &Connection, id: &str, r: &TestResult) -> rusqlite::Result<()> {
    tx.exec(
        "UPDATE test_results SET codice_fiscale = ?2, esito = ?3, tipo_test = ?4, data_esecuzione = ?5,
                                 struttura = ?6, cellulare = ?7, email = ?8 WHERE id = ?1",
        params![
            id,
            r.codice_fiscale.as_str(),
            r.esito.as_str(),
            r.tipo_test.as_str(),
            r.data_esecuzione.to_string(),
            r.struttura,
            r.cellulare.as_ref().map(|m| m.to_string()),
            r.email.as_ref().map(|e| e.to_string()),
        ],
    )?;
    Ok(())
}

/// Every distinct expiry (Unix ms) of the records held, to schedule the purges.
pub(crate) fn expiries(c: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = c.prepare("SELECT DISTINCT expires_ms FROM test_results")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// Deletes every record expired at `now_ms` with its versions; returns their ids
/// and CUNs.
pub(crate) fn purge_expired(tx: &Connection, now_ms: i64) -> rusqlite::Result<Vec<(String, String)>> {
    let expired: Vec<(String, String)> = {
        let mut stmt = tx.prepare_cached("SELECT id, cun FROM test_results WHERE expires_ms <= ?1")?;
        stmt.query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
    };
    for (id, _) in &expired {
        tx.exec("DELETE FROM test_result_versions WHERE test_result = ?1", [id])?;
        tx.exec("DELETE FROM test_results WHERE id = ?1", [id])?;
    }
    Ok(expired)
}

/// A live test result found for an unlock.
#[derive(Debug, Clone)]
pub(crate) struct Live {
    pub(crate) cun: String,
    pub(crate) esito: String,
    pub(crate) codice_fiscale: String,
    pub(crate) data_esecuzione: String,
}

/// The live record whose CUN hashes to `cun_sha` (the SHA-256 of `CUN-...`: Immuni
/// sends it; an operator's CUN is hashed first).
pub(crate) fn live_by(c: &Connection, cun_sha: &str, now_ms: i64) -> rusqlite::Result<Option<Live>> {
    c.row(
        "SELECT cun, esito, codice_fiscale, data_esecuzione FROM test_results WHERE cun_sha = ?1 AND expires_ms > ?2",
        params![cun_sha, now_ms],
        |r| Ok(Live { cun: r.get(0)?, esito: r.get(1)?, codice_fiscale: r.get(2)?, data_esecuzione: r.get(3)? }),
    )
    .optional()
}

/// The CUN of the person's latest live positive result.
pub(crate) fn latest_positive(c: &Connection, codice_fiscale: &str, now_ms: i64) -> rusqlite::Result<Option<String>> {
    c.row(
        "SELECT cun FROM test_results WHERE codice_fiscale = ?1 AND esito = 'POSITIVO' AND expires_ms > ?2
         ORDER BY data_esecuzione DESC, created_at DESC LIMIT 1",
        params![codice_fiscale, now_ms],
        |r| r.get(0),
    )
    .optional()
}
