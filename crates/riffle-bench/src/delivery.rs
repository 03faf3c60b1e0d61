//! The `firehose` workload's control plane, through the official Firehose
//! and S3 SDKs: the bucket, the DirectPut delivery stream into it, and the
//! objects it delivered (listed, read back, deleted). None of it is on the
//! measured write path.

use std::time::{Duration, Instant};

use aws_sdk_firehose::types::{
    BufferingHints, CompressionFormat, DeliveryStreamStatus, DeliveryStreamType,
    ExtendedS3DestinationConfiguration, ProcessingConfiguration, Processor, ProcessorParameter,
    ProcessorParameterName, ProcessorType,
};
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use bytes::Bytes;

use crate::args::FirehosePlan;
use crate::client::{Signing, error_chain};
use crate::control::failed;
use crate::error::BenchError;

/// How long a delivery stream may take to become ACTIVE (AWS: seconds to
/// minutes; local endpoints a moment).
const ACTIVE_WAIT_MAX: Duration = Duration::from_secs(300);
/// Between two status polls.
const STATUS_POLL: Duration = Duration::from_millis(50);
/// The role the destination names; local endpoints do not assume it.
const ROLE_ARN: &str = "arn:aws:iam::000000000000:role/riffle-bench";

/// The two SDK clients of a run, signed like the lean client.
pub struct Clients {
    pub firehose: aws_sdk_firehose::Client,
    pub s3: aws_sdk_s3::Client,
}

impl Clients {
    pub fn new(endpoint: &str, signing: &Signing) -> Clients {
        let region = aws_sdk_s3::config::Region::new(signing.region.clone());
        let firehose = aws_sdk_firehose::Config::builder()
            .behavior_version(aws_sdk_firehose::config::BehaviorVersion::latest())
            .region(region.clone())
            .credentials_provider(signing.credentials.clone())
            .endpoint_url(endpoint)
            .build();
        let s3 = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(region)
            .credentials_provider(signing.credentials.clone())
            .endpoint_url(endpoint)
            // Local S3s serve buckets by path, not by host name.
            .force_path_style(true)
            // Plain bodies, no aws-chunked trailers: every S3-compatible
            // server reads them.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Clients {
            firehose: aws_sdk_firehose::Client::from_conf(firehose),
            s3: aws_sdk_s3::Client::from_conf(s3),
        }
    }
}

/// Creates the bucket unless it exists; returns whether this run created it.
pub async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<bool, BenchError> {
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(err)
            if err.as_service_error().is_some_and(|e| {
                e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
            }) =>
        {
            Ok(false)
        }
        Err(err) => Err(failed("CreateBucket", bucket, &err)),
    }
}

/// Creates the DirectPut delivery stream into `plan.bucket` under `prefix`
/// and waits until it is ACTIVE.
pub async fn create_delivery_stream(
    firehose: &aws_sdk_firehose::Client,
    name: &str,
    plan: &FirehosePlan,
    prefix: &str,
) -> Result<(), BenchError> {
    let hints = BufferingHints::builder()
        .size_in_mbs(i32::try_from(plan.buffer_size_mb).unwrap_or(i32::MAX))
        .interval_in_seconds(i32::try_from(plan.buffer_interval).unwrap_or(i32::MAX))
        .build();
    let destination = ExtendedS3DestinationConfiguration::builder()
        .role_arn(ROLE_ARN)
        .bucket_arn(format!("arn:aws:s3:::{}", plan.bucket))
        .prefix(prefix)
        .buffering_hints(hints)
        .compression_format(CompressionFormat::from(plan.compression.as_str()))
        .set_processing_configuration(plan.transform_function.as_deref().map(processing))
        .build()
        .map_err(|e| BenchError::ControlPlane {
            action: "CreateDeliveryStream",
            stream: name.to_owned(),
            message: e.to_string(),
        })?;
    firehose
        .create_delivery_stream()
        .delivery_stream_name(name)
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(destination)
        .send()
        .await
        .map_err(|e| failed("CreateDeliveryStream", name, &e))?;
    wait_active(firehose, name).await
}

/// A Lambda processor calling `arn`, with AWS's defaults otherwise.
fn processing(arn: &str) -> ProcessingConfiguration {
    let parameter = ProcessorParameter::builder()
        .parameter_name(ProcessorParameterName::LambdaArn)
        .parameter_value(arn)
        .build();
    let processor = Processor::builder()
        .r#type(ProcessorType::Lambda)
        .set_parameters(parameter.ok().map(|p| vec![p]))
        .build();
    ProcessingConfiguration::builder()
        .enabled(true)
        .set_processors(processor.ok().map(|p| vec![p]))
        .build()
}

async fn wait_active(firehose: &aws_sdk_firehose::Client, name: &str) -> Result<(), BenchError> {
    let started = Instant::now();
    loop {
        let described = firehose
            .describe_delivery_stream()
            .delivery_stream_name(name)
            .send()
            .await
            .map_err(|e| failed("DescribeDeliveryStream", name, &e))?;
        let status = described
            .delivery_stream_description()
            .map(|d| d.delivery_stream_status().clone());
        if status == Some(DeliveryStreamStatus::Active) {
            return Ok(());
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

/// One object of a listing.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    /// Stored bytes (compressed, for GZIP).
    pub size: u64,
    /// LastModified, in milliseconds since the Unix epoch.
    pub last_modified_ms: u64,
}

/// Every object under `prefix` (ListObjectsV2, all pages).
pub async fn list(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<Listed>, BenchError> {
    let mut objects = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| failed("ListObjectsV2", bucket, &e))?;
        for object in page.contents() {
            objects.push(Listed {
                key: object.key().unwrap_or_default().to_owned(),
                size: object.size().map_or(0, |s| s.max(0) as u64),
                last_modified_ms: object
                    .last_modified()
                    .map_or(0, |t| t.to_millis().unwrap_or(0).max(0) as u64),
            });
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() || page.is_truncated() != Some(true) {
            return Ok(objects);
        }
    }
}

/// An object's bytes (GetObject).
pub async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Bytes, BenchError> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| failed("GetObject", bucket, &e))?;
    let body = object
        .body
        .collect()
        .await
        .map_err(|e| BenchError::Transport {
            action: "GetObject",
            message: error_chain(&e),
        })?;
    Ok(body.into_bytes())
}

/// Deletes the delivery stream, the objects the run wrote, and the bucket
/// if the run created it. Every step is tried; the first failure is
/// returned.
pub async fn clean_up(
    clients: &Clients,
    stream: &str,
    bucket: &str,
    keys: &[String],
    delete_bucket: bool,
) -> Result<(), BenchError> {
    let mut first = clients
        .firehose
        .delete_delivery_stream()
        .delivery_stream_name(stream)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| failed("DeleteDeliveryStream", stream, &e));
    for key in keys {
        let deleted = clients
            .s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await;
        if let (Ok(()), Err(e)) = (&first, deleted) {
            first = Err(failed("DeleteObject", bucket, &e));
        }
    }
    if delete_bucket {
        let deleted = clients.s3.delete_bucket().bucket(bucket).send().await;
        if let (Ok(()), Err(e)) = (&first, deleted) {
            first = Err(failed("DeleteBucket", bucket, &e));
        }
    }
    first
}
