//! Free space on the data directory's filesystem, and the counters of
//! refused appends and logs that refuse writes, for metrics.
//!
//! Appends are refused while free space is below
//! [`crate::StoreConfig::disk_free_min`], so that the writes that must not
//! fail half-way (the journal, metadata commits, sealing and closing logs)
//! find the space they need. Measuring costs a `statvfs`, so it is never
//! done per append: the writer thread measures after every
//! [`PROBE_BYTES`] it wrote and at the start of a round when the last
//! measure is older than [`PROBE_INTERVAL`]; while the disk is below its
//! floor, an append measures again if the last measure is older than
//! [`PROBE_INTERVAL_LOW`] (one appender at a time), so writes resume soon
//! after space is freed without any background thread. An append on the
//! hot path costs one relaxed atomic load.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{FailureCause, LogError, StorageStats};

/// The writer measures free space after writing this much...
pub(crate) const PROBE_BYTES: u64 = 1024 * 1024;
/// ...or, when it writes less, at a round starting this long after the
/// last measure.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// While below the floor, how often an append measures again.
pub(crate) const PROBE_INTERVAL_LOW: Duration = Duration::from_millis(250);

pub(crate) struct Space {
    dir: PathBuf,
    min: AtomicU64,
    epoch: Instant,
    free: AtomicU64,
    /// `free < min`: appends are refused.
    low: AtomicBool,
    /// When free space was last measured, in ms since `epoch`.
    probed_at_ms: AtomicU64,
    /// Bytes the writer wrote since the last measure.
    written: AtomicU64,
    refused_full: AtomicU64,
    refused_io: AtomicU64,
    poisoned_full: AtomicU64,
    poisoned_io: AtomicU64,
    reopened: AtomicU64,
}

/// Bytes available to unprivileged users on the filesystem of `dir`.
fn free_bytes(dir: &Path) -> io::Result<u64> {
    let path = CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: statvfs is plain data; all-zero is a valid value of it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` a valid place to write.
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // The field types differ between targets.
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

impl Space {
    /// Measures once, so the store starts knowing where it stands.
    pub fn new(dir: &Path, min: u64) -> Space {
        let space = Space {
            dir: dir.to_path_buf(),
            min: AtomicU64::new(min),
            epoch: Instant::now(),
            free: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
            probed_at_ms: AtomicU64::new(0),
            written: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
            refused_io: AtomicU64::new(0),
            poisoned_full: AtomicU64::new(0),
            poisoned_io: AtomicU64::new(0),
            reopened: AtomicU64::new(0),
        };
        space.probe();
        space
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Measures free space now; logs once when the disk goes below its
    /// floor and once when it is back above.
    pub fn probe(&self) {
        self.probed_at_ms.store(self.now_ms(), Ordering::Relaxed);
        self.written.store(0, Ordering::Relaxed);
        let free = match free_bytes(&self.dir) {
            Ok(free) => free,
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot measure the data directory's free space");
                return;
            }
        };
        self.free.store(free, Ordering::Relaxed);
        let min = self.min.load(Ordering::Relaxed);
        let low = free < min;
        if self.low.swap(low, Ordering::Relaxed) == low {
            return;
        }
        if low {
            tracing::error!(
                dir = %self.dir.display(),
                free_bytes = free,
                disk_free_min = min,
                "the disk is full: free space on the data directory's filesystem is below --disk-free-min; appends are refused (InternalFailure) until space is freed"
            );
        } else {
            tracing::warn!(
                dir = %self.dir.display(),
                free_bytes = free,
                disk_free_min = min,
                "free space on the data directory's filesystem is back above --disk-free-min; appends are taken again"
            );
        }
    }

    /// Changes the floor and measures again at once.
    pub fn set_min(&self, min: u64) {
        self.min.store(min, Ordering::Relaxed);
        self.probe();
    }

    /// Whether appends are refused for lack of space (last measure).
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::Relaxed)
    }

    /// The refusal of an append for lack of space, if free space is below
    /// the floor; measures again first when the last measure is stale.
    pub fn refusal(&self) -> Option<LogError> {
        if !self.is_low() {
            return None;
        }
        let last = self.probed_at_ms.load(Ordering::Relaxed);
        let now = self.now_ms();
        let stale = now.saturating_sub(last) >= PROBE_INTERVAL_LOW.as_millis() as u64;
        // One appender measures; the others use its answer.
        if stale
            && self
                .probed_at_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.probe();
        }
        self.is_low().then(|| self.below_min())
    }

    /// The error of an append refused for lack of space (and counts it).
    pub fn below_min(&self) -> LogError {
        self.refused_full.fetch_add(1, Ordering::Relaxed);
        LogError::DiskFreeBelowMin {
            dir: self.dir.clone(),
            free: self.free.load(Ordering::Relaxed),
            min: self.min.load(Ordering::Relaxed),
        }
    }

    /// The writer thread, at the start (0 bytes) and end of a round:
    /// measures when enough was written or the last measure is old.
    pub fn wrote(&self, bytes: u64) {
        let written = self.written.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let last = self.probed_at_ms.load(Ordering::Relaxed);
        if written >= PROBE_BYTES
            || self.now_ms().saturating_sub(last) >= PROBE_INTERVAL.as_millis() as u64
        {
            self.probe();
        }
    }

    /// Counts appends failed or refused because their log refuses writes.
    pub fn refused(&self, cause: FailureCause, appends: u64) {
        match cause {
            FailureCause::DiskFull => &self.refused_full,
            FailureCause::Io => &self.refused_io,
        }
        .fetch_add(appends, Ordering::Relaxed);
    }

    fn poisoned_count(&self, cause: FailureCause) -> &AtomicU64 {
        match cause {
            FailureCause::DiskFull => &self.poisoned_full,
            FailureCause::Io => &self.poisoned_io,
        }
    }

    /// A log started refusing writes.
    pub fn poisoned(&self, cause: FailureCause) {
        self.poisoned_count(cause).fetch_add(1, Ordering::Relaxed);
        if cause == FailureCause::DiskFull {
            // Measure now: the gauge and the floor should say so at once.
            self.probe();
        }
    }

    /// A log that refused writes takes them again (`reopened`) or was
    /// deleted.
    pub fn cleared(&self, cause: FailureCause, reopened: bool) {
        self.poisoned_count(cause).fetch_sub(1, Ordering::Relaxed);
        if reopened {
            self.reopened.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stats(&self) -> StorageStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let free = load(&self.free);
        StorageStats {
            disk_free_bytes: if free == u64::MAX { 0 } else { free },
            disk_free_min_bytes: load(&self.min),
            disk_full: self.is_low() || load(&self.poisoned_full) > 0,
            logs_refusing_disk_full: load(&self.poisoned_full),
            logs_refusing_io: load(&self.poisoned_io),
            appends_refused_disk_full: load(&self.refused_full),
            appends_refused_io: load(&self.refused_io),
            logs_reopened: load(&self.reopened),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Space;
    use crate::LogError;

    #[test]
    fn a_floor_above_the_free_space_refuses_and_none_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let open = Space::new(dir.path(), 0);
        assert!(open.refusal().is_none());
        assert!(open.stats().disk_free_bytes > 0);
        let full = Space::new(dir.path(), u64::MAX);
        let err = full.refusal().expect("refused below the floor");
        assert!(err.is_disk_full(), "{err}");
        assert!(err.to_string().contains("the disk is full"), "{err}");
        let stats = full.stats();
        assert!(stats.disk_full);
        assert_eq!(stats.appends_refused_disk_full, 1);
    }

    #[test]
    fn enospc_and_edquot_are_a_full_disk_and_other_errors_are_not() {
        use crate::segment::io_error;
        use std::io::Error;
        for errno in [libc::ENOSPC, libc::EDQUOT] {
            let e = io_error("f".into(), Error::from_raw_os_error(errno));
            assert!(
                matches!(e, LogError::DiskFull { .. }) && e.is_disk_full(),
                "{e}"
            );
            assert!(e.to_string().starts_with("the disk is full"), "{e}");
        }
        let e = io_error("f".into(), Error::from_raw_os_error(libc::EIO));
        assert!(matches!(e, LogError::Io { .. }) && !e.is_disk_full(), "{e}");
    }
}
