//! UpdateShardCount: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_UpdateShardCount.html>
//!
//! UNIFORM_SCALING to at most double and at least half the open shard
//! count; the result tiles the hash-key space evenly (see
//! `reshard::uniform`). The calls-per-day quotas of AWS are not enforced.

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
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
    let plan = reshard::uniform(&stream.record, target, now);
    kinesis.reshard(&stream, plan, now).await?;
    super::respond(&Output {
        StreamName: stream.name(),
        CurrentShardCount: current,
        TargetShardCount: target,
        StreamARN: &stream.arn,
    })
}
