//! Behaviour of the engine through its public API: appends, reads, recovery,
//! closing, retention, deletion and metadata, on real files in temp dirs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use riffle_log::{
    FsyncPolicy, LogError, LogStore, MetaOp, ReadLimits, Record, RecordIn, StoreConfig,
};

const ALL: ReadLimits = ReadLimits {
    records_max: usize::MAX,
    bytes_max: usize::MAX,
};

fn config(segment_bytes_max: u64) -> StoreConfig {
    StoreConfig {
        fsync: FsyncPolicy::Always,
        segment_bytes_max,
        ..StoreConfig::default()
    }
}

fn rec<'a>(pk: &'a str, data: &'a [u8]) -> RecordIn<'a> {
    RecordIn {
        partition_key: pk.as_bytes(),
        explicit_hash_key: None,
        data,
    }
}

fn data_of(r: &Record) -> Vec<u8> {
    r.data.to_vec()
}

/// Appends `n` single-record batches whose data is the record's index.
async fn append_n(log: &riffle_log::ShardLog, n: usize, t0: i64) {
    for i in 0..n {
        let d = format!("record-{i}");
        log.append(&[rec("pk", d.as_bytes())], t0 + i as i64)
            .await
            .unwrap();
    }
}

fn seg_files(dir: &Path, log: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("logs").join(log.replace('/', "+")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn appended_batches_read_back_in_order_with_all_fields() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let log = store.open_log("s/shard-0").unwrap();
    assert_eq!(
        (log.next_seq(), log.oldest_seq(), log.last_arrival_ms()),
        (0, 0, None)
    );
    let a = log
        .append(
            &[
                rec("a", b"one"),
                RecordIn {
                    partition_key: b"b",
                    explicit_hash_key: Some(b"123"),
                    data: b"",
                },
            ],
            1000,
        )
        .await
        .unwrap();
    assert_eq!((a.first_seq, a.arrival_ms), (0, 1000));
    // Arrival times never go backwards, whatever the caller's clock says.
    let b = log.append(&[rec("c", b"three")], 900).await.unwrap();
    assert_eq!((b.first_seq, b.arrival_ms), (2, 1000));
    let got = log.read(0, ALL).unwrap();
    assert_eq!(got.next_seq, 3);
    assert!(!got.end_of_log);
    let r = &got.records;
    assert_eq!(r.len(), 3);
    assert_eq!(
        (
            r[0].seq,
            &r[0].partition_key[..],
            &r[0].data[..],
            r[0].explicit_hash_key.clone()
        ),
        (0, &b"a"[..], &b"one"[..], None)
    );
    assert_eq!(r[1].explicit_hash_key.as_deref(), Some(&b"123"[..]));
    assert_eq!((r[2].seq, r[2].arrival_ms), (2, 1000));
    assert_eq!(log.read(2, ALL).unwrap().records.len(), 1);
    let tip = log.read(3, ALL).unwrap();
    assert!(tip.records.is_empty());
    assert_eq!(tip.next_seq, 3);
}

#[tokio::test]
async fn reads_respect_record_and_byte_limits_but_always_make_progress() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let log = store.open_log("l").unwrap();
    let big = vec![7u8; 1000];
    let batch: Vec<_> = (0..10).map(|_| rec("k", &big)).collect();
    log.append(&batch, 1).await.unwrap();
    let two = log
        .read(
            0,
            ReadLimits {
                records_max: 2,
                bytes_max: usize::MAX,
            },
        )
        .unwrap();
    assert_eq!((two.records.len(), two.next_seq), (2, 2));
    let by_bytes = log
        .read(
            2,
            ReadLimits {
                records_max: 100,
                bytes_max: 3003,
            },
        )
        .unwrap();
    assert_eq!((by_bytes.records.len(), by_bytes.next_seq), (3, 5));
    let tiny = log
        .read(
            5,
            ReadLimits {
                records_max: 100,
                bytes_max: 1,
            },
        )
        .unwrap();
    assert_eq!((tiny.records.len(), tiny.next_seq), (1, 6));
}

/// Record-limited reads over indexed, multi-segment logs (whose reads the
/// sparse index sizes, and which stop at the limit) return exactly the
/// records a full read has from there, also when a limit ends on a batch
/// boundary or at a segment's end.
#[tokio::test]
async fn record_limited_reads_match_a_full_read_across_index_entries_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), config(512 * 1024)).unwrap();
    let log = store.open_log("l").unwrap();
    let datas: Vec<Vec<u8>> = (0..2000u32)
        .map(|i| {
            let mut d = i.to_be_bytes().to_vec();
            d.resize(500 + (i as usize * 37) % 700, 1);
            d
        })
        .collect();
    for (b, chunk) in datas.chunks(10).enumerate() {
        let recs: Vec<_> = chunk.iter().map(|d| rec("k", d)).collect();
        log.append(&recs, b as i64).await.unwrap();
    }
    assert!(
        seg_files(dir.path(), "l").len() > 1,
        "the log spans segments"
    );
    let all = log.read(0, ALL).unwrap();
    assert_eq!(all.records.len(), 2000);
    for from in [0u64, 1, 9, 10, 11, 133, 999, 1000, 1555, 1990, 1999] {
        for records_max in [1usize, 9, 10, 11, 100, 130, 777, 5000] {
            let limits = ReadLimits {
                records_max,
                bytes_max: usize::MAX,
            };
            let got = log.read(from, limits).unwrap();
            let want = &all.records[from as usize..(from as usize + records_max).min(2000)];
            assert_eq!(
                got.records.len(),
                want.len(),
                "from {from}, max {records_max}"
            );
            for (g, w) in got.records.iter().zip(want) {
                assert_eq!((g.seq, data_of(g)), (w.seq, data_of(w)));
            }
            assert_eq!(got.next_seq, from + want.len() as u64);
        }
    }
}

#[tokio::test]
async fn records_survive_reopen_and_seqs_continue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path(), config(1024)).unwrap();
        let log = store.open_log("s/0").unwrap();
        append_n(&log, 100, 10).await;
    }
    assert!(
        seg_files(dir.path(), "s/0").len() > 3,
        "small segments roll"
    );
    let store = LogStore::open(dir.path(), config(1024)).unwrap();
    let log = store.open_log("s/0").unwrap();
    assert_eq!(
        (log.next_seq(), log.oldest_seq(), log.last_arrival_ms()),
        (100, 0, Some(109))
    );
    let got = log.read(0, ALL).unwrap();
    assert_eq!(got.records.len(), 100);
    for (i, r) in got.records.iter().enumerate() {
        assert_eq!(
            (r.seq, data_of(r)),
            (i as u64, format!("record-{i}").into_bytes())
        );
    }
    assert_eq!(log.read(57, ALL).unwrap().records[0].seq, 57);
    let a = log.append(&[rec("k", b"x")], 5).await.unwrap();
    assert_eq!((a.first_seq, a.arrival_ms), (100, 109));
}

#[tokio::test]
async fn opening_the_same_log_twice_shares_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let a = store.open_log("x").unwrap();
    let b = store.open_log("x").unwrap();
    a.append(&[rec("k", b"v")], 1).await.unwrap();
    assert_eq!(b.next_seq(), 1);
    assert_eq!(b.name(), "x");
}

#[tokio::test]
async fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let err = LogStore::open(dir.path(), StoreConfig::default())
        .err()
        .expect("second open must fail");
    assert!(
        matches!(err, LogError::Io { ref path, .. } if path.ends_with("LOCK")),
        "{err}"
    );
}

#[tokio::test]
async fn invalid_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    for bad in ["", "../x", "a b", "a//b"] {
        assert!(
            matches!(store.open_log(bad), Err(LogError::InvalidName(_))),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn oversized_records_are_refused_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let log = store.open_log("l").unwrap();
    let pk = vec![b'k'; 70_000];
    let err = log
        .append(
            &[RecordIn {
                partition_key: &pk,
                explicit_hash_key: None,
                data: b"",
            }],
            1,
        )
        .await;
    assert!(matches!(
        err,
        Err(LogError::TooLarge {
            field: "partition_key",
            ..
        })
    ));
    assert_eq!(log.next_seq(), 0);
}

#[tokio::test]
async fn close_is_durable_and_stops_appends() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
        let log = store.open_log("l").unwrap();
        let empty = store.open_log("empty").unwrap();
        assert_eq!(empty.close().await.unwrap(), None);
        append_n(&log, 3, 1).await;
        assert_eq!(log.close().await.unwrap(), Some(2));
        assert_eq!(
            log.close().await.unwrap(),
            Some(2),
            "closing twice answers the same"
        );
        assert!(log.is_closed());
        assert!(matches!(
            log.append(&[rec("k", b"v")], 1).await,
            Err(LogError::Closed { .. })
        ));
        let end = log.read(3, ALL).unwrap();
        assert!(end.end_of_log);
        assert!(
            log.read(0, ALL).unwrap().end_of_log,
            "the last records come with the end"
        );
        assert!(
            !log.read(
                0,
                ReadLimits {
                    records_max: 1,
                    bytes_max: 100
                }
            )
            .unwrap()
            .end_of_log
        );
        log.wait_readable(3).await; // returns at once: closed
    }
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let log = store.open_log("l").unwrap();
    assert!(log.is_closed());
    assert_eq!(log.next_seq(), 3);
    assert_eq!(log.read(0, ALL).unwrap().records.len(), 3);
    assert!(matches!(
        log.append(&[rec("k", b"v")], 1).await,
        Err(LogError::Closed { .. })
    ));
}

#[tokio::test]
async fn waiters_at_the_tip_wake_on_commit_close_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let log = store.open_log("l").unwrap();
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move { log.wait_readable(0).await })
    };
    tokio::task::yield_now().await;
    log.append(&[rec("k", b"v")], 1).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move { log.wait_readable(1).await })
    };
    log.close().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    let other = store.open_log("m").unwrap();
    let waiter = {
        let other = other.clone();
        tokio::spawn(async move { other.wait_readable(0).await })
    };
    store.delete_log("m").unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn delete_removes_files_and_handles_report_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let log = store.open_log("s/0").unwrap();
    append_n(&log, 5, 1).await;
    store.delete_log("s/0").unwrap();
    assert!(!dir.path().join("logs/s+0").exists());
    assert!(matches!(log.read(0, ALL), Err(LogError::Deleted { .. })));
    assert!(matches!(
        log.append(&[rec("k", b"v")], 1).await,
        Err(LogError::Deleted { .. })
    ));
    store.delete_log("never-opened").unwrap();
    // A new log under the same name starts afresh.
    let again = store.open_log("s/0").unwrap();
    assert_eq!(again.next_seq(), 0);
}

#[tokio::test]
async fn seq_at_timestamp_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), config(2048)).unwrap();
    let log = store.open_log("l").unwrap();
    // Two records per millisecond step of 10 ms, across many segments.
    for i in 0..200i64 {
        log.append(&[rec("k", b"0123456789"), rec("k", b"abc")], 1000 + i * 10)
            .await
            .unwrap();
    }
    assert_eq!(log.seq_at_timestamp(0).unwrap(), 0);
    assert_eq!(log.seq_at_timestamp(1000).unwrap(), 0);
    assert_eq!(log.seq_at_timestamp(1001).unwrap(), 2);
    assert_eq!(log.seq_at_timestamp(1500).unwrap(), 100);
    assert_eq!(log.seq_at_timestamp(1505).unwrap(), 102);
    assert_eq!(log.seq_at_timestamp(2990).unwrap(), 398);
    assert_eq!(log.seq_at_timestamp(2991).unwrap(), 400);
    drop(log);
    drop(store);
    let store = LogStore::open(dir.path(), config(2048)).unwrap();
    let log = store.open_log("l").unwrap();
    for at in [999, 1234, 1500, 2500, 2990, 5000] {
        let expect = if at > 2990 {
            400
        } else {
            (((at - 1000).max(0) + 9) / 10 * 2) as u64
        };
        assert_eq!(log.seq_at_timestamp(at).unwrap(), expect, "at {at}");
    }
}

#[tokio::test]
async fn trim_deletes_whole_old_segments_durably_and_never_reuses_seqs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path(), config(2048)).unwrap();
        let log = store.open_log("l").unwrap();
        append_n(&log, 100, 0).await; // arrival = index
        let before = seg_files(dir.path(), "l").len();
        let oldest = log.trim_before(50).unwrap();
        assert!(oldest > 0 && oldest <= 50, "oldest {oldest}");
        assert_eq!(log.oldest_seq(), oldest);
        assert!(seg_files(dir.path(), "l").len() < before);
        let got = log.read(0, ALL).unwrap();
        assert_eq!(
            got.records[0].seq, oldest,
            "reads below oldest start at oldest"
        );
        assert_eq!(got.records.len() as u64, 100 - oldest);
        // Everything is older than the cutoff: the active segment is sealed
        // and deleted too, but the log keeps its next seq.
        assert_eq!(log.trim_before(1_000).unwrap(), 100);
        assert_eq!((log.oldest_seq(), log.next_seq()), (100, 100));
        assert!(log.read(0, ALL).unwrap().records.is_empty());
        assert_eq!(log.seq_at_timestamp(0).unwrap(), 100);
    }
    let store = LogStore::open(dir.path(), config(2048)).unwrap();
    let log = store.open_log("l").unwrap();
    assert_eq!((log.oldest_seq(), log.next_seq()), (100, 100));
    assert_eq!(
        log.append(&[rec("k", b"v")], 5).await.unwrap().first_seq,
        100
    );
}

#[tokio::test]
async fn trim_keeps_a_closed_log_closed_with_its_seqs() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path(), config(1 << 20)).unwrap();
        let log = store.open_log("l").unwrap();
        append_n(&log, 10, 0).await;
        log.close().await.unwrap();
        assert_eq!(log.trim_before(100).unwrap(), 10);
    }
    let store = LogStore::open(dir.path(), config(1 << 20)).unwrap();
    let log = store.open_log("l").unwrap();
    assert!(log.is_closed());
    assert_eq!((log.oldest_seq(), log.next_seq()), (10, 10));
    assert!(log.read(10, ALL).unwrap().end_of_log);
}

#[tokio::test]
async fn concurrent_appenders_all_get_distinct_contiguous_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), config(64 * 1024)).unwrap();
    let log = store.open_log("l").unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..50 {
                let d = format!("{t}-{i}");
                let a = log
                    .append(&[rec("k", d.as_bytes()), rec("k", d.as_bytes())], 1)
                    .await
                    .unwrap();
                seqs.push((a.first_seq, d));
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    assert_eq!(all.len(), 800);
    let got = log.read(0, ALL).unwrap();
    assert_eq!(got.records.len(), 1600);
    for (i, (seq, d)) in all.iter().enumerate() {
        assert_eq!(*seq, 2 * i as u64);
        assert_eq!(got.records[2 * i].data, d.as_bytes());
        assert_eq!(got.records[2 * i + 1].data, d.as_bytes());
    }
}

#[tokio::test]
async fn every_fsync_policy_round_trips_and_shutdown_syncs() {
    for fsync in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(Duration::from_millis(5)),
        FsyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = LogStore::open(
                dir.path(),
                StoreConfig {
                    fsync,
                    segment_bytes_max: 4096,
                    ..StoreConfig::default()
                },
            )
            .unwrap();
            let log = store.open_log("l").unwrap();
            append_n(&log, 50, 0).await;
            store.shutdown().await.unwrap();
            assert!(
                log.append(&[rec("k", b"v")], 1).await.is_err(),
                "appends after shutdown fail"
            );
        }
        let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
        assert_eq!(
            store
                .open_log("l")
                .unwrap()
                .read(0, ALL)
                .unwrap()
                .records
                .len(),
            50,
            "{fsync:?}"
        );
    }
}

#[tokio::test]
async fn metadata_commits_are_atomic_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
        let meta = store.meta();
        assert_eq!(meta.get("stream/a").unwrap(), None);
        meta.commit(&[
            MetaOp::Put {
                key: "stream/a".into(),
                value: b"1".to_vec(),
            },
            MetaOp::Put {
                key: "stream/b".into(),
                value: b"2".to_vec(),
            },
            MetaOp::Put {
                key: "streamz".into(),
                value: b"3".to_vec(),
            },
            MetaOp::Put {
                key: "other".into(),
                value: b"4".to_vec(),
            },
        ])
        .unwrap();
        meta.commit(&[
            MetaOp::Delete {
                key: "stream/b".into(),
            },
            MetaOp::Put {
                key: "stream/c".into(),
                value: vec![],
            },
        ])
        .unwrap();
    }
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let meta = store.meta();
    assert_eq!(meta.get("stream/a").unwrap(), Some(b"1".to_vec()));
    let scan = meta.scan_prefix("stream/").unwrap();
    assert_eq!(
        scan,
        vec![
            ("stream/a".to_string(), b"1".to_vec()),
            ("stream/c".to_string(), vec![])
        ]
    );
    assert_eq!(meta.scan_prefix("").unwrap().len(), 4);
}

#[tokio::test]
async fn an_unknown_store_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(LogStore::open(dir.path(), StoreConfig::default()).unwrap());
    let path = dir.path().join("FORMAT");
    let mut b = std::fs::read(&path).unwrap();
    b[8..12].copy_from_slice(&9u32.to_le_bytes());
    let crc = crc32c::crc32c(&b[..12]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &b).unwrap();
    let err = LogStore::open(dir.path(), StoreConfig::default())
        .err()
        .unwrap();
    assert!(
        matches!(err, LogError::UnsupportedVersion { found: 9, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn records_larger_than_a_read_chunk_read_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), config(1 << 20)).unwrap();
    let log = store.open_log("big").unwrap();
    let big: Vec<u8> = (0..10 * 1024 * 1024)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    log.append(&[rec("small", b"a")], 1).await.unwrap();
    log.append(&[rec("big", &big), rec("after", b"b")], 2)
        .await
        .unwrap();
    let one = log
        .read(
            1,
            ReadLimits {
                records_max: 10,
                bytes_max: 1024,
            },
        )
        .unwrap();
    assert_eq!(
        one.records.len(),
        1,
        "a record over the byte budget still comes alone"
    );
    assert_eq!(one.records[0].data, big);
    let rest = log.read(one.next_seq, ALL).unwrap();
    assert_eq!(rest.records[0].data, &b"b"[..]);
    drop(log);
    drop(store);
    let store = LogStore::open(dir.path(), config(1 << 20)).unwrap();
    let log = store.open_log("big").unwrap();
    let all = log.read(0, ALL).unwrap();
    assert_eq!(all.records.len(), 3);
    assert_eq!(all.records[1].data, big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_at_the_oldest_record_never_fail_while_retention_deletes_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path(), config(512)).unwrap();
        append_n(&store.open_log("l").unwrap(), 600, 0).await; // arrival = index
    }
    // Reopened: sealed segments are opened lazily, the widest race window.
    let store = LogStore::open(dir.path(), config(512)).unwrap();
    let log = store.open_log("l").unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (log, done) = (log.clone(), done.clone());
        std::thread::spawn(move || {
            let limits = ReadLimits {
                records_max: 3,
                bytes_max: usize::MAX,
            };
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let got = log
                    .read(0, limits)
                    .expect("a read racing a trim must not fail");
                for r in &got.records {
                    assert_eq!(data_of(r), format!("record-{}", r.seq).into_bytes());
                }
                reads += 1;
            }
            reads
        })
    };
    for cutoff in (0..600).step_by(5) {
        log.trim_before(cutoff).unwrap();
        tokio::task::yield_now().await;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
}

#[tokio::test]
async fn a_trim_with_nothing_old_enough_keeps_everything_and_a_deleted_log_still_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), config(256)).unwrap();
    let log = store.open_log("t/0").unwrap();
    assert_eq!(log.trim_before(i64::MAX).unwrap(), 0, "an empty log");
    append_n(&log, 20, 1000).await;
    assert!(seg_files(dir.path(), "t/0").len() > 2);
    assert_eq!(log.trim_before(1000).unwrap(), 0);
    assert_eq!(log.read(0, ALL).unwrap().records.len(), 20);
    let oldest = log.trim_before(1010).unwrap();
    assert!(oldest > 0 && oldest <= 10, "oldest {oldest}");
    assert_eq!(
        log.trim_before(1010).unwrap(),
        oldest,
        "nothing more to trim"
    );
    assert_eq!(log.read(0, ALL).unwrap().records[0].seq, oldest);
    store.delete_log("t/0").unwrap();
    assert!(matches!(log.trim_before(0), Err(LogError::Deleted { .. })));
}
