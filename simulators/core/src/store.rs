//! Each simulator's state in its own SQLite database.
//!
//! One code path for every use: an in-memory database for tests and scenario runs,
//! a file under `--data-dir` (WAL, `synchronous=FULL`, so nothing acknowledged is
//! lost even on power failure) for `ecosim up`. Schemas are versioned from the
//! start: a simulator passes its list of migrations, and [`Store::open`] applies
//! those the database has not seen yet (tracked in `PRAGMA user_version`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

/// Storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database is newer than this build.
    #[error("database {name} has schema version {found}, newer than this ecosim ({known})")]
    TooNew {
        /// The database name.
        name: String,
        /// Its version.
        found: usize,
        /// The newest this build knows.
        known: usize,
    },
}

/// Statements through the connection's statement cache: parsing SQL costs more than
/// running it on the hot paths, so simulators use these instead of `execute` and
/// `query_row`.
pub trait CachedSql {
    /// `execute` with a cached statement.
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    /// `query_row` with a cached statement.
    fn row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
}

impl CachedSql for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
    fn row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Where a store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// In memory, gone with the process.
    Memory,
    /// `<dir>/<name>.sqlite`.
    Dir(PathBuf),
}

/// A simulator's database.
pub struct Store {
    name: String,
    conn: Mutex<Connection>,
    migrations: &'static [&'static str],
    path: Option<PathBuf>,
    generation: u64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("name", &self.name).field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) database `name` and brings its schema up to date.
    ///
    /// `migrations[i]` moves the schema from version `i` to `i + 1`; never edit one
    /// that has shipped, add the next.
    pub fn open(location: &StoreLocation, name: &str, migrations: &'static [&'static str]) -> Result<Self, StoreError> {
        let (conn, path) = match location {
            StoreLocation::Memory => {
                let conn = Connection::open_in_memory()?;
                (conn, None)
            }
            StoreLocation::Dir(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir { path: dir.clone(), source })?;
                let path = dir.join(format!("{name}.sqlite"));
                let conn = Connection::open(&path)?;
                conn.pragma_update(None, "journal_mode", "WAL")?;
                conn.pragma_update(None, "synchronous", "FULL")?;
                (conn, Some(path))
            }
        };
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.set_prepared_statement_cache_capacity(128);
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // How many times this database has been opened: seeds id streams so that ids
        // made after a restart never repeat earlier ones.
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS _ecosim_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT INTO _ecosim_meta VALUES ('generation', 0)
                ON CONFLICT(key) DO UPDATE SET value = value + 1;",
        )?;
        let generation: i64 =
            conn.query_row("SELECT value FROM _ecosim_meta WHERE key = 'generation'", [], |r| r.get(0))?;
        let store = Self {
            name: name.to_owned(),
            conn: Mutex::new(conn),
            migrations,
            path,
            generation: u64::try_from(generation).unwrap_or(0),
        };
        store.migrate()?;
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs blocking database work. On disk a commit waits for an fsync: inside a
    /// multi-threaded runtime that work is moved off the async worker
    /// (`block_in_place`), so one slow disk does not stall every other request.
    fn blocking<T>(&self, f: impl FnOnce() -> T) -> T {
        let multi_thread = self.path.is_some()
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread { tokio::task::block_in_place(f) } else { f() }
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let version = usize::try_from(version).unwrap_or(0);
        if version > self.migrations.len() {
            return Err(StoreError::TooNew { name: self.name.clone(), found: version, known: self.migrations.len() });
        }
        for (i, sql) in self.migrations.iter().enumerate().skip(version) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        let v: i64 = self.lock().pragma_query_value(None, "user_version", |r| r.get(0))?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    /// How many times the database was opened before (0 for a new or in-memory one).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The database file, if on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `f` with the connection.
    pub fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        self.blocking(|| Ok(f(&self.lock())?))
    }

    /// Runs `f` in a transaction, committed if `f` returns `Ok`, rolled back if it
    /// returns `Err` or panics. `BEGIN`/`COMMIT` go through the statement cache.
    pub fn transaction<T, E: From<StoreError>>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E> {
        struct Open<'c>(&'c Connection, bool);
        impl Drop for Open<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    let _ = self.0.exec("ROLLBACK", []);
                }
            }
        }
        self.blocking(|| {
            let conn = self.lock();
            conn.exec("BEGIN", []).map_err(|e| E::from(e.into()))?;
            let mut open = Open(&conn, false);
            let out = f(open.0)?;
            open.0.exec("COMMIT", []).map_err(|e| E::from(e.into()))?;
            open.1 = true;
            Ok(out)
        })
    }

    /// Empties every table (schema kept): `POST /_admin/reset`.
    pub fn reset(&self) -> Result<(), StoreError> {
        let conn = self.lock();
        let tables: Vec<String> = {
            let mut stmt = conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 AND name NOT LIKE '\\_ecosim%' ESCAPE '\\'",
            )?;
            stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        for t in &tables {
            conn.execute(&format!("DELETE FROM \"{}\"", t.replace('"', "\"\"")), [])?;
        }
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
        Ok(())
    }

    /// Row counts of every table, for `GET /_admin/state`.
    pub fn counts(&self) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
        let conn = self.lock();
        let tables: Vec<String> = {
            let mut stmt = conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 AND name NOT LIKE '\\_ecosim%' ESCAPE '\\' ORDER BY name",
            )?;
            stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        let mut out = serde_json::Map::new();
        for t in tables {
            let n: i64 =
                conn.query_row(&format!("SELECT COUNT(*) FROM \"{}\"", t.replace('"', "\"\"")), [], |r| r.get(0))?;
            out.insert(t, n.into());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static MIGRATIONS: &[&str] = &[
        "CREATE TABLE cun (code TEXT PRIMARY KEY, esito TEXT NOT NULL);",
        "ALTER TABLE cun ADD COLUMN region TEXT NOT NULL DEFAULT '000';",
    ];

    #[test]
    fn migrations_run_once_and_data_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loc = StoreLocation::Dir(dir.path().to_owned());
        {
            let s = Store::open(&loc, "sistema-ts", &MIGRATIONS[..1]).expect("open");
            assert_eq!(s.schema_version().expect("v"), 1);
            s.with(|c| c.execute("INSERT INTO cun VALUES ('6HQ5EW73HE', 'POSITIVO')", [])).expect("insert");
        }
        let s = Store::open(&loc, "sistema-ts", MIGRATIONS).expect("reopen");
        assert_eq!(s.schema_version().expect("v"), 2);
        let (esito, region): (String, String) =
            s.with(|c| c.query_row("SELECT esito, region FROM cun", [], |r| Ok((r.get(0)?, r.get(1)?)))).expect("row");
        assert_eq!((esito.as_str(), region.as_str()), ("POSITIVO", "000"));
        assert!(s.path().is_some_and(|p| p.ends_with("sistema-ts.sqlite")));
        assert_eq!(s.generation(), 1);
    }

    #[test]
    fn a_database_newer_than_the_build_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loc = StoreLocation::Dir(dir.path().to_owned());
        drop(Store::open(&loc, "x", MIGRATIONS).expect("open"));
        assert!(matches!(Store::open(&loc, "x", &MIGRATIONS[..1]), Err(StoreError::TooNew { found: 2, .. })));
    }

    #[test]
    fn reset_empties_tables_and_counts_show_it() {
        let s = Store::open(&StoreLocation::Memory, "t", MIGRATIONS).expect("open");
        s.with(|c| c.execute("INSERT INTO cun (code, esito) VALUES ('A', 'B')", [])).expect("insert");
        assert_eq!(s.counts().expect("counts")["cun"], 1);
        s.reset().expect("reset");
        assert_eq!(s.counts().expect("counts")["cun"], 0);
    }

    #[test]
    fn a_failed_transaction_leaves_nothing() {
        let s = Store::open(&StoreLocation::Memory, "t", MIGRATIONS).expect("open");
        let r: Result<(), StoreError> = s.transaction(|tx| {
            tx.execute("INSERT INTO cun (code, esito) VALUES ('A', 'B')", [])?;
            tx.execute("INSERT INTO cun (code, esito) VALUES ('A', 'B')", [])?;
            Ok(())
        });
        assert!(r.is_err());
        assert_eq!(s.counts().expect("counts")["cun"], 0);
    }
}
