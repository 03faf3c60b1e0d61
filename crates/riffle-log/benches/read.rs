//! Read throughput of cached data: 1 KiB records, read from the start of a
//! 64 MiB log in GetRecords-sized calls (10,000 records / 10 MiB); and
//! 100-byte records the same way, each call's records kept until the next
//! call is done (as a server keeps them until its response is written), so
//! the record limit, not the byte budget, bounds each call. Run with
//! `cargo bench -p riffle-log --bench read`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riffle_log::{FsyncPolicy, LogStore, ReadLimits, RecordIn, ShardLog, StoreConfig};

const RECORD_BYTES: usize = 1024;
const LOG_BYTES: usize = 64 * 1024 * 1024;
const BATCH: usize = 500;

/// A fresh store (fsync never) holding one log of `log_bytes` of
/// `record_bytes` records, appended in batches of [`BATCH`]. The temporary
/// directory is returned so it lives as long as the log.
fn filled_log(record_bytes: usize, log_bytes: usize) -> (tempfile::TempDir, LogStore, ShardLog) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        fsync: FsyncPolicy::Never,
        ..StoreConfig::default()
    };
    let store = LogStore::open(dir.path(), config).unwrap();
    let log = store.open_log("bench/0").unwrap();
    let data = vec![0x3Cu8; record_bytes];
    let recs: Vec<RecordIn> = (0..BATCH)
        .map(|_| RecordIn {
            partition_key: b"pk",
            explicit_hash_key: None,
            data: &data,
        })
        .collect();
    rt.block_on(async {
        for i in 0..log_bytes / (BATCH * record_bytes) {
            log.append(&recs, i as i64).await.unwrap();
        }
    });
    (dir, store, log)
}

/// What one GetRecords call may return at most (AWS's 10,000 / 10 MiB).
const LIMITS: ReadLimits = ReadLimits {
    records_max: 10_000,
    bytes_max: 10 * 1024 * 1024,
};

fn read_cached(c: &mut Criterion) {
    let (_dir, _store, log) = filled_log(RECORD_BYTES, LOG_BYTES);
    let limits = LIMITS;
    let mut group = c.benchmark_group("read_cached");
    let total: usize = {
        let (mut seq, mut bytes) = (0, 0);
        loop {
            let b = log.read(seq, limits).unwrap();
            if b.records.is_empty() {
                break bytes;
            }
            bytes += b
                .records
                .iter()
                .map(|r| r.data.len() + r.partition_key.len())
                .sum::<usize>();
            seq = b.next_seq;
        }
    };
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("whole_log_1KiB_records", |b| {
        b.iter(|| {
            let mut seq = 0;
            loop {
                let batch = log.read(seq, limits).unwrap();
                if batch.records.is_empty() {
                    break;
                }
                seq = black_box(batch).next_seq;
            }
        })
    });
    group.finish();
}

fn read_small_records_held(c: &mut Criterion) {
    const SMALL_RECORD_BYTES: usize = 100;
    const SMALL_LOG_BYTES: usize = 16 * 1024 * 1024;
    let (_dir, _store, log) = filled_log(SMALL_RECORD_BYTES, SMALL_LOG_BYTES);
    let limits = LIMITS;
    let mut group = c.benchmark_group("read_cached");
    group.throughput(Throughput::Bytes(SMALL_LOG_BYTES as u64));
    group.bench_function("whole_log_100B_records_held", |b| {
        b.iter(|| {
            let mut seq = 0;
            let mut held = None;
            loop {
                let batch = log.read(seq, limits).unwrap();
                if batch.records.is_empty() {
                    break;
                }
                seq = batch.next_seq;
                // The previous call's records go only now.
                held = Some(black_box(batch));
            }
            drop(held);
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(10)
}

criterion_group! { name = benches; config = config(); targets = read_cached, read_small_records_held }
criterion_main!(benches);
