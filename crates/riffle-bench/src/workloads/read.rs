//! Polling readers (GetRecords in a loop on one shard each), and the
//! `e2e`/`mixed` workloads, whose writers and consumer run together.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::write::{self, PassSpec};
use super::{Ctx, efo};
use crate::api;
use crate::args::{Consumer, Workload};
use crate::client::{Action, Reply};
use crate::control;
use crate::error::BenchError;
use crate::report::Summary;
use crate::stats::{self, Measured};

/// GetRecords' largest `Limit` (the API model's maximum).
pub const GET_RECORDS_LIMIT_MAX: u32 = 10_000;
/// How long a reader waits after a throttled GetRecords (AWS allows five
/// calls per second per shard).
const THROTTLE_BACKOFF: Duration = Duration::from_millis(200);
/// How long readers may go without reading a new record before the missing
/// ones are declared lost.
pub const CATCH_UP_MAX: Duration = Duration::from_secs(15);

/// When a reader stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// At the shard's tip: an empty answer with MillisBehindLatest 0.
    Drained,
    /// When told to (the watch turns true).
    Stopped,
}

/// What the readers of a run share.
pub struct ReadShared {
    pub measured: Arc<Measured>,
    /// Records sent (stamped) before this many ns after the run's zero are
    /// read and verified but not counted (the warm-up). `u64::MAX` until
    /// the measured phase begins.
    pub count_from_ns: AtomicU64,
    pub stop: watch::Receiver<bool>,
}

impl ReadShared {
    pub fn counts(&self, sent_ns: u64) -> bool {
        sent_ns >= self.count_from_ns.load(Ordering::Relaxed)
    }
}

/// The iterator type readers of this run start from: a fresh stream is
/// read from its start; a reused one from its tip, skipping old records.
pub fn start_type(ctx: &Ctx) -> &'static str {
    if ctx.plan.reuse_stream {
        "LATEST"
    } else {
        "TRIM_HORIZON"
    }
}

/// A shard iterator through the lean client.
pub async fn shard_iterator(ctx: &Ctx, shard: &str) -> Result<String, BenchError> {
    let body = api::get_shard_iterator(&ctx.stream.name, shard, start_type(ctx));
    let reply = ctx.client.call(Action::GetShardIterator, body).await?;
    let body = reply.into_ok(Action::GetShardIterator)?;
    api::parse_shard_iterator(&body)?.ok_or_else(|| BenchError::Request {
        action: Action::GetShardIterator.name(),
        status: 200,
        error_type: "NoIterator".into(),
        message: format!("no ShardIterator for shard {shard}"),
    })
}

/// An iterator for every shard, in the stream's shard order.
pub async fn take_iterators(ctx: &Ctx) -> Result<Vec<String>, BenchError> {
    let mut iterators = Vec::with_capacity(ctx.stream.shards.len());
    for shard in &ctx.stream.shards {
        iterators.push(shard_iterator(ctx, shard).await?);
    }
    Ok(iterators)
}

/// Starts one reader per iterator.
pub fn spawn_pollers(
    ctx: &Arc<Ctx>,
    shared: &Arc<ReadShared>,
    iterators: Vec<String>,
    until: Until,
) -> Vec<JoinHandle<()>> {
    iterators
        .into_iter()
        .map(|iterator| {
            let (ctx, shared) = (ctx.clone(), shared.clone());
            tokio::spawn(async move { poll(&ctx, &shared, iterator, until).await })
        })
        .collect()
}

/// One shard's reader.
async fn poll(ctx: &Ctx, shared: &ReadShared, mut iterator: String, until: Until) {
    let c = &shared.measured.reads;
    let mut hist = stats::histogram();
    let mut e2e = stats::histogram();
    let mut data = Vec::new();
    let mut answer = Vec::new();
    let mut last_progress = Instant::now();
    loop {
        if *shared.stop.borrow() {
            break;
        }
        let began = Instant::now();
        let body = api::get_records(&iterator, GET_RECORDS_LIMIT_MAX);
        let reply = ctx
            .client
            .call_into(Action::GetRecords, body, &mut answer)
            .await;
        if shared.counts(ctx.ns_since_epoch(began)) {
            stats::record(&mut hist, began.elapsed());
        }
        c.add(&c.requests, 1);
        match reply {
            Ok(Reply::Ok(())) => {}
            Ok(Reply::Failed {
                throttled: true, ..
            }) => {
                c.add(&c.errors, 1);
                c.add(&c.throttles, 1);
                tokio::time::sleep(THROTTLE_BACKOFF.max(ctx.plan.poll_interval)).await;
                continue;
            }
            Ok(failed) => {
                c.add(&c.errors, 1);
                // An expired or refused iterator cannot be retried.
                let err = failed.into_ok(Action::GetRecords).err();
                ctx.note_error(|| err.map(|e| e.to_string()).unwrap_or_default());
                break;
            }
            Err(err) => {
                c.add(&c.errors, 1);
                ctx.note_error(|| err.to_string());
                tokio::time::sleep(ctx.plan.poll_interval).await;
                continue;
            }
        }
        let out = match api::parse_get_records(&answer) {
            Ok(out) => out,
            Err(err) => {
                c.add(&c.errors, 1);
                ctx.note_error(|| err.to_string());
                break;
            }
        };
        let counted = check_records(ctx, shared, &out.records, &mut data, &mut e2e);
        c.add(&c.records, counted);
        c.add(&c.bytes, counted * ctx.plan.record_size as u64);
        if !out.records.is_empty() {
            last_progress = Instant::now();
        }
        let at_tip = out.records.is_empty() && out.millis_behind_latest.unwrap_or(0) == 0;
        match out.next_shard_iterator {
            Some(next) => iterator = next,
            None => break, // a closed shard, read to its end
        }
        if until == Until::Drained && at_tip {
            break;
        }
        if last_progress.elapsed() > CATCH_UP_MAX && until == Until::Drained {
            break;
        }
        if out.records.is_empty() {
            tokio::time::sleep(ctx.plan.poll_interval).await;
        }
    }
    shared.measured.read_latency.merge(&hist);
    // get and kpl read after writing: no put-to-receive latency.
    if !matches!(ctx.plan.workload, Workload::Get | Workload::Kpl) {
        shared.measured.e2e_latency.merge(&e2e);
    }
}

/// Decodes and verifies the records of one GetRecords answer; returns how
/// many count towards the measured phase, and records their put-to-receive
/// latency.
fn check_records(
    ctx: &Ctx,
    shared: &ReadShared,
    records: &[api::RecordOut<'_>],
    data: &mut Vec<u8>,
    e2e: &mut Histogram<u64>,
) -> u64 {
    let mut counted = 0;
    for record in records {
        data.clear();
        if base64_simd::STANDARD
            .decode_append(&record.data.0, data)
            .is_err()
        {
            data.clear(); // checked as corrupt below
        }
        // A KPL-aggregated record (kpl) is checked as its user records.
        let users = riffle_kpl::decode(data);
        let payloads = match &users {
            Some(users) => users.iter().map(|u| u.data).collect(),
            None => vec![&data[..]],
        };
        for payload in payloads {
            if let Some(sent_ns) = ctx.verifier.observe(payload)
                && shared.counts(sent_ns)
            {
                counted += 1;
                stats::record(e2e, ctx.since_sent(sent_ns));
            }
        }
    }
    counted
}

/// Waits until every acknowledged record was read, or until reading has
/// made no progress for [`CATCH_UP_MAX`] (the rest is then lost).
pub async fn catch_up(ctx: &Ctx) {
    let mut received = ctx.verifier.received();
    let mut progressed = Instant::now();
    // The count is a cheap first check; the scan is exact (a record whose
    // PutRecord failed in transport may still have been stored and read,
    // which the count alone would mistake for an acknowledged one).
    let done = || ctx.verifier.complete() && ctx.verifier.verdict(ctx.issued()).lost == 0;
    while !done() && progressed.elapsed() < CATCH_UP_MAX {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now = ctx.verifier.received();
        if now != received {
            received = now;
            progressed = Instant::now();
        }
    }
}

/// `e2e` and `mixed`: the consumer starts first, then the writers (a
/// warm-up pass, then the measured pass); when they are done the consumer
/// catches up, and every acknowledged record must have been read once.
pub async fn run_follow(ctx: &Arc<Ctx>) -> Result<Summary, BenchError> {
    let (stop_tx, stop) = watch::channel(false);
    let shared = Arc::new(ReadShared {
        measured: Arc::new(Measured::default()),
        count_from_ns: AtomicU64::new(u64::MAX),
        stop,
    });
    let (readers, consumer) = match ctx.plan.consumer {
        Consumer::Polling => {
            let iterators = take_iterators(ctx).await?;
            (spawn_pollers(ctx, &shared, iterators, Until::Stopped), None)
        }
        Consumer::Efo => {
            let (readers, consumer) = efo::spawn_subscribers(ctx, &shared).await?;
            (readers, Some(consumer))
        }
    };
    if let Some(spec) = PassSpec::warmup(ctx) {
        write::pass(ctx, spec, &Arc::new(Measured::default()), "warm-up").await;
    }
    shared
        .count_from_ns
        .store(ctx.ns_since_epoch(Instant::now()), Ordering::Relaxed);
    let cpu = stats::Cpu::now();
    let label = match ctx.plan.workload {
        Workload::Mixed => "mixed",
        _ => "e2e",
    };
    let measured = &shared.measured;
    let (elapsed, samples) = write::pass(ctx, PassSpec::measured(ctx), measured, label).await;
    catch_up(ctx).await;
    let _ = stop_tx.send(true); // readers hold the receiver until they end
    for reader in readers {
        let _ = reader.await; // a panicked reader's records count as lost
    }
    let cpu = cpu.elapsed();
    // A stream the bench deletes takes its consumer with it; on a reused
    // one the consumer would linger.
    if let Some(consumer) = consumer
        && ctx.plan.reuse_stream
    {
        control::deregister_consumer(&ctx.sdk, &ctx.stream, &consumer).await?;
    }
    let verdict = ctx.verifier.verdict(ctx.issued());
    Ok(Summary::build(
        ctx,
        measured,
        elapsed,
        cpu,
        samples,
        Some(verdict),
    ))
}
