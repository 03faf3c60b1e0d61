//! GetRecords: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetRecords.html>
//!
//! The response can be 10 MiB of data (13+ MiB of base64), so it is written
//! by hand into one buffer, base64 encoded in place, instead of through
//! per-record strings.

use bytes::Bytes;
use riffle_log::{LogError, ReadBatch, ReadLimits, Record};
use serde::{Deserialize, Serialize};

use super::put_record::refuse_dry_run;
use crate::cbor::CborWriter;
use crate::iterator::{ITERATOR_CHARS_MAX, ShardIterator};
use crate::json::{self, Bool, Int, Str};
use crate::stream::{Shard, Stream};
use crate::time::{now_ms, write_epoch_seconds};
use crate::validate::Violations;
use crate::{Codec, Kinesis, KinesisError, catalog, errors, throttle};

/// Records per call (API_GetRecords: "The maximum number of records to
/// return. Specify a value of up to 10,000.").
pub const RECORDS_MAX: usize = 10_000;
/// Bytes per call (API_GetRecords: "up to 10 MiB of data").
pub const RESPONSE_BYTES_MAX: usize = 10 * 1024 * 1024;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    ShardIterator: Option<Str<'a>>,
    Limit: Option<Int>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
    DryRun: Option<Bool>,
}

fn validate(input: &Input<'_>) -> Result<(), KinesisError> {
    let mut v = Violations::new();
    v.required(&input.ShardIterator, "shardIterator");
    v.length(
        input.ShardIterator.as_ref().map(Str::as_str),
        "shardIterator",
        1,
        ITERATOR_CHARS_MAX,
    );
    v.range(
        input.Limit.map(|n| i64::from(n.0)),
        "limit",
        Some(1),
        Some(RECORDS_MAX as i64),
    );
    let arn = input.StreamARN.as_ref().map(Str::as_str);
    v.pattern(arn, "streamARN", crate::validate::Pattern::StreamArn);
    v.length(arn, "streamARN", 1, 2048);
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result()
}

/// Runs GetRecords; the answer is written in `codec` directly (the request
/// body is JSON either way).
pub async fn run(kinesis: &Kinesis, body: &[u8], codec: Codec) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    validate(&input)?;
    refuse_dry_run(input.DryRun)?;
    // Validated: present.
    let token = input.ShardIterator.as_ref().map_or("", Str::as_str);
    let iterator = ShardIterator::decode(token, kinesis.iterator_key())
        .ok_or_else(errors::invalid_iterator)?;
    let now = now_ms();
    let ttl_ms = kinesis.config().iterator_ttl.as_millis();
    if i128::from(now) - i128::from(iterator.issued_ms) > ttl_ms as i128 {
        return Err(errors::expired_iterator(iterator.issued_ms, now, ttl_ms));
    }
    let shard_id = catalog::shard_id(iterator.shard_index);
    let not_found = || errors::shard_not_found(&shard_id, &iterator.stream, kinesis.account());
    let stream = kinesis
        .get(&iterator.stream)
        .filter(|s| s.record.incarnation == iterator.incarnation && s.is_usable(now))
        .ok_or_else(not_found)?;
    let shard = stream.shard(iterator.shard_index).ok_or_else(not_found)?;
    let throttle_at = kinesis.throttle_ms();
    if let Some(at) = throttle_at
        && !shard.throttle.admit_read(at)
    {
        shard.metrics.read_refused();
        return Err(throttle::read_exceeded(
            &shard_id,
            &iterator.stream,
            kinesis.account(),
        ));
    }
    let limit = input.Limit.map_or(RECORDS_MAX, |n| n.0 as usize);
    let limits = ReadLimits {
        records_max: limit,
        bytes_max: RESPONSE_BYTES_MAX,
    };
    // A read can copy 10 MiB (and touch the disk): it runs on the blocking
    // pool so it never stalls the async threads serving other requests.
    let log = shard.log.clone();
    let position = iterator.position;
    let batch = tokio::task::spawn_blocking(move || log.read(position, limits))
        .await
        .map_err(errors::task)?
        .map_err(|err| match err {
            // Deleted between the lookup and the read: as if looked up later.
            LogError::Deleted { .. } => not_found(),
            err => err.into(),
        })?;

    // Segments are trimmed whole, so a read can still reach records past
    // the retention period; AWS never returns those.
    let cutoff = now - i64::from(stream.record.retention_hours) * 3_600_000;
    let retained = &batch.records[batch.records.partition_point(|r| r.arrival_ms < cutoff)..];
    if let Some(at) = throttle_at {
        // AWS lets this call return all it read and throttles the next ones.
        let bytes = retained
            .iter()
            .map(|r| r.data.len() + r.partition_key.len())
            .sum();
        shard.throttle.charge_read(at, bytes);
    }
    Ok(match codec {
        Codec::Json => Bytes::from(encode(
            kinesis, &stream, shard, iterator, &batch, retained, now,
        )),
        Codec::Cbor => Bytes::from(encode_cbor(
            kinesis, &stream, shard, iterator, &batch, retained, now,
        )?),
    })
}

/// The response: the records, where to read next (or, at the end of a
/// closed shard, its children) and how far behind the tip the reader is.
pub(crate) fn encode(
    kinesis: &Kinesis,
    stream: &Stream,
    shard: &Shard,
    iterator: ShardIterator,
    batch: &ReadBatch,
    retained: &[Record],
    now: i64,
) -> String {
    // Sized so that the buffer is never regrown: growing it would copy
    // up to 13+ MiB (and touch as many fresh pages) again.
    let estimate: usize = retained
        .iter()
        .map(|r| r.data.len().div_ceil(3) * 4 + r.partition_key.len() + RECORD_JSON_BYTES)
        .sum();
    let mut out = String::with_capacity(estimate + 700);
    write_records(&mut out, stream, shard, retained);
    let tail = Tail::of(kinesis, shard, iterator, batch, retained, now);
    shard.metrics.read(retained, tail.behind_ms);
    if let Some(next) = &tail.next_iterator {
        out.push_str(r#","NextShardIterator":""#);
        out.push_str(next);
        out.push('"');
    }
    out.push_str(&format!(r#","MillisBehindLatest":{}"#, tail.behind_ms));
    if tail.at_end {
        out.push_str(r#","ChildShards":"#);
        out.push_str(&child_shards(stream, shard));
    }
    out.push('}');
    out
}

/// The same answer in CBOR, written directly: byte for byte what
/// transcoding [`encode`]'s JSON gives (`cbor::response_from_json`),
/// without base64-encoding every record's data only to decode it again.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_cbor(
    kinesis: &Kinesis,
    stream: &Stream,
    shard: &Shard,
    iterator: ShardIterator,
    batch: &ReadBatch,
    retained: &[Record],
    now: i64,
) -> Result<Vec<u8>, KinesisError> {
    let estimate: usize = retained
        .iter()
        .map(|r| r.data.len() + r.partition_key.len() + RECORD_JSON_BYTES)
        .sum();
    let mut out = CborWriter::with_capacity(estimate + 700);
    out.map();
    out.text("Records");
    out.array();
    let mut digits = String::with_capacity(64);
    for record in retained {
        out.map();
        out.text("SequenceNumber");
        digits.clear();
        stream.write_seq_number(&mut digits, shard, record.seq, record.arrival_ms);
        out.text(&digits);
        out.text("ApproximateArrivalTimestamp");
        out.timestamp_ms(record.arrival_ms);
        out.text("Data");
        out.bytes(&record.data);
        out.text("PartitionKey");
        out.text(&String::from_utf8_lossy(&record.partition_key));
        out.text("EncryptionType");
        out.text(if record.encrypted { "KMS" } else { "NONE" });
        out.end();
    }
    out.end();
    let tail = Tail::of(kinesis, shard, iterator, batch, retained, now);
    shard.metrics.read(retained, tail.behind_ms);
    if let Some(next) = &tail.next_iterator {
        out.text("NextShardIterator");
        out.text(next);
    }
    out.text("MillisBehindLatest");
    // Never negative (see `Tail::of`).
    out.unsigned(tail.behind_ms.max(0) as u64);
    if tail.at_end {
        out.text("ChildShards");
        out.json("ChildShards", child_shards(stream, shard).as_bytes())?;
    }
    out.end();
    Ok(out.out)
}

/// What follows the records in an answer.
struct Tail {
    /// Where to read next; `None` at the end of a closed shard.
    next_iterator: Option<String>,
    behind_ms: i64,
    /// The end of a shard a reshard closed: its children are listed.
    at_end: bool,
}

impl Tail {
    fn of(
        kinesis: &Kinesis,
        shard: &Shard,
        iterator: ShardIterator,
        batch: &ReadBatch,
        retained: &[Record],
        now: i64,
    ) -> Tail {
        // The end of a shard a reshard closed. Its log closes just before
        // the reshard's commit lists its children: until then it is not
        // the end yet, and the reader gets an iterator to try again.
        let at_end = batch.end_of_log && shard.closed;
        let next_iterator = (!at_end).then(|| {
            ShardIterator {
                issued_ms: now,
                position: batch.next_seq,
                ..iterator
            }
            .encode(kinesis.iterator_key())
        });
        let caught_up = batch.next_seq >= shard.log.next_seq();
        let behind_ms = match retained.last() {
            Some(last) if !caught_up => (now - last.arrival_ms).max(0),
            _ => 0,
        };
        Tail {
            next_iterator,
            behind_ms,
            at_end,
        }
    }
}

/// What one record's JSON takes besides its base64 data and partition
/// key: member names, punctuation, a 56-digit sequence number and a
/// timestamp (about 175 bytes), with room to spare.
const RECORD_JSON_BYTES: usize = 192;

/// `{"Records":[…]`, written straight into `out` (no per-record
/// intermediate values).
pub(crate) fn write_records(out: &mut String, stream: &Stream, shard: &Shard, records: &[Record]) {
    out.push_str(r#"{"Records":["#);
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"SequenceNumber":""#);
        stream.write_seq_number(out, shard, record.seq, record.arrival_ms);
        out.push_str(r#"","ApproximateArrivalTimestamp":"#);
        write_epoch_seconds(out, record.arrival_ms);
        out.push_str(r#","Data":""#);
        base64_simd::STANDARD.encode_append(&record.data, out);
        out.push_str(r#"","PartitionKey":"#);
        // Partition keys arrive as JSON strings, so they are UTF-8; the
        // lossy path is for a store written by something else.
        match std::str::from_utf8(&record.partition_key) {
            Ok(key) => json::write_str(out, key),
            Err(_) => json::write_str(out, &String::from_utf8_lossy(&record.partition_key)),
        }
        out.push_str(if record.encrypted {
            r#","EncryptionType":"KMS"}"#
        } else {
            r#","EncryptionType":"NONE"}"#
        });
    }
    out.push(']');
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct ChildShard<'a> {
    ShardId: &'a str,
    ParentShards: Vec<&'a str>,
    HashKeyRange: HashKeyRange,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct HashKeyRange {
    StartingHashKey: String,
    EndingHashKey: String,
}

/// The `ChildShards` of a closed shard, as a JSON array.
pub(crate) fn child_shards(stream: &Stream, shard: &Shard) -> String {
    let children: Vec<ChildShard<'_>> = stream
        .children(shard)
        .map(|child| ChildShard {
            ShardId: &child.id,
            ParentShards: [&child.parent_id, &child.adjacent_parent_id]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect(),
            HashKeyRange: HashKeyRange {
                StartingHashKey: child.range.start.to_string(),
                EndingHashKey: child.range.end.to_string(),
            },
        })
        .collect();
    // Strings and arrays of strings always serialize.
    serde_json::to_string(&children).expect("child shards serialize")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use riffle_log::{FsyncPolicy, LogStore, ReadBatch, Record, StoreConfig};

    use super::*;
    use crate::{KinesisConfig, cbor};

    async fn call(kinesis: &Kinesis, action: &str, body: &'static str) {
        let body = Bytes::from_static(body.as_bytes());
        kinesis.handle(action, body, Codec::Json).await.unwrap();
    }

    fn records() -> Vec<Record> {
        let keys = [
            "k",
            "quote\"back\\slash",
            "\u{e9}\u{20ac}\u{1f600}",
            "\u{1}ctl",
        ];
        keys.iter()
            .enumerate()
            .map(|(i, key)| Record {
                seq: i as u64 * 1_000_003,
                arrival_ms: 1_795_000_000_123 + i as i64 * 999,
                partition_key: Bytes::copy_from_slice(key.as_bytes()),
                explicit_hash_key: None,
                data: Bytes::from(vec![i as u8; [0, 1, 1000, 70_000][i]]),
                encrypted: i % 2 == 1,
            })
            .collect()
    }

    #[tokio::test]
    async fn cbor_answers_are_the_transcoded_json_answers_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            fsync: FsyncPolicy::Never,
            ..StoreConfig::default()
        };
        let store = Arc::new(LogStore::open(dir.path(), config).unwrap());
        let config = KinesisConfig {
            status_delay: Duration::ZERO,
            ..KinesisConfig::default()
        };
        let kinesis = Kinesis::open(store, config).unwrap();
        call(
            &kinesis,
            "CreateStream",
            r#"{"StreamName":"s","ShardCount":1}"#,
        )
        .await;
        call(&kinesis, "SplitShard", r#"{"StreamName":"s","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"170141183460469231731687303715884105728"}"#).await;
        // Two records in the open child, so a reader at 1 is behind.
        for _ in 0..2 {
            call(&kinesis, "PutRecord", r#"{"StreamName":"s","Data":"AA==","PartitionKey":"k","ExplicitHashKey":"340282366920938463463374607431768211455"}"#).await;
        }
        let stream = kinesis.get("s").unwrap();
        let (closed, open) = (stream.shard(0).unwrap(), stream.shard(2).unwrap());
        assert!(closed.closed && !open.closed && open.log.next_seq() == 2);
        let now = crate::time::now_ms();
        for (shard, end_of_log, next_seq) in [(open, false, 1), (open, false, 2), (closed, true, 0)]
        {
            for records in [records(), Vec::new()] {
                let batch = ReadBatch {
                    records,
                    next_seq,
                    end_of_log,
                };
                let iterator = ShardIterator {
                    issued_ms: now,
                    incarnation: stream.record.incarnation,
                    shard_index: shard.index,
                    position: 0,
                    stream: "s".into(),
                };
                let args = (&kinesis, &stream, shard, &batch, &batch.records[..], now);
                let json = encode(
                    args.0,
                    args.1,
                    args.2,
                    iterator.clone(),
                    args.3,
                    args.4,
                    now,
                );
                let direct = encode_cbor(args.0, args.1, args.2, iterator, args.3, args.4, args.5);
                let transcoded = cbor::response_from_json(json.as_bytes()).unwrap();
                assert_eq!(direct.unwrap(), transcoded.to_vec(), "{json}");
            }
        }
    }
}
