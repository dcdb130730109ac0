//! The journal: an append-only record of every exchange between systems.
//!
//! Every simulator records each request it serves (who called, what, the status,
//! how long it took, both bodies). The harness asserts on it and the reports draw
//! it as a sequence diagram. It is bounded twice: past `cap` entries, or past a byte
//! `budget` (default 64 MiB), the oldest are dropped and counted, so neither a
//! long-running `ecosim up` nor a caller sending large or many requests makes it
//! grow without end. Each body is kept up to a per-body cap (default 64 KiB) in an
//! allocation of its own: an entry costs its kept bytes plus a few hundred bytes,
//! never the network buffer a body arrived in.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use tokio::sync::Notify;

/// Bodies longer than this are cut in the journal by default (the exchange itself
/// is not): `[journal] body_cap`.
pub const BODY_LIMIT: usize = 64 * 1024;

/// The default byte budget of the journal: `[journal] budget`.
pub const BUDGET: usize = 64 * 1024 * 1024;

/// One request and its response, as recorded.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Exchange {
    /// Sequence number, from 1, never reused.
    pub seq: u64,
    /// Virtual time the request arrived.
    pub time: Timestamp,
    /// Real (wall-clock) time the request arrived: what a retry's spacing is measured
    /// on, since transport retries run on real time.
    pub wall_time: Timestamp,
    /// The caller: account name (`sar-160`, `immuni`), `app` or `anonymous`.
    pub from: String,
    /// The system that served it (`sistema-ts`).
    pub to: String,
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Response status; 0 when the connection was dropped without an answer.
    pub status: u16,
    /// Real time spent answering, in milliseconds.
    pub duration_ms: f64,
    /// Request body (text when serialised, cut at the journal's body cap).
    pub request_body: Body,
    /// Response body (text when serialised, cut at the journal's body cap).
    pub response_body: Body,
    /// The fault rule applied, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<u64>,
    /// The request's `Idempotency-Key`, if it had one: whether a retry is the same
    /// message or a new one (IFC-IDEMP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// What the system noted about the exchange beyond its answer (a [`Note`] the
    /// handler attached): e.g. Immuni dropping an inconsistent key batch it answered
    /// 204, as the real backend did, so the drop is visible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A remark a handler attaches to its response (as an extension); the boundary
/// layer records it in the journal as [`Exchange::note`] and sends it in the
/// [`NOTE_HEADER`] header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note(pub String);

/// The header that carries a [`Note`] to the caller.
pub const NOTE_HEADER: &str = "ecosim-warning";

/// An exchange before it gets its sequence number.
#[derive(Debug, Clone, Default)]
pub struct NewExchange {
    /// See [`Exchange::time`].
    pub time: Option<Timestamp>,
    /// See [`Exchange::wall_time`]; `None`: now.
    pub wall_time: Option<Timestamp>,
    /// See [`Exchange::from`].
    pub from: String,
    /// See [`Exchange::to`].
    pub to: String,
    /// See [`Exchange::method`].
    pub method: String,
    /// See [`Exchange::path`].
    pub path: String,
    /// See [`Exchange::status`].
    pub status: u16,
    /// See [`Exchange::duration_ms`].
    pub duration_ms: f64,
    /// Raw request body.
    pub request_body: Body,
    /// Raw response body.
    pub response_body: Body,
    /// See [`Exchange::fault`].
    pub fault: Option<u64>,
    /// See [`Exchange::idempotency_key`].
    pub idempotency_key: Option<String>,
    /// See [`Exchange::note`].
    pub note: Option<String>,
}

/// A body as recorded: the bytes kept (at most the journal's body cap, in an
/// allocation of their own) and how many were cut; turned into text only when read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Body {
    kept: bytes::Bytes,
    cut: usize,
}

impl Body {
    /// The body as text: UTF-8 (lossy), with a note of what was cut.
    pub fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.kept).into_owned();
        if self.cut > 0 {
            s.push_str(&format!("... [{} bytes cut]", self.cut));
        }
        s
    }

    /// The body's length as it was sent.
    pub fn len(&self) -> usize {
        self.kept.len() + self.cut
    }

    /// Whether the body was empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// At most `cap` bytes of this body, copied out of whatever buffer held them
    /// (a slice of a network read buffer would keep the whole buffer alive).
    fn capped(self, cap: usize) -> Self {
        let keep = self.kept.len().min(cap);
        Self { kept: bytes::Bytes::copy_from_slice(&self.kept[..keep]), cut: self.cut + self.kept.len() - keep }
    }
}

impl From<bytes::Bytes> for Body {
    fn from(b: bytes::Bytes) -> Self {
        Self { kept: b, cut: 0 }
    }
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Self { kept: b.into(), cut: 0 }
    }
}

impl serde::Serialize for Body {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

struct State {
    entries: VecDeque<Exchange>,
    next_seq: u64,
    dropped: u64,
    /// Bytes the kept entries account for (see [`Exchange::cost`]).
    bytes: usize,
}

/// How much the journal keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries.
    pub cap: usize,
    /// Most bytes, entries and bodies together.
    pub budget: usize,
    /// Most bytes kept of one body.
    pub body_cap: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { cap: 100_000, budget: BUDGET, body_cap: BODY_LIMIT }
    }
}

impl Exchange {
    /// What keeping this entry costs in memory, near enough: the struct, its
    /// strings and its kept bodies.
    fn cost(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.from.len()
            + self.to.len()
            + self.method.len()
            + self.path.len()
            + self.request_body.kept.len()
            + self.response_body.kept.len()
            + self.idempotency_key.as_ref().map_or(0, String::len)
            + self.note.as_ref().map_or(0, String::len)
    }
}

/// A page of the journal.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JournalPage {
    /// Exchanges with `seq > since`, oldest first.
    pub exchanges: Vec<Exchange>,
    /// The sequence number to ask `since` next time.
    pub last_seq: u64,
    /// How many exchanges were dropped for the cap or the budget since the start.
    pub dropped: u64,
}

/// A cheaply cloneable handle to one ecosystem's journal.
#[derive(Clone)]
pub struct Journal {
    state: Arc<Mutex<State>>,
    /// Fixed at creation, so read without the lock.
    limits: Limits,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").finish_non_exhaustive()
    }
}

impl Journal {
    /// An empty journal that keeps at most `cap` exchanges (and the default budget).
    pub fn new(cap: usize) -> Self {
        Self::with_limits(Limits { cap, ..Limits::default() })
    }

    /// An empty journal within `limits`.
    pub fn with_limits(limits: Limits) -> Self {
        let limits = Limits { cap: limits.cap.max(1), ..limits };
        Self {
            state: Arc::new(Mutex::new(State { entries: VecDeque::new(), next_seq: 1, dropped: 0, bytes: 0 })),
            limits,
            notify: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an exchange; returns its sequence number.
    pub fn record(&self, e: NewExchange) -> u64 {
        // Copied outside the lock: a 64 KiB copy must not hold up other systems.
        let request_body = e.request_body.capped(self.limits.body_cap);
        let response_body = e.response_body.capped(self.limits.body_cap);
        let mut st = self.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        st.entries.push_back(Exchange {
            seq,
            time: e.time.unwrap_or(Timestamp::UNIX_EPOCH),
            wall_time: e.wall_time.unwrap_or_else(Timestamp::now),
            from: e.from,
            to: e.to,
            method: e.method,
            path: e.path,
            status: e.status,
            duration_ms: e.duration_ms,
            request_body,
            response_body,
            fault: e.fault,
            idempotency_key: e.idempotency_key,
            note: e.note,
        });
        st.bytes += st.entries.back().map_or(0, Exchange::cost);
        // The newest entry always stays, whatever it costs (its bodies are capped).
        let Limits { cap, budget, .. } = self.limits;
        while st.entries.len() > 1 && (st.entries.len() > cap || st.bytes > budget) {
            if let Some(old) = st.entries.pop_front() {
                st.bytes -= old.cost();
                st.dropped += 1;
            }
        }
        drop(st);
        self.notify.notify_waiters();
        seq
    }

    /// Exchanges with a sequence number above `since` (0 for all kept).
    pub fn since(&self, since: u64) -> JournalPage {
        let st = self.lock();
        let start = st.entries.partition_point(|e| e.seq <= since);
        JournalPage {
            exchanges: st.entries.iter().skip(start).cloned().collect(),
            last_seq: st.next_seq - 1,
            dropped: st.dropped,
        }
    }

    /// The sequence number of the latest exchange (0 if none yet).
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// The bytes the kept exchanges account for (entries, strings and kept bodies).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// How many exchanges are kept now.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every exchange (sequence numbers keep growing).
    pub fn clear(&self) {
        let mut st = self.lock();
        st.entries.clear();
        st.bytes = 0;
    }

    /// Waits until an exchange is recorded after this call.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> NewExchange {
        NewExchange { path: path.into(), method: "GET".into(), status: 200, ..Default::default() }
    }

    #[test]
    fn keeps_at_most_cap_and_counts_what_it_dropped() {
        let j = Journal::new(3);
        for i in 0..5 {
            j.record(entry(&format!("/{i}")));
        }
        let page = j.since(0);
        assert_eq!(page.exchanges.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(page.dropped, 2);
        assert_eq!(page.last_seq, 5);
        assert_eq!(j.since(4).exchanges.len(), 1);
        assert!(j.since(5).exchanges.is_empty());
    }

    #[test]
    fn long_bodies_are_cut_and_say_so() {
        let j = Journal::new(10);
        j.record(NewExchange { request_body: vec![b'a'; BODY_LIMIT + 10].into(), ..entry("/") });
        let e = &j.since(0).exchanges[0];
        assert!(e.request_body.text().ends_with("... [10 bytes cut]"));
        assert_eq!(e.request_body.len(), BODY_LIMIT + 10);
    }

    #[test]
    fn the_byte_budget_drops_the_oldest_and_accounts_for_every_byte() {
        let limits = Limits { cap: 1_000_000, budget: 100 * 1024, body_cap: 4 * 1024 };
        let j = Journal::with_limits(limits);
        for i in 0..200 {
            j.record(NewExchange { request_body: vec![b'x'; 10_000].into(), ..entry(&format!("/{i}")) });
        }
        let page = j.since(0);
        // Each entry keeps 4 KiB of its 10 KB body plus a few hundred bytes.
        assert!(j.bytes() <= limits.budget, "{} bytes kept", j.bytes());
        assert!(page.exchanges.len() >= 20 && page.exchanges.len() < 25, "{} kept", page.exchanges.len());
        assert_eq!(page.dropped as usize + page.exchanges.len(), 200);
        assert_eq!(page.exchanges.last().map(|e| e.path.as_str()), Some("/199"));
        let per_entry = j.bytes() / page.exchanges.len() - 4 * 1024;
        assert!(per_entry < 512, "overhead per entry {per_entry} bytes");
        j.clear();
        assert_eq!(j.bytes(), 0);
    }

    #[test]
    fn a_body_is_copied_out_of_the_buffer_it_arrived_in() {
        let buffer = bytes::Bytes::from(vec![b'y'; 64 * 1024]);
        let range = buffer.as_ptr_range();
        let j = Journal::new(10);
        j.record(NewExchange { request_body: buffer.slice(0..10).into(), ..entry("/") });
        let e = &j.since(0).exchanges[0];
        assert_eq!(e.request_body.text(), "yyyyyyyyyy");
        // The kept bytes are their own allocation: the 64 KiB buffer is not kept alive.
        assert!(!range.contains(&e.request_body.kept.as_ptr()));
        assert!(j.bytes() < 1024, "{}", j.bytes());
    }
}
