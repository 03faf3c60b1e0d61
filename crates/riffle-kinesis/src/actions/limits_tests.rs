//! Throughput limits, capacity modes, tags and monitoring settings, driven
//! through `Kinesis::handle` against a real `LogStore` in a temporary
//! directory. Rates are measured with the service's clock fixed by the
//! test, never with sleeps.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_log::{FsyncPolicy, LogStore, StoreConfig};
use serde_json::{Value, json};

use crate::{Codec, Kinesis, KinesisConfig, KinesisError};

pub(super) const T0: i64 = 1_795_000_000_000;
pub(super) const MIB: usize = 1024 * 1024;

pub(super) struct Env {
    pub dir: tempfile::TempDir,
    pub kinesis: Arc<Kinesis>,
}

pub(super) fn open(dir: &std::path::Path, config: KinesisConfig) -> Arc<Kinesis> {
    let store = LogStore::open(
        dir,
        StoreConfig {
            fsync: FsyncPolicy::Never,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let kinesis = Kinesis::open(Arc::new(store), config).unwrap();
    kinesis.set_clock_ms(T0);
    kinesis
}

pub(super) fn env_with(config: KinesisConfig) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let kinesis = open(dir.path(), config);
    Env { dir, kinesis }
}

pub(super) fn config() -> KinesisConfig {
    KinesisConfig {
        status_delay: Duration::ZERO,
        ..KinesisConfig::default()
    }
}

pub(super) async fn call(k: &Kinesis, action: &str, body: Value) -> Result<Value, KinesisError> {
    let out = k
        .handle(action, Bytes::from(body.to_string()), Codec::Json)
        .await?;
    if out.is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&out).expect("responses are JSON"))
}

pub(super) async fn ok(k: &Kinesis, action: &str, body: Value) -> Value {
    match call(k, action, body.clone()).await {
        Ok(v) => v,
        Err(e) => panic!("{action} {body}: {e:?}"),
    }
}

/// The error's variant name and message.
pub(super) async fn err(k: &Kinesis, action: &str, body: Value) -> (String, String) {
    match call(k, action, body.clone()).await {
        Ok(v) => panic!("{action} {body} succeeded: {v}"),
        Err(e) => {
            let debug = format!("{e:?}");
            let kind = debug.split('(').next().unwrap_or_default().to_owned();
            (kind, e.to_string())
        }
    }
}

pub(super) fn b64(data: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(data)
}

pub(super) async fn create(k: &Kinesis, name: &str, shards: u32) {
    ok(
        k,
        "CreateStream",
        json!({"StreamName": name, "ShardCount": shards}),
    )
    .await;
}

async fn put(k: &Kinesis, stream: &str, bytes: usize) -> Result<Value, KinesisError> {
    call(
        k,
        "PutRecord",
        json!({"StreamName": stream, "PartitionKey": "k", "Data": b64(&vec![7u8; bytes])}),
    )
    .await
}

async fn trim_horizon(k: &Kinesis, stream: &str) -> String {
    let out = ok(
        k,
        "GetShardIterator",
        json!({"StreamName": stream, "ShardId": "shardId-000000000000",
               "ShardIteratorType": "TRIM_HORIZON"}),
    )
    .await;
    out["ShardIterator"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn put_record_is_throttled_past_1000_records_per_second_per_shard() {
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "foo", 1).await;
    for _ in 0..1000 {
        put(k, "foo", 1).await.unwrap();
    }
    let e = put(k, "foo", 1).await.unwrap_err();
    assert!(
        matches!(&e, KinesisError::ProvisionedThroughputExceeded(m)
            if m == "Rate exceeded for shard shardId-000000000000 in stream foo under account 000000000000."),
        "{e:?}"
    );
    // A tenth of a second later, a hundred more fit.
    k.set_clock_ms(T0 + 100);
    for _ in 0..100 {
        put(k, "foo", 1).await.unwrap();
    }
    assert!(put(k, "foo", 1).await.is_err());
}

#[tokio::test]
async fn put_record_is_throttled_past_one_mib_per_second_per_shard() {
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "foo", 1).await;
    // Data plus the one-byte partition key: exactly 1 MiB in four records.
    for _ in 0..4 {
        put(k, "foo", MIB / 4 - 1).await.unwrap();
    }
    assert!(put(k, "foo", 1).await.is_err());
    k.set_clock_ms(T0 + 250);
    put(k, "foo", MIB / 4 - 1).await.unwrap();
    assert!(put(k, "foo", 1).await.is_err());
}

#[tokio::test]
async fn put_records_fails_only_the_records_over_the_limit() {
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "foo", 2).await;
    // 600 records to shard 0 (hash key 0) and 400 to shard 1 per call.
    let records = |n0: usize, n1: usize| {
        let high = (u128::MAX - 1).to_string();
        let to = |key: &str| json!({"PartitionKey": "k", "ExplicitHashKey": key, "Data": "AA=="});
        let mut all = vec![to("0"); n0];
        all.extend(vec![to(&high); n1]);
        all
    };
    let out = ok(
        k,
        "PutRecords",
        json!({"StreamName": "foo", "Records": records(300, 200)}),
    )
    .await;
    assert_eq!(out["FailedRecordCount"], 0);
    let out = ok(
        k,
        "PutRecords",
        json!({"StreamName": "foo", "Records": records(300, 200)}),
    )
    .await;
    assert_eq!(out["FailedRecordCount"], 0);
    // Shard 0 has 400 of its 1,000 records left this second, shard 1 600.
    let out = ok(
        k,
        "PutRecords",
        json!({"StreamName": "foo", "Records": records(450, 50)}),
    )
    .await;
    assert_eq!(out["FailedRecordCount"], 50);
    let entries = out["Records"].as_array().unwrap();
    assert!(
        entries[..400]
            .iter()
            .all(|r| r["ShardId"] == "shardId-000000000000")
    );
    for r in &entries[400..450] {
        assert_eq!(r["ErrorCode"], "ProvisionedThroughputExceededException");
        assert_eq!(
            r["ErrorMessage"],
            "Rate exceeded for shard shardId-000000000000 in stream foo under account 000000000000."
        );
        assert!(r.get("SequenceNumber").is_none() && r.get("ShardId").is_none());
    }
    assert!(
        entries[450..]
            .iter()
            .all(|r| r["ShardId"] == "shardId-000000000001")
    );
    // Only the admitted records were written.
    let it = trim_horizon(k, "foo").await;
    let out = ok(k, "GetRecords", json!({"ShardIterator": it})).await;
    assert_eq!(out["Records"].as_array().unwrap().len(), 1000);
}

#[tokio::test]
async fn get_records_is_throttled_past_five_calls_per_second_per_shard() {
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "foo", 1).await;
    let it = trim_horizon(k, "foo").await;
    for _ in 0..5 {
        ok(k, "GetRecords", json!({"ShardIterator": it})).await;
    }
    let (kind, message) = err(k, "GetRecords", json!({"ShardIterator": it})).await;
    assert_eq!(kind, "ProvisionedThroughputExceeded");
    assert_eq!(
        message,
        "Rate exceeded for Shard - 000000000000/foo/shardId-000000000000"
    );
    k.set_clock_ms(T0 + 200);
    ok(k, "GetRecords", json!({"ShardIterator": it})).await;
    assert!(
        call(k, "GetRecords", json!({"ShardIterator": it}))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_large_get_records_returns_then_throttles_the_next_calls() {
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "foo", 1).await;
    // Write 6 MiB over six simulated seconds, within the write limit.
    for second in 0..6 {
        k.set_clock_ms(T0 + 1000 * second);
        put(k, "foo", MIB - 1).await.unwrap();
    }
    k.set_clock_ms(T0 + 10_000);
    let it = trim_horizon(k, "foo").await;
    let out = ok(k, "GetRecords", json!({"ShardIterator": it})).await;
    assert_eq!(out["Records"].as_array().unwrap().len(), 6);
    let next = out["NextShardIterator"].as_str().unwrap().to_owned();
    // 6 MiB from a full 2 MiB bucket: 4 MiB of debt, repaid in 2 s.
    k.set_clock_ms(T0 + 11_900);
    let (kind, _) = err(k, "GetRecords", json!({"ShardIterator": next})).await;
    assert_eq!(kind, "ProvisionedThroughputExceeded");
    k.set_clock_ms(T0 + 12_000);
    ok(k, "GetRecords", json!({"ShardIterator": next})).await;
}

#[tokio::test]
async fn limits_are_per_shard() {
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "foo", 2).await;
    let to = |key: String| json!({"StreamName": "foo", "PartitionKey": "k", "ExplicitHashKey": key, "Data": "AA=="});
    for _ in 0..1000 {
        ok(k, "PutRecord", to("0".into())).await;
    }
    assert!(call(k, "PutRecord", to("0".into())).await.is_err());
    ok(k, "PutRecord", to(u128::MAX.to_string())).await;
}

#[tokio::test]
async fn throughput_limits_off_never_throttles() {
    let env = env_with(KinesisConfig {
        throughput_limits: false,
        ..config()
    });
    let k = &env.kinesis;
    create(k, "foo", 1).await;
    for _ in 0..1200 {
        put(k, "foo", 1).await.unwrap();
    }
    put(k, "foo", 2 * MIB / 3).await.unwrap();
    put(k, "foo", 2 * MIB / 3).await.unwrap();
    let it = trim_horizon(k, "foo").await;
    for _ in 0..10 {
        ok(k, "GetRecords", json!({"ShardIterator": it})).await;
    }
}

async fn open_shards(k: &Kinesis, stream: &str) -> u64 {
    let d = ok(k, "DescribeStreamSummary", json!({"StreamName": stream})).await;
    d["StreamDescriptionSummary"]["OpenShardCount"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn a_hot_on_demand_shard_is_split_and_a_cold_stream_is_left_alone() {
    let env = env_with(config());
    let k = &env.kinesis;
    ok(k, "CreateStream", json!({"StreamName": "od"})).await;
    create(k, "prov", 1).await;
    assert_eq!(open_shards(k, "od").await, 4);
    // 600 records in one second to the shard owning hash key 0: 60% of
    // its capacity, hot. The same traffic on a provisioned stream is not
    // scaled.
    for stream in ["od", "prov"] {
        let records: Vec<Value> = (0..300)
            .map(|_| json!({"PartitionKey": "k", "ExplicitHashKey": "0", "Data": "AA=="}))
            .collect();
        for _ in 0..2 {
            let out = ok(
                k,
                "PutRecords",
                json!({"StreamName": stream, "Records": records}),
            )
            .await;
            assert_eq!(out["FailedRecordCount"], 0);
        }
    }
    k.scale_on_demand(1000).await;
    assert_eq!(open_shards(k, "od").await, 5);
    assert_eq!(open_shards(k, "prov").await, 1);
    let shards = ok(k, "ListShards", json!({"StreamName": "od"})).await;
    let children: Vec<&Value> = shards["Shards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["ParentShardId"] == "shardId-000000000000")
        .collect();
    assert_eq!(children.len(), 2);
    // A quiet window splits nothing more.
    k.scale_on_demand(1000).await;
    assert_eq!(open_shards(k, "od").await, 5);
}
