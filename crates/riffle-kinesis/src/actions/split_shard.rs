//! SplitShard: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_SplitShard.html>
//!
//! Also the checks every resharding action shares (the shard to change,
//! the account's shard limit, the stream being ACTIVE). Calls-per-day
//! quotas are not enforced.

use bytes::Bytes;
use serde::Deserialize;

use crate::catalog::{self, Status, StreamMode};
use crate::hashkey;
use crate::json::{self, Str};
use crate::reshard;
use crate::stream::{Shard, Stream};
use crate::time::now_ms;
use crate::validate::{Pattern, Violations};
use crate::{Kinesis, KinesisError, errors};

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    ShardToSplit: Option<Str<'a>>,
    #[serde(borrow)]
    NewStartingHashKey: Option<Str<'a>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

/// Checks a `ShardId` member.
pub(super) fn check_shard_id(v: &mut Violations, id: &Option<Str<'_>>, path: &str) {
    v.required(id, path);
    let id = id.as_ref().map(Str::as_str);
    v.pattern(id, path, Pattern::Name);
    v.length(id, path, 1, 128);
}

fn validate(input: &Input<'_>) -> Result<(), KinesisError> {
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    check_shard_id(&mut v, &input.ShardToSplit, "shardToSplit");
    v.required(&input.NewStartingHashKey, "newStartingHashKey");
    let key = input.NewStartingHashKey.as_ref().map(Str::as_str);
    v.pattern(key, "newStartingHashKey", Pattern::HashKey);
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result()
}

pub async fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    validate(&input)?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    // Validated: present and matching the HashKey pattern.
    let key_text = input.NewStartingHashKey.as_ref().map_or("", Str::as_str);
    let shard_text = input.ShardToSplit.as_ref().map_or("", Str::as_str);

    // AWS reads the shard id before it looks for the stream.
    let index = shard_index(kinesis, shard_text, &name)?;

    let _catalog = kinesis.catalog_guard().await;
    let now = now_ms();
    let stream = kinesis.lookup(&name, now)?;
    require_provisioned(&stream, "SplitShard")?;
    let shard = open_shard(kinesis, &stream, index, now, "splitting")?;
    check_shard_limit(kinesis, 1, now)?;
    let inside = hashkey::parse(key_text)
        .filter(|&k| k > shard.range.start.saturating_add(1) && k < shard.range.end);
    let Some(at) = inside else {
        return Err(KinesisError::InvalidArgument(format!(
            "NewStartingHashKey {key_text} used in SplitShard() on shard {} in stream {name} under account {} \
             is not both greater than one plus the shard's StartingHashKey {} and less than the shard's \
             EndingHashKey {}.",
            shard.id,
            kinesis.account(),
            shard.range.start,
            shard.range.end
        )));
    };
    require_active(kinesis, &stream, now)?;
    let plan = reshard::split(&stream.record, shard.index, at, now);
    kinesis.reshard(&stream, plan, now).await?;
    Ok(Bytes::new())
}

/// The index the shard id `text` of a reshard of `stream` names; a text
/// that names no shard is not found, quoted as given.
pub(super) fn shard_index(
    kinesis: &Kinesis,
    text: &str,
    stream: &str,
) -> Result<u32, KinesisError> {
    catalog::parse_shard_id(text)
        .ok_or_else(|| errors::shard_id_unknown(text, stream, kinesis.account()))
}

/// Open shard `index` of `stream`, for a reshard `doing` ("splitting" or
/// "merging") it: an unknown or expired shard is not found (named in its
/// normal form), a closed one is not eligible.
pub(super) fn open_shard<'s>(
    kinesis: &Kinesis,
    stream: &'s Stream,
    index: u32,
    now: i64,
    doing: &str,
) -> Result<&'s Shard, KinesisError> {
    let not_found = || {
        let id = catalog::shard_id(index);
        errors::shard_id_unknown(&id, stream.name(), kinesis.account())
    };
    let shard = stream
        .shard(index)
        .filter(|s| !stream.is_expired(s, now))
        .ok_or_else(not_found)?;
    if shard.closed {
        return Err(KinesisError::InvalidArgument(format!(
            "Shard {} in stream {} under account {} has already been merged or split, and thus is not \
             eligible for {doing}.",
            shard.id,
            stream.name(),
            kinesis.account()
        )));
    }
    Ok(shard)
}

/// Refuses a user's reshard of an ON_DEMAND stream (API_SplitShard,
/// API_MergeShards, API_UpdateShardCount: "This API is only supported for
/// the data streams with the provisioned capacity mode"). The model lists
/// `ValidationException` for exactly these actions; its text is Riffle's.
pub(super) fn require_provisioned(stream: &Stream, action: &str) -> Result<(), KinesisError> {
    if stream.record.mode == StreamMode::Provisioned {
        return Ok(());
    }
    Err(KinesisError::Validation(format!(
        "{action} is only supported for streams in PROVISIONED capacity mode; stream {} is ON_DEMAND.",
        stream.name()
    )))
}

/// Refuses a reshard while the stream is CREATING, UPDATING or DELETING.
pub(super) fn require_active(
    kinesis: &Kinesis,
    stream: &Stream,
    now: i64,
) -> Result<(), KinesisError> {
    match stream.status(now) {
        Some(Status::Active) => Ok(()),
        status => Err(errors::stream_not_active(
            stream.name(),
            kinesis.account(),
            status.unwrap_or(Status::Deleting).as_str(),
        )),
    }
}

/// Refuses a reshard that would take the account's open shards over its
/// shard limit (the same quota CreateStream checks).
pub(super) fn check_shard_limit(
    kinesis: &Kinesis,
    additional: usize,
    now: i64,
) -> Result<(), KinesisError> {
    let open: usize = kinesis
        .all()
        .iter()
        .filter(|s| s.status(now).is_some())
        .map(|s| s.open_shard_count())
        .sum();
    let limit = super::shard_limit(&kinesis.config().region) as usize;
    if open + additional <= limit {
        return Ok(());
    }
    Err(KinesisError::LimitExceeded(format!(
        "This request would exceed the shard limit for the account {} in {}. Current shard count for \
         the account: {open}. Limit: {limit}. Number of additional shards that would have resulted \
         from this request: {additional}. Refer to the AWS Service Limits page \
         (https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits \
         and how to request higher limits.",
        kinesis.account(),
        kinesis.config().region
    )))
}
