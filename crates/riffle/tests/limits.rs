//! Issue 4's capacity and settings actions through the official AWS SDK for
//! Rust, against a server with AWS's throughput limits on (the default):
//! per-record and per-call `ProvisionedThroughputExceededException` in
//! AWS's words, tags, enhanced monitoring, capacity mode, record size and
//! warm throughput, each visible where AWS reports it.

mod common;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    MetricsName, PutRecordsRequestEntry, ShardIteratorType, StreamMode, StreamModeDetails,
};
use common::{Riffle, create_active, error_of, unique_name};

/// Far more calls than a shard allows in the time they take: reaching it
/// means the server never throttled.
const CALLS_MAX: usize = 400;

fn limited() -> Riffle {
    Riffle::start_with_args(&["--throughput-limits", "on"])
}

fn arn_of(name: &str) -> String {
    format!("arn:aws:kinesis:us-east-1:000000000000:stream/{name}")
}

#[tokio::test]
async fn a_shard_over_its_rates_refuses_writes_per_record_and_reads_per_call() {
    let server = limited();
    let client = server.client();
    let name = unique_name("hot");
    create_active(&client, &name, 1).await;
    let entry = PutRecordsRequestEntry::builder()
        .partition_key("k")
        .data(Blob::new(b"r".to_vec()))
        .build()
        .unwrap();
    let mut accepted = 0;
    let refused = 'calls: {
        for _ in 0..CALLS_MAX {
            let out = client
                .put_records()
                .stream_name(&name)
                .set_records(Some(vec![entry.clone(); 500]))
                .send()
                .await
                .unwrap();
            let failed: Vec<_> = out
                .records()
                .iter()
                .filter(|r| r.error_code().is_some())
                .collect();
            assert_eq!(out.failed_record_count(), Some(failed.len() as i32));
            accepted += 500 - failed.len();
            if let Some(first) = failed.first() {
                break 'calls (*first).clone();
            }
        }
        panic!("a shard took far more than 1,000 records a second");
    };
    assert_eq!(
        refused.error_code(),
        Some("ProvisionedThroughputExceededException")
    );
    assert_eq!(
        refused.error_message(),
        Some(format!("Rate exceeded for shard shardId-000000000000 in stream {name} under account 000000000000.").as_str())
    );
    assert!(refused.sequence_number().is_none() && refused.shard_id().is_none());
    assert!(accepted >= 1000, "{accepted}");

    let iterator = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let mut read = 0;
    for _ in 0..CALLS_MAX {
        match client.get_records().shard_iterator(&iterator).send().await {
            Ok(out) => read = read.max(out.records().len()),
            Err(err) => {
                assert_eq!(
                    error_of(&err),
                    (
                        "ProvisionedThroughputExceededException".to_owned(),
                        format!(
                            "Rate exceeded for Shard - 000000000000/{name}/shardId-000000000000"
                        )
                    )
                );
                assert!(read > 0, "the calls before the refusal returned records");
                return;
            }
        }
    }
    panic!("a shard served far more than 5 GetRecords calls a second");
}

#[tokio::test]
async fn tags_and_enhanced_monitoring_are_kept_and_reported() {
    let server = limited();
    let client = server.client();
    let name = unique_name("tagged");
    create_active(&client, &name, 1).await;
    client
        .add_tags_to_stream()
        .stream_name(&name)
        .tags("team", "data")
        .tags("env", "dev")
        .send()
        .await
        .unwrap();
    client
        .tag_resource()
        .resource_arn(arn_of(&name))
        .tags("owner", "ana")
        .send()
        .await
        .unwrap();
    client
        .untag_resource()
        .resource_arn(arn_of(&name))
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    let page = client
        .list_tags_for_stream()
        .stream_name(&name)
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(page.tags()[0].key(), "owner");
    assert!(page.has_more_tags());
    let all = client
        .list_tags_for_resource()
        .resource_arn(arn_of(&name))
        .send()
        .await
        .unwrap();
    let pairs: Vec<(&str, Option<&str>)> =
        all.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(pairs, [("owner", Some("ana")), ("team", Some("data"))]);
    let mut too_many = client.add_tags_to_stream().stream_name(&name);
    for i in 0..49 {
        too_many = too_many.tags(format!("k{i}"), "v");
    }
    let err = too_many.send().await.unwrap_err();
    assert_eq!(error_of(&err).0, "InvalidArgumentException");

    let out = client
        .enable_enhanced_monitoring()
        .stream_name(&name)
        .shard_level_metrics(MetricsName::All)
        .send()
        .await
        .unwrap();
    assert_eq!(out.desired_shard_level_metrics().len(), 7);
    let summary = client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap();
    let metrics = summary.enhanced_monitoring()[0].shard_level_metrics();
    assert!(metrics.contains(&MetricsName::IteratorAgeMilliseconds) && metrics.len() == 7);
}

#[tokio::test]
async fn capacity_mode_record_size_and_warm_throughput_change_as_aws_reports_them() {
    let server = limited();
    let client = server.client();
    let name = unique_name("modal");
    create_active(&client, &name, 2).await;
    let on_demand = StreamModeDetails::builder()
        .stream_mode(StreamMode::OnDemand)
        .build()
        .unwrap();
    client
        .update_stream_mode()
        .stream_arn(arn_of(&name))
        .stream_mode_details(on_demand.clone())
        .send()
        .await
        .unwrap();
    let limits = client.describe_limits().send().await.unwrap();
    assert_eq!(limits.on_demand_stream_count(), 1);
    assert_eq!(limits.open_shard_count(), 2);
    let err = client
        .update_stream_mode()
        .stream_arn(arn_of(&name))
        .stream_mode_details(on_demand)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_of(&err).0, "InvalidArgumentException");

    client
        .update_max_record_size()
        .stream_arn(arn_of(&name))
        .max_record_size_in_kib(4096)
        .send()
        .await
        .unwrap();
    let big = vec![7u8; 3 * 1024 * 1024];
    client
        .put_record()
        .stream_name(&name)
        .partition_key("k")
        .data(Blob::new(big))
        .send()
        .await
        .unwrap();
    let warm = client
        .update_stream_warm_throughput()
        .stream_arn(arn_of(&name))
        .warm_throughput_mibps(30)
        .send()
        .await
        .unwrap();
    assert_eq!(
        warm.warm_throughput().and_then(|w| w.target_mibps()),
        Some(30)
    );
    let summary = client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap();
    assert_eq!(
        summary.stream_mode_details().map(|m| m.stream_mode()),
        Some(&StreamMode::OnDemand)
    );
    assert_eq!(summary.max_record_size_in_kib(), Some(4096));
    assert_eq!(
        summary.warm_throughput().and_then(|w| w.current_mibps()),
        Some(30)
    );
}
