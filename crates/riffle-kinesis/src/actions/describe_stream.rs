//! DescribeStream: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_DescribeStream.html>
//! and DescribeStreamSummary: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_DescribeStreamSummary.html>

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::update_stream_warm_throughput::WarmThroughput;
use super::{StreamModeDetails, epoch_seconds};
use crate::catalog::{self, Status};
use crate::json::{self, Int, Str};
use crate::stream::{Shard, Stream};
use crate::time::now_ms;
use crate::validate::{Pattern, Violations};
use crate::{Kinesis, KinesisError};

/// Shards one DescribeStream returns at most (API_DescribeStream: "The
/// default value is 100. If you specify a value greater than 100, at most
/// 100 results are returned.").
pub const DESCRIBE_SHARDS_MAX: usize = 100;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    Limit: Option<Int>,
    #[serde(borrow)]
    ExclusiveStartShardId: Option<Str<'a>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct SummaryInput<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub(crate) struct ShardOut<'a> {
    ShardId: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ParentShardId: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    AdjacentParentShardId: Option<&'a str>,
    HashKeyRange: HashKeyRange,
    SequenceNumberRange: SequenceNumberRange,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct HashKeyRange {
    StartingHashKey: String,
    EndingHashKey: String,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct SequenceNumberRange {
    StartingSequenceNumber: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    EndingSequenceNumber: Option<String>,
}

impl<'a> ShardOut<'a> {
    pub(crate) fn of(stream: &Stream, shard: &'a Shard) -> ShardOut<'a> {
        // A closed shard's last record; AWS reports an end also for a
        // shard that never had one: then its starting number.
        let ending = shard
            .closed
            .then(|| match shard.log.next_seq().checked_sub(1) {
                Some(last) => stream.seq_number(
                    shard,
                    last,
                    shard.log.last_arrival_ms().unwrap_or(shard.created_ms),
                ),
                None => stream.seq_number(shard, 0, shard.created_ms),
            });
        ShardOut {
            ShardId: &shard.id,
            ParentShardId: shard.parent_id.as_deref(),
            AdjacentParentShardId: shard.adjacent_parent_id.as_deref(),
            HashKeyRange: HashKeyRange {
                StartingHashKey: shard.range.start.to_string(),
                EndingHashKey: shard.range.end.to_string(),
            },
            SequenceNumberRange: SequenceNumberRange {
                StartingSequenceNumber: stream.seq_number(shard, 0, shard.created_ms),
                EndingSequenceNumber: ending,
            },
        }
    }
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct EnhancedMetrics<'a> {
    ShardLevelMetrics: &'a [String],
}

/// AWS lists one entry, empty when enhanced monitoring is off.
fn enhanced_monitoring(stream: &Stream) -> [EnhancedMetrics<'_>; 1] {
    [EnhancedMetrics {
        ShardLevelMetrics: &stream.record.settings.shard_level_metrics,
    }]
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Description<'a> {
    StreamName: &'a str,
    StreamARN: &'a str,
    StreamStatus: &'static str,
    StreamModeDetails: StreamModeDetails,
    Shards: Vec<ShardOut<'a>>,
    HasMoreShards: bool,
    RetentionPeriodHours: u32,
    StreamCreationTimestamp: f64,
    EnhancedMonitoring: [EnhancedMetrics<'a>; 1],
    EncryptionType: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    KeyId: Option<&'a str>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Output<'a> {
    StreamDescription: Description<'a>,
}

pub fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    v.range(
        input.Limit.map(|n| i64::from(n.0)),
        "limit",
        Some(1),
        Some(10000),
    );
    let start = input.ExclusiveStartShardId.as_ref().map(Str::as_str);
    v.pattern(start, "exclusiveStartShardId", Pattern::Name);
    v.length(start, "exclusiveStartShardId", 1, 128);
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result::<crate::validate::ValidationError>()?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    let now = now_ms();
    let stream = kinesis.lookup(&name, now)?;
    let status = stream.status(now).unwrap_or(Status::Deleting);
    let limit = input.Limit.map_or(DESCRIBE_SHARDS_MAX, |n| {
        (n.0 as usize).min(DESCRIBE_SHARDS_MAX)
    });
    // A CREATING stream has no shards yet, as on AWS.
    let visible: Vec<&Shard> = if status == Status::Creating {
        Vec::new()
    } else {
        stream
            .listed(now)
            .filter(|s| start.is_none_or(|id| listed_after(s, id)))
            .collect()
    };
    let shards = visible
        .iter()
        .take(limit)
        .map(|s| ShardOut::of(&stream, s))
        .collect();
    super::respond(&Output {
        StreamDescription: Description {
            StreamName: stream.name(),
            StreamARN: &stream.arn,
            StreamStatus: status.as_str(),
            StreamModeDetails: StreamModeDetails {
                StreamMode: stream.record.mode.as_str(),
            },
            Shards: shards,
            HasMoreShards: visible.len() > limit,
            RetentionPeriodHours: stream.record.retention_hours,
            StreamCreationTimestamp: epoch_seconds(stream.record.created_ms),
            EnhancedMonitoring: enhanced_monitoring(&stream),
            EncryptionType: super::encryption_type(&stream),
            KeyId: stream.record.settings.encryption_key_id.as_deref(),
        },
    })
}

/// Whether `shard` comes after `ExclusiveStartShardId` `id`, read as AWS
/// reads shard ids (`shardId-5` and `5` are shard 5); an id that names no
/// shard is compared as text.
fn listed_after(shard: &Shard, id: &str) -> bool {
    match catalog::parse_shard_id(id) {
        Some(index) => shard.index > index,
        None => shard.id.as_str() > id,
    }
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Summary<'a> {
    StreamName: &'a str,
    StreamARN: &'a str,
    StreamStatus: &'static str,
    StreamModeDetails: StreamModeDetails,
    RetentionPeriodHours: u32,
    StreamCreationTimestamp: f64,
    EnhancedMonitoring: [EnhancedMetrics<'a>; 1],
    EncryptionType: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    KeyId: Option<&'a str>,
    OpenShardCount: usize,
    ConsumerCount: u32,
    MaxRecordSizeInKiB: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    WarmThroughput: Option<WarmThroughput>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct SummaryOutput<'a> {
    StreamDescriptionSummary: Summary<'a>,
}

pub fn run_summary(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: SummaryInput = json::parse(body)?;
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result::<crate::validate::ValidationError>()?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    let now = now_ms();
    let stream = kinesis.lookup(&name, now)?;
    let status = stream.status(now).unwrap_or(Status::Deleting);
    super::respond(&SummaryOutput {
        StreamDescriptionSummary: Summary {
            StreamName: stream.name(),
            StreamARN: &stream.arn,
            StreamStatus: status.as_str(),
            StreamModeDetails: StreamModeDetails {
                StreamMode: stream.record.mode.as_str(),
            },
            RetentionPeriodHours: stream.record.retention_hours,
            StreamCreationTimestamp: epoch_seconds(stream.record.created_ms),
            EnhancedMonitoring: enhanced_monitoring(&stream),
            EncryptionType: super::encryption_type(&stream),
            KeyId: stream.record.settings.encryption_key_id.as_deref(),
            OpenShardCount: if status == Status::Creating {
                0
            } else {
                stream.open_shard_count()
            },
            ConsumerCount: super::consumer_count(kinesis, &stream, now)? as u32,
            MaxRecordSizeInKiB: stream.record.max_record_kib,
            WarmThroughput: stream.record.settings.warm_throughput_mibps.map(|mibps| {
                WarmThroughput {
                    TargetMiBps: mibps,
                    CurrentMiBps: mibps,
                }
            }),
        },
    })
}
