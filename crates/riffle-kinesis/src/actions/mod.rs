//! The API actions, one module per action named after it, and what they
//! share: dispatch, the `StreamName`/`StreamARN` members, JSON responses.

mod account_settings;
mod consumers;
mod create_stream;
mod delete_stream;
mod describe_limits;
mod describe_stream;
mod enhanced_monitoring;
pub(crate) mod get_records;
mod get_shard_iterator;
mod list_shards;
mod list_streams;
mod merge_shards;
mod put_record;
pub(crate) mod put_records;
mod resource_policy;
mod retention;
mod settings;
mod split_shard;
mod stream_encryption;
pub(crate) mod subscribe_to_shard;
mod tags;
mod update_max_record_size;
mod update_shard_count;
mod update_stream_mode;
mod update_stream_warm_throughput;

use bytes::Bytes;
use serde::Serialize;

use crate::json::Str;
use crate::validate::{Pattern, Violations};
use crate::{Codec, Kinesis, KinesisError, cbor, errors};

pub(crate) use consumers::{
    any_policy as any_consumer_policy, count as consumer_count, remove_all as remove_consumers,
};
pub use describe_limits::shard_limit;
pub(crate) use resource_policy::attached as attached_policy;
pub(crate) use stream_encryption::encryption_type;
pub use update_shard_count::SHARD_COUNT_UPDATES_PER_DAY_AWS;

/// Every operation of the API model (botocore
/// `kinesis/2013-12-02/service-2.json`), implemented or not, in the model's
/// sorted order. The server needs it too: AWS answers an unknown operation
/// before it checks credentials.
pub const MODEL_OPERATIONS: &[&str] = &[
    "AcknowledgeDeadLetterQueueRecords",
    "AcknowledgeQueueRecords",
    "AddTagsToStream",
    "CreateChannel",
    "CreateQueue",
    "CreateStream",
    "DecreaseStreamRetentionPeriod",
    "DeleteChannel",
    "DeleteQueue",
    "DeleteResourcePolicy",
    "DeleteStream",
    "DeregisterStreamConsumer",
    "DescribeAccountSettings",
    "DescribeChannel",
    "DescribeLimits",
    "DescribeQueue",
    "DescribeStream",
    "DescribeStreamConsumer",
    "DescribeStreamSummary",
    "DisableEnhancedMonitoring",
    "EnableEnhancedMonitoring",
    "GetRecords",
    "GetResourcePolicy",
    "GetShardIterator",
    "IncreaseStreamRetentionPeriod",
    "ListChannels",
    "ListQueues",
    "ListShards",
    "ListStreamConsumers",
    "ListStreams",
    "ListTagsForResource",
    "ListTagsForStream",
    "MergeShards",
    "PutRecord",
    "PutRecords",
    "PutResourcePolicy",
    "ReceiveDeadLetterQueueRecords",
    "ReceiveQueueRecords",
    "RegisterStreamConsumer",
    "RemoveTagsFromStream",
    "RestoreDeadLetterQueueRecords",
    "SplitShard",
    "StartStreamEncryption",
    "StopStreamEncryption",
    "SubscribeToShard",
    "TagResource",
    "UntagResource",
    "UpdateAccountSettings",
    "UpdateChannel",
    "UpdateDeadLetterQueueRecordsVisibility",
    "UpdateMaxRecordSize",
    "UpdateQueue",
    "UpdateQueueRecordsVisibility",
    "UpdateShardCount",
    "UpdateStreamMode",
    "UpdateStreamRecordDistributionStrategy",
    "UpdateStreamWarmThroughput",
];

pub async fn dispatch(kinesis: &Kinesis, action: &str, body: &[u8]) -> Result<Bytes, KinesisError> {
    match action {
        "CreateStream" => create_stream::run(kinesis, body).await,
        "DeleteStream" => delete_stream::run(kinesis, body).await,
        "DescribeStream" => describe_stream::run(kinesis, body),
        "DescribeStreamSummary" => describe_stream::run_summary(kinesis, body),
        "ListStreams" => list_streams::run(kinesis, body),
        "ListShards" => list_shards::run(kinesis, body),
        "PutRecord" => put_record::run(kinesis, body).await,
        "PutRecords" => put_records::run(kinesis, body).await,
        "GetShardIterator" => get_shard_iterator::run(kinesis, body),
        "GetRecords" => get_records::run(kinesis, body, Codec::Json).await,
        "DescribeLimits" => describe_limits::run(kinesis, body),
        "SplitShard" => split_shard::run(kinesis, body).await,
        "MergeShards" => merge_shards::run(kinesis, body).await,
        "UpdateShardCount" => update_shard_count::run(kinesis, body).await,
        "IncreaseStreamRetentionPeriod" => retention::run_increase(kinesis, body).await,
        "DecreaseStreamRetentionPeriod" => retention::run_decrease(kinesis, body).await,
        "AddTagsToStream" => tags::run_add(kinesis, body).await,
        "RemoveTagsFromStream" => tags::run_remove(kinesis, body).await,
        "ListTagsForStream" => tags::run_list(kinesis, body),
        "TagResource" => tags::run_tag_resource(kinesis, body).await,
        "UntagResource" => tags::run_untag_resource(kinesis, body).await,
        "ListTagsForResource" => tags::run_list_for_resource(kinesis, body),
        "EnableEnhancedMonitoring" => enhanced_monitoring::run_enable(kinesis, body).await,
        "DisableEnhancedMonitoring" => enhanced_monitoring::run_disable(kinesis, body).await,
        "UpdateStreamMode" => update_stream_mode::run(kinesis, body).await,
        "UpdateMaxRecordSize" => update_max_record_size::run(kinesis, body).await,
        "UpdateStreamWarmThroughput" => update_stream_warm_throughput::run(kinesis, body).await,
        "StartStreamEncryption" => stream_encryption::run_start(kinesis, body).await,
        "StopStreamEncryption" => stream_encryption::run_stop(kinesis, body).await,
        "RegisterStreamConsumer" => consumers::run_register(kinesis, body).await,
        "DescribeStreamConsumer" => consumers::run_describe(kinesis, body),
        "ListStreamConsumers" => consumers::run_list(kinesis, body),
        "DeregisterStreamConsumer" => consumers::run_deregister(kinesis, body).await,
        "DescribeAccountSettings" => account_settings::run_describe(kinesis, body),
        "UpdateAccountSettings" => account_settings::run_update(kinesis, body).await,
        "PutResourcePolicy" => resource_policy::run_put(kinesis, body).await,
        "GetResourcePolicy" => resource_policy::run_get(kinesis, body),
        "DeleteResourcePolicy" => resource_policy::run_delete(kinesis, body).await,
        other if MODEL_OPERATIONS.contains(&other) => Err(errors::not_supported(other)),
        // AWS sends no message for an unknown operation.
        _ => Err(KinesisError::UnknownOperation(String::new())),
    }
}

/// Runs a request that came in CBOR (`body` is its JSON transcoding) and
/// answers in CBOR. GetRecords writes its CBOR answer itself: transcoding
/// its JSON would base64-encode up to 10 MiB of data only to decode it
/// again. Every other action's JSON answer is transcoded.
pub async fn dispatch_cbor(
    kinesis: &Kinesis,
    action: &str,
    body: &[u8],
) -> Result<Bytes, KinesisError> {
    match action {
        "GetRecords" => get_records::run(kinesis, body, Codec::Cbor).await,
        _ => cbor::response_from_json(&dispatch(kinesis, action, body).await?),
    }
}

/// Checks the `StreamName` and `StreamARN` members every stream action has.
pub(crate) fn check_target(v: &mut Violations, name: &Option<Str<'_>>, arn: &Option<Str<'_>>) {
    let name = name.as_ref().map(Str::as_str);
    v.pattern(name, "streamName", Pattern::Name);
    v.length(name, "streamName", 1, 128);
    let arn = arn.as_ref().map(Str::as_str);
    v.pattern(arn, "streamARN", Pattern::StreamArn);
    v.length(arn, "streamARN", 1, 2048);
}

/// Checks the `StreamId` member (accepted, unused: Riffle has one account).
pub(crate) fn check_stream_id(v: &mut Violations, id: &Option<Str<'_>>) {
    let id = id.as_ref().map(Str::as_str);
    v.pattern(id, "streamId", Pattern::StreamId);
    v.length(id, "streamId", 1, 24);
}

/// The stream name a request's `StreamName`/`StreamARN` refer to.
pub(crate) fn target(
    kinesis: &Kinesis,
    name: &Option<Str<'_>>,
    arn: &Option<Str<'_>>,
) -> Result<String, KinesisError> {
    kinesis.target_name(
        name.as_ref().map(Str::as_str),
        arn.as_ref().map(Str::as_str),
    )
}

pub(crate) fn respond<T: Serialize>(value: &T) -> Result<Bytes, KinesisError> {
    // Response shapes hold only strings, numbers and booleans.
    Ok(Bytes::from(
        serde_json::to_vec(value).expect("response shapes always serialize"),
    ))
}

/// Epoch milliseconds as the JSON number of seconds AWS sends.
pub(crate) fn epoch_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub(crate) struct StreamModeDetails {
    pub StreamMode: &'static str,
}

#[cfg(test)]
mod encryption_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod reshard_tests;
#[cfg(test)]
mod settings_tests;
#[cfg(test)]
mod subscribe_tests;
#[cfg(test)]
mod tests;
