//! Firehose record transformation through the AWS SDK for Rust against
//! `riffle serve`: the Lambda processor's function is a Rust handler
//! (examples/firehose_transform_handler.rs) run unmodified through AWS's
//! `lambda_runtime` crate as a `[functions]` command. Objects are read back
//! from the embedded S3 and compared exactly.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{
    BufferingHints, DeliveryStreamStatus, ExtendedS3DestinationConfiguration,
    ProcessingConfiguration, Processor, ProcessorParameter, ProcessorParameterName, ProcessorType,
    Record,
};
use common::{Riffle, eventually, sdk_config};
use serde_json::Value;

const DELIVERY_TIME_MAX: Duration = Duration::from_secs(60);
const ROLE: &str = "arn:aws:iam::000000000000:role/firehose-delivery";
const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:rust-transform";

/// The example cargo built beside this test (`target/<profile>/examples/`).
fn handler() -> PathBuf {
    let test = std::env::current_exe().expect("the test's own path");
    let profile = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test is in target/<profile>/deps");
    let handler = profile.join("examples/firehose_transform_handler");
    assert!(
        handler.is_file(),
        "{} is missing: `cargo test -p riffle` builds it (a `--test` filter alone does not; \
         build it with `cargo build -p riffle --example firehose_transform_handler`)",
        handler.display()
    );
    handler
}

/// A server whose config file defines the Rust handler as `rust-transform`.
fn start() -> (Riffle, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("riffle.toml");
    let toml = format!(
        "[functions.rust-transform]\ncommand = [{:?}]\ntimeout_seconds = 2\nmax_instances = 2\n",
        handler().display().to_string()
    );
    std::fs::write(&config, toml).expect("write the config file");
    let riffle = Riffle::start_with_args(&["--config", config.to_str().expect("a UTF-8 path")]);
    (riffle, dir)
}

fn processing(retries: &str) -> ProcessingConfiguration {
    let param = |name, value: &str| {
        ProcessorParameter::builder()
            .parameter_name(name)
            .parameter_value(value)
            .build()
            .expect("name and value are set")
    };
    let processor = Processor::builder()
        .r#type(ProcessorType::Lambda)
        .parameters(param(ProcessorParameterName::LambdaArn, FUNCTION_ARN))
        .parameters(param(
            ProcessorParameterName::LambdaNumberOfRetries,
            retries,
        ))
        .build()
        .expect("the type is set");
    ProcessingConfiguration::builder()
        .enabled(true)
        .processors(processor)
        .build()
}

async fn create(endpoint: &str, name: &str, retries: &str) {
    let firehose = aws_sdk_firehose::Client::new(&sdk_config(endpoint));
    let s3 = s3_client(endpoint);
    s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("CreateBucket");
    let destination = ExtendedS3DestinationConfiguration::builder()
        .role_arn(ROLE)
        .bucket_arn(format!("arn:aws:s3:::{name}"))
        .buffering_hints(
            BufferingHints::builder()
                .size_in_mbs(1)
                .interval_in_seconds(1)
                .build(),
        )
        .processing_configuration(processing(retries))
        .build()
        .expect("role and bucket ARNs are set");
    firehose
        .create_delivery_stream()
        .delivery_stream_name(name)
        .extended_s3_destination_configuration(destination)
        .send()
        .await
        .expect("CreateDeliveryStream");
    eventually(
        Duration::from_secs(10),
        "the stream to be ACTIVE",
        || async {
            let out = firehose
                .describe_delivery_stream()
                .delivery_stream_name(name)
                .send()
                .await
                .ok()?;
            let status = out.delivery_stream_description?.delivery_stream_status;
            (status == DeliveryStreamStatus::Active).then_some(())
        },
    )
    .await;
}

fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&sdk_config(endpoint))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn put(endpoint: &str, name: &str, records: &[&[u8]]) {
    let firehose = aws_sdk_firehose::Client::new(&sdk_config(endpoint));
    let entries = records
        .iter()
        .map(|data| Record::builder().data(Blob::new(*data)).build())
        .collect::<Result<Vec<_>, _>>()
        .expect("every record has data");
    let out = firehose
        .put_record_batch()
        .delivery_stream_name(name)
        .set_records(Some(entries))
        .send()
        .await
        .expect("PutRecordBatch");
    assert_eq!(out.failed_put_count, 0);
}

/// The bucket's objects (key, body) once one key starts with each prefix
/// of `wanted` (`""` for the destination's `YYYY/` keys).
async fn objects(endpoint: &str, bucket: &str, wanted: &[&str]) -> Vec<(String, Vec<u8>)> {
    let s3 = s3_client(endpoint);
    let keys = eventually(DELIVERY_TIME_MAX, "the objects", || async {
        let listed = s3.list_objects_v2().bucket(bucket).send().await.ok()?;
        let keys: Vec<String> = listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_owned))
            .collect();
        let found = |prefix: &str| {
            keys.iter().any(|k| match prefix {
                "" => k.starts_with("20"),
                p => k.starts_with(p),
            })
        };
        wanted.iter().all(|p| found(p)).then_some(keys)
    })
    .await;
    let mut out = Vec::new();
    for key in keys {
        let object = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .expect("GetObject");
        let body = object.body.collect().await.expect("the body").into_bytes();
        out.push((key, body.to_vec()));
    }
    out
}

/// The error records of the `processing-failed/` objects: (errorCode,
/// attemptsMade, rawData decoded).
fn failures(objects: &[(String, Vec<u8>)]) -> Vec<(String, u64, Vec<u8>)> {
    let mut out = Vec::new();
    for (key, body) in objects
        .iter()
        .filter(|(k, _)| k.starts_with("processing-failed/"))
    {
        assert!(body.ends_with(b"\n"), "{key} ends in a newline");
        for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let record: Value = serde_json::from_slice(line).expect("an error record is JSON");
            assert_eq!(record["lambdaArn"], FUNCTION_ARN);
            let raw = base64_simd::STANDARD
                .decode_to_vec(record["rawData"].as_str().expect("rawData"))
                .expect("rawData is base64");
            out.push((
                record["errorCode"].as_str().expect("errorCode").to_owned(),
                record["attemptsMade"].as_u64().expect("attemptsMade"),
                raw,
            ));
        }
    }
    out
}

#[tokio::test]
async fn a_rust_handler_transforms_drops_and_fails_records() {
    let (riffle, _dir) = start();
    create(&riffle.endpoint, "rust-orders", "0").await;
    put(
        &riffle.endpoint,
        "rust-orders",
        &[b"one\n", b"drop two\n", b"fail three\n", b"four\n"],
    )
    .await;

    let objects = objects(&riffle.endpoint, "rust-orders", &["", "processing-failed/"]).await;
    let delivered: Vec<&[u8]> = objects
        .iter()
        .filter(|(k, _)| k.starts_with("20"))
        .map(|(_, body)| body.as_slice())
        .collect();
    assert_eq!(delivered, [&b"rust:one\nrust:four\n"[..]]);
    assert_eq!(
        failures(&objects),
        [(
            "Lambda.ProcessingFailedStatus".to_owned(),
            1,
            b"fail three\n".to_vec()
        )]
    );
}

#[tokio::test]
async fn a_rust_handler_that_crashes_or_times_out_fails_every_record_of_the_invocation() {
    let (riffle, _dir) = start();
    for (name, records) in [
        ("rust-crash", [&b"crash now\n"[..], b"innocent\n"]),
        ("rust-sleep", [&b"sleep long\n"[..], b"innocent\n"]),
    ] {
        create(&riffle.endpoint, name, "1").await;
        put(&riffle.endpoint, name, &records).await;
        let objects = objects(&riffle.endpoint, name, &["processing-failed/"]).await;
        let expected: Vec<(String, u64, Vec<u8>)> = records
            .iter()
            .map(|r| ("Lambda.FunctionError".to_owned(), 2, r.to_vec()))
            .collect();
        assert_eq!(failures(&objects), expected, "{name}");
        assert!(
            objects
                .iter()
                .all(|(k, _)| k.starts_with("processing-failed/")),
            "{name}: nothing was transformed"
        );
    }
}
