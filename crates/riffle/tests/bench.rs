//! `riffle bench` end to end: the real binary drives a real server through
//! each workload with tiny sizes, and the tests check what a user relies on
//! — counts, verification, latency fields, the stream's lifecycle, the
//! plot, and a clear failure when the endpoint is unreachable. No timing
//! is asserted: that is what the bench itself is for.

mod common;

use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{Riffle, create_active, unique_name};
use serde_json::Value;

/// One server for every bench test (each uses its own stream).
fn shared() -> &'static Riffle {
    static SERVER: OnceLock<Riffle> = OnceLock::new();
    SERVER.get_or_init(Riffle::start)
}

/// Runs `riffle bench` with `args`, without a progress line.
fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_riffle"))
        .arg("bench")
        .args(args)
        .arg("--quiet")
        .output()
        .expect("run riffle bench")
}

/// Runs a workload against the shared server with `--json` and returns its
/// summary; the run must succeed.
fn bench_json(workload: &str, stream: &str, extra: &[&str]) -> Value {
    let server = shared();
    let mut args = vec![
        workload,
        "--endpoint",
        &server.endpoint,
        "--stream",
        stream,
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = bench(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "riffle bench {args:?} failed ({:?})\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}): {stdout}"))
}

/// Latency percentiles are present and ordered.
fn assert_latency(summary: &Value, field: &str) {
    let lat = &summary[field];
    let get = |p: &str| {
        lat[p]
            .as_u64()
            .unwrap_or_else(|| panic!("{field}.{p} missing in {summary}"))
    };
    let (p50, p90, p99, p999, max) = (get("p50"), get("p90"), get("p99"), get("p999"), get("max"));
    assert!(p50 > 0, "{summary}");
    assert!(
        p50 <= p90 && p90 <= p99 && p99 <= p999 && p999 <= max,
        "{field}: {lat}"
    );
}

/// The stream the bench made is gone afterwards.
async fn assert_deleted(stream: &str) {
    let client = shared().client();
    let described = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await;
    match described {
        Err(err) => assert!(
            err.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()),
            "DescribeStreamSummary after the bench: {err:?}"
        ),
        Ok(out) => {
            let status = out
                .stream_description_summary()
                .map(|d| d.stream_status().clone());
            assert_eq!(
                status,
                Some(aws_sdk_kinesis::types::StreamStatus::Deleting),
                "the bench's stream was not deleted"
            );
        }
    }
}

#[tokio::test]
async fn put_writes_exactly_the_records_asked_for_and_deletes_its_stream() {
    let stream = unique_name("bench-put");
    let s = bench_json("put", &stream, &["--records", "2000", "--shards", "2"]);
    assert_eq!(s["workload"], "put");
    assert_eq!(s["shards"], 2, "the bench created its stream with --shards");
    assert_eq!(s["write"]["requests"], 2000);
    assert_eq!(s["write"]["records"], 2000);
    assert_eq!(s["write"]["bytes"], 2000 * 64);
    assert_eq!(s["write"]["errors"], 0);
    assert_latency(&s["write"], "latency_us");
    assert!(s["write"]["records_per_s"].as_f64().unwrap() > 0.0);
    assert!(s["client_cpu_us_per_request"].as_f64().unwrap() > 0.0);
    assert_deleted(&stream).await;
}

#[tokio::test]
async fn put_batch_counts_records_not_requests() {
    let stream = unique_name("bench-batch");
    let s = bench_json(
        "put-batch",
        &stream,
        &[
            "--records",
            "2050",
            "--batch-size",
            "100",
            "--record-size",
            "512",
        ],
    );
    assert_eq!(s["write"]["requests"], 21, "20 full batches and one of 50");
    assert_eq!(s["write"]["records"], 2050);
    assert_eq!(s["write"]["bytes"], 2050 * 512);
    assert_eq!(s["write"]["failed_records"], 0);
    assert_latency(&s["write"], "latency_us");
    assert_deleted(&stream).await;
}

#[tokio::test]
async fn an_existing_stream_is_refused_unless_reused_and_then_kept() {
    let stream = unique_name("bench-reuse");
    let client = shared().client();
    create_active(&client, &stream, 1).await;
    let refused = bench(&[
        "put",
        "--endpoint",
        &shared().endpoint,
        "--stream",
        &stream,
        "--records",
        "10",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--reuse-stream"), "{stderr}");
    let s = bench_json("put", &stream, &["--records", "100", "--reuse-stream"]);
    assert_eq!(s["write"]["records"], 100);
    client
        .describe_stream_summary()
        .stream_name(&stream)
        .send()
        .await
        .expect("a reused stream is not deleted");
}

#[test]
fn an_unreachable_endpoint_is_a_clear_error() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let out = bench(&["put", "--endpoint", &endpoint, "--records", "10"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("endpoint {endpoint} is unreachable")),
        "{stderr}"
    );
    assert!(
        out.stdout.is_empty(),
        "no summary for a run that did not happen"
    );
}

#[test]
fn bad_options_name_the_flag() {
    let out = bench(&["put", "--record-size", "8"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--record-size"), "{stderr}");
}

/// The verification of a verifying workload passed, with `records` back.
fn assert_verified(summary: &Value, records: u64) {
    let v = &summary["verification"];
    assert_eq!(v["passed"], true, "{summary}");
    assert_eq!(v["expected"], records, "{v}");
    assert_eq!(v["received"], records, "{v}");
    assert_eq!(v["lost"], 0, "{v}");
    assert_eq!(v["duplicates"], 0, "{v}");
    assert_eq!(v["corrupt"], 0, "{v}");
}

#[tokio::test]
async fn get_drains_every_record_written_once_and_intact() {
    let stream = unique_name("bench-get");
    let s = bench_json(
        "get",
        &stream,
        &["--records", "3000", "--record-size", "256"],
    );
    assert_verified(&s, 3000);
    assert_eq!(s["read"]["records"], 3000);
    assert_eq!(s["read"]["bytes"], 3000 * 256);
    assert!(s["write"].is_null(), "get measures the drain, not the fill");
    assert_latency(&s["read"], "latency_us");
    assert_deleted(&stream).await;
}

/// With `--http2` every data-plane call is a stream of one HTTP/2
/// connection (the client speaks nothing else, so a pass proves the
/// server's h2c path carries PutRecords and GetRecords intact).
#[tokio::test]
async fn get_over_http2_drains_every_record_once_and_intact() {
    let stream = unique_name("bench-h2");
    let s = bench_json(
        "get",
        &stream,
        &["--records", "2000", "--record-size", "200", "--http2"],
    );
    assert_verified(&s, 2000);
    assert_eq!(s["read"]["bytes"], 2000 * 200);
    assert_deleted(&stream).await;
}

#[tokio::test]
async fn e2e_with_polling_measures_put_to_receive_latency() {
    let stream = unique_name("bench-e2e");
    let s = bench_json(
        "e2e",
        &stream,
        &["--records", "500", "--rate", "1000", "--record-size", "100"],
    );
    assert_eq!(s["consumer"], "polling");
    assert_eq!(s["rate"], 1000.0);
    assert_eq!(s["write"]["records"], 500);
    assert_verified(&s, 500);
    assert_latency(&s, "e2e_latency_us");
    assert_latency(&s["write"], "latency_us");
    assert_deleted(&stream).await;
}

#[tokio::test]
async fn e2e_with_enhanced_fan_out_reads_every_record_through_subscribe_to_shard() {
    let stream = unique_name("bench-efo");
    let s = bench_json(
        "e2e",
        &stream,
        &[
            "--records",
            "300",
            "--rate",
            "1000",
            "--consumer",
            "efo",
            "--shards",
            "2",
        ],
    );
    assert_eq!(s["consumer"], "efo");
    assert_verified(&s, 300);
    assert_eq!(s["read"]["records"], 300);
    assert_latency(&s, "e2e_latency_us");
    assert_deleted(&stream).await;
}

#[tokio::test]
async fn mixed_writes_and_reads_together_and_plots_both() {
    let stream = unique_name("bench-mixed");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let plot = dir.path().join("mixed.svg");
    let plot_arg = plot.to_str().expect("a UTF-8 temporary path");
    let s = bench_json(
        "mixed",
        &stream,
        &[
            "--records",
            "2000",
            "--batch-size",
            "50",
            "--plot",
            plot_arg,
        ],
    );
    assert_verified(&s, 2000);
    assert_eq!(s["write"]["records"], 2000);
    assert_latency(&s["write"], "latency_us");
    assert_latency(&s["read"], "latency_us");
    let svg = std::fs::read_to_string(&plot).expect("--plot wrote its file");
    let doc = roxmltree::Document::parse(&svg).expect("the plot is well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(svg.contains("latency distribution"), "the latency chart");
    assert!(svg.contains("throughput over time"), "the throughput chart");
    assert!(
        doc.descendants().any(|n| n.tag_name().name() == "polyline"),
        "the charts have lines"
    );
    assert_deleted(&stream).await;
}

#[tokio::test]
async fn a_reused_stream_keeps_no_consumer_of_the_bench() {
    let stream = unique_name("bench-reuse-efo");
    let client = shared().client();
    create_active(&client, &stream, 1).await;
    let s = bench_json(
        "e2e",
        &stream,
        &[
            "--records",
            "100",
            "--rate",
            "1000",
            "--consumer",
            "efo",
            "--reuse-stream",
        ],
    );
    assert_verified(&s, 100);
    let arn = client
        .describe_stream_summary()
        .stream_name(&stream)
        .send()
        .await
        .expect("the reused stream is kept")
        .stream_description_summary()
        .map(|d| d.stream_arn().to_owned())
        .expect("a description");
    let consumers = client
        .list_stream_consumers()
        .stream_arn(&arn)
        .send()
        .await
        .expect("ListStreamConsumers");
    let left: Vec<_> = consumers
        .consumers()
        .iter()
        .filter(|c| c.consumer_status() != &aws_sdk_kinesis::types::ConsumerStatus::Deleting)
        .map(|c| c.consumer_name().to_owned())
        .collect();
    assert!(left.is_empty(), "consumers left behind: {left:?}");
}

#[tokio::test]
async fn ctrl_c_still_deletes_the_stream() {
    let stream = unique_name("bench-interrupt");
    let child = Command::new(env!("CARGO_BIN_EXE_riffle"))
        .args([
            "bench",
            "put",
            "--quiet",
            "--duration",
            "120s",
            "--rate",
            "50",
        ])
        .args(["--endpoint", &shared().endpoint, "--stream", &stream])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start riffle bench");
    let client = shared().client();
    let stream_ref = stream.as_str();
    let client_ref = &client;
    common::eventually(
        std::time::Duration::from_secs(20),
        "the bench to create its stream",
        move || async move {
            client_ref
                .describe_stream_summary()
                .stream_name(stream_ref)
                .send()
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;
    let pid = i32::try_from(child.id()).expect("pids fit in i32");
    // SAFETY: kill(2) on our own, not yet reaped, child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let out = child.wait_with_output().expect("wait for riffle bench");
    assert_eq!(
        out.status.code(),
        Some(1),
        "an interrupted run is not a success"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_deleted(&stream).await;
}

/// The delivery stream and the bucket `riffle bench firehose` made are gone
/// afterwards.
async fn assert_firehose_cleaned_up(stream: &str, bucket: &str) {
    let endpoint = &firehose_server().endpoint;
    let credentials =
        aws_sdk_kinesis::config::Credentials::new("AKIDTEST", "secret", None, None, "test");
    let firehose = aws_sdk_firehose::Client::from_conf(
        aws_sdk_firehose::Config::builder()
            .behavior_version(aws_sdk_firehose::config::BehaviorVersion::latest())
            .region(aws_sdk_firehose::config::Region::new("us-east-1"))
            .credentials_provider(credentials.clone())
            .endpoint_url(endpoint)
            .build(),
    );
    let described = firehose
        .describe_delivery_stream()
        .delivery_stream_name(stream)
        .send()
        .await;
    assert!(
        described
            .as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{described:?}"
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .endpoint_url(endpoint)
            .force_path_style(true)
            .build(),
    );
    let head = s3.head_bucket().bucket(bucket).send().await;
    assert!(
        head.as_ref()
            .err()
            .and_then(|e| e.as_service_error())
            .is_some_and(|e| e.is_not_found()),
        "{head:?}"
    );
}

/// A server without throughput limits for the firehose runs (a DirectPut
/// stream's 5 MiB/s would refuse part of each run's records).
fn firehose_server() -> &'static Riffle {
    static SERVER: OnceLock<Riffle> = OnceLock::new();
    SERVER.get_or_init(|| Riffle::start_with_args(&["--throughput-limits", "off"]))
}

/// Runs the firehose workload with a 1 MiB / 1 s buffer, so several
/// objects land by size and the last by the interval.
fn firehose_run(stream: &str, compression: &str) -> Value {
    let args = [
        "firehose",
        "--endpoint",
        &firehose_server().endpoint,
        "--stream",
        stream,
        "--json",
        "--records",
        "4000",
        "--concurrency",
        "2",
        "--buffer-size-mb",
        "1",
        "--buffer-interval",
        "1",
        "--compression",
        compression,
    ];
    let out = bench(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "riffle bench {args:?} failed ({:?})\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Every acknowledged record of a DirectPut delivery stream is read back
/// from the objects it delivered to the embedded S3, once and intact, and
/// the report says how many objects, bytes and how fresh.
fn assert_delivered(s: &Value) {
    let acknowledged = s["write"]["records"].as_u64().unwrap();
    assert_eq!(acknowledged, 4000, "{s}");
    assert_verified(s, acknowledged);
    let f = &s["firehose"];
    assert_eq!(f["drained"], true, "{f}");
    assert_eq!(f["delivered_bytes"], acknowledged * 1024, "{f}");
    // 4 MB of records in 1 MiB buffers: cut by size, then the rest.
    assert!(f["objects"].as_u64().unwrap() >= 4, "{f}");
    assert_eq!(f["ragged_objects"], 0, "{f}");
    assert_eq!(f["objects_not_compressed"], 0, "{f}");
    let freshness = &f["freshness_ms"];
    assert!(
        freshness["p50"].as_u64().unwrap() <= freshness["p99"].as_u64().unwrap(),
        "{f}"
    );
    assert!(
        f["delivered_to_last_mb_per_s"].as_f64().unwrap() > 0.0,
        "{f}"
    );
}

#[tokio::test]
async fn firehose_reads_back_every_acknowledged_record_from_the_delivered_objects() {
    let stream = unique_name("bench-fh");
    let s = firehose_run(&stream, "UNCOMPRESSED");
    assert_eq!(s["workload"], "firehose");
    assert_eq!(s["batch_size"], 500);
    assert_delivered(&s);
    let f = &s["firehose"];
    assert_eq!(f["stored_bytes"], f["delivered_bytes"], "{f}");
    assert_firehose_cleaned_up(&stream, f["bucket"].as_str().unwrap()).await;
}

#[tokio::test]
async fn firehose_with_gzip_inflates_the_objects_to_verify_them() {
    let stream = unique_name("bench-fhgz");
    let s = firehose_run(&stream, "GZIP");
    assert_delivered(&s);
    let f = &s["firehose"];
    assert_eq!(f["compression"], "GZIP");
    assert!(
        f["stored_bytes"].as_u64().unwrap() < f["delivered_bytes"].as_u64().unwrap(),
        "{f}"
    );
    assert_firehose_cleaned_up(&stream, f["bucket"].as_str().unwrap()).await;
}
