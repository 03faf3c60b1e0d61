//! The pollers: an enabled mapping reads every shard of its stream, in
//! batches, and invokes its function with Lambda's Kinesis event.
//!
//! - **Lineage.** A shard is read only once its parents (split or merge)
//!   were processed to their end; new shards are found when a shard ends
//!   and every [`DISCOVER_INTERVAL`], as Firehose's Kinesis source does.
//! - **Where it starts.** A shard without a position starts at
//!   `StartingPosition`: `TRIM_HORIZON` its oldest record, `AT_TIMESTAMP`
//!   its first record at or after the timestamp, `LATEST` its first record
//!   that arrived at or after the mapping's creation (a time, so that a
//!   restart before the first checkpoint skips nothing put since).
//! - **Batches.** Up to `BatchSize` records; with
//!   `MaximumBatchingWindowInSeconds`, the batch waits for more records
//!   until it is full or the window since its first record has passed.
//! - **Nothing skipped.** A shard's position is committed after the
//!   function took the records before it, or after they were discarded as
//!   Lambda discards them (retries exhausted, too old). A restart re-reads
//!   at most the batch in flight.
//! - **Errors.** A function error or an unreadable partial-batch answer is
//!   retried (with backoff) until `MaximumRetryAttempts` or
//!   `MaximumRecordAgeInSeconds`; `BisectBatchOnFunctionError` halves the
//!   failed batch first (halving does not use a retry), and
//!   `ReportBatchItemFailures` resumes at the failed record of lowest
//!   sequence number. A discarded batch's invocation record goes to
//!   `DestinationConfig.OnFailure` (a Kinesis stream, or an embedded S3
//!   bucket with the event as `payload`). A function that cannot be reached
//!   is retried without counting, until the records are too old.
//! - **ParallelizationFactor.** A batch of up to `BatchSize` ×
//!   factor records is split into that many lanes by partition key; the
//!   lanes are invoked concurrently, each in order, and the shard's
//!   position moves once every lane is done.
//! - **Tumbling windows** (see `window`): batches hold one window's
//!   records; the shard's open window and its state are committed with its
//!   position, and a closed window gets its final invocation before the
//!   next window's first.
//! - **KPL aggregation.** An aggregated record is given to the function as
//!   its user records (issue 17), each with the Kinesis record's sequence
//!   number.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use riffle_kinesis::shard_checkpoint::{StreamProgress, ready_shards};
use riffle_kinesis::{Kinesis, ShardReader, StreamShards};
use riffle_lambda::{Functions, LambdaError};
use riffle_log::{LogError, LogStore, ReadLimits, Record, Seq};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

use crate::checkpoint::{self, Checkpoint};
use crate::event::{self, Answer, Condition, FailureRecord, LastResponse, Rec};
use crate::filter::Filters;
use crate::mapping::{Mapping, State};
use crate::window::{self, OpenWindow};

/// How often the stream is looked at again for new shards: Lambda "polls
/// each shard in your Kinesis stream for records at a base rate of once
/// per second"; new records wake a reader at once.
pub const DISCOVER_INTERVAL: Duration = Duration::from_secs(1);
/// How long to wait before looking again at a stream that cannot be read.
pub const SOURCE_RETRY: Duration = Duration::from_secs(5);
/// Bytes of record data per batch: with base64 (4/3) and each record's
/// JSON, a full batch stays under the invoke payload limit (6 MB); a batch
/// that does not is halved before it is sent.
const BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The largest record a read may add (Kinesis's record limit, 1 MiB), so a
/// batch near [`BATCH_BYTES_MAX`] counts as full.
const RECORD_BYTES_MAX: usize = 1024 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Tries to deliver one invocation record to its destination before it is
/// logged and dropped (a missing destination must not stop the shard).
const DESTINATION_ATTEMPTS: u32 = 5;

/// What every poller uses.
pub struct Shared {
    pub store: Arc<LogStore>,
    pub kinesis: Arc<Kinesis>,
    pub functions: Functions,
    /// The embedded S3, for bucket destinations (set at start).
    pub s3: OnceLock<Arc<riffle_s3::S3>>,
    pub region: String,
    pub account_id: String,
}

/// Lambda's `LastProcessingResult` of a mapping, as its poller last set it.
pub type Status = Arc<Mutex<String>>;

/// The status before any batch.
pub const NO_RECORDS: &str = "No records processed";
const OK: &str = "OK";
const FUNCTION_FAILED: &str = "PROBLEM: Function call failed";

/// A running poller: stopping it ends its readers at their next await;
/// what was in flight is read again by the next poller.
pub struct PollerTask {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl PollerTask {
    pub async fn stop(self) {
        drop(self.stop);
        let _ = self.task.await;
    }
}

/// Starts the poller of `mapping` once `previous` (its former poller) has
/// stopped; a disabled mapping's task only waits for that.
pub fn spawn(
    shared: Arc<Shared>,
    mapping: Mapping,
    status: Status,
    previous: Option<PollerTask>,
) -> PollerTask {
    let (stop, stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        if let Some(previous) = previous {
            previous.stop().await;
        }
        if mapping.state != State::Enabled {
            return;
        }
        let poller = Arc::new(Poller::new(shared, mapping, status));
        let mut readers = None;
        tokio::select! {
            () = poller.drive(&mut readers) => {}
            _ = stopped => {}
        }
        if let Some(mut r) = readers {
            r.tasks.shutdown().await;
        }
    });
    PollerTask { stop, task }
}

struct Poller {
    shared: Arc<Shared>,
    mapping: Mapping,
    source: event::Source,
    filters: Filters,
    status: Status,
    /// The last failure, logged once however long it lasts.
    failing: Mutex<Option<String>>,
}

/// The readers of one incarnation of the stream.
struct Readers {
    incarnation: u64,
    done: BTreeSet<String>,
    positions: BTreeMap<String, Checkpoint>,
    running: BTreeSet<String>,
    /// Each ends with its shard id, its position and why it ended (`None`:
    /// the shard was processed to its end).
    tasks: JoinSet<(String, Seq, Option<LogError>)>,
}

/// A part of a batch, with the invocations it has had.
struct Piece {
    records: Vec<Rec>,
    invokes: u32,
}

/// How one invocation went.
enum Outcome {
    Done,
    /// Resume at this index (ReportBatchItemFailures).
    Partial(usize, LastResponse),
    Failed(LastResponse),
    /// The event is over the payload limit: halve the batch.
    TooLarge,
    /// The function could not be reached: try again, not counted.
    Unavailable,
}

impl Poller {
    fn new(shared: Arc<Shared>, mapping: Mapping, status: Status) -> Poller {
        let stream_arn = stream_of(&mapping.event_source_arn).to_owned();
        let source = event::Source {
            region: shared.region.clone(),
            stream_arn,
            identity_arn: format!("arn:aws:iam::{}:role/riffle", shared.account_id),
        };
        let filters = Filters::new(mapping.filter_criteria.as_ref());
        Poller {
            shared,
            mapping,
            source,
            filters,
            status,
            failing: Mutex::new(None),
        }
    }

    fn uuid(&self) -> &str {
        &self.mapping.uuid
    }

    async fn drive(self: &Arc<Self>, readers: &mut Option<Readers>) {
        loop {
            let shards = match self.shared.kinesis.stream_shards(&self.source.stream_arn) {
                Ok(shards) => shards,
                Err(err) => {
                    self.failed(&err.to_string());
                    if let Some(mut r) = readers.take() {
                        r.tasks.shutdown().await;
                    }
                    tokio::time::sleep(SOURCE_RETRY).await;
                    continue;
                }
            };
            if readers
                .as_ref()
                .is_none_or(|r| r.incarnation != shards.incarnation)
            {
                match self.load(shards.incarnation).await {
                    Ok(loaded) => *readers = Some(loaded),
                    Err(err) => {
                        self.failed(&err);
                        tokio::time::sleep(SOURCE_RETRY).await;
                        continue;
                    }
                }
            }
            // Set just above.
            let Some(r) = readers.as_mut() else { continue };
            self.start_ready(r, shards);
            tokio::select! {
                Some(joined) = r.tasks.join_next(), if !r.tasks.is_empty() => {
                    if let Err(err) = finished(r, joined) {
                        self.failed(&err);
                        tokio::time::sleep(SOURCE_RETRY).await;
                    }
                }
                () = tokio::time::sleep(DISCOVER_INTERVAL) => {}
            }
        }
    }

    /// Logs a failure once per kind.
    fn failed(&self, what: &str) {
        let mut failing = self.failing.lock();
        if failing.as_deref() != Some(what) {
            warn!(mapping = %self.uuid(), source = %self.source.stream_arn, error = %what,
                "the event source mapping cannot read its stream; retrying");
            *failing = Some(what.to_owned());
        } else {
            debug!(mapping = %self.uuid(), error = %what, "the stream still cannot be read");
        }
    }

    fn resumed(&self) {
        if self.failing.lock().take().is_some() {
            info!(mapping = %self.uuid(), "the event source mapping reads its stream again");
        }
    }

    async fn load(&self, incarnation: u64) -> Result<Readers, String> {
        let store = Arc::clone(&self.shared.store);
        let uuid = self.uuid().to_owned();
        let positions =
            tokio::task::spawn_blocking(move || checkpoint::load(&store, &uuid, incarnation))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        Ok(Readers {
            incarnation,
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

    /// Where a shard without a position starts.
    fn start_of(&self, shard: &ShardReader) -> Result<Seq, LogError> {
        let at_ms = match self.mapping.starting_position.as_str() {
            "LATEST" => (self.mapping.created() * 1000.0) as i64,
            "AT_TIMESTAMP" => {
                (self.mapping.starting_position_timestamp.unwrap_or(0.0) * 1000.0) as i64
            }
            _ => return Ok(shard.log.oldest_seq()),
        };
        shard.log.seq_at_timestamp(at_ms)
    }

    /// Starts a reader for every shard not done nor being read whose
    /// parents are all done.
    fn start_ready(self: &Arc<Self>, r: &mut Readers, shards: StreamShards) {
        let progress = StreamProgress {
            done: &r.done,
            positions: &r.positions,
            running: &r.running,
        };
        let (ready, failed) = ready_shards(shards.shards, progress, |shard| self.start_of(shard));
        for err in failed {
            self.failed(&err.to_string());
        }
        for (shard, next) in ready {
            r.running.insert(shard.shard_id.clone());
            let poller = Arc::clone(self);
            let incarnation = r.incarnation;
            r.tasks.spawn(async move {
                let id = shard.shard_id.clone();
                let mut next = next;
                let ended = poller.read_shard(incarnation, shard, &mut next).await;
                (id, next, ended.err())
            });
        }
    }

    /// Processes one shard from `next` to its end (a closed shard).
    async fn read_shard(
        self: &Arc<Self>,
        incarnation: u64,
        shard: ShardReader,
        next: &mut Seq,
    ) -> Result<(), LogError> {
        if self.window_ms().is_some() {
            return self.read_windowed(incarnation, shard, next).await;
        }
        loop {
            let (records, to, end) = self.collect(&shard, *next, None).await?;
            self.resumed();
            let recs = self.records_for(&shard, &records);
            if !recs.is_empty() {
                self.process_lanes(incarnation, &shard.shard_id, recs).await;
            }
            if to != *next || end {
                let at = Checkpoint {
                    next: to,
                    done: end,
                };
                self.checkpoint(incarnation, &shard.shard_id, at).await;
            }
            *next = to;
            if end {
                return Ok(());
            }
        }
    }

    /// `TumblingWindowInSeconds` in ms, when windows are on.
    fn window_ms(&self) -> Option<i64> {
        self.mapping
            .tumbling_window_in_seconds
            .filter(|&s| s > 0)
            .map(|s| s * 1000)
    }

    /// The records of a read that go to the function: de-aggregated, then
    /// filtered.
    fn records_for(&self, shard: &ShardReader, records: &[Record]) -> Vec<Rec> {
        let recs = self.user_records(shard, records);
        recs.into_iter()
            .filter(|r| self.filters.matches(r))
            .collect()
    }

    /// Processes one shard with tumbling windows: one lane, each window's
    /// batches in turn, the open window committed with the position.
    async fn read_windowed(
        &self,
        incarnation: u64,
        shard: ShardReader,
        next: &mut Seq,
    ) -> Result<(), LogError> {
        let length_ms = self.window_ms().unwrap_or(1000);
        let shard_id = shard.shard_id.clone();
        let mut open = self.load_window(incarnation, &shard_id).await;
        loop {
            let until = open.as_ref().map(|w| w.start_ms + length_ms);
            let (records, to, end) = self.collect(&shard, *next, until).await?;
            self.resumed();
            let recs = self.records_for(&shard, &records);
            let mut rest = recs.as_slice();
            while let Some(first) = rest.first() {
                let start = window::start_of(first.arrival_ms, length_ms);
                let len = rest
                    .iter()
                    .take_while(|r| window::start_of(r.arrival_ms, length_ms) == start)
                    .count();
                if open.as_ref().is_some_and(|w| w.start_ms != start) {
                    self.close_window(&shard_id, open.take()).await;
                }
                let current = open.get_or_insert_with(|| OpenWindow::new(start));
                // A read holds up to BatchSize × ParallelizationFactor
                // records; a window's invocations take BatchSize at most.
                for batch in rest[..len].chunks(self.batch_size()) {
                    let batch = batch.to_vec();
                    self.process(None, &shard_id, batch, Some(&mut *current))
                        .await;
                }
                rest = &rest[len..];
            }
            // A window ends by the clock only once a read finds nothing
            // more: a reader behind the tip (a slow function, a busy
            // machine) still has records of it to read, and they belong
            // in it, not in a second window with the same start.
            let drained = records.is_empty();
            if open
                .as_ref()
                .is_some_and(|w| end || (drained && now_ms() >= w.start_ms + length_ms))
            {
                self.close_window(&shard_id, open.take()).await;
            }
            let at = Checkpoint {
                next: to,
                done: end,
            };
            let ops = [
                checkpoint::put(self.uuid(), incarnation, &shard_id, at),
                window::op(self.uuid(), incarnation, &shard_id, open.as_ref()),
            ];
            self.commit(&ops).await;
            *next = to;
            if end {
                return Ok(());
            }
        }
    }

    /// The window a shard had open when its position was last committed.
    async fn load_window(&self, incarnation: u64, shard_id: &str) -> Option<OpenWindow> {
        let store = Arc::clone(&self.shared.store);
        let key = window::key(self.uuid(), incarnation, shard_id);
        let read = tokio::task::spawn_blocking(move || store.meta().get(&key)).await;
        match read {
            Ok(Ok(Some(value))) => OpenWindow::decode(&value),
            _ => None,
        }
    }

    /// The final invocation of a closed window: retried until it succeeds
    /// (Lambda pauses the shard until it does), or until the retries are
    /// used up.
    async fn close_window(&self, shard_id: &str, open: Option<OpenWindow>) {
        let Some(mut open) = open else { return };
        let mut backoff = BACKOFF_MIN;
        let mut invokes = 0i64;
        loop {
            invokes += 1;
            match self.invoke(shard_id, &[], Some(&mut open), true).await {
                Outcome::Done => return,
                _ if self.mapping.maximum_retry_attempts >= 0
                    && invokes > self.mapping.maximum_retry_attempts =>
                {
                    warn!(mapping = %self.uuid(), shard = shard_id,
                        "a window's final invocation failed every retry; its state is dropped");
                    return;
                }
                _ => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Reads a batch from `from`: waits for a first record (until
    /// `until_ms` at most, then answers none), then, within the batching
    /// window, for the batch to fill. Returns the records, the position
    /// after them, and whether the shard ended there.
    async fn collect(
        &self,
        shard: &ShardReader,
        from: Seq,
        until_ms: Option<i64>,
    ) -> Result<(Vec<Record>, Seq, bool), LogError> {
        let factor = usize::try_from(self.mapping.parallelization_factor.max(1)).unwrap_or(1);
        let size = self.batch_size() * factor;
        let window = Duration::from_secs(
            u64::try_from(self.mapping.maximum_batching_window_in_seconds).unwrap_or(0),
        );
        let (mut records, mut bytes, mut next) = (Vec::new(), 0usize, from);
        let mut deadline = None;
        loop {
            let limits = ReadLimits {
                records_max: size - records.len(),
                bytes_max: BATCH_BYTES_MAX - bytes,
            };
            let read = shard.log.read(next, limits)?;
            next = read.next_seq;
            bytes += read.records.iter().map(|r| r.data.len()).sum::<usize>();
            records.extend(read.records);
            let full = records.len() >= size || bytes + RECORD_BYTES_MAX > BATCH_BYTES_MAX;
            if read.end_of_log || full {
                return Ok((records, next, read.end_of_log));
            }
            if records.is_empty() {
                match until_ms {
                    Some(at) => {
                        let wait = u64::try_from(at - now_ms()).unwrap_or(0);
                        let until = tokio::time::Instant::now() + Duration::from_millis(wait);
                        if tokio::time::timeout_at(until, shard.log.wait_readable(next))
                            .await
                            .is_err()
                        {
                            return Ok((records, next, false));
                        }
                    }
                    None => shard.log.wait_readable(next).await,
                }
                continue;
            }
            let until = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + window);
            if tokio::time::Instant::now() >= until {
                return Ok((records, next, false));
            }
            // Either more records or the window's end: read again.
            let _ = tokio::time::timeout_at(until, shard.log.wait_readable(next)).await;
        }
    }

    /// The records a function is given (KPL aggregates de-aggregated).
    fn user_records(&self, shard: &ShardReader, records: &[Record]) -> Vec<Rec> {
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let sequence_number = shard.sequence_number(record.seq, record.arrival_ms);
            let rec = |partition_key: String, data: Bytes| Rec {
                seq: record.seq,
                sequence_number: sequence_number.clone(),
                arrival_ms: record.arrival_ms,
                partition_key,
                data,
            };
            match riffle_kpl::decode(&record.data) {
                Some(subs) => out.extend(subs.into_iter().map(|sub| {
                    rec(
                        sub.partition_key.to_owned(),
                        Bytes::copy_from_slice(sub.data),
                    )
                })),
                None => out.push(rec(
                    String::from_utf8_lossy(&record.partition_key).into_owned(),
                    record.data.clone(),
                )),
            }
        }
        out
    }

    /// Processes one batch: in one lane (positions committed as it goes),
    /// or in `ParallelizationFactor` lanes by partition key.
    async fn process_lanes(self: &Arc<Self>, incarnation: u64, shard_id: &str, recs: Vec<Rec>) {
        let factor = u64::try_from(self.mapping.parallelization_factor.max(1)).unwrap_or(1);
        if factor == 1 {
            self.process(Some(incarnation), shard_id, recs, None).await;
            return;
        }
        let size = self.batch_size();
        let mut lanes: BTreeMap<u64, Vec<Rec>> = BTreeMap::new();
        for rec in recs {
            lanes
                .entry(lane_of(&rec.partition_key, factor))
                .or_default()
                .push(rec);
        }
        let mut tasks = JoinSet::new();
        for (_, lane) in lanes {
            let poller = Arc::clone(self);
            let shard_id = shard_id.to_owned();
            tasks.spawn(async move {
                for chunk in lane.chunks(size) {
                    poller.process(None, &shard_id, chunk.to_vec(), None).await;
                }
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Invokes the function with `records` until they are processed or
    /// discarded; commits the shard's position between parts when
    /// `incarnation` is given. In a tumbling window, each invocation is
    /// given `window`'s state and its answer's state kept.
    async fn process(
        &self,
        incarnation: Option<u64>,
        shard_id: &str,
        records: Vec<Rec>,
        mut window: Option<&mut OpenWindow>,
    ) {
        let mut committed = records.first().map_or(0, |r| r.seq);
        let mut pending = VecDeque::from([Piece {
            records,
            invokes: 0,
        }]);
        let mut backoff = BACKOFF_MIN;
        while let Some(mut piece) = pending.pop_front() {
            let expired = self.expired(&piece.records);
            if expired > 0 {
                let old: Vec<Rec> = piece.records.drain(..expired).collect();
                let (condition, none) = (Condition::RecordAgeExceeded, LastResponse::default());
                self.discard(shard_id, &old, condition, piece.invokes, &none)
                    .await;
            }
            if !piece.records.is_empty() {
                let outcome = self
                    .invoke(shard_id, &piece.records, window.as_deref_mut(), false)
                    .await;
                self.settle(shard_id, piece, outcome, &mut pending, &mut backoff)
                    .await;
            }
            if let (Some(incarnation), Some(front)) = (incarnation, pending.front())
                && let Some(first) = front.records.first()
                && first.seq > committed
            {
                committed = first.seq;
                let at = Checkpoint {
                    next: first.seq,
                    done: false,
                };
                self.checkpoint(incarnation, shard_id, at).await;
            }
        }
    }

    /// What follows an invocation of `piece`: the next piece, a retry, a
    /// halving, or a discard.
    async fn settle(
        &self,
        shard_id: &str,
        mut piece: Piece,
        outcome: Outcome,
        pending: &mut VecDeque<Piece>,
        backoff: &mut Duration,
    ) {
        match outcome {
            Outcome::Done => {
                self.set_status(OK);
                *backoff = BACKOFF_MIN;
            }
            Outcome::Partial(at, response) => {
                piece.records.drain(..at);
                piece.invokes += 1;
                self.retry(shard_id, piece, response, pending, backoff)
                    .await;
            }
            Outcome::Failed(_)
                if self.mapping.bisect_batch_on_function_error && piece.records.len() > 1 =>
            {
                // Halving does not use a retry.
                halve(piece, pending);
            }
            Outcome::Failed(response) => {
                piece.invokes += 1;
                self.retry(shard_id, piece, response, pending, backoff)
                    .await;
            }
            Outcome::TooLarge if piece.records.len() > 1 => halve(piece, pending),
            Outcome::TooLarge => {
                let (condition, none) =
                    (Condition::RetryAttemptsExhausted, LastResponse::default());
                self.discard(shard_id, &piece.records, condition, piece.invokes, &none)
                    .await;
            }
            Outcome::Unavailable => {
                tokio::time::sleep(*backoff).await;
                *backoff = (*backoff * 2).min(BACKOFF_MAX);
                pending.push_front(piece);
            }
        }
    }

    /// A failed piece: retried after a backoff, or discarded once its
    /// retries are used up.
    async fn retry(
        &self,
        shard_id: &str,
        piece: Piece,
        response: LastResponse,
        pending: &mut VecDeque<Piece>,
        backoff: &mut Duration,
    ) {
        if piece.records.is_empty() {
            return;
        }
        let max = self.mapping.maximum_retry_attempts;
        let exhausted = max >= 0 && i64::from(piece.invokes) > max;
        if exhausted {
            let condition = Condition::RetryAttemptsExhausted;
            self.discard(
                shard_id,
                &piece.records,
                condition,
                piece.invokes,
                &response,
            )
            .await;
            return;
        }
        tokio::time::sleep(*backoff).await;
        *backoff = (*backoff * 2).min(BACKOFF_MAX);
        pending.push_front(piece);
    }

    /// How many records at the front are older than
    /// `MaximumRecordAgeInSeconds` (records are in arrival order).
    fn expired(&self, records: &[Rec]) -> usize {
        expired(
            records,
            self.mapping.maximum_record_age_in_seconds,
            now_ms(),
        )
    }

    fn batch_size(&self) -> usize {
        usize::try_from(self.mapping.batch_size.max(1)).unwrap_or(1)
    }

    /// One invocation; in a window, with its state (`last`: the window's
    /// final one), whose answered state replaces it on success.
    async fn invoke(
        &self,
        shard_id: &str,
        records: &[Rec],
        window: Option<&mut OpenWindow>,
        last: bool,
    ) -> Outcome {
        let mut event = event::kinesis_event(&self.source, shard_id, records);
        if let Some(open) = &window {
            let length_ms = self.window_ms().unwrap_or(0);
            let arn = &self.source.stream_arn;
            window::decorate(&mut event, open, length_ms, shard_id, arn, last);
        }
        let payload = Bytes::from(event.to_string());
        let function = match self.shared.functions.resolve(&self.mapping.function_arn) {
            Ok(function) => function,
            Err(err) => return self.not_invoked(&err),
        };
        match self.shared.functions.invoke(&function, payload).await {
            Ok(done) if done.function_error.is_none() => {
                if let Some(open) = window {
                    let Some(state) = window::answered_state(&done.payload) else {
                        self.set_status(FUNCTION_FAILED);
                        return Outcome::Failed(LastResponse {
                            function_error: None,
                            executed_version: Some(done.executed_version),
                        });
                    };
                    open.state = state;
                }
                if !self.reports_item_failures() {
                    return Outcome::Done;
                }
                let response = LastResponse {
                    function_error: None,
                    executed_version: Some(done.executed_version),
                };
                match event::batch_item_failures(&done.payload, records) {
                    Answer::Success => Outcome::Done,
                    Answer::FailedFrom(at) => {
                        self.set_status(OK);
                        Outcome::Partial(at, response)
                    }
                    Answer::Invalid => {
                        self.set_status(FUNCTION_FAILED);
                        Outcome::Failed(response)
                    }
                }
            }
            Ok(failed) => {
                self.set_status(FUNCTION_FAILED);
                debug!(mapping = %self.uuid(), error = %String::from_utf8_lossy(&failed.payload),
                    "the function failed its batch");
                Outcome::Failed(LastResponse {
                    function_error: failed.function_error,
                    executed_version: Some(failed.executed_version),
                })
            }
            Err(err) => self.not_invoked(&err),
        }
    }

    fn not_invoked(&self, err: &LambdaError) -> Outcome {
        match err {
            LambdaError::RequestTooLarge { .. } => Outcome::TooLarge,
            LambdaError::ShutDown => Outcome::Unavailable,
            err => {
                self.set_status(&format!("PROBLEM: Function call failed: {err}"));
                self.failed(&err.to_string());
                if err.is_retryable() {
                    Outcome::Unavailable
                } else {
                    Outcome::Failed(LastResponse::default())
                }
            }
        }
    }

    fn reports_item_failures(&self) -> bool {
        self.mapping
            .function_response_types
            .iter()
            .any(|t| t == "ReportBatchItemFailures")
    }

    fn set_status(&self, status: &str) {
        let mut current = self.status.lock();
        if *current != status {
            *current = status.to_owned();
        }
    }

    /// Sends a discarded batch's invocation record to the on-failure
    /// destination, if there is one.
    async fn discard(
        &self,
        shard_id: &str,
        records: &[Rec],
        condition: Condition,
        invokes: u32,
        response: &LastResponse,
    ) {
        let destination = self
            .mapping
            .destination_config
            .as_ref()
            .and_then(|d| d["OnFailure"]["Destination"].as_str())
            .unwrap_or_default()
            .to_owned();
        warn!(mapping = %self.uuid(), shard = shard_id, records = records.len(),
            condition = ?condition, destination = %destination, "a batch is discarded");
        if destination.is_empty() || records.is_empty() {
            return;
        }
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut record = FailureRecord {
            request_id: &request_id,
            function_arn: &self.mapping.function_arn,
            condition,
            invoke_count: invokes,
            response,
            now_ms: now_ms(),
            shard_id,
            stream_arn: &self.source.stream_arn,
            records,
        }
        .to_json();
        let mut backoff = BACKOFF_MIN;
        for _ in 0..DESTINATION_ATTEMPTS {
            let sent = if destination.starts_with("arn:aws:s3:::") {
                record["payload"] =
                    json!(event::kinesis_event(&self.source, shard_id, records).to_string());
                self.to_bucket(&destination, shard_id, &request_id, &record)
                    .await
            } else {
                self.to_stream(&destination, shard_id, &record).await
            };
            match sent {
                Ok(()) => return,
                Err(err) => {
                    warn!(mapping = %self.uuid(), %destination, error = %err,
                        "the on-failure destination refused a record")
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        tracing::error!(mapping = %self.uuid(), %destination,
            "an invocation record was dropped: its destination failed every try");
    }

    async fn to_stream(
        &self,
        stream_arn: &str,
        shard_id: &str,
        record: &serde_json::Value,
    ) -> Result<(), String> {
        let body = json!({
            "StreamARN": stream_arn,
            "PartitionKey": shard_id,
            "Data": base64_simd::STANDARD.encode_to_string(record.to_string()),
        });
        self.shared
            .kinesis
            .handle(
                "PutRecord",
                Bytes::from(body.to_string()),
                riffle_kinesis::Codec::Json,
            )
            .await
            .map(|_| ())
            .map_err(|err| err.to_string())
    }

    /// Writes the record where Lambda writes it in a bucket:
    /// `aws/lambda/<mapping UUID>/<shard id>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<random UUID>`.
    async fn to_bucket(
        &self,
        bucket_arn: &str,
        shard_id: &str,
        request_id: &str,
        record: &serde_json::Value,
    ) -> Result<(), String> {
        let Some(s3) = self.shared.s3.get() else {
            return Err("the embedded S3 is not running".to_owned());
        };
        let bucket = bucket_arn.trim_start_matches("arn:aws:s3:::");
        let now = event::iso8601(now_ms());
        let (day, time) = (&now[..10], &now[11..19]);
        let key = format!(
            "aws/lambda/{}/{shard_id}/{}/{day}T{}-{request_id}",
            self.uuid(),
            day.replace('-', "/"),
            time.replace(':', ".")
        );
        let options = riffle_s3::PutOptions {
            content_type: Some("application/json".to_owned()),
            ..riffle_s3::PutOptions::default()
        };
        s3.put_object_with(bucket, &key, Bytes::from(record.to_string()), options)
            .await
            .map(|_| ())
            .map_err(|err| err.to_string())
    }

    /// Commits a shard's position; retries with backoff until it is.
    async fn checkpoint(&self, incarnation: u64, shard_id: &str, at: Checkpoint) {
        let op = checkpoint::put(self.uuid(), incarnation, shard_id, at);
        self.commit(&[op]).await;
    }

    /// Commits `ops` in one metadata transaction; retries with backoff
    /// until it is.
    async fn commit(&self, ops: &[riffle_log::MetaOp]) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let store = Arc::clone(&self.shared.store);
            let ops = ops.to_vec();
            match tokio::task::spawn_blocking(move || store.meta().commit(&ops)).await {
                Ok(Ok(())) => return,
                Ok(Err(err)) => self.failed(&format!("committing a position: {err}")),
                Err(err) => self.failed(&format!("committing a position: {err}")),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

/// A reader ended: its shard is done, or it failed (started again at its
/// last position).
fn finished(
    r: &mut Readers,
    joined: Result<(String, Seq, Option<LogError>), tokio::task::JoinError>,
) -> Result<(), String> {
    let (shard, next, failure) = joined.map_err(|e| e.to_string())?;
    r.running.remove(&shard);
    match failure {
        None => {
            r.done.insert(shard);
            Ok(())
        }
        Some(err) => {
            r.positions.insert(shard, Checkpoint { next, done: false });
            Err(err.to_string())
        }
    }
}

/// How many of `records` (in arrival order) are older than `max_s`
/// seconds at `now_ms`; none when `max_s` is -1 (no limit).
fn expired(records: &[Rec], max_s: i64, now_ms: i64) -> usize {
    if max_s < 0 {
        return 0;
    }
    let oldest_ok = now_ms - max_s * 1000;
    records
        .iter()
        .take_while(|r| r.arrival_ms < oldest_ok)
        .count()
}

/// Splits a failed piece in two, both to be tried before what follows.
fn halve(mut piece: Piece, pending: &mut VecDeque<Piece>) {
    let second = piece.records.split_off(piece.records.len() / 2);
    pending.push_front(Piece {
        records: second,
        invokes: piece.invokes,
    });
    pending.push_front(piece);
}

/// The lane of a partition key: the same key always the same lane.
fn lane_of(partition_key: &str, lanes: u64) -> u64 {
    let mut hasher = foldhash::fast::FixedState::with_seed(0).build_hasher();
    hasher.write(partition_key.as_bytes());
    hasher.finish() % lanes
}

/// The stream a source ARN names (a consumer's ARN names its stream's).
pub fn stream_of(source_arn: &str) -> &str {
    source_arn.split("/consumer/").next().unwrap_or(source_arn)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_key_always_has_the_same_lane() {
        for key in ["a", "b", "order-17", ""] {
            let lane = lane_of(key, 7);
            assert!(lane < 7);
            assert_eq!(lane_of(key, 7), lane);
        }
        let lanes: BTreeSet<u64> = (0..100).map(|i| lane_of(&format!("k{i}"), 4)).collect();
        assert_eq!(lanes.len(), 4, "keys spread over every lane");
    }

    fn rec(seq: Seq) -> Rec {
        Rec {
            seq,
            sequence_number: seq.to_string(),
            arrival_ms: i64::try_from(seq).unwrap_or(0) * 1000,
            partition_key: "k".into(),
            data: Bytes::new(),
        }
    }

    #[test]
    fn records_past_the_maximum_age_are_those_at_the_front() {
        let records: Vec<Rec> = (0..10).map(rec).collect();
        assert_eq!(expired(&records, -1, 1_000_000), 0, "-1: no limit");
        // Records arrived at 0 s, 1 s, … 9 s.
        assert_eq!(expired(&records, 60, 60_000), 0);
        assert_eq!(
            expired(&records, 60, 65_500),
            6,
            "those of 0-5 s are over 60 s old at 65.5 s"
        );
        assert_eq!(expired(&records, 60, 1_000_000), 10);
    }

    #[test]
    fn halving_keeps_the_order_and_the_invocations() {
        let mut pending = VecDeque::from([Piece {
            records: vec![rec(9)],
            invokes: 0,
        }]);
        halve(
            Piece {
                records: (0..5).map(rec).collect(),
                invokes: 2,
            },
            &mut pending,
        );
        let order: Vec<Vec<Seq>> = pending
            .iter()
            .map(|p| p.records.iter().map(|r| r.seq).collect())
            .collect();
        assert_eq!(order, vec![vec![0, 1], vec![2, 3, 4], vec![9]]);
        assert_eq!(pending[1].invokes, 2);
    }
}
