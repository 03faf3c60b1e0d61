//! The data plane through the official AWS SDK for Rust: PutRecord and
//! PutRecords (routing by MD5, results in request order), GetShardIterator
//! with all five iterator types, GetRecords (Limit, NextShardIterator,
//! MillisBehindLatest) and the iterator errors.

mod common;

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::{Blob, DateTime};
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, Record, ShardIteratorType};
use common::{Riffle, create_active, error_of, eventually, hash_key_of, unique_name};

fn shared() -> &'static Riffle {
    static SERVER: OnceLock<Riffle> = OnceLock::new();
    SERVER.get_or_init(Riffle::start)
}

/// Compares two decimal sequence numbers (up to 56 digits: beyond u128).
fn seq_cmp(a: &str, b: &str) -> Ordering {
    assert!(
        a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()),
        "{a} {b}"
    );
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Each shard's id and inclusive hash key range.
async fn shard_ranges(client: &Client, name: &str) -> Vec<(String, u128, u128)> {
    let out = client.list_shards().stream_name(name).send().await.unwrap();
    out.shards()
        .iter()
        .map(|s| {
            let range = s.hash_key_range().unwrap();
            (
                s.shard_id().to_owned(),
                range.starting_hash_key().parse().unwrap(),
                range.ending_hash_key().parse().unwrap(),
            )
        })
        .collect()
}

fn shard_for(ranges: &[(String, u128, u128)], hash: u128) -> &str {
    ranges
        .iter()
        .find(|(_, start, end)| (*start..=*end).contains(&hash))
        .map(|(id, _, _)| id.as_str())
        .expect("the ranges cover the hash key space")
}

async fn iterator(
    client: &Client,
    name: &str,
    shard: &str,
    kind: ShardIteratorType,
    seq: Option<&str>,
    at: Option<DateTime>,
) -> String {
    client
        .get_shard_iterator()
        .stream_name(name)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_starting_sequence_number(seq.map(str::to_owned))
        .set_timestamp(at)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .expect("an open shard gives an iterator")
        .to_owned()
}

/// Reads from `iterator` until `count` records arrived (failing after a
/// deadline), then checks that nothing more comes.
async fn read_exactly(client: &Client, mut iterator: String, count: usize) -> Vec<Record> {
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while records.len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of {count} records arrived",
            records.len()
        );
        let out = client
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .unwrap();
        records.extend(out.records().iter().cloned());
        iterator = out.next_shard_iterator().expect("open shard").to_owned();
    }
    let rest = client
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.records().len(), 0, "more records than expected");
    assert_eq!(rest.millis_behind_latest(), Some(0));
    records
}

/// Milliseconds since the epoch, rounded. The SDK parses AWS's epoch
/// seconds (`1795432419.757`) through an f64, so `to_millis` can truncate
/// to the millisecond before.
fn millis_of(time: &DateTime) -> i64 {
    (time.as_secs_f64() * 1000.0).round() as i64
}

fn data_of(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.data().as_ref().to_vec()).unwrap())
        .collect()
}

#[tokio::test]
async fn put_record_routes_by_the_md5_of_the_partition_key() {
    let client = shared().client();
    let name = unique_name("route");
    create_active(&client, &name, 4).await;
    let ranges = shard_ranges(&client, &name).await;

    let mut per_shard: HashMap<String, usize> = HashMap::new();
    for i in 0..40 {
        let key = format!("user-{i}");
        let out = client
            .put_record()
            .stream_name(&name)
            .partition_key(&key)
            .data(Blob::new(format!("payload-{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.shard_id(),
            shard_for(&ranges, hash_key_of(&key)),
            "{key}"
        );
        *per_shard.entry(out.shard_id().to_owned()).or_default() += 1;
    }
    assert!(
        per_shard.len() > 1,
        "40 keys all landed on one shard: {per_shard:?}"
    );

    // An explicit hash key overrides the partition key.
    for (hash, shard) in [
        ("0", "shardId-000000000000"),
        (
            "85070591730234615865843651857942052864",
            "shardId-000000000001",
        ),
        (
            "340282366920938463463374607431768211455",
            "shardId-000000000003",
        ),
    ] {
        let out = client
            .put_record()
            .stream_name(&name)
            .partition_key("ignored-for-routing")
            .explicit_hash_key(hash)
            .data(Blob::new("x"))
            .send()
            .await
            .unwrap();
        assert_eq!(out.shard_id(), shard, "ExplicitHashKey {hash}");
    }
}

#[tokio::test]
async fn put_records_returns_results_in_request_order_and_records_read_back_in_order() {
    let client = shared().client();
    let name = unique_name("batch");
    create_active(&client, &name, 3).await;
    let ranges = shard_ranges(&client, &name).await;

    let keys: Vec<String> = (0..60).map(|i| format!("key-{}", i % 17)).collect();
    let entries: Vec<PutRecordsRequestEntry> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            PutRecordsRequestEntry::builder()
                .partition_key(key)
                .data(Blob::new(format!("record-{i}")))
                .build()
                .unwrap()
        })
        .collect();
    let out = client
        .put_records()
        .stream_name(&name)
        .set_records(Some(entries))
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_record_count(), Some(0));
    assert_eq!(out.records().len(), keys.len());

    // Per shard: the request's order, with increasing sequence numbers.
    let mut expected: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (i, (result, key)) in out.records().iter().zip(&keys).enumerate() {
        assert_eq!(result.error_code(), None);
        let shard = result.shard_id().unwrap();
        assert_eq!(shard, shard_for(&ranges, hash_key_of(key)), "record {i}");
        let seq = result.sequence_number().unwrap().to_owned();
        let list = expected.entry(shard.to_owned()).or_default();
        if let Some((previous, _)) = list.last() {
            assert_eq!(seq_cmp(previous, &seq), Ordering::Less, "record {i}");
        }
        list.push((seq, format!("record-{i}")));
    }
    for (shard, wanted) in &expected {
        let it = iterator(
            &client,
            &name,
            shard,
            ShardIteratorType::TrimHorizon,
            None,
            None,
        )
        .await;
        let records = read_exactly(&client, it, wanted.len()).await;
        let got: Vec<(String, String)> = records
            .iter()
            .map(|r| r.sequence_number().to_owned())
            .zip(data_of(&records))
            .collect();
        assert_eq!(&got, wanted, "{shard}");
        for record in &records {
            let key = record.partition_key().unwrap();
            assert_eq!(shard_for(&ranges, hash_key_of(key)), shard);
            assert!(record.approximate_arrival_timestamp().is_some());
        }
    }
}

#[tokio::test]
async fn binary_data_and_empty_records_round_trip_unchanged() {
    let client = shared().client();
    let name = unique_name("binary");
    create_active(&client, &name, 1).await;
    let all_bytes: Vec<u8> = (0..=255).collect();
    let big = vec![0xA5; 1024 * 1024]; // 1 MiB, the AWS default record limit
    for data in [all_bytes.clone(), Vec::new(), big.clone()] {
        client
            .put_record()
            .stream_name(&name)
            .partition_key("p")
            .data(Blob::new(data))
            .send()
            .await
            .unwrap();
    }
    let it = iterator(
        &client,
        &name,
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
        None,
        None,
    )
    .await;
    let records = read_exactly(&client, it, 3).await;
    assert_eq!(records[0].data().as_ref(), &all_bytes[..]);
    assert_eq!(records[1].data().as_ref(), b"");
    assert_eq!(records[2].data().as_ref(), &big[..]);
}

#[tokio::test]
async fn all_five_iterator_types_start_where_aws_starts_them() {
    let client = shared().client();
    let name = unique_name("iterators");
    create_active(&client, &name, 1).await;
    let shard = "shardId-000000000000";

    let latest_before =
        iterator(&client, &name, shard, ShardIteratorType::Latest, None, None).await;
    let mut seqs = Vec::new();
    let mut arrivals = Vec::new();
    for i in 0..5 {
        let out = client
            .put_record()
            .stream_name(&name)
            .partition_key("p")
            .data(Blob::new(format!("r{i}")))
            .send()
            .await
            .unwrap();
        seqs.push(out.sequence_number().to_owned());
    }
    let trim = iterator(
        &client,
        &name,
        shard,
        ShardIteratorType::TrimHorizon,
        None,
        None,
    )
    .await;
    let all = read_exactly(&client, trim, 5).await;
    assert_eq!(data_of(&all), ["r0", "r1", "r2", "r3", "r4"]);
    for record in &all {
        arrivals.push(*record.approximate_arrival_timestamp().unwrap());
    }
    let got: Vec<&str> = all.iter().map(|r| r.sequence_number()).collect();
    assert_eq!(got, seqs);

    // LATEST taken before the writes sees them all; one taken now sees
    // only what comes next.
    let from_before = read_exactly(&client, latest_before, 5).await;
    assert_eq!(data_of(&from_before), ["r0", "r1", "r2", "r3", "r4"]);
    let latest_now = iterator(&client, &name, shard, ShardIteratorType::Latest, None, None).await;
    // r5 must arrive in a later millisecond than r4, so that AT_TIMESTAMP
    // can tell them apart below.
    let r4_ms = millis_of(&arrivals[4]);
    eventually(
        Duration::from_secs(5),
        "the clock to pass r4's arrival",
        move || async move {
            (DateTime::from(std::time::SystemTime::now())
                .to_millis()
                .unwrap()
                > r4_ms + 1)
                .then_some(())
        },
    )
    .await;
    client
        .put_record()
        .stream_name(&name)
        .partition_key("p")
        .data(Blob::new("r5"))
        .send()
        .await
        .unwrap();
    assert_eq!(data_of(&read_exactly(&client, latest_now, 1).await), ["r5"]);

    let at = iterator(
        &client,
        &name,
        shard,
        ShardIteratorType::AtSequenceNumber,
        Some(&seqs[2]),
        None,
    )
    .await;
    assert_eq!(
        data_of(&read_exactly(&client, at, 4).await),
        ["r2", "r3", "r4", "r5"]
    );
    let after = iterator(
        &client,
        &name,
        shard,
        ShardIteratorType::AfterSequenceNumber,
        Some(&seqs[2]),
        None,
    )
    .await;
    assert_eq!(
        data_of(&read_exactly(&client, after, 3).await),
        ["r3", "r4", "r5"]
    );

    // AT_TIMESTAMP: the first record that arrived at or after the time.
    let hour_ago = DateTime::from_secs(arrivals[0].secs() - 3600);
    let ts = iterator(
        &client,
        &name,
        shard,
        ShardIteratorType::AtTimestamp,
        None,
        Some(hour_ago),
    )
    .await;
    assert_eq!(read_exactly(&client, ts, 6).await.len(), 6);
    let ts = iterator(
        &client,
        &name,
        shard,
        ShardIteratorType::AtTimestamp,
        None,
        Some(arrivals[0]),
    )
    .await;
    assert_eq!(read_exactly(&client, ts, 6).await.len(), 6);
    let after_r4 = DateTime::from_millis(r4_ms + 1);
    let ts = iterator(
        &client,
        &name,
        shard,
        ShardIteratorType::AtTimestamp,
        None,
        Some(after_r4),
    )
    .await;
    assert_eq!(data_of(&read_exactly(&client, ts, 1).await), ["r5"]);

    // A timestamp in the future is refused, as AWS refuses it.
    let future = DateTime::from_secs(arrivals[4].secs() + 3600);
    let err = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::AtTimestamp)
        .timestamp(future)
        .send()
        .await
        .unwrap_err();
    let (code, message) = error_of(&err);
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.starts_with(
            "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis."
        ),
        "{message}"
    );
}

#[tokio::test]
async fn get_records_honours_limit_and_reports_how_far_behind_the_reader_is() {
    let client = shared().client();
    let name = unique_name("limit");
    create_active(&client, &name, 1).await;
    let put = |data: &'static str| {
        client
            .put_record()
            .stream_name(&name)
            .partition_key("p")
            .data(Blob::new(data))
            .send()
    };
    put("first").await.unwrap();
    // Let the first record age, so a reader positioned on it is measurably
    // behind the tip. A fixed pause is the point here, not a hope.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for data in ["second", "third", "fourth"] {
        put(data).await.unwrap();
    }

    let it = iterator(
        &client,
        &name,
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
        None,
        None,
    )
    .await;
    let page = client
        .get_records()
        .shard_iterator(&it)
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(data_of(page.records()), ["first"]);
    let behind = page
        .millis_behind_latest()
        .expect("MillisBehindLatest is always sent");
    assert!(behind >= 100, "a reader 200 ms behind reports {behind} ms");
    let page = client
        .get_records()
        .shard_iterator(page.next_shard_iterator().unwrap())
        .limit(2)
        .send()
        .await
        .unwrap();
    assert_eq!(data_of(page.records()), ["second", "third"]);
    let rest = read_exactly(&client, page.next_shard_iterator().unwrap().to_owned(), 1).await;
    assert_eq!(data_of(&rest), ["fourth"]);

    for (limit, constraint) in [
        (0, "Member must have value greater than or equal to 1"),
        (10_001, "Member must have value less than or equal to 10000"),
    ] {
        let err = client
            .get_records()
            .shard_iterator(&it)
            .limit(limit)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            error_of(&err),
            (
                "ValidationException".into(),
                format!(
                    "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy \
                     constraint: {constraint}"
                )
            )
        );
    }
}

#[tokio::test]
async fn sequence_numbers_increase_across_calls_and_shards_report_their_own() {
    let client = shared().client();
    let name = unique_name("seq");
    create_active(&client, &name, 2).await;
    let mut last: HashMap<String, String> = HashMap::new();
    for i in 0..30 {
        let out = client
            .put_record()
            .stream_name(&name)
            .partition_key(format!("k{i}"))
            .data(Blob::new("x"))
            .send()
            .await
            .unwrap();
        let seq = out.sequence_number().to_owned();
        if let Some(previous) = last.insert(out.shard_id().to_owned(), seq.clone()) {
            assert_eq!(seq_cmp(&previous, &seq), Ordering::Less);
        }
    }
    // SequenceNumberForOrdering: a record is ordered after the named one.
    let first = client
        .put_record()
        .stream_name(&name)
        .partition_key("ordered")
        .data(Blob::new("a"))
        .send()
        .await
        .unwrap();
    let second = client
        .put_record()
        .stream_name(&name)
        .partition_key("ordered")
        .data(Blob::new("b"))
        .sequence_number_for_ordering(first.sequence_number())
        .send()
        .await
        .unwrap();
    assert_eq!(first.shard_id(), second.shard_id());
    assert_eq!(
        seq_cmp(first.sequence_number(), second.sequence_number()),
        Ordering::Less
    );
}

#[tokio::test]
async fn a_forged_or_tampered_iterator_is_an_invalid_argument() {
    let client = shared().client();
    let name = unique_name("forged");
    create_active(&client, &name, 1).await;
    let real = iterator(
        &client,
        &name,
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
        None,
        None,
    )
    .await;

    // Same length, one character changed in the middle.
    let mut tampered = real.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for forged in [
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "not base64 at all!",
        &tampered,
    ] {
        let err = client
            .get_records()
            .shard_iterator(forged)
            .send()
            .await
            .unwrap_err();
        let (code, message) = error_of(&err);
        assert_eq!(code, "InvalidArgumentException", "{forged}: {message}");
        assert!(!message.is_empty());
    }
    // And the server is fine: the real iterator still works.
    client
        .get_records()
        .shard_iterator(&real)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn get_shard_iterator_errors_name_what_is_wrong() {
    let client = shared().client();
    let name = unique_name("iterator-errors");
    create_active(&client, &name, 1).await;

    let err = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id("shardId-000000000009")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_of(&err).0, "ResourceNotFoundException", "{err:?}");

    // AT_SEQUENCE_NUMBER without a sequence number.
    let err = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_of(&err).0, "InvalidArgumentException", "{err:?}");

    // A sequence number that is not a number.
    let err = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
        .starting_sequence_number("12x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_of(&err).0, "ValidationException", "{err:?}");
}

#[tokio::test]
async fn put_records_refuses_more_than_500_records() {
    let client = shared().client();
    let name = unique_name("too-many");
    create_active(&client, &name, 1).await;
    let entries: Vec<PutRecordsRequestEntry> = (0..501)
        .map(|_| {
            PutRecordsRequestEntry::builder()
                .partition_key("p")
                .data(Blob::new("x"))
                .build()
                .unwrap()
        })
        .collect();
    let err = client
        .put_records()
        .stream_name(&name)
        .set_records(Some(entries))
        .send()
        .await
        .unwrap_err();
    let (code, message) = error_of(&err);
    assert_eq!(code, "ValidationException");
    assert!(
        message.starts_with("1 validation error detected: Value '"),
        "{message}"
    );
    assert!(
        message.ends_with(
            "' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn a_partition_key_longer_than_256_characters_is_refused() {
    let client = shared().client();
    let name = unique_name("long-key");
    create_active(&client, &name, 1).await;
    let key = "k".repeat(257);
    let err = client
        .put_record()
        .stream_name(&name)
        .partition_key(&key)
        .data(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_of(&err),
        (
            "ValidationException".into(),
            format!(
                "1 validation error detected: Value '{key}' at 'partitionKey' failed to satisfy \
                 constraint: Member must have length less than or equal to 256"
            )
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_each_land_once_in_one_order_per_shard() {
    let client = shared().client();
    let name = unique_name("concurrent");
    create_active(&client, &name, 2).await;
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (client, name) = (client.clone(), name.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..40 {
                    let data = format!("w{w}-{i}");
                    let out = client
                        .put_record()
                        .stream_name(&name)
                        .partition_key(format!("{w}/{i}"))
                        .data(Blob::new(data.clone()))
                        .send()
                        .await
                        .unwrap();
                    acked.push((
                        out.shard_id().to_owned(),
                        out.sequence_number().to_owned(),
                        data,
                    ));
                }
                acked
            })
        })
        .collect();
    let mut acked: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for writer in writers {
        for (shard, seq, data) in writer.await.unwrap() {
            acked.entry(shard).or_default().push((seq, data));
        }
    }
    assert_eq!(acked.values().map(Vec::len).sum::<usize>(), 320);
    for (shard, mut wanted) in acked {
        // The log's order is the sequence numbers' order.
        wanted.sort_by(|a, b| seq_cmp(&a.0, &b.0));
        let it = iterator(
            &client,
            &name,
            &shard,
            ShardIteratorType::TrimHorizon,
            None,
            None,
        )
        .await;
        let records = read_exactly(&client, it, wanted.len()).await;
        let got: Vec<(String, String)> = records
            .iter()
            .map(|r| r.sequence_number().to_owned())
            .zip(data_of(&records))
            .collect();
        assert_eq!(got, wanted, "{shard}");
    }
}

#[tokio::test]
async fn get_records_returns_at_most_10_mib_per_call() {
    let client = shared().client();
    let name = unique_name("ten-mib");
    create_active(&client, &name, 1).await;
    let record = vec![7u8; 1024 * 1024 - 10]; // just under the 1 MiB record limit
    for _ in 0..12 {
        client
            .put_record()
            .stream_name(&name)
            .partition_key("p")
            .data(Blob::new(record.clone()))
            .send()
            .await
            .unwrap();
    }
    let mut it = iterator(
        &client,
        &name,
        "shardId-000000000000",
        ShardIteratorType::TrimHorizon,
        None,
        None,
    )
    .await;
    let mut pages = Vec::new();
    let mut total = 0;
    while total < 12 {
        assert!(pages.len() < 20, "no progress: {pages:?}");
        let out = client
            .get_records()
            .shard_iterator(&it)
            .send()
            .await
            .unwrap();
        let bytes: usize = out
            .records()
            .iter()
            .map(|r| r.data().as_ref().len() + r.partition_key().map_or(0, str::len))
            .sum();
        assert!(bytes <= 10 * 1024 * 1024, "{bytes} bytes in one response");
        total += out.records().len();
        pages.push(out.records().len());
        it = out.next_shard_iterator().unwrap().to_owned();
    }
    assert_eq!(total, 12);
    assert!(
        pages.len() >= 2,
        "12 MiB came back in one response: {pages:?}"
    );
}

#[tokio::test]
async fn a_record_over_1_mib_is_a_validation_exception() {
    let client = shared().client();
    let name = unique_name("too-big");
    create_active(&client, &name, 1).await;
    let err = client
        .put_record()
        .stream_name(&name)
        .partition_key("p")
        .data(Blob::new(vec![0u8; 1024 * 1024 + 1]))
        .send()
        .await
        .unwrap_err();
    let (code, message) = error_of(&err);
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 \
         cap=1048577]' at 'data' failed to satisfy constraint: Member must have length less \
         than or equal to 1048576"
    );
}
