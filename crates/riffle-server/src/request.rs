//! The path of one request: AWS's framing checks, in the order AWS applies
//! them, then the call into the service its target names, then the
//! response. S3 REST requests (see `services::s3`) take their own short
//! path: body, signature, policy, then `riffle-s3`.
//!
//! The order matters because a request with several faults gets the error
//! of the first check it fails: body size, method, an empty body, the
//! Content-Type, the target, whether the body is JSON, the credentials, the
//! signature (when the server verifies signatures), and
//! only then the action's own validation (in `riffle-kinesis`). The JSON
//! check is done here only on paths that already failed, so a good request
//! is parsed once, by the service.
//!
//! `application/x-amz-cbor-1.1` (the Java SDK's default) takes the same
//! path with `Codec::Cbor`: the service decodes the CBOR and encodes its
//! answer in CBOR, and errors are written as CBOR maps.

use std::borrow::Cow;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, USER_AGENT};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use riffle_kinesis::Codec;
use tokio::sync::watch;
use tracing::{Instrument, Span, debug, debug_span, field, warn};

use crate::audit::{AuditLog, Call};
use crate::auth;
use crate::body::{BODY_BYTES_MAX, BodyError, S3_BODY_BYTES_MAX, read_body};
use crate::errors::{self, Encoding, JSON_11, Rejection};
use crate::headers::{self, RequestId};
use crate::requests::Outcome;
use crate::server::Edge;
use crate::service::{JsonVersion, Reply, Service, ServiceInfo};
use crate::services::s3;
use crate::sigv4::Signing;

/// The body of every response: one whole body, a service's stream
/// (SubscribeToShard's events: chunked over HTTP/1.1, a stream's DATA
/// frames over HTTP/2), or an S3 object read from its file.
pub(crate) type ResponseBody = UnsyncBoxBody<Bytes, io::Error>;

/// A whole body as a [`ResponseBody`].
pub(crate) fn whole(body: Bytes) -> ResponseBody {
    Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// The protocol a request's Content-Type selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `application/x-amz-json-1.1`: what Kinesis and Firehose speak.
    AwsJson11,
    /// `application/x-amz-json-1.0`: what DynamoDB speaks.
    AwsJson10,
    /// `application/json`: AWS answers in its coral envelope, never runs it.
    PlainJson,
    /// `application/x-amz-cbor-1.1`: the Java SDK's default (issue 5), for
    /// the services that take it.
    Cbor,
    /// Anything else, and a JSON version the target's service does not
    /// speak.
    Other,
}

impl Protocol {
    fn of(content_type: Option<&HeaderValue>) -> Protocol {
        let raw = content_type.map_or(&b""[..], HeaderValue::as_bytes);
        let essence = raw
            .split(|&b| b == b';')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        let is = |name: &str| essence.eq_ignore_ascii_case(name.as_bytes());
        if is(JSON_11) {
            Protocol::AwsJson11
        } else if is(errors::JSON_10) {
            Protocol::AwsJson10
        } else if is(errors::CBOR_11) {
            Protocol::Cbor
        } else if is(errors::PLAIN_JSON) {
            Protocol::PlainJson
        } else {
            Protocol::Other
        }
    }
}

/// `X-Amz-Target: <service>.<operation>`.
struct Target<'a> {
    service: &'a str,
    operation: &'a str,
}

impl<'a> Target<'a> {
    fn of(parts: &'a Parts) -> Target<'a> {
        let raw = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let (service, operation) = raw.split_once('.').unwrap_or((raw, ""));
        Target { service, operation }
    }

    /// Both halves present, known or not.
    fn is_named(&self) -> bool {
        !self.service.is_empty() && !self.operation.is_empty()
    }

    /// The registered service the target's prefix names.
    fn service<'s>(&self, services: &'s [Arc<dyn Service>]) -> Option<&'s Arc<dyn Service>> {
        services
            .iter()
            .find(|s| s.info().target_prefix == self.service)
    }

    /// The operation named, if the target names one of that service.
    fn operation(&self, services: &[Arc<dyn Service>]) -> Option<&'static str> {
        self.service(services)?.info().operation(self.operation)
    }
}

/// Serves one request. Never fails: every error becomes an AWS response.
///
/// `stopping` turns true when the server shuts down: event streams then end.
pub(crate) async fn handle(
    edge: Arc<Edge>,
    req: Request<Incoming>,
    peer: SocketAddr,
    stopping: watch::Receiver<bool>,
) -> Result<Response<ResponseBody>, Infallible> {
    let started = Instant::now();
    let id = RequestId::new();
    let span = debug_span!("request", request_id = %id, action = field::Empty);
    let (parts, body) = req.into_parts();
    if let Some(store) = &edge.services.s3
        && s3::is_s3(&parts)
    {
        let request = S3Request {
            parts,
            body,
            id: &id,
            peer,
            started,
        };
        return Ok(handle_s3(&edge, store, request).instrument(span).await);
    }
    let mut audited = None;
    let mut called = None;
    let outcome = run(&edge, parts, body, &mut called, &mut audited, &stopping)
        .instrument(span.clone())
        .await;
    if let Some((service, operation)) = called {
        let class = match &outcome {
            Ok(_) => Outcome::Success,
            Err((rejection, _)) if errors::aws_error(rejection).status.is_server_error() => {
                Outcome::ServerError
            }
            Err(_) => Outcome::ClientError,
        };
        edge.config
            .request_metrics
            .record(service, operation, class, started.elapsed());
    }
    if let (Some(log), Some(facts)) = (&edge.config.audit, &audited) {
        // Only the failure is lent across the await: a streaming body is
        // Send but not Sync.
        let failure = outcome.as_ref().err();
        let error = failure.map(|(rejection, _)| errors::aws_error(rejection));
        let answered = Answered {
            status: error.as_ref().map_or(200, |e| e.status.as_u16()),
            error: error.as_ref().map(|e| (e.code, e.message.as_deref())),
            auth_refused: matches!(failure, Some((Rejection::Auth(_), _))),
        };
        audit(log, facts, &answered, &id, peer, started).await;
    }
    let (status, content_type, body) = match outcome {
        Ok((Reply::Whole(body), Codec::Json)) => {
            let json = called.map_or(JSON_11, |(info, _)| info.json_version.content_type());
            (StatusCode::OK, Some(json), body)
        }
        Ok((Reply::Whole(body), Codec::Cbor)) => (StatusCode::OK, Some(errors::CBOR_11), body),
        Ok((Reply::Stream(body, content_type), _)) => {
            let mut response = Response::new(body);
            headers::set(response.headers_mut(), id, Some(content_type), 0);
            // The length is unknown: HTTP/1.1 sends it chunked.
            response.headers_mut().remove(CONTENT_LENGTH);
            span.in_scope(|| debug!(status = 200, "stream started"));
            return Ok(response);
        }
        Err((rejection, encoding)) => {
            let aws = errors::aws_error(&rejection);
            let encoded = errors::encode(&aws, encoding);
            span.in_scope(|| {
                warn!(request_id = %id, status = aws.status.as_u16(), code = aws.code, error = %rejection, "request failed")
            });
            (encoded.status, encoded.content_type, encoded.body)
        }
    };
    let len = body.len();
    let mut response = Response::new(whole(body));
    headers::set(response.headers_mut(), id, content_type, len);
    *response.status_mut() = status;
    span.in_scope(|| {
        debug!(
            status = status.as_u16(),
            latency_us = started.elapsed().as_micros() as u64,
            error = headers::is_error(status),
            "request done"
        )
    });
    Ok(response)
}

type Failure = (Rejection, Encoding);

/// What a successful JSON call answers, with the codec it was asked in.
type Answer = (Reply, Codec);

/// How a call was answered, as its audit line tells it.
struct Answered<'a> {
    status: u16,
    /// The error's code and message, when it failed.
    error: Option<(&'a str, Option<&'a str>)>,
    /// The credentials or signature were refused.
    auth_refused: bool,
}

/// Hands the call's audit line to the log: its outcome in AWS's terms.
async fn audit(
    log: &AuditLog,
    facts: &AuditFacts,
    answered: &Answered<'_>,
    id: &RequestId,
    peer: SocketAddr,
    started: Instant,
) {
    let request_id = id.to_string();
    let call = Call {
        service: facts.service,
        action: facts.action,
        request_id: &request_id,
        peer,
        access_key_id: facts.access_key_id.as_deref(),
        verified: facts.verified && !answered.auth_refused,
        user_agent: facts.user_agent.as_ref().and_then(|v| v.to_str().ok()),
        parameters: facts.json.as_deref(),
        status: answered.status,
        error: answered.error,
        latency_micros: started.elapsed().as_micros() as u64,
    };
    log.record(&call).await;
}

/// What the audit log needs of a request, gathered while it is checked.
struct AuditFacts {
    service: &'static ServiceInfo,
    action: &'static str,
    access_key_id: Option<String>,
    /// The server verifies signatures (so a call that passed was signed by
    /// the key it names).
    verified: bool,
    /// A clone shares the header's bytes.
    user_agent: Option<HeaderValue>,
    /// The request as JSON, whatever its codec; `None` if it does not parse.
    json: Option<Bytes>,
}

/// The checks, in AWS's order, then the action. Returns the response body.
/// Names the `operation` once the request names one, and fills `audited`
/// if the audit log keeps it.
async fn run(
    edge: &Edge,
    parts: Parts,
    body: Incoming,
    called: &mut Option<(&'static ServiceInfo, &'static str)>,
    audited: &mut Option<AuditFacts>,
    stopping: &watch::Receiver<bool>,
) -> Result<Answer, Failure> {
    let services = &edge.services.json;
    let body = read_body(body, declared_length(&parts), BODY_BYTES_MAX)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge => (Rejection::PayloadTooLarge, Encoding::Empty),
            // The client broke off mid-body; it will hardly read this answer.
            BodyError::Read(_) => (Rejection::Malformed, Encoding::AwsJson11),
        })?;
    if parts.method != Method::POST {
        return Err((Rejection::NotPost, Encoding::Xml));
    }
    let protocol = Protocol::of(parts.headers.get(CONTENT_TYPE));
    let target = Target::of(&parts);
    let service = target.service(services);
    // A service without CBOR answers it as an unknown content type, and
    // so does a service asked in the JSON version it does not speak; JSON
    // 1.0 to no service at all is unknown too.
    let protocol = match (protocol, service.map(|s| s.info())) {
        (Protocol::Cbor, Some(info)) if !info.cbor => Protocol::Other,
        (Protocol::AwsJson11, Some(info)) if info.json_version != JsonVersion::V1_1 => {
            Protocol::Other
        }
        (Protocol::AwsJson10, Some(info)) if info.json_version != JsonVersion::V1_0 => {
            Protocol::Other
        }
        (Protocol::AwsJson10, None) => Protocol::Other,
        (protocol, _) => protocol,
    };
    let json10 = Encoding::AwsJson10 {
        namespace: service.and_then(|s| s.info().error_namespace),
    };
    if body.is_empty() {
        let rejection = if target.operation(services).is_some() {
            Rejection::Malformed
        } else {
            Rejection::UnknownOperation
        };
        // AWS answers an empty body in CBOR unless the client spoke JSON.
        let encoding = match protocol {
            Protocol::AwsJson11 => Encoding::AwsJson11,
            Protocol::AwsJson10 => json10,
            _ => Encoding::Cbor,
        };
        return Err((rejection, encoding));
    }
    let (codec, encoding) = match protocol {
        Protocol::AwsJson11 => (Codec::Json, Encoding::AwsJson11),
        Protocol::AwsJson10 => (Codec::Json, json10),
        Protocol::Cbor => (Codec::Cbor, Encoding::Cbor),
        Protocol::PlainJson => {
            let rejection = if is_json_object(&body) {
                Rejection::UnknownOperation
            } else {
                Rejection::Malformed
            };
            return Err((rejection, Encoding::Coral));
        }
        Protocol::Other => {
            let rejection = if target.is_named() {
                Rejection::UnsupportedContentType
            } else {
                Rejection::NoOperation
            };
            return Err((rejection, Encoding::Xml));
        }
    };
    // A CBOR body is checked by the service, which decodes it anyway.
    let json_error = |otherwise| {
        if codec == Codec::Cbor || is_json_object(&body) {
            otherwise
        } else {
            Rejection::Malformed
        }
    };
    let (Some(service), Some(action)) = (service, target.operation(services)) else {
        return Err((json_error(Rejection::UnknownOperation), encoding));
    };
    let info = service.info();
    *called = Some((info, action));
    if let Some(log) = &edge.config.audit
        && log.logs(info, action)
    {
        *audited = Some(AuditFacts {
            service: info,
            action,
            access_key_id: auth::access_key_id(&parts.headers, parts.uri.query()),
            verified: edge.config.credentials.is_some(),
            user_agent: parts.headers.get(USER_AGENT).cloned(),
            json: match codec.request_json(&body) {
                Ok(Cow::Borrowed(_)) => Some(body.clone()),
                Ok(Cow::Owned(json)) => Some(Bytes::from(json)),
                Err(_) => None,
            },
        });
    }
    if let Err(refused) = auth::check(&parts.headers, parts.uri.query()) {
        return Err((json_error(Rejection::Auth(refused)), encoding));
    }
    let signing = Signing {
        service: info.signing_name,
        s3: false,
    };
    if let Some(credentials) = &edge.config.credentials
        && let Err(refused) = credentials.verify(&parts, &body, signing)
    {
        return Err((json_error(Rejection::Auth(refused)), encoding));
    }
    if let Some(policies) = &edge.config.policies
        && let Some(key) = auth::access_key_id(&parts.headers, parts.uri.query())
        && (policies.governs(&key) || service.has_resource_policies())
    {
        // A body the codec cannot read names no resource; the action's own
        // validation reports it once the policy allowed the call.
        let json = codec.request_json(&body).unwrap_or(Cow::Borrowed(b"{}"));
        let resource = service.resource(action, &json, policies.region(), policies.account_id());
        let attached = service.resource_policy(&resource);
        let qualified = format!("{}:{action}", info.iam_prefix);
        if let Err(message) = policies.authorize(&key, &qualified, &resource, attached) {
            return Err((Rejection::AccessDenied(message), encoding));
        }
    }
    Span::current().record("action", action);
    service
        .call(action, body, codec, stopping)
        .await
        .map(|reply| (reply, codec))
        .map_err(|err| (Rejection::Service(err), encoding))
}

/// The Content-Length, if the client sent a readable one.
fn declared_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
}

/// An S3 REST request and what its audit line and metrics need.
struct S3Request<'a> {
    parts: Parts,
    body: Incoming,
    id: &'a RequestId,
    peer: SocketAddr,
    started: Instant,
}

/// Serves an S3 REST request, counts it by its operation and, when the
/// audit log keeps the operation, audits it as S3's (the service's
/// registration, `S3_INFO`, names its eventSource and data events).
async fn handle_s3(
    edge: &Edge,
    store: &riffle_s3::S3,
    request: S3Request<'_>,
) -> Response<ResponseBody> {
    let S3Request {
        parts,
        body,
        id,
        peer,
        started,
    } = request;
    let operation = s3::operation(&parts);
    let audited = edge
        .config
        .audit
        .as_ref()
        .filter(|log| log.logs(&s3::S3_INFO, operation))
        .map(|_| AuditFacts {
            service: &s3::S3_INFO,
            action: operation,
            access_key_id: auth::access_key_id(&parts.headers, parts.uri.query()),
            verified: edge.config.credentials.is_some(),
            user_agent: parts.headers.get(USER_AGENT).cloned(),
            json: Some(s3::request_parameters(&parts)),
        });
    let (response, auth_refused) = serve_s3(edge, store, parts, body, id).await;
    let class = match response.status() {
        status if status.is_server_error() => Outcome::ServerError,
        status if status.is_client_error() => Outcome::ClientError,
        _ => Outcome::Success,
    };
    edge.config
        .request_metrics
        .record(&s3::S3_INFO, operation, class, started.elapsed());
    if let (Some(log), Some(facts)) = (&edge.config.audit, &audited) {
        // Copied out: the response (its body is not Sync) is not lent
        // across the await.
        let error = response.extensions().get::<riffle_s3::ErrorInfo>().cloned();
        let answered = Answered {
            status: response.status().as_u16(),
            error: error.as_ref().map(|e| (e.code, Some(e.message.as_str()))),
            auth_refused,
        };
        audit(log, facts, &answered, id, peer, started).await;
    }
    response
}

/// An S3 REST request: its body (up to [`S3_BODY_BYTES_MAX`]), the
/// credentials and signature with S3's rules, the caller's identity
/// policy, then `riffle-s3`, which answers everything else. Refusals are
/// S3's XML errors. Also says whether the credentials were refused.
async fn serve_s3(
    edge: &Edge,
    store: &riffle_s3::S3,
    parts: Parts,
    body: Incoming,
    id: &RequestId,
) -> (Response<ResponseBody>, bool) {
    let request_id = id.to_string();
    let head = parts.method == Method::HEAD;
    let (response, auth_refused) = match check_s3(edge, &parts, body).await {
        Ok(body) => {
            let mut request = Request::from_parts(parts, body);
            request
                .extensions_mut()
                .insert(riffle_s3::RequestId(request_id));
            (store.handle(request).await, false)
        }
        Err(rejection) => {
            warn!(request_id = %id, error = %rejection, "S3 request refused");
            let refused = matches!(rejection, Rejection::Auth(_));
            let error = errors::s3_error(&rejection);
            (
                riffle_s3::error_response(&error, &request_id, head),
                refused,
            )
        }
    };
    (response.map(BodyExt::boxed_unsync), auth_refused)
}

/// What the edge checks of an S3 request; returns its body.
async fn check_s3(edge: &Edge, parts: &Parts, body: Incoming) -> Result<Bytes, Rejection> {
    let body = read_body(body, declared_length(parts), S3_BODY_BYTES_MAX)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge => Rejection::PayloadTooLarge,
            BodyError::Read(_) => Rejection::Malformed,
        })?;
    auth::check(&parts.headers, parts.uri.query()).map_err(Rejection::Auth)?;
    if let Some(credentials) = &edge.config.credentials {
        credentials
            .verify(parts, &body, s3::SIGNING)
            .map_err(Rejection::Auth)?;
    }
    if let Some(policies) = &edge.config.policies
        && let Some(key) = auth::access_key_id(&parts.headers, parts.uri.query())
        && policies.governs(&key)
    {
        let (action, resource) = s3::action_and_resource(parts);
        policies
            .authorize(&key, action, &resource, None)
            .map_err(Rejection::AccessDenied)?;
    }
    Ok(body)
}

/// Whether the body is a JSON object, as every Kinesis request is. Only
/// called on paths that already failed.
fn is_json_object(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_select_protocols_ignoring_case_and_parameters() {
        let cases = [
            ("application/x-amz-json-1.1", Protocol::AwsJson11),
            (
                "Application/X-Amz-Json-1.1; charset=utf-8",
                Protocol::AwsJson11,
            ),
            ("application/x-amz-cbor-1.1", Protocol::Cbor),
            ("application/json", Protocol::PlainJson),
            ("application/x-amz-json-1.0", Protocol::AwsJson10),
            ("text/plain", Protocol::Other),
        ];
        for (raw, protocol) in cases {
            assert_eq!(
                Protocol::of(Some(&HeaderValue::from_static(raw))),
                protocol,
                "{raw}"
            );
        }
        assert_eq!(Protocol::of(None), Protocol::Other);
    }

    #[test]
    fn targets_name_operations_of_registered_services_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            riffle_log::LogStore::open(dir.path(), riffle_log::StoreConfig::default()).unwrap(),
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let kinesis = runtime.block_on(async {
            riffle_kinesis::Kinesis::open(store, riffle_kinesis::KinesisConfig::default()).unwrap()
        });
        let services: Vec<Arc<dyn Service>> =
            vec![Arc::new(crate::services::KinesisService(kinesis))];
        let target = |raw: &'static str| {
            let (parts, ()) = Request::builder()
                .header("x-amz-target", raw)
                .body(())
                .unwrap()
                .into_parts();
            let target = Target::of(&parts);
            (
                target.operation(&services).map(str::to_owned),
                target.is_named(),
            )
        };
        assert_eq!(
            target("Kinesis_20131202.PutRecord"),
            (Some("PutRecord".to_owned()), true)
        );
        assert_eq!(target("Kinesis_20131202.Nope"), (None, true));
        assert_eq!(target("DynamoDB_20120810.PutRecord"), (None, true));
        assert_eq!(target("Firehose_20150804.PutRecordBatch"), (None, true));
        assert_eq!(target("Kinesis_20131202"), (None, false));
        assert_eq!(target("Kinesis_20131202.PutRecord.x"), (None, true));
    }
}
