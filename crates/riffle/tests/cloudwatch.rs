//! CloudWatch PutMetricData through the official AWS SDK for Rust
//! (aws-sdk-cloudwatch, which speaks smithy-rpc-v2-cbor and gzips large
//! bodies) against `riffle serve`: what is put shows on `/metrics` as
//! series per namespace, metric and dimensions; bad input gets
//! CloudWatch's error codes (the SDK's typed errors, from the
//! `x-amzn-query-error` header); the query protocol the Java SDK speaks is
//! served on the same port; and the server keeps serving.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};

use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::operation::put_metric_data::PutMetricDataError;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit, StatisticSet};
use common::{Riffle, sdk_config};

fn client(endpoint: &str) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(&sdk_config(endpoint))
}

/// A server with its metrics listener, and that listener's address.
fn start() -> (Riffle, SocketAddr) {
    start_with(&[])
}

/// [`start`] with `extra` flags.
fn start_with(extra: &[&str]) -> (Riffle, SocketAddr) {
    let metrics = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let arg = metrics.to_string();
    let mut args = vec!["--metrics-listen", &arg];
    args.extend_from_slice(extra);
    let riffle = Riffle::start_with_args(&args);
    (riffle, metrics)
}

/// The text of `/metrics`.
fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to /metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: riffle\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

/// The value of the series `series` (name and labels, exactly).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn dimension(name: &str, value: &str) -> Dimension {
    Dimension::builder().name(name).value(value).build()
}

fn datum(name: &str) -> aws_sdk_cloudwatch::types::builders::MetricDatumBuilder {
    MetricDatum::builder().metric_name(name)
}

#[tokio::test]
async fn put_metric_data_shows_each_series_on_metrics_by_dimensions() {
    let (riffle, metrics) = start();
    let cloudwatch = client(&riffle.endpoint);
    cloudwatch
        .put_metric_data()
        .namespace("OrdersApp")
        .metric_data(
            datum("MillisBehindLatest")
                .dimensions(dimension("ShardId", "shardId-000000000001"))
                .dimensions(dimension("Operation", "ProcessTask"))
                .statistic_values(
                    StatisticSet::builder()
                        .sample_count(2.0)
                        .sum(300.0)
                        .minimum(100.0)
                        .maximum(200.0)
                        .build(),
                )
                .unit(StandardUnit::Milliseconds)
                .build(),
        )
        .metric_data(
            datum("RecordsProcessed")
                .dimensions(dimension("ShardId", "shardId-000000000001"))
                .values(5.0)
                .values(7.0)
                .counts(2.0)
                .counts(1.0)
                .unit(StandardUnit::Count)
                .build(),
        )
        .metric_data(datum("LeasesHeld").value(3.0).build())
        .send()
        .await
        .expect("PutMetricData succeeds");
    // A second put to the same series (dimensions in another order).
    cloudwatch
        .put_metric_data()
        .namespace("OrdersApp")
        .metric_data(
            datum("MillisBehindLatest")
                .dimensions(dimension("Operation", "ProcessTask"))
                .dimensions(dimension("ShardId", "shardId-000000000001"))
                .value(50.0)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData succeeds");

    let behind = r#"{namespace="OrdersApp",metric="MillisBehindLatest",Operation="ProcessTask",ShardId="shardId-000000000001"}"#;
    // A put is in the registry before its answer: no waiting.
    let text = scrape(metrics);
    let of =
        |series: String| value(&text, &series).unwrap_or_else(|| panic!("{series} in\n{text}"));
    assert_eq!(of(format!("riffle_cloudwatch_metric_count{behind}")), 3.0);
    assert_eq!(of(format!("riffle_cloudwatch_metric_sum{behind}")), 350.0);
    assert_eq!(of(format!("riffle_cloudwatch_metric_min{behind}")), 50.0);
    assert_eq!(of(format!("riffle_cloudwatch_metric_max{behind}")), 200.0);
    assert_eq!(of(format!("riffle_cloudwatch_metric_last{behind}")), 50.0);
    let processed =
        r#"{namespace="OrdersApp",metric="RecordsProcessed",ShardId="shardId-000000000001"}"#;
    assert_eq!(
        of(format!("riffle_cloudwatch_metric_count{processed}")),
        3.0
    );
    assert_eq!(of(format!("riffle_cloudwatch_metric_sum{processed}")), 17.0);
    let held = r#"{namespace="OrdersApp",metric="LeasesHeld"}"#;
    assert_eq!(of(format!("riffle_cloudwatch_metric_last{held}")), 3.0);
    assert_eq!(of("riffle_cloudwatch_data_points_total".into()), 4.0);
    // The SDK for Rust speaks rpc-v2-cbor to CloudWatch.
    assert_eq!(
        of(
            r#"riffle_api_requests_by_protocol_total{service="monitoring",protocol="rpcv2cbor"}"#
                .into()
        ),
        2.0
    );
    assert_eq!(
        of(r#"riffle_api_requests_total{service="monitoring",operation="PutMetricData",outcome="success"}"#.into()),
        2.0
    );
}

#[tokio::test]
async fn a_thousand_metrics_in_one_gzipped_signed_call_are_taken_and_one_more_is_refused() {
    // Signatures verified: the SDK signs the gzipped bytes it sends.
    let (riffle, metrics) = start_with(&[
        "--access-key-id",
        "AKIDTEST",
        "--secret-access-key",
        "secret",
    ]);
    let cloudwatch = client(&riffle.endpoint);
    let data = |n: usize| -> Vec<MetricDatum> {
        (0..n)
            .map(|i| {
                datum("RecordsProcessed")
                    .dimensions(dimension("ShardId", &format!("shardId-{i:012}")))
                    .value(1.0)
                    .build()
            })
            .collect()
    };
    // Far above the SDK's 10 KiB threshold: the body is sent gzipped.
    cloudwatch
        .put_metric_data()
        .namespace("Big")
        .set_metric_data(Some(data(1000)))
        .send()
        .await
        .expect("1,000 entries are within the limit");
    let err = cloudwatch
        .put_metric_data()
        .namespace("Big")
        .set_metric_data(Some(data(1001)))
        .send()
        .await
        .expect_err("1,001 entries are refused");
    let err = err.into_service_error();
    assert!(
        matches!(err, PutMetricDataError::InvalidParameterValueException(_)),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("InvalidParameterValue"));
    assert_eq!(
        err.message(),
        Some("The collection MetricData must not have a size greater than 1000.")
    );
    let text = scrape(metrics);
    assert_eq!(value(&text, "riffle_cloudwatch_series"), Some(1000.0));
}

#[tokio::test]
async fn bad_metrics_get_cloudwatchs_errors_and_the_server_keeps_serving() {
    let (riffle, metrics) = start();
    let cloudwatch = client(&riffle.endpoint);
    let dimensions: Vec<Dimension> = (0..31).map(|i| dimension(&format!("d{i}"), "v")).collect();
    let too_many = cloudwatch
        .put_metric_data()
        .namespace("App")
        .metric_data(
            datum("M")
                .set_dimensions(Some(dimensions))
                .value(1.0)
                .build(),
        )
        .send()
        .await
        .expect_err("31 dimensions are refused")
        .into_service_error();
    assert!(matches!(
        too_many,
        PutMetricDataError::InvalidParameterValueException(_)
    ));
    assert_eq!(
        too_many.message(),
        Some("The collection MetricData.member.1.Dimensions must not have a size greater than 30.")
    );
    let empty_name = cloudwatch
        .put_metric_data()
        .namespace("App")
        .metric_data(datum("").value(1.0).build())
        .send()
        .await
        .expect_err("an empty metric name is refused")
        .into_service_error();
    assert_eq!(empty_name.code(), Some("InvalidParameterValue"));
    let mismatched = cloudwatch
        .put_metric_data()
        .namespace("App")
        .metric_data(datum("M").values(1.0).values(2.0).counts(1.0).build())
        .send()
        .await
        .expect_err("values and counts of different sizes are refused")
        .into_service_error();
    assert!(matches!(
        mismatched,
        PutMetricDataError::InvalidParameterCombinationException(_)
    ));
    let unsupported = cloudwatch
        .list_metrics()
        .send()
        .await
        .expect_err("ListMetrics is not served")
        .into_service_error();
    assert_eq!(unsupported.code(), Some("InvalidAction"));
    assert!(
        unsupported
            .message()
            .is_some_and(|m| m.contains("ListMetrics"))
    );
    // Nothing refused was kept, and the server still takes good calls.
    cloudwatch
        .put_metric_data()
        .namespace("App")
        .metric_data(datum("Good").value(1.0).build())
        .send()
        .await
        .expect("a good call after bad ones succeeds");
    let text = scrape(metrics);
    assert_eq!(
        value(&text, "riffle_cloudwatch_data_points_total"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"riffle_api_requests_total{service="monitoring",operation="PutMetricData",outcome="client_error"}"#
        ),
        Some(3.0)
    );
}

/// A query-protocol form post, as the AWS SDK for Java v2 (KCL 3.x) sends
/// PutMetricData, signed for `monitoring`, with `extra` headers.
fn post_form(addr: SocketAddr, extra: &[(&str, &str)], form: &[u8]) -> common::RawResponse {
    let mut headers = vec![
        (
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        (
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/monitoring/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef",
        ),
        ("X-Amz-Date", "20260101T000000Z"),
    ];
    headers.extend_from_slice(extra);
    common::post(addr, &headers, form)
}

#[tokio::test]
async fn the_query_protocol_is_served_with_xml_answers_and_errors() {
    let (riffle, metrics) = start();
    let put = post_form(
        riffle.addr,
        &[],
        b"Action=PutMetricData&Version=2010-08-01&Namespace=KinesisClientLibrary\
         &MetricData.member.1.MetricName=MillisBehindLatest\
         &MetricData.member.1.Dimensions.member.1.Name=ShardId\
         &MetricData.member.1.Dimensions.member.1.Value=shardId-000000000000\
         &MetricData.member.1.StatisticValues.SampleCount=1\
         &MetricData.member.1.StatisticValues.Sum=25.0\
         &MetricData.member.1.StatisticValues.Minimum=25.0\
         &MetricData.member.1.StatisticValues.Maximum=25.0\
         &MetricData.member.1.Unit=Milliseconds&MetricData.member.1.StorageResolution=60",
    );
    let text = String::from_utf8_lossy(&put.body).into_owned();
    assert_eq!(put.status, 200, "{text}");
    assert_eq!(put.header("content-type"), Some("text/xml"));
    let request_id = put.header("x-amzn-requestid").expect("a request id");
    assert!(text.starts_with(
        r#"<PutMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">"#
    ));
    assert!(
        text.contains(&format!("<RequestId>{request_id}</RequestId>")),
        "{text}"
    );
    let refused = post_form(
        riffle.addr,
        &[],
        b"Action=PutMetricData&Version=2010-08-01&MetricData.member.1.MetricName=M&MetricData.member.1.Value=1",
    );
    let text = String::from_utf8_lossy(&refused.body).into_owned();
    assert_eq!(refused.status, 400);
    for part in [
        "<ErrorResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\">",
        "<Type>Sender</Type>",
        "<Code>MissingParameter</Code>",
        "<Message>The parameter Namespace is required.</Message>",
    ] {
        assert!(text.contains(part), "{part} not in {text}");
    }
    // An unsigned form is refused in the same shape.
    let unsigned = common::post(
        riffle.addr,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"Action=PutMetricData&Version=2010-08-01&Namespace=N",
    );
    let text = String::from_utf8_lossy(&unsigned.body).into_owned();
    assert_eq!(unsigned.status, 400);
    assert!(
        text.contains("<Code>MissingAuthenticationToken</Code>"),
        "{text}"
    );
    // A gzipped form (Content-Encoding: gzip, the model's request
    // compression) is inflated; the signature covers the sent bytes.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(b"Action=PutMetricData&Version=2010-08-01&Namespace=Zipped&MetricData.member.1.MetricName=M&MetricData.member.1.Value=4")
        .unwrap();
    let zipped = post_form(
        riffle.addr,
        &[("Content-Encoding", "gzip")],
        &gzip.finish().unwrap(),
    );
    assert_eq!(
        zipped.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&zipped.body)
    );
    let scraped = scrape(metrics);
    assert_eq!(
        value(
            &scraped,
            r#"riffle_cloudwatch_metric_sum{namespace="Zipped",metric="M"}"#
        ),
        Some(4.0)
    );
    let series = r#"riffle_cloudwatch_metric_last{namespace="KinesisClientLibrary",metric="MillisBehindLatest",ShardId="shardId-000000000000"}"#;
    assert_eq!(value(&scraped, series), Some(25.0), "{scraped}");
    assert_eq!(
        value(
            &scraped,
            r#"riffle_api_requests_by_protocol_total{service="monitoring",protocol="query"}"#
        ),
        Some(4.0)
    );
}
