//! The `firehose` workload's control plane, through the official Firehose
//! and S3 SDKs: the bucket, the DirectPut delivery stream into it, and the
//! objects it delivered (listed, read back, deleted). None of it is on the
//! measured write path.

use std::time::{Duration, Instant};

use aws_sdk_firehose::types::{
    BufferingHints, CompressionFormat, DeliveryStreamStatus, DeliveryStreamType,
    DynamicPartitioningConfiguration, ExtendedS3DestinationConfiguration, ProcessingConfiguration,
    Processor, ProcessorParameter, ProcessorParameterName, ProcessorType,
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
    let mut destination = ExtendedS3DestinationConfiguration::builder()
        .role_arn(ROLE_ARN)
        .bucket_arn(format!("arn:aws:s3:::{}", plan.bucket))
        .prefix(prefix)
        .buffering_hints(hints)
        .compression_format(CompressionFormat::from(plan.compression.as_str()))
        .set_processing_configuration(processing(plan));
    if let Some(query) = &plan.partition_query {
        // Each key the query names is a level of the prefix; the error
        // output is required with dynamic partitioning.
        let levels: String = query_keys(query)
            .iter()
            .map(|k| format!("{k}=!{{partitionKeyFromQuery:{k}}}/"))
            .collect();
        destination = destination
            .prefix(format!("{prefix}{levels}"))
            .error_output_prefix(format!("{prefix}errors/!{{firehose:error-output-type}}/"))
            .dynamic_partitioning_configuration(
                DynamicPartitioningConfiguration::builder()
                    .enabled(true)
                    .build(),
            );
    }
    let destination = destination.build().map_err(|e| BenchError::ControlPlane {
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

/// The processors of a run: a Lambda processor calling the transform
/// function (AWS's defaults otherwise), a MetadataExtraction processor
/// running the partition query; `None` without either.
fn processing(plan: &FirehosePlan) -> Option<ProcessingConfiguration> {
    let mut processors = Vec::new();
    if let Some(arn) = &plan.transform_function {
        processors.extend(processor(
            ProcessorType::Lambda,
            &[(ProcessorParameterName::LambdaArn, arn)],
        ));
    }
    if let Some(query) = &plan.partition_query {
        processors.extend(processor(
            ProcessorType::MetadataExtraction,
            &[
                (ProcessorParameterName::MetadataExtractionQuery, query),
                (ProcessorParameterName::JsonParsingEngine, "JQ-1.6"),
            ],
        ));
    }
    if processors.is_empty() {
        return None;
    }
    Some(
        ProcessingConfiguration::builder()
            .enabled(true)
            .set_processors(Some(processors))
            .build(),
    )
}

fn processor(
    kind: ProcessorType,
    parameters: &[(ProcessorParameterName, &str)],
) -> Option<Processor> {
    let parameters = parameters
        .iter()
        .filter_map(|(name, value)| {
            ProcessorParameter::builder()
                .parameter_name(name.clone())
                .parameter_value(*value)
                .build()
                .ok()
        })
        .collect();
    Processor::builder()
        .r#type(kind)
        .set_parameters(Some(parameters))
        .build()
        .ok()
}

/// The member names of a query's output object, `{a: .x, b: .y}`: the
/// partition keys it extracts (names only; values may be any filter).
pub fn query_keys(query: &str) -> Vec<String> {
    let inner = query.trim().trim_start_matches('{').trim_end_matches('}');
    let mut keys = Vec::new();
    let mut depth = 0_i32;
    let mut member = String::new();
    for c in inner.chars().chain([',']) {
        match c {
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                let name = member.split(':').next().unwrap_or("").trim();
                let name = name.trim_matches('"');
                if !name.is_empty() {
                    keys.push(name.to_owned());
                }
                member.clear();
                continue;
            }
            _ => {}
        }
        member.push(c);
    }
    keys
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_querys_member_names_are_its_partition_keys() {
        assert_eq!(query_keys("{customer_id: .customer_id}"), ["customer_id"]);
        assert_eq!(
            query_keys("{device: .type.device, \"day\": (.ts | tostring), c: {a: 1}.a}"),
            ["device", "day", "c"]
        );
    }
}
