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
    /// Whether it came out of a KPL-aggregated record (the Java KCL's
    /// `KinesisClientRecord.aggregated()`).
    pub aggregated: bool,
}

/// Splits a Kinesis record into its user records. The worker's default is
/// [`KplDeaggregation`], as the Java KCL de-aggregates KPL records unless
/// told otherwise; [`NoDeaggregation`] hands records over as they are.
pub trait Deaggregator: Send + Sync {
    fn deaggregate(&self, record: Record) -> Vec<Record>;
}

/// Splits a KPL-aggregated record (`riffle_kpl::format`) into its user
/// records, each with its own partition key and its index as its
/// sub-sequence number; any other record (no magic, a wrong MD5) passes
/// through as one record, as the Java KCL reads it.
#[derive(Debug, Default)]
pub struct KplDeaggregation;

impl Deaggregator for KplDeaggregation {
    fn deaggregate(&self, record: Record) -> Vec<Record> {
        let Some(users) = riffle_kpl::decode(&record.data) else {
            return vec![record];
        };
        users
            .into_iter()
            .map(|user| Record {
                sequence_number: record.sequence_number.clone(),
                // An index into a record of at most 1 MiB: far below i64::MAX.
                sub_sequence_number: i64::try_from(user.sub_sequence_number).unwrap_or(i64::MAX),
                partition_key: user.partition_key.to_owned(),
                explicit_hash_key: user.explicit_hash_key.map(str::to_owned),
                data: user.data.to_vec(),
                approximate_arrival_millis: record.approximate_arrival_millis,
                aggregated: true,
            })
            .collect()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kinesis_record(data: Vec<u8>) -> Record {
        Record {
            sequence_number: "49590338271490256608559692538361571095921575989136588898".to_owned(),
            sub_sequence_number: 0,
            partition_key: "outer".to_owned(),
            explicit_hash_key: None,
            data,
            approximate_arrival_millis: Some(1_700_000_000_000),
            aggregated: false,
        }
    }

    #[test]
    fn a_kpl_record_becomes_its_user_records_with_their_keys_and_indexes() {
        let users = [("a", &b"one"[..]), ("b", &b"two"[..]), ("a", &b"three"[..])];
        let aggregated = riffle_kpl::format::encode(
            &users
                .iter()
                .map(|&(partition_key, data)| riffle_kpl::UserRecord {
                    partition_key,
                    explicit_hash_key: None,
                    data,
                })
                .collect::<Vec<_>>(),
        );
        let out = KplDeaggregation.deaggregate(kinesis_record(aggregated));
        let got: Vec<_> = out
            .iter()
            .map(|r| {
                (
                    r.partition_key.as_str(),
                    r.data.as_slice(),
                    r.sub_sequence_number,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a", &b"one"[..], 0),
                ("b", &b"two"[..], 1),
                ("a", &b"three"[..], 2)
            ]
        );
        assert!(out.iter().all(|r| r.aggregated
            && r.sequence_number.starts_with("4959")
            && r.approximate_arrival_millis == Some(1_700_000_000_000)));
    }

    #[test]
    fn a_plain_record_passes_through_unchanged() {
        let plain = kinesis_record(b"{\"not\":\"aggregated\"}".to_vec());
        assert_eq!(KplDeaggregation.deaggregate(plain.clone()), vec![plain]);
    }
}
