//! Resharding and retention driven through `Kinesis::handle` with JSON
//! bodies, against a real `LogStore` in a temporary directory: SplitShard,
//! MergeShards, UpdateShardCount, the closed shards' ends and children,
//! ListShards' filters, the retention actions, records written while
//! shards split and merge, and restarts in the middle of a reshard.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_log::{FsyncPolicy, LogStore, MetaOp, StoreConfig};
use serde_json::{Value, json};

use crate::time::now_ms;
use crate::{Codec, Kinesis, KinesisConfig, KinesisError, reshard};

const HALF: &str = "170141183460469231731687303715884105728";
const MAX: &str = "340282366920938463463374607431768211455";

fn open_at(dir: &Path, config: KinesisConfig) -> (Arc<LogStore>, Arc<Kinesis>) {
    let store_config = StoreConfig {
        fsync: FsyncPolicy::Never,
        ..StoreConfig::default()
    };
    let store = Arc::new(LogStore::open(dir, store_config).unwrap());
    let kinesis = Kinesis::open(store.clone(), config).unwrap();
    (store, kinesis)
}

fn config() -> KinesisConfig {
    KinesisConfig {
        status_delay: Duration::ZERO,
        ..KinesisConfig::default()
    }
}

async fn call(k: &Kinesis, action: &str, body: Value) -> Result<Value, KinesisError> {
    let body = Bytes::from(body.to_string());
    let out = k.handle(action, body, Codec::Json).await?;
    if out.is_empty() {
        return Ok(Value::Null);
    }
    Ok(serde_json::from_slice(&out).expect("responses are JSON"))
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
        Err(e) => {
            let debug = format!("{e:?}");
            let kind = debug.split('(').next().unwrap_or_default().to_owned();
            (kind, e.to_string())
        }
    }
}

fn b64(data: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(data)
}

fn unb64(v: &Value) -> Vec<u8> {
    base64_simd::STANDARD
        .decode_to_vec(v.as_str().unwrap())
        .unwrap()
}

fn sid(i: u32) -> String {
    format!("shardId-{i:012}")
}

async fn create(k: &Kinesis, name: &str, shards: u32) {
    let body = json!({"StreamName": name, "ShardCount": shards});
    ok(k, "CreateStream", body).await;
}

async fn put(k: &Kinesis, stream: &str, key: &str, data: &[u8]) -> Value {
    let body = json!({"StreamName": stream, "PartitionKey": key, "Data": b64(data)});
    ok(k, "PutRecord", body).await
}

/// Puts with an explicit hash key, to aim at one side of a split.
async fn put_at(k: &Kinesis, stream: &str, hash: &str, data: &[u8]) -> Value {
    let body = json!({"StreamName": stream, "PartitionKey": "k", "ExplicitHashKey": hash, "Data": b64(data)});
    ok(k, "PutRecord", body).await
}

async fn shards(k: &Kinesis, stream: &str) -> Vec<Value> {
    let out = ok(k, "DescribeStream", json!({"StreamName": stream})).await;
    out["StreamDescription"]["Shards"]
        .as_array()
        .unwrap()
        .clone()
}

async fn list(k: &Kinesis, stream: &str, filter: Value) -> Vec<String> {
    let out = ok(
        k,
        "ListShards",
        json!({"StreamName": stream, "ShardFilter": filter}),
    )
    .await;
    let shards = out["Shards"].as_array().unwrap();
    shards
        .iter()
        .map(|s| s["ShardId"].as_str().unwrap().to_owned())
        .collect()
}

async fn iterator(k: &Kinesis, stream: &str, shard: &str, kind: &str) -> String {
    let body = json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": kind});
    let out = ok(k, "GetShardIterator", body).await;
    out["ShardIterator"].as_str().unwrap().to_owned()
}

/// Sequence numbers are decimal strings of one length: compare as such.
fn seq_lt(a: &Value, b: &Value) -> bool {
    let (a, b) = (a.as_str().unwrap(), b.as_str().unwrap());
    (a.len(), a) < (b.len(), b)
}

async fn split(k: &Kinesis, stream: &str, shard: &str, at: &str) -> Result<Value, KinesisError> {
    let body = json!({"StreamName": stream, "ShardToSplit": shard, "NewStartingHashKey": at});
    call(k, "SplitShard", body).await
}

async fn merge(k: &Kinesis, stream: &str, a: &str, b: &str) -> Result<Value, KinesisError> {
    let body = json!({"StreamName": stream, "ShardToMerge": a, "AdjacentShardToMerge": b});
    call(k, "MergeShards", body).await
}

#[tokio::test]
async fn a_split_closes_the_parent_at_its_last_record_and_opens_two_children() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    create(&k, "s", 1).await;
    put(&k, "s", "a", b"1").await;
    let last = put(&k, "s", "b", b"2").await;
    split(&k, "s", &sid(0), HALF).await.unwrap();

    let all = shards(&k, "s").await;
    assert_eq!(all.len(), 3);
    let parent = &all[0]["SequenceNumberRange"];
    assert_eq!(parent["EndingSequenceNumber"], last["SequenceNumber"]);
    let low = &all[1];
    let high = &all[2];
    assert_eq!(low["ShardId"], sid(1));
    assert_eq!(low["ParentShardId"], sid(0));
    assert!(low.get("AdjacentParentShardId").is_none());
    assert_eq!(low["HashKeyRange"]["StartingHashKey"], "0");
    let below_half = (u128::MAX / 2).to_string();
    assert_eq!(low["HashKeyRange"]["EndingHashKey"], below_half.as_str());
    assert_eq!(high["HashKeyRange"]["StartingHashKey"], HALF);
    assert_eq!(high["HashKeyRange"]["EndingHashKey"], MAX);
    for child in [low, high] {
        let start = &child["SequenceNumberRange"]["StartingSequenceNumber"];
        assert!(seq_lt(&last["SequenceNumber"], start), "{child}");
        assert!(
            child["SequenceNumberRange"]
                .get("EndingSequenceNumber")
                .is_none()
        );
    }

    // New records go to the children, by hash key, in numbers above the parent's.
    let low_put = put_at(&k, "s", "5", b"3").await;
    let high_put = put_at(&k, "s", MAX, b"4").await;
    assert_eq!(low_put["ShardId"], sid(1));
    assert_eq!(high_put["ShardId"], sid(2));
    assert!(seq_lt(&last["SequenceNumber"], &low_put["SequenceNumber"]));
    let summary = ok(&k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    assert_eq!(summary["StreamDescriptionSummary"]["OpenShardCount"], 2);
}

#[tokio::test]
async fn reading_a_closed_shard_returns_its_records_then_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    create(&k, "s", 1).await;
    put(&k, "s", "a", b"one").await;
    put(&k, "s", "b", b"two").await;
    split(&k, "s", &sid(0), HALF).await.unwrap();

    let it = iterator(&k, "s", &sid(0), "TRIM_HORIZON").await;
    let out = ok(&k, "GetRecords", json!({"ShardIterator": it, "Limit": 1})).await;
    assert_eq!(unb64(&out["Records"][0]["Data"]), b"one");
    assert!(out.get("ChildShards").is_none());
    let next = out["NextShardIterator"].clone();
    let out = ok(&k, "GetRecords", json!({"ShardIterator": next})).await;
    assert_eq!(unb64(&out["Records"][0]["Data"]), b"two");
    assert!(out.get("NextShardIterator").is_none(), "{out}");
    let children = out["ChildShards"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    assert_eq!(children[0]["ShardId"], sid(1));
    assert_eq!(children[0]["ParentShards"], json!([sid(0)]));
    assert_eq!(children[1]["HashKeyRange"]["StartingHashKey"], HALF);
    assert_eq!(children[1]["HashKeyRange"]["EndingHashKey"], MAX);

    // LATEST on a closed shard is its end.
    let it = iterator(&k, "s", &sid(0), "LATEST").await;
    let out = ok(&k, "GetRecords", json!({"ShardIterator": it})).await;
    assert_eq!(out["Records"], json!([]));
    assert!(out.get("NextShardIterator").is_none());
    assert_eq!(out["ChildShards"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_merge_makes_one_child_of_two_adjacent_shards() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    create(&k, "s", 3).await;
    let written = put_at(&k, "s", "0", b"x").await;
    // The pair is ordered: the adjacent shard is the upper neighbour.
    let e = merge(&k, "s", &sid(1), &sid(0)).await.unwrap_err();
    assert!(matches!(e, KinesisError::InvalidArgument(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "Shards shardId-000000000001 and shardId-000000000000 in stream s under account \
         000000000000 are not an adjacent pair of shards eligible for merging"
    );
    merge(&k, "s", &sid(0), &sid(1)).await.unwrap();
    let all = shards(&k, "s").await;
    assert_eq!(all.len(), 4);
    let child = &all[3];
    assert_eq!(child["ParentShardId"], sid(0));
    assert_eq!(child["AdjacentParentShardId"], sid(1));
    assert_eq!(child["HashKeyRange"]["StartingHashKey"], "0");
    assert_eq!(
        child["HashKeyRange"]["EndingHashKey"],
        all[1]["HashKeyRange"]["EndingHashKey"]
    );
    // Shard 0 had a record, shard 1 none: an empty shard ends at its start.
    let range0 = &all[0]["SequenceNumberRange"];
    assert_eq!(range0["EndingSequenceNumber"], written["SequenceNumber"]);
    let range1 = &all[1]["SequenceNumberRange"];
    assert_eq!(
        range1["EndingSequenceNumber"],
        range1["StartingSequenceNumber"]
    );
    let out = put_at(&k, "s", "0", b"y").await;
    assert_eq!(out["ShardId"], sid(3));

    // Reading the empty parent ends at once with the merged child.
    let it = iterator(&k, "s", &sid(1), "TRIM_HORIZON").await;
    let out = ok(&k, "GetRecords", json!({"ShardIterator": it})).await;
    let children = out["ChildShards"].as_array().unwrap();
    assert_eq!(children[0]["ShardId"], sid(3));
    assert_eq!(children[0]["ParentShards"], json!([sid(0), sid(1)]));
}

#[tokio::test]
async fn split_and_merge_refuse_what_aws_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    create(&k, "s", 2).await;
    let e = split(&k, "s", &sid(9), "5").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Could not find shard shardId-000000000009 in stream s under account 000000000000."
    );
    assert!(matches!(e, KinesisError::ResourceNotFound(_)));
    // The key must be above start + 1 and below the end.
    for bad in ["0", "1", "170141183460469231731687303715884105727"] {
        let e = split(&k, "s", &sid(0), bad).await.unwrap_err();
        let KinesisError::InvalidArgument(m) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            m,
            format!(
                "NewStartingHashKey {bad} used in SplitShard() on shard shardId-000000000000 in stream s \
                 under account 000000000000 is not both greater than one plus the shard's StartingHashKey 0 \
                 and less than the shard's EndingHashKey 170141183460469231731687303715884105727."
            )
        );
    }
    let (kind, m) = err(
        &k,
        "SplitShard",
        json!({"StreamName": "s", "ShardToSplit": sid(0)}),
    )
    .await;
    assert_eq!(kind, "Validation");
    assert_eq!(
        m,
        "1 validation error detected: Value null at 'newStartingHashKey' failed to satisfy constraint: \
         Member must not be null"
    );
    let e = split(&k, "nope", &sid(0), "5").await.unwrap_err();
    assert!(matches!(e, KinesisError::ResourceNotFound(_)), "{e:?}");

    let (kind, m) = (
        "InvalidArgument",
        "Shards shardId-000000000000 and shardId-000000000000 in stream s under account 000000000000 \
         are not an adjacent pair of shards eligible for merging",
    );
    let e = merge(&k, "s", &sid(0), &sid(0)).await.unwrap_err();
    assert_eq!(
        (format!("{e:?}").starts_with(kind), e.to_string().as_str()),
        (true, m)
    );

    split(&k, "s", &sid(0), "1000").await.unwrap();
    let e = split(&k, "s", &sid(0), "500").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Shard shardId-000000000000 in stream s under account 000000000000 has already been merged or \
         split, and thus is not eligible for splitting."
    );
    let e = merge(&k, "s", &sid(0), &sid(1)).await.unwrap_err();
    assert!(e.to_string().ends_with("not eligible for merging."), "{e}");
    // Shards 2 (0..999) and 1 (2^127..) are not adjacent; 3 and 1 are.
    let e = merge(&k, "s", &sid(2), &sid(1)).await.unwrap_err();
    assert!(e.to_string().contains("are not an adjacent pair"), "{e}");
    merge(&k, "s", &sid(3), &sid(1)).await.unwrap();
}

#[tokio::test]
async fn resharding_an_updating_stream_is_refused_and_it_becomes_active_after_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let slow = KinesisConfig {
        status_delay: Duration::from_millis(300),
        ..KinesisConfig::default()
    };
    let (_store, k) = open_at(dir.path(), slow);
    let background = tokio::spawn(k.clone().run_background(std::future::pending()));
    create(&k, "s", 1).await;
    let e = split(&k, "s", &sid(0), HALF).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Stream s under account 000000000000 not ACTIVE, instead in state CREATING"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = |k: Arc<Kinesis>| async move {
        let out = ok(&k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
        out["StreamDescriptionSummary"]["StreamStatus"].clone()
    };
    while status(k.clone()).await != "ACTIVE" {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    split(&k, "s", &sid(0), HALF).await.unwrap();
    assert_eq!(status(k.clone()).await, "UPDATING");
    // While UPDATING, the shard map is as it was, as on AWS: the parent is
    // open in every view, no child is listed, and records go to the parent.
    let listed = shards(&k, "s").await;
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0]["SequenceNumberRange"]
            .get("EndingSequenceNumber")
            .is_none()
    );
    assert_eq!(list(&k, "s", json!({"Type": "AT_LATEST"})).await, [sid(0)]);
    let summary = ok(&k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    assert_eq!(summary["StreamDescriptionSummary"]["OpenShardCount"], 1);
    let during = put_at(&k, "s", MAX, b"during").await;
    assert_eq!(during["ShardId"], sid(0));
    // The children do not exist yet: the parent is what can be named.
    let e = merge(&k, "s", &sid(1), &sid(2)).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Could not find shard shardId-000000000001"),
        "{e}"
    );
    let e = split(&k, "s", &sid(0), "1000").await.unwrap_err();
    assert!(matches!(e, KinesisError::ResourceInUse(_)), "{e:?}");
    assert!(e.to_string().ends_with("instead in state UPDATING"), "{e}");
    while status(k.clone()).await != "ACTIVE" {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ACTIVE again: the children are there, the parent ends with the
    // record written while UPDATING, and records go to the children.
    let listed = shards(&k, "s").await;
    assert_eq!(listed.len(), 3);
    assert_eq!(
        listed[0]["SequenceNumberRange"]["EndingSequenceNumber"],
        during["SequenceNumber"]
    );
    assert_eq!(put_at(&k, "s", MAX, b"after").await["ShardId"], sid(2));
    merge(&k, "s", &sid(1), &sid(2)).await.unwrap();
    background.abort();
}

/// The open shards' hash ranges, in hash order.
async fn open_ranges(k: &Kinesis, stream: &str) -> Vec<(u128, u128)> {
    let mut out: Vec<(u128, u128)> = shards(k, stream)
        .await
        .iter()
        .filter(|s| {
            s["SequenceNumberRange"]
                .get("EndingSequenceNumber")
                .is_none()
        })
        .map(|s| {
            let r = &s["HashKeyRange"];
            let n = |v: &Value| v.as_str().unwrap().parse::<u128>().unwrap();
            (n(&r["StartingHashKey"]), n(&r["EndingHashKey"]))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn update_shard_count_rescales_to_an_even_layout_within_double_and_half() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    create(&k, "s", 2).await;
    let scale = |target: i64| json!({"StreamName": "s", "TargetShardCount": target, "ScalingType": "UNIFORM_SCALING"});
    let out = ok(&k, "UpdateShardCount", scale(4)).await;
    assert_eq!(
        out,
        json!({"StreamName": "s", "CurrentShardCount": 2, "TargetShardCount": 4,
               "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s"})
    );
    for (target, _) in [(3, ()), (5, ()), (3, ()), (2, ()), (1, ())] {
        ok(&k, "UpdateShardCount", scale(target)).await;
        let even: Vec<(u128, u128)> = crate::hashkey::split_evenly(target as u32)
            .into_iter()
            .map(|r| (r.start, r.end))
            .collect();
        assert_eq!(open_ranges(&k, "s").await, even, "{target}");
    }
    // Every shard names only closed, earlier shards as parents.
    let all = shards(&k, "s").await;
    for shard in &all {
        for key in ["ParentShardId", "AdjacentParentShardId"] {
            if let Some(parent) = shard.get(key).and_then(Value::as_str) {
                let p = all.iter().find(|s| s["ShardId"] == parent).unwrap();
                assert!(
                    p["SequenceNumberRange"]
                        .get("EndingSequenceNumber")
                        .is_some()
                );
                assert!(parent < shard["ShardId"].as_str().unwrap());
            }
        }
    }
    let (kind, m) = err(&k, "UpdateShardCount", scale(3)).await;
    assert_eq!(kind, "InvalidArgument");
    assert_eq!(
        m,
        "UpdateShardCount cannot scale up over double your current open shard count. Current open shard \
         count: 1 Target shard count: 3"
    );
    ok(&k, "UpdateShardCount", scale(2)).await;
    ok(&k, "UpdateShardCount", scale(4)).await;
    let (_, m) = err(&k, "UpdateShardCount", scale(1)).await;
    assert!(
        m.starts_with("UpdateShardCount cannot scale down below half"),
        "{m}"
    );
    let (kind, m) = err(
        &k,
        "UpdateShardCount",
        json!({"StreamName": "s", "TargetShardCount": 2, "ScalingType": "RANDOM"}),
    )
    .await;
    assert_eq!(kind, "Validation");
    assert!(
        m.contains("Member must satisfy enum value set: [UNIFORM_SCALING]"),
        "{m}"
    );
    let (kind, _) = err(
        &k,
        "UpdateShardCount",
        json!({"StreamName": "s", "TargetShardCount": 0, "ScalingType": "UNIFORM_SCALING"}),
    )
    .await;
    assert_eq!(kind, "Validation");
}

#[tokio::test]
async fn list_shards_filters_select_by_lineage_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    create(&k, "s", 1).await;
    let before = now_ms() as f64 / 1000.0;
    split(&k, "s", &sid(0), HALF).await.unwrap();
    let after = (now_ms() + 2_000) as f64 / 1000.0;
    let all = vec![sid(0), sid(1), sid(2)];
    let children = vec![sid(1), sid(2)];
    assert_eq!(
        list(&k, "s", json!({"Type": "FROM_TRIM_HORIZON"})).await,
        all
    );
    assert_eq!(
        list(&k, "s", json!({"Type": "AT_TRIM_HORIZON"})).await,
        vec![sid(0)]
    );
    assert_eq!(list(&k, "s", json!({"Type": "AT_LATEST"})).await, children);
    let at = |t: f64| json!({"Type": "AT_TIMESTAMP", "Timestamp": t});
    assert_eq!(list(&k, "s", at(before)).await, vec![sid(0)]);
    assert_eq!(list(&k, "s", at(after)).await, children);
    let from = |t: f64| json!({"Type": "FROM_TIMESTAMP", "Timestamp": t});
    assert_eq!(list(&k, "s", from(before)).await, all);
    assert_eq!(list(&k, "s", from(after)).await, children);
    // Before the stream existed counts as its trim horizon.
    assert_eq!(list(&k, "s", at(1.0)).await, vec![sid(0)]);
    let after_id = json!({"Type": "AFTER_SHARD_ID", "ShardId": sid(0)});
    assert_eq!(list(&k, "s", after_id).await, children);

    // A filter carries over to the next page.
    let out = ok(
        &k,
        "ListShards",
        json!({"StreamName": "s", "MaxResults": 1, "ShardFilter": {"Type": "AT_LATEST"}}),
    )
    .await;
    assert_eq!(out["Shards"][0]["ShardId"], sid(1));
    let token = out["NextToken"].clone();
    let out = ok(&k, "ListShards", json!({"NextToken": token})).await;
    assert_eq!(out["Shards"].as_array().unwrap().len(), 1);
    assert_eq!(out["Shards"][0]["ShardId"], sid(2));
    assert!(out.get("NextToken").is_none());

    let (kind, m) = err(
        &k,
        "ListShards",
        json!({"StreamName": "s", "ShardFilter": {"Type": "FROM_TIMESTAMP"}}),
    )
    .await;
    assert_eq!(kind, "InvalidArgument");
    assert_eq!(
        m,
        "Timestamp must be supplied in a ShardFilter with a Type of FROM_TIMESTAMP or AT_TIMESTAMP"
    );
    let (kind, _) = err(
        &k,
        "ListShards",
        json!({"StreamName": "s", "ShardFilter": {"Type": "AFTER_SHARD_ID"}}),
    )
    .await;
    assert_eq!(kind, "InvalidArgument");
}

#[tokio::test]
async fn retention_changes_are_checked_stored_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (store, k) = open_at(dir.path(), config());
        create(&k, "s", 1).await;
        let set = |hours: i64| json!({"StreamName": "s", "RetentionPeriodHours": hours});
        ok(&k, "IncreaseStreamRetentionPeriod", set(168)).await;
        let (kind, m) = err(&k, "IncreaseStreamRetentionPeriod", set(48)).await;
        assert_eq!(kind, "InvalidArgument");
        assert_eq!(
            m,
            "Requested retention period (48 hours) for stream s can not be shorter than existing \
             retention period (168 hours). Use DecreaseRetentionPeriod API."
        );
        let (_, m) = err(&k, "DecreaseStreamRetentionPeriod", set(200)).await;
        assert!(m.ends_with("Use IncreaseRetentionPeriod API."), "{m}");
        let (_, m) = err(&k, "IncreaseStreamRetentionPeriod", set(9000)).await;
        assert_eq!(
            m,
            "Maximum allowed retention period is 8760 hours. Requested retention period (9000 hours) is too long."
        );
        let (_, m) = err(&k, "DecreaseStreamRetentionPeriod", set(1)).await;
        assert!(
            m.starts_with("Minimum allowed retention period is 24 hours."),
            "{m}"
        );
        let (kind, _) = err(
            &k,
            "DecreaseStreamRetentionPeriod",
            json!({"StreamName": "s"}),
        )
        .await;
        assert_eq!(kind, "Validation");
        ok(&k, "DecreaseStreamRetentionPeriod", set(72)).await;
        let e = call(
            &k,
            "IncreaseStreamRetentionPeriod",
            json!({"StreamName": "x", "RetentionPeriodHours": 48}),
        )
        .await;
        assert!(matches!(e, Err(KinesisError::ResourceNotFound(_))));
        store.shutdown().await.unwrap();
    }
    let (_store, k) = open_at(dir.path(), config());
    let out = ok(&k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    assert_eq!(out["StreamDescriptionSummary"]["RetentionPeriodHours"], 72);
}

#[tokio::test]
async fn closed_shards_past_retention_leave_the_stream_and_their_data_is_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    create(&k, "s", 1).await;
    put(&k, "s", "a", b"old").await;
    split(&k, "s", &sid(0), HALF).await.unwrap();
    let now = now_ms();
    let stream = k.get("s").unwrap();
    let ids = |at: i64| -> Vec<String> { stream.listed(at).map(|s| s.id.clone()).collect() };
    assert_eq!(ids(now + 23 * 3_600_000), vec![sid(0), sid(1), sid(2)]);
    // A day after the split the parent's records are all past retention.
    let later = now + 25 * 3_600_000;
    assert_eq!(ids(later), vec![sid(1), sid(2)]);

    k.trim_retention(later).await;
    let parent = stream.shard(0).unwrap();
    assert_eq!(parent.log.oldest_seq(), parent.log.next_seq());
    let it = iterator(&k, "s", &sid(0), "TRIM_HORIZON").await;
    let out = ok(&k, "GetRecords", json!({"ShardIterator": it})).await;
    assert_eq!(out["Records"], json!([]));
    assert!(out.get("ChildShards").is_some());
}

/// Writes the given record, then commits a reshard plan without applying
/// it (a crash after step 1), optionally closing the parent's log too (a
/// crash after step 2).
async fn interrupt_a_split(dir: &Path, close_parent: bool) -> Value {
    let (store, k) = open_at(dir, config());
    create(&k, "s", 1).await;
    let written = put(&k, "s", "a", b"before").await;
    let stream = k.get("s").unwrap();
    let mut record = stream.record.clone();
    record.pending = Some(reshard::split(&record, 0, 1 << 127, now_ms()));
    store
        .meta()
        .commit(&[MetaOp::Put {
            key: record.key(),
            value: record.encode(),
        }])
        .unwrap();
    if close_parent {
        stream.shard(0).unwrap().log.close().await.unwrap();
    }
    store.shutdown().await.unwrap();
    written
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_split_finishes_it() {
    for close_parent in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let written = interrupt_a_split(dir.path(), close_parent).await;
        let (_store, k) = open_at(dir.path(), config());
        let all = shards(&k, "s").await;
        assert_eq!(all.len(), 3, "{close_parent}");
        let end = &all[0]["SequenceNumberRange"]["EndingSequenceNumber"];
        assert_eq!(end, &written["SequenceNumber"]);
        assert_eq!(open_ranges(&k, "s").await.len(), 2);
        let out = put_at(&k, "s", MAX, b"after").await;
        assert_eq!(out["ShardId"], sid(2));
        let it = iterator(&k, "s", &sid(0), "TRIM_HORIZON").await;
        let out = ok(&k, "GetRecords", json!({"ShardIterator": it})).await;
        assert_eq!(unb64(&out["Records"][0]["Data"]), b"before");
        assert_eq!(out["ChildShards"].as_array().unwrap().len(), 2);
    }
}

/// Reads every record of the stream the way a consumer that processes
/// parents before children does: a shard is read to its end once all its
/// parents have been. Returns the data in that order.
async fn consume_in_lineage_order(k: &Kinesis, stream: &str) -> Vec<Vec<u8>> {
    let all = shards(k, stream).await;
    let mut done: Vec<String> = Vec::new();
    let mut out = Vec::new();
    while done.len() < all.len() {
        let ready = all.iter().find(|s| {
            let id = s["ShardId"].as_str().unwrap().to_owned();
            let parents = ["ParentShardId", "AdjacentParentShardId"];
            !done.contains(&id)
                && parents
                    .iter()
                    .filter_map(|p| s.get(*p).and_then(Value::as_str))
                    .all(|p| done.iter().any(|d| d == p))
        });
        let id = ready.expect("some shard is ready")["ShardId"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut it = Value::String(iterator(k, stream, &id, "TRIM_HORIZON").await);
        loop {
            let got = ok(k, "GetRecords", json!({"ShardIterator": it})).await;
            let records = got["Records"].as_array().unwrap();
            out.extend(records.iter().map(|r| unb64(&r["Data"])));
            match got.get("NextShardIterator") {
                // An open shard: read up to its tip (the producer stopped).
                Some(next) if !records.is_empty() => it = next.clone(),
                _ => break,
            }
        }
        done.push(id);
    }
    out
}

/// How long a producer backs off when a shard's throughput limit refuses
/// a record, as AWS's SDKs do before retrying.
const THROTTLE_BACKOFF: Duration = Duration::from_millis(5);

/// PutRecord until it is acknowledged; throttling is retried, anything
/// else fails the test.
async fn put_retrying(k: &Kinesis, key: &str, data: &str) {
    loop {
        let body = json!({"StreamName": "s", "PartitionKey": key, "Data": b64(data.as_bytes())});
        match call(k, "PutRecord", body).await {
            Ok(_) => return,
            Err(KinesisError::ProvisionedThroughputExceeded(_)) => {
                tokio::time::sleep(THROTTLE_BACKOFF).await;
            }
            Err(e) => panic!("PutRecord {key}: {e:?}"),
        }
    }
}

/// PutRecords, retrying the throttled records until all are acknowledged.
async fn put_all_retrying(k: &Kinesis, keys: &[String], datas: &[String]) {
    let mut todo: Vec<usize> = (0..keys.len()).collect();
    while !todo.is_empty() {
        let records: Vec<Value> = todo
            .iter()
            .map(|&i| json!({"PartitionKey": keys[i], "Data": b64(datas[i].as_bytes())}))
            .collect();
        let out = ok(
            k,
            "PutRecords",
            json!({"StreamName": "s", "Records": records}),
        )
        .await;
        let results = out["Records"].as_array().unwrap();
        let mut again = Vec::new();
        for (&i, result) in todo.iter().zip(results) {
            match result.get("ErrorCode").and_then(Value::as_str) {
                None => {}
                Some("ProvisionedThroughputExceededException") => again.push(i),
                Some(code) => panic!("PutRecords failed a record: {code} {out}"),
            }
        }
        if !again.is_empty() {
            tokio::time::sleep(THROTTLE_BACKOFF).await;
        }
        todo = again;
    }
}

// Two worker threads, so appends and reshards truly race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_written_while_shards_split_and_merge_are_read_once_in_key_order() {
    const KEYS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    create(&k, "s", 2).await;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Producers: one per key pair, each writing its keys' counters in order
    // and waiting for every acknowledgement; half use PutRecords.
    let mut producers = Vec::new();
    for p in 0..KEYS / 2 {
        let (k, stop) = (k.clone(), stop.clone());
        producers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let keys = [format!("key-{}", 2 * p), format!("key-{}", 2 * p + 1)];
                let datas: Vec<String> = keys.iter().map(|key| format!("{key}:{n}")).collect();
                if p % 2 == 0 {
                    put_all_retrying(&k, &keys, &datas).await;
                } else {
                    for (key, d) in keys.iter().zip(&datas) {
                        put_retrying(&k, key, d).await;
                    }
                }
                acked.extend(datas);
                n += 1;
            }
            acked
        }));
    }
    // Reshards: splits, merges and rescales, each while records flow.
    let scale = |t: u32| json!({"StreamName": "s", "TargetShardCount": t, "ScalingType": "UNIFORM_SCALING"});
    for step in 0..8u32 {
        tokio::time::sleep(Duration::from_millis(15)).await;
        let stream = k.get("s").unwrap();
        let open: Vec<_> = stream.shards.iter().filter(|s| !s.closed).collect();
        match step % 4 {
            0 => {
                let s = open[0];
                let at = (s.range.start + (s.range.end - s.range.start) / 2).to_string();
                split(&k, "s", &s.id, &at).await.unwrap();
            }
            1 => {
                let mut by_hash = open.clone();
                by_hash.sort_by_key(|s| s.range.start);
                merge(&k, "s", &by_hash[0].id, &by_hash[1].id)
                    .await
                    .unwrap();
            }
            2 => {
                ok(&k, "UpdateShardCount", scale(open.len() as u32 * 2)).await;
            }
            _ => {
                ok(
                    &k,
                    "UpdateShardCount",
                    scale((open.len() as u32).div_ceil(2)),
                )
                .await;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(15)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acked = Vec::new();
    for producer in producers {
        acked.extend(producer.await.unwrap());
    }
    assert!(acked.len() > 100, "only {} records written", acked.len());

    let read = consume_in_lineage_order(&k, "s").await;
    let read: Vec<String> = read
        .into_iter()
        .map(|d| String::from_utf8(d).unwrap())
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for d in &read {
        *counts.entry(d.as_str()).or_default() += 1;
    }
    assert!(counts.values().all(|&n| n == 1), "a record was read twice");
    assert_eq!(read.len(), acked.len(), "every acknowledged record is read");
    assert!(acked.iter().all(|d| counts.contains_key(d.as_str())));
    let mut last: BTreeMap<&str, i64> = BTreeMap::new();
    for d in &read {
        let (key, n) = d.rsplit_once(':').unwrap();
        let n: i64 = n.parse().unwrap();
        let prev = last.insert(key, n).unwrap_or(-1);
        assert_eq!(n, prev + 1, "{key} out of order");
    }
}

#[tokio::test]
async fn reshards_past_the_account_shard_limit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // 1,000 shards in regions other than the three large ones.
    let small = KinesisConfig {
        region: "eu-central-1".into(),
        ..config()
    };
    let (_store, k) = open_at(dir.path(), small);
    create(&k, "full", 999).await;
    create(&k, "s", 1).await;
    let e = split(&k, "s", &sid(0), HALF).await.unwrap_err();
    assert!(matches!(e, KinesisError::LimitExceeded(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "This request would exceed the shard limit for the account 000000000000 in eu-central-1. \
         Current shard count for the account: 1000. Limit: 1000. Number of additional shards that \
         would have resulted from this request: 1. Refer to the AWS Service Limits page \
         (https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits \
         and how to request higher limits."
    );
    let scale = json!({"StreamName": "s", "TargetShardCount": 2, "ScalingType": "UNIFORM_SCALING"});
    let (kind, _) = err(&k, "UpdateShardCount", scale).await;
    assert_eq!(kind, "LimitExceeded");
    // Merging frees a shard; then a split fits again.
    merge(&k, "full", &sid(0), &sid(1)).await.unwrap();
    split(&k, "s", &sid(0), HALF).await.unwrap();
}

#[tokio::test]
async fn a_stream_with_an_unfinished_reshard_is_updating() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    create(&k, "s", 1).await;
    let stream = k.get("s").unwrap();
    let mut record = stream.record.clone();
    record.pending = Some(reshard::split(&record, 0, 1 << 127, now_ms()));
    k.insert(stream.with_record(record));
    let e = split(&k, "s", &sid(0), HALF).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "Stream s under account 000000000000 not ACTIVE, instead in state UPDATING"
    );
    // Records still flow, to the parent.
    assert_eq!(put_at(&k, "s", MAX, b"x").await["ShardId"], sid(0));
}

#[tokio::test]
async fn on_demand_streams_are_not_resharded_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    let body = json!({"StreamName": "od", "StreamModeDetails": {"StreamMode": "ON_DEMAND"}});
    ok(&k, "CreateStream", body).await;
    let e = split(&k, "od", &sid(0), "5").await.unwrap_err();
    assert!(matches!(e, KinesisError::Validation(_)), "{e:?}");
    let e = merge(&k, "od", &sid(0), &sid(1)).await.unwrap_err();
    assert!(matches!(e, KinesisError::Validation(_)), "{e:?}");
    let scale =
        json!({"StreamName": "od", "TargetShardCount": 8, "ScalingType": "UNIFORM_SCALING"});
    let (kind, m) = err(&k, "UpdateShardCount", scale).await;
    assert_eq!(kind, "Validation");
    assert_eq!(
        m,
        "UpdateShardCount is only supported for streams in PROVISIONED capacity mode; stream od is ON_DEMAND."
    );
}

#[tokio::test]
async fn a_log_closed_before_its_reshard_commits_is_not_the_end_yet() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    create(&k, "s", 1).await;
    put(&k, "s", "a", b"1").await;
    // Step 2 of a reshard done, step 3 (the commit naming the children)
    // not yet: a reader at the end must come back, not stop.
    k.get("s")
        .unwrap()
        .shard(0)
        .unwrap()
        .log
        .close()
        .await
        .unwrap();
    let it = iterator(&k, "s", &sid(0), "TRIM_HORIZON").await;
    let out = ok(&k, "GetRecords", json!({"ShardIterator": it})).await;
    assert_eq!(out["Records"].as_array().unwrap().len(), 1);
    assert!(out.get("ChildShards").is_none(), "{out}");
    let next = out["NextShardIterator"].clone();
    assert!(next.is_string(), "{out}");
    split(&k, "s", &sid(0), HALF).await.unwrap();
    let out = ok(&k, "GetRecords", json!({"ShardIterator": next})).await;
    assert_eq!(out["Records"], json!([]));
    assert!(out.get("NextShardIterator").is_none(), "{out}");
    assert_eq!(out["ChildShards"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn update_shard_count_keeps_the_daily_quota_across_a_restart_unless_lifted() {
    let dir = tempfile::tempdir().unwrap();
    let quota_of_two = KinesisConfig {
        shard_count_updates_per_day: 2,
        ..config()
    };
    let scale = |target: i64| json!({"StreamName": "q", "TargetShardCount": target, "ScalingType": "UNIFORM_SCALING"});
    {
        let (_store, k) = open_at(dir.path(), quota_of_two.clone());
        create(&k, "q", 1).await;
        ok(&k, "UpdateShardCount", scale(2)).await;
        ok(&k, "UpdateShardCount", scale(1)).await;
        let (kind, m) = err(&k, "UpdateShardCount", scale(2)).await;
        assert_eq!(kind, "LimitExceeded");
        assert_eq!(
            m,
            "Stream q under account 000000000000 has already been rescaled 2 times in the last \
             24 hours, the most UpdateShardCount allows."
        );
    }
    let (_store, k) = open_at(dir.path(), quota_of_two);
    let (kind, _) = err(&k, "UpdateShardCount", scale(2)).await;
    assert_eq!(kind, "LimitExceeded", "the count survives a restart");
    drop(k);
    drop(_store);
    let lifted = KinesisConfig {
        shard_count_updates_per_day: 0,
        ..config()
    };
    let (_store, k) = open_at(dir.path(), lifted);
    ok(&k, "UpdateShardCount", scale(2)).await;
    assert_eq!(
        open_ranges(&k, "q").await.len(),
        2,
        "a lifted quota rescales again"
    );
}

#[tokio::test]
async fn reshards_read_the_shard_id_before_the_stream_and_name_it_in_normal_form() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    create(&k, "s", 2).await;
    let not_found = |text: &str, stream: &str| {
        (
            "ResourceNotFound".to_owned(),
            format!("Could not find shard {text} in stream {stream} under account 000000000000."),
        )
    };
    let missing = |text: &str| {
        (
            "ResourceNotFound".to_owned(),
            format!("Stream {text} under account 000000000000 not found."),
        )
    };
    // Unknown stream: a shard id that names no shard is reported first,
    // as given; one that does leaves the stream to be reported.
    for bad in ["2147483648", "shardId-002147483648", "ABKLFD8", "2.14E4"] {
        let body = json!({"StreamName": "nope", "ShardToSplit": bad, "NewStartingHashKey": "5"});
        assert_eq!(err(&k, "SplitShard", body).await, not_found(bad, "nope"));
        let body =
            json!({"StreamName": "nope", "ShardToMerge": "shard-0", "AdjacentShardToMerge": bad});
        assert_eq!(err(&k, "MergeShards", body).await, not_found(bad, "nope"));
        let body =
            json!({"StreamName": "nope", "ShardToMerge": bad, "AdjacentShardToMerge": "x-1"});
        assert_eq!(err(&k, "MergeShards", body).await, not_found(bad, "nope"));
    }
    for good in [
        "2147483647",
        "x-2147483647",
        "a-00002147483647",
        "-00002147483647",
    ] {
        let body = json!({"StreamName": "nope", "ShardToSplit": good, "NewStartingHashKey": "5"});
        assert_eq!(err(&k, "SplitShard", body).await, missing("nope"));
        let body =
            json!({"StreamName": "nope", "ShardToMerge": good, "AdjacentShardToMerge": "x-1"});
        assert_eq!(err(&k, "MergeShards", body).await, missing("nope"));
    }
    // Known stream, no such shard: named in its normal form.
    let body = json!({"StreamName": "s", "ShardToSplit": "shardId-5", "NewStartingHashKey": "5"});
    assert_eq!(err(&k, "SplitShard", body).await, not_found(&sid(5), "s"));
    let body =
        json!({"StreamName": "s", "ShardToMerge": "x-0", "AdjacentShardToMerge": "shardId-5"});
    assert_eq!(err(&k, "MergeShards", body).await, not_found(&sid(5), "s"));
    // Loose forms name the shards they parse to.
    let body = json!({"StreamName": "s", "ShardToMerge": "a-0", "AdjacentShardToMerge": "1"});
    ok(&k, "MergeShards", body).await;
    assert_eq!(shards(&k, "s").await[2]["ParentShardId"], sid(0));
    let body = json!({"StreamName": "s", "ShardToSplit": "shard-00000000000000002", "NewStartingHashKey": HALF});
    ok(&k, "SplitShard", body).await;
    assert_eq!(shards(&k, "s").await.len(), 5);
}

#[tokio::test]
async fn get_shard_iterator_reads_shard_ids_as_aws_does() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, k) = open_at(dir.path(), config());
    create(&k, "s", 1).await;
    let iterate = |stream: &str, shard: &str| json!({"StreamName": stream, "ShardId": shard, "ShardIteratorType": "LATEST"});
    for loose in ["0", "shard-0", "a-b-000", "-0"] {
        ok(&k, "GetShardIterator", iterate("s", loose)).await;
    }
    let does_not_exist = |id: &str, stream: &str| {
        (
            "ResourceNotFound".to_owned(),
            format!("Shard {id} in stream {stream} under account 000000000000 does not exist"),
        )
    };
    assert_eq!(
        err(&k, "GetShardIterator", iterate("s", "shardId-5")).await,
        does_not_exist(&sid(5), "s")
    );
    assert_eq!(
        err(&k, "GetShardIterator", iterate("nope", "a-00002147483647")).await,
        does_not_exist("shardId-002147483647", "nope")
    );
    assert_eq!(
        err(
            &k,
            "GetShardIterator",
            iterate("nope", "shardId-002147483648")
        )
        .await,
        (
            "ResourceNotFound".to_owned(),
            "Could not find shard shardId-002147483648 in stream nope under account 000000000000."
                .to_owned()
        )
    );
}

#[tokio::test]
async fn records_acknowledged_while_a_reshard_is_updating_survive_a_restart_that_applies_it() {
    let dir = tempfile::tempdir().unwrap();
    let slow = || KinesisConfig {
        status_delay: Duration::from_secs(3600),
        ..config()
    };
    let written = {
        let (store, k) = open_at(dir.path(), slow());
        create(&k, "s", 1).await;
        // CREATING lasts the delay too: make the stream ACTIVE as the
        // background duty would, then split.
        let active = k.get("s").unwrap();
        let mut record = active.record.clone();
        record.status_until_ms = 0;
        k.insert(active.with_record(record));
        split(&k, "s", &sid(0), HALF).await.unwrap();
        let written = put_at(&k, "s", MAX, b"during").await;
        assert_eq!(written["ShardId"], sid(0));
        drop(k);
        store.shutdown().await.unwrap();
        written
    };
    // The plan was committed; the restart applies it, and the parent ends
    // with the record acknowledged while UPDATING.
    let (_store, k) = open_at(dir.path(), slow());
    let all = shards(&k, "s").await;
    assert_eq!(all.len(), 3);
    assert_eq!(
        all[0]["SequenceNumberRange"]["EndingSequenceNumber"],
        written["SequenceNumber"]
    );
    let it = iterator(&k, "s", &sid(0), "TRIM_HORIZON").await;
    let out = ok(&k, "GetRecords", json!({"ShardIterator": it})).await;
    assert_eq!(unb64(&out["Records"][0]["Data"]), b"during");
    assert_eq!(put_at(&k, "s", MAX, b"after").await["ShardId"], sid(2));
}
