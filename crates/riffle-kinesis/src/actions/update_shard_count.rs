//! UpdateShardCount: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_UpdateShardCount.html>
//!
//! UNIFORM_SCALING to at most double and at least half the open shard
//! count; the result tiles the hash-key space evenly (see
//! `reshard::uniform`). AWS's quota of 10 calls per stream in a rolling
//! 24 hours is enforced unless the server lifts it
//! (`KinesisConfig::shard_count_updates_per_day`); the call times are kept
//! in the catalog's settings so a restart does not reset the count.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::split_shard::{check_shard_limit, require_active, require_provisioned};
use crate::json::{self, Int, Str};
use crate::reshard;
use crate::time::now_ms;
use crate::validate::Violations;
use crate::{Kinesis, KinesisError};

/// The most shards one stream may be scaled to (API_UpdateShardCount:
/// "Set this value to more than 10000 shards in a stream ... unless you
/// request a limit increase").
pub const STREAM_SHARDS_MAX: u32 = 10_000;
const SCALING_TYPES: &[&str] = &["UNIFORM_SCALING"];
/// Kinesis quotas: UpdateShardCount may "scale more than ten times per
/// rolling 24-hour period per stream" only with a limit increase.
pub const SHARD_COUNT_UPDATES_PER_DAY_AWS: u32 = 10;
const DAY_MS: i64 = 24 * 3_600_000;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    TargetShardCount: Option<Int>,
    #[serde(borrow)]
    ScalingType: Option<Str<'a>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Output<'a> {
    StreamName: &'a str,
    CurrentShardCount: usize,
    TargetShardCount: u32,
    StreamARN: &'a str,
}

fn validate(input: &Input<'_>) -> Result<(), KinesisError> {
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    v.required(&input.TargetShardCount, "targetShardCount");
    let target = input.TargetShardCount.map(|n| i64::from(n.0));
    v.range(target, "targetShardCount", Some(1), None);
    v.required(&input.ScalingType, "scalingType");
    let scaling = input.ScalingType.as_ref().map(Str::as_str);
    v.one_of(scaling, "scalingType", SCALING_TYPES);
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result()
}

/// The stream's UpdateShardCount call times with this one added, or the
/// number of calls in the last 24 hours when the quota is used up.
fn count_call(kinesis: &Kinesis, calls_ms: &[i64], now: i64) -> Result<Vec<i64>, usize> {
    let mut recent: Vec<i64> = calls_ms
        .iter()
        .copied()
        .filter(|&at| now - at < DAY_MS)
        .collect();
    let quota = kinesis.config().shard_count_updates_per_day as usize;
    if quota != 0 && recent.len() >= quota {
        return Err(recent.len());
    }
    recent.push(now);
    Ok(recent)
}

pub async fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    validate(&input)?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    // Validated: present and at least 1.
    let target = input.TargetShardCount.map_or(1, |n| n.0 as u32);

    let _catalog = kinesis.catalog_guard().await;
    let now = now_ms();
    let stream = kinesis.lookup(&name, now)?;
    require_provisioned(&stream, "UpdateShardCount")?;
    require_active(kinesis, &stream, now)?;
    let current = stream.open_shard_count();
    let refuse = |what: &str| {
        Err(KinesisError::InvalidArgument(format!(
            "UpdateShardCount cannot scale {what} your current open shard count. Current open shard \
             count: {current} Target shard count: {target}"
        )))
    };
    if target as usize > current * 2 {
        return refuse("up over double");
    }
    if (target as usize) * 2 < current {
        return refuse("down below half");
    }
    if target > STREAM_SHARDS_MAX {
        return Err(KinesisError::LimitExceeded(format!(
            "UpdateShardCount cannot scale up a stream beyond {STREAM_SHARDS_MAX} shards. Target shard \
             count: {target}"
        )));
    }
    check_shard_limit(kinesis, (target as usize).saturating_sub(current), now)?;
    let mut record = stream.record.clone();
    record.settings.shard_count_updates_ms =
        count_call(kinesis, &stream.record.settings.shard_count_updates_ms, now).map_err(
            |calls| {
                KinesisError::LimitExceeded(format!(
                    "Stream {name} under account {} has already been rescaled {calls} times in \
                     the last 24 hours, the most UpdateShardCount allows.",
                    kinesis.config().account_id
                ))
            },
        )?;
    let stream = stream.with_record(record);
    let plan = reshard::uniform(&stream.record, target, now);
    kinesis.reshard(&stream, plan, now).await?;
    super::respond(&Output {
        StreamName: stream.name(),
        CurrentShardCount: current,
        TargetShardCount: target,
        StreamARN: &stream.arn,
    })
}
