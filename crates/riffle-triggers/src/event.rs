//! What a poller sends and reads: Lambda's Kinesis event, the function's
//! `batchItemFailures` answer, and the record of a discarded batch that an
//! on-failure destination is sent.
//!
//! The event is Lambda's "Example Kinesis record event" ("Using AWS Lambda
//! with Amazon Kinesis", Developer Guide):
//!
//! ```json
//! {"Records": [{"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "1",
//!    "sequenceNumber": "4959…", "data": "SGVsbG8=", "approximateArrivalTimestamp": 1545084650.987},
//!  "eventSource": "aws:kinesis", "eventVersion": "1.0",
//!  "eventID": "shardId-000000000006:4959…", "eventName": "aws:kinesis:record",
//!  "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
//!  "awsRegion": "us-east-2", "eventSourceARN": "arn:aws:kinesis:…:stream/lambda-stream"}]}
//! ```

use bytes::Bytes;
use riffle_log::Seq;
use serde_json::{Value, json};

/// One record as a function is given it: a Kinesis record, or one user
/// record of a KPL-aggregated one (same sequence number, its own key and
/// data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rec {
    /// The Kinesis record's position in its shard (where a checkpoint
    /// before it points).
    pub seq: Seq,
    pub sequence_number: String,
    pub arrival_ms: i64,
    pub partition_key: String,
    pub data: Bytes,
}

/// What every record of one mapping's events says besides itself.
#[derive(Debug, Clone)]
pub struct Source {
    pub region: String,
    pub stream_arn: String,
    /// The role Lambda would have assumed: Riffle's functions have none,
    /// so the account's `riffle` role is named.
    pub identity_arn: String,
}

/// Lambda's Kinesis event for `records` read from `shard_id`.
pub fn kinesis_event(source: &Source, shard_id: &str, records: &[Rec]) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64_simd::STANDARD.encode_to_string(&r.data),
                    "approximateArrivalTimestamp": (r.arrival_ms as f64) / 1000.0,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{shard_id}:{}", r.sequence_number),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": source.identity_arn,
                "awsRegion": source.region,
                "eventSourceARN": source.stream_arn,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// What a function's answer says of its batch, under
/// `ReportBatchItemFailures` ("Configuring partial batch response with
/// Kinesis Data Streams and Lambda").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Every record succeeded: no answer, `null`, `{}`, or an empty or
    /// null `batchItemFailures`.
    Success,
    /// Processing resumes at this index of the batch: the failed record
    /// of lowest sequence number.
    FailedFrom(usize),
    /// The answer cannot be read as a partial batch response (an
    /// `itemIdentifier` missing, empty or not of the batch): Lambda counts
    /// the whole batch as failed.
    Invalid,
}

/// Reads a successful invocation's answer for `records`.
pub fn batch_item_failures(payload: &[u8], records: &[Rec]) -> Answer {
    let answer: Value = match serde_json::from_slice(payload) {
        Ok(answer) => answer,
        Err(_) if payload.iter().all(u8::is_ascii_whitespace) => return Answer::Success,
        Err(_) => return Answer::Invalid,
    };
    let failures = match &answer {
        Value::Null => return Answer::Success,
        Value::Object(map) => match map.get("batchItemFailures") {
            None | Some(Value::Null) => return Answer::Success,
            Some(Value::Array(failures)) => failures,
            Some(_) => return Answer::Invalid,
        },
        _ => return Answer::Invalid,
    };
    let mut first: Option<usize> = None;
    for failure in failures {
        let Some(id) = failure.get("itemIdentifier").and_then(Value::as_str) else {
            return Answer::Invalid;
        };
        let Some(at) = records.iter().position(|r| r.sequence_number == id) else {
            return Answer::Invalid;
        };
        first = Some(first.map_or(at, |f| f.min(at)));
    }
    first.map_or(Answer::Success, Answer::FailedFrom)
}

/// Why a batch was discarded: Lambda's `condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    RetryAttemptsExhausted,
    RecordAgeExceeded,
}

impl Condition {
    fn as_str(self) -> &'static str {
        match self {
            Condition::RetryAttemptsExhausted => "RetryAttemptsExhausted",
            Condition::RecordAgeExceeded => "RecordAgeExceeded",
        }
    }
}

/// How the last invocation of a discarded batch ended.
#[derive(Debug, Clone, Default)]
pub struct LastResponse {
    pub function_error: Option<String>,
    pub executed_version: Option<String>,
}

/// The invocation record of a discarded batch, as Lambda sends it to an
/// on-failure destination ("Retain discarded batch records for a Kinesis
/// Data Streams event source in Lambda", example invocation record).
pub struct FailureRecord<'a> {
    pub request_id: &'a str,
    pub function_arn: &'a str,
    pub condition: Condition,
    pub invoke_count: u32,
    pub response: &'a LastResponse,
    pub now_ms: i64,
    pub shard_id: &'a str,
    pub stream_arn: &'a str,
    pub records: &'a [Rec],
}

impl FailureRecord<'_> {
    pub fn to_json(&self) -> Value {
        let (first, last) = match (self.records.first(), self.records.last()) {
            (Some(first), Some(last)) => (first, last),
            _ => return json!({}),
        };
        let mut response = json!({"statusCode": 200});
        if let Some(version) = &self.response.executed_version {
            response["executedVersion"] = json!(version);
        }
        if let Some(error) = &self.response.function_error {
            response["functionError"] = json!(error);
        }
        json!({
            "requestContext": {
                "requestId": self.request_id,
                "functionArn": self.function_arn,
                "condition": self.condition.as_str(),
                "approximateInvokeCount": self.invoke_count,
            },
            "responseContext": response,
            "version": "1.0",
            "timestamp": iso8601(self.now_ms),
            "KinesisBatchInfo": {
                "shardId": self.shard_id,
                "startSequenceNumber": first.sequence_number,
                "endSequenceNumber": last.sequence_number,
                "approximateArrivalOfFirstRecord": iso8601(first.arrival_ms),
                "approximateArrivalOfLastRecord": iso8601(last.arrival_ms),
                "batchSize": self.records.len(),
                "streamArn": self.stream_arn,
            },
        })
    }
}

/// `2019-11-14T00:38:06.021Z`, as Lambda writes its timestamps.
pub fn iso8601(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: Seq, pk: &str, data: &str) -> Rec {
        Rec {
            seq,
            sequence_number: format!("4959{seq:04}"),
            arrival_ms: 1_545_084_650_987,
            partition_key: pk.to_owned(),
            data: Bytes::from(data.to_owned()),
        }
    }

    fn source() -> Source {
        Source {
            region: "us-east-2".into(),
            stream_arn: "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream".into(),
            identity_arn: "arn:aws:iam::123456789012:role/riffle".into(),
        }
    }

    #[test]
    fn the_event_is_lambdas_sample_event() {
        let event = kinesis_event(
            &source(),
            "shardId-000000000006",
            &[rec(1, "1", "Hello, this is a test.")],
        );
        assert_eq!(
            event,
            json!({"Records": [{
                "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "1",
                    "sequenceNumber": "49590001", "data": "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==",
                    "approximateArrivalTimestamp": 1545084650.987},
                "eventSource": "aws:kinesis", "eventVersion": "1.0",
                "eventID": "shardId-000000000006:49590001", "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/riffle",
                "awsRegion": "us-east-2",
                "eventSourceARN": "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"}]})
        );
    }

    #[test]
    fn partial_batch_answers_are_read_as_lambda_reads_them() {
        let batch = [rec(1, "a", "x"), rec(2, "a", "y"), rec(3, "b", "z")];
        for success in [
            &b""[..],
            b"null",
            b"{}",
            b"{\"batchItemFailures\": []}",
            b"{\"batchItemFailures\": null}",
        ] {
            assert_eq!(batch_item_failures(success, &batch), Answer::Success);
        }
        let two = br#"{"batchItemFailures": [{"itemIdentifier": "49590003"}, {"itemIdentifier": "49590002"}]}"#;
        assert_eq!(
            batch_item_failures(two, &batch),
            Answer::FailedFrom(1),
            "the lowest sequence number"
        );
        for invalid in [
            &br#"{"batchItemFailures": [{"itemIdentifier": ""}]}"#[..],
            br#"{"batchItemFailures": [{"itemIdentifier": null}]}"#,
            br#"{"batchItemFailures": [{"item": "49590002"}]}"#,
            br#"{"batchItemFailures": [{"itemIdentifier": "1"}]}"#,
            br#"{"batchItemFailures": "x"}"#,
            b"not json",
        ] {
            assert_eq!(batch_item_failures(invalid, &batch), Answer::Invalid);
        }
    }

    #[test]
    fn a_failure_record_has_lambdas_members() {
        let batch = [rec(1, "a", "x"), rec(2, "a", "y")];
        let response = LastResponse {
            function_error: Some("Unhandled".into()),
            executed_version: Some("$LATEST".into()),
        };
        let record = FailureRecord {
            request_id: "r",
            function_arn: "arn:aws:lambda:us-east-2:123456789012:function:f",
            condition: Condition::RetryAttemptsExhausted,
            invoke_count: 3,
            response: &response,
            now_ms: 1_573_691_886_021,
            shard_id: "shardId-000000000001",
            stream_arn: "arn:aws:kinesis:us-east-2:123456789012:stream/mystream",
            records: &batch,
        }
        .to_json();
        assert_eq!(
            record["requestContext"]["condition"],
            "RetryAttemptsExhausted"
        );
        assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(
            record["responseContext"],
            json!({"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"})
        );
        assert_eq!(record["timestamp"], "2019-11-14T00:38:06.021Z");
        assert_eq!(
            record["KinesisBatchInfo"]["startSequenceNumber"],
            "49590001"
        );
        assert_eq!(record["KinesisBatchInfo"]["endSequenceNumber"], "49590002");
        assert_eq!(record["KinesisBatchInfo"]["batchSize"], 2);
        assert_eq!(
            record["KinesisBatchInfo"]["approximateArrivalOfFirstRecord"],
            "2018-12-17T22:10:50.987Z"
        );
    }
}
