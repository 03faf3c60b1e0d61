//! The `kpl` workload: small user records through the KPL producer
//! (`riffle-kpl`), which aggregates them per shard into PutRecords calls;
//! then every shard is drained from where the run began, each aggregated
//! record de-aggregated and every user record verified (`read`).
//!
//! One task puts records as fast as the producer takes them, keeping at
//! most [`WINDOW`] unresolved; a user record counts as written when its
//! future resolves. `write` counts user records (one "request" each, so
//! client CPU is per user record); the Kinesis records they became are
//! counted apart (each has exactly one user record of sub-sequence 0).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use riffle_kpl::{Producer, ProducerConfig, UserRecordFuture};
use tokio::sync::watch;

use super::read::{ReadShared, Until, spawn_pollers, take_iterators};
use super::write::PassSpec;
use super::{Ctx, with_progress};
use crate::error::BenchError;
use crate::report::Summary;
use crate::stats::{self, Measured};

/// User records put and not yet resolved, at most: several full PutRecords
/// calls' worth (5 MiB of 100-byte records is ~50,000), so calls in flight
/// never wait for the producer to be fed.
const WINDOW: usize = 400_000;
/// The producer's per-shard rate limit, in percent of a shard's: out of
/// the way, so the bench measures the producer and the server (run with
/// `--throughput-limits off`), not AWS's 1 MiB/s per shard.
const RATE_LIMIT_OUT_OF_THE_WAY: u64 = 1_000_000;
/// Puts between looks at the clock and yields to the producer's tasks; the
/// records of a chunk share its send time (a chunk takes well under a
/// millisecond), so the clock costs the client little per record.
const CHUNK: u64 = 512;
/// One user record in this many has its put-to-resolved latency recorded.
const LATENCY_SAMPLE: u64 = 64;

pub async fn run(ctx: &Arc<Ctx>) -> Result<Summary, BenchError> {
    let iterators = take_iterators(ctx).await?;
    let config = ProducerConfig {
        rate_limit: RATE_LIMIT_OUT_OF_THE_WAY,
        max_in_flight: ctx.plan.concurrency,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(ctx.sdk.clone(), &ctx.stream.name, config)
        .await
        .map_err(|err| BenchError::ControlPlane {
            action: "ListShards",
            stream: ctx.stream.name.clone(),
            message: err.to_string(),
        })?;
    let kinesis_records = AtomicU64::new(0);
    if let Some(spec) = PassSpec::warmup(ctx) {
        let warmup = Measured::default();
        produce(ctx, &producer, spec, &warmup, &kinesis_records).await;
    }
    kinesis_records.store(0, Ordering::Relaxed);
    let measured = Arc::new(Measured::default());
    let cpu = stats::Cpu::now();
    let spec = PassSpec::measured(ctx);
    let ((), elapsed, samples) = with_progress(ctx, "kpl", &measured, async {
        produce(ctx, &producer, spec, &measured, &kinesis_records).await;
    })
    .await;
    let cpu = cpu.elapsed();
    drop(producer);

    let (_stop_tx, stop) = watch::channel(false);
    let shared = Arc::new(ReadShared {
        measured: Arc::clone(&measured),
        count_from_ns: AtomicU64::new(0),
        stop,
    });
    let readers = spawn_pollers(ctx, &shared, iterators, Until::Drained);
    for reader in readers {
        let _ = reader.await; // a panicked reader's records count as lost
    }
    let verdict = ctx.verifier.verdict(ctx.issued());
    let mut summary = Summary::build(ctx, &measured, elapsed, cpu, samples, Some(verdict));
    summary.kinesis_records_per_s =
        Some(kinesis_records.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64().max(1e-9));
    Ok(summary)
}

/// Puts user records until `spec` ends, then waits for all of them.
async fn produce(
    ctx: &Ctx,
    producer: &Producer,
    spec: PassSpec,
    measured: &Measured,
    kinesis_records: &AtomicU64,
) {
    let mut pending: VecDeque<(u64, Instant, UserRecordFuture)> = VecDeque::with_capacity(WINDOW);
    let mut hist = stats::histogram();
    let mut raw = Vec::with_capacity(ctx.plan.record_size);
    let mut id = ctx.issued();
    let last = spec.records.map(|n| id + n);
    'put: loop {
        if spec.until.is_some_and(|until| Instant::now() >= until) {
            break;
        }
        let now = Instant::now();
        let sent_ns = ctx.ns_since_epoch(now);
        for _ in 0..CHUNK {
            if last.is_some_and(|last| id >= last) {
                break 'put;
            }
            ctx.maker.write(id, sent_ns, &mut raw);
            pending.push_back((id, now, producer.put(ctx.key(id), None, &raw)));
            id += 1;
            if pending.len() >= WINDOW
                && let Some(oldest) = pending.pop_front()
            {
                settle(ctx, measured, kinesis_records, &mut hist, oldest).await;
            }
        }
        tokio::task::yield_now().await;
    }
    ctx.next_id.fetch_max(id, Ordering::Relaxed);
    producer.flush();
    while let Some(oldest) = pending.pop_front() {
        settle(ctx, measured, kinesis_records, &mut hist, oldest).await;
    }
    measured.write_latency.merge(&hist);
}

/// Waits for one user record and counts it.
async fn settle(
    ctx: &Ctx,
    measured: &Measured,
    kinesis_records: &AtomicU64,
    hist: &mut hdrhistogram::Histogram<u64>,
    (id, put_at, answer): (u64, Instant, UserRecordFuture),
) {
    let c = &measured.writes;
    c.add(&c.requests, 1);
    match answer.await {
        Ok(outcome) => {
            if id % LATENCY_SAMPLE == 0 {
                stats::record(hist, put_at.elapsed());
            }
            ctx.verifier.acknowledge(id);
            c.add(&c.records, 1);
            c.add(&c.bytes, ctx.plan.record_size as u64);
            if outcome.sub_sequence_number == 0 {
                kinesis_records.fetch_add(1, Ordering::Relaxed);
            }
        }
        Err(err) => {
            c.add(&c.errors, 1);
            c.add(&c.failed_records, 1);
            ctx.note_error(|| err.to_string());
        }
    }
}
