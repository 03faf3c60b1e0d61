//! The stream control plane through the official AWS SDK for Rust:
//! CreateStream, DeleteStream, DescribeStream, DescribeStreamSummary,
//! ListStreams, ListShards and DescribeLimits, their pagination, and the
//! errors AWS answers them with.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_kinesis::types::{
    ShardFilter, ShardFilterType, StreamMode, StreamModeDetails, StreamStatus,
};
use common::{Riffle, create_active, error_of, eventually, unique_name, wait_active};

/// One server for the tests that only touch their own streams.
fn shared() -> &'static Riffle {
    static SERVER: OnceLock<Riffle> = OnceLock::new();
    SERVER.get_or_init(Riffle::start)
}

fn arn_of(name: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}")
}

/// AWS splits the hash key space 0..2^128-1 evenly: shard i of n starts at
/// i * floor(2^128 / n), and the last shard ends at 2^128 - 1.
fn even_ranges(n: u128) -> Vec<(String, String)> {
    if n == 1 {
        return vec![("0".to_owned(), u128::MAX.to_string())];
    }
    // floor(2^128 / n), computed without overflowing u128.
    let step = u128::MAX / n + u128::from(u128::MAX % n == n - 1);
    (0..n)
        .map(|i| {
            let start = i * step;
            let end = if i == n - 1 {
                u128::MAX
            } else {
                (i + 1) * step - 1
            };
            (start.to_string(), end.to_string())
        })
        .collect()
}

#[test]
fn even_ranges_match_the_ranges_aws_gives_three_shards() {
    assert_eq!(
        even_ranges(3),
        [
            ("0", "113427455640312821154458202477256070484"),
            (
                "113427455640312821154458202477256070485",
                "226854911280625642308916404954512140969"
            ),
            (
                "226854911280625642308916404954512140970",
                "340282366920938463463374607431768211455"
            ),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(even_ranges(1), [("0".to_owned(), u128::MAX.to_string())]);
    assert_eq!(even_ranges(4)[1].0, (1u128 << 126).to_string());
}

#[tokio::test]
async fn create_stream_makes_shards_that_split_the_hash_space_evenly() {
    let client = shared().client();
    let name = unique_name("create");
    create_active(&client, &name, 3).await;

    let out = client
        .describe_stream()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
    let description = out.stream_description().unwrap();
    assert_eq!(description.stream_name(), name);
    assert_eq!(description.stream_arn(), arn_of(&name));
    assert_eq!(description.stream_status(), &StreamStatus::Active);
    assert_eq!(description.retention_period_hours(), 24);
    assert!(!description.has_more_shards());
    assert_eq!(
        description.stream_mode_details().map(|m| m.stream_mode()),
        Some(&StreamMode::Provisioned)
    );
    let ids: Vec<&str> = description.shards().iter().map(|s| s.shard_id()).collect();
    assert_eq!(
        ids,
        [
            "shardId-000000000000",
            "shardId-000000000001",
            "shardId-000000000002"
        ]
    );
    let ranges: Vec<(String, String)> = description
        .shards()
        .iter()
        .map(|s| {
            let range = s
                .hash_key_range()
                .expect("every shard has a hash key range");
            (
                range.starting_hash_key().to_owned(),
                range.ending_hash_key().to_owned(),
            )
        })
        .collect();
    assert_eq!(ranges, even_ranges(3));
    for shard in description.shards() {
        let seqs = shard
            .sequence_number_range()
            .expect("a sequence number range");
        assert!(!seqs.starting_sequence_number().is_empty());
        assert!(
            seqs.starting_sequence_number()
                .bytes()
                .all(|b| b.is_ascii_digit())
        );
        assert_eq!(
            seqs.ending_sequence_number(),
            None,
            "open shards have no end"
        );
        assert_eq!(shard.parent_shard_id(), None);
    }
}

#[tokio::test]
async fn on_demand_streams_get_four_shards_by_default() {
    let client = shared().client();
    let name = unique_name("on-demand");
    let mode = StreamModeDetails::builder()
        .stream_mode(StreamMode::OnDemand)
        .build()
        .unwrap();
    client
        .create_stream()
        .stream_name(&name)
        .stream_mode_details(mode)
        .send()
        .await
        .unwrap();
    wait_active(&client, &name).await;

    let summary = client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
    let summary = summary.stream_description_summary().unwrap();
    assert_eq!(summary.open_shard_count(), 4);
    assert_eq!(
        summary.stream_mode_details().map(|m| m.stream_mode()),
        Some(&StreamMode::OnDemand)
    );
    let shards = client
        .list_shards()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
    assert_eq!(shards.shards().len(), 4);
    assert_eq!(shards.next_token(), None);
}

#[tokio::test]
async fn describe_stream_summary_reports_the_stream_and_its_open_shards() {
    let client = shared().client();
    let name = unique_name("summary");
    let before = aws_sdk_kinesis::primitives::DateTime::from(std::time::SystemTime::now());
    create_active(&client, &name, 2).await;

    let out = client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
    let summary = out.stream_description_summary().unwrap();
    assert_eq!(summary.stream_name(), name);
    assert_eq!(summary.stream_arn(), arn_of(&name));
    assert_eq!(summary.stream_status(), &StreamStatus::Active);
    assert_eq!(summary.open_shard_count(), 2);
    assert_eq!(summary.retention_period_hours(), 24);
    assert_eq!(summary.encryption_type().map(|e| e.as_str()), Some("NONE"));
    // Created within this test, to the second (AWS sends epoch seconds with
    // a millisecond fraction).
    let created = summary.stream_creation_timestamp();
    assert!(
        created.secs() >= before.secs() - 1,
        "{created:?} < {before:?}"
    );
    assert!(created.secs() <= before.secs() + 60, "{created:?}");
    assert_eq!(summary.consumer_count().unwrap_or(0), 0);
}

#[tokio::test]
async fn describe_stream_pages_through_shards_with_limit_and_exclusive_start() {
    let client = shared().client();
    let name = unique_name("pages");
    create_active(&client, &name, 5).await;

    let mut seen = Vec::new();
    let mut start: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = client
            .describe_stream()
            .stream_name(&name)
            .limit(2)
            .set_exclusive_start_shard_id(start.clone())
            .send()
            .await
            .unwrap();
        let description = out.stream_description().unwrap();
        pages += 1;
        assert!(description.shards().len() <= 2);
        seen.extend(description.shards().iter().map(|s| s.shard_id().to_owned()));
        if !description.has_more_shards() {
            break;
        }
        start = seen.last().cloned();
        assert!(pages < 10, "DescribeStream pagination does not end");
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..5).map(|i| format!("shardId-{i:012}")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn list_shards_pages_with_max_results_and_next_token() {
    let client = shared().client();
    let name = unique_name("list-shards");
    create_active(&client, &name, 5).await;

    let first = client
        .list_shards()
        .stream_name(&name)
        .max_results(2)
        .send()
        .await
        .unwrap();
    let mut seen: Vec<String> = first
        .shards()
        .iter()
        .map(|s| s.shard_id().to_owned())
        .collect();
    assert_eq!(seen.len(), 2);
    let mut token = first.next_token().map(str::to_owned);
    let mut pages = 1;
    while let Some(next) = token {
        // With NextToken the stream name must not be repeated.
        let out = client
            .list_shards()
            .next_token(next)
            .max_results(2)
            .send()
            .await
            .unwrap();
        seen.extend(out.shards().iter().map(|s| s.shard_id().to_owned()));
        token = out.next_token().map(str::to_owned);
        pages += 1;
        assert!(pages < 10, "ListShards pagination does not end");
    }
    let expected: Vec<String> = (0..5).map(|i| format!("shardId-{i:012}")).collect();
    assert_eq!(seen, expected);

    let after = client
        .list_shards()
        .stream_name(&name)
        .exclusive_start_shard_id("shardId-000000000002")
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = after.shards().iter().map(|s| s.shard_id()).collect();
    assert_eq!(ids, ["shardId-000000000003", "shardId-000000000004"]);

    let filter = ShardFilter::builder()
        .r#type(ShardFilterType::AfterShardId)
        .shard_id("shardId-000000000003")
        .build()
        .unwrap();
    let filtered = client
        .list_shards()
        .stream_name(&name)
        .shard_filter(filter)
        .send()
        .await
        .unwrap();
    let ids: Vec<&str> = filtered.shards().iter().map(|s| s.shard_id()).collect();
    assert_eq!(ids, ["shardId-000000000004"]);

    let open = ShardFilter::builder()
        .r#type(ShardFilterType::AtLatest)
        .build()
        .unwrap();
    let latest = client
        .list_shards()
        .stream_name(&name)
        .shard_filter(open)
        .send()
        .await
        .unwrap();
    assert_eq!(latest.shards().len(), 5);
}

#[tokio::test]
async fn list_shards_refuses_a_stream_name_together_with_next_token() {
    let client = shared().client();
    let name = unique_name("list-shards-token");
    create_active(&client, &name, 3).await;
    let first = client
        .list_shards()
        .stream_name(&name)
        .max_results(1)
        .send()
        .await
        .unwrap();
    let token = first.next_token().expect("more shards remain").to_owned();
    let err = client
        .list_shards()
        .stream_name(&name)
        .next_token(token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_of(&err).0, "InvalidArgumentException", "{err:?}");
}

#[tokio::test]
async fn list_streams_pages_in_name_order_with_summaries() {
    // Its own server: pagination must see exactly the streams it made.
    let riffle = Riffle::start();
    let client = riffle.client();
    let names = ["delta", "alpha", "echo", "charlie", "bravo"];
    for name in names {
        create_active(&client, name, 1).await;
    }
    let mut sorted = names;
    sorted.sort_unstable();

    let first = client.list_streams().limit(2).send().await.unwrap();
    assert_eq!(first.stream_names(), &sorted[..2]);
    assert!(first.has_more_streams());
    let summaries: Vec<(&str, String, &StreamStatus)> = first
        .stream_summaries()
        .iter()
        .map(|s| {
            (
                s.stream_name(),
                s.stream_arn().to_owned(),
                s.stream_status(),
            )
        })
        .collect();
    assert_eq!(
        summaries,
        [
            ("alpha", arn_of("alpha"), &StreamStatus::Active),
            ("bravo", arn_of("bravo"), &StreamStatus::Active)
        ]
    );

    let token = first.next_token().expect("a NextToken with more streams");
    let second = client
        .list_streams()
        .next_token(token)
        .limit(2)
        .send()
        .await
        .unwrap();
    assert_eq!(second.stream_names(), &sorted[2..4]);

    let by_name = client
        .list_streams()
        .exclusive_start_stream_name("delta")
        .send()
        .await
        .unwrap();
    assert_eq!(by_name.stream_names(), ["echo"]);
    assert!(!by_name.has_more_streams());
    assert_eq!(by_name.next_token(), None);

    let all = client.list_streams().send().await.unwrap();
    assert_eq!(all.stream_names(), sorted);
    assert!(!all.has_more_streams());
}

#[tokio::test]
async fn describe_limits_counts_open_shards_and_on_demand_streams() {
    let riffle = Riffle::start();
    let client = riffle.client();
    let empty = client.describe_limits().send().await.unwrap();
    assert_eq!(empty.open_shard_count(), 0);
    assert_eq!(empty.on_demand_stream_count(), 0);
    assert!(empty.shard_limit() > 0);
    assert!(empty.on_demand_stream_count_limit() > 0);

    create_active(&client, "provisioned", 3).await;
    let on_demand = StreamModeDetails::builder()
        .stream_mode(StreamMode::OnDemand)
        .build()
        .unwrap();
    client
        .create_stream()
        .stream_name("on-demand")
        .stream_mode_details(on_demand)
        .send()
        .await
        .unwrap();
    wait_active(&client, "on-demand").await;
    let limits = client.describe_limits().send().await.unwrap();
    assert_eq!(limits.open_shard_count(), 7);
    assert_eq!(limits.on_demand_stream_count(), 1);
    assert_eq!(limits.shard_limit(), empty.shard_limit());
}

#[tokio::test]
async fn delete_stream_removes_it_and_its_name_can_be_reused() {
    let client = shared().client();
    let name = unique_name("delete");
    create_active(&client, &name, 2).await;
    client
        .delete_stream()
        .stream_name(&name)
        .enforce_consumer_deletion(true)
        .send()
        .await
        .unwrap();
    // DELETING, then gone.
    let (client, name) = (&client, &name);
    eventually(
        Duration::from_secs(10),
        "the stream to disappear",
        move || async move {
            let out = client
                .describe_stream_summary()
                .stream_name(name)
                .send()
                .await;
            match out {
                Ok(out) => {
                    let status = out.stream_description_summary()?.stream_status().clone();
                    assert_eq!(status, StreamStatus::Deleting);
                    None
                }
                Err(err) => {
                    assert_eq!(error_of(&err).0, "ResourceNotFoundException");
                    Some(())
                }
            }
        },
    )
    .await;
    let listed = client.list_streams().send().await.unwrap();
    assert!(!listed.stream_names().contains(name));
    // The name is free again.
    create_active(client, name, 1).await;
    let shards = client.list_shards().stream_name(name).send().await.unwrap();
    assert_eq!(shards.shards().len(), 1);
}

#[tokio::test]
async fn every_stream_request_also_accepts_the_stream_arn() {
    let client = shared().client();
    let name = unique_name("by-arn");
    create_active(&client, &name, 2).await;
    let arn = arn_of(&name);

    let described = client
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(described.stream_description().unwrap().stream_name(), name);
    let summary = client
        .describe_stream_summary()
        .stream_arn(&arn)
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
    let shards = client.list_shards().stream_arn(&arn).send().await.unwrap();
    assert_eq!(shards.shards().len(), 2);

    let put = client
        .put_record()
        .stream_arn(&arn)
        .partition_key("k")
        .data(aws_sdk_kinesis::primitives::Blob::new("by arn"))
        .send()
        .await
        .unwrap();
    let iterator = client
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(put.shard_id())
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::AtSequenceNumber)
        .starting_sequence_number(put.sequence_number())
        .send()
        .await
        .unwrap();
    let records = client
        .get_records()
        .stream_arn(&arn)
        .shard_iterator(iterator.shard_iterator().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(records.records()[0].data().as_ref(), b"by arn");

    client
        .delete_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap();
    let (client, arn) = (&client, &arn);
    eventually(
        Duration::from_secs(10),
        "the stream to disappear",
        move || async move {
            client
                .describe_stream_summary()
                .stream_arn(arn)
                .send()
                .await
                .is_err()
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_missing_stream_is_resource_not_found_naming_stream_and_account() {
    let client = shared().client();
    let name = unique_name("missing");
    let expected = format!("Stream {name} under account 000000000000 not found.");

    let err = client
        .describe_stream()
        .stream_name(&name)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_of(&err),
        ("ResourceNotFoundException".into(), expected.clone())
    );
    let err = client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_of(&err),
        ("ResourceNotFoundException".into(), expected.clone())
    );
    let err = client
        .delete_stream()
        .stream_name(&name)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_of(&err),
        ("ResourceNotFoundException".into(), expected.clone())
    );
    let err = client
        .list_shards()
        .stream_name(&name)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_of(&err).0, "ResourceNotFoundException");
    let err = client
        .put_record()
        .stream_name(&name)
        .partition_key("k")
        .data(aws_sdk_kinesis::primitives::Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_of(&err).0, "ResourceNotFoundException");
}

#[tokio::test]
async fn creating_an_existing_stream_is_resource_in_use() {
    let client = shared().client();
    let name = unique_name("twice");
    create_active(&client, &name, 1).await;
    let err = client
        .create_stream()
        .stream_name(&name)
        .shard_count(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_of(&err),
        (
            "ResourceInUseException".into(),
            format!("Stream {name} under account 000000000000 already exists.")
        )
    );
}

#[tokio::test]
async fn invalid_parameters_get_aws_validation_messages() {
    let client = shared().client();
    let err = client
        .create_stream()
        .stream_name(unique_name("zero"))
        .shard_count(0)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_of(&err),
        (
            "ValidationException".into(),
            "1 validation error detected: Value '0' at 'shardCount' failed to satisfy constraint: \
             Member must have value greater than or equal to 1"
                .into()
        )
    );
    let err = client
        .create_stream()
        .stream_name("bad name!")
        .shard_count(1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_of(&err),
        (
            "ValidationException".into(),
            "1 validation error detected: Value 'bad name!' at 'streamName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
                .into()
        )
    );
    let long = "s".repeat(129);
    let err = client
        .describe_stream()
        .stream_name(&long)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        error_of(&err),
        (
            "ValidationException".into(),
            format!(
                "1 validation error detected: Value '{long}' at 'streamName' failed to satisfy \
                 constraint: Member must have length less than or equal to 128"
            )
        )
    );
    let err = client.list_streams().limit(0).send().await.unwrap_err();
    assert_eq!(
        error_of(&err),
        (
            "ValidationException".into(),
            "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: \
             Member must have value greater than or equal to 1"
                .into()
        )
    );
}
