//! The KPL producer (riffle-kpl) against the real server, and `riffle put
//! --aggregate` with `riffle tail`: user records land on the shards their
//! keys map to, come back de-aggregated with their sub-sequence numbers,
//! are retried when the shard throttles, are sent by the flush interval
//! alone, and follow a split.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::Shard;
use common::{Riffle, create_active, hash_key_of, unique_name, wait_active};
use riffle_kpl::{Producer, ProducerConfig, PutOutcome};

/// Bounds every wait for the producer; reaching it fails the test.
const WAIT_MAX: Duration = Duration::from_secs(60);

async fn shards(client: &Client, stream: &str) -> Vec<Shard> {
    client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards")
        .shards
        .unwrap_or_default()
}

/// Whether `shard` is open and its range holds `key`'s hash key.
fn owns(shard: &Shard, key: &str) -> bool {
    let range = shard.hash_key_range().expect("a hash key range");
    let start: u128 = range.starting_hash_key().parse().unwrap();
    let end: u128 = range.ending_hash_key().parse().unwrap();
    let open = shard
        .sequence_number_range()
        .is_some_and(|r| r.ending_sequence_number().is_none());
    open && (start..=end).contains(&hash_key_of(key))
}

/// Every user record of every shard, by (sequence number, sub-sequence
/// number): its shard, partition key and data.
async fn read_back(
    client: &Client,
    stream: &str,
) -> HashMap<(String, u64), (String, String, Vec<u8>)> {
    let mut found = HashMap::new();
    for shard in shards(client, stream).await {
        for record in common::records_from_trim_horizon(client, stream, shard.shard_id()).await {
            let data = record.data.as_ref();
            for user in riffle_kpl::deaggregate(
                data,
                record.partition_key.as_deref().unwrap_or_default(),
                None,
            ) {
                let key = (record.sequence_number.clone(), user.sub_sequence_number);
                let value = (
                    shard.shard_id().to_owned(),
                    user.partition_key.to_owned(),
                    user.data.to_vec(),
                );
                assert!(
                    found.insert(key, value).is_none(),
                    "a user record read twice"
                );
            }
        }
    }
    found
}

async fn producer(riffle: &Riffle, stream: &str, config: ProducerConfig) -> Producer {
    Producer::new(riffle.client(), stream, config)
        .await
        .expect("a producer")
}

/// Puts `records` (key, data) and waits for every outcome.
async fn put_all(producer: &Producer, records: &[(String, Vec<u8>)]) -> Vec<PutOutcome> {
    let pending: Vec<_> = records
        .iter()
        .map(|(key, data)| producer.put(key, None, data))
        .collect();
    producer.flush();
    let mut outcomes = Vec::with_capacity(pending.len());
    for answer in pending {
        let outcome = tokio::time::timeout(WAIT_MAX, answer)
            .await
            .expect("the record resolves in time")
            .expect("the record is written");
        outcomes.push(outcome);
    }
    outcomes
}

fn records(count: usize, keys: usize, size: usize) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|i| {
            let mut data = format!("record-{i}|").into_bytes();
            data.resize(size.max(data.len()), b'.');
            (format!("key-{}", i % keys), data)
        })
        .collect()
}

#[tokio::test]
async fn user_records_land_on_their_keys_shards_and_read_back_deaggregated() {
    let riffle = Riffle::start();
    let client = riffle.client();
    let stream = unique_name("kpl");
    create_active(&client, &stream, 4).await;
    let producer = producer(&riffle, &stream, ProducerConfig::default()).await;
    let sent = records(3000, 300, 40);
    let outcomes = put_all(&producer, &sent).await;

    let shards = shards(&client, &stream).await;
    let found = read_back(&client, &stream).await;
    assert_eq!(found.len(), sent.len(), "every user record once");
    let mut kinesis_records = std::collections::HashSet::new();
    for ((key, data), outcome) in sent.iter().zip(&outcomes) {
        let shard = shards
            .iter()
            .find(|s| s.shard_id() == &*outcome.shard_id)
            .unwrap();
        assert!(owns(shard, key), "{key} went to {}", outcome.shard_id);
        let at = (
            outcome.sequence_number.to_string(),
            outcome.sub_sequence_number,
        );
        let (read_shard, read_key, read_data) = &found[&at];
        assert_eq!(read_shard, &*outcome.shard_id);
        assert_eq!(read_key, key);
        assert_eq!(read_data, data);
        kinesis_records.insert(outcome.sequence_number.clone());
    }
    assert!(outcomes.iter().all(|o| o.aggregated));
    assert!(
        kinesis_records.len() <= 16,
        "3000 small records in a few aggregates, not {}",
        kinesis_records.len()
    );
}

#[tokio::test]
async fn a_buffered_record_is_sent_by_the_flush_interval_alone() {
    let riffle = Riffle::start();
    let client = riffle.client();
    let stream = unique_name("kpl-interval");
    create_active(&client, &stream, 1).await;
    let producer = producer(&riffle, &stream, ProducerConfig::default()).await;
    let answer = producer.put("lonely", None, b"nobody flushes me");
    let outcome = tokio::time::timeout(WAIT_MAX, answer)
        .await
        .expect("RecordMaxBufferedTime sends it")
        .expect("written");
    assert!(!outcome.aggregated, "a lone record goes as it is");
    assert_eq!(producer.outstanding(), 0);
    let records = common::records_from_trim_horizon(&client, &stream, &outcome.shard_id).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].data.as_ref(), b"nobody flushes me");
    assert_eq!(records[0].partition_key.as_deref(), Some("lonely"));
}

#[tokio::test]
async fn records_the_shard_throttles_are_retried_until_written() {
    let riffle = Riffle::start_with_args(&["--throughput-limits", "on"]);
    let client = riffle.client();
    let stream = unique_name("kpl-throttled");
    create_active(&client, &stream, 1).await;
    // The producer's own rate limit out of the way: the shard refuses.
    let config = ProducerConfig {
        rate_limit: 1_000_000,
        aggregation_max_size: 100_000,
        ..ProducerConfig::default()
    };
    let producer = producer(&riffle, &stream, config).await;
    // About 2.5 MiB for a shard that takes 1 MiB per second.
    let sent = records(2500, 50, 1000);
    let outcomes = put_all(&producer, &sent).await;
    assert!(
        outcomes.iter().any(|o| o.attempts > 1),
        "some records were throttled and retried"
    );
    let found = read_back_all(&client, &stream).await;
    assert_eq!(found, sent.len(), "every user record written once");
}

/// How many user records the stream holds (reading past one call's limit).
async fn read_back_all(client: &Client, stream: &str) -> usize {
    let mut count = 0;
    for shard in shards(client, stream).await {
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("GetShardIterator")
            .shard_iterator;
        while let Some(current) = iterator {
            let answer = match client
                .get_records()
                .shard_iterator(current.clone())
                .send()
                .await
            {
                Ok(answer) => answer,
                Err(_) => {
                    // Throttled reads (limits are on): the iterator is still good.
                    iterator = Some(current);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            for record in &answer.records {
                count += riffle_kpl::deaggregate(
                    record.data.as_ref(),
                    record.partition_key.as_deref().unwrap_or_default(),
                    None,
                )
                .len();
            }
            let caught_up = answer.records.is_empty() && answer.millis_behind_latest == Some(0);
            iterator = if caught_up {
                None
            } else {
                answer.next_shard_iterator
            };
        }
    }
    count
}

#[tokio::test]
async fn after_a_split_user_records_follow_the_new_shards() {
    let riffle = Riffle::start();
    let client = riffle.client();
    let stream = unique_name("kpl-split");
    create_active(&client, &stream, 1).await;
    let producer = producer(&riffle, &stream, ProducerConfig::default()).await;
    client
        .split_shard()
        .stream_name(&stream)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .expect("SplitShard");
    wait_active(&client, &stream).await;
    // The producer still maps every key to the parent.
    let sent = records(400, 400, 20);
    let outcomes = put_all(&producer, &sent).await;
    let shards = shards(&client, &stream).await;
    for ((key, _), outcome) in sent.iter().zip(&outcomes) {
        let shard = shards
            .iter()
            .find(|s| s.shard_id() == &*outcome.shard_id)
            .unwrap();
        assert!(owns(shard, key), "{key} went to {}", outcome.shard_id);
    }
    assert!(
        outcomes
            .iter()
            .any(|o| &*o.shard_id == "shardId-000000000001")
    );
    assert!(
        outcomes
            .iter()
            .any(|o| &*o.shard_id == "shardId-000000000002")
    );
}

#[tokio::test]
async fn riffle_put_aggregate_is_read_back_by_riffle_tail_as_user_records() {
    let riffle = Riffle::start();
    let client = riffle.client();
    let stream = unique_name("kpl-cli");
    create_active(&client, &stream, 2).await;
    let cli = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_riffle"))
            .args(args)
            .args(["--endpoint", &riffle.endpoint])
            .env_remove("RIFFLE_ENDPOINT")
            .stdin(Stdio::null())
            .output()
            .expect("run riffle");
        assert!(
            output.status.success(),
            "riffle {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8")
    };
    let data = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"];
    let mut args = vec!["put", &stream, "--aggregate"];
    args.extend(data);
    let put = cli(&args);
    let put_lines: Vec<&str> = put.lines().collect();
    assert_eq!(put_lines.len(), data.len(), "{put}");
    let tail = cli(&["tail", &stream, "--from", "trim-horizon", "--count", "6"]);
    // `SHARD SEQUENCE[/SUB] KEY DATA` for each user record.
    let mut tailed: HashMap<String, String> = HashMap::new();
    for line in tail.lines() {
        let fields: Vec<&str> = line.splitn(4, ' ').collect();
        tailed.insert(format!("{} {}", fields[0], fields[1]), fields[3].to_owned());
    }
    assert_eq!(tailed.len(), data.len(), "{tail}");
    for (line, data) in put_lines.iter().zip(data) {
        assert_eq!(
            tailed.get(*line).map(String::as_str),
            Some(data),
            "{line} in {tail}"
        );
    }
    assert!(
        put_lines.iter().any(|l| l.contains('/')),
        "some records share an aggregate: {put}"
    );
}
