//! UpdateMaxRecordSize: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_UpdateMaxRecordSize.html>
//!
//! Sets the largest record PutRecord(s) accept on the stream (1 to 10 MiB).
//! Large records draw on the per-shard write burst (see `throttle`).

use bytes::Bytes;
use serde::Deserialize;

use super::settings::{self, Needs};
use crate::catalog::StreamRecord;
use crate::json::{self, Int, Str};
use crate::validate::Violations;
use crate::{Kinesis, KinesisError};

/// The model's `MaxRecordSizeInKiB` bounds: 1 MiB to 10 MiB.
pub const MAX_RECORD_KIB_MIN: i64 = 1024;
pub const MAX_RECORD_KIB_MAX: i64 = 10 * 1024;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
    MaxRecordSizeInKiB: Option<Int>,
}

pub async fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    super::check_target(&mut v, &None, &input.StreamARN);
    super::check_stream_id(&mut v, &input.StreamId);
    v.required(&input.MaxRecordSizeInKiB, "maxRecordSizeInKiB");
    v.range(
        input.MaxRecordSizeInKiB.map(|n| i64::from(n.0)),
        "maxRecordSizeInKiB",
        Some(MAX_RECORD_KIB_MIN),
        Some(MAX_RECORD_KIB_MAX),
    );
    v.into_result::<crate::validate::ValidationError>()?;
    let name = super::target(kinesis, &None, &input.StreamARN)?;
    // Validated: present and in range.
    let kib = input.MaxRecordSizeInKiB.map_or(0, |n| n.0 as u32);
    settings::update(kinesis, &name, Needs::Active, |stream, _| {
        let record = StreamRecord {
            max_record_kib: kib,
            ..stream.record.clone()
        };
        Ok((record, ()))
    })
    .await?;
    Ok(Bytes::new())
}
