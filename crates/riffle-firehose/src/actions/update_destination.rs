//! UpdateDestination: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_UpdateDestination.html>
//!
//! Changes the S3 destination in place: members the update leaves out keep
//! their values. `CurrentDeliveryStreamVersionId` must be the current
//! version (else `ConcurrentModificationException`); each update adds one
//! to the version, which names the objects delivered from then on. The
//! buffer being filled takes the new hints at once.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::DESTINATION_ID;
use crate::destination::S3Input;
use crate::errors::not_supported;
use crate::json::{self, Text};
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
    RedshiftDestinationUpdate: Option<Value>,
    ElasticsearchDestinationUpdate: Option<Value>,
    AmazonopensearchserviceDestinationUpdate: Option<Value>,
    SplunkDestinationUpdate: Option<Value>,
    HttpEndpointDestinationUpdate: Option<Value>,
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
    v.into_result()
}

fn refuse_other_destinations(input: &Input) -> Result<(), FirehoseError> {
    let others = [
        (
            "RedshiftDestinationUpdate",
            input.RedshiftDestinationUpdate.is_some(),
        ),
        (
            "ElasticsearchDestinationUpdate",
            input.ElasticsearchDestinationUpdate.is_some(),
        ),
        (
            "AmazonopensearchserviceDestinationUpdate",
            input.AmazonopensearchserviceDestinationUpdate.is_some(),
        ),
        (
            "SplunkDestinationUpdate",
            input.SplunkDestinationUpdate.is_some(),
        ),
        (
            "HttpEndpointDestinationUpdate",
            input.HttpEndpointDestinationUpdate.is_some(),
        ),
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
    let update = match (
        input.S3DestinationUpdate.take(),
        input.ExtendedS3DestinationUpdate.take(),
    ) {
        (Some(_), Some(_)) => {
            return Err(FirehoseError::InvalidArgument(
                "Exactly one destination update is supported for a Firehose".to_owned(),
            ));
        }
        (Some(s3), None) => Some((s3, false)),
        (None, Some(s3)) => Some((s3, true)),
        (None, None) => None,
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
    if let Some((s3, extended)) = update {
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
