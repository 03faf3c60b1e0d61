//! PutRecords: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecords.html>
//!
//! Every record's data is decoded into one buffer; records are grouped by
//! shard and each shard gets one atomic append, all shards concurrently.
//! A shard whose append fails fails only its own records (reported per
//! record with `ErrorCode`), never the whole call.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use riffle_log::{Appended, DataKey, LogError, RecordIn};
use serde::Deserialize;
use tracing::{debug, warn};

use super::put_record::{check_record, check_stream_record_size, hash_key, refuse_dry_run};
use crate::json::Span;
use crate::json::{self, Blob, Bool, Str};
use crate::stream::Stream;
use crate::time::now_ms;
use crate::validate::{Shown, Violations};
use crate::{Kinesis, KinesisError, errors, reshard, throttle};

/// Records per call (API_PutRecords: "up to 500 records").
pub const RECORDS_MAX: usize = 500;
/// Data and partition keys per call (API_PutRecords, since large records:
/// "Each record in the request can be as large as 10 MiB, up to a limit of
/// 10 MiB for the entire request, including partition keys"; it was 5 MiB).
pub const REQUEST_BYTES_MAX: usize = 10 * 1024 * 1024;

#[derive(Deserialize)]
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
#[allow(non_snake_case)]
struct Entry<'a> {
    #[serde(borrow)]
    Data: Option<Blob<'a>>,
    #[serde(borrow)]
    ExplicitHashKey: Option<Str<'a>>,
    #[serde(borrow)]
    PartitionKey: Option<Str<'a>>,
}

/// Decodes every record's data into one buffer (see `json::decode_blobs`).
fn decode_all(entries: &[Entry<'_>]) -> Result<(Vec<u8>, Vec<Span>), KinesisError> {
    Ok(crate::json::decode_blobs(
        entries.iter().map(|e| e.Data.as_ref()),
    )?)
}

fn validate(input: &Input<'_>, spans: &[Span]) -> Result<(), KinesisError> {
    let mut v = Violations::new();
    v.required(&input.Records, "records");
    if let Some(entries) = &input.Records {
        // AWS prints the list with Java's `toString`: `[]` when empty, the
        // entries' object identities otherwise, which nothing else can
        // reproduce (a count stands in for them).
        let shown = if entries.is_empty() {
            "[]".to_owned()
        } else {
            format!("[{} records]", entries.len())
        };
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

/// A PutRecords request parsed, its data decoded into one buffer and
/// checked against the model (not yet against its stream).
pub(crate) struct Decoded<'a> {
    input: Input<'a>,
    arena: Vec<u8>,
    spans: Vec<Span>,
}

impl Decoded<'_> {
    /// The decoded data bytes of every record.
    pub(crate) fn data_len(&self) -> usize {
        self.arena.len()
    }
}

/// Parses and checks a request body, AWS's checks in AWS's order.
pub(crate) fn decode(body: &[u8]) -> Result<Decoded<'_>, KinesisError> {
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
    Ok(Decoded {
        input,
        arena,
        spans,
    })
}

pub async fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let Decoded {
        input,
        arena,
        spans,
    } = decode(body)?;
    let entries = input.Records.as_deref().unwrap_or_default();
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
    v.into_result::<crate::validate::ValidationError>()?;
    let call = Call {
        entries,
        arena: &arena,
        spans: &spans,
        now,
    };
    let (stream, fates) = place_all(kinesis, stream, &call).await?;
    let refused = |shard: &str| throttle::write_message(shard, &name, kinesis.account());
    Ok(results(&stream, &fates, refused))
}

/// The records of one call.
struct Call<'c, 'a> {
    entries: &'c [Entry<'a>],
    arena: &'c [u8],
    spans: &'c [Span],
    now: i64,
}

impl Call<'_, '_> {
    /// What record `i` counts against its shard's limits and metrics: its
    /// data and partition key.
    fn size(&self, i: usize) -> usize {
        self.spans[i].map_or(0, |(s, e)| e - s)
            + self.entries[i]
                .PartitionKey
                .as_ref()
                .map_or(0, |k| k.as_str().len())
    }
}

/// What became of one record.
#[derive(Debug, Clone, Copy)]
enum Fate {
    /// Not written yet: its shard was closed by a reshard before the
    /// append; it is routed again once the reshard is committed.
    Pending,
    Written {
        position: usize,
        seq: u64,
        arrival_ms: i64,
    },
    Throttled {
        position: usize,
    },
    Failed,
}

/// Routes, admits and appends every record, again for those whose shard
/// a reshard closed meanwhile (they go to its children). Returns the
/// stream as last used (its shards include every shard written to: shard
/// positions are stable across reshards) and each record's fate.
async fn place_all(
    kinesis: &Kinesis,
    mut stream: Arc<Stream>,
    call: &Call<'_, '_>,
) -> Result<(Arc<Stream>, Vec<Fate>), KinesisError> {
    let mut fates = vec![Fate::Pending; call.entries.len()];
    let mut todo: Vec<usize> = (0..call.entries.len()).collect();
    loop {
        let mut groups = route_all(kinesis, &stream, call.entries, &todo)?;
        admit_groups(kinesis, &stream, &mut groups, call, &mut fates);
        let key = super::stream_encryption::data_key(kinesis, &stream)?;
        let outcomes = append_groups(
            &stream,
            key.as_ref(),
            &groups,
            call.entries,
            call.arena,
            call.spans,
            call.now,
        )
        .await;
        let mut closed = None;
        for (position, (members, outcome)) in groups.iter().zip(&outcomes).enumerate() {
            match outcome {
                None => {}
                Some(Ok(appended)) => {
                    let bytes: usize = members.iter().map(|&i| call.size(i)).sum();
                    stream.shards[position]
                        .metrics
                        .wrote(members.len() as u64, bytes as u64);
                    for (nth, &i) in members.iter().enumerate() {
                        fates[i] = Fate::Written {
                            position,
                            seq: appended.first_seq + nth as u64,
                            arrival_ms: appended.arrival_ms,
                        };
                    }
                }
                Some(Err(LogError::Closed { .. })) => closed = Some(position as u32),
                Some(Err(_)) => members.iter().for_each(|&i| fates[i] = Fate::Failed),
            }
        }
        todo.retain(|&i| matches!(fates[i], Fate::Pending));
        let Some(index) = closed else {
            return Ok((stream, fates));
        };
        match reshard::wait_reshard(kinesis, &stream, index).await {
            Ok(resharded) => stream = resharded,
            Err(err) => {
                warn!(error = %err, "PutRecords could not follow a reshard");
                todo.iter().for_each(|&i| fates[i] = Fate::Failed);
                return Ok((stream, fates));
            }
        }
    }
}

/// Per shard position, the indexes (from `todo`) of the records it owns,
/// in request order.
fn route_all(
    kinesis: &Kinesis,
    stream: &Stream,
    entries: &[Entry<'_>],
    todo: &[usize],
) -> Result<Vec<Vec<usize>>, KinesisError> {
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); stream.shards.len()];
    for &i in todo {
        let entry = &entries[i];
        let key = entry.PartitionKey.as_ref().map_or("", Str::as_str);
        let hash = hash_key(key, entry.ExplicitHashKey.as_ref().map(Str::as_str))?;
        // Every hash key has an open shard: a reshard swaps parents for
        // children in one step.
        let shard = stream
            .route(hash)
            .ok_or_else(|| errors::stream_not_found(stream.name(), kinesis.account()))?;
        groups[shard.index as usize].push(i);
    }
    Ok(groups)
}

/// Charges each shard's throughput limits for its records and keeps in
/// each group the prefix they admit; the rest are `Throttled` (they fail
/// with `ProvisionedThroughputExceededException`, as AWS reports them).
fn admit_groups(
    kinesis: &Kinesis,
    stream: &Stream,
    groups: &mut [Vec<usize>],
    call: &Call<'_, '_>,
    fates: &mut [Fate],
) {
    let Some(at) = kinesis.throttle_ms() else {
        return;
    };
    let size = |i: usize| call.size(i);
    for (position, members) in groups.iter_mut().enumerate() {
        if members.is_empty() {
            continue;
        }
        let throttle = &stream.shards[position].throttle;
        let admitted = throttle.admit_writes(at, members.iter().map(|&i| size(i)));
        stream.shards[position]
            .metrics
            .write_refused((members.len() - admitted) as u64);
        for &i in &members[admitted..] {
            fates[i] = Fate::Throttled { position };
        }
        members.truncate(admitted);
    }
}

type Outcome = Option<Result<Appended, LogError>>;

/// One atomic append per shard with records, all concurrently; the
/// outcome per shard position (`None` for shards that got no records).
async fn append_groups(
    stream: &Stream,
    key: Option<&DataKey>,
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
    let appends = batches.iter().map(|(position, records)| {
        super::stream_encryption::append(&stream.shards[*position].log, records, now, key)
    });
    let outcomes = join_all(appends).await;
    let mut by_position: Vec<Outcome> = (0..groups.len()).map(|_| None).collect();
    for ((position, _), outcome) in batches.iter().zip(outcomes) {
        // A shard closed by a reshard is no failure: its records are
        // routed again.
        // A full disk or a log waiting to reopen is logged by the engine
        // once, when it starts, not once per request.
        if let Err(err) = &outcome
            && !matches!(err, LogError::Closed { .. })
        {
            let log = stream.shards[*position].log.name();
            if err.is_disk_full() || matches!(err, LogError::Poisoned { .. }) {
                debug!(log, error = %err, "PutRecords append refused");
            } else {
                warn!(log, error = %err, "PutRecords append failed");
            }
        }
        by_position[*position] = Some(outcome);
    }
    by_position
}

/// The response: one entry per record, in request order. Written by
/// hand, as serializing the model's shape would write it (members in the
/// model's order, absent ones left out), because a 500-record answer
/// would otherwise cost a `String` per sequence number and serde's
/// escaping scan of every byte.
fn results(stream: &Stream, fates: &[Fate], refused: impl Fn(&str) -> String) -> Bytes {
    let failed = fates
        .iter()
        .filter(|fate| !matches!(fate, Fate::Written { .. }))
        .count();
    let mut out = String::with_capacity(64 + fates.len() * RESULT_JSON_BYTES);
    out.push_str(r#"{"FailedRecordCount":"#);
    out.push_str(&failed.to_string());
    out.push_str(r#","Records":["#);
    for (i, fate) in fates.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match *fate {
            Fate::Written {
                position,
                seq,
                arrival_ms,
            } => {
                let shard = &stream.shards[position];
                out.push_str(r#"{"SequenceNumber":""#);
                stream.write_seq_number(&mut out, shard, seq, arrival_ms);
                out.push_str(r#"","ShardId":"#);
                json::write_str(&mut out, &shard.id);
                out.push('}');
            }
            Fate::Throttled { position } => write_failure(
                &mut out,
                "ProvisionedThroughputExceededException",
                &refused(&stream.shards[position].id),
            ),
            Fate::Pending | Fate::Failed => {
                write_failure(&mut out, "InternalFailure", "Internal service failure.")
            }
        }
    }
    out.push_str(r#"],"EncryptionType":"#);
    json::write_str(&mut out, super::encryption_type(stream));
    out.push('}');
    Bytes::from(out)
}

/// A written record's entry: `{"SequenceNumber":"<56 digits>","ShardId":"shardId-000000000000"}`.
const RESULT_JSON_BYTES: usize = 112;

fn write_failure(out: &mut String, code: &str, message: &str) {
    out.push_str(r#"{"ErrorCode":"#);
    json::write_str(out, code);
    out.push_str(r#","ErrorMessage":"#);
    json::write_str(out, message);
    out.push('}');
}
