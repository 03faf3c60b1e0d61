//! Reopening a poisoned log in place, without restarting the store.
//!
//! A failed write or sync leaves a log's files in an unknown state past
//! what was committed (published to readers and acknowledged): a torn
//! batch, whole batches of a round that failed, a segment a failed roll
//! began. What was committed is known exactly (`LogState`), and is
//! durable: under `fsync=always` either synced in its segment or held by
//! the journal's current generation, which [`Journal::restore`] writes back
//! into the segments first (after a failed `fdatasync` the page cache may
//! show bytes the disk does not hold, so they are written again, not
//! compared). Then everything past the committed state is removed, the
//! files are synced, and the log is recovered as start-up does (verify
//! every batch of the active segment, cut a torn tail, drop stale files);
//! the log takes writes again only if that recovery finds exactly the
//! committed state. So nothing unacknowledged ever becomes readable, and
//! the committed tip never moves backwards: readers are never told about
//! the attempt, they keep reading the committed records throughout.
//!
//! When: on the first append (or close) after a backoff (200 ms, doubling
//! after each failed attempt, and after a failure within 5 s of the last
//! reopen, up to 5 s) and only while free space is above the floor; appends
//! before that are refused at once. No background thread: a log nobody
//! writes to has no reason to reopen.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::Writer;
use crate::format::SEGMENT_HEADER_LEN;
use crate::log::{self, LogInner, WriterSide};
use crate::segment::{self, corrupt, io_err};
use crate::{FsyncPolicy, LogError, Result, Seq};

/// What readers were told: the committed state to return to.
struct Committed {
    active: PathBuf,
    active_first: Seq,
    active_len: u64,
    next_seq: Seq,
}

impl Writer {
    /// Why an append to `log` is refused, if it is. A poisoned log whose
    /// backoff is over is reopened here first.
    pub(super) fn refusal(&mut self, log: &Arc<LogInner>, w: &mut WriterSide) -> Option<LogError> {
        if w.deleted {
            return Some(LogError::Deleted {
                name: log.name.clone(),
            });
        }
        if let Some(p) = w.poisoned
            && self.reopen_if_due(log, w).is_some()
        {
            self.space.refused(p.cause, 1);
            return Some(p.error(&log.name));
        }
        if w.closed {
            return Some(LogError::Closed {
                name: log.name.clone(),
            });
        }
        self.space.is_low().then(|| self.space.below_min())
    }

    /// Reopens a poisoned log if its backoff is over and free space is
    /// above the floor; the error to answer with while it still refuses
    /// writes.
    pub(super) fn reopen_if_due(
        &mut self,
        log: &Arc<LogInner>,
        w: &mut WriterSide,
    ) -> Option<LogError> {
        let p = w.poisoned?;
        if Instant::now() < p.retry_at || self.space.is_low() {
            return Some(p.error(&log.name));
        }
        match self.reopen(log, w) {
            Ok(()) => {
                tracing::warn!(log = %log.name, next_seq = w.next_seq, "the log reopened itself from its files after {} and takes writes again", p.cause);
                w.poisoned = None;
                w.reopened = Some((Instant::now(), p.backoff));
                log.state.lock().poisoned = None;
                self.space.cleared(p.cause, true);
                if let Some(journal) = &mut self.journal {
                    journal.thaw(log);
                }
                None
            }
            Err(e) => {
                let p = p.backed_off();
                tracing::warn!(log = %log.name, error = %e, retry_in_ms = p.backoff.as_millis() as u64, "the log could not reopen itself yet; it keeps refusing writes");
                w.poisoned = Some(p);
                log.state.lock().poisoned = Some(p);
                Some(p.error(&log.name))
            }
        }
    }

    /// Brings `log`'s files back to its committed state and resets the
    /// writer's view from them (see the module docs).
    fn reopen(&mut self, log: &Arc<LogInner>, w: &mut WriterSide) -> Result<()> {
        // The descriptor that saw the failure is never used again.
        w.file = None;
        self.files.remove(log);
        let committed = {
            let st = log.state.lock();
            Committed {
                active: st.active.path.clone(),
                active_first: st.active.first_seq,
                active_len: st.active_len,
                next_seq: st.next_seq,
            }
        };
        if let Some(journal) = &self.journal {
            journal.restore(log)?;
        }
        // Under `interval`/`never` committed bytes may not have been synced
        // when a sync failed: write them again from the page cache.
        let rewrite = self.policy != FsyncPolicy::Always;
        discard_unacknowledged(&log.dir, &committed, rewrite)?;
        let (_, fresh) = log::recover(&log.dir, &log.shared.read_files)?;
        if fresh.path != committed.active
            || fresh.next_seq != committed.next_seq
            || fresh.len != committed.active_len
        {
            return Err(corrupt(
                &fresh.path,
                fresh.len,
                "the log's files do not hold exactly what was acknowledged",
            ));
        }
        *w = WriterSide {
            closed: w.closed,
            poisoned: w.poisoned,
            reopened: w.reopened,
            deleted: w.deleted,
            ..fresh
        };
        Ok(())
    }
}

/// Removes what a failed write may have left past the committed state:
/// the files of a segment the log never committed to (a failed roll), an
/// index of the active segment (idem), and the active segment's bytes past
/// its committed length; then syncs what it changed.
fn discard_unacknowledged(dir: &Path, committed: &Committed, rewrite: bool) -> Result<()> {
    let active = committed.active.as_path();
    let mut removed = false;
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        let (Some(stem), Some(ext)) = (path.file_stem().and_then(|s| s.to_str()), path.extension())
        else {
            continue;
        };
        let Ok(first) = stem.parse::<Seq>() else {
            continue;
        };
        let stale = (ext == "seg" || ext == "idx") && first > committed.active_first
            || ext == "idx" && first == committed.active_first;
        if stale {
            std::fs::remove_file(&path).map_err(io_err(&path))?;
            removed = true;
        }
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(active)
        .map_err(io_err(active))?;
    let len = file.metadata().map_err(io_err(active))?.len();
    if len < committed.active_len {
        return Err(corrupt(
            active,
            len,
            "the active segment is shorter than what was acknowledged",
        ));
    }
    if rewrite {
        rewrite_range(&file, active, SEGMENT_HEADER_LEN, committed.active_len)?;
    }
    if len > committed.active_len {
        file.set_len(committed.active_len).map_err(io_err(active))?;
    }
    file.sync_all().map_err(io_err(active))?;
    if removed {
        segment::sync_dir(dir)?;
    }
    Ok(())
}

/// Reads `[from, to)` of `file` and writes it back, so that pages a failed
/// write-back left clean (yet not on disk) are dirty again for the sync.
fn rewrite_range(file: &std::fs::File, path: &Path, from: u64, to: u64) -> Result<()> {
    const CHUNK_BYTES: u64 = 1024 * 1024;
    let mut buf = Vec::new();
    let mut at = from;
    while at < to {
        let n = (to - at).min(CHUNK_BYTES) as usize;
        buf.resize(n, 0);
        file.read_exact_at(&mut buf, at).map_err(io_err(path))?;
        file.write_all_at(&buf, at).map_err(io_err(path))?;
        at += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileExt;
    use std::time::Instant;

    use crate::log::Poison;
    use crate::{LogError, LogStore, ReadLimits, RecordIn, ShardLog, StoreConfig};

    const ALL: ReadLimits = ReadLimits {
        records_max: usize::MAX,
        bytes_max: usize::MAX,
    };

    fn data(i: usize) -> Vec<u8> {
        format!("record-{i}-{}", "x".repeat(300)).into_bytes()
    }

    async fn put(log: &ShardLog, i: usize) -> crate::Result<u64> {
        let d = data(i);
        let record = RecordIn {
            partition_key: b"pk",
            explicit_hash_key: None,
            data: &d,
        };
        log.append(&[record], 1).await.map(|a| a.first_seq)
    }

    /// What a failed sync does, minus the failure: the log refuses writes
    /// and may reopen at once.
    fn poison_now(log: &ShardLog) {
        poison_until(log, Instant::now());
    }

    fn poison_until(log: &ShardLog, retry_at: Instant) {
        let e = LogError::Io {
            path: "injected".into(),
            source: std::io::Error::other("injected failure"),
        };
        let p = Poison {
            retry_at,
            ..Poison::new(&e)
        };
        let was = log.inner.writer.lock().poisoned.replace(p);
        log.inner.state.lock().poisoned = Some(p);
        if was.is_none() {
            log.inner.shared.space.poisoned(p.cause);
        }
    }

    /// Zeroes the last bytes of the active segment, as a failed write-back
    /// can leave acknowledged but not yet checkpointed batches on disk.
    fn lose_tail(log: &ShardLog) {
        let (path, len) = {
            let st = log.inner.state.lock();
            (st.active.path.clone(), st.active_len)
        };
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.write_all_at(&[0; 200], len - 200).unwrap();
    }

    async fn store(journal_bytes_max: u64) -> (tempfile::TempDir, LogStore, ShardLog) {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            journal_bytes_max,
            disk_free_min: 0,
            ..StoreConfig::default()
        };
        let store = LogStore::open(dir.path(), config).unwrap();
        let log = store.open_log("reopen/0").unwrap();
        for i in 0..5 {
            assert_eq!(put(&log, i).await.unwrap(), i as u64);
        }
        (dir, store, log)
    }

    #[tokio::test]
    async fn a_reopen_writes_the_journals_copy_of_batches_back_into_the_segment() {
        let (_dir, store, log) = store(crate::JOURNAL_BYTES_DEFAULT).await;
        lose_tail(&log);
        poison_now(&log);
        assert_eq!(put(&log, 5).await.unwrap(), 5);
        let read = log.read(0, ALL).unwrap();
        let got: Vec<&[u8]> = read.records.iter().map(|r| &r.data[..]).collect();
        let want: Vec<Vec<u8>> = (0..6).map(data).collect();
        assert_eq!(got, want.iter().map(|d| &d[..]).collect::<Vec<_>>());
        let stats = store.storage_stats();
        assert_eq!((stats.logs_refusing_io, stats.logs_reopened), (0, 1));
    }

    #[tokio::test]
    async fn a_reopen_that_would_lose_acknowledged_records_keeps_refusing_writes() {
        let (_dir, store, log) = store(0).await;
        lose_tail(&log);
        poison_now(&log);
        let err = put(&log, 5).await.unwrap_err();
        assert!(matches!(err, LogError::Poisoned { .. }), "{err:?}");
        assert_eq!(log.next_seq(), 5, "the committed tip never moves back");
        let stats = store.storage_stats();
        assert_eq!((stats.logs_refusing_io, stats.logs_reopened), (1, 0));
    }

    /// The journal's generation (its header's bytes 16..24): a reset
    /// changes it.
    fn journal_generation(dir: &std::path::Path) -> u64 {
        let b = std::fs::read(dir.join(crate::journal::JOURNAL_FILE)).unwrap();
        u64::from_le_bytes(b[16..24].try_into().unwrap())
    }

    /// A journal whose entries are the only durable copy of a failed log's
    /// batches is never reset (frozen); once that log has reopened, the
    /// next checkpoint resets it again.
    #[tokio::test]
    async fn the_journal_frozen_for_a_failed_log_is_reset_again_once_it_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            journal_bytes_max: 16 * 1024,
            disk_free_min: 0,
            ..StoreConfig::default()
        };
        let store = LogStore::open(dir.path(), config).unwrap();
        let (a, b) = (
            store.open_log("a/0").unwrap(),
            store.open_log("b/0").unwrap(),
        );
        put(&a, 0).await.unwrap();
        poison_until(&a, Instant::now() + std::time::Duration::from_secs(3600));
        let frozen = journal_generation(dir.path());
        for i in 0..200 {
            put(&b, i).await.unwrap();
        }
        assert_eq!(journal_generation(dir.path()), frozen, "reset while frozen");
        poison_now(&a);
        assert_eq!(put(&a, 1).await.unwrap(), 1);
        for i in 200..400 {
            put(&b, i).await.unwrap();
        }
        assert_ne!(journal_generation(dir.path()), frozen, "never reset again");
        assert_eq!(b.read(0, ALL).unwrap().records.len(), 400);
        assert_eq!(a.read(0, ALL).unwrap().records.len(), 2);
    }
}
