//! DeleteStream: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_DeleteStream.html>
//!
//! The stream turns DELETING for the configured status delay (visible to
//! DescribeStream and ListStreams, refusing records), then disappears with
//! its logs.

use bytes::Bytes;
use riffle_log::MetaOp;
use serde::Deserialize;

use crate::catalog::{Status, StreamRecord};
use crate::json::{self, Bool, Str};
use crate::time::now_ms;
use crate::validate::Violations;
use crate::{Kinesis, KinesisError, errors};

#[derive(Deserialize)]
#[allow(non_snake_case, dead_code)]
struct Input<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    /// Without it, a stream with registered consumers is not deleted.
    EnforceConsumerDeletion: Option<Bool>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

pub async fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result::<crate::validate::ValidationError>()?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;

    let _catalog = kinesis.catalog_guard().await;
    let now = now_ms();
    let stream = kinesis.lookup(&name, now)?;
    if stream.status(now) == Some(Status::Deleting) {
        return Err(errors::stream_not_found(&name, kinesis.account()));
    }
    // AWS refuses to delete a stream with consumers unless told to; then
    // they go first (a crash in between leaves a stream without consumers).
    if !matches!(input.EnforceConsumerDeletion, Some(Bool(true)))
        && super::consumer_count(kinesis, &stream, now)? > 0
    {
        return Err(KinesisError::ResourceInUse(format!(
            "Stream {name} under account {} has registered consumers.",
            kinesis.account()
        )));
    }
    super::remove_consumers(kinesis, &stream, now).await?;
    let delay_ms = i64::try_from(kinesis.config().status_delay.as_millis()).unwrap_or(i64::MAX);
    let record = StreamRecord {
        status: Status::Deleting,
        status_until_ms: now.saturating_add(delay_ms),
        ..stream.record.clone()
    };
    if delay_ms == 0 {
        kinesis.purge(&stream).await?;
    } else {
        kinesis
            .commit(vec![MetaOp::Put {
                key: record.key(),
                value: record.encode(),
            }])
            .await?;
        kinesis.insert(stream.with_record(record));
    }
    Ok(Bytes::new())
}
