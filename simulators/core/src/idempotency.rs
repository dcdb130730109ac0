//! `Idempotency-Key`: the same key and body get the same answer; the same key with
//! another body gets 409. Keys are scoped to the calling account.

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

/// The header.
pub const HEADER: &str = "idempotency-key";

/// A key read from the request, with the hash of the body it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    account: String,
    key: String,
    request_hash: String,
}

/// Reads and checks the `Idempotency-Key` header (1-255 visible ASCII characters).
pub fn key_of(headers: &axum::http::HeaderMap, account: &str, body: &[u8]) -> Result<Option<Key>, Problem> {
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
    }))
}

/// A stored answer for `key`: `Ok(Some((status, body)))` to replay, `Err` 409 if the
/// key came with another body, `Ok(None)` if new.
pub fn replay(conn: &Connection, key: &Key) -> Result<Option<(u16, String)>, Problem> {
    let row: Option<(String, u16, String)> = conn
        .query_row(
            "SELECT request_hash, status, body FROM idempotency WHERE account = ?1 AND key = ?2",
            params![key.account, key.key],
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
pub fn precheck(
    store: &crate::store::Store,
    headers: &axum::http::HeaderMap,
    account: &str,
    body: &[u8],
) -> Result<(Option<Key>, Option<axum::response::Response>), Problem> {
    let key = key_of(headers, account, body)?;
    if let Some(k) = &key
        && let Some((status, stored)) = store.with(|c| Ok(replay(c, k)))??
    {
        return Ok((key, Some(replayed(status, stored))));
    }
    Ok((key, None))
}

/// Remembers the answer given for `key` (in the same transaction as the effect).
pub fn remember(conn: &Connection, key: &Key, status: u16, body: &str) -> rusqlite::Result<()> {
    conn.exec(
        "INSERT OR REPLACE INTO idempotency (account, key, request_hash, status, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key.account, key.key, key.request_hash, status, body],
    )?;
    Ok(())
}
