//! Deterministic identifiers drawn from the seed, in the order they are drawn.
//!
//! An id is a UUID (RFC 9562 version 8, the custom layout) whose first 48 bits
//! are a prefix fixed per generator and a sequence number, and whose other 74 bits
//! are drawn from the seed: `pppp ssss-ssss-8rrr-{8..b}rrr-rrrrrrrrrrrr`. Ids of
//! one generator sort in the order they were handed out, as text and as bytes, so
//! a table keyed by them appends at the end of its index instead of writing a page
//! picked at random for each new row (random v4 ids cost `bench cun` about 9%:
//! every record, outbox item and idempotency key touched a page of its own in
//! three databases, #14). The random bits keep ids unique across generators and
//! restarts, as the v4 ids did; the sequence wraps after 2^32 ids, which only
//! ends their order.

use std::sync::Mutex;

use ecosim_domain::rng::SeededRng;

/// Hands out UUIDs from a seeded stream: same seed, same ids, in increasing order.
#[derive(Debug)]
pub struct IdGen(Mutex<Stream>);

#[derive(Debug)]
struct Stream {
    rng: SeededRng,
    /// The generator's 16-bit prefix, drawn once.
    prefix: u16,
    /// Ids handed out so far.
    sequence: u32,
}

impl IdGen {
    /// A generator for `label` (e.g. `sistema-ts/test-results`). Stores on disk pass
    /// their open count as `generation`, so ids after a restart never repeat earlier ones.
    pub fn new(seed: u64, label: &str, generation: u64) -> Self {
        let rng = SeededRng::derive(seed, &format!("{label}/{generation}"));
        // From a stream of its own: codes drawn through `with_rng` stay as they were.
        let prefix = (SeededRng::derive(seed, &format!("{label}/{generation}/prefix")).next_u64() >> 48) as u16;
        Self(Mutex::new(Stream { rng, prefix, sequence: 0 }))
    }

    /// The next id, lower-case hyphenated.
    pub fn next(&self) -> String {
        let mut stream = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let sequence = stream.sequence;
        stream.sequence = sequence.wrapping_add(1);
        let mut bytes = [0u8; 16];
        bytes[..2].copy_from_slice(&stream.prefix.to_be_bytes());
        bytes[2..6].copy_from_slice(&sequence.to_be_bytes());
        bytes[6..14].copy_from_slice(&stream.rng.next_u64().to_le_bytes());
        bytes[14..].copy_from_slice(&stream.rng.next_u64().to_le_bytes()[..2]);
        uuid::Builder::from_custom_bytes(bytes).into_uuid().to_string()
    }

    /// Runs `f` with the underlying generator (for codes drawn from the same stream).
    pub fn with_rng<T>(&self, f: impl FnOnce(&mut SeededRng) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()).rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_are_uuid_v8_and_deterministic() {
        let a = IdGen::new(1, "x", 0);
        let b = IdGen::new(1, "x", 0);
        let id = a.next();
        assert_eq!(id, b.next());
        let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 8);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(parsed.to_string(), id, "lower-case hyphenated");
        assert_ne!(IdGen::new(1, "x", 1).next(), id);
        assert_ne!(IdGen::new(1, "y", 0).next(), id);
    }

    #[test]
    fn the_sequence_wraps_without_repeating_an_id() {
        let ids = IdGen::new(3, "x", 0);
        ids.0.lock().expect("lock").sequence = u32::MAX;
        let (last, wrapped) = (ids.next(), ids.next());
        assert!(last[..13].ends_with("ffff-ffff"), "{last}");
        assert!(wrapped[..13].ends_with("0000-0000"), "{wrapped}");
        assert_ne!(last[14..], wrapped[14..], "the random bits differ");
    }

    proptest! {
        #[test]
        fn ids_sort_in_the_order_they_were_handed_out(seed: u64, generation in 0u64..1000, n in 2usize..300) {
            let ids = IdGen::new(seed, "sistema-ts/test-results", generation);
            let drawn: Vec<String> = (0..n).map(|_| ids.next()).collect();
            for pair in drawn.windows(2) {
                prop_assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
                prop_assert!(uuid::Uuid::parse_str(&pair[0]).expect("uuid") < uuid::Uuid::parse_str(&pair[1]).expect("uuid"));
            }
        }
    }
}
