//! Writers: PutRecord or PutRecords requests paced closed-loop (as fast as
//! answers come back) or open-loop (at `--rate`, each request with an
//! intended start time its latency is measured from).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Ctx, with_progress};
use crate::api::{self, PutRecordBatchBody, PutRecordsBody};
use crate::args::{Stop, Workload};
use crate::client::{Action, Reply, THROTTLE_ERROR};
use crate::error::BenchError;
use crate::report::Summary;
use crate::stats::{self, Measured, Sample};

/// How early an open-loop writer wakes before a request's intended start:
/// tokio's timer has millisecond granularity, so waking exactly on time is
/// impossible; a request sent early is timed from when it was sent.
const TIMER_SLACK: Duration = Duration::from_millis(1);

/// When a pass stops, and how fast it goes.
#[derive(Debug, Clone, Copy)]
pub struct PassSpec {
    /// Records to write, at most.
    pub records: Option<u64>,
    /// No request is started after this.
    pub until: Option<Instant>,
    /// Requests per second, open loop; `None`: closed loop.
    pub rate: Option<f64>,
}

impl PassSpec {
    /// The measured pass of the plan, starting now.
    pub fn measured(ctx: &Ctx) -> PassSpec {
        let (records, until) = match ctx.plan.stop {
            Stop::Records(n) => (Some(n), None),
            Stop::After(d) => (None, Some(Instant::now() + d)),
        };
        PassSpec {
            records,
            until,
            rate: ctx.plan.rate,
        }
    }

    /// The warm-up pass, or `None` without one.
    pub fn warmup(ctx: &Ctx) -> Option<PassSpec> {
        (!ctx.plan.warmup.is_zero()).then(|| PassSpec {
            records: None,
            until: Some(Instant::now() + ctx.plan.warmup),
            rate: ctx.plan.rate,
        })
    }
}

/// One request's turn: which records, and when it should start.
struct Slot {
    first_id: u64,
    count: usize,
    intended: Instant,
}

/// Hands out request slots to the writers of one pass.
struct Pacer {
    spec: PassSpec,
    start: Instant,
    /// Nanoseconds between intended starts (open loop).
    interval_ns: Option<f64>,
    batch: u64,
    id_base: u64,
    next: AtomicU64,
}

impl Pacer {
    fn new(spec: PassSpec, batch: usize, id_base: u64) -> Pacer {
        Pacer {
            spec,
            start: Instant::now(),
            interval_ns: spec.rate.map(|r| 1e9 / r),
            batch: batch as u64,
            id_base,
            next: AtomicU64::new(0),
        }
    }

    async fn next(&self) -> Option<Slot> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let offset = index.checked_mul(self.batch)?;
        let count = match self.spec.records {
            Some(n) if offset >= n => return None,
            Some(n) => (n - offset).min(self.batch),
            None => self.batch,
        };
        let intended = match self.interval_ns {
            Some(ns) => self.start + Duration::from_nanos((index as f64 * ns) as u64),
            None => Instant::now(),
        };
        if self.spec.until.is_some_and(|until| intended >= until) {
            return None;
        }
        if self.interval_ns.is_some() {
            let wake = intended.checked_sub(TIMER_SLACK).unwrap_or(intended);
            tokio::time::sleep_until(wake.into()).await;
        }
        Some(Slot {
            first_id: self.id_base + offset,
            count: count as usize,
            intended,
        })
    }

    /// Ids handed out (some perhaps never sent, which is harmless: only
    /// acknowledged records are expected back).
    fn ids_used(&self) -> u64 {
        let requests = self.next.load(Ordering::Relaxed);
        let ids = requests.saturating_mul(self.batch);
        self.spec.records.map_or(ids, |n| ids.min(n))
    }
}

/// Runs one pass of `concurrency` writers; returns its wall time and
/// throughput samples.
pub async fn pass(
    ctx: &Arc<Ctx>,
    spec: PassSpec,
    measured: &Arc<Measured>,
    label: &str,
) -> (Duration, Vec<Sample>) {
    let pacer = Arc::new(Pacer::new(spec, ctx.plan.batch_size, ctx.issued()));
    let writers: Vec<_> = (0..ctx.plan.concurrency)
        .map(|_| {
            let (ctx, pacer, measured) = (ctx.clone(), pacer.clone(), measured.clone());
            tokio::spawn(async move { writer(&ctx, &pacer, &measured).await })
        })
        .collect();
    let ((), elapsed, samples) = with_progress(ctx, label, measured, async {
        for writer in writers {
            // A writer that panicked has already lost its requests; the
            // others still report theirs.
            let _ = writer.await;
        }
    })
    .await;
    ctx.next_id
        .fetch_max(pacer.id_base + pacer.ids_used(), Ordering::Relaxed);
    (elapsed, samples)
}

/// One writer: takes slots until the pass ends, then merges its latencies.
async fn writer(ctx: &Ctx, pacer: &Pacer, measured: &Measured) {
    let mut hist = stats::histogram();
    let mut raw = Vec::with_capacity(ctx.plan.record_size);
    while let Some(slot) = pacer.next().await {
        // Timed from the intended start (open loop), or from now if the
        // timer woke us early or the loop is closed.
        let began = slot.intended.min(Instant::now());
        let sent_ns = ctx.ns_since_epoch(began);
        let (action, body) = request(ctx, &slot, sent_ns, &mut raw);
        let reply = ctx.client.call(action, body).await;
        stats::record(&mut hist, began.elapsed());
        settle(ctx, measured, &slot, action, reply);
    }
    measured.write_latency.merge(&hist);
}

/// The request of one slot: PutRecord, PutRecords, or Firehose's
/// PutRecordBatch; `raw` is the worker's payload buffer.
fn request(ctx: &Ctx, slot: &Slot, sent_ns: u64, raw: &mut Vec<u8>) -> (Action, Vec<u8>) {
    let ids = slot.first_id..slot.first_id + slot.count as u64;
    let size = ctx.plan.record_size;
    if ctx.plan.workload == Workload::Firehose {
        let partitioned = ctx
            .plan
            .firehose
            .as_ref()
            .is_some_and(|f| f.partition_query.is_some());
        let mut body = PutRecordBatchBody::new(&ctx.stream.name, slot.count, size);
        let mut json = Vec::new();
        for id in ids {
            ctx.maker.write(id, sent_ns, raw);
            if partitioned {
                super::firehose::json_record(id, raw, &mut json);
                body.push(&json);
            } else {
                body.push(raw);
            }
        }
        return (Action::PutRecordBatch, body.finish());
    }
    if ctx.plan.batch_size == 1 {
        ctx.maker.write(slot.first_id, sent_ns, raw);
        let body = api::put_record(&ctx.stream.name, raw, ctx.key(slot.first_id));
        return (Action::PutRecord, body);
    }
    let mut body = PutRecordsBody::new(&ctx.stream.name, slot.count, size);
    for id in ids {
        ctx.maker.write(id, sent_ns, raw);
        body.push(raw, ctx.key(id));
    }
    (Action::PutRecords, body.finish())
}

/// Counts a write's outcome and acknowledges its records to the verifier.
fn settle(
    ctx: &Ctx,
    measured: &Measured,
    slot: &Slot,
    action: Action,
    reply: Result<Reply, BenchError>,
) {
    let c = &measured.writes;
    c.add(&c.requests, 1);
    let body = match reply {
        Ok(Reply::Ok(body)) => body,
        Ok(Reply::Failed {
            status,
            error_type,
            message,
            throttled,
        }) => {
            c.add(&c.errors, 1);
            if throttled {
                c.add(&c.throttles, 1);
            }
            ctx.note_error(|| {
                let hint = if throttled { THROTTLE_HINT } else { "" };
                format!(
                    "{} failed: HTTP {status} {error_type}: {message}{hint}",
                    action.name()
                )
            });
            return;
        }
        Err(err) => {
            c.add(&c.errors, 1);
            ctx.note_error(|| err.to_string());
            return;
        }
    };
    let acknowledged = if action == Action::PutRecord {
        ctx.verifier.acknowledge(slot.first_id);
        1
    } else {
        match api::parse_put_records(&body, action) {
            Ok(out) => acknowledge_batch(ctx, measured, slot, &out),
            Err(err) => {
                c.add(&c.errors, 1);
                ctx.note_error(|| err.to_string());
                return;
            }
        }
    };
    if acknowledged > 0 {
        ctx.first_ack_ns
            .fetch_min(ctx.ns_since_epoch(Instant::now()), Ordering::Relaxed);
    }
    c.add(&c.records, acknowledged);
    c.add(&c.bytes, acknowledged * ctx.plan.record_size as u64);
}

/// Acknowledges a PutRecords' successful records; counts the failed ones.
fn acknowledge_batch(
    ctx: &Ctx,
    measured: &Measured,
    slot: &Slot,
    out: &api::PutRecordsOutput<'_>,
) -> u64 {
    let c = &measured.writes;
    let mut ok = 0;
    for (i, result) in out.records.iter().enumerate().take(slot.count) {
        match &result.error_code {
            None => {
                ctx.verifier.acknowledge(slot.first_id + i as u64);
                ok += 1;
            }
            Some(code) => {
                c.add(&c.failed_records, 1);
                if code == THROTTLE_ERROR {
                    c.add(&c.throttled_records, 1);
                }
            }
        }
    }
    if out.failed_record_count > 0 {
        ctx.note_error(|| failed_batch_text(out));
    }
    ok
}

/// Says why a PutRecords' records failed (the first failure's code and
/// message) and, for throttling, how to lift the limits, since a bench
/// against a server with AWS's per-shard limits on measures the limits.
fn failed_batch_text(out: &api::PutRecordsOutput<'_>) -> String {
    let first = out.records.iter().find(|r| r.error_code.is_some());
    let code = first.and_then(|r| r.error_code.as_deref()).unwrap_or("?");
    let message = first.and_then(|r| r.error_message.as_deref()).unwrap_or("");
    let mut text = format!(
        "PutRecords: {} records failed, the first with {code}: {message}",
        out.failed_record_count
    );
    if code == THROTTLE_ERROR {
        text.push_str(THROTTLE_HINT);
    }
    text
}

/// What a throttled bench run should do about it.
const THROTTLE_HINT: &str = " (the server enforces AWS's per-shard write limits of 1 MiB/s and \
1,000 records/s; to measure raw speed start it with `riffle serve --throughput-limits off`, \
or give the stream more shards with --shards)";

/// The `put` and `put-batch` workloads: a warm-up pass, then the measured
/// pass.
pub async fn run(ctx: &Arc<Ctx>) -> Result<Summary, BenchError> {
    if let Some(spec) = PassSpec::warmup(ctx) {
        pass(ctx, spec, &Arc::new(Measured::default()), "warm-up").await;
    }
    let measured = Arc::new(Measured::default());
    let cpu = stats::Cpu::now();
    let label = if ctx.plan.batch_size == 1 {
        "put"
    } else {
        "put-batch"
    };
    let (elapsed, samples) = pass(ctx, PassSpec::measured(ctx), &measured, label).await;
    let cpu = cpu.elapsed();
    Ok(Summary::build(ctx, &measured, elapsed, cpu, samples, None))
}
