//! The producer: the KPL's job over the AWS SDK for Rust.
//!
//! [`Producer::put`] routes a user record to the open shard its hash key
//! falls in (ListShards' ranges) and appends it to that shard's
//! [`Aggregator`] (one copy of its data; no allocation but its future's). A
//! shard's aggregate is sealed into a Kinesis record when the next record
//! would pass [`ProducerConfig::aggregation_max_size`] or
//! `aggregation_max_count`, or when its first record has waited
//! `record_max_buffered_time`. Sealed records are collected into PutRecords
//! calls (≤ 500 records, ≤ 5 MiB) by one pump task, which sends a call when
//! it is full or its oldest record is due, charging each shard's rate limit
//! ([`crate::rate`]), with at most `max_in_flight` calls at once.
//!
//! An aggregated record carries its first user record's partition key and,
//! as explicit hash key, that record's hash key, so it lands on the shard
//! its records were grouped for. If it lands elsewhere (the stream was
//! resharded) the shard map is read again and its user records are put
//! again, as the KPL does ("Wrong Shard"): a consumer that keeps only the
//! user records of its own hash range (the KCL) then sees each once.
//! Failed records are retried with backoff until `record_ttl`; each user
//! record's future resolves to its shard, sequence and sub-sequence number,
//! or to the final error.

mod pump;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::format::{Aggregator, OVERHEAD, UserRecord};
use crate::rate::ShardRate;
use crate::shards::{KeyHashCache, ShardMap, parse_explicit_hash_key};

/// A partition key's length limit in Unicode characters (API_PutRecordsRequestEntry).
pub const PARTITION_KEY_MAX_CHARS: usize = 256;
/// A Kinesis record's data limit (API_PutRecordsRequestEntry: 1 MiB,
/// partition key included on AWS).
pub const RECORD_DATA_MAX: usize = 1_048_576;
/// The largest aggregated record: 1 MiB less room for the longest
/// partition key (256 characters of up to 4 UTF-8 bytes), which AWS counts
/// in the record's size. The KPL's `AggregationMaxSize` maximum is 1 MiB.
pub const AGGREGATION_MAX_SIZE_LIMIT: usize = RECORD_DATA_MAX - 4 * PARTITION_KEY_MAX_CHARS;
/// Records per PutRecords call (API_PutRecords; the KPL's `CollectionMaxCount` maximum).
pub const COLLECTION_MAX_COUNT_LIMIT: usize = 500;
/// Bytes per PutRecords call, data and partition keys (API_PutRecords: 5 MiB;
/// the KPL's `CollectionMaxSize` maximum).
pub const COLLECTION_MAX_SIZE_LIMIT: usize = 5 * 1_048_576;
/// The longest pause between retries of a failed record.
pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The producer's settings; the defaults are the KPL's
/// (`default_config.properties` of amazon-kinesis-producer).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// How long a user record may wait to be sent (KPL: 100 ms).
    pub record_max_buffered_time: Duration,
    /// Pack user records into aggregated records (KPL: true).
    pub aggregation_enabled: bool,
    /// User records per aggregated record (KPL: 4294967295).
    pub aggregation_max_count: usize,
    /// Bytes of an aggregated record, at most [`AGGREGATION_MAX_SIZE_LIMIT`] (KPL: 51200).
    pub aggregation_max_size: usize,
    /// Kinesis records per PutRecords, at most 500 (KPL: 500).
    pub collection_max_count: usize,
    /// Bytes per PutRecords, at most 5 MiB (KPL: 5242880).
    pub collection_max_size: usize,
    /// Per-shard rate limit in percent of the shard's 1 MiB/s and 1,000
    /// records/s (KPL: 150).
    pub rate_limit: u64,
    /// How long a user record is retried before its future fails (KPL: 30 s).
    pub record_ttl: Duration,
    /// PutRecords calls in flight at once (KPL's `MaxConnections`: 24).
    pub max_in_flight: usize,
}

impl Default for ProducerConfig {
    fn default() -> ProducerConfig {
        ProducerConfig {
            record_max_buffered_time: Duration::from_millis(100),
            aggregation_enabled: true,
            aggregation_max_count: 4_294_967_295,
            aggregation_max_size: 51_200,
            collection_max_count: COLLECTION_MAX_COUNT_LIMIT,
            collection_max_size: COLLECTION_MAX_SIZE_LIMIT,
            rate_limit: 150,
            record_ttl: Duration::from_secs(30),
            max_in_flight: 24,
        }
    }
}

impl ProducerConfig {
    /// The settings clamped to the API's limits.
    fn clamped(mut self) -> ProducerConfig {
        self.aggregation_max_size = self
            .aggregation_max_size
            .clamp(OVERHEAD + 64, AGGREGATION_MAX_SIZE_LIMIT);
        self.aggregation_max_count = self.aggregation_max_count.max(1);
        self.collection_max_count = self
            .collection_max_count
            .clamp(1, COLLECTION_MAX_COUNT_LIMIT);
        self.collection_max_size = self.collection_max_size.clamp(
            RECORD_DATA_MAX + 4 * PARTITION_KEY_MAX_CHARS,
            COLLECTION_MAX_SIZE_LIMIT,
        );
        self.rate_limit = self.rate_limit.max(1);
        self.max_in_flight = self.max_in_flight.max(1);
        self
    }
}

/// Where a user record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutOutcome {
    pub shard_id: Arc<str>,
    /// The Kinesis record's sequence number.
    pub sequence_number: Arc<str>,
    /// The user record's index in its aggregated record (0 when it was
    /// sent on its own).
    pub sub_sequence_number: u64,
    /// Whether it was sent inside an aggregated record.
    pub aggregated: bool,
    /// PutRecords calls it took.
    pub attempts: u32,
}

/// Why a user record was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProduceError {
    /// Refused before anything was sent.
    #[error("ValidationException: {0}")]
    Invalid(String),
    /// Kinesis refused it in a way retrying does not mend.
    #[error("{code}: {message}")]
    Rejected { code: String, message: String },
    /// Still failing when its time to live ran out.
    #[error("record expired after {attempts} attempt(s); last error {code}: {message}")]
    Expired {
        attempts: u32,
        code: String,
        message: String,
    },
    /// The stream's shards could not be listed.
    #[error("cannot list the stream's shards: {0}")]
    Shards(String),
    /// The producer went away before the record was written.
    #[error("the producer stopped before the record was written")]
    Stopped,
}

type Reply = oneshot::Sender<Result<PutOutcome, ProduceError>>;

/// Resolves when a user record is written (or finally fails).
#[derive(Debug)]
pub struct UserRecordFuture(oneshot::Receiver<Result<PutOutcome, ProduceError>>);

impl Future for UserRecordFuture {
    type Output = Result<PutOutcome, ProduceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(ProduceError::Stopped)))
    }
}

/// A Kinesis record ready to send: an aggregate of user records or one
/// user record as it is.
#[derive(Debug)]
pub(crate) struct Sealed {
    data: Vec<u8>,
    partition_key: String,
    explicit_hash_key: Option<String>,
    /// The shard it was grouped for; `None` when Kinesis routes it.
    shard: Option<Arc<str>>,
    aggregated: bool,
    replies: Vec<Reply>,
    /// When its oldest user record arrived: its deadline and its TTL count from here.
    born: Instant,
    /// Not sent again before this (retry backoff).
    not_before: Instant,
    attempts: u32,
}

impl Sealed {
    /// Its size as PutRecords counts it.
    fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// One open shard's aggregate in progress.
#[derive(Debug, Default)]
struct Buffer {
    aggregator: Aggregator,
    replies: Vec<Reply>,
    first: Option<(Instant, String, u128)>,
}

/// Everything behind the producer's lock.
#[derive(Debug, Default)]
struct State {
    map: ShardMap,
    /// Per shard of `map`, by index.
    buffers: Vec<Buffer>,
    rates: std::collections::HashMap<Arc<str>, ShardRate>,
    ready: std::collections::VecDeque<Sealed>,
    /// User records of aggregated records that landed on another shard,
    /// to put again once the map is read again.
    misrouted: Vec<Sealed>,
    map_stale: bool,
    flush: bool,
    closed: bool,
    key_hashes: KeyHashCache,
}

pub(crate) struct Shared {
    client: Client,
    stream: String,
    config: ProducerConfig,
    state: Mutex<State>,
    /// Wakes the pump: a new aggregate started, a call came back, a flush.
    wake: Notify,
    /// Wakes `flush_all`: a user record resolved.
    settled: Notify,
    outstanding: AtomicU64,
}

/// Aggregates, collects and puts user records into one stream.
pub struct Producer {
    shared: Arc<Shared>,
}

impl Producer {
    /// A producer for `stream`, its shard map read first (ListShards).
    pub async fn new(
        client: Client,
        stream: impl Into<String>,
        config: ProducerConfig,
    ) -> Result<Producer, ProduceError> {
        let stream = stream.into();
        let map = pump::list_open_shards(&client, &stream).await?;
        let shared = Arc::new(Shared {
            client,
            stream,
            config: config.clamped(),
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            settled: Notify::new(),
            outstanding: AtomicU64::new(0),
        });
        shared.state.lock().install(map);
        tokio::spawn(pump::run(Arc::clone(&shared)));
        Ok(Producer { shared })
    }

    /// Adds a user record; the future resolves once it is written.
    pub fn put(
        &self,
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        data: &[u8],
    ) -> UserRecordFuture {
        let (reply, answer) = oneshot::channel();
        if let Err(err) = validate(partition_key, data) {
            let _ = reply.send(Err(err));
            return UserRecordFuture(answer);
        }
        let explicit = match explicit_hash_key.map(parse_explicit_hash_key) {
            Some(None) => {
                let _ = reply.send(Err(ProduceError::Invalid(format!(
                    "ExplicitHashKey {explicit_hash_key:?} is not a decimal in 0..2^128"
                ))));
                return UserRecordFuture(answer);
            }
            Some(Some(hash)) => Some(hash),
            None => None,
        };
        let record = UserRecord {
            partition_key,
            explicit_hash_key,
            data,
        };
        self.shared.outstanding.fetch_add(1, Ordering::Relaxed);
        let wake = {
            let mut state = self.shared.state.lock();
            if state.closed {
                drop(state);
                self.shared.resolved(1);
                let _ = reply.send(Err(ProduceError::Stopped));
                return UserRecordFuture(answer);
            }
            let hash_key = explicit.unwrap_or_else(|| state.key_hashes.of(partition_key));
            state.add(&self.shared.config, &record, hash_key, reply, &Instant::now)
        };
        if wake {
            self.shared.wake.notify_one();
        }
        UserRecordFuture(answer)
    }

    /// User records put and not yet resolved.
    pub fn outstanding(&self) -> u64 {
        self.shared.outstanding.load(Ordering::Relaxed)
    }

    /// Sends everything buffered now, without waiting for deadlines.
    pub fn flush(&self) {
        self.shared.state.lock().flush = true;
        self.shared.wake.notify_one();
    }

    /// Sends everything buffered and waits until every user record put so
    /// far has resolved.
    pub async fn flush_all(&self) {
        loop {
            let settled = self.shared.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if self.outstanding() == 0 {
                return;
            }
            self.flush();
            settled.await;
        }
    }
}

impl Drop for Producer {
    /// The pump sends what is buffered, then ends.
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.closed = true;
        state.flush = true;
        drop(state);
        self.shared.wake.notify_one();
    }
}

fn validate(partition_key: &str, data: &[u8]) -> Result<(), ProduceError> {
    let chars = partition_key.chars().count();
    if chars == 0 || chars > PARTITION_KEY_MAX_CHARS {
        return Err(ProduceError::Invalid(format!(
            "a partition key has 1 to {PARTITION_KEY_MAX_CHARS} characters, not {chars}"
        )));
    }
    if data.len() > RECORD_DATA_MAX {
        return Err(ProduceError::Invalid(format!(
            "a record's data is at most {RECORD_DATA_MAX} bytes, not {}",
            data.len()
        )));
    }
    Ok(())
}

impl Shared {
    /// `count` user records resolved.
    fn resolved(&self, count: u64) {
        if count > 0 {
            self.outstanding.fetch_sub(count, Ordering::Relaxed);
            self.settled.notify_waiters();
        }
    }
}

impl State {
    /// Installs a new shard map: what was grouped under the old one is
    /// sealed as it is (each aggregate goes where its first record's key
    /// now maps), and new buffers follow the new shards.
    fn install(&mut self, map: ShardMap) {
        let now = Instant::now();
        for index in 0..self.buffers.len() {
            self.seal(index, now);
        }
        self.buffers = (0..map.len()).map(|_| Buffer::default()).collect();
        self.map = map;
        self.map_stale = false;
    }

    /// Adds a user record to its shard's aggregate. True when the pump
    /// should look again (a new aggregate's deadline, something sealed).
    fn add(
        &mut self,
        config: &ProducerConfig,
        record: &UserRecord<'_>,
        hash_key: u128,
        reply: Reply,
        now: &dyn Fn() -> Instant,
    ) -> bool {
        let Some((index, _)) = self.map.route(hash_key) else {
            self.ready.push_back(plain(record, None, reply, now()));
            return true;
        };
        if !config.aggregation_enabled {
            let shard = Some(Arc::clone(self.map.id(index)));
            self.ready.push_back(plain(record, shard, reply, now()));
            return true;
        }
        let (max_size, max_count) = (config.aggregation_max_size, config.aggregation_max_count);
        let buffer = &mut self.buffers[index];
        let started = buffer.aggregator.is_empty();
        if buffer.aggregator.try_add(record, max_size, max_count) {
            buffer.replies.push(reply);
            if started {
                buffer.first = Some((now(), record.partition_key.to_owned(), hash_key));
            }
            return started;
        }
        if !started {
            // Full: sealed, and the record starts the next aggregate.
            let born = buffer.first.as_ref().map_or_else(now, |f| f.0);
            self.seal(index, born);
            let buffer = &mut self.buffers[index];
            if buffer.aggregator.try_add(record, max_size, max_count) {
                buffer.replies.push(reply);
                buffer.first = Some((now(), record.partition_key.to_owned(), hash_key));
                return true;
            }
        }
        // Too big to share an aggregate: it goes as it is.
        let shard = Some(Arc::clone(self.map.id(index)));
        self.ready.push_back(plain(record, shard, reply, now()));
        true
    }

    /// Seals shard `index`'s aggregate, if any, into the ready queue.
    fn seal(&mut self, index: usize, now: Instant) {
        let buffer = &mut self.buffers[index];
        let Some((born, partition_key, hash_key)) = buffer.first.take() else {
            return;
        };
        let data = buffer.aggregator.finish();
        let replies = std::mem::take(&mut buffer.replies);
        let shard = Some(Arc::clone(self.map.id(index)));
        let born = born.min(now);
        let sealed = if replies.len() == 1 {
            // One record is sent as it is, as the KPL does.
            let mut records = crate::format::decode(&data).unwrap_or_default();
            let one = records
                .pop()
                .map(|r| (r.data.to_vec(), r.explicit_hash_key.map(str::to_owned)));
            let (data, explicit_hash_key) = one.unwrap_or_default();
            Sealed {
                data,
                partition_key,
                explicit_hash_key,
                shard,
                aggregated: false,
                replies,
                born,
                not_before: born,
                attempts: 0,
            }
        } else {
            Sealed {
                data,
                partition_key,
                explicit_hash_key: Some(hash_key.to_string()),
                shard,
                aggregated: true,
                replies,
                born,
                not_before: born,
                attempts: 0,
            }
        };
        self.ready.push_back(sealed);
    }
}

/// A user record sent as it is.
fn plain(record: &UserRecord<'_>, shard: Option<Arc<str>>, reply: Reply, now: Instant) -> Sealed {
    Sealed {
        data: record.data.to_vec(),
        partition_key: record.partition_key.to_owned(),
        explicit_hash_key: record.explicit_hash_key.map(str::to_owned),
        shard,
        aggregated: false,
        replies: vec![reply],
        born: now,
        not_before: now,
        attempts: 0,
    }
}
