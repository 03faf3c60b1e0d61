//! Idle-scale benchmark (issue 6): resident memory, threads, descriptors and
//! start-up time of a server holding 1,000 streams × 4 shards, each shard
//! with one record (so every log has a segment on disk).
//!
//! It drives the optimised `riffle` binary through the AWS SDK for Rust:
//! fills a fresh data directory, waits until the server is idle and reads
//! `/proc/<pid>/status`; then, for several rounds, stops it with SIGTERM and
//! restarts it on the same directory, then SIGKILLs it and restarts it
//! again, timing each start from `spawn` until the first ListStreams
//! succeeds. At the end it reads every shard back (each must hold exactly
//! the record written to it) and measures again.
//!
//! `cargo bench -p riffle --bench idle`. Environment:
//! `RIFFLE_IDLE_STREAMS` (default 1000), `RIFFLE_IDLE_ROUNDS` (default 3),
//! `RIFFLE_IDLE_BIN` (another `riffle` binary to measure, e.g. a copy of an
//! older build, for before/after comparisons), `RIFFLE_IDLE_DATA_DIR` (an
//! empty directory to fill and keep, instead of a temporary one).
//! The targets are printed beside the measurements; the process exits
//! non-zero only when something failed (a request, a lost record, a server
//! that did not start), never because a target was missed.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType, StreamStatus};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = Error> = std::result::Result<T, E>;

const SHARDS_PER_STREAM: usize = 4;
/// Requests in flight while filling and verifying.
const CONCURRENCY: usize = 32;
/// Targets of issue 6 for 1,000 streams × 4 shards on a 2-core machine.
const RSS_MB_TARGET: f64 = 150.0;
const START_S_TARGET: f64 = 2.0;
/// How long a server may take to answer its first request before the
/// benchmark calls it failed.
const START_TIME_MAX: Duration = Duration::from_secs(120);
const STOP_TIME_MAX: Duration = Duration::from_secs(60);
const ACTIVE_TIME_MAX: Duration = Duration::from_secs(60);
/// The server counts as idle once it used at most this much CPU over
/// [`IDLE_WINDOW`] (it still ticks its background duties every 100 ms).
const IDLE_CPU_MAX: Duration = Duration::from_millis(30);
const IDLE_WINDOW: Duration = Duration::from_secs(1);
const IDLE_TIME_MAX: Duration = Duration::from_secs(60);

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idle benchmark failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn env_usize(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(v) => Ok(v
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a number"))?),
        Err(_) => Ok(default),
    }
}

fn run() -> Result<()> {
    // `cargo bench` passes `--bench`; this benchmark takes no arguments.
    let streams = env_usize("RIFFLE_IDLE_STREAMS", 1000)?;
    let rounds = env_usize("RIFFLE_IDLE_ROUNDS", 3)?.max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let temp = tempfile::tempdir()?;
    // A kept data directory can be profiled afterwards (e.g. `perf record`
    // of a start-up on it).
    let data = match std::env::var_os("RIFFLE_IDLE_DATA_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => temp.path().to_owned(),
    };
    let data = data.as_path();
    if std::fs::read_dir(data).is_ok_and(|mut d| d.next().is_some()) {
        return Err(format!("{} is not empty", data.display()).into());
    }
    let logs = tempfile::tempdir()?;
    let mut report = Report::new(streams);

    println!(
        "idle-scale: {streams} streams × {SHARDS_PER_STREAM} shards, fsync=always, data in {}",
        data.display()
    );
    let mut server = Server::start(data, logs.path())?;
    let ready = rt.block_on(server.wait_ready())?;
    report.fresh_start = ready;
    let t = Instant::now();
    rt.block_on(fill(&server.client, streams))?;
    report.fill = t.elapsed();
    println!(
        "filled in {:.1} s; waiting until idle",
        report.fill.as_secs_f64()
    );
    server.wait_idle()?;
    report.filled = server.sample()?;
    report.disk = disk_usage(data)?;

    for round in 1..=rounds {
        report.stop_term.push(server.terminate()?);
        let (s, restart) = start_again(&rt, data, logs.path(), streams)?;
        server = s;
        report.after_term.push(restart);
        server.kill();
        let (s, restart) = start_again(&rt, data, logs.path(), streams)?;
        server = s;
        report.after_kill.push(restart);
        println!("round {round}/{rounds} done");
    }
    let t = Instant::now();
    rt.block_on(verify(&server.client, streams))?;
    report.verify = t.elapsed();
    server.wait_idle()?;
    report.after_reads = server.sample()?;
    server.kill();
    report.print();
    Ok(())
}

/// Starts a server on `data`, times it until it answers, checks it lists
/// every stream, and samples it at once and again when idle.
fn start_again(
    rt: &tokio::runtime::Runtime,
    data: &Path,
    logs: &Path,
    streams: usize,
) -> Result<(Server, Restart)> {
    let server = Server::start(data, logs)?;
    let ready = rt.block_on(server.wait_ready())?;
    let at_ready = server.sample()?;
    let listed = rt.block_on(count_streams(&server.client))?;
    if listed != streams {
        return Err(
            format!("after a restart ListStreams lists {listed} streams, not {streams}").into(),
        );
    }
    server.wait_idle()?;
    let idle = server.sample()?;
    Ok((
        server,
        Restart {
            ready,
            at_ready,
            idle,
        },
    ))
}

// ------------------------------------------------------------------ server

/// A running `riffle serve`, SIGKILLed when dropped.
struct Server {
    child: Option<Child>,
    pid: u32,
    spawned_at: Instant,
    client: Client,
}

impl Server {
    fn start(data: &Path, logs: &Path) -> Result<Server> {
        let bin = std::env::var_os("RIFFLE_IDLE_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_riffle").into());
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(["--status-delay-ms", "0", "--fsync", "always"])
            .args(["--throughput-limits", "off"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(logs.join("stderr.log"))?);
        // The benchmark's own settings and the caller's shell must not
        // change the server's configuration.
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("RIFFLE_") {
                command.env_remove(var);
            }
        }
        // SAFETY: prctl is async-signal-safe. The server dies with this
        // process's main thread (which spawns every server) however the
        // benchmark ends.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let spawned_at = Instant::now();
        let mut child = command.spawn()?;
        let pid = child.id();
        let stdout = child.stdout.take().ok_or("stdout is piped")?;
        let mut server = Server {
            child: Some(child),
            pid,
            spawned_at,
            client: client_for("http://127.0.0.1:1"),
        };
        let endpoint = read_endpoint(stdout).map_err(|e| {
            let log = std::fs::read_to_string(logs.join("stderr.log")).unwrap_or_default();
            format!("{e}; server log:\n{log}")
        })?;
        server.client = client_for(&endpoint);
        Ok(server)
    }

    /// Polls ListStreams until it succeeds; the time since `spawn`.
    async fn wait_ready(&self) -> Result<Duration> {
        loop {
            match self.client.list_streams().limit(1).send().await {
                Ok(_) => return Ok(self.spawned_at.elapsed()),
                Err(e) if self.spawned_at.elapsed() > START_TIME_MAX => {
                    return Err(format!("the server did not answer ListStreams: {e:?}").into());
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }

    fn sample(&self) -> Result<Sample> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let kib = |key: &str| -> Result<u64> {
            let line = status
                .lines()
                .find(|l| l.starts_with(key))
                .ok_or_else(|| format!("no {key} in /proc/pid/status"))?;
            let n = line[key.len()..].trim().trim_end_matches("kB").trim();
            Ok(n.parse()?)
        };
        Ok(Sample {
            rss_kib: kib("VmRSS:")?,
            hwm_kib: kib("VmHWM:")?,
            threads: std::fs::read_dir(format!("/proc/{}/task", self.pid))?.count(),
            fds: std::fs::read_dir(format!("/proc/{}/fd", self.pid))?.count(),
        })
    }

    /// CPU time (user + system) used so far.
    fn cpu(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))?;
        // Fields after the parenthesised command name; utime and stime are
        // the 14th and 15th fields of the whole line.
        let rest = stat.rsplit_once(')').ok_or("bad /proc/pid/stat")?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Ok(Duration::from_millis(ticks * 1000 / hz))
    }

    /// Waits until the server has used at most [`IDLE_CPU_MAX`] of CPU
    /// over an [`IDLE_WINDOW`].
    fn wait_idle(&self) -> Result<()> {
        let deadline = Instant::now() + IDLE_TIME_MAX;
        let mut before = self.cpu()?;
        loop {
            std::thread::sleep(IDLE_WINDOW);
            let now = self.cpu()?;
            if now.saturating_sub(before) <= IDLE_CPU_MAX {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("the server never became idle".into());
            }
            before = now;
        }
    }

    /// SIGTERM, then waits for a clean exit; the time it took.
    fn terminate(&mut self) -> Result<Duration> {
        let mut child = self.child.take().ok_or("the server is not running")?;
        let t = Instant::now();
        // SAFETY: kill(2) on our own child, not yet reaped.
        if unsafe { libc::kill(self.pid as i32, libc::SIGTERM) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    return Err(format!("the server exited with {status} after SIGTERM").into());
                }
                return Ok(t.elapsed());
            }
            if t.elapsed() > STOP_TIME_MAX {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the server did not exit after SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// SIGKILL, then reap: a crash.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads the banner's `endpoint:` line, then drains stdout on a thread.
fn read_endpoint(stdout: std::process::ChildStdout) -> Result<String> {
    let (found, endpoint) = mpsc::channel();
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let url = line.trim().strip_prefix("endpoint:").map(str::trim);
            if let Some(url) = url
                && let Some(found) = found.take()
            {
                let _ = found.send(url.to_owned());
            }
        }
    });
    endpoint
        .recv_timeout(START_TIME_MAX)
        .map_err(|_| "the server printed no endpoint".into())
}

fn client_for(endpoint: &str) -> Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDBENCH", "secret", None, None, "bench"))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(config)
}

// -------------------------------------------------------------- workload

fn stream_name(i: usize) -> String {
    format!("idle-{i:05}")
}

/// An explicit hash key in the middle of shard `k` of an evenly split
/// stream of [`SHARDS_PER_STREAM`] shards.
fn hash_key(k: usize) -> String {
    let quarter = 1u128 << 126;
    (quarter * k as u128 + quarter / 2).to_string()
}

fn payload(stream: usize, shard: usize) -> Vec<u8> {
    format!("stream {stream} shard {shard}").into_bytes()
}

/// Runs `work(client, i)` for every `i < n`, [`CONCURRENCY`] at a time.
async fn run_concurrently<F, Fut>(client: &Client, n: usize, work: F) -> Result<()>
where
    F: Fn(Client, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let work = Arc::new(work);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (next, work, client) = (next.clone(), work.clone(), client.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), Error>(());
                }
                work(client.clone(), i).await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Creates every stream, waits until it is ACTIVE, and puts one record
/// into each of its shards.
async fn fill(client: &Client, streams: usize) -> Result<()> {
    run_concurrently(client, streams, |client, i| async move {
        let name = stream_name(i);
        client
            .create_stream()
            .stream_name(&name)
            .shard_count(SHARDS_PER_STREAM as i32)
            .send()
            .await
            .map_err(|e| format!("CreateStream {name}: {e:?}"))?;
        wait_active(&client, &name).await?;
        let entries = (0..SHARDS_PER_STREAM)
            .map(|k| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(payload(i, k)))
                    .partition_key("p")
                    .explicit_hash_key(hash_key(k))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = client
            .put_records()
            .stream_name(&name)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| format!("PutRecords {name}: {e:?}"))?;
        let mut shards: Vec<&str> = out.records().iter().filter_map(|r| r.shard_id()).collect();
        shards.sort_unstable();
        shards.dedup();
        if out.failed_record_count() != Some(0) || shards.len() != SHARDS_PER_STREAM {
            return Err(format!("PutRecords {name} did not reach every shard: {out:?}").into());
        }
        Ok(())
    })
    .await
}

async fn wait_active(client: &Client, name: &str) -> Result<()> {
    let deadline = Instant::now() + ACTIVE_TIME_MAX;
    loop {
        let out = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(|e| format!("DescribeStreamSummary {name}: {e:?}"))?;
        let active = out
            .stream_description_summary()
            .is_some_and(|d| d.stream_status() == &StreamStatus::Active);
        if active {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("stream {name} never became ACTIVE").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn count_streams(client: &Client) -> Result<usize> {
    let mut count = 0;
    let mut token: Option<String> = None;
    loop {
        let out = client
            .list_streams()
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| format!("ListStreams: {e:?}"))?;
        count += out.stream_names().len();
        match out.next_token() {
            Some(t) if out.has_more_streams() => token = Some(t.to_owned()),
            _ => return Ok(count),
        }
    }
}

/// Reads every shard from its start: each holds exactly its one record.
async fn verify(client: &Client, streams: usize) -> Result<()> {
    run_concurrently(
        client,
        streams * SHARDS_PER_STREAM,
        |client, n| async move {
            let (i, k) = (n / SHARDS_PER_STREAM, n % SHARDS_PER_STREAM);
            let name = stream_name(i);
            let shard = format!("shardId-{k:012}");
            let iterator = client
                .get_shard_iterator()
                .stream_name(&name)
                .shard_id(&shard)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .map_err(|e| format!("GetShardIterator {name} {shard}: {e:?}"))?;
            let out = client
                .get_records()
                .set_shard_iterator(iterator.shard_iterator().map(str::to_owned))
                .send()
                .await
                .map_err(|e| format!("GetRecords {name} {shard}: {e:?}"))?;
            let data: Vec<&[u8]> = out.records().iter().map(|r| r.data().as_ref()).collect();
            if data != [payload(i, k).as_slice()] {
                return Err(format!("{name} {shard} holds {data:?}, not its one record").into());
            }
            Ok(())
        },
    )
    .await
}

// ----------------------------------------------------------- measurement

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    rss_kib: u64,
    hwm_kib: u64,
    threads: usize,
    fds: usize,
}

impl Sample {
    fn rss_mb(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }
    fn hwm_mb(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }
}

struct Restart {
    ready: Duration,
    at_ready: Sample,
    idle: Sample,
}

#[derive(Debug, Default)]
struct Disk {
    files: u64,
    apparent_bytes: u64,
    allocated_bytes: u64,
}

fn disk_usage(dir: &Path) -> Result<Disk> {
    use std::os::unix::fs::MetadataExt;
    let mut disk = Disk::default();
    let mut todo: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                todo.push(entry.path());
            } else {
                disk.files += 1;
                disk.apparent_bytes += meta.len();
                disk.allocated_bytes += meta.blocks() * 512;
            }
        }
    }
    Ok(disk)
}

struct Report {
    streams: usize,
    fresh_start: Duration,
    fill: Duration,
    filled: Sample,
    disk: Disk,
    stop_term: Vec<Duration>,
    after_term: Vec<Restart>,
    after_kill: Vec<Restart>,
    verify: Duration,
    after_reads: Sample,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn list(values: &[f64], digits: usize) -> String {
    let parts: Vec<String> = values.iter().map(|v| format!("{v:.digits$}")).collect();
    parts.join(" ")
}

impl Report {
    fn new(streams: usize) -> Report {
        Report {
            streams,
            fresh_start: Duration::ZERO,
            fill: Duration::ZERO,
            filled: Sample::default(),
            disk: Disk::default(),
            stop_term: Vec::new(),
            after_term: Vec::new(),
            after_kill: Vec::new(),
            verify: Duration::ZERO,
            after_reads: Sample::default(),
        }
    }

    fn print(&self) {
        let logs = self.streams * SHARDS_PER_STREAM;
        println!();
        println!(
            "idle-scale results: {} streams × {SHARDS_PER_STREAM} shards = {logs} logs (median of the runs)",
            self.streams
        );
        println!(
            "{:<52} {:>12}  {:<10} runs",
            "measurement", "value", "target"
        );
        let row = |name: &str, value: String, target: &str, runs: String| {
            println!("{name:<52} {value:>12}  {target:<10} {runs}");
        };
        let mb = format!("≤ {RSS_MB_TARGET:.0} MB");
        let s = format!("≤ {START_S_TARGET:.0} s");
        row(
            "start, empty data dir",
            format!("{:.3} s", self.fresh_start.as_secs_f64()),
            "",
            String::new(),
        );
        row(
            "fill (create, wait ACTIVE, put 1 rec/shard)",
            format!("{:.1} s", self.fill.as_secs_f64()),
            "",
            String::new(),
        );
        self.sample_rows("filled, idle", &self.filled, &mb);
        row(
            "  data dir: files / apparent / allocated",
            format!("{}", self.disk.files),
            "",
            format!(
                "{:.1} MB / {:.1} MB",
                self.disk.apparent_bytes as f64 / 1e6,
                self.disk.allocated_bytes as f64 / 1e6
            ),
        );
        let stops: Vec<f64> = self.stop_term.iter().map(|d| d.as_secs_f64()).collect();
        row(
            "SIGTERM → exit",
            format!("{:.3} s", median(stops.clone())),
            "",
            list(&stops, 3),
        );
        for (what, restarts) in [("SIGTERM", &self.after_term), ("SIGKILL", &self.after_kill)] {
            let ready: Vec<f64> = restarts.iter().map(|r| r.ready.as_secs_f64()).collect();
            row(
                &format!("restart after {what}: spawn → ListStreams OK"),
                format!("{:.3} s", median(ready.clone())),
                &s,
                list(&ready, 3),
            );
            let at: Vec<f64> = restarts.iter().map(|r| r.at_ready.rss_mb()).collect();
            row(
                "  RSS when ready",
                format!("{:.1} MB", median(at.clone())),
                &mb,
                list(&at, 1),
            );
            let hwm: Vec<f64> = restarts.iter().map(|r| r.idle.hwm_mb()).collect();
            row(
                "  peak RSS (VmHWM) by idle",
                format!("{:.1} MB", median(hwm.clone())),
                "",
                list(&hwm, 1),
            );
            let idle: Vec<f64> = restarts.iter().map(|r| r.idle.rss_mb()).collect();
            row(
                "  RSS idle",
                format!("{:.1} MB", median(idle.clone())),
                &mb,
                list(&idle, 1),
            );
            let last = restarts.last().map(|r| r.idle).unwrap_or_default();
            row(
                "  threads / open fds, idle",
                format!("{} / {}", last.threads, last.fds),
                "",
                String::new(),
            );
        }
        row(
            "read every shard back (GetShardIterator+GetRecords)",
            format!("{:.1} s", self.verify.as_secs_f64()),
            "",
            "all intact".into(),
        );
        self.sample_rows("after reading every shard, idle", &self.after_reads, &mb);
    }

    fn sample_rows(&self, name: &str, sample: &Sample, target: &str) {
        println!(
            "{name:<52} {:>12}  {target:<10} peak {:.1} MB",
            format!("{:.1} MB", sample.rss_mb()),
            sample.hwm_mb()
        );
        println!(
            "{:<52} {:>12}",
            "  threads / open fds",
            format!("{} / {}", sample.threads, sample.fds)
        );
    }
}
