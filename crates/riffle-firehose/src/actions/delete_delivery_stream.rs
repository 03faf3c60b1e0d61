//! DeleteDeliveryStream: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_DeleteDeliveryStream.html>
//!
//! The stream shows DELETING for the status delay, then its log, definition
//! and delivered position are removed. Records not yet delivered are
//! dropped with it, as on AWS. `AllowForceDelete` concerns KMS grants,
//! which Riffle does not have; it is accepted.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::catalog::Status;
use crate::json::{self, Bool, Text};
use crate::time::now_ms;
use crate::validate::Violations;
use crate::{Firehose, FirehoseError};

#[derive(Deserialize)]
#[allow(non_snake_case, dead_code)]
struct Input {
    DeliveryStreamName: Option<Text>,
    AllowForceDelete: Option<Bool>,
}

pub async fn run(firehose: &Firehose, body: &[u8]) -> Result<Bytes, FirehoseError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    let name = input.DeliveryStreamName.as_ref().map(Text::as_str);
    super::check_name(&mut v, name, "deliveryStreamName", true);
    v.into_result::<crate::validate::ValidationError>()?;
    let name = name.unwrap_or_default();
    let _guard = firehose.lock_catalog().await;
    let stream = firehose.lookup(name)?;
    let mut record = stream.record();
    let now = now_ms();
    match record.status_at(now) {
        "DELETING" => return Ok(super::json_body(&json!({}))),
        "CREATING" => {
            return Err(FirehoseError::ResourceInUse(format!(
                "Firehose {name} under account {} cannot be deleted in CREATING state.",
                firehose.account()
            )));
        }
        _ => {}
    }
    record.status = Status::Deleting;
    let delay_ms = i64::try_from(firehose.config().status_delay.as_millis()).unwrap_or(i64::MAX);
    record.status_until_ms = now.saturating_add(delay_ms);
    firehose.save(&stream, record).await?;
    stream.stop_delivery().await;
    firehose.finish_deletion(stream);
    Ok(super::json_body(&json!({})))
}
