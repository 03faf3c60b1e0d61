//! The service's request path without HTTP: `Kinesis::handle` with JSON
//! bodies against a real store, to see what the service itself costs on
//! top of the storage engine.
//!
//! `cargo bench -p riffle-kinesis --bench service`

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use riffle_kinesis::{Codec, Kinesis, KinesisConfig};
use riffle_log::{FsyncPolicy, LogStore, StoreConfig};
use tokio::runtime::Runtime;

struct Setup {
    _dir: tempfile::TempDir,
    rt: Runtime,
    kinesis: Arc<Kinesis>,
}

fn setup(fsync: FsyncPolicy, shards: u32) -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let store = Arc::new(
        LogStore::open(
            dir.path(),
            StoreConfig {
                fsync,
                ..StoreConfig::default()
            },
        )
        .expect("store"),
    );
    // Measures the service, not AWS's per-shard rates: a benchmark loop
    // exceeds them within its first second.
    let config = KinesisConfig {
        status_delay: Duration::ZERO,
        throughput_limits: false,
        ..KinesisConfig::default()
    };
    let kinesis = Kinesis::open(store, config).expect("service");
    let create = format!(r#"{{"StreamName":"bench","ShardCount":{shards}}}"#);
    rt.block_on(kinesis.handle("CreateStream", Bytes::from(create), Codec::Json))
        .expect("stream");
    Setup {
        _dir: dir,
        rt,
        kinesis,
    }
}

fn put_records_body(count: usize, size: usize) -> Bytes {
    let data = base64_simd::STANDARD.encode_to_string(vec![b'x'; size]);
    let records: Vec<String> = (0..count)
        .map(|i| format!(r#"{{"Data":"{data}","PartitionKey":"key-{i}"}}"#))
        .collect();
    Bytes::from(format!(
        r#"{{"StreamName":"bench","Records":[{}]}}"#,
        records.join(",")
    ))
}

fn call(setup: &Setup, action: &str, body: &Bytes) -> Bytes {
    call_in(setup, action, body, Codec::Json)
}

fn call_in(setup: &Setup, action: &str, body: &Bytes, codec: Codec) -> Bytes {
    setup
        .rt
        .block_on(setup.kinesis.handle(action, body.clone(), codec))
        .expect("call succeeds")
}

/// A JSON request as the Java SDK sends it in CBOR (`Data` as byte strings).
fn cbor_of(json: &Bytes) -> Bytes {
    fn convert(value: serde_json::Value, member: &str) -> ciborium::Value {
        use ciborium::Value as C;
        use serde_json::Value as J;
        match value {
            J::String(s) if member == "Data" => {
                C::Bytes(base64_simd::STANDARD.decode_to_vec(&s).expect("base64"))
            }
            J::String(s) => C::Text(s),
            J::Number(n) => C::Integer(n.as_i64().expect("an integer").into()),
            J::Array(items) => C::Array(items.into_iter().map(|v| convert(v, member)).collect()),
            J::Object(o) => C::Map(
                o.into_iter()
                    .map(|(k, v)| {
                        let v = convert(v, &k);
                        (C::Text(k), v)
                    })
                    .collect(),
            ),
            other => panic!("not in a benchmark request: {other}"),
        }
    }
    let value = convert(serde_json::from_slice(json).expect("JSON"), "");
    let mut out = Vec::new();
    ciborium::into_writer(&value, &mut out).expect("CBOR into a Vec");
    Bytes::from(out)
}

fn put_records(c: &mut Criterion) {
    let mut group = c.benchmark_group("put_records_100x1KiB");
    group.throughput(Throughput::Bytes(100 * 1024));
    let body = put_records_body(100, 1024);
    let cases = [
        ("fsync_never_4_shards", FsyncPolicy::Never, 4),
        ("fsync_always_4_shards", FsyncPolicy::Always, 4),
        ("fsync_always_1_shard", FsyncPolicy::Always, 1),
    ];
    for (name, fsync, shards) in cases {
        let setup = setup(fsync, shards);
        group.bench_function(name, |b| b.iter(|| call(&setup, "PutRecords", &body)));
    }
    // The Java SDK's protocol: what the CBOR transcoding adds.
    let setup = setup(FsyncPolicy::Never, 4);
    let cbor = cbor_of(&body);
    group.bench_function("fsync_never_4_shards_cbor", |b| {
        b.iter(|| call_in(&setup, "PutRecords", &cbor, Codec::Cbor))
    });
    group.finish();
}

fn put_record(c: &mut Criterion) {
    let setup = setup(FsyncPolicy::Never, 4);
    let body = Bytes::from_static(
        br#"{"StreamName":"bench","Data":"aGVsbG8gd29ybGQ=","PartitionKey":"k"}"#,
    );
    c.bench_function("put_record_small_fsync_never", |b| {
        b.iter(|| call(&setup, "PutRecord", &body))
    });
}

fn get_records(c: &mut Criterion) {
    let setup = setup(FsyncPolicy::Never, 4);
    let body = put_records_body(100, 1024);
    for _ in 0..10 {
        call(&setup, "PutRecords", &body);
    }
    let request = br#"{"StreamName":"bench","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}"#;
    let out = call(&setup, "GetShardIterator", &Bytes::from_static(request));
    let iterator: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
    let body = Bytes::from(format!(
        r#"{{"ShardIterator":"{}"}}"#,
        iterator["ShardIterator"].as_str().expect("iterator")
    ));
    let records = serde_json::from_slice::<serde_json::Value>(&call(&setup, "GetRecords", &body))
        .expect("JSON")["Records"]
        .as_array()
        .map_or(0, Vec::len);
    let mut group = c.benchmark_group("get_records_1KiB");
    group.throughput(Throughput::Bytes(records as u64 * 1024));
    group.bench_function(format!("{records}_records"), |b| {
        b.iter(|| call(&setup, "GetRecords", &body))
    });
    let cbor = cbor_of(&body);
    group.bench_function(format!("{records}_records_cbor"), |b| {
        b.iter(|| call_in(&setup, "GetRecords", &cbor, Codec::Cbor))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = put_records, put_record, get_records
}
criterion_main!(benches);
