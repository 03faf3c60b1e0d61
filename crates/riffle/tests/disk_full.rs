//! A full disk, for real: the data directory is a 24 MiB tmpfs (which
//! answers `ENOSPC` when full), almost filled by a file the test writes.
//! PutRecords fills the rest until records fail with `InternalFailure`;
//! every acknowledged record stays readable and nothing unacknowledged
//! appears; the log and `/metrics` say the disk is full. Then the filler is
//! deleted and the same shard takes writes again without a restart, and
//! after a restart every acknowledged record is still there.
//!
//! Twice: with the free-space floor off, so writes really meet `ENOSPC` and
//! the shard's log reopens itself in place; and with a floor, so appends
//! are refused before the disk is full.
//!
//! Mounting needs privileges: the scenario runs in a child process (this
//! test binary again) inside a private mount namespace (`unshare --mount`,
//! as a normal user with `--user --map-root-user`), so the tmpfs vanishes
//! with it. As root without `unshare`, it mounts directly (and unmounts).
//! When neither works the test fails, saying why: it never skips.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardIteratorType};
use common::{Riffle, create_active, unique_name};

const CHILD_ENV: &str = "RIFFLE_E2E_DISK_FULL_CHILD";
const TMPFS_SIZE: &str = "24m";
const RECORDS_PER_CALL: usize = 100;
const RECORD_BYTES: usize = 1000;
/// How long the shard may take to take writes again once space is freed
/// (a reopen waits out a backoff of at most 5 s).
const RECOVERY_TIME_MAX: Duration = Duration::from_secs(30);

/// Bytes available on the filesystem of `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs is plain data; all-zero is a valid value of it.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` a valid place to write.
    assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut st) }, 0);
    st.f_bavail * st.f_frsize
}

/// A file of `bytes` real (non-sparse) bytes.
fn write_filler(path: &Path, bytes: u64) {
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5a_u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    file.sync_all().unwrap();
}

fn record(n: usize) -> Vec<u8> {
    let mut d = format!("record-{n:08}-").into_bytes();
    d.resize(RECORD_BYTES, b'a' + (n % 26) as u8);
    d
}

/// A port nobody listens on now, for `--metrics-listen`.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The value of an unlabelled or labelled series on `/metrics`.
fn metric(addr: SocketAddr, series: &str) -> u64 {
    let mut stream = TcpStream::connect(addr).expect("connect to /metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: riffle\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{series} not on /metrics:\n{text}"))
}

/// A sequence number (a decimal of up to 128 bits and more digits than
/// `u128` holds) in an order that sorts as its value.
type SeqKey = (usize, String);

fn seq_key(seq: &str) -> SeqKey {
    (seq.len(), seq.to_owned())
}

/// What the test knows: acknowledged records by sequence number.
struct Writer {
    client: Client,
    stream: String,
    shard: Option<String>,
    acked: BTreeMap<SeqKey, Vec<u8>>,
    made: usize,
}

impl Writer {
    /// One PutRecords; returns how many of its records failed. Every
    /// failure must be `InternalFailure`, every success on the same shard.
    async fn put_records(&mut self, count: usize) -> usize {
        let records: Vec<Vec<u8>> = (self.made..self.made + count).map(record).collect();
        self.made += count;
        let entries = records.iter().map(|d| {
            PutRecordsRequestEntry::builder()
                .partition_key("pk")
                .data(Blob::new(d.clone()))
                .build()
                .unwrap()
        });
        let out = self
            .client
            .put_records()
            .stream_name(&self.stream)
            .set_records(Some(entries.collect()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutRecords as a whole failed: {e:?}"));
        let mut failed = 0;
        for (result, data) in out.records().iter().zip(records) {
            match (result.sequence_number(), result.error_code()) {
                (Some(seq), None) => {
                    let shard = result.shard_id().unwrap().to_owned();
                    assert_eq!(
                        self.shard.get_or_insert(shard.clone()),
                        &shard,
                        "records went to another shard"
                    );
                    self.acked.insert(seq_key(seq), data);
                }
                (None, Some(code)) => {
                    assert_eq!(code, "InternalFailure", "{result:?}");
                    failed += 1;
                }
                other => panic!("a result with neither or both: {other:?}"),
            }
        }
        assert_eq!(out.failed_record_count(), Some(failed as i32));
        failed
    }

    /// Every record of the stream's shard, from its trim horizon.
    async fn read_all(&self) -> Vec<(SeqKey, Vec<u8>)> {
        let shard = self.shard.as_deref().expect("a record was acknowledged");
        let mut iterator = self
            .client
            .get_shard_iterator()
            .stream_name(&self.stream)
            .shard_id(shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        let mut out = Vec::new();
        while let Some(it) = iterator {
            let page = self
                .client
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .unwrap();
            if page.records().is_empty() {
                break;
            }
            for r in page.records() {
                out.push((seq_key(r.sequence_number()), r.data().as_ref().to_vec()));
            }
            iterator = page.next_shard_iterator().map(str::to_owned);
        }
        out
    }

    /// Readable records are exactly the acknowledged ones, in order.
    async fn check_reads(&self, when: &str) {
        let read = self.read_all().await;
        let acked: Vec<(SeqKey, Vec<u8>)> = self
            .acked
            .iter()
            .map(|(s, d)| (s.clone(), d.clone()))
            .collect();
        assert_eq!(read.len(), acked.len(), "{when}: record counts differ");
        assert!(
            read == acked,
            "{when}: readable records are not exactly the acknowledged ones"
        );
    }
}

/// The scenario, in a process that may mount (see the module docs).
async fn scenario(floor: u64) {
    let mnt = tempfile::tempdir().unwrap();
    let _mount = Tmpfs::mount(mnt.path());
    let data = mnt.path().join("data");
    let metrics = free_port();
    let floor_arg = floor.to_string();
    let metrics_arg = metrics.to_string();
    let args = [
        "--disk-free-min",
        floor_arg.as_str(),
        "--metrics-listen",
        metrics_arg.as_str(),
    ];
    let mut riffle = Riffle::start_in(&data, &args);
    let stream = unique_name("full");
    create_active(&riffle.client(), &stream, 1).await;
    let mut w = Writer {
        client: riffle.client(),
        stream,
        shard: None,
        acked: BTreeMap::new(),
        made: 0,
    };
    w.put_records(10).await;

    // Fill: leave a few MiB, then write until records fail.
    let filler = mnt.path().join("filler");
    let headroom = floor + 3 * 1024 * 1024;
    write_filler(&filler, free_bytes(mnt.path()).saturating_sub(headroom));
    let mut calls = 0;
    while w.put_records(RECORDS_PER_CALL).await == 0 {
        calls += 1;
        assert!(calls < 1_000, "the disk never filled");
    }
    // No append since the failure: the shard still refuses writes.
    assert_eq!(metric(metrics, "riffle_storage_disk_full"), 1);
    assert!(
        metric(
            metrics,
            "riffle_storage_appends_refused_total{cause=\"disk_full\"}"
        ) > 0
    );
    let log = riffle.log();
    assert!(
        log.contains("the disk is full"),
        "the log does not say the disk is full:\n{log}"
    );
    if floor > 0 {
        // Below the floor, refusals are stable: PutRecord gets AWS's
        // InternalFailure (HTTP 500), saying why.
        let err = w
            .client
            .put_record()
            .stream_name(&w.stream)
            .partition_key("pk")
            .data(Blob::new(record(usize::MAX)))
            .send()
            .await
            .expect_err("PutRecord below the floor");
        let (code, message) = common::error_of(&err);
        assert_eq!(code, "InternalFailure", "{message}");
        assert!(message.contains("the disk is full"), "{message}");
    }
    // Still full: writes keep failing (a few may fit after a reopen cut
    // a failed batch), and what was acknowledged stays readable.
    for _ in 0..5 {
        w.put_records(RECORDS_PER_CALL).await;
    }
    w.check_reads("while the disk is full").await;

    // Freed: the same shard takes writes again, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + RECOVERY_TIME_MAX;
    while w.put_records(10).await > 0 {
        assert!(
            Instant::now() < deadline,
            "the shard did not take writes again within {RECOVERY_TIME_MAX:?}; log:\n{}",
            riffle.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..5 {
        assert_eq!(w.put_records(RECORDS_PER_CALL).await, 0);
    }
    assert_eq!(metric(metrics, "riffle_storage_disk_full"), 0);
    if floor == 0 {
        assert!(metric(metrics, "riffle_storage_logs_reopened_total") >= 1);
    }
    w.check_reads("after space was freed").await;

    // Restarted: everything acknowledged is still there.
    assert!(riffle.terminate().success());
    drop(riffle);
    let riffle = Riffle::start_in(&data, &args);
    w.client = riffle.client();
    w.check_reads("after a restart").await;
    drop(riffle);
}

/// A tmpfs mounted for the scenario; unmounted when dropped (a private
/// mount namespace would drop it anyway).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_SIZE}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs on {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The child's side: a no-op unless spawned by a test below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_scenario_entry_point() {
    let Ok(floor) = std::env::var(CHILD_ENV) else {
        return;
    };
    scenario(floor.parse().unwrap()).await;
    println!("DISK-FULL-E2E-OK");
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// How to run a command in a private mount namespace here, if any way
/// works: the `unshare` arguments.
fn namespace_prefix() -> Result<Vec<&'static str>, String> {
    let prefix: Vec<&str> = if is_root() {
        vec!["unshare", "--mount"]
    } else {
        vec!["unshare", "--user", "--map-root-user", "--mount"]
    };
    let probe = Command::new(prefix[0])
        .args(&prefix[1..])
        .arg("true")
        .output();
    match probe {
        Ok(out) if out.status.success() => Ok(prefix),
        Ok(out) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
        Err(e) => Err(e.to_string()),
    }
}

fn run(floor: u64) {
    let entry = [
        "--exact",
        "disk_full_scenario_entry_point",
        "--nocapture",
        "--test-threads=1",
    ];
    let exe = std::env::current_exe().unwrap();
    let mut command = match namespace_prefix() {
        Ok(prefix) => {
            let mut c = Command::new(prefix[0]);
            c.args(&prefix[1..]).arg(&exe);
            c
        }
        Err(_) if is_root() => Command::new(&exe),
        Err(why) => panic!(
            "this test needs a tmpfs: run it as root, or where `unshare --user --map-root-user --mount` works ({why})"
        ),
    };
    let out = command
        .args(entry)
        .env(CHILD_ENV, floor.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run the scenario");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("DISK-FULL-E2E-OK"),
        "the scenario failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn writes_hitting_a_full_disk_resume_on_the_same_shard_once_space_is_freed() {
    run(0);
}

#[test]
fn writes_below_the_free_space_floor_are_refused_until_space_is_freed() {
    run(2 * 1024 * 1024);
}
