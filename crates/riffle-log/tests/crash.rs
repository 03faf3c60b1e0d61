//! Crash tests with real processes and real SIGKILLs: a child process (this
//! test binary, re-executed) appends batches under load with
//! `fsync=always` and prints every acknowledged batch; the parent kills it at
//! random moments, reopens the store and checks that every acknowledged
//! batch is present and intact, that no partial batch is visible, and that
//! sequence numbers keep increasing. A second test spreads the appends over
//! more logs than the store keeps files open for, so kills also land while
//! the writer closes and reopens active segments.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

mod common;
use common::spawn_child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use riffle_log::{FsyncPolicy, LogStore, OPEN_FILES_MIN, ReadLimits, RecordIn, StoreConfig};

const CHILD_DIR_ENV: &str = "RIFFLE_LOG_CRASH_CHILD_DIR";
const CHILD_ROUND_ENV: &str = "RIFFLE_LOG_CRASH_CHILD_ROUND";
const CHILD_LOGS_ENV: &str = "RIFFLE_LOG_CRASH_CHILD_LOGS";
const ROUNDS: u64 = 20;
/// Logs of the many-logs test: three times what a store with
/// [`OPEN_FILES_MIN`] keeps open.
const MANY_LOGS: usize = 12;
const MANY_LOGS_ROUNDS: u64 = 10;
const APPENDERS: u64 = 4;
/// Small segments, so kills also land during segment rolls.
const SEGMENT_BYTES: u64 = 256 * 1024;

/// With more than one log, the store keeps as few files open as it can, so
/// that appends keep closing and reopening them.
fn config(logs: usize) -> StoreConfig {
    let open_files_max = if logs > 1 {
        OPEN_FILES_MIN
    } else {
        StoreConfig::default().open_files_max
    };
    StoreConfig {
        fsync: FsyncPolicy::Always,
        segment_bytes_max: SEGMENT_BYTES,
        open_files_max,
        ..StoreConfig::default()
    }
}

fn log_name(i: usize) -> String {
    format!("crash/{i}")
}

/// Deterministic generator: failures are reproducible from the printed seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A record's data says which batch it belongs to, so the parent can tell a
/// partial batch: `[batch_id u64][index u32][count u32][filler]`.
fn record_data(batch_id: u64, index: u32, count: u32, filler: usize) -> Vec<u8> {
    let mut d = Vec::with_capacity(16 + filler);
    d.extend_from_slice(&batch_id.to_le_bytes());
    d.extend_from_slice(&index.to_le_bytes());
    d.extend_from_slice(&count.to_le_bytes());
    d.extend((0..filler).map(|i| (batch_id as usize + i) as u8));
    d
}

fn parse_data(d: &[u8]) -> (u64, u32, u32) {
    let u64_at = |a: usize| u64::from_le_bytes(d[a..a + 8].try_into().unwrap());
    let u32_at = |a: usize| u32::from_le_bytes(d[a..a + 4].try_into().unwrap());
    (u64_at(0), u32_at(8), u32_at(12))
}

/// The child's side. A no-op unless the parent test below spawned this
/// process with the child environment set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child_entry_point() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_ENV).unwrap().parse().unwrap();
    let logs: usize = std::env::var(CHILD_LOGS_ENV).unwrap().parse().unwrap();
    let store = LogStore::open(Path::new(&dir), config(logs)).unwrap();
    let logs: Vec<_> = (0..logs)
        .map(|i| store.open_log(&log_name(i)).unwrap())
        .collect();
    let mut tasks = Vec::new();
    for task in 0..APPENDERS {
        let logs = logs.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = XorShift(0x2545_F491_4F6C_DD1D ^ (round << 8 | task));
            for n in 0u64.. {
                let batch_id = round << 40 | task << 32 | n;
                let count = 1 + rng.below(40) as u32;
                let datas: Vec<Vec<u8>> = (0..count)
                    .map(|i| record_data(batch_id, i, count, rng.below(3000) as usize))
                    .collect();
                let recs: Vec<RecordIn> = datas
                    .iter()
                    .map(|d| RecordIn {
                        partition_key: b"pk",
                        explicit_hash_key: None,
                        data: d,
                    })
                    .collect();
                let l = rng.below(logs.len() as u64) as usize;
                let a = logs[l].append(&recs, 1_000 + n as i64).await.unwrap();
                let crc = datas.iter().fold(0u32, |c, d| crc32c::crc32c_append(c, d));
                println!("ACK {l} {} {} {} {}", batch_id, a.first_seq, count, crc);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[derive(Debug, Clone, Copy)]
struct Ack {
    log: usize,
    first_seq: u64,
    count: u32,
    crc: u32,
}

fn parse_ack(line: &str) -> Option<(u64, Ack)> {
    // The test harness's "test ... " may start the child's first line.
    let mut it = line
        .split_once("ACK ")?
        .1
        .split(' ')
        .map(|x| x.parse::<u64>().unwrap());
    let log = it.next()? as usize;
    let (id, first_seq, count, crc) = (it.next()?, it.next()?, it.next()?, it.next()?);
    Some((
        id,
        Ack {
            log,
            first_seq,
            count: count as u32,
            crc: crc as u32,
        },
    ))
}

/// Runs one child until it has acknowledged `kill_after` batches (or a
/// deadline passes), SIGKILLs it and returns every batch it acknowledged.
fn run_child_and_kill(
    dir: &Path,
    logs: usize,
    round: u64,
    kill_after: usize,
) -> BTreeMap<u64, Ack> {
    let mut guard = spawn_child(
        "crash_child_entry_point",
        &[
            (CHILD_DIR_ENV, dir.display().to_string()),
            (CHILD_ROUND_ENV, round.to_string()),
            (CHILD_LOGS_ENV, logs.to_string()),
        ],
    );
    let stdout = guard.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(ack) = parse_ack(&line) {
                let _ = tx.send(ack);
            }
        }
    });
    let mut acks = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks.len() < kill_after {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((id, ack)) => {
                acks.insert(id, ack);
            }
            Err(_) => panic!(
                "round {round}: child acknowledged only {} batches before the deadline",
                acks.len()
            ),
        }
    }
    guard.0.kill().unwrap(); // SIGKILL
    guard.0.wait().unwrap();
    reader.join().unwrap();
    // Acknowledgements printed before the kill but not yet read.
    acks.extend(rx.try_iter());
    acks
}

/// Checks one log after a crash: every visible batch is whole, every
/// batch acknowledged for it is there and intact. Returns its next seq.
fn verify_log(store: &LogStore, l: usize, acked: &BTreeMap<u64, Ack>, seed: u64) -> u64 {
    let log = store.open_log(&log_name(l)).unwrap();
    let all = log
        .read(
            0,
            ReadLimits {
                records_max: usize::MAX,
                bytes_max: usize::MAX,
            },
        )
        .unwrap();
    assert_eq!(all.next_seq, log.next_seq());
    // Every visible batch is whole: its records are contiguous, complete.
    let mut seen: BTreeMap<u64, (u64, u32, u32)> = BTreeMap::new(); // id -> (first seq, count, crc)
    for (i, r) in all.records.iter().enumerate() {
        assert_eq!(r.seq, i as u64, "seed {seed}: seqs are dense from 0");
        let (id, index, count) = parse_data(&r.data);
        let entry = seen.entry(id).or_insert((r.seq, count, 0));
        assert_eq!(
            r.seq,
            entry.0 + u64::from(index),
            "seed {seed}: batch {id} is not contiguous"
        );
        entry.2 = crc32c::crc32c_append(entry.2, &r.data);
    }
    for (id, (first, count, _)) in &seen {
        let last = all.records.get((first + u64::from(*count) - 1) as usize);
        assert!(
            last.is_some_and(|r| parse_data(&r.data).0 == *id),
            "seed {seed}: partial batch {id} visible"
        );
    }
    for (id, ack) in acked.iter().filter(|(_, a)| a.log == l) {
        let Some(&(first, count, crc)) = seen.get(id) else {
            panic!("seed {seed}: acknowledged batch {id} ({ack:?}) lost");
        };
        assert_eq!(
            (first, count, crc),
            (ack.first_seq, ack.count, ack.crc),
            "seed {seed}: batch {id} altered"
        );
    }
    log.next_seq()
}

/// Kills `rounds` children at random moments, each appending to `logs`
/// logs, and checks every log after each kill.
fn crash_repeatedly(logs: usize, rounds: u64) {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = XorShift(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut acked = BTreeMap::new();
    let mut next_seqs = vec![0; logs];
    for round in 0..rounds {
        let kill_after = 1 + rng.below(150) as usize;
        let new = run_child_and_kill(dir.path(), logs, round, kill_after);
        for ack in new.values() {
            assert!(
                ack.first_seq >= next_seqs[ack.log],
                "seed {seed}: seq {} of log {} reused after a crash",
                ack.first_seq,
                ack.log
            );
        }
        acked.extend(new);
        let store = LogStore::open(dir.path(), config(logs)).unwrap();
        for (l, next_seq) in next_seqs.iter_mut().enumerate() {
            let after = verify_log(&store, l, &acked, seed);
            assert!(after >= *next_seq, "seed {seed}: log {l} went backwards");
            *next_seq = after;
        }
        assert!(store.open_files() <= config(logs).open_files_max);
    }
    assert!(
        acked.len() as u64 >= rounds,
        "every round acknowledged something"
    );
}

#[test]
fn acknowledged_batches_survive_sigkill_at_random_moments() {
    crash_repeatedly(1, ROUNDS);
}

/// The writer keeps one active segment open between rounds and readers two
/// files, so almost every append reopens a file that was closed.
#[test]
fn acknowledged_batches_survive_sigkill_while_log_files_are_closed_and_reopened() {
    crash_repeatedly(MANY_LOGS, MANY_LOGS_ROUNDS);
}
