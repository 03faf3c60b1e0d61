//! Metrics with CloudWatch's meaning, for Prometheus: what each shard took
//! in and gave out, what it refused, and how far behind its readers are.
//!
//! Every shard keeps counters in atomics that the record paths bump with
//! relaxed stores (no lock, no allocation); like its throttle, one set is
//! shared by every version of the shard, so a reshard loses nothing.
//! [`Kinesis::write_metrics`] renders them in Prometheus's text format:
//!
//! ```text
//! # HELP riffle_kinesis_incoming_bytes_total IncomingBytes: bytes put to the stream (data and partition keys).
//! # TYPE riffle_kinesis_incoming_bytes_total counter
//! riffle_kinesis_incoming_bytes_total{stream="orders"} 1048576
//! riffle_kinesis_shard_incoming_bytes_total{stream="orders",shard="shardId-000000000000"} 524288
//! ```
//!
//! Stream-level series sum the stream's shards, closed ones included. As in
//! CloudWatch, shard-level series exist only for the metrics a stream
//! enabled with EnableEnhancedMonitoring.
//!
//! Per enhanced fan-out consumer, `riffle_kinesis_consumer_…{stream,consumer}`
//! is what AWS publishes per StreamName and ConsumerName:
//! `SubscribeToShardEvent.MillisBehindLatest`, the highest over the
//! consumer's live subscriptions of their last event's value
//! ([`ConsumerAges`]). A consumer with no live subscription has no sample,
//! as CloudWatch has no datapoint without events; a deregistered consumer's
//! series, and those of a deleted stream, are gone at once.
//!
//! After them come the storage engine's `riffle_storage_…` series (no
//! CloudWatch equivalent): the data directory's free space and floor,
//! whether the disk is full, the shard logs refusing writes after a failed
//! write, and the appends refused for either reason.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;
use riffle_log::StorageStats;

use crate::Kinesis;
use crate::stream::Stream;

/// One shard's counters.
#[derive(Debug, Default)]
pub struct ShardMetrics {
    incoming_bytes: AtomicU64,
    incoming_records: AtomicU64,
    outgoing_bytes: AtomicU64,
    outgoing_records: AtomicU64,
    write_exceeded: AtomicU64,
    read_exceeded: AtomicU64,
    /// The last `MillisBehindLatest` a read of this shard answered.
    iterator_age_ms: AtomicI64,
}

impl ShardMetrics {
    pub(crate) fn wrote(&self, records: u64, bytes: u64) {
        self.incoming_records.fetch_add(records, Ordering::Relaxed);
        self.incoming_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records refused for the shard's write limits.
    pub(crate) fn write_refused(&self, records: u64) {
        self.write_exceeded.fetch_add(records, Ordering::Relaxed);
    }

    /// A GetRecords call refused for the shard's read limits.
    pub(crate) fn read_refused(&self) {
        self.read_exceeded.fetch_add(1, Ordering::Relaxed);
    }

    /// A GetRecords call that returned `records`, `behind_ms` behind the tip.
    pub(crate) fn read(&self, records: &[riffle_log::Record], behind_ms: i64) {
        self.sent(records);
        self.iterator_age_ms.store(behind_ms, Ordering::Relaxed);
    }

    /// A SubscribeToShard event that carried `records`. It counts as
    /// outgoing, but its MillisBehindLatest is the consumer's
    /// ([`ConsumerAges`]), not the polling readers' iterator age: AWS keeps
    /// `GetRecords.IteratorAgeMilliseconds` for GetRecords alone.
    pub(crate) fn pushed(&self, records: &[riffle_log::Record]) {
        self.sent(records);
    }

    fn sent(&self, records: &[riffle_log::Record]) {
        let bytes: usize = records
            .iter()
            .map(|r| r.data.len() + r.partition_key.len())
            .sum();
        self.outgoing_records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        self.outgoing_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// One registered consumer's live subscriptions' readings.
#[derive(Debug)]
struct ConsumerEntry {
    stream: String,
    /// The stream incarnation the consumer belongs to: a stream deleted
    /// and created again under its name has none of its consumers.
    incarnation: u64,
    consumer: String,
    /// Shard index → the MillisBehindLatest of the last event sent on it.
    /// Each subscription holds its shard's cell and stores into it with no
    /// lock; the cell goes when the last subscription holding it ends.
    shards: BTreeMap<u32, Arc<AtomicI64>>,
}

impl ConsumerEntry {
    fn millis_behind_latest(&self) -> i64 {
        self.shards
            .values()
            .map(|cell| cell.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0)
    }
}

/// The enhanced fan-out consumers' `SubscribeToShardEvent` readings, by
/// consumer ARN (the ARN names one registration: a consumer registered
/// again under its name has a new ARN, and starts afresh). Bounded by the
/// live subscriptions: an entry exists only while one of its consumer's
/// subscriptions does, at most one cell per shard.
#[derive(Debug, Default)]
pub(crate) struct ConsumerAges {
    /// Held only to look up, insert or remove an entry; never across an
    /// await, and never while rendering touches another lock.
    by_arn: Mutex<BTreeMap<String, ConsumerEntry>>,
}

impl ConsumerAges {
    /// The cell a new subscription of consumer `arn` (`consumer` of
    /// `stream`) to shard `shard` stores its events' MillisBehindLatest
    /// in; shared with a subscription it takes over.
    pub(crate) fn cell(
        &self,
        arn: &str,
        stream: &Stream,
        consumer: &str,
        shard: u32,
    ) -> Arc<AtomicI64> {
        let mut by_arn = self.by_arn.lock();
        let entry = by_arn
            .entry(arn.to_owned())
            .or_insert_with(|| ConsumerEntry {
                stream: stream.name().to_owned(),
                incarnation: stream.record.incarnation,
                consumer: consumer.to_owned(),
                shards: BTreeMap::new(),
            });
        Arc::clone(entry.shards.entry(shard).or_default())
    }

    /// A subscription holding `cell` ended: the cell goes unless another
    /// subscription (one that took over) holds it too, and the entry goes
    /// with its last cell.
    pub(crate) fn release(&self, arn: &str, shard: u32, cell: &Arc<AtomicI64>) {
        let mut by_arn = self.by_arn.lock();
        let Some(entry) = by_arn.get_mut(arn) else {
            return;
        };
        // Held by the map and by the caller only: new holders take it
        // under this lock, so none can appear meanwhile.
        if entry
            .shards
            .get(&shard)
            .is_some_and(|held| Arc::ptr_eq(held, cell) && Arc::strong_count(held) <= 2)
        {
            entry.shards.remove(&shard);
        }
        if entry.shards.is_empty() {
            by_arn.remove(arn);
        }
    }

    /// The consumer is being deregistered: its series go now, not when
    /// its subscriptions notice.
    pub(crate) fn forget(&self, arn: &str) {
        self.by_arn.lock().remove(arn);
    }

    /// The consumer series of the streams in `live` (in name order, as
    /// [`Kinesis::all`] gives them); entries of streams that are gone
    /// (deleted, or created again) are dropped on the way.
    fn write(&self, out: &mut String, live: &[Arc<Stream>]) {
        let mut by_arn = self.by_arn.lock();
        by_arn.retain(|_, entry| {
            live.binary_search_by(|s| s.name().cmp(&entry.stream))
                .is_ok_and(|at| live[at].record.incarnation == entry.incarnation)
        });
        for metric in &CONSUMER_METRICS {
            let _ = writeln!(
                out,
                "# HELP riffle_kinesis_{name} {cw}: {help}.\n# TYPE riffle_kinesis_{name} {kind}",
                name = metric.name,
                cw = metric.cloudwatch,
                help = metric.help,
                kind = metric.kind.prometheus(),
            );
            for entry in by_arn.values() {
                let _ = writeln!(
                    out,
                    "riffle_kinesis_{}{{stream=\"{}\",consumer=\"{}\"}} {}",
                    metric.name,
                    label(&entry.stream),
                    label(&entry.consumer),
                    (metric.value)(entry)
                );
            }
        }
    }
}

/// How a series combines over a stream's shards (or a consumer's).
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    /// The highest of the shards, as CloudWatch's Maximum statistic.
    GaugeMax,
}

impl Kind {
    fn prometheus(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::GaugeMax => "gauge",
        }
    }
}

/// A metric: its Prometheus name (without prefix), CloudWatch's name (the
/// EnableEnhancedMonitoring name for a shard's), what it means, and its
/// value read from `T` (a shard's counters, or a consumer's readings).
struct Metric<T> {
    name: &'static str,
    cloudwatch: &'static str,
    help: &'static str,
    kind: Kind,
    value: fn(&T) -> i64,
}

fn load(counter: &AtomicU64) -> i64 {
    i64::try_from(counter.load(Ordering::Relaxed)).unwrap_or(i64::MAX)
}

const METRICS: [Metric<ShardMetrics>; 7] = [
    Metric {
        name: "incoming_bytes_total",
        cloudwatch: "IncomingBytes",
        help: "bytes put to the stream (data and partition keys)",
        kind: Kind::Counter,
        value: |m| load(&m.incoming_bytes),
    },
    Metric {
        name: "incoming_records_total",
        cloudwatch: "IncomingRecords",
        help: "records put to the stream",
        kind: Kind::Counter,
        value: |m| load(&m.incoming_records),
    },
    Metric {
        name: "outgoing_bytes_total",
        cloudwatch: "OutgoingBytes",
        help: "bytes read by GetRecords and SubscribeToShard",
        kind: Kind::Counter,
        value: |m| load(&m.outgoing_bytes),
    },
    Metric {
        name: "outgoing_records_total",
        cloudwatch: "OutgoingRecords",
        help: "records read by GetRecords and SubscribeToShard",
        kind: Kind::Counter,
        value: |m| load(&m.outgoing_records),
    },
    Metric {
        name: "write_provisioned_throughput_exceeded_total",
        cloudwatch: "WriteProvisionedThroughputExceeded",
        help: "records refused for the shard write limits",
        kind: Kind::Counter,
        value: |m| load(&m.write_exceeded),
    },
    Metric {
        name: "read_provisioned_throughput_exceeded_total",
        cloudwatch: "ReadProvisionedThroughputExceeded",
        help: "GetRecords calls refused for the shard read limits",
        kind: Kind::Counter,
        value: |m| load(&m.read_exceeded),
    },
    Metric {
        name: "iterator_age_milliseconds",
        cloudwatch: "IteratorAgeMilliseconds",
        help: "how far the last GetRecords call was behind the tip (polling readers; the maximum over shards)",
        kind: Kind::GaugeMax,
        value: |m| m.iterator_age_ms.load(Ordering::Relaxed),
    },
];

/// The metrics AWS publishes per enhanced fan-out consumer (dimensions
/// StreamName and ConsumerName), labelled `stream` and `consumer`.
const CONSUMER_METRICS: [Metric<ConsumerEntry>; 1] = [Metric {
    name: "consumer_millis_behind_latest",
    cloudwatch: "SubscribeToShardEvent.MillisBehindLatest",
    help: "how far the consumer's last SubscribeToShard event was behind the tip (the maximum over its live subscriptions)",
    kind: Kind::GaugeMax,
    value: ConsumerEntry::millis_behind_latest,
}];

impl Kinesis {
    /// Every stream's metrics in Prometheus's text exposition format.
    pub fn write_metrics(&self, out: &mut String) {
        let streams = self.all();
        for metric in &METRICS {
            let kind = metric.kind.prometheus();
            let _ = writeln!(
                out,
                "# HELP riffle_kinesis_{name} {cw}: {help}.\n# TYPE riffle_kinesis_{name} {kind}",
                name = metric.name,
                cw = metric.cloudwatch,
                help = metric.help
            );
            for stream in &streams {
                let values = stream.shards.iter().map(|s| (metric.value)(&s.metrics));
                let total = match metric.kind {
                    Kind::Counter => values.sum(),
                    Kind::GaugeMax => values.max().unwrap_or(0),
                };
                let _ = writeln!(
                    out,
                    "riffle_kinesis_{}{{stream=\"{}\"}} {total}",
                    metric.name,
                    label(stream.name())
                );
            }
            let _ = writeln!(
                out,
                "# HELP riffle_kinesis_shard_{name} {cw} per shard, for streams that enabled it.\n# TYPE riffle_kinesis_shard_{name} {kind}",
                name = metric.name,
                cw = metric.cloudwatch,
            );
            for stream in streams.iter().filter(|s| enhanced(s, metric.cloudwatch)) {
                for shard in &stream.shards {
                    let _ = writeln!(
                        out,
                        "riffle_kinesis_shard_{}{{stream=\"{}\",shard=\"{}\"}} {}",
                        metric.name,
                        label(stream.name()),
                        shard.id,
                        (metric.value)(&shard.metrics)
                    );
                }
            }
        }
        self.subscriptions.ages.write(out, &streams);
        write_storage_metrics(out, &self.store().storage_stats());
    }
}

/// The storage engine's disk and failure state (see the module docs).
fn write_storage_metrics(out: &mut String, s: &StorageStats) {
    let mut series = |name: &str, kind: &str, help: &str, lines: &[(&str, u64)]| {
        let _ = writeln!(
            out,
            "# HELP riffle_storage_{name} {help}.\n# TYPE riffle_storage_{name} {kind}"
        );
        for (labels, value) in lines {
            let _ = writeln!(out, "riffle_storage_{name}{labels} {value}");
        }
    };
    series(
        "disk_full",
        "gauge",
        "1 while the data directory's free space is below --disk-free-min or a shard log refuses writes because a write found the disk full, else 0",
        &[("", u64::from(s.disk_full))],
    );
    series(
        "disk_free_bytes",
        "gauge",
        "bytes free on the data directory's filesystem, as last measured",
        &[("", s.disk_free_bytes)],
    );
    series(
        "disk_free_min_bytes",
        "gauge",
        "the free-space floor (--disk-free-min) below which appends are refused",
        &[("", s.disk_free_min_bytes)],
    );
    series(
        "logs_refusing_writes",
        "gauge",
        "shard logs refusing writes after a failed write, until they reopen themselves, by cause",
        &[
            ("{cause=\"disk_full\"}", s.logs_refusing_disk_full),
            ("{cause=\"io_error\"}", s.logs_refusing_io),
        ],
    );
    series(
        "appends_refused_total",
        "counter",
        "appends to a shard log refused or failed (answered InternalFailure), by cause",
        &[
            ("{cause=\"disk_full\"}", s.appends_refused_disk_full),
            ("{cause=\"io_error\"}", s.appends_refused_io),
        ],
    );
    series(
        "logs_reopened_total",
        "counter",
        "shard logs that reopened themselves from disk after a failed write",
        &[("", s.logs_reopened)],
    );
}

/// Whether the stream enabled shard-level `metric` (or `ALL`).
fn enhanced(stream: &Stream, metric: &str) -> bool {
    stream
        .record
        .settings
        .shard_level_metrics
        .iter()
        .any(|m| m == metric || m == "ALL")
}

/// A label value: stream names are `[a-zA-Z0-9_.-]+`, but escape anyway
/// as the format asks (backslash, quote, newline).
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
    fn counters_add_up_and_the_age_is_the_last_read() {
        let m = ShardMetrics::default();
        m.wrote(3, 300);
        m.wrote(1, 100);
        m.write_refused(2);
        m.read_refused();
        m.read(&[], 5_000);
        m.read(&[], 0);
        let values: Vec<i64> = METRICS.iter().map(|metric| (metric.value)(&m)).collect();
        assert_eq!(values, [400, 4, 0, 0, 2, 1, 0]);
        assert_eq!(label(r#"a"b\c"#), r#"a\"b\\c"#);
    }

    #[test]
    fn storage_series_say_the_disk_is_full_and_count_refusals_by_cause() {
        let mut out = String::new();
        let stats = StorageStats {
            disk_free_bytes: 1_000,
            disk_free_min_bytes: 64 << 20,
            disk_full: true,
            logs_refusing_disk_full: 2,
            appends_refused_disk_full: 7,
            appends_refused_io: 1,
            ..StorageStats::default()
        };
        write_storage_metrics(&mut out, &stats);
        for line in [
            "# TYPE riffle_storage_disk_full gauge",
            "riffle_storage_disk_full 1",
            "riffle_storage_disk_free_bytes 1000",
            "riffle_storage_disk_free_min_bytes 67108864",
            "riffle_storage_logs_refusing_writes{cause=\"disk_full\"} 2",
            "riffle_storage_logs_refusing_writes{cause=\"io_error\"} 0",
            "# TYPE riffle_storage_appends_refused_total counter",
            "riffle_storage_appends_refused_total{cause=\"disk_full\"} 7",
            "riffle_storage_appends_refused_total{cause=\"io_error\"} 1",
            "riffle_storage_logs_reopened_total 0",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "{line} missing from:\n{out}"
            );
        }
    }
}
