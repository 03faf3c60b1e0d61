//! Delivery to Splunk's HTTP Event Collector (HEC), as Firehose does it:
//!
//! ```text
//! POST <HECEndpoint>/services/collector/raw      (HECEndpointType Raw: the records as they came)
//! POST <HECEndpoint>/services/collector/event    (Event: records already in HEC's event JSON)
//! Authorization: Splunk <HECToken>
//! X-Splunk-Request-Channel: <uuid, one per batch>
//!
//! → 200 {"text":"Success","code":0,"ackId":7}
//! POST <HECEndpoint>/services/collector/ack      {"acks":[7]}, the same channel
//! → 200 {"acks":{"7":true}}
//! ```
//!
//! With indexer acknowledgement on (the answer carries an `ackId`), the
//! batch is delivered once the ack endpoint says `true`; not within
//! HECAcknowledgmentTimeoutInSeconds, it is sent again (`Splunk.AckTimeout`).
//! Without an `ackId`, the 200 is the delivery. Failures are retried
//! within RetryOptions.DurationInSeconds, then the batch comes back as
//! `splunk-failed/` error records with AWS's fields (`EventId` among them).

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::time::{Duration, Instant};
use tracing::warn;

use crate::buffer::Records;
use crate::http_client::{DestinationClient, Response, SendError};
use crate::http_delivery::Undelivered;
use crate::metrics::EndpointMetrics;
use crate::prefix::{self, ThreadRandom};
use crate::retry::RetryWindow;
use crate::splunk::SplunkDestination;
use crate::time::now_ms;

/// How often the ack endpoint is asked, at first and at most: Splunk
/// answers an ack once the events are indexed, usually within seconds.
const ACK_POLL_FIRST: Duration = Duration::from_millis(100);
const ACK_POLL_MAX: Duration = Duration::from_secs(2);

/// What delivery needs besides the records.
pub struct Target<'a> {
    pub client: &'a DestinationClient,
    pub destination: &'a SplunkDestination,
    pub retry: Duration,
    /// HECAcknowledgmentTimeoutInSeconds, or the server's override.
    pub ack_timeout: Duration,
    pub metrics: &'a EndpointMetrics,
}

/// AWS's Splunk error code and message.
#[derive(Debug, Clone)]
struct Failure {
    code: &'static str,
    message: String,
}

fn failure(code: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// Delivers `records` with retries; `None` once Splunk has them (and
/// acknowledged them), else what to back up.
pub async fn deliver(
    target: &Target<'_>,
    records: &Records,
    oldest_ms: i64,
) -> Option<Undelivered> {
    let channel = prefix::random_uuid(&mut ThreadRandom).to_string();
    let body = request_body(records);
    let mut window = RetryWindow::new(target.retry);
    loop {
        let err = match attempt(target, &channel, body.clone()).await {
            Ok(()) => {
                window.succeeded();
                let freshness = now_ms().saturating_sub(oldest_ms).max(0);
                let count = records.ends.len() as u64;
                target
                    .metrics
                    .delivered(count, records.data.len() as u64, freshness);
                return None;
            }
            Err(err) => err,
        };
        target.metrics.request_failed();
        match window.after_failure() {
            Some(wait) => tokio::time::sleep(wait).await,
            None => {
                warn!(endpoint = %target.destination.hec_endpoint, code = err.code, message = %err.message, "Splunk delivery failed for the whole retry duration; backing the events up to S3");
                target.metrics.failed(records.ends.len() as u64);
                return Some(undelivered(
                    records,
                    oldest_ms,
                    &err,
                    window.attempts(),
                    &channel,
                ));
            }
        }
    }
}

/// The events, one after another: the records as they came (Raw), or
/// each record as a JSON event object (Event, records already in HEC's
/// format), separated by newlines.
fn request_body(records: &Records) -> Bytes {
    let mut out = Vec::with_capacity(records.data.len() + records.ends.len());
    for i in 0..records.ends.len() {
        out.extend_from_slice(records.record(i));
        if !records.record(i).ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    Bytes::from(out)
}

fn base(destination: &SplunkDestination) -> &str {
    destination.hec_endpoint.trim_end_matches('/')
}

/// One POST and, with indexer acknowledgement, the wait for its ack.
async fn attempt(target: &Target<'_>, channel: &str, body: Bytes) -> Result<(), Failure> {
    let d = target.destination;
    let path = if d.endpoint_type == "Event" {
        "/services/collector/event"
    } else {
        "/services/collector/raw"
    };
    let response = post(target, channel, &format!("{}{path}", base(d)), body).await?;
    let answer = judge(&response)?;
    let Some(ack_id) = answer.get("ackId").and_then(Value::as_u64) else {
        return Ok(());
    };
    wait_for_ack(target, channel, ack_id).await
}

async fn post(
    target: &Target<'_>,
    channel: &str,
    url: &str,
    body: Bytes,
) -> Result<Response, Failure> {
    let mut builder = http::Request::post(url)
        .header("X-Splunk-Request-Channel", channel)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(token) = &target.destination.token {
        builder = builder.header(http::header::AUTHORIZATION, format!("Splunk {token}"));
    }
    let request = builder
        .body(Full::new(body))
        .map_err(|e| failure("Splunk.InvalidEndpoint", e.to_string()))?;
    target.client.send(request).await.map_err(|e| match e {
        SendError::Timeout(_) => failure("Splunk.ConnectionTimeout", e.to_string()),
        other => failure("Splunk.ConnectionClosed", other.to_string()),
    })
}

/// A 200 with HEC's `code` 0 is accepted; anything else is AWS's failure
/// for it (HEC's status codes and its `text`).
fn judge(response: &Response) -> Result<Value, Failure> {
    let answer: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let text = answer.get("text").and_then(Value::as_str).map_or_else(
        || String::from_utf8_lossy(&response.body).into_owned(),
        str::to_owned,
    );
    let code = match response.status {
        200 if answer.get("code").and_then(Value::as_i64).unwrap_or(0) == 0 => return Ok(answer),
        401 | 403 => "Splunk.InvalidToken",
        400 => "Splunk.InvalidDataFormat",
        404 => "Splunk.URLNotFound",
        _ => "Splunk.ServerError",
    };
    Err(failure(code, format!("{}: {text}", response.status)))
}

/// Polls `/services/collector/ack` until the ack is `true`, or fails with
/// `Splunk.AckTimeout` after HECAcknowledgmentTimeoutInSeconds.
async fn wait_for_ack(target: &Target<'_>, channel: &str, ack_id: u64) -> Result<(), Failure> {
    let timeout = target.ack_timeout;
    let deadline = Instant::now() + timeout;
    let url = format!("{}/services/collector/ack", base(target.destination));
    let mut poll = ACK_POLL_FIRST;
    loop {
        let body = Bytes::from(json!({ "acks": [ack_id] }).to_string());
        let response = post(target, channel, &url, body).await?;
        let answer = judge(&response)?;
        let acked = answer
            .pointer(&format!("/acks/{ack_id}"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if acked {
            return Ok(());
        }
        if Instant::now() + poll > deadline {
            return Err(failure(
                "Splunk.AckTimeout",
                format!(
                    "Did not receive an acknowledgement from HEC before the HEC acknowledgement timeout of {} seconds.",
                    timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(ACK_POLL_MAX);
    }
}

/// AWS's Splunk error records, one JSON object a line.
fn undelivered(
    records: &Records,
    oldest_ms: i64,
    err: &Failure,
    attempts: u32,
    channel: &str,
) -> Undelivered {
    let ended = now_ms();
    let mut lines = Vec::new();
    for i in 0..records.ends.len() {
        let line = json!({
            "attemptsMade": attempts,
            "arrivalTimestamp": records.arrivals.get(i).copied().unwrap_or(oldest_ms),
            "errorCode": err.code,
            "errorMessage": err.message,
            "attemptEndingTimestamp": ended,
            "rawData": base64_simd::STANDARD.encode_to_string(records.record(i)),
            "EventId": format!("{channel}.{i}"),
        });
        lines.extend_from_slice(line.to_string().as_bytes());
        lines.push(b'\n');
    }
    Undelivered {
        lines,
        records: records.ends.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn hec_answers_map_to_awss_splunk_error_codes() {
        let ok = judge(&response(200, r#"{"text":"Success","code":0,"ackId":3}"#)).unwrap();
        assert_eq!(ok["ackId"], 3);
        let code = |status, body| judge(&response(status, body)).unwrap_err().code;
        assert_eq!(
            code(403, r#"{"text":"Invalid token","code":4}"#),
            "Splunk.InvalidToken"
        );
        assert_eq!(
            code(400, r#"{"text":"No data","code":5}"#),
            "Splunk.InvalidDataFormat"
        );
        assert_eq!(
            code(503, r#"{"text":"Server is busy","code":9}"#),
            "Splunk.ServerError"
        );
        assert_eq!(code(404, "not found"), "Splunk.URLNotFound");
    }

    #[test]
    fn events_are_sent_one_a_line() {
        let mut r = Records::default();
        r.push(b"{\"event\":1}", 0);
        r.push(b"raw line\n", 0);
        assert_eq!(&request_body(&r)[..], b"{\"event\":1}\nraw line\n");
    }
}
