//! Sending a batch with PutRecords (Kinesis) or PutRecordBatch (Firehose)
//! through the official SDKs, retrying failed records and failed calls with
//! backoff until every record is acknowledged: the agent never drops one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::primitives::Blob;
use md5::{Digest, Md5};

use crate::config::PartitionKeyOption;
use crate::metrics::SendMetrics;

/// PutRecords: at most 500 records and 5 MiB (data and partition keys) a
/// call; a record's data and key at most 1 MiB (Kinesis quotas).
pub const KINESIS_MAX_RECORDS: usize = 500;
pub const KINESIS_MAX_BYTES: usize = 5 * 1024 * 1024;
/// A record's data, leaving room for the longest partition key (256).
pub const KINESIS_MAX_RECORD: usize = 1024 * 1024 - 256;
/// PutRecordBatch: at most 500 records and 4 MiB a call; a record at most
/// 1,000 KiB (Firehose quotas).
pub const FIREHOSE_MAX_RECORDS: usize = 500;
pub const FIREHOSE_MAX_BYTES: usize = 4 * 1024 * 1024;
pub const FIREHOSE_MAX_RECORD: usize = 1000 * 1024;
/// Backoff between retries: doubling from the first to the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Counts for the progress line.
#[derive(Debug, Default)]
pub struct Stats {
    pub parsed_records: AtomicU64,
    pub parsed_bytes: AtomicU64,
    pub skipped_records: AtomicU64,
    pub sent_records: AtomicU64,
    pub failed_records: AtomicU64,
    pub failed_calls: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// A flow's destination and its CloudWatch counts.
pub struct Sink {
    pub target: Target,
    pub metrics: Arc<SendMetrics>,
}

/// A flow's destination, with the client that reaches it.
pub enum Target {
    Kinesis {
        client: aws_sdk_kinesis::Client,
        stream: String,
        partition_key: PartitionKeyOption,
    },
    Firehose {
        client: aws_sdk_firehose::Client,
        stream: String,
    },
}

impl Sink {
    /// The largest record, the most records and bytes of one call.
    pub fn limits(&self) -> (usize, usize, usize) {
        match self.target {
            Target::Kinesis { .. } => (KINESIS_MAX_RECORD, KINESIS_MAX_RECORDS, KINESIS_MAX_BYTES),
            Target::Firehose { .. } => (
                FIREHOSE_MAX_RECORD,
                FIREHOSE_MAX_RECORDS,
                FIREHOSE_MAX_BYTES,
            ),
        }
    }

    /// Sends the records and returns once every one was acknowledged.
    pub async fn send(&self, records: Vec<Vec<u8>>, stats: &Stats) {
        let mut pending = records;
        let mut backoff = BACKOFF_FIRST;
        loop {
            let count = pending.len();
            match self.target.attempt(&pending).await {
                Ok(failed) => {
                    let failed_bytes: usize = failed.iter().map(|&i| pending[i].len()).sum();
                    let bytes: usize = pending.iter().map(Vec::len).sum();
                    self.metrics
                        .answered(count, failed.len(), bytes - failed_bytes);
                    Stats::add(&stats.sent_records, count - failed.len());
                    Stats::add(&stats.failed_records, failed.len());
                    if failed.is_empty() {
                        return;
                    }
                    tracing::debug!("{} of {count} records failed; retrying them", failed.len());
                    pending = failed
                        .into_iter()
                        .map(|i| std::mem::take(&mut pending[i]))
                        .collect();
                }
                Err(reason) => {
                    self.metrics.call_failed(count);
                    Stats::add(&stats.failed_calls, 1);
                    tracing::warn!(
                        "sending {count} records failed, retrying in {backoff:?}: {reason}"
                    );
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

impl Target {
    /// One call: the indexes of the records it did not take, or why it failed.
    async fn attempt(&self, records: &[Vec<u8>]) -> Result<Vec<usize>, String> {
        match self {
            Target::Kinesis {
                client,
                stream,
                partition_key,
            } => {
                let entries = records
                    .iter()
                    .map(|data| {
                        aws_sdk_kinesis::types::PutRecordsRequestEntry::builder()
                            .data(Blob::new(data.clone()))
                            .partition_key(partition_key_of(*partition_key, data))
                            .build()
                            .map_err(|err| err.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let output = client
                    .put_records()
                    .stream_name(stream)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .map_err(|err| DisplayErrorContext(&err).to_string())?;
                Ok(failed(output.records().iter().map(|r| r.error_code())))
            }
            Target::Firehose { client, stream } => {
                let entries = records
                    .iter()
                    .map(|data| {
                        aws_sdk_firehose::types::Record::builder()
                            .data(aws_sdk_firehose::primitives::Blob::new(data.clone()))
                            .build()
                            .map_err(|err| err.to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let output = client
                    .put_record_batch()
                    .delivery_stream_name(stream)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .map_err(|err| DisplayErrorContext(&err).to_string())?;
                Ok(failed(
                    output.request_responses().iter().map(|r| r.error_code()),
                ))
            }
        }
    }
}

fn failed<'a>(codes: impl Iterator<Item = Option<&'a str>>) -> Vec<usize> {
    codes
        .enumerate()
        .filter(|(_, code)| code.is_some())
        .map(|(i, _)| i)
        .collect()
}

/// The agent's partition keys: RANDOM is a random number below a million,
/// DETERMINISTIC the MD5 of the record's data in hex.
pub fn partition_key_of(option: PartitionKeyOption, data: &[u8]) -> String {
    match option {
        PartitionKeyOption::Random => format!("{}", fastrand::f64() * 1_000_000.0),
        PartitionKeyOption::Deterministic => Md5::digest(data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_keys_are_the_md5_of_the_data() {
        assert_eq!(
            partition_key_of(PartitionKeyOption::Deterministic, b"hello\n"),
            "b1946ac92492d2347c6235b4d2611184"
        );
        let random = partition_key_of(PartitionKeyOption::Random, b"x");
        assert!(random.parse::<f64>().unwrap() < 1_000_000.0, "{random}");
    }
}
