//! PutRecords: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html>
//!
//! Every record's data is decoded into one buffer; records are grouped by
//! shard and each shard gets one atomic append, all shards concurrently.
//! A shard whose append fails fails only its own records (reported per
//! record with `ErrorCode`), never the whole call.

use bytes::Bytes;
use futures_util::future::join_all;
use riffle_log::{Appended, LogError, RecordIn};
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::put_record::{check_record, check_stream_record_size, hash_key, refuse_dry_run};
use crate::json::{self, Blob, Bool, Str};
use crate::stream::Stream;
use crate::time::now_ms;
use crate::validate::{Shown, Violations};
use crate::{Kinesis, KinesisError, errors};

/// Records per call (API_PutRecords: "up to 500 records").
pub const RECORDS_MAX: usize = 500;
/// Data and partition keys per call (API_PutRecords: "up to a limit of
/// 5 MiB for the entire request, including partition keys").
pub const REQUEST_BYTES_MAX: usize = 5 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    Records: Option<Vec<Entry<'a>>>,
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
    DryRun: Option<Bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct Entry<'a> {
    #[serde(borrow)]
    Data: Option<Blob<'a>>,
    #[serde(borrow)]
    ExplicitHashKey: Option<Str<'a>>,
    #[serde(borrow)]
    PartitionKey: Option<Str<'a>>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Output<'a> {
    FailedRecordCount: usize,
    Records: Vec<ResultEntry<'a>>,
    EncryptionType: &'static str,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct ResultEntry<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    SequenceNumber: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ShardId: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ErrorCode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ErrorMessage: Option<&'static str>,
}

/// Where a record's data lies in the decoded buffer; `None` without Data.
type Span = Option<(usize, usize)>;

/// Decodes every record's data into one buffer; returns the buffer and
/// each record's `(start, end)` in it (`None` when it has no Data).
fn decode_all(entries: &[Entry<'_>]) -> Result<(Vec<u8>, Vec<Span>), KinesisError> {
    let total: usize = entries
        .iter()
        .filter_map(|e| e.Data.as_ref()?.decoded_len())
        .sum();
    let mut arena = Vec::with_capacity(total);
    let mut spans = Vec::with_capacity(entries.len());
    for entry in entries {
        spans.push(match &entry.Data {
            Some(blob) => {
                let start = arena.len();
                blob.decode_into(&mut arena)?;
                Some((start, arena.len()))
            }
            None => None,
        });
    }
    Ok((arena, spans))
}

fn validate(input: &Input<'_>, spans: &[Span]) -> Result<(), KinesisError> {
    let mut v = Violations::new();
    v.required(&input.Records, "records");
    if let Some(entries) = &input.Records {
        let shown = format!("[{} records]", entries.len());
        v.check(
            !entries.is_empty(),
            Shown::Text(&shown),
            "records",
            "Member must have length greater than or equal to 1",
        );
        v.check(
            entries.len() <= RECORDS_MAX,
            Shown::Text(&shown),
            "records",
            format_args!("Member must have length less than or equal to {RECORDS_MAX}"),
        );
        for (i, (entry, span)) in entries.iter().zip(spans).enumerate().take(RECORDS_MAX) {
            check_record(
                &mut v,
                || format!("records.{}.member.", i + 1),
                span.map(|(start, end)| end - start),
                entry.PartitionKey.as_ref().map(Str::as_str),
                entry.ExplicitHashKey.as_ref().map(Str::as_str),
            );
        }
    }
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result()
}

pub async fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let entries = input.Records.as_deref().unwrap_or_default();
    let (arena, spans) = decode_all(entries)?;
    validate(&input, &spans)?;
    refuse_dry_run(input.DryRun)?;
    let size: usize = spans.iter().flatten().map(|(s, e)| e - s).sum::<usize>()
        + entries
            .iter()
            .filter_map(|e| Some(e.PartitionKey.as_ref()?.as_str().len()))
            .sum::<usize>();
    if size > REQUEST_BYTES_MAX {
        return Err(KinesisError::InvalidArgument(format!(
            "Records size exceeds {} MB limit",
            REQUEST_BYTES_MAX / (1024 * 1024)
        )));
    }

    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    let now = now_ms();
    let stream = kinesis.lookup(&name, now)?;
    if !stream.is_usable(now) {
        return Err(errors::stream_not_found(&name, kinesis.account()));
    }
    let mut v = Violations::new();
    for (i, span) in spans.iter().enumerate() {
        let len = span.map_or(0, |(s, e)| e - s);
        check_stream_record_size(
            &mut v,
            || format!("records.{}.member.", i + 1),
            &stream,
            len,
        );
    }
    v.into_result()?;
    let routed = route_all(kinesis, &stream, entries)?;
    let outcomes = append_groups(&stream, &routed.groups, entries, &arena, &spans, now).await;
    super::respond(&results(&stream, &routed.placed, &outcomes))
}

/// Where every record of a call goes.
struct Routed {
    /// Per shard position, the indexes of its records in request order.
    groups: Vec<Vec<usize>>,
    /// Per record, its shard position and its place within that group.
    placed: Vec<(usize, usize)>,
}

fn route_all(
    kinesis: &Kinesis,
    stream: &Stream,
    entries: &[Entry<'_>],
) -> Result<Routed, KinesisError> {
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); stream.shards.len()];
    let mut placed = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let key = entry.PartitionKey.as_ref().map_or("", Str::as_str);
        let hash = hash_key(key, entry.ExplicitHashKey.as_ref().map(Str::as_str))?;
        // Every hash key has an open shard while no resharding is under way.
        let shard = stream
            .route(hash)
            .ok_or_else(|| errors::stream_not_found(stream.name(), kinesis.account()))?;
        let position = shard.index as usize;
        placed.push((position, groups[position].len()));
        groups[position].push(i);
    }
    Ok(Routed { groups, placed })
}

type Outcome = Option<Result<Appended, LogError>>;

/// One atomic append per shard with records, all concurrently; the
/// outcome per shard position (`None` for shards that got no records).
async fn append_groups(
    stream: &Stream,
    groups: &[Vec<usize>],
    entries: &[Entry<'_>],
    arena: &[u8],
    spans: &[Span],
    now: i64,
) -> Vec<Outcome> {
    let batches: Vec<(usize, Vec<RecordIn<'_>>)> = groups
        .iter()
        .enumerate()
        .filter(|(_, members)| !members.is_empty())
        .map(|(position, members)| {
            let records = members
                .iter()
                .map(|&i| RecordIn {
                    partition_key: entries[i]
                        .PartitionKey
                        .as_ref()
                        .map_or(&b""[..], |k| k.as_str().as_bytes()),
                    explicit_hash_key: entries[i]
                        .ExplicitHashKey
                        .as_ref()
                        .map(|k| k.as_str().as_bytes()),
                    data: spans[i].map_or(&[][..], |(s, e)| &arena[s..e]),
                })
                .collect();
            (position, records)
        })
        .collect();
    let appends = batches
        .iter()
        .map(|(position, records)| stream.shards[*position].log.append(records, now));
    let outcomes = join_all(appends).await;
    let mut by_position: Vec<Outcome> = (0..groups.len()).map(|_| None).collect();
    for ((position, _), outcome) in batches.iter().zip(outcomes) {
        if let Err(err) = &outcome {
            warn!(log = stream.shards[*position].log.name(), error = %err, "PutRecords append failed");
        }
        by_position[*position] = Some(outcome);
    }
    by_position
}

/// The response: one entry per record, in request order.
fn results<'s>(stream: &'s Stream, placed: &[(usize, usize)], outcomes: &[Outcome]) -> Output<'s> {
    let mut failed = 0;
    let records = placed
        .iter()
        .map(|&(position, nth)| {
            let shard = &stream.shards[position];
            match &outcomes[position] {
                Some(Ok(appended)) => ResultEntry {
                    SequenceNumber: Some(stream.seq_number(
                        shard,
                        appended.first_seq + nth as u64,
                        appended.arrival_ms,
                    )),
                    ShardId: Some(&shard.id),
                    ErrorCode: None,
                    ErrorMessage: None,
                },
                _ => {
                    failed += 1;
                    ResultEntry {
                        SequenceNumber: None,
                        ShardId: None,
                        ErrorCode: Some("InternalFailure"),
                        ErrorMessage: Some("Internal service failure."),
                    }
                }
            }
        })
        .collect();
    Output {
        FailedRecordCount: failed,
        Records: records,
        EncryptionType: "NONE",
    }
}
