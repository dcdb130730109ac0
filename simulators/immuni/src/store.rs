//! Immuni's database: the schema, and every statement with its rows typed.

use ecosim_core::store::CachedSql;
use jiff::Timestamp;
use jiff::civil::Date;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::domain::tek::Tek;

/// A JSON column read back; a row that no longer reads is an error, never a default.
fn json_column<T: serde::de::DeserializeOwned>(index: usize, text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, e.into()))
}

/// Schema migrations, in order; never edit a shipped one.
pub(crate) static MIGRATIONS: &[&str] = &[
    "CREATE TABLE otps (
        key TEXT PRIMARY KEY,
        symptoms_started_on TEXT NOT NULL,
        id_test_verification TEXT,
        expires_ms INTEGER NOT NULL,
        authorised_at TEXT NOT NULL
    );
    CREATE TABLE uploads (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        province TEXT NOT NULL,
        countries_of_interest TEXT NOT NULL,
        teks TEXT NOT NULL,
        summaries INTEGER NOT NULL,
        symptoms_started_on TEXT NOT NULL,
        from_cun INTEGER NOT NULL
    );",
    // Keys of an inconsistent batch, dropped as the real backend did: how many, and why.
    "ALTER TABLE uploads ADD COLUMN teks_dropped TEXT;",
    // Retention (#13): expired OTPs and old uploads are swept as new ones are written.
    "CREATE INDEX otps_by_expiry ON otps (expires_ms);
    ALTER TABLE uploads ADD COLUMN at_ms INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX uploads_by_time ON uploads (at_ms);",
];

/// An authorised OTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OtpData {
    pub(crate) symptoms_started_on: Date,
    pub(crate) id_test_verification: Option<String>,
}

/// What an authorisation came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authorised {
    /// Stored.
    New,
    /// A live authorisation already exists under that key.
    Collision,
}

/// Stores an authorisation under `key` until `expires`, unless a live one is there.
pub(crate) fn authorise(
    tx: &Connection,
    key: &str,
    data: &OtpData,
    now: Timestamp,
    expires: Timestamp,
) -> rusqlite::Result<Authorised> {
    let alive: Option<i64> = tx
        .row(
            "SELECT expires_ms FROM otps WHERE key = ?1 AND expires_ms > ?2",
            params![key, now.as_millisecond()],
            |r| r.get(0),
        )
        .optional()?;
    if alive.is_some() {
        return Ok(Authorised::Collision);
    }
    // OTPs nobody used expire unread: swept as others are written.
    tx.exec("DELETE FROM otps WHERE expires_ms <= ?1", [now.as_millisecond()])?;
    tx.exec(
        "INSERT OR REPLACE INTO otps (key, symptoms_started_on, id_test_verification, expires_ms, authorised_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            key,
            data.symptoms_started_on.to_string(),
            data.id_test_verification,
            expires.as_millisecond(),
            now.to_string()
        ],
    )?;
    Ok(Authorised::New)
}

/// The authorisation under `key` alive at `now_ms`; with `consume`, deleted.
pub(crate) fn lookup(tx: &Connection, key: &str, now_ms: i64, consume: bool) -> rusqlite::Result<Option<OtpData>> {
    let found: Option<(String, Option<String>)> = tx
        .row(
            "SELECT symptoms_started_on, id_test_verification FROM otps WHERE key = ?1 AND expires_ms > ?2",
            params![key, now_ms],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if consume {
        tx.exec("DELETE FROM otps WHERE key = ?1", [key])?;
    }
    Ok(found.and_then(|(d, id)| {
        d.parse().ok().map(|symptoms_started_on| OtpData { symptoms_started_on, id_test_verification: id })
    }))
}

/// An upload, as stored and as `GET /_admin/uploads` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Upload {
    pub(crate) at: String,
    pub(crate) province: String,
    pub(crate) countries_of_interest: Vec<String>,
    /// The keys kept (none when the batch was dropped).
    pub(crate) teks: Vec<Tek>,
    pub(crate) exposure_detection_summaries: i64,
    pub(crate) symptoms_started_on: String,
    pub(crate) from_cun: bool,
    /// The keys of an inconsistent batch, dropped (answered 204, as the real backend).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) teks_dropped: Option<Dropped>,
}

/// A dropped batch: how many keys, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub(crate) struct Dropped {
    pub(crate) count: usize,
    pub(crate) reason: String,
}

/// Writes an upload received at `at_ms`, and deletes those received before
/// `keep_from_ms` (past the retention of exposure keys).
pub(crate) fn insert_upload(c: &Connection, u: &Upload, at_ms: i64, keep_from_ms: i64) -> rusqlite::Result<()> {
    c.exec("DELETE FROM uploads WHERE at_ms > 0 AND at_ms < ?1", [keep_from_ms])?;
    c.exec(
        "INSERT INTO uploads (at, province, countries_of_interest, teks, summaries, symptoms_started_on, from_cun, teks_dropped, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            u.at,
            u.province,
            serde_json::to_string(&u.countries_of_interest).unwrap_or_default(),
            serde_json::to_string(&u.teks).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
            u.exposure_detection_summaries,
            u.symptoms_started_on,
            u.from_cun,
            u.teks_dropped
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
            at_ms,
        ],
    )?;
    Ok(())
}

/// Every upload, oldest first.
pub(crate) fn uploads(c: &Connection) -> rusqlite::Result<Vec<Upload>> {
    let mut stmt = c.prepare_cached(
        "SELECT at, province, countries_of_interest, teks, summaries, symptoms_started_on, from_cun, teks_dropped
         FROM uploads ORDER BY id",
    )?;
    stmt.query_map([], |r| {
        let countries: String = r.get(2)?;
        let teks: String = r.get(3)?;
        let dropped: Option<String> = r.get(7)?;
        Ok(Upload {
            at: r.get(0)?,
            province: r.get(1)?,
            countries_of_interest: json_column(2, &countries)?,
            teks: json_column(3, &teks)?,
            exposure_detection_summaries: r.get(4)?,
            symptoms_started_on: r.get(5)?,
            from_cun: r.get(6)?,
            teks_dropped: dropped.as_deref().map(|d| json_column(7, d)).transpose()?,
        })
    })?
    .collect()
}
