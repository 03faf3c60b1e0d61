//! Record transformation: a buffer's records go to the Lambda processor's
//! function in invocations of Firehose's event, and what the function
//! answers replaces them ("Transform source data in Amazon Data
//! Firehose", "Required parameters for data transformation", "Handle
//! failure in data transformation").
//!
//! - **Batches.** At most the processor's BufferSizeInMBs of source data
//!   per invocation, and at most Lambda's 6 MB request once base64 and the
//!   event's JSON are counted; a record larger than that goes alone.
//!   Up to [`INVOCATIONS_IN_FLIGHT`] invocations of a buffer run at once
//!   (the function's `max_instances` bounds what really runs).
//! - **Record ids** are the records' positions in the stream's log, in
//!   decimal: unique in the stream, and the same when a restart sends a
//!   buffer again.
//! - **Failures.** An invocation that fails (the function raised, crashed
//!   or timed out; its answer is not the status model's JSON; the function
//!   cannot be invoked) is tried again up to NumberOfRetries times; then
//!   each of its records fails with the error AWS reports. A record whose
//!   id the answer leaves out (`Lambda.MissingRecordId`) or repeats
//!   (`Lambda.DuplicatedRecordId`), or answered `ProcessingFailed`
//!   (`Lambda.ProcessingFailedStatus`), fails on its own. Failed records
//!   are written as AWS's error records ([`error_line`]) to the
//!   `processing-failed/` output.
//!
//! # The event (as Lambda receives it)
//!
//! ```text
//! {"invocationId":"<uuid>","deliveryStreamArn":"arn:aws:firehose:…",
//!  "region":"us-east-1",
//!  "sourceKinesisStreamArn":"arn:aws:kinesis:…"        (a Kinesis source only)
//!  "records":[{"recordId":"<seq>","approximateArrivalTimestamp":<ms>,
//!              "data":"<base64>",
//!              "kinesisRecordMetadata":{"shardId":…,"partitionKey":…,
//!                 "approximateArrivalTimestamp":<ms>,"sequenceNumber":…,
//!                 "subsequenceNumber":<n>}}]}            (a Kinesis source only)
//! ```
//!
//! # The answer
//!
//! `{"records":[{"recordId":…,"result":"Ok"|"Dropped"|"ProcessingFailed",
//! "data":"<base64>","metadata":{"partitionKeys":{…}}}]}`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use riffle_coral::json::write_str;
use riffle_lambda::{FunctionRef, Functions, LambdaError, MAX_PAYLOAD_BYTES};
use serde::Deserialize;
use tokio::task::JoinSet;
use tracing::warn;

use crate::buffer::{Buffer, Records};
use crate::processing::LambdaProcessor;
use crate::source::SourceMeta;
use crate::stream::DeliveryStream;
use crate::time::now_ms;

/// Invocations of one buffer running at once.
pub const INVOCATIONS_IN_FLIGHT: usize = 8;
/// Room kept in a 6 MB request for the event's own members.
const EVENT_OVERHEAD: usize = 4096;
/// A record's members besides its data, at most (ids, timestamps, and a
/// Kinesis source's metadata with a 256-byte partition key, escaped).
const RECORD_OVERHEAD: usize = 2048;

/// What the stream's transformations need besides the buffer.
pub struct Transformer {
    pub functions: Option<Functions>,
    pub delivery_stream_arn: String,
    pub source_stream_arn: Option<String>,
    pub region: String,
    pub processor: LambdaProcessor,
    /// Its metrics count the invocations and their records.
    pub stream: Arc<DeliveryStream>,
}

/// A transformed buffer.
#[derive(Debug, Default)]
pub struct Transformed {
    /// The records the function answered `Ok`, transformed, in order.
    pub records: Records,
    /// Partition keys the function gave (`metadata.partitionKeys`), per
    /// record of `records`; empty maps when it gave none.
    pub partition_keys: Vec<BTreeMap<String, String>>,
    /// The error records of the records that failed, one JSON line each.
    pub failed: Vec<u8>,
    pub failed_records: u64,
    pub dropped_records: u64,
}

/// Why an invocation or a record failed: AWS's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    pub fn new(code: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    fn function_error() -> Failure {
        Failure::new(
            "Lambda.FunctionError",
            "The Lambda function was successfully invoked but it returned an error result.",
        )
    }

    fn json() -> Failure {
        Failure::new(
            "Lambda.JsonProcessingException",
            "There was an error parsing returned records from the Lambda function. Ensure that the returned records follow the status model required by Firehose.",
        )
    }

    fn missing_id() -> Failure {
        Failure::new(
            "Lambda.MissingRecordId",
            "One or more record Ids were not returned. Ensure that the Lambda function returns all received record Ids.",
        )
    }

    fn duplicated_id() -> Failure {
        Failure::new(
            "Lambda.DuplicatedRecordId",
            "Multiple records were returned with the same record Id. Ensure that the Lambda function returns unique record Ids for each record.",
        )
    }

    fn processing_failed() -> Failure {
        Failure::new(
            "Lambda.ProcessingFailedStatus",
            "ProcessingFailed status set for record",
        )
    }

    /// A function Riffle cannot invoke, as Firehose reports Lambda's
    /// refusals ("Lambda invocation errors" in "Monitoring Firehose with
    /// CloudWatch Logs"): one missing from `[functions]` is a function that
    /// does not exist (`Lambda.ResourceNotFound`); a name Lambda would not
    /// take is an invoke the role may not make (`Lambda.InvokeAccessDenied`,
    /// with the text AWS writes into the error records). Riffle's own
    /// reason goes to the log.
    fn registry(err: &LambdaError) -> Failure {
        match err {
            LambdaError::NotFound { .. } => {
                warn!(%err, "Firehose's Lambda processor names no known function");
                Failure::new(RESOURCE_NOT_FOUND, RESOURCE_NOT_FOUND_MESSAGE)
            }
            LambdaError::InvalidName { .. } => {
                warn!(%err, "Firehose's Lambda processor names no valid function");
                Failure::new(INVOKE_ACCESS_DENIED, INVOKE_ACCESS_DENIED_MESSAGE)
            }
            _ => Failure::new("Lambda.FunctionError", err.to_string()),
        }
    }
}

/// Firehose's codes and texts for a function it cannot invoke.
pub const RESOURCE_NOT_FOUND: &str = "Lambda.ResourceNotFound";
pub const RESOURCE_NOT_FOUND_MESSAGE: &str =
    "The specified Lambda function does not exist. Use a different function that does exist.";
pub const INVOKE_ACCESS_DENIED: &str = "Lambda.InvokeAccessDenied";
pub const INVOKE_ACCESS_DENIED_MESSAGE: &str =
    "Access was denied. Ensure that the access policy allows access to the Lambda function.";

/// One record's fate in an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// Transformed: its data's range in the answer's decoded data.
    Ok(Range<usize>, BTreeMap<String, String>),
    Dropped,
    Failed(Failure),
}

/// A parsed answer: the decoded data of every `Ok` record, and each
/// record's outcome in the batch's order.
#[derive(Debug, Default, PartialEq, Eq)]
struct Answer {
    data: Vec<u8>,
    outcomes: Vec<Outcome>,
}

/// How one batch ended, after its retries.
struct BatchResult {
    records: Range<usize>,
    attempts: u32,
    ended_ms: i64,
    answer: Result<Answer, Failure>,
}

impl Transformer {
    /// Transforms every record of `buffer`.
    pub async fn transform(self: &Arc<Self>, buffer: &Buffer) -> Transformed {
        let function = match &self.functions {
            Some(functions) => functions.resolve(&self.processor.lambda_arn),
            None => Err(LambdaError::NotFound {
                name: self.processor.lambda_arn.clone(),
            }),
        };
        let mut results = Vec::new();
        let mut running = JoinSet::new();
        let batches = batches(buffer, self.processor.batch_bytes);
        for batch in batches.iter().cloned() {
            if running.len() >= INVOCATIONS_IN_FLIGHT
                && let Some(done) = running.join_next().await
            {
                results.extend(done.ok());
            }
            let payload = self.event(buffer, batch.clone());
            let this = Arc::clone(self);
            let function = function.as_ref().map_err(Failure::registry).cloned();
            let first_id = buffer.from + batch.start as u64;
            running.spawn(async move { this.run_batch(function, payload, batch, first_id).await });
        }
        while let Some(done) = running.join_next().await {
            results.extend(done.ok());
        }
        results.sort_by_key(|r| r.records.start);
        let results = with_lost_batches(&batches, results);
        self.assemble(buffer, results)
    }

    /// Invokes the function with one batch's event, trying again up to
    /// NumberOfRetries times.
    async fn run_batch(
        &self,
        function: Result<FunctionRef, Failure>,
        payload: Bytes,
        records: Range<usize>,
        first_id: u64,
    ) -> BatchResult {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let answer = match &function {
                Ok(function) => {
                    self.invoke(function, payload.clone(), records.len(), first_id)
                        .await
                }
                Err(failure) => Err(failure.clone()),
            };
            let give_up = function.is_err() || attempts > self.processor.retries;
            if answer.is_ok() || give_up {
                return BatchResult {
                    records,
                    attempts,
                    ended_ms: now_ms(),
                    answer,
                };
            }
        }
    }

    async fn invoke(
        &self,
        function: &FunctionRef,
        payload: Bytes,
        records: usize,
        first_id: u64,
    ) -> Result<Answer, Failure> {
        let Some(functions) = &self.functions else {
            return Err(Failure::registry(&LambdaError::ShutDown));
        };
        let started = Instant::now();
        let invoked = functions.invoke(function, payload).await;
        let answer = match invoked {
            Err(err) => Err(Failure::registry(&err)),
            Ok(invocation) if invocation.function_error.is_some() => Err(Failure::function_error()),
            Ok(invocation) => parse_answer(&invocation.payload, records, first_id),
        };
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.stream.metrics.processing_invoked(ms, answer.is_ok());
        answer
    }

    /// Firehose's event for the records `batch` of `buffer`.
    fn event(&self, buffer: &Buffer, batch: Range<usize>) -> Bytes {
        let data_len: usize = batch.clone().map(|i| buffer.record(i).len()).sum();
        let mut out = String::with_capacity(data_len / 3 * 4 + batch.len() * 128 + 512);
        out.push_str("{\"invocationId\":");
        write_str(&mut out, &uuid::Uuid::new_v4().to_string());
        out.push_str(",\"deliveryStreamArn\":");
        write_str(&mut out, &self.delivery_stream_arn);
        if let Some(source) = &self.source_stream_arn {
            out.push_str(",\"sourceKinesisStreamArn\":");
            write_str(&mut out, source);
        }
        out.push_str(",\"region\":");
        write_str(&mut out, &self.region);
        out.push_str(",\"records\":[");
        for i in batch {
            if !out.ends_with('[') {
                out.push(',');
            }
            let id = buffer.from + i as u64;
            let _ = write!(
                out,
                "{{\"recordId\":\"{id}\",\"approximateArrivalTimestamp\":{},\"data\":\"",
                buffer.arrivals[i]
            );
            base64_simd::STANDARD.encode_append(buffer.record(i), &mut out);
            out.push('"');
            if self.source_stream_arn.is_some()
                && let Some(meta) = SourceMeta::decode(buffer.slot(i))
            {
                write_kinesis_metadata(&mut out, &meta);
            }
            out.push('}');
        }
        out.push_str("]}");
        Bytes::from(out)
    }

    /// The transformed records and the error records, in the buffer's order.
    fn assemble(&self, buffer: &Buffer, results: Vec<BatchResult>) -> Transformed {
        let mut out = Transformed::default();
        for result in results {
            match result.answer {
                Ok(answer) => {
                    for (i, outcome) in result.records.clone().zip(answer.outcomes) {
                        match outcome {
                            Outcome::Ok(range, keys) => {
                                let data = &answer.data[range];
                                self.stream
                                    .metrics
                                    .processing_succeeded(1, data.len() as u64);
                                out.records.push(data, buffer.arrivals[i]);
                                out.partition_keys.push(keys);
                            }
                            Outcome::Dropped => {
                                self.stream.metrics.processing_succeeded(1, 0);
                                out.dropped_records += 1;
                            }
                            Outcome::Failed(failure) => self.fail(
                                &mut out,
                                buffer,
                                i,
                                &failure,
                                result.attempts,
                                result.ended_ms,
                            ),
                        }
                    }
                }
                Err(failure) => {
                    for i in result.records.clone() {
                        self.fail(
                            &mut out,
                            buffer,
                            i,
                            &failure,
                            result.attempts,
                            result.ended_ms,
                        );
                    }
                }
            }
        }
        out
    }

    fn fail(
        &self,
        out: &mut Transformed,
        buffer: &Buffer,
        i: usize,
        failure: &Failure,
        attempts: u32,
        ended_ms: i64,
    ) {
        out.failed_records += 1;
        error_line(
            &mut out.failed,
            &ErrorRecord {
                attempts,
                arrival_ms: buffer.arrivals[i],
                failure,
                ended_ms,
                raw: buffer.record(i),
                lambda_arn: Some(&self.processor.lambda_arn),
            },
        );
    }
}

/// `results` (sorted) with a failure for each batch whose task ended
/// without a result (it panicked): its records go to the error output
/// rather than vanish.
fn with_lost_batches(batches: &[Range<usize>], results: Vec<BatchResult>) -> Vec<BatchResult> {
    if results.len() == batches.len() {
        return results;
    }
    let mut results = results.into_iter().peekable();
    let mut out = Vec::with_capacity(batches.len());
    for batch in batches {
        match results.next_if(|r| r.records.start == batch.start) {
            Some(result) => out.push(result),
            None => out.push(BatchResult {
                records: batch.clone(),
                attempts: 1,
                ended_ms: now_ms(),
                answer: Err(Failure::new(
                    "Lambda.FunctionError",
                    "The invocation ended abnormally in Riffle.",
                )),
            }),
        }
    }
    out
}

/// The ranges of records of each invocation.
fn batches(buffer: &Buffer, batch_bytes: usize) -> Vec<Range<usize>> {
    let request_max = MAX_PAYLOAD_BYTES - EVENT_OVERHEAD;
    let mut out = Vec::new();
    let (mut start, mut source, mut encoded) = (0, 0, 0);
    for i in 0..buffer.len() {
        let len = buffer.record(i).len();
        let size = len.div_ceil(3) * 4 + RECORD_OVERHEAD;
        if i > start && (source + len > batch_bytes || encoded + size > request_max) {
            out.push(start..i);
            (start, source, encoded) = (i, 0, 0);
        }
        source += len;
        encoded += size;
    }
    if start < buffer.len() {
        out.push(start..buffer.len());
    }
    out
}

fn write_kinesis_metadata(out: &mut String, meta: &SourceMeta) {
    out.push_str(",\"kinesisRecordMetadata\":{\"shardId\":");
    write_str(out, &meta.shard_id);
    out.push_str(",\"partitionKey\":");
    write_str(out, &String::from_utf8_lossy(&meta.partition_key));
    let _ = write!(
        out,
        ",\"approximateArrivalTimestamp\":{},\"sequenceNumber\":",
        meta.arrival_ms
    );
    write_str(out, &meta.sequence_number);
    let _ = write!(
        out,
        ",\"subsequenceNumber\":{}}}",
        meta.sub_sequence_number.unwrap_or(0)
    );
}

#[derive(Deserialize)]
struct AnswerIn<'a> {
    #[serde(borrow)]
    records: Vec<AnswerRecord<'a>>,
}

#[derive(Deserialize)]
struct AnswerRecord<'a> {
    #[serde(rename = "recordId", borrow)]
    record_id: Cow<'a, str>,
    #[serde(borrow)]
    result: Cow<'a, str>,
    #[serde(default, borrow)]
    data: Option<Cow<'a, str>>,
    #[serde(default)]
    metadata: Option<AnswerMetadata>,
}

#[derive(Deserialize)]
struct AnswerMetadata {
    #[serde(rename = "partitionKeys", default)]
    partition_keys: BTreeMap<String, String>,
}

/// The outcome of each of the `records` records whose ids start at
/// `first_id`, from the function's answer. An answer that is not the
/// status model (not JSON, a result other than the three, an `Ok` without
/// base64 data) fails the invocation; ids left out or repeated fail their
/// records; ids of no record of the batch are ignored.
fn parse_answer(payload: &[u8], records: usize, first_id: u64) -> Result<Answer, Failure> {
    let parsed: AnswerIn<'_> = serde_json::from_slice(payload).map_err(|_| Failure::json())?;
    let mut slots: Vec<Option<&AnswerRecord<'_>>> = vec![None; records];
    let mut duplicated = vec![false; records];
    for record in &parsed.records {
        let index = record
            .record_id
            .parse::<u64>()
            .ok()
            .and_then(|id| id.checked_sub(first_id))
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < records);
        let Some(index) = index else { continue };
        if slots[index].replace(record).is_some() {
            duplicated[index] = true;
        }
    }
    let mut answer = Answer::default();
    for (slot, duplicated) in slots.into_iter().zip(duplicated) {
        let outcome = match slot {
            _ if duplicated => Outcome::Failed(Failure::duplicated_id()),
            None => Outcome::Failed(Failure::missing_id()),
            Some(record) => match &*record.result {
                "Ok" => {
                    let data = record.data.as_deref().ok_or_else(Failure::json)?;
                    let start = answer.data.len();
                    base64_simd::STANDARD
                        .decode_append(data, &mut answer.data)
                        .map_err(|_| Failure::function_error())?;
                    let keys = record
                        .metadata
                        .as_ref()
                        .map(|m| m.partition_keys.clone())
                        .unwrap_or_default();
                    Outcome::Ok(start..answer.data.len(), keys)
                }
                "Dropped" => Outcome::Dropped,
                "ProcessingFailed" => Outcome::Failed(Failure::processing_failed()),
                _ => return Err(Failure::json()),
            },
        };
        answer.outcomes.push(outcome);
    }
    Ok(answer)
}

/// One failed record, as the `processing-failed/` output keeps it.
pub struct ErrorRecord<'a> {
    pub attempts: u32,
    pub arrival_ms: i64,
    pub failure: &'a Failure,
    pub ended_ms: i64,
    pub raw: &'a [u8],
    /// The Lambda processor's, for a transformation failure.
    pub lambda_arn: Option<&'a str>,
}

/// Appends AWS's error record for a record that failed transformation,
/// one JSON object and a newline:
///
/// ```text
/// {"attemptsMade":4,"arrivalTimestamp":1764987907000,
///  "errorCode":"Lambda.FunctionError","errorMessage":"…",
///  "attemptEndingTimestamp":1764987968000,"rawData":"<base64>",
///  "lambdaArn":"arn:aws:lambda:…:function:f"}
/// ```
pub fn error_line(out: &mut Vec<u8>, record: &ErrorRecord<'_>) {
    let mut line = String::with_capacity(record.raw.len() / 3 * 4 + 512);
    let _ = write!(
        line,
        "{{\"attemptsMade\":{},\"arrivalTimestamp\":{},\"errorCode\":",
        record.attempts, record.arrival_ms
    );
    write_str(&mut line, record.failure.code);
    line.push_str(",\"errorMessage\":");
    write_str(&mut line, &record.failure.message);
    let _ = write!(
        line,
        ",\"attemptEndingTimestamp\":{},\"rawData\":\"",
        record.ended_ms
    );
    base64_simd::STANDARD.encode_append(record.raw, &mut line);
    line.push('"');
    if let Some(arn) = record.lambda_arn {
        line.push_str(",\"lambdaArn\":");
        write_str(&mut line, arn);
    }
    line.push_str("}\n");
    out.extend_from_slice(line.as_bytes());
}

#[cfg(test)]
#[path = "transform_tests.rs"]
mod tests;
