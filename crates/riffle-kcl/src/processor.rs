//! What an application implements (a `RecordProcessor` per shard) and what
//! it is handed: records, and a checkpointer bound to the shard's lease.

use std::future::Future;
use std::sync::Arc;

use crate::KclError;
use crate::lease::Checkpoint;
use crate::table::{LeaseTable, Outcome};

/// One user record. Aggregated (KPL) records are split by the worker's
/// [`Deaggregator`]; `sub_sequence_number` is then the record's index in
/// its aggregate, and 0 for a plain record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub sequence_number: String,
    pub sub_sequence_number: i64,
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Vec<u8>,
    /// Milliseconds since the epoch, as Kinesis stamped the record.
    pub approximate_arrival_millis: Option<i64>,
}

/// Splits a Kinesis record into its user records. The seam for KPL
/// de-aggregation (the `riffle-kpl` crate): the default passes records
/// through unchanged.
pub trait Deaggregator: Send + Sync {
    fn deaggregate(&self, record: Record) -> Vec<Record>;
}

/// Passes every record through as it is.
#[derive(Debug, Default)]
pub struct NoDeaggregation;

impl Deaggregator for NoDeaggregation {
    fn deaggregate(&self, record: Record) -> Vec<Record> {
        vec![record]
    }
}

/// Where a shard's processing starts.
#[derive(Debug, Clone)]
pub struct InitializeInput {
    pub shard_id: String,
    /// The checkpoint the lease held when this worker took it.
    pub checkpoint: Checkpoint,
    pub pending_checkpoint: Option<Checkpoint>,
}

/// A batch of records and how far behind the tip it is.
#[derive(Debug)]
pub struct ProcessRecordsInput {
    pub records: Vec<Record>,
    pub millis_behind_latest: Option<i64>,
}

/// Application code for one shard. The worker calls `initialize` once
/// (after the shard's parents are finished), then `process_records` for
/// each batch in order, and exactly one of the three endings. A processor
/// whose lease is lost or whose worker stops while it still waits for its
/// parents is dropped without any call, having processed nothing.
pub trait RecordProcessor: Send + 'static {
    fn initialize(&mut self, input: InitializeInput) -> impl Future<Output = ()> + Send;

    fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) -> impl Future<Output = ()> + Send;

    /// Another worker took the lease: do not checkpoint, just stop.
    fn lease_lost(&mut self) -> impl Future<Output = ()> + Send;

    /// The shard was read to its end. The processor must call
    /// `checkpointer.checkpoint_shard_end()` (or `checkpoint()`, which does
    /// the same here) for the shard's children to start, as in KCL.
    fn shard_ended(&mut self, checkpointer: &mut Checkpointer) -> impl Future<Output = ()> + Send;

    /// The worker is shutting down gracefully: checkpoint what is done.
    fn shutdown_requested(
        &mut self,
        checkpointer: &mut Checkpointer,
    ) -> impl Future<Output = ()> + Send;
}

/// Writes checkpoints to one shard's lease, while this worker owns it.
#[derive(Debug)]
pub struct Checkpointer {
    table: Arc<LeaseTable>,
    shard_id: String,
    worker_id: Arc<str>,
    /// The last record handed to the processor (the default checkpoint).
    pub(crate) last_delivered: Option<Checkpoint>,
    pub(crate) at_shard_end: bool,
    pub(crate) last_written: Option<Checkpoint>,
    /// A checkpoint found the lease taken: the consumer stops at once
    /// rather than at the next renewal.
    pub(crate) lost: bool,
}

impl Checkpointer {
    pub(crate) fn new(table: Arc<LeaseTable>, shard_id: &str, worker_id: Arc<str>) -> Checkpointer {
        Checkpointer {
            table,
            shard_id: shard_id.to_owned(),
            worker_id,
            last_delivered: None,
            at_shard_end: false,
            last_written: None,
            lost: false,
        }
    }

    pub fn shard_id(&self) -> &str {
        &self.shard_id
    }

    /// Checkpoints the last record delivered (or SHARD_END once the shard
    /// ended). Errors with `LeaseLost` when another worker owns the lease.
    pub async fn checkpoint(&mut self) -> Result<(), KclError> {
        if self.at_shard_end {
            return self.write(Checkpoint::ShardEnd).await;
        }
        match self.last_delivered.clone() {
            Some(at) => self.write(at).await,
            None => Ok(()),
        }
    }

    /// Checkpoints at a given record (and sub-record).
    pub async fn checkpoint_at(
        &mut self,
        sequence: &str,
        sub_sequence: i64,
    ) -> Result<(), KclError> {
        self.write(Checkpoint::Sequence {
            sequence: sequence.to_owned(),
            sub_sequence,
        })
        .await
    }

    /// Marks the shard finished so its children may start.
    pub async fn checkpoint_shard_end(&mut self) -> Result<(), KclError> {
        self.write(Checkpoint::ShardEnd).await
    }

    /// Records a pending checkpoint (KCL's `prepareCheckpoint`); a later
    /// `checkpoint` call commits and clears it.
    pub async fn prepare_checkpoint(
        &mut self,
        sequence: &str,
        sub_sequence: i64,
    ) -> Result<(), KclError> {
        let at = Checkpoint::Sequence {
            sequence: sequence.to_owned(),
            sub_sequence,
        };
        match self
            .table
            .prepare(&self.shard_id, &self.worker_id, &at)
            .await?
        {
            Outcome::Done => Ok(()),
            Outcome::Lost => Err(KclError::LeaseLost(self.shard_id.clone())),
        }
    }

    async fn write(&mut self, at: Checkpoint) -> Result<(), KclError> {
        match self
            .table
            .checkpoint(&self.shard_id, &self.worker_id, &at)
            .await?
        {
            Outcome::Done => {
                self.last_written = Some(at);
                Ok(())
            }
            Outcome::Lost => {
                self.lost = true;
                Err(KclError::LeaseLost(self.shard_id.clone()))
            }
        }
    }
}
