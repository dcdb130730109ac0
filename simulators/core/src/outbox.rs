//! A durable outbox: work that must reach another system, retried until it does.
//!
//! A simulator that has acknowledged something (the SAR's 202, Sistema TS's promise
//! to text a CUN) writes the follow-up work into its own database, in the same
//! transaction as the acknowledgement, with [`enqueue`]. A worker ([`Outbox::run`])
//! hands each item to the simulator's handler until the handler says it is done,
//! waiting between attempts with exponential backoff and seeded jitter (at least the
//! `Retry-After` a server asked for). Transient failures are retried forever, so an
//! outage only delays delivery; only a permanent refusal ends an item as failed.
//!
//! Each simulator's work is a typed enum ([`Work`]), serde-tagged by `kind`: the tag
//! is the stored kind and the rest the stored payload, so no simulator spells a kind
//! string or reads a payload by hand, and a row that no longer reads as the enum is
//! ended as failed, never silently turned into empty work.
//!
//! Items have a unique `(kind, key)`: enqueueing the same work twice (for example
//! after a crash between a handler's own commit and the outbox marking the item
//! done) is a no-op, so follow-up work is never duplicated.
//!
//! Retry times are real time, not the virtual clock: they model real outages and
//! must progress even when nobody moves the clock.
//!
//! Work that can start at once skips the queue scan: [`enqueue_claimed`] writes the
//! item already `running` and returns it, and after the transaction commits the
//! caller hands it to [`Outbox::dispatch`]. It is as durable as any other item (a
//! restart puts `running` items back to `pending`), and saves the worker a read and a
//! write per item.
//!
//! Up to `[retry] concurrency` items run at once; while the simulator takes requests
//! in ([`Outbox::intake`], the SAR's lab results), a quarter of that, so deliveries
//! sharing the intake's thread never leave its callers waiting; every slot comes back
//! [`INTAKE_WINDOW`] after the last request.
//!
//! A simulator whose queued deliveries are not part of the requests it takes in
//! (Sistema TS: its test-result intake answers at once; what it queues are events for
//! PN-DGC) can hold its queue at a national peak ([`Outbox::hold_at_peak`]): while
//! requests arrive at [`PEAK_ARRIVALS`] an [`INTAKE_WINDOW`] (5,000 a second) or more,
//! no queued item starts; items handed over with [`Outbox::dispatch`] (work that ends
//! a journey under way) still do. The real systems each have their own machines;
//! ecosim hosts them all on one, where a peak's side work (on a peak day 85% of the
//! results become test certificates) would take the cores the peak's own flow needs.
//! Nothing waits for long and nothing is lost: the queue starts again an
//! [`INTAKE_WINDOW`] after the rate falls, and a held item is as durable as any.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::{Notify, watch};

use crate::config::RetryConfig;
use crate::store::{CachedSql, Store, StoreError};
use ecosim_domain::rng::SeededRng;

/// The migration that creates the outbox tables; add it to a simulator's list.
pub const MIGRATION: &str = "
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (kind, key)
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_ms);
CREATE TABLE outbox_attempts (
    item INTEGER NOT NULL REFERENCES outbox (id),
    n INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
";

/// The migration that keeps finished items out of the due index; add it to a
/// simulator's list after [`MIGRATION`]. Done items are most of a long run's outbox
/// (2.4 million after a peak day in the SAR) and are never looked up by state: each
/// finished delivery moved its entry within the index, now it only leaves it. The
/// statements that read by state carry the index's condition, `state <> 'done'`,
/// word for word: that is how SQLite knows it may use a partial index.
pub const DUE_MIGRATION: &str = "
DROP INDEX outbox_due;
CREATE INDEX outbox_due ON outbox (state, next_attempt_ms) WHERE state <> 'done';
";

/// The migration that gives the outbox plain row ids (after [`DUE_MIGRATION`]).
/// `AUTOINCREMENT` read and wrote SQLite's `sqlite_sequence` table at every enqueue
/// (2% of the SAR's thread under `bench cun`) to promise ids are never reused,
/// which only matters when rows are deleted, and items never are (only `POST
/// /_admin/reset` empties the table, with its attempts). Both tables are rebuilt:
/// the attempts refer to the new table while it is built, so dropping the old one
/// orphans nothing, and renaming it renames the reference.
pub const ROWID_MIGRATION: &str = "
CREATE TABLE outbox_next (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (kind, key)
);
INSERT INTO outbox_next (id, kind, key, payload, state, attempts, next_attempt_ms, last_error)
    SELECT id, kind, key, payload, state, attempts, next_attempt_ms, last_error FROM outbox;
CREATE TABLE outbox_attempts_next (
    item INTEGER NOT NULL REFERENCES outbox_next (id),
    n INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL
);
INSERT INTO outbox_attempts_next (item, n, at_ms, outcome)
    SELECT item, n, at_ms, outcome FROM outbox_attempts ORDER BY rowid;
DROP TABLE outbox_attempts;
DROP TABLE outbox;
ALTER TABLE outbox_next RENAME TO outbox;
ALTER TABLE outbox_attempts_next RENAME TO outbox_attempts;
CREATE INDEX outbox_due ON outbox (state, next_attempt_ms) WHERE state <> 'done';
DELETE FROM sqlite_sequence WHERE name = 'outbox';
";

/// Items due by `?1` (ms), in the order they fall due.
const DUE_SQL: &str = "SELECT id, kind, key, payload, attempts FROM outbox
    WHERE state <> 'done' AND state = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id";
/// When the next pending item falls due.
const NEXT_DUE_SQL: &str = "SELECT MIN(next_attempt_ms) FROM outbox WHERE state <> 'done' AND state = 'pending'";
/// How many items are pending.
const PENDING_SQL: &str = "SELECT COUNT(*) FROM outbox WHERE state <> 'done' AND state = 'pending'";
/// Whether an item is running or was never tried.
const FRESH_SQL: &str = "SELECT EXISTS (SELECT 1 FROM outbox
    WHERE state <> 'done' AND ((state = 'pending' AND attempts = 0) OR state = 'running'))";
/// Items a crash left running go back to pending.
const RECOVER_SQL: &str = "UPDATE outbox SET state = 'pending' WHERE state <> 'done' AND state = 'running'";

/// A simulator's kind of outbox work: an enum with
/// `#[serde(tag = "kind", rename_all = "snake_case")]`, one variant per delivery.
/// The tag is stored as the item's kind, the other fields as its payload.
pub trait Work: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static> Work for T {}

/// The kind `work` is stored under (its serde tag).
pub fn kind_of<W: Work>(work: &W) -> String {
    split(work).map(|(kind, _)| kind).unwrap_or_default()
}

/// `(kind, payload)` as stored: the work's JSON without its tag. Serde writes an
/// internally tagged enum's tag first, so the tag is cut from the text rather than
/// the work built as a `Value` and written again (under `bench cun` the SAR spent
/// 8,900 instructions a journey that way, a fifth of enqueuing; now 4,000).
fn split<W: Work>(work: &W) -> Result<(String, String), rusqlite::Error> {
    let bad = |e: &str| rusqlite::Error::ToSqlConversionFailure(e.into());
    let json = serde_json::to_string(work).map_err(|e| bad(&e.to_string()))?;
    let tagged = json
        .strip_prefix(r#"{"kind":""#)
        .ok_or_else(|| bad("outbox work must serialize as an object tagged `kind` first (#[serde(tag = \"kind\")])"))?;
    let (kind, rest) = tagged.split_once('"').ok_or_else(|| bad("outbox work's `kind` tag is not a plain string"))?;
    if kind.contains('\\') {
        return Err(bad("outbox work's `kind` tag is not a plain string"));
    }
    let payload = match rest.strip_prefix(',') {
        Some(members) => format!("{{{members}"),
        None => "{}".to_owned(),
    };
    Ok((kind.to_owned(), payload))
}

/// The work stored as `(kind, payload)`. The tag goes back in front of the
/// payload's members as text and the work is read from that (a `Value` round trip
/// cost Sistema TS 14,000 instructions per PN-DGC event it sent under `bench cun
/// --negatives 85`); anything that does not read that way is read again through a
/// `Value`, for the same errors as ever.
fn join<W: Work>(kind: &str, payload: &str) -> Result<W, String> {
    if let (Some(members), Ok(tag)) = (payload.trim_start().strip_prefix('{'), serde_json::to_string(kind)) {
        let comma = if members.trim_start().starts_with('}') { "" } else { "," };
        if let Ok(work) = serde_json::from_str::<W>(&format!("{{\"kind\":{tag}{comma}{members}")) {
            return Ok(work);
        }
    }
    join_value(kind, payload)
}

/// [`join`] through a `Value`: the tag set over whatever the payload holds.
fn join_value<W: Work>(kind: &str, payload: &str) -> Result<W, String> {
    let mut fields = match serde_json::from_str::<Value>(payload) {
        Ok(Value::Object(f)) => f,
        Ok(Value::Null) => Map::new(),
        Ok(other) => return Err(format!("payload is not an object: {other}")),
        Err(e) => return Err(format!("payload is not JSON: {e}")),
    };
    fields.insert("kind".into(), Value::String(kind.to_owned()));
    serde_json::from_value(Value::Object(fields)).map_err(|e| format!("{kind} item does not read back: {e}"))
}

/// One piece of work.
#[derive(Debug, Clone, PartialEq)]
pub struct Item<W> {
    /// Row id.
    pub id: i64,
    /// Unique with the kind (usually the business id).
    pub key: String,
    /// What to do.
    pub work: W,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Delivered; the item is finished.
    Done,
    /// A transient failure: try again (no sooner than `after`, if given).
    Retry {
        /// The server's `Retry-After`.
        after: Option<Duration>,
        /// What went wrong.
        error: String,
    },
    /// A permanent refusal: stop, keep the error.
    Failed(String),
    /// Delivered, and already recorded with [`record_done`] in the handler's own
    /// transaction (with its follow-up work: one commit instead of two).
    Recorded,
}

/// The handler a simulator gives the worker.
pub type Handler<W> = Arc<dyn Fn(Item<W>) -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Send + Sync>;

/// Bookkeeping of the simulator's own, run in the same transaction that records an
/// attempt's outcome (so the two never disagree, and it costs no extra commit).
pub type FinishHook<W> = Arc<dyn Fn(&Connection, &Item<W>, &Outcome) -> rusqlite::Result<()> + Send + Sync>;

/// Adds work to the outbox inside the caller's transaction; a no-op if `(kind, key)`
/// is already there. Returns whether it was added.
pub fn enqueue<W: Work>(conn: &Connection, key: &str, work: &W) -> rusqlite::Result<bool> {
    let (kind, payload) = split(work)?;
    let n = conn
        .exec("INSERT OR IGNORE INTO outbox (kind, key, payload) VALUES (?1, ?2, ?3)", params![kind, key, payload])?;
    Ok(n == 1)
}

/// As [`enqueue`], but the item is written already claimed (`running`) and returned,
/// for [`Outbox::dispatch`] once the caller's transaction has committed. `None` if
/// `(kind, key)` was already there. Never dispatch an item whose transaction rolled back.
pub fn enqueue_claimed<W: Work>(conn: &Connection, key: &str, work: &W) -> rusqlite::Result<Option<Item<W>>> {
    let (kind, payload) = split(work)?;
    let n = conn.exec(
        "INSERT OR IGNORE INTO outbox (kind, key, payload, state) VALUES (?1, ?2, ?3, 'running')",
        params![kind, key, payload],
    )?;
    Ok((n == 1).then(|| Item { id: conn.last_insert_rowid(), key: key.to_owned(), work: work.clone(), attempts: 0 }))
}

/// Records a successful attempt of `item` inside the caller's transaction; the
/// handler then returns [`Outcome::Recorded`]. (No finish hook runs for it.)
pub fn record_done<W>(conn: &Connection, item: &Item<W>) -> rusqlite::Result<()> {
    write_attempt(conn, item.id, item.attempts, "done", now_ms(), None, "done")
}

fn write_attempt(
    conn: &Connection,
    id: i64,
    attempts: u32,
    state: &str,
    next_ms: i64,
    error: Option<&str>,
    text: &str,
) -> rusqlite::Result<()> {
    let n = attempts + 1;
    conn.exec(
        "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt_ms = ?4, last_error = ?5 WHERE id = ?1",
        params![id, state, n, next_ms, error],
    )?;
    conn.exec(
        "INSERT INTO outbox_attempts (item, n, at_ms, outcome) VALUES (?1, ?2, ?3, ?4)",
        params![id, n, now_ms(), text],
    )?;
    Ok(())
}

/// An attempt as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Attempt {
    /// Kind of the item.
    pub kind: String,
    /// 1-based attempt number.
    pub n: u32,
    /// When (Unix milliseconds, real time).
    pub at_ms: i64,
    /// `done`, `failed: ...` or `retry: ...`.
    pub outcome: String,
}

/// The state of an item, for status endpoints.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ItemState {
    /// `pending`, `done` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last error, if any.
    pub last_error: Option<String>,
}

/// The state of the item of `work`'s kind under `key`, if enqueued.
pub fn item_state<W: Work>(conn: &Connection, work: &W, key: &str) -> rusqlite::Result<Option<ItemState>> {
    let kind = kind_of(work);
    conn.row("SELECT state, attempts, last_error FROM outbox WHERE kind = ?1 AND key = ?2", params![kind, key], |r| {
        Ok(ItemState { state: r.get(0)?, attempts: r.get(1)?, last_error: r.get(2)? })
    })
    .optional()
}

/// Every attempt of the items with `key`, oldest first.
pub fn attempts_of(conn: &Connection, key: &str) -> rusqlite::Result<Vec<Attempt>> {
    let mut stmt = conn.prepare(
        "SELECT o.kind, a.n, a.at_ms, a.outcome FROM outbox_attempts a JOIN outbox o ON o.id = a.item
         WHERE o.key = ?1 ORDER BY a.at_ms, a.rowid",
    )?;
    stmt.query_map([key], |r| Ok(Attempt { kind: r.get(0)?, n: r.get(1)?, at_ms: r.get(2)?, outcome: r.get(3)? }))?
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The worker of one simulator's outbox of `W` work.
pub struct Outbox<W> {
    store: Arc<Store>,
    wake: Notify,
    policy: RetryConfig,
    jitter: Mutex<SeededRng>,
    in_flight: AtomicUsize,
    /// Claimed items handed over by [`Self::dispatch`], waiting for a free slot.
    ready: Mutex<std::collections::VecDeque<Item<W>>>,
    /// When the outbox was made, and when its simulator last took a request in
    /// (microseconds since then; 0: never): see [`Self::intake`].
    born: std::time::Instant,
    last_intake_us: AtomicU64,
    /// [`Self::hold_at_peak`]: when the current window began, the requests in it,
    /// and until when the queue is held (microseconds since `born`).
    peak_window_us: AtomicU64,
    peak_arrivals: AtomicU64,
    held_until_us: AtomicU64,
}

/// Requests within one [`INTAKE_WINDOW`] from which [`Outbox::hold_at_peak`] holds the
/// queue: 1,000, a rate of 5,000 a second. Below it (workshops, scenarios, certification,
/// a peak-day mix at 3,000 a second) every delivery runs as it comes.
pub const PEAK_ARRIVALS: u64 = 1_000;

/// [`PEAK_ARRIVALS`] as a rate: requests a second.
pub const PEAK_PER_SECOND: u64 = PEAK_ARRIVALS * 1_000 / INTAKE_WINDOW.as_millis() as u64;

/// While its simulator has taken a request in within this long, an outbox runs a
/// quarter of its concurrency ([`Outbox::intake`]).
pub const INTAKE_WINDOW: Duration = Duration::from_millis(200);

/// An item as read from the queue, before its work is decoded.
struct Row {
    id: i64,
    kind: String,
    key: String,
    payload: String,
    attempts: u32,
}

impl<W> std::fmt::Debug for Outbox<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("store", &self.store).finish_non_exhaustive()
    }
}

impl<W: Work> Outbox<W> {
    /// An outbox over `store` (which must have run [`MIGRATION`]). Items a crash left
    /// `running` go back to `pending` here, before anything can be dispatched.
    pub fn new(store: Arc<Store>, policy: RetryConfig, jitter: SeededRng) -> Arc<Self> {
        let outbox = Arc::new(Self {
            store,
            wake: Notify::new(),
            policy,
            jitter: Mutex::new(jitter),
            in_flight: AtomicUsize::new(0),
            ready: Mutex::new(std::collections::VecDeque::new()),
            born: std::time::Instant::now(),
            last_intake_us: AtomicU64::new(0),
            peak_window_us: AtomicU64::new(0),
            peak_arrivals: AtomicU64::new(0),
            held_until_us: AtomicU64::new(0),
        });
        if let Err(e) = outbox.recover() {
            tracing::error!(error = %e, "outbox: cannot recover interrupted items");
        }
        outbox
    }

    /// The simulator took a request in: for [`INTAKE_WINDOW`] from now the outbox
    /// starts no more than a quarter of its concurrency at once. Deliveries share
    /// their thread with the intake (a thread per system): a front door that answers
    /// late is worse than a queue that drains later, so deliveries yield to it while
    /// requests arrive and take every slot again once they stop. (At 10,000 results/s
    /// the SAR's 256 deliveries at once left its intake 20,000 results behind.)
    pub fn intake(&self) {
        self.last_intake_us.store(self.age_us().max(1), Ordering::Relaxed);
    }

    /// The simulator took in a request its queued deliveries play no part in: at
    /// [`PEAK_ARRIVALS`] such requests within an [`INTAKE_WINDOW`], no queued item
    /// starts until an [`INTAKE_WINDOW`] after the rate falls below it; dispatched items
    /// still run (see the module's docs). Counted in fixed windows: approximate under
    /// races, which only moves the moment the hold begins.
    pub fn hold_at_peak(&self) {
        let now = self.age_us().max(1);
        let window = INTAKE_WINDOW.as_micros() as u64;
        let arrivals = if now.saturating_sub(self.peak_window_us.load(Ordering::Relaxed)) >= window {
            self.peak_window_us.store(now, Ordering::Relaxed);
            self.peak_arrivals.store(1, Ordering::Relaxed);
            1
        } else {
            self.peak_arrivals.fetch_add(1, Ordering::Relaxed) + 1
        };
        if arrivals >= PEAK_ARRIVALS {
            self.held_until_us.store(now + window, Ordering::Relaxed);
        }
    }

    /// Whether the queue is held now ([`Self::hold_at_peak`]).
    fn held(&self) -> bool {
        self.age_us() < self.held_until_us.load(Ordering::Relaxed)
    }

    /// Microseconds since the outbox was made.
    fn age_us(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// How many items may run at once now (see [`Self::intake`]).
    fn limit(&self) -> usize {
        let full = self.policy.concurrency.max(1);
        let last = self.last_intake_us.load(Ordering::Relaxed);
        let now = self.age_us();
        let busy = last > 0 && now.saturating_sub(last) < INTAKE_WINDOW.as_micros() as u64;
        if busy { (full / 4).max(1) } else { full }
    }

    /// Items a crash left `running` go back to `pending` (once, at construction).
    fn recover(&self) -> Result<(), StoreError> {
        self.store.with(|c| c.exec(RECOVER_SQL, [])).map(|_| ())
    }

    /// The outbox of `system` over its store, with the configuration's retry policy
    /// and jitter drawn from the seed (and the store's generation, so a restart does
    /// not replay the same waits).
    /// It reports to the ecosystem's [`crate::activity::Activity`] while it holds work
    /// never yet tried or an attempt is under way, so a clock move waits for it.
    pub fn for_system(ctx: &crate::Context, system: crate::System, store: Arc<Store>) -> Arc<Self> {
        let label = format!("{}/retry/{}", system.name(), store.generation());
        let outbox = Self::new(store, ctx.config().retry.clone(), SeededRng::derive(ctx.config().seed, &label));
        let weak = Arc::downgrade(&outbox);
        ctx.activity().probe(move || weak.upgrade().is_some_and(|o| o.has_fresh_work()));
        outbox
    }

    /// Work under way or never yet tried: an attempt running, an item handed over and
    /// waiting for a slot, or a pending item with no attempt. Items waiting out a
    /// backoff after a failure are not (outages run on real time).
    pub fn has_fresh_work(&self) -> bool {
        if self.in_flight.load(Ordering::SeqCst) > 0 || !self.ready.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
        {
            return true;
        }
        self.store.with(|c| c.row(FRESH_SQL, [], |r| r.get::<_, bool>(0))).unwrap_or(false)
    }

    /// Tells the worker there is new work (call after committing an [`enqueue`]).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Hands the worker items made by [`enqueue_claimed`] (call after their
    /// transaction committed); they run as soon as a slot is free.
    pub fn dispatch(&self, items: impl IntoIterator<Item = Item<W>>) {
        self.ready.lock().unwrap_or_else(|p| p.into_inner()).extend(items);
        self.wake.notify_one();
    }

    /// As [`Self::dispatch`], ahead of the items already handed over: for work that
    /// finishes a journey already under way (the CUN's SMS once Sistema TS gave the
    /// CUN), so it does not wait behind every journey started since. Their order
    /// among themselves is kept.
    pub fn dispatch_first(&self, items: impl IntoIterator<Item = Item<W>>) {
        let items: Vec<Item<W>> = items.into_iter().collect();
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        for item in items.into_iter().rev() {
            ready.push_front(item);
        }
        drop(ready);
        self.wake.notify_one();
    }

    fn take_ready(&self, limit: usize) -> Vec<Item<W>> {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        let n = limit.min(ready.len());
        ready.drain(..n).collect()
    }

    /// How many items are pending.
    pub fn pending(&self) -> Result<i64, StoreError> {
        self.store.with(|c| c.row(PENDING_SQL, [], |r| r.get(0)))
    }

    /// The wait before attempt `attempts + 1`.
    fn backoff(&self, attempts: u32, at_least: Option<Duration>) -> Duration {
        let base = self.policy.base.to_std();
        let cap = self.policy.cap.to_std().max(base);
        let exp = base.saturating_mul(1u32 << attempts.saturating_sub(1).min(20)).min(cap);
        let factor = 0.5 + 0.5 * self.jitter.lock().unwrap_or_else(|p| p.into_inner()).unit();
        exp.mul_f64(factor).max(at_least.unwrap_or_default())
    }

    /// Marks up to `limit` due items `running` and returns them. (A select then
    /// updates by id: SQLite runs `UPDATE ... WHERE id IN (SELECT ... LIMIT n)` over
    /// the whole queue, an order of magnitude slower on a long one. And no `LIMIT ?`:
    /// a bound LIMIT makes SQLite prepare the statement again on every run; the index
    /// gives the rows in order, so taking the first `limit` reads no more.)
    fn claim(&self, limit: usize) -> Result<Vec<Row>, StoreError> {
        let now = now_ms();
        self.store.transaction(|c| {
            let items: Vec<Row> = c
                .prepare_cached(DUE_SQL)?
                .query_map(params![now], |r| {
                    Ok(Row { id: r.get(0)?, kind: r.get(1)?, key: r.get(2)?, payload: r.get(3)?, attempts: r.get(4)? })
                })?
                .take(limit)
                .collect::<rusqlite::Result<_>>()?;
            for item in &items {
                c.exec("UPDATE outbox SET state = 'running' WHERE id = ?1", [item.id])?;
            }
            Ok::<_, StoreError>(items)
        })
    }

    fn next_due_ms(&self) -> Result<Option<i64>, StoreError> {
        self.store.with(|c| c.row(NEXT_DUE_SQL, [], |r| r.get(0)))
    }

    /// The claimed rows as work; a row that does not read back is ended as failed
    /// (retrying cannot mend it).
    fn decode(&self, rows: Vec<Row>) -> Vec<Item<W>> {
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            match join::<W>(&row.kind, &row.payload) {
                Ok(work) => items.push(Item { id: row.id, key: row.key, work, attempts: row.attempts }),
                Err(e) => {
                    tracing::error!(item = row.id, error = %e, "outbox: unreadable item");
                    let error = format!("unreadable outbox item: {e}");
                    let text = format!("failed: {error}");
                    let ended = self
                        .store
                        .with(|c| write_attempt(c, row.id, row.attempts, "failed", now_ms(), Some(&error), &text));
                    if let Err(e) = ended {
                        tracing::error!(error = %e, item = row.id, "outbox: cannot record an attempt");
                    }
                }
            }
        }
        items
    }

    /// Records an attempt's outcome, in a group transaction with the other writes
    /// of the moment (one commit, on disk one fsync, for many outcomes).
    async fn finish(&self, item: Item<W>, outcome: Outcome, hook: Option<FinishHook<W>>) -> Result<(), StoreError> {
        let now = now_ms();
        let (state, next, error, text) = match &outcome {
            Outcome::Recorded => return Ok(()),
            Outcome::Done => ("done", now, None, "done".to_owned()),
            Outcome::Failed(e) => ("failed", now, Some(e.clone()), format!("failed: {e}")),
            Outcome::Retry { after, error } => {
                let wait = self.backoff(item.attempts + 1, *after);
                ("pending", now + wait.as_millis() as i64, Some(error.clone()), format!("retry: {error}"))
            }
        };
        self.store
            .grouped(move |tx| {
                write_attempt(tx, item.id, item.attempts, state, next, error.as_deref(), &text)?;
                if let Some(hook) = &hook {
                    hook(tx, &item, &outcome)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
    }

    /// Runs the worker until `stop` turns true. Items are handled concurrently, up
    /// to the policy's `concurrency`.
    pub async fn run(self: Arc<Self>, handler: Handler<W>, stop: watch::Receiver<bool>) {
        self.run_with(handler, None, stop).await;
    }

    /// As [`Self::run`], with a hook run inside each outcome's transaction.
    pub async fn run_with(
        self: Arc<Self>,
        handler: Handler<W>,
        hook: Option<FinishHook<W>>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            let limit = self.limit();
            let free = limit.saturating_sub(self.in_flight.load(Ordering::SeqCst));
            // Dispatched items first (already claimed), then the queue.
            let mut claimed = self.take_ready(free);
            let held = self.held();
            let rest = if held { 0 } else { free - claimed.len() };
            if rest > 0 {
                match self.claim(rest) {
                    Ok(rows) => claimed.extend(self.decode(rows)),
                    Err(e) => tracing::error!(error = %e, "outbox: cannot read the queue"),
                }
            }
            if claimed.is_empty() {
                let mut wait = if held {
                    // Due items wait out a peak: looked at again when it may be over
                    // (or when an item is dispatched), without reading the queue.
                    INTAKE_WINDOW
                } else {
                    match self.next_due_ms() {
                        Ok(Some(due)) => Duration::from_millis((due - now_ms()).clamp(1, 1000) as u64),
                        _ => Duration::from_secs(1),
                    }
                };
                if limit < self.policy.concurrency.max(1) {
                    // Slots come back when the intake goes quiet, with no wake-up.
                    wait = wait.min(INTAKE_WINDOW);
                }
                tokio::select! {
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            for item in claimed {
                self.in_flight.fetch_add(1, Ordering::SeqCst);
                let this = self.clone();
                let handler = handler.clone();
                let hook = hook.clone();
                tokio::spawn(async move {
                    let outcome = handler(item.clone()).await;
                    let id = item.id;
                    if let Err(e) = this.finish(item, outcome, hook).await {
                        tracing::error!(error = %e, item = id, "outbox: cannot record an attempt");
                    }
                    this.in_flight.fetch_sub(1, Ordering::SeqCst);
                    this.wake.notify_one();
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::HumanDuration;
    use crate::store::StoreLocation;
    use jiff::SignedDuration;
    use std::sync::atomic::AtomicU32;

    static MIGRATIONS: &[&str] = &[MIGRATION, DUE_MIGRATION, ROWID_MIGRATION];

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Job {
        Ts { n: u32 },
        Sms,
    }

    #[test]
    fn the_statements_that_read_by_state_use_the_due_index() {
        let store = Store::open(&StoreLocation::Memory, "t", MIGRATIONS).expect("store");
        for sql in [DUE_SQL, NEXT_DUE_SQL, PENDING_SQL, FRESH_SQL, RECOVER_SQL] {
            let plan: Vec<String> = store
                .with(|c| {
                    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let zeros = vec![0i64; stmt.parameter_count()];
                    stmt.query_map(rusqlite::params_from_iter(zeros), |r| r.get(3))?.collect()
                })
                .expect("plan");
            assert!(
                plan.iter().any(|d| d.contains("INDEX outbox_due")) && !plan.iter().any(|d| d == "SCAN outbox"),
                "{sql}: {plan:?}"
            );
        }
    }

    #[test]
    fn an_outbox_made_with_autoincrement_keeps_its_items_and_attempts_through_the_rowid_migration() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loc = StoreLocation::Dir(dir.path().to_owned());
        let before = {
            let store = Store::open(&loc, "t", &MIGRATIONS[..2]).expect("the old schema");
            store
                .transaction(|c| {
                    for (key, n) in [("a", 1), ("b", 2), ("c", 3)] {
                        enqueue(c, key, &Job::Ts { n })?;
                    }
                    let id = |key: &str| c.row("SELECT id FROM outbox WHERE key = ?1", [key], |r| r.get::<_, i64>(0));
                    write_attempt(c, id("a")?, 0, "pending", 5, Some("503"), "retry: 503")?;
                    write_attempt(c, id("a")?, 1, "done", 6, None, "done")?;
                    write_attempt(c, id("b")?, 0, "done", 7, None, "done")?;
                    Ok::<_, StoreError>(())
                })
                .expect("items");
            let seq: i64 = store
                .with(|c| c.row("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'", [], |r| r.get(0)))
                .expect("AUTOINCREMENT kept a sequence");
            assert_eq!(seq, 3);
            store.with(|c| attempts_of(c, "a")).expect("attempts")
        };
        let store = Store::open(&loc, "t", MIGRATIONS).expect("migrated");
        store
            .with(|c| {
                assert_eq!(attempts_of(c, "a")?, before, "attempts kept, with their items");
                assert_eq!(attempts_of(c, "b")?.len(), 1);
                let state = item_state(c, &Job::Sms, "c")?;
                assert_eq!(state, None, "c is a `ts` item");
                let c_state = item_state(c, &Job::Ts { n: 3 }, "c")?.expect("c kept");
                assert_eq!((c_state.state.as_str(), c_state.attempts), ("pending", 0));
                let sql: String = c.row("SELECT sql FROM sqlite_master WHERE name = 'outbox'", [], |r| r.get(0))?;
                assert!(!sql.contains("AUTOINCREMENT"), "{sql}");
                let left: i64 =
                    c.row("SELECT COUNT(*) FROM sqlite_sequence WHERE name = 'outbox'", [], |r| r.get(0))?;
                assert_eq!(left, 0);
                let broken = c.prepare("PRAGMA foreign_key_check")?.query_map([], |_| Ok(()))?.count();
                assert_eq!(broken, 0, "every attempt points at its item");
                Ok(())
            })
            .expect("after");
        // New items go after the old ones; a new attempt refers to the new table.
        store
            .transaction(|c| {
                let d = enqueue_claimed(c, "d", &Job::Ts { n: 4 })?.expect("new");
                assert_eq!(d.id, 4);
                record_done(c, &d)?;
                Ok::<_, StoreError>(())
            })
            .expect("a new item");
        assert_eq!(store.with(|c| attempts_of(c, "d")).expect("d").len(), 1);
    }

    /// Work of every shape an outbox holds: fields, a wrapped struct, nothing.
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Varied {
        Text { text: String, n: i64 },
        Wrapped(Inner),
        Bare,
    }

    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Inner {
        kind_of_thing: Option<String>,
        list: Vec<u8>,
    }

    fn varied() -> impl proptest::strategy::Strategy<Value = Varied> {
        use proptest::prelude::*;
        prop_oneof![
            (any::<String>(), any::<i64>()).prop_map(|(text, n)| Varied::Text { text, n }),
            (proptest::option::of(any::<String>()), proptest::collection::vec(any::<u8>(), 0..8))
                .prop_map(|(kind_of_thing, list)| Varied::Wrapped(Inner { kind_of_thing, list })),
            Just(Varied::Bare),
        ]
    }

    proptest::proptest! {
        #[test]
        fn work_is_stored_as_its_tag_and_the_rest_and_reads_back(work in varied()) {
            let (kind, payload) = split(&work).expect("split");
            let Value::Object(mut whole) = serde_json::to_value(&work).expect("value") else { panic!("an object") };
            proptest::prop_assert_eq!(whole.remove("kind"), Some(Value::String(kind.clone())));
            let stored: Value = serde_json::from_str(&payload).expect("the payload is JSON");
            proptest::prop_assert_eq!(stored, Value::Object(whole));
            proptest::prop_assert_eq!(join::<Varied>(&kind, &payload).expect("join"), work.clone());
            proptest::prop_assert_eq!(join_value::<Varied>(&kind, &payload).expect("join"), work);
        }
    }

    #[test]
    fn work_that_does_not_read_back_says_why_as_before() {
        for (kind, payload) in [("fax", "{}"), ("text", r#"{"text": 5, "n": 1}"#), ("text", "[1]"), ("text", "{")] {
            let e = join::<Varied>(kind, payload).expect_err(payload);
            assert_eq!(e, join_value::<Varied>(kind, payload).expect_err(payload), "{kind} {payload}");
        }
        assert_eq!(join::<Varied>("bare", "null"), Ok(Varied::Bare), "an item stored with no payload");
    }

    #[test]
    fn work_that_is_not_tagged_first_is_refused_with_why() {
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        struct Untagged {
            n: u32,
        }
        let e = split(&Untagged { n: 1 }).expect_err("no tag");
        assert!(e.to_string().contains("tagged `kind` first"), "{e}");
    }

    fn outbox() -> (Arc<Store>, Arc<Outbox<Job>>) {
        outbox_with(4)
    }

    /// An outbox running up to `concurrency` items at once.
    fn outbox_with(concurrency: usize) -> (Arc<Store>, Arc<Outbox<Job>>) {
        let store = Arc::new(Store::open(&StoreLocation::Memory, "t", MIGRATIONS).expect("store"));
        let policy = RetryConfig {
            base: HumanDuration(SignedDuration::from_millis(5)),
            cap: HumanDuration(SignedDuration::from_millis(20)),
            concurrency,
        };
        let ob = Outbox::new(store.clone(), policy, SeededRng::new(1));
        (store, ob)
    }

    /// Until no item is waiting or being tried (an item being tried is `running`, not
    /// `pending`: counting only pending ones could return during the last attempt).
    async fn until_settled(store: &Store) {
        for _ in 0..400 {
            let pending: i64 = store
                .with(|c| {
                    c.query_row("SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'running')", [], |r| r.get(0))
                })
                .expect("count");
            if pending == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("outbox never settled");
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_done() {
        let (store, ob) = outbox();
        let calls = Arc::new(AtomicU32::new(0));
        let c = calls.clone();
        let handler: Handler<Job> = Arc::new(move |_item| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            Box::pin(
                async move { if n < 2 { Outcome::Retry { after: None, error: "503".into() } } else { Outcome::Done } },
            )
        });
        store.with(|c| enqueue(c, "esito-1", &Job::Ts { n: 1 })).expect("enqueue");
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(ob.clone().run(handler, stop));
        until_settled(&store).await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let st = store.with(|c| item_state(c, &Job::Ts { n: 0 }, "esito-1")).expect("state").expect("there");
        assert_eq!((st.state.as_str(), st.attempts), ("done", 3));
        let attempts = store.with(|c| attempts_of(c, "esito-1")).expect("attempts");
        assert_eq!(
            attempts.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>(),
            vec!["retry: 503", "retry: 503", "done"]
        );
        let _ = stop_tx.send(true);
    }

    #[tokio::test]
    async fn while_requests_come_in_a_quarter_of_the_slots_run_and_all_of_them_after() {
        let (store, ob) = outbox_with(8);
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (r, m) = (running.clone(), most.clone());
        let handler: Handler<Job> = Arc::new(move |_| {
            let (r, m) = (r.clone(), m.clone());
            Box::pin(async move {
                m.fetch_max(r.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                r.fetch_sub(1, Ordering::SeqCst);
                Outcome::Done
            })
        });
        let forty = |prefix: &str| {
            store
                .transaction(|c| {
                    for n in 0..40 {
                        enqueue(c, &format!("{prefix}-{n}"), &Job::Ts { n })?;
                    }
                    Ok::<_, StoreError>(())
                })
                .expect("enqueue");
        };
        forty("busy");
        ob.intake();
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(ob.clone().run(handler, stop));
        // Requests keep arriving for a while: two slots of eight.
        for _ in 0..10 {
            ob.intake();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(most.load(Ordering::SeqCst), 2, "a quarter of 8 while requests arrive");
        until_settled(&store).await;
        forty("quiet");
        ob.wake.notify_one();
        until_settled(&store).await;
        assert_eq!(most.load(Ordering::SeqCst), 8, "every slot once they stop");
        let _ = stop_tx.send(true);
    }

    #[tokio::test]
    async fn at_a_peak_the_queue_waits_dispatched_items_run_and_the_queue_starts_after() {
        let (store, ob) = outbox_with(8);
        let handled = Arc::new(Mutex::new(Vec::<String>::new()));
        let h = handled.clone();
        let handler: Handler<Job> = Arc::new(move |item| {
            h.lock().unwrap().push(item.key.clone());
            Box::pin(async { Outcome::Done })
        });
        store.with(|c| enqueue(c, "queued", &Job::Ts { n: 1 })).expect("enqueue");
        let (stop_tx, stop) = watch::channel(false);
        // Just under the peak rate, nothing is held.
        for _ in 1..PEAK_ARRIVALS {
            ob.hold_at_peak();
        }
        assert!(!ob.held(), "one request short of the peak");
        ob.hold_at_peak();
        assert!(ob.held(), "at the peak");
        tokio::spawn(ob.clone().run(handler, stop));
        let peak_until = std::time::Instant::now() + Duration::from_millis(300);
        let mut dispatched = false;
        // Requests keep arriving at the peak rate for 300 ms (each round a whole
        // window's worth, so a slow machine's late wake-up cannot end the peak).
        while std::time::Instant::now() < peak_until {
            for _ in 0..PEAK_ARRIVALS {
                ob.hold_at_peak();
            }
            if !dispatched {
                let item = store.with(|c| enqueue_claimed(c, "dispatched", &Job::Sms)).expect("claimed");
                ob.dispatch(item);
                dispatched = true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*handled.lock().unwrap(), ["dispatched"], "only the dispatched item ran during the peak");
        until_settled(&store).await;
        assert_eq!(*handled.lock().unwrap(), ["dispatched", "queued"], "the queue after it");
        assert!(!ob.held());
        let _ = stop_tx.send(true);
    }

    #[tokio::test]
    async fn enqueueing_the_same_work_twice_is_a_no_op_and_failures_stop() {
        let (store, ob) = outbox();
        assert!(store.with(|c| enqueue(c, "k", &Job::Sms)).expect("first"));
        assert!(!store.with(|c| enqueue(c, "k", &Job::Sms)).expect("second"));
        let handler: Handler<Job> =
            Arc::new(|_| Box::pin(async { Outcome::Failed("422 unknown codice fiscale".into()) }));
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(ob.run(handler, stop));
        until_settled(&store).await;
        let st = store.with(|c| item_state(c, &Job::Sms, "k")).expect("state").expect("there");
        assert_eq!((st.state.as_str(), st.attempts), ("failed", 1));
        assert_eq!(st.last_error.as_deref(), Some("422 unknown codice fiscale"));
        let _ = stop_tx.send(true);
    }

    #[tokio::test]
    async fn dispatched_items_run_without_a_scan_and_a_restart_recovers_undispatched_ones() {
        let (store, ob) = outbox();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let handler: Handler<Job> = Arc::new(move |item: Item<Job>| {
            s.lock().unwrap().push(item.key.clone());
            Box::pin(async { Outcome::Done })
        });
        // A crash left one item claimed but never dispatched: the restart recovers it.
        store.with(|tx| enqueue_claimed(tx, "b", &Job::Sms)).expect("enqueue");
        let ob = Outbox::new(store.clone(), ob.policy.clone(), SeededRng::new(2));
        let claimed = store
            .transaction(|tx| {
                let a = enqueue_claimed(tx, "a", &Job::Ts { n: 1 })?;
                let again = enqueue_claimed(tx, "a", &Job::Ts { n: 2 })?;
                assert!(again.is_none(), "the same work twice is a no-op");
                Ok::<_, StoreError>(a)
            })
            .expect("tx");
        let claimed = claimed.expect("new item");
        assert_eq!(claimed.work, Job::Ts { n: 1 });
        // Written claimed: a scan does not see it (only the recovered one).
        assert_eq!(ob.claim(10).expect("claim").iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), ["b"]);
        // Stored as kind + payload, as before the work was typed.
        let stored: (String, String) = store
            .with(|c| {
                c.query_row("SELECT kind, payload FROM outbox WHERE key = 'a'", [], |r| Ok((r.get(0)?, r.get(1)?)))
            })
            .expect("row");
        assert_eq!(stored, ("ts".to_owned(), r#"{"n":1}"#.to_owned()));
        store.with(|c| c.exec("UPDATE outbox SET state = 'pending' WHERE key = 'b'", [])).expect("unclaim");
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(ob.clone().run(handler, stop));
        ob.dispatch([claimed]);
        until_settled(&store).await;
        for _ in 0..200 {
            if seen.lock().unwrap().len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut keys = seen.lock().unwrap().clone();
        keys.sort();
        assert_eq!(keys, ["a", "b"], "each ran once");
        for key in ["a", "b"] {
            let kind = if key == "a" { Job::Ts { n: 0 } } else { Job::Sms };
            let st = store.with(|c| item_state(c, &kind, key)).expect("state").expect("there");
            assert_eq!((st.state.as_str(), st.attempts), ("done", 1), "{key}");
        }
        let _ = stop_tx.send(true);
    }

    #[tokio::test]
    async fn work_dispatched_first_runs_before_the_work_already_waiting_in_its_own_order() {
        let (store, ob) = outbox_with(1);
        let claim = |key: &str, n: u32| {
            store.with(|tx| enqueue_claimed(tx, key, &Job::Ts { n })).expect("enqueue").expect("new")
        };
        ob.dispatch([claim("a", 1), claim("b", 2), claim("c", 3)]);
        ob.dispatch_first([claim("x", 4), claim("y", 5)]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let handler: Handler<Job> = Arc::new(move |item: Item<Job>| {
            s.lock().unwrap().push(item.key.clone());
            Box::pin(async { Outcome::Done })
        });
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(ob.clone().run(handler, stop));
        for _ in 0..400 {
            if seen.lock().unwrap().len() == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(*seen.lock().unwrap(), ["x", "y", "a", "b", "c"]);
        let _ = stop_tx.send(true);
    }

    #[tokio::test]
    async fn a_row_that_no_longer_reads_as_work_ends_failed_not_empty() {
        let (store, ob) = outbox();
        store
            .with(|c| {
                c.exec(
                    "INSERT INTO outbox (kind, key, payload) VALUES ('fax', 'x', '{}'), ('ts', 'y', '{\"n\":\"one\"}')",
                    [],
                )
            })
            .expect("insert");
        let handler: Handler<Job> = Arc::new(|_| Box::pin(async { panic!("no handler for unreadable work") }));
        let (stop_tx, stop) = watch::channel(false);
        tokio::spawn(ob.run(handler, stop));
        until_settled(&store).await;
        for (key, work) in [("x", Job::Sms), ("y", Job::Ts { n: 0 })] {
            let st = store.with(|c| item_state(c, &work, key)).expect("state");
            // `x` is stored under `fax`, which no Job variant is.
            let st = match st {
                Some(st) => st,
                None => store
                    .with(|c| {
                        c.row("SELECT state, attempts, last_error FROM outbox WHERE key = ?1", [key], |r| {
                            Ok(ItemState { state: r.get(0)?, attempts: r.get(1)?, last_error: r.get(2)? })
                        })
                    })
                    .expect("row"),
            };
            assert_eq!(st.state, "failed", "{key}");
            assert!(st.last_error.as_deref().unwrap_or("").starts_with("unreadable outbox item"), "{st:?}");
        }
        let _ = stop_tx.send(true);
    }

    #[test]
    fn kind_of_is_the_serde_tag() {
        assert_eq!(kind_of(&Job::Ts { n: 3 }), "ts");
        assert_eq!(kind_of(&Job::Sms), "sms");
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let (_, ob) = outbox();
        let d1 = ob.backoff(1, None);
        assert!(d1 >= Duration::from_micros(2500) && d1 <= Duration::from_millis(5), "{d1:?}");
        let d9 = ob.backoff(9, None);
        assert!(d9 <= Duration::from_millis(20), "{d9:?}");
        assert!(ob.backoff(1, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
    }
}
