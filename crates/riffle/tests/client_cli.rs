//! The client commands against a real server: `riffle stream
//! create|list|describe|delete`, `riffle put` (arguments and stdin) and
//! `riffle tail`, checked through the AWS SDK for Rust, including a tail
//! that follows a shard split.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Riffle, create_active, records_from_trim_horizon, unique_name, wait_active};

/// Bounds every wait for a command's output; reaching it fails the test.
const OUTPUT_TIME_MAX: Duration = Duration::from_secs(30);

fn riffle(endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_riffle"));
    command
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
        "riffle {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Lines of a running command's stream, read on a thread.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

/// Kills a tail the test no longer needs (or that failed it).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn streams_are_managed_and_records_put_and_tailed_from_the_command_line() {
    let riffle_server = Riffle::start();
    let endpoint = &riffle_server.endpoint;
    let client = riffle_server.client();
    let name = unique_name("cli");

    assert_eq!(
        stdout_of(endpoint, &["stream", "create", &name, "--shards", "2"]),
        format!("{name}\n")
    );
    let summary = client
        .describe_stream_summary()
        .stream_name(&name)
        .send()
        .await
        .unwrap()
        .stream_description_summary
        .unwrap();
    assert_eq!(summary.open_shard_count, 2);
    assert_eq!(summary.stream_status.as_str(), "ACTIVE");
    assert!(
        stdout_of(endpoint, &["stream", "list"])
            .lines()
            .any(|l| l == name)
    );
    let described = stdout_of(endpoint, &["stream", "describe", &name]);
    assert!(described.contains("status:     ACTIVE"), "{described}");
    assert!(
        described.contains("shardId-000000000001  170141183460469231731687303715884105728..340282366920938463463374607431768211455  open"),
        "{described}"
    );

    // Arguments, then stdin, each answer a shard and a sequence number.
    let put = stdout_of(endpoint, &["put", &name, "-k", "user-1", "first", "second"]);
    let answers: Vec<(&str, &str)> = put
        .lines()
        .map(|l| l.split_once(' ').expect("shard and sequence"))
        .collect();
    assert_eq!(answers.len(), 2);
    let mut piped = riffle(endpoint, &["put", &name, "-k", "user-1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    piped
        .stdin
        .take()
        .unwrap()
        .write_all(b"third\nfourth\n")
        .unwrap();
    let output = piped.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 2);

    // What the SDK reads is what was put, in order, on the shard reported.
    let (shard, first_sequence) = answers[0];
    let records = records_from_trim_horizon(&client, &name, shard).await;
    let data: Vec<&[u8]> = records.iter().map(|r| r.data.as_ref()).collect();
    assert_eq!(data, [&b"first"[..], b"second", b"third", b"fourth"]);
    assert_eq!(records[0].sequence_number, first_sequence);

    let tailed = stdout_of(
        endpoint,
        &[
            "tail",
            &name,
            "--from",
            "trim-horizon",
            "--raw",
            "--count",
            "4",
        ],
    );
    assert_eq!(tailed, "first\nsecond\nthird\nfourth\n");

    let missing = run(endpoint, &["stream", "describe", "no-such-stream"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "error: ResourceNotFoundException: Stream no-such-stream under account 000000000000 not found.\n"
    );

    assert!(stdout_of(endpoint, &["stream", "delete", &name]).is_empty());
    assert!(
        !stdout_of(endpoint, &["stream", "list"])
            .lines()
            .any(|l| l == name)
    );
}

#[tokio::test]
async fn tail_follows_a_split_shard_into_its_child_in_order() {
    let riffle_server = Riffle::start();
    let endpoint = riffle_server.endpoint.clone();
    let client = riffle_server.client();
    let name = unique_name("follow");
    create_active(&client, &name, 1).await;

    let mut tail = Running(
        riffle(&endpoint, &["tail", &name, "--raw", "--count", "6"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = lines_of(tail.0.stdout.take().unwrap());
    let stderr = lines_of(tail.0.stderr.take().unwrap());
    // It announces once its iterators are taken: from then on nothing put
    // is missed.
    let announced = stderr
        .recv_timeout(OUTPUT_TIME_MAX)
        .expect("tail announces itself");
    assert_eq!(
        announced,
        format!("following 1 shard(s) of {name} from the latest record")
    );

    let put = |data: &'static str| {
        let client = client.clone();
        let name = name.clone();
        async move {
            client
                .put_record()
                .stream_name(&name)
                .partition_key("key")
                .data(aws_sdk_kinesis::primitives::Blob::new(data))
                .send()
                .await
                .unwrap();
        }
    };
    for data in ["p1", "p2", "p3"] {
        put(data).await;
    }
    client
        .split_shard()
        .stream_name(&name)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("170141183460469231731687303715884105728")
        .send()
        .await
        .unwrap();
    wait_active(&client, &name).await;
    for data in ["c1", "c2", "c3"] {
        put(data).await;
    }

    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(
            stdout
                .recv_timeout(OUTPUT_TIME_MAX)
                .expect("a tailed record"),
        );
    }
    assert_eq!(got, ["p1", "p2", "p3", "c1", "c2", "c3"]);
    // --count 6: it ends by itself, successfully.
    let status = tail.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
