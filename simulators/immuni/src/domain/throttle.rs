//! Throttling of failed app checks per client address: someone trying OTPs or
//! CUNs one after another from one place is slowed to `failed_checks_per_client`
//! failures per `failed_checks_window` (real time), whatever codes they try.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed checks per client address, the recent ones only.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// Clients remembered at most; past it, those with no recent failure are forgotten.
const CLIENTS: usize = 10_000;

impl Throttle {
    /// How long `client` must wait, if it has had `limit` failures within `window`
    /// (`limit` 0: never).
    pub(crate) fn wait(&self, client: IpAddr, limit: u32, window: Duration, now: Instant) -> Option<Duration> {
        if limit == 0 {
            return None;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let recent = failures.get_mut(&client)?;
        while recent.front().is_some_and(|t| now.duration_since(*t) >= window) {
            recent.pop_front();
        }
        if recent.len() < limit as usize {
            return None;
        }
        let oldest = *recent.front()?;
        Some(window.saturating_sub(now.duration_since(oldest)))
    }

    /// Counts a failed check by `client`.
    pub(crate) fn failed(&self, client: IpAddr, limit: u32, window: Duration, now: Instant) {
        if limit == 0 {
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= CLIENTS && !failures.contains_key(&client) {
            failures.retain(|_, r| r.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let recent = failures.entry(client).or_default();
        recent.push_back(now);
        // Only the last `limit` matter.
        while recent.len() > limit as usize {
            recent.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_waits_after_its_limit_and_others_do_not() {
        let t = Throttle::default();
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let window = Duration::from_secs(60);
        let start = Instant::now();
        for i in 0..3 {
            assert_eq!(t.wait(a, 3, window, start), None);
            t.failed(a, 3, window, start + Duration::from_secs(i));
        }
        let wait = t.wait(a, 3, window, start + Duration::from_secs(10)).expect("throttled");
        assert_eq!(wait, Duration::from_secs(50));
        assert_eq!(t.wait(b, 3, window, start), None);
        // The first failure leaves the window: one more try.
        assert_eq!(t.wait(a, 3, window, start + Duration::from_secs(60)), None);
        assert_eq!(t.wait(a, 0, window, start), None, "0 is no limit");
    }

    #[test]
    fn memory_stays_bounded_under_many_addresses() {
        let t = Throttle::default();
        let window = Duration::from_millis(1);
        let start = Instant::now();
        for i in 0..(CLIENTS as u32 * 3) {
            t.failed(IpAddr::from(i.to_be_bytes()), 5, window, start + Duration::from_millis(u64::from(i)));
        }
        assert!(t.failures.lock().expect("lock").len() <= CLIENTS);
    }
}
