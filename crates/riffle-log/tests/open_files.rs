//! The store keeps at most `StoreConfig::open_files_max` segment files
//! open, however many logs it holds: logs whose files were closed (for
//! being the least recently used) append, roll, read, close, trim, get
//! deleted and recover exactly like the others, under every fsync policy.

use std::path::Path;
use std::time::Duration;

use riffle_log::{
    FsyncPolicy, LogStore, OPEN_FILES_MIN, ReadLimits, RecordIn, ShardLog, StoreConfig,
};

const ALL: ReadLimits = ReadLimits {
    records_max: usize::MAX,
    bytes_max: usize::MAX,
};
/// Many more logs than files the store keeps open.
const LOGS: usize = 24;

fn config(fsync: FsyncPolicy) -> StoreConfig {
    StoreConfig {
        fsync,
        // Small segments: appends also roll segments of closed files.
        segment_bytes_max: 2048,
        open_files_max: OPEN_FILES_MIN,
        ..StoreConfig::default()
    }
}

fn open_logs(store: &LogStore) -> Vec<ShardLog> {
    (0..LOGS)
        .map(|i| store.open_log(&format!("s/{i}")).unwrap())
        .collect()
}

fn datum(log: usize, n: usize) -> Vec<u8> {
    format!("log {log} record {n} {}", "x".repeat(n * 37 % 300)).into_bytes()
}

/// Appends `rounds` batches to every log, one log after another, so each
/// append finds its log's file closed by the appends to the others.
async fn append_round_robin(store: &LogStore, logs: &[ShardLog], from: usize, rounds: usize) {
    for n in from..from + rounds {
        for (i, log) in logs.iter().enumerate() {
            let data = datum(i, n);
            let record = RecordIn {
                partition_key: b"pk",
                explicit_hash_key: None,
                data: &data,
            };
            let a = log.append(&[record], n as i64).await.unwrap();
            assert_eq!(a.first_seq, n as u64);
            assert!(store.open_files() <= OPEN_FILES_MIN);
        }
    }
}

/// Every log from `logs[skip]` on holds exactly the records `0..n`, read
/// back one log after another (each read reopening a closed file) and from
/// the middle.
fn check_from(skip: usize, store: &LogStore, logs: &[ShardLog], n: usize) {
    for (i, log) in logs.iter().enumerate().skip(skip) {
        let all = log.read(0, ALL).unwrap();
        let got: Vec<Vec<u8>> = all.records.iter().map(|r| r.data.to_vec()).collect();
        let want: Vec<Vec<u8>> = (0..n).map(|k| datum(i, k)).collect();
        assert_eq!(got, want, "log {i}");
        assert_eq!(log.next_seq(), n as u64);
        let tail = log.read(n as u64 / 2, ALL).unwrap();
        assert_eq!(tail.records.first().map(|r| r.seq), Some(n as u64 / 2));
        assert!(store.open_files() <= OPEN_FILES_MIN);
    }
}

fn check_all(store: &LogStore, logs: &[ShardLog], n: usize) {
    check_from(0, store, logs, n)
}

fn reopen(dir: &Path, fsync: FsyncPolicy) -> (LogStore, Vec<ShardLog>) {
    let store = LogStore::open(dir, config(fsync)).unwrap();
    let logs = open_logs(&store);
    (store, logs)
}

#[tokio::test]
async fn opening_many_logs_holds_no_segment_file_open() {
    let dir = tempfile::tempdir().unwrap();
    let (store, logs) = reopen(dir.path(), FsyncPolicy::Always);
    assert_eq!(store.open_files(), 0, "new logs");
    append_round_robin(&store, &logs, 0, 1).await;
    drop((logs, store));
    let (store, logs) = reopen(dir.path(), FsyncPolicy::Always);
    assert_eq!(store.open_files(), 0, "recovered logs");
    check_all(&store, &logs, 1);
}

#[tokio::test]
async fn logs_beyond_the_open_file_limit_append_read_and_recover_under_every_policy() {
    for fsync in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(Duration::from_secs(60)),
        FsyncPolicy::Never,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (store, logs) = reopen(dir.path(), fsync);
        append_round_robin(&store, &logs, 0, 20).await;
        check_all(&store, &logs, 20);
        // Concurrent appends to every log: rounds over more cold logs than
        // the writer may open at once.
        let tasks: Vec<_> = logs
            .iter()
            .enumerate()
            .map(|(i, log)| {
                let log = log.clone();
                tokio::spawn(async move {
                    let data = datum(i, 20);
                    let record = RecordIn {
                        partition_key: b"pk",
                        explicit_hash_key: None,
                        data: &data,
                    };
                    log.append(&[record], 20).await.unwrap()
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().first_seq, 20);
        }
        check_all(&store, &logs, 21);
        store.shutdown().await.unwrap();
        drop((logs, store));
        let (store, logs) = reopen(dir.path(), fsync);
        check_all(&store, &logs, 21);
        append_round_robin(&store, &logs, 21, 3).await;
        check_all(&store, &logs, 24);
    }
}

#[tokio::test]
async fn cold_logs_close_trim_and_delete_and_a_recreated_log_never_reads_the_old_files() {
    let dir = tempfile::tempdir().unwrap();
    let (store, logs) = reopen(dir.path(), FsyncPolicy::Always);
    append_round_robin(&store, &logs, 0, 30).await;
    // Closing a log whose file the writer had closed is durable too.
    assert_eq!(logs[0].close().await.unwrap(), Some(29));
    // Retention over a cold log removes its old segments.
    let oldest = logs[1].trim_before(15).unwrap();
    assert!(oldest > 0 && oldest <= 15, "oldest {oldest}");
    assert_eq!(logs[1].read(0, ALL).unwrap().records[0].seq, oldest);
    // Read every log so the readers' cache holds some of log 2's files,
    // then delete it and create it again under the same name.
    check_from(2, &store, &logs, 30);
    let _ = logs[2].read(0, ALL).unwrap();
    store.delete_log("s/2").unwrap();
    let again = store.open_log("s/2").unwrap();
    assert_eq!(again.next_seq(), 0);
    assert!(again.read(0, ALL).unwrap().records.is_empty());
    let data = b"new incarnation";
    let record = RecordIn {
        partition_key: b"pk",
        explicit_hash_key: None,
        data,
    };
    again.append(&[record], 1).await.unwrap();
    let read = again.read(0, ALL).unwrap();
    assert_eq!(read.records.len(), 1);
    assert_eq!(&read.records[0].data[..], data);
    drop((logs, again, store));
    let (store, logs) = reopen(dir.path(), FsyncPolicy::Always);
    assert!(logs[0].is_closed());
    assert_eq!(logs[0].next_seq(), 30);
    assert_eq!(logs[1].oldest_seq(), oldest);
    assert_eq!(logs[2].read(0, ALL).unwrap().records.len(), 1);
    check_from(3, &store, &logs, 30);
}

/// Files are opened on demand, so a read can find a file gone when the log
/// is deleted under it: it must say `Deleted`, never `NotFound`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_racing_a_deletion_report_the_log_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), config(FsyncPolicy::Never)).unwrap();
    for attempt in 0..50 {
        let name = format!("race/{attempt}");
        let log = store.open_log(&name).unwrap();
        append_round_robin(&store, std::slice::from_ref(&log), 0, 30).await;
        let reader = std::thread::spawn(move || {
            loop {
                if let Err(e) = log.read(0, ALL) {
                    return e;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(2));
        store.delete_log(&name).unwrap();
        let e = reader.join().unwrap();
        assert!(
            matches!(e, riffle_log::LogError::Deleted { .. }),
            "attempt {attempt}: {e}"
        );
    }
}
