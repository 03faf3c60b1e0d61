//! JSON → Parquet (and ORC) conversion throughput: one 64 MiB buffer of
//! JSON records, each with every common column kind, converted as
//! delivery converts it (`riffle_firehose::convert::convert`), on one
//! thread. Prints MB/s of JSON in, and the share of the time that is
//! JSON parsing alone (the borrowed parse conversion does), so that where
//! the time goes is visible.
//! `cargo bench -p riffle-firehose --bench convert`.

use std::time::{Duration, Instant};

use riffle_firehose::convert::config::{OrcSettings, PAGE_SIZE_DEFAULT, ParquetSettings};
use riffle_firehose::convert::json::Json;
use riffle_firehose::convert::{Deserializer, InRecord, Output, Reader, TableSchema, convert};
use serde_json::{Value, json};

/// One buffer's worth, as at AWS's 64 MiB minimum with conversion.
const BUFFER_BYTES: usize = 64 * 1024 * 1024;
const ROUNDS: usize = 3;

fn table() -> Value {
    let columns = [
        ("id", "bigint"),
        ("user", "string"),
        ("at", "timestamp"),
        ("price", "decimal(10,2)"),
        ("ok", "boolean"),
        ("score", "double"),
        ("tags", "array<string>"),
        ("attrs", "map<string,int>"),
        ("geo", "struct<lat:double,lon:double>"),
    ];
    let columns: Vec<Value> = columns
        .iter()
        .map(|(n, t)| json!({"Name": n, "Type": t}))
        .collect();
    json!({"StorageDescriptor": {"Columns": columns}})
}

fn flat_table() -> Value {
    let columns = [
        ("id", "bigint"),
        ("user", "string"),
        ("at", "timestamp"),
        ("ok", "boolean"),
        ("score", "double"),
    ];
    let columns: Vec<Value> = columns
        .iter()
        .map(|(n, t)| json!({"Name": n, "Type": t}))
        .collect();
    json!({"StorageDescriptor": {"Columns": columns}})
}

/// Records of about 250 bytes, varied enough that dictionaries and
/// compression do not make the work trivial.
fn records() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut total = 0;
    let mut i: u64 = 0;
    while total < BUFFER_BYTES {
        let record = json!({
            "id": i,
            "user": format!("user-{}", i.wrapping_mul(2654435761) % 100_000),
            "at": format!("2026-12-06T{:02}:{:02}:{:02}.{:03}Z", i % 24, i % 60, (i / 7) % 60, i % 1000),
            "price": format!("{}.{:02}", i % 100_000, i % 100),
            "ok": i.is_multiple_of(3),
            "score": (i as f64) * 0.37,
            "tags": ["a", format!("t{}", i % 50), "c"],
            "attrs": {"x": i % 1000, "y": 7},
            "geo": {"lat": 52.5 + (i % 100) as f64 * 0.001, "lon": 13.4},
        });
        let bytes = serde_json::to_vec(&record).expect("JSON serializes");
        total += bytes.len();
        out.push(bytes);
        i += 1;
    }
    out
}

fn best_of(rounds: usize, mut run: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn mb_per_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / 1e6 / took.as_secs_f64()
}

fn main() {
    let data = records();
    let bytes: usize = data.iter().map(Vec::len).sum();
    let input: Vec<InRecord<'_>> = data
        .iter()
        .map(|d| InRecord {
            data: d,
            arrival_ms: 0,
        })
        .collect();
    let reader = Reader::new(&Deserializer::OpenX {
        case_insensitive: true,
        dots_to_underscores: false,
        mappings: Vec::new(),
    });
    println!(
        "{} records, {:.1} MB of JSON; best of {ROUNDS} rounds, one thread",
        input.len(),
        bytes as f64 / 1e6
    );
    let parse = best_of(ROUNDS, || {
        for r in &input {
            let v: Value = serde_json::from_slice(r.data).expect("the records are JSON");
            std::hint::black_box(v);
        }
    });
    println!(
        "JSON parsing alone (serde_json::Value): {:.0} MB/s",
        mb_per_s(bytes, parse)
    );
    let borrowed = best_of(ROUNDS, || {
        for r in &input {
            let v = Json::parse(r.data).expect("the records are JSON");
            std::hint::black_box(v);
        }
    });
    println!(
        "JSON parsing alone (borrowed, as conversion parses): {:.0} MB/s",
        mb_per_s(bytes, borrowed)
    );
    let cases = [
        ("Parquet SNAPPY", table(), parquet("SNAPPY")),
        ("Parquet UNCOMPRESSED", table(), parquet("UNCOMPRESSED")),
        ("Parquet GZIP", table(), parquet("GZIP")),
        (
            "ORC SNAPPY (flat table)",
            flat_table(),
            Output::Orc(OrcSettings {
                stripe_size: 64 * 1024 * 1024,
                compression: "SNAPPY".to_owned(),
            }),
        ),
    ];
    for (name, table, output) in cases {
        let schema = TableSchema::from_table(&table).expect("the table parses");
        let mut size = 0;
        let took = best_of(ROUNDS, || {
            let out = convert(&input, &schema, &reader, &output).expect("converts");
            assert!(out.failed.is_empty());
            size = out.body.map_or(0, |b| b.len());
        });
        println!(
            "{name}: {:.0} MB/s of JSON in ({:.2} s; file {:.1} MB; its borrowed parsing is {:.0}% of it)",
            mb_per_s(bytes, took),
            took.as_secs_f64(),
            size as f64 / 1e6,
            100.0 * borrowed.as_secs_f64() / took.as_secs_f64()
        );
    }
}

fn parquet(compression: &str) -> Output {
    Output::Parquet(ParquetSettings {
        page_size: PAGE_SIZE_DEFAULT,
        compression: compression.to_owned(),
        dictionary: false,
        writer_v2: false,
    })
}
