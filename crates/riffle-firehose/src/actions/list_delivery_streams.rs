//! ListDeliveryStreams: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_ListDeliveryStreams.html>
//!
//! Names in order, filtered by type, after `ExclusiveStartDeliveryStreamName`
//! (which need not exist).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::json::{self, Int, Text};
use crate::validate::Violations;
use crate::{Firehose, FirehoseError};

/// The model's `ListDeliveryStreamsInputLimit` bounds, and AWS's default.
const LIMIT_MIN: i64 = 1;
const LIMIT_MAX: i64 = 10_000;
const LIMIT_DEFAULT: usize = 10;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input {
    Limit: Option<Int>,
    DeliveryStreamType: Option<Text>,
    ExclusiveStartDeliveryStreamName: Option<Text>,
}

pub fn run(firehose: &Firehose, body: &[u8]) -> Result<Bytes, FirehoseError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    v.range(
        input.Limit.map(|n| i64::from(n.0)),
        "limit",
        Some(LIMIT_MIN),
        Some(LIMIT_MAX),
    );
    let kind = input.DeliveryStreamType.as_ref().map(Text::as_str);
    super::check_type(&mut v, kind, "deliveryStreamType");
    let start = input
        .ExclusiveStartDeliveryStreamName
        .as_ref()
        .map(Text::as_str);
    super::check_name(&mut v, start, "exclusiveStartDeliveryStreamName", false);
    v.into_result::<crate::validate::ValidationError>()?;
    let limit = input
        .Limit
        .map_or(LIMIT_DEFAULT, |n| usize::try_from(n.0).unwrap_or(1));
    let mut names = firehose.all().into_iter().map(|s| s.record()).filter(|r| {
        kind.is_none_or(|k| r.kind.as_str() == k) && start.is_none_or(|s| r.name.as_str() > s)
    });
    let page: Vec<String> = names.by_ref().take(limit).map(|r| r.name).collect();
    let more = names.next().is_some();
    Ok(super::json_body(&json!({
        "DeliveryStreamNames": page,
        "HasMoreDeliveryStreams": more,
    })))
}
