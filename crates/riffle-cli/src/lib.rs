//! `riffle stream create|list|describe|delete`, `riffle put`, `riffle
//! tail` and `riffle firehose …`: the everyday client commands, against
//! Riffle or any Kinesis endpoint, through the official AWS SDK.
//!
//! Every command takes `--endpoint` (default the local Riffle) and
//! `--region`; credentials come from `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY` when set, else dummy ones that a local server
//! accepts. Results go to stdout, one line per item, so they pipe; errors
//! go to stderr in AWS's words (`Code: message`) and exit with status 1.

mod firehose;
mod group;
mod tail;

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, Shard, ShardFilter, StreamDescriptionSummary, StreamMode,
    StreamModeDetails, StreamStatus,
};
use clap::{Args, Subcommand};
use riffle_kpl::{ProduceError, Producer, ProducerConfig};

pub use crate::firehose::{CreateArgs, FirehoseArgs, FirehoseCommand, firehose};
pub use crate::tail::{Start, TailArgs};

/// PutRecords takes at most this many records per call (API_PutRecords).
const PUT_RECORDS_MAX: usize = 500;
/// How long `stream create` and `stream delete` wait for the status to
/// settle before giving up; AWS takes seconds, Riffle less.
const STATUS_WAIT_MAX: Duration = Duration::from_secs(120);
/// Pause between status checks.
const STATUS_POLL: Duration = Duration::from_millis(200);

/// Where the commands send their requests.
#[derive(Debug, Clone, Args)]
pub struct Endpoint {
    /// The Kinesis endpoint
    #[arg(
        long,
        env = "RIFFLE_ENDPOINT",
        default_value = "http://127.0.0.1:4567",
        global = true
    )]
    pub endpoint: String,
    /// The region requests are signed for
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1", global = true)]
    pub region: String,
}

impl Endpoint {
    fn client(&self) -> Client {
        riffle_bench::sdk_client(
            &self.endpoint,
            &riffle_bench::Signing::from_env(&self.region),
        )
    }
}

/// `riffle stream …`
#[derive(Debug, Args)]
pub struct StreamArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    #[command(subcommand)]
    pub command: StreamCommand,
}

#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// Create a stream and wait until it is ACTIVE
    Create {
        name: String,
        /// Provisioned shards
        #[arg(long, default_value_t = 1, conflicts_with = "on_demand")]
        shards: i32,
        /// On-demand capacity instead of provisioned shards
        #[arg(long)]
        on_demand: bool,
        /// Return once the stream is CREATING
        #[arg(long)]
        no_wait: bool,
    },
    /// List the streams' names, one per line
    List,
    /// Show a stream's summary and its shards
    Describe { name: String },
    /// Delete a stream and wait until it is gone
    Delete {
        name: String,
        /// Return once the stream is DELETING
        #[arg(long)]
        no_wait: bool,
    },
}

/// `riffle put`
#[derive(Debug, Args)]
pub struct PutArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    /// The stream to put into (its name)
    pub stream: String,
    /// The records' partition key [default: a random one per record]
    #[arg(long, short = 'k')]
    pub partition_key: Option<String>,
    /// Pack the records, per shard, into KPL aggregated records with the
    /// producer library (riffle-kpl); each line of output then names the
    /// user record's sequence/sub-sequence number
    #[arg(long)]
    pub aggregate: bool,
    /// The records' data; without any, each line of stdin is a record
    pub records: Vec<String>,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
enum CliError {
    /// An error the service answered, in AWS's words.
    #[error("{code}: {message}")]
    Service { code: String, message: String },
    /// The request did not get an answer (nothing listening, a timeout).
    #[error("{0}")]
    Transport(String),
    #[error("{0}")]
    Other(String),
}

impl<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug> From<SdkError<E, R>>
    for CliError
{
    fn from(err: SdkError<E, R>) -> CliError {
        match err.as_service_error() {
            Some(service) => CliError::Service {
                code: service.code().unwrap_or("UnknownError").to_owned(),
                message: service.message().unwrap_or_default().to_owned(),
            },
            None => CliError::Transport(DisplayErrorContext(&err).to_string()),
        }
    }
}

/// Runs `riffle stream …`.
pub fn stream(args: StreamArgs) -> ExitCode {
    run(async move {
        let client = args.endpoint.client();
        match args.command {
            StreamCommand::Create {
                name,
                shards,
                on_demand,
                no_wait,
            } => create(&client, &name, shards, on_demand, no_wait).await,
            StreamCommand::List => list(&client).await,
            StreamCommand::Describe { name } => describe(&client, &name).await,
            StreamCommand::Delete { name, no_wait } => delete(&client, &name, no_wait).await,
        }
    })
}

/// Runs `riffle put`.
pub fn put(args: PutArgs) -> ExitCode {
    run(async move { put_records(&args).await })
}

/// Runs `riffle tail`.
pub fn tail(args: TailArgs) -> ExitCode {
    run(async move { tail::follow(&args).await })
}

fn run(work: impl std::future::Future<Output = Result<(), CliError>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn create(
    client: &Client,
    name: &str,
    shards: i32,
    on_demand: bool,
    no_wait: bool,
) -> Result<(), CliError> {
    let mut request = client.create_stream().stream_name(name);
    request = if on_demand {
        request.stream_mode_details(
            StreamModeDetails::builder()
                .stream_mode(StreamMode::OnDemand)
                .build()
                .map_err(|e| CliError::Other(e.to_string()))?,
        )
    } else {
        request.shard_count(shards)
    };
    request.send().await?;
    if !no_wait {
        wait_for(client, name, |status| status == Some(StreamStatus::Active)).await?;
    }
    println!("{name}");
    Ok(())
}

async fn list(client: &Client) -> Result<(), CliError> {
    let mut pages = client.list_streams().into_paginator().send();
    let mut out = std::io::stdout().lock();
    while let Some(page) = pages.next().await {
        for name in page?.stream_names {
            let _ = writeln!(out, "{name}");
        }
    }
    Ok(())
}

async fn describe(client: &Client, name: &str) -> Result<(), CliError> {
    let summary = summary(client, name).await?;
    let mode = summary
        .stream_mode_details
        .as_ref()
        .map_or("PROVISIONED".to_owned(), |m| {
            m.stream_mode.as_str().to_owned()
        });
    let mut out = String::new();
    out.push_str(&format!(
        "name:       {}\narn:        {}\nstatus:     {}\nmode:       {mode}\nretention:  {} h\nencryption: {}\nconsumers:  {}\nshards:     {} open\n",
        summary.stream_name,
        summary.stream_arn,
        summary.stream_status.as_str(),
        summary.retention_period_hours,
        summary
            .encryption_type
            .as_ref()
            .map_or("NONE", |e| e.as_str()),
        summary.consumer_count.unwrap_or(0),
        summary.open_shard_count,
    ));
    {
        for shard in list_shards(client, name, None).await? {
            let range = shard.hash_key_range.as_ref();
            let open = shard
                .sequence_number_range
                .as_ref()
                .is_some_and(|r| r.ending_sequence_number.is_none());
            out.push_str(&format!(
                "  {}  {}..{}  {}\n",
                shard.shard_id,
                range.map_or("", |r| r.starting_hash_key.as_str()),
                range.map_or("", |r| r.ending_hash_key.as_str()),
                if open { "open" } else { "closed" }
            ));
        }
    }
    print!("{out}");
    Ok(())
}

/// Every shard ListShards names, page by page: the first page by stream
/// name (and filter), the next ones by token alone, as the API requires.
async fn list_shards(
    client: &Client,
    stream: &str,
    filter: Option<ShardFilter>,
) -> Result<Vec<Shard>, CliError> {
    let first = client
        .list_shards()
        .stream_name(stream)
        .set_shard_filter(filter)
        .send()
        .await?;
    let mut shards = first.shards.unwrap_or_default();
    let mut token = first.next_token;
    while let Some(next) = token {
        let page = client.list_shards().next_token(next).send().await?;
        shards.extend(page.shards.unwrap_or_default());
        token = page.next_token;
    }
    Ok(shards)
}

async fn delete(client: &Client, name: &str, no_wait: bool) -> Result<(), CliError> {
    client.delete_stream().stream_name(name).send().await?;
    if !no_wait {
        wait_for(client, name, |status| status.is_none()).await?;
    }
    Ok(())
}

async fn summary(client: &Client, name: &str) -> Result<StreamDescriptionSummary, CliError> {
    client
        .describe_stream_summary()
        .stream_name(name)
        .send()
        .await?
        .stream_description_summary
        .ok_or_else(|| CliError::Other("DescribeStreamSummary answered no summary".into()))
}

/// Polls the stream's status (`None` once it is gone) until `done`.
async fn wait_for(
    client: &Client,
    name: &str,
    done: impl Fn(Option<StreamStatus>) -> bool,
) -> Result<(), CliError> {
    let status = || async { summary(client, name).await.map(|s| s.stream_status) };
    poll_status(
        &format!("stream {name}"),
        STATUS_WAIT_MAX,
        status,
        done,
        |s| s.as_str().to_owned(),
    )
    .await
}

/// Polls a resource's status (`None` once it is gone, as the service's
/// ResourceNotFoundException says) until `done`, for at most `wait_max`.
pub(crate) async fn poll_status<S: Clone, Fut>(
    what: &str,
    wait_max: Duration,
    status: impl Fn() -> Fut,
    done: impl Fn(Option<S>) -> bool,
    label: impl Fn(&S) -> String,
) -> Result<(), CliError>
where
    Fut: std::future::Future<Output = Result<S, CliError>>,
{
    let deadline = tokio::time::Instant::now() + wait_max;
    loop {
        let status = match status().await {
            Ok(status) => Some(status),
            Err(CliError::Service { code, .. }) if code == "ResourceNotFoundException" => None,
            Err(err) => return Err(err),
        };
        if done(status.clone()) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(CliError::Other(format!(
                "{what} is still {} after {wait_max:?}",
                status.as_ref().map_or("present".to_owned(), &label)
            )));
        }
        tokio::time::sleep(STATUS_POLL).await;
    }
}

async fn put_records(args: &PutArgs) -> Result<(), CliError> {
    let client = args.endpoint.client();
    let records: Vec<Vec<u8>> = if args.records.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .map(|line| line.map(String::into_bytes))
            .collect::<Result<_, _>>()
            .map_err(|e| CliError::Other(format!("cannot read stdin: {e}")))?
    } else {
        args.records
            .iter()
            .map(|r| r.clone().into_bytes())
            .collect()
    };
    let key = |_: &Vec<u8>| {
        args.partition_key
            .clone()
            .unwrap_or_else(|| format!("{:032x}", fastrand::u128(..)))
    };
    if args.aggregate {
        return put_aggregated(args, client, &records, key).await;
    }
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for batch in records.chunks(PUT_RECORDS_MAX) {
        let entries = batch
            .iter()
            .map(|data| {
                PutRecordsRequestEntry::builder()
                    .partition_key(key(data))
                    .data(Blob::new(data.clone()))
                    .build()
                    .map_err(|e| CliError::Other(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let answer = client
            .put_records()
            .stream_name(&args.stream)
            .set_records(Some(entries))
            .send()
            .await?;
        for result in answer.records {
            match (result.shard_id, result.sequence_number) {
                (Some(shard), Some(seq)) => {
                    let _ = writeln!(out, "{shard} {seq}");
                }
                _ => {
                    failed += 1;
                    let _ = writeln!(
                        out,
                        "failed {}: {}",
                        result.error_code.unwrap_or_default(),
                        result.error_message.unwrap_or_default()
                    );
                }
            }
        }
    }
    if failed > 0 {
        return Err(CliError::Other(format!(
            "{failed} of {} records were not written",
            records.len()
        )));
    }
    Ok(())
}

/// `riffle put --aggregate`: every record through the KPL producer, then
/// one line per record in input order: `SHARD SEQUENCE[/SUB]`, the
/// sub-sequence number naming the record inside an aggregated record.
async fn put_aggregated(
    args: &PutArgs,
    client: Client,
    records: &[Vec<u8>],
    key: impl Fn(&Vec<u8>) -> String,
) -> Result<(), CliError> {
    let producer = Producer::new(client, &args.stream, ProducerConfig::default())
        .await
        .map_err(CliError::from)?;
    let pending: Vec<_> = records
        .iter()
        .map(|data| producer.put(&key(data), None, data))
        .collect();
    producer.flush();
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    for answer in pending {
        let _ = match answer.await {
            Ok(put) if put.aggregated => writeln!(
                out,
                "{} {}/{}",
                put.shard_id, put.sequence_number, put.sub_sequence_number
            ),
            Ok(put) => writeln!(out, "{} {}", put.shard_id, put.sequence_number),
            Err(err) => {
                failed += 1;
                writeln!(out, "failed {err}")
            }
        };
    }
    if failed > 0 {
        return Err(CliError::Other(format!(
            "{failed} of {} records were not written",
            records.len()
        )));
    }
    Ok(())
}

impl From<ProduceError> for CliError {
    fn from(err: ProduceError) -> CliError {
        match err {
            ProduceError::Rejected { code, message } => CliError::Service { code, message },
            other => CliError::Other(other.to_string()),
        }
    }
}
