//! SubscribeToShard: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SubscribeToShard.html>
//!
//! A subscription is a [`Subscription`] the server pulls events from: each
//! call to [`Subscription::next_event`] reads what the shard committed
//! since the last event, or waits for the shard's log to say more is
//! readable (`ShardLog::wait_readable`, woken by the writer, never a
//! poll). Pulling, rather than a task pushing into a channel, gives
//! backpressure for free: a slow client slows only its own reads, and a
//! client that goes away drops the subscription and ends it.
//!
//! AWS's rules kept here: a subscription lasts 5 minutes
//! ([`crate::KinesisConfig::subscription_ttl`]); a second SubscribeToShard
//! by the same consumer to the same shard within 5 seconds of the last
//! successful one is refused with `ResourceInUseException`, a later one
//! takes over and the first ends with that exception.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use riffle_log::{LogError, ReadLimits, Seq};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use super::get_records::{RECORDS_MAX, RESPONSE_BYTES_MAX, child_shards, write_records};
use super::put_record::refuse_dry_run;
use crate::json::{self, Bool, Str, Timestamp};
use crate::seqnum::SeqNum;
use crate::stream::{Shard, Stream};
use crate::time::now_ms;
use crate::validate::{Pattern, Violations};
use crate::{Kinesis, KinesisError, catalog, errors};

/// How long after a successful SubscribeToShard another one by the same
/// consumer to the same shard is refused (API reference: "within 5
/// seconds of a successful call, you'll get a ResourceInUseException").
pub const TAKEOVER_AFTER: Duration = Duration::from_secs(5);
/// An event is sent at least this often, records or not, so the client
/// sees the subscription is alive and gets a fresh ContinuationSequenceNumber.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Bytes a consumer reads per second from one shard when throughput limits
/// are on, its own and not shared with polling consumers or other
/// consumers ("Quotas and limits": each enhanced fan-out consumer "gets its
/// own 2 MB/sec allotment of read throughput" per shard).
pub const CONSUMER_READ_BYTES_PER_SEC: i64 = 2 * 1024 * 1024;
/// Unused read capacity a subscription keeps: one second's worth, as the
/// shard buckets in `throttle` do.
const CONSUMER_BURST_MS: i64 = 1_000;

/// While a reshard has closed a shard's log but not yet committed its
/// children, how often to look again (the commit normally wakes us first).
const RESHARD_RECHECK: Duration = Duration::from_millis(50);

/// The arrival time of a ContinuationSequenceNumber that names a position
/// rather than a record: the epoch, which no record has. An event without
/// records must still say where to resume, and at the start of an empty
/// shard there is no record before that position to name. A number with
/// Seq `p` and this arrival sorts after record `p - 1` and before record
/// `p`, so AT and AFTER it both mean "from record `p` on".
const POSITION_MARKER_ARRIVAL_MS: i64 = 0;

/// Whether a sequence number is a position marker (see above).
pub(crate) fn is_position_marker(number: &SeqNum) -> bool {
    number.arrival_secs == 0
}

const POSITION_TYPES: &[&str] = &[
    "AT_SEQUENCE_NUMBER",
    "AFTER_SEQUENCE_NUMBER",
    "TRIM_HORIZON",
    "LATEST",
    "AT_TIMESTAMP",
];

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    ConsumerARN: Option<Str<'a>>,
    #[serde(borrow)]
    ShardId: Option<Str<'a>>,
    #[serde(borrow)]
    StartingPosition: Option<StartingPosition<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
    DryRun: Option<Bool>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct StartingPosition<'a> {
    #[serde(borrow, rename = "Type")]
    Kind: Option<Str<'a>>,
    #[serde(borrow)]
    SequenceNumber: Option<Str<'a>>,
    Timestamp: Option<Timestamp>,
}

/// The live subscriptions, by consumer ARN and shard index.
#[derive(Default)]
pub(crate) struct Subscriptions {
    /// Held only to look up or swap an entry, never across an await.
    live: Mutex<HashMap<(String, u32), Live>>,
    next_id: std::sync::atomic::AtomicU64,
    /// Each consumer's `SubscribeToShardEvent.MillisBehindLatest`, for
    /// `/metrics`: kept here because it lives and ends with the
    /// subscriptions.
    pub(crate) ages: crate::metrics::ConsumerAges,
}

struct Live {
    id: u64,
    started: Instant,
    /// Set to end the subscription, saying why.
    end: watch::Sender<Option<Ended>>,
}

/// Why a subscription was ended from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    TakenOver,
    Deregistered,
}

impl Subscriptions {
    /// Registers a new subscription, ending the one it takes over.
    fn start(
        &self,
        consumer_arn: &str,
        shard: u32,
    ) -> Result<(u64, watch::Receiver<Option<Ended>>), KinesisError> {
        let mut live = self.live.lock();
        let key = (consumer_arn.to_owned(), shard);
        if let Some(old) = live.get(&key) {
            if old.started.elapsed() < TAKEOVER_AFTER {
                return Err(KinesisError::ResourceInUse(format!(
                    "Another active subscription exists for this consumer: {consumer_arn}"
                )));
            }
            // The old subscription sees this and ends with ResourceInUse.
            old.end.send_replace(Some(Ended::TakenOver));
        }
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (end, ended) = watch::channel(None);
        let started = Instant::now();
        live.insert(key, Live { id, started, end });
        Ok((id, ended))
    }

    fn finish(&self, consumer_arn: &str, shard: u32, id: u64) {
        let mut live = self.live.lock();
        let key = (consumer_arn.to_owned(), shard);
        if live.get(&key).is_some_and(|l| l.id == id) {
            live.remove(&key);
        }
    }

    /// Ends every subscription of a consumer (it is being deregistered),
    /// and its series with them.
    pub(crate) fn end_consumer(&self, consumer_arn: &str) {
        self.ages.forget(consumer_arn);
        let mut live = self.live.lock();
        live.retain(|(arn, _), l| {
            if arn == consumer_arn {
                l.end.send_replace(Some(Ended::Deregistered));
            }
            arn != consumer_arn
        });
    }
}

/// One SubscribeToShard: the events it has yet to send.
pub struct Subscription {
    kinesis: Arc<Kinesis>,
    consumer_arn: String,
    stream: String,
    incarnation: u64,
    shard_index: u32,
    id: u64,
    /// The next record to send.
    position: Seq,
    deadline: Instant,
    ended: watch::Receiver<Option<Ended>>,
    sent_first: bool,
    finished: bool,
    pace: Pace,
    /// Where this consumer's MillisBehindLatest on this shard is kept for
    /// `/metrics` (`crate::metrics::ConsumerAges`).
    age: Arc<AtomicI64>,
}

/// A subscription's read allowance (bytes), refilled at
/// [`CONSUMER_READ_BYTES_PER_SEC`]. An event may take it into debt (one
/// event may carry 10 MiB, as one GetRecords may); the next read waits
/// until the debt is repaid, so the average rate is the limit. Only the
/// stream's subscription is slowed: nothing else shares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pace {
    balance: i64,
    at_ms: i64,
}

impl Pace {
    fn full(now_ms: i64) -> Pace {
        Pace {
            balance: CONSUMER_READ_BYTES_PER_SEC * CONSUMER_BURST_MS / 1000,
            at_ms: now_ms,
        }
    }

    fn refill(&mut self, now_ms: i64) {
        let elapsed = now_ms.saturating_sub(self.at_ms).max(0);
        let accrued = CONSUMER_READ_BYTES_PER_SEC.saturating_mul(elapsed) / 1000;
        let burst = CONSUMER_READ_BYTES_PER_SEC * CONSUMER_BURST_MS / 1000;
        self.balance = self.balance.saturating_add(accrued).min(burst);
        self.at_ms = self.at_ms.max(now_ms);
    }

    fn charge(&mut self, bytes: usize) {
        self.balance = self
            .balance
            .saturating_sub(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// How long the next read must wait for the debt to be repaid.
    fn wait_ms(&self) -> i64 {
        if self.balance >= 0 {
            return 0;
        }
        let debt = self.balance.saturating_neg();
        (debt.saturating_mul(1000) + CONSUMER_READ_BYTES_PER_SEC - 1) / CONSUMER_READ_BYTES_PER_SEC
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let subscriptions = &self.kinesis.subscriptions;
        subscriptions.finish(&self.consumer_arn, self.shard_index, self.id);
        subscriptions
            .ages
            .release(&self.consumer_arn, self.shard_index, &self.age);
    }
}

/// Validates a SubscribeToShard request and starts the subscription.
pub async fn start(kinesis: &Arc<Kinesis>, body: &[u8]) -> Result<Subscription, KinesisError> {
    let input: Input = json::parse(body)?;
    validate(&input)?;
    refuse_dry_run(input.DryRun)?;
    let now = now_ms();
    // Validated: present.
    let arn = input.ConsumerARN.as_ref().map_or("", Str::as_str);
    let (stream, consumer) = super::consumers::resolve_arn(kinesis, arn, now)?;
    if consumer.status(now) != Some(catalog::Status::Active) {
        return Err(KinesisError::ResourceInUse(format!(
            "Consumer {arn} under account {} is not ACTIVE.",
            kinesis.account()
        )));
    }
    let shard_text = input.ShardId.as_ref().map_or("", Str::as_str);
    let account = kinesis.account();
    let index = catalog::parse_shard_id(shard_text);
    let shard = index
        .and_then(|index| stream.shard(index))
        .filter(|s| !stream.is_expired(s, now))
        .ok_or_else(|| {
            // A shard id that parses is named in its normal form, as
            // GetShardIterator names it.
            let id = index.map_or_else(|| shard_text.to_owned(), catalog::shard_id);
            errors::shard_not_found(&id, stream.name(), account)
        })?;
    // Validated: present.
    let Some(position) = &input.StartingPosition else {
        return Err(errors::invalid_iterator());
    };
    let position = starting_seq(kinesis, &stream, shard, position, now)?;
    let (id, ended) = kinesis.subscriptions.start(arn, shard.index)?;
    let age = kinesis
        .subscriptions
        .ages
        .cell(arn, &stream, &consumer.name, shard.index);
    Ok(Subscription {
        kinesis: kinesis.clone(),
        consumer_arn: arn.to_owned(),
        stream: stream.name().to_owned(),
        incarnation: stream.record.incarnation,
        shard_index: shard.index,
        id,
        position,
        deadline: Instant::now() + kinesis.config().subscription_ttl,
        ended,
        sent_first: false,
        finished: false,
        pace: Pace::full(now),
        age,
    })
}

fn validate(input: &Input<'_>) -> Result<(), KinesisError> {
    let mut v = Violations::new();
    v.required(&input.ConsumerARN, "consumerARN");
    super::consumers::check_consumer_arn(&mut v, &input.ConsumerARN);
    let shard = input.ShardId.as_ref().map(Str::as_str);
    v.required(&input.ShardId, "shardId");
    v.pattern(shard, "shardId", Pattern::Name);
    v.length(shard, "shardId", 1, 128);
    v.required(&input.StartingPosition, "startingPosition");
    if let Some(position) = &input.StartingPosition {
        let kind = position.Kind.as_ref().map(Str::as_str);
        v.required(&position.Kind, "startingPosition.type");
        v.one_of(kind, "startingPosition.type", POSITION_TYPES);
        let number = position.SequenceNumber.as_ref().map(Str::as_str);
        v.pattern(
            number,
            "startingPosition.sequenceNumber",
            Pattern::SequenceNumber,
        );
    }
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result()
}

/// The first record a subscription sends.
fn starting_seq(
    kinesis: &Kinesis,
    stream: &Stream,
    shard: &Shard,
    position: &StartingPosition<'_>,
    now: i64,
) -> Result<Seq, KinesisError> {
    let kind = position.Kind.as_ref().map_or("", Str::as_str);
    let number = position.SequenceNumber.as_ref().map(Str::as_str);
    let invalid = |text: &str| {
        KinesisError::InvalidArgument(format!(
            "Invalid StartingSequenceNumber {text} for shard {} in stream {} under account {}.",
            shard.id,
            stream.name(),
            kinesis.account()
        ))
    };
    match (kind, number) {
        ("TRIM_HORIZON", _) => Ok(shard.log.oldest_seq()),
        ("LATEST", _) => Ok(shard.log.next_seq()),
        ("AT_TIMESTAMP", _) => {
            let Some(Timestamp(at_ms)) = position.Timestamp else {
                return Err(KinesisError::InvalidArgument(
                    "Must specify timestamp for StartingPosition of type AT_TIMESTAMP.".to_owned(),
                ));
            };
            Ok(shard.log.seq_at_timestamp(at_ms.min(now))?)
        }
        ("AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER", Some(text)) => {
            let parsed = SeqNum::decode(text)
                .filter(|n| n.shard_index == shard.index && stream.issued_here(shard, n))
                .ok_or_else(|| invalid(text))?;
            let seq = if kind == "AFTER_SEQUENCE_NUMBER" && !is_position_marker(&parsed) {
                parsed.seq.saturating_add(1)
            } else {
                parsed.seq
            };
            if seq > shard.log.next_seq() {
                return Err(invalid(text));
            }
            Ok(seq)
        }
        _ => Err(KinesisError::InvalidArgument(format!(
            "StartingPosition of type {kind} needs a SequenceNumber."
        ))),
    }
}

impl Subscription {
    /// The next `SubscribeToShardEvent` as a JSON payload; `None` once the
    /// subscription has ended cleanly (its 5 minutes are up, or the event
    /// with the ChildShards of a closed shard was sent). An error ends it
    /// too: the caller reports it as an exception event.
    pub async fn next_event(&mut self) -> Option<Result<Bytes, KinesisError>> {
        if self.finished {
            return None;
        }
        let result = self.produce().await;
        if !matches!(result, Ok(Some(_))) {
            self.finished = true;
        }
        result.transpose()
    }

    async fn produce(&mut self) -> Result<Option<Bytes>, KinesisError> {
        let heartbeat = Instant::now() + HEARTBEAT_INTERVAL;
        loop {
            if let Some(why) = self.ended_because() {
                return Err(self.ended_error(why));
            }
            if Instant::now() >= self.deadline {
                return Ok(None);
            }
            if self.waited_for_pace().await {
                continue;
            }
            let stream = self.stream()?;
            let not_found = || {
                errors::shard_not_found(
                    &catalog::shard_id(self.shard_index),
                    &self.stream,
                    self.kinesis.account(),
                )
            };
            let shard = stream.shard(self.shard_index).ok_or_else(not_found)?;
            let now = now_ms();
            let batch = read(shard, self.position).await.map_err(|err| match err {
                LogError::Deleted { .. } => not_found(),
                err => err.into(),
            })?;
            let at_end = batch.end_of_log && shard.closed;
            let cutoff = stream.trim_horizon_ms(now);
            let retained =
                &batch.records[batch.records.partition_point(|r| r.arrival_ms < cutoff)..];
            if !retained.is_empty() || at_end || !self.sent_first || Instant::now() >= heartbeat {
                let caught_up = batch.next_seq >= shard.log.next_seq();
                let behind = match retained.last() {
                    Some(last) if !caught_up => (now - last.arrival_ms).max(0),
                    _ => 0,
                };
                shard.metrics.pushed(retained);
                self.age.store(behind, Ordering::Relaxed);
                let event = encode_event(&stream, shard, retained, batch.next_seq, behind, at_end);
                let bytes = retained
                    .iter()
                    .map(|r| r.data.len() + r.partition_key.len())
                    .sum();
                self.pace.charge(bytes);
                self.position = batch.next_seq;
                self.sent_first = true;
                // After a closed shard's last event, the subscription is over.
                self.finished = at_end;
                return Ok(Some(Bytes::from(event)));
            }
            // A reshard closed the log but has not committed the children.
            let resharding = batch.end_of_log && shard.log.is_closed();
            let log = shard.log.clone();
            drop(stream);
            let wake = self.deadline.min(heartbeat);
            let position = self.position;
            tokio::select! {
                () = log.wait_readable(position), if !resharding => {}
                () = tokio::time::sleep(RESHARD_RECHECK), if resharding => {}
                _ = self.ended.changed() => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// With throughput limits on, waits while this consumer's read
    /// allowance is in debt; returns whether it waited (the caller then
    /// checks again whether the subscription should end).
    async fn waited_for_pace(&mut self) -> bool {
        let Some(at) = self.kinesis.throttle_ms() else {
            return false;
        };
        self.pace.refill(at);
        let wait_ms = self.pace.wait_ms();
        if wait_ms == 0 {
            return false;
        }
        let until = Instant::now() + Duration::from_millis(wait_ms as u64);
        tokio::select! {
            () = tokio::time::sleep_until(until.min(self.deadline)) => {}
            _ = self.ended.changed() => {}
        }
        true
    }

    fn ended_because(&self) -> Option<Ended> {
        // The registry keeps the sender while the subscription is listed;
        // without it, the subscription was removed from the registry.
        let gone = self.ended.has_changed().is_err();
        (*self.ended.borrow()).or(gone.then_some(Ended::Deregistered))
    }

    fn ended_error(&self, why: Ended) -> KinesisError {
        let shard = catalog::shard_id(self.shard_index);
        let arn = &self.consumer_arn;
        KinesisError::ResourceInUse(match why {
            Ended::TakenOver => {
                format!("Another subscription to shard {shard} by consumer {arn} has taken over.")
            }
            Ended::Deregistered => {
                format!(
                    "Consumer {arn} is being deregistered; its subscription to shard {shard} ended."
                )
            }
        })
    }

    /// The subscribed stream as it is now, unless it was deleted.
    fn stream(&self) -> Result<Arc<Stream>, KinesisError> {
        let now = now_ms();
        self.kinesis
            .get(&self.stream)
            .filter(|s| s.record.incarnation == self.incarnation && s.is_usable(now))
            .ok_or_else(|| errors::stream_not_found(&self.stream, self.kinesis.account()))
    }
}

/// Reads one event's worth of records (AWS's GetRecords limits) on the
/// blocking pool: it may copy 10 MiB or touch the disk.
async fn read(shard: &Shard, from: Seq) -> Result<riffle_log::ReadBatch, LogError> {
    let log = shard.log.clone();
    let limits = ReadLimits {
        records_max: RECORDS_MAX,
        bytes_max: RESPONSE_BYTES_MAX,
    };
    tokio::task::spawn_blocking(move || log.read(from, limits))
        .await
        .map_err(|err| LogError::Meta(format!("read task failed: {err}")))?
}

/// A `SubscribeToShardEvent`: `{"Records":[…],"ContinuationSequenceNumber":
/// "…","MillisBehindLatest":0}`, or, as a closed shard's last event,
/// `{"Records":[…],"MillisBehindLatest":0,"ChildShards":[…]}`.
///
/// Every event has exactly one of a continuation and child shards, as AWS
/// sends them: the end of a shard has nothing to continue from. The Java
/// KCL holds clients to that rule (its `FanOutRecordsPublisher` rejects an
/// event with both, or with neither, and subscribes again), so an event with
/// both made it read the parent's end forever and never reach its children.
fn encode_event(
    stream: &Stream,
    shard: &Shard,
    records: &[riffle_log::Record],
    next: Seq,
    behind_ms: i64,
    at_end: bool,
) -> String {
    let estimate: usize = records
        .iter()
        .map(|r| r.data.len() / 3 * 4 + r.partition_key.len() + 160)
        .sum();
    let mut out = String::with_capacity(estimate + 300);
    write_records(&mut out, stream, shard, records);
    if !at_end {
        // Where to resume: the last record sent, or a position marker.
        let continuation = match records.last() {
            Some(last) => stream.seq_number(shard, last.seq, last.arrival_ms),
            None => stream.seq_number(shard, next, POSITION_MARKER_ARRIVAL_MS),
        };
        out.push_str(r#","ContinuationSequenceNumber":""#);
        out.push_str(&continuation);
        out.push('"');
    }
    out.push_str(&format!(r#","MillisBehindLatest":{behind_ms}"#));
    if at_end {
        out.push_str(r#","ChildShards":"#);
        out.push_str(&child_shards(stream, shard));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_consumer_reads_two_mib_a_second_with_one_event_of_debt() {
        let mut pace = Pace::full(0);
        assert_eq!(pace.wait_ms(), 0);
        // A 10 MiB event from a full bucket: 8 MiB of debt, repaid in 4 s.
        pace.charge(10 * 1024 * 1024);
        assert_eq!(pace.wait_ms(), 4_000);
        pace.refill(3_000);
        assert_eq!(pace.wait_ms(), 1_000);
        pace.refill(4_000);
        assert_eq!(pace.wait_ms(), 0);
        // Idle time refills one second's worth at most.
        pace.refill(60_000);
        assert_eq!(pace, Pace::full(60_000));
        // A clock stepping back accrues nothing.
        pace.charge(3 * 1024 * 1024);
        pace.refill(1_000);
        assert_eq!(pace.wait_ms(), 500);
    }
}
