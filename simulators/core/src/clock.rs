//! The shared virtual clock.
//!
//! Domain time never comes from the wall clock: every simulator of an ecosystem
//! reads [`Clock::now`], and tests and scenarios move it with [`Clock::advance`] or
//! [`Clock::set`]. Jobs scheduled with [`Clock::schedule_at`] (the 14-day purge,
//! AVN's midnight forwarding, PN-DGC's day-12 issuance) run when the clock passes
//! their time, in time order (ties in scheduling order), each seeing the clock at
//! its own due time. The clock only moves forward. [`Clock::step`] runs one job at a
//! time, so that [`crate::Context::move_clock`] can let the ecosystem handle what
//! each job set off before the clock moves on (a discrete-event scheduler).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;

/// A job run when the clock reaches its time; it receives that time.
pub type Job = Box<dyn FnOnce(Timestamp) + Send>;

/// Identifies a scheduled job, to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct JobId(u64);

/// Why the clock refused to move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// The clock only moves forward.
    #[error("the clock only moves forward: {requested} is before now ({now})")]
    Backwards {
        /// What was asked.
        requested: Timestamp,
        /// The clock's time.
        now: Timestamp,
    },
    /// The result is outside the representable range.
    #[error("the clock cannot move that far")]
    Overflow,
    /// A scheduled job panicked (the clock stays at its time).
    #[error("a scheduled job failed: {0}")]
    Job(String),
}

struct State {
    now: Timestamp,
    queue: BTreeMap<(Timestamp, u64), Job>,
    due_of: HashMap<u64, Timestamp>,
    next_id: u64,
}

struct Inner {
    state: Mutex<State>,
    /// Serialises advances so jobs run in order even with concurrent callers.
    moving: Mutex<()>,
    tx: watch::Sender<Timestamp>,
    tz: TimeZone,
    persist: Option<std::path::PathBuf>,
}

/// A cheaply cloneable handle to one ecosystem's clock.
#[derive(Clone)]
pub struct Clock(Arc<Inner>);

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clock").field("now", &self.now()).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking job must not wedge the clock for everyone else.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Clock {
    /// A clock showing `start`, with dates read in Italian time (Europe/Rome).
    pub fn new(start: Timestamp) -> Self {
        Self::build(start, None)
    }

    /// A clock whose time survives restarts in `file`: it starts from the time saved
    /// there (if later than `start`) and saves every move.
    pub fn persistent(start: Timestamp, file: std::path::PathBuf) -> Self {
        let saved = std::fs::read_to_string(&file).ok().and_then(|s| s.trim().parse::<Timestamp>().ok());
        Self::build(saved.map_or(start, |t| t.max(start)), Some(file))
    }

    fn build(start: Timestamp, persist: Option<std::path::PathBuf>) -> Self {
        let tz = TimeZone::get("Europe/Rome").unwrap_or(TimeZone::UTC);
        let (tx, _) = watch::channel(start);
        Self(Arc::new(Inner {
            state: Mutex::new(State { now: start, queue: BTreeMap::new(), due_of: HashMap::new(), next_id: 0 }),
            moving: Mutex::new(()),
            tx,
            tz,
            persist,
        }))
    }

    fn save(&self, t: Timestamp) {
        if let Some(file) = &self.0.persist
            && let Err(e) = std::fs::write(file, t.to_string())
        {
            tracing::warn!(error = %e, file = %file.display(), "cannot save the clock");
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Timestamp {
        lock(&self.0.state).now
    }

    /// Today's date in Italy.
    pub fn today(&self) -> Date {
        self.date_of(self.now())
    }

    /// The Italian calendar date of `t`.
    pub fn date_of(&self, t: Timestamp) -> Date {
        t.to_zoned_datetime(self.0.tz.clone()).date()
    }

    /// The instant of Italian midnight starting `day`.
    pub fn midnight(&self, day: Date) -> Timestamp {
        day.to_zoned_datetime(self.0.tz.clone()).map(|z| z.timestamp()).unwrap_or_else(|_| self.now())
    }

    /// A receiver that sees every time the clock moves.
    pub fn subscribe(&self) -> watch::Receiver<Timestamp> {
        self.0.tx.subscribe()
    }

    /// How many jobs wait for their time.
    pub fn pending_jobs(&self) -> usize {
        lock(&self.0.state).queue.len()
    }

    /// Runs `job` when the clock reaches `at` (at once if `at` is not in the future).
    pub fn schedule_at(&self, at: Timestamp, job: impl FnOnce(Timestamp) + Send + 'static) -> JobId {
        let mut st = lock(&self.0.state);
        let id = st.next_id;
        st.next_id += 1;
        if at <= st.now {
            let now = st.now;
            drop(st);
            job(now);
        } else {
            st.queue.insert((at, id), Box::new(job));
            st.due_of.insert(id, at);
        }
        JobId(id)
    }

    /// Runs `job` after `delay` of virtual time.
    pub fn schedule_in(&self, delay: SignedDuration, job: impl FnOnce(Timestamp) + Send + 'static) -> JobId {
        let at = self.now().checked_add(delay).unwrap_or_else(|_| self.now());
        self.schedule_at(at, job)
    }

    /// Cancels a job that has not run; `false` if it already ran or was cancelled.
    pub fn cancel(&self, id: JobId) -> bool {
        let mut st = lock(&self.0.state);
        match st.due_of.remove(&id.0) {
            Some(at) => st.queue.remove(&(at, id.0)).is_some(),
            None => false,
        }
    }

    /// Moves the clock forward by `by`, running every job that falls due.
    pub fn advance(&self, by: SignedDuration) -> Result<Timestamp, ClockError> {
        if by.is_negative() {
            let now = self.now();
            return Err(ClockError::Backwards { requested: now.checked_add(by).unwrap_or(now), now });
        }
        let target = self.now().checked_add(by).map_err(|_| ClockError::Overflow)?;
        self.set(target)
    }

    /// Moves the clock forward to `target`, running every job that falls due (without
    /// waiting for what they set off: [`crate::Context::move_clock`] does).
    pub fn set(&self, target: Timestamp) -> Result<Timestamp, ClockError> {
        let _moving = lock(&self.0.moving);
        while self.step_locked(target)?.is_some() {}
        Ok(target)
    }

    /// One step of a move to `target`: runs the earliest job due by `target`, with the
    /// clock at its time, and returns that time; when none is due, moves the clock to
    /// `target` and returns `None`.
    pub fn step(&self, target: Timestamp) -> Result<Option<Timestamp>, ClockError> {
        let _moving = lock(&self.0.moving);
        self.step_locked(target)
    }

    fn step_locked(&self, target: Timestamp) -> Result<Option<Timestamp>, ClockError> {
        let mut st = lock(&self.0.state);
        if target < st.now {
            return Err(ClockError::Backwards { requested: target, now: st.now });
        }
        let due = st.queue.first_key_value().map(|(k, _)| *k).filter(|(at, _)| *at <= target);
        let Some(key) = due else {
            st.now = target;
            drop(st);
            self.save(target);
            self.0.tx.send_replace(target);
            return Ok(None);
        };
        let job = st.queue.remove(&key);
        st.due_of.remove(&key.1);
        st.now = key.0;
        drop(st);
        self.save(key.0);
        self.0.tx.send_replace(key.0);
        if let Some(job) = job {
            job(key.0);
        }
        Ok(Some(key.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn jobs_run_in_time_order_each_at_its_own_time() {
        let clock = Clock::new(t("2021-10-01T08:00:00Z"));
        let log = Arc::new(StdMutex::new(Vec::new()));
        for (label, at) in [("b", "2021-10-03T00:00:00Z"), ("a", "2021-10-02T00:00:00Z"), ("c", "2021-10-20T00:00:00Z")]
        {
            let log = log.clone();
            let c = clock.clone();
            clock.schedule_at(t(at), move |due| {
                assert_eq!(c.now(), due);
                log.lock().expect("log").push((label, due));
            });
        }
        clock.advance(SignedDuration::from_hours(24 * 5)).expect("forward");
        assert_eq!(*log.lock().expect("log"), vec![("a", t("2021-10-02T00:00:00Z")), ("b", t("2021-10-03T00:00:00Z"))]);
        assert_eq!(clock.now(), t("2021-10-06T08:00:00Z"));
        assert_eq!(clock.pending_jobs(), 1);
    }

    #[test]
    fn a_job_may_schedule_another_that_falls_due_in_the_same_advance() {
        let clock = Clock::new(t("2021-10-01T00:00:00Z"));
        let hits = Arc::new(StdMutex::new(0));
        let (c, h) = (clock.clone(), hits.clone());
        clock.schedule_in(SignedDuration::from_hours(1), move |_| {
            let h2 = h.clone();
            c.schedule_in(SignedDuration::from_hours(1), move |_| *h2.lock().expect("h") += 10);
            *h.lock().expect("h") += 1;
        });
        clock.advance(SignedDuration::from_hours(3)).expect("forward");
        assert_eq!(*hits.lock().expect("h"), 11);
    }

    #[test]
    fn the_clock_refuses_to_go_back_and_cancelled_jobs_never_run() {
        let clock = Clock::new(t("2021-10-01T00:00:00Z"));
        assert!(matches!(clock.set(t("2021-09-01T00:00:00Z")), Err(ClockError::Backwards { .. })));
        assert!(clock.advance(SignedDuration::from_secs(-1)).is_err());
        let id = clock.schedule_in(SignedDuration::from_secs(10), |_| panic!("cancelled job ran"));
        assert!(clock.cancel(id));
        assert!(!clock.cancel(id));
        clock.advance(SignedDuration::from_secs(60)).expect("forward");
    }

    #[test]
    fn a_persistent_clock_resumes_where_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("clock");
        let start = t("2021-10-01T00:00:00Z");
        Clock::persistent(start, file.clone()).advance(SignedDuration::from_hours(48)).expect("forward");
        assert_eq!(Clock::persistent(start, file).now(), t("2021-10-03T00:00:00Z"));
    }

    #[test]
    fn dates_are_italian() {
        // 23:30 UTC on 1 Oct 2021 is already 2 Oct in Rome (UTC+2).
        let clock = Clock::new(t("2021-10-01T23:30:00Z"));
        assert_eq!(clock.today(), jiff::civil::date(2021, 10, 2));
        assert_eq!(clock.midnight(jiff::civil::date(2021, 10, 2)), t("2021-10-01T22:00:00Z"));
    }
}
