//! UpdateDestination: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_UpdateDestination.html>
//!
//! Changes the S3 or HTTP endpoint destination in place: members the
//! update leaves out keep their values. An update of the other kind
//! switches the destination (S3 to HTTP endpoint needs the endpoint's
//! Url; the S3 configuration is the S3 destination, and back). `CurrentDeliveryStreamVersionId` must be the current
//! version (else `ConcurrentModificationException`); each update adds one
//! to the version, which names the objects delivered from then on. The
//! buffer being filled takes the new hints at once.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::DESTINATION_ID;
use crate::catalog::StreamRecord;
use crate::destination::S3Input;
use crate::endpoint::Endpoint;
use crate::errors::not_supported;
use crate::http_endpoint::{HttpEndpointDestination, HttpInput};
use crate::json::{self, Text};
use crate::opensearch::OpenSearchInput;
use crate::redshift::{RedshiftDestination, RedshiftInput};
use crate::splunk::{SplunkDestination, SplunkInput};
use crate::time::now_ms;
use crate::validate::{Pattern, Violations};
use crate::{Firehose, FirehoseError};

/// The model's `DeliveryStreamVersionId` and `DestinationId` lengths.
const VERSION_CHARS_MAX: usize = 50;
const DESTINATION_ID_CHARS_MAX: usize = 100;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input {
    DeliveryStreamName: Option<Text>,
    CurrentDeliveryStreamVersionId: Option<Text>,
    DestinationId: Option<Text>,
    S3DestinationUpdate: Option<S3Input>,
    ExtendedS3DestinationUpdate: Option<S3Input>,
    RedshiftDestinationUpdate: Option<RedshiftInput>,
    ElasticsearchDestinationUpdate: Option<OpenSearchInput>,
    AmazonopensearchserviceDestinationUpdate: Option<OpenSearchInput>,
    SplunkDestinationUpdate: Option<SplunkInput>,
    HttpEndpointDestinationUpdate: Option<HttpInput>,
    AmazonOpenSearchServerlessDestinationUpdate: Option<Value>,
    SnowflakeDestinationUpdate: Option<Value>,
    IcebergDestinationUpdate: Option<Value>,
}

fn validate(input: &Input) -> Result<(), FirehoseError> {
    let mut v = Violations::new();
    let name = input.DeliveryStreamName.as_ref().map(Text::as_str);
    super::check_name(&mut v, name, "deliveryStreamName", true);
    let version_path = "currentDeliveryStreamVersionId";
    v.required(&input.CurrentDeliveryStreamVersionId, version_path);
    let version = input
        .CurrentDeliveryStreamVersionId
        .as_ref()
        .map(Text::as_str);
    v.length(version, version_path, 1, VERSION_CHARS_MAX);
    v.pattern(version, version_path, Pattern::VersionId);
    v.required(&input.DestinationId, "destinationId");
    let id = input.DestinationId.as_ref().map(Text::as_str);
    v.length(id, "destinationId", 1, DESTINATION_ID_CHARS_MAX);
    v.pattern(id, "destinationId", Pattern::DestinationId);
    if let Some(s3) = &input.S3DestinationUpdate {
        s3.check(&mut v, "s3DestinationUpdate", false);
    }
    if let Some(s3) = &input.ExtendedS3DestinationUpdate {
        s3.check(&mut v, "extendedS3DestinationUpdate", false);
    }
    if let Some(http) = &input.HttpEndpointDestinationUpdate {
        http.check(&mut v, "httpEndpointDestinationUpdate", false);
    }
    if let Some(os) = &input.AmazonopensearchserviceDestinationUpdate {
        os.check(&mut v, "amazonopensearchserviceDestinationUpdate", false);
    }
    if let Some(es) = &input.ElasticsearchDestinationUpdate {
        es.check(&mut v, "elasticsearchDestinationUpdate", false);
    }
    if let Some(splunk) = &input.SplunkDestinationUpdate {
        splunk.check(&mut v, "splunkDestinationUpdate", false);
    }
    if let Some(redshift) = &input.RedshiftDestinationUpdate {
        redshift.check(&mut v, "redshiftDestinationUpdate", false);
    }
    v.into_result()
}

fn refuse_other_destinations(input: &Input) -> Result<(), FirehoseError> {
    let others = [
        (
            "AmazonOpenSearchServerlessDestinationUpdate",
            input.AmazonOpenSearchServerlessDestinationUpdate.is_some(),
        ),
        (
            "SnowflakeDestinationUpdate",
            input.SnowflakeDestinationUpdate.is_some(),
        ),
        (
            "IcebergDestinationUpdate",
            input.IcebergDestinationUpdate.is_some(),
        ),
    ];
    match others.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(not_supported(name)),
        None => Ok(()),
    }
}

pub async fn run(firehose: &Firehose, body: &[u8]) -> Result<Bytes, FirehoseError> {
    let mut input: Input = json::parse(body)?;
    validate(&input)?;
    refuse_other_destinations(&input)?;
    let http_update = input.HttpEndpointDestinationUpdate.take();
    let updates = [
        input.S3DestinationUpdate.is_some(),
        input.ExtendedS3DestinationUpdate.is_some(),
        http_update.is_some(),
        input.AmazonopensearchserviceDestinationUpdate.is_some(),
        input.ElasticsearchDestinationUpdate.is_some(),
        input.SplunkDestinationUpdate.is_some(),
        input.RedshiftDestinationUpdate.is_some(),
    ];
    if updates.iter().filter(|g| **g).count() > 1 {
        return Err(one_update_only());
    }
    let os_update = input
        .AmazonopensearchserviceDestinationUpdate
        .take()
        .or(input.ElasticsearchDestinationUpdate.take());
    let update = match (
        input.S3DestinationUpdate.take(),
        input.ExtendedS3DestinationUpdate.take(),
    ) {
        (Some(s3), None) => Some((s3, false)),
        (None, Some(s3)) => Some((s3, true)),
        _ => None,
    };
    // Validated: present.
    let name = input.DeliveryStreamName.as_ref().map_or("", Text::as_str);
    let given = input
        .CurrentDeliveryStreamVersionId
        .as_ref()
        .map_or("", Text::as_str);
    let destination_id = input.DestinationId.as_ref().map_or("", Text::as_str);
    let _guard = firehose.lock_catalog().await;
    let stream = firehose.lookup(name)?;
    let mut record = stream.record();
    let now = now_ms();
    let status = record.status_at(now);
    if status != "ACTIVE" {
        return Err(FirehoseError::ResourceInUse(format!(
            "Cannot update firehose: {name} when it is in {status} status"
        )));
    }
    let current = record.version.to_string();
    if given.trim_start_matches('0') != current {
        return Err(FirehoseError::ConcurrentModification(format!(
            "Cannot update firehose: {name} since the current version id: {current} and specified version id: {given} do not match"
        )));
    }
    if destination_id != DESTINATION_ID {
        return Err(FirehoseError::InvalidArgument(format!(
            "Destination Id {destination_id} not found"
        )));
    }
    let opensearch_stream = matches!(record.endpoint, Some(Endpoint::OpenSearch(_)));
    if os_update.is_some() != opensearch_stream && updates.iter().any(|g| *g) {
        return Err(FirehoseError::InvalidArgument(
            "Switching between Amazon OpenSearch Service and other destinations is not supported."
                .to_owned(),
        ));
    }
    if let Some(os) = os_update {
        update_opensearch(&mut record, os, firehose)?;
    }
    if let Some(http) = http_update {
        update_http(&mut record, http)?;
    }
    if let Some(splunk) = input.SplunkDestinationUpdate.take() {
        update_splunk(&mut record, splunk)?;
    }
    if let Some(redshift) = input.RedshiftDestinationUpdate.take() {
        update_redshift(&mut record, redshift)?;
    }
    if let Some((s3, extended)) = update {
        // An S3 update of an endpoint's stream makes it an S3 stream.
        record.endpoint = None;
        let mut destination = record.destination.clone().updated(s3);
        destination.extended |= extended;
        destination.check_processing(Some(&record.destination))?;
        destination.check_rules(now)?;
        destination.check_conversion()?;
        crate::convert::deliver::check_orc_table(&firehose.store, &destination).await?;
        record.destination = destination;
    }
    record.version += 1;
    record.updated_ms = Some(now);
    firehose.save(&stream, record).await?;
    Ok(super::json_body(&json!({})))
}

fn one_update_only() -> FirehoseError {
    FirehoseError::InvalidArgument(
        "Exactly one destination update is supported for a Firehose".to_owned(),
    )
}

/// Applies an HttpEndpointDestinationUpdate: to the stream's HTTP endpoint,
/// or, for an S3 stream, makes one (its S3 destination then the endpoint's
/// S3 configuration), which needs the endpoint's Url.
fn update_http(record: &mut StreamRecord, update: HttpInput) -> Result<(), FirehoseError> {
    let current = match record.endpoint.take() {
        Some(Endpoint::Http(http)) => http,
        // Refused before: an OpenSearch stream is never switched.
        Some(Endpoint::OpenSearch(_) | Endpoint::Splunk(_) | Endpoint::Redshift(_)) | None => {
            HttpEndpointDestination::empty()
        }
    };
    let (http, s3) = current.updated(update, record.destination.clone());
    if http.url.is_empty() {
        return Err(FirehoseError::InvalidArgument(
            "EndpointConfiguration.Url is required to change the destination to an HTTP endpoint."
                .to_owned(),
        ));
    }
    let endpoint = Endpoint::Http(http);
    endpoint.lane_destination(&s3).check_processing(None)?;
    s3.check_rules(now_ms())?;
    record.destination = s3;
    record.endpoint = Some(endpoint);
    Ok(())
}

/// Applies an OpenSearch (or Elasticsearch) update to the stream's.
fn update_opensearch(
    record: &mut StreamRecord,
    update: OpenSearchInput,
    firehose: &Firehose,
) -> Result<(), FirehoseError> {
    let Some(Endpoint::OpenSearch(current)) = record.endpoint.take() else {
        // Checked by the caller: only an OpenSearch stream gets here.
        return Err(FirehoseError::InvalidArgument(
            "Switching between Amazon OpenSearch Service and other destinations is not supported."
                .to_owned(),
        ));
    };
    let (os, s3) = current.updated(update, record.destination.clone());
    os.check_rules(&firehose.config().opensearch_domains)?;
    let endpoint = Endpoint::OpenSearch(os);
    endpoint.lane_destination(&s3).check_processing(None)?;
    s3.check_rules(now_ms())?;
    record.destination = s3;
    record.endpoint = Some(endpoint);
    Ok(())
}

/// Applies a SplunkDestinationUpdate: to the stream's Splunk destination,
/// or, for another (not OpenSearch) stream, makes one, which needs the
/// HEC endpoint.
fn update_splunk(record: &mut StreamRecord, update: SplunkInput) -> Result<(), FirehoseError> {
    let current = match record.endpoint.take() {
        Some(Endpoint::Splunk(splunk)) => splunk,
        _ => SplunkDestination::empty(),
    };
    let (splunk, s3) = current.updated(update, record.destination.clone());
    if splunk.hec_endpoint.is_empty() {
        return Err(FirehoseError::InvalidArgument(
            "HECEndpoint is required to change the destination to Splunk.".to_owned(),
        ));
    }
    let endpoint = Endpoint::Splunk(splunk);
    endpoint.lane_destination(&s3).check_processing(None)?;
    s3.check_rules(now_ms())?;
    record.destination = s3;
    record.endpoint = Some(endpoint);
    Ok(())
}

/// Applies a RedshiftDestinationUpdate: to the stream's Redshift
/// destination, or, for another (not OpenSearch) stream, makes one, which
/// needs the cluster's URL, the CopyCommand and the credentials.
fn update_redshift(record: &mut StreamRecord, update: RedshiftInput) -> Result<(), FirehoseError> {
    let current = match record.endpoint.take() {
        Some(Endpoint::Redshift(redshift)) => redshift,
        _ => RedshiftDestination::empty(),
    };
    let (redshift, s3) = current.updated(update, record.destination.clone());
    redshift.check_rules(&s3)?;
    let endpoint = Endpoint::Redshift(redshift);
    endpoint.lane_destination(&s3).check_processing(None)?;
    s3.check_rules(now_ms())?;
    record.destination = s3;
    record.endpoint = Some(endpoint);
    Ok(())
}
