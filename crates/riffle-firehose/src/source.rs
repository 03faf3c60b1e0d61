//! KinesisStreamAsSource: a delivery stream reads every shard of its Data
//! Stream in-process, with a consumer's semantics, and appends what it
//! reads to its own log, from which delivery takes it as it takes
//! PutRecordBatch's records.
//!
//! - **Where it starts.** AWS: "Kinesis Data Firehose starts reading data
//!   from the LATEST position of your Kinesis stream" (Developer Guide,
//!   "Writing to Amazon Data Firehose Using Kinesis Data Streams",
//!   <https://docs.aws.amazon.com/firehose/latest/dev/writing-with-kinesis-streams.html>).
//!   LATEST is taken as of the delivery stream's creation (`source.start_ms`
//!   in the catalog): a shard without a checkpoint starts at its first record
//!   that arrived then or later. Being a time, not a position taken when the
//!   task starts, it is the same after a restart that came before the first
//!   checkpoint, so nothing put after the creation is skipped.
//! - **Lineage.** A shard is read only once every parent (split or merge)
//!   was read to its end; shards that later reshards create are found by
//!   looking at the stream again whenever a shard ends, and every
//!   [`DISCOVER_INTERVAL`].
//! - **Nothing lost.** A shard's position is committed (one metadata
//!   transaction, [`checkpoint_op`]) only after the records before it are
//!   durable in the delivery stream's log. A crash re-reads at most the
//!   records of the last batch: at least once, never lost.
//! - **Waiting.** A reader at the tip sleeps on the shard log's
//!   `wait_readable` (woken by the writer at new records, at the close of a
//!   resharded shard, at the deletion of the stream), never polls.
//! - **A deleted source.** As on AWS the delivery stream stays; its reads
//!   fail. The failure is logged once, and the stream looked up again every
//!   [`SOURCE_RETRY`].
//! - **KPL aggregation.** A record in the KPL's aggregated format is
//!   appended as its user records, each with its own partition key and
//!   sub-sequence number, as AWS does: "If you then use that data stream as
//!   a source for your Firehose stream, Amazon Data Firehose de-aggregates
//!   the records before it delivers them to the destination" (Developer
//!   Guide, "Configure source settings for Amazon Kinesis Data Streams", same
//!   page as above; and "Use the KPL with Amazon Data Firehose",
//!   <https://docs.aws.amazon.com/streams/latest/dev/kpl-with-firehose.html>).
//!   Data that only looks aggregated (no magic, a wrong MD5) is one record,
//!   as the KCL reads it.
//!
//! # Record metadata in the delivery stream's log
//!
//! A record read from Kinesis is appended with its data as is (delivery
//! writes the data only) and its Kinesis metadata in the log record's
//! partition-key slot, which DirectPut's records leave empty (see
//! [`SourceMeta`]). It is there for `kinesisRecordMetadata` (the data
//! transformation of a later issue).
//!
//! # Checkpoints
//!
//! Key `firehose/source/<delivery stream incarnation, 16 hex>/<source
//! stream incarnation, 16 hex>/<ShardId>`, value a
//! [`riffle_kinesis::shard_checkpoint::ShardCheckpoint`] (its layout is
//! there): the shard's first record not yet appended, and whether the
//! shard was read to its end. The
//! source stream's incarnation keeps the positions of a deleted stream
//! from applying to a new one of the same name. All of a delivery stream's
//! checkpoints go with it ([`checkpoint_prefix`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use riffle_kinesis::shard_checkpoint::{StreamProgress, ready_shards};
use riffle_kinesis::{Kinesis, ShardReader, StreamShards};
use riffle_log::{LogError, LogStore, MetaOp, ReadLimits, Record, RecordIn, Seq};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

use crate::stream::DeliveryStream;
use crate::time::now_ms;

/// How often the source stream is looked at again for new shards. AWS's
/// Firehose "calls the Kinesis Streams GetRecords operation once per second
/// for each shard" (same page as above); records wake readers at once.
pub const DISCOVER_INTERVAL: Duration = Duration::from_secs(1);
/// How long to wait before trying again a source stream that cannot be
/// read (deleted, not found, a storage failure).
pub const SOURCE_RETRY: Duration = Duration::from_secs(10);
/// Records per read and append: GetRecords' own maximum (`Limit`, 10,000).
/// Tests read in small steps, so that a shard takes many batches and
/// readers of several shards run at once.
const READ_RECORDS_MAX: usize = if cfg!(test) { 25 } else { 10_000 };
/// User records per append: a read's worth of Kinesis records may hold
/// many more once de-aggregated.
const APPEND_RECORDS_MAX: usize = READ_RECORDS_MAX;
/// Bytes per read and append (partition keys and data): one
/// PutRecordBatch's worth (4 MiB), so one batch is one bounded append.
const READ_BYTES_MAX: usize = 4 * 1024 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

const CHECKPOINT_PREFIX: &str = "firehose/source/";
/// The format version byte of [`SourceMeta`].
const META_VERSION: u8 = 1;
/// The slot of a user record de-aggregated from a KPL-aggregated record.
const META_VERSION_USER_RECORD: u8 = 2;

/// A Kinesis record's metadata, as kept in the partition-key slot of its
/// copy in the delivery stream's log:
///
/// ```text
/// byte 0        1, or 2 for a user record of a KPL-aggregated record
///               (format version; DirectPut records leave the slot empty)
/// byte 1        n: the shard id's length
/// n bytes       the shard id (`shardId-000000000000`)
/// 1 byte        m: the sequence number's length
/// m bytes       the sequence number, decimal ASCII
/// 8 bytes       ApproximateArrivalTimestamp, ms since the epoch, i64 LE
/// 8 bytes       version 2 only: the sub-sequence number, u64 LE
/// rest          the partition key (1-256 bytes; a user record's own)
/// ```
///
/// At most 1 + 1 + 255 + 1 + 255 + 8 + 8 + 256 bytes, far under the log's
/// 65,535-byte partition-key limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMeta {
    pub shard_id: String,
    pub sequence_number: String,
    pub arrival_ms: i64,
    /// The user record's index in its KPL-aggregated record; `None` for a
    /// record that was not aggregated.
    pub sub_sequence_number: Option<u64>,
    pub partition_key: Vec<u8>,
}

impl SourceMeta {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            19 + self.shard_id.len() + self.sequence_number.len() + self.partition_key.len(),
        );
        out.push(match self.sub_sequence_number {
            None => META_VERSION,
            Some(_) => META_VERSION_USER_RECORD,
        });
        push_short(&mut out, self.shard_id.as_bytes());
        push_short(&mut out, self.sequence_number.as_bytes());
        out.extend_from_slice(&self.arrival_ms.to_le_bytes());
        if let Some(sub) = self.sub_sequence_number {
            out.extend_from_slice(&sub.to_le_bytes());
        }
        out.extend_from_slice(&self.partition_key);
        out
    }

    /// The metadata of a record appended by a source; `None` for a
    /// DirectPut record (empty slot) or bytes of another layout.
    pub fn decode(slot: &[u8]) -> Option<SourceMeta> {
        let (&version, rest) = slot.split_first()?;
        if version != META_VERSION && version != META_VERSION_USER_RECORD {
            return None;
        }
        let (shard_id, rest) = take_short(rest)?;
        let (sequence_number, rest) = take_short(rest)?;
        let (arrival, mut partition_key) = rest.split_at_checked(8)?;
        let mut sub_sequence_number = None;
        if version == META_VERSION_USER_RECORD {
            let (sub, rest) = partition_key.split_at_checked(8)?;
            sub_sequence_number = Some(u64::from_le_bytes(sub.try_into().ok()?));
            partition_key = rest;
        }
        Some(SourceMeta {
            shard_id: String::from_utf8(shard_id.to_vec()).ok()?,
            sequence_number: String::from_utf8(sequence_number.to_vec()).ok()?,
            arrival_ms: i64::from_le_bytes(arrival.try_into().ok()?),
            sub_sequence_number,
            partition_key: partition_key.to_vec(),
        })
    }
}

/// A length byte and the bytes; shard ids and sequence numbers are far
/// shorter than 255 bytes, and longer ones are cut rather than corrupt the
/// layout.
fn push_short(out: &mut Vec<u8>, bytes: &[u8]) {
    let bytes = &bytes[..bytes.len().min(usize::from(u8::MAX))];
    out.push(bytes.len() as u8);
    out.extend_from_slice(bytes);
}

fn take_short(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len, rest) = b.split_first()?;
    rest.split_at_checked(usize::from(len))
}

/// Where a shard's reading stands: `next` is the first record not yet in
/// the delivery log.
pub use riffle_kinesis::shard_checkpoint::ShardCheckpoint as Checkpoint;

/// Every checkpoint of the delivery stream `incarnation`.
pub fn checkpoint_prefix(incarnation: u64) -> String {
    format!("{CHECKPOINT_PREFIX}{incarnation:016x}/")
}

fn source_prefix(incarnation: u64, source_incarnation: u64) -> String {
    format!(
        "{}{source_incarnation:016x}/",
        checkpoint_prefix(incarnation)
    )
}

pub fn checkpoint_key(incarnation: u64, source_incarnation: u64, shard_id: &str) -> String {
    format!(
        "{}{shard_id}",
        source_prefix(incarnation, source_incarnation)
    )
}

/// The one metadata transaction that commits a shard's position.
pub fn checkpoint_op(
    incarnation: u64,
    source_incarnation: u64,
    shard_id: &str,
    at: Checkpoint,
) -> MetaOp {
    MetaOp::Put {
        key: checkpoint_key(incarnation, source_incarnation, shard_id),
        value: at.encode(),
    }
}

/// The checkpoints stored for one source stream incarnation, by shard id.
/// Unreadable values are skipped (their shard is read again from the
/// start position: more, never less).
pub fn load_checkpoints(
    store: &LogStore,
    incarnation: u64,
    source_incarnation: u64,
) -> Result<BTreeMap<String, Checkpoint>, LogError> {
    let prefix = source_prefix(incarnation, source_incarnation);
    riffle_kinesis::shard_checkpoint::load_checkpoints(store, &prefix)
}

/// The delete operations for every checkpoint of the delivery stream
/// `incarnation` (blocking).
pub fn delete_checkpoints(store: &LogStore, incarnation: u64) -> Result<Vec<MetaOp>, LogError> {
    Ok(store
        .meta()
        .scan_prefix(&checkpoint_prefix(incarnation))?
        .into_iter()
        .map(|(key, _)| MetaOp::Delete { key })
        .collect())
}

/// A running source: dropping `stop` (or sending on it) ends the task,
/// which first ends its shard readers; `task` then resolves.
pub struct SourceTask {
    pub stop: oneshot::Sender<()>,
    pub task: JoinHandle<()>,
}

impl SourceTask {
    /// Ends the task and waits until it and its readers are gone (so that
    /// nothing holds the store any more). Stopping at any await is safe:
    /// what was appended but not checkpointed is read again next time.
    pub async fn stop(self) {
        drop(self.stop);
        let _ = self.task.await;
    }
}

/// Starts reading the source of `stream` (a KinesisStreamAsSource
/// delivery stream) once it is ACTIVE.
pub fn spawn(
    store: Arc<LogStore>,
    kinesis: Arc<Kinesis>,
    stream: Arc<DeliveryStream>,
) -> SourceTask {
    let source = Source {
        store,
        kinesis,
        stream,
        failing: Mutex::new(None),
        behind: Mutex::new(BTreeMap::new()),
    };
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(run(Arc::new(source), stopped));
    SourceTask { stop, task }
}

struct Source {
    store: Arc<LogStore>,
    kinesis: Arc<Kinesis>,
    stream: Arc<DeliveryStream>,
    /// What the source's last failure was, until it reads again: each is
    /// logged once, however long it lasts.
    failing: Mutex<Option<String>>,
    /// Per shard being read: how far behind the tip its last read was.
    behind: Mutex<BTreeMap<String, i64>>,
}

/// The readers of one incarnation of the source stream.
struct Readers {
    source_incarnation: u64,
    done: BTreeSet<String>,
    positions: BTreeMap<String, Checkpoint>,
    running: BTreeSet<String>,
    /// Each reader ends with its shard id, its position and why it ended
    /// (`None`: the shard was read to its end).
    tasks: JoinSet<(String, Seq, Option<LogError>)>,
}

async fn run(source: Arc<Source>, stopped: oneshot::Receiver<()>) {
    let mut readers: Option<Readers> = None;
    tokio::select! {
        () = drive(&source, &mut readers) => {}
        _ = stopped => {}
    }
    if let Some(mut r) = readers {
        r.tasks.shutdown().await;
    }
}

async fn drive(source: &Arc<Source>, readers: &mut Option<Readers>) {
    let until = source.stream.record().status_until_ms;
    let wait = u64::try_from(until.saturating_sub(now_ms())).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(wait)).await;
    loop {
        let shards = match source.kinesis.stream_shards(&source.arn()) {
            Ok(shards) => shards,
            Err(err) => {
                source.failed(&err.to_string());
                *readers = None;
                source.behind.lock().clear();
                tokio::time::sleep(SOURCE_RETRY).await;
                continue;
            }
        };
        if readers
            .as_ref()
            .is_none_or(|r| r.source_incarnation != shards.incarnation)
        {
            match source.load(shards.incarnation).await {
                Ok(loaded) => *readers = Some(loaded),
                Err(err) => {
                    source.failed(&err.to_string());
                    tokio::time::sleep(SOURCE_RETRY).await;
                    continue;
                }
            }
        }
        // Set just above.
        let Some(r) = readers.as_mut() else { continue };
        source.start_ready(r, shards);
        tokio::select! {
            Some(joined) = r.tasks.join_next(), if !r.tasks.is_empty() => {
                if let Err(err) = source.finished(r, joined) {
                    source.failed(&err);
                    tokio::time::sleep(SOURCE_RETRY).await;
                }
            }
            () = tokio::time::sleep(DISCOVER_INTERVAL) => {}
        }
    }
}

impl Source {
    fn arn(&self) -> String {
        self.stream
            .record()
            .source
            .map(|s| s.stream_arn)
            .unwrap_or_default()
    }

    fn name(&self) -> String {
        self.stream.record().name
    }

    fn incarnation(&self) -> u64 {
        self.stream.record().incarnation
    }

    /// Logs a failure once per kind of failure.
    fn failed(&self, what: &str) {
        let mut failing = self.failing.lock();
        if failing.as_deref() != Some(what) {
            warn!(stream = %self.name(), source = %self.arn(), error = %what,
                "the delivery stream's Kinesis source cannot be read; retrying");
            *failing = Some(what.to_owned());
        } else {
            debug!(stream = %self.name(), error = %what, "the Kinesis source still fails");
        }
    }

    fn resumed(&self) {
        if self.failing.lock().take().is_some() {
            info!(stream = %self.name(), "reading the Kinesis source again");
        }
    }

    /// The stored positions of a source stream incarnation (blocking read).
    async fn load(&self, source_incarnation: u64) -> Result<Readers, String> {
        let store = Arc::clone(&self.store);
        let incarnation = self.incarnation();
        let positions = tokio::task::spawn_blocking(move || {
            load_checkpoints(&store, incarnation, source_incarnation)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        Ok(Readers {
            source_incarnation,
            done: positions
                .iter()
                .filter(|(_, at)| at.done)
                .map(|(shard, _)| shard.clone())
                .collect(),
            positions,
            running: BTreeSet::new(),
            tasks: JoinSet::new(),
        })
    }

    /// Starts a reader for every shard not done nor being read whose
    /// parents are all done.
    fn start_ready(self: &Arc<Self>, r: &mut Readers, shards: StreamShards) {
        let start_ms = self.stream.record().source.map_or(0, |s| s.start_ms);
        let progress = StreamProgress {
            done: &r.done,
            positions: &r.positions,
            running: &r.running,
        };
        // Without a checkpoint: LATEST as of the delivery stream's
        // creation (see above).
        let (ready, failed) = ready_shards(shards.shards, progress, |shard| {
            shard.log.seq_at_timestamp(start_ms)
        });
        for err in failed {
            self.failed(&err.to_string());
        }
        for (shard, next) in ready {
            r.running.insert(shard.shard_id.clone());
            let source = Arc::clone(self);
            let incarnation = r.source_incarnation;
            r.tasks.spawn(async move {
                let id = shard.shard_id.clone();
                let mut next = next;
                let ended = source.read_shard(incarnation, shard, &mut next).await;
                (id, next, ended.err())
            });
        }
    }

    /// A reader ended: its shard is done, or it failed (to be started
    /// again at its last checkpoint).
    fn finished(
        &self,
        r: &mut Readers,
        joined: Result<(String, Seq, Option<LogError>), tokio::task::JoinError>,
    ) -> Result<(), String> {
        let (shard, next, failure) = joined.map_err(|e| e.to_string())?;
        r.running.remove(&shard);
        self.behind.lock().remove(&shard);
        match failure {
            None => {
                r.done.insert(shard);
                Ok(())
            }
            Some(err) => {
                // Started again from where it stopped (all of it committed).
                r.positions.insert(shard, Checkpoint { next, done: false });
                Err(err.to_string())
            }
        }
    }

    /// Reads one shard from `next` until its end (a closed shard), appending
    /// each batch to the delivery log and then committing its position.
    async fn read_shard(
        &self,
        source_incarnation: u64,
        shard: ShardReader,
        next: &mut Seq,
    ) -> Result<(), LogError> {
        let limits = ReadLimits {
            records_max: READ_RECORDS_MAX,
            bytes_max: READ_BYTES_MAX,
        };
        loop {
            let batch = shard.log.read(*next, limits)?;
            self.resumed();
            if !batch.records.is_empty() {
                self.append(&shard, &batch.records).await;
            }
            let moved = batch.next_seq != *next || batch.end_of_log;
            if moved {
                let at = Checkpoint {
                    next: batch.next_seq,
                    done: batch.end_of_log,
                };
                self.checkpoint(source_incarnation, &shard.shard_id, at)
                    .await;
            }
            *next = batch.next_seq;
            self.note_progress(&shard, &batch.records);
            if batch.end_of_log {
                return Ok(());
            }
            if batch.records.is_empty() {
                shard.log.wait_readable(*next).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Appends records read from `shard` to the delivery log, with their
    /// metadata; retries with backoff until they are durable.
    async fn append(&self, shard: &ShardReader, records: &[Record]) {
        let users = user_records(shard, records);
        for chunk in users.chunks(APPEND_RECORDS_MAX) {
            let ins: Vec<RecordIn<'_>> = chunk
                .iter()
                .map(|(meta, data)| RecordIn {
                    partition_key: meta,
                    explicit_hash_key: None,
                    data,
                })
                .collect();
            self.append_durably(&ins).await;
        }
    }

    /// Appends one batch; retries with backoff until it is durable.
    async fn append_durably(&self, ins: &[RecordIn<'_>]) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let log = &self.stream.log;
            let appended = match self.stream.data_key() {
                Some(key) => log.append_encrypted(ins, now_ms(), &key).await,
                None => log.append(ins, now_ms()).await,
            };
            match appended {
                Ok(_) => return,
                Err(err) => self.failed(&format!("appending to the delivery stream: {err}")),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Commits a shard's position; retries with backoff until it is.
    async fn checkpoint(&self, source_incarnation: u64, shard_id: &str, at: Checkpoint) {
        let op = checkpoint_op(self.incarnation(), source_incarnation, shard_id, at);
        let mut backoff = BACKOFF_MIN;
        loop {
            let store = Arc::clone(&self.store);
            let ops = [op.clone()];
            match tokio::task::spawn_blocking(move || store.meta().commit(&ops)).await {
                Ok(Ok(())) => return,
                Ok(Err(err)) => self.failed(&format!("committing a checkpoint: {err}")),
                Err(err) => self.failed(&format!("committing a checkpoint: {err}")),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Counts what was read and how far behind the shard's tip it was.
    fn note_progress(&self, shard: &ShardReader, records: &[Record]) {
        let bytes: usize = records.iter().map(|r| r.data.len()).sum();
        let behind = match records.last() {
            Some(last) if last.seq + 1 < shard.log.next_seq() => {
                now_ms().saturating_sub(last.arrival_ms).max(0)
            }
            _ => 0,
        };
        let worst = {
            let mut map = self.behind.lock();
            map.insert(shard.shard_id.clone(), behind);
            map.values().copied().max().unwrap_or(0)
        };
        self.stream
            .metrics
            .read_from_kinesis(records.len() as u64, bytes as u64, worst);
    }
}

/// The user records of `records` (de-aggregated), each with its metadata
/// slot for the delivery log and its data.
fn user_records<'a>(shard: &ShardReader, records: &'a [Record]) -> Vec<(Vec<u8>, &'a [u8])> {
    let mut users = Vec::with_capacity(records.len());
    for record in records {
        let meta = |sub_sequence_number, partition_key: &[u8]| {
            SourceMeta {
                shard_id: shard.shard_id.clone(),
                sequence_number: shard.sequence_number(record.seq, record.arrival_ms),
                arrival_ms: record.arrival_ms,
                sub_sequence_number,
                partition_key: partition_key.to_vec(),
            }
            .encode()
        };
        match riffle_kpl::decode(&record.data) {
            Some(subs) => users.extend(subs.into_iter().map(|sub| {
                let slot = meta(Some(sub.sub_sequence_number), sub.partition_key.as_bytes());
                (slot, sub.data)
            })),
            None => users.push((meta(None, &record.partition_key), &record.data[..])),
        }
    }
    users
}
