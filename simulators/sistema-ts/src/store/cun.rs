//! What happened to each CUN after it was issued (its issue is read from the
//! record); the history goes with the record when it is purged (ORD-3.2). No CUN
//! is issued twice while a record holds it: the hash of the CUN is unique among the
//! records ([`super::test_results::insert`]).

use ecosim_core::store::CachedSql;
use jiff::Timestamp;
use rusqlite::{Connection, params};
use serde::Serialize;
use serde_json::Value;

use super::test_results::Record;

/// What happened to a CUN; the variant's fields are the event's `dettaglio`. No
/// personal data; read with the record, purged with it. `Issued` is not stored: it
/// is the record's own region, sender and time ([`history`]).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub(crate) enum Happened<'a> {
    /// A region (or lab) sent the result and got the CUN.
    Issued { regione: &'a str, da: &'a str },
    /// A region corrected these fields (ORD-3.3a).
    Corrected { campi: &'a [&'a str], da: &'a str },
    /// Immuni was unlocked with it: `self` (the app, DM-A.1b), `call_center` or `asl` (ORD-7.3).
    Unlocked {
        modalita: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        operatore: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        supervisore: Option<&'a str>,
        requirement: &'static str,
    },
    /// Sistema TS sent it to the citizen on this channel (ORD-6.2).
    Notified { canale: &'a str, requirement: &'static str },
}

impl Happened<'_> {
    /// The event's name in the history.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Issued { .. } => "issued",
            Self::Corrected { .. } => "corrected",
            Self::Unlocked { .. } => "unlocked",
            Self::Notified { .. } => "notified",
        }
    }
}

/// Forgets `cun` with its record: its history, HIS verifications and the failed
/// checks against it.
pub(crate) fn forget(tx: &Connection, cun: &str) -> rusqlite::Result<()> {
    tx.exec("DELETE FROM cun_events WHERE cun = ?1", [cun])?;
    tx.exec("DELETE FROM cun_verifications WHERE cun = ?1", [cun])?;
    tx.exec("DELETE FROM card_failures WHERE cun = ?1", [cun])?;
    Ok(())
}

/// Records what happened to `cun` at `at`.
pub(crate) fn record(tx: &Connection, cun: &str, at: Timestamp, what: &Happened<'_>) -> rusqlite::Result<()> {
    let detail = serde_json::to_string(what).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.exec(
        "INSERT INTO cun_events (cun, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
        params![cun, at.to_string(), what.kind(), detail],
    )?;
    Ok(())
}

/// An event of a CUN's history, as regions read it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CunEvent {
    pub(crate) at: String,
    pub(crate) evento: String,
    pub(crate) dettaglio: Value,
}

/// What happened to the CUN of `record`, oldest first: its issue, then what the
/// history kept.
pub(crate) fn history(c: &Connection, record: &Record) -> rusqlite::Result<Vec<CunEvent>> {
    let issued = Happened::Issued { regione: &record.region, da: &record.submitted_by };
    let mut events = vec![CunEvent {
        at: record.created_at.clone(),
        evento: issued.kind().to_owned(),
        dettaglio: serde_json::to_value(&issued).unwrap_or(Value::Null),
    }];
    let mut stmt = c.prepare_cached("SELECT at, kind, detail FROM cun_events WHERE cun = ?1 ORDER BY id")?;
    for event in stmt.query_map([&record.cun], |r| {
        let detail: String = r.get(2)?;
        Ok(CunEvent {
            at: r.get(0)?,
            evento: r.get(1)?,
            dettaglio: serde_json::from_str(&detail).unwrap_or(Value::Null),
        })
    })? {
        events.push(event?);
    }
    Ok(events)
}
