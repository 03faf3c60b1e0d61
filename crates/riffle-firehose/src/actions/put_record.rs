//! PutRecord: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecord.html>
//!
//! Also what PutRecordBatch shares with it: the record-size check, the
//! stream's admission, the durable append and the record ids.

use std::sync::Arc;

use bytes::Bytes;
use riffle_log::{Appended, LogError, RecordIn, Seq};
use serde::Deserialize;
use serde_json::json;

use crate::catalog::Kind;
use crate::json::{self, Blob, Str};
use crate::stream::DeliveryStream;
use crate::throttle::SLOW_DOWN;
use crate::time::now_ms;
use crate::validate::{Shown, Violations};
use crate::{Firehose, FirehoseError, errors};

/// A record's data before base64 (model `Data`: "max": 1024000, "Each
/// record … can be as large as 1,000 KiB").
pub const RECORD_BYTES_MAX: usize = 1_024_000;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    DeliveryStreamName: Option<Str<'a>>,
    #[serde(borrow)]
    Record: Option<RecordInput<'a>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
pub struct RecordInput<'a> {
    #[serde(borrow)]
    pub Data: Option<Blob<'a>>,
}

/// The model's constraints on one record whose data decoded to `len`
/// bytes (`None`: no Data); `path` is `record.` or `records.<n>.member.`.
pub fn check_record(v: &mut Violations, path: impl Fn() -> String, len: Option<usize>) {
    let Some(len) = len else {
        v.required(&None::<()>, &format!("{}data", path()));
        return;
    };
    if len > RECORD_BYTES_MAX {
        v.check(
            false,
            Shown::Bytes(len),
            &format!("{}data", path()),
            format_args!("Member must have length less than or equal to {RECORD_BYTES_MAX}"),
        );
    }
}

/// The stream that takes records named `name`, or AWS's refusal.
pub fn target(firehose: &Firehose, name: &str) -> Result<Arc<DeliveryStream>, FirehoseError> {
    let stream = firehose.lookup(name)?;
    let record = stream.record();
    if record.kind == Kind::KinesisStreamAsSource {
        return Err(FirehoseError::InvalidArgument(
            "This operation is not permitted on KinesisStreamAsSource delivery stream type."
                .to_owned(),
        ));
    }
    if record.status_at(now_ms()) != "ACTIVE" {
        return Err(errors::not_found(name, firehose.account()));
    }
    Ok(stream)
}

/// How many of `records` (a prefix) the stream's throughput limits admit
/// now (all of them when limits are off); a request over the request rate
/// is refused whole. Refused records are counted.
pub fn admit(
    firehose: &Firehose,
    stream: &DeliveryStream,
    records: &[&[u8]],
) -> Result<usize, FirehoseError> {
    if !firehose.config().throughput_limits {
        return Ok(records.len());
    }
    match stream.throttle.admit(records.iter().map(|r| r.len())) {
        Some(admitted) => {
            let refused = records.len() - admitted;
            stream.metrics.put(0, 0, refused as u64);
            Ok(admitted)
        }
        None => {
            stream.metrics.put(0, 0, records.len() as u64);
            Err(FirehoseError::ServiceUnavailable(SLOW_DOWN.to_owned()))
        }
    }
}

/// Appends `records` as one atomic batch; resolves once it is durable.
/// Returns where it went and whether it was sealed. A stream deleted
/// meanwhile is not found, as it would be a moment later.
pub async fn append(
    firehose: &Firehose,
    stream: &DeliveryStream,
    records: &[&[u8]],
) -> Result<(Appended, bool), FirehoseError> {
    append_to_log(stream, records)
        .await
        .map_err(|err| match err {
            FirehoseError::Storage(LogError::Deleted { .. }) => {
                errors::not_found(&stream.record().name, firehose.account())
            }
            other => other,
        })
}

async fn append_to_log(
    stream: &DeliveryStream,
    records: &[&[u8]],
) -> Result<(Appended, bool), FirehoseError> {
    let records: Vec<RecordIn<'_>> = records
        .iter()
        .map(|data| RecordIn {
            partition_key: b"",
            explicit_hash_key: None,
            data,
        })
        .collect();
    let now = now_ms();
    Ok(match stream.data_key() {
        Some(key) => (
            stream.log.append_encrypted(&records, now, &key).await?,
            true,
        ),
        None => (stream.log.append(&records, now).await?, false),
    })
}

/// A record's id: where it lies, as opaque text (AWS's ids are opaque too).
pub fn record_id(incarnation: u64, seq: Seq) -> String {
    let mut id = String::with_capacity(RECORD_ID_LEN);
    write_record_id(&mut id, incarnation, seq);
    id
}

/// The length of a [`record_id`]: two 16-digit hex numbers.
const RECORD_ID_LEN: usize = 32;

/// Appends [`record_id`] to `out`.
pub fn write_record_id(out: &mut String, incarnation: u64, seq: Seq) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "{incarnation:016x}{seq:016x}");
}

pub async fn run(firehose: &Firehose, body: &[u8]) -> Result<Bytes, FirehoseError> {
    let input: Input = json::parse(body)?;
    let mut data = Vec::new();
    let blob = input.Record.as_ref().and_then(|r| r.Data.as_ref());
    if let Some(blob) = blob {
        blob.decode_into(&mut data)?;
    }
    let mut v = Violations::new();
    let name = input.DeliveryStreamName.as_ref().map(Str::as_str);
    super::check_name(&mut v, name, "deliveryStreamName", true);
    v.required(&input.Record, "record");
    if input.Record.is_some() {
        check_record(&mut v, || "record.".to_owned(), blob.map(|_| data.len()));
    }
    v.into_result::<crate::validate::ValidationError>()?;
    let stream = target(firehose, name.unwrap_or_default())?;
    if admit(firehose, &stream, &[&data])? == 0 {
        return Err(FirehoseError::ServiceUnavailable(SLOW_DOWN.to_owned()));
    }
    let (appended, encrypted) = append(firehose, &stream, &[&data]).await?;
    stream.metrics.put(1, data.len() as u64, 0);
    let id = record_id(stream.record().incarnation, appended.first_seq);
    Ok(super::json_body(
        &json!({ "RecordId": id, "Encrypted": encrypted }),
    ))
}
