//! Metrics with Firehose's CloudWatch meaning, for Prometheus: what each
//! delivery stream took in, refused and delivered, and how fresh its
//! deliveries are.
//!
//! Each stream keeps counters in atomics that the put and delivery paths
//! bump with relaxed stores (no lock, no allocation).
//! [`Firehose::write_metrics`] renders them in Prometheus's text format:
//!
//! ```text
//! # HELP riffle_firehose_incoming_bytes_total IncomingBytes: bytes put to the delivery stream.
//! # TYPE riffle_firehose_incoming_bytes_total counter
//! riffle_firehose_incoming_bytes_total{delivery_stream="orders"} 1048576
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::Firehose;

/// One delivery stream's counters.
#[derive(Debug, Default)]
pub struct StreamMetrics {
    incoming_bytes: AtomicU64,
    incoming_records: AtomicU64,
    incoming_put_requests: AtomicU64,
    throttled_records: AtomicU64,
    delivered_bytes: AtomicU64,
    delivered_records: AtomicU64,
    objects: AtomicU64,
    failed_puts: AtomicU64,
    /// The age of the oldest record of the last object when it was stored.
    freshness_ms: AtomicI64,
    /// KinesisStreamAsSource: records and data bytes read from the source.
    kinesis_read_records: AtomicU64,
    kinesis_read_bytes: AtomicU64,
    /// How far behind the tip of its source the stream's slowest shard
    /// reader was at its last read.
    kinesis_behind_ms: AtomicI64,
}

impl StreamMetrics {
    /// A PutRecord or PutRecordBatch call: what it stored and refused.
    pub fn put(&self, records: u64, bytes: u64, throttled: u64) {
        if records > 0 {
            self.incoming_put_requests.fetch_add(1, Ordering::Relaxed);
        }
        self.incoming_records.fetch_add(records, Ordering::Relaxed);
        self.incoming_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.throttled_records
            .fetch_add(throttled, Ordering::Relaxed);
    }

    /// An object stored, holding `records` records of `bytes` bytes, the
    /// oldest `freshness_ms` old.
    pub fn delivered(&self, records: u64, bytes: u64, freshness_ms: i64) {
        self.objects.fetch_add(1, Ordering::Relaxed);
        self.delivered_records.fetch_add(records, Ordering::Relaxed);
        self.delivered_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.freshness_ms.store(freshness_ms, Ordering::Relaxed);
    }

    /// A read from the Kinesis source: `records` of `bytes` data bytes,
    /// the slowest shard now `behind_ms` behind its tip.
    pub fn read_from_kinesis(&self, records: u64, bytes: u64, behind_ms: i64) {
        self.kinesis_read_records
            .fetch_add(records, Ordering::Relaxed);
        self.kinesis_read_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.kinesis_behind_ms.store(behind_ms, Ordering::Relaxed);
    }

    /// An upload that failed (and will be retried).
    pub fn put_failed(&self) {
        self.failed_puts.fetch_add(1, Ordering::Relaxed);
    }
}

/// A metric: its Prometheus name (without prefix), CloudWatch's name, what
/// it means, and its value.
struct Metric {
    name: &'static str,
    cloudwatch: &'static str,
    help: &'static str,
    counter: bool,
    value: fn(&StreamMetrics) -> i64,
}

fn load(counter: &AtomicU64) -> i64 {
    i64::try_from(counter.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
}

const METRICS: [Metric; 12] = [
    Metric {
        name: "incoming_bytes_total",
        cloudwatch: "IncomingBytes",
        help: "bytes put to the delivery stream",
        counter: true,
        value: |m| load(&m.incoming_bytes),
    },
    Metric {
        name: "incoming_records_total",
        cloudwatch: "IncomingRecords",
        help: "records put to the delivery stream",
        counter: true,
        value: |m| load(&m.incoming_records),
    },
    Metric {
        name: "incoming_put_requests_total",
        cloudwatch: "IncomingPutRequests",
        help: "PutRecord and PutRecordBatch calls that stored records",
        counter: true,
        value: |m| load(&m.incoming_put_requests),
    },
    Metric {
        name: "throttled_records_total",
        cloudwatch: "ThrottledRecords",
        help: "records refused for the delivery stream's throughput limits",
        counter: true,
        value: |m| load(&m.throttled_records),
    },
    Metric {
        name: "delivery_to_s3_bytes_total",
        cloudwatch: "DeliveryToS3.Bytes",
        help: "bytes delivered to S3",
        counter: true,
        value: |m| load(&m.delivered_bytes),
    },
    Metric {
        name: "delivery_to_s3_records_total",
        cloudwatch: "DeliveryToS3.Records",
        help: "records delivered to S3",
        counter: true,
        value: |m| load(&m.delivered_records),
    },
    Metric {
        name: "delivery_to_s3_object_count_total",
        cloudwatch: "DeliveryToS3.ObjectCount",
        help: "objects delivered to S3 (successful puts; DeliveryToS3.Success is their share of all puts)",
        counter: true,
        value: |m| load(&m.objects),
    },
    Metric {
        name: "delivery_to_s3_failed_puts_total",
        cloudwatch: "DeliveryToS3.Success",
        help: "puts to S3 that failed and are retried (DeliveryToS3.Success counts the others)",
        counter: true,
        value: |m| load(&m.failed_puts),
    },
    Metric {
        name: "delivery_to_s3_data_freshness_milliseconds",
        cloudwatch: "DeliveryToS3.DataFreshness",
        help: "age of the oldest record of the last object delivered, when it was delivered",
        counter: false,
        value: |m| m.freshness_ms.load(Ordering::Relaxed),
    },
    Metric {
        name: "data_read_from_kinesis_stream_bytes_total",
        cloudwatch: "DataReadFromKinesisStream.Bytes",
        help: "data bytes read from the source Kinesis stream",
        counter: true,
        value: |m| load(&m.kinesis_read_bytes),
    },
    Metric {
        name: "data_read_from_kinesis_stream_records_total",
        cloudwatch: "DataReadFromKinesisStream.Records",
        help: "records read from the source Kinesis stream",
        counter: true,
        value: |m| load(&m.kinesis_read_records),
    },
    Metric {
        name: "kinesis_millis_behind_latest",
        cloudwatch: "KinesisMillisBehindLatest",
        help: "how far the slowest shard reader was behind the tip of the source stream at its last read",
        counter: false,
        value: |m| m.kinesis_behind_ms.load(Ordering::Relaxed),
    },
];

impl Firehose {
    /// Every delivery stream's metrics in Prometheus's text format.
    pub fn write_metrics(&self, out: &mut String) {
        let streams = self.all();
        for metric in &METRICS {
            let kind = if metric.counter { "counter" } else { "gauge" };
            let _ = writeln!(
                out,
                "# HELP riffle_firehose_{name} {cw}: {help}.\n# TYPE riffle_firehose_{name} {kind}",
                name = metric.name,
                cw = metric.cloudwatch,
                help = metric.help
            );
            for stream in &streams {
                let _ = writeln!(
                    out,
                    "riffle_firehose_{}{{delivery_stream=\"{}\"}} {}",
                    metric.name,
                    label(&stream.record().name),
                    (metric.value)(&stream.metrics)
                );
            }
        }
    }
}

/// A label value: names are `[a-zA-Z0-9_.-]+`, but escape anyway as the
/// format asks (backslash, quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_and_freshness_is_the_last_delivery() {
        let m = StreamMetrics::default();
        m.put(3, 300, 1);
        m.put(1, 100, 0);
        m.put_failed();
        m.delivered(4, 400, 9_000);
        m.delivered(0, 0, 10);
        let values: Vec<i64> = METRICS.iter().map(|metric| (metric.value)(&m)).collect();
        assert_eq!(values, [400, 4, 2, 1, 400, 4, 2, 1, 10, 0, 0, 0]);
        m.read_from_kinesis(3, 30, 1_500);
        m.read_from_kinesis(2, 20, 0);
        let read: Vec<i64> = METRICS[9..]
            .iter()
            .map(|metric| (metric.value)(&m))
            .collect();
        assert_eq!(
            read,
            [50, 5, 0],
            "bytes and records add up; the lag is the last one"
        );
        m.put(0, 0, 5);
        assert_eq!((METRICS[2].value)(&m), 2, "a refused call stored nothing");
        assert_eq!((METRICS[3].value)(&m), 6);
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
    }
}
