//! `Idempotency-Key`: the same key and body get the same answer; the same key with
//! another body gets 409. Keys are scoped to the calling account.
//!
//! A key is remembered for `[retention] idempotency_keys` (14 days by default) on the
//! shared clock: older ones read as new and are swept away as others are written, so
//! the table does not grow without end. A key that made a resource can be forgotten
//! with it ([`forget`]): Sistema TS does so when it purges a test result, so a retry
//! after the purge is a new request, never a replay of a CUN that no longer exists.

use crate::store::CachedSql;
use rusqlite::{Connection, OptionalExtension, params};

use crate::problem::Problem;
use ecosim_domain::codes::sha256_hex;

/// The migration that creates the idempotency table; add it to a simulator's list.
pub const MIGRATION: &str = "
CREATE TABLE idempotency (
    account TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (account, key)
);
";

/// The migration that gives keys their time and the resource they made (after
/// [`MIGRATION`] in a simulator's list). Keys from before it have time 0: they
/// never expire by age, only with their resource.
pub const EXPIRY_MIGRATION: &str = "
ALTER TABLE idempotency ADD COLUMN at_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE idempotency ADD COLUMN resource TEXT;
CREATE INDEX idempotency_by_time ON idempotency (at_ms);
CREATE INDEX idempotency_by_resource ON idempotency (resource) WHERE resource IS NOT NULL;
";

/// The header.
pub const HEADER: &str = "idempotency-key";

/// When a key is read, and how long keys are remembered (virtual milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Now, on the shared clock.
    pub now_ms: i64,
    /// How long a key is remembered.
    pub ttl_ms: i64,
}

impl Window {
    /// Now on `ctx`'s clock, with its configured `[retention] idempotency_keys`.
    pub fn of(ctx: &crate::context::Context) -> Self {
        Self {
            now_ms: ctx.clock().now().as_millisecond(),
            ttl_ms: ctx.config().retention.idempotency_keys.0.as_millis() as i64,
        }
    }

    /// Keys remembered before this are forgotten.
    fn cutoff(self) -> i64 {
        self.now_ms.saturating_sub(self.ttl_ms)
    }
}

/// A key read from the request, with the hash of the body it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    account: String,
    key: String,
    request_hash: String,
    window: Window,
}

/// Reads and checks the `Idempotency-Key` header (1-255 visible ASCII characters).
pub fn key_of(
    headers: &axum::http::HeaderMap,
    account: &str,
    body: &[u8],
    window: Window,
) -> Result<Option<Key>, Problem> {
    let Some(v) = headers.get(HEADER) else { return Ok(None) };
    let key = v
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| Problem::invalid_field("Idempotency-Key", "must be 1-255 visible ASCII characters"))?;
    Ok(Some(Key {
        account: account.to_owned(),
        key: key.to_owned(),
        request_hash: sha256_hex(&String::from_utf8_lossy(body)),
        window,
    }))
}

/// A stored answer for `key`: `Ok(Some((status, body)))` to replay, `Err` 409 if the
/// key came with another body, `Ok(None)` if new.
pub fn replay(conn: &Connection, key: &Key) -> Result<Option<(u16, String)>, Problem> {
    // A cached statement: preparing this one cost more than running it, and every
    // keyed write reads it twice (before and inside its transaction).
    let row: Option<(String, u16, String)> = conn
        .row(
            "SELECT request_hash, status, body FROM idempotency
             WHERE account = ?1 AND key = ?2 AND (at_ms = 0 OR at_ms >= ?3)",
            params![key.account, key.key, key.window.cutoff()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(crate::store::StoreError::from)?;
    match row {
        None => Ok(None),
        Some((hash, status, body)) if hash == key.request_hash => Ok(Some((status, body))),
        Some(_) => {
            Err(Problem::conflict(format!("Idempotency-Key {:?} was already used with a different body", key.key))
                .with_field("Idempotency-Key", "already used with a different body"))
        }
    }
}

/// The stored answer, replayed as it was given.
pub fn replayed(status: u16, body: String) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Reads the request's key and, if it was seen with this body, the answer to replay
/// (checked again inside the effect's transaction with [`replay`], against races).
/// The read never keeps the thread waiting for the connection ([`Store::read`]).
///
/// [`Store::read`]: crate::store::Store::read
pub async fn precheck(
    store: &crate::store::Store,
    headers: &axum::http::HeaderMap,
    account: &str,
    body: &[u8],
    window: Window,
) -> Result<(Option<Key>, Option<axum::response::Response>), Problem> {
    let key = key_of(headers, account, body, window)?;
    if let Some(k) = key.clone()
        && let Some((status, stored)) = store.read(move |c| Ok(replay(c, &k))).await??
    {
        return Ok((key, Some(replayed(status, stored))));
    }
    Ok((key, None))
}

/// Keys remembered since the last sweep, across stores: every [`SWEEP_EVERY`]th
/// write also deletes the keys past their time.
static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How often [`remember`] sweeps expired keys away.
pub const SWEEP_EVERY: u64 = 1024;

/// Remembers the answer given for `key` (in the same transaction as the effect),
/// with the `resource` it made if it is to be forgotten with it ([`forget`]).
pub fn remember(conn: &Connection, key: &Key, status: u16, body: &str, resource: Option<&str>) -> rusqlite::Result<()> {
    conn.exec(
        "INSERT OR REPLACE INTO idempotency (account, key, request_hash, status, body, at_ms, resource)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![key.account, key.key, key.request_hash, status, body, key.window.now_ms, resource],
    )?;
    if WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed).is_multiple_of(SWEEP_EVERY) {
        sweep(conn, key.window)?;
    }
    Ok(())
}

/// Deletes the keys past their time in `window`; returns how many.
pub fn sweep(conn: &Connection, window: Window) -> rusqlite::Result<usize> {
    conn.exec("DELETE FROM idempotency WHERE at_ms > 0 AND at_ms < ?1", [window.cutoff()])
}

/// Forgets the key that made `resource` (when the resource itself is deleted).
pub fn forget(conn: &Connection, resource: &str) -> rusqlite::Result<usize> {
    conn.exec("DELETE FROM idempotency WHERE resource = ?1", [resource])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch(MIGRATION).expect("table");
        c.execute_batch(EXPIRY_MIGRATION).expect("expiry");
        c
    }

    fn key(name: &str, now_ms: i64) -> Key {
        let mut h = axum::http::HeaderMap::new();
        h.insert(HEADER, axum::http::HeaderValue::from_str(name).expect("header"));
        key_of(&h, "sar-160", b"{}", Window { now_ms, ttl_ms: 1_000 }).expect("valid").expect("present")
    }

    #[test]
    fn a_key_replays_for_its_time_then_reads_as_new_and_is_swept() {
        let c = table();
        remember(&c, &key("k", 10_000), 201, "{\"cun\":\"A\"}", Some("r-1")).expect("remember");
        assert_eq!(replay(&c, &key("k", 10_999)).expect("read"), Some((201, "{\"cun\":\"A\"}".to_owned())));
        assert_eq!(replay(&c, &key("k", 11_001)).expect("read"), None, "past its time");
        assert_eq!(sweep(&c, Window { now_ms: 11_001, ttl_ms: 1_000 }).expect("sweep"), 1);
        remember(&c, &key("k2", 20_000), 201, "{}", Some("r-2")).expect("remember");
        assert_eq!(forget(&c, "r-2").expect("forget"), 1);
        assert_eq!(replay(&c, &key("k2", 20_001)).expect("read"), None, "forgotten with its resource");
    }

    #[test]
    fn keys_from_before_the_expiry_migration_are_kept_until_their_resource_goes() {
        let c = Connection::open_in_memory().expect("db");
        c.execute_batch(MIGRATION).expect("table");
        c.execute("INSERT INTO idempotency VALUES ('sar-160', 'old', ?1, 201, 'x')", [sha256_hex("{}")]).expect("row");
        c.execute_batch(EXPIRY_MIGRATION).expect("expiry");
        assert_eq!(replay(&c, &key("old", i64::MAX / 2)).expect("read"), Some((201, "x".to_owned())));
        assert_eq!(sweep(&c, Window { now_ms: i64::MAX / 2, ttl_ms: 1 }).expect("sweep"), 0);
    }
}
