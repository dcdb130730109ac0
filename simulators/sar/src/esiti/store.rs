//! The esiti wing's table: results as labs sent them, their state, CUN and channels.

use ecosim_core::store::CachedSql;
use ecosim_domain::test_result::RawTestResult;
use rusqlite::{Connection, OptionalExtension, params};

use crate::outbox::Channel;

/// A result as written when a lab sends it.
#[derive(Debug, Clone)]
pub(crate) struct NewEsito<'a> {
    pub(crate) id: &'a str,
    pub(crate) lab: &'a str,
    pub(crate) region: &'a str,
    /// The body as the lab sent it.
    pub(crate) payload: &'a str,
    pub(crate) sms_to: Option<&'a str>,
    pub(crate) email_to: Option<&'a str>,
    pub(crate) created_at: String,
}

/// Writes a result, `accettato`; a channel without an address has nothing to deliver.
pub(crate) fn insert(tx: &Connection, e: &NewEsito<'_>) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO esiti (id, lab, region, payload, stato, sms_to, email_to, sms_stato, email_stato, created_at)
         VALUES (?1, ?2, ?3, ?4, 'accettato', ?5, ?6, ?7, ?8, ?9)",
        params![
            e.id,
            e.lab,
            e.region,
            e.payload,
            e.sms_to,
            e.email_to,
            if e.sms_to.is_some() { "in_attesa" } else { "nessuno" },
            if e.email_to.is_some() { "in_attesa" } else { "nessuno" },
            e.created_at,
        ],
    )?;
    Ok(())
}

/// What a delivery needs of a result.
#[derive(Debug, Clone)]
pub(crate) struct ForDelivery {
    pub(crate) region: String,
    /// The body as the lab sent it; `Err` if the stored text no longer reads.
    pub(crate) payload: Result<RawTestResult, String>,
    pub(crate) cun: Option<String>,
    pub(crate) sms_to: Option<String>,
    pub(crate) email_to: Option<String>,
}

/// Result `id`, for its deliveries.
pub(crate) fn for_delivery(c: &Connection, id: &str) -> rusqlite::Result<Option<ForDelivery>> {
    c.row("SELECT region, payload, cun, sms_to, email_to FROM esiti WHERE id = ?1", [id], |r| {
        let payload: String = r.get(1)?;
        Ok(ForDelivery {
            region: r.get(0)?,
            payload: serde_json::from_str(&payload).map_err(|e| format!("stored result {id} does not read: {e}")),
            cun: r.get(2)?,
            sms_to: r.get(3)?,
            email_to: r.get(4)?,
        })
    })
    .optional()
}

/// The region of result `id`.
pub(crate) fn region_of(c: &Connection, id: &str) -> rusqlite::Result<Option<String>> {
    c.row("SELECT region FROM esiti WHERE id = ?1", [id], |r| r.get(0)).optional()
}

/// Sistema TS gave the CUN (`None`: kept nowhere, the defect that forgets it).
pub(crate) fn cun_received(tx: &Connection, id: &str, cun: Option<&str>) -> rusqlite::Result<()> {
    tx.exec("UPDATE esiti SET cun = ?2, stato = 'cun_ricevuto' WHERE id = ?1", params![id, cun])?;
    Ok(())
}

fn column(channel: Channel) -> &'static str {
    match channel {
        Channel::Sms => "sms_stato",
        Channel::Email => "email_stato",
    }
}

/// The channel has nothing to deliver (a defect suppressed it).
pub(crate) fn channel_none(tx: &Connection, id: &str, channel: Channel) -> rusqlite::Result<()> {
    tx.exec(&format!("UPDATE esiti SET {} = 'nessuno' WHERE id = ?1", column(channel)), [id])?;
    Ok(())
}

/// The channel's message was delivered (`ok`) or refused for good.
pub(crate) fn channel_done(tx: &Connection, id: &str, channel: Channel, ok: bool) -> rusqlite::Result<()> {
    let value = if ok { "consegnato" } else { "errore" };
    tx.exec(&format!("UPDATE esiti SET {} = ?2 WHERE id = ?1", column(channel)), params![id, value])?;
    Ok(())
}

/// A first attempt to Sistema TS failed: the result is on its way.
pub(crate) fn mark_sent(tx: &Connection, id: &str) -> rusqlite::Result<()> {
    tx.exec("UPDATE esiti SET stato = 'inviato' WHERE id = ?1 AND stato = 'accettato'", [id])?;
    Ok(())
}

/// A delivery failed for good.
pub(crate) fn mark_error(tx: &Connection, id: &str, error: &str) -> rusqlite::Result<()> {
    tx.exec("UPDATE esiti SET stato = 'errore', errore = ?2 WHERE id = ?1", params![id, error])?;
    Ok(())
}

/// `notificato` once every channel it had is delivered.
pub(crate) fn notified_if_delivered(tx: &Connection, id: &str) -> rusqlite::Result<()> {
    tx.exec(
        "UPDATE esiti SET stato = 'notificato' WHERE id = ?1 AND stato = 'cun_ricevuto'
         AND sms_stato IN ('consegnato', 'nessuno') AND email_stato IN ('consegnato', 'nessuno')",
        [id],
    )?;
    Ok(())
}

/// A result's state as the lab reads it.
#[derive(Debug, Clone)]
pub(crate) struct State {
    pub(crate) stato: String,
    pub(crate) cun: Option<String>,
    pub(crate) errore: Option<String>,
    pub(crate) sms: String,
    pub(crate) email: String,
}

/// `region`'s result `id`.
pub(crate) fn state(c: &Connection, id: &str, region: &str) -> rusqlite::Result<Option<State>> {
    c.row(
        "SELECT stato, cun, errore, sms_stato, email_stato FROM esiti WHERE id = ?1 AND region = ?2",
        params![id, region],
        |r| Ok(State { stato: r.get(0)?, cun: r.get(1)?, errore: r.get(2)?, sms: r.get(3)?, email: r.get(4)? }),
    )
    .optional()
}
