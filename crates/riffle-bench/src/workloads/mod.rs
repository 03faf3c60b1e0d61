//! The workloads: what is written and read, and how each run is put
//! together from write passes (`write`), shard readers (`read`), the
//! enhanced fan-out consumer (`efo`) and Firehose's read-back of delivered
//! objects (`firehose`).

mod efo;
pub mod firehose;
mod get;
mod kpl;
mod read;
mod write;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::args::{Plan, Workload};
use crate::client::{FIREHOSE, KINESIS, LeanClient, Signing, parse_endpoint};
use crate::control::{self, StreamInfo};
use crate::error::BenchError;
use crate::payload::{PayloadMaker, Verifier};
use crate::report::Summary;
use crate::stats::Measured;

/// Everything the tasks of one run share.
pub struct Ctx {
    pub plan: Plan,
    pub client: LeanClient,
    pub sdk: aws_sdk_kinesis::Client,
    pub stream: StreamInfo,
    pub maker: PayloadMaker,
    /// The partition keys, made once (`pk-0`, `pk-1`, …).
    pub keys: Vec<String>,
    /// The run's zero: payloads carry their send time relative to it.
    pub epoch: Instant,
    /// Checks what is read back; every written record is acknowledged to it.
    pub verifier: Verifier,
    /// The next record id to hand out (ids continue across passes).
    pub next_id: AtomicU64,
    /// The first failure of a request, to show the user why errors happened.
    pub first_error: Mutex<Option<String>>,
    /// When the first write was acknowledged, in ns since `epoch`
    /// (`u64::MAX` until then): where delivered throughput starts.
    pub first_ack_ns: AtomicU64,
}

impl Ctx {
    /// A run's context, its zero now.
    fn new(
        plan: &Plan,
        client: LeanClient,
        sdk: aws_sdk_kinesis::Client,
        stream: StreamInfo,
    ) -> Ctx {
        let run = run_id();
        Ctx {
            plan: plan.clone(),
            client,
            sdk,
            stream,
            maker: PayloadMaker::new(run, plan.record_size),
            keys: (0..plan.keys).map(|i| format!("pk-{i}")).collect(),
            epoch: Instant::now(),
            verifier: Verifier::new(run),
            next_id: AtomicU64::new(0),
            first_error: Mutex::new(None),
            first_ack_ns: AtomicU64::new(u64::MAX),
        }
    }

    /// Nanoseconds from the run's zero to `at`.
    pub fn ns_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Time since a payload's send stamp.
    pub fn since_sent(&self, sent_ns: u64) -> Duration {
        Duration::from_nanos(self.ns_since_epoch(Instant::now()).saturating_sub(sent_ns))
    }

    /// Record `id`'s partition key: a hash of the id picks one, so batches
    /// and shards are not correlated with the key order.
    pub fn key(&self, id: u64) -> &str {
        let spread = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        &self.keys[(spread % self.keys.len() as u64) as usize]
    }

    pub fn note_error(&self, message: impl FnOnce() -> String) {
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        if first.is_none() {
            *first = Some(message());
        }
    }

    pub fn issued(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed)
    }
}

/// A run id that differs between runs, so a reused stream's old records are
/// recognised as foreign rather than as duplicates.
fn run_id() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32).rotate_left(16))
        .unwrap_or_default();
    nanos ^ std::process::id().rotate_left(8)
}

/// Connects, prepares the stream, runs the workload, deletes the stream.
pub async fn run(plan: &Plan) -> Result<Summary, BenchError> {
    // Installed before the stream exists, so that a Ctrl-C at any point
    // after its creation still deletes it (an uninstalled SIGINT kills).
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|source| BenchError::Runtime { source })?;
    let uri = parse_endpoint(&plan.endpoint)?;
    control::probe(&plan.endpoint, &uri).await?;
    let signing = Signing::from_env(&plan.region);
    let sdk = control::sdk_client(&plan.endpoint, &signing);
    if let Some(settings) = &plan.firehose {
        // Ctrl-C stops the run; the delivery stream and bucket stay.
        return tokio::select! {
            result = run_firehose(plan, settings, &signing, sdk) => result,
            _ = interrupt.recv() => Err(BenchError::Interrupted),
        };
    }
    let client = LeanClient::new(
        &plan.endpoint,
        &signing,
        plan.concurrency.max(plan.shards as usize),
        plan.http2,
        KINESIS,
    )?;
    let stream =
        control::prepare_stream(&sdk, &plan.stream, plan.shards, plan.reuse_stream).await?;
    let ctx = Arc::new(Ctx::new(plan, client, sdk, stream));
    let workload = async {
        match plan.workload {
            Workload::Put | Workload::PutBatch => write::run(&ctx).await,
            Workload::Get => get::run(&ctx).await,
            Workload::E2e | Workload::Mixed => read::run_follow(&ctx).await,
            Workload::Kpl => kpl::run(&ctx).await,
            // Handled above: it has no Kinesis stream.
            Workload::Firehose => Err(BenchError::Usage {
                flag: "workload",
                reason: "firehose runs without a stream".to_owned(),
            }),
        }
    };
    // Ctrl-C still deletes the stream the bench created.
    let result = tokio::select! {
        result = workload => result,
        _ = interrupt.recv() => Err(BenchError::Interrupted),
    };
    if !plan.reuse_stream {
        let deleted = control::delete_stream(&ctx.sdk, &ctx.stream.name).await;
        if result.is_ok() {
            deleted?;
        }
    }
    result
}

/// The `firehose` workload: no Kinesis stream; the lean client signs for
/// Firehose and the control plane is Firehose's and S3's.
async fn run_firehose(
    plan: &Plan,
    settings: &crate::args::FirehosePlan,
    signing: &Signing,
    sdk: aws_sdk_kinesis::Client,
) -> Result<Summary, BenchError> {
    let client = LeanClient::new(
        &plan.endpoint,
        signing,
        plan.concurrency,
        plan.http2,
        FIREHOSE,
    )?;
    let stream = StreamInfo {
        name: plan.stream.clone(),
        arn: String::new(),
        shards: Vec::new(),
    };
    let ctx = Arc::new(Ctx::new(plan, client, sdk, stream));
    let clients = crate::delivery::Clients::new(&plan.endpoint, signing);
    firehose::run(&ctx, settings, &clients).await
}

/// Runs `work` while sampling `measured` once a second (the progress line
/// and the time series); returns its output, the wall time and the samples.
pub async fn with_progress<F: std::future::Future>(
    ctx: &Ctx,
    label: &str,
    measured: &Measured,
    work: F,
) -> (F::Output, Duration, Vec<crate::stats::Sample>) {
    let started = Instant::now();
    let mut sampler = crate::stats::Sampler::new(label, measured, ctx.plan.progress);
    let second = Duration::from_secs(1);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + second, second);
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return (out, started.elapsed(), sampler.samples),
            _ = ticker.tick() => sampler.tick(measured),
        }
    }
}
