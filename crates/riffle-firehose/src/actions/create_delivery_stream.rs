//! CreateDeliveryStream: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_CreateDeliveryStream.html>
//!
//! DirectPut and KinesisStreamAsSource streams with an S3, Extended S3 or
//! HTTP endpoint destination; the other sources and destinations are
//! refused by name.

use std::sync::Arc;

use bytes::Bytes;
use riffle_log::MetaOp;
use serde::Deserialize;
use serde_json::{Value, json};

use super::encryption::{self, EncryptionInput};
use super::tags::{self, TagInput};
use crate::catalog::{CATALOG_VERSION, Kind, KinesisSource, Status, StreamRecord};
use crate::destination::{S3Destination, S3Input};
use crate::endpoint::Endpoint;
use crate::errors::{self, not_supported};
use crate::http_endpoint::HttpInput;
use crate::json::{self, Int, Text};
use crate::opensearch::{Flavor, OpenSearchInput};
use crate::redshift::RedshiftInput;
use crate::service::stream_arn;
use crate::splunk::SplunkInput;
use crate::stream::DeliveryStream;
use crate::time::now_ms;
use crate::validate::{Pattern, Violations};
use crate::{Firehose, FirehoseError};

/// Delivery streams per account and region (AWS's default quota, "Amazon
/// Data Firehose Quota": 5,000).
pub const DELIVERY_STREAMS_MAX: usize = 5_000;
/// The model's `ThroughputHintInMBs` bounds.
const THROUGHPUT_HINT_MIN: i64 = 1;
const THROUGHPUT_HINT_MAX: i64 = 100;
const ARN_CHARS_MAX: usize = 512;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input {
    DeliveryStreamName: Option<Text>,
    DeliveryStreamType: Option<Text>,
    DirectPutSourceConfiguration: Option<DirectPutInput>,
    KinesisStreamSourceConfiguration: Option<KinesisSourceInput>,
    DeliveryStreamEncryptionConfigurationInput: Option<EncryptionInput>,
    S3DestinationConfiguration: Option<S3Input>,
    ExtendedS3DestinationConfiguration: Option<S3Input>,
    RedshiftDestinationConfiguration: Option<RedshiftInput>,
    ElasticsearchDestinationConfiguration: Option<OpenSearchInput>,
    AmazonopensearchserviceDestinationConfiguration: Option<OpenSearchInput>,
    SplunkDestinationConfiguration: Option<SplunkInput>,
    HttpEndpointDestinationConfiguration: Option<HttpInput>,
    Tags: Option<Vec<TagInput>>,
    AmazonOpenSearchServerlessDestinationConfiguration: Option<Value>,
    MSKSourceConfiguration: Option<Value>,
    SnowflakeDestinationConfiguration: Option<Value>,
    IcebergDestinationConfiguration: Option<Value>,
    DatabaseSourceConfiguration: Option<Value>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct DirectPutInput {
    ThroughputHintInMBs: Option<Int>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct KinesisSourceInput {
    KinesisStreamARN: Option<Text>,
    RoleARN: Option<Text>,
}

fn validate(input: &Input) -> Result<(), FirehoseError> {
    let mut v = Violations::new();
    let name = input.DeliveryStreamName.as_ref().map(Text::as_str);
    super::check_name(&mut v, name, "deliveryStreamName", true);
    let kind = input.DeliveryStreamType.as_ref().map(Text::as_str);
    super::check_type(&mut v, kind, "deliveryStreamType");
    if let Some(direct) = &input.DirectPutSourceConfiguration {
        let path = "directPutSourceConfiguration.throughputHintInMBs";
        v.required(&direct.ThroughputHintInMBs, path);
        let hint = direct.ThroughputHintInMBs.map(|n| i64::from(n.0));
        v.range(
            hint,
            path,
            Some(THROUGHPUT_HINT_MIN),
            Some(THROUGHPUT_HINT_MAX),
        );
    }
    if let Some(source) = &input.KinesisStreamSourceConfiguration {
        let stream_path = "kinesisStreamSourceConfiguration.kinesisStreamARN";
        let role_path = "kinesisStreamSourceConfiguration.roleARN";
        v.required(&source.KinesisStreamARN, stream_path);
        v.required(&source.RoleARN, role_path);
        let stream = source.KinesisStreamARN.as_ref().map(Text::as_str);
        v.length(stream, stream_path, 1, ARN_CHARS_MAX);
        v.pattern(stream, stream_path, Pattern::KinesisStreamArn);
        let role = source.RoleARN.as_ref().map(Text::as_str);
        v.length(role, role_path, 1, ARN_CHARS_MAX);
        v.pattern(role, role_path, Pattern::RoleArn);
    }
    if let Some(enc) = &input.DeliveryStreamEncryptionConfigurationInput {
        enc.check(&mut v, "deliveryStreamEncryptionConfigurationInput");
    }
    if let Some(s3) = &input.S3DestinationConfiguration {
        s3.check(&mut v, "s3DestinationConfiguration", true);
    }
    if let Some(s3) = &input.ExtendedS3DestinationConfiguration {
        s3.check(&mut v, "extendedS3DestinationConfiguration", true);
    }
    if let Some(http) = &input.HttpEndpointDestinationConfiguration {
        http.check(&mut v, "httpEndpointDestinationConfiguration", true);
    }
    if let Some(os) = &input.AmazonopensearchserviceDestinationConfiguration {
        os.check(
            &mut v,
            "amazonopensearchserviceDestinationConfiguration",
            true,
        );
    }
    if let Some(es) = &input.ElasticsearchDestinationConfiguration {
        es.check(&mut v, "elasticsearchDestinationConfiguration", true);
    }
    if let Some(splunk) = &input.SplunkDestinationConfiguration {
        splunk.check(&mut v, "splunkDestinationConfiguration", true);
    }
    if let Some(redshift) = &input.RedshiftDestinationConfiguration {
        redshift.check(&mut v, "redshiftDestinationConfiguration", true);
    }
    if let Some(list) = &input.Tags {
        tags::check_tags(&mut v, list, "tags");
    }
    v.into_result()
}

/// The source: DirectPut (with its hint) or a Kinesis stream.
fn source(input: &Input, now: i64) -> Result<(Kind, Option<KinesisSource>), FirehoseError> {
    let kind = input
        .DeliveryStreamType
        .as_ref()
        .map_or("DirectPut", Text::as_str);
    match kind {
        "MSKAsSource" | "DatabaseAsSource" => {
            return Err(not_supported(&format!("DeliveryStreamType {kind}")));
        }
        "KinesisStreamAsSource" => {}
        _ => {
            if input.KinesisStreamSourceConfiguration.is_some() {
                return Err(FirehoseError::InvalidArgument(
                    "KinesisSourceStreamConfig is only applicable for KinesisStreamAsSource delivery stream type."
                        .to_owned(),
                ));
            }
            return Ok((Kind::DirectPut, None));
        }
    }
    let Some(config) = &input.KinesisStreamSourceConfiguration else {
        return Err(FirehoseError::InvalidArgument(
            "KinesisSourceStreamConfig is required for KinesisStreamAsSource delivery stream type."
                .to_owned(),
        ));
    };
    if input.DirectPutSourceConfiguration.is_some() {
        return Err(FirehoseError::InvalidArgument(
            "DirectPutSourceConfiguration is only applicable for DirectPut delivery stream type."
                .to_owned(),
        ));
    }
    if input.DeliveryStreamEncryptionConfigurationInput.is_some() {
        return Err(encryption::not_for_kinesis_source());
    }
    let text = |t: &Option<Text>| t.as_ref().map_or("", Text::as_str).to_owned();
    Ok((
        Kind::KinesisStreamAsSource,
        Some(KinesisSource {
            stream_arn: text(&config.KinesisStreamARN),
            role_arn: text(&config.RoleARN),
            start_ms: now,
        }),
    ))
}

/// The one destination: its S3 destination (an endpoint's S3Configuration)
/// and the endpoint, if any.
fn destination(input: &mut Input) -> Result<(S3Destination, Option<Endpoint>), FirehoseError> {
    let others = [
        (
            "AmazonOpenSearchServerlessDestinationConfiguration",
            input
                .AmazonOpenSearchServerlessDestinationConfiguration
                .is_some(),
        ),
        (
            "SnowflakeDestinationConfiguration",
            input.SnowflakeDestinationConfiguration.is_some(),
        ),
        (
            "IcebergDestinationConfiguration",
            input.IcebergDestinationConfiguration.is_some(),
        ),
    ];
    let s3 = input.S3DestinationConfiguration.is_some();
    let extended = input.ExtendedS3DestinationConfiguration.is_some();
    let http = input.HttpEndpointDestinationConfiguration.is_some();
    let os = input
        .AmazonopensearchserviceDestinationConfiguration
        .is_some();
    let es = input.ElasticsearchDestinationConfiguration.is_some();
    let splunk = input.SplunkDestinationConfiguration.is_some();
    let redshift = input.RedshiftDestinationConfiguration.is_some();
    let given = others.iter().filter(|(_, set)| *set).count()
        + [s3, extended, http, os, es, splunk, redshift]
            .iter()
            .filter(|set| **set)
            .count();
    if given != 1 {
        return Err(FirehoseError::InvalidArgument(
            "Exactly one destination configuration is supported for a Firehose".to_owned(),
        ));
    }
    if let Some((name, _)) = others.iter().find(|(_, set)| *set) {
        return Err(not_supported(name));
    }
    if let Some(http) = input.HttpEndpointDestinationConfiguration.take() {
        let (http, s3) = http.into_destination();
        return Ok((s3, Some(Endpoint::Http(http))));
    }
    if let Some(splunk) = input.SplunkDestinationConfiguration.take() {
        let (splunk, s3) = splunk.into_destination();
        return Ok((s3, Some(Endpoint::Splunk(splunk))));
    }
    if let Some(redshift) = input.RedshiftDestinationConfiguration.take() {
        let (redshift, s3) = redshift.into_destination();
        return Ok((s3, Some(Endpoint::Redshift(redshift))));
    }
    let opensearch = match (
        input.AmazonopensearchserviceDestinationConfiguration.take(),
        input.ElasticsearchDestinationConfiguration.take(),
    ) {
        (Some(os), _) => Some((os, Flavor::OpenSearch)),
        (None, Some(es)) => Some((es, Flavor::Elasticsearch)),
        (None, None) => None,
    };
    if let Some((config, flavor)) = opensearch {
        let (os, s3) = config.into_destination(flavor);
        return Ok((s3, Some(Endpoint::OpenSearch(os))));
    }
    let config = match input.ExtendedS3DestinationConfiguration.take() {
        Some(config) => config,
        // Exactly one is given and it is not one of the others.
        None => input.S3DestinationConfiguration.take().unwrap_or_default(),
    };
    Ok((config.into_destination(extended), None))
}

pub async fn run(firehose: &Firehose, body: &[u8]) -> Result<Bytes, FirehoseError> {
    let mut input: Input = json::parse(body)?;
    validate(&input)?;
    let now = now_ms();
    let (kind, source) = source(&input, now)?;
    if input.MSKSourceConfiguration.is_some() || input.DatabaseSourceConfiguration.is_some() {
        return Err(not_supported(
            "MSKSourceConfiguration and DatabaseSourceConfiguration",
        ));
    }
    let (destination, endpoint) = destination(&mut input)?;
    destination.check_processing(None)?;
    if let Some(endpoint) = &endpoint {
        endpoint
            .lane_destination(&destination)
            .check_processing(None)?;
    }
    if let Some(Endpoint::OpenSearch(os)) = &endpoint {
        os.check_rules(&firehose.config().opensearch_domains)?;
    }
    if let Some(Endpoint::Redshift(redshift)) = &endpoint {
        redshift.check_rules(&destination)?;
    }
    destination.check_rules(now)?;
    destination.check_conversion()?;
    crate::convert::deliver::check_orc_table(&firehose.store, &destination).await?;
    let delay_ms = i64::try_from(firehose.config().status_delay.as_millis()).unwrap_or(i64::MAX);
    let encryption = input
        .DeliveryStreamEncryptionConfigurationInput
        .as_ref()
        .map(|enc| enc.to_encryption(now.saturating_add(delay_ms)))
        .transpose()?;
    // Validated: present.
    let name = input
        .DeliveryStreamName
        .as_ref()
        .map_or("", Text::as_str)
        .to_owned();
    let record = StreamRecord {
        v: CATALOG_VERSION,
        name: name.clone(),
        incarnation: rand::random(),
        created_ms: now,
        updated_ms: None,
        kind,
        source,
        throughput_hint_mb: input
            .DirectPutSourceConfiguration
            .as_ref()
            .and_then(|d| d.ThroughputHintInMBs.map(|n| n.0)),
        status: Status::Creating,
        status_until_ms: now.saturating_add(delay_ms),
        version: 1,
        destination,
        endpoint,
        tags: tags::into_map(input.Tags.unwrap_or_default()),
        encryption,
    };
    let _guard = firehose.lock_catalog().await;
    if firehose.get(&name).is_some() {
        return Err(errors::already_exists(&name, firehose.account()));
    }
    if firehose.count() >= DELIVERY_STREAMS_MAX {
        return Err(FirehoseError::LimitExceeded(format!(
            "You have already consumed your firehose quota of {DELIVERY_STREAMS_MAX} hoses."
        )));
    }
    let key = encryption::data_key(firehose, record.encryption.as_ref()).await?;
    firehose
        .commit(vec![MetaOp::Put {
            key: record.key(),
            value: record.encode(),
        }])
        .await?;
    let log = {
        let store = Arc::clone(firehose.store());
        let name = record.log_name();
        tokio::task::spawn_blocking(move || store.open_log(&name))
            .await
            .map_err(errors::task)??
    };
    firehose.insert(Arc::new(DeliveryStream::new(record, log, key)));
    let arn = stream_arn(firehose.config(), &name);
    Ok(super::json_body(&json!({ "DeliveryStreamARN": arn })))
}
