//! SubscribeToShard driven through `Kinesis::subscribe_to_shard`, against a
//! real `LogStore` in a temporary directory: what is pushed, when a
//! subscription ends, and AWS's takeover rule.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use riffle_log::{FsyncPolicy, LogStore, StoreConfig};
use serde_json::{Value, json};

use crate::{Codec, Kinesis, KinesisConfig, KinesisError, Subscription};

/// Bounds every wait for an event; a wait this long is a failure.
const EVENT_DEADLINE: Duration = Duration::from_secs(10);

struct Env {
    _dir: tempfile::TempDir,
    kinesis: Arc<Kinesis>,
}

fn env(subscription_ttl: Duration) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        fsync: FsyncPolicy::Never,
        ..StoreConfig::default()
    };
    let store = Arc::new(LogStore::open(dir.path(), config).unwrap());
    let config = KinesisConfig {
        status_delay: Duration::ZERO,
        throughput_limits: false,
        subscription_ttl,
        ..KinesisConfig::default()
    };
    let kinesis = Kinesis::open(store, config).unwrap();
    Env { _dir: dir, kinesis }
}

async fn call(k: &Kinesis, action: &str, body: Value) -> Value {
    let out = k
        .handle(action, Bytes::from(body.to_string()), Codec::Json)
        .await
        .unwrap_or_else(|e| panic!("{action} {body}: {e:?}"));
    if out.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&out).unwrap()
    }
}

/// A one-shard stream `s` with an ACTIVE consumer; returns its ARN.
async fn stream_with_consumer(k: &Kinesis) -> String {
    call(
        k,
        "CreateStream",
        json!({"StreamName": "s", "ShardCount": 1}),
    )
    .await;
    let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
    let out = call(
        k,
        "RegisterStreamConsumer",
        json!({"StreamARN": arn, "ConsumerName": "c"}),
    )
    .await;
    out["Consumer"]["ConsumerARN"].as_str().unwrap().to_owned()
}

async fn subscribe(
    k: &Arc<Kinesis>,
    arn: &str,
    position: Value,
) -> Result<Subscription, KinesisError> {
    let body = json!({"ConsumerARN": arn, "ShardId": "shardId-000000000000", "StartingPosition": position});
    k.subscribe_to_shard(Bytes::from(body.to_string()), Codec::Json)
        .await
}

async fn next(sub: &mut Subscription) -> Option<Result<Value, KinesisError>> {
    let event = tokio::time::timeout(EVENT_DEADLINE, sub.next_event())
        .await
        .expect("an event (or the end) within the deadline")?;
    Some(event.map(|payload| serde_json::from_slice(&payload).unwrap()))
}

async fn put(k: &Kinesis, data: &[u8]) -> String {
    let data = base64_simd::STANDARD.encode_to_string(data);
    let out = call(
        k,
        "PutRecord",
        json!({"StreamName": "s", "PartitionKey": "k", "Data": data}),
    )
    .await;
    out["SequenceNumber"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn records_committed_after_subscribing_are_pushed_in_order() {
    let env = env(Duration::from_secs(300));
    let k = &env.kinesis;
    let arn = stream_with_consumer(k).await;
    let mut sub = subscribe(k, &arn, json!({"Type": "LATEST"})).await.unwrap();
    let first = next(&mut sub).await.unwrap().unwrap();
    assert_eq!(first["Records"], json!([]));
    assert_eq!(first["MillisBehindLatest"], 0);

    let writer = {
        let k = k.clone();
        tokio::spawn(async move {
            let mut numbers = Vec::new();
            for i in 0..20 {
                numbers.push(put(&k, format!("r{i}").as_bytes()).await);
            }
            numbers
        })
    };
    let mut received = Vec::new();
    while received.len() < 20 {
        let event = next(&mut sub).await.unwrap().unwrap();
        for record in event["Records"].as_array().unwrap() {
            received.push(record["SequenceNumber"].as_str().unwrap().to_owned());
        }
        if let Some(last) = received.last() {
            assert_eq!(
                event["ContinuationSequenceNumber"].as_str(),
                Some(last.as_str())
            );
        }
    }
    assert_eq!(received, writer.await.unwrap());
}

#[tokio::test]
async fn a_subscription_ends_cleanly_when_its_time_is_up() {
    let env = env(Duration::from_millis(200));
    let k = &env.kinesis;
    let arn = stream_with_consumer(k).await;
    let mut sub = subscribe(k, &arn, json!({"Type": "TRIM_HORIZON"}))
        .await
        .unwrap();
    assert!(next(&mut sub).await.unwrap().is_ok());
    assert!(next(&mut sub).await.is_none(), "ends without an error");
    assert!(next(&mut sub).await.is_none());
}

#[tokio::test]
async fn a_second_subscription_within_five_seconds_is_refused_and_a_dropped_one_frees_the_shard() {
    let env = env(Duration::from_secs(300));
    let k = &env.kinesis;
    let arn = stream_with_consumer(k).await;
    let sub = subscribe(k, &arn, json!({"Type": "LATEST"})).await.unwrap();
    let refused = subscribe(k, &arn, json!({"Type": "LATEST"})).await;
    assert!(
        matches!(&refused, Err(KinesisError::ResourceInUse(m)) if m.contains(&arn)),
        "{:?}",
        refused.err()
    );
    drop(sub);
    assert!(subscribe(k, &arn, json!({"Type": "LATEST"})).await.is_ok());
}

#[tokio::test]
async fn a_closed_shard_ends_the_subscription_with_its_children() {
    let env = env(Duration::from_secs(300));
    let k = &env.kinesis;
    let arn = stream_with_consumer(k).await;
    put(k, b"before").await;
    let mut sub = subscribe(k, &arn, json!({"Type": "TRIM_HORIZON"}))
        .await
        .unwrap();
    let first = next(&mut sub).await.unwrap().unwrap();
    assert_eq!(first["Records"].as_array().unwrap().len(), 1);
    let middle = (u128::MAX / 2).to_string();
    call(
        k,
        "SplitShard",
        json!({"StreamName": "s", "ShardToSplit": "shardId-000000000000", "NewStartingHashKey": middle}),
    )
    .await;
    let last = loop {
        let event = next(&mut sub).await.unwrap().unwrap();
        if event.get("ChildShards").is_some() {
            break event;
        }
        assert!(event["ContinuationSequenceNumber"].is_string(), "{event}");
    };
    // The end of a shard has nothing to continue from: AWS sends no
    // continuation with the children, and the Java KCL rejects an event
    // with both.
    assert_eq!(last.get("ContinuationSequenceNumber"), None, "{last}");
    let children: Vec<&str> = last["ChildShards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ShardId"].as_str().unwrap())
        .collect();
    assert_eq!(children, ["shardId-000000000001", "shardId-000000000002"]);
    assert!(next(&mut sub).await.is_none());
}

#[tokio::test]
async fn subscribing_needs_an_active_consumer_and_a_valid_position() {
    let env = env(Duration::from_secs(300));
    let k = &env.kinesis;
    let arn = stream_with_consumer(k).await;
    let gone = format!("{arn}1");
    assert!(matches!(
        subscribe(k, &gone, json!({"Type": "LATEST"})).await,
        Err(KinesisError::ResourceNotFound(_))
    ));
    assert!(matches!(
        subscribe(k, &arn, json!({"Type": "SOMEWHERE"})).await,
        Err(KinesisError::Validation(_))
    ));
    assert!(matches!(
        subscribe(k, &arn, json!({"Type": "AT_SEQUENCE_NUMBER"})).await,
        Err(KinesisError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn deleting_a_stream_with_consumers_needs_enforce_and_takes_them_along() {
    let env = env(Duration::from_secs(300));
    let k = &env.kinesis;
    let arn = stream_with_consumer(k).await;
    let refused = k
        .handle(
            "DeleteStream",
            Bytes::from(json!({"StreamName": "s"}).to_string()),
            Codec::Json,
        )
        .await;
    assert!(matches!(refused, Err(KinesisError::ResourceInUse(_))));
    let mut sub = subscribe(k, &arn, json!({"Type": "LATEST"})).await.unwrap();
    assert!(next(&mut sub).await.unwrap().is_ok());
    call(
        k,
        "DeleteStream",
        json!({"StreamName": "s", "EnforceConsumerDeletion": true}),
    )
    .await;
    assert!(matches!(
        next(&mut sub).await,
        Some(Err(KinesisError::ResourceInUse(_)))
    ));
    call(
        k,
        "CreateStream",
        json!({"StreamName": "s", "ShardCount": 1}),
    )
    .await;
    let stream_arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
    let listed = call(k, "ListStreamConsumers", json!({"StreamARN": stream_arn})).await;
    assert_eq!(listed["Consumers"], json!([]));
}

#[tokio::test]
async fn a_subscription_five_seconds_later_takes_over_and_ends_the_first() {
    let env = env(Duration::from_secs(300));
    let k = &env.kinesis;
    let arn = stream_with_consumer(k).await;
    // Only the registry's clock matters here: no I/O waits on it.
    tokio::time::pause();
    let mut first = subscribe(k, &arn, json!({"Type": "LATEST"})).await.unwrap();
    tokio::time::advance(super::subscribe_to_shard::TAKEOVER_AFTER).await;
    let _second = subscribe(k, &arn, json!({"Type": "LATEST"})).await.unwrap();
    let ended = first.next_event().await;
    assert!(
        matches!(&ended, Some(Err(KinesisError::ResourceInUse(m))) if m.contains("taken over")),
        "{ended:?}"
    );
    assert!(first.next_event().await.is_none());
}

#[tokio::test]
async fn every_starting_position_starts_where_get_shard_iterator_would() {
    let env = env(Duration::from_secs(300));
    let k = &env.kinesis;
    let arn = stream_with_consumer(k).await;
    let mut numbers = Vec::new();
    for i in 0..3 {
        numbers.push(put(k, format!("r{i}").as_bytes()).await);
    }
    let cases = [
        (json!({"Type": "TRIM_HORIZON"}), 0),
        (
            json!({"Type": "AT_SEQUENCE_NUMBER", "SequenceNumber": numbers[1]}),
            1,
        ),
        (
            json!({"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": numbers[1]}),
            2,
        ),
        (json!({"Type": "AT_TIMESTAMP", "Timestamp": 0}), 0),
        (json!({"Type": "LATEST"}), 3),
    ];
    for (position, first) in cases {
        let mut sub = subscribe(k, &arn, position.clone()).await.unwrap();
        let event = next(&mut sub).await.unwrap().unwrap();
        let got: Vec<&str> = event["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["SequenceNumber"].as_str().unwrap())
            .collect();
        assert_eq!(got, numbers[first..], "{position}");
        drop(sub);
    }
}

#[tokio::test]
async fn resuming_after_an_empty_events_continuation_loses_no_record() {
    let env = env(Duration::from_secs(300));
    let k = &env.kinesis;
    let arn = stream_with_consumer(k).await;
    let mut sub = subscribe(k, &arn, json!({"Type": "TRIM_HORIZON"}))
        .await
        .unwrap();
    let empty = next(&mut sub).await.unwrap().unwrap();
    assert_eq!(empty["Records"], json!([]));
    let continuation = empty["ContinuationSequenceNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    drop(sub);
    let first = put(k, b"first").await;
    for kind in ["AFTER_SEQUENCE_NUMBER", "AT_SEQUENCE_NUMBER"] {
        let position = json!({"Type": kind, "SequenceNumber": continuation});
        let mut sub = subscribe(k, &arn, position).await.unwrap();
        let event = next(&mut sub).await.unwrap().unwrap();
        assert_eq!(
            event["Records"][0]["SequenceNumber"],
            first.as_str(),
            "{kind}"
        );
        drop(sub);
        let iterator = call(
            k,
            "GetShardIterator",
            json!({"StreamName": "s", "ShardId": "shardId-000000000000",
                   "ShardIteratorType": kind, "StartingSequenceNumber": continuation}),
        )
        .await;
        let records = call(
            k,
            "GetRecords",
            json!({"ShardIterator": iterator["ShardIterator"]}),
        )
        .await;
        assert_eq!(
            records["Records"][0]["SequenceNumber"],
            first.as_str(),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn subscribe_to_shard_reads_shard_ids_as_get_shard_iterator_does() {
    let env = env(Duration::from_secs(300));
    let k = &env.kinesis;
    let arn = stream_with_consumer(k).await;
    let at = |shard: &str| {
        let body =
            json!({"ConsumerARN": arn, "ShardId": shard, "StartingPosition": {"Type": "LATEST"}});
        k.subscribe_to_shard(Bytes::from(body.to_string()), Codec::Json)
    };
    // A loose form names shard 0; a shard that does not exist is named in
    // its normal form, text that names no shard as given.
    drop(at("x-0").await.unwrap());
    let missing =
        |id: &str| format!("Shard {id} in stream s under account 000000000000 does not exist");
    match at("shardId-5").await {
        Err(KinesisError::ResourceNotFound(m)) => assert_eq!(m, missing("shardId-000000000005")),
        other => panic!("{:?}", other.err()),
    }
    match at("2147483648").await {
        Err(KinesisError::ResourceNotFound(m)) => assert_eq!(m, missing("2147483648")),
        other => panic!("{:?}", other.err()),
    }
}

/// The `/metrics` lines of `name`'s series.
fn series(k: &Kinesis, name: &str) -> Vec<String> {
    let mut out = String::new();
    k.write_metrics(&mut out);
    out.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .map(str::to_owned)
        .collect()
}

/// The value of the consumer series of consumer `c` of stream `s`.
fn consumer_behind(k: &Kinesis) -> Option<i64> {
    let lines = series(k, "riffle_kinesis_consumer_millis_behind_latest");
    assert!(lines.len() <= 1, "{lines:?}");
    let line = lines.first()?;
    let (labels, value) = line.rsplit_once(' ').unwrap();
    assert!(labels.ends_with(r#"{stream="s",consumer="c"}"#), "{line}");
    Some(value.parse().unwrap())
}

/// Puts `count` records to stream `s` with PutRecords, 500 a call.
async fn put_many(k: &Kinesis, count: usize) {
    for start in (0..count).step_by(500) {
        let records: Vec<Value> = (start..count.min(start + 500))
            .map(|i| json!({"PartitionKey": "k", "Data": base64_simd::STANDARD.encode_to_string(i.to_string())}))
            .collect();
        call(
            k,
            "PutRecords",
            json!({"StreamName": "s", "Records": records}),
        )
        .await;
    }
}

#[tokio::test]
async fn a_consumers_millis_behind_latest_is_its_own_series_apart_from_the_polling_age() {
    let env = env(Duration::from_secs(300));
    let k = &env.kinesis;
    let arn = stream_with_consumer(k).await;
    assert_eq!(consumer_behind(k), None, "no subscription, no sample");
    // More than one event's worth, so the first event is behind the tip.
    put_many(k, super::get_records::RECORDS_MAX + 1).await;
    // The records' age is what the first event reports behind.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut sub = subscribe(k, &arn, json!({"Type": "TRIM_HORIZON"}))
        .await
        .unwrap();
    let first = next(&mut sub).await.unwrap().unwrap();
    let behind = first["MillisBehindLatest"].as_i64().unwrap();
    assert!(behind >= 20, "{first:?}");
    assert_eq!(consumer_behind(k), Some(behind));
    // GetRecords.IteratorAgeMilliseconds is the polling readers' alone.
    assert_eq!(
        series(k, "riffle_kinesis_iterator_age_milliseconds"),
        [r#"riffle_kinesis_iterator_age_milliseconds{stream="s"} 0"#]
    );
    let caught_up = next(&mut sub).await.unwrap().unwrap();
    assert_eq!(caught_up["MillisBehindLatest"], 0);
    assert_eq!(consumer_behind(k), Some(0));
    // A subscription that ends takes its reading along.
    drop(sub);
    assert_eq!(consumer_behind(k), None);
}

#[tokio::test]
async fn a_consumers_series_goes_when_it_is_deregistered_or_its_stream_deleted() {
    let env = env(Duration::from_secs(300));
    let k = &env.kinesis;
    let arn = stream_with_consumer(k).await;
    let mut sub = subscribe(k, &arn, json!({"Type": "LATEST"})).await.unwrap();
    assert!(next(&mut sub).await.unwrap().is_ok());
    assert_eq!(consumer_behind(k), Some(0));
    call(k, "DeregisterStreamConsumer", json!({"ConsumerARN": arn})).await;
    assert_eq!(
        consumer_behind(k),
        None,
        "gone before the subscription ends"
    );
    assert!(matches!(
        next(&mut sub).await,
        Some(Err(KinesisError::ResourceInUse(_)))
    ));
    drop(sub);

    let stream_arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
    let again = call(
        k,
        "RegisterStreamConsumer",
        json!({"StreamARN": stream_arn, "ConsumerName": "c"}),
    )
    .await;
    let arn = again["Consumer"]["ConsumerARN"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut sub = subscribe(k, &arn, json!({"Type": "LATEST"})).await.unwrap();
    assert!(next(&mut sub).await.unwrap().is_ok());
    assert_eq!(consumer_behind(k), Some(0));
    call(
        k,
        "DeleteStream",
        json!({"StreamName": "s", "EnforceConsumerDeletion": true}),
    )
    .await;
    assert_eq!(consumer_behind(k), None);
}
