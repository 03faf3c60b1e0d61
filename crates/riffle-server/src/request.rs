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
//!
//! Two routes come before the JSON one, for the services whose
//! `ServiceInfo` declares them: `POST /service/<name>/operation/<Op>`
//! (smithy-rpc-v2-cbor, `Codec::Cbor`) and a form post naming a query
//! service's `Version` (the form read into JSON by `query`, answered in
//! XML). All three end in `authorize_and_call`: the audit facts, the
//! credentials, the signature (over the body as sent, gzipped or not), the
//! policies, then the service.

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
use crate::query;
use crate::requests::{ApiProtocol, Outcome};
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

    /// The registered service the target's prefix names (none for no
    /// prefix: restJson1 services have none).
    fn service<'s>(&self, services: &'s [Arc<dyn Service>]) -> Option<&'s Arc<dyn Service>> {
        if self.service.is_empty() {
            return None;
        }
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
        && rpc_v2_route(&parts, &edge.services.json).is_none()
        && rest_service(&parts, &edge.services.json).is_none()
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
    let outcome = run(&edge, parts, body, id, &mut called, &mut audited, &stopping)
        .instrument(span.clone())
        .await;
    if let Some(Called {
        info: service,
        action: operation,
        protocol,
    }) = called
    {
        edge.config
            .request_metrics
            .record_protocol(service, protocol);
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
    let mut extra_headers = Vec::new();
    let (status, content_type, body) = match outcome {
        Ok((Reply::Whole(body), protocol)) => {
            let (content_type, body) = answer_body(called.as_ref(), protocol, body, id);
            if protocol == ApiProtocol::RpcV2Cbor {
                extra_headers.push((errors::SMITHY_PROTOCOL, errors::RPC_V2_CBOR.to_owned()));
            }
            (success_status(called.as_ref()), content_type, body)
        }
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
            extra_headers = encoded.headers;
            (encoded.status, encoded.content_type, encoded.body)
        }
    };
    let len = body.len();
    let mut response = Response::new(whole(body));
    headers::set(response.headers_mut(), id, content_type, len);
    for (name, value) in extra_headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
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

/// What a successful call answers, with the protocol it was asked in.
type Answer = (Reply, ApiProtocol);

/// The call a request was found to be, once it names one.
struct Called {
    info: &'static ServiceInfo,
    action: &'static str,
    protocol: ApiProtocol,
}

/// A successful answer's Content-Type and body in its protocol: the query
/// protocol's XML document around the service's result; rpc-v2-cbor's
/// empty output has no Content-Type.
fn answer_body(
    called: Option<&Called>,
    protocol: ApiProtocol,
    body: Bytes,
    id: RequestId,
) -> (Option<&'static str>, Bytes) {
    match protocol {
        ApiProtocol::Json10 => (Some(errors::JSON_10), body),
        ApiProtocol::Cbor => (Some(errors::CBOR_11), body),
        ApiProtocol::RpcV2Cbor if body.is_empty() => (None, body),
        ApiProtocol::RpcV2Cbor => (Some(errors::CBOR), body),
        ApiProtocol::Query => match called.and_then(|c| Some((c.action, c.info.query.as_ref()?))) {
            Some((action, facts)) => (
                Some(errors::TEXT_XML),
                errors::query_answer(action, &body, facts, id),
            ),
            None => (Some(errors::TEXT_XML), body),
        },
        ApiProtocol::Json11 | ApiProtocol::RestXml => (Some(JSON_11), body),
        ApiProtocol::RestJson => (Some(errors::PLAIN_JSON), body),
        // Answered by `ingest` and `direct`, never on this path.
        ApiProtocol::HttpIngest | ApiProtocol::Console => (Some("application/json"), body),
    }
}

/// A successful answer's status: its route's `responseCode` for a
/// restJson1 call (Lambda answers 202 to a mapping's creation), else 200.
fn success_status(called: Option<&Called>) -> StatusCode {
    let Some(called) = called.filter(|c| c.protocol == ApiProtocol::RestJson) else {
        return StatusCode::OK;
    };
    let route = called
        .info
        .rest_json
        .iter()
        .find(|route| route.operation == called.action);
    route
        .and_then(|route| StatusCode::from_u16(route.status).ok())
        .unwrap_or(StatusCode::OK)
}

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
/// Names the call once the request names one, and fills `audited` if the
/// audit log keeps it. rpc-v2-cbor paths and query forms of a registered
/// service take their own short routes ([`run_rpc_v2`], [`run_query`]);
/// everything else is a JSON-protocol call.
async fn run(
    edge: &Edge,
    parts: Parts,
    body: Incoming,
    id: RequestId,
    called: &mut Option<Called>,
    audited: &mut Option<AuditFacts>,
    stopping: &watch::Receiver<bool>,
) -> Result<Answer, Failure> {
    let services = &edge.services.json;
    let raw = read_body(body, declared_length(&parts), BODY_BYTES_MAX)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge => (Rejection::PayloadTooLarge, Encoding::Empty),
            // The client broke off mid-body; it will hardly read this answer.
            BodyError::Read(_) => (Rejection::Malformed, Encoding::AwsJson11),
        })?;
    let body = inflate(&parts, &raw)?;
    let mut call = CallParts {
        edge,
        parts: &parts,
        raw: &raw,
        called,
        audited,
        stopping,
    };
    if let Some((service, operation)) = rpc_v2_route(&parts, services) {
        return run_rpc_v2(&mut call, service, operation, body).await;
    }
    if let Some(service) = rest_service(&parts, services) {
        return run_rest_json(&mut call, service, body).await;
    }
    if parts.method != Method::POST {
        return Err((Rejection::NotPost, Encoding::Xml));
    }
    if is_form(&parts)
        && let Some((service, form)) = query_route(&parts, &body, services)
    {
        return run_query(&mut call, service, form, id).await;
    }
    run_json(&mut call, body).await
}

/// What the routes share of a request while it is checked and called.
struct CallParts<'a> {
    edge: &'a Edge,
    parts: &'a Parts,
    /// The body as sent: what a signature covers.
    raw: &'a Bytes,
    called: &'a mut Option<Called>,
    audited: &'a mut Option<AuditFacts>,
    stopping: &'a watch::Receiver<bool>,
}

/// How a checked call reaches its service.
#[derive(Clone, Copy)]
enum Dispatch {
    /// [`Service::call`], the body in this codec.
    Codec(Codec),
    /// [`Service::call_query`], the body the form as JSON.
    Query,
}

impl Dispatch {
    /// The request as JSON, for audit lines and policies' resources.
    fn request_json(self, body: &[u8]) -> Option<Cow<'_, [u8]>> {
        match self {
            Dispatch::Codec(codec) => codec.request_json(body).ok(),
            Dispatch::Query => Some(Cow::Borrowed(body)),
        }
    }
}

/// The largest request body a `Content-Encoding: gzip` one may inflate
/// to: the largest plain body the edge takes.
const INFLATED_BYTES_MAX: u64 = BODY_BYTES_MAX as u64;

/// The body, inflated if the client compressed it (`Content-Encoding:
/// gzip`, which the SDKs use for PutMetricData: the model's
/// `requestcompression`). The signature covers the compressed bytes.
fn inflate(parts: &Parts, raw: &Bytes) -> Result<Bytes, Failure> {
    use std::io::Read as _;
    let gzipped = parts
        .headers
        .get(hyper::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|c| c.trim().eq_ignore_ascii_case("gzip")));
    if !gzipped {
        return Ok(raw.clone());
    }
    let mut inflated = Vec::new();
    let read = flate2::read::GzDecoder::new(&raw[..])
        .take(INFLATED_BYTES_MAX + 1)
        .read_to_end(&mut inflated);
    match read {
        Ok(n) if n as u64 > INFLATED_BYTES_MAX => {
            Err((Rejection::PayloadTooLarge, Encoding::Empty))
        }
        Ok(_) => Ok(Bytes::from(inflated)),
        Err(_) => Err((Rejection::Malformed, Encoding::Xml)),
    }
}

/// `POST /service/<name>/operation/<Operation>` of a registered
/// service's rpc-v2-cbor name: the service and the operation as sent.
fn rpc_v2_route<'s, 'p>(
    parts: &'p Parts,
    services: &'s [Arc<dyn Service>],
) -> Option<(&'s Arc<dyn Service>, &'p str)> {
    if parts.method != Method::POST {
        return None;
    }
    let rest = parts.uri.path().strip_prefix("/service/")?;
    let (name, operation) = rest.split_once("/operation/")?;
    let service = services
        .iter()
        .find(|s| s.info().rpc_v2_cbor == Some(name))?;
    Some((service, operation))
}

/// The restJson1 service whose paths a request's lies under (Lambda's
/// `/2015-03-31/…`), whether or not it names one of its operations.
fn rest_service<'s>(
    parts: &Parts,
    services: &'s [Arc<dyn Service>],
) -> Option<&'s Arc<dyn Service>> {
    let path = parts.uri.path();
    services
        .iter()
        .find(|s| s.info().rest_json.iter().any(|route| route.claims(path)))
}

/// A restJson1 call: the operation its method and path bind, its input
/// the JSON body with the path's and query's members added (as strings:
/// the service reads them as the model types them), errors in
/// restJson1's form.
async fn run_rest_json(
    call: &mut CallParts<'_>,
    service: &Arc<dyn Service>,
    body: Bytes,
) -> Result<Answer, Failure> {
    let (parts, info) = (call.parts, service.info());
    let encoding = Encoding::RestJson;
    let method = parts.method.as_str();
    let found = info.rest_json.iter().find_map(|route| {
        let captures = route.captures(method, parts.uri.path())?;
        Some((route, captures))
    });
    let Some((route, captures)) = found else {
        return Err((Rejection::UnknownOperation, encoding));
    };
    let mut input = if body.is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(members)) => members,
            _ => return Err((Rejection::Malformed, encoding)),
        }
    };
    for (name, value) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
        if let Some((_, member)) = route.query.iter().find(|(q, _)| *q == name) {
            input.insert((*member).to_owned(), value.into_owned().into());
        }
    }
    for (member, value) in captures {
        input.insert(member.to_owned(), value.into());
    }
    let Some(action) = info.operation(route.operation) else {
        return Err((Rejection::UnknownOperation, encoding));
    };
    let checked = Checked {
        service,
        action,
        protocol: ApiProtocol::RestJson,
        dispatch: Dispatch::Codec(Codec::Json),
        encoding,
        refine: keep,
    };
    let input = Bytes::from(serde_json::Value::Object(input).to_string());
    authorize_and_call(call, checked, input).await
}

/// A smithy-rpc-v2-cbor call: errors in CBOR, the query code too for a
/// query-compatible service; a bodiless request is an empty input.
async fn run_rpc_v2(
    call: &mut CallParts<'_>,
    service: &Arc<dyn Service>,
    operation: &str,
    body: Bytes,
) -> Result<Answer, Failure> {
    let info = service.info();
    let encoding = Encoding::RpcV2Cbor {
        namespace: info.error_namespace,
        query: info.query.as_ref(),
    };
    let Some(action) = info.operation(operation) else {
        return Err((Rejection::UnknownOperation, encoding));
    };
    // CBOR's empty map: the input of a call that sent none.
    let body = if body.is_empty() {
        Bytes::from_static(&[0xA0])
    } else {
        body
    };
    let checked = Checked {
        service,
        action,
        protocol: ApiProtocol::RpcV2Cbor,
        dispatch: Dispatch::Codec(Codec::Cbor),
        encoding,
        refine: keep,
    };
    authorize_and_call(call, checked, body).await
}

/// A form body as read: refused only once its service is known, in that
/// service's XML.
type ReadForm = Result<query::Form, query::FormError>;

/// Whether the body is a form, as the query protocol posts it.
fn is_form(parts: &Parts) -> bool {
    !parts.headers.contains_key("x-amz-target")
        && parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
}

/// The query service a form is for: the one whose API version is the
/// form's `Version` (the credential scope's service choosing between
/// services that share one), or, with no such version, the one the
/// scope names. `None` leaves the request to the JSON route's refusals.
fn query_route<'s>(
    parts: &Parts,
    body: &[u8],
    services: &'s [Arc<dyn Service>],
) -> Option<(&'s Arc<dyn Service>, ReadForm)> {
    let form = query::parse(body);
    let version = form.as_ref().ok().and_then(|f| f.version.as_deref());
    let scope = auth::scope_service(&parts.headers);
    let speaks = |s: &&Arc<dyn Service>| s.info().query.is_some();
    let signed_for = |s: &&Arc<dyn Service>| scope.is_none_or(|name| s.info().signing_name == name);
    let by_version = services
        .iter()
        .filter(speaks)
        .filter(|s| version.is_some_and(|v| s.info().query.is_some_and(|q| q.version == v)))
        .find(signed_for);
    let service = by_version.or_else(|| {
        let scope = scope?;
        services
            .iter()
            .filter(speaks)
            .find(|s| s.info().signing_name == scope)
    })?;
    Some((service, form))
}

/// A query-protocol call: XML errors with the service's query codes.
async fn run_query(
    call: &mut CallParts<'_>,
    service: &Arc<dyn Service>,
    form: ReadForm,
    id: RequestId,
) -> Result<Answer, Failure> {
    let info = service.info();
    let Some(facts) = info.query.as_ref() else {
        return Err((Rejection::UnknownOperation, Encoding::Xml));
    };
    let encoding = Encoding::Query {
        facts,
        request_id: id,
    };
    let form = form.map_err(|err| {
        let message = err.to_string();
        (
            Rejection::Service(errors::malformed_query(message)),
            encoding,
        )
    })?;
    let action = form.action.as_deref().and_then(|a| info.operation(a));
    let Some(action) = action else {
        return Err((Rejection::UnknownOperation, encoding));
    };
    let checked = Checked {
        service,
        action,
        protocol: ApiProtocol::Query,
        dispatch: Dispatch::Query,
        encoding,
        refine: keep,
    };
    let json = Bytes::from(form.members.to_string());
    authorize_and_call(call, checked, json).await
}

/// A JSON-protocol call (`X-Amz-Target`, JSON 1.0/1.1 or CBOR 1.1), with
/// AWS's answers to every malformed one.
async fn run_json(call: &mut CallParts<'_>, body: Bytes) -> Result<Answer, Failure> {
    let services = &call.edge.services.json;
    let parts = call.parts;
    let protocol = Protocol::of(parts.headers.get(CONTENT_TYPE));
    let target = Target::of(parts);
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
        query: service.and_then(|s| s.info().query.as_ref()),
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
    let (codec, encoding, api_protocol) = match protocol {
        Protocol::AwsJson11 => (Codec::Json, Encoding::AwsJson11, ApiProtocol::Json11),
        Protocol::AwsJson10 => (Codec::Json, json10, ApiProtocol::Json10),
        Protocol::Cbor => (Codec::Cbor, Encoding::Cbor, ApiProtocol::Cbor),
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
    // A CBOR body is checked by the service, which decodes it anyway; a
    // JSON one that is not an object is refused as such before the rest.
    let refine: fn(Rejection, &[u8]) -> Rejection = if codec == Codec::Cbor {
        keep
    } else {
        |rejection, body| {
            if is_json_object(body) {
                rejection
            } else {
                Rejection::Malformed
            }
        }
    };
    let (Some(service), Some(action)) = (service, target.operation(services)) else {
        return Err((refine(Rejection::UnknownOperation, &body), encoding));
    };
    let checked = Checked {
        service,
        action,
        protocol: api_protocol,
        dispatch: Dispatch::Codec(codec),
        encoding,
        refine,
    };
    authorize_and_call(call, checked, body).await
}

/// A request found to be a call of `action` of `service`.
struct Checked<'s> {
    service: &'s Arc<dyn Service>,
    action: &'static str,
    protocol: ApiProtocol,
    dispatch: Dispatch,
    encoding: Encoding,
    /// What an authentication refusal becomes, given the body (a JSON
    /// call whose body is not JSON is refused as malformed first).
    refine: fn(Rejection, &[u8]) -> Rejection,
}

/// The checks every route shares, in AWS's order (audit facts, the
/// credentials, the signature, the policies), then the call.
async fn authorize_and_call(
    call: &mut CallParts<'_>,
    checked: Checked<'_>,
    body: Bytes,
) -> Result<Answer, Failure> {
    let Checked {
        service,
        action,
        protocol,
        dispatch,
        encoding,
        refine,
    } = checked;
    let (edge, parts) = (call.edge, call.parts);
    let info = service.info();
    *call.called = Some(Called {
        info,
        action,
        protocol,
    });
    if let Some(log) = &edge.config.audit
        && log.logs(info, action)
    {
        *call.audited = Some(AuditFacts {
            service: info,
            action,
            access_key_id: auth::access_key_id(&parts.headers, parts.uri.query()),
            verified: edge.config.credentials.is_some(),
            user_agent: parts.headers.get(USER_AGENT).cloned(),
            json: match dispatch.request_json(&body) {
                Some(Cow::Borrowed(_)) => Some(body.clone()),
                Some(Cow::Owned(json)) => Some(Bytes::from(json)),
                None => None,
            },
        });
    }
    if let Err(refused) = auth::check(&parts.headers, parts.uri.query()) {
        return Err((refine(Rejection::Auth(refused), &body), encoding));
    }
    let signing = Signing {
        service: info.signing_name,
        s3: false,
    };
    if let Some(credentials) = &edge.config.credentials
        && let Err(refused) = credentials.verify(parts, call.raw, signing)
    {
        return Err((refine(Rejection::Auth(refused), &body), encoding));
    }
    if let Some(policies) = &edge.config.policies
        && let Some(key) = auth::access_key_id(&parts.headers, parts.uri.query())
        && (policies.governs(&key) || service.has_resource_policies())
    {
        // A body the codec cannot read names no resource; the action's own
        // validation reports it once the policy allowed the call.
        let json = dispatch.request_json(&body).unwrap_or(Cow::Borrowed(b"{}"));
        let resource = service.resource(action, &json, policies.region(), policies.account_id());
        let attached = service.resource_policy(&resource);
        let qualified = format!("{}:{action}", info.iam_prefix);
        if let Err(message) = policies.authorize(&key, &qualified, &resource, attached) {
            return Err((Rejection::AccessDenied(message), encoding));
        }
    }
    Span::current().record("action", action);
    let answer = match dispatch {
        Dispatch::Codec(codec) => service.call(action, body, codec, call.stopping).await,
        Dispatch::Query => service.call_query(action, body).await,
    };
    answer
        .map(|reply| (reply, protocol))
        .map_err(|err| (Rejection::Service(err), encoding))
}

/// A refusal as it is: what a route that reads its own body keeps.
fn keep(rejection: Rejection, _body: &[u8]) -> Rejection {
    rejection
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
    let metrics = &edge.config.request_metrics;
    metrics.record(&s3::S3_INFO, operation, class, started.elapsed());
    metrics.record_protocol(&s3::S3_INFO, ApiProtocol::RestXml);
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
