//! The end-to-end test harness: starts the real `riffle` binary on a free
//! port and a temporary data directory, finds its endpoint in the banner,
//! and hands out clients — the official AWS SDK for Rust, or raw HTTP for
//! requests no SDK would send.
//!
//! A server never outlives its test process: [`Riffle`]'s `Drop` kills it,
//! and the child also asks the kernel (`PR_SET_PDEATHSIG`) to kill it when
//! the thread that spawned it dies — which, for a server shared through a
//! `static`, is a keeper thread that lives as long as the test process.

// Each test file uses its own subset of the harness.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_sdk_kinesis::types::{ConsumerStatus, StreamStatus};
use tempfile::TempDir;

/// How long a server may take to print its banner (a debug build opening
/// a data directory with many logs on a busy 2-core CI machine).
const START_TIME_MAX: Duration = Duration::from_secs(30);
/// How long a graceful shutdown may take before the test calls it hung.
const STOP_TIME_MAX: Duration = Duration::from_secs(30);
/// How long a freshly created stream may take to become ACTIVE with
/// `--status-delay-ms 0`.
const ACTIVE_TIME_MAX: Duration = Duration::from_secs(10);

/// A running `riffle serve`, killed when dropped.
pub struct Riffle {
    child: Option<Child>,
    /// The endpoint from the banner, e.g. `http://127.0.0.1:45123`.
    pub endpoint: String,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Holds the server's stderr (its logs), shown when a start fails.
    log_dir: TempDir,
    /// The data directory, when this server owns it.
    _owned_dir: Option<TempDir>,
    /// Dropping it lets the keeper thread (the child's "parent") end.
    _keeper: mpsc::Sender<()>,
}

impl Riffle {
    /// Starts a server on a fresh temporary data directory.
    pub fn start() -> Riffle {
        Riffle::start_with_args(&[])
    }

    /// Starts a server on a fresh data directory with extra `serve` flags.
    pub fn start_with_args(extra: &[&str]) -> Riffle {
        let dir = tempfile::tempdir().expect("create a temporary data directory");
        let mut riffle = Riffle::start_in(dir.path(), extra);
        riffle._owned_dir = Some(dir);
        riffle
    }

    /// Starts a server on `data_dir` (which the caller keeps alive), e.g. to
    /// restart on the data of a killed server.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Riffle {
        let log_dir = tempfile::tempdir().expect("create a temporary log directory");
        let log_path = log_dir.path().join("stderr.log");
        let mut command = serve_command(data_dir, extra);
        command.stderr(std::fs::File::create(&log_path).expect("create the log file"));
        let (child, keeper) = spawn_kept(command);
        let mut riffle = Riffle {
            child: Some(child),
            endpoint: String::new(),
            addr: "127.0.0.1:0".parse().expect("a valid address"),
            data_dir: data_dir.to_owned(),
            log_dir,
            _owned_dir: None,
            _keeper: keeper,
        };
        let endpoint = riffle.read_endpoint();
        riffle.addr = endpoint
            .strip_prefix("http://")
            .or_else(|| endpoint.strip_prefix("https://"))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                panic!("the banner's endpoint {endpoint:?} is not http(s)://IP:PORT")
            });
        riffle.endpoint = endpoint;
        riffle
    }

    /// Reads stdout until the banner's `endpoint:` line, then keeps
    /// draining stdout on a thread so the server never blocks on it.
    fn read_endpoint(&mut self) -> String {
        let stdout = self
            .child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .expect("stdout is piped");
        let (found, endpoint) = mpsc::channel();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = endpoint_of(&line)
                    && let Some(found) = found.take()
                {
                    let _ = found.send(url.to_owned());
                }
            }
        });
        match endpoint.recv_timeout(START_TIME_MAX) {
            Ok(endpoint) => endpoint,
            Err(_) => {
                let status = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                panic!(
                    "riffle serve printed no endpoint within {START_TIME_MAX:?} (exit status: {status:?}); its log:\n{}",
                    self.log()
                )
            }
        }
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// An AWS SDK client for this server. Build one per test: a client's
    /// connection pool belongs to the tokio runtime it first ran on.
    pub fn client(&self) -> Client {
        client_for(&self.endpoint)
    }

    /// SIGKILL, then reap. Nothing is flushed: a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // already dead is fine
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        signal(&child, libc::SIGTERM);
        let deadline = Instant::now() + STOP_TIME_MAX;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "riffle serve did not exit within {STOP_TIME_MAX:?} of SIGTERM; its log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal without waiting.
    pub fn signal(&self, signal_number: i32) {
        signal(
            self.child.as_ref().expect("the server is running"),
            signal_number,
        );
    }

    /// Waits (bounded) for the server to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the server is running");
        let deadline = Instant::now() + STOP_TIME_MAX;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the server") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "riffle serve did not exit; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Riffle {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `riffle serve --listen 127.0.0.1:0 --data-dir DIR --status-delay-ms 0 …`
/// with stdout piped. `extra` may set its own `--status-delay-ms`, but must
/// not repeat `--listen` or `--data-dir`: clap refuses a
/// flag given twice.
pub fn serve_command(data_dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_riffle"));
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir);
    if !extra.contains(&"--status-delay-ms") {
        command.args(["--status-delay-ms", "0"]);
    }
    // The web console's default is a fixed port; servers in tests bind none.
    if !extra.contains(&"--console-listen") {
        command.args(["--console-listen", "off"]);
    }
    // The caller's shell must not change what the test asked for.
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("RIFFLE_") {
            command.env_remove(var);
        }
    }
    // These tests check behaviour, not AWS's per-shard rate limits (issue 4
    // tests those with a controlled clock): they write and poll far faster
    // than 5 reads/s per shard. An environment variable, so a test can still
    // turn the limits on with the flag (flag > environment), and so that a
    // binary without the setting simply ignores it.
    command.env("RIFFLE_THROUGHPUT_LIMITS", "off");
    command
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    command
}

/// Spawns `command` from a keeper thread that outlives it, and asks the
/// kernel to SIGKILL the child when that thread ends. `PR_SET_PDEATHSIG`
/// fires when the spawning *thread* exits, so the spawn must not happen on
/// a test thread, which ends with its test. The keeper ends when the
/// returned sender is dropped, or with the process.
pub fn spawn_kept(mut command: Command) -> (Child, mpsc::Sender<()>) {
    // SAFETY: the closure only calls prctl and getppid, both
    // async-signal-safe, between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (spawned_tx, spawned) = mpsc::channel();
    let (keep, until_dropped) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _ = spawned_tx.send(command.spawn());
        let _ = until_dropped.recv(); // returns once the sender is dropped
    });
    let child = spawned
        .recv()
        .expect("the keeper thread reports the spawn")
        .expect("spawn the riffle binary");
    (child, keep)
}

fn signal(child: &Child, signal_number: i32) {
    let pid = i32::try_from(child.id()).expect("pids fit in i32");
    // SAFETY: kill(2) on our own, not yet reaped, child.
    let rc = unsafe { libc::kill(pid, signal_number) };
    assert_eq!(rc, 0, "kill({pid}, {signal_number}) failed");
}

/// The URL of a banner line `  endpoint:  http://…` (or `https://…`), the
/// shape the README promises.
pub fn endpoint_of(line: &str) -> Option<&str> {
    let rest = line.trim().strip_prefix("endpoint:")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let url = rest.trim();
    let scheme = url.starts_with("http://") || url.starts_with("https://");
    (scheme && !url.contains(char::is_whitespace)).then_some(url)
}

/// An SDK client with static test credentials, as a user would configure
/// it against a local endpoint. Retries are off so each call is one request.
pub fn client_for(endpoint: &str) -> Client {
    Client::from_conf(config_for(endpoint).build())
}

/// The configuration of [`client_for`], for a test that changes a part of
/// it (its HTTP client, its clock).
pub fn config_for(endpoint: &str) -> aws_sdk_kinesis::config::Builder {
    aws_sdk_kinesis::config::Builder::from(&sdk_config(endpoint))
}

/// What every service's SDK client in the tests shares: the region, the
/// test credentials, the endpoint, and no retries (each call is one
/// request). `aws_sdk_<service>::Client::new(&sdk_config(endpoint))`.
pub fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST",
            "secret",
            None,
            None,
            "riffle-tests",
        )))
        .endpoint_url(endpoint)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build()
}

/// A stream name no other test (or test process) uses.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` every few milliseconds until it returns `Some`, failing
/// the test after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the stream is ACTIVE.
pub async fn wait_active(client: &Client, name: &str) {
    let what = format!("stream {name} to become ACTIVE");
    eventually(ACTIVE_TIME_MAX, &what, move || async move {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .ok()?;
        let description = summary.stream_description_summary()?;
        (description.stream_status() == &StreamStatus::Active).then_some(())
    })
    .await
}

/// Creates a provisioned stream and waits until it is ACTIVE.
pub async fn create_active(client: &Client, name: &str, shards: i32) {
    client
        .create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStream {name}: {e:?}"));
    wait_active(client, name).await;
}

/// One GetRecords call on `shard` of `stream` from its trim horizon.
pub async fn records_from_trim_horizon(
    client: &Client,
    stream: &str,
    shard: &str,
) -> Vec<aws_sdk_kinesis::types::Record> {
    let iterator = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetShardIterator {stream}/{shard}: {e:?}"))
        .shard_iterator
        .expect("an iterator");
    client
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetRecords {stream}/{shard}: {e:?}"))
        .records
}

/// Subscribes `consumer` to shard 0 from its trim horizon and returns the
/// first event, within ten seconds.
pub async fn first_event_from_trim_horizon(
    client: &Client,
    consumer: &str,
) -> aws_sdk_kinesis::types::SubscribeToShardEvent {
    let position = aws_sdk_kinesis::types::StartingPosition::builder()
        .r#type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .build()
        .expect("a starting position");
    let mut events = client
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id("shardId-000000000000")
        .starting_position(position)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SubscribeToShard {consumer}: {e:?}"))
        .event_stream;
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("an event in time")
        .expect("a well-formed event")
        .expect("the stream has an event");
    event
        .as_subscribe_to_shard_event()
        .expect("a SubscribeToShardEvent")
        .clone()
}

/// Registers consumer `name` on `stream` (of the default account and
/// region) and waits until it is ACTIVE; returns its ARN.
pub async fn register_active(client: &Client, stream: &str, name: &str) -> String {
    let stream_arn = format!("arn:aws:kinesis:us-east-1:000000000000:stream/{stream}");
    let out = client
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("RegisterStreamConsumer {name}: {e:?}"));
    let consumer = out.consumer().expect("a registered consumer");
    assert_eq!(consumer.consumer_status(), &ConsumerStatus::Creating);
    let arn = consumer.consumer_arn().to_owned();
    eventually(ACTIVE_TIME_MAX, "consumer ACTIVE", || async {
        let out = client
            .describe_stream_consumer()
            .consumer_arn(&arn)
            .send()
            .await
            .ok()?;
        let status = out.consumer_description()?.consumer_status().clone();
        (status == ConsumerStatus::Active).then_some(())
    })
    .await;
    arn
}

/// The AWS error code of an SDK error (`__type`), and its message.
pub fn error_of<E, R>(err: &aws_sdk_kinesis::error::SdkError<E, R>) -> (String, String)
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(service) => (
            service.code().unwrap_or_default().to_owned(),
            service.message().unwrap_or_default().to_owned(),
        ),
        None => panic!("expected a service error, got {err:?}"),
    }
}

/// A raw HTTP/1.1 response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics with the body if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// The headers a signed SDK request carries. Signatures are not verified
/// yet, so any well-formed ones do.
pub const SIGNED: [(&str, &str); 2] = [
    (
        "Authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/kinesis/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0123456789abcdef",
    ),
    ("X-Amz-Date", "20260101T000000Z"),
];

/// A JSON 1.1 request for `action`, signed, with `body`.
pub fn post_action(addr: SocketAddr, action: &str, body: &[u8]) -> RawResponse {
    let target = format!("Kinesis_20131202.{action}");
    let mut headers = vec![
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", target.as_str()),
    ];
    headers.extend(SIGNED);
    post(addr, &headers, body)
}

/// Sends one `POST /` with exactly these headers (plus Host, Content-Length
/// and `Connection: close`) and reads the whole response.
pub fn post(addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).expect("connect to riffle");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a read timeout");
    let mut head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .expect("send the request head");
    // A server may answer (e.g. 413) before reading a huge body; a failed
    // write then is fine as long as the response arrives.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..split]).expect("an ASCII response head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// MD5 of a partition key as the 128-bit big-endian hash key Kinesis routes by.
pub fn hash_key_of(partition_key: &str) -> u128 {
    use md5::{Digest, Md5};
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}
