//! PutRecordBatch: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>
//!
//! Every record's data is decoded into one buffer and the admitted records
//! go to the stream's log in one atomic append; results come per record,
//! in order, with `ServiceUnavailableException` for records the
//! throughput limits refused.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::put_record::{self, RecordInput, check_record};
use crate::json::Span;
use crate::json::{self, Str};
use crate::throttle::SLOW_DOWN;
use crate::validate::{Shown, Violations};
use crate::{Firehose, FirehoseError};

/// Records per call (API_PutRecordBatch: "up to 500 records").
pub const RECORDS_MAX: usize = 500;
/// Data per call (API_PutRecordBatch: "up to a limit of 4 MB for the
/// entire request"; AWS counts MiB).
pub const REQUEST_BYTES_MAX: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    DeliveryStreamName: Option<Str<'a>>,
    #[serde(borrow)]
    Records: Option<Vec<RecordInput<'a>>>,
}

/// Decodes every record's data into one buffer (see `json::decode_blobs`).
fn decode_all(entries: &[RecordInput<'_>]) -> Result<(Vec<u8>, Vec<Span>), FirehoseError> {
    Ok(crate::json::decode_blobs(
        entries.iter().map(|e| e.Data.as_ref()),
    )?)
}

fn validate(input: &Input<'_>, spans: &[Span]) -> Result<(), FirehoseError> {
    let mut v = Violations::new();
    let name = input.DeliveryStreamName.as_ref().map(Str::as_str);
    super::check_name(&mut v, name, "deliveryStreamName", true);
    v.required(&input.Records, "records");
    if let Some(entries) = &input.Records {
        let shown = format!("[{} records]", entries.len());
        v.check(
            !entries.is_empty(),
            Shown::Text(&shown),
            "records",
            "Member must have length greater than or equal to 1",
        );
        v.check(
            entries.len() <= RECORDS_MAX,
            Shown::Text(&shown),
            "records",
            format_args!("Member must have length less than or equal to {RECORDS_MAX}"),
        );
        for (i, span) in spans.iter().enumerate().take(RECORDS_MAX) {
            let len = span.map(|(start, end)| end - start);
            check_record(&mut v, || format!("records.{}.member.", i + 1), len);
        }
    }
    v.into_result()
}

pub async fn run(firehose: &Firehose, body: &[u8]) -> Result<Bytes, FirehoseError> {
    let input: Input = json::parse(body)?;
    let entries = input.Records.as_deref().unwrap_or_default();
    let (arena, spans) = decode_all(entries)?;
    validate(&input, &spans)?;
    if arena.len() > REQUEST_BYTES_MAX {
        return Err(FirehoseError::InvalidArgument(format!(
            "Records size exceeds {} MB limit",
            REQUEST_BYTES_MAX / (1024 * 1024)
        )));
    }
    let name = input.DeliveryStreamName.as_ref().map_or("", Str::as_str);
    let stream = put_record::target(firehose, name)?;
    let datas: Vec<&[u8]> = spans
        .iter()
        .map(|span| span.map_or(&[][..], |(start, end)| &arena[start..end]))
        .collect();
    let admitted = put_record::admit(firehose, &stream, &datas)?;
    let (appended, encrypted) = if admitted > 0 {
        let (appended, encrypted) =
            put_record::append(firehose, &stream, &datas[..admitted]).await?;
        let bytes: usize = datas[..admitted].iter().map(|d| d.len()).sum();
        stream.metrics.put(admitted as u64, bytes as u64, 0);
        (Some(appended), encrypted)
    } else {
        (None, stream.data_key().is_some())
    };
    let first_id = appended.map(|a| (stream.record().incarnation, a.first_seq));
    Ok(answer(first_id, admitted, datas.len(), encrypted))
}

/// The answer, written straight into one buffer: a `json!` value per
/// record cost 500 maps and their strings per call, a visible share of
/// `riffle bench firehose`'s profile. `first_id` is the incarnation and
/// log position of the first admitted record; the first `admitted` of
/// `total` records were appended in order, the rest refused.
fn answer(first_id: Option<(u64, u64)>, admitted: usize, total: usize, encrypted: bool) -> Bytes {
    use std::fmt::Write;
    const RESULT_LEN_MAX: usize = 96;
    let mut out = String::with_capacity(96 + total * RESULT_LEN_MAX);
    let refused = Value::from(SLOW_DOWN).to_string();
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        r#"{{"FailedPutCount":{},"Encrypted":{encrypted},"RequestResponses":["#,
        total - admitted
    );
    for i in 0..total {
        if i > 0 {
            out.push(',');
        }
        match first_id {
            Some((incarnation, first)) if i < admitted => {
                out.push_str(r#"{"RecordId":""#);
                put_record::write_record_id(&mut out, incarnation, first + i as u64);
                out.push_str(r#""}"#);
            }
            _ => {
                let _ = write!(
                    out,
                    r#"{{"ErrorCode":"ServiceUnavailableException","ErrorMessage":{refused}}}"#
                );
            }
        }
    }
    out.push_str("]}");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::actions::put_record::record_id;

    #[test]
    fn the_answer_lists_ids_in_order_then_the_refused_records_as_json() {
        let some: Value = serde_json::from_slice(&answer(Some((7, 41)), 2, 3, true)).unwrap();
        assert_eq!(
            some,
            json!({
                "FailedPutCount": 1,
                "Encrypted": true,
                "RequestResponses": [
                    {"RecordId": record_id(7, 41)},
                    {"RecordId": record_id(7, 42)},
                    {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": SLOW_DOWN},
                ],
            })
        );
        let none: Value = serde_json::from_slice(&answer(None, 0, 1, false)).unwrap();
        assert_eq!(none["FailedPutCount"], 1);
        assert_eq!(none["RequestResponses"][0]["ErrorMessage"], SLOW_DOWN);
    }
}
