//! The actions driven through `Kinesis::handle` with JSON bodies, against a
//! real `LogStore` in a temporary directory.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_log::{FsyncPolicy, LogStore, StoreConfig};
use serde_json::{Value, json};

use crate::seqnum::SeqNum;
use crate::{Codec, Kinesis, KinesisConfig, KinesisError};

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<LogStore>,
    kinesis: Arc<Kinesis>,
}

fn open_at(dir: &Path, config: KinesisConfig) -> (Arc<LogStore>, Arc<Kinesis>) {
    let store = Arc::new(
        LogStore::open(
            dir,
            StoreConfig {
                fsync: FsyncPolicy::Never,
                ..StoreConfig::default()
            },
        )
        .unwrap(),
    );
    let kinesis = Kinesis::open(store.clone(), config).unwrap();
    (store, kinesis)
}

fn config() -> KinesisConfig {
    KinesisConfig {
        status_delay: Duration::ZERO,
        ..KinesisConfig::default()
    }
}

fn env_with(config: KinesisConfig) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let (store, kinesis) = open_at(dir.path(), config);
    Env {
        _dir: dir,
        store,
        kinesis,
    }
}

fn env() -> Env {
    env_with(config())
}

async fn call_raw(k: &Kinesis, action: &str, body: &str) -> Result<Value, KinesisError> {
    let out = k
        .handle(action, Bytes::copy_from_slice(body.as_bytes()), Codec::Json)
        .await?;
    if out.is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&out).expect("responses are JSON"))
}

async fn call(k: &Kinesis, action: &str, body: Value) -> Result<Value, KinesisError> {
    call_raw(k, action, &body.to_string()).await
}

async fn ok(k: &Kinesis, action: &str, body: Value) -> Value {
    match call(k, action, body.clone()).await {
        Ok(v) => v,
        Err(e) => panic!("{action} {body}: {e:?}"),
    }
}

/// The error's variant name and message.
async fn err(k: &Kinesis, action: &str, body: Value) -> (String, String) {
    match call(k, action, body.clone()).await {
        Ok(v) => panic!("{action} {body} succeeded: {v}"),
        Err(e) => split(e),
    }
}

fn split(e: KinesisError) -> (String, String) {
    let debug = format!("{e:?}");
    let kind = debug.split('(').next().unwrap_or_default().to_owned();
    (kind, e.to_string())
}

fn b64(data: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(data)
}

async fn create(k: &Kinesis, name: &str, shards: u32) {
    ok(
        k,
        "CreateStream",
        json!({"StreamName": name, "ShardCount": shards}),
    )
    .await;
}

async fn iterator(k: &Kinesis, stream: &str, shard: &str, kind: &str) -> String {
    let out = ok(
        k,
        "GetShardIterator",
        json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": kind}),
    )
    .await;
    out["ShardIterator"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn create_describe_list_and_delete_a_stream() {
    let env = env();
    let k = &env.kinesis;
    create(k, "orders", 2).await;
    let out = ok(k, "DescribeStream", json!({"StreamName": "orders"})).await;
    let d = &out["StreamDescription"];
    assert_eq!(d["StreamStatus"], "ACTIVE");
    assert_eq!(
        d["StreamARN"],
        "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
    );
    assert_eq!(d["HasMoreShards"], false);
    assert_eq!(d["RetentionPeriodHours"], 24);
    assert_eq!(d["StreamModeDetails"]["StreamMode"], "PROVISIONED");
    assert_eq!(d["Shards"][0]["ShardId"], "shardId-000000000000");
    assert_eq!(
        d["Shards"][0]["HashKeyRange"]["EndingHashKey"],
        "170141183460469231731687303715884105727"
    );
    assert_eq!(
        d["Shards"][1]["HashKeyRange"]["StartingHashKey"],
        "170141183460469231731687303715884105728"
    );
    assert_eq!(
        d["Shards"][0]["SequenceNumberRange"]["StartingSequenceNumber"]
            .as_str()
            .unwrap()
            .len(),
        56
    );
    assert!(d["StreamCreationTimestamp"].as_f64().unwrap() > 1.7e9);

    let by_arn = ok(
        k,
        "DescribeStreamSummary",
        json!({"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/orders"}),
    )
    .await;
    assert_eq!(by_arn["StreamDescriptionSummary"]["OpenShardCount"], 2);

    let list = ok(k, "ListStreams", json!({})).await;
    assert_eq!(list["StreamNames"], json!(["orders"]));
    assert_eq!(list["HasMoreStreams"], false);
    assert_eq!(list["StreamSummaries"][0]["StreamStatus"], "ACTIVE");

    ok(k, "DeleteStream", json!({"StreamName": "orders"})).await;
    let (kind, message) = err(k, "DescribeStream", json!({"StreamName": "orders"})).await;
    assert_eq!(kind, "ResourceNotFound");
    assert_eq!(
        message,
        "Stream orders under account 000000000000 not found."
    );
}

#[tokio::test]
async fn stream_errors_use_aws_names_and_texts() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 1).await;
    let (kind, message) = err(
        k,
        "CreateStream",
        json!({"StreamName": "s", "ShardCount": 1}),
    )
    .await;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "ResourceInUse",
            "Stream s under account 000000000000 already exists."
        )
    );

    let (kind, message) = err(
        k,
        "CreateStream",
        json!({"StreamName": "a".repeat(129), "ShardCount": 0}),
    )
    .await;
    assert_eq!(kind, "Validation");
    assert!(
        message.starts_with("2 validation errors detected: Value '"),
        "{message}"
    );
    assert!(message.contains("at 'streamName' failed to satisfy constraint: Member must have length less than or equal to 128"));
    assert!(message.contains("Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"));

    let (kind, message) = err(k, "CreateStream", json!({"ShardCount": 1})).await;
    assert_eq!(kind, "Validation");
    assert_eq!(
        message,
        "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null"
    );

    let (kind, _) = err(
        k,
        "CreateStream",
        json!({"StreamName": "x", "ShardCount": "1"}),
    )
    .await;
    assert_eq!(kind, "Serialization");
    let (kind, message) = split(call_raw(k, "CreateStream", "{not json").await.unwrap_err());
    assert_eq!((kind.as_str(), message.as_str()), ("Serialization", ""));

    let (kind, _) = err(
        k,
        "CreateStream",
        json!({"StreamName": "big", "ShardCount": 20_001}),
    )
    .await;
    assert_eq!(kind, "LimitExceeded");

    let (kind, _) = err(k, "DescribeStream", json!({})).await;
    assert_eq!(kind, "InvalidArgument");
    let (kind, _) = err(k, "DeleteStream", json!({"StreamName": "nope"})).await;
    assert_eq!(kind, "ResourceNotFound");
    let (kind, message) = err(k, "ListQueues", json!({})).await;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "InvalidArgument",
            "ListQueues is not supported by Riffle yet."
        )
    );
    let (kind, _) = err(k, "NoSuchAction", json!({})).await;
    assert_eq!(kind, "UnknownOperation");
}

#[tokio::test]
async fn on_demand_streams_get_four_shards_and_count_in_limits() {
    let env = env();
    let k = &env.kinesis;
    ok(
        k,
        "CreateStream",
        json!({"StreamName": "od", "StreamModeDetails": {"StreamMode": "ON_DEMAND"}}),
    )
    .await;
    let summary = ok(k, "DescribeStreamSummary", json!({"StreamName": "od"})).await;
    assert_eq!(summary["StreamDescriptionSummary"]["OpenShardCount"], 4);
    assert_eq!(
        summary["StreamDescriptionSummary"]["StreamModeDetails"]["StreamMode"],
        "ON_DEMAND"
    );
    let (kind, _) = err(
        k,
        "CreateStream",
        json!({"StreamName": "p", "StreamModeDetails": {"StreamMode": "PROVISIONED"}}),
    )
    .await;
    assert_eq!(kind, "InvalidArgument");
    let (kind, message) = err(
        k,
        "CreateStream",
        json!({"StreamName": "p", "StreamModeDetails": {"StreamMode": "FAST"}}),
    )
    .await;
    assert_eq!(kind, "Validation");
    assert!(message.contains("at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]"));
    let limits = ok(k, "DescribeLimits", json!({})).await;
    assert_eq!(
        limits,
        json!({"ShardLimit": 20000, "OpenShardCount": 4, "OnDemandStreamCount": 1, "OnDemandStreamCountLimit": 50})
    );
}

#[tokio::test]
async fn put_and_get_records_round_trip_in_order() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 1).await;
    let mut seqs = Vec::new();
    for i in 0..5u8 {
        let out = ok(
            k,
            "PutRecord",
            json!({"StreamName": "s", "Data": b64(&[i; 3]), "PartitionKey": format!("k{i}")}),
        )
        .await;
        assert_eq!(out["ShardId"], "shardId-000000000000");
        seqs.push(out["SequenceNumber"].as_str().unwrap().to_owned());
    }
    assert!(
        seqs.windows(2)
            .all(|w| (w[0].len(), &w[0]) < (w[1].len(), &w[1])),
        "{seqs:?}"
    );
    let it = iterator(k, "s", "shardId-000000000000", "TRIM_HORIZON").await;
    let out = ok(k, "GetRecords", json!({"ShardIterator": it, "Limit": 3})).await;
    let records = out["Records"].as_array().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[1]["Data"], b64(&[1; 3]));
    assert_eq!(records[1]["PartitionKey"], "k1");
    assert_eq!(records[1]["SequenceNumber"], seqs[1]);
    assert!(records[0]["ApproximateArrivalTimestamp"].as_f64().unwrap() > 1.7e9);
    let next = out["NextShardIterator"].as_str().unwrap();
    let out = ok(k, "GetRecords", json!({"ShardIterator": next})).await;
    assert_eq!(out["Records"].as_array().unwrap().len(), 2);
    assert_eq!(out["MillisBehindLatest"], 0);

    let at = ok(
        k,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "shardId-000000000000",
        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": seqs[3]}),
    )
    .await;
    let out = ok(
        k,
        "GetRecords",
        json!({"ShardIterator": at["ShardIterator"]}),
    )
    .await;
    assert_eq!(out["Records"][0]["SequenceNumber"], seqs[4]);

    let latest = iterator(k, "s", "shardId-000000000000", "LATEST").await;
    let out = ok(k, "GetRecords", json!({"ShardIterator": latest})).await;
    assert_eq!(out["Records"], json!([]));
}

#[tokio::test]
async fn put_records_routes_by_md5_and_reports_in_request_order() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 4).await;
    let records: Vec<Value> = (0..50)
        .map(
            |i| json!({"Data": b64(format!("r{i}").as_bytes()), "PartitionKey": format!("pk-{i}")}),
        )
        .collect();
    let out = ok(
        k,
        "PutRecords",
        json!({"StreamName": "s", "Records": records}),
    )
    .await;
    assert_eq!(out["FailedRecordCount"], 0);
    let results = out["Records"].as_array().unwrap();
    assert_eq!(results.len(), 50);
    for (i, result) in results.iter().enumerate() {
        let hash = crate::hashkey::of_partition_key(format!("pk-{i}").as_bytes());
        let expected = crate::hashkey::split_evenly(4)
            .iter()
            .position(|r| r.contains(hash))
            .unwrap();
        assert_eq!(
            result["ShardId"],
            crate::catalog::shard_id(expected as u32),
            "record {i}"
        );
    }
    // Every record is readable from its shard, in request order per shard.
    let mut seen = 0;
    for shard in 0..4 {
        let it = iterator(k, "s", &format!("shardId-{shard:012}"), "TRIM_HORIZON").await;
        let out = ok(k, "GetRecords", json!({"ShardIterator": it})).await;
        let got = out["Records"].as_array().unwrap();
        let expected: Vec<&Value> = results
            .iter()
            .filter(|r| r["ShardId"] == format!("shardId-{shard:012}"))
            .collect();
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(expected) {
            assert_eq!(g["SequenceNumber"], e["SequenceNumber"]);
        }
        seen += got.len();
    }
    assert_eq!(seen, 50);
}

#[tokio::test]
async fn explicit_hash_keys_route_and_are_range_checked() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 2).await;
    let out = ok(
        k,
        "PutRecord",
        json!({"StreamName": "s", "Data": "", "PartitionKey": "a",
        "ExplicitHashKey": "170141183460469231731687303715884105728"}),
    )
    .await;
    assert_eq!(out["ShardId"], "shardId-000000000001");
    let (kind, message) = err(
        k,
        "PutRecord",
        json!({"StreamName": "s", "Data": "", "PartitionKey": "a",
        "ExplicitHashKey": "340282366920938463463374607431768211456"}),
    )
    .await;
    assert_eq!(kind, "InvalidArgument");
    assert!(message.starts_with(
        "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]."
    ));
}

#[tokio::test]
async fn put_errors_match_aws() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 1).await;
    let (kind, message) = err(
        k,
        "PutRecord",
        json!({"StreamName": "nope", "Data": "", "PartitionKey": "a"}),
    )
    .await;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "ResourceNotFound",
            "Stream nope under account 000000000000 not found."
        )
    );
    let (kind, message) = err(
        k,
        "PutRecord",
        json!({"StreamName": "s", "Data": "abc", "PartitionKey": "a"}),
    )
    .await;
    assert_eq!(kind, "Serialization");
    assert!(
        message.contains("Base64 encoded length is expected a multiple of 4 bytes but found: 3")
    );
    let (kind, message) = err(
        k,
        "PutRecord",
        json!({"StreamName": "s", "Data": "", "PartitionKey": "p".repeat(257)}),
    )
    .await;
    assert_eq!(kind, "Validation");
    assert!(message.contains("at 'partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256"));
    let big = b64(&vec![0u8; 1024 * 1024 + 1]);
    let (kind, message) = err(
        k,
        "PutRecord",
        json!({"StreamName": "s", "Data": big, "PartitionKey": "a"}),
    )
    .await;
    assert_eq!(kind, "Validation");
    assert!(
        message
            .contains("Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]' at 'data'"),
        "{message}"
    );

    let (kind, message) = err(k, "PutRecords", json!({"StreamName": "s", "Records": []})).await;
    assert_eq!(kind, "Validation");
    assert!(message.contains("at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1"));
    let many: Vec<Value> = (0..501)
        .map(|_| json!({"Data": "", "PartitionKey": "a"}))
        .collect();
    let (kind, _) = err(k, "PutRecords", json!({"StreamName": "s", "Records": many})).await;
    assert_eq!(kind, "Validation");
    let (kind, message) = err(
        k,
        "PutRecords",
        json!({"StreamName": "s", "Records": [{"Data": ""}]}),
    )
    .await;
    assert_eq!(kind, "Validation");
    assert!(
        message.contains("Value null at 'records.1.member.partitionKey'"),
        "{message}"
    );
    // Over PutRecords' 10 MiB per request, partition keys included.
    let eleven: Vec<Value> = (0..11)
        .map(|_| json!({"Data": b64(&vec![1u8; 1024 * 1024]), "PartitionKey": "a"}))
        .collect();
    let (kind, message) = err(
        k,
        "PutRecords",
        json!({"StreamName": "s", "Records": eleven}),
    )
    .await;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        ("InvalidArgument", "Records size exceeds 10 MB limit")
    );
}

#[tokio::test]
async fn iterators_refuse_forgery_and_expire() {
    let env = env_with(KinesisConfig {
        iterator_ttl: Duration::from_millis(50),
        ..config()
    });
    let k = &env.kinesis;
    create(k, "s", 1).await;
    let it = iterator(k, "s", "shardId-000000000000", "TRIM_HORIZON").await;
    let mut forged = it.clone().into_bytes();
    forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
    let (kind, message) = err(
        k,
        "GetRecords",
        json!({"ShardIterator": String::from_utf8(forged).unwrap()}),
    )
    .await;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        ("InvalidArgument", "Invalid ShardIterator.")
    );
    let (kind, _) = err(k, "GetRecords", json!({"ShardIterator": "garbage!"})).await;
    assert_eq!(kind, "InvalidArgument");
    tokio::time::sleep(Duration::from_millis(120)).await;
    let (kind, message) = err(k, "GetRecords", json!({"ShardIterator": it})).await;
    assert_eq!(kind, "ExpiredIterator");
    assert!(
        message.starts_with("Iterator expired. The iterator was created at time "),
        "{message}"
    );
    assert!(
        message.ends_with(
            "which is further in the future than the tolerated delay of 50 milliseconds."
        )
    );
}

/// A sequence number of shard 0 of another stream that `stream` cannot
/// mistake for its own. A number carries only its shard's creation second
/// and the low byte of the stream's incarnation, so a stream created in the
/// same second has a 1 in 256 chance of looking like the issuer; such a
/// stream is skipped for another, or the test would fail at random.
async fn foreign_sequence_number(k: &Kinesis, stream: &str) -> String {
    let first_of = |name: String| async move {
        let put = json!({"StreamName": name, "Data": "", "PartitionKey": "a",
                         "ExplicitHashKey": "0"});
        let out = ok(k, "PutRecord", put).await;
        out["SequenceNumber"].as_str().unwrap().to_owned()
    };
    let own = SeqNum::decode(&first_of(stream.to_owned()).await).unwrap();
    for attempt in 0..16 {
        let other = format!("{stream}-other-{attempt}");
        create(k, &other, 1).await;
        let text = first_of(other).await;
        let number = SeqNum::decode(&text).unwrap();
        if (number.shard_created_secs, number.incarnation_byte)
            != (own.shard_created_secs, own.incarnation_byte)
        {
            return text;
        }
    }
    panic!("16 streams in a row shared the incarnation byte of {stream}");
}

#[tokio::test]
async fn shard_iterator_arguments_are_checked_as_aws_does() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 2).await;
    let foreign = foreign_sequence_number(k, "s").await;
    let foreign = foreign.as_str();
    let base = json!({"StreamName": "s", "ShardId": "shardId-000000000000"});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let (kind, message) = err(
        k,
        "GetShardIterator",
        with(json!({"ShardIteratorType": "AT_SEQUENCE_NUMBER"})),
    )
    .await;
    assert_eq!(kind, "InvalidArgument");
    assert!(
        message.ends_with("Request specified AT_SEQUENCE_NUMBER and no StartingSequenceNumber.")
    );
    let (kind, message) = err(
        k,
        "GetShardIterator",
        with(json!({"ShardIteratorType": "AT_SEQUENCE_NUMBER", "StartingSequenceNumber": foreign})),
    )
    .await;
    assert_eq!(kind, "InvalidArgument");
    assert!(
        message.ends_with("is invalid because it did not come from this stream."),
        "{message}"
    );
    let (kind, message) = err(
        k,
        "GetShardIterator",
        with(json!({"ShardIteratorType": "NOPE"})),
    )
    .await;
    assert_eq!(kind, "Validation");
    assert!(message.contains("Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]"));
    let (kind, message) = err(k, "GetShardIterator", json!({"StreamName": "s", "ShardId": "shardId-000000000009", "ShardIteratorType": "LATEST"})).await;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "ResourceNotFound",
            "Shard shardId-000000000009 in stream s under account 000000000000 does not exist"
        )
    );
    let out = ok(
        k,
        "GetShardIterator",
        with(json!({"ShardIteratorType": "AT_TIMESTAMP", "Timestamp": 1.0})),
    )
    .await;
    assert!(out["ShardIterator"].as_str().is_some());
}

#[tokio::test]
async fn list_shards_paginates_with_next_token_only() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 5).await;
    let first = ok(k, "ListShards", json!({"StreamName": "s", "MaxResults": 2})).await;
    assert_eq!(first["Shards"].as_array().unwrap().len(), 2);
    let token = first["NextToken"].as_str().unwrap();
    let (kind, message) = err(
        k,
        "ListShards",
        json!({"StreamName": "s", "NextToken": token}),
    )
    .await;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        (
            "InvalidArgument",
            "NextToken and StreamName cannot be provided together."
        )
    );
    let second = ok(
        k,
        "ListShards",
        json!({"NextToken": token, "MaxResults": 10}),
    )
    .await;
    assert_eq!(second["Shards"][0]["ShardId"], "shardId-000000000002");
    assert_eq!(second["Shards"].as_array().unwrap().len(), 3);
    assert!(second.get("NextToken").is_none());
    let after = ok(k, "ListShards", json!({"StreamName": "s", "ShardFilter": {"Type": "AFTER_SHARD_ID", "ShardId": "shardId-000000000003"}})).await;
    assert_eq!(after["Shards"].as_array().unwrap().len(), 1);
    let (kind, _) = err(k, "ListShards", json!({})).await;
    assert_eq!(kind, "InvalidArgument");
    let (kind, _) = err(
        k,
        "ListShards",
        json!({"StreamName": "s", "ShardFilter": {"Type": "AT_TIMESTAMP"}}),
    )
    .await;
    assert_eq!(kind, "InvalidArgument");
}

#[tokio::test]
async fn list_streams_paginates() {
    let env = env();
    let k = &env.kinesis;
    for name in ["a", "b", "c"] {
        create(k, name, 1).await;
    }
    let first = ok(k, "ListStreams", json!({"Limit": 2})).await;
    assert_eq!(first["StreamNames"], json!(["a", "b"]));
    assert_eq!(first["HasMoreStreams"], true);
    let second = ok(k, "ListStreams", json!({"NextToken": first["NextToken"]})).await;
    assert_eq!(second["StreamNames"], json!(["c"]));
    assert_eq!(second["HasMoreStreams"], false);
    let after = ok(k, "ListStreams", json!({"ExclusiveStartStreamName": "a"})).await;
    assert_eq!(after["StreamNames"], json!(["b", "c"]));
}

#[tokio::test]
async fn status_moves_from_creating_to_active_and_deleting_to_gone() {
    let env = env_with(KinesisConfig {
        status_delay: Duration::from_millis(100),
        ..config()
    });
    let k = &env.kinesis;
    let background = tokio::spawn(k.clone().run_background(std::future::pending()));
    create(k, "s", 1).await;
    let d = ok(k, "DescribeStream", json!({"StreamName": "s"})).await;
    assert_eq!(d["StreamDescription"]["StreamStatus"], "CREATING");
    assert_eq!(d["StreamDescription"]["Shards"], json!([]));
    let (kind, _) = err(
        k,
        "PutRecord",
        json!({"StreamName": "s", "Data": "", "PartitionKey": "a"}),
    )
    .await;
    assert_eq!(kind, "ResourceNotFound");
    wait_for_status(k, "s", Some("ACTIVE")).await;
    ok(k, "DeleteStream", json!({"StreamName": "s"})).await;
    let d = ok(k, "DescribeStream", json!({"StreamName": "s"})).await;
    assert_eq!(d["StreamDescription"]["StreamStatus"], "DELETING");
    wait_for_status(k, "s", None).await;
    // The background task removed the catalog entry.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while env.store.meta().get("kinesis/stream/s").unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "catalog entry not removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    background.abort();
}

async fn wait_for_status(k: &Kinesis, name: &str, want: Option<&str>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = call(k, "DescribeStreamSummary", json!({"StreamName": name}))
            .await
            .ok();
        let status = got.as_ref().map(|v| {
            v["StreamDescriptionSummary"]["StreamStatus"]
                .as_str()
                .unwrap()
                .to_owned()
        });
        if status.as_deref() == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stream {name} stuck in {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_recreated_stream_does_not_see_old_records() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 1).await;
    ok(
        k,
        "PutRecord",
        json!({"StreamName": "s", "Data": b64(b"old"), "PartitionKey": "a"}),
    )
    .await;
    let old_iterator = iterator(k, "s", "shardId-000000000000", "TRIM_HORIZON").await;
    ok(k, "DeleteStream", json!({"StreamName": "s"})).await;
    create(k, "s", 1).await;
    let it = iterator(k, "s", "shardId-000000000000", "TRIM_HORIZON").await;
    let out = ok(k, "GetRecords", json!({"ShardIterator": it})).await;
    assert_eq!(out["Records"], json!([]));
    let (kind, _) = err(k, "GetRecords", json!({"ShardIterator": old_iterator})).await;
    assert_eq!(kind, "ResourceNotFound");
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (seqs, it) = {
        let (store, k) = open_at(dir.path(), config());
        create(&k, "s", 2).await;
        let records: Vec<Value> = (0..20)
            .map(|i| json!({"Data": b64(&[i]), "PartitionKey": format!("{i}")}))
            .collect();
        let out = ok(
            &k,
            "PutRecords",
            json!({"StreamName": "s", "Records": records}),
        )
        .await;
        let seqs: Vec<Value> = out["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["SequenceNumber"].clone())
            .collect();
        let it = iterator(&k, "s", "shardId-000000000000", "TRIM_HORIZON").await;
        store.shutdown().await.unwrap();
        (seqs, it)
    };
    let (_store, k) = open_at(dir.path(), config());
    // Iterators issued before the restart stay valid: the key is stored.
    let out = ok(&k, "GetRecords", json!({"ShardIterator": it})).await;
    let mut read: Vec<Value> = out["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["SequenceNumber"].clone())
        .collect();
    let it1 = iterator(&k, "s", "shardId-000000000001", "TRIM_HORIZON").await;
    let out = ok(&k, "GetRecords", json!({"ShardIterator": it1})).await;
    read.extend(
        out["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["SequenceNumber"].clone()),
    );
    let mut expected = seqs.clone();
    expected.sort_by_key(|v| v.as_str().unwrap().to_owned());
    read.sort_by_key(|v| v.as_str().unwrap().to_owned());
    assert_eq!(read, expected);
    // New records get larger sequence numbers than any before the restart.
    let out = ok(
        &k,
        "PutRecord",
        json!({"StreamName": "s", "Data": "", "PartitionKey": "0"}),
    )
    .await;
    let new = out["SequenceNumber"].as_str().unwrap();
    let shard = out["ShardId"].clone();
    let before = ok(&k, "ListShards", json!({"StreamName": "s"})).await;
    assert_eq!(before["Shards"].as_array().unwrap().len(), 2);
    let same_shard_max = seqs
        .iter()
        .zip(0..)
        .filter(|(_, i)| {
            crate::hashkey::split_evenly(2).iter().position(|r| {
                r.contains(crate::hashkey::of_partition_key(format!("{i}").as_bytes()))
            }) == Some(if shard == "shardId-000000000000" {
                0
            } else {
                1
            })
        })
        .map(|(s, _)| s.as_str().unwrap().to_owned())
        .max()
        .unwrap();
    assert!(new > same_shard_max.as_str(), "{new} <= {same_shard_max}");
}

#[tokio::test]
async fn put_records_reports_partial_failure_per_record() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 2).await;
    // Break shard 1 underneath the service: its appends now fail.
    let broken = k.get("s").unwrap().shards[1].log.name().to_owned();
    env.store.delete_log(&broken).unwrap();
    let low = "0";
    let high = "340282366920938463463374607431768211455";
    let records = json!([
        {"Data": "", "PartitionKey": "a", "ExplicitHashKey": low},
        {"Data": "", "PartitionKey": "b", "ExplicitHashKey": high},
        {"Data": "", "PartitionKey": "c", "ExplicitHashKey": low},
    ]);
    let out = ok(
        k,
        "PutRecords",
        json!({"StreamName": "s", "Records": records}),
    )
    .await;
    assert_eq!(out["FailedRecordCount"], 1);
    let results = out["Records"].as_array().unwrap();
    assert_eq!(results[0]["ShardId"], "shardId-000000000000");
    assert_eq!(results[1]["ErrorCode"], "InternalFailure");
    assert_eq!(results[1]["ErrorMessage"], "Internal service failure.");
    assert!(results[1].get("SequenceNumber").is_none());
    assert_eq!(results[2]["ShardId"], "shardId-000000000000");
    assert!(
        results[0]["SequenceNumber"].as_str().unwrap()
            < results[2]["SequenceNumber"].as_str().unwrap()
    );
}

#[tokio::test]
async fn records_past_the_retention_period_are_not_returned() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 1).await;
    let day_and_a_bit_ago = crate::time::now_ms() - 25 * 3_600_000;
    let old = riffle_log::RecordIn {
        partition_key: b"a",
        explicit_hash_key: None,
        data: b"old",
    };
    k.get("s").unwrap().shards[0]
        .log
        .append(&[old], day_and_a_bit_ago)
        .await
        .unwrap();
    ok(
        k,
        "PutRecord",
        json!({"StreamName": "s", "Data": b64(b"new"), "PartitionKey": "a"}),
    )
    .await;
    let it = iterator(k, "s", "shardId-000000000000", "TRIM_HORIZON").await;
    let out = ok(k, "GetRecords", json!({"ShardIterator": it})).await;
    let records = out["Records"].as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["Data"], b64(b"new"));
}

#[tokio::test]
async fn explicit_hash_keys_at_every_range_boundary_land_in_their_shard() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 3).await;
    for (index, range) in crate::hashkey::split_evenly(3).iter().enumerate() {
        for key in [range.start, range.start + 1, range.end - 1, range.end] {
            let body = json!({"StreamName": "s", "Data": "", "PartitionKey": "p", "ExplicitHashKey": key.to_string()});
            let out = ok(k, "PutRecord", body).await;
            assert_eq!(
                out["ShardId"],
                crate::catalog::shard_id(index as u32),
                "hash key {key}"
            );
        }
    }
}

#[tokio::test]
async fn members_the_model_does_not_have_are_ignored_in_json_and_cbor() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 1).await;
    // CreateStream's input sent to actions that do not model ShardCount,
    // and a nested unknown member; AWS ignores both.
    let out = ok(
        k,
        "DescribeStream",
        json!({"StreamName": "s", "ShardCount": 3, "Extra": {"a": [1, null]}}),
    )
    .await;
    assert_eq!(out["StreamDescription"]["StreamName"], "s");
    let out = ok(
        k,
        "ListShards",
        json!({"StreamName": "s", "ShardFilter": {"Type": "AT_LATEST", "Future": true}}),
    )
    .await;
    assert_eq!(out["Shards"].as_array().unwrap().len(), 1);
    let mut cbor = Vec::new();
    ciborium::into_writer(&json!({"StreamName": "s", "ShardCount": 3}), &mut cbor).unwrap();
    k.handle("DeleteStream", Bytes::from(cbor), Codec::Cbor)
        .await
        .unwrap();
    let (kind, _) = err(k, "DescribeStream", json!({"StreamName": "s"})).await;
    assert_eq!(kind, "ResourceNotFound");
    // A known member of the wrong type is still refused.
    let (kind, m) = err(
        k,
        "DescribeStream",
        json!({"StreamName": "s", "Limit": "2"}),
    )
    .await;
    assert_eq!(
        (kind.as_str(), m.as_str()),
        (
            "Serialization",
            "class java.lang.String can not be converted to an Integer"
        )
    );
}

#[tokio::test]
async fn validation_texts_quote_patterns_lists_and_order_as_aws_does() {
    let env = env();
    let k = &env.kinesis;
    let v = |m: &str| ("Validation".to_owned(), m.to_owned());
    // A member breaking its pattern and its length: the pattern first.
    assert_eq!(
        err(
            k,
            "CreateStream",
            json!({"StreamName": "", "ShardCount": 1})
        )
        .await,
        v(
            "2 validation errors detected: Value '' at 'streamName' failed to satisfy constraint: \
           Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+; Value '' at 'streamName' \
           failed to satisfy constraint: Member must have length greater than or equal to 1"
        )
    );
    // The service's own pattern, not botocore's anchored `^(…)$` form.
    let body = json!({"StreamName": "s", "PartitionKey": "k", "Data": "", "ExplicitHashKey": "01"});
    assert_eq!(
        err(k, "PutRecord", body).await,
        v(
            "1 validation error detected: Value '01' at 'explicitHashKey' failed to satisfy constraint: \
           Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})"
        )
    );
    // An empty list as Java prints it.
    assert_eq!(
        err(k, "PutRecords", json!({"StreamName": "s", "Records": []})).await,
        v(
            "1 validation error detected: Value '[]' at 'records' failed to satisfy constraint: \
           Member must have length greater than or equal to 1"
        )
    );
    // Consumer ARNs are checked against their pattern wherever they appear.
    let body =
        json!({"ConsumerARN": "nope", "ShardId": "0", "StartingPosition": {"Type": "LATEST"}});
    let (kind, m) = split(
        k.subscribe_to_shard(Bytes::from(body.to_string()), Codec::Json)
            .await
            .err()
            .unwrap(),
    );
    assert_eq!(kind, "Validation");
    assert!(m.starts_with("1 validation error detected: Value 'nope' at 'consumerARN' failed to satisfy constraint: Member must satisfy regular expression pattern: "), "{m}");
}

#[tokio::test]
async fn exclusive_start_shard_ids_are_read_as_shard_ids() {
    let env = env();
    let k = &env.kinesis;
    create(k, "s", 4).await;
    let described = |start: &str| {
        let body = json!({"StreamName": "s", "ExclusiveStartShardId": start});
        async move {
            let out = ok(k, "DescribeStream", body).await;
            let shards = out["StreamDescription"]["Shards"]
                .as_array()
                .unwrap()
                .clone();
            shards
                .iter()
                .map(|s| s["ShardId"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let listed = |start: &str| {
        let body = json!({"StreamName": "s", "ExclusiveStartShardId": start});
        async move {
            let out = ok(k, "ListShards", body).await;
            let shards = out["Shards"].as_array().unwrap().clone();
            shards
                .iter()
                .map(|s| s["ShardId"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let after_one = vec!["shardId-000000000002", "shardId-000000000003"];
    for start in ["shardId-000000000001", "shardId-1", "1", "x-00001"] {
        assert_eq!(described(start).await, after_one, "{start}");
        assert_eq!(listed(start).await, after_one, "{start}");
    }
}
