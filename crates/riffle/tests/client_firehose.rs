//! `riffle firehose create|list|describe|delete|put` against a real server:
//! lines put from stdin arrive as an object in a bucket of the embedded S3,
//! read back through the AWS SDK for Rust; a KinesisStreamAsSource stream
//! names its source; an unknown delivery stream fails in AWS's words.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Riffle, eventually, unique_name};

/// Bounds the wait for a delivery (the stream buffers for 1 s).
const DELIVERY_TIME_MAX: Duration = Duration::from_secs(30);

fn riffle(endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_riffle"));
    command
        .arg("firehose")
        .args(args)
        .args(["--endpoint", endpoint])
        .env_remove("RIFFLE_ENDPOINT")
        .stdin(Stdio::null());
    command
}

fn run(endpoint: &str, args: &[&str]) -> Output {
    riffle(endpoint, args).output().expect("run riffle")
}

fn stdout_of(endpoint: &str, args: &[&str]) -> String {
    let output = run(endpoint, args);
    assert!(
        output.status.success(),
        "riffle firehose {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// `riffle firehose put NAME` with `input` on stdin.
fn put_stdin(endpoint: &str, name: &str, input: &[u8]) -> Output {
    let mut child = riffle(endpoint, &["put", name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn riffle firehose put");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    child
        .wait_with_output()
        .expect("wait for riffle firehose put")
}

fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "AKIDTEST",
            "secret",
            None,
            None,
            "riffle-tests",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// The bucket's objects, concatenated in key order.
async fn bucket_contents(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<u8> {
    let listing = s3
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("ListObjectsV2");
    let mut keys: Vec<String> = listing
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    keys.sort();
    let mut all = Vec::new();
    for key in keys {
        let object = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .send()
            .await
            .expect("GetObject");
        let body = object.body.collect().await.expect("read the object");
        all.extend_from_slice(&body.into_bytes());
    }
    all
}

#[tokio::test]
async fn stdin_lines_put_from_the_command_line_arrive_in_the_bucket_one_per_line() {
    let server = Riffle::start();
    let endpoint = &server.endpoint;
    let s3 = s3_client(endpoint);
    let bucket = unique_name("cli-deliveries");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    let name = unique_name("cli-firehose");

    let created = stdout_of(
        endpoint,
        &[
            "create",
            &name,
            "--bucket",
            &bucket,
            "--interval-seconds",
            "1",
            "--size-mb",
            "1",
        ],
    );
    assert_eq!(created, format!("{name}\n"));

    // The last line has no newline: the command adds it, so the object
    // still holds one record per line.
    let put = put_stdin(endpoint, &name, b"alpha\nbeta\ngamma");
    assert!(
        put.status.success(),
        "put failed: {}",
        String::from_utf8_lossy(&put.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&put.stdout), "3 records put\n");

    let want = b"alpha\nbeta\ngamma\n".to_vec();
    let (s3, bucket) = (&s3, &bucket);
    eventually(
        DELIVERY_TIME_MAX,
        "the lines to arrive in the bucket",
        || {
            let want = want.clone();
            async move { (bucket_contents(s3, bucket).await == want).then_some(()) }
        },
    )
    .await;

    let listed = stdout_of(endpoint, &["list"]);
    assert!(listed.lines().any(|l| l == name), "list: {listed}");
    let described = stdout_of(endpoint, &["describe", &name]);
    for line in [
        format!("name:        {name}"),
        "status:      ACTIVE".to_owned(),
        "type:        DirectPut".to_owned(),
        "source:      DirectPut".to_owned(),
        format!("bucket:      arn:aws:s3:::{bucket}"),
        "compression: UNCOMPRESSED".to_owned(),
        "buffering:   1 s, 1 MB".to_owned(),
    ] {
        assert!(
            described.lines().any(|l| l == line),
            "describe lacks {line:?}:\n{described}"
        );
    }

    assert_eq!(stdout_of(endpoint, &["delete", &name]), "");
    let listed = stdout_of(endpoint, &["list"]);
    assert!(!listed.lines().any(|l| l == name), "still listed: {listed}");
}

#[tokio::test]
async fn a_delivery_stream_reading_a_data_stream_names_it_its_prefix_and_compression() {
    let server = Riffle::start();
    let endpoint = &server.endpoint;
    let client = server.client();
    let source = unique_name("cli-source");
    common::create_active(&client, &source, 1).await;
    let source_arn = client
        .describe_stream_summary()
        .stream_name(&source)
        .send()
        .await
        .expect("DescribeStreamSummary")
        .stream_description_summary
        .expect("a summary")
        .stream_arn;
    let s3 = s3_client(endpoint);
    s3.create_bucket()
        .bucket("cli-lake")
        .send()
        .await
        .expect("CreateBucket");
    let name = unique_name("cli-from-stream");

    stdout_of(
        endpoint,
        &[
            "create",
            &name,
            "--bucket",
            "cli-lake",
            "--source-stream",
            &source,
            "--prefix",
            "raw-data/",
            "--compression",
            "GZIP",
        ],
    );

    let described = stdout_of(endpoint, &["describe", &name]);
    for line in [
        "type:        KinesisStreamAsSource".to_owned(),
        format!("source:      {source_arn}"),
        "prefix:      raw-data/".to_owned(),
        "compression: GZIP".to_owned(),
    ] {
        assert!(
            described.lines().any(|l| l == line),
            "describe lacks {line:?}:\n{described}"
        );
    }
}

#[tokio::test]
async fn an_unknown_delivery_stream_fails_with_aws_resource_not_found() {
    let server = Riffle::start();
    let endpoint = &server.endpoint;
    for args in [
        &["describe", "no-such-firehose"][..],
        &["delete", "no-such-firehose"],
        &["put", "no-such-firehose", "x"],
    ] {
        let output = run(endpoint, args);
        assert_eq!(output.status.code(), Some(1), "riffle firehose {args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with("error: ResourceNotFoundException: ")
                && stderr.contains("no-such-firehose"),
            "riffle firehose {args:?}: {stderr}"
        );
    }
}
