//! PN-DGC's database: the schema, and every statement with its rows typed.

use ecosim_core::store::CachedSql;
use rusqlite::{Connection, OptionalExtension, params};

/// Schema migrations, in order; never edit a shipped one.
pub(crate) static MIGRATIONS: &[&str] = &[
    "CREATE TABLE eventi (
        id TEXT PRIMARY KEY,
        tipo TEXT NOT NULL,
        assistito TEXT NOT NULL,
        payload TEXT NOT NULL,
        ricevuto_il TEXT NOT NULL,
        emissione_ms INTEGER NOT NULL,
        stato TEXT NOT NULL,
        motivo TEXT,
        certificato TEXT
    );
    CREATE INDEX eventi_due ON eventi (stato, emissione_ms);
    CREATE TABLE certificati (
        id TEXT PRIMARY KEY,
        uvci TEXT NOT NULL UNIQUE,
        tipo TEXT NOT NULL,
        assistito TEXT NOT NULL,
        evento TEXT NOT NULL,
        authcode TEXT NOT NULL,
        authcode_sha TEXT NOT NULL UNIQUE,
        source_sha TEXT,
        cf_sha TEXT,
        ultime8 TEXT,
        scadenza_ts TEXT,
        fgl TEXT,
        dcc TEXT NOT NULL,
        hc1 TEXT NOT NULL,
        emesso_il TEXT NOT NULL,
        emesso_ms INTEGER NOT NULL
    );
    CREATE INDEX certificati_source ON certificati (source_sha);
    CREATE INDEX certificati_assistito ON certificati (assistito);",
    ecosim_core::outbox::MIGRATION,
    ecosim_core::outbox::DUE_MIGRATION,
    // Plain row ids: no `sqlite_sequence` write per enqueue (#14).
    ecosim_core::outbox::ROWID_MIGRATION,
];

/// An event as held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldEvent {
    /// The event as JSON.
    pub(crate) payload: String,
    /// `in_attesa`, `emesso` or `scartato`.
    pub(crate) stato: String,
    /// When it is (or was) to be issued, Unix ms.
    pub(crate) emissione_ms: i64,
    /// Why it was discarded.
    pub(crate) motivo: Option<String>,
}

/// The event `id`, if held.
pub(crate) fn held_event(c: &Connection, id: &str) -> rusqlite::Result<Option<HeldEvent>> {
    c.row("SELECT payload, stato, emissione_ms, motivo FROM eventi WHERE id = ?1", [id], |r| {
        Ok(HeldEvent { payload: r.get(0)?, stato: r.get(1)?, emissione_ms: r.get(2)?, motivo: r.get(3)? })
    })
    .optional()
}

/// An event as received.
#[derive(Debug, Clone)]
pub(crate) struct NewEvent<'a> {
    pub(crate) id: &'a str,
    pub(crate) tipo: &'a str,
    pub(crate) assistito: &'a str,
    pub(crate) received_at: String,
    pub(crate) held: HeldEvent,
}

/// Writes a new event.
pub(crate) fn insert_event(tx: &Connection, e: &NewEvent<'_>) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO eventi (id, tipo, assistito, payload, ricevuto_il, emissione_ms, stato, motivo)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            e.id,
            e.tipo,
            e.assistito,
            e.held.payload,
            e.received_at,
            e.held.emissione_ms,
            e.held.stato,
            e.held.motivo
        ],
    )?;
    Ok(())
}

/// The events waiting whose time has come at `now_ms`: `(id, payload)`, in order.
pub(crate) fn due_events(c: &Connection, now_ms: i64) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, payload FROM eventi WHERE stato = 'in_attesa' AND emissione_ms <= ?1 ORDER BY emissione_ms, id",
    )?;
    stmt.query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
}

/// Marks an event discarded.
pub(crate) fn discard_event(tx: &Connection, id: &str, motivo: &str) -> rusqlite::Result<()> {
    tx.exec("UPDATE eventi SET stato = 'scartato', motivo = ?2 WHERE id = ?1", params![id, motivo])?;
    Ok(())
}

/// Whether `assistito` already has a vaccination certificate.
pub(crate) fn has_vaccination_certificate(c: &Connection, assistito: &str) -> rusqlite::Result<bool> {
    c.row(
        "SELECT EXISTS (SELECT 1 FROM certificati WHERE assistito = ?1 AND tipo = 'vaccinazione')",
        [assistito],
        |r| r.get(0),
    )
}

/// The date of the latest dose `assistito` holds a vaccination certificate for.
pub(crate) fn latest_dose_certified(c: &Connection, assistito: &str) -> rusqlite::Result<Option<String>> {
    c.row(
        "SELECT MAX(json_extract(dcc, '$.v[0].dt')) FROM certificati WHERE assistito = ?1 AND tipo = 'vaccinazione'",
        [assistito],
        |r| r.get(0),
    )
}

/// A certificate as issued.
#[derive(Debug, Clone)]
pub(crate) struct NewCertificate<'a> {
    pub(crate) uvci: &'a str,
    pub(crate) tipo: &'a str,
    pub(crate) assistito: &'a str,
    pub(crate) evento: &'a str,
    pub(crate) authcode: &'a str,
    pub(crate) authcode_sha: String,
    pub(crate) source_sha: Option<String>,
    pub(crate) cf_sha: Option<String>,
    pub(crate) ultime8: Option<&'a str>,
    pub(crate) scadenza_ts: Option<String>,
    pub(crate) fgl: Option<&'a str>,
    pub(crate) dcc: String,
    pub(crate) hc1: &'a str,
    pub(crate) emesso_il: String,
    pub(crate) emesso_ms: i64,
}

/// Writes a certificate and marks its event issued.
pub(crate) fn insert_certificate(tx: &Connection, c: &NewCertificate<'_>) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT INTO certificati (id, uvci, tipo, assistito, evento, authcode, authcode_sha, source_sha, cf_sha,
             ultime8, scadenza_ts, fgl, dcc, hc1, emesso_il, emesso_ms)
         VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            c.uvci,
            c.tipo,
            c.assistito,
            c.evento,
            c.authcode,
            c.authcode_sha,
            c.source_sha,
            c.cf_sha,
            c.ultime8,
            c.scadenza_ts,
            c.fgl,
            c.dcc,
            c.hc1,
            c.emesso_il,
            c.emesso_ms,
        ],
    )?;
    tx.exec("UPDATE eventi SET stato = 'emesso', certificato = ?2 WHERE id = ?1", params![c.evento, c.uvci])?;
    Ok(())
}

/// A certificate found for retrieval.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) uvci: String,
    pub(crate) hc1: String,
    pub(crate) fgl: Option<String>,
}

/// What a retrieval looks a certificate up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// The AUTHCODE's hash.
    Authcode,
    /// The source document's hash (`CUN-...`, `NUCG-...`).
    Source,
}

/// The newest certificate whose `key` hash is `sha` and that matches the card
/// (`last8`, `expiry`), or, without a card, the codice fiscale's hash `cf_sha`.
/// The DGC-RETRIEVE mutant's lookup (`ecosim mutants`): the card's expiry ignored.
pub(crate) fn find_ignoring_expiry(
    c: &Connection,
    key: Key,
    sha: &str,
    last8: &str,
) -> rusqlite::Result<Option<Found>> {
    let column = match key {
        Key::Authcode => "authcode_sha",
        Key::Source => "source_sha",
    };
    c.row(
        &format!("SELECT uvci, hc1, fgl FROM certificati WHERE {column} = ?1 AND ultime8 = ?2 ORDER BY emesso_ms DESC LIMIT 1"),
        params![sha, last8],
        |r| Ok(Found { uvci: r.get(0)?, hc1: r.get(1)?, fgl: r.get(2)? }),
    )
    .optional()
}

pub(crate) fn find(
    c: &Connection,
    key: Key,
    sha: &str,
    card: Option<(&str, &str)>,
    cf_sha: Option<&str>,
) -> rusqlite::Result<Option<Found>> {
    let column = match key {
        Key::Authcode => "authcode_sha",
        Key::Source => "source_sha",
    };
    let found = |r: &rusqlite::Row<'_>| Ok(Found { uvci: r.get(0)?, hc1: r.get(1)?, fgl: r.get(2)? });
    match (card, cf_sha) {
        (Some((last8, expiry)), _) => c.row(
            &format!(
                "SELECT uvci, hc1, fgl FROM certificati WHERE {column} = ?1 AND ultime8 = ?2 AND scadenza_ts = ?3
                 ORDER BY emesso_ms DESC, rowid DESC LIMIT 1"
            ),
            params![sha, last8, expiry],
            found,
        ),
        (None, cf) => c.row(
            &format!(
                "SELECT uvci, hc1, fgl FROM certificati WHERE {column} = ?1 AND cf_sha IS ?2
                 ORDER BY emesso_ms DESC, rowid DESC LIMIT 1"
            ),
            params![sha, cf],
            found,
        ),
    }
    .optional()
}

/// How many events wait for their time.
/// The distinct times events wait for, earliest first.
pub(crate) fn waiting_times(c: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut stmt =
        c.prepare_cached("SELECT DISTINCT emissione_ms FROM eventi WHERE stato = 'in_attesa' ORDER BY emissione_ms")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

pub(crate) fn waiting(c: &Connection) -> rusqlite::Result<i64> {
    c.row("SELECT COUNT(*) FROM eventi WHERE stato = 'in_attesa'", [], |r| r.get(0))
}
