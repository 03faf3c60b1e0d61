//! One shard's consumer: waits for its parents, reads records (GetRecords
//! polling or SubscribeToShard fan-out) and hands them to the processor in
//! order until the shard ends, the lease is lost or the worker stops.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_kinesis::types::{
    ChildShard, ShardIteratorType, StartingPosition, SubscribeToShardEventStream,
};
use tokio::sync::watch;

use crate::lease::{Checkpoint, Lease};
use crate::processor::{
    Checkpointer, Deaggregator, InitializeInput, ProcessRecordsInput, Record, RecordProcessor,
};
use crate::table::{LeaseTable, aws_error_text};
use crate::{KclError, Retrieval};

/// How often a child checks whether its parents reached SHARD_END (KCL's
/// `parentShardPollInterval` default is 10 s; shorter costs one GetItem).
const PARENT_POLL: Duration = Duration::from_secs(1);
/// A caught-up poller's pause: 5 GetRecords a second is a shard's limit
/// (API_GetRecords), shared with other consumers of the shard.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// A throttled or failing call's pause before it is tried again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Consecutive failed calls after which the consumer gives the lease up.
const FAILURES_MAX: u32 = 10;
/// Records per GetRecords call (KCL's `maxRecords` default).
pub const MAX_RECORDS: i32 = 10_000;

/// Why the worker asks a consumer to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    Running,
    LeaseLost,
    Shutdown,
}

/// How a consumer finished.
#[derive(Debug)]
pub(crate) enum Ended {
    /// Read to the end; `checkpointed` when the processor wrote SHARD_END.
    ShardEnd {
        checkpointed: bool,
    },
    LeaseLost,
    Shutdown,
    Failed(KclError),
}

/// What every consumer of a worker shares.
pub(crate) struct Shared {
    pub kinesis: aws_sdk_kinesis::Client,
    pub table: Arc<LeaseTable>,
    pub stream: String,
    pub worker_id: Arc<str>,
    pub retrieval: Retrieval,
    pub deaggregator: Arc<dyn Deaggregator>,
}

/// One batch from either retrieval mode.
struct Batch {
    records: Vec<aws_sdk_kinesis::types::Record>,
    millis_behind: Option<i64>,
    /// Set at the shard's end: its children.
    end: Option<Vec<ChildShard>>,
}

pub(crate) async fn run<P: RecordProcessor>(
    shared: Arc<Shared>,
    lease: Lease,
    mut processor: P,
    mut stop: watch::Receiver<Stop>,
    delivered_bytes: Arc<AtomicU64>,
) -> Ended {
    if let Err(ended) = wait_for_parents(&shared, &lease, &mut stop).await {
        return ended;
    }
    processor
        .initialize(InitializeInput {
            shard_id: lease.key.clone(),
            checkpoint: lease.checkpoint.clone(),
            pending_checkpoint: lease.pending_checkpoint.clone(),
        })
        .await;
    let mut checkpointer =
        Checkpointer::new(shared.table.clone(), &lease.key, shared.worker_id.clone());
    let ended = consume(
        &shared,
        &lease,
        &mut processor,
        &mut checkpointer,
        &mut stop,
        &delivered_bytes,
    )
    .await;
    tracing::debug!(shard = %lease.key, worker = %shared.worker_id, ?ended, "consumer stopped");
    match ended {
        Ended::ShardEnd { .. } => {
            checkpointer.at_shard_end = true;
            processor.shard_ended(&mut checkpointer).await;
            let checkpointed = checkpointer.last_written == Some(Checkpoint::ShardEnd);
            Ended::ShardEnd { checkpointed }
        }
        Ended::LeaseLost => {
            processor.lease_lost().await;
            Ended::LeaseLost
        }
        Ended::Shutdown => {
            processor.shutdown_requested(&mut checkpointer).await;
            Ended::Shutdown
        }
        Ended::Failed(error) => {
            processor.lease_lost().await;
            Ended::Failed(error)
        }
    }
}

/// Parent before child: a child waits until every parent that has a lease
/// is checkpointed at SHARD_END (KCL's `BlockOnParentShardTask`).
async fn wait_for_parents(
    shared: &Shared,
    lease: &Lease,
    stop: &mut watch::Receiver<Stop>,
) -> Result<(), Ended> {
    for parent in &lease.parent_shard_ids {
        loop {
            match shared.table.get(parent).await {
                Ok(None) => break,
                Ok(Some(p)) if p.is_finished() => break,
                Ok(Some(_)) => {}
                Err(error) => tracing::warn!(%parent, %error, "reading a parent lease"),
            }
            if pause(stop, PARENT_POLL).await != Stop::Running {
                return Err(stopped(*stop.borrow()));
            }
        }
    }
    Ok(())
}

fn stopped(stop: Stop) -> Ended {
    match stop {
        Stop::LeaseLost => Ended::LeaseLost,
        _ => Ended::Shutdown,
    }
}

/// Sleeps unless told to stop first; returns the stop state.
async fn pause(stop: &mut watch::Receiver<Stop>, duration: Duration) -> Stop {
    if *stop.borrow() != Stop::Running {
        return *stop.borrow();
    }
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = stop.changed() => {}
    }
    *stop.borrow()
}

async fn consume<P: RecordProcessor>(
    shared: &Shared,
    lease: &Lease,
    processor: &mut P,
    checkpointer: &mut Checkpointer,
    stop: &mut watch::Receiver<Stop>,
    delivered_bytes: &AtomicU64,
) -> Ended {
    let mut source = Source::new(lease.checkpoint.clone());
    let mut failures = 0;
    loop {
        let state = *stop.borrow();
        if state != Stop::Running {
            return stopped(state);
        }
        let batch = tokio::select! {
            batch = source.next(shared, &lease.key) => batch,
            _ = stop.changed() => continue,
        };
        let batch = match batch {
            Ok(batch) => {
                failures = 0;
                batch
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(shard = %lease.key, %error, "reading records");
                if failures >= FAILURES_MAX {
                    return Ended::Failed(error);
                }
                pause(stop, RETRY_PAUSE).await;
                continue;
            }
        };
        let caught_up = batch.records.is_empty() && batch.end.is_none();
        let bytes: usize = batch.records.iter().map(|r| r.data.as_ref().len()).sum();
        delivered_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let records = source.user_records(shared, batch.records);
        if let Some(last) = records.last() {
            checkpointer.last_delivered = Some(Checkpoint::Sequence {
                sequence: last.sequence_number.clone(),
                sub_sequence: last.sub_sequence_number,
            });
            let input = ProcessRecordsInput {
                records,
                millis_behind_latest: batch.millis_behind,
            };
            processor.process_records(input, checkpointer).await;
            if checkpointer.lost {
                return Ended::LeaseLost;
            }
        }
        if let Some(children) = batch.end {
            let ids: BTreeSet<String> = children.iter().map(|c| c.shard_id().to_owned()).collect();
            if let Err(error) = shared
                .table
                .set_children(&lease.key, &shared.worker_id, &ids)
                .await
            {
                tracing::warn!(shard = %lease.key, %error, "naming child shards");
            }
            return Ended::ShardEnd {
                checkpointed: false,
            };
        }
        if caught_up && matches!(shared.retrieval, Retrieval::Polling) {
            pause(stop, IDLE_POLL).await;
        }
    }
}

/// Where reading stands, in either mode.
struct Source {
    /// Resume after this record (and sub-record), or from a sentinel.
    position: Checkpoint,
    iterator: Option<String>,
    /// Fan-out's last record of the batch being delivered: the position
    /// once `user_records` has filtered that batch.
    continuation: Option<String>,
    events: Option<
        aws_sdk_kinesis::primitives::event_stream::EventReceiver<
            SubscribeToShardEventStream,
            aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError,
        >,
    >,
}

impl Source {
    fn new(position: Checkpoint) -> Source {
        Source {
            position,
            iterator: None,
            continuation: None,
            events: None,
        }
    }

    async fn next(&mut self, shared: &Shared, shard: &str) -> Result<Batch, KclError> {
        match &shared.retrieval {
            Retrieval::Polling => self.poll(shared, shard).await,
            Retrieval::FanOut { consumer_arn } => {
                self.subscribed(shared, shard, consumer_arn).await
            }
        }
    }

    /// The resume position as an iterator type and its sequence number.
    fn start(&self) -> (ShardIteratorType, Option<String>) {
        match &self.position {
            Checkpoint::TrimHorizon | Checkpoint::AtTimestamp | Checkpoint::ShardEnd => {
                (ShardIteratorType::TrimHorizon, None)
            }
            Checkpoint::Latest => (ShardIteratorType::Latest, None),
            // A partly processed aggregate is read again, its done
            // sub-records skipped by `user_records`.
            Checkpoint::Sequence {
                sequence,
                sub_sequence,
            } if *sub_sequence > 0 => (ShardIteratorType::AtSequenceNumber, Some(sequence.clone())),
            Checkpoint::Sequence { sequence, .. } => (
                ShardIteratorType::AfterSequenceNumber,
                Some(sequence.clone()),
            ),
        }
    }

    async fn poll(&mut self, shared: &Shared, shard: &str) -> Result<Batch, KclError> {
        let iterator = match self.iterator.take() {
            Some(iterator) => iterator,
            None => self.fresh_iterator(shared, shard).await?,
        };
        let got = shared
            .kinesis
            .get_records()
            .shard_iterator(iterator)
            .limit(MAX_RECORDS)
            .send()
            .await
            .map_err(|e| KclError::Kinesis(aws_error_text(&e)))?;
        self.iterator = got.next_shard_iterator.clone();
        let end = match &self.iterator {
            None => Some(got.child_shards.clone().unwrap_or_default()),
            Some(_) => None,
        };
        Ok(Batch {
            records: got.records,
            millis_behind: got.millis_behind_latest,
            end,
        })
    }

    async fn fresh_iterator(&self, shared: &Shared, shard: &str) -> Result<String, KclError> {
        let (kind, sequence) = self.start();
        let got = shared
            .kinesis
            .get_shard_iterator()
            .stream_name(&shared.stream)
            .shard_id(shard)
            .shard_iterator_type(kind)
            .set_starting_sequence_number(sequence)
            .send()
            .await
            .map_err(|e| KclError::Kinesis(aws_error_text(&e)))?;
        got.shard_iterator
            .ok_or_else(|| KclError::Kinesis("GetShardIterator gave no iterator".into()))
    }

    async fn subscribed(
        &mut self,
        shared: &Shared,
        shard: &str,
        consumer_arn: &str,
    ) -> Result<Batch, KclError> {
        if self.events.is_none() {
            let (kind, sequence) = self.start();
            let position = StartingPosition::builder()
                .r#type(kind)
                .set_sequence_number(sequence)
                .build()
                .map_err(|e| KclError::Kinesis(e.to_string()))?;
            let subscribed = shared
                .kinesis
                .subscribe_to_shard()
                .consumer_arn(consumer_arn)
                .shard_id(shard)
                .starting_position(position)
                .send()
                .await
                .map_err(|e| KclError::Kinesis(aws_error_text(&e)))?;
            self.events = Some(subscribed.event_stream);
        }
        let Some(events) = self.events.as_mut() else {
            return Err(KclError::Kinesis("no subscription".into()));
        };
        let event = match events.recv().await {
            Ok(Some(event)) => event,
            // The subscription's five minutes are over: subscribe again
            // from where it stood.
            Ok(None) => {
                self.events = None;
                return Ok(Batch {
                    records: Vec::new(),
                    millis_behind: None,
                    end: None,
                });
            }
            Err(error) => {
                self.events = None;
                return Err(KclError::Kinesis(aws_error_text(&error)));
            }
        };
        let Ok(event) = event.as_subscribe_to_shard_event().cloned() else {
            return Ok(Batch {
                records: Vec::new(),
                millis_behind: None,
                end: None,
            });
        };
        // The last event of a closed shard names its children and has no
        // continuation (the SDK reads the absent member as empty).
        let children = event.child_shards.clone().unwrap_or_default();
        let end = if event.continuation_sequence_number.is_empty() || !children.is_empty() {
            Some(children)
        } else {
            self.continuation = Some(event.continuation_sequence_number.clone());
            None
        };
        Ok(Batch {
            records: event.records,
            millis_behind: Some(event.millis_behind_latest),
            end,
        })
    }

    /// De-aggregates, skips the sub-records a checkpoint already covers, and
    /// moves the position past what is delivered.
    fn user_records(
        &mut self,
        shared: &Shared,
        records: Vec<aws_sdk_kinesis::types::Record>,
    ) -> Vec<Record> {
        let resume = self.position.clone();
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            for user in shared.deaggregator.deaggregate(user_record(record)) {
                if let Checkpoint::Sequence {
                    sequence,
                    sub_sequence,
                } = &resume
                    && *sequence == user.sequence_number
                    && user.sub_sequence_number <= *sub_sequence
                {
                    continue;
                }
                out.push(user);
            }
        }
        if let Some(sequence) = self.continuation.take() {
            self.position = Checkpoint::Sequence {
                sequence,
                sub_sequence: 0,
            };
        } else if let Some(last) = out.last() {
            self.position = Checkpoint::Sequence {
                sequence: last.sequence_number.clone(),
                sub_sequence: last.sub_sequence_number,
            };
        }
        out
    }
}

fn user_record(record: aws_sdk_kinesis::types::Record) -> Record {
    Record {
        approximate_arrival_millis: record
            .approximate_arrival_timestamp
            .and_then(|t| t.to_millis().ok()),
        sequence_number: record.sequence_number,
        sub_sequence_number: 0,
        partition_key: record.partition_key.unwrap_or_default(),
        explicit_hash_key: None,
        aggregated: false,
        data: record.data.into_inner(),
    }
}
