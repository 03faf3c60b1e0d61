//! `riffle-log`: Riffle's storage engine.
//!
//! A [`LogStore`] owns one data directory. Inside it live any number of
//! [`ShardLog`]s — durable, append-only logs of records, one per Kinesis shard
//! (and later per Firehose buffer or video stream) — and one [`MetaStore`], a
//! small transactional key/value store for metadata that must change
//! atomically (stream definitions, shard maps).
//!
//! **Architecture Invariant:** this crate knows nothing about Kinesis, HTTP or
//! any wire format. It stores opaque records and hands them back in order.
//!
//! THIS FILE IS THE PUBLIC CONTRACT other crates are written against; the
//! bodies delegate to the modules that implement it: [`format`] (every
//! on-disk byte layout), `segment` (segment files and scanning), `log`
//! (one log's state, recovery and reads), `writer` (the group-commit writer
//! thread), `meta` (redb) and `store` (the data directory).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

mod files;
#[doc(hidden)]
pub mod format;
mod journal;
mod keys;
mod log;
mod meta;
mod segment;
mod space;
mod store;
mod syncs;
mod writer;

/// A per-log sequence number: assigned by the log at append, strictly
/// increasing within one log, never reused — also across crashes and restarts.
/// The first record of a new log gets `0`.
pub type Seq = u64;

/// When appended bytes are forced to stable storage. Chosen per server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// An append is acknowledged only after its bytes are on disk
    /// (`fdatasync`). Concurrent appends share one sync (group commit).
    Always,
    /// Appends are acknowledged once written to the OS; the store syncs at
    /// least this often. A machine crash may lose the last interval.
    Interval(Duration),
    /// Appends are acknowledged once written to the OS; syncing is left to
    /// the OS. A process crash loses nothing, a machine crash may.
    Never,
}

/// Settings for a [`LogStore`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub fsync: FsyncPolicy,
    /// A segment is sealed and a new one started once it reaches this size.
    pub segment_bytes_max: u64,
    /// The most segment files the store keeps open at once (default
    /// [`OPEN_FILES_MAX_DEFAULT`], at least [`OPEN_FILES_MIN`]): half for
    /// readers, half for the writer's active segments, each the least
    /// recently used out. The number of logs is not limited by it: a log
    /// whose files are closed reopens them when it is next read or
    /// appended to. Its own descriptors come on top (the lock file, the
    /// metadata store).
    pub open_files_max: usize,
    /// Under [`FsyncPolicy::Always`]: the size of the store's journal,
    /// which makes a group-commit round of small appends durable with one
    /// sync however many logs it wrote (default
    /// [`JOURNAL_BYTES_DEFAULT`]); `0` turns it off, so that every round
    /// syncs each segment file it wrote. A journal left by an earlier run
    /// is replayed at open either way.
    pub journal_bytes_max: u64,
    /// Appends are refused ([`LogError::DiskFreeBelowMin`]) while the data
    /// directory's filesystem has less than this many bytes free (default
    /// [`DISK_FREE_MIN_DEFAULT`]); `0` turns the floor off. The space it
    /// keeps is for the writes that must not fail half-way: the journal,
    /// metadata commits, closing and sealing logs.
    pub disk_free_min: u64,
}

/// The journal's default size: at 30,000 small appends a second it fills in
/// a few seconds, so checkpoints (one sync per written log) are rare, and
/// replaying it after a crash reads at most this much.
pub const JOURNAL_BYTES_DEFAULT: u64 = 16 * 1024 * 1024;

/// The default free-space floor. What can be written after free space was
/// last measured must fit below it: the journal growing to its full
/// [`JOURNAL_BYTES_DEFAULT`] on its first pass, the bytes written between
/// two measurements (see `space`: at most 1 MiB plus the round in
/// progress), and the metadata store's copy-on-write commits, which need
/// free pages for a transaction (a few MiB when its file grows). 64 MiB
/// covers them with room to spare and is nothing on any real disk.
pub const DISK_FREE_MIN_DEFAULT: u64 = 64 * 1024 * 1024;

pub use files::{OPEN_FILES_MAX_DEFAULT, OPEN_FILES_MIN};

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            fsync: FsyncPolicy::Always,
            segment_bytes_max: 128 * 1024 * 1024,
            open_files_max: OPEN_FILES_MAX_DEFAULT,
            journal_bytes_max: JOURNAL_BYTES_DEFAULT,
            disk_free_min: DISK_FREE_MIN_DEFAULT,
        }
    }
}

/// Everything that can go wrong in the engine. Every variant that concerns a
/// file names it.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A write or sync failed because the filesystem is full (`ENOSPC`) or
    /// the user's quota is used up (`EDQUOT`); `source` keeps the OS error.
    #[error("the disk is full: no space left for {path}: {source}")]
    DiskFull {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The append was refused before anything was written: the data
    /// directory's filesystem has less free space than
    /// [`StoreConfig::disk_free_min`]. Appends are taken again once space
    /// is freed.
    #[error(
        "the disk is full: {free} bytes free on the filesystem of {dir}, below the floor of {min} bytes kept for the journal and metadata; free space to resume writes"
    )]
    DiskFreeBelowMin { dir: PathBuf, free: u64, min: u64 },
    #[error("corrupt data in {path} at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: &'static str,
    },
    #[error("unsupported format version {found} in {path}")]
    UnsupportedVersion { path: PathBuf, found: u32 },
    /// The log was closed (e.g. its shard was split); no more appends.
    #[error("log {name} is closed")]
    Closed { name: String },
    /// A previous write or sync of this log failed; it refuses writes until
    /// it has been reopened from its files (which it does by itself, on an
    /// append after a backoff, once there is free space again; see the
    /// crate's README).
    #[error(
        "log {name} refuses writes after {cause}; it reopens itself from disk once writes can succeed again"
    )]
    Poisoned { name: String, cause: FailureCause },
    #[error("log {name} was deleted")]
    Deleted { name: String },
    #[error("metadata store error: {0}")]
    Meta(String),
    #[error("invalid log name {0:?}")]
    InvalidName(String),
    /// A record field or a whole batch is over the engine's limit (see
    /// [`format`]); nothing was written.
    #[error("{field} is {len} bytes, over the engine's limit of {max}")]
    TooLarge {
        field: &'static str,
        len: usize,
        max: usize,
    },
}

/// What made a log refuse writes ([`LogError::Poisoned`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// A write or sync failed with `ENOSPC` or `EDQUOT`.
    DiskFull,
    /// Any other I/O failure.
    Io,
}

impl std::fmt::Display for FailureCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailureCause::DiskFull => "the disk was full",
            FailureCause::Io => "an I/O failure",
        })
    }
}

impl LogError {
    /// Whether this error means the disk is (or was) full, rather than
    /// another failure.
    pub fn is_disk_full(&self) -> bool {
        matches!(
            self,
            LogError::DiskFull { .. }
                | LogError::DiskFreeBelowMin { .. }
                | LogError::Poisoned {
                    cause: FailureCause::DiskFull,
                    ..
                }
        )
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// One record to append. Borrowed: the engine copies it into its write
/// buffer exactly once.
#[derive(Debug, Clone, Copy)]
pub struct RecordIn<'a> {
    /// 1–256 bytes in Kinesis; the engine accepts up to 64 KiB - 1 (65,535 bytes).
    pub partition_key: &'a [u8],
    pub explicit_hash_key: Option<&'a [u8]>,
    /// 0 to 10 MiB.
    pub data: &'a [u8],
}

/// One record read back. The `Bytes` fields are slices of one shared read
/// buffer: no allocation or copy per record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub seq: Seq,
    /// Approximate arrival time, ms since the Unix epoch. Non-decreasing
    /// within a log.
    pub arrival_ms: i64,
    pub partition_key: Bytes,
    pub explicit_hash_key: Option<Bytes>,
    pub data: Bytes,
    /// The record was stored encrypted (appended with
    /// [`ShardLog::append_encrypted`]); it was decrypted for this read.
    pub encrypted: bool,
}

/// The outcome of a successful (durable, per the fsync policy) append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The i-th record of the batch got `first_seq + i`.
    pub first_seq: Seq,
    /// The arrival time stored for every record of the batch:
    /// `max(now_ms given, last arrival in this log)`.
    pub arrival_ms: i64,
}

/// Caps on one read. At least one record is returned when any is readable,
/// even if it alone exceeds `bytes_max`, so a reader always makes progress.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    pub records_max: usize,
    /// Counted over partition key + data bytes.
    pub bytes_max: usize,
}

/// The result of a read.
#[derive(Debug, Clone, Default)]
pub struct ReadBatch {
    pub records: Vec<Record>,
    /// Where the next read should start.
    pub next_seq: Seq,
    /// The log is closed and `next_seq` is past its last record: there will
    /// never be more.
    pub end_of_log: bool,
}

/// Owns a data directory: its shard logs, its metadata store and the writer
/// threads that do all appends and syncs (group commit).
pub struct LogStore {
    inner: store::StoreInner,
    meta: MetaStore,
    dir: PathBuf,
}

impl LogStore {
    /// Opens (creating if needed) the store in `dir`. Recovery of each log
    /// happens when it is opened with [`LogStore::open_log`].
    pub fn open(dir: &Path, config: StoreConfig) -> Result<LogStore> {
        let (inner, meta) = store::StoreInner::open(dir, config)?;
        Ok(LogStore {
            inner,
            meta: MetaStore { inner: meta },
            dir: dir.to_path_buf(),
        })
    }

    /// The data directory, for a service that keeps a file of its own
    /// beside the store's (the DynamoDB subset's journal).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The metadata store of this data directory.
    pub fn meta(&self) -> &MetaStore {
        &self.meta
    }

    /// How many segment files the store's caches hold open right now
    /// (never more than [`StoreConfig::open_files_max`]; a read in progress
    /// may briefly keep one more that was evicted under it). For tests and
    /// metrics.
    pub fn open_files(&self) -> usize {
        self.inner.open_files()
    }

    /// Opens the log called `name`, creating it if it does not exist, and
    /// recovering it (truncating a torn tail) if it does. Names are
    /// `[A-Za-z0-9._-]{1,200}` path segments joined by `/`. Opening a log
    /// that is already open returns a handle to the same log.
    pub fn open_log(&self, name: &str) -> Result<ShardLog> {
        self.inner.open_log(name).map(|inner| ShardLog { inner })
    }

    /// The data key called `name` (any non-empty string up to 4,096 bytes,
    /// e.g. the API's KeyId), created on first use: 32 random bytes, stored
    /// in the metadata store wrapped by the master key. The master key is
    /// `<dir>/keys/master.key` (or the file given to
    /// [`LogStore::set_master_key_file`]); it is created (32 random bytes,
    /// mode 0600) only while the store has no data key yet. A missing master
    /// key is `Io { path: <the key file>, NotFound }`, a wrong one
    /// `Corrupt { path: <the key file> }`. Blocking (a metadata commit the
    /// first time); cached afterwards.
    pub fn data_key(&self, name: &str) -> Result<DataKey> {
        self.inner.keys().get_or_create(name)
    }

    /// Uses `path` as the master key file instead of
    /// `<dir>/keys/master.key`. Call it right after [`LogStore::open`],
    /// before any encrypted batch is written or read.
    pub fn set_master_key_file(&self, path: &Path) {
        self.inner.keys().set_master_path(path)
    }

    /// Deletes a log and all its files. Open handles then fail with
    /// [`LogError::Deleted`]; waiters are woken.
    pub fn delete_log(&self, name: &str) -> Result<()> {
        self.inner.delete_log(name)
    }

    /// The state of the data directory's disk and of the logs that refuse
    /// writes, for metrics. Reads atomics only.
    pub fn storage_stats(&self) -> StorageStats {
        self.inner.storage_stats()
    }

    /// Changes [`StoreConfig::disk_free_min`] of the open store (free
    /// space is measured again at once).
    pub fn set_disk_free_min(&self, bytes: u64) {
        self.inner.set_disk_free_min(bytes)
    }

    /// Waits for every acknowledged or in-flight append to be synced, then
    /// stops the writer threads. Later appends fail.
    pub async fn shutdown(&self) -> Result<()> {
        self.inner.shutdown().await
    }
}

/// What [`LogStore::storage_stats`] reports. Free space is the value last
/// measured (see the README: after every MiB written, every second while
/// writing, and on an append while the disk is below its floor).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Bytes available to the server on the data directory's filesystem.
    pub disk_free_bytes: u64,
    /// [`StoreConfig::disk_free_min`].
    pub disk_free_min_bytes: u64,
    /// Free space is below the floor, or a log refuses writes because a
    /// write found the disk full.
    pub disk_full: bool,
    /// Logs refusing writes now, because the disk was full / for another
    /// I/O failure.
    pub logs_refusing_disk_full: u64,
    pub logs_refusing_io: u64,
    /// Appends refused since the store opened: free space below the floor
    /// (nothing written), or the log refusing writes after a failure
    /// (including the appends that failure itself failed).
    pub appends_refused_disk_full: u64,
    pub appends_refused_io: u64,
    /// Logs reopened in place after a failure since the store opened.
    pub logs_reopened: u64,
}

/// A data key of the store's key ring, for [`ShardLog::append_encrypted`].
/// Cheap to clone. Its key bytes never leave the engine.
#[derive(Clone)]
pub struct DataKey {
    id: u32,
    name: Arc<str>,
    cipher: Arc<aes_gcm::Aes256Gcm>,
}

impl DataKey {
    /// The name it was asked for with [`LogStore::data_key`].
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key bytes.
        f.debug_struct("DataKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish()
    }
}

/// A handle to one log. Cheap to clone; all clones share the same log.
#[derive(Clone)]
pub struct ShardLog {
    inner: Arc<log::LogInner>,
}

impl ShardLog {
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Appends a batch atomically: after a crash it is wholly present or
    /// wholly absent. Resolves once the batch is durable per the store's
    /// fsync policy; only then do readers see it. `now_ms` is the caller's
    /// clock (ms since the epoch) so tests can control time.
    pub async fn append(&self, records: &[RecordIn<'_>], now_ms: i64) -> Result<Appended> {
        self.inner.append(records, now_ms).await
    }

    /// Like [`ShardLog::append`], but the batch's records are stored
    /// encrypted with AES-256-GCM under `key` (see [`LogStore::data_key`]);
    /// reads decrypt them transparently and mark them
    /// [`Record::encrypted`]. A batch that fails authentication on read is
    /// `Corrupt`, never returned.
    pub async fn append_encrypted(
        &self,
        records: &[RecordIn<'_>],
        now_ms: i64,
        key: &DataKey,
    ) -> Result<Appended> {
        self.inner.append_with(records, now_ms, Some(key)).await
    }

    /// Reads committed records with `seq >= from`. A `from` below
    /// [`ShardLog::oldest_seq`] (trimmed by retention) starts at the oldest
    /// record. Costs O(log n) plus one small read to find the start.
    pub fn read(&self, from: Seq, limits: ReadLimits) -> Result<ReadBatch> {
        self.inner.read(from, limits)
    }

    /// The sequence number the next appended record will get; every record
    /// below it is committed and readable (unless trimmed).
    pub fn next_seq(&self) -> Seq {
        self.inner.next_seq()
    }

    /// The oldest record still retained; equals [`ShardLog::next_seq`] when
    /// the log holds no records.
    pub fn oldest_seq(&self) -> Seq {
        self.inner.oldest_seq()
    }

    /// The first retained seq whose arrival time is `>= at_ms`, or
    /// `next_seq()` if there is none. O(log n).
    pub fn seq_at_timestamp(&self, at_ms: i64) -> Result<Seq> {
        self.inner.seq_at_timestamp(at_ms)
    }

    /// Arrival time of the newest committed record, if any.
    pub fn last_arrival_ms(&self) -> Option<i64> {
        self.inner.last_arrival_ms()
    }

    /// Resolves as soon as a record with `seq >= from` is committed, or the
    /// log is closed or deleted. Woken by the writer, never by polling.
    pub async fn wait_readable(&self, from: Seq) {
        self.inner.wait_readable(from).await
    }

    /// Closes the log after every append already submitted. Durable.
    /// Returns the seq of its last record (`None` if it never had one).
    /// Closing a closed log returns the same answer.
    pub async fn close(&self) -> Result<Option<Seq>> {
        self.inner.close().await
    }

    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Deletes every whole segment whose newest record arrived before
    /// `cutoff_ms` (the active segment is sealed first if it qualifies).
    /// Returns the new oldest seq. Records are never deleted one by one.
    pub fn trim_before(&self, cutoff_ms: i64) -> Result<Seq> {
        self.inner.trim_before(cutoff_ms)
    }
}

/// A transactional key/value store for metadata, on redb. Keys are UTF-8
/// strings, values opaque bytes. Every [`MetaStore::commit`] is atomic and
/// durable when it returns.
pub struct MetaStore {
    inner: Arc<meta::Meta>,
}

/// One change in an atomic metadata commit.
#[derive(Debug, Clone)]
pub enum MetaOp {
    Put { key: String, value: Vec<u8> },
    Delete { key: String },
}

impl MetaStore {
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get(key)
    }

    /// Every entry whose key starts with `prefix`, in key order.
    pub fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.inner.scan_prefix(prefix)
    }

    /// Applies all `ops` atomically and durably (blocking; fast, but call from
    /// `spawn_blocking` on hot paths). It also makes durable every
    /// [`MetaStore::commit_eventual`] before it, so `commit(&[])` is a
    /// checkpoint.
    pub fn commit(&self, ops: &[MetaOp]) -> Result<()> {
        self.inner.commit(ops, true)
    }

    /// Applies all `ops` atomically and visibly at once, but durably only
    /// with the next [`MetaStore::commit`] (by anyone): a crash before that
    /// loses them, never part of them. No sync; for a caller that keeps its
    /// own durable record of `ops` until that next commit (the DynamoDB
    /// subset's journal).
    pub fn commit_eventual(&self, ops: &[MetaOp]) -> Result<()> {
        self.inner.commit(ops, false)
    }
}
