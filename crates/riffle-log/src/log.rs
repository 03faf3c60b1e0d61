//! One log's shared state — what readers see (an `Arc` snapshot of the
//! segment list plus the committed tip) and what only the writer thread
//! touches — together with recovery at open and the read paths.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::format::{self, INDEX_INTERVAL_BYTES, IndexEntry, SEGMENT_HEADER_LEN, SegmentIndex};
use crate::segment::{
    self, FrameCursor, Indexer, Segment, corrupt, decode_err, index_file_name, io_err,
    segment_file_name,
};
use tokio::sync::oneshot;

use crate::files::ReadFiles;
use crate::format::RecordRef;
use crate::keys::KeyRing;
use crate::writer::{Msg, Shared};
use crate::{
    Appended, DataKey, FailureCause, LogError, ReadBatch, ReadLimits, Record, RecordIn, Result, Seq,
};

pub(crate) const CLOSED_FILE: &str = "CLOSED";

/// The first wait before a log that refuses writes tries to reopen itself;
/// it doubles after each failed attempt, up to [`REOPEN_BACKOFF_MAX`].
pub(crate) const REOPEN_BACKOFF_MIN: Duration = Duration::from_millis(200);
pub(crate) const REOPEN_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Why and until when a log refuses writes after a failed write or sync.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Poison {
    pub cause: FailureCause,
    /// An append at or after this instant makes the writer try to reopen
    /// the log; appends before it are refused at once.
    pub retry_at: Instant,
    pub backoff: Duration,
}

impl Poison {
    pub fn new(e: &LogError) -> Poison {
        let cause = if e.is_disk_full() {
            FailureCause::DiskFull
        } else {
            FailureCause::Io
        };
        Poison {
            cause,
            retry_at: Instant::now() + REOPEN_BACKOFF_MIN,
            backoff: REOPEN_BACKOFF_MIN,
        }
    }

    /// A failure soon after the log reopened (within [`REOPEN_BACKOFF_MAX`]
    /// of it) waits twice the backoff the reopen had waited, not the
    /// shortest again.
    pub fn after(self, reopened: Option<(Instant, Duration)>) -> Poison {
        match reopened {
            Some((at, backoff)) if at.elapsed() < REOPEN_BACKOFF_MAX => {
                Poison { backoff, ..self }.backed_off()
            }
            _ => self,
        }
    }

    /// After a failed attempt to reopen: wait twice as long.
    pub fn backed_off(self) -> Poison {
        let backoff = (self.backoff * 2).min(REOPEN_BACKOFF_MAX);
        Poison {
            retry_at: Instant::now() + backoff,
            backoff,
            ..self
        }
    }

    pub fn error(&self, name: &str) -> LogError {
        LogError::Poisoned {
            name: name.to_string(),
            cause: self.cause,
        }
    }
}

/// A sealed (immutable) segment and what its index says about it.
#[derive(Clone)]
pub(crate) struct SealedSeg {
    pub seg: Arc<Segment>,
    pub end_seq: Seq,
    pub len: u64,
    pub last_arrival_ms: Option<i64>,
}

/// What readers see. Changed only by the writer thread, under a lock that
/// is never held across I/O.
pub(crate) struct LogState {
    pub sealed: Arc<Vec<SealedSeg>>,
    pub active: Arc<Segment>,
    /// Committed (readable) bytes of the active segment.
    pub active_len: u64,
    /// Committed tip: every seq below it is durable per the fsync policy.
    pub next_seq: Seq,
    pub last_arrival_ms: Option<i64>,
    pub closed: bool,
    /// A copy of the writer side's, for appenders to refuse early.
    pub poisoned: Option<Poison>,
    pub deleted: bool,
}

/// The writer thread's view of the active segment: ahead of [`LogState`]
/// between a write and its sync. Only the writer thread locks it (and
/// recovery, before the log is shared), so the lock is never contended.
pub(crate) struct WriterSide {
    /// The active segment opened for appending, while the writer keeps it
    /// open (see `files::WriteFiles`); `None` means every write through it
    /// was synced before it was closed.
    pub file: Option<Arc<File>>,
    pub path: PathBuf,
    pub len: u64,
    pub next_seq: Seq,
    pub last_arrival_ms: Option<i64>,
    pub indexer: Indexer,
    /// Index entries of written but not yet published batches.
    pub pending_index: Vec<IndexEntry>,
    pub closed: bool,
    /// Set by a failed write or sync: the log refuses writes until the
    /// writer reopens it from its files (`writer::reopen`).
    pub poisoned: Option<Poison>,
    /// When the log last reopened, and the backoff it had waited: a log
    /// that fails again soon after (a disk still nearly full) waits longer.
    pub reopened: Option<(Instant, Duration)>,
    pub deleted: bool,
}

pub(crate) struct LogInner {
    pub name: String,
    pub dir: PathBuf,
    pub state: Mutex<LogState>,
    pub writer: Mutex<WriterSide>,
    /// Woken (notify_waiters) whenever the committed tip moves, the log is
    /// closed or deleted: this is what tip readers wait on.
    pub notify: Notify,
    pub shared: Arc<Shared>,
}

/// A consistent, lock-free copy of what a read needs.
struct Snapshot {
    sealed: Arc<Vec<SealedSeg>>,
    active: Arc<Segment>,
    active_len: u64,
    next_seq: Seq,
    last_arrival_ms: Option<i64>,
    closed: bool,
}

impl Snapshot {
    fn oldest(&self) -> Seq {
        self.sealed
            .first()
            .map_or(self.active.first_seq, |s| s.seg.first_seq)
    }

    /// The segment holding `seq` (< next_seq): `(segment, end_seq, len)`.
    fn locate(&self, seq: Seq) -> (&Arc<Segment>, Seq, u64) {
        let i = self.sealed.partition_point(|s| s.end_seq <= seq);
        match self.sealed.get(i) {
            Some(s) => (&s.seg, s.end_seq, s.len),
            None => (&self.active, self.next_seq, self.active_len),
        }
    }
}

/// How much to read at once: enough for the byte budget plus the up to
/// [`INDEX_INTERVAL_BYTES`] skipped before the first wanted batch.
fn read_chunk(bytes_max: usize) -> usize {
    const READ_CHUNK_BYTES_MIN: usize = 64 * 1024;
    const READ_CHUNK_BYTES_MAX: usize = 16 * 1024 * 1024;
    bytes_max
        .saturating_add(2 * INDEX_INTERVAL_BYTES as usize)
        .clamp(READ_CHUNK_BYTES_MIN, READ_CHUNK_BYTES_MAX)
}

/// Caps of one read, and what has been taken so far.
struct Take {
    records_max: usize,
    bytes_max: usize,
    bytes: usize,
    full: bool,
}

impl LogInner {
    fn snapshot(&self) -> Result<Snapshot> {
        let st = self.state.lock();
        if st.deleted {
            return Err(LogError::Deleted {
                name: self.name.clone(),
            });
        }
        Ok(Snapshot {
            sealed: st.sealed.clone(),
            active: st.active.clone(),
            active_len: st.active_len,
            next_seq: st.next_seq,
            last_arrival_ms: st.last_arrival_ms,
            closed: st.closed,
        })
    }

    pub fn next_seq(&self) -> Seq {
        self.state.lock().next_seq
    }

    pub fn oldest_seq(&self) -> Seq {
        let st = self.state.lock();
        st.sealed
            .first()
            .map_or(st.active.first_seq, |s| s.seg.first_seq)
    }

    pub fn last_arrival_ms(&self) -> Option<i64> {
        self.state.lock().last_arrival_ms
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Why an append would be refused right now (checked before encoding;
    /// the writer checks again in order). A log refusing writes lets an
    /// append through once its backoff is over: the writer then tries to
    /// reopen it.
    fn refusal(&self) -> Option<LogError> {
        let st = self.state.lock();
        // The name is copied only for a refusal, not on every append.
        let name = || self.name.clone();
        if st.deleted {
            Some(LogError::Deleted { name: name() })
        } else if let Some(p) = st.poisoned.filter(|p| Instant::now() < p.retry_at) {
            self.shared.space.refused(p.cause, 1);
            Some(p.error(&self.name))
        } else if st.closed {
            Some(LogError::Closed { name: name() })
        } else {
            None
        }
    }

    pub async fn append(
        self: &Arc<Self>,
        records: &[RecordIn<'_>],
        now_ms: i64,
    ) -> Result<Appended> {
        self.append_with(records, now_ms, None).await
    }

    /// Encodes (and, with a key, encrypts) the batch on the caller's thread,
    /// so the writer thread never spends time on either.
    pub async fn append_with(
        self: &Arc<Self>,
        records: &[RecordIn<'_>],
        now_ms: i64,
        key: Option<&DataKey>,
    ) -> Result<Appended> {
        if let Some(e) = self.refusal().or_else(|| self.shared.space.refusal()) {
            return Err(e);
        }
        let refs = records.iter().map(|r| RecordRef {
            partition_key: r.partition_key,
            explicit_hash_key: r.explicit_hash_key,
            data: r.data,
        });
        let too_large = |e: format::TooLarge| LogError::TooLarge {
            field: e.field,
            len: e.len,
            max: e.max,
        };
        let shared = &self.shared;
        let frame = match key {
            None => format::encode_batch(refs).map_err(too_large)?,
            Some(key) => {
                let nonce = shared.keys.random_nonce(&self.dir)?;
                let mut frame =
                    format::encode_batch_encrypted(refs, key.id, nonce).map_err(too_large)?;
                shared.keys.seal(key, &mut frame)?;
                frame
            }
        };
        let permit = shared
            .inflight
            .clone()
            .acquire_many_owned(Shared::permits_for(frame.len()))
            .await
            .map_err(|_| shared.shut_down_error())?;
        let (reply, rx) = oneshot::channel();
        let msg = Msg::Append {
            log: self.clone(),
            frame,
            now_ms,
            reply,
            permit,
        };
        shared.tx.send(msg).map_err(|_| shared.shut_down_error())?;
        rx.await.map_err(|_| shared.shut_down_error())?
    }

    pub async fn close(self: &Arc<Self>) -> Result<Option<Seq>> {
        let (reply, rx) = oneshot::channel();
        let shared = &self.shared;
        shared
            .tx
            .send(Msg::Close {
                log: self.clone(),
                reply,
            })
            .map_err(|_| shared.shut_down_error())?;
        rx.await.map_err(|_| shared.shut_down_error())?
    }

    pub fn trim_before(self: &Arc<Self>, cutoff_ms: i64) -> Result<Seq> {
        if let Some(oldest) = self.nothing_to_trim(cutoff_ms) {
            return Ok(oldest);
        }
        let (reply, rx) = std::sync::mpsc::channel();
        let shared = &self.shared;
        shared
            .tx
            .send(Msg::Trim {
                log: self.clone(),
                cutoff_ms,
                reply,
            })
            .map_err(|_| shared.shut_down_error())?;
        rx.recv().map_err(|_| shared.shut_down_error())?
    }

    /// The oldest seq, when a trim at `cutoff_ms` would delete nothing: the
    /// oldest segment holds a record at or after the cutoff (or is the
    /// active one and is empty). Retention runs over every log every minute;
    /// this answers most of them without a round trip to the writer thread.
    /// The writer's own check (`Writer::trim`) decides everything else.
    fn nothing_to_trim(&self, cutoff_ms: i64) -> Option<Seq> {
        let st = self.state.lock();
        let recent = |arrival: Option<i64>| arrival.is_some_and(|a| a >= cutoff_ms);
        let keep = match st.sealed.first() {
            Some(s) => recent(s.last_arrival_ms),
            None => st.next_seq == st.active.first_seq || recent(st.last_arrival_ms),
        };
        (keep && !st.deleted).then(|| {
            st.sealed
                .first()
                .map_or(st.active.first_seq, |s| s.seg.first_seq)
        })
    }

    pub fn read(&self, from: Seq, limits: ReadLimits) -> Result<ReadBatch> {
        self.retry_if_trimmed(|snap| Self::read_in(snap, from, limits, &self.shared.keys))
    }

    pub fn seq_at_timestamp(&self, at_ms: i64) -> Result<Seq> {
        self.retry_if_trimmed(|snap| Self::seq_at_timestamp_in(snap, at_ms))
    }

    /// Runs `f` on a fresh snapshot, again if retention deleted a segment
    /// file under it (a read racing a trim at the oldest record) or the log
    /// was deleted. A retry needs the oldest seq to have moved forward, or
    /// ends at once with `Deleted`, so this ends.
    fn retry_if_trimmed<T>(&self, f: impl Fn(&Snapshot) -> Result<T>) -> Result<T> {
        loop {
            let snap = self.snapshot()?;
            match f(&snap) {
                // Also when the log was deleted under the read (its files
                // are opened on demand): the fresh snapshot says `Deleted`.
                Err(LogError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && (self.oldest_seq() > snap.oldest() || self.state.lock().deleted) => {}
                other => return other,
            }
        }
    }

    fn read_in(
        snap: &Snapshot,
        from: Seq,
        limits: ReadLimits,
        keys: &KeyRing,
    ) -> Result<ReadBatch> {
        let mut seq = from.max(snap.oldest());
        let mut records = Vec::new();
        let mut take = Take {
            records_max: limits.records_max.max(1),
            bytes_max: limits.bytes_max,
            bytes: 0,
            full: false,
        };
        let chunk = read_chunk(limits.bytes_max);
        while seq < snap.next_seq && !take.full {
            let (seg, end_seq, len) = snap.locate(seq);
            let reached = read_segment(seg, len, seq, chunk, &mut records, &mut take, keys)?;
            if !take.full && reached < end_seq {
                return Err(corrupt(
                    &seg.path,
                    len,
                    "segment ends before its last sequence number",
                ));
            }
            seq = reached;
        }
        let end_of_log = snap.closed && seq >= snap.next_seq;
        Ok(ReadBatch {
            records,
            next_seq: seq,
            end_of_log,
        })
    }

    fn seq_at_timestamp_in(snap: &Snapshot, at_ms: i64) -> Result<Seq> {
        let i = snap
            .sealed
            .partition_point(|s| s.last_arrival_ms.is_none_or(|a| a < at_ms));
        let (seg, len, end_seq) = match snap.sealed.get(i) {
            Some(s) => (&s.seg, s.len, s.end_seq),
            None if snap.last_arrival_ms.is_some_and(|a| a >= at_ms) => {
                (&snap.active, snap.active_len, snap.next_seq)
            }
            None => return Ok(snap.next_seq),
        };
        let (start, next) = seg.window_for_time(at_ms);
        let end = next.map_or(len, |(offset, _)| offset).min(len);
        let file = seg.file()?;
        let mut cur = FrameCursor::new(
            &file,
            start,
            end,
            (end.saturating_sub(start) as usize).min(1 << 20),
        );
        while let Some((offset, frame)) =
            cur.next_frame().map_err(|e| e.into_log_error(&seg.path))?
        {
            let b = format::decode_batch(&frame).map_err(|e| decode_err(&seg.path, offset, e))?;
            if b.arrival_ms >= at_ms && b.count > 0 {
                return Ok(b.first_seq.max(snap.oldest()));
            }
        }
        Ok(next.map_or(end_seq, |(_, seq)| seq))
    }

    /// Resolves once `seq >= from` is committed or the log is closed or
    /// deleted. Registers interest before checking, so no wake-up is lost.
    pub async fn wait_readable(&self, from: Seq) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.state.lock();
                if st.deleted || st.closed || st.next_seq > from {
                    return;
                }
            }
            notified.await;
        }
    }
}

/// Appends records with `seq >= from` of one segment to `out` until the
/// limits are reached; returns the seq after the last one consumed.
fn read_segment(
    seg: &Segment,
    len: u64,
    from: Seq,
    chunk: usize,
    out: &mut Vec<Record>,
    take: &mut Take,
    keys: &KeyRing,
) -> Result<Seq> {
    let file = seg.file()?;
    // Sized by the index to the records still wanted, when it can tell: a
    // small records limit then reads (and faults in) little, not a chunk
    // sized for the byte budget.
    let records_left = take.records_max.saturating_sub(out.len()) as u64;
    let (start, wanted_end) = seg.window_for_seqs(from, from.saturating_add(records_left));
    let mut cur = FrameCursor::new(&file, start, len, chunk).needs_until(wanted_end);
    let mut next = from;
    while let Some((offset, frame)) = cur.next_frame().map_err(|e| e.into_log_error(&seg.path))? {
        let b = format::decode_batch(&frame).map_err(|e| decode_err(&seg.path, offset, e))?;
        if b.end_seq() <= from {
            continue;
        }
        // An encrypted batch is decrypted into a buffer of its own, which its
        // records then slice.
        let plain;
        let (buf, records) = match b.encryption {
            None => (&frame, b.records()),
            Some(_) => {
                plain = keys.open(&b, &seg.path, offset)?;
                let records = format::decrypted_records(&plain, b.count)
                    .map_err(|e| decode_err(&seg.path, offset, e))?;
                (&plain, records)
            }
        };
        for (seq, r) in (b.first_seq..).zip(records) {
            if seq < from {
                continue;
            }
            let size = r.partition_key.len() + r.data.len();
            if out.len() >= take.records_max
                || (!out.is_empty() && take.bytes + size > take.bytes_max)
            {
                take.full = true;
                return Ok(next);
            }
            take.bytes += size;
            out.push(Record {
                seq,
                arrival_ms: b.arrival_ms,
                partition_key: buf.slice_ref(r.partition_key),
                explicit_hash_key: r.explicit_hash_key.map(|k| buf.slice_ref(k)),
                data: buf.slice_ref(r.data),
                encrypted: b.encryption.is_some(),
            });
            next = seq + 1;
        }
        next = next.max(b.end_seq());
        if out.len() >= take.records_max {
            // Done: reading the next frame only to learn that would cost
            // another read.
            take.full = true;
            return Ok(next);
        }
    }
    if out.len() >= take.records_max {
        take.full = true;
    }
    Ok(next)
}

// ---------------------------------------------------------------- recovery

/// The files found in a log directory, by first sequence number.
#[derive(Debug, Default, Clone, Copy)]
struct Files {
    seg: bool,
    idx: bool,
}

/// Lists a log directory (removing leftover temp files): its segment and
/// index files, and whether it has a `CLOSED` file. One listing answers
/// every "does it exist" of recovery: opening thousands of logs at start-up
/// costs a few system calls per log, not one per possible file.
fn list_dir(dir: &Path) -> Result<(BTreeMap<Seq, Files>, bool)> {
    let mut map: BTreeMap<Seq, Files> = BTreeMap::new();
    let mut closed = false;
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let path = entry.map_err(io_err(dir))?.path();
        if path.file_name().is_some_and(|n| n == CLOSED_FILE) {
            closed = true;
            continue;
        }
        let (Some(stem), Some(ext)) = (path.file_stem().and_then(|s| s.to_str()), path.extension())
        else {
            continue;
        };
        if ext == "tmp" {
            // An interrupted atomic write: its target is intact.
            std::fs::remove_file(&path).map_err(io_err(&path))?;
            continue;
        }
        let Ok(seq) = stem.parse::<Seq>() else {
            continue;
        };
        let files = map.entry(seq).or_default();
        match ext.to_str() {
            Some("seg") => files.seg = true,
            Some("idx") => files.idx = true,
            _ => {}
        }
    }
    Ok((map, closed))
}

fn read_closed(dir: &Path) -> Result<Option<Seq>> {
    let path = dir.join(CLOSED_FILE);
    match std::fs::read(&path) {
        Ok(b) => format::decode_closed(&b)
            .map(Some)
            .map_err(|e| decode_err(&path, 0, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(LogError::Io { path, source }),
    }
}

/// Recovers a log directory (creating the first segment of a new log):
/// sealed segments are trusted up to their index files, only the last
/// segment is scanned, and a torn tail is truncated. Every file it opens is
/// closed again: readers and the writer reopen what they need.
pub(crate) fn recover(dir: &Path, read_files: &Arc<ReadFiles>) -> Result<(LogState, WriterSide)> {
    let (mut files, has_closed) = list_dir(dir)?;
    let closed_at = if has_closed { read_closed(dir)? } else { None };
    // Index files before the first segment are left over from an
    // interrupted trim (segment files are removed first).
    while let Some((&seq, f)) = files.first_key_value() {
        if f.seg {
            break;
        }
        let path = dir.join(index_file_name(seq));
        std::fs::remove_file(&path).map_err(io_err(&path))?;
        files.remove(&seq);
    }
    let Some((&active_first, _)) = files.iter().rev().find(|(_, f)| f.seg) else {
        let (path, file) = segment::create_segment(dir, closed_at.unwrap_or(0))?;
        // Synced by create_segment; appends reopen it.
        drop(file);
        return Ok(fresh_state(
            read_files,
            path,
            closed_at.unwrap_or(0),
            closed_at.is_some(),
        ));
    };
    if let Some((&seq, _)) = files.range(active_first + 1..).next() {
        let path = dir.join(segment_file_name(seq));
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "segment file is missing");
        return Err(LogError::Io { path, source });
    }
    let mut sealed = Vec::new();
    for (&first, f) in files.range(..active_first) {
        sealed.push(load_sealed(read_files, dir, first, *f)?);
    }
    let stale_idx = files.get(&active_first).is_some_and(|f| f.idx);
    let (active, mut w) = recover_active(read_files, dir, active_first, stale_idx)?;
    let sealed = fill_gaps(read_files, dir, sealed, active_first)?;
    let closed = closed_at.is_some();
    if let Some(at) = closed_at {
        w.next_seq = w.next_seq.max(at);
    }
    w.closed = closed;
    let state = LogState {
        sealed: Arc::new(sealed),
        active: Arc::new(active),
        active_len: w.len,
        next_seq: w.next_seq,
        last_arrival_ms: w.last_arrival_ms,
        closed,
        poisoned: None,
        deleted: false,
    };
    Ok((state, w))
}

fn fresh_state(
    files: &Arc<ReadFiles>,
    path: PathBuf,
    first: Seq,
    closed: bool,
) -> (LogState, WriterSide) {
    let w = WriterSide {
        file: None,
        path: path.clone(),
        len: SEGMENT_HEADER_LEN,
        next_seq: first,
        last_arrival_ms: None,
        indexer: Indexer::default(),
        pending_index: Vec::new(),
        closed,
        poisoned: None,
        reopened: None,
        deleted: false,
    };
    let state = LogState {
        sealed: Arc::new(Vec::new()),
        active: Arc::new(Segment::new(files, path, first, Vec::new())),
        active_len: SEGMENT_HEADER_LEN,
        next_seq: first,
        last_arrival_ms: None,
        closed,
        poisoned: None,
        deleted: false,
    };
    (state, w)
}

/// A sealed segment from its index file, or rebuilt by scanning it when the
/// index is missing or damaged. A missing segment file is kept as an entry
/// whose reads fail naming it. The flag says the segment's end is unknown.
fn load_sealed(
    files: &Arc<ReadFiles>,
    dir: &Path,
    first: Seq,
    f: Files,
) -> Result<(SealedSeg, bool)> {
    let seg_path = dir.join(segment_file_name(first));
    let idx_path = dir.join(index_file_name(first));
    let seg_len = if f.seg {
        Some(
            std::fs::metadata(&seg_path)
                .map_err(io_err(&seg_path))?
                .len(),
        )
    } else {
        None
    };
    if f.idx {
        match read_index(&idx_path, first) {
            Ok(ix) if seg_len.is_none_or(|l| l == ix.segment_len) => {
                let seal = SealedSeg {
                    seg: Arc::new(Segment::new(files, seg_path, first, ix.entries)),
                    end_seq: ix.end_seq,
                    len: ix.segment_len,
                    last_arrival_ms: ix.last_arrival_ms,
                };
                return Ok((seal, false));
            }
            Ok(_) => {
                tracing::warn!(path = %idx_path.display(), "index disagrees with its segment's length; rebuilding")
            }
            Err(e) => tracing::warn!(error = %e, "damaged index; rebuilding it from its segment"),
        }
    }
    let Some(len) = seg_len else {
        // Neither usable: a placeholder whose end fill_gaps sets.
        let seg = Arc::new(Segment::new(files, seg_path, first, vec![]));
        return Ok((
            SealedSeg {
                seg,
                end_seq: first,
                len: 0,
                last_arrival_ms: None,
            },
            true,
        ));
    };
    rebuild_sealed(files, seg_path, &idx_path, first, len)
}

fn read_index(path: &Path, first: Seq) -> Result<SegmentIndex> {
    let b = std::fs::read(path).map_err(io_err(path))?;
    let ix = format::decode_index(&b).map_err(|e| decode_err(path, 0, e))?;
    if ix.first_seq != first {
        return Err(corrupt(path, 16, "index belongs to another segment"));
    }
    Ok(ix)
}

fn rebuild_sealed(
    files: &Arc<ReadFiles>,
    seg_path: PathBuf,
    idx_path: &Path,
    first: Seq,
    len: u64,
) -> Result<(SealedSeg, bool)> {
    let file = File::open(&seg_path).map_err(io_err(&seg_path))?;
    let mut head = [0u8; SEGMENT_HEADER_LEN as usize];
    let header = file.read_exact_at(&mut head, 0).map_err(io_err(&seg_path));
    let header = header.and_then(|()| {
        format::decode_segment_header(&head).map_err(|e| decode_err(&seg_path, 0, e))
    });
    let scan = segment::scan_segment(&file, first, len);
    let damaged = header.is_err() || scan.stopped.is_some();
    let seal = SealedSeg {
        end_seq: scan.end_seq,
        len: if damaged { len } else { scan.valid_len },
        last_arrival_ms: scan.last_arrival_ms,
        seg: Arc::new(Segment::new(
            files,
            seg_path.clone(),
            first,
            scan.entries.clone(),
        )),
    };
    if damaged {
        // Reads that reach the damage report it; the end comes from the
        // next segment (fill_gaps).
        tracing::error!(path = %seg_path.display(), "sealed segment is damaged; reads past the damage will fail");
        return Ok((seal, true));
    }
    let ix = SegmentIndex {
        first_seq: first,
        end_seq: scan.end_seq,
        segment_len: scan.valid_len,
        last_arrival_ms: scan.last_arrival_ms,
        entries: scan.entries,
    };
    if let Err(e) = segment::write_atomically(idx_path, &format::encode_index(&ix)) {
        // Not fatal: the index is an accelerator and is rebuilt next time.
        tracing::warn!(error = %e, "could not rewrite a segment index");
    }
    Ok((seal, false))
}

/// Makes consecutive segments meet. A segment whose end is unknown
/// (damaged, or neither file nor index left) ends where the next begins; a
/// hole after a sound segment (a segment file that vanished with its index)
/// becomes an entry of its own whose reads fail naming the missing file.
fn fill_gaps(
    files: &Arc<ReadFiles>,
    dir: &Path,
    sealed: Vec<(SealedSeg, bool)>,
    active_first: Seq,
) -> Result<Vec<SealedSeg>> {
    let mut out = Vec::with_capacity(sealed.len());
    let nexts: Vec<Seq> = sealed
        .iter()
        .map(|(s, _)| s.seg.first_seq)
        .skip(1)
        .chain([active_first])
        .collect();
    for ((mut s, open_ended), next_first) in sealed.into_iter().zip(nexts) {
        if s.end_seq > next_first {
            let path = dir.join(index_file_name(s.seg.first_seq));
            return Err(corrupt(&path, 24, "segment overlaps the next one"));
        }
        if open_ended || s.end_seq == next_first {
            s.end_seq = next_first;
            out.push(s);
            continue;
        }
        let hole_first = s.end_seq;
        out.push(s);
        out.push(SealedSeg {
            seg: Arc::new(Segment::new(
                files,
                dir.join(segment_file_name(hole_first)),
                hole_first,
                vec![],
            )),
            end_seq: next_first,
            len: 0,
            last_arrival_ms: None,
        });
    }
    Ok(out)
}

/// Recovers the active (last) segment; `stale_idx` says the listing found
/// an index file for it.
fn recover_active(
    files: &Arc<ReadFiles>,
    dir: &Path,
    first: Seq,
    stale_idx: bool,
) -> Result<(Segment, WriterSide)> {
    let path = dir.join(segment_file_name(first));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let len = file.metadata().map_err(io_err(&path))?.len();
    let mut head = [0u8; SEGMENT_HEADER_LEN as usize];
    let header_ok = len >= SEGMENT_HEADER_LEN
        && file.read_exact_at(&mut head, 0).is_ok()
        && format::decode_segment_header(&head) == Ok(first);
    if !header_ok {
        if len > SEGMENT_HEADER_LEN {
            let e =
                format::decode_segment_header(&head)
                    .err()
                    .unwrap_or(format::DecodeError::Corrupt(
                        "segment header names another first sequence number",
                    ));
            return Err(decode_err(&path, 0, e));
        }
        // Torn while being created, before it received any batch.
        let rewrite = || -> std::io::Result<()> {
            file.set_len(0)?;
            file.write_all_at(&format::encode_segment_header(first), 0)?;
            file.sync_all()
        };
        rewrite().map_err(io_err(&path))?;
    }
    let len = len.max(SEGMENT_HEADER_LEN);
    let scan = segment::scan_segment(&file, first, len);
    if let Some(stop) = &scan.stopped {
        tracing::warn!(path = %path.display(), valid_len = scan.valid_len, reason = ?stop, "truncating the torn tail of a segment");
        let cut = || -> std::io::Result<()> {
            file.set_len(scan.valid_len)?;
            file.sync_all()
        };
        cut().map_err(io_err(&path))?;
    }
    if stale_idx {
        // The segment is active again (a crash between sealing and rolling).
        let path = dir.join(index_file_name(first));
        std::fs::remove_file(&path).map_err(io_err(&path))?;
    }
    // Nothing was written through it but a synced repair: closing it loses
    // no write-back error. Appends reopen it.
    drop(file);
    let w = WriterSide {
        file: None,
        path: path.clone(),
        len: scan.valid_len,
        next_seq: scan.end_seq,
        last_arrival_ms: scan.last_arrival_ms,
        indexer: Indexer::resume(&scan.entries),
        pending_index: Vec::new(),
        closed: false,
        poisoned: None,
        reopened: None,
        deleted: false,
    };
    Ok((Segment::new(files, path, first, scan.entries), w))
}
