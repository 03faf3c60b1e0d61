//! The lean data-plane client: SigV4-signed AWS JSON 1.1 requests over a
//! keep-alive HTTP/1.1 pool.
//!
//! The bench shares two cores with the server it measures, so every
//! microsecond the client spends is one the server does not get. The SDK's
//! orchestrator (interceptors, retries, endpoint resolution, serde of the
//! whole shape) costs several times what this does; the control plane and
//! SubscribeToShard still use the SDK (see `control`).

use std::time::SystemTime;

use std::sync::Arc;

use aws_credential_types::Credentials;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::BenchError;
use crate::sign::Signer;

/// The AWS JSON 1.1 content type every Kinesis and Firehose request carries.
const JSON_1_1: &str = "application/x-amz-json-1.1";
/// The signing name of Kinesis Data Streams.
pub const KINESIS: &str = "kinesis";
/// The signing name of Firehose.
pub const FIREHOSE: &str = "firehose";
/// A Content-Length is trusted to size a body's buffer only up to this, so a
/// wrong one cannot make the bench reserve absurd memory: a GetRecords
/// answer carries at most 10 MiB of data (API_GetRecords), about 14 MB as
/// base64 JSON.
const BODY_PRESIZE_MAX: usize = 32 * 1024 * 1024;
/// The error AWS returns when a shard's (or account's) rate is exceeded.
pub const THROTTLE_ERROR: &str = "ProvisionedThroughputExceededException";

/// A data-plane action the lean client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    PutRecord,
    PutRecords,
    GetShardIterator,
    GetRecords,
    /// Firehose's batch put (sent by a client signing for [`FIREHOSE`]).
    PutRecordBatch,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::PutRecord => "PutRecord",
            Action::PutRecords => "PutRecords",
            Action::GetShardIterator => "GetShardIterator",
            Action::GetRecords => "GetRecords",
            Action::PutRecordBatch => "PutRecordBatch",
        }
    }

    fn target(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Action::PutRecord => "Kinesis_20131202.PutRecord",
            Action::PutRecords => "Kinesis_20131202.PutRecords",
            Action::GetShardIterator => "Kinesis_20131202.GetShardIterator",
            Action::GetRecords => "Kinesis_20131202.GetRecords",
            Action::PutRecordBatch => "Firehose_20150804.PutRecordBatch",
        })
    }
}

/// What a request came back with, short of a transport failure. `B` is
/// the body of a success: the bytes, or `()` when they went into the
/// caller's buffer ([`LeanClient::call_into`]).
#[derive(Debug)]
pub enum Reply<B = Bytes> {
    /// HTTP 200 and its body.
    Ok(B),
    /// An AWS error response; `throttled` when it is a
    /// `ProvisionedThroughputExceededException`.
    Failed {
        status: u16,
        error_type: String,
        message: String,
        throttled: bool,
    },
}

impl<B> Reply<B> {
    /// The body of a success, or the failure as an error.
    pub fn into_ok(self, action: Action) -> Result<B, BenchError> {
        match self {
            Reply::Ok(body) => Ok(body),
            Reply::Failed {
                status,
                error_type,
                message,
                ..
            } => Err(BenchError::Request {
                action: action.name(),
                status,
                error_type,
                message,
            }),
        }
    }
}

/// Static credentials and the region the requests are signed for.
#[derive(Clone)]
pub struct Signing {
    pub credentials: Credentials,
    pub region: String,
}

impl Signing {
    /// Credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and
    /// AWS_SESSION_TOKEN) when set, else dummy ones: a local endpoint
    /// checks that requests are signed, not by whom.
    pub fn from_env(region: &str) -> Signing {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(key), Some(secret)) => {
                Credentials::new(key, secret, var("AWS_SESSION_TOKEN"), None, "environment")
            }
            _ => Credentials::new(
                "AKIDRIFFLEBENCH",
                "riffle-bench-secret",
                None,
                None,
                "dummy",
            ),
        };
        Signing {
            credentials,
            region: region.to_owned(),
        }
    }
}

/// A pooled, signing HTTP/1.1 (or HTTP/2) client for one endpoint. Cheap to clone.
#[derive(Clone)]
pub struct LeanClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: Uri,
    host_text: String,
    host: HeaderValue,
    signer: Arc<Signer>,
    session_token: Option<HeaderValue>,
}

impl LeanClient {
    /// A client for `endpoint` (`http://host:port` or `https://host`,
    /// trusting the system's root certificates) whose pool keeps up to
    /// `connections` idle keep-alive connections, one per concurrent
    /// request, so a steady run never reconnects. With `http2` every
    /// request is a stream of one shared HTTP/2 connection instead.
    /// Requests are signed for `service` ([`KINESIS`] or [`FIREHOSE`]).
    pub fn new(
        endpoint: &str,
        signing: &Signing,
        connections: usize,
        http2: bool,
        service: &'static str,
    ) -> Result<Self, BenchError> {
        let uri = parse_endpoint(endpoint)?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let host = HeaderValue::from_str(&authority).map_err(|e| BenchError::BadEndpoint {
            endpoint: endpoint.to_owned(),
            reason: e.to_string(),
        })?;
        let mut tcp = HttpConnector::new();
        // Small requests must not wait for Nagle's algorithm.
        tcp.set_nodelay(true);
        // The TLS layer handles https:// itself.
        tcp.enforce_http(false);
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let connector = HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| BenchError::BadEndpoint {
                endpoint: endpoint.to_owned(),
                reason: format!("no TLS root certificates: {e}"),
            })?
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(tcp);
        let http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections)
            .http2_only(http2)
            .build(connector);
        let signer = Signer::new(signing.credentials.clone(), &signing.region, service);
        let session_token = match signer.session_token() {
            Some(token) => Some(
                HeaderValue::from_str(token).map_err(|e| BenchError::Signing {
                    message: format!("AWS_SESSION_TOKEN is not a valid header value: {e}"),
                })?,
            ),
            None => None,
        };
        Ok(LeanClient {
            http,
            uri,
            host_text: authority,
            host,
            signer: Arc::new(signer),
            session_token,
        })
    }

    /// Signs and sends one request; a transport failure is an error, an AWS
    /// error response is a [`Reply::Failed`].
    pub async fn call(&self, action: Action, body: Vec<u8>) -> Result<Reply, BenchError> {
        let response = self.send(action, body).await?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| transport(action, &e))?
            .to_bytes();
        if status == 200 {
            return Ok(Reply::Ok(body));
        }
        Ok(failure(status, &body))
    }

    /// Like [`LeanClient::call`], but the body is read into `buf` (emptied
    /// first, its capacity kept). A reader calling in a loop then reuses
    /// one buffer: a fresh multi-megabyte one per GetRecords answer cost
    /// a fifth of the verifying client's CPU in copies and page faults.
    pub async fn call_into(
        &self,
        action: Action,
        body: Vec<u8>,
        buf: &mut Vec<u8>,
    ) -> Result<Reply<()>, BenchError> {
        let response = self.send(action, body).await?;
        let status = response.status().as_u16();
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        buf.clear();
        buf.reserve(declared.unwrap_or_default().min(BODY_PRESIZE_MAX));
        let mut incoming = response.into_body();
        while let Some(frame) = incoming.frame().await {
            if let Some(data) = frame.map_err(|e| transport(action, &e))?.data_ref() {
                buf.extend_from_slice(data);
            }
        }
        if status == 200 {
            return Ok(Reply::Ok(()));
        }
        Ok(failure(status, buf))
    }

    async fn send(
        &self,
        action: Action,
        body: Vec<u8>,
    ) -> Result<http::Response<hyper::body::Incoming>, BenchError> {
        let request = self.signed(action, body)?;
        self.http
            .request(request)
            .await
            .map_err(|e| transport(action, &e))
    }

    fn signed(&self, action: Action, body: Vec<u8>) -> Result<Request<Full<Bytes>>, BenchError> {
        let target = action.target();
        let signature = self.signer.sign(
            &self.host_text,
            JSON_1_1,
            target.to_str().unwrap_or_default(),
            &body,
            SystemTime::now(),
        );
        let header = |text: String| {
            HeaderValue::try_from(text).map_err(|e| BenchError::Signing {
                message: e.to_string(),
            })
        };
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static(JSON_1_1))
            .header("x-amz-target", target)
            .header("x-amz-date", header(signature.amz_date)?)
            .header(AUTHORIZATION, header(signature.authorization)?);
        if let Some(token) = &self.session_token {
            request = request.header("x-amz-security-token", token.clone());
        }
        request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| BenchError::Signing {
                message: e.to_string(),
            })
    }
}

fn transport(action: Action, err: &dyn std::error::Error) -> BenchError {
    BenchError::Transport {
        action: action.name(),
        message: error_chain(err),
    }
}

/// The endpoint as a URI, refusing what the lean client cannot speak.
pub fn parse_endpoint(endpoint: &str) -> Result<Uri, BenchError> {
    let bad = |reason: &str| BenchError::BadEndpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let uri: Uri = endpoint.parse().map_err(|_| bad("not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("expected http://HOST:PORT or https://HOST"));
    }
    if uri.authority().is_none() {
        return Err(bad("no host"));
    }
    Ok(uri)
}

/// An AWS JSON error body: `{"__type": "...", "message": "..."}`. AWS may
/// prefix `__type` with a namespace (`...#Name`), and some servers spell
/// the message `Message`.
fn failure<B>(status: u16, body: &[u8]) -> Reply<B> {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(rename = "__type", default)]
        error_type: String,
        #[serde(alias = "Message", default)]
        message: String,
    }
    let parsed: ErrorBody = serde_json::from_slice(body).unwrap_or(ErrorBody {
        error_type: String::new(),
        message: String::from_utf8_lossy(body).into_owned(),
    });
    let error_type = match parsed.error_type.rsplit_once('#') {
        Some((_, name)) => name.to_owned(),
        None => parsed.error_type,
    };
    Reply::Failed {
        status,
        throttled: error_type == THROTTLE_ERROR,
        error_type,
        message: parsed.message,
    }
}

/// An error and its sources on one line ("connection refused" is usually
/// a source, three levels down).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_name_their_type_without_namespace() {
        let body = br#"{"__type":"com.amazonaws#ProvisionedThroughputExceededException","message":"slow down"}"#;
        match failure::<()>(400, body) {
            Reply::Failed {
                error_type,
                throttled,
                message,
                ..
            } => {
                assert_eq!(error_type, THROTTLE_ERROR);
                assert!(throttled);
                assert_eq!(message, "slow down");
            }
            Reply::Ok(_) => panic!("a failure"),
        }
    }

    #[test]
    fn endpoints_must_be_http_or_https() {
        assert!(parse_endpoint("http://127.0.0.1:4567").is_ok());
        assert!(parse_endpoint("https://kinesis.us-east-1.amazonaws.com").is_ok());
        assert!(parse_endpoint("127.0.0.1:4567").is_err());
        assert!(parse_endpoint("ftp://127.0.0.1:4567").is_err());
    }
}
