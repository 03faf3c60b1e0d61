//! Tags, enhanced monitoring, capacity mode, record size and warm
//! throughput, driven through `Kinesis::handle` on a real `LogStore`.

use std::time::Duration;

use serde_json::{Value, json};

use super::limits_tests::{MIB, b64, call, config, create, env_with, err, ok, open};
use crate::KinesisConfig;

const ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s";

fn keys(out: &Value) -> Vec<String> {
    out["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}={}",
                t["Key"].as_str().unwrap(),
                t["Value"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn tags_are_added_listed_in_pages_removed_and_survive_a_restart() {
    let env = env_with(config());
    let k = &env.kinesis;
    ok(
        k,
        "CreateStream",
        json!({"StreamName": "s", "ShardCount": 1, "Tags": {"team": "data"}}),
    )
    .await;
    ok(
        k,
        "AddTagsToStream",
        json!({"StreamName": "s", "Tags": {"b": "2", "a": "1", "team": "core", "c": ""}}),
    )
    .await;
    let all = ok(k, "ListTagsForStream", json!({"StreamName": "s"})).await;
    assert_eq!(keys(&all), ["a=1", "b=2", "c=", "team=core"]);
    assert_eq!(all["HasMoreTags"], false);
    let page = ok(
        k,
        "ListTagsForStream",
        json!({"StreamName": "s", "Limit": 2}),
    )
    .await;
    assert_eq!(
        (keys(&page), &page["HasMoreTags"]),
        (vec!["a=1".into(), "b=2".into()], &json!(true))
    );
    let rest = ok(
        k,
        "ListTagsForStream",
        json!({"StreamName": "s", "ExclusiveStartTagKey": "b", "Limit": 2}),
    )
    .await;
    assert_eq!(
        (keys(&rest), &rest["HasMoreTags"]),
        (vec!["c=".into(), "team=core".into()], &json!(false))
    );
    ok(
        k,
        "RemoveTagsFromStream",
        json!({"StreamName": "s", "TagKeys": ["a", "nope"]}),
    )
    .await;

    let dir = env.dir;
    drop(env.kinesis);
    let k = open(dir.path(), config());
    let out = ok(&k, "ListTagsForStream", json!({"StreamARN": ARN})).await;
    assert_eq!(keys(&out), ["b=2", "c=", "team=core"]);
}

#[tokio::test]
async fn tags_are_checked_as_aws_checks_them() {
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "s", 1).await;
    let (kind, message) = err(
        k,
        "AddTagsToStream",
        json!({"StreamName": "s", "Tags": {"a!": "x"}}),
    )
    .await;
    assert_eq!(kind, "InvalidArgument");
    assert_eq!(
        message,
        "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @."
    );
    let (_, message) = err(
        k,
        "AddTagsToStream",
        json!({"StreamName": "s", "Tags": {"a": "50%"}}),
    )
    .await;
    assert!(
        message.starts_with("Failed to add tags to stream s under account 000000000000 because some tags contained illegal characters."),
        "{message}"
    );
    // Unicode letters are fine.
    ok(
        k,
        "AddTagsToStream",
        json!({"StreamName": "s", "Tags": {"équipe": "données"}}),
    )
    .await;
    let fifty: serde_json::Map<String, Value> =
        (0..50).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (kind, message) = err(
        k,
        "AddTagsToStream",
        json!({"StreamName": "s", "Tags": fifty}),
    )
    .await;
    assert_eq!(kind, "InvalidArgument");
    assert!(
        message.ends_with("cannot have more than 10 tags associated with it."),
        "{message}"
    );
    let (kind, message) = err(k, "AddTagsToStream", json!({"StreamName": "s", "Tags": {}})).await;
    assert_eq!(kind, "Validation");
    assert!(message.contains("at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1"), "{message}");
    let (kind, _) = err(
        k,
        "RemoveTagsFromStream",
        json!({"StreamName": "s", "TagKeys": []}),
    )
    .await;
    assert_eq!(kind, "Validation");
    let (kind, message) = err(
        k,
        "ListTagsForStream",
        json!({"StreamName": "s", "Limit": 51}),
    )
    .await;
    assert_eq!(kind, "Validation");
    assert!(
        message.contains("Member must have value less than or equal to 50"),
        "{message}"
    );
    let (kind, message) = err(
        k,
        "AddTagsToStream",
        json!({"StreamName": "nope", "Tags": {"a": "b"}}),
    )
    .await;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "ResourceNotFound",
            "Stream nope under account 000000000000 not found."
        )
    );
}

#[tokio::test]
async fn resources_are_tagged_by_arn() {
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "s", 1).await;
    ok(
        k,
        "TagResource",
        json!({"ResourceARN": ARN, "Tags": {"x": "1", "y": "2"}}),
    )
    .await;
    ok(
        k,
        "UntagResource",
        json!({"ResourceARN": ARN, "TagKeys": ["y"]}),
    )
    .await;
    let out = ok(k, "ListTagsForResource", json!({"ResourceARN": ARN})).await;
    assert_eq!(keys(&out), ["x=1"]);
    let by_name = ok(k, "ListTagsForStream", json!({"StreamName": "s"})).await;
    assert_eq!(keys(&by_name), ["x=1"]);
    let (kind, _) = err(
        k,
        "ListTagsForResource",
        json!({"ResourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/other"}),
    )
    .await;
    assert_eq!(kind, "ResourceNotFound");
    let (kind, message) = err(k, "ListTagsForResource", json!({"ResourceARN": "nope"})).await;
    assert_eq!(kind, "Validation");
    assert!(message.contains("at 'resourceARN' failed to satisfy constraint: Member must satisfy regular expression pattern"), "{message}");
    let (kind, _) = err(k, "ListTagsForResource", json!({})).await;
    assert_eq!(kind, "Validation");
}

#[tokio::test]
async fn enhanced_monitoring_is_stored_and_described() {
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "s", 1).await;
    let out = ok(
        k,
        "EnableEnhancedMonitoring",
        json!({"StreamName": "s", "ShardLevelMetrics": ["OutgoingBytes", "IncomingBytes"]}),
    )
    .await;
    assert_eq!(out["CurrentShardLevelMetrics"], json!([]));
    assert_eq!(
        out["DesiredShardLevelMetrics"],
        json!(["IncomingBytes", "OutgoingBytes"])
    );
    assert_eq!(
        (&out["StreamName"], &out["StreamARN"]),
        (&json!("s"), &json!(ARN))
    );
    let out = ok(
        k,
        "DisableEnhancedMonitoring",
        json!({"StreamName": "s", "ShardLevelMetrics": ["IncomingBytes"]}),
    )
    .await;
    assert_eq!(
        out["CurrentShardLevelMetrics"],
        json!(["IncomingBytes", "OutgoingBytes"])
    );
    assert_eq!(out["DesiredShardLevelMetrics"], json!(["OutgoingBytes"]));
    let out = ok(
        k,
        "EnableEnhancedMonitoring",
        json!({"StreamARN": ARN, "ShardLevelMetrics": ["ALL"]}),
    )
    .await;
    assert_eq!(out["DesiredShardLevelMetrics"].as_array().unwrap().len(), 7);
    let d = ok(k, "DescribeStream", json!({"StreamName": "s"})).await;
    assert_eq!(
        d["StreamDescription"]["EnhancedMonitoring"][0]["ShardLevelMetrics"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    ok(
        k,
        "DisableEnhancedMonitoring",
        json!({"StreamName": "s", "ShardLevelMetrics": ["ALL"]}),
    )
    .await;
    let d = ok(k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    assert_eq!(
        d["StreamDescriptionSummary"]["EnhancedMonitoring"],
        json!([{"ShardLevelMetrics": []}])
    );
    let (kind, message) = err(
        k,
        "EnableEnhancedMonitoring",
        json!({"StreamName": "s", "ShardLevelMetrics": ["Bogus"]}),
    )
    .await;
    assert_eq!(kind, "Validation");
    assert!(message.starts_with("1 validation error detected: Value '[Bogus]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [IncomingBytes,"), "{message}");
}

#[tokio::test]
async fn update_stream_mode_switches_through_updating() {
    let env = env_with(KinesisConfig {
        status_delay: Duration::from_secs(3600),
        ..config()
    });
    let k = &env.kinesis;
    create(k, "s", 2).await;
    // CREATING for an hour: not ACTIVE.
    let (kind, message) = err(
        k,
        "UpdateStreamMode",
        json!({"StreamARN": ARN, "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
    )
    .await;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "ResourceInUse",
            "Stream s under account 000000000000 not ACTIVE, instead in state CREATING"
        )
    );
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "s", 2).await;
    let limits = ok(k, "DescribeLimits", json!({})).await;
    assert_eq!(limits["OnDemandStreamCount"], 0);
    ok(
        k,
        "UpdateStreamMode",
        json!({"StreamARN": ARN, "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
    )
    .await;
    let d = ok(k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    let d = &d["StreamDescriptionSummary"];
    assert_eq!(d["StreamModeDetails"]["StreamMode"], "ON_DEMAND");
    assert_eq!(d["OpenShardCount"], 2);
    let limits = ok(k, "DescribeLimits", json!({})).await;
    assert_eq!(
        (&limits["OnDemandStreamCount"], &limits["OpenShardCount"]),
        (&json!(1), &json!(2))
    );
    let (kind, message) = err(
        k,
        "UpdateStreamMode",
        json!({"StreamARN": ARN, "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
    )
    .await;
    assert_eq!(kind, "InvalidArgument");
    assert_eq!(
        message,
        "Stream s under account 000000000000 is already in ON_DEMAND mode."
    );
    ok(
        k,
        "UpdateStreamMode",
        json!({"StreamARN": ARN, "StreamModeDetails": {"StreamMode": "PROVISIONED"}}),
    )
    .await;
    // A third switch within 24 hours is over AWS's limit.
    let (kind, message) = err(
        k,
        "UpdateStreamMode",
        json!({"StreamARN": ARN, "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
    )
    .await;
    assert_eq!(kind, "LimitExceeded");
    assert_eq!(
        message,
        "Stream s under account 000000000000 has already switched its capacity mode 2 times in the last 24 hours."
    );
    let (kind, _) = err(
        k,
        "UpdateStreamMode",
        json!({"StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
    )
    .await;
    assert_eq!(kind, "Validation");
}

#[tokio::test]
async fn a_mode_change_leaves_the_stream_updating_for_the_status_delay() {
    // Created ACTIVE at once, then reopened with an hour of status delay.
    let env = env_with(config());
    create(&env.kinesis, "s", 1).await;
    let dir = env.dir;
    drop(env.kinesis);
    let slow = KinesisConfig {
        status_delay: Duration::from_secs(3600),
        ..config()
    };
    let k = open(dir.path(), slow);
    let to = |mode: &str| json!({"StreamARN": ARN, "StreamModeDetails": {"StreamMode": mode}});
    ok(&k, "UpdateStreamMode", to("ON_DEMAND")).await;
    let d = ok(&k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    assert_eq!(d["StreamDescriptionSummary"]["StreamStatus"], "UPDATING");
    assert_eq!(
        d["StreamDescriptionSummary"]["StreamModeDetails"]["StreamMode"],
        "ON_DEMAND"
    );
    let (kind, message) = err(&k, "UpdateStreamMode", to("PROVISIONED")).await;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "ResourceInUse",
            "Stream s under account 000000000000 not ACTIVE, instead in state UPDATING"
        )
    );
    // Records still flow while UPDATING.
    ok(
        &k,
        "PutRecord",
        json!({"StreamName": "s", "PartitionKey": "a", "Data": "AA=="}),
    )
    .await;
}

#[tokio::test]
async fn update_max_record_size_lets_larger_records_in() {
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "s", 1).await;
    let big = json!({"StreamName": "s", "PartitionKey": "a", "Data": b64(&vec![1u8; 2 * MIB])});
    let (kind, _) = err(k, "PutRecord", big.clone()).await;
    assert_eq!(kind, "Validation");
    ok(
        k,
        "UpdateMaxRecordSize",
        json!({"StreamARN": ARN, "MaxRecordSizeInKiB": 10240}),
    )
    .await;
    let d = ok(k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    assert_eq!(d["StreamDescriptionSummary"]["MaxRecordSizeInKiB"], 10240);
    ok(k, "PutRecord", big).await;
    let (kind, message) = err(
        k,
        "UpdateMaxRecordSize",
        json!({"StreamARN": ARN, "MaxRecordSizeInKiB": 10241}),
    )
    .await;
    assert_eq!(kind, "Validation");
    assert!(
        message.contains("Member must have value less than or equal to 10240"),
        "{message}"
    );
    let (kind, _) = err(k, "UpdateMaxRecordSize", json!({"StreamARN": ARN})).await;
    assert_eq!(kind, "Validation");
}

#[tokio::test]
async fn warm_throughput_is_stored_and_reported() {
    let env = env_with(config());
    let k = &env.kinesis;
    ok(k, "CreateStream", json!({"StreamName": "s"})).await;
    let d = ok(k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    assert!(
        d["StreamDescriptionSummary"]
            .get("WarmThroughput")
            .is_none()
    );
    let out = ok(
        k,
        "UpdateStreamWarmThroughput",
        json!({"StreamARN": ARN, "WarmThroughputMiBps": 25}),
    )
    .await;
    assert_eq!(
        out,
        json!({"StreamARN": ARN, "StreamName": "s", "WarmThroughput": {"TargetMiBps": 25, "CurrentMiBps": 25}})
    );
    let d = ok(k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    assert_eq!(
        d["StreamDescriptionSummary"]["WarmThroughput"],
        json!({"TargetMiBps": 25, "CurrentMiBps": 25})
    );
    let (kind, _) = err(
        k,
        "UpdateStreamWarmThroughput",
        json!({"StreamARN": ARN, "WarmThroughputMiBps": -1}),
    )
    .await;
    assert_eq!(kind, "Validation");
    assert!(
        call(k, "UpdateStreamWarmThroughput", json!({"StreamARN": ARN}))
            .await
            .is_err()
    );
}
