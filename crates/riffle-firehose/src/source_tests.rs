//! KinesisStreamAsSource against a real Kinesis service opened on the same
//! temporary store: what is put into the Data Stream arrives in delivered
//! objects, in each shard's order, parents before children, and nothing is
//! lost across a restart of both services.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use riffle_kinesis::{Codec, Kinesis, KinesisConfig};
use riffle_log::{LogStore, ReadLimits, StoreConfig};
use serde_json::{Value, json};

use crate::source::{
    Checkpoint, SourceMeta, checkpoint_key, checkpoint_op, checkpoint_prefix, delete_checkpoints,
    load_checkpoints,
};
use crate::testkit::{Harness, ROLE};

const SOURCE: &str = "src";
const SOURCE_ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/src";
/// Hash keys that land in the first and the second half of the key space
/// (shard 0 and shard 1 of a 2-shard stream).
const LOW: &str = "1";
const HIGH: &str = "200000000000000000000000000000000000000";
/// Every record is this long, so delivered objects split back into them.
const RECORD_LEN: usize = 16;
/// How long (real time) a test waits for records before it fails.
const WAIT_MAX: Duration = Duration::from_secs(30);

fn kinesis(store: &Arc<LogStore>) -> Arc<Kinesis> {
    let config = KinesisConfig {
        status_delay: Duration::ZERO,
        throughput_limits: false,
        ..KinesisConfig::default()
    };
    Kinesis::open(Arc::clone(store), config).unwrap()
}

async fn kinesis_call(k: &Kinesis, action: &str, body: Value) -> Value {
    let out = k
        .handle(action, body.to_string().into(), Codec::Json)
        .await
        .unwrap_or_else(|e| panic!("{action}: {e}"));
    if out.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&out).unwrap()
}

/// A record of [`RECORD_LEN`] bytes naming its shard side and number.
fn record(side: &str, i: usize) -> Vec<u8> {
    let mut r = format!("{side}-{i:06}|").into_bytes();
    r.resize(RECORD_LEN, b'.');
    r
}

/// Puts `records` with this explicit hash key; returns their sequence
/// numbers and shard ids.
async fn put(k: &Kinesis, hash: &str, records: &[Vec<u8>]) -> Vec<(String, String)> {
    let entries: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "Data": base64_simd::STANDARD.encode_to_string(r),
                "PartitionKey": "pk",
                "ExplicitHashKey": hash,
            })
        })
        .collect();
    let out = kinesis_call(
        k,
        "PutRecords",
        json!({"StreamName": SOURCE, "Records": entries}),
    )
    .await;
    assert_eq!(out["FailedRecordCount"], 0, "{out}");
    out["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["SequenceNumber"].as_str().unwrap().to_owned(),
                r["ShardId"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A Kinesis stream of `shards` shards, a delivery stream reading it, and
/// the Kinesis service attached to Firehose.
async fn setup(shards: u32, size_mb: i32, interval_s: i32) -> (Harness, Arc<Kinesis>) {
    let h = Harness::new();
    let k = kinesis(&h.store);
    kinesis_call(
        &k,
        "CreateStream",
        json!({"StreamName": SOURCE, "ShardCount": shards}),
    )
    .await;
    create_delivery(&h, size_mb, interval_s).await;
    h.firehose.attach_kinesis(Arc::clone(&k));
    (h, k)
}

async fn create_delivery(h: &Harness, size_mb: i32, interval_s: i32) {
    h.call(
        "CreateDeliveryStream",
        json!({
            "DeliveryStreamName": "d",
            "DeliveryStreamType": "KinesisStreamAsSource",
            "KinesisStreamSourceConfiguration": {"KinesisStreamARN": SOURCE_ARN, "RoleARN": ROLE},
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": ROLE,
                "BucketARN": "arn:aws:s3:::b",
                "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": interval_s},
            },
        }),
    )
    .await
    .unwrap();
}

/// The delivered bytes cut back into records.
fn delivered(h: &Harness) -> Vec<Vec<u8>> {
    h.sink
        .all_bytes()
        .chunks(RECORD_LEN)
        .map(<[u8]>::to_vec)
        .collect()
}

/// The delivered records that start with `side`, in delivered order.
fn side_of(all: &[Vec<u8>], side: &str) -> Vec<Vec<u8>> {
    all.iter()
        .filter(|r| r.starts_with(side.as_bytes()))
        .cloned()
        .collect()
}

fn metric(h: &Harness, name: &str) -> i64 {
    let mut out = String::new();
    h.firehose.write_metrics(&mut out);
    let prefix = format!("riffle_firehose_{name}{{delivery_stream=\"d\"}} ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn records_of_a_two_shard_stream_arrive_in_each_shards_order() {
    let (h, k) = setup(2, 1, 0).await;
    let low: Vec<Vec<u8>> = (0..300).map(|i| record("lo", i)).collect();
    let high: Vec<Vec<u8>> = (0..300).map(|i| record("hi", i)).collect();
    for (l, hi) in low.chunks(50).zip(high.chunks(50)) {
        let shards: BTreeSet<String> = put(&k, LOW, l)
            .await
            .into_iter()
            .chain(put(&k, HIGH, hi).await)
            .map(|(_, shard)| shard)
            .collect();
        assert_eq!(shards.len(), 2, "the keys land in both shards");
    }
    h.sink.wait_for_bytes(600 * RECORD_LEN).await;
    let all = delivered(&h);
    assert_eq!(side_of(&all, "lo"), low);
    assert_eq!(side_of(&all, "hi"), high);
    assert_eq!(all.len(), 600, "nothing delivered twice without a crash");
    assert_eq!(
        metric(&h, "data_read_from_kinesis_stream_records_total"),
        600
    );
    assert_eq!(
        metric(&h, "data_read_from_kinesis_stream_bytes_total"),
        (600 * RECORD_LEN) as i64
    );
}

#[tokio::test]
async fn records_put_before_the_delivery_stream_existed_are_not_read() {
    let h = Harness::new();
    let k = kinesis(&h.store);
    kinesis_call(
        &k,
        "CreateStream",
        json!({"StreamName": SOURCE, "ShardCount": 1}),
    )
    .await;
    put(&k, LOW, &[record("old", 0)]).await;
    // Arrival times are in ms: the next put must be in a later one.
    tokio::time::sleep(Duration::from_millis(5)).await;
    create_delivery(&h, 1, 0).await;
    h.firehose.attach_kinesis(Arc::clone(&k));
    put(&k, LOW, &[record("new", 0)]).await;
    h.sink.wait_for_bytes(RECORD_LEN).await;
    assert_eq!(
        delivered(&h),
        [record("new", 0)],
        "LATEST, as AWS documents"
    );
}

#[tokio::test]
async fn buffered_records_keep_their_kinesis_metadata() {
    // A 15-minute interval: the records wait in the delivery log.
    let (h, k) = setup(1, 128, 900).await;
    let records: Vec<Vec<u8>> = (0..3).map(|i| record("m", i)).collect();
    let put_at = crate::time::now_ms();
    let numbers = put(&k, LOW, &records).await;
    let stream = h.firehose.get("d").unwrap();
    let deadline = std::time::Instant::now() + WAIT_MAX;
    while stream.log.next_seq() < 3 {
        assert!(std::time::Instant::now() < deadline, "records not appended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let limits = ReadLimits {
        records_max: 10,
        bytes_max: 1 << 20,
    };
    let batch = stream.log.read(0, limits).unwrap();
    assert_eq!(batch.records.len(), 3);
    for ((stored, data), (seq_number, shard)) in batch.records.iter().zip(&records).zip(&numbers) {
        assert_eq!(&stored.data[..], &data[..]);
        let meta = SourceMeta::decode(&stored.partition_key).unwrap();
        assert_eq!(&meta.sequence_number, seq_number);
        assert_eq!(&meta.shard_id, shard);
        assert_eq!(meta.partition_key, b"pk");
        assert!((put_at - 1_000..put_at + 60_000).contains(&meta.arrival_ms));
    }
}

#[tokio::test]
async fn kpl_aggregated_records_are_delivered_as_their_user_records() {
    let (h, k) = setup(1, 128, 900).await;
    let users = [
        ("k-a", &b"first"[..]),
        ("k-b", b"second"),
        ("k-a", b"third"),
    ];
    let aggregated = riffle_kpl::format::encode(
        &users
            .iter()
            .map(|(key, data)| riffle_kpl::UserRecord {
                partition_key: key,
                explicit_hash_key: None,
                data,
            })
            .collect::<Vec<_>>(),
    );
    let mut bad_digest = aggregated.clone();
    *bad_digest.last_mut().unwrap() ^= 0xFF;
    let numbers = put(&k, LOW, &[aggregated, bad_digest.clone()]).await;
    let stream = h.firehose.get("d").unwrap();
    let deadline = std::time::Instant::now() + WAIT_MAX;
    while stream.log.next_seq() < 4 {
        assert!(std::time::Instant::now() < deadline, "records not appended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let limits = ReadLimits {
        records_max: 10,
        bytes_max: 1 << 20,
    };
    let batch = stream.log.read(0, limits).unwrap();
    assert_eq!(
        batch.records.len(),
        4,
        "three user records and one plain record"
    );
    for (i, ((key, data), stored)) in users.iter().zip(&batch.records).enumerate() {
        assert_eq!(&stored.data[..], *data);
        let meta = SourceMeta::decode(&stored.partition_key).unwrap();
        assert_eq!(meta.partition_key, key.as_bytes());
        assert_eq!(meta.sub_sequence_number, Some(i as u64));
        assert_eq!(meta.sequence_number, numbers[0].0);
    }
    let plain = &batch.records[3];
    assert_eq!(
        &plain.data[..],
        &bad_digest[..],
        "a wrong MD5: one record, as it is"
    );
    let meta = SourceMeta::decode(&plain.partition_key).unwrap();
    assert_eq!(meta.sub_sequence_number, None);
    assert_eq!(meta.partition_key, b"pk");
}

async fn split(k: &Kinesis, shard: &str, at: &str) {
    kinesis_call(
        k,
        "SplitShard",
        json!({"StreamName": SOURCE, "ShardToSplit": shard, "NewStartingHashKey": at}),
    )
    .await;
}

/// The records of `all` that are among `part`, in delivered order.
fn among(all: &[Vec<u8>], part: &[Vec<u8>]) -> Vec<Vec<u8>> {
    all.iter().filter(|r| part.contains(r)).cloned().collect()
}

#[tokio::test]
async fn a_split_parents_records_come_before_its_childrens() {
    let h = Harness::new();
    let k = kinesis(&h.store);
    kinesis_call(
        &k,
        "CreateStream",
        json!({"StreamName": SOURCE, "ShardCount": 1}),
    )
    .await;
    create_delivery(&h, 1, 0).await;
    // The split comes before the source has read the parent: its children
    // are there from the start, and must wait.
    let parent: Vec<Vec<u8>> = (0..400).map(|i| record("pa", i)).collect();
    let children: Vec<Vec<u8>> = (0..400).map(|i| record("ch", i)).collect();
    put(&k, LOW, &parent[..200]).await;
    put(&k, HIGH, &parent[200..]).await;
    split(
        &k,
        "shardId-000000000000",
        "170141183460469231731687303715884105728",
    )
    .await;
    let low = put(&k, LOW, &children[..200]).await;
    let high = put(&k, HIGH, &children[200..]).await;
    let shards: BTreeSet<&str> = low.iter().chain(&high).map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        shards,
        BTreeSet::from(["shardId-000000000001", "shardId-000000000002"]),
        "the later records went to the children"
    );
    h.firehose.attach_kinesis(Arc::clone(&k));
    h.sink.wait_for_bytes(800 * RECORD_LEN).await;
    let all = delivered(&h);
    assert_eq!(all.len(), 800);
    assert_eq!(&all[..400], &parent[..], "the parent's records first");
    assert_eq!(among(&all, &children[..200]), children[..200]);
    assert_eq!(among(&all, &children[200..]), children[200..]);

    // A split while the source reads: the new shards are found, and the
    // split child's records come before its own children's.
    let more: Vec<Vec<u8>> = (0..200).map(|i| record("gc", i)).collect();
    let before_split: Vec<Vec<u8>> = (0..100).map(|i| record("b2", i)).collect();
    put(&k, LOW, &before_split).await;
    split(
        &k,
        "shardId-000000000001",
        "85070591730234615865843651857942052864",
    )
    .await;
    let grandchildren = put(&k, LOW, &more).await;
    assert!(
        grandchildren
            .iter()
            .all(|(_, s)| s == "shardId-000000000003")
    );
    h.sink.wait_for_bytes(1_100 * RECORD_LEN).await;
    let all = delivered(&h);
    assert_eq!(among(&all, &before_split), before_split);
    assert_eq!(among(&all, &more), more);
    let last_of_parent = all.iter().rposition(|r| before_split.contains(r)).unwrap();
    let first_of_child = all.iter().position(|r| more.contains(r)).unwrap();
    assert!(
        last_of_parent < first_of_child,
        "the parent's records first"
    );
}

#[tokio::test]
async fn a_restart_of_both_services_mid_stream_loses_nothing() {
    let (h, k) = setup(2, 1, 0).await;
    let first: Vec<Vec<u8>> = (0..500).map(|i| record("r1", i)).collect();
    for chunk in first.chunks(100) {
        put(&k, LOW, &chunk[..50]).await;
        put(&k, HIGH, &chunk[50..]).await;
    }
    // Some delivered, the rest perhaps read, appended or not yet.
    h.sink.wait_for_bytes(RECORD_LEN).await;
    drop(k);
    let sink = Arc::clone(&h.sink);
    let h = h.restart(sink).await;
    let k = kinesis(&h.store);
    // Put while Firehose is not reading: read from the checkpoints, not
    // from a new LATEST.
    let meanwhile: Vec<Vec<u8>> = (0..100).map(|i| record("r3", i)).collect();
    put(&k, LOW, &meanwhile[..50]).await;
    put(&k, HIGH, &meanwhile[50..]).await;
    h.firehose.attach_kinesis(Arc::clone(&k));
    let second: Vec<Vec<u8>> = (0..200).map(|i| record("r2", i)).collect();
    put(&k, LOW, &second[..100]).await;
    put(&k, HIGH, &second[100..]).await;
    let wanted: BTreeSet<Vec<u8>> = first
        .iter()
        .chain(&meanwhile)
        .chain(&second)
        .cloned()
        .collect();
    let deadline = std::time::Instant::now() + WAIT_MAX;
    loop {
        let got: BTreeSet<Vec<u8>> = delivered(&h).into_iter().collect();
        if wanted.is_subset(&got) {
            break;
        }
        let missing = wanted.difference(&got).count();
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} records never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // At least once: a duplicate is allowed, a stranger is not.
    assert!(delivered(&h).iter().all(|r| wanted.contains(r)));
}

#[test]
fn checkpoints_round_trip_through_the_metadata_store() {
    assert_eq!(
        checkpoint_key(0xfeed, 0xbeef, "shardId-000000000002"),
        "firehose/source/000000000000feed/000000000000beef/shardId-000000000002"
    );
    let at = Checkpoint {
        next: 0x0102_0304_0506_0708,
        done: true,
    };
    assert_eq!(at.encode(), [8, 7, 6, 5, 4, 3, 2, 1, 1]);
    assert_eq!(Checkpoint::decode(&at.encode()), Some(at));
    assert_eq!(Checkpoint::decode(&[0; 8]), None);
    assert_eq!(Checkpoint::decode(&[0, 0, 0, 0, 0, 0, 0, 0, 2]), None);

    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let open = Checkpoint {
        next: 42,
        done: false,
    };
    store
        .meta()
        .commit(&[
            checkpoint_op(1, 7, "shardId-000000000000", open),
            checkpoint_op(1, 7, "shardId-000000000001", at),
            checkpoint_op(1, 8, "shardId-000000000000", at),
            checkpoint_op(2, 7, "shardId-000000000000", at),
        ])
        .unwrap();
    let loaded = load_checkpoints(&store, 1, 7).unwrap();
    assert_eq!(
        loaded.into_iter().collect::<Vec<_>>(),
        [
            ("shardId-000000000000".to_owned(), open),
            ("shardId-000000000001".to_owned(), at),
        ]
    );
    let ops = delete_checkpoints(&store, 1).unwrap();
    assert_eq!(ops.len(), 3, "every source incarnation of stream 1");
    store.meta().commit(&ops).unwrap();
    assert!(
        store
            .meta()
            .scan_prefix(&checkpoint_prefix(1))
            .unwrap()
            .is_empty()
    );
    assert_eq!(load_checkpoints(&store, 2, 7).unwrap().len(), 1);
}

#[test]
fn record_metadata_round_trips_and_directput_records_have_none() {
    let meta = SourceMeta {
        shard_id: "shardId-000000000003".into(),
        sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
        arrival_ms: 1_796_525_107_123,
        sub_sequence_number: None,
        partition_key: b"user-42".to_vec(),
    };
    let encoded = meta.encode();
    assert_eq!(encoded[0], 1);
    assert_eq!(usize::from(encoded[1]), meta.shard_id.len());
    assert_eq!(SourceMeta::decode(&encoded), Some(meta.clone()));
    let user = SourceMeta {
        sub_sequence_number: Some(300),
        ..meta
    };
    let encoded = user.encode();
    assert_eq!(encoded[0], 2, "a de-aggregated user record");
    assert_eq!(SourceMeta::decode(&encoded), Some(user));
    assert_eq!(SourceMeta::decode(b""), None, "a DirectPut record");
    assert_eq!(SourceMeta::decode(&encoded[..10]), None, "truncated");
}

#[tokio::test]
async fn deleting_the_delivery_stream_stops_its_source_and_removes_its_checkpoints() {
    let (h, k) = setup(2, 1, 0).await;
    put(&k, LOW, &[record("x", 0)]).await;
    h.sink.wait_for_bytes(RECORD_LEN).await;
    let prefix = checkpoint_prefix(h.firehose.get("d").unwrap().record().incarnation);
    assert!(!h.store.meta().scan_prefix(&prefix).unwrap().is_empty());
    h.call("DeleteDeliveryStream", json!({"DeliveryStreamName": "d"}))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT_MAX;
    while h.firehose.get("d").is_some() {
        assert!(std::time::Instant::now() < deadline, "never deleted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(h.store.meta().scan_prefix(&prefix).unwrap().is_empty());
    // The source stream is untouched and the source reads no more.
    put(&k, HIGH, &[record("y", 0)]).await;
    tokio::task::yield_now().await;
    assert!(h.store.meta().scan_prefix(&prefix).unwrap().is_empty());
}

#[tokio::test]
async fn a_deleted_source_stream_leaves_the_delivery_stream_active() {
    let (h, k) = setup(1, 1, 0).await;
    put(&k, LOW, &[record("x", 0)]).await;
    h.sink.wait_for_bytes(RECORD_LEN).await;
    kinesis_call(&k, "DeleteStream", json!({"StreamName": SOURCE})).await;
    let out = h
        .call("DescribeDeliveryStream", json!({"DeliveryStreamName": "d"}))
        .await
        .unwrap();
    assert_eq!(
        out["DeliveryStreamDescription"]["DeliveryStreamStatus"],
        "ACTIVE"
    );
    assert_eq!(delivered(&h), [record("x", 0)]);
}
