//! The API actions, one module per action named after it (the tag and
//! encryption pairs share one), and what they share: dispatch, the
//! `DeliveryStreamName` member, JSON responses.

mod create_delivery_stream;
mod delete_delivery_stream;
mod describe_delivery_stream;
mod encryption;
mod list_delivery_streams;
mod put_record;
mod put_record_batch;
mod tags;
mod update_destination;

#[cfg(test)]
mod tests;

use bytes::Bytes;
use serde_json::Value;

use crate::validate::{Pattern, Violations};
use crate::{Firehose, FirehoseError};

/// Every operation of the API model (botocore
/// `firehose/2015-08-04/service-2.json`), in the model's sorted order.
pub const MODEL_OPERATIONS: &[&str] = &[
    "CreateDeliveryStream",
    "DeleteDeliveryStream",
    "DescribeDeliveryStream",
    "ListDeliveryStreams",
    "ListTagsForDeliveryStream",
    "PutRecord",
    "PutRecordBatch",
    "StartDeliveryStreamEncryption",
    "StopDeliveryStreamEncryption",
    "TagDeliveryStream",
    "UntagDeliveryStream",
    "UpdateDestination",
];

/// The model's `DeliveryStreamName` length bounds.
const NAME_CHARS_MIN: usize = 1;
const NAME_CHARS_MAX: usize = 64;
/// The model's `DeliveryStreamType` values.
const STREAM_TYPES: &[&str] = &[
    "DirectPut",
    "KinesisStreamAsSource",
    "MSKAsSource",
    "DatabaseAsSource",
];
/// The id of a stream's one destination, as AWS numbers it.
pub const DESTINATION_ID: &str = "destinationId-000000000001";

pub async fn dispatch(
    firehose: &Firehose,
    action: &str,
    body: &[u8],
) -> Result<Bytes, FirehoseError> {
    match action {
        "CreateDeliveryStream" => create_delivery_stream::run(firehose, body).await,
        "DeleteDeliveryStream" => delete_delivery_stream::run(firehose, body).await,
        "DescribeDeliveryStream" => describe_delivery_stream::run(firehose, body),
        "ListDeliveryStreams" => list_delivery_streams::run(firehose, body),
        "ListTagsForDeliveryStream" => tags::run_list(firehose, body),
        "PutRecord" => put_record::run(firehose, body).await,
        "PutRecordBatch" => put_record_batch::run(firehose, body).await,
        "StartDeliveryStreamEncryption" => encryption::run_start(firehose, body).await,
        "StopDeliveryStreamEncryption" => encryption::run_stop(firehose, body).await,
        "TagDeliveryStream" => tags::run_tag(firehose, body).await,
        "UntagDeliveryStream" => tags::run_untag(firehose, body).await,
        "UpdateDestination" => update_destination::run(firehose, body).await,
        _ => Err(FirehoseError::UnknownOperation(String::new())),
    }
}

/// The `DeliveryStreamName` member's constraints; `path` as AWS names it.
fn check_name(v: &mut Violations, name: Option<&str>, path: &str, required: bool) {
    if required {
        v.required(&name, path);
    }
    v.length(name, path, NAME_CHARS_MIN, NAME_CHARS_MAX);
    v.pattern(name, path, Pattern::Name);
}

fn check_type(v: &mut Violations, kind: Option<&str>, path: &str) {
    v.one_of(kind, path, STREAM_TYPES);
}

fn json_body(value: &Value) -> Bytes {
    Bytes::from(value.to_string())
}
