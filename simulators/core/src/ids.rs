//! Deterministic identifiers (UUID v4 shape) drawn from the seed.

use std::sync::Mutex;

use ecosim_domain::rng::SeededRng;

/// Hands out UUIDs from a seeded stream: same seed, same ids.
#[derive(Debug)]
pub struct IdGen(Mutex<SeededRng>);

impl IdGen {
    /// A generator for `label` (e.g. `sistema-ts/test-results`). Stores on disk pass
    /// their open count as `generation`, so ids after a restart never repeat earlier ones.
    pub fn new(seed: u64, label: &str, generation: u64) -> Self {
        Self(Mutex::new(SeededRng::derive(seed, &format!("{label}/{generation}"))))
    }

    /// The next id, lower-case hyphenated.
    pub fn next(&self) -> String {
        let mut rng = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        bytes[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
    }

    /// Runs `f` with the underlying generator (for codes drawn from the same stream).
    pub fn with_rng<T>(&self, f: impl FnOnce(&mut SeededRng) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v4_and_deterministic() {
        let a = IdGen::new(1, "x", 0);
        let b = IdGen::new(1, "x", 0);
        let id = a.next();
        assert_eq!(id, b.next());
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(IdGen::new(1, "x", 1).next(), id);
    }
}
