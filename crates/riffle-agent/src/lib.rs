//! `riffle agent --config agent.json`: the Amazon Kinesis Agent, reading
//! its own agent.json unchanged, tailing log files through rotation into a
//! Kinesis stream (PutRecords) or a Firehose delivery stream
//! (PutRecordBatch), against Riffle or AWS, at least once: positions are
//! checkpointed only after the records before them were acknowledged.

mod checkpoint;
mod config;
mod error;
mod flow;
mod metrics;
mod processing;
mod send;
mod tail;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use clap::Args;

pub use crate::checkpoint::FileCheckpoint;
pub use crate::config::{AgentConfig, DEFAULT_CHECKPOINT_FILE, Destination, FlowConfig};
pub use crate::error::AgentError;

use crate::flow::{Book, Flow};
use crate::metrics::SendMetrics;
use crate::send::{Sink, Stats, Target};

/// The region when neither the endpoints nor the environment name one.
const DEFAULT_REGION: &str = "us-east-1";
/// Exit status of a configuration that is refused, and of a failure.
const EXIT_CONFIG: u8 = 2;
const EXIT_FAILURE: u8 = 1;

/// `riffle agent`
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent's configuration, in the Kinesis Agent's own agent.json format
    #[arg(long, short = 'c', default_value = "/etc/aws-kinesis/agent.json")]
    pub config: PathBuf,
}

/// Runs the agent until SIGINT or SIGTERM; `init_logging` is given the
/// level agent.json's `log.level` asks for.
pub fn main(args: AgentArgs, init_logging: impl FnOnce(&str)) -> ExitCode {
    init_logging(&log_level(&args.config));
    let config = match AgentConfig::load(&args.config) {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn fail(err: &AgentError) -> ExitCode {
    eprintln!("error: {err}");
    ExitCode::from(if err.is_config() {
        EXIT_CONFIG
    } else {
        EXIT_FAILURE
    })
}

/// `log.level` (the agent's TRACE … ERROR) as a tracing filter; `info` when
/// absent or unreadable (the full read reports why).
fn log_level(path: &std::path::Path) -> String {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .and_then(|json| json.get("log.level")?.as_str().map(str::to_ascii_lowercase))
        .filter(|level| ["trace", "debug", "info", "warn", "error"].contains(&level.as_str()))
        .unwrap_or_else(|| "info".to_owned())
}

/// Runs every flow until a signal asks to stop, then checkpoints.
pub async fn run(config: AgentConfig) -> Result<(), AgentError> {
    let started = Instant::now();
    let loaded = checkpoint::load(&config.checkpoint_file)?;
    // Writable now, rather than after the first records went out.
    let book = Arc::new(Book::new(config.checkpoint_file.clone(), loaded));
    book.write()?;
    let stats = Arc::new(Stats::default());
    let clients = Clients::new(&config).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut flows = tokio::task::JoinSet::new();
    let mut destinations = Vec::new();
    for flow in &config.flows {
        let sink = clients.sink(flow);
        destinations.push(Arc::clone(&sink.metrics));
        tracing::info!(
            "flow {}: tailing {}",
            flow.id(),
            flow.file_pattern.display()
        );
        let flow = Flow::new(flow.clone(), sink, Arc::clone(&stats), Arc::clone(&book));
        flows.spawn(flow.run(stopped.clone()));
    }
    let writer = tokio::spawn(Arc::clone(&book).writer());
    let progress = tokio::spawn(progress(
        Arc::clone(&stats),
        started,
        config.progress_interval,
    ));
    let metrics = clients.cloudwatch.clone().map(|client| {
        tokio::spawn(metrics::emit(
            client,
            config.metrics_namespace.clone(),
            config.metrics_interval,
            destinations,
        ))
    });
    shutdown_signal().await;
    tracing::info!("stopping: sending what is buffered");
    let _ = stop.send(true); // the flows hold receivers until they end
    let drained = async { while flows.join_next().await.is_some() {} };
    if tokio::time::timeout(config.shutdown_timeout, drained)
        .await
        .is_err()
    {
        // Their positions stay where the acknowledgements left them: the
        // next run sends the rest again.
        tracing::warn!(
            "records still unacknowledged after shutdownTimeoutMillis; they are sent again on the next start"
        );
        flows.abort_all();
    }
    writer.abort();
    progress.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    report(&stats, started);
    book.write()
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await; // no handler: run until killed
        }
    }
}

async fn progress(stats: Arc<Stats>, started: Instant, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        report(&stats, started);
    }
}

/// The agent's progress line, with Riffle's failure counts.
fn report(stats: &Stats, started: Instant) {
    let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    tracing::info!(
        "Progress: {} records parsed ({} bytes), and {} records sent successfully to destinations. \
         {} records skipped, {} record failures and {} failed calls retried. Uptime: {}ms",
        get(&stats.parsed_records),
        get(&stats.parsed_bytes),
        get(&stats.sent_records),
        get(&stats.skipped_records),
        get(&stats.failed_records),
        get(&stats.failed_calls),
        started.elapsed().as_millis()
    );
}

/// The SDK clients of the run.
struct Clients {
    kinesis: aws_sdk_kinesis::Client,
    firehose: aws_sdk_firehose::Client,
    /// When metrics are to be put: to `cloudwatch.endpoint`, or to AWS's
    /// when the flows go to AWS too (never to AWS for a local endpoint's).
    cloudwatch: Option<aws_sdk_cloudwatch::Client>,
}

impl Clients {
    async fn new(config: &AgentConfig) -> Clients {
        let region = [&config.kinesis_endpoint, &config.firehose_endpoint]
            .into_iter()
            .flatten()
            .find_map(|endpoint| region_of(endpoint));
        let region = RegionProviderChain::first_try(region.map(aws_config::Region::new))
            .or_default_provider()
            .or_else(DEFAULT_REGION);
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
        if let Some((key, secret)) = &config.credentials {
            loader = loader.credentials_provider(aws_sdk_kinesis::config::Credentials::new(
                key,
                secret,
                None,
                None,
                "agent.json",
            ));
        }
        let shared = loader.load().await;
        let mut kinesis = aws_sdk_kinesis::config::Builder::from(&shared);
        if let Some(endpoint) = &config.kinesis_endpoint {
            kinesis = kinesis.endpoint_url(endpoint);
        }
        let mut firehose = aws_sdk_firehose::config::Builder::from(&shared);
        if let Some(endpoint) = &config.firehose_endpoint {
            firehose = firehose.endpoint_url(endpoint);
        }
        let to_aws = [&config.kinesis_endpoint, &config.firehose_endpoint]
            .into_iter()
            .flatten()
            .all(|endpoint| region_of(endpoint).is_some());
        let cloudwatch = match &config.cloudwatch_endpoint {
            _ if !config.emit_metrics => None,
            Some(endpoint) => {
                Some(aws_sdk_cloudwatch::config::Builder::from(&shared).endpoint_url(endpoint))
            }
            None if to_aws => Some(aws_sdk_cloudwatch::config::Builder::from(&shared)),
            None => None,
        };
        Clients {
            kinesis: aws_sdk_kinesis::Client::from_conf(kinesis.build()),
            firehose: aws_sdk_firehose::Client::from_conf(firehose.build()),
            cloudwatch: cloudwatch.map(|c| aws_sdk_cloudwatch::Client::from_conf(c.build())),
        }
    }

    fn sink(&self, flow: &FlowConfig) -> Sink {
        let (target, destination) = match &flow.destination {
            Destination::Kinesis(stream) => (
                Target::Kinesis {
                    client: self.kinesis.clone(),
                    stream: stream.clone(),
                    partition_key: flow.partition_key,
                },
                format!("KinesisStream:{stream}"),
            ),
            Destination::Firehose(stream) => (
                Target::Firehose {
                    client: self.firehose.clone(),
                    stream: stream.clone(),
                },
                format!("DeliveryStream:{stream}"),
            ),
        };
        Sink {
            target,
            metrics: Arc::new(SendMetrics::new(destination)),
        }
    }
}

/// The region in an AWS endpoint's host (`kinesis.us-west-2.amazonaws.com`).
fn region_of(endpoint: &str) -> Option<String> {
    let host = endpoint.split("://").nth(1).unwrap_or(endpoint);
    let host = host.split(['/', ':']).next()?;
    let mut labels = host.split('.');
    let service = labels.next()?;
    let region = labels.next()?;
    let rest: Vec<&str> = labels.collect();
    let aws = rest.first() == Some(&"amazonaws");
    (aws && matches!(service, "kinesis" | "firehose")).then(|| region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_an_aws_endpoint() {
        assert_eq!(
            region_of("https://kinesis.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of("http://127.0.0.1:4567"), None);
    }
}
