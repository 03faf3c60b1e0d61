//! Enhanced fan-out through the official AWS SDK for Rust: a consumer is
//! registered, SubscribeToShard's event stream is decoded by the SDK's own
//! event-stream reader, and records put after subscribing arrive in order.
//! The put-to-receive latency (fsync=always) is printed; run with
//! `--nocapture` to see it.

mod common;

use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    ShardIteratorType, StartingPosition, SubscribeToShardEvent, SubscribeToShardEventStream,
};
use common::{Riffle, create_active, error_of, register_active, unique_name, wait_active};

/// Bounds every wait for an event; reaching it fails the test.
const EVENT_TIME_MAX: Duration = Duration::from_secs(10);
/// Records put one at a time, each awaited on the subscription.
const LATENCY_SAMPLES: usize = 200;

type Events = aws_sdk_kinesis::primitives::event_stream::EventReceiver<
    SubscribeToShardEventStream,
    aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError,
>;

async fn next_event(events: &mut Events) -> SubscribeToShardEvent {
    let received = tokio::time::timeout(EVENT_TIME_MAX, events.recv())
        .await
        .expect("an event within the deadline");
    match received {
        Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(event))) => event,
        other => panic!("expected a SubscribeToShardEvent, got {other:?}"),
    }
}

async fn subscribe(client: &Client, arn: &str, kind: ShardIteratorType) -> Events {
    let position = StartingPosition::builder().r#type(kind).build().unwrap();
    client
        .subscribe_to_shard()
        .consumer_arn(arn)
        .shard_id("shardId-000000000000")
        .starting_position(position)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SubscribeToShard: {e:?}"))
        .event_stream
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

#[tokio::test]
async fn subscribe_to_shard_pushes_records_put_after_subscribing() {
    let riffle = Riffle::start_with_args(&["--fsync", "always"]);
    let client = riffle.client();
    let stream = unique_name("efo");
    create_active(&client, &stream, 1).await;
    let arn = register_active(&client, &stream, "rust-sdk").await;
    let mut events = subscribe(&client, &arn, ShardIteratorType::Latest).await;
    let first = next_event(&mut events).await;
    assert!(first.records().is_empty());

    // From the put's start (its commit and fsync included) and from its
    // return (the push alone) to the event's arrival.
    let mut from_start = Vec::with_capacity(LATENCY_SAMPLES);
    let mut from_return = Vec::with_capacity(LATENCY_SAMPLES);
    for i in 0..LATENCY_SAMPLES {
        let data = format!("record {i}");
        let started = Instant::now();
        let put = client
            .put_record()
            .stream_name(&stream)
            .partition_key("k")
            .data(Blob::new(data.as_bytes()))
            .send()
            .await
            .unwrap();
        let put_returned = Instant::now();
        let event = loop {
            let event = next_event(&mut events).await;
            if !event.records().is_empty() {
                break event;
            }
            assert!(
                started.elapsed() < EVENT_TIME_MAX,
                "record {i} never pushed"
            );
        };
        from_start.push(started.elapsed());
        from_return.push(put_returned.elapsed());
        let records = event.records();
        assert_eq!(records.len(), 1, "one record per put, pushed at once");
        assert_eq!(records[0].data().as_ref(), data.as_bytes());
        assert_eq!(records[0].sequence_number(), put.sequence_number());
        assert_eq!(event.continuation_sequence_number(), put.sequence_number());
    }
    for (what, mut latencies) in [
        ("put-start-to-receive", from_start),
        ("put-return-to-receive", from_return),
    ] {
        latencies.sort();
        println!(
            "Rust SDK SubscribeToShard, fsync=always, {what} over {LATENCY_SAMPLES} records: \
             p50 {:?}, p99 {:?}, max {:?}",
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            latencies[latencies.len() - 1]
        );
    }
}

#[tokio::test]
async fn subscribe_to_shard_errors_before_the_stream_are_aws_errors() {
    let riffle = Riffle::start();
    let client = riffle.client();
    let stream = unique_name("efo-errors");
    create_active(&client, &stream, 1).await;
    let arn = register_active(&client, &stream, "twice").await;
    let _events = subscribe(&client, &arn, ShardIteratorType::TrimHorizon).await;
    let position = StartingPosition::builder()
        .r#type(ShardIteratorType::Latest)
        .build()
        .unwrap();
    let err = client
        .subscribe_to_shard()
        .consumer_arn(&arn)
        .shard_id("shardId-000000000000")
        .starting_position(position)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_of(&err).0, "ResourceInUseException");
}

#[tokio::test]
async fn deregistering_the_consumer_ends_the_stream_with_a_modeled_exception() {
    let riffle = Riffle::start();
    let client = riffle.client();
    let stream = unique_name("efo-deregister");
    create_active(&client, &stream, 1).await;
    let arn = register_active(&client, &stream, "leaving").await;
    let mut events = subscribe(&client, &arn, ShardIteratorType::Latest).await;
    next_event(&mut events).await;
    client
        .deregister_stream_consumer()
        .consumer_arn(&arn)
        .send()
        .await
        .unwrap();
    let ended = tokio::time::timeout(EVENT_TIME_MAX, events.recv())
        .await
        .expect("the stream ends within the deadline");
    let err = ended.expect_err("an exception message, not an event");
    let service = err.into_service_error();
    assert!(
        service.is_resource_in_use_exception(),
        "decoded as the model's ResourceInUseException: {service:?}"
    );
}

#[tokio::test]
async fn sigterm_ends_open_subscriptions_and_the_server_exits_cleanly() {
    let mut riffle = Riffle::start();
    let client = riffle.client();
    let stream = unique_name("efo-shutdown");
    create_active(&client, &stream, 1).await;
    let arn = register_active(&client, &stream, "staying").await;
    let mut events = subscribe(&client, &arn, ShardIteratorType::Latest).await;
    next_event(&mut events).await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || riffle.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    // Not the 5 minutes of the subscription, nor the 30 s shutdown grace.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let ended = tokio::time::timeout(EVENT_TIME_MAX, events.recv())
        .await
        .expect("the stream ends within the deadline");
    assert!(
        !matches!(ended, Ok(Some(_))),
        "no more events after shutdown: {ended:?}"
    );
}

/// The Java KCL's rule for a SubscribeToShardEvent (`FanOutRecordsPublisher`
/// rejects any other event and subscribes again): it carries a
/// continuation sequence number or, at a closed shard's end, child shards;
/// never both, never neither. The Rust SDK reads an absent continuation as
/// an empty string.
fn assert_kcl_accepts(shard: &str, event: &SubscribeToShardEvent) {
    let continues = !event.continuation_sequence_number().is_empty();
    let ends = !event.child_shards().is_empty();
    assert!(
        continues != ends,
        "{shard}: the KCL rejects an event with {}: {event:?}",
        if continues {
            "both a continuation and child shards"
        } else {
            "neither a continuation nor child shards"
        }
    );
}

/// Reads `shard` through one subscription from its trim horizon, checking
/// every event as the KCL does, until its end (returns its children) or,
/// for an open shard, until `wanted` records arrived (`None` for a closed
/// shard). Returns the data of the records read.
async fn read_shard(
    client: &Client,
    consumer: &str,
    shard: &str,
    wanted: Option<usize>,
) -> (Vec<String>, Vec<String>) {
    let position = StartingPosition::builder()
        .r#type(ShardIteratorType::TrimHorizon)
        .build()
        .unwrap();
    let mut events = client
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id(shard)
        .starting_position(position)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SubscribeToShard {shard}: {e:?}"))
        .event_stream;
    let mut data = Vec::new();
    loop {
        let event = next_event(&mut events).await;
        assert_kcl_accepts(shard, &event);
        for record in event.records() {
            data.push(String::from_utf8(record.data().as_ref().to_vec()).unwrap());
        }
        if !event.child_shards().is_empty() {
            let children = event.child_shards().iter().map(|c| c.shard_id().to_owned());
            let ended = tokio::time::timeout(EVENT_TIME_MAX, events.recv()).await;
            assert!(
                matches!(ended, Ok(Ok(None))),
                "{shard}: the subscription ends after the shard's last event: {ended:?}"
            );
            return (data, children.collect());
        }
        if wanted.is_some_and(|wanted| data.len() >= wanted) {
            return (data, Vec::new());
        }
    }
}

async fn put_all(client: &Client, stream: &str, prefix: &str, count: usize) -> Vec<String> {
    let mut data = Vec::new();
    for i in 0..count {
        let text = format!("{prefix}-{i}");
        client
            .put_record()
            .stream_name(stream)
            .partition_key(format!("key-{i}"))
            .data(Blob::new(text.as_bytes()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutRecord {text}: {e:?}"));
        data.push(text);
    }
    data
}

#[tokio::test]
async fn a_kcl_style_reader_follows_a_split_and_a_merge_to_every_record() {
    let riffle = Riffle::start();
    let client = riffle.client();
    let stream = unique_name("efo-lineage");
    create_active(&client, &stream, 1).await;
    let consumer = register_active(&client, &stream, "kcl").await;
    let mut written = put_all(&client, &stream, "before-split", 5).await;
    client
        .split_shard()
        .stream_name(&stream)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((u128::MAX / 2 + 1).to_string())
        .send()
        .await
        .unwrap();
    wait_active(&client, &stream).await;
    written.extend(put_all(&client, &stream, "after-split", 20).await);
    client
        .merge_shards()
        .stream_name(&stream)
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await
        .unwrap();
    wait_active(&client, &stream).await;
    let after_merge = put_all(&client, &stream, "after-merge", 5).await;
    written.extend(after_merge.iter().cloned());

    // As the KCL does: a shard is read once all its parents are done.
    let (mut read, children) = read_shard(&client, &consumer, "shardId-000000000000", None).await;
    assert_eq!(children, ["shardId-000000000001", "shardId-000000000002"]);
    let mut merged_into = Vec::new();
    for child in &children {
        let (records, grandchildren) = read_shard(&client, &consumer, child, None).await;
        read.extend(records);
        merged_into.extend(grandchildren);
    }
    assert_eq!(merged_into, ["shardId-000000000003"; 2]);
    let (records, none) = read_shard(
        &client,
        &consumer,
        "shardId-000000000003",
        Some(after_merge.len()),
    )
    .await;
    assert!(none.is_empty(), "the merged shard is open");
    read.extend(records);
    read.sort();
    written.sort();
    assert_eq!(
        read, written,
        "every record once, across the split and the merge"
    );
}
