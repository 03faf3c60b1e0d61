//! EnableEnhancedMonitoring: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_EnableEnhancedMonitoring.html>
//! and DisableEnhancedMonitoring: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_DisableEnhancedMonitoring.html>
//!
//! The setting is stored in the stream's catalog entry and reported by
//! DescribeStream(Summary); the metrics themselves belong to the
//! observability work.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::settings::{self, Needs};
use crate::json::{self, Str};
use crate::validate::{Shown, Violations};
use crate::{Kinesis, KinesisError};

/// The model's `MetricsName` values other than `ALL`, in its order.
pub const SHARD_LEVEL_METRICS: [&str; 7] = [
    "IncomingBytes",
    "IncomingRecords",
    "OutgoingBytes",
    "OutgoingRecords",
    "WriteProvisionedThroughputExceeded",
    "ReadProvisionedThroughputExceeded",
    "IteratorAgeMilliseconds",
];
/// Stands for every metric.
pub const ALL: &str = "ALL";
/// Names per call (the model's `MetricsNameList`: 1 to 7).
pub const METRICS_PER_CALL_MAX: usize = 7;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    ShardLevelMetrics: Option<Vec<Str<'a>>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Output<'a> {
    StreamName: &'a str,
    CurrentShardLevelMetrics: Vec<String>,
    DesiredShardLevelMetrics: Vec<String>,
    StreamARN: &'a str,
}

pub async fn run_enable(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    run(kinesis, body, true).await
}

pub async fn run_disable(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    run(kinesis, body, false).await
}

fn validate(input: &Input<'_>) -> Result<(), KinesisError> {
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    v.required(&input.ShardLevelMetrics, "shardLevelMetrics");
    if let Some(names) = &input.ShardLevelMetrics {
        let known = |n: &Str<'_>| n.as_str() == ALL || SHARD_LEVEL_METRICS.contains(&n.as_str());
        let shown: Vec<&str> = names.iter().map(Str::as_str).collect();
        let shown = format!("[{}]", shown.join(", "));
        v.check(
            !names.is_empty(),
            Shown::Text(&shown),
            "shardLevelMetrics",
            "Member must have length greater than or equal to 1",
        );
        v.check(
            names.len() <= METRICS_PER_CALL_MAX,
            Shown::Text(&shown),
            "shardLevelMetrics",
            format_args!("Member must have length less than or equal to {METRICS_PER_CALL_MAX}"),
        );
        v.check(
            names.iter().all(known),
            Shown::Text(&shown),
            "shardLevelMetrics",
            format_args!(
                "Member must satisfy constraint: [Member must satisfy enum value set: [{}, {ALL}]]",
                SHARD_LEVEL_METRICS.join(", ")
            ),
        );
    }
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result()
}

async fn run(kinesis: &Kinesis, body: &[u8], enable: bool) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    validate(&input)?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    let names = input.ShardLevelMetrics.unwrap_or_default();
    let all = names.iter().any(|n| n.as_str() == ALL);
    let named = |m: &str| all || names.iter().any(|n| n.as_str() == m);
    let (current, desired, arn) = settings::update(kinesis, &name, Needs::Active, |stream, _| {
        let current = stream.record.settings.shard_level_metrics.clone();
        let desired: Vec<String> = SHARD_LEVEL_METRICS
            .iter()
            .filter(|m| {
                let on = current.iter().any(|c| c == *m);
                if enable {
                    on || named(m)
                } else {
                    on && !named(m)
                }
            })
            .map(|m| (*m).to_owned())
            .collect();
        let mut record = stream.record.clone();
        record.settings.shard_level_metrics = desired.clone();
        Ok((record, (current, desired, stream.arn.clone())))
    })
    .await?;
    super::respond(&Output {
        StreamName: &name,
        CurrentShardLevelMetrics: current,
        DesiredShardLevelMetrics: desired,
        StreamARN: &arn,
    })
}
