//! GetShardIterator: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_GetShardIterator.html>

use bytes::Bytes;
use riffle_log::Seq;
use serde::{Deserialize, Serialize};

use super::put_record::refuse_dry_run;
use crate::catalog;
use crate::iterator::ShardIterator;
use crate::json::{self, Bool, Str, Timestamp};
use crate::seqnum::SeqNum;
use crate::stream::{Shard, Stream};
use crate::time::now_ms;
use crate::validate::{Pattern, Violations};
use crate::{Kinesis, KinesisError, errors};

const ITERATOR_TYPES: &[&str] = &[
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
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    ShardId: Option<Str<'a>>,
    #[serde(borrow)]
    ShardIteratorType: Option<Str<'a>>,
    #[serde(borrow)]
    StartingSequenceNumber: Option<Str<'a>>,
    Timestamp: Option<Timestamp>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
    DryRun: Option<Bool>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Output {
    ShardIterator: String,
}

fn validate(input: &Input<'_>) -> Result<(), KinesisError> {
    let mut v = Violations::new();
    let shard = input.ShardId.as_ref().map(Str::as_str);
    v.required(&input.ShardId, "shardId");
    v.pattern(shard, "shardId", Pattern::Name);
    v.length(shard, "shardId", 1, 128);
    v.required(&input.ShardIteratorType, "shardIteratorType");
    v.one_of(
        input.ShardIteratorType.as_ref().map(Str::as_str),
        "shardIteratorType",
        ITERATOR_TYPES,
    );
    let start = input.StartingSequenceNumber.as_ref().map(Str::as_str);
    v.pattern(start, "startingSequenceNumber", Pattern::SequenceNumber);
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result()
}

pub fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    validate(&input)?;
    refuse_dry_run(input.DryRun)?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    // Validated: present.
    let shard_text = input.ShardId.as_ref().map_or("", Str::as_str);
    let account = kinesis.account();
    let Some(index) = catalog::parse_shard_id(shard_text) else {
        return Err(errors::shard_id_unknown(shard_text, &name, account));
    };
    let shard_id = catalog::shard_id(index);
    let now = now_ms();
    let stream = kinesis
        .get(&name)
        .filter(|s| s.is_usable(now))
        .ok_or_else(|| errors::shard_not_found(&shard_id, &name, account))?;
    // A closed shard whose records are all past retention has left the
    // stream, as on AWS.
    let shard = stream
        .shard(index)
        .filter(|s| !stream.is_expired(s, now))
        .ok_or_else(|| errors::shard_not_found(&shard_id, &name, account))?;
    let position = position(kinesis, &input, &stream, shard, now)?;
    let iterator = ShardIterator {
        issued_ms: now,
        incarnation: stream.record.incarnation,
        shard_index: index,
        position,
        stream: name,
    };
    super::respond(&Output {
        ShardIterator: iterator.encode(kinesis.iterator_key()),
    })
}

/// The Seq the iterator starts at.
fn position(
    kinesis: &Kinesis,
    input: &Input<'_>,
    stream: &Stream,
    shard: &Shard,
    now: i64,
) -> Result<Seq, KinesisError> {
    // Validated: present and one of ITERATOR_TYPES.
    let kind = input.ShardIteratorType.as_ref().map_or("", Str::as_str);
    let start = input.StartingSequenceNumber.as_ref().map(Str::as_str);
    let needs_number = matches!(kind, "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER");
    if needs_number != start.is_some() && kind != "AT_TIMESTAMP" {
        return Err(KinesisError::InvalidArgument(format!(
            "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or \
             (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified {kind} and {} StartingSequenceNumber.",
            if start.is_some() { "also a" } else { "no" }
        )));
    }
    match (kind, start) {
        ("TRIM_HORIZON", _) => Ok(shard.log.oldest_seq()),
        ("LATEST", _) => Ok(shard.log.next_seq()),
        ("AT_TIMESTAMP", _) => {
            let Some(Timestamp(at_ms)) = input.Timestamp else {
                return Err(KinesisError::InvalidArgument(
                    "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request \
                     has no timestamp parameter."
                        .to_owned(),
                ));
            };
            if at_ms > now {
                return Err(KinesisError::InvalidArgument(format!(
                    "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. \
                     timestampInMillis: {at_ms}, currentTimestampInMillis: {now}"
                )));
            }
            Ok(shard.log.seq_at_timestamp(at_ms)?)
        }
        (_, Some(text)) => {
            let seq = seq_of(kinesis, stream, shard, text)?;
            // A SubscribeToShard position marker names the gap before a
            // record: AFTER it is AT it.
            let marker = SeqNum::decode(text)
                .is_some_and(|n| super::subscribe_to_shard::is_position_marker(&n));
            let position = if kind == "AFTER_SEQUENCE_NUMBER" && !marker {
                seq.saturating_add(1)
            } else {
                seq
            };
            if position > shard.log.next_seq() {
                return Err(invalid_number(kinesis, stream, shard, text, ""));
            }
            Ok(position)
        }
        // Checked above: the sequence-number kinds come with a number.
        _ => Err(invalid_number(kinesis, stream, shard, "", "")),
    }
}

/// The Seq a client-given sequence number names in `shard`.
fn seq_of(
    kinesis: &Kinesis,
    stream: &Stream,
    shard: &Shard,
    text: &str,
) -> Result<Seq, KinesisError> {
    let Some(number) = SeqNum::decode(text) else {
        return Err(invalid_number(kinesis, stream, shard, text, ""));
    };
    if number.shard_index != shard.index {
        return Err(KinesisError::InvalidArgument(format!(
            "Invalid StartingSequenceNumber. It encodes {}, while it was used in a call to a shard with {}",
            catalog::shard_id(number.shard_index),
            shard.id
        )));
    }
    if !stream.issued_here(shard, &number) {
        return Err(invalid_number(
            kinesis,
            stream,
            shard,
            text,
            " because it did not come from this stream",
        ));
    }
    Ok(number.seq)
}

fn invalid_number(
    kinesis: &Kinesis,
    stream: &Stream,
    shard: &Shard,
    text: &str,
    why: &str,
) -> KinesisError {
    KinesisError::InvalidArgument(format!(
        "StartingSequenceNumber {text} used in GetShardIterator on shard {} in stream {} under account {} is invalid{why}.",
        shard.id,
        stream.name(),
        kinesis.account()
    ))
}
