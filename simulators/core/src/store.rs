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
    #[error("sqlite: {0}{hint}", hint = full_hint(.0))]
    Sqlite(#[from] rusqlite::Error),
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A group transaction ([`Store::grouped`]) did not commit, or the work in it
    /// was lost to a panic; nothing of it was kept.
    #[error("group commit: {0}")]
    Group(String),
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

/// What "out of memory" most likely means here: an in-memory database at 2 GiB
/// ([`Store::open_memdb`]), not a machine out of memory.
fn full_hint(e: &rusqlite::Error) -> &'static str {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OutOfMemory) {
        " (an in-memory database holds at most 2 GiB, SQLite's largest allocation: \
         for more, run with --data-dir)"
    } else {
        ""
    }
}

/// The page cache of an in-memory store, in KiB ([`Store::open_memdb`]). The
/// pages live in memdb's own buffer, so the cache only saves a copy; a small one is
/// faster, as commits walk it: measured on 2026-12-03, the 10,000/s load of 200,000
/// results drained in 46-48 s with 1 or 4 MiB, 55-56 s with 16 MiB, 77 s with 64 MiB.
const MEMDB_CACHE_KIB: i64 = 4 * 1024;

/// Where a store keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// In memory, gone with the process.
    Memory,
    /// `<dir>/<name>.sqlite`.
    Dir(PathBuf),
}

/// Work waiting for the next group transaction ([`Store::grouped`]).
trait GroupJob: Send {
    /// Runs the work on the connection (again if the group starts over); whether
    /// to keep its writes.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Hands the last run's result over once the group's commit is known
    /// (`failed`: why the commit failed).
    fn deliver(self: Box<Self>, failed: Option<&str>);
}

/// A [`GroupJob`]: the work, its last result, what follows the commit, and its caller.
struct Job<F, T, E, N> {
    work: F,
    out: Option<Result<T, E>>,
    then: N,
    caller: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<F, T, E, N> GroupJob for Job<F, T, E, N>
where
    F: FnMut(&Connection) -> Result<T, E> + Send,
    T: Send,
    E: From<StoreError> + Send,
    N: FnOnce(&T) + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let out = (self.work)(conn);
        let keep = out.is_ok();
        self.out = Some(out);
        keep
    }

    fn deliver(self: Box<Self>, failed: Option<&str>) {
        let Job { out, then, caller, .. } = *self;
        // Never ran: dropping the sender tells the caller so.
        let Some(out) = out else { return };
        let out = match failed {
            None => out,
            Some(why) => Err(E::from(StoreError::Group(why.to_owned()))),
        };
        if let Ok(value) = &out {
            then(value);
        }
        let _ = caller.send(out);
    }
}

/// A simulator's database.
pub struct Store {
    name: String,
    conn: Mutex<Connection>,
    /// Writes waiting to be combined ([`Store::grouped`]).
    group: Mutex<Vec<Box<dyn GroupJob>>>,
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
            StoreLocation::Memory => (Self::open_memdb()?, None),
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
            group: Mutex::new(Vec::new()),
            migrations,
            path,
            generation: u64::try_from(generation).unwrap_or(0),
        };
        store.migrate()?;
        Ok(store)
    }

    /// An in-memory database on SQLite's `memdb` VFS rather than `:memory:`.
    ///
    /// A `:memory:` database keeps every page in its page cache, and that cache
    /// cannot evict; a B-tree rebalance renumbers pages through a temporary page
    /// number far beyond the end of the database (SQLite's pending-byte page), which
    /// leaves the cache believing it holds a page past the end, so the next commit
    /// scans the whole cache's hash table to drop it: a cost proportional to the
    /// database's size on most commits that insert random keys (CUNs, their hashes,
    /// codici fiscali). Sistema TS's intake fell from 9,400 to 3,200 results/s over
    /// 500,000 records that way (`ecosim bench intake`; found with gdb on
    /// `pcache1TruncateUnsafe`). On `memdb` the pages live in one buffer and the
    /// page cache is an ordinary bounded one (`cache_size`), so that scan stays
    /// small. The file name has no leading `/`, so the database is private to its
    /// connection; its journal is kept in memory (the VFS says so); the size limit
    /// is lifted from `memdb`'s default 1 GiB. What it can reach is 2 GiB: `memdb`
    /// keeps the database in one buffer, and SQLite allocates nothing larger
    /// (`SQLITE_MAX_ALLOCATION_SIZE`, a hard limit); past it a write fails with
    /// "out of memory" (PN-DGC at about 918,000 certificates; measured by filling a
    /// store with 1 MiB rows: the 2,046th failed).
    fn open_memdb() -> Result<Connection, StoreError> {
        // SQLite's default 4 KiB pages. 2 KiB pages copy less per write (journal,
        // memdb): short benchmarks +3-7%, but Sistema TS's intake over 20 virtual
        // days fell to 0.74-0.80 of day 1 on its worst day (deeper trees), against
        // 0.82-0.88 with 4 KiB (measured 2026-12-03).
        let conn = Connection::open("file:ecosim?vfs=memdb")?;
        let mut limit: i64 = 1 << 40;
        conn.file_control(rusqlite::DEFAULT_NAME, rusqlite::FileControl::SizeLimit(&mut limit))?;
        conn.pragma_update(None, "cache_size", -MEMDB_CACHE_KIB)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        Ok(conn)
    }

    /// The connection if no one holds it.
    fn try_conn(&self) -> Option<MutexGuard<'_, Connection>> {
        match self.conn.try_lock() {
            Ok(c) => Some(c),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// The connection, for as long as the guard lives. Letting go of it runs the
    /// group writes that found it busy meanwhile ([`Self::grouped`]): every use of
    /// the connection goes through here, so none can leave them waiting.
    fn lock(&self) -> Held<'_> {
        Held { store: self, conn: Some(self.conn.lock().unwrap_or_else(|p| p.into_inner())) }
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

    /// Runs the read `f` without holding up the thread it is called on: at once if
    /// the connection is free, else in the next group transaction ([`Self::grouped`]),
    /// where it sees what the writes before it in that group wrote. On a
    /// multi-threaded runtime [`Self::with`] waits for the connection, and a worker
    /// thread waiting there runs nothing else: Sistema TS's intake read each
    /// `Idempotency-Key` that way and took 14,400 results/s against 38,400/s without
    /// a key (`bench http`, #14), its two workers taking turns at the connection.
    pub async fn read<T: Send + 'static>(
        &self,
        mut f: impl FnMut(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        if let Some(conn) = self.try_conn() {
            let held = Held { store: self, conn: Some(conn) };
            return Ok(f(&held)?);
        }
        self.grouped(move |c| f(c).map_err(StoreError::from)).await
    }

    /// Runs `f` in a transaction shared with the other writes waiting at the same
    /// time (group commit): whoever finds the connection free runs every waiting
    /// write, then commits once and hands each its result. The answer comes only
    /// after that commit, so nothing acknowledged is lost; on disk one fsync serves
    /// the whole group. Writes run in the order they arrived.
    ///
    /// A write that returns `Err` or panics is undone alone. Writes run without a
    /// savepoint each (a savepoint copies every page a write touches: 15% of the
    /// SAR's time under `bench cun`); when one fails after writing, the group
    /// starts over, each write in its own savepoint. So `f` may run more than once:
    /// only its last run counts, and it should do nothing but its work on the
    /// connection (drawing an id is fine: one is drawn again).
    pub async fn grouped<T, E>(&self, f: impl FnMut(&Connection) -> Result<T, E> + Send + 'static) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.grouped_then(f, |_| {}).await
    }

    /// As [`Self::grouped`], and `then` runs with the result once the group has
    /// committed, whether or not the caller is still waiting: a request whose
    /// client went away after its write still wakes the outbox, schedules its
    /// purge... (what comes after an `await` would not run then). Keep `then` short
    /// and non-blocking: it runs on the thread that led the group.
    pub async fn grouped_then<T, E>(
        &self,
        f: impl FnMut(&Connection) -> Result<T, E> + Send + 'static,
        then: impl FnOnce(&T) + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (caller, rx) = tokio::sync::oneshot::channel::<Result<T, E>>();
        let job = Box::new(Job { work: f, out: None, then, caller });
        self.group.lock().unwrap_or_else(|p| p.into_inner()).push(job);
        // Let the other tasks ready to run add their writes first: on a
        // single-threaded runtime nothing could join the group otherwise.
        tokio::task::yield_now().await;
        self.combine();
        rx.await.unwrap_or_else(|_| {
            Err(E::from(StoreError::Group(
                "the write did not run to the end (a panic, or no transaction could begin); nothing of it was kept"
                    .into(),
            )))
        })
    }

    /// Runs the waiting writes if the connection is free (see [`Self::grouped`]).
    /// Whoever holds the connection calls this after releasing it ([`Held`]'s drop),
    /// so a write that found it busy is never left waiting.
    fn combine(&self) {
        loop {
            if self.group.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
                return;
            }
            let Some(conn) = self.try_conn() else {
                // The holder runs them once it lets go.
                return;
            };
            let jobs = std::mem::take(&mut *self.group.lock().unwrap_or_else(|p| p.into_inner()));
            if jobs.is_empty() {
                drop(conn);
                continue;
            }
            let ran = self.blocking(|| run_group(&conn, jobs));
            drop(conn);
            for (job, failed) in ran {
                job.deliver(failed.as_deref());
            }
        }
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

/// One group transaction, one commit. Jobs run bare; if one fails after writing
/// (its writes cannot be undone alone), the transaction is rolled back and every
/// job so far runs again in a savepoint of its own, as do the rest. If SQLite
/// itself rolls the whole transaction back on a job's error (a full disk, an I/O
/// error), that job keeps its error and does not run again, and the group starts
/// over the same way without it: what the later jobs write is never committed
/// outside the group while they are told it failed. Returns each job that ran with
/// why the commit failed, if it did and the job's writes were to be kept (`None`:
/// its result stands). A job that panicked is dropped: its caller hears it did not
/// finish.
fn run_group(conn: &Connection, jobs: Vec<Box<dyn GroupJob>>) -> Vec<(Box<dyn GroupJob>, Option<String>)> {
    if let Err(e) = conn.exec("BEGIN", []) {
        // Nothing runs: each job is dropped with its sender, its caller told so.
        tracing::error!(error = %e, "group commit: cannot begin a transaction");
        return Vec::new();
    }
    let mut queue: std::collections::VecDeque<Box<dyn GroupJob>> = jobs.into();
    let mut ran: Vec<(Box<dyn GroupJob>, bool)> = Vec::with_capacity(queue.len());
    // Jobs during which SQLite rolled the transaction back: final, never run again.
    let mut ended: Vec<(Box<dyn GroupJob>, Option<String>)> = Vec::new();
    let mut guarded = false;
    while let Some(mut job) = queue.pop_front() {
        let before = conn.total_changes();
        let done = if guarded { run_guarded(conn, &mut *job) } else { run_bare(conn, &mut *job) };
        let kept = done == Some(true);
        let restart = if conn.is_autocommit() {
            // A job that swallowed the error still lost its writes: say so.
            if done.is_some() {
                ended.push((job, kept.then(|| TRANSACTION_ENDED.to_owned())));
            }
            true
        } else {
            let spoilt = !guarded && !kept && conn.total_changes() != before;
            if done.is_some() {
                ran.push((job, kept));
            }
            spoilt
        };
        if restart {
            let _ = conn.exec("ROLLBACK", []);
            if let Err(e) = conn.exec("BEGIN", []) {
                let why = format!("the group could not start over: {e}");
                tracing::error!(error = %e, "group commit: cannot begin a transaction");
                let told = ran.into_iter().map(|(job, kept)| (job, kept.then(|| why.clone())));
                return told.chain(ended).collect();
            }
            guarded = true;
            for (job, _) in std::mem::take(&mut ran).into_iter().rev() {
                queue.push_front(job);
            }
        }
    }
    let failed = conn.exec("COMMIT", []).err().map(|e| {
        let _ = conn.exec("ROLLBACK", []);
        format!("the commit failed: {e}")
    });
    // A write that failed on its own keeps its own error, commit or not.
    ran.into_iter().map(|(job, kept)| (job, failed.clone().filter(|_| kept))).chain(ended).collect()
}

/// What a job is told whose work succeeded while SQLite rolled back the transaction
/// under it (its own statements' errors were swallowed).
const TRANSACTION_ENDED: &str =
    "SQLite rolled the group's transaction back while this write ran; nothing of it was kept";

/// Runs `job` bare: whether to keep its writes, `None` if it panicked.
fn run_bare(conn: &Connection, job: &mut dyn GroupJob) -> Option<bool> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(conn))).ok()
}

/// Runs `job` in a savepoint of its own, undone if it fails: whether to keep its
/// writes, `None` if it panicked (or no savepoint could open).
fn run_guarded(conn: &Connection, job: &mut dyn GroupJob) -> Option<bool> {
    conn.exec("SAVEPOINT grouped", []).ok()?;
    let done = run_bare(conn, job);
    if done != Some(true) {
        let _ = conn.exec("ROLLBACK TO grouped", []);
    }
    let _ = conn.exec("RELEASE grouped", []);
    done
}

/// The connection while a [`Store::lock`] holds it; on drop, the group writes
/// waiting for it run ([`Store::combine`]).
struct Held<'s> {
    store: &'s Store,
    conn: Option<MutexGuard<'s, Connection>>,
}

impl std::ops::Deref for Held<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_deref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_deref_mut().expect("held until dropped")
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(self.conn.take());
        self.store.combine();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static MIGRATIONS: &[&str] = &[
        "CREATE TABLE cun (code TEXT PRIMARY KEY, esito TEXT NOT NULL);",
        "ALTER TABLE cun ADD COLUMN region TEXT NOT NULL DEFAULT '000';",
    ];

    fn count(s: &Store) -> i64 {
        s.with(|c| c.query_row("SELECT COUNT(*) FROM cun", [], |r| r.get(0))).expect("count")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn grouped_writes_commit_together_and_each_failure_is_rolled_back_alone() {
        let store = std::sync::Arc::new(Store::open(&StoreLocation::Memory, "t", MIGRATIONS).expect("open"));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..400u32 {
            let store = store.clone();
            tasks.spawn(async move {
                let out = store
                    .grouped(move |c| {
                        c.execute("INSERT INTO cun (code, esito) VALUES (?1, 'POSITIVO')", [format!("C{i}")])?;
                        match i % 10 {
                            // Written, then refused: its write must not stay.
                            3 => Err(StoreError::Group(format!("refused {i}"))),
                            // Written, then a panic: likewise, and the others go on.
                            7 => panic!("job {i} panics"),
                            _ => Ok(i),
                        }
                    })
                    .await;
                (i, out)
            });
        }
        let mut seen = 0;
        while let Some(done) = tasks.join_next().await {
            let (i, out) = done.expect("a task");
            match (i % 10, out) {
                (3, Err(StoreError::Group(why))) => assert_eq!(why, format!("refused {i}")),
                (7, Err(StoreError::Group(why))) => assert!(why.contains("did not run to the end"), "{why}"),
                (_, Ok(n)) => assert_eq!(n, i),
                (_, other) => panic!("job {i}: {other:?}"),
            }
            seen += 1;
        }
        assert_eq!(seen, 400);
        assert_eq!(count(&store), 320, "the 80 refused or panicking writes were rolled back, the rest kept");
        assert!(store.with(|c| Ok(c.is_autocommit())).expect("state"), "no transaction left open");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_grouped_write_that_finds_the_connection_busy_runs_when_it_is_released() {
        let store = std::sync::Arc::new(Store::open(&StoreLocation::Memory, "t", MIGRATIONS).expect("open"));
        // Held as any use of the store holds it (`with`, `transaction`, `counts`...).
        let held = store.lock();
        let write = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .grouped(|c| {
                        Ok::<_, StoreError>(c.execute("INSERT INTO cun (code, esito) VALUES ('X', 'NEGATIVO')", [])?)
                    })
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!write.is_finished(), "the write waits while the connection is held");
        drop(held);
        let written = tokio::time::timeout(std::time::Duration::from_secs(5), write).await;
        assert!(matches!(written, Ok(Ok(Ok(1)))), "{written:?}");
        assert_eq!(count(&store), 1);
    }

    type Outcome = Result<String, StoreError>;
    type Work = Box<dyn FnMut(&Connection) -> Outcome + Send>;

    /// Runs `works` as one group, in this order (they queue while the connection is
    /// held, then run when it is let go); their results.
    async fn one_group(store: &std::sync::Arc<Store>, works: Vec<Work>) -> Vec<Outcome> {
        let held = store.lock();
        let tasks: Vec<_> = works
            .into_iter()
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move { store.grouped(w).await })
            })
            .collect();
        // Each task queues its work on its first poll, in the order spawned.
        tokio::task::yield_now().await;
        assert_eq!(store.group.lock().expect("queue").len(), tasks.len(), "all queued");
        drop(held);
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    }

    fn insert(c: &Connection, code: &str) -> rusqlite::Result<usize> {
        c.execute("INSERT INTO cun (code, esito) VALUES (?1, 'POSITIVO')", [code])
    }

    fn codes(s: &Store) -> Vec<String> {
        s.with(|c| c.prepare("SELECT code FROM cun ORDER BY code")?.query_map([], |r| r.get(0))?.collect())
            .expect("codes")
    }

    type Runs = std::sync::Arc<std::sync::atomic::AtomicUsize>;

    /// `work` counted in `runs`; it gets the number of its run (1 the first time).
    fn counted(runs: &Runs, mut work: impl FnMut(&Connection, usize) -> Outcome + Send + 'static) -> Work {
        let runs = runs.clone();
        Box::new(move |conn| work(conn, runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1))
    }

    fn runs_of(runs: &[&Runs]) -> Vec<usize> {
        runs.iter().map(|r| r.load(std::sync::atomic::Ordering::SeqCst)).collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_that_fails_after_writing_makes_its_group_start_over_and_only_the_last_runs_count() {
        let store = std::sync::Arc::new(Store::open(&StoreLocation::Memory, "t", MIGRATIONS).expect("open"));
        let (a, b, c, d) = (Runs::default(), Runs::default(), Runs::default(), Runs::default());
        let works = vec![
            // Writes something new on each run, as a write that draws an id does.
            counted(&a, |conn, run| {
                let code = format!("A{run}");
                insert(conn, &code)?;
                Ok(code)
            }),
            // Reads what the write before it wrote: must answer with the run that stays.
            counted(&b, |conn, _| Ok(conn.query_row("SELECT group_concat(code) FROM cun", [], |r| r.get(0))?)),
            // Writes, then refuses: its write cannot be undone alone.
            counted(&c, |conn, _| {
                insert(conn, "C")?;
                Err(StoreError::Group("refused".into()))
            }),
            counted(&d, |conn, _| Ok(insert(conn, "D").map(|_| "D".to_owned())?)),
        ];
        let out = one_group(&store, works).await;
        assert_eq!(out[0].as_ref().expect("A kept"), "A2", "the second run is the one kept");
        assert_eq!(out[1].as_ref().expect("B read"), "A2", "B read what stays, not the undone first run");
        assert!(matches!(&out[2], Err(StoreError::Group(why)) if why == "refused"), "{:?}", out[2]);
        assert_eq!(out[3].as_ref().expect("D kept"), "D");
        assert_eq!(codes(&store), ["A2", "D"], "C's write undone, the others kept once");
        assert_eq!(runs_of(&[&a, &b, &c, &d]), [2, 2, 2, 1], "what ran before C ran again, then the rest once");
        assert!(store.with(|c| Ok(c.is_autocommit())).expect("state"), "no transaction left open");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_that_fails_before_writing_leaves_the_rest_of_its_group_alone() {
        let store = std::sync::Arc::new(Store::open(&StoreLocation::Memory, "t", MIGRATIONS).expect("open"));
        let (a, b, c) = (Runs::default(), Runs::default(), Runs::default());
        let works = vec![
            counted(&a, |conn, _| Ok(insert(conn, "A").map(|_| "A".to_owned())?)),
            // Refused before writing anything (a rule checked in the transaction);
            // a failed statement changes nothing either.
            counted(&b, |conn, _| Ok(insert(conn, "A").map(|_| "never".to_owned())?)),
            counted(&c, |conn, _| Ok(insert(conn, "C").map(|_| "C".to_owned())?)),
        ];
        let out = one_group(&store, works).await;
        assert!(matches!(&out[1], Err(StoreError::Sqlite(_))), "the duplicate is refused: {:?}", out[1]);
        assert_eq!((out[0].as_deref().ok(), out[2].as_deref().ok()), (Some("A"), Some("C")));
        assert_eq!(codes(&store), ["A", "C"]);
        assert_eq!(runs_of(&[&a, &b, &c]), [1, 1, 1], "nothing ran twice");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_write_during_which_sqlite_ends_the_transaction_fails_alone_and_the_rest_commit_in_the_group() {
        // `RAISE(ROLLBACK)` ends the whole transaction, as a full disk or an I/O
        // error may: the writes before it are undone by SQLite, those after it would
        // run outside any transaction.
        let store = || {
            let store = std::sync::Arc::new(Store::open(&StoreLocation::Memory, "t", MIGRATIONS).expect("open"));
            store
                .with(|c| {
                    c.execute_batch(
                        "CREATE TRIGGER boom BEFORE INSERT ON cun WHEN NEW.code = 'BOOM'
                         BEGIN SELECT RAISE(ROLLBACK, 'the disk is full'); END;",
                    )
                })
                .expect("trigger");
            store
        };
        let write = |runs: &Runs, code: &'static str| {
            counted(runs, move |conn, _| Ok(insert(conn, code).map(|_| code.to_owned())?))
        };
        let refused = |runs: &Runs| {
            counted(runs, |conn, _| {
                insert(conn, "X")?;
                Err(StoreError::Group("refused".into()))
            })
        };
        let ended =
            |out: &Outcome| matches!(out, Err(StoreError::Sqlite(e)) if e.to_string().contains("the disk is full"));

        // Among bare writes: the group starts over without it.
        let (a, b, c) = (Runs::default(), Runs::default(), Runs::default());
        let s = store();
        let out = one_group(&s, vec![write(&a, "A"), write(&b, "BOOM"), write(&c, "C")]).await;
        assert!(ended(&out[1]), "{:?}", out[1]);
        assert_eq!((out[0].as_deref().ok(), out[2].as_deref().ok()), (Some("A"), Some("C")));
        assert_eq!(codes(&s), ["A", "C"]);
        assert_eq!(runs_of(&[&a, &b, &c]), [2, 1, 1], "A again in the new transaction, BOOM never again");

        // Among guarded writes (the group started over already): the writes after
        // it are committed with the group, and told so, not committed one by one
        // outside it and told the commit failed.
        let (a, x, b, c) = (Runs::default(), Runs::default(), Runs::default(), Runs::default());
        let s = store();
        let out = one_group(&s, vec![write(&a, "A"), refused(&x), write(&b, "BOOM"), write(&c, "C")]).await;
        assert!(matches!(&out[1], Err(StoreError::Group(why)) if why == "refused"), "{:?}", out[1]);
        assert!(ended(&out[2]), "{:?}", out[2]);
        assert_eq!((out[0].as_deref().ok(), out[3].as_deref().ok()), (Some("A"), Some("C")));
        assert_eq!(codes(&s), ["A", "C"], "what was told kept is kept, and nothing else");
        assert_eq!(runs_of(&[&a, &x, &b, &c]), [3, 3, 1, 1]);
        assert!(s.with(|c| Ok(c.is_autocommit())).expect("state"), "no transaction left open");

        // A write that swallows that error and answers Ok is still told it lost
        // its writes: they went with the transaction.
        let (a, b) = (Runs::default(), Runs::default());
        let s = store();
        let swallowing = counted(&b, |conn, _| {
            let _ = insert(conn, "BOOM");
            Ok("B".to_owned())
        });
        let out = one_group(&s, vec![write(&a, "A"), swallowing]).await;
        assert!(matches!(&out[1], Err(StoreError::Group(why)) if why == TRANSACTION_ENDED), "{:?}", out[1]);
        assert_eq!(out[0].as_deref().ok(), Some("A"));
        assert_eq!(codes(&s), ["A"]);
        assert_eq!(runs_of(&[&a, &b]), [2, 1]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_read_runs_at_once_when_the_connection_is_free_and_never_keeps_the_thread_waiting() {
        let store = std::sync::Arc::new(Store::open(&StoreLocation::Memory, "t", MIGRATIONS).expect("open"));
        store.with(|c| c.execute("INSERT INTO cun (code, esito) VALUES ('A', 'POSITIVO')", [])).expect("row");
        let n = |c: &Connection| c.query_row("SELECT COUNT(*) FROM cun", [], |r| r.get::<_, i64>(0));
        assert_eq!(store.read(n).await.expect("free"), 1);

        // Another thread holds the connection for 300 ms; this (single) thread goes on
        // running its other tasks meanwhile, and the read comes once it is let go.
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let holder = {
            let store = store.clone();
            std::thread::spawn(move || {
                let conn = store.lock();
                held_tx.send(()).expect("told");
                std::thread::sleep(std::time::Duration::from_millis(300));
                conn.execute("INSERT INTO cun (code, esito) VALUES ('B', 'NEGATIVO')", []).expect("row");
            })
        };
        held_rx.recv().expect("held");
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    ticks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        };
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), store.read(n)).await;
        ticker.abort();
        holder.join().expect("holder");
        assert_eq!(read.expect("in time").expect("read"), 2, "it sees what the holder wrote");
        let ticks = ticks.load(std::sync::atomic::Ordering::SeqCst);
        // About 30 on a quiet machine; none if the read had blocked the thread.
        assert!(ticks >= 5, "the thread ran other tasks while the connection was held: {ticks} ticks");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_grouped_write_whose_caller_went_away_still_commits_and_runs_what_follows() {
        let store = std::sync::Arc::new(Store::open(&StoreLocation::Memory, "t", MIGRATIONS).expect("open"));
        // Held as any use of the store holds it (`with`, `transaction`, `counts`...).
        let held = store.lock();
        let followed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let write = {
            let (store, followed) = (store.clone(), followed.clone());
            tokio::spawn(async move {
                store
                    .grouped_then(
                        |c| {
                            Ok::<_, StoreError>(
                                c.execute("INSERT INTO cun (code, esito) VALUES ('Y', 'POSITIVO')", [])?,
                            )
                        },
                        move |_| followed.store(true, std::sync::atomic::Ordering::SeqCst),
                    )
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // The client goes away: the handler's future is dropped while it waits.
        write.abort();
        assert!(write.await.is_err_and(|e| e.is_cancelled()));
        drop(held);
        assert_eq!(count(&store), 1, "the write was queued, so it commits");
        assert!(followed.load(std::sync::atomic::Ordering::SeqCst), "what follows the commit ran");
    }

    #[test]
    fn sqlite_is_built_without_allocation_statistics() {
        // `.cargo/config.toml` sets LIBSQLITE3_FLAGS: with the statistics on, every
        // SQLite malloc and free of every simulator queues on one process-wide mutex
        // (`bench cun` is about a quarter slower).
        let store = Store::open(&StoreLocation::Memory, "sistema-ts", MIGRATIONS).expect("open");
        let options: Vec<String> = store
            .with(|c| {
                let mut q = c.prepare("PRAGMA compile_options")?;
                q.query_map([], |r| r.get(0))?.collect()
            })
            .expect("compile options");
        assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
    }

    #[test]
    fn in_memory_stores_are_private_and_keep_a_bounded_cache() {
        let a = Store::open(&StoreLocation::Memory, "sistema-ts", MIGRATIONS).expect("open a");
        let b = Store::open(&StoreLocation::Memory, "sistema-ts", MIGRATIONS).expect("open b");
        a.with(|c| c.execute("INSERT INTO cun (code, esito) VALUES ('A', 'B')", [])).expect("insert");
        assert_eq!(a.counts().expect("counts")["cun"], 1);
        assert_eq!(b.counts().expect("counts")["cun"], 0, "two stores of the same name share nothing");
        // The memdb VFS with an ordinary page cache, not `:memory:` (whose cache holds
        // every page and is scanned whole on commits after a rebalance).
        let (cache, journal): (i64, String) = a
            .with(|c| {
                Ok((
                    c.pragma_query_value(None, "cache_size", |r| r.get(0))?,
                    c.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                ))
            })
            .expect("pragmas");
        assert_eq!((cache, journal.as_str()), (-MEMDB_CACHE_KIB, "memory"));
        // Well past memdb's default 1 GiB limit.
        let mut limit: i64 = -1;
        a.with(|c| c.file_control(rusqlite::DEFAULT_NAME, rusqlite::FileControl::SizeLimit(&mut limit)))
            .expect("size limit");
        assert!(limit >= 1 << 40, "size limit {limit}");
        // A rolled-back write leaves nothing (the journal works on this VFS).
        let failed = a.transaction::<(), StoreError>(|tx| {
            tx.execute("INSERT INTO cun (code, esito) VALUES ('C', 'D')", [])?;
            Err(rusqlite::Error::QueryReturnedNoRows.into())
        });
        assert!(failed.is_err());
        assert_eq!(a.counts().expect("counts")["cun"], 1);
    }

    #[test]
    fn a_full_in_memory_database_says_how_to_get_more_room() {
        let nomem = StoreError::from(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(7), None));
        let text = nomem.to_string();
        assert!(text.starts_with("sqlite: ") && text.contains("out of memory"), "{text}");
        assert!(text.contains("at most 2 GiB") && text.contains("--data-dir"), "{text}");
        let other = StoreError::from(rusqlite::Error::QueryReturnedNoRows).to_string();
        assert!(!other.contains("GiB"), "{other}");
    }

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
