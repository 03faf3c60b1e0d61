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
//! after each failed attempt up to 5 s) and only while free space is above
//! the floor; appends before that are refused at once. No background
//! thread: a log nobody writes to has no reason to reopen.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::Writer;
use crate::format::SEGMENT_HEADER_LEN;
use crate::log::{self, LogInner, WriterSide};
use crate::segment::{self, corrupt, io_err};
use crate::{FsyncPolicy, LogError, Result, Seq};

/// What readers were told: the committed state to return to.
struct Committed {
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
                active_first: st.active.first_seq,
                active_len: st.active_len,
                next_seq: st.next_seq,
            }
        };
        let active = st_active_path(log);
        if let Some(journal) = &self.journal {
            journal.restore(log)?;
        }
        // Under `interval`/`never` committed bytes may not have been synced
        // when a sync failed: write them again from the page cache.
        let rewrite = self.policy != FsyncPolicy::Always;
        discard_unacknowledged(&log.dir, &active, &committed, rewrite)?;
        let (_, fresh) = log::recover(&log.dir, &log.shared.read_files)?;
        if fresh.path != active
            || fresh.next_seq != committed.next_seq
            || fresh.len != committed.active_len
        {
            return Err(corrupt(
                &fresh.path,
                fresh.len,
                "the log's files hold less than was acknowledged; it needs an operator",
            ));
        }
        *w = WriterSide {
            closed: w.closed,
            poisoned: w.poisoned,
            deleted: w.deleted,
            ..fresh
        };
        Ok(())
    }
}

fn st_active_path(log: &LogInner) -> std::path::PathBuf {
    log.state.lock().active.path.clone()
}

/// Removes what a failed write may have left past the committed state:
/// the files of a segment the log never committed to (a failed roll), an
/// index of the active segment (idem), and the active segment's bytes past
/// its committed length; then syncs what it changed.
fn discard_unacknowledged(
    dir: &Path,
    active: &Path,
    committed: &Committed,
    rewrite: bool,
) -> Result<()> {
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
