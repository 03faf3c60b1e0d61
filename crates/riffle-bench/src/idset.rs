//! A concurrent set of record ids: one bit per id, in chunks allocated on
//! first use, so neither the record count nor the run's length has to be
//! known up front and no lock is taken on the hot path.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Ids per chunk (a 128 KiB chunk of bits).
const CHUNK_IDS: u64 = 1 << 20;
/// Chunks in the table: ids below 2^32, far more records than a bench
/// run writes, for a 32 KiB table.
const CHUNKS_MAX: usize = 4096;
/// The first id the set cannot hold.
pub const ID_LIMIT: u64 = CHUNK_IDS * CHUNKS_MAX as u64;

pub struct IdSet {
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
}

impl Default for IdSet {
    fn default() -> Self {
        IdSet::new()
    }
}

impl IdSet {
    pub fn new() -> IdSet {
        IdSet {
            chunks: (0..CHUNKS_MAX).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Adds `id`; returns whether it was already there. Ids at or past
    /// [`ID_LIMIT`] are refused (`None`).
    pub fn insert(&self, id: u64) -> Option<bool> {
        if id >= ID_LIMIT {
            return None;
        }
        let chunk = self.chunks[(id / CHUNK_IDS) as usize]
            .get_or_init(|| (0..CHUNK_IDS / 64).map(|_| AtomicU64::new(0)).collect());
        let within = id % CHUNK_IDS;
        let bit = 1u64 << (within % 64);
        let before = chunk[(within / 64) as usize].fetch_or(bit, Ordering::Relaxed);
        Some(before & bit != 0)
    }

    pub fn contains(&self, id: u64) -> bool {
        if id >= ID_LIMIT {
            return false;
        }
        let Some(chunk) = self.chunks[(id / CHUNK_IDS) as usize].get() else {
            return false;
        };
        let within = id % CHUNK_IDS;
        chunk[(within / 64) as usize].load(Ordering::Relaxed) & (1 << (within % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_inserted_once_across_chunks() {
        let set = IdSet::new();
        for id in [0, 63, 64, CHUNK_IDS - 1, CHUNK_IDS, ID_LIMIT - 1] {
            assert!(!set.contains(id));
            assert_eq!(set.insert(id), Some(false), "{id}");
            assert_eq!(set.insert(id), Some(true), "{id}");
            assert!(set.contains(id));
        }
        assert!(!set.contains(1));
        assert_eq!(set.insert(ID_LIMIT), None);
    }
}
