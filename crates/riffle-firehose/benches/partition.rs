//! Dynamic partitioning's per-record path: a MetadataExtraction JQ query
//! (`{customer_id: .customer_id}`) run on each record, then the record
//! added to its partition's buffer, on one thread, as delivery does it
//! for a chunk. Prints records/s for the query alone and with the
//! buffering, for AWS's documented example record (~170 bytes) and for
//! `riffle bench firehose --partition-query`'s records (~1.4 KB).
//! `cargo bench -p riffle-firehose --bench partition`.

use std::time::{Duration, Instant};

use riffle_firehose::partition::{ActivePartitions, Query};
use riffle_firehose::prefix::PartitionKeys;

const RECORDS: usize = 200_000;
const ROUNDS: usize = 3;
const QUERY: &str = "{customer_id: .customer_id}";

/// AWS's example record ("Partitioning keys with inline parsing"), 100
/// customers.
fn documented(i: usize) -> Vec<u8> {
    format!(
        r#"{{"type": {{"device": "mobile", "event": "user_clicked_submit_button"}}, "customer_id": "{:010}", "event_timestamp": 1565382027, "region": "sample_value"}}"#,
        i % 100
    )
    .into_bytes()
}

/// The bench's partitioned record: a customer and 1 KiB of payload in
/// base64.
fn bench_record(i: usize) -> Vec<u8> {
    let payload: String = (0..1368)
        .map(|j| (b'A' + ((i + j) % 26) as u8) as char)
        .collect();
    format!(r#"{{"customer_id":"c{:02}","data":"{payload}"}}"#, i % 100).into_bytes()
}

fn best(mut run: impl FnMut() -> usize) -> (Duration, usize) {
    (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            let n = run();
            (t.elapsed(), n)
        })
        .min()
        .unwrap_or_default()
}

fn measure(name: &str, records: &[Vec<u8>]) {
    let query = Query::compile(QUERY).expect("the documented query compiles");
    let bytes: usize = records.iter().map(Vec::len).sum();
    let (keys_only, _) = best(|| {
        records
            .iter()
            .map(|r| query.keys(r).map_or(0, |k| k.len()))
            .sum()
    });
    let (buffered, _) = best(|| {
        let mut active = ActivePartitions::default();
        for (i, r) in records.iter().enumerate() {
            let keys = PartitionKeys {
                from_query: query.keys(r).unwrap_or_default(),
                from_lambda: Vec::new(),
            };
            active.push(keys, r, i as i64, true, (0, 0));
        }
        active.count()
    });
    let rate = |d: Duration| records.len() as f64 / d.as_secs_f64();
    println!(
        "{name}: {} records of {} bytes: query {:.0} records/s; query and partition buffers {:.0} records/s ({:.1} MB/s)",
        records.len(),
        bytes / records.len(),
        rate(keys_only),
        rate(buffered),
        bytes as f64 / 1e6 / buffered.as_secs_f64(),
    );
}

fn main() {
    let documented: Vec<Vec<u8>> = (0..RECORDS).map(documented).collect();
    measure("AWS's example record", &documented);
    let bench: Vec<Vec<u8>> = (0..RECORDS).map(bench_record).collect();
    measure("riffle bench's record", &bench);
}
