//! The gateway's database: the schema, and every statement with its rows typed.

use ecosim_core::store::CachedSql;
use rusqlite::{Connection, OptionalExtension, params};

/// Schema migrations, in order; never edit a shipped one.
pub(crate) static MIGRATIONS: &[&str] = &[
    "CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        sender TEXT NOT NULL,
        recipient TEXT NOT NULL,
        text TEXT NOT NULL,
        encoding TEXT NOT NULL,
        segments INTEGER NOT NULL,
        status TEXT NOT NULL,
        error TEXT,
        callback_url TEXT,
        accepted_at TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX messages_by_recipient ON messages (recipient, status);
    CREATE TABLE mails (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient TEXT NOT NULL,
        sender TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        message_id TEXT,
        received_at TEXT NOT NULL
    );
    CREATE INDEX mails_by_recipient ON mails (recipient);
    CREATE UNIQUE INDEX mails_once ON mails (recipient, message_id) WHERE message_id IS NOT NULL;",
    ecosim_core::idempotency::MIGRATION,
];

/// An SMS as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Message {
    pub(crate) id: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) text: String,
    pub(crate) encoding: String,
    pub(crate) segments: u32,
    pub(crate) status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    pub(crate) accepted_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) delivered_at: Option<String>,
}

/// An SMS as written, with who sent it and where its report goes.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage<'a> {
    pub(crate) message: Message,
    pub(crate) account: &'a str,
    pub(crate) callback_url: Option<&'a str>,
}

const MESSAGE_COLUMNS: &str =
    "id, sender, recipient, text, encoding, segments, status, error, accepted_at, delivered_at";

fn message_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        from: r.get(1)?,
        to: r.get(2)?,
        text: r.get(3)?,
        encoding: r.get(4)?,
        segments: r.get(5)?,
        status: r.get(6)?,
        error: r.get(7)?,
        accepted_at: r.get(8)?,
        delivered_at: r.get(9)?,
    })
}

/// Writes an SMS.
pub(crate) fn insert_message(tx: &Connection, m: &NewMessage<'_>) -> rusqlite::Result<()> {
    let s = &m.message;
    tx.exec(
        "INSERT INTO messages (id, account, sender, recipient, text, encoding, segments, status, error,
                               callback_url, accepted_at, delivered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            s.id,
            m.account,
            s.from,
            s.to,
            s.text,
            s.encoding,
            s.segments,
            s.status,
            s.error,
            m.callback_url,
            s.accepted_at,
            s.delivered_at,
        ],
    )?;
    Ok(())
}

/// The SMS `id`, if `account` sent it.
pub(crate) fn message_sent_by(c: &Connection, id: &str, account: &str) -> rusqlite::Result<Option<Message>> {
    c.row(
        &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?1 AND account = ?2"),
        params![id, account],
        message_of,
    )
    .optional()
}

/// Every SMS delivered to `msisdn`, oldest first.
pub(crate) fn delivered_to(c: &Connection, msisdn: &str) -> rusqlite::Result<Vec<Message>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE recipient = ?1 AND status = 'delivered' ORDER BY rowid"
    ))?;
    stmt.query_map([msisdn], message_of)?.collect()
}

/// How many SMS each sender alias sent.
pub(crate) fn counts_by_sender(c: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = c.prepare_cached("SELECT sender, COUNT(*) FROM messages GROUP BY sender ORDER BY sender")?;
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
}

/// A received e-mail.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Mail {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) subject: String,
    pub(crate) body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message_id: Option<String>,
    pub(crate) received_at: String,
}

/// Files an e-mail for one recipient (once per `Message-ID`).
pub(crate) fn insert_mail(tx: &Connection, m: &Mail) -> rusqlite::Result<()> {
    tx.exec(
        "INSERT OR IGNORE INTO mails (recipient, sender, subject, body, message_id, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![m.to, m.from, m.subject, m.body, m.message_id, m.received_at],
    )?;
    Ok(())
}

/// Every e-mail received for `address`, oldest first.
pub(crate) fn mails_to(c: &Connection, address: &str) -> rusqlite::Result<Vec<Mail>> {
    let mut stmt = c.prepare_cached(
        "SELECT sender, recipient, subject, body, message_id, received_at FROM mails WHERE recipient = ?1 ORDER BY id",
    )?;
    stmt.query_map([address], |r| {
        Ok(Mail {
            from: r.get(0)?,
            to: r.get(1)?,
            subject: r.get(2)?,
            body: r.get(3)?,
            message_id: r.get(4)?,
            received_at: r.get(5)?,
        })
    })?
    .collect()
}
