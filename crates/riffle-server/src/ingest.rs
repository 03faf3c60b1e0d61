//! HTTP ingest, the seeds' "API Gateway in front of Kinesis": on a listener
//! of its own (`--ingest-listen`; the API port answers only what AWS
//! answers), any HTTP client POSTs JSON to `/streams/<name>` (a Data
//! Stream) or `/delivery-streams/<name>` (a Firehose delivery stream) with
//! no SDK and no signature, and each JSON value of the body becomes one
//! record.
//!
//! A request becomes one PutRecords (or PutRecordBatch) call on the service
//! registered for it, so it is validated, limited and answered as that call
//! is: the answer is the call's JSON, per-record failures included, and a
//! refused call answers the service's error code and message.
//!
//! The body is a JSON array (each element a record) or one or more JSON
//! values one after another (newline-delimited JSON, or one object). A
//! record's data is its value's JSON text as sent, without a delimiter.
//!
//! Partition keys (Data Streams): `?partition-key-field=NAME` takes each
//! record's top-level member NAME (a string as is, a number or boolean as
//! written); `?partition-key-header=NAME` takes that request header's value
//! for every record; otherwise each record gets a random key, which spreads
//! records over the shards.
//!
//! API keys: when `[ingest_keys]` names any, a request must carry one in
//! `x-api-key` (else 403 `{"message":"Forbidden"}`, API Gateway's answer),
//! may write only the streams its key lists, and is throttled by its key's
//! `rate_limit` and `burst_limit` (a token bucket, as a usage plan's
//! throttle): 429 `{"message":"Too Many Requests"}`. Calls are counted on
//! `/metrics` as the service's operation, protocol `http-ingest`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use riffle_kinesis::Codec;
use serde_json::value::RawValue;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::body::{BodyError, PAYLOAD_BYTES_MAX, read_body};
use crate::cors;
use crate::errors::{IngestRejection, ingest_error};
use crate::options::IngestKeyOptions;
use crate::request::{ResponseBody, whole};
use crate::requests::{ApiProtocol, Outcome, RequestMetrics};
use crate::service::{Reply, Service};

/// The most records one request may carry: PutRecords' and
/// PutRecordBatch's 500 (API_PutRecords, API_PutRecordBatch).
pub const INGEST_RECORDS_MAX: usize = 500;

/// The largest body read: API Gateway's 10 MB payload quota, which is also
/// PutRecords' largest request of data and keys.
pub const INGEST_BODY_BYTES_MAX: usize = PAYLOAD_BYTES_MAX;

/// What a path names: a kind of stream, the service and call that write it.
#[derive(Debug)]
struct Route {
    /// The path before the stream's name.
    prefix: &'static str,
    /// The `X-Amz-Target` prefix of the service that owns such streams.
    target_prefix: &'static str,
    action: &'static str,
    /// The request member naming the stream.
    name_member: &'static str,
    /// Whether records carry partition keys (Data Streams).
    keyed: bool,
}

const ROUTES: [Route; 2] = [
    Route {
        prefix: "/streams/",
        target_prefix: "Kinesis_20131202",
        action: "PutRecords",
        name_member: "StreamName",
        keyed: true,
    },
    Route {
        prefix: "/delivery-streams/",
        target_prefix: "Firehose_20150804",
        action: "PutRecordBatch",
        name_member: "DeliveryStreamName",
        keyed: false,
    },
];

/// The ingest listener's settings.
pub struct IngestConfig {
    /// `[ingest_keys]`, checked (`EdgeOptions::ingest_keys`); none: open.
    pub keys: BTreeMap<String, IngestKeyOptions>,
    /// CORS for browser pages, as on the API port.
    pub cors: bool,
    /// The API port's request counters, shared with `/metrics`.
    pub request_metrics: Arc<RequestMetrics>,
}

/// An API key with its throttle.
struct ApiKey {
    name: String,
    value: String,
    streams: Vec<String>,
    throttle: Option<Mutex<TokenBucket>>,
}

impl ApiKey {
    fn may_write(&self, stream: &str) -> bool {
        self.streams.iter().any(|s| s == "*" || s == stream)
    }
}

/// A usage plan's throttle: `burst` requests at once, refilled at `rate`
/// per second.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst);
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// Takes one request's token, if there is one at `now`.
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What every ingest request shares.
struct Ingest {
    targets: Vec<(&'static Route, Arc<dyn Service>)>,
    keys: Vec<ApiKey>,
    cors: bool,
    metrics: Arc<RequestMetrics>,
    /// Never turns true: ingest answers are whole bodies, but a service's
    /// call takes the edge's shutdown signal.
    stopping: watch::Receiver<bool>,
}

/// Serves HTTP ingest on `listener` into `services` until `shutdown`
/// resolves. A route whose service is not among `services` answers 404.
pub async fn serve_ingest(
    listener: TcpListener,
    services: Vec<Arc<dyn Service>>,
    config: IngestConfig,
    shutdown: impl Future<Output = ()>,
) {
    let ingest = Arc::new(Ingest::new(services, config));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => spawn_connection(Arc::clone(&ingest), stream, peer),
                Err(err) => {
                    warn!(%err, "ingest accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

fn spawn_connection(ingest: Arc<Ingest>, stream: tokio::net::TcpStream, peer: SocketAddr) {
    let service = service_fn(move |req| {
        let ingest = Arc::clone(&ingest);
        let cors = ingest.cors;
        cors::around(cors, req, move |req| async move {
            Ok::<_, Infallible>(ingest.handle(req).await)
        })
    });
    tokio::spawn(async move {
        let served = auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
        if let Err(err) = served {
            debug!(%peer, %err, "ingest connection ended with an error");
        }
    });
}

impl Ingest {
    fn new(services: Vec<Arc<dyn Service>>, config: IngestConfig) -> Ingest {
        let targets = ROUTES
            .iter()
            .filter_map(|route| {
                let service = services
                    .iter()
                    .find(|s| s.info().target_prefix == route.target_prefix)?;
                Some((route, Arc::clone(service)))
            })
            .collect();
        let now = Instant::now();
        let keys = config
            .keys
            .into_iter()
            .map(|(name, key)| ApiKey {
                name,
                throttle: key.rate_limit.map(|rate| {
                    let burst = key.burst_limit.unwrap_or(rate.ceil() as u32).max(1);
                    Mutex::new(TokenBucket::new(rate, burst, now))
                }),
                value: key.key,
                streams: key.streams,
            })
            .collect();
        Ingest {
            targets,
            keys,
            cors: config.cors,
            metrics: config.request_metrics,
            stopping: watch::channel(false).1,
        }
    }

    async fn handle(&self, req: Request<hyper::body::Incoming>) -> Response<ResponseBody> {
        let started = Instant::now();
        let target = self.target(req.method(), req.uri().path());
        let answer = match target {
            Ok((route, service, stream)) => {
                let answer = self.write(route, service, &stream, req).await;
                let info = service.info();
                self.metrics.record_protocol(info, ApiProtocol::HttpIngest);
                let outcome = match &answer {
                    Ok(_) => Outcome::Success,
                    Err(rejection) if ingest_error(rejection).0.is_server_error() => {
                        Outcome::ServerError
                    }
                    Err(_) => Outcome::ClientError,
                };
                self.metrics
                    .record(info, route.action, outcome, started.elapsed());
                answer
            }
            Err(rejection) => Err(rejection),
        };
        let (status, body) = match answer {
            Ok(body) => (StatusCode::OK, body),
            Err(rejection) => ingest_error(&rejection),
        };
        let mut response = Response::new(whole(body));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }

    /// The route, service and stream a request names.
    fn target(
        &self,
        method: &Method,
        path: &str,
    ) -> Result<(&'static Route, &Arc<dyn Service>, String), IngestRejection> {
        let (route, service, name) = self
            .targets
            .iter()
            .find_map(|(route, service)| {
                let name = path.strip_prefix(route.prefix)?;
                Some((*route, service, name))
            })
            .ok_or(IngestRejection::NoRoute)?;
        if method != Method::POST {
            return Err(IngestRejection::NotPost);
        }
        let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
        if name.is_empty() || name.contains('/') {
            return Err(IngestRejection::NoRoute);
        }
        Ok((route, service, name.into_owned()))
    }

    /// Checks the key, reads the records and makes the call.
    async fn write(
        &self,
        route: &Route,
        service: &Arc<dyn Service>,
        stream: &str,
        req: Request<hyper::body::Incoming>,
    ) -> Result<Bytes, IngestRejection> {
        let (parts, body) = req.into_parts();
        self.admit(&parts.headers, stream)?;
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse().ok());
        let body = read_body(body, declared, INGEST_BODY_BYTES_MAX)
            .await
            .map_err(|err| match err {
                BodyError::TooLarge => IngestRejection::TooLarge,
                BodyError::Read(_) => IngestRejection::BodyRead,
            })?;
        let records = split_records(&body)?;
        let keys = if route.keyed {
            let query = parts.uri.query().unwrap_or("");
            Some(partition_keys(&records, query, &parts.headers)?)
        } else {
            None
        };
        let request = call_body(route, stream, &records, keys.as_deref());
        match service
            .call(route.action, request, Codec::Json, &self.stopping)
            .await
        {
            Ok(Reply::Whole(answer)) => Ok(answer),
            Ok(Reply::Stream(..)) => Err(IngestRejection::Internal),
            Err(err) => Err(IngestRejection::Service(err)),
        }
    }

    /// The request's API key may write `stream` now.
    fn admit(&self, headers: &HeaderMap, stream: &str) -> Result<(), IngestRejection> {
        if self.keys.is_empty() {
            return Ok(());
        }
        let given = headers.get("x-api-key").map(HeaderValue::as_bytes);
        let key = self
            .keys
            .iter()
            .find(|k| Some(k.value.as_bytes()) == given)
            .ok_or(IngestRejection::Forbidden)?;
        if !key.may_write(stream) {
            debug!(key = %key.name, %stream, "an ingest key wrote a stream it does not list");
            return Err(IngestRejection::StreamNotAllowed {
                key: key.name.clone(),
                stream: stream.to_owned(),
            });
        }
        match &key.throttle {
            Some(bucket) if !bucket.lock().take(Instant::now()) => Err(IngestRejection::Throttled),
            _ => Ok(()),
        }
    }
}

/// A body's records: the elements of one JSON array, or each of the JSON
/// values that follow one another (newline-delimited JSON, one object).
fn split_records(body: &[u8]) -> Result<Vec<&RawValue>, IngestRejection> {
    let text = std::str::from_utf8(body).map_err(|_| IngestRejection::NotUtf8)?;
    let malformed = |err: serde_json::Error| IngestRejection::Malformed(err.to_string());
    let records: Vec<&RawValue> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(malformed)?
    } else {
        serde_json::Deserializer::from_str(text)
            .into_iter::<&RawValue>()
            .collect::<Result<_, _>>()
            .map_err(malformed)?
    };
    match records.len() {
        0 => Err(IngestRejection::NoRecords),
        n if n > INGEST_RECORDS_MAX => Err(IngestRejection::TooManyRecords(n)),
        _ => Ok(records),
    }
}

/// Each record's partition key, as the query asks (see the module's doc).
fn partition_keys(
    records: &[&RawValue],
    query: &str,
    headers: &HeaderMap,
) -> Result<Vec<String>, IngestRejection> {
    let mut field = None;
    let mut header = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "partition-key-field" => field = Some(value.into_owned()),
            "partition-key-header" => header = Some(value.into_owned()),
            _ => {}
        }
    }
    if let Some(name) = header {
        let value = headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .ok_or(IngestRejection::NoKeyHeader(name))?;
        return Ok(vec![value.to_owned(); records.len()]);
    }
    let Some(field) = field else {
        return Ok(records
            .iter()
            .map(|_| format!("{:032x}", fastrand::u128(..)))
            .collect());
    };
    records
        .iter()
        .enumerate()
        .map(|(at, record)| {
            member_key(record, &field).ok_or_else(|| IngestRejection::NoKeyField {
                record: at,
                field: field.clone(),
            })
        })
        .collect()
}

/// A record's top-level member `field` as a partition key: a string's
/// text, a number's or boolean's JSON text; `None` for anything else.
fn member_key(record: &RawValue, field: &str) -> Option<String> {
    let members: HashMap<&str, &RawValue> = serde_json::from_str(record.get()).ok()?;
    let value = members.get(field)?.get();
    match value.as_bytes().first()? {
        b'"' => serde_json::from_str(value).ok(),
        b'-' | b'0'..=b'9' | b't' | b'f' => Some(value.to_owned()),
        _ => None,
    }
}

/// The PutRecords (PutRecordBatch) request of these records, in JSON.
fn call_body(route: &Route, stream: &str, records: &[&RawValue], keys: Option<&[String]>) -> Bytes {
    let data_bytes: usize = records.iter().map(|r| r.get().len()).sum();
    let mut out = String::with_capacity(data_bytes / 3 * 4 + records.len() * 64 + 128);
    let quoted = |text: &str| serde_json::to_string(text).unwrap_or_default();
    out.push_str(&format!(
        "{{\"{}\":{},\"Records\":[",
        route.name_member,
        quoted(stream)
    ));
    for (at, record) in records.iter().enumerate() {
        if at > 0 {
            out.push(',');
        }
        out.push_str("{\"Data\":\"");
        base64_simd::STANDARD.encode_append(record.get().as_bytes(), &mut out);
        out.push('"');
        if let Some(key) = keys.and_then(|keys| keys.get(at)) {
            out.push_str(",\"PartitionKey\":");
            out.push_str(&quoted(key));
        }
        out.push('}');
    }
    out.push_str("]}");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_body_is_an_array_of_records_or_values_one_after_another() {
        let records = split_records(b" [{\"a\":1}, 2, \"x\"] ").unwrap();
        let texts: Vec<&str> = records.iter().map(|r| r.get()).collect();
        assert_eq!(texts, ["{\"a\":1}", "2", "\"x\""]);
        let records = split_records(b"{\"a\":1}\n{\"b\": [1, 2]}\n\n").unwrap();
        let texts: Vec<&str> = records.iter().map(|r| r.get()).collect();
        assert_eq!(texts, ["{\"a\":1}", "{\"b\": [1, 2]}"]);
        let pretty = split_records(b"{\n  \"a\": 1\n}\n").unwrap();
        assert_eq!(pretty.len(), 1);
    }

    #[test]
    fn bodies_without_records_or_with_too_many_are_refused() {
        assert!(matches!(
            split_records(b" \n"),
            Err(IngestRejection::NoRecords)
        ));
        assert!(matches!(
            split_records(b"[]"),
            Err(IngestRejection::NoRecords)
        ));
        assert!(matches!(
            split_records(b"{\"a\":"),
            Err(IngestRejection::Malformed(_))
        ));
        assert!(matches!(
            split_records(b"\xff"),
            Err(IngestRejection::NotUtf8)
        ));
        let many = format!("[{}1]", "1,".repeat(INGEST_RECORDS_MAX));
        assert!(matches!(
            split_records(many.as_bytes()),
            Err(IngestRejection::TooManyRecords(501))
        ));
    }

    #[test]
    fn partition_keys_come_from_a_field_a_header_or_chance() {
        let records = split_records(b"{\"user\":\"u\\u0031\"}\n{\"user\":42}").unwrap();
        let headers = HeaderMap::new();
        let keys = partition_keys(&records, "partition-key-field=user", &headers).unwrap();
        assert_eq!(keys, ["u1", "42"]);
        let mut headers = HeaderMap::new();
        headers.insert("x-device", HeaderValue::from_static("d7"));
        let keys = partition_keys(&records, "partition-key-header=X-Device", &headers).unwrap();
        assert_eq!(keys, ["d7", "d7"]);
        let random = partition_keys(&records, "", &headers).unwrap();
        assert_eq!(random.len(), 2);
        assert_ne!(random[0], random[1]);
        let missing = partition_keys(&records, "partition-key-field=id", &headers);
        assert!(matches!(
            missing,
            Err(IngestRejection::NoKeyField { record: 0, .. })
        ));
    }

    #[test]
    fn the_call_carries_each_records_text_in_base64_with_its_key() {
        let records = split_records(b"[{\"a\":1},\"\xc3\xa9\"]").unwrap();
        let keys = vec!["k\"1".to_owned(), "k2".to_owned()];
        let body = call_body(&ROUTES[0], "s", &records, Some(&keys));
        let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(request["StreamName"], "s");
        assert_eq!(request["Records"][0]["Data"], "eyJhIjoxfQ==");
        assert_eq!(request["Records"][0]["PartitionKey"], "k\"1");
        assert_eq!(request["Records"][1]["Data"], "IsOpIg==");
        let body = call_body(&ROUTES[1], "d", &records, None);
        let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(request["DeliveryStreamName"], "d");
        assert_eq!(request["Records"][1].get("PartitionKey"), None);
    }

    #[test]
    fn a_token_bucket_allows_its_burst_then_its_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(2.0, 3, start);
        assert!((0..3).all(|_| bucket.take(start)));
        assert!(!bucket.take(start));
        assert!(bucket.take(start + Duration::from_millis(500)));
        assert!(!bucket.take(start + Duration::from_millis(500)));
        // Idle time refills no more than the burst.
        let later = start + Duration::from_secs(60);
        assert!((0..3).all(|_| bucket.take(later)));
        assert!(!bucket.take(later));
    }
}
