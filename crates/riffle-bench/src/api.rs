//! The AWS JSON 1.1 bodies of the data-plane calls the bench makes, and the
//! parts of their answers it reads. Only what the bench needs: borrowed
//! strings, no full shapes.

use std::borrow::Cow;

use serde::Deserialize;

use crate::client::Action;
use crate::error::BenchError;

/// Builds a `PutRecords` body record by record, base64-encoding each
/// payload straight into the body: no per-record string, and no escaping
/// pass over the data (serde_json would scan every base64 byte for
/// characters to escape, and base64 has none).
///
/// `{"StreamName":"…","Records":[{"Data":"…","PartitionKey":"…"},…]}`
pub struct PutRecordsBody {
    body: Vec<u8>,
    records: usize,
}

impl PutRecordsBody {
    /// A body for `records` records of `record_size` bytes each (the size
    /// only sets the capacity).
    pub fn new(stream: &str, records: usize, record_size: usize) -> PutRecordsBody {
        let per_record = record_size.div_ceil(3) * 4 + 64;
        let mut body = Vec::with_capacity(64 + stream.len() + records * per_record);
        body.extend_from_slice(b"{\"StreamName\":");
        json_str(&mut body, stream);
        body.extend_from_slice(b",\"Records\":[");
        PutRecordsBody { body, records: 0 }
    }

    pub fn push(&mut self, data: &[u8], partition_key: &str) {
        if self.records > 0 {
            self.body.push(b',');
        }
        self.records += 1;
        self.body.extend_from_slice(b"{\"Data\":\"");
        base64_simd::STANDARD.encode_append(data, &mut self.body);
        self.body.extend_from_slice(b"\",\"PartitionKey\":");
        json_str(&mut self.body, partition_key);
        self.body.push(b'}');
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.body.extend_from_slice(b"]}");
        self.body
    }
}

/// Builds a Firehose `PutRecordBatch` body the same way as
/// [`PutRecordsBody`]: `{"DeliveryStreamName":"…","Records":[{"Data":"…"},…]}`.
pub struct PutRecordBatchBody {
    body: Vec<u8>,
    records: usize,
}

impl PutRecordBatchBody {
    /// A body for `records` records of `record_size` bytes each (the size
    /// only sets the capacity).
    pub fn new(delivery_stream: &str, records: usize, record_size: usize) -> PutRecordBatchBody {
        let per_record = record_size.div_ceil(3) * 4 + 16;
        let mut body = Vec::with_capacity(64 + delivery_stream.len() + records * per_record);
        body.extend_from_slice(b"{\"DeliveryStreamName\":");
        json_str(&mut body, delivery_stream);
        body.extend_from_slice(b",\"Records\":[");
        PutRecordBatchBody { body, records: 0 }
    }

    pub fn push(&mut self, data: &[u8]) {
        if self.records > 0 {
            self.body.push(b',');
        }
        self.records += 1;
        self.body.extend_from_slice(b"{\"Data\":\"");
        base64_simd::STANDARD.encode_append(data, &mut self.body);
        self.body.extend_from_slice(b"\"}");
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.body.extend_from_slice(b"]}");
        self.body
    }
}

/// `PutRecord` of one record:
/// `{"StreamName":"…","Data":"…","PartitionKey":"…"}`.
pub fn put_record(stream: &str, data: &[u8], partition_key: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 + stream.len() + partition_key.len() + data.len() * 4 / 3);
    body.extend_from_slice(b"{\"StreamName\":");
    json_str(&mut body, stream);
    body.extend_from_slice(b",\"Data\":\"");
    base64_simd::STANDARD.encode_append(data, &mut body);
    body.extend_from_slice(b"\",\"PartitionKey\":");
    json_str(&mut body, partition_key);
    body.push(b'}');
    body
}

/// A JSON string literal, escaped by serde_json (names come from the
/// command line and may hold anything).
fn json_str(out: &mut Vec<u8>, text: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(out, text);
}

/// `GetShardIterator` of a shard at `iterator_type` (`TRIM_HORIZON`,
/// `LATEST`, …).
pub fn get_shard_iterator(stream: &str, shard: &str, iterator_type: &str) -> Vec<u8> {
    serde_json::json!({
        "StreamName": stream,
        "ShardId": shard,
        "ShardIteratorType": iterator_type,
    })
    .to_string()
    .into_bytes()
}

/// `GetRecords` from an iterator, at most `limit` records.
pub fn get_records(iterator: &str, limit: u32) -> Vec<u8> {
    serde_json::json!({ "ShardIterator": iterator, "Limit": limit })
        .to_string()
        .into_bytes()
}

/// The part of a `PutRecords` answer the bench counts; Firehose's
/// `PutRecordBatch` answer is the same with other member names
/// (`FailedPutCount`, `RequestResponses`; each result's `ErrorCode` and
/// `ErrorMessage` are spelt alike).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsOutput<'a> {
    #[serde(default, alias = "FailedPutCount")]
    pub failed_record_count: u64,
    #[serde(borrow, alias = "RequestResponses")]
    pub records: Vec<PutRecordsResult<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsResult<'a> {
    #[serde(borrow, default)]
    pub error_code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub error_message: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetShardIteratorOutput {
    shard_iterator: Option<String>,
}

/// The part of a `GetRecords` answer the bench reads.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput<'a> {
    #[serde(borrow)]
    pub records: Vec<RecordOut<'a>>,
    /// Absent once a closed shard is read to its end.
    #[serde(default)]
    pub next_shard_iterator: Option<String>,
    #[serde(default)]
    pub millis_behind_latest: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordOut<'a> {
    /// Base64 text; borrowed unless the server escaped a character (`\/`).
    #[serde(borrow)]
    pub data: Base64Text<'a>,
}

/// A JSON string read as raw bytes: base64 is ASCII and its decoder checks
/// every character, so serde_json's separate UTF-8 pass over each record's
/// data (7 % of a verifying reader's CPU) is skipped.
pub struct Base64Text<'a>(pub Cow<'a, [u8]>);

impl<'de: 'a, 'a> Deserialize<'de> for Base64Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Base64Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(Base64Text(Cow::Borrowed(v)))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(Base64Text(Cow::Owned(v.to_vec())))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Base64Text(Cow::Borrowed(v.as_bytes())))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Base64Text(Cow::Owned(v.as_bytes().to_vec())))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

/// A `PutRecords` answer, or a `PutRecordBatch` one (`action` names it in
/// errors).
pub fn parse_put_records(body: &[u8], action: Action) -> Result<PutRecordsOutput<'_>, BenchError> {
    serde_json::from_slice(body).map_err(|source| BenchError::BadResponse {
        action: action.name(),
        source,
    })
}

pub fn parse_get_records(body: &[u8]) -> Result<GetRecordsOutput<'_>, BenchError> {
    serde_json::from_slice(body).map_err(|source| BenchError::BadResponse {
        action: Action::GetRecords.name(),
        source,
    })
}

/// The iterator of a `GetShardIterator` answer.
pub fn parse_shard_iterator(body: &[u8]) -> Result<Option<String>, BenchError> {
    serde_json::from_slice::<GetShardIteratorOutput>(body)
        .map(|o| o.shard_iterator)
        .map_err(|source| BenchError::BadResponse {
            action: Action::GetShardIterator.name(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_bodies_are_the_model_shape() {
        let mut batch = PutRecordsBody::new("s\"q", 2, 3);
        batch.push(&[0, 1, 2], "k1");
        batch.push(&[3, 4, 5], "k\\2");
        let body: serde_json::Value = serde_json::from_slice(&batch.finish()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"StreamName": "s\"q", "Records": [
                {"Data": "AAEC", "PartitionKey": "k1"},
                {"Data": "AwQF", "PartitionKey": "k\\2"}]})
        );
        let one: serde_json::Value =
            serde_json::from_slice(&put_record("s", &[0, 1, 2], "k")).unwrap();
        assert_eq!(
            one,
            serde_json::json!({"StreamName": "s", "Data": "AAEC", "PartitionKey": "k"})
        );
    }

    #[test]
    fn put_record_batch_bodies_and_answers_are_the_firehose_model_shape() {
        let mut batch = PutRecordBatchBody::new("d\"s", 2, 3);
        batch.push(&[0, 1, 2]);
        batch.push(&[3, 4, 5]);
        let body: serde_json::Value = serde_json::from_slice(&batch.finish()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"DeliveryStreamName": "d\"s",
                "Records": [{"Data": "AAEC"}, {"Data": "AwQF"}]})
        );
        let answer = br#"{"FailedPutCount":1,"Encrypted":false,"RequestResponses":[{"RecordId":"r1"},{"ErrorCode":"ServiceUnavailableException","ErrorMessage":"Slow down."}]}"#;
        let out = parse_put_records(answer, Action::PutRecordBatch).unwrap();
        assert_eq!(out.failed_record_count, 1);
        assert_eq!(out.records.len(), 2);
        assert!(out.records[0].error_code.is_none());
        assert_eq!(
            out.records[1].error_code.as_deref(),
            Some("ServiceUnavailableException")
        );
    }

    #[test]
    fn get_records_answers_parse_with_escaped_data() {
        let body = br#"{"Records":[{"Data":"a\/b=","SequenceNumber":"1","PartitionKey":"k"}],"NextShardIterator":"it","MillisBehindLatest":0}"#;
        let out = parse_get_records(body).unwrap();
        assert_eq!(*out.records[0].data.0, *b"a/b=");
        assert_eq!(out.next_shard_iterator.as_deref(), Some("it"));
        assert_eq!(out.millis_behind_latest, Some(0));
    }
}
