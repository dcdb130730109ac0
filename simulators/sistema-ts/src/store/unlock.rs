//! The Immuni unlock: failed card checks (brute-force protection) and the HIS
//! verifications bound to CUNs.

use ecosim_core::store::CachedSql;
use rusqlite::{Connection, OptionalExtension, params};

/// Failed card checks for `last8` after `since_ms`.
pub(crate) fn failures_since(c: &Connection, last8: &str, since_ms: i64) -> rusqlite::Result<i64> {
    c.row("SELECT COUNT(*) FROM card_failures WHERE last8 = ?1 AND at_ms > ?2", params![last8, since_ms], |r| r.get(0))
}

/// Failed card checks against `cun` after `since_ms`.
pub(crate) fn cun_failures_since(c: &Connection, cun: &str, since_ms: i64) -> rusqlite::Result<i64> {
    c.row("SELECT COUNT(*) FROM card_failures WHERE cun = ?1 AND at_ms > ?2", params![cun, since_ms], |r| r.get(0))
}

/// Counts a failed check: the card digits, and the CUN when the one checked
/// exists (no codice fiscale is kept).
pub(crate) fn add_failure(c: &Connection, last8: &str, cun: Option<&str>, at_ms: i64) -> rusqlite::Result<()> {
    c.exec("INSERT INTO card_failures (last8, cun, at_ms) VALUES (?1, ?2, ?3)", params![last8, cun, at_ms])?;
    Ok(())
}

/// Deletes failed checks made before `before_ms` (out of every window).
pub(crate) fn sweep_failures(c: &Connection, before_ms: i64) -> rusqlite::Result<usize> {
    c.exec("DELETE FROM card_failures WHERE at_ms <= ?1", [before_ms])
}

/// Whether `cun` was already used for an unlock (invalidated).
pub(crate) fn used(c: &Connection, cun: &str) -> rusqlite::Result<bool> {
    c.row("SELECT EXISTS (SELECT 1 FROM cun_verifications WHERE cun = ?1 AND invalidated_at IS NOT NULL)", [cun], |r| {
        r.get(0)
    })
}

/// Records a verification `id` of `cun`.
pub(crate) fn insert_verification(c: &Connection, id: &str, cun: &str, at: &str) -> rusqlite::Result<()> {
    c.exec(
        "INSERT INTO cun_verifications (id_test_verification, cun, verified_at) VALUES (?1, ?2, ?3)",
        params![id, cun, at],
    )?;
    Ok(())
}

/// The CUN of verification `id` whose hash is `cun_sha`, and whether it was invalidated.
pub(crate) fn verification(tx: &Connection, id: &str, cun_sha: &str) -> rusqlite::Result<Option<(String, bool)>> {
    tx.row(
        "SELECT v.cun, v.invalidated_at IS NOT NULL FROM cun_verifications v JOIN test_results t ON t.cun = v.cun
         WHERE v.id_test_verification = ?1 AND t.cun_sha = ?2",
        params![id, cun_sha],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Marks verification `id` used.
pub(crate) fn invalidate(tx: &Connection, id: &str, at: &str) -> rusqlite::Result<()> {
    tx.exec("UPDATE cun_verifications SET invalidated_at = ?2 WHERE id_test_verification = ?1", params![id, at])?;
    Ok(())
}
