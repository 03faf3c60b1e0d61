//! DescribeLimits: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_DescribeLimits.html>

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::create_stream::ON_DEMAND_STREAMS_MAX;
use crate::catalog::StreamMode;
use crate::json;
use crate::time::now_ms;
use crate::{Kinesis, KinesisError};

/// The default shard quota ("Quotas and limits", Kinesis Data Streams
/// developer guide): 20,000 shards per account in US East (N. Virginia),
/// US West (Oregon) and Europe (Ireland), 1,000 in other Regions.
pub const SHARDS_MAX_LARGE_REGIONS: u32 = 20_000;
pub const SHARDS_MAX_OTHER_REGIONS: u32 = 1_000;

pub fn shard_limit(region: &str) -> u32 {
    match region {
        "us-east-1" | "us-west-2" | "eu-west-1" => SHARDS_MAX_LARGE_REGIONS,
        _ => SHARDS_MAX_OTHER_REGIONS,
    }
}

/// The input has no members.
#[derive(Deserialize)]
struct Input {}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Output {
    ShardLimit: u32,
    OpenShardCount: usize,
    OnDemandStreamCount: usize,
    OnDemandStreamCountLimit: usize,
}

pub fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let Input {} = json::parse(body)?;
    let now = now_ms();
    let live: Vec<_> = kinesis
        .all()
        .into_iter()
        .filter(|s| s.status(now).is_some())
        .collect();
    super::respond(&Output {
        ShardLimit: shard_limit(&kinesis.config().region),
        OpenShardCount: live.iter().map(|s| s.open_shard_count()).sum(),
        OnDemandStreamCount: live
            .iter()
            .filter(|s| s.record.mode == StreamMode::OnDemand)
            .count(),
        OnDemandStreamCountLimit: ON_DEMAND_STREAMS_MAX,
    })
}
