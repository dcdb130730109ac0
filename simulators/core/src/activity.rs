//! Whether the ecosystem is still busy: the quiescence a clock move waits for.
//!
//! The clock is a discrete-event scheduler ([`crate::Context::move_clock`]): it runs
//! each due job at its own virtual time and then waits, before moving on, until
//! everything the job set off has been handled: follow-up deliveries through the
//! outboxes (AVN's batch to Sistema TS, Sistema TS's event to PN-DGC, PN-DGC's
//! AUTHCODE SMS), each stamped with that same time. Whatever can hold work registers
//! here: an outbox registers a probe ("do I hold work never yet tried, or an
//! attempt under way?"), a detached task holds a [`Busy`] guard while it runs.
//!
//! Work that already failed once and waits out its backoff (a system down, a fault)
//! does not hold the clock: outages are real time, and a scenario that takes a system
//! down must still be able to move the clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Probe = Box<dyn Fn() -> bool + Send + Sync>;

#[derive(Default)]
struct Inner {
    probes: Mutex<Vec<Probe>>,
    busy: AtomicUsize,
}

/// The registry of everything that may still be working (cheap to clone).
#[derive(Clone, Default)]
pub struct Activity(Arc<Inner>);

impl std::fmt::Debug for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activity").field("busy", &self.0.busy.load(Ordering::SeqCst)).finish_non_exhaustive()
    }
}

/// Held while a detached task works; the ecosystem is not quiet until it is dropped.
#[derive(Debug)]
pub struct Busy(Arc<Inner>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").finish_non_exhaustive()
    }
}

impl Activity {
    /// Marks work under way until the guard is dropped.
    pub fn busy(&self) -> Busy {
        self.0.busy.fetch_add(1, Ordering::SeqCst);
        Busy(self.0.clone())
    }

    /// Registers `probe`, asked whether its owner still has work; it should hold its
    /// owner weakly and answer `false` once the owner is gone.
    pub fn probe(&self, probe: impl Fn() -> bool + Send + Sync + 'static) {
        self.0.probes.lock().unwrap_or_else(|p| p.into_inner()).push(Box::new(probe));
    }

    /// Nothing is under way and no probe reports work.
    pub fn is_quiet(&self) -> bool {
        if self.0.busy.load(Ordering::SeqCst) > 0 {
            return false;
        }
        let probes = self.0.probes.lock().unwrap_or_else(|p| p.into_inner());
        !probes.iter().any(|p| p())
    }

    /// Waits until the ecosystem is quiet (twice in a row, a millisecond apart: a
    /// hand-over between two systems is never mistaken for the end), at most `limit`
    /// (real time). `false` if the limit was reached.
    pub async fn settle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut quiet = 0;
        loop {
            if self.is_quiet() {
                quiet += 1;
                if quiet >= 2 {
                    return true;
                }
            } else {
                quiet = 0;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[tokio::test]
    async fn quiet_only_when_no_guard_is_held_and_no_probe_has_work() {
        let activity = Activity::default();
        assert!(activity.is_quiet());
        let guard = activity.busy();
        assert!(!activity.is_quiet());
        drop(guard);
        let work = Arc::new(AtomicBool::new(true));
        let w = work.clone();
        activity.probe(move || w.load(Ordering::SeqCst));
        assert!(!activity.is_quiet());
        assert!(!activity.settle(Duration::from_millis(20)).await, "the limit is reached while work remains");
        let w = work.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            w.store(false, Ordering::SeqCst);
        });
        assert!(activity.settle(Duration::from_secs(5)).await);
    }
}
