//! The AWS JSON 1.1 bodies of the data-plane calls the bench makes, and the
//! parts of their answers it reads. Only what the bench needs: borrowed
//! strings, no full shapes.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::client::Action;
use crate::error::BenchError;

/// A record to send: its payload, base64-encoded, and its partition key.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry<'a> {
    pub data: &'a str,
    pub partition_key: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordBody<'a> {
    stream_name: &'a str,
    data: &'a str,
    partition_key: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutRecordsBody<'a> {
    stream_name: &'a str,
    records: &'a [Entry<'a>],
}

/// `PutRecord` for one record.
pub fn put_record(stream: &str, entry: &Entry<'_>) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 + stream.len() + entry.data.len());
    let shape = PutRecordBody {
        stream_name: stream,
        data: entry.data,
        partition_key: entry.partition_key,
    };
    // Writing plain strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut body, &shape);
    body
}

/// `PutRecords` for a batch.
pub fn put_records(stream: &str, records: &[Entry<'_>]) -> Vec<u8> {
    let size: usize = records.iter().map(|r| r.data.len() + 48).sum();
    let mut body = Vec::with_capacity(64 + stream.len() + size);
    let shape = PutRecordsBody {
        stream_name: stream,
        records,
    };
    // Writing plain strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut body, &shape);
    body
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

/// The part of a `PutRecords` answer the bench counts.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsOutput<'a> {
    #[serde(default)]
    pub failed_record_count: u64,
    #[serde(borrow)]
    pub records: Vec<PutRecordsResult<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsResult<'a> {
    #[serde(borrow, default)]
    pub error_code: Option<Cow<'a, str>>,
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
    /// Base64; borrowed unless the server escaped a character (`\/`).
    #[serde(borrow)]
    pub data: Cow<'a, str>,
}

pub fn parse_put_records(body: &[u8]) -> Result<PutRecordsOutput<'_>, BenchError> {
    serde_json::from_slice(body).map_err(|source| BenchError::BadResponse {
        action: Action::PutRecords.name(),
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
    fn put_records_bodies_are_the_model_shape() {
        let records = [
            Entry {
                data: "AAEC",
                partition_key: "k1",
            },
            Entry {
                data: "AwQF",
                partition_key: "k2",
            },
        ];
        let body: serde_json::Value = serde_json::from_slice(&put_records("s", &records)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"StreamName": "s", "Records": [
                {"Data": "AAEC", "PartitionKey": "k1"},
                {"Data": "AwQF", "PartitionKey": "k2"}]})
        );
    }

    #[test]
    fn get_records_answers_parse_with_escaped_data() {
        let body = br#"{"Records":[{"Data":"a\/b=","SequenceNumber":"1","PartitionKey":"k"}],"NextShardIterator":"it","MillisBehindLatest":0}"#;
        let out = parse_get_records(body).unwrap();
        assert_eq!(out.records[0].data, "a/b=");
        assert_eq!(out.next_shard_iterator.as_deref(), Some("it"));
        assert_eq!(out.millis_behind_latest, Some(0));
    }
}
