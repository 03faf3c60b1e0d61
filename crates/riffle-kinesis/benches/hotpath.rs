//! The record path's CPU-heavy steps one at a time (no storage, no HTTP):
//! PutRecords request decoding and GetRecords response encoding in JSON
//! and CBOR, partition-key hashing with routing, and shard-iterator
//! signing and checking. Where `service` says what a call costs, this
//! says which step the time goes to.
//!
//! `cargo bench -p riffle-kinesis --bench hotpath`

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use riffle_kinesis::hotpath::HotPath;
use riffle_kinesis::{Codec, Kinesis, KinesisConfig};
use riffle_log::{FsyncPolicy, LogStore, ReadBatch, Record, StoreConfig};

const SHARDS: u32 = 4;

struct Setup {
    _dir: tempfile::TempDir,
    hot: HotPath,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let config = StoreConfig {
        fsync: FsyncPolicy::Never,
        ..StoreConfig::default()
    };
    let store = Arc::new(LogStore::open(dir.path(), config).expect("store"));
    let config = KinesisConfig {
        status_delay: Duration::ZERO,
        throughput_limits: false,
        ..KinesisConfig::default()
    };
    let kinesis = Kinesis::open(store, config).expect("service");
    let create = format!(r#"{{"StreamName":"bench","ShardCount":{SHARDS}}}"#);
    rt.block_on(kinesis.handle("CreateStream", Bytes::from(create), Codec::Json))
        .expect("stream");
    let hot = HotPath::new(kinesis, "bench").expect("the stream just created");
    Setup { _dir: dir, hot }
}

/// A PutRecords body of `count` records of `size` bytes, each with its
/// own partition key, as the SDKs write it.
fn put_records_body(count: usize, size: usize) -> Bytes {
    let data = base64_simd::STANDARD.encode_to_string(vec![b'x'; size]);
    let records: Vec<String> = (0..count)
        .map(|i| format!(r#"{{"Data":"{data}","PartitionKey":"partition-key-{i}"}}"#))
        .collect();
    Bytes::from(format!(
        r#"{{"StreamName":"bench","Records":[{}]}}"#,
        records.join(",")
    ))
}

/// The same request as the Java SDK sends it in CBOR: a map, `Data` as
/// byte strings.
fn put_records_cbor(count: usize, size: usize) -> Bytes {
    use ciborium::Value as C;
    let record = |i: usize| {
        C::Map(vec![
            (C::Text("Data".into()), C::Bytes(vec![b'x'; size])),
            (
                C::Text("PartitionKey".into()),
                C::Text(format!("partition-key-{i}")),
            ),
        ])
    };
    let body = C::Map(vec![
        (C::Text("StreamName".into()), C::Text("bench".into())),
        (
            C::Text("Records".into()),
            C::Array((0..count).map(record).collect()),
        ),
    ]);
    let mut out = Vec::new();
    ciborium::into_writer(&body, &mut out).expect("CBOR into a Vec");
    Bytes::from(out)
}

fn put_records_decode(c: &mut Criterion) {
    let setup = setup();
    let mut group = c.benchmark_group("put_records_decode");
    for (name, count, size) in [("100x1KiB", 100, 1024), ("500x64B", 500, 64)] {
        group.throughput(Throughput::Bytes((count * size) as u64));
        let json = put_records_body(count, size);
        let cbor = put_records_cbor(count, size);
        for (codec, body) in [(Codec::Json, &json), (Codec::Cbor, &cbor)] {
            let id = format!("{name}_{}", codec_name(codec));
            group.bench_function(id, |b| {
                b.iter(|| setup.hot.decode_put_records(body, codec).expect("valid"))
            });
        }
    }
    group.finish();
}

fn get_records_encode(c: &mut Criterion) {
    let setup = setup();
    let count = 1000u64;
    let data = Bytes::from(vec![b'x'; 1024]);
    let records = (0..count)
        .map(|seq| Record {
            seq,
            arrival_ms: 1_795_000_000_000 + seq as i64,
            partition_key: Bytes::from(format!("partition-key-{seq}")),
            explicit_hash_key: None,
            data: data.clone(),
            encrypted: false,
        })
        .collect();
    let batch = ReadBatch {
        records,
        next_seq: count,
        end_of_log: false,
    };
    let mut group = c.benchmark_group("get_records_encode_1000x1KiB");
    group.throughput(Throughput::Bytes(count * 1024));
    for codec in [Codec::Json, Codec::Cbor] {
        group.bench_function(codec_name(codec), |b| {
            b.iter(|| {
                setup
                    .hot
                    .encode_get_records(0, &batch, codec)
                    .expect("encodes")
            })
        });
    }
    group.finish();
}

fn partition_keys(c: &mut Criterion) {
    let setup = setup();
    let keys: Vec<String> = (0..1024).map(|i| format!("partition-key-{i}")).collect();
    let mut i = 0;
    c.bench_function("partition_key_md5_and_route", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            setup.hot.route(&keys[i]).expect("every key has a shard")
        })
    });
}

fn iterators(c: &mut Criterion) {
    let setup = setup();
    c.bench_function("shard_iterator_encode", |b| {
        b.iter(|| setup.hot.encode_iterator(1, 123_456))
    });
    c.bench_function("shard_iterator_decode", |b| {
        b.iter_batched(
            || setup.hot.encode_iterator(1, 123_456),
            |token| setup.hot.decode_iterator(&token).expect("signed here"),
            BatchSize::SmallInput,
        )
    });
}

fn codec_name(codec: Codec) -> &'static str {
    match codec {
        Codec::Json => "json",
        Codec::Cbor => "cbor",
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(2));
    targets = put_records_decode, get_records_encode, partition_keys, iterators
}
criterion_main!(benches);
