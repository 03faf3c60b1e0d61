//! Delivery to OpenSearch (or Elasticsearch) through the `_bulk` API, as
//! Firehose does: one request per buffer,
//!
//! ```text
//! POST <cluster>/_bulk            Content-Type: application/x-ndjson
//! {"index":{"_index":"<IndexName><rotation suffix>","_type":"<TypeName, if any>","_id":"<id>"}}
//! <the record, as it came>
//! …
//! ```
//!
//! the index suffixed by the record's arrival time in UTC per
//! IndexRotationPeriod (`-YYYY-MM-DD-HH`, `-YYYY-MM-DD`, `-YYYY-wWW`,
//! `-YYYY-MM`), and `_id` a Firehose-made id unless DocumentIdOptions says
//! NO_DOCUMENT_ID (the same id on every retry, so a retried document
//! replaces itself instead of doubling). Documents the cluster refuses
//! (per-item status ≥ 300), and every document of a request that fails
//! as a whole, are retried within RetryOptions.DurationInSeconds; then
//! they come back as `elasticsearch-failed/` error records with AWS's
//! fields (`esDocumentId`, `esIndexName`, `esTypeName`, …).

use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};
use tokio::time::Duration;
use tracing::warn;

use crate::buffer::Records;
use crate::destination::timestamp;
use crate::http_client::DestinationClient;
use crate::http_delivery::Undelivered;
use crate::metrics::EndpointMetrics;
use crate::opensearch::OpenSearchDestination;
use crate::prefix::{self, ThreadRandom};
use crate::retry::RetryWindow;
use crate::time::now_ms;

/// What delivery needs besides the records.
pub struct Target<'a> {
    pub client: &'a DestinationClient,
    pub destination: &'a OpenSearchDestination,
    /// The cluster's URL (`None`: a DomainARN no longer mapped).
    pub base_url: Option<&'a str>,
    pub retry: Duration,
    pub metrics: &'a EndpointMetrics,
}

/// One record as a document.
struct Doc {
    index: String,
    id: Option<String>,
}

/// Why a document is not (yet) indexed: AWS's `errorCode` (the item's
/// status, or the request's failure) and `errorMessage`.
#[derive(Debug, Clone)]
struct DocFailure {
    code: String,
    message: String,
}

/// Delivers `records`, retrying refused documents within the retry
/// duration; `None` once every one is indexed, else what to back up.
pub async fn deliver(
    target: &Target<'_>,
    records: &Records,
    oldest_ms: i64,
) -> Option<Undelivered> {
    let batch = prefix::random_uuid(&mut ThreadRandom).simple().to_string();
    let docs: Vec<Doc> = (0..records.ends.len())
        .map(|i| Doc {
            index: index_name(target.destination, arrival(records, i, oldest_ms)),
            id: (target.destination.document_id != "NO_DOCUMENT_ID")
                .then(|| format!("{batch}-{i}")),
        })
        .collect();
    let mut pending: Vec<usize> = (0..docs.len()).collect();
    let mut window = RetryWindow::new(target.retry);
    loop {
        let failed = match attempt(target, records, &docs, &pending).await {
            Ok(failed) => failed,
            Err(whole) => pending.iter().map(|&i| (i, whole.clone())).collect(),
        };
        let indexed = pending.len() - failed.len();
        if indexed > 0 {
            let bytes = pending
                .iter()
                .filter(|i| !failed.iter().any(|(f, _)| f == *i))
                .map(|&i| records.record(i).len() as u64)
                .sum();
            let freshness = now_ms().saturating_sub(oldest_ms).max(0);
            target.metrics.delivered(indexed as u64, bytes, freshness);
        }
        if failed.is_empty() {
            window.succeeded();
            return None;
        }
        target.metrics.request_failed();
        pending = failed.iter().map(|(i, _)| *i).collect();
        match window.after_failure() {
            Some(wait) => tokio::time::sleep(wait).await,
            None => {
                let (_, first) = &failed[0];
                warn!(index = %target.destination.index_name, documents = failed.len(), code = %first.code, message = %first.message, "documents still refused after the retry duration; backing them up to S3");
                target.metrics.failed(failed.len() as u64);
                return Some(undelivered(
                    target.destination,
                    records,
                    &docs,
                    &failed,
                    oldest_ms,
                    window.attempts(),
                ));
            }
        }
    }
}

fn arrival(records: &Records, i: usize, oldest_ms: i64) -> i64 {
    records.arrivals.get(i).copied().unwrap_or(oldest_ms)
}

/// The index a record arriving at `arrival_ms` goes to.
pub fn index_name(destination: &OpenSearchDestination, arrival_ms: i64) -> String {
    let at = timestamp(arrival_ms).to_zoned(jiff::tz::TimeZone::UTC);
    let name = &destination.index_name;
    match destination.rotation.as_str() {
        "OneHour" => format!("{name}-{}", at.strftime("%Y-%m-%d-%H")),
        "OneDay" => format!("{name}-{}", at.strftime("%Y-%m-%d")),
        "OneWeek" => {
            let week = at.date().iso_week_date();
            format!("{name}-{:04}-w{:02}", week.year(), week.week())
        }
        "OneMonth" => format!("{name}-{}", at.strftime("%Y-%m")),
        _ => name.clone(),
    }
}

/// One `_bulk` request of the pending documents: the failures of the
/// refused ones, or the failure of the whole request.
async fn attempt(
    target: &Target<'_>,
    records: &Records,
    docs: &[Doc],
    pending: &[usize],
) -> Result<Vec<(usize, DocFailure)>, DocFailure> {
    let whole = |code: &str, message: String| DocFailure {
        code: code.to_owned(),
        message,
    };
    let Some(base) = target.base_url else {
        return Err(whole(
            "OS.DomainNotMapped",
            "The domain is not mapped to a URL (--firehose-opensearch-domains).".to_owned(),
        ));
    };
    let body = bulk_body(target.destination, records, docs, pending);
    let request = http::Request::post(format!("{base}/_bulk"))
        .header(http::header::CONTENT_TYPE, "application/x-ndjson")
        .body(Full::new(body))
        .map_err(|e| whole("OS.InvalidRequest", e.to_string()))?;
    let response = target
        .client
        .send(request)
        .await
        .map_err(|e| whole("OS.ConnectionFailed", e.to_string()))?;
    if response.status != 200 {
        let text = String::from_utf8_lossy(&response.body).into_owned();
        return Err(whole(&response.status.to_string(), text));
    }
    item_failures(&response.body, pending).ok_or_else(|| {
        whole(
            "OS.InvalidResponse",
            "The _bulk response could not be read.".to_owned(),
        )
    })
}

/// The `_bulk` body of the pending documents.
fn bulk_body(
    destination: &OpenSearchDestination,
    records: &Records,
    docs: &[Doc],
    pending: &[usize],
) -> Bytes {
    let mut out = Vec::with_capacity(records.data.len() + pending.len() * 96);
    for &i in pending {
        let mut action = json!({"_index": docs[i].index});
        if let Some(type_name) = destination.type_name.as_deref().filter(|t| !t.is_empty()) {
            action["_type"] = Value::from(type_name);
        }
        if let Some(id) = &docs[i].id {
            action["_id"] = Value::from(id.as_str());
        }
        out.extend_from_slice(json!({ "index": action }).to_string().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(&one_line(records.record(i)));
        out.push(b'\n');
    }
    Bytes::from(out)
}

/// A record on one line, as the bulk format needs: a JSON document that
/// spans lines is written compactly; anything else goes as it came (the
/// cluster refuses it as a document, and it is backed up).
fn one_line(record: &[u8]) -> Vec<u8> {
    let record = record.trim_ascii_end();
    if !record.contains(&b'\n') {
        return record.to_vec();
    }
    match serde_json::from_slice::<Value>(record) {
        Ok(value) => value.to_string().into_bytes(),
        Err(_) => record
            .iter()
            .map(|&b| if b == b'\n' { b' ' } else { b })
            .collect(),
    }
}

/// The refused items of a `_bulk` answer, by record index; `None` when
/// the answer is not one (its items must match the request's).
fn item_failures(body: &[u8], pending: &[usize]) -> Option<Vec<(usize, DocFailure)>> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let items = answer.get("items")?.as_array()?;
    if items.len() != pending.len() {
        return None;
    }
    let mut failed = Vec::new();
    for (item, &i) in items.iter().zip(pending) {
        let result = item.as_object()?.values().next()?;
        let status = result.get("status")?.as_u64()?;
        if status >= 300 {
            let message = result
                .get("error")
                .map_or_else(String::new, Value::to_string);
            failed.push((
                i,
                DocFailure {
                    code: status.to_string(),
                    message,
                },
            ));
        }
    }
    Some(failed)
}

/// AWS's OpenSearch error records, one JSON object a line.
fn undelivered(
    destination: &OpenSearchDestination,
    records: &Records,
    docs: &[Doc],
    failed: &[(usize, DocFailure)],
    oldest_ms: i64,
    attempts: u32,
) -> Undelivered {
    let ended = now_ms();
    let mut lines = Vec::new();
    for (i, failure) in failed {
        let line = json!({
            "attemptsMade": attempts,
            "arrivalTimestamp": arrival(records, *i, oldest_ms),
            "errorCode": failure.code,
            "errorMessage": failure.message,
            "attemptEndingTimestamp": ended,
            "rawData": base64_simd::STANDARD.encode_to_string(records.record(*i)),
            "subsequenceNumber": 0,
            "esDocumentId": docs[*i].id,
            "esIndexName": docs[*i].index,
            "esTypeName": destination.type_name.clone().unwrap_or_default(),
        });
        lines.extend_from_slice(line.to_string().as_bytes());
        lines.push(b'\n');
    }
    Undelivered {
        lines,
        records: failed.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opensearch::{Flavor, OpenSearchInput};

    fn destination(rotation: &str) -> OpenSearchDestination {
        let input: OpenSearchInput = serde_json::from_value(json!({
            "RoleARN": "arn:aws:iam::000000000000:role/r", "ClusterEndpoint": "https://c",
            "IndexName": "logs", "TypeName": "", "IndexRotationPeriod": rotation,
            "S3Configuration": {"RoleARN": "arn:aws:iam::000000000000:role/r", "BucketARN": "arn:aws:s3:::b"},
        }))
        .unwrap();
        input.into_destination(Flavor::OpenSearch).0
    }

    // 2026-12-06T02:45:07Z: ISO week 49 of 2026.
    const AT: i64 = 1_796_525_107_000;

    #[test]
    fn indexes_rotate_by_the_arrival_time_in_utc() {
        let names: Vec<String> = ["NoRotation", "OneHour", "OneDay", "OneWeek", "OneMonth"]
            .iter()
            .map(|r| index_name(&destination(r), AT))
            .collect();
        assert_eq!(
            names,
            [
                "logs",
                "logs-2026-12-06-02",
                "logs-2026-12-06",
                "logs-2026-w49",
                "logs-2026-12"
            ]
        );
    }

    #[test]
    fn the_bulk_body_is_one_action_and_one_document_line_per_record() {
        let d = destination("NoRotation");
        let mut records = Records::default();
        records.push(b"{\"a\":1}", AT);
        records.push(b"{\n \"b\": 2\n}\n", AT);
        let docs = vec![
            Doc {
                index: "logs".into(),
                id: Some("x-0".into()),
            },
            Doc {
                index: "logs".into(),
                id: None,
            },
        ];
        let body = bulk_body(&d, &records, &docs, &[0, 1]);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            "{\"index\":{\"_id\":\"x-0\",\"_index\":\"logs\"}}\n{\"a\":1}\n{\"index\":{\"_index\":\"logs\"}}\n{\"b\":2}\n"
        );
    }

    #[test]
    fn refused_items_are_found_by_their_place_in_the_request() {
        let answer = br#"{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":400,"error":{"type":"mapper_parsing_exception"}}}]}"#;
        let failed = item_failures(answer, &[3, 7]).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, 7);
        assert_eq!(failed[0].1.code, "400");
        assert!(failed[0].1.message.contains("mapper_parsing_exception"));
        assert!(item_failures(br#"{"items":[]}"#, &[1]).is_none());
    }
}
