//! Firehose into the embedded S3 through the official AWS SDK for Rust
//! (aws-sdk-firehose and aws-sdk-s3, path-style) against `riffle serve`:
//! records put to a DirectPut delivery stream come back as an object, and
//! what DescribeDeliveryStream and ListDeliveryStreams answer is what the
//! SDK's types expect.

mod common;

use std::time::Duration;

use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{
    BufferingHints, CompressionFormat, DeliveryStreamStatus, DeliveryStreamType,
    ExtendedS3DestinationConfiguration, Record,
};
use common::{Riffle, eventually};

/// Bounds the wait for delivery (the stream's interval is 1 s); reaching it
/// fails the test.
const DELIVERY_TIME_MAX: Duration = Duration::from_secs(30);
/// Bounds the wait for a new delivery stream to become ACTIVE.
const ACTIVE_TIME_MAX: Duration = Duration::from_secs(10);
const ROLE: &str = "arn:aws:iam::000000000000:role/firehose-delivery";

fn credentials() -> Credentials {
    Credentials::new("AKIDTEST", "secret", None, None, "riffle-tests")
}

fn firehose_client(endpoint: &str) -> aws_sdk_firehose::Client {
    let config = aws_sdk_firehose::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials())
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_firehose::Client::from_conf(config)
}

/// The embedded S3 answers path-style requests only.
fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(credentials())
        .endpoint_url(endpoint)
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// An S3 destination to `bucket`, with `hints` when given.
fn destination(bucket: &str, hints: Option<BufferingHints>) -> ExtendedS3DestinationConfiguration {
    ExtendedS3DestinationConfiguration::builder()
        .role_arn(ROLE)
        .bucket_arn(format!("arn:aws:s3:::{bucket}"))
        .set_buffering_hints(hints)
        .build()
        .expect("role and bucket ARNs are set")
}

async fn create_direct_put(
    firehose: &aws_sdk_firehose::Client,
    name: &str,
    to: ExtendedS3DestinationConfiguration,
) {
    firehose
        .create_delivery_stream()
        .delivery_stream_name(name)
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(to)
        .send()
        .await
        .expect("CreateDeliveryStream");
    let what = format!("delivery stream {name} to become ACTIVE");
    eventually(ACTIVE_TIME_MAX, &what, || async {
        let out = firehose
            .describe_delivery_stream()
            .delivery_stream_name(name)
            .send()
            .await
            .ok()?;
        let status = out.delivery_stream_description?.delivery_stream_status;
        (status == DeliveryStreamStatus::Active).then_some(())
    })
    .await;
}

#[tokio::test]
async fn put_record_batch_arrives_as_one_object_of_the_records_concatenated() {
    let riffle = Riffle::start();
    let (firehose, s3) = (
        firehose_client(&riffle.endpoint),
        s3_client(&riffle.endpoint),
    );
    s3.create_bucket()
        .bucket("deliveries")
        .send()
        .await
        .expect("CreateBucket");
    let hints = BufferingHints::builder()
        .size_in_mbs(1)
        .interval_in_seconds(1)
        .build();
    create_direct_put(&firehose, "clicks", destination("deliveries", Some(hints))).await;

    let records: Vec<Vec<u8>> = (0..30)
        .map(|i| format!("{{\"click\":{i}}}\n").into_bytes())
        .collect();
    let entries = records
        .iter()
        .map(|data| Record::builder().data(Blob::new(data.clone())).build())
        .collect::<Result<Vec<_>, _>>()
        .expect("every record has data");
    let put = firehose
        .put_record_batch()
        .delivery_stream_name("clicks")
        .set_records(Some(entries))
        .send()
        .await
        .expect("PutRecordBatch");
    assert_eq!(put.failed_put_count, 0);
    assert_eq!(put.request_responses.len(), records.len());
    assert!(
        put.request_responses
            .iter()
            .all(|r| r.record_id.is_some() && r.error_code.is_none())
    );

    let keys = eventually(DELIVERY_TIME_MAX, "an object in deliveries", || async {
        let listed = s3
            .list_objects_v2()
            .bucket("deliveries")
            .send()
            .await
            .ok()?;
        let keys: Vec<String> = listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        (!keys.is_empty()).then_some(keys)
    })
    .await;
    assert_eq!(keys.len(), 1, "one object for one batch: {keys:?}");
    assert!(keys[0].contains("/clicks-1-"), "{}", keys[0]);
    let object = s3
        .get_object()
        .bucket("deliveries")
        .key(&keys[0])
        .send()
        .await
        .expect("GetObject");
    let body = object
        .body
        .collect()
        .await
        .expect("object body")
        .into_bytes();
    assert_eq!(body.as_ref(), records.concat().as_slice());
}

#[tokio::test]
async fn put_record_batch_to_an_unknown_stream_is_resource_not_found() {
    let riffle = Riffle::start();
    let firehose = firehose_client(&riffle.endpoint);
    let record = Record::builder()
        .data(Blob::new(&b"x"[..]))
        .build()
        .expect("data is set");
    let err = firehose
        .put_record_batch()
        .delivery_stream_name("missing")
        .records(record)
        .send()
        .await
        .expect_err("no such delivery stream");
    let service = err.into_service_error();
    assert!(service.is_resource_not_found_exception(), "{service:?}");
}

#[tokio::test]
async fn describe_delivery_stream_reports_aws_defaults_for_what_was_not_given() {
    let riffle = Riffle::start();
    let (firehose, s3) = (
        firehose_client(&riffle.endpoint),
        s3_client(&riffle.endpoint),
    );
    s3.create_bucket()
        .bucket("defaults")
        .send()
        .await
        .expect("CreateBucket");
    create_direct_put(&firehose, "plain", destination("defaults", None)).await;

    let described = firehose
        .describe_delivery_stream()
        .delivery_stream_name("plain")
        .send()
        .await
        .expect("DescribeDeliveryStream")
        .delivery_stream_description
        .expect("a description");
    assert_eq!(described.delivery_stream_name, "plain");
    assert_eq!(
        described.delivery_stream_type,
        DeliveryStreamType::DirectPut
    );
    let [only] = described.destinations.as_slice() else {
        panic!("one destination: {:?}", described.destinations);
    };
    let s3_out = only
        .extended_s3_destination_description
        .as_ref()
        .expect("an extended S3 destination");
    assert_eq!(s3_out.bucket_arn, "arn:aws:s3:::defaults");
    assert_eq!(s3_out.role_arn, ROLE);
    // AWS's defaults: 5 MiB or 300 s, whichever comes first; no compression.
    let hints = &s3_out.buffering_hints;
    assert_eq!(hints.as_ref().and_then(|h| h.size_in_mbs), Some(5));
    assert_eq!(
        hints.as_ref().and_then(|h| h.interval_in_seconds),
        Some(300)
    );
    assert_eq!(s3_out.compression_format, CompressionFormat::Uncompressed);
}

#[tokio::test]
async fn list_delivery_streams_pages_by_limit_in_name_order() {
    let riffle = Riffle::start();
    let (firehose, s3) = (
        firehose_client(&riffle.endpoint),
        s3_client(&riffle.endpoint),
    );
    s3.create_bucket()
        .bucket("pages")
        .send()
        .await
        .expect("CreateBucket");
    // Created out of order: pages come back sorted by name.
    let names = ["page-c", "page-a", "page-e", "page-b", "page-d"];
    for name in names {
        create_direct_put(&firehose, name, destination("pages", None)).await;
    }

    let mut pages = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = firehose
            .list_delivery_streams()
            .limit(2)
            .set_exclusive_start_delivery_stream_name(start.clone())
            .send()
            .await
            .expect("ListDeliveryStreams");
        assert!(out.delivery_stream_names.len() <= 2);
        start = out.delivery_stream_names.last().cloned();
        pages.push(out.delivery_stream_names);
        if !out.has_more_delivery_streams {
            break;
        }
        assert!(pages.len() < names.len(), "pagination does not end");
    }
    assert_eq!(
        pages,
        vec![
            vec!["page-a", "page-b"],
            vec!["page-c", "page-d"],
            vec!["page-e"],
        ]
    );
}
