//! Bounds the file descriptors a store keeps open, so that thousands of
//! logs (1,000 streams × 4 shards) hold a few hundred descriptors, not one
//! or more each, and fit under the common soft limit of 1,024 open files.
//!
//! Two caches share [`crate::StoreConfig::open_files_max`]:
//! - [`ReadFiles`]: read-only handles of segment files (sealed and active),
//!   shared by all readers; least recently used first out. A reader keeps
//!   its own `Arc` of the handle for the duration of a read, so evicting one
//!   never closes a file under a read in progress.
//! - [`WriteFiles`]: which logs' active segments the writer thread holds open
//!   for appending (`WriterSide::file`). Only the writer thread uses it. A
//!   file is closed only once everything written through it is synced (see
//!   `Writer::close_cold_files`), so that a later `fdatasync` on a reopened
//!   descriptor can never miss a write-back error of an earlier one.
//!
//! Segments are cached by a process-unique id, never by path: a log deleted
//! and created again reuses paths, and must never be read through a
//! descriptor of its predecessor's (deleted) files.

use std::collections::HashMap;
use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::log::LogInner;

/// The default of [`crate::StoreConfig::open_files_max`]: a quarter of the
/// usual soft limit of 1,024 descriptors, leaving the rest to client
/// connections, the metadata store and everything else in the process.
pub const OPEN_FILES_MAX_DEFAULT: usize = 256;
/// The smallest [`crate::StoreConfig::open_files_max`] accepted (smaller
/// values are raised to it): two for reading, and for writing one kept
/// open plus one opened per round.
pub const OPEN_FILES_MIN: usize = 4;

/// A new id for a segment handle (see the module docs).
pub(crate) fn next_segment_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The shared cache of read-only segment handles.
pub(crate) struct ReadFiles {
    max: usize,
    inner: Mutex<ReadInner>,
}

#[derive(Default)]
struct ReadInner {
    /// Bumped at every use; an entry's stamp says when it was last used.
    clock: u64,
    /// Segment id → (handle, last use).
    open: HashMap<u64, (Arc<File>, u64)>,
}

impl ReadFiles {
    pub fn new(max: usize) -> ReadFiles {
        ReadFiles {
            max: max.max(1),
            inner: Mutex::new(ReadInner::default()),
        }
    }

    /// The cached handle of segment `id`, marked as just used.
    pub fn get(&self, id: u64) -> Option<Arc<File>> {
        let mut inner = self.inner.lock();
        inner.clock += 1;
        let now = inner.clock;
        inner.open.get_mut(&id).map(|(file, used)| {
            *used = now;
            file.clone()
        })
    }

    /// Caches `file` as segment `id`'s handle and returns the cached one (a
    /// racing reader may have cached its own first). Evicts the least
    /// recently used handle when the cache is full; it is closed here,
    /// outside the lock, unless a reader still holds it.
    pub fn insert(&self, id: u64, file: File) -> Arc<File> {
        let evicted;
        let cached = {
            let mut inner = self.inner.lock();
            inner.clock += 1;
            let now = inner.clock;
            if let Some((cached, used)) = inner.open.get_mut(&id) {
                *used = now;
                return cached.clone();
            }
            evicted = if inner.open.len() >= self.max {
                let oldest = inner.open.iter().min_by_key(|(_, (_, used))| *used);
                let oldest = oldest.map(|(&id, _)| id);
                oldest.and_then(|id| inner.open.remove(&id))
            } else {
                None
            };
            let file = Arc::new(file);
            inner.open.insert(id, (file.clone(), now));
            file
        };
        drop(evicted);
        cached
    }

    /// Closes segment `id`'s cached handle, if any (its file was deleted or
    /// the segment is gone).
    pub fn forget(&self, id: u64) {
        let removed = self.inner.lock().open.remove(&id);
        drop(removed);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().open.len()
    }
}

/// The writer thread's record of which logs hold an open active segment.
pub(crate) struct WriteFiles {
    /// Files kept open between rounds.
    keep_max: usize,
    /// Files a round may open before it must finish (sync, publish and
    /// close the coldest), so a round over thousands of cold logs does not
    /// open thousands of files at once.
    round_opens_max: usize,
    clock: u64,
    /// Log (by address; the `Arc` keeps the address unique) → last use.
    open: HashMap<usize, (Arc<LogInner>, u64)>,
    opened_this_round: usize,
    /// `open.len()`, readable from other threads (for
    /// [`crate::LogStore::open_files`]).
    count: Arc<AtomicUsize>,
}

impl WriteFiles {
    /// Splits `max` write handles into those kept between rounds and those
    /// a round may open.
    pub fn new(max: usize, count: Arc<AtomicUsize>) -> WriteFiles {
        let max = max.max(2);
        let round_opens_max = (max / 4).max(1);
        WriteFiles {
            keep_max: max - round_opens_max,
            round_opens_max,
            clock: 0,
            open: HashMap::new(),
            opened_this_round: 0,
            count,
        }
    }

    /// Records that `log`'s active segment is open and was just used;
    /// `opened` says it was opened for this use.
    pub fn touch(&mut self, log: &Arc<LogInner>, opened: bool) {
        self.clock += 1;
        let now = self.clock;
        let key = Arc::as_ptr(log) as usize;
        self.open
            .entry(key)
            .and_modify(|(_, used)| *used = now)
            .or_insert_with(|| (log.clone(), now));
        if opened {
            self.opened_this_round += 1;
        }
        self.count.store(self.open.len(), Ordering::Relaxed);
    }

    /// `log`'s file was closed (the log was closed or deleted).
    pub fn remove(&mut self, log: &LogInner) {
        self.open.remove(&(std::ptr::from_ref(log) as usize));
        self.count.store(self.open.len(), Ordering::Relaxed);
    }

    /// Whether the round may take another append (which may open a file).
    pub fn round_has_room(&self) -> bool {
        self.opened_this_round < self.round_opens_max
    }

    /// Starts a round: takes the logs to close, least recently used first,
    /// so that at most `keep_max` stay open, and resets the round's count.
    pub fn take_coldest(&mut self) -> Vec<Arc<LogInner>> {
        self.opened_this_round = 0;
        let excess = self.open.len().saturating_sub(self.keep_max);
        if excess == 0 {
            return Vec::new();
        }
        let mut by_age: Vec<(u64, usize)> = self
            .open
            .iter()
            .map(|(&key, (_, used))| (*used, key))
            .collect();
        by_age.select_nth_unstable(excess - 1);
        let cold: Vec<Arc<LogInner>> = by_age[..excess]
            .iter()
            .filter_map(|(_, key)| self.open.remove(key).map(|(log, _)| log))
            .collect();
        self.count.store(self.open.len(), Ordering::Relaxed);
        cold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file() -> File {
        tempfile::tempfile().unwrap()
    }

    #[test]
    fn read_files_evict_the_least_recently_used_handle() {
        let files = ReadFiles::new(2);
        files.insert(1, temp_file());
        files.insert(2, temp_file());
        assert!(files.get(1).is_some()); // 2 is now the coldest
        files.insert(3, temp_file());
        assert_eq!(files.len(), 2);
        assert!(files.get(2).is_none());
        assert!(files.get(1).is_some() && files.get(3).is_some());
    }

    #[test]
    fn read_files_keep_the_first_handle_cached_for_a_segment() {
        let files = ReadFiles::new(2);
        let first = files.insert(7, temp_file());
        let second = files.insert(7, temp_file());
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(files.len(), 1);
        files.forget(7);
        assert_eq!(files.len(), 0);
        assert!(files.get(7).is_none());
    }

    #[test]
    fn an_evicted_handle_stays_usable_by_whoever_holds_it() {
        use std::io::Write;
        use std::os::unix::fs::FileExt;
        let files = ReadFiles::new(1);
        let mut f = temp_file();
        f.write_all(b"kept").unwrap();
        let held = files.insert(1, f);
        files.insert(2, temp_file());
        assert!(files.get(1).is_none());
        let mut buf = [0u8; 4];
        held.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"kept");
    }

    #[test]
    fn segment_ids_are_unique() {
        let a = next_segment_id();
        let b = next_segment_id();
        assert_ne!(a, b);
    }

    #[test]
    fn write_budget_keeps_three_quarters_open_between_rounds() {
        let w = WriteFiles::new(OPEN_FILES_MAX_DEFAULT / 2, Arc::default());
        assert_eq!((w.keep_max, w.round_opens_max), (96, 32));
        let w = WriteFiles::new(2, Arc::default());
        assert_eq!((w.keep_max, w.round_opens_max), (1, 1));
    }
}
