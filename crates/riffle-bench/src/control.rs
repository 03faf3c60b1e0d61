//! Control-plane calls through the official AWS SDK: creating, waiting for
//! and deleting the bench's stream, listing its shards, registering an
//! enhanced fan-out consumer. None of these are on the measured path, so
//! the SDK's cost does not matter and its behaviour is the reference.

use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::{BehaviorVersion, Region};
use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::types::{ConsumerStatus, StreamStatus};

use crate::client::{Signing, error_chain};
use crate::error::BenchError;

/// How long a stream or consumer may take to become ACTIVE (AWS takes tens
/// of seconds; local endpoints a moment).
const ACTIVE_WAIT_MAX: Duration = Duration::from_secs(120);
/// Between two status polls.
const STATUS_POLL: Duration = Duration::from_millis(20);
/// How long the reachability probe waits for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// An SDK client for the endpoint, signed like the lean client.
pub fn sdk_client(endpoint: &str, signing: &Signing) -> Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(signing.region.clone()))
        .credentials_provider(signing.credentials.clone())
        .endpoint_url(endpoint)
        .build();
    Client::from_conf(config)
}

/// Fails fast, with the OS's reason, when nothing listens at the endpoint
/// (the SDK would retry with back-off first).
pub async fn probe(endpoint: &str, uri: &http::Uri) -> Result<(), BenchError> {
    let host = uri.host().unwrap_or_default();
    let default_port = if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    let port = uri.port_u16().unwrap_or(default_port);
    let unreachable = |source| BenchError::Unreachable {
        endpoint: endpoint.to_owned(),
        source,
    };
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(unreachable(err)),
        Err(_) => Err(unreachable(timed_out())),
    }
}

pub(crate) fn failed<E, R>(action: &'static str, stream: &str, err: &SdkError<E, R>) -> BenchError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = match err.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or_default()
        ),
        None => error_chain(err),
    };
    BenchError::ControlPlane {
        action,
        stream: stream.to_owned(),
        message,
    }
}

/// The stream a run uses.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub name: String,
    pub arn: String,
    /// Open shards, in ListShards order.
    pub shards: Vec<String>,
}

/// Creates the stream (or finds it, with `reuse`) and waits until it is
/// ACTIVE.
pub async fn prepare_stream(
    client: &Client,
    name: &str,
    shards: u32,
    reuse: bool,
) -> Result<StreamInfo, BenchError> {
    let created = client
        .create_stream()
        .stream_name(name)
        .shard_count(i32::try_from(shards).unwrap_or(i32::MAX))
        .send()
        .await;
    if let Err(err) = created {
        let in_use = err
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception());
        match (in_use, reuse) {
            (true, true) => {}
            (true, false) => {
                return Err(BenchError::StreamExists {
                    stream: name.to_owned(),
                });
            }
            _ => return Err(failed("CreateStream", name, &err)),
        }
    }
    let arn = wait_stream_active(client, name).await?;
    let shards = list_shards(client, name).await?;
    Ok(StreamInfo {
        name: name.to_owned(),
        arn,
        shards,
    })
}

async fn wait_stream_active(client: &Client, name: &str) -> Result<String, BenchError> {
    let started = Instant::now();
    loop {
        let summary = client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map_err(|e| failed("DescribeStreamSummary", name, &e))?;
        if let Some(d) = summary.stream_description_summary()
            && d.stream_status() == &StreamStatus::Active
        {
            return Ok(d.stream_arn().to_owned());
        }
        if started.elapsed() > ACTIVE_WAIT_MAX {
            return Err(BenchError::NotActive {
                stream: name.to_owned(),
                waited: ACTIVE_WAIT_MAX,
            });
        }
        tokio::time::sleep(STATUS_POLL).await;
    }
}

/// The open shards of the stream (closed parents of a reused, resharded
/// stream hold no new records).
async fn list_shards(client: &Client, name: &str) -> Result<Vec<String>, BenchError> {
    let mut shards = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let request = match &next {
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_name(name),
        };
        let page = request
            .send()
            .await
            .map_err(|e| failed("ListShards", name, &e))?;
        for shard in page.shards() {
            let open = shard
                .sequence_number_range()
                .is_none_or(|r| r.ending_sequence_number().is_none());
            if open {
                shards.push(shard.shard_id().to_owned());
            }
        }
        next = page.next_token().map(str::to_owned);
        if next.is_none() {
            return Ok(shards);
        }
    }
}

/// Deletes the stream and its consumers.
pub async fn delete_stream(client: &Client, name: &str) -> Result<(), BenchError> {
    client
        .delete_stream()
        .stream_name(name)
        .enforce_consumer_deletion(true)
        .send()
        .await
        .map_err(|e| failed("DeleteStream", name, &e))?;
    Ok(())
}

/// Registers an enhanced fan-out consumer and waits until it is ACTIVE;
/// returns its ARN.
pub async fn register_consumer(
    client: &Client,
    stream: &StreamInfo,
    consumer: &str,
) -> Result<String, BenchError> {
    let registered = client
        .register_stream_consumer()
        .stream_arn(&stream.arn)
        .consumer_name(consumer)
        .send()
        .await
        .map_err(|e| failed("RegisterStreamConsumer", &stream.name, &e))?;
    let arn = registered
        .consumer()
        .map(|c| c.consumer_arn().to_owned())
        .unwrap_or_default();
    let started = Instant::now();
    loop {
        let described = client
            .describe_stream_consumer()
            .consumer_arn(&arn)
            .send()
            .await
            .map_err(|e| failed("DescribeStreamConsumer", &stream.name, &e))?;
        if described
            .consumer_description()
            .is_some_and(|c| c.consumer_status() == &ConsumerStatus::Active)
        {
            return Ok(arn);
        }
        if started.elapsed() > ACTIVE_WAIT_MAX {
            return Err(BenchError::NotActive {
                stream: format!("{} (consumer {consumer})", stream.name),
                waited: ACTIVE_WAIT_MAX,
            });
        }
        tokio::time::sleep(STATUS_POLL).await;
    }
}

/// Deregisters an enhanced fan-out consumer.
pub async fn deregister_consumer(
    client: &Client,
    stream: &StreamInfo,
    consumer_arn: &str,
) -> Result<(), BenchError> {
    client
        .deregister_stream_consumer()
        .consumer_arn(consumer_arn)
        .send()
        .await
        .map_err(|e| failed("DeregisterStreamConsumer", &stream.name, &e))?;
    Ok(())
}
