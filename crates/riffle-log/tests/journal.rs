//! The journal under `fsync=always`: small group-commit rounds are made
//! durable by one sync of the store's journal, and the segments later.
//!
//! A power cut cannot be made here, so these tests make its effect: a child
//! process (this test binary, re-executed) appends from several tasks over
//! several logs, prints each acknowledgement and is SIGKILLed; the parent
//! then cuts every segment back to its header, which is what a machine
//! crash does to segment writes that were never synced. Reopening must
//! replay the journal and bring back every acknowledged batch.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

mod common;
use common::spawn_child;
use std::time::{Duration, Instant};

use riffle_log::{FsyncPolicy, LogStore, ReadLimits, RecordIn, StoreConfig};

const CHILD_DIR_ENV: &str = "RIFFLE_LOG_JOURNAL_CHILD_DIR";
const CHILD_JOURNAL_ENV: &str = "RIFFLE_LOG_JOURNAL_CHILD_BYTES";
const CHILD_BATCHES_ENV: &str = "RIFFLE_LOG_JOURNAL_CHILD_BATCHES";
const LOGS: usize = 4;
/// As the child's journal size: append to a log, delete it, create it
/// again and append one record, with the default journal.
const DELETE_AND_RECREATE: u64 = u64::MAX;
const APPENDERS: usize = 8;
/// The segment header's length: what a segment created (and synced) but
/// never synced again holds after a machine crash.
const SEGMENT_HEADER_LEN: u64 = 32;

fn config(journal_bytes_max: u64) -> StoreConfig {
    StoreConfig {
        fsync: FsyncPolicy::Always,
        // No segment rolls: a roll would sync the segment.
        segment_bytes_max: 1 << 30,
        journal_bytes_max,
        ..StoreConfig::default()
    }
}

fn log_name(i: usize) -> String {
    format!("stream/shard-{i}")
}

fn record_data(batch: u64, index: u32) -> Vec<u8> {
    let mut d = batch.to_le_bytes().to_vec();
    d.extend_from_slice(&index.to_le_bytes());
    d.extend((0..(batch % 97) as u8).map(|b| b ^ 0x5a));
    d
}

/// The child's side: a no-op unless spawned by a test below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journal_child_entry_point() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let journal: u64 = std::env::var(CHILD_JOURNAL_ENV).unwrap().parse().unwrap();
    let batches: u64 = std::env::var(CHILD_BATCHES_ENV).unwrap().parse().unwrap();
    if journal == DELETE_AND_RECREATE {
        return delete_and_recreate(Path::new(&dir)).await;
    }
    let store = LogStore::open(Path::new(&dir), config(journal)).unwrap();
    let logs: Vec<_> = (0..LOGS)
        .map(|i| store.open_log(&log_name(i)).unwrap())
        .collect();
    let mut tasks = Vec::new();
    for task in 0..APPENDERS as u64 {
        let logs = logs.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..batches {
                let batch = task << 32 | n;
                let count = 1 + (n % 3) as u32;
                let datas: Vec<Vec<u8>> = (0..count).map(|i| record_data(batch, i)).collect();
                let recs: Vec<RecordIn> = datas
                    .iter()
                    .map(|d| RecordIn {
                        partition_key: b"pk",
                        explicit_hash_key: None,
                        data: d,
                    })
                    .collect();
                let l = ((task + n) % LOGS as u64) as usize;
                let a = logs[l].append(&recs, 1_000).await.unwrap();
                println!("ACK {l} {batch} {} {count}", a.first_seq);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("DONE");
    // Wait for the SIGKILL with the store open: no shutdown, no checkpoint.
    std::future::pending::<()>().await;
}

async fn delete_and_recreate(dir: &Path) {
    let store = LogStore::open(dir, config(StoreConfig::default().journal_bytes_max)).unwrap();
    let name = log_name(0);
    let old = store.open_log(&name).unwrap();
    // Batches of the new one's size: replayed over the new segment, they
    // would read as its next batches.
    for _ in 0..20 {
        let rec = [RecordIn {
            partition_key: b"pk",
            explicit_hash_key: None,
            data: b"old",
        }];
        old.append(&rec, 1).await.unwrap();
    }
    store.delete_log(&name).unwrap();
    let new = store.open_log(&name).unwrap();
    let rec = [RecordIn {
        partition_key: b"pk",
        explicit_hash_key: None,
        data: b"new",
    }];
    let a = new.append(&rec, 1).await.unwrap();
    println!("ACK 0 0 {} 1", a.first_seq);
    println!("DONE");
    std::future::pending::<()>().await;
}

/// (log, first_seq) -> (batch, count) of every acknowledged batch.
type Acks = BTreeMap<(usize, u64), (u64, u32)>;

/// Runs a child to the end of its appends, SIGKILLs it and returns what it
/// acknowledged.
fn run_child_and_kill(dir: &Path, journal_bytes_max: u64, batches: u64) -> Acks {
    let mut guard = spawn_child(
        "journal_child_entry_point",
        &[
            (CHILD_DIR_ENV, dir.display().to_string()),
            (CHILD_JOURNAL_ENV, journal_bytes_max.to_string()),
            (CHILD_BATCHES_ENV, batches.to_string()),
        ],
    );
    let stdout = guard.0.stdout.take().unwrap();
    let mut acks = Acks::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut done = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        assert!(Instant::now() < deadline, "the child took over 120 s");
        // The test harness's "test ... " may start the child's first line.
        if line.ends_with("DONE") {
            done = true;
            break;
        }
        if let Some((_, rest)) = line.split_once("ACK ") {
            let v: Vec<u64> = rest.split(' ').map(|x| x.parse().unwrap()).collect();
            acks.insert((v[0] as usize, v[2]), (v[1], v[3] as u32));
        }
    }
    assert!(done, "the child stopped before it finished its appends");
    guard.0.kill().unwrap(); // SIGKILL
    guard.0.wait().unwrap();
    acks
}

/// What a machine crash leaves of segments written since they were last
/// synced: their header.
fn cut_segments_to_their_header(dir: &Path) {
    for l in 0..LOGS {
        let log_dir = dir.join("logs").join(log_name(l).replace('/', "+"));
        for entry in std::fs::read_dir(&log_dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "seg") {
                let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                f.set_len(SEGMENT_HEADER_LEN).unwrap();
            }
        }
    }
}

/// Every acknowledged batch is in its log, whole and unaltered.
fn assert_all_present(store: &LogStore, acks: &Acks) {
    let all = ReadLimits {
        records_max: usize::MAX,
        bytes_max: usize::MAX,
    };
    for l in 0..LOGS {
        let records = store
            .open_log(&log_name(l))
            .unwrap()
            .read(0, all)
            .unwrap()
            .records;
        for (&(_, first), &(batch, count)) in acks.range((l, 0)..(l + 1, 0)) {
            for i in 0..count {
                let seq = first + u64::from(i);
                let r = records
                    .get(seq as usize)
                    .unwrap_or_else(|| panic!("log {l}: acknowledged seq {seq} lost"));
                assert_eq!(r.seq, seq);
                assert_eq!(r.data, record_data(batch, i), "log {l}: seq {seq} altered");
            }
        }
    }
}

#[test]
fn acknowledged_batches_come_back_from_the_journal_when_segment_writes_are_lost() {
    let dir = tempfile::tempdir().unwrap();
    let acks = run_child_and_kill(dir.path(), StoreConfig::default().journal_bytes_max, 100);
    assert_eq!(acks.len(), APPENDERS * 100);
    cut_segments_to_their_header(dir.path());
    let store =
        LogStore::open(dir.path(), config(StoreConfig::default().journal_bytes_max)).unwrap();
    assert_all_present(&store, &acks);
    let log = store.open_log(&log_name(0)).unwrap();
    // The replayed log goes on from where it was.
    let next = log.next_seq();
    let a = block_on(log.append(
        &[RecordIn {
            partition_key: b"pk",
            explicit_hash_key: None,
            data: b"after",
        }],
        2_000,
    ))
    .unwrap();
    assert_eq!(a.first_seq, next);
}

/// A journal far smaller than what is appended wraps around many times:
/// each checkpoint syncs the segments before the journal is reused, and
/// replaying whatever the last generation holds changes nothing.
#[test]
fn a_small_journal_wraps_and_replay_after_a_kill_keeps_every_batch() {
    let dir = tempfile::tempdir().unwrap();
    let journal_bytes = 16 * 1024;
    let acks = run_child_and_kill(dir.path(), journal_bytes, 300);
    let journal_len = std::fs::metadata(dir.path().join("JOURNAL")).unwrap().len();
    assert!(
        journal_len <= journal_bytes,
        "the journal grew to {journal_len} bytes, over its {journal_bytes}"
    );
    let store = LogStore::open(dir.path(), config(journal_bytes)).unwrap();
    assert_all_present(&store, &acks);
}

/// Deleting a log checkpoints first, so a log created again under the same
/// name never receives the deleted one's bytes when the journal is replayed
/// (without it, replay writes the old batches over the new segment, and
/// they follow on from its first batch's sequence numbers).
#[test]
fn a_log_deleted_and_created_again_gets_none_of_the_old_bytes_at_replay() {
    let dir = tempfile::tempdir().unwrap();
    let acks = run_child_and_kill(dir.path(), DELETE_AND_RECREATE, 0);
    assert_eq!(acks.len(), 1, "the child acknowledges the new log's batch");
    let store =
        LogStore::open(dir.path(), config(StoreConfig::default().journal_bytes_max)).unwrap();
    let got = store
        .open_log(&log_name(0))
        .unwrap()
        .read(
            0,
            ReadLimits {
                records_max: usize::MAX,
                bytes_max: usize::MAX,
            },
        )
        .unwrap()
        .records;
    let datas: Vec<&[u8]> = got.iter().map(|r| &r.data[..]).collect();
    assert_eq!(datas, [&b"new"[..]]);
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}
