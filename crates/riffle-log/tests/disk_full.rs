//! Writes that fail because the disk is full, and the recovery in place
//! once there is room again, without reopening the store.
//!
//! A real failure, not a simulated one: a child process (this test binary,
//! re-executed) caps its own file size with `RLIMIT_FSIZE`, so the kernel
//! fails every write past the cap (`EFBIG`) as a full disk fails them
//! (`ENOSPC`): segments and the journal alike, part-way through a batch.
//! Then the cap is lifted ("space is freed"). Under every fsync policy, over
//! three logs: every acknowledged record stays readable and nothing
//! unacknowledged ever becomes readable (seqs stay dense across the
//! failure), readers' committed tip never moves back, the same logs take
//! appends again without a restart, and a reopened store holds exactly
//! the acknowledged records. The free-space floor is checked in-process.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use riffle_log::{
    FailureCause, FsyncPolicy, LogError, LogStore, ReadLimits, RecordIn, ShardLog, StoreConfig,
};

const CHILD_ENV: &str = "RIFFLE_LOG_DISK_FULL_CHILD";
const ALL: ReadLimits = ReadLimits {
    records_max: usize::MAX,
    bytes_max: usize::MAX,
};
/// The cap on every file's size: each log and the journal reach it after a
/// few dozen batches.
const FSIZE_LIMIT_BYTES: u64 = 96 * 1024;
const LOGS: usize = 3;

fn config(policy: &str) -> StoreConfig {
    let base = StoreConfig {
        segment_bytes_max: 1 << 20,
        disk_free_min: 0,
        ..StoreConfig::default()
    };
    match policy {
        "journal" => StoreConfig {
            fsync: FsyncPolicy::Always,
            ..base
        },
        "direct" => StoreConfig {
            fsync: FsyncPolicy::Always,
            journal_bytes_max: 0,
            ..base
        },
        "interval" => StoreConfig {
            fsync: FsyncPolicy::Interval(Duration::from_millis(2)),
            ..base
        },
        "never" => StoreConfig {
            fsync: FsyncPolicy::Never,
            ..base
        },
        other => panic!("unknown policy {other}"),
    }
}

fn set_fsize_limit(bytes: Option<u64>) {
    // SAFETY: plain libc calls on a valid, initialised struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = bytes.unwrap_or(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

/// Record `n` of log `log`: its identity, then filler of a size that varies
/// so batches tear at different places.
fn data(log: usize, n: usize) -> Vec<u8> {
    let mut d = format!("log{log}-record-{n:06}-").into_bytes();
    d.resize(700 + (n * 389) % 2500, b'a' + (n % 26) as u8);
    d
}

/// A batch of 1–3 records; returns their data.
fn batch(log: usize, first: usize, k: usize) -> Vec<Vec<u8>> {
    (first..first + k).map(|n| data(log, n)).collect()
}

async fn append(log: &ShardLog, records: &[Vec<u8>]) -> Result<u64, LogError> {
    let ins: Vec<RecordIn<'_>> = records
        .iter()
        .map(|d| RecordIn {
            partition_key: b"pk",
            explicit_hash_key: None,
            data: d,
        })
        .collect();
    log.append(&ins, 1).await.map(|a| a.first_seq)
}

/// What one log's appenders know: the acknowledged records by seq, and
/// the highest committed tip a reader saw.
struct Tracked {
    log: ShardLog,
    acked: BTreeMap<u64, Vec<u8>>,
    tip: u64,
    /// Records made so far (each gets its own data).
    made: usize,
}

impl Tracked {
    /// Appends one batch; on success it must land right after the last
    /// acknowledged record (nothing unacknowledged was kept before it).
    async fn try_append(&mut self, i: usize, k: usize) -> Result<(), LogError> {
        let records = batch(i, self.made, k);
        self.made += k;
        let result = append(&self.log, &records).await;
        if let Ok(first) = result {
            assert_eq!(
                first,
                self.acked.len() as u64,
                "log {i}: an append after a failure did not follow the last acknowledged record"
            );
            self.acked.extend((first..).zip(records));
        }
        self.check_tip(i);
        result.map(|_| ())
    }

    /// Appends `k` one-record batches at once, so that one group-commit
    /// round writes several batches of this log in one write, which the
    /// cap can cut after whole batches. Returns whether any failed.
    async fn append_concurrently(&mut self, i: usize, k: usize) -> bool {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..k {
            let records = batch(i, self.made, 1);
            self.made += 1;
            let log = self.log.clone();
            tasks.spawn(async move { (append(&log, &records).await, records) });
        }
        let mut failed = false;
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                (Ok(first), records) => {
                    self.acked.extend((first..).zip(records));
                }
                (Err(_), _) => failed = true,
            }
        }
        self.check_tip(i);
        failed
    }

    fn check_tip(&mut self, i: usize) {
        let tip = self.log.next_seq();
        assert!(
            tip >= self.tip,
            "log {i}: committed tip went back from {} to {tip}",
            self.tip
        );
        assert_eq!(
            tip,
            self.acked.len() as u64,
            "log {i}: the committed tip is not the acknowledged count"
        );
        self.tip = tip;
    }

    fn check_reads(&self, i: usize, when: &str) {
        let got = self.log.read(0, ALL).unwrap();
        assert_eq!(
            got.records.len(),
            self.acked.len(),
            "log {i} {when}: readable records are not exactly the acknowledged ones"
        );
        for (r, (&seq, want)) in got.records.iter().zip(&self.acked) {
            assert_eq!(r.seq, seq, "log {i} {when}: seqs are not dense");
            assert_eq!(&r.data[..], &want[..], "log {i} {when}: record {seq}");
        }
    }
}

fn open(dir: &Path, policy: &str) -> (LogStore, Vec<ShardLog>) {
    let store = LogStore::open(dir, config(policy)).unwrap();
    let logs = (0..LOGS)
        .map(|i| store.open_log(&format!("full/{i}")).unwrap())
        .collect();
    (store, logs)
}

/// The child's side: a no-op unless spawned by a parent test below.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disk_full_child_entry_point() {
    let Ok(arg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (dir, policy) = arg.split_once('|').unwrap();
    let dir = Path::new(dir);
    // Without this, exceeding the cap kills the process (SIGXFSZ).
    // SAFETY: setting a signal disposition to SIG_IGN.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let (store, logs) = open(dir, policy);
    let mut tracked: Vec<Tracked> = logs
        .into_iter()
        .map(|log| Tracked {
            log,
            acked: BTreeMap::new(),
            tip: 0,
            made: 0,
        })
        .collect();

    // Fill: every log appends until its writes fail.
    set_fsize_limit(Some(FSIZE_LIMIT_BYTES));
    let mut failed = [false; LOGS];
    let mut round = 0;
    while !failed.iter().all(|f| *f) {
        for (i, t) in tracked.iter_mut().enumerate() {
            if t.append_concurrently(i, 2 + round % 7).await {
                failed[i] = true;
            }
        }
        round += 1;
        assert!(round < 2_000, "the file size cap never took effect");
    }
    // Full: appends fail as Poisoned while the log waits, or as the write
    // error once it has reopened and failed again; one that fits below the
    // cap after the reopen cut a failed round's batches may succeed.
    let until = Instant::now() + Duration::from_millis(700);
    while Instant::now() < until {
        for (i, t) in tracked.iter_mut().enumerate() {
            match t.try_append(i, 2).await {
                Ok(()) => {}
                Err(LogError::Poisoned { cause, .. }) => assert_eq!(cause, FailureCause::Io),
                Err(LogError::Io { source, .. }) => {
                    assert_eq!(source.raw_os_error(), Some(libc::EFBIG))
                }
                other => panic!("log {i}: an append past the cap answered {other:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (i, t) in tracked.iter().enumerate() {
        t.check_reads(i, "while full");
    }
    let stats = store.storage_stats();
    assert!(stats.appends_refused_io > 0, "{stats:?}");
    assert!(!stats.disk_full, "EFBIG is not a full disk: {stats:?}");

    // Freed: the same logs take appends again, without reopening the store.
    set_fsize_limit(None);
    let deadline = Instant::now() + Duration::from_secs(20);
    for (i, t) in tracked.iter_mut().enumerate() {
        loop {
            match t.try_append(i, 3).await {
                Ok(()) => break,
                Err(LogError::Poisoned { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("log {i} did not take writes again: {e}"),
            }
        }
        for _ in 0..20 {
            t.try_append(i, 2).await.unwrap();
        }
        t.check_reads(i, "after recovering in place");
    }
    let stats = store.storage_stats();
    assert_eq!(stats.logs_refusing_io, 0, "{stats:?}");
    assert!(stats.logs_reopened >= LOGS as u64, "{stats:?}");

    // A reopened store holds exactly the acknowledged records.
    store.shutdown().await.unwrap();
    let acked: Vec<BTreeMap<u64, Vec<u8>>> = tracked.into_iter().map(|t| t.acked).collect();
    drop(store);
    let (_store, logs) = open(dir, policy);
    for (i, (log, acked)) in logs.into_iter().zip(acked).enumerate() {
        let t = Tracked {
            log,
            tip: 0,
            acked,
            made: 0,
        };
        t.check_reads(i, "after reopening the store");
    }
    println!("DISK-FULL-CHILD-OK");
}

fn run_child(policy: &str) {
    let dir = tempfile::tempdir().unwrap();
    let arg = format!("{}|{policy}", dir.path().display());
    let mut child = common::spawn_child("disk_full_child_entry_point", &[(CHILD_ENV, arg)]);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the child did not finish in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(
        status.success() && out.contains("DISK-FULL-CHILD-OK"),
        "child ({policy}) failed:\n{out}"
    );
}

#[test]
fn failed_writes_recover_in_place_with_the_journal() {
    run_child("journal");
}

#[test]
fn failed_writes_recover_in_place_syncing_segments() {
    run_child("direct");
}

#[test]
fn failed_writes_recover_in_place_under_fsync_interval() {
    run_child("interval");
}

#[test]
fn failed_writes_recover_in_place_under_fsync_never() {
    run_child("never");
}

/// Below the floor an append is refused before anything is written, with
/// an error that says the disk is full; raising free space above the floor
/// (here: lowering the floor) lets appends through again.
#[tokio::test]
async fn appends_below_the_free_space_floor_are_refused_until_there_is_room() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), config("journal")).unwrap();
    let log = store.open_log("floor/0").unwrap();
    append(&log, &batch(0, 0, 2)).await.unwrap();
    store.set_disk_free_min(u64::MAX);
    let err = append(&log, &batch(0, 2, 1)).await.unwrap_err();
    assert!(
        matches!(err, LogError::DiskFreeBelowMin { .. }) && err.is_disk_full(),
        "{err:?}"
    );
    assert!(err.to_string().contains("the disk is full"), "{err}");
    assert_eq!(log.next_seq(), 2, "nothing was written");
    let stats = store.storage_stats();
    assert!(
        stats.disk_full && stats.appends_refused_disk_full == 1,
        "{stats:?}"
    );
    assert_eq!(stats.disk_free_min_bytes, u64::MAX);

    store.set_disk_free_min(0);
    assert_eq!(append(&log, &batch(0, 2, 1)).await.unwrap(), 2);
    assert!(!store.storage_stats().disk_full);
    assert_eq!(log.read(0, ALL).unwrap().records.len(), 3);
}
