//! Resharding and retention through the official AWS SDK for Rust:
//! SplitShard, MergeShards, UpdateShardCount, closed shards' ends and
//! `ChildShards`, ListShards' filters, the retention actions and their
//! errors, and a SIGKILL while records flow and shards split and merge.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{ScalingType, Shard, ShardFilter, ShardFilterType, ShardIteratorType};
use common::{Riffle, create_active, error_of, unique_name, wait_active};

fn shared() -> &'static Riffle {
    static SERVER: OnceLock<Riffle> = OnceLock::new();
    SERVER.get_or_init(Riffle::start)
}

const HALF: &str = "170141183460469231731687303715884105728";

async fn all_shards(client: &Client, name: &str) -> Vec<Shard> {
    let out = client.list_shards().stream_name(name).send().await.unwrap();
    out.shards().to_vec()
}

async fn put(client: &Client, name: &str, key: &str, data: &str) -> String {
    let out = client
        .put_record()
        .stream_name(name)
        .partition_key(key)
        .data(Blob::new(data.as_bytes()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutRecord {key}: {e:?}"));
    out.sequence_number().to_owned()
}

#[tokio::test]
async fn split_merge_and_rescale_keep_the_lineage_aws_reports() {
    let client = shared().client();
    let name = unique_name("reshard");
    create_active(&client, &name, 1).await;
    let last = put(&client, &name, "a", "before").await;
    client
        .split_shard()
        .stream_name(&name)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key(HALF)
        .send()
        .await
        .unwrap();
    wait_active(&client, &name).await;
    let shards = all_shards(&client, &name).await;
    assert_eq!(shards.len(), 3);
    let parent_range = shards[0].sequence_number_range().unwrap();
    assert_eq!(parent_range.ending_sequence_number(), Some(last.as_str()));
    assert_eq!(shards[1].parent_shard_id(), Some("shardId-000000000000"));
    assert_eq!(
        shards[2].hash_key_range().unwrap().starting_hash_key(),
        HALF
    );

    // The parent reads to its end, then names its children.
    let it = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap();
    let out = client
        .get_records()
        .shard_iterator(it.shard_iterator().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.records().len(), 1);
    assert_eq!(out.next_shard_iterator(), None);
    let children: Vec<&str> = out.child_shards().iter().map(|c| c.shard_id()).collect();
    assert_eq!(children, ["shardId-000000000001", "shardId-000000000002"]);
    assert_eq!(
        out.child_shards()[0].parent_shards(),
        ["shardId-000000000000"]
    );

    client
        .merge_shards()
        .stream_name(&name)
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await
        .unwrap();
    wait_active(&client, &name).await;
    let latest = client
        .list_shards()
        .stream_name(&name)
        .shard_filter(
            ShardFilter::builder()
                .r#type(ShardFilterType::AtLatest)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let merged = &latest.shards()[0];
    assert_eq!(latest.shards().len(), 1);
    assert_eq!(merged.parent_shard_id(), Some("shardId-000000000001"));
    assert_eq!(
        merged.adjacent_parent_shard_id(),
        Some("shardId-000000000002")
    );

    let out = client
        .update_shard_count()
        .stream_name(&name)
        .target_shard_count(2)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (out.current_shard_count(), out.target_shard_count()),
        (Some(1), Some(2))
    );
    assert_eq!(out.stream_name(), Some(name.as_str()));
    wait_active(&client, &name).await;
    let summary = client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        summary
            .stream_description_summary()
            .unwrap()
            .open_shard_count(),
        2
    );
}

#[tokio::test]
async fn resharding_errors_have_aws_codes_and_texts() {
    let client = shared().client();
    let name = unique_name("reshard-errors");
    create_active(&client, &name, 1).await;
    let err = client
        .split_shard()
        .stream_name(&name)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("1")
        .send()
        .await
        .unwrap_err();
    let (code, message) = error_of(&err);
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message
            .starts_with("NewStartingHashKey 1 used in SplitShard() on shard shardId-000000000000"),
        "{message}"
    );
    let err = client
        .split_shard()
        .stream_name(&name)
        .shard_to_split("shardId-000000000042")
        .new_starting_hash_key(HALF)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_of(&err).0, "ResourceNotFoundException");
    let err = client
        .update_shard_count()
        .stream_name(&name)
        .target_shard_count(3)
        .scaling_type(ScalingType::UniformScaling)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_of(&err),
        (
            "InvalidArgumentException".to_owned(),
            "UpdateShardCount cannot scale up over double your current open shard count. Current \
             open shard count: 1 Target shard count: 3"
                .to_owned()
        )
    );
    let err = client
        .merge_shards()
        .stream_name(&name)
        .shard_to_merge("shardId-000000000000")
        .adjacent_shard_to_merge("shardId-000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_of(&err).0, "InvalidArgumentException");
}

#[tokio::test]
async fn retention_periods_change_within_aws_bounds() {
    let client = shared().client();
    let name = unique_name("retention");
    create_active(&client, &name, 1).await;
    client
        .increase_stream_retention_period()
        .stream_name(&name)
        .retention_period_hours(8760)
        .send()
        .await
        .unwrap();
    client
        .decrease_stream_retention_period()
        .stream_name(&name)
        .retention_period_hours(48)
        .send()
        .await
        .unwrap();
    let summary = client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
    let hours = summary
        .stream_description_summary()
        .unwrap()
        .retention_period_hours();
    assert_eq!(hours, 48);
    let err = client
        .increase_stream_retention_period()
        .stream_name(&name)
        .retention_period_hours(24)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_of(&err),
        (
            "InvalidArgumentException".to_owned(),
            format!(
                "Requested retention period (24 hours) for stream {name} can not be shorter than \
                 existing retention period (48 hours). Use DecreaseRetentionPeriod API."
            )
        )
    );
    let err = client
        .decrease_stream_retention_period()
        .stream_name(&name)
        .retention_period_hours(12)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_of(&err).1,
        "Minimum allowed retention period is 24 hours. Requested retention period (12 hours) is too short."
    );
}

/// Every record of the stream, reading each shard from its trim horizon
/// to its end (or tip), parents before children.
async fn consume_in_lineage_order(client: &Client, name: &str) -> Vec<String> {
    let shards = all_shards(client, name).await;
    let mut done: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    while done.len() < shards.len() {
        let shard = shards
            .iter()
            .find(|s| {
                !done.contains(s.shard_id())
                    && [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                        .into_iter()
                        .flatten()
                        .all(|p| done.contains(p))
            })
            .expect("some shard has all its parents read");
        let it = client
            .get_shard_iterator()
            .stream_name(name)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let mut it = it.shard_iterator().map(str::to_owned);
        while let Some(current) = it {
            let got = client
                .get_records()
                .shard_iterator(current)
                .send()
                .await
                .unwrap();
            for record in got.records() {
                out.push(String::from_utf8(record.data().as_ref().to_vec()).unwrap());
            }
            // An open shard: stop at its tip (nothing is being written).
            it = got
                .next_shard_iterator()
                .filter(|_| !got.records().is_empty())
                .map(str::to_owned);
        }
        done.insert(shard.shard_id().to_owned());
    }
    out
}

#[tokio::test]
async fn a_sigkill_while_shards_split_and_merge_loses_no_acknowledged_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Riffle::start_in(dir.path(), &[]);
    let client = server.client();
    let name = unique_name("reshard-kill");
    create_active(&client, &name, 2).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for p in 0..4 {
        let (client, name, stop) = (client.clone(), name.clone(), stop.clone());
        producers.push(tokio::spawn(async move {
            let key = format!("key-{p}");
            let mut acked = Vec::new();
            for n in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let data = format!("{key}:{n}");
                let sent = client
                    .put_record()
                    .stream_name(&name)
                    .partition_key(&key)
                    .data(Blob::new(data.as_bytes()))
                    .send()
                    .await;
                // The server is killed at some point: stop at the first error.
                if sent.is_err() {
                    break;
                }
                acked.push(data);
            }
            acked
        }));
    }
    // Splits, merges and rescales while records flow; the kill lands
    // somewhere in them.
    for step in 0..4 {
        let open: Vec<Shard> = all_shards(&client, &name)
            .await
            .into_iter()
            .filter(|s| {
                s.sequence_number_range()
                    .unwrap()
                    .ending_sequence_number()
                    .is_none()
            })
            .collect();
        let sent = match step % 3 {
            0 => {
                let range = open[0].hash_key_range().unwrap();
                let start: u128 = range.starting_hash_key().parse().unwrap();
                let end: u128 = range.ending_hash_key().parse().unwrap();
                let at = (start + (end - start) / 2).to_string();
                client
                    .split_shard()
                    .stream_name(&name)
                    .shard_to_split(open[0].shard_id())
                    .new_starting_hash_key(at)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}"))
            }
            1 => client
                .update_shard_count()
                .stream_name(&name)
                .target_shard_count(open.len() as i32 * 2)
                .scaling_type(ScalingType::UniformScaling)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:?}")),
            _ => client
                .update_shard_count()
                .stream_name(&name)
                .target_shard_count((open.len() as i32 + 1) / 2)
                .scaling_type(ScalingType::UniformScaling)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:?}")),
        };
        sent.unwrap_or_else(|e| panic!("reshard step {step}: {e}"));
        wait_active(&client, &name).await;
    }
    // One more rescale, killed while it may be under way.
    let rescale = client
        .update_shard_count()
        .stream_name(&name)
        .target_shard_count(3)
        .scaling_type(ScalingType::UniformScaling)
        .send();
    let in_flight = tokio::spawn(rescale);
    tokio::time::sleep(Duration::from_millis(2)).await;
    server.kill();
    let _ = in_flight.await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for producer in producers {
        acked.extend(producer.await.unwrap());
    }
    assert!(!acked.is_empty());

    let server = Riffle::start_in(dir.path(), &[]);
    let client = server.client();
    wait_active(&client, &name).await;
    // The shard map is consistent: the open shards tile the hash-key space.
    let shards = all_shards(&client, &name).await;
    let mut open: Vec<(u128, u128)> = shards
        .iter()
        .filter(|s| {
            s.sequence_number_range()
                .unwrap()
                .ending_sequence_number()
                .is_none()
        })
        .map(|s| {
            let r = s.hash_key_range().unwrap();
            (
                r.starting_hash_key().parse().unwrap(),
                r.ending_hash_key().parse().unwrap(),
            )
        })
        .collect();
    open.sort();
    assert_eq!(open.first().map(|r| r.0), Some(0));
    assert_eq!(open.last().map(|r| r.1), Some(u128::MAX));
    assert!(open.windows(2).all(|w| w[0].1 + 1 == w[1].0), "{open:?}");

    let read = consume_in_lineage_order(&client, &name).await;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for data in &read {
        *seen.entry(data.as_str()).or_default() += 1;
    }
    assert!(seen.values().all(|&n| n == 1), "a record was read twice");
    for data in &acked {
        assert!(
            seen.contains_key(data.as_str()),
            "acknowledged {data} was lost"
        );
    }
    // Per key, records come in the order they were written.
    let mut last: HashMap<&str, i64> = HashMap::new();
    for data in &read {
        let (key, n) = data.rsplit_once(':').unwrap();
        let n: i64 = n.parse().unwrap();
        let prev = last.insert(key, n).unwrap_or(-1);
        assert_eq!(n, prev + 1, "{key} out of order");
    }
}

async fn listed(client: &Client, name: &str, filter: ShardFilter) -> Vec<String> {
    let out = client
        .list_shards()
        .stream_name(name)
        .shard_filter(filter)
        .send()
        .await
        .unwrap();
    out.shards()
        .iter()
        .map(|s| s.shard_id().to_owned())
        .collect()
}

#[tokio::test]
async fn list_shards_filters_let_a_consumer_start_at_the_roots_or_the_tip() {
    let client = shared().client();
    let name = unique_name("filters");
    create_active(&client, &name, 1).await;
    // The initial shards are as old as the stream; children of a split are
    // created in a later second than their parents.
    let summary = client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
    let created = *summary
        .stream_description_summary()
        .unwrap()
        .stream_creation_timestamp();
    client
        .split_shard()
        .stream_name(&name)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key(HALF)
        .send()
        .await
        .unwrap();
    wait_active(&client, &name).await;
    let filter = |kind: ShardFilterType| ShardFilter::builder().r#type(kind).build().unwrap();
    let roots = listed(&client, &name, filter(ShardFilterType::AtTrimHorizon)).await;
    assert_eq!(roots, ["shardId-000000000000"]);
    let tip = listed(&client, &name, filter(ShardFilterType::AtLatest)).await;
    assert_eq!(tip, ["shardId-000000000001", "shardId-000000000002"]);
    let all = listed(&client, &name, filter(ShardFilterType::FromTrimHorizon)).await;
    assert_eq!(all.len(), 3);
    let at = ShardFilter::builder()
        .r#type(ShardFilterType::AtTimestamp)
        .timestamp(created)
        .build()
        .unwrap();
    assert_eq!(listed(&client, &name, at).await, ["shardId-000000000000"]);
    let missing = client
        .list_shards()
        .stream_name(&name)
        .shard_filter(filter(ShardFilterType::FromTimestamp))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_of(&missing),
        (
            "InvalidArgumentException".to_owned(),
            "Timestamp must be supplied in a ShardFilter with a Type of FROM_TIMESTAMP or AT_TIMESTAMP"
                .to_owned()
        )
    );
}
