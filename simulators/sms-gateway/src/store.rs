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
    // A message to many recipients is stored once (#13): its content, and a mailbox
    // row per recipient pointing at it.
    "CREATE TABLE mail_contents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sender TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        message_id TEXT,
        received_at TEXT NOT NULL
    );
    CREATE TABLE mailbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        recipient TEXT NOT NULL,
        content INTEGER NOT NULL REFERENCES mail_contents (id),
        message_id TEXT
    );
    INSERT INTO mail_contents (id, sender, subject, body, message_id, received_at)
        SELECT id, sender, subject, body, message_id, received_at FROM mails;
    INSERT INTO mailbox (recipient, content, message_id) SELECT recipient, id, message_id FROM mails ORDER BY id;
    DROP TABLE mails;
    CREATE INDEX mailbox_by_recipient ON mailbox (recipient);
    CREATE UNIQUE INDEX mailbox_once ON mailbox (recipient, message_id) WHERE message_id IS NOT NULL;",
    ecosim_core::idempotency::EXPIRY_MIGRATION,
    // SMS per sender kept as they are written (#14): counting them with a
    // `GROUP BY` sorted every message at each `GET /_admin/state`, which load runs
    // poll while they drain (a million rows: the gateway's thread stalled for it).
    "CREATE TABLE messages_per_sender (sender TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO messages_per_sender (sender, n) SELECT sender, COUNT(*) FROM messages GROUP BY sender;
    CREATE TRIGGER messages_counted AFTER INSERT ON messages BEGIN
        INSERT INTO messages_per_sender (sender, n) VALUES (NEW.sender, 1)
            ON CONFLICT (sender) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER messages_uncounted AFTER DELETE ON messages BEGIN
        UPDATE messages_per_sender SET n = n - 1 WHERE sender = OLD.sender;
    END;",
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
    pub(crate) message: &'a Message,
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
    let s = m.message;
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
    let mut stmt = c.prepare_cached("SELECT sender, n FROM messages_per_sender WHERE n > 0 ORDER BY sender")?;
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

/// Files an e-mail once for all its recipients: one content row, and a mailbox row
/// per recipient that does not hold its `Message-ID` yet. Returns the recipients
/// it was filed for.
pub(crate) fn insert_mail(tx: &Connection, m: &NewMail<'_>) -> rusqlite::Result<usize> {
    tx.exec(
        "INSERT INTO mail_contents (sender, subject, body, message_id, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![m.from, m.subject, m.body, m.message_id, m.received_at],
    )?;
    let content = tx.last_insert_rowid();
    let mut filed = 0;
    for to in m.to {
        filed += tx.exec(
            "INSERT OR IGNORE INTO mailbox (recipient, content, message_id) VALUES (?1, ?2, ?3)",
            params![to, content, m.message_id],
        )?;
    }
    if filed == 0 {
        // A retry every recipient already holds: keep no orphan content.
        tx.exec("DELETE FROM mail_contents WHERE id = ?1", [content])?;
    }
    Ok(filed)
}

/// An e-mail to file: one content, many recipients.
#[derive(Debug, Clone)]
pub(crate) struct NewMail<'a> {
    pub(crate) from: &'a str,
    pub(crate) to: &'a [String],
    pub(crate) subject: &'a str,
    pub(crate) body: &'a str,
    pub(crate) message_id: Option<&'a str>,
    pub(crate) received_at: &'a str,
}

/// Every e-mail received for `address`, oldest first.
pub(crate) fn mails_to(c: &Connection, address: &str) -> rusqlite::Result<Vec<Mail>> {
    let mut stmt = c.prepare_cached(
        "SELECT c.sender, b.recipient, c.subject, c.body, c.message_id, c.received_at
         FROM mailbox b JOIN mail_contents c ON c.id = b.content WHERE b.recipient = ?1 ORDER BY b.id",
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

#[cfg(test)]
mod tests {
    use super::*;
    use ecosim_core::store::{Store, StoreLocation};

    fn sms(c: &Connection, id: &str, from: &str) -> rusqlite::Result<()> {
        c.execute(
            "INSERT INTO messages (id, account, sender, recipient, text, encoding, segments, status, accepted_at)
             VALUES (?1, 'sistema-ts', ?2, '+393331234567', 'x', 'GSM-7', 1, 'delivered', '2026-12-03T10:00:00Z')",
            [id, from],
        )
        .map(|_| ())
    }

    #[test]
    fn counts_by_sender_follow_inserts_deletes_rollbacks_and_the_messages_held_before() {
        // A database of the previous version, with messages in it.
        let before = &MIGRATIONS[..MIGRATIONS.len() - 1];
        let dir = std::env::temp_dir().join(format!("ecosim-gw-counts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let location = StoreLocation::Dir(dir.clone());
        Store::open(&location, "gw", before)
            .expect("open")
            .with(|c| {
                sms(c, "1", "sistema Ts")?;
                sms(c, "2", "sistema Ts")?;
                sms(c, "3", "Min Salute")
            })
            .expect("written");
        let store = Store::open(&location, "gw", MIGRATIONS).expect("migrated");
        let counts = |s: &Store| s.with(counts_by_sender).expect("counts");
        assert_eq!(counts(&store), [("Min Salute".to_owned(), 1), ("sistema Ts".to_owned(), 2)]);

        store.with(|c| sms(c, "4", "Min Salute")).expect("written");
        let rolled_back = store.transaction(|tx| {
            sms(tx, "5", "sistema Ts")?;
            Err::<(), _>(ecosim_core::store::StoreError::from(rusqlite::Error::QueryReturnedNoRows))
        });
        assert!(rolled_back.is_err());
        assert_eq!(counts(&store), [("Min Salute".to_owned(), 2), ("sistema Ts".to_owned(), 2)]);

        store.with(|c| c.execute("DELETE FROM messages WHERE id IN ('1', '3', '4')", [])).expect("deleted");
        assert_eq!(counts(&store), [("sistema Ts".to_owned(), 1)], "a sender with none left is not listed");
        store.reset().expect("reset");
        assert_eq!(counts(&store), []);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
