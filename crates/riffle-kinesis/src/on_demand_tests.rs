//! On-demand scaling in and out, driven through `Kinesis::handle` against
//! a real `LogStore` in a temporary directory, with the buckets' clock
//! fixed by the test and each interval run by hand (no sleeps).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_log::{FsyncPolicy, LogStore, StoreConfig};
use serde_json::{Value, json};

use crate::time::now_ms;
use crate::{Codec, Kinesis, KinesisConfig};

const T0: i64 = 1_795_000_000_000;
/// The interval every round measures.
const WINDOW_MS: i64 = 1000;

fn open(dir: &std::path::Path) -> Arc<Kinesis> {
    let store = StoreConfig {
        fsync: FsyncPolicy::Never,
        ..StoreConfig::default()
    };
    let config = KinesisConfig {
        status_delay: Duration::ZERO,
        ..KinesisConfig::default()
    };
    let kinesis = Kinesis::open(Arc::new(LogStore::open(dir, store).unwrap()), config).unwrap();
    kinesis.set_clock_ms(T0);
    kinesis
}

async fn ok(k: &Kinesis, action: &str, body: Value) -> Value {
    let out = k
        .handle(action, Bytes::from(body.to_string()), Codec::Json)
        .await
        .unwrap();
    if out.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&out).unwrap()
}

/// The open shards of `stream`: (id, starting hash key), by hash.
async fn open_shards(k: &Kinesis, stream: &str) -> Vec<(String, String)> {
    let body = json!({"StreamName": stream, "ShardFilter": {"Type": "AT_LATEST"}});
    let shards = ok(k, "ListShards", body).await;
    let mut open: Vec<(String, String)> = shards["Shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let start = s["HashKeyRange"]["StartingHashKey"].as_str().unwrap();
            (s["ShardId"].as_str().unwrap().to_owned(), start.to_owned())
        })
        .collect();
    open.sort_by_key(|(_, start)| start.parse::<u128>().unwrap());
    open
}

/// `count` small records to the shard owning `hash_key`.
async fn put(k: &Kinesis, stream: &str, hash_key: &str, count: usize) {
    let records: Vec<Value> = (0..count)
        .map(|_| json!({"PartitionKey": "k", "ExplicitHashKey": hash_key, "Data": "AA=="}))
        .collect();
    let out = ok(
        k,
        "PutRecords",
        json!({"StreamName": stream, "Records": records}),
    )
    .await;
    assert_eq!(out["FailedRecordCount"], 0);
}

/// Creates on-demand stream `od` and splits the shard owning hash key 0
/// twice: 6 open shards.
async fn scaled_out(k: &Kinesis) {
    ok(k, "CreateStream", json!({"StreamName": "od"})).await;
    for open in [5, 6] {
        // 600 records in the window: 60% of the shard's capacity.
        put(k, "od", "0", 300).await;
        put(k, "od", "0", 300).await;
        k.scale_on_demand(WINDOW_MS).await;
        assert_eq!(open_shards(k, "od").await.len(), open);
    }
    // Later than every shard's birth by more than the merge age.
    k.set_clock_ms(now_ms() + 86_400_000);
}

#[tokio::test]
async fn a_quiet_scaled_out_on_demand_stream_is_merged_back_to_four_shards_and_no_further() {
    let dir = tempfile::tempdir().unwrap();
    let k = &open(dir.path());
    scaled_out(k).await;
    // One merge per interval, down to the 4 shards the stream began with.
    for open in [5, 4, 4, 4] {
        k.scale_on_demand(WINDOW_MS).await;
        assert_eq!(open_shards(k, "od").await.len(), open);
    }
    // The merged shards are listed as MergeShards leaves them.
    let all = ok(k, "ListShards", json!({"StreamName": "od"})).await;
    let merged = all["Shards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["AdjacentParentShardId"].is_string())
        .count();
    assert_eq!(merged, 2);
    // Records still flow after the merges, to every open shard.
    for (_, start) in open_shards(k, "od").await {
        put(k, "od", &start, 10).await;
    }
}

#[tokio::test]
async fn a_busy_on_demand_stream_is_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let k = &open(dir.path());
    scaled_out(k).await;
    // 15% of a shard's records capacity on every open shard: not hot, not
    // cold.
    for _ in 0..3 {
        for (_, start) in open_shards(k, "od").await {
            put(k, "od", &start, 150).await;
        }
        k.scale_on_demand(WINDOW_MS).await;
        assert_eq!(open_shards(k, "od").await.len(), 6);
    }
}

#[tokio::test]
async fn young_shards_are_not_merged() {
    let dir = tempfile::tempdir().unwrap();
    let k = &open(dir.path());
    scaled_out(k).await;
    // The clock at the children's birth: quiet, but not yet old enough.
    k.set_clock_ms(now_ms());
    k.scale_on_demand(WINDOW_MS).await;
    assert_eq!(open_shards(k, "od").await.len(), 6);
}
