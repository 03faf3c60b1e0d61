//! Property test against a model: any interleaving of appends, closes,
//! trims (retention), reads and reopenings reads back exactly the
//! acknowledged records, in order, with their sequence numbers and arrival
//! times. Small segments make every case cross many segment boundaries.

use std::path::Path;

use proptest::prelude::*;
use riffle_log::{
    FsyncPolicy, LogError, LogStore, OPEN_FILES_MIN, ReadLimits, RecordIn, ShardLog, StoreConfig,
};

const ALL: ReadLimits = ReadLimits {
    records_max: usize::MAX,
    bytes_max: usize::MAX,
};

#[derive(Debug, Clone)]
enum Op {
    /// Records as (partition key length, explicit hash key?, data length),
    /// and how far the clock moves (it may also go back a little).
    Append(Vec<(u8, bool, u16)>, i16),
    Close,
    /// Trim records older than `now - age`.
    Trim(u16),
    Reopen,
    Read {
        from_back: u16,
        records_max: u8,
        bytes_max: u16,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let record = (1u8..20, any::<bool>(), 0u16..600);
    prop_oneof![
        8 => (prop::collection::vec(record, 0..8), -5i16..40).prop_map(|(r, t)| Op::Append(r, t)),
        1 => Just(Op::Close),
        2 => (0u16..400).prop_map(Op::Trim),
        2 => Just(Op::Reopen),
        3 => (0u16..50, 1u8..20, 0u16..3000)
            .prop_map(|(from_back, records_max, bytes_max)| Op::Read { from_back, records_max, bytes_max }),
    ]
}

/// What the model expects of one record.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    seq: u64,
    arrival_ms: i64,
    partition_key: Vec<u8>,
    explicit_hash_key: Option<Vec<u8>>,
    data: Vec<u8>,
}

struct Model {
    records: Vec<Expected>,
    next_seq: u64,
    oldest: u64,
    closed: bool,
    now_ms: i64,
    last_arrival: Option<i64>,
    ids: u64,
}

fn open(dir: &Path, segment_bytes_max: u64) -> (LogStore, ShardLog) {
    let store = LogStore::open(
        dir,
        StoreConfig {
            fsync: FsyncPolicy::Never,
            segment_bytes_max,
            // Reads over several segments keep evicting each other's files.
            open_files_max: OPEN_FILES_MIN,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let log = store.open_log("p/0").unwrap();
    (store, log)
}

fn check_all(log: &ShardLog, m: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(log.next_seq(), m.next_seq);
    prop_assert_eq!(log.oldest_seq(), m.oldest);
    prop_assert_eq!(log.is_closed(), m.closed);
    let got = log.read(0, ALL).unwrap();
    let want: Vec<&Expected> = m.records.iter().filter(|r| r.seq >= m.oldest).collect();
    prop_assert_eq!(got.records.len(), want.len());
    for (g, w) in got.records.iter().zip(want) {
        prop_assert_eq!(g.seq, w.seq);
        prop_assert_eq!(g.arrival_ms, w.arrival_ms);
        prop_assert_eq!(&g.partition_key[..], &w.partition_key[..]);
        prop_assert_eq!(
            g.explicit_hash_key.as_deref(),
            w.explicit_hash_key.as_deref()
        );
        prop_assert_eq!(&g.data[..], &w.data[..]);
    }
    prop_assert_eq!(got.next_seq, m.next_seq.max(m.oldest));
    prop_assert_eq!(got.end_of_log, m.closed);
    Ok(())
}

fn apply_append(
    rt: &tokio::runtime::Runtime,
    log: &ShardLog,
    m: &mut Model,
    shape: &[(u8, bool, u16)],
    step: i16,
) -> Result<(), TestCaseError> {
    m.now_ms += i64::from(step);
    let owned: Vec<Expected> = shape
        .iter()
        .map(|&(pk, ehk, len)| {
            m.ids += 1;
            let tag = m.ids.to_le_bytes();
            Expected {
                seq: 0,
                arrival_ms: 0,
                partition_key: vec![b'k'; pk as usize],
                explicit_hash_key: ehk.then(|| tag[..3].to_vec()),
                data: (0..len as usize).map(|i| tag[i % 8] ^ i as u8).collect(),
            }
        })
        .collect();
    let recs: Vec<RecordIn> = owned
        .iter()
        .map(|e| RecordIn {
            partition_key: &e.partition_key,
            explicit_hash_key: e.explicit_hash_key.as_deref(),
            data: &e.data,
        })
        .collect();
    let result = rt.block_on(log.append(&recs, m.now_ms));
    if m.closed {
        prop_assert!(
            matches!(result, Err(LogError::Closed { .. })),
            "append to a closed log: {result:?}"
        );
        return Ok(());
    }
    let a = result.unwrap();
    let arrival = m.last_arrival.map_or(m.now_ms, |l| l.max(m.now_ms));
    prop_assert_eq!((a.first_seq, a.arrival_ms), (m.next_seq, arrival));
    for (i, mut e) in owned.into_iter().enumerate() {
        e.seq = a.first_seq + i as u64;
        e.arrival_ms = arrival;
        m.records.push(e);
    }
    if !shape.is_empty() {
        m.last_arrival = Some(arrival);
    }
    m.next_seq += shape.len() as u64;
    Ok(())
}

fn apply_trim(log: &ShardLog, m: &mut Model, age: u16) -> Result<(), TestCaseError> {
    let cutoff = m.now_ms - i64::from(age);
    let oldest = log.trim_before(cutoff).unwrap();
    // Whole segments only: never a record at or after the cutoff, never
    // backwards, and the oldest is a record boundary of the model.
    let first_kept = m
        .records
        .iter()
        .find(|r| r.seq >= m.oldest && r.arrival_ms >= cutoff)
        .map(|r| r.seq);
    prop_assert!(oldest >= m.oldest, "oldest moved back");
    prop_assert!(
        oldest <= first_kept.unwrap_or(m.next_seq),
        "trimmed a record newer than the cutoff"
    );
    m.oldest = oldest;
    Ok(())
}

fn apply_read(
    log: &ShardLog,
    m: &Model,
    from_back: u16,
    records_max: u8,
    bytes_max: u16,
) -> Result<(), TestCaseError> {
    let from = m.next_seq.saturating_sub(u64::from(from_back));
    let limits = ReadLimits {
        records_max: records_max as usize,
        bytes_max: bytes_max as usize,
    };
    let got = log.read(from, limits).unwrap();
    let start = from.max(m.oldest);
    let want: Vec<&Expected> = m.records.iter().filter(|r| r.seq >= start).collect();
    prop_assert!(got.records.len() <= records_max as usize);
    if !want.is_empty() {
        prop_assert!(!got.records.is_empty(), "a read makes progress");
    }
    let bytes: usize = got
        .records
        .iter()
        .map(|r| r.partition_key.len() + r.data.len())
        .sum();
    prop_assert!(got.records.len() <= 1 || bytes <= bytes_max as usize);
    for (g, w) in got.records.iter().zip(&want) {
        prop_assert_eq!(g.seq, w.seq);
        prop_assert_eq!(&g.data[..], &w.data[..]);
    }
    prop_assert_eq!(
        got.next_seq,
        got.records.last().map_or(start.max(from), |r| r.seq + 1)
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_reads_back_exactly_the_acknowledged_records(
        ops in prop::collection::vec(op(), 1..40),
        segment_bytes_max in prop_oneof![Just(300u64), Just(2048), Just(1 << 20)],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut log) = open(dir.path(), segment_bytes_max);
        let mut m = Model { records: vec![], next_seq: 0, oldest: 0, closed: false, now_ms: 1_000, last_arrival: None, ids: 0 };
        for op in &ops {
            match op {
                Op::Append(shape, step) => apply_append(&rt, &log, &mut m, shape, *step)?,
                Op::Close => {
                    let last = rt.block_on(log.close()).unwrap();
                    prop_assert_eq!(last, m.next_seq.checked_sub(1));
                    m.closed = true;
                }
                Op::Trim(age) => apply_trim(&log, &mut m, *age)?,
                Op::Reopen => {
                    drop(log);
                    drop(store);
                    (store, log) = open(dir.path(), segment_bytes_max);
                }
                Op::Read { from_back, records_max, bytes_max } => {
                    apply_read(&log, &m, *from_back, *records_max, *bytes_max)?
                }
            }
            check_all(&log, &m)?;
        }
    }
}
