//! Delivery to an HTTP endpoint, per AWS's "HTTP endpoint delivery
//! request and response specifications":
//!
//! ```text
//! POST <Url>
//! X-Amz-Firehose-Protocol-Version: 1.0
//! X-Amz-Firehose-Request-Id: <uuid, the same for every retry of a batch>
//! X-Amz-Firehose-Source-Arn: arn:aws:firehose:<region>:<account>:deliverystream/<name>
//! X-Amz-Firehose-Access-Key: <AccessKey, verbatim; absent when not configured>
//! X-Amz-Firehose-Common-Attributes: {"commonAttributes":{"<name>":"<value>",…}}
//! Content-Type: application/json
//! Content-Encoding: gzip                  (ContentEncoding GZIP only)
//!
//! {"requestId":"<uuid>","timestamp":<ms of the first attempt>,"records":[{"data":"<base64>"},…]}
//! ```
//!
//! Only a 200 whose JSON body echoes the `requestId` is a delivery; any
//! other status (3xx included: redirects are not followed; 413 too), a
//! body that does not echo it, a timeout or a connection failure is
//! retried within RetryOptions.DurationInSeconds ([`crate::retry`]), then
//! the batch is handed back as `http-endpoint-failed/` error records.

use std::fmt::Write as _;
use std::io::Write as _;

use bytes::Bytes;
use http_body_util::Full;
use tokio::time::Duration;
use tracing::{debug, info, warn};

use crate::buffer::Records;
use crate::http_client::{DestinationClient, Response};
use crate::http_endpoint::HttpEndpointDestination;
use crate::metrics::EndpointMetrics;
use crate::prefix::{self, ThreadRandom};
use crate::retry::RetryWindow;
use crate::time::now_ms;
use crate::transform::{ErrorRecord, Failure, error_line};

pub const PROTOCOL_VERSION: &str = "1.0";
/// How much of a failed response's body an error message quotes.
const QUOTED_BODY_MAX: usize = 1024;
/// Error codes of the error records: the first two as AWS's HTTP endpoint
/// troubleshooting guide names them; the others are Riffle's, in the same
/// namespace, for failures that guide does not name.
pub const DESTINATION_EXCEPTION: &str = "HttpEndpoint.DestinationException";
pub const INVALID_RESPONSE: &str = "HttpEndpoint.InvalidResponseFromDestination";
pub const REQUEST_TIMEOUT: &str = "HttpEndpoint.RequestTimeout";
pub const CONNECTION_FAILED: &str = "HttpEndpoint.ConnectionFailed";

/// What delivery needs besides the records.
pub struct Target<'a> {
    pub client: &'a DestinationClient,
    pub destination: &'a HttpEndpointDestination,
    /// The delivery stream's ARN (`X-Amz-Firehose-Source-Arn`).
    pub source_arn: &'a str,
    pub retry: Duration,
    pub metrics: &'a EndpointMetrics,
}

/// Records not delivered within the retry duration: their error records
/// (one JSON object a line) and how many.
#[derive(Debug, Default)]
pub struct Undelivered {
    pub lines: Vec<u8>,
    pub records: u64,
}

/// Delivers `records` (the oldest arrived at `oldest_ms`), retrying
/// within the retry duration; `None` once delivered, else what to back up.
pub async fn deliver(
    target: &Target<'_>,
    records: &Records,
    oldest_ms: i64,
) -> Option<Undelivered> {
    let request_id = prefix::random_uuid(&mut ThreadRandom).to_string();
    let body = request_body(&request_id, now_ms(), records, target.destination.gzip());
    let count = records.ends.len() as u64;
    let bytes = records.data.len() as u64;
    let mut window = RetryWindow::new(target.retry);
    loop {
        let failure = match attempt(target, &request_id, body.clone()).await {
            Ok(()) => {
                window.succeeded();
                let freshness = now_ms().saturating_sub(oldest_ms).max(0);
                target.metrics.delivered(count, bytes, freshness);
                if window.attempts() > 1 {
                    info!(url = %target.destination.url, attempts = window.attempts(), "HTTP endpoint delivery resumed");
                }
                return None;
            }
            Err(failure) => failure,
        };
        target.metrics.request_failed();
        match window.after_failure() {
            Some(wait) => {
                if window.attempts() == 1 {
                    warn!(url = %target.destination.url, code = failure.code, message = %failure.message, "HTTP endpoint delivery failed; retrying within the retry duration");
                } else {
                    debug!(url = %target.destination.url, code = failure.code, "HTTP endpoint delivery failed again");
                }
                tokio::time::sleep(wait).await;
            }
            None => {
                warn!(url = %target.destination.url, records = count, code = failure.code, message = %failure.message, "HTTP endpoint delivery failed for the whole retry duration; backing the records up to S3");
                target.metrics.failed(count);
                return Some(undelivered(records, oldest_ms, &failure, window.attempts()));
            }
        }
    }
}

/// One POST of the batch and the judgement of its response.
async fn attempt(target: &Target<'_>, request_id: &str, body: Bytes) -> Result<(), Failure> {
    let request = request(target, request_id, body).map_err(|why| {
        Failure::new(
            DESTINATION_EXCEPTION,
            format!("The request could not be made: {why}"),
        )
    })?;
    match target.client.send(request).await {
        Ok(response) => judge(&response, request_id),
        Err(crate::http_client::SendError::Timeout(after)) => Err(Failure::new(
            REQUEST_TIMEOUT,
            format!(
                "The endpoint did not respond within {} seconds.",
                after.as_secs()
            ),
        )),
        Err(err) => Err(Failure::new(CONNECTION_FAILED, err.to_string())),
    }
}

/// The request of one attempt, with the specification's headers.
fn request(
    target: &Target<'_>,
    request_id: &str,
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>, http::Error> {
    let destination = target.destination;
    let mut builder = http::Request::post(destination.url.as_str())
        .header("X-Amz-Firehose-Protocol-Version", PROTOCOL_VERSION)
        .header("X-Amz-Firehose-Request-Id", request_id)
        .header("X-Amz-Firehose-Source-Arn", target.source_arn)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(key) = &destination.access_key {
        builder = builder.header("X-Amz-Firehose-Access-Key", key.as_str());
    }
    if !destination.common_attributes.is_empty() {
        builder = builder.header(
            "X-Amz-Firehose-Common-Attributes",
            common_attributes(destination),
        );
    }
    if destination.gzip() {
        builder = builder.header(http::header::CONTENT_ENCODING, "gzip");
    }
    builder.body(Full::new(body))
}

/// `{"commonAttributes":{"<name>":"<value>",…}}`.
pub fn common_attributes(destination: &HttpEndpointDestination) -> String {
    let map: serde_json::Map<String, serde_json::Value> = destination
        .common_attributes
        .iter()
        .map(|a| (a.name.clone(), serde_json::Value::from(a.value.as_str())))
        .collect();
    serde_json::json!({ "commonAttributes": map }).to_string()
}

/// A 200 whose JSON body's `requestId` is ours is success; anything else
/// is AWS's failure for it.
fn judge(response: &Response, request_id: &str) -> Result<(), Failure> {
    if response.status != 200 {
        let quoted =
            String::from_utf8_lossy(&response.body[..response.body.len().min(QUOTED_BODY_MAX)])
                .into_owned();
        return Err(Failure::new(
            DESTINATION_EXCEPTION,
            format!(
                "The following response was received from the endpoint destination. {}: {quoted}",
                response.status
            ),
        ));
    }
    let echoed = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| {
            v.get("requestId")
                .and_then(|id| id.as_str().map(str::to_owned))
        });
    if echoed.as_deref() == Some(request_id) {
        return Ok(());
    }
    Err(Failure::new(
        INVALID_RESPONSE,
        "The response received from the endpoint is invalid. See Troubleshooting HTTP Endpoints in the Firehose documentation for more information.",
    ))
}

/// The request body, GZIP-compressed when `gzip`:
/// `{"requestId":…,"timestamp":…,"records":[{"data":"<base64>"},…]}`.
pub fn request_body(request_id: &str, timestamp_ms: i64, records: &Records, gzip: bool) -> Bytes {
    let mut out = String::with_capacity(records.data.len() / 3 * 4 + records.ends.len() * 16 + 128);
    let _ = write!(
        out,
        "{{\"requestId\":\"{request_id}\",\"timestamp\":{timestamp_ms},\"records\":["
    );
    for i in 0..records.ends.len() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"data\":\"");
        base64_simd::STANDARD.encode_append(records.record(i), &mut out);
        out.push_str("\"}");
    }
    out.push_str("]}");
    if !gzip {
        return Bytes::from(out);
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    encoder.write_all(out.as_bytes()).expect("gzip into memory");
    Bytes::from(encoder.finish().expect("gzip into memory"))
}

/// The batch's error records, AWS's fields for each record.
fn undelivered(records: &Records, oldest_ms: i64, failure: &Failure, attempts: u32) -> Undelivered {
    let mut lines = Vec::with_capacity(records.data.len() / 3 * 4 + records.ends.len() * 256);
    let ended_ms = now_ms();
    for i in 0..records.ends.len() {
        error_line(
            &mut lines,
            &ErrorRecord {
                attempts,
                arrival_ms: records.arrivals.get(i).copied().unwrap_or(oldest_ms),
                failure,
                ended_ms,
                raw: records.record(i),
                lambda_arn: None,
            },
        );
    }
    Undelivered {
        lines,
        records: records.ends.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn records(items: &[&[u8]]) -> Records {
        let mut r = Records::default();
        for (i, item) in items.iter().enumerate() {
            r.push(item, 1_000 + i as i64);
        }
        r
    }

    #[test]
    fn the_body_is_the_specifications_json_and_gzip_inflates_to_it() {
        let r = records(&[b"{\"a\":1}", b"\x00\xff"]);
        let plain = request_body("id-1", 42, &r, false);
        let parsed: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!({"requestId": "id-1", "timestamp": 42,
                "records": [{"data": "eyJhIjoxfQ=="}, {"data": "AP8="}]})
        );
        let zipped = request_body("id-1", 42, &r, true);
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&zipped[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, plain);
    }

    #[test]
    fn only_a_200_echoing_the_request_id_is_success() {
        let ok = |status, body: &str| {
            judge(
                &Response {
                    status,
                    body: Bytes::from(body.to_owned()),
                },
                "id-1",
            )
        };
        assert!(ok(200, r#"{"requestId":"id-1","timestamp":1}"#).is_ok());
        assert_eq!(
            ok(200, r#"{"requestId":"id-2"}"#).unwrap_err().code,
            INVALID_RESPONSE
        );
        assert_eq!(ok(200, "").unwrap_err().code, INVALID_RESPONSE);
        let failed = ok(413, r#"{"errorMessage":"Payload too large"}"#).unwrap_err();
        assert_eq!(failed.code, DESTINATION_EXCEPTION);
        assert!(
            failed
                .message
                .ends_with("413: {\"errorMessage\":\"Payload too large\"}"),
            "{}",
            failed.message
        );
        assert_eq!(
            ok(302, r#"{"requestId":"id-1"}"#).unwrap_err().code,
            DESTINATION_EXCEPTION
        );
    }

    #[test]
    fn undelivered_records_keep_their_data_and_arrival_in_awss_fields() {
        let r = records(&[b"one", b"two"]);
        let failure = Failure::new(DESTINATION_EXCEPTION, "500: no");
        let out = undelivered(&r, 1_000, &failure, 3);
        assert_eq!(out.records, 2);
        let lines: Vec<serde_json::Value> = out
            .lines
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1]["rawData"], "dHdv");
        assert_eq!(lines[1]["arrivalTimestamp"], 1_001);
        assert_eq!(lines[1]["attemptsMade"], 3);
        assert_eq!(lines[1]["errorCode"], DESTINATION_EXCEPTION);
    }
}
