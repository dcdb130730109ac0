//! AVN's rules, as plain functions: which version of a dose wins, and when a dose
//! is due for Sistema TS.

use ecosim_core::config::Forwarding;

/// What to do with a dose that arrives, given the version held under its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Nothing held: store it (201).
    New,
    /// The same dose again: answer as the first time (200), nothing changes.
    Again {
        /// The version held.
        versione: u32,
    },
    /// A correction (a higher version): replace the held one (200), forward again.
    Correction,
    /// Other data under a version not above the held one (409).
    Conflict {
        /// The version held.
        versione: u32,
    },
}

/// Judges an arriving dose (`record`, `versione`) against the held one, if any.
pub(crate) fn arrival(held: Option<(&str, u32)>, record: &str, versione: u32) -> Arrival {
    match held {
        None => Arrival::New,
        Some((held, v)) if held == record => Arrival::Again { versione: v },
        Some((_, v)) if versione <= v => Arrival::Conflict { versione: v },
        Some(_) => Arrival::Correction,
    }
}

/// The doses received before this instant (Unix ms) are due for Sistema TS: with
/// `daily` forwarding, those before `midnight_ms` (today's midnight on the shared
/// clock, DPCM 17-6-2021 art. 5); with `immediate`, all.
pub(crate) fn cutoff_ms(forwarding: Forwarding, midnight_ms: i64) -> i64 {
    match forwarding {
        Forwarding::Immediate => i64::MAX,
        Forwarding::Daily => midnight_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_dose_is_answered_again_a_higher_version_corrects_and_anything_else_conflicts() {
        assert_eq!(arrival(None, "a", 1), Arrival::New);
        assert_eq!(arrival(Some(("a", 1)), "a", 1), Arrival::Again { versione: 1 });
        assert_eq!(arrival(Some(("a", 2)), "b", 2), Arrival::Conflict { versione: 2 });
        assert_eq!(arrival(Some(("a", 2)), "b", 1), Arrival::Conflict { versione: 2 });
        assert_eq!(arrival(Some(("a", 1)), "b", 2), Arrival::Correction);
    }

    #[test]
    fn daily_forwarding_waits_for_midnight() {
        assert_eq!(cutoff_ms(Forwarding::Daily, 1_000), 1_000);
        assert_eq!(cutoff_ms(Forwarding::Immediate, 1_000), i64::MAX);
    }
}
