//! IncreaseStreamRetentionPeriod: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_IncreaseStreamRetentionPeriod.html>
//! and DecreaseStreamRetentionPeriod: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_DecreaseStreamRetentionPeriod.html>
//!
//! The period is stored in the stream's catalog entry. Records older than
//! it are never returned; the background task deletes their segments.
//! Increasing it does not bring back records already past the old period
//! once their segments are gone.

use bytes::Bytes;
use riffle_log::MetaOp;
use serde::Deserialize;

use crate::catalog::StreamRecord;
use crate::json::{self, Int, Str};
use crate::time::now_ms;
use crate::validate::Violations;
use crate::{Kinesis, KinesisError};

/// Retention bounds in hours (API_IncreaseStreamRetentionPeriod: "up to
/// 8760 hours (365 days)"; the minimum and default is 24 hours).
pub const RETENTION_HOURS_MIN: i32 = 24;
pub const RETENTION_HOURS_MAX: i32 = 8_760;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    RetentionPeriodHours: Option<Int>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Increase,
    Decrease,
}

pub async fn run_increase(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    run(kinesis, body, Change::Increase).await
}

pub async fn run_decrease(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    run(kinesis, body, Change::Decrease).await
}

async fn run(kinesis: &Kinesis, body: &[u8], change: Change) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    v.required(&input.RetentionPeriodHours, "retentionPeriodHours");
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result::<crate::validate::ValidationError>()?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    // Validated: present.
    let hours = input.RetentionPeriodHours.map_or(0, |n| n.0);

    let _catalog = kinesis.catalog_guard().await;
    let now = now_ms();
    let stream = kinesis.lookup(&name, now)?;
    check_hours(hours, stream.record.retention_hours, &name, change)?;
    let record = StreamRecord {
        retention_hours: hours as u32,
        ..stream.record.clone()
    };
    kinesis
        .commit(vec![MetaOp::Put {
            key: record.key(),
            value: record.encode(),
        }])
        .await?;
    kinesis.insert(stream.with_record(record));
    Ok(Bytes::new())
}

/// AWS's checks, in its order: the bounds, then the direction.
fn check_hours(hours: i32, current: u32, stream: &str, change: Change) -> Result<(), KinesisError> {
    let refuse = |text: String| Err(KinesisError::InvalidArgument(text));
    if hours < RETENTION_HOURS_MIN {
        return refuse(format!(
            "Minimum allowed retention period is {RETENTION_HOURS_MIN} hours. Requested retention period \
             ({hours} hours) is too short."
        ));
    }
    if hours > RETENTION_HOURS_MAX {
        return refuse(format!(
            "Maximum allowed retention period is {RETENTION_HOURS_MAX} hours. Requested retention period \
             ({hours} hours) is too long."
        ));
    }
    let current_i = current as i32;
    match change {
        Change::Increase if hours < current_i => refuse(format!(
            "Requested retention period ({hours} hours) for stream {stream} can not be shorter than \
             existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
        )),
        Change::Decrease if hours > current_i => refuse(format!(
            "Requested retention period ({hours} hours) for stream {stream} can not be longer than \
             existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(r: Result<(), KinesisError>) -> String {
        match r {
            Err(KinesisError::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bounds_are_checked_before_the_direction() {
        let m = message(check_hours(23, 48, "s", Change::Decrease));
        assert_eq!(
            m,
            "Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is too short."
        );
        let m = message(check_hours(8761, 24, "s", Change::Increase));
        assert_eq!(
            m,
            "Maximum allowed retention period is 8760 hours. Requested retention period (8761 hours) is too long."
        );
    }

    #[test]
    fn the_direction_must_match_the_action_and_equal_is_allowed() {
        let m = message(check_hours(24, 48, "s", Change::Increase));
        assert_eq!(
            m,
            "Requested retention period (24 hours) for stream s can not be shorter than existing retention \
             period (48 hours). Use DecreaseRetentionPeriod API."
        );
        let m = message(check_hours(72, 48, "s", Change::Decrease));
        assert!(m.ends_with("can not be longer than existing retention period (48 hours). Use IncreaseRetentionPeriod API."), "{m}");
        assert!(check_hours(48, 48, "s", Change::Increase).is_ok());
        assert!(check_hours(48, 48, "s", Change::Decrease).is_ok());
        assert!(check_hours(8760, 24, "s", Change::Increase).is_ok());
        assert!(check_hours(24, 8760, "s", Change::Decrease).is_ok());
    }
}
