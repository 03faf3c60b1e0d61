//! `riffle firehose create|list|describe|delete|put`: delivery streams to
//! S3, managed and fed through the official Firehose SDK, with the same
//! endpoint flags, credentials and error words as `riffle stream`.

use std::io::{BufRead, Write};
use std::time::Duration;

use aws_sdk_firehose::Client;
use aws_sdk_firehose::config::{BehaviorVersion, Region};
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{
    BufferingHints, CompressionFormat, DeliveryStreamDescription, DeliveryStreamStatus,
    DeliveryStreamType, ExtendedS3DestinationConfiguration, KinesisStreamSourceConfiguration,
    Record,
};
use clap::{Args, Subcommand};

use crate::{CliError, Endpoint, poll_status};

/// PutRecordBatch takes at most this many records per call
/// (API_PutRecordBatch).
const PUT_RECORD_BATCH_MAX: usize = 500;
/// How long `create` and `delete` wait for the status to settle; AWS takes
/// a minute or more to make a delivery stream ACTIVE, Riffle less.
const STATUS_WAIT_MAX: Duration = Duration::from_secs(300);
/// The account in the placeholder role when no source stream names one
/// (Riffle's default account).
const DEFAULT_ACCOUNT: &str = "000000000000";

/// `riffle firehose …`
#[derive(Debug, Args)]
pub struct FirehoseArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    #[command(subcommand)]
    pub command: FirehoseCommand,
}

#[derive(Debug, Subcommand)]
pub enum FirehoseCommand {
    /// Create a delivery stream to an S3 bucket and wait until it is ACTIVE
    Create(CreateArgs),
    /// List the delivery streams' names, one per line
    List,
    /// Show a delivery stream's source, destination and buffering
    Describe { name: String },
    /// Delete a delivery stream and wait until it is gone
    Delete { name: String },
    /// Put records: the arguments as given, or each line of stdin with its
    /// newline (Firehose adds no delimiter between records)
    Put { name: String, records: Vec<String> },
}

/// `riffle firehose create`
#[derive(Debug, Args)]
pub struct CreateArgs {
    pub name: String,
    /// The destination bucket (its name)
    #[arg(long)]
    pub bucket: String,
    /// The objects' key prefix (Firehose's default: YYYY/MM/dd/HH/)
    #[arg(long)]
    pub prefix: Option<String>,
    /// UNCOMPRESSED, GZIP, ZIP, Snappy or HADOOP_SNAPPY
    #[arg(long)]
    pub compression: Option<String>,
    /// Deliver at least this often (BufferingHints.IntervalInSeconds)
    #[arg(long)]
    pub interval_seconds: Option<i32>,
    /// Deliver once this much is buffered (BufferingHints.SizeInMBs)
    #[arg(long)]
    pub size_mb: Option<i32>,
    /// Read this Kinesis data stream (KinesisStreamAsSource) instead of
    /// taking PutRecord calls (DirectPut)
    #[arg(long)]
    pub source_stream: Option<String>,
}

/// Runs `riffle firehose …`.
pub fn firehose(args: FirehoseArgs) -> std::process::ExitCode {
    crate::run(async move {
        let client = client(&args.endpoint);
        match args.command {
            FirehoseCommand::Create(create) => {
                create_delivery_stream(&client, &args.endpoint, &create).await
            }
            FirehoseCommand::List => list(&client).await,
            FirehoseCommand::Describe { name } => describe(&client, &name).await,
            FirehoseCommand::Delete { name } => delete(&client, &name).await,
            FirehoseCommand::Put { name, records } => put(&client, &name, records).await,
        }
    })
}

fn client(endpoint: &Endpoint) -> Client {
    let signing = riffle_bench::Signing::from_env(&endpoint.region);
    let config = aws_sdk_firehose::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(signing.region))
        .credentials_provider(signing.credentials)
        .endpoint_url(&endpoint.endpoint)
        .build();
    Client::from_conf(config)
}

fn build_error(err: impl std::fmt::Display) -> CliError {
    CliError::Other(err.to_string())
}

async fn create_delivery_stream(
    client: &Client,
    endpoint: &Endpoint,
    args: &CreateArgs,
) -> Result<(), CliError> {
    let source_arn = match &args.source_stream {
        Some(stream) => Some(crate::summary(&endpoint.client(), stream).await?.stream_arn),
        None => None,
    };
    // The stream's ARN names the account; its fourth field.
    let account = source_arn
        .as_deref()
        .and_then(|arn| arn.split(':').nth(4))
        .unwrap_or(DEFAULT_ACCOUNT);
    let role = format!("arn:aws:iam::{account}:role/firehose");
    let hints = BufferingHints::builder()
        .set_interval_in_seconds(args.interval_seconds)
        .set_size_in_mbs(args.size_mb)
        .build();
    let destination = ExtendedS3DestinationConfiguration::builder()
        .role_arn(&role)
        .bucket_arn(format!("arn:aws:s3:::{}", args.bucket))
        .set_prefix(args.prefix.clone())
        .set_compression_format(args.compression.as_deref().map(CompressionFormat::from))
        .buffering_hints(hints)
        .build()
        .map_err(build_error)?;
    let mut request = client
        .create_delivery_stream()
        .delivery_stream_name(&args.name)
        .extended_s3_destination_configuration(destination);
    request = match source_arn {
        Some(arn) => request
            .delivery_stream_type(DeliveryStreamType::KinesisStreamAsSource)
            .kinesis_stream_source_configuration(
                KinesisStreamSourceConfiguration::builder()
                    .kinesis_stream_arn(arn)
                    .role_arn(&role)
                    .build()
                    .map_err(build_error)?,
            ),
        None => request.delivery_stream_type(DeliveryStreamType::DirectPut),
    };
    request.send().await?;
    wait_for(client, &args.name, |status| {
        status == Some(DeliveryStreamStatus::Active)
    })
    .await?;
    println!("{}", args.name);
    Ok(())
}

/// Every name, page by page: ListDeliveryStreams pages by the last name.
async fn list(client: &Client) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let mut after: Option<String> = None;
    loop {
        let page = client
            .list_delivery_streams()
            .set_exclusive_start_delivery_stream_name(after.take())
            .send()
            .await?;
        for name in &page.delivery_stream_names {
            let _ = writeln!(out, "{name}");
        }
        match page.delivery_stream_names.last() {
            Some(last) if page.has_more_delivery_streams => after = Some(last.clone()),
            _ => return Ok(()),
        }
    }
}

async fn description(client: &Client, name: &str) -> Result<DeliveryStreamDescription, CliError> {
    client
        .describe_delivery_stream()
        .delivery_stream_name(name)
        .send()
        .await?
        .delivery_stream_description
        .ok_or_else(|| CliError::Other("DescribeDeliveryStream answered no description".into()))
}

async fn describe(client: &Client, name: &str) -> Result<(), CliError> {
    print!("{}", summary_text(&description(client, name).await?));
    Ok(())
}

/// The readable summary `describe` prints: one `key: value` line each.
fn summary_text(d: &DeliveryStreamDescription) -> String {
    let source = d
        .source
        .as_ref()
        .and_then(|s| s.kinesis_stream_source_description.as_ref())
        .and_then(|k| k.kinesis_stream_arn.as_deref())
        .unwrap_or("DirectPut");
    let mut out = format!(
        "name:        {}\narn:         {}\nstatus:      {}\ntype:        {}\nsource:      {source}\n",
        d.delivery_stream_name,
        d.delivery_stream_arn,
        d.delivery_stream_status.as_str(),
        d.delivery_stream_type.as_str(),
    );
    for destination in &d.destinations {
        let Some(s3) = &destination.extended_s3_destination_description else {
            out.push_str(&format!(
                "destination: {} (not S3)\n",
                destination.destination_id
            ));
            continue;
        };
        let hints = s3.buffering_hints.as_ref();
        out.push_str(&format!(
            "destination: {}\nbucket:      {}\nprefix:      {}\ncompression: {}\nbuffering:   {} s, {} MB\n",
            destination.destination_id,
            s3.bucket_arn,
            s3.prefix.as_deref().unwrap_or(""),
            s3.compression_format.as_str(),
            hints
                .and_then(|h| h.interval_in_seconds)
                .map_or("-".to_owned(), |v| v.to_string()),
            hints
                .and_then(|h| h.size_in_mbs)
                .map_or("-".to_owned(), |v| v.to_string()),
        ));
    }
    out
}

async fn delete(client: &Client, name: &str) -> Result<(), CliError> {
    client
        .delete_delivery_stream()
        .delivery_stream_name(name)
        .send()
        .await?;
    wait_for(client, name, |status| status.is_none()).await
}

/// Polls the delivery stream's status (`None` once it is gone) until `done`.
async fn wait_for(
    client: &Client,
    name: &str,
    done: impl Fn(Option<DeliveryStreamStatus>) -> bool,
) -> Result<(), CliError> {
    let status = || async {
        description(client, name)
            .await
            .map(|d| d.delivery_stream_status)
    };
    let what = format!("delivery stream {name}");
    poll_status(&what, STATUS_WAIT_MAX, status, done, |s| {
        s.as_str().to_owned()
    })
    .await
}

/// The records: the arguments as given, else stdin's lines, each keeping
/// its newline (one added to a last line without) so that the delivered
/// objects hold one record per line.
fn records_of(args: Vec<String>) -> Result<Vec<Vec<u8>>, CliError> {
    if !args.is_empty() {
        return Ok(args.into_iter().map(String::into_bytes).collect());
    }
    let mut records = Vec::new();
    let mut stdin = std::io::stdin().lock();
    loop {
        let mut line = Vec::new();
        let read = stdin
            .read_until(b'\n', &mut line)
            .map_err(|e| CliError::Other(format!("cannot read stdin: {e}")))?;
        if read == 0 {
            return Ok(records);
        }
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        records.push(line);
    }
}

async fn put(client: &Client, name: &str, args: Vec<String>) -> Result<(), CliError> {
    let records = records_of(args)?;
    let mut out = std::io::stdout().lock();
    let (mut written, mut failed) = (0, 0);
    for batch in records.chunks(PUT_RECORD_BATCH_MAX) {
        let entries = batch
            .iter()
            .map(|data| Record::builder().data(Blob::new(data.clone())).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(build_error)?;
        let answer = client
            .put_record_batch()
            .delivery_stream_name(name)
            .set_records(Some(entries))
            .send()
            .await?;
        for result in answer.request_responses {
            match (result.record_id, result.error_code) {
                (Some(_), None) => written += 1,
                (_, code) => {
                    failed += 1;
                    let _ = writeln!(
                        out,
                        "failed {}: {}",
                        code.unwrap_or_default(),
                        result.error_message.unwrap_or_default()
                    );
                }
            }
        }
    }
    let _ = writeln!(out, "{written} records put");
    if failed > 0 {
        return Err(CliError::Other(format!(
            "{failed} of {} records were not written",
            records.len()
        )));
    }
    Ok(())
}
