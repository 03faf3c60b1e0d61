//! The writer thread: every append, seal, close, trim and delete of a store
//! goes through it, in submission order. It implements group commit: it
//! drains everything pending, writes the batches of each log to its active
//! segment in one `pwritev`, makes them durable with one sync of the
//! store's journal (a small round under `fsync=always`, see `journal`) or
//! one sync of each touched file, and only then publishes the new
//! committed tip, wakes tip readers and acknowledges the appenders.
//!
//! A failed write or sync poisons its log: the log refuses appends (its
//! readers keep reading what was committed) until the writer reopens it
//! from its files, which `reopen` does on the first append after a
//! backoff, once free space is above the floor.

mod reopen;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::files::{ReadFiles, WriteFiles};
use crate::format::{self, SEGMENT_HEADER_LEN, SegmentIndex};
use crate::journal::{JOURNAL_ENTRY_OVERHEAD_MAX, JOURNAL_ROUND_BYTES_MAX, Journal};
use crate::keys::KeyRing;
use crate::log::{CLOSED_FILE, LogInner, Poison, SealedSeg, WriterSide};
use crate::segment::{self, Indexer, Segment, index_file_name, io_err, io_error};
use crate::space::Space;
use crate::syncs::SyncPool;
use crate::{Appended, FsyncPolicy, LogError, Result, Seq, StoreConfig};

/// Bytes of appends queued for (or being written by) the writer. Appenders
/// wait for room, so a slow disk pushes back on producers instead of
/// growing memory without bound.
pub(crate) const IN_FLIGHT_BYTES_MAX: usize = 256 * 1024 * 1024;
const PERMIT_BYTES: usize = 1024;
pub(crate) const IN_FLIGHT_PERMITS: usize = IN_FLIGHT_BYTES_MAX / PERMIT_BYTES;
// One maximal batch must fit, or its appender would wait forever.
const _: () = assert!(format::BATCH_BYTES_MAX <= IN_FLIGHT_BYTES_MAX);
/// A round stops draining the queue after this many bytes so that early
/// appenders are not delayed indefinitely by a steady stream of later ones.
const ROUND_BYTES_MAX: usize = 64 * 1024 * 1024;
/// With `fsync=always` and concurrent appenders, a round keeps gathering
/// appends while they arrive less than this far apart...
const GROUP_COMMIT_GAP: Duration = Duration::from_micros(50);
/// ...but for no longer than this: a sync costs about a millisecond here, so
/// waiting a fraction of it lets many more appends share it.
const GROUP_COMMIT_LINGER_MAX: Duration = Duration::from_micros(500);

/// What every log handle shares with the store: the way to the writer.
pub(crate) struct Shared {
    /// Unbounded in itself; appends are bounded by `inflight`, and control
    /// messages (close/trim/delete/shutdown) by their callers waiting.
    pub tx: Sender<Msg>,
    pub inflight: Arc<Semaphore>,
    pub store_dir: PathBuf,
    /// Data keys for encrypted appends and reads.
    pub keys: KeyRing,
    /// Read handles of segment files, shared by every log's readers.
    pub read_files: Arc<ReadFiles>,
    /// How many active segments the writer holds open (its `WriteFiles`).
    pub write_files_open: Arc<AtomicUsize>,
    /// Free space and the counters of refused appends.
    pub space: Arc<Space>,
}

impl Shared {
    pub fn shut_down_error(&self) -> LogError {
        let source = io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the log store has been shut down",
        );
        LogError::Io {
            path: self.store_dir.clone(),
            source,
        }
    }

    pub fn permits_for(frame_len: usize) -> u32 {
        // frame_len <= BATCH_BYTES_MAX, so this fits in u32.
        frame_len.div_ceil(PERMIT_BYTES) as u32
    }
}

pub(crate) enum Msg {
    Append {
        log: Arc<LogInner>,
        frame: Vec<u8>,
        now_ms: i64,
        reply: oneshot::Sender<Result<Appended>>,
        /// Released when the writer is done with the frame.
        permit: OwnedSemaphorePermit,
    },
    Close {
        log: Arc<LogInner>,
        reply: oneshot::Sender<Result<Option<Seq>>>,
    },
    Trim {
        log: Arc<LogInner>,
        cutoff_ms: i64,
        reply: Sender<Result<Seq>>,
    },
    Delete {
        log: Arc<LogInner>,
        reply: Sender<Result<()>>,
    },
    Shutdown {
        reply: Option<oneshot::Sender<Result<()>>>,
    },
}

/// Starts the writer thread, which keeps at most `files_max` active
/// segments open for appending, and its sync helpers.
pub(crate) fn spawn(
    rx: Receiver<Msg>,
    config: &StoreConfig,
    journal: Option<Journal>,
    files_max: usize,
    files_open: Arc<AtomicUsize>,
    space: Arc<Space>,
) -> io::Result<std::thread::JoinHandle<()>> {
    let writer = Writer {
        journal: journal.filter(|_| config.fsync == FsyncPolicy::Always),
        rx,
        policy: config.fsync,
        segment_bytes_max: config.segment_bytes_max,
        unsynced: HashMap::new(),
        dirty_since: None,
        files: WriteFiles::new(files_max, files_open),
        syncs: SyncPool::start()?,
        space,
    };
    std::thread::Builder::new()
        .name("riffle-log-writer".into())
        .spawn(move || writer.run())
}

struct Writer {
    rx: Receiver<Msg>,
    policy: FsyncPolicy,
    /// Under `fsync=always` (unless turned off): makes small rounds durable
    /// with one sync.
    journal: Option<Journal>,
    segment_bytes_max: u64,
    /// Logs written since their last sync (policies other than Always, and
    /// logs whose writes the journal holds).
    unsynced: HashMap<usize, Arc<LogInner>>,
    dirty_since: Option<Instant>,
    /// Which logs' active segments are open, least recently used first out.
    files: WriteFiles,
    /// Runs a round's syncs concurrently; joined when the writer stops.
    syncs: SyncPool,
    space: Arc<Space>,
}

/// The appends of one group commit.
#[derive(Default)]
struct Round {
    logs: Vec<Arc<LogInner>>,
    by_ptr: HashMap<usize, usize>,
    /// Per log: the error that poisoned it during this round.
    failed: Vec<Option<LogError>>,
    /// Per log: sealed batches not yet written to its active segment.
    runs: Vec<Run>,
    /// Per append: its log, its reply, its seqs and the seq after them.
    replies: Vec<(usize, oneshot::Sender<Result<Appended>>, Appended, Seq)>,
    bytes: usize,
}

impl Round {
    fn touch(&mut self, log: &Arc<LogInner>) -> usize {
        let key = Arc::as_ptr(log) as usize;
        *self.by_ptr.entry(key).or_insert_with(|| {
            self.logs.push(log.clone());
            self.failed.push(None);
            self.runs.push(Run::default());
            self.logs.len() - 1
        })
    }
}

/// Consecutive sealed batches of one log, written together in one
/// `pwritev` when the round ends (or before its segment rolls): a round of
/// many small appends costs one write system call per log, not one each.
#[derive(Default)]
struct Run {
    /// Where the first batch goes in the active segment.
    offset: u64,
    frames: Vec<Vec<u8>>,
    /// Held until the frames are written: they count as in flight until then.
    permits: Vec<OwnedSemaphorePermit>,
}

impl Run {
    /// Writes the run to the active segment (which is open: every staged
    /// batch went through [`Writer::open_for_append`]) and empties it.
    fn write(&mut self, w: &WriterSide) -> Result<()> {
        let written = self.write_keeping(w);
        self.clear();
        written
    }

    /// Like [`Run::write`], but keeps the frames (for the journal).
    fn write_keeping(&mut self, w: &WriterSide) -> Result<()> {
        if self.frames.is_empty() {
            return Ok(());
        }
        let Some(file) = &w.file else {
            return Err(not_open(&w.path));
        };
        segment::write_all_vectored_at(file, &self.frames, self.offset).map_err(io_err(&w.path))
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.permits.clear();
    }
}

/// A copy of an error for each of the appends it fails.
fn copy_err(e: &LogError) -> LogError {
    // Keep the OS error code (ENOSPC, EIO, ...) when there is one.
    let copy_io = |source: &io::Error| {
        source.raw_os_error().map_or_else(
            || io::Error::new(source.kind(), source.to_string()),
            io::Error::from_raw_os_error,
        )
    };
    match e {
        LogError::Io { path, source } => LogError::Io {
            path: path.clone(),
            source: copy_io(source),
        },
        LogError::DiskFull { path, source } => LogError::DiskFull {
            path: path.clone(),
            source: copy_io(source),
        },
        LogError::DiskFreeBelowMin { dir, free, min } => LogError::DiskFreeBelowMin {
            dir: dir.clone(),
            free: *free,
            min: *min,
        },
        LogError::Corrupt {
            path,
            offset,
            reason,
        } => LogError::Corrupt {
            path: path.clone(),
            offset: *offset,
            reason,
        },
        LogError::UnsupportedVersion { path, found } => LogError::UnsupportedVersion {
            path: path.clone(),
            found: *found,
        },
        LogError::Closed { name } => LogError::Closed { name: name.clone() },
        LogError::Poisoned { name, cause } => LogError::Poisoned {
            name: name.clone(),
            cause: *cause,
        },
        LogError::Deleted { name } => LogError::Deleted { name: name.clone() },
        LogError::Meta(m) => LogError::Meta(m.clone()),
        LogError::InvalidName(n) => LogError::InvalidName(n.clone()),
        LogError::TooLarge { field, len, max } => LogError::TooLarge {
            field,
            len: *len,
            max: *max,
        },
    }
}

/// Marks a log as refusing writes after a failed write or sync, until
/// `reopen` succeeds.
fn poison(log: &LogInner, w: &mut WriterSide, e: &LogError) {
    if w.poisoned.is_some() {
        return;
    }
    let p = Poison::new(e).after(w.reopened);
    if e.is_disk_full() {
        tracing::error!(log = %log.name, error = %e, "the disk is full: a write failed, so the log refuses writes until space is freed; it then reopens itself from its files (nothing acknowledged is lost)");
    } else {
        tracing::error!(log = %log.name, error = %e, "an I/O failure: the log refuses writes until it has reopened itself from its files (retried on appends, with a backoff)");
    }
    w.poisoned = Some(p);
    log.state.lock().poisoned = Some(p);
    log.shared.space.poisoned(p.cause);
}

impl Writer {
    fn run(mut self) {
        let mut appends_last_round = 0;
        while let Some(first) = self.recv() {
            // Measured before writing when the last measure is old.
            self.space.wrote(0);
            let mut round = Round::default();
            let mut next = Some(first);
            let mut control = None;
            // Concurrent appenders were seen: they are probably resubmitting
            // right now, so wait a little for them to share this sync.
            let linger = self.policy == FsyncPolicy::Always && appends_last_round > 1;
            let linger_until = Instant::now() + GROUP_COMMIT_LINGER_MAX;
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Append {
                        log,
                        frame,
                        now_ms,
                        reply,
                        permit,
                    } => {
                        self.write(&log, frame, now_ms, reply, permit, &mut round);
                    }
                    other => {
                        // Control messages run after the appends before them
                        // are committed, and before those after them.
                        control = Some(other);
                        break;
                    }
                }
                if round.bytes < ROUND_BYTES_MAX && self.files.round_has_room() {
                    next = match self.rx.try_recv() {
                        Ok(msg) => Some(msg),
                        Err(_) if linger && Instant::now() < linger_until => {
                            self.rx.recv_timeout(GROUP_COMMIT_GAP).ok()
                        }
                        Err(_) => None,
                    };
                }
            }
            appends_last_round = round.replies.len();
            let written = round.bytes as u64;
            self.finish(round);
            self.space.wrote(written);
            let go_on = control.is_none_or(|msg| self.control(msg));
            self.close_cold_files();
            if !go_on {
                return;
            }
        }
        let _ = self.checkpoint();
    }

    /// The next message; under `Interval`, syncs written logs when due.
    fn recv(&mut self) -> Option<Msg> {
        loop {
            let due = match (self.policy, self.dirty_since) {
                (FsyncPolicy::Interval(every), Some(since)) => since + every,
                _ => return self.rx.recv().ok(),
            };
            let now = Instant::now();
            if now >= due {
                self.sync_unsynced();
                continue;
            }
            match self.rx.recv_timeout(due - now) {
                Ok(msg) => return Some(msg),
                Err(RecvTimeoutError::Timeout) => self.sync_unsynced(),
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn write(
        &mut self,
        log: &Arc<LogInner>,
        frame: Vec<u8>,
        now_ms: i64,
        reply: oneshot::Sender<Result<Appended>>,
        permit: OwnedSemaphorePermit,
        round: &mut Round,
    ) {
        let mut w = log.writer.lock();
        // A log that failed in this very round is not reopened before the
        // round has answered for that failure.
        let failed_now = round
            .by_ptr
            .get(&(Arc::as_ptr(log) as usize))
            .is_some_and(|&t| round.failed[t].is_some());
        let refused = match w.poisoned.filter(|_| failed_now) {
            Some(p) => {
                self.space.refused(p.cause, 1);
                Some(p.error(&log.name))
            }
            None => self.refusal(log, &mut w),
        };
        if let Some(e) = refused {
            let _ = reply.send(Err(e));
            return;
        }
        let appended = Appended {
            first_seq: w.next_seq,
            arrival_ms: w.last_arrival_ms.map_or(now_ms, |last| last.max(now_ms)),
        };
        let count = format::batch_count(&frame);
        if count > 0
            && let Err(e) = self.open_for_append(log, &mut w)
        {
            // Nothing was written: the log stays writable (a later append
            // tries again, e.g. once descriptors are free).
            let _ = reply.send(Err(e));
            return;
        }
        let t = round.touch(log);
        if count > 0 {
            round.bytes += frame.len();
            if let Err(e) =
                self.stage_frame(log, &mut w, &mut round.runs[t], frame, permit, appended)
            {
                poison(log, &mut w, &e);
                // Every append of this log in the round fails with it (see `finish`).
                round.failed[t] = Some(e);
            }
        }
        round.replies.push((t, reply, appended, w.next_seq));
    }

    /// Makes sure the log's active segment is open for appending (the
    /// writer may have closed it, see [`Writer::close_cold_files`]), and
    /// marks it as just used.
    fn open_for_append(&mut self, log: &Arc<LogInner>, w: &mut WriterSide) -> Result<()> {
        let opened = w.file.is_none();
        if opened {
            let file = OpenOptions::new().write(true).open(&w.path);
            w.file = Some(Arc::new(file.map_err(io_err(&w.path))?));
        }
        self.files.touch(log, opened);
        Ok(())
    }

    /// Seals one batch and adds it to the log's run, which the round writes
    /// before it syncs; the active segment is open ([`Writer::open_for_append`]).
    fn stage_frame(
        &mut self,
        log: &LogInner,
        w: &mut WriterSide,
        run: &mut Run,
        mut frame: Vec<u8>,
        permit: OwnedSemaphorePermit,
        a: Appended,
    ) -> Result<()> {
        let len = frame.len() as u64;
        if w.len > SEGMENT_HEADER_LEN && w.len + len > self.segment_bytes_max {
            // The batches staged so far belong to the segment being sealed.
            run.write(w)?;
            self.roll(log, w)?;
        }
        format::seal_batch(&mut frame, a.first_seq, a.arrival_ms);
        if run.frames.is_empty() {
            run.offset = w.len;
        }
        if let Some(entry) = w.indexer.observe(w.len, a.first_seq, a.arrival_ms) {
            w.pending_index.push(entry);
        }
        w.len += len;
        w.next_seq += u64::from(format::batch_count(&frame));
        w.last_arrival_ms = Some(a.arrival_ms);
        run.frames.push(frame);
        run.permits.push(permit);
        Ok(())
    }

    /// Syncs (per policy) and publishes every log of the round, then answers
    /// its appenders. The files of one round are synced concurrently (see
    /// [`SyncPool::sync_data_each`]); each log is published only once its own sync is done.
    fn finish(&mut self, mut round: Round) {
        let mut to_sync: Vec<(usize, Arc<File>)> = Vec::new();
        let mut journaled: Vec<(usize, Arc<File>)> = Vec::new();
        let use_journal = self.policy == FsyncPolicy::Always
            && round.bytes <= JOURNAL_ROUND_BYTES_MAX
            && self.journal_has_room(round.bytes + round.logs.len() * JOURNAL_ENTRY_OVERHEAD_MAX);
        for (t, log) in round.logs.iter().enumerate() {
            if round.failed[t].is_some() {
                continue;
            }
            let mut w = log.writer.lock();
            if w.poisoned.is_some() || w.deleted {
                continue;
            }
            let run = &mut round.runs[t];
            let written = run.write_keeping(&w);
            if let Err(e) = written {
                run.clear();
                poison(log, &mut w, &e);
                round.failed[t] = Some(e);
                continue;
            }
            if self.policy == FsyncPolicy::Always {
                match (w.file.clone(), &mut self.journal) {
                    (Some(file), Some(journal)) if use_journal => {
                        if !run.frames.is_empty() {
                            journal.stage(log, &w.path, run.offset, &run.frames);
                        }
                        journaled.push((t, file));
                    }
                    (Some(file), _) => to_sync.push((t, file)),
                    // Only empty batches: nothing was written.
                    (None, _) => publish(log, &mut w),
                }
                run.clear();
            } else {
                self.unsynced
                    .entry(Arc::as_ptr(log) as usize)
                    .or_insert_with(|| log.clone());
                self.dirty_since.get_or_insert_with(Instant::now);
                publish(log, &mut w);
            }
        }
        if let Some(journal) = self.journal.as_mut().filter(|_| !journaled.is_empty()) {
            match journal.commit() {
                Ok(()) => {
                    for (t, _) in journaled.drain(..) {
                        let log = &round.logs[t];
                        // Synced at the next checkpoint (or when its file is closed).
                        self.unsynced
                            .entry(Arc::as_ptr(log) as usize)
                            .or_insert_with(|| log.clone());
                        publish(log, &mut log.writer.lock());
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the journal could not be written or synced; syncing the round's segments instead");
                    to_sync.append(&mut journaled);
                }
            }
        }
        let results = self
            .syncs
            .sync_data_each(to_sync.iter().map(|(_, f)| f.clone()));
        for ((t, _), result) in to_sync.iter().zip(results) {
            let log = &round.logs[*t];
            // Only this thread changes the writer side, so it is as it was
            // when the file was picked above.
            let mut w = log.writer.lock();
            match result {
                Ok(()) => publish(log, &mut w),
                Err(source) => {
                    let e = io_error(w.path.clone(), source);
                    poison(log, &mut w, &e);
                    round.failed[*t] = Some(e);
                }
            }
        }
        for (t, reply, appended, end) in round.replies {
            let result = match &round.failed[t] {
                // Made durable and readable by a segment roll (which syncs
                // the segment it seals) before its log failed: acknowledged.
                Some(_) if end > appended.first_seq && end <= round.logs[t].next_seq() => {
                    Ok(appended)
                }
                Some(e) => {
                    let p = Poison::new(e);
                    self.space.refused(p.cause, 1);
                    Err(copy_err(e))
                }
                None => Ok(appended),
            };
            let _ = reply.send(result);
        }
    }

    /// Syncs each log's file (concurrently) and poisons every log whose
    /// sync failed, so its next append reports the error instead of
    /// acknowledging data the disk may not hold.
    fn sync_or_poison<'a>(&self, files: impl Iterator<Item = (&'a Arc<LogInner>, &'a Arc<File>)>) {
        let (logs, files): (Vec<_>, Vec<_>) = files.map(|(log, f)| (log, f.clone())).unzip();
        let results = self.syncs.sync_data_each(files);
        for (log, result) in logs.into_iter().zip(results) {
            if let Err(source) = result {
                let mut w = log.writer.lock();
                let e = io_error(w.path.clone(), source);
                poison(log, &mut w, &e);
            }
        }
    }

    fn sync_unsynced(&mut self) {
        let logs: Vec<(Arc<LogInner>, Arc<File>)> = self
            .unsynced
            .drain()
            .filter_map(|(_, log)| {
                let w = log.writer.lock();
                let file = (w.poisoned.is_none() && !w.deleted)
                    .then(|| w.file.clone())
                    .flatten();
                drop(w);
                file.map(|f| (log, f))
            })
            .collect();
        self.sync_or_poison(logs.iter().map(|(log, f)| (log, f)));
        self.dirty_since = None;
    }

    /// Whether this round can go to the journal: it has room for `bytes`,
    /// after a checkpoint if it is full or needs a reset.
    fn journal_has_room(&mut self, bytes: usize) -> bool {
        let Some(journal) = &self.journal else {
            return false;
        };
        if journal.has_room(bytes) {
            return true;
        }
        if !journal.could_take(bytes) {
            return false;
        }
        self.checkpoint().is_ok() && self.journal.as_ref().is_some_and(|j| j.has_room(bytes))
    }

    /// Syncs every segment written since the journal's last reset, then
    /// resets it. Without a journal, only syncs.
    fn checkpoint(&mut self) -> Result<()> {
        self.sync_unsynced();
        match &mut self.journal {
            Some(journal) => journal.reset().inspect_err(|e| {
                tracing::warn!(error = %e, "the journal was not reset; appends sync their segments until it is");
            }),
            None => Ok(()),
        }
    }

    /// Closes the active segments of the least recently appended-to logs
    /// beyond what the writer keeps open. A file with writes not yet synced
    /// (fsync=interval or never) is synced first: a write-back error is
    /// reported only to descriptors open when it happens, so a later sync
    /// through a reopened one could miss it.
    fn close_cold_files(&mut self) {
        let cold = self.files.take_coldest();
        if cold.is_empty() {
            return;
        }
        let mut to_sync: Vec<(&Arc<LogInner>, Arc<File>)> = Vec::new();
        for log in &cold {
            if self.unsynced.remove(&(Arc::as_ptr(log) as usize)).is_none() {
                continue;
            }
            let w = log.writer.lock();
            if let Some(file) = &w.file
                && w.poisoned.is_none()
                && !w.deleted
            {
                to_sync.push((log, file.clone()));
            }
        }
        self.sync_or_poison(to_sync.iter().map(|(log, f)| (*log, f)));
        drop(to_sync);
        for log in cold {
            log.writer.lock().file = None;
        }
    }

    /// Runs a control message; returns false when the writer must stop.
    fn control(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Append { .. } => {}
            Msg::Close { log, reply } => {
                let _ = reply.send(self.close(&log));
            }
            Msg::Trim {
                log,
                cutoff_ms,
                reply,
            } => {
                let _ = reply.send(self.trim(&log, cutoff_ms));
            }
            Msg::Delete { log, reply } => {
                let _ = reply.send(self.delete(&log));
            }
            Msg::Shutdown { reply } => {
                // A reset journal needs no replay at the next start. A
                // failed reset loses nothing: the next start replays it.
                let _ = self.checkpoint();
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(()));
                }
                return false;
            }
        }
        true
    }

    /// Seals the active segment (sync, write its index) and starts a new one
    /// whose header records the next sequence number.
    fn roll(&mut self, log: &LogInner, w: &mut WriterSide) -> Result<()> {
        sync_active(w)?;
        let old = log.state.lock().active.clone();
        let mut entries = old.index.read().clone();
        entries.extend_from_slice(&w.pending_index);
        let ix = SegmentIndex {
            first_seq: old.first_seq,
            end_seq: w.next_seq,
            segment_len: w.len,
            last_arrival_ms: w.last_arrival_ms,
            entries,
        };
        segment::write_atomically(
            &log.dir.join(index_file_name(old.first_seq)),
            &format::encode_index(&ix),
        )?;
        let (path, file) = segment::create_segment(&log.dir, w.next_seq)?;
        old.index.write().append(&mut w.pending_index);
        let active = Arc::new(Segment::new(
            &log.shared.read_files,
            path.clone(),
            w.next_seq,
            Vec::new(),
        ));
        {
            let mut st = log.state.lock();
            let mut sealed = Vec::with_capacity(st.sealed.len() + 1);
            sealed.extend(st.sealed.iter().cloned());
            sealed.push(SealedSeg {
                seg: old,
                end_seq: w.next_seq,
                len: w.len,
                last_arrival_ms: w.last_arrival_ms,
            });
            st.sealed = Arc::new(sealed);
            st.active = active;
            st.active_len = SEGMENT_HEADER_LEN;
            st.next_seq = w.next_seq;
            st.last_arrival_ms = w.last_arrival_ms;
        }
        log.notify.notify_waiters();
        // The new file stays open only if the old one was (an append is
        // under way); create_segment synced it, so closing it is safe.
        w.file = w.file.is_some().then(|| Arc::new(file));
        w.path = path;
        w.len = SEGMENT_HEADER_LEN;
        w.indexer = Indexer::default();
        Ok(())
    }

    fn close(&mut self, log: &Arc<LogInner>) -> Result<Option<Seq>> {
        let mut w = log.writer.lock();
        let last = w.next_seq.checked_sub(1);
        if w.deleted {
            return Err(LogError::Deleted {
                name: log.name.clone(),
            });
        }
        if w.closed {
            return Ok(last);
        }
        if w.poisoned.is_some()
            && let Some(e) = self.reopen_if_due(log, &mut w)
        {
            return Err(e);
        }
        // The close is durable, and so is everything appended before it.
        let durable = sync_active(&w).and_then(|()| {
            segment::write_atomically(
                &log.dir.join(CLOSED_FILE),
                &format::encode_closed(w.next_seq),
            )
        });
        if let Err(e) = durable {
            poison(log, &mut w, &e);
            return Err(e);
        }
        w.closed = true;
        // A closed log is never appended to again.
        w.file = None;
        self.files.remove(log);
        self.unsynced.remove(&(Arc::as_ptr(log) as usize));
        log.state.lock().closed = true;
        log.notify.notify_waiters();
        Ok(last)
    }

    fn trim(&mut self, log: &LogInner, cutoff_ms: i64) -> Result<Seq> {
        let mut w = log.writer.lock();
        if w.deleted {
            return Err(LogError::Deleted {
                name: log.name.clone(),
            });
        }
        let expired = |s: &SealedSeg| s.last_arrival_ms.is_none_or(|a| a < cutoff_ms);
        let (all_sealed_expired, active_first) = {
            let st = log.state.lock();
            (st.sealed.iter().all(expired), st.active.first_seq)
        };
        let active_expired =
            w.next_seq > active_first && w.last_arrival_ms.is_some_and(|a| a < cutoff_ms);
        if all_sealed_expired
            && active_expired
            && w.poisoned.is_none()
            && let Err(e) = self.roll(log, &mut w)
        {
            poison(log, &mut w, &e);
            return Err(e);
        }
        let (removed, oldest) = {
            let mut st = log.state.lock();
            let k = st.sealed.iter().take_while(|s| expired(s)).count();
            let removed: Vec<SealedSeg> = st.sealed[..k].to_vec();
            st.sealed = Arc::new(st.sealed[k..].to_vec());
            (
                removed,
                st.sealed
                    .first()
                    .map_or(st.active.first_seq, |s| s.seg.first_seq),
            )
        };
        drop(w);
        if removed.is_empty() {
            return Ok(oldest);
        }
        for s in &removed {
            // Its space is freed once no descriptor is left: close the cached
            // one now rather than when the last reader's snapshot goes.
            s.seg.close_file();
            // Segment first: an index left without its segment at the front
            // of a log is recognised (and removed) as a trim leftover.
            remove_if_exists(&s.seg.path)?;
            remove_if_exists(&log.dir.join(index_file_name(s.seg.first_seq)))?;
        }
        segment::sync_dir(&log.dir)?;
        Ok(oldest)
    }

    fn delete(&mut self, log: &Arc<LogInner>) -> Result<()> {
        if self.journal.as_ref().is_some_and(|j| j.covers(log)) {
            // Replay must never write this log's bytes into a log created
            // later under the same name.
            self.checkpoint()?;
        }
        let mut w = log.writer.lock();
        w.deleted = true;
        w.file = None;
        if let Some(p) = w.poisoned.take() {
            self.space.cleared(p.cause, false);
        }
        let (sealed, active) = {
            let mut st = log.state.lock();
            st.deleted = true;
            (st.sealed.clone(), st.active.clone())
        };
        sealed.iter().for_each(|s| s.seg.close_file());
        active.close_file();
        log.notify.notify_waiters();
        self.unsynced.remove(&(Arc::as_ptr(log) as usize));
        self.files.remove(log);
        drop(w);
        remove_log_dir(&log.dir)
    }
}

/// Syncs the active segment if it is open; a closed one has nothing
/// unsynced (see [`Writer::close_cold_files`]).
fn sync_active(w: &WriterSide) -> Result<()> {
    match &w.file {
        Some(file) => file.sync_data().map_err(io_err(&w.path)),
        None => Ok(()),
    }
}

/// An append found its log's active segment closed; the writer opens it
/// before every append, so this is a bug, reported rather than a panic.
fn not_open(path: &Path) -> LogError {
    LogError::Io {
        path: path.to_path_buf(),
        source: io::Error::other("the active segment is not open for appending"),
    }
}

/// Makes the writer's progress visible to readers and wakes tip waiters.
fn publish(log: &LogInner, w: &mut WriterSide) {
    let mut st = log.state.lock();
    if !w.pending_index.is_empty() {
        st.active.index.write().append(&mut w.pending_index);
    }
    st.next_seq = w.next_seq;
    st.active_len = w.len;
    st.last_arrival_ms = w.last_arrival_ms;
    drop(st);
    log.notify.notify_waiters();
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(LogError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Removes a log's directory and makes the removal durable.
pub(crate) fn remove_log_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(LogError::Io {
                path: dir.to_path_buf(),
                source: e,
            });
        }
        _ => {}
    }
    segment::sync_dir(dir.parent().unwrap_or(Path::new(".")))
}
