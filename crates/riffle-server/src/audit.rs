//! The audit log: one JSON line per API call, in CloudTrail's record shape,
//! appended to a file by a writer thread, when `riffle serve` is given
//! `--audit-log`.
//!
//! A line (one per call that names an operation of a registered service,
//! S3's included, refused or not):
//!
//! ```text
//! {"eventVersion":"1.11","userIdentity":{"type":"IAMUser"|"Unknown","accountId":…,"accessKeyId":…},
//!  "eventTime":"2026-12-04T18:30:05Z","eventSource":"kinesis.amazonaws.com","eventName":"CreateStream",
//!  "awsRegion":"us-east-1","sourceIPAddress":"127.0.0.1","userAgent":"aws-cli/…",
//!  "requestParameters":{"streamName":"demo","shardCount":2},"responseElements":null,
//!  "errorCode":"ResourceInUseException","errorMessage":"…",          (failed calls only)
//!  "requestID":…,"eventID":…,"readOnly":false,"eventType":"AwsApiCall","managementEvent":true,
//!  "recipientAccountId":…,"eventCategory":"Management",
//!  "additionalEventData":{"httpStatus":400,"latencyMicros":812}}
//! ```
//!
//! `requestParameters` are the request's members with CloudTrail's
//! lower-camel-case names, without record payloads (`Data`, `Records`): an
//! audit log says who did what, never what the data was. `userIdentity` is
//! `IAMUser` when the server verified the signature, `Unknown` otherwise
//! (the key id is then only what the client claimed).
//!
//! As in CloudTrail, data events (each service's `data_events`: PutRecord,
//! PutRecords, GetRecords, GetShardIterator, SubscribeToShard; S3's
//! object operations, GetObject, PutObject, …) are logged only when asked
//! for. An S3 call's `requestParameters` are its `bucketName` and `key`.
//!
//! Requests hand their line to a bounded queue and go on; when the writer
//! falls behind, they wait for room, so no line is dropped. The writer
//! writes what has queued in one `write` and flushes it to the OS, and syncs
//! the file when it closes: a SIGKILL can lose the lines still queued
//! (milliseconds' worth), SIGTERM loses none.

use crate::service::ServiceInfo;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tracing::{error, warn};

/// Lines queued for the writer before requests wait: a few megabytes.
const QUEUE_LINES_MAX: usize = 16_384;
/// Lines the writer takes from the queue per write.
const BATCH_LINES_MAX: usize = 1_024;
/// CloudTrail's record version this shape follows.
const EVENT_VERSION: &str = "1.11";
/// Members that carry record payloads; never written to the log.
const PAYLOAD_MEMBERS: [&str; 2] = ["Data", "Records"];

/// Why the audit log cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("cannot open the audit log {}: {source}", path.display())]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the audit log writer: {0}")]
    Thread(#[source] std::io::Error),
}

enum Entry {
    Line(Vec<u8>),
    Close,
}

/// The request side of the log: cheap to clone, one per server.
#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Entry>,
    data_events: bool,
    region: String,
    account_id: String,
}

/// The writer thread, to be closed when the server has stopped.
pub struct AuditWriter {
    queue: mpsc::Sender<Entry>,
    thread: JoinHandle<()>,
}

impl AuditLog {
    /// Opens (creating, appending to) `path` and starts its writer.
    pub fn open(
        path: &Path,
        data_events: bool,
        region: &str,
        account_id: &str,
    ) -> Result<(AuditLog, AuditWriter), AuditError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| AuditError::Open {
                path: path.to_owned(),
                source,
            })?;
        let (queue, entries) = mpsc::channel(QUEUE_LINES_MAX);
        let shown = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("riffle-audit".into())
            .spawn(move || write_entries(file, &shown, entries))
            .map_err(AuditError::Thread)?;
        let log = AuditLog {
            queue: queue.clone(),
            data_events,
            region: region.to_owned(),
            account_id: account_id.to_owned(),
        };
        Ok((log, AuditWriter { queue, thread }))
    }

    /// Whether calls of `action` are logged.
    /// Each service names its data events ([`ServiceInfo::data_events`]).
    pub(crate) fn logs(&self, service: &ServiceInfo, action: &str) -> bool {
        self.data_events || !service.data_events.contains(&action)
    }

    /// Queues a call's line; waits only while the queue is full.
    pub(crate) async fn record(&self, call: &Call<'_>) {
        let line = self.line(call, SystemTime::now());
        // Closed only after the server stopped serving: nothing to log then.
        let _ = self.queue.send(Entry::Line(line)).await;
    }

    fn line(&self, call: &Call<'_>, at: SystemTime) -> Vec<u8> {
        let secs = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let data = call.service.data_events.contains(&call.action);
        let event_time = iso8601(secs);
        let source_ip = call.peer.ip().to_string();
        let event_id = crate::headers::RequestId::new().to_string();
        let parameters = call.parameters.and_then(request_parameters);
        let record = Record {
            event_version: EVENT_VERSION,
            user_identity: Identity {
                kind: if call.verified { "IAMUser" } else { "Unknown" },
                account_id: &self.account_id,
                access_key_id: call.access_key_id,
            },
            event_time: &event_time,
            event_source: call.service.event_source,
            event_name: call.action,
            aws_region: &self.region,
            source_ip_address: &source_ip,
            user_agent: call.user_agent,
            request_parameters: parameters.as_deref(),
            response_elements: None,
            error_code: call.error.map(|(code, _)| code),
            error_message: call.error.and_then(|(_, message)| message),
            request_id: call.request_id,
            event_id: &event_id,
            read_only: is_read_only(call.action),
            event_type: "AwsApiCall",
            management_event: !data,
            recipient_account_id: &self.account_id,
            event_category: if data { "Data" } else { "Management" },
            additional_event_data: Additional {
                http_status: call.status,
                latency_micros: call.latency_micros,
            },
        };
        let mut line = Vec::with_capacity(1024);
        serde_json::to_writer(&mut line, &record).expect("a record serializes");
        line.push(b'\n');
        line
    }
}

/// One line of the log; the names are CloudTrail's.
#[derive(Serialize)]
struct Record<'a> {
    #[serde(rename = "eventVersion")]
    event_version: &'a str,
    #[serde(rename = "userIdentity")]
    user_identity: Identity<'a>,
    #[serde(rename = "eventTime")]
    event_time: &'a str,
    #[serde(rename = "eventSource")]
    event_source: &'a str,
    #[serde(rename = "eventName")]
    event_name: &'a str,
    #[serde(rename = "awsRegion")]
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: &'a str,
    #[serde(rename = "userAgent", skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'a str>,
    #[serde(rename = "requestParameters")]
    request_parameters: Option<&'a RawValue>,
    /// Always null: responses are not logged (CloudTrail logs few of them).
    #[serde(rename = "responseElements")]
    response_elements: Option<&'a RawValue>,
    #[serde(rename = "errorCode", skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(rename = "errorMessage", skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    #[serde(rename = "readOnly")]
    read_only: bool,
    #[serde(rename = "eventType")]
    event_type: &'a str,
    #[serde(rename = "managementEvent")]
    management_event: bool,
    #[serde(rename = "recipientAccountId")]
    recipient_account_id: &'a str,
    #[serde(rename = "eventCategory")]
    event_category: &'a str,
    #[serde(rename = "additionalEventData")]
    additional_event_data: Additional,
}

#[derive(Serialize)]
struct Identity<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(rename = "accountId")]
    account_id: &'a str,
    #[serde(rename = "accessKeyId", skip_serializing_if = "Option::is_none")]
    access_key_id: Option<&'a str>,
}

#[derive(Serialize)]
struct Additional {
    #[serde(rename = "httpStatus")]
    http_status: u16,
    #[serde(rename = "latencyMicros")]
    latency_micros: u64,
}

impl AuditWriter {
    /// Writes what is queued, syncs the file and stops the thread.
    pub async fn close(self) {
        let _ = self.queue.send(Entry::Close).await;
        let thread = self.thread;
        let joined = tokio::task::spawn_blocking(move || thread.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            error!("the audit log writer ended abnormally");
        }
    }
}

/// What the edge knows of one call when it answers.
pub(crate) struct Call<'a> {
    /// The service called: its eventSource and data events.
    pub(crate) service: &'static ServiceInfo,
    pub(crate) action: &'a str,
    pub(crate) request_id: &'a str,
    pub(crate) peer: SocketAddr,
    pub(crate) access_key_id: Option<&'a str>,
    /// The server checked the signature of `access_key_id`.
    pub(crate) verified: bool,
    pub(crate) user_agent: Option<&'a str>,
    /// The request as JSON, when it parsed.
    pub(crate) parameters: Option<&'a [u8]>,
    pub(crate) status: u16,
    pub(crate) error: Option<(&'a str, Option<&'a str>)>,
    pub(crate) latency_micros: u64,
}

fn write_entries(file: File, path: &Path, mut entries: mpsc::Receiver<Entry>) {
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let mut batch = Vec::with_capacity(BATCH_LINES_MAX);
    let mut failing = false;
    loop {
        if entries.blocking_recv_many(&mut batch, BATCH_LINES_MAX) == 0 {
            break; // every sender is gone
        }
        let mut closing = false;
        for entry in batch.drain(..) {
            match entry {
                Entry::Line(line) => {
                    if let Err(err) = out.write_all(&line) {
                        report(&mut failing, path, &err);
                    }
                }
                Entry::Close => closing = true,
            }
        }
        match out.flush() {
            Ok(()) => failing = false,
            Err(err) => report(&mut failing, path, &err),
        }
        if closing {
            break;
        }
    }
    if let Err(err) = out.flush().and_then(|()| out.get_ref().sync_data()) {
        error!(path = %path.display(), %err, "cannot sync the audit log at shutdown");
    }
}

/// Logs a write failure once per run of failures (a full disk would
/// otherwise log every batch), and keeps serving.
fn report(failing: &mut bool, path: &Path, err: &std::io::Error) {
    if !*failing {
        warn!(path = %path.display(), %err, "cannot write the audit log; lines are being lost");
    }
    *failing = true;
}

/// The request's members with CloudTrail's names (the first letter
/// lowered), payloads left out, values as sent. Nested names stay as they
/// are: a nested object may be a map of the caller's own keys (tags).
/// `None` if the body is not a JSON object.
fn request_parameters(json: &[u8]) -> Option<Box<RawValue>> {
    let mut out = Vec::with_capacity(json.len().min(512));
    let mut reader = serde_json::Deserializer::from_slice(json);
    reader.deserialize_map(Members(&mut out)).ok()?;
    reader.end().ok()?;
    // The members were copied from valid JSON: the result is valid JSON.
    RawValue::from_string(String::from_utf8(out).ok()?).ok()
}

/// Streams a JSON object's members into the output, renamed and filtered.
struct Members<'o>(&'o mut Vec<u8>);

impl<'de> Visitor<'de> for Members<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<(), A::Error> {
        self.0.push(b'{');
        let mut first = true;
        // Member names of the Kinesis API have no escapes, so they borrow.
        while let Some(name) = members.next_key::<&'de str>()? {
            let value = members.next_value::<&'de RawValue>()?;
            if PAYLOAD_MEMBERS.contains(&name) {
                continue;
            }
            if !first {
                self.0.push(b',');
            }
            first = false;
            self.0.push(b'"');
            // The model's member names are ASCII letters and digits.
            if let Some((initial, rest)) = name.as_bytes().split_first() {
                self.0.push(initial.to_ascii_lowercase());
                self.0.extend_from_slice(rest);
            }
            self.0.extend_from_slice(b"\":");
            self.0.extend_from_slice(value.get().as_bytes());
        }
        self.0.push(b'}');
        Ok(())
    }
}

fn is_read_only(action: &str) -> bool {
    ["Describe", "List", "Get", "Head"]
        .iter()
        .any(|prefix| action.starts_with(prefix))
        || action == "SubscribeToShard"
}

/// `2026-12-04T18:30:05Z`, CloudTrail's `eventTime`.
fn iso8601(secs: i64) -> String {
    let basic = riffle_kinesis::amz_date(secs); // 20261204T183005Z
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &basic[0..4],
        &basic[4..6],
        &basic[6..8],
        &basic[9..11],
        &basic[11..13],
        &basic[13..15]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    use crate::services::kinesis::KINESIS;

    fn call<'a>(action: &'a str, parameters: &'a [u8]) -> Call<'a> {
        Call {
            service: &KINESIS,
            action,
            request_id: "5d4c3b2a-0000-4000-8000-000000000001",
            peer: "127.0.0.1:50000".parse().unwrap(),
            access_key_id: Some("AKIDAUDIT"),
            verified: true,
            user_agent: Some("aws-cli/1.46.3"),
            parameters: Some(parameters),
            status: 200,
            error: None,
            latency_micros: 812,
        }
    }

    fn parse(line: &[u8]) -> Value {
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        serde_json::from_slice(line).unwrap()
    }

    #[tokio::test]
    async fn a_call_becomes_a_cloudtrail_record_without_its_payload() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _writer) = AuditLog::open(
            &dir.path().join("a.log"),
            false,
            "us-east-1",
            "000000000000",
        )
        .unwrap();
        let body = br#"{"StreamName":"s","Data":"c2VjcmV0","PartitionKey":"k","StartingPosition":{"Type":"LATEST"}}"#;
        let at = UNIX_EPOCH + std::time::Duration::from_secs(1_796_409_005);
        let record = parse(&log.line(&call("PutRecord", body), at));
        assert_eq!(record["eventTime"], "2026-12-04T18:30:05Z");
        assert_eq!(record["eventName"], "PutRecord");
        assert_eq!(record["eventCategory"], "Data");
        assert_eq!(record["managementEvent"], false);
        assert_eq!(record["readOnly"], false);
        assert_eq!(record["sourceIPAddress"], "127.0.0.1");
        assert_eq!(
            record["userIdentity"],
            json!({"type": "IAMUser", "accountId": "000000000000", "accessKeyId": "AKIDAUDIT"})
        );
        assert_eq!(
            record["requestParameters"],
            json!({"streamName": "s", "partitionKey": "k", "startingPosition": {"Type": "LATEST"}})
        );
        assert!(
            !String::from_utf8_lossy(&log.line(&call("PutRecord", body), at)).contains("c2VjcmV0")
        );
        assert!(record.get("errorCode").is_none());

        let mut failed = call("DescribeStreamSummary", br#"{"StreamARN":"arn:x"}"#);
        failed.error = Some(("ResourceNotFoundException", Some("Stream x not found.")));
        failed.status = 400;
        failed.verified = false;
        let record = parse(&log.line(&failed, at));
        assert_eq!(record["errorCode"], "ResourceNotFoundException");
        assert_eq!(record["errorMessage"], "Stream x not found.");
        assert_eq!(record["readOnly"], true);
        assert_eq!(record["eventCategory"], "Management");
        assert_eq!(record["userIdentity"]["type"], "Unknown");
        assert_eq!(record["requestParameters"], json!({"streamARN": "arn:x"}));
        assert_eq!(record["additionalEventData"]["httpStatus"], 400);
    }

    #[test]
    fn data_events_are_logged_only_when_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let (management_only, _w) =
            AuditLog::open(&dir.path().join("m.log"), false, "us-east-1", "1").unwrap();
        let (everything, _w2) =
            AuditLog::open(&dir.path().join("e.log"), true, "us-east-1", "1").unwrap();
        for action in KINESIS.data_events {
            assert!(!management_only.logs(&KINESIS, action), "{action}");
            assert!(everything.logs(&KINESIS, action), "{action}");
        }
        assert!(management_only.logs(&KINESIS, "CreateStream"));
        assert!(management_only.logs(&KINESIS, "DescribeStreamConsumer"));
    }

    #[tokio::test]
    async fn closing_writes_every_queued_line_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        std::fs::write(&path, b"{\"earlier\":true}\n").unwrap();
        let (log, writer) = AuditLog::open(&path, true, "us-east-1", "1").unwrap();
        for i in 0..5_000 {
            let body = format!(r#"{{"StreamName":"s{i}"}}"#);
            log.record(&call("CreateStream", body.as_bytes())).await;
        }
        writer.close().await;
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Appended after what the file held.
        assert_eq!(lines.len(), 5_001);
        assert_eq!(lines[0], r#"{"earlier":true}"#);
        for (i, line) in lines[1..].iter().enumerate() {
            let record: Value = serde_json::from_str(line).unwrap();
            assert_eq!(record["requestParameters"]["streamName"], format!("s{i}"));
        }
    }

    #[test]
    fn an_unwritable_path_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("audit.log");
        let Err(err) = AuditLog::open(&path, false, "us-east-1", "1") else {
            panic!("opened a log in a directory that does not exist");
        };
        assert!(err.to_string().contains("missing-dir"), "{err}");
    }

    #[test]
    fn names_are_lowered_as_cloudtrail_lowers_them_and_tags_are_kept() {
        let params =
            |json: &str| request_parameters(json.as_bytes()).map(|raw| raw.get().to_owned());
        assert_eq!(
            params(r#"{"StreamARN":"a","ShardCount":2,"Tags":{"Env":"prod"}}"#).as_deref(),
            Some(r#"{"streamARN":"a","shardCount":2,"tags":{"Env":"prod"}}"#)
        );
        assert_eq!(
            params(r#"{"Records":[{"Data":"eA=="}],"StreamName":"s"}"#).as_deref(),
            Some(r#"{"streamName":"s"}"#)
        );
        assert_eq!(params("{}").as_deref(), Some("{}"));
        assert_eq!(params("[1]"), None);
        assert_eq!(params(r#"{"a":1} trailing"#), None);
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
    }
}
