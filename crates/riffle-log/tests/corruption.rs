//! Damaged files: torn tails, flipped bytes in segments and indexes, missing
//! segment files, unknown versions. Each gives a typed error naming the file
//! (or is repaired), never a panic, and nothing before the damage is lost.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use riffle_log::{FsyncPolicy, LogError, LogStore, ReadLimits, RecordIn, ShardLog, StoreConfig};

const ALL: ReadLimits = ReadLimits {
    records_max: usize::MAX,
    bytes_max: usize::MAX,
};
/// Small segments, so a few hundred records span many of them.
const SEGMENT_BYTES: u64 = 2048;

fn open(dir: &Path) -> LogStore {
    LogStore::open(
        dir,
        StoreConfig {
            fsync: FsyncPolicy::Always,
            segment_bytes_max: SEGMENT_BYTES,
            ..StoreConfig::default()
        },
    )
    .unwrap()
}

fn payload(i: u64) -> Vec<u8> {
    format!("payload-{i:06}").into_bytes()
}

async fn fill(log: &ShardLog, n: u64) {
    for i in 0..n {
        let d = payload(i);
        log.append(
            &[RecordIn {
                partition_key: b"pk",
                explicit_hash_key: None,
                data: &d,
            }],
            i as i64,
        )
        .await
        .unwrap();
    }
}

/// The log's files with extension `ext`, in sequence order.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("logs/l"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn flip(path: &Path, offset: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], offset).unwrap();
}

fn assert_intact_prefix(log: &ShardLog, n: u64) {
    let got = log
        .read(
            0,
            ReadLimits {
                records_max: n as usize,
                bytes_max: usize::MAX,
            },
        )
        .unwrap();
    assert_eq!(got.records.len() as u64, n);
    for r in &got.records {
        assert_eq!(r.data, payload(r.seq));
    }
}

/// Writes `n` records in a fresh store and closes it.
async fn prepared(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    fill(&store.open_log("l").unwrap(), n).await;
    dir
}

#[tokio::test]
async fn a_torn_tail_is_truncated_and_the_log_continues_after_the_last_whole_batch() {
    let dir = prepared(10).await;
    let active = files(dir.path(), "seg").pop().unwrap();
    let len = std::fs::metadata(&active).unwrap().len();
    // Only part of the last (unacknowledged) batch made it to disk.
    OpenOptions::new()
        .write(true)
        .open(&active)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let store = open(dir.path());
    let log = store.open_log("l").unwrap();
    assert_eq!(log.next_seq(), 9);
    assert_intact_prefix(&log, 9);
    let a = log
        .append(
            &[RecordIn {
                partition_key: b"k",
                explicit_hash_key: None,
                data: b"new",
            }],
            100,
        )
        .await
        .unwrap();
    assert_eq!(a.first_seq, 9);
    assert_eq!(log.read(9, ALL).unwrap().records[0].data, &b"new"[..]);
}

#[tokio::test]
async fn garbage_after_the_last_batch_is_cut_off() {
    let dir = prepared(5).await;
    let active = files(dir.path(), "seg").pop().unwrap();
    let len = std::fs::metadata(&active).unwrap().len();
    let f = OpenOptions::new().write(true).open(&active).unwrap();
    f.write_all_at(&[0u8; 4096], len).unwrap(); // e.g. preallocated, never written
    let store = open(dir.path());
    let log = store.open_log("l").unwrap();
    assert_eq!(log.next_seq(), 5);
    assert_eq!(std::fs::metadata(&active).unwrap().len(), len);
}

#[tokio::test]
async fn a_flipped_byte_in_a_sealed_segment_fails_reads_that_reach_it_and_only_those() {
    let dir = prepared(300).await;
    let segs = files(dir.path(), "seg");
    assert!(segs.len() >= 5);
    let victim = &segs[2];
    flip(victim, 100);
    let store = open(dir.path());
    let log = store.open_log("l").unwrap();
    assert_eq!(
        log.next_seq(),
        300,
        "sealed segments are not rescanned at open"
    );
    let err = log.read(0, ALL).unwrap_err();
    match &err {
        LogError::Corrupt { path, offset, .. } => {
            assert_eq!(path, victim);
            assert!(*offset <= 100, "offset {offset}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    // Everything before the damaged batch reads back intact.
    let first_bad: u64 = victim
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_intact_prefix(&log, first_bad);
    // And everything in later segments too.
    let later: u64 = segs[3]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let tail = log.read(later, ALL).unwrap();
    assert_eq!(tail.records.len() as u64, 300 - later);
    assert!(tail.records.iter().all(|r| r.data == payload(r.seq)));
}

#[tokio::test]
async fn a_damaged_or_truncated_or_missing_index_is_rebuilt_from_its_segment() {
    let dir = prepared(300).await;
    let idx = files(dir.path(), "idx");
    assert!(idx.len() >= 4);
    flip(&idx[0], 20);
    let len = std::fs::metadata(&idx[1]).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(&idx[1])
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    std::fs::remove_file(&idx[2]).unwrap();
    std::fs::write(&idx[3], b"").unwrap();
    {
        let store = open(dir.path());
        let log = store.open_log("l").unwrap();
        assert_intact_prefix(&log, 300);
        assert_eq!(log.seq_at_timestamp(150).unwrap(), 150);
    }
    // The rebuilt indexes were written back and are valid.
    let after = files(dir.path(), "idx");
    assert_eq!(after.len(), idx.len());
    let store = open(dir.path());
    assert_intact_prefix(&store.open_log("l").unwrap(), 300);
}

#[tokio::test]
async fn a_missing_segment_file_is_reported_by_name_and_the_rest_still_reads() {
    let dir = prepared(300).await;
    let segs = files(dir.path(), "seg");
    let gone = segs[2].clone();
    std::fs::remove_file(&gone).unwrap();
    let store = open(dir.path());
    let log = store.open_log("l").unwrap();
    assert_eq!(log.next_seq(), 300);
    let err = log.read(0, ALL).unwrap_err();
    assert!(
        matches!(&err, LogError::Io { path, .. } if *path == gone),
        "{err}"
    );
    let later: u64 = segs[3]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        log.read(later, ALL).unwrap().records.len() as u64,
        300 - later
    );
}

#[tokio::test]
async fn a_segment_missing_with_its_index_leaves_a_hole_named_after_the_file() {
    let dir = prepared(300).await;
    let segs = files(dir.path(), "seg");
    let idx = files(dir.path(), "idx");
    std::fs::remove_file(&segs[2]).unwrap();
    std::fs::remove_file(&idx[2]).unwrap();
    let store = open(dir.path());
    let log = store.open_log("l").unwrap();
    let hole_first: u64 = segs[2]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let err = log.read(hole_first, ALL).unwrap_err();
    assert!(
        matches!(&err, LogError::Io { path, .. } if *path == segs[2]),
        "{err}"
    );
    assert_intact_prefix(&log, hole_first);
}

#[tokio::test]
async fn a_damaged_active_segment_header_is_refused_by_name() {
    let dir = prepared(10).await;
    let active = files(dir.path(), "seg").pop().unwrap();
    flip(&active, 3);
    let store = open(dir.path());
    let err = store.open_log("l").err().unwrap();
    assert!(
        matches!(&err, LogError::Corrupt { path, offset: 0, .. } if *path == active),
        "{err}"
    );
}

#[tokio::test]
async fn an_unknown_segment_version_is_refused() {
    let dir = prepared(3).await;
    let active = files(dir.path(), "seg").pop().unwrap();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&active)
        .unwrap();
    let mut h = [0u8; 32];
    f.read_exact_at(&mut h, 0).unwrap();
    h[8..12].copy_from_slice(&2u32.to_le_bytes());
    let crc = crc32c::crc32c(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    f.write_all_at(&h, 0).unwrap();
    let store = open(dir.path());
    let err = store.open_log("l").err().unwrap();
    assert!(
        matches!(&err, LogError::UnsupportedVersion { path, found: 2 } if *path == active),
        "{err}"
    );
}

#[tokio::test]
async fn a_data_directory_that_cannot_be_written_gives_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the store needs a directory: creation fails like on a
    // read-only or full disk (tests run as root, so chmod would not do).
    std::fs::write(dir.path().join("logs"), b"not a directory").unwrap();
    let err = LogStore::open(dir.path(), StoreConfig::default())
        .err()
        .unwrap();
    assert!(matches!(&err, LogError::Io { .. }), "{err}");
    assert!(
        err.to_string().contains(dir.path().to_str().unwrap()),
        "{err}"
    );
    let blocked = tempfile::tempdir().unwrap();
    let store = LogStore::open(blocked.path(), StoreConfig::default()).unwrap();
    std::fs::remove_dir(blocked.path().join("logs")).unwrap();
    std::fs::write(blocked.path().join("logs"), b"x").unwrap();
    let err = store.open_log("l").err().unwrap();
    assert!(err.to_string().contains("logs"), "{err}");
}

#[tokio::test]
async fn a_sealed_segment_with_an_unknown_version_is_refused_when_read() {
    let dir = prepared(300).await;
    let victim = files(dir.path(), "seg")[1].clone();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&victim)
        .unwrap();
    let mut h = [0u8; 32];
    f.read_exact_at(&mut h, 0).unwrap();
    h[8..12].copy_from_slice(&3u32.to_le_bytes());
    let crc = crc32c::crc32c(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    f.write_all_at(&h, 0).unwrap();
    let store = open(dir.path());
    let log = store.open_log("l").unwrap();
    let err = log.read(0, ALL).unwrap_err();
    assert!(
        matches!(&err, LogError::UnsupportedVersion { path, found: 3 } if *path == victim),
        "{err}"
    );
}

/// After a power loss, the pages written since the last sync may have
/// reached the disk in any subset and order. Whatever the pattern, recovery
/// keeps everything synced and then a prefix of whole batches, never a
/// partial or damaged one.
#[tokio::test]
async fn unsynced_pages_lost_in_any_pattern_leave_synced_data_plus_whole_batches() {
    const PAGE: u64 = 4096;
    let mut rng: u64 = 0x243F_6A88_85A3_08D3;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let mut ends = vec![0u64]; // seq after each batch
        let mut synced_len = 0;
        {
            let store = LogStore::open(
                dir.path(),
                StoreConfig {
                    fsync: FsyncPolicy::Always,
                    segment_bytes_max: 1 << 30,
                    // Every append syncs the segment itself, so what was
                    // synced is known from its length (the journal's
                    // replay has tests/journal.rs).
                    journal_bytes_max: 0,
                    ..StoreConfig::default()
                },
            )
            .unwrap();
            let log = store.open_log("l").unwrap();
            for b in 0..40 {
                let count = 1 + next() % 8;
                let datas: Vec<Vec<u8>> = (0..count)
                    .map(|i| {
                        let mut d = payload(ends.last().unwrap() + i);
                        d.resize(d.len() + (next() % 1500) as usize, b'.');
                        d
                    })
                    .collect();
                let recs: Vec<RecordIn> = datas
                    .iter()
                    .map(|d| RecordIn {
                        partition_key: b"pk",
                        explicit_hash_key: None,
                        data: d,
                    })
                    .collect();
                log.append(&recs, b).await.unwrap();
                ends.push(ends.last().unwrap() + count);
                if b == 19 {
                    synced_len = std::fs::metadata(&files(dir.path(), "seg")[0])
                        .unwrap()
                        .len();
                }
            }
        }
        let seg = files(dir.path(), "seg")[0].clone();
        let total = std::fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        let mut page = synced_len.div_ceil(PAGE) * PAGE;
        while page < total {
            if next() % 3 == 0 {
                let n = PAGE.min(total - page) as usize;
                f.write_all_at(&vec![0u8; n], page).unwrap();
            }
            page += PAGE;
        }
        if next() % 2 == 0 {
            f.set_len(synced_len + next() % (total - synced_len))
                .unwrap();
        }
        let store = open(dir.path());
        let log = store.open_log("l").unwrap();
        let got = log.read(0, ALL).unwrap();
        let n = log.next_seq();
        assert!(
            n >= ends[20],
            "round {round}: synced batches lost ({n} < {})",
            ends[20]
        );
        assert!(
            ends.contains(&n),
            "round {round}: next seq {n} is not a batch boundary"
        );
        assert_eq!(got.records.len() as u64, n);
        for r in &got.records {
            assert!(
                r.data.starts_with(&payload(r.seq)),
                "round {round}: record {} damaged",
                r.seq
            );
        }
    }
}
