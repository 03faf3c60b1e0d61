//! The run's summary: what is printed as a table for people, or as one
//! JSON object for machines (`--json`; fields documented on [`Summary`]).

use std::io::Write;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::args::{Plan, Stop, Workload};
use crate::error::BenchError;
use crate::payload::Verdict;
use crate::stats::{Cpu, MB, Measured, Sample, Totals};
use crate::workloads::Ctx;
use crate::workloads::firehose::FirehoseReport;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Samples in the histogram.
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    fn of(hist: &Histogram<u64>) -> Option<Latency> {
        (!hist.is_empty()).then(|| Latency {
            count: hist.len(),
            mean: hist.mean(),
            p50: hist.value_at_quantile(0.50),
            p90: hist.value_at_quantile(0.90),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
        })
    }
}

/// A latency distribution for the plot: (x, ms) points where x is
/// -log10(1 - quantile), so 1 is p90, 2 is p99, 3 is p99.9.
#[derive(Debug, Clone)]
pub struct Curve {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Steps per decade of the curve's x axis.
const CURVE_STEPS_PER_NINE: u32 = 20;
/// How far the curve goes: p99.99.
const CURVE_NINES: u32 = 4;

impl Curve {
    fn of(name: &str, hist: &Histogram<u64>) -> Option<Curve> {
        (!hist.is_empty()).then(|| Curve {
            name: name.to_owned(),
            points: (0..=CURVE_NINES * CURVE_STEPS_PER_NINE)
                .map(|step| {
                    let x = f64::from(step) / f64::from(CURVE_STEPS_PER_NINE);
                    let q = 1.0 - 10f64.powf(-x);
                    (x, hist.value_at_quantile(q) as f64 / 1000.0)
                })
                .collect(),
        })
    }
}

/// One direction's totals and rates over the measured phase.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// Requests sent (PutRecord/PutRecords, or GetRecords).
    pub requests: u64,
    /// Records written and acknowledged, or records read.
    pub records: u64,
    /// Payload bytes of those records.
    pub bytes: u64,
    pub requests_per_s: f64,
    pub records_per_s: f64,
    /// Payload megabytes (10^6 bytes) per second.
    pub mb_per_s: f64,
    /// Failed requests: transport errors and AWS errors, throttles included.
    pub errors: u64,
    /// Requests refused with ProvisionedThroughputExceededException.
    pub throttles: u64,
    /// Records a PutRecords answer marked failed (per-record ErrorCode).
    pub failed_records: u64,
    /// Of those, throttled ones.
    pub throttled_records: u64,
    /// Request latency in µs; in open loop from each request's intended
    /// start. Absent when no request completed.
    pub latency_us: Option<Latency>,
}

impl Side {
    fn of(totals: Totals, hist: &Histogram<u64>, elapsed: Duration) -> Side {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Side {
            requests: totals.requests,
            records: totals.records,
            bytes: totals.bytes,
            requests_per_s: totals.requests as f64 / secs,
            records_per_s: totals.records as f64 / secs,
            mb_per_s: totals.bytes as f64 / MB / secs,
            errors: totals.errors,
            throttles: totals.throttles,
            failed_records: totals.failed_records,
            throttled_records: totals.throttled_records,
            latency_us: Latency::of(hist),
        }
    }
}

/// Everything a run reports; `--json` prints exactly this.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub workload: Workload,
    pub endpoint: String,
    pub stream: String,
    pub shards: u32,
    pub record_size: usize,
    /// Records per write request (1: PutRecord).
    pub batch_size: usize,
    /// Writers in flight at once.
    pub concurrency: usize,
    /// Target write requests per second when open loop, else null.
    pub rate: Option<f64>,
    /// `polling` or `efo` for e2e, else null.
    pub consumer: Option<String>,
    /// Seconds measured (warm-up and get's fill excluded).
    pub duration_s: f64,
    /// The writes of the measured phase (get: null, see `read`).
    pub write: Option<Side>,
    /// The reads of the measured phase (get, e2e with polling, mixed).
    pub read: Option<Side>,
    /// Put-to-receive latency in µs (e2e, mixed): from a record's
    /// (intended) send to its arrival at the consumer.
    pub e2e_latency_us: Option<Latency>,
    /// get, e2e, mixed: whether every acknowledged record came back once
    /// and intact.
    pub verification: Option<Verdict>,
    /// CPU time (user + system) the bench process used per request during
    /// the measured phase, in µs: the load generator's own cost.
    pub client_cpu_us_per_request: f64,
    /// The bench's CPU use over the measured phase, in % of one core.
    pub client_cpu_percent: f64,
    /// Of that, the part spent in the kernel (on loopback, sending a
    /// request also delivers it into the server's socket).
    pub client_cpu_system_percent: f64,
    /// firehose: delivery to S3 (objects, delivered MB/s, DataFreshness).
    pub firehose: Option<FirehoseReport>,
    /// The first failure seen, if any, to say why `errors` is not 0.
    pub first_error: Option<String>,
    /// kpl: the Kinesis records per second the user records were
    /// aggregated into (`write` counts user records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinesis_records_per_s: Option<f64>,
    /// Throughput per second of the measured phase.
    pub timeline: Vec<Sample>,
    /// The latency distributions, for the plot only.
    #[serde(skip)]
    pub curves: Vec<Curve>,
}

impl Summary {
    /// Gathers a measured phase into a summary.
    pub fn build(
        ctx: &Ctx,
        measured: &Measured,
        elapsed: Duration,
        cpu: Cpu,
        timeline: Vec<Sample>,
        verification: Option<Verdict>,
    ) -> Summary {
        let plan = &ctx.plan;
        let writes = measured.writes.totals();
        let reads = measured.reads.totals();
        let (write_hist, read_hist, e2e_hist) = (
            measured.write_latency.snapshot(),
            measured.read_latency.snapshot(),
            measured.e2e_latency.snapshot(),
        );
        let write =
            (plan.workload != Workload::Get).then(|| Side::of(writes, &write_hist, elapsed));
        let read = (reads.requests > 0).then(|| Side::of(reads, &read_hist, elapsed));
        let curves = [
            Curve::of("write request", &write_hist),
            Curve::of("GetRecords request", &read_hist),
            Curve::of("put → receive", &e2e_hist),
        ]
        .into_iter()
        .flatten()
        .collect();
        let requests = (writes.requests + reads.requests).max(1);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let first_error = ctx
            .first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Summary {
            workload: plan.workload,
            endpoint: plan.endpoint.clone(),
            stream: plan.stream.clone(),
            shards: ctx.stream.shards.len() as u32,
            record_size: plan.record_size,
            batch_size: plan.batch_size,
            concurrency: plan.concurrency,
            rate: plan.rate,
            consumer: (plan.workload == Workload::E2e)
                .then(|| format!("{:?}", plan.consumer).to_lowercase()),
            duration_s: secs,
            write,
            read,
            e2e_latency_us: Latency::of(&e2e_hist),
            verification,
            client_cpu_us_per_request: cpu.total().as_secs_f64() * 1e6 / requests as f64,
            client_cpu_percent: cpu.total().as_secs_f64() * 100.0 / secs,
            client_cpu_system_percent: cpu.system.as_secs_f64() * 100.0 / secs,
            firehose: None,
            first_error,
            kinesis_records_per_s: None,
            timeline,
            curves,
        }
    }

    /// The side the headline numbers come from: reads for get, else writes.
    pub fn main_side(&self) -> Option<&Side> {
        match self.workload {
            Workload::Get => self.read.as_ref(),
            _ => self.write.as_ref(),
        }
    }
}

/// Prints the summary on stdout: the table, or JSON with `--json`.
pub fn print(plan: &Plan, summary: &Summary) -> Result<(), BenchError> {
    let text = if plan.json {
        let mut json = serde_json::to_string(summary).map_err(|e| output_error("stdout", e))?;
        json.push('\n');
        json
    } else {
        table(plan, summary)
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| output_error("stdout", e))?;
    if let Some(v) = &summary.verification
        && !v.passed
    {
        eprintln!(
            "riffle bench: VERIFICATION FAILED: LOST {} CORRUPT {} DUPLICATED {} of {} acknowledged records",
            v.lost, v.corrupt, v.duplicates, v.expected
        );
    }
    Ok(())
}

pub fn output_error(path: &str, err: impl std::fmt::Display) -> BenchError {
    BenchError::Output {
        path: path.to_owned(),
        message: err.to_string(),
    }
}

/// The human-readable summary.
pub fn table(plan: &Plan, s: &Summary) -> String {
    let mut t = String::new();
    let pacing = match s.rate {
        Some(rate) => format!("open loop at {rate} req/s"),
        None => "closed loop".to_owned(),
    };
    let amount = match plan.stop {
        Stop::Records(n) => format!("{n} records"),
        Stop::After(d) => format!("{d:?}"),
    };
    let target = match &s.firehose {
        Some(f) => format!(
            "delivery stream {} to bucket {}, {} MiB / {} s buffer, {}{}",
            s.stream,
            f.bucket,
            f.buffer_size_mb,
            f.buffer_interval_s,
            f.compression,
            f.transform_function
                .as_deref()
                .map(|arn| format!(", transformed by {arn}"))
                .unwrap_or_default()
                + &f.partition_query
                    .as_deref()
                    .map(|q| format!(", partitioned by {q}"))
                    .unwrap_or_default()
        ),
        None => format!("stream {}, {} shards", s.stream, s.shards),
    };
    t.push_str(&format!(
        "riffle bench {} against {} ({target})\n",
        kebab(s.workload),
        s.endpoint,
    ));
    t.push_str(&format!(
        "{} B records, {} per request, concurrency {}, {pacing}, {amount}, {:.2} s measured\n\n",
        s.record_size, s.batch_size, s.concurrency, s.duration_s
    ));
    if let Some(side) = &s.write {
        side_rows(&mut t, "write", side);
    }
    if let Some(rate) = s.kinesis_records_per_s {
        row(&mut t, "Kinesis records/s", &format!("{rate:.0}"));
    }
    if let Some(side) = &s.read {
        side_rows(&mut t, "read", side);
    }
    if let Some(lat) = &s.e2e_latency_us {
        row(&mut t, "put→receive latency", &latency_text(lat));
    }
    if let Some(f) = &s.firehose {
        firehose_rows(&mut t, f);
    }
    row(
        &mut t,
        "client CPU",
        &format!(
            "{:.1} µs/request ({:.0}% of a core, {:.0}% in the kernel)",
            s.client_cpu_us_per_request, s.client_cpu_percent, s.client_cpu_system_percent
        ),
    );
    if let Some(v) = &s.verification {
        let verdict = if v.passed { "passed" } else { "FAILED" };
        row(
            &mut t,
            "verification",
            &format!(
                "{verdict}: {} acknowledged, {} read back, LOST {}, CORRUPT {}, duplicated {}, foreign {}",
                v.expected, v.received, v.lost, v.corrupt, v.duplicates, v.foreign
            ),
        );
    }
    if let Some(err) = &s.first_error {
        row(&mut t, "first error", err);
    }
    t
}

fn firehose_rows(t: &mut String, f: &FirehoseReport) {
    row(
        t,
        "delivered payload MB/s",
        &format!(
            "{:.2} while writing; {:.2} to the last object, which landed {:.1} s after the writers stopped",
            f.delivered_mb_per_s, f.delivered_to_last_mb_per_s, f.last_object_after_writes_s
        ),
    );
    row(
        t,
        "objects",
        &format!(
            "{} ({:.1} MB of records in {:.1} MB stored)",
            f.objects,
            f.delivered_bytes as f64 / MB,
            f.stored_bytes as f64 / MB
        ),
    );
    if let Some(age) = &f.freshness_ms {
        row(
            t,
            "DataFreshness",
            &format!(
                "p50 {:.3} s  p99 {:.3}  max {:.3}",
                age.p50 as f64 / 1000.0,
                age.p99 as f64 / 1000.0,
                age.max as f64 / 1000.0
            ),
        );
    }
    if f.objects_not_compressed > 0 || f.ragged_objects > 0 || !f.drained {
        row(
            t,
            "delivery notes",
            &format!(
                "{} objects not gzip, {} not whole records{}",
                f.objects_not_compressed,
                f.ragged_objects,
                if f.drained { "" } else { ", drain timed out" }
            ),
        );
    }
}

fn side_rows(t: &mut String, name: &str, side: &Side) {
    row(
        t,
        &format!("{name} records/s"),
        &format!("{:.0}", side.records_per_s),
    );
    row(
        t,
        &format!("{name} payload MB/s"),
        &format!("{:.2}", side.mb_per_s),
    );
    row(
        t,
        &format!("{name} requests/s"),
        &format!("{:.0}", side.requests_per_s),
    );
    if let Some(lat) = &side.latency_us {
        row(t, &format!("{name} latency"), &latency_text(lat));
    }
    row(
        t,
        &format!("{name} errors"),
        &format!(
            "{} (throttled {}; failed records {}, throttled {})",
            side.errors, side.throttles, side.failed_records, side.throttled_records
        ),
    );
}

fn latency_text(l: &Latency) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "p50 {:.3} ms  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.max)
    )
}

fn row(t: &mut String, name: &str, value: &str) {
    t.push_str(&format!("  {name:<22} {value}\n"));
}

fn kebab(w: Workload) -> &'static str {
    match w {
        Workload::Put => "put",
        Workload::PutBatch => "put-batch",
        Workload::Get => "get",
        Workload::E2e => "e2e",
        Workload::Mixed => "mixed",
        Workload::Kpl => "kpl",
        Workload::Firehose => "firehose",
    }
}
