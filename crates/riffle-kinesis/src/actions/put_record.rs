//! PutRecord: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutRecord.html>

use bytes::Bytes;
use std::sync::Arc;

use riffle_log::{Appended, LogError, RecordIn};
use serde::{Deserialize, Serialize};

use crate::json::{self, Blob, Bool, Str};
use crate::seqnum::SeqNum;
use crate::stream::Stream;
use crate::time::now_ms;
use crate::validate::{Pattern, Shown, Violations};
use crate::{Kinesis, KinesisError, errors, hashkey, reshard, throttle};

/// The model's `Data` maximum (10 MiB, the largest MaxRecordSizeInKiB);
/// a stream's own maximum (1 MiB by default) is checked once it is known.
pub const DATA_BYTES_MAX: usize = 10 * 1024 * 1024;
/// The model's `PartitionKey` length bounds (API_PutRecord: "Minimum length
/// of 1. Maximum length of 256.").
pub const PARTITION_KEY_CHARS_MIN: usize = 1;
pub const PARTITION_KEY_CHARS_MAX: usize = 256;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    Data: Option<Blob<'a>>,
    #[serde(borrow)]
    PartitionKey: Option<Str<'a>>,
    #[serde(borrow)]
    ExplicitHashKey: Option<Str<'a>>,
    #[serde(borrow)]
    SequenceNumberForOrdering: Option<Str<'a>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
    DryRun: Option<Bool>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Output<'a> {
    ShardId: &'a str,
    SequenceNumber: String,
    EncryptionType: &'static str,
}

/// Checks one record's members; `at` is the member path prefix (`""` for
/// PutRecord, `"records.3.member."` for PutRecords), built only when a
/// member is invalid so that valid records cost no allocation.
pub(crate) fn check_record(
    v: &mut Violations,
    at: impl Fn() -> String,
    data_len: Option<usize>,
    partition_key: Option<&str>,
    explicit_hash_key: Option<&str>,
) {
    let data_ok = data_len.is_some_and(|len| len <= DATA_BYTES_MAX);
    let key_ok = partition_key.is_some_and(|k| {
        let chars = k.encode_utf16().count();
        (PARTITION_KEY_CHARS_MIN..=PARTITION_KEY_CHARS_MAX).contains(&chars)
    });
    let hash_ok = explicit_hash_key.is_none_or(|h| Pattern::HashKey.matches(h));
    if data_ok && key_ok && hash_ok {
        return;
    }
    let at = at();
    match data_len {
        None => v.required(&None::<()>, &format!("{at}data")),
        Some(len) => v.check(
            len <= DATA_BYTES_MAX,
            Shown::Bytes(len),
            &format!("{at}data"),
            format_args!("Member must have length less than or equal to {DATA_BYTES_MAX}"),
        ),
    }
    let path = format!("{at}partitionKey");
    v.check(
        partition_key.is_some(),
        Shown::Null,
        &path,
        "Member must not be null",
    );
    v.pattern(
        explicit_hash_key,
        &format!("{at}explicitHashKey"),
        Pattern::HashKey,
    );
    v.length(
        partition_key,
        &path,
        PARTITION_KEY_CHARS_MIN,
        PARTITION_KEY_CHARS_MAX,
    );
}

/// A stream's own record-size limit, as the model's constraint reads.
pub(crate) fn check_stream_record_size(
    v: &mut Violations,
    at: impl Fn() -> String,
    stream: &Stream,
    data_len: usize,
) {
    let max = stream.record.max_record_kib as usize * 1024;
    if data_len > max {
        v.check(
            false,
            Shown::Bytes(data_len),
            &format!("{}data", at()),
            format_args!("Member must have length less than or equal to {max}"),
        );
    }
}

/// The hash key of a record: its explicit one, or its partition key's MD5.
pub(crate) fn hash_key(partition_key: &str, explicit: Option<&str>) -> Result<u128, KinesisError> {
    match explicit {
        None => Ok(hashkey::of_partition_key(partition_key.as_bytes())),
        Some(text) => hashkey::parse(text).ok_or_else(|| {
            KinesisError::InvalidArgument(format!(
                "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was {text}"
            ))
        }),
    }
}

pub(crate) fn refuse_dry_run(dry_run: Option<Bool>) -> Result<(), KinesisError> {
    match dry_run {
        Some(Bool(true)) => Err(KinesisError::InvalidArgument(
            "DryRun is not supported by Riffle yet.".to_owned(),
        )),
        _ => Ok(()),
    }
}

pub async fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    // AWS reads the whole body (base64 included) before it validates.
    let mut data = Vec::new();
    if let Some(blob) = &input.Data {
        data.reserve_exact(blob.decoded_len().unwrap_or(0));
        blob.decode_into(&mut data)?;
    }
    let partition_key = input.PartitionKey.as_ref().map(Str::as_str);
    let explicit = input.ExplicitHashKey.as_ref().map(Str::as_str);
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    check_record(
        &mut v,
        String::new,
        input.Data.as_ref().map(|_| data.len()),
        partition_key,
        explicit,
    );
    let ordering = input.SequenceNumberForOrdering.as_ref().map(Str::as_str);
    v.pattern(
        ordering,
        "sequenceNumberForOrdering",
        Pattern::SequenceNumber,
    );
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result::<crate::validate::ValidationError>()?;
    refuse_dry_run(input.DryRun)?;

    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    let now = now_ms();
    let stream = kinesis.lookup(&name, now)?;
    if !stream.is_usable(now) {
        return Err(errors::stream_not_found(&name, kinesis.account()));
    }
    let mut v = Violations::new();
    check_stream_record_size(&mut v, String::new, &stream, data.len());
    v.into_result::<crate::validate::ValidationError>()?;
    // Validated: present.
    let partition_key = partition_key.unwrap_or_default();
    let hash = hash_key(partition_key, explicit)?;
    if let Some(ordering) = ordering
        && SeqNum::decode(ordering).is_none()
    {
        return Err(KinesisError::InvalidArgument(format!(
            "ExclusiveMinimumSequenceNumber {ordering} used in PutRecord on stream {name} under account {} is invalid.",
            kinesis.account()
        )));
    }
    let record = RecordIn {
        partition_key: partition_key.as_bytes(),
        explicit_hash_key: explicit.map(str::as_bytes),
        data: &data,
    };
    let (stream, index, appended) = append_routed(kinesis, stream, hash, record, now).await?;
    // Routing returned this index from this stream.
    let shard = stream.shard(index).expect("the shard appended to exists");
    super::respond(&Output {
        ShardId: &shard.id,
        SequenceNumber: stream.seq_number(shard, appended.first_seq, appended.arrival_ms),
        EncryptionType: super::encryption_type(&stream),
    })
}

/// Appends `record` to the open shard owning `hash`. A reshard may close
/// that shard between routing and appending: the append then fails with
/// `Closed` having written nothing, and the record is routed again on the
/// stream as the reshard left it, to a child. Returns that stream, the
/// shard's index and the append.
async fn append_routed(
    kinesis: &Kinesis,
    mut stream: Arc<Stream>,
    hash: u128,
    record: RecordIn<'_>,
    now: i64,
) -> Result<(Arc<Stream>, u32, Appended), KinesisError> {
    let name = stream.name().to_owned();
    loop {
        // Every hash key has an open shard: a reshard swaps parents for
        // children in one step.
        let shard = stream
            .route(hash)
            .ok_or_else(|| errors::stream_not_found(&name, kinesis.account()))?;
        let size = record.data.len() + record.partition_key.len();
        if let Some(at) = kinesis.throttle_ms()
            && shard.throttle.admit_writes(at, [size]) == 0
        {
            shard.metrics.write_refused(1);
            return Err(throttle::write_exceeded(
                &shard.id,
                &name,
                kinesis.account(),
            ));
        }
        let index = shard.index;
        let key = super::stream_encryption::data_key(kinesis, &stream)?;
        match super::stream_encryption::append(&shard.log, &[record], now, key.as_ref()).await {
            Ok(appended) => {
                shard.metrics.wrote(1, size as u64);
                return Ok((stream, index, appended));
            }
            Err(LogError::Closed { .. }) => {
                let resharded = reshard::wait_reshard(kinesis, &stream, index).await?;
                stream = resharded;
            }
            // Deleted between the lookup and the append: as if looked up later.
            Err(LogError::Deleted { .. }) => {
                return Err(errors::stream_not_found(&name, kinesis.account()));
            }
            Err(err) => return Err(err.into()),
        }
    }
}
