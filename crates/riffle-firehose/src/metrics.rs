//! Metrics with Firehose's CloudWatch meaning, for Prometheus: what each
//! delivery stream took in, refused and delivered, and how fresh its
//! deliveries are; and, Riffle's own (AWS has none), what each lane's
//! buffer holds now, to see it fill against the buffering hints.
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
    /// KinesisStreamAsSource: records and data bytes read from the source.
    kinesis_read_records: AtomicU64,
    kinesis_read_bytes: AtomicU64,
    /// How far behind the tip of its source the stream's slowest shard
    /// reader was at its last read.
    kinesis_behind_ms: AtomicI64,
    /// Record transformation: invocations of the Lambda processor, those
    /// whose answer was used, their total duration, and the records
    /// (`Ok` or `Dropped`) and transformed bytes that came back.
    processing_invocations: AtomicU64,
    processing_successes: AtomicU64,
    processing_duration_ms: AtomicU64,
    processing_records: AtomicU64,
    processing_bytes: AtomicU64,
    /// Delivery to the destination bucket, or a Redshift destination's
    /// intermediate bucket (`DeliveryToS3.*`).
    pub delivery: LaneMetrics,
    /// The S3 backup: the source records to the backup bucket, and the
    /// data a destination other than S3 backs up, all or what failed
    /// (`BackupToS3.*`).
    pub backup: LaneMetrics,
    /// Delivery to the destination other than S3
    /// (`DeliveryToHttpEndpoint.*`, `DeliveryToRedshift.*`, …).
    pub endpoint: EndpointMetrics,
}

/// The counters of delivery to a destination other than S3.
#[derive(Debug, Default)]
pub struct EndpointMetrics {
    bytes: AtomicU64,
    records: AtomicU64,
    requests: AtomicU64,
    failed_requests: AtomicU64,
    /// 1 if the last request worked, 0 if it failed; -1 before the first.
    last_success: AtomicI64,
    freshness_ms: AtomicI64,
    /// Records not delivered within the retry duration (backed up to S3).
    failed_records: AtomicU64,
}

impl EndpointMetrics {
    /// A batch delivered: `records` of `bytes` data bytes, the oldest
    /// `freshness_ms` old.
    pub fn delivered(&self, records: u64, bytes: u64, freshness_ms: i64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.last_success.store(1, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.freshness_ms.store(freshness_ms, Ordering::Relaxed);
    }

    /// A request that failed (and is retried, or its batch backed up).
    pub fn request_failed(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.last_success.store(0, Ordering::Relaxed);
        self.failed_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// `records` given up after the retry duration (backed up to S3).
    pub fn failed(&self, records: u64) {
        self.failed_records.fetch_add(records, Ordering::Relaxed);
    }
}

/// The counters of one delivery lane (the destination or the backup).
#[derive(Debug, Default)]
pub struct LaneMetrics {
    bytes: AtomicU64,
    records: AtomicU64,
    objects: AtomicU64,
    attempts: AtomicU64,
    failed_puts: AtomicU64,
    /// 1 if the last put worked, 0 if it failed (CloudWatch's `Success`
    /// is the average of these samples); -1 before the first put.
    last_success: AtomicI64,
    /// The age of the oldest record of the last object when it was stored.
    freshness_ms: AtomicI64,
    /// Records whose object was still failing when the retry duration
    /// passed: AWS would have discarded them; Riffle keeps retrying.
    past_retry_duration: AtomicU64,
    /// The buffer filling now (read from the log, not yet flushed into an
    /// object): its records, bytes, and its oldest record's arrival
    /// (ms since the epoch; 0 while empty).
    buffered_records: AtomicU64,
    buffered_bytes: AtomicU64,
    buffered_since_ms: AtomicI64,
}

impl StreamMetrics {
    /// A read from the Kinesis source: `records` of `bytes` data bytes,
    /// the slowest shard now `behind_ms` behind its tip.
    pub fn read_from_kinesis(&self, records: u64, bytes: u64, behind_ms: i64) {
        self.kinesis_read_records
            .fetch_add(records, Ordering::Relaxed);
        self.kinesis_read_bytes.fetch_add(bytes, Ordering::Relaxed);
        self.kinesis_behind_ms.store(behind_ms, Ordering::Relaxed);
    }

    /// An invocation of the Lambda processor that took `ms`; `success`:
    /// its answer was used (not retried or failed).
    pub fn processing_invoked(&self, ms: u64, success: bool) {
        self.processing_invocations.fetch_add(1, Ordering::Relaxed);
        self.processing_duration_ms.fetch_add(ms, Ordering::Relaxed);
        if success {
            self.processing_successes.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records the function answered `Ok` or `Dropped`, and the bytes of
    /// the transformed ones.
    pub fn processing_succeeded(&self, records: u64, bytes: u64) {
        self.processing_records
            .fetch_add(records, Ordering::Relaxed);
        self.processing_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

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
}

impl LaneMetrics {
    /// An object stored (a successful put), holding `records` records of
    /// `bytes` bytes (as stored, compressed), the oldest `freshness_ms` old.
    pub fn delivered(&self, records: u64, bytes: u64, freshness_ms: i64) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        self.last_success.store(1, Ordering::Relaxed);
        self.objects.fetch_add(1, Ordering::Relaxed);
        self.records.fetch_add(records, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.freshness_ms.store(freshness_ms, Ordering::Relaxed);
    }

    /// A put that failed (and will be retried).
    pub fn put_failed(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        self.last_success.store(0, Ordering::Relaxed);
        self.failed_puts.fetch_add(1, Ordering::Relaxed);
    }

    /// An object of `records` records still failing after the retry duration.
    pub fn past_retry_duration(&self, records: u64) {
        self.past_retry_duration
            .fetch_add(records, Ordering::Relaxed);
    }

    /// The lane's buffer (all its partition buffers, with dynamic
    /// partitioning) now holds `records` of `bytes` bytes, the oldest
    /// arrived at `oldest_ms`; all zero once it is flushed.
    pub fn buffering(&self, records: u64, bytes: u64, oldest_ms: i64) {
        self.buffered_records.store(records, Ordering::Relaxed);
        self.buffered_bytes.store(bytes, Ordering::Relaxed);
        let since = if records == 0 { 0 } else { oldest_ms };
        self.buffered_since_ms.store(since, Ordering::Relaxed);
    }

    /// How long the oldest buffered record has waited at `now_ms`; 0
    /// while the buffer is empty.
    fn buffer_age_ms(&self, now_ms: i64) -> i64 {
        match self.buffered_since_ms.load(Ordering::Relaxed) {
            0 => 0,
            since => now_ms.saturating_sub(since).max(0),
        }
    }
}

/// A metric: its Prometheus name (without prefix), CloudWatch's name, what
/// it means, and its value.
struct Metric<T> {
    name: &'static str,
    cloudwatch: &'static str,
    help: &'static str,
    counter: bool,
    value: fn(&T) -> i64,
}

fn load(counter: &AtomicU64) -> i64 {
    i64::try_from(counter.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
}

const INCOMING: [Metric<StreamMetrics>; 12] = [
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
    Metric {
        name: "execute_processing_invocations_total",
        cloudwatch: "ExecuteProcessing.Success",
        help: "invocations of the Lambda processor; ExecuteProcessing.Success is execute_processing_successes_total / this",
        counter: true,
        value: |m| load(&m.processing_invocations),
    },
    Metric {
        name: "execute_processing_successes_total",
        cloudwatch: "ExecuteProcessing.Success",
        help: "invocations of the Lambda processor whose answer was used",
        counter: true,
        value: |m| load(&m.processing_successes),
    },
    Metric {
        name: "execute_processing_duration_milliseconds_total",
        cloudwatch: "ExecuteProcessing.Duration",
        help: "time spent in invocations of the Lambda processor; ExecuteProcessing.Duration is this / execute_processing_invocations_total",
        counter: true,
        value: |m| load(&m.processing_duration_ms),
    },
    Metric {
        name: "succeed_processing_records_total",
        cloudwatch: "SucceedProcessing.Records",
        help: "records the Lambda processor answered Ok or Dropped",
        counter: true,
        value: |m| load(&m.processing_records),
    },
    Metric {
        name: "succeed_processing_bytes_total",
        cloudwatch: "SucceedProcessing.Bytes",
        help: "bytes of the records the Lambda processor transformed",
        counter: true,
        value: |m| load(&m.processing_bytes),
    },
];

/// A lane's metrics; names and CloudWatch names are completed with the
/// lane's (`delivery_to_s3_` / `DeliveryToS3.`, `backup_to_s3_` / `BackupToS3.`).
const LANE: [Metric<LaneMetrics>; 11] = [
    Metric {
        name: "bytes_total",
        cloudwatch: "Bytes",
        help: "bytes stored in S3 objects (after compression)",
        counter: true,
        value: |m| load(&m.bytes),
    },
    Metric {
        name: "records_total",
        cloudwatch: "Records",
        help: "records stored in S3 objects",
        counter: true,
        value: |m| load(&m.records),
    },
    Metric {
        name: "object_count_total",
        cloudwatch: "ObjectCount",
        help: "objects stored in S3 (successful puts)",
        counter: true,
        value: |m| load(&m.objects),
    },
    Metric {
        name: "puts_total",
        cloudwatch: "Success",
        help: "puts to S3 tried; Success is object_count_total / puts_total",
        counter: true,
        value: |m| load(&m.attempts),
    },
    Metric {
        name: "failed_puts_total",
        cloudwatch: "Success",
        help: "puts to S3 that failed and are retried",
        counter: true,
        value: |m| load(&m.failed_puts),
    },
    Metric {
        name: "success",
        cloudwatch: "Success",
        help: "1 if the last put to S3 worked, 0 if it failed, -1 before the first",
        counter: false,
        value: |m| {
            if m.attempts.load(Ordering::Relaxed) == 0 {
                -1
            } else {
                m.last_success.load(Ordering::Relaxed)
            }
        },
    },
    Metric {
        name: "data_freshness_milliseconds",
        cloudwatch: "DataFreshness",
        help: "age of the oldest record of the last object stored, when it was stored",
        counter: false,
        value: |m| m.freshness_ms.load(Ordering::Relaxed),
    },
    Metric {
        name: "records_past_retry_duration_total",
        // AWS has no such metric: it discards these records.
        cloudwatch: "",
        help: "records still undelivered when the S3 retry duration passed (AWS discards them; Riffle keeps retrying)",
        counter: true,
        value: |m| load(&m.past_retry_duration),
    },
    Metric {
        name: "buffered_bytes",
        // AWS has no such metric; the console shows it against SizeInMBs.
        cloudwatch: "",
        help: "bytes in the buffer filling now (read, not yet flushed into an object), to compare with the size hint",
        counter: false,
        value: |m| load(&m.buffered_bytes),
    },
    Metric {
        name: "buffered_records",
        cloudwatch: "",
        help: "records in the buffer filling now (read, not yet flushed into an object)",
        counter: false,
        value: |m| load(&m.buffered_records),
    },
    Metric {
        name: "buffer_age_milliseconds",
        cloudwatch: "",
        help: "how long the oldest record of the buffer filling now has waited, to compare with the interval hint; 0 while empty",
        counter: false,
        value: |m| m.buffer_age_ms(crate::time::now_ms()),
    },
];

/// An endpoint's metrics; names and CloudWatch names are completed with
/// the destination's (`delivery_to_http_endpoint_` / `DeliveryToHttpEndpoint.`,
/// `delivery_to_amazon_open_search_service_` / `DeliveryToAmazonOpenSearchService.`,
/// `delivery_to_elasticsearch_` / `DeliveryToElasticsearch.`,
/// `delivery_to_splunk_` / `DeliveryToSplunk.`, `delivery_to_redshift_` /
/// `DeliveryToRedshift.`: for Redshift a request is one COPY attempt and
/// its records the rows copied).
const ENDPOINT: [Metric<EndpointMetrics>; 6] = [
    Metric {
        name: "bytes_total",
        cloudwatch: "Bytes",
        help: "data bytes delivered to the destination",
        counter: true,
        value: |m| load(&m.bytes),
    },
    Metric {
        name: "records_total",
        cloudwatch: "Records",
        help: "records delivered to the destination",
        counter: true,
        value: |m| load(&m.records),
    },
    Metric {
        name: "requests_total",
        cloudwatch: "Success",
        help: "requests to the destination; Success is 1 - failed_requests_total / this",
        counter: true,
        value: |m| load(&m.requests),
    },
    Metric {
        name: "failed_requests_total",
        cloudwatch: "Success",
        help: "requests to the destination that failed in whole or in part (retried, or their records backed up)",
        counter: true,
        value: |m| load(&m.failed_requests),
    },
    Metric {
        name: "data_freshness_milliseconds",
        cloudwatch: "DataFreshness",
        help: "age of the oldest record of the last batch delivered, when it was delivered",
        counter: false,
        value: |m| m.freshness_ms.load(Ordering::Relaxed),
    },
    Metric {
        name: "processing_failed_records_total",
        cloudwatch: "ProcessingFailed",
        help: "records not delivered within the retry duration, backed up to S3",
        counter: true,
        value: |m| load(&m.failed_records),
    },
];

/// The destinations other than S3, by their metric prefixes.
const ENDPOINT_KINDS: [(&str, &str); 5] = [
    ("delivery_to_http_endpoint_", "DeliveryToHttpEndpoint."),
    (
        "delivery_to_amazon_open_search_service_",
        "DeliveryToAmazonOpenSearchService.",
    ),
    ("delivery_to_elasticsearch_", "DeliveryToElasticsearch."),
    ("delivery_to_splunk_", "DeliveryToSplunk."),
    ("delivery_to_redshift_", "DeliveryToRedshift."),
];

/// Which lane's counters of a stream.
type LaneOf = fn(&StreamMetrics) -> &LaneMetrics;

/// The two lanes: Prometheus prefix, CloudWatch prefix, and the counters.
const LANES: [(&str, &str, LaneOf); 2] = [
    ("delivery_to_s3_", "DeliveryToS3.", |m| &m.delivery),
    ("backup_to_s3_", "BackupToS3.", |m| &m.backup),
];

impl Firehose {
    /// Every delivery stream's metrics in Prometheus's text format.
    pub fn write_metrics(&self, out: &mut String) {
        let streams = self.all();
        let names: Vec<String> = streams.iter().map(|s| label(&s.record().name)).collect();
        for metric in &INCOMING {
            header(
                out,
                metric.name,
                metric.cloudwatch,
                metric.help,
                metric.counter,
            );
            for (stream, name) in streams.iter().zip(&names) {
                let value = (metric.value)(&stream.metrics);
                sample(out, metric.name, name, value);
            }
        }
        for (prefix, cloudwatch_prefix, lane) in LANES {
            for metric in &LANE {
                let full = format!("{prefix}{}", metric.name);
                let cloudwatch = if metric.cloudwatch.is_empty() {
                    "Riffle only".to_owned()
                } else {
                    format!("{cloudwatch_prefix}{}", metric.cloudwatch)
                };
                header(out, &full, &cloudwatch, metric.help, metric.counter);
                for (stream, name) in streams.iter().zip(&names) {
                    let value = (metric.value)(lane(&stream.metrics));
                    sample(out, &full, name, value);
                }
            }
        }
        let kinds: Vec<Option<(&str, &str)>> = streams
            .iter()
            .map(|s| s.record().endpoint.as_ref().map(|e| e.metrics_prefix()))
            .collect();
        for (prefix, cloudwatch_prefix) in ENDPOINT_KINDS {
            for metric in &ENDPOINT {
                let full = format!("{prefix}{}", metric.name);
                let cloudwatch = format!("{cloudwatch_prefix}{}", metric.cloudwatch);
                header(out, &full, &cloudwatch, metric.help, metric.counter);
                for ((stream, name), kind) in streams.iter().zip(&names).zip(&kinds) {
                    if kind.is_some_and(|(p, _)| p == prefix) {
                        let value = (metric.value)(&stream.metrics.endpoint);
                        sample(out, &full, name, value);
                    }
                }
            }
        }
    }
}

fn header(out: &mut String, name: &str, cloudwatch: &str, help: &str, counter: bool) {
    let kind = if counter { "counter" } else { "gauge" };
    let _ = writeln!(
        out,
        "# HELP riffle_firehose_{name} {cloudwatch}: {help}.\n# TYPE riffle_firehose_{name} {kind}"
    );
}

fn sample(out: &mut String, name: &str, stream: &str, value: i64) {
    let _ = writeln!(
        out,
        "riffle_firehose_{name}{{delivery_stream=\"{stream}\"}} {value}"
    );
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
        let values: Vec<i64> = INCOMING.iter().map(|metric| (metric.value)(&m)).collect();
        assert_eq!(values, [400, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        m.processing_invoked(30, false);
        m.processing_invoked(12, true);
        m.processing_succeeded(3, 90);
        let processing: Vec<i64> = INCOMING[7..]
            .iter()
            .map(|metric| (metric.value)(&m))
            .collect();
        assert_eq!(processing, [2, 1, 42, 3, 90]);
        m.read_from_kinesis(3, 30, 1_500);
        m.read_from_kinesis(2, 20, 0);
        let read: Vec<i64> = INCOMING[4..7]
            .iter()
            .map(|metric| (metric.value)(&m))
            .collect();
        assert_eq!(read, [50, 5, 0], "the lag is the last read's");
        m.put(0, 0, 5);
        assert_eq!((INCOMING[2].value)(&m), 2, "a refused call stored nothing");
        assert_eq!((INCOMING[3].value)(&m), 6);
        let lane = &m.delivery;
        assert_eq!((LANE[5].value)(lane), -1, "no put yet");
        lane.put_failed();
        assert_eq!((LANE[5].value)(lane), 0);
        lane.delivered(4, 400, 9_000);
        lane.delivered(0, 0, 10);
        lane.past_retry_duration(4);
        let values: Vec<i64> = LANE.iter().map(|metric| (metric.value)(lane)).collect();
        assert_eq!(values, [400, 4, 2, 3, 1, 1, 10, 4, 0, 0, 0]);
        assert!(LANE.iter().all(|metric| (metric.value)(&m.backup) <= 0));
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
    }

    #[test]
    fn endpoint_counters_count_requests_records_and_give_ups() {
        let m = EndpointMetrics::default();
        m.request_failed();
        m.delivered(3, 30, 700);
        m.request_failed();
        m.failed(5);
        let values: Vec<i64> = ENDPOINT.iter().map(|metric| (metric.value)(&m)).collect();
        assert_eq!(values, [30, 3, 3, 2, 700, 5]);
    }

    #[test]
    fn the_buffer_gauges_hold_what_fills_now_and_empty_at_a_flush() {
        let lane = LaneMetrics::default();
        let now = crate::time::now_ms();
        lane.buffering(3, 1_500, now - 2_000);
        let at = |metric: &str| {
            let found = LANE.iter().find(|m| m.name == metric).unwrap();
            (found.value)(&lane)
        };
        assert_eq!(at("buffered_records"), 3);
        assert_eq!(at("buffered_bytes"), 1_500);
        assert!((2_000..60_000).contains(&at("buffer_age_milliseconds")));
        lane.buffering(0, 0, now);
        assert_eq!(
            [
                "buffered_records",
                "buffered_bytes",
                "buffer_age_milliseconds"
            ]
            .map(at),
            [0, 0, 0]
        );
        // Gauges of Riffle's own: CloudWatch has no such metric.
        let own: Vec<_> = LANE
            .iter()
            .filter(|m| m.name.starts_with("buffer"))
            .collect();
        assert_eq!(own.len(), 3);
        assert!(own.iter().all(|m| m.cloudwatch.is_empty() && !m.counter));
    }
}
