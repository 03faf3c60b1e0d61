//! DescribeDeliveryStream: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_DescribeDeliveryStream.html>

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{DESTINATION_ID, encryption};
use crate::catalog::{Kind, StreamRecord};
use crate::json::{self, Int, Text};
use crate::service::stream_arn;
use crate::time::{epoch_seconds, now_ms};
use crate::validate::{Pattern, Violations};
use crate::{Firehose, FirehoseError};

/// The model's `DescribeDeliveryStreamInputLimit` and `DestinationId` bounds.
const LIMIT_MIN: i64 = 1;
const LIMIT_MAX: i64 = 10_000;
const DESTINATION_ID_CHARS_MAX: usize = 100;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input {
    DeliveryStreamName: Option<Text>,
    Limit: Option<Int>,
    ExclusiveStartDestinationId: Option<Text>,
}

pub fn run(firehose: &Firehose, body: &[u8]) -> Result<Bytes, FirehoseError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    let name = input.DeliveryStreamName.as_ref().map(Text::as_str);
    super::check_name(&mut v, name, "deliveryStreamName", true);
    v.range(
        input.Limit.map(|n| i64::from(n.0)),
        "limit",
        Some(LIMIT_MIN),
        Some(LIMIT_MAX),
    );
    let start = input.ExclusiveStartDestinationId.as_ref().map(Text::as_str);
    v.length(
        start,
        "exclusiveStartDestinationId",
        1,
        DESTINATION_ID_CHARS_MAX,
    );
    v.pattern(start, "exclusiveStartDestinationId", Pattern::DestinationId);
    v.into_result::<crate::validate::ValidationError>()?;
    let stream = firehose.lookup(name.unwrap_or_default())?;
    // A stream has one destination: starting after it leaves none.
    let destinations = if start == Some(DESTINATION_ID) {
        vec![]
    } else {
        vec![describe_destination(&stream.record())]
    };
    let description = describe(firehose, &stream.record(), destinations);
    Ok(super::json_body(
        &json!({ "DeliveryStreamDescription": description }),
    ))
}

fn describe_destination(record: &StreamRecord) -> Value {
    let d = &record.destination;
    if let Some(endpoint) = &record.endpoint {
        let (key, description) = endpoint.describe(d);
        return json!({"DestinationId": DESTINATION_ID, (key): description});
    }
    json!({
        "DestinationId": DESTINATION_ID,
        "S3DestinationDescription": d.describe_s3(),
        "ExtendedS3DestinationDescription": d.describe_extended(),
    })
}

fn describe(firehose: &Firehose, record: &StreamRecord, destinations: Vec<Value>) -> Value {
    let now = now_ms();
    let mut d = json!({
        "DeliveryStreamName": record.name,
        "DeliveryStreamARN": stream_arn(firehose.config(), &record.name),
        "DeliveryStreamStatus": record.status_at(now),
        "DeliveryStreamType": record.kind.as_str(),
        "VersionId": record.version.to_string(),
        "CreateTimestamp": epoch_seconds(record.created_ms),
        "Destinations": destinations,
        "HasMoreDestinations": false,
    });
    if let Some(updated) = record.updated_ms {
        d["LastUpdateTimestamp"] = Value::from(epoch_seconds(updated));
    }
    match (&record.kind, &record.source) {
        (Kind::KinesisStreamAsSource, Some(source)) => {
            d["Source"] = json!({"KinesisStreamSourceDescription": {
                "KinesisStreamARN": source.stream_arn,
                "RoleARN": source.role_arn,
                "DeliveryStartTimestamp": epoch_seconds(source.start_ms),
            }});
        }
        _ => {
            d["DeliveryStreamEncryptionConfiguration"] =
                encryption::describe(record.encryption.as_ref(), now);
            if let Some(hint) = record.throughput_hint_mb {
                d["Source"] = json!({"DirectPutSourceDescription": {"ThroughputHintInMBs": hint}});
            }
        }
    }
    d
}
