//! The path of one request: AWS's framing checks, in the order AWS applies
//! them, then the call into the service, then the response.
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
use riffle_kinesis::{Codec, MODEL_OPERATIONS, Subscription};
use tokio::sync::watch;
use tracing::{Instrument, Span, debug, debug_span, field, warn};

use crate::audit::{AuditLog, Call};
use crate::auth;
use crate::body::{BodyError, read_body};
use crate::errors::{self, Encoding, JSON_11, Rejection};
use crate::headers::{self, RequestId};
use crate::requests::Outcome;
use crate::server::Edge;
use crate::{events, eventstream};

/// The body of every response: one whole body, or SubscribeToShard's
/// event stream (chunked over HTTP/1.1, a stream's DATA frames over HTTP/2).
pub(crate) type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// What a successful request answers.
enum Reply {
    /// A body in the request's codec.
    Whole(Bytes, Codec),
    Events(Subscription, Codec),
}

/// The `X-Amz-Target` prefix of the Kinesis API (`targetPrefix` in the model).
const TARGET_PREFIX: &str = "Kinesis_20131202";

/// The protocol a request's Content-Type selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// `application/x-amz-json-1.1`: what Kinesis speaks.
    AwsJson11,
    /// `application/json`: AWS answers in its coral envelope, never runs it.
    PlainJson,
    /// `application/x-amz-cbor-1.1`: the Java SDK's default (issue 5).
    Cbor,
    /// Anything else, including `application/x-amz-json-1.0`, which Kinesis
    /// does not accept.
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

    /// The Kinesis operation named, if the target names one.
    fn operation(&self) -> Option<&'static str> {
        if self.service != TARGET_PREFIX {
            return None;
        }
        // The list is sorted (a test checks), so a binary search does.
        let at = MODEL_OPERATIONS.binary_search(&self.operation).ok()?;
        Some(MODEL_OPERATIONS[at])
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
    let mut audited = None;
    let mut operation = None;
    let outcome = run(&edge, req, &mut operation, &mut audited)
        .instrument(span.clone())
        .await;
    if let Some(operation) = operation {
        let class = match &outcome {
            Ok(_) => Outcome::Success,
            Err((rejection, _)) if errors::aws_error(rejection).status.is_server_error() => {
                Outcome::ServerError
            }
            Err(_) => Outcome::ClientError,
        };
        edge.config
            .request_metrics
            .record(operation, class, started.elapsed());
    }
    if let (Some(log), Some(facts)) = (&edge.config.audit, &audited) {
        audit(log, facts, &outcome, &id, peer, started).await;
    }
    let (status, content_type, body) = match outcome {
        Ok(Reply::Whole(body, Codec::Json)) => (StatusCode::OK, Some(JSON_11), body),
        Ok(Reply::Whole(body, Codec::Cbor)) => (StatusCode::OK, Some(errors::CBOR_11), body),
        Ok(Reply::Events(subscription, codec)) => {
            let mut response = Response::new(events::body(subscription, codec, stopping));
            headers::set(
                response.headers_mut(),
                id,
                Some(eventstream::CONTENT_TYPE),
                0,
            );
            // The length is unknown: HTTP/1.1 sends it chunked.
            response.headers_mut().remove(CONTENT_LENGTH);
            span.in_scope(|| debug!(status = 200, "event stream started"));
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
    let mut response = Response::new(Full::new(Bytes::new()).boxed_unsync());
    headers::set(response.headers_mut(), id, content_type, body.len());
    *response.body_mut() = Full::new(body).boxed_unsync();
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

/// Hands the call's audit line to the log: its outcome in AWS's terms.
async fn audit(
    log: &AuditLog,
    facts: &AuditFacts,
    outcome: &Result<Reply, Failure>,
    id: &RequestId,
    peer: SocketAddr,
    started: Instant,
) {
    let error = match outcome {
        Err((rejection, _)) => Some(errors::aws_error(rejection)),
        Ok(_) => None,
    };
    let request_id = id.to_string();
    let call = Call {
        action: facts.action,
        request_id: &request_id,
        peer,
        access_key_id: facts.access_key_id.as_deref(),
        verified: facts.verified && !matches!(outcome, Err((Rejection::Auth(_), _))),
        user_agent: facts.user_agent.as_ref().and_then(|v| v.to_str().ok()),
        parameters: facts.json.as_deref(),
        status: error.as_ref().map_or(200, |e| e.status.as_u16()),
        error: error.as_ref().map(|e| (e.code, e.message.as_deref())),
        latency_micros: started.elapsed().as_micros() as u64,
    };
    log.record(&call).await;
}

/// What the audit log needs of a request, gathered while it is checked.
struct AuditFacts {
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
    req: Request<Incoming>,
    operation: &mut Option<&'static str>,
    audited: &mut Option<AuditFacts>,
) -> Result<Reply, Failure> {
    let kinesis = &edge.kinesis;
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    let body = read_body(body, declared).await.map_err(|err| match err {
        BodyError::TooLarge => (Rejection::PayloadTooLarge, Encoding::Empty),
        // The client broke off mid-body; it will hardly read this answer.
        BodyError::Read(_) => (Rejection::Malformed, Encoding::AwsJson11),
    })?;
    if parts.method != Method::POST {
        return Err((Rejection::NotPost, Encoding::Xml));
    }
    let protocol = Protocol::of(parts.headers.get(CONTENT_TYPE));
    let target = Target::of(&parts);
    if body.is_empty() {
        let rejection = if target.operation().is_some() {
            Rejection::Malformed
        } else {
            Rejection::UnknownOperation
        };
        // AWS answers an empty body in CBOR unless the client spoke JSON 1.1.
        let encoding = if protocol == Protocol::AwsJson11 {
            Encoding::AwsJson11
        } else {
            Encoding::Cbor
        };
        return Err((rejection, encoding));
    }
    let (codec, encoding) = match protocol {
        Protocol::AwsJson11 => (Codec::Json, Encoding::AwsJson11),
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
    let Some(action) = target.operation() else {
        return Err((json_error(Rejection::UnknownOperation), encoding));
    };
    *operation = Some(action);
    if let Some(log) = &edge.config.audit
        && log.logs(action)
    {
        *audited = Some(AuditFacts {
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
    if let Some(credentials) = &edge.config.credentials
        && let Err(refused) = credentials.verify(&parts, &body)
    {
        return Err((json_error(Rejection::Auth(refused)), encoding));
    }
    if let Some(policies) = &edge.config.policies
        && let Some(key) = auth::access_key_id(&parts.headers, parts.uri.query())
        && (policies.governs(&key) || kinesis.has_resource_policies())
    {
        // A body the codec cannot read names no resource; the action's own
        // validation reports it once the policy allowed the call.
        let json = codec.request_json(&body).unwrap_or(Cow::Borrowed(b"{}"));
        let iterator_stream = |token: &str| kinesis.stream_of_iterator(token);
        let resource_policy = |arn: &str| kinesis.resource_policy(arn);
        if let Err(message) =
            policies.authorize(&key, action, &json, iterator_stream, resource_policy)
        {
            return Err((Rejection::AccessDenied(message), encoding));
        }
    }
    Span::current().record("action", action);
    let failed = |err| (Rejection::Service(err), encoding);
    if action == "SubscribeToShard" {
        let subscription = kinesis.subscribe_to_shard(body, codec).await;
        return subscription
            .map(|subscription| Reply::Events(subscription, codec))
            .map_err(failed);
    }
    kinesis
        .handle(action, body, codec)
        .await
        .map(|body| Reply::Whole(body, codec))
        .map_err(failed)
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
            ("application/x-amz-json-1.0", Protocol::Other),
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
    fn only_kinesis_operations_of_the_model_are_targets() {
        let target = |raw: &'static str| {
            let (parts, ()) = Request::builder()
                .header("x-amz-target", raw)
                .body(())
                .unwrap()
                .into_parts();
            let target = Target::of(&parts);
            (target.operation().map(str::to_owned), target.is_named())
        };
        assert_eq!(
            target("Kinesis_20131202.PutRecord"),
            (Some("PutRecord".to_owned()), true)
        );
        assert_eq!(target("Kinesis_20131202.Nope"), (None, true));
        assert_eq!(target("DynamoDB_20120810.PutRecord"), (None, true));
        assert_eq!(target("Kinesis_20131202"), (None, false));
        assert_eq!(target("Kinesis_20131202.PutRecord.x"), (None, true));
        assert!(
            MODEL_OPERATIONS.is_sorted(),
            "keep the list in the model's (sorted) order"
        );
    }
}
