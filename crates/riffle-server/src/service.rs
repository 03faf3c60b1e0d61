//! What a service registers with the edge, so that the edge serves it with
//! no code of its own for that service.
//!
//! The edge dispatches on the `X-Amz-Target` prefix ([`ServiceInfo::target_prefix`]),
//! a query form's `Version` ([`QueryFacts::version`]) or an rpc-v2-cbor
//! path's service name ([`ServiceInfo::rpc_v2_cbor`]),
//! checks SigV4 scopes against its signing name, evaluates identity and
//! resource policies on `<iam_prefix>:<Action>` and the ARN the service
//! names ([`Service::resource`]), writes audit lines with its eventSource,
//! and counts its operations. The service only answers calls.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use riffle_kinesis::Codec;
use tokio::sync::watch;

use crate::errors::AwsError;
use crate::request::ResponseBody;

/// The facts of a service the edge needs, all from its botocore model.
#[derive(Debug, Clone, Copy)]
pub struct ServiceInfo {
    /// `metadata.targetPrefix`, e.g. `Firehose_20150804`.
    pub target_prefix: &'static str,
    /// `metadata.signingName`: the service of a SigV4 credential scope.
    pub signing_name: &'static str,
    /// The prefix of IAM actions, e.g. `firehose` in `firehose:PutRecordBatch`.
    pub iam_prefix: &'static str,
    /// CloudTrail's `eventSource`, e.g. `firehose.amazonaws.com`.
    pub event_source: &'static str,
    /// Every operation of the model, sorted (a test of each service checks).
    pub operations: &'static [&'static str],
    /// The operations CloudTrail logs as data events (audited only with
    /// `--audit-data-events on`).
    pub data_events: &'static [&'static str],
    /// Whether `application/x-amz-cbor-1.1` is served besides JSON.
    pub cbor: bool,
    /// `metadata.jsonVersion`: the JSON protocol the service speaks (its
    /// requests' and answers' Content-Type). A request in the other one
    /// is refused as an unknown content type, as AWS refuses it.
    pub json_version: JsonVersion,
    /// The namespace AWS writes before the service's own error codes in
    /// `__type` (`com.amazonaws.dynamodb.v20120810` makes
    /// `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException`), and
    /// so the front end's before its own (`com.amazon.coral.service#…`,
    /// `com.amazon.coral.validate#ValidationException`); `None` for the
    /// services that send bare codes (Kinesis, Firehose).
    pub error_namespace: Option<&'static str>,
    /// The query protocol (`Action=…&Version=…` form posts, XML answers),
    /// for the services that speak it; such a service's JSON and CBOR
    /// errors are also query-compatible (`x-amzn-query-error`).
    pub query: Option<QueryFacts>,
    /// smithy-rpc-v2-cbor: the service's name in
    /// `POST /service/<name>/operation/<Operation>` (its Smithy shape name).
    pub rpc_v2_cbor: Option<&'static str>,
    /// restJson1: the HTTP bindings of the operations served that way
    /// (Lambda's), from the model's `http` traits; empty for the others.
    pub rest_json: &'static [RestRoute],
}

/// One restJson1 operation's HTTP binding, from its model: the method and
/// `requestUri`, the `responseCode`, and where its input members travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestRoute {
    pub method: &'static str,
    /// The `requestUri`'s path; a `{Member}` segment is that input member.
    pub path: &'static str,
    pub operation: &'static str,
    /// The status of a successful answer (`responseCode`, 200 if absent).
    pub status: u16,
    /// `(querystring name, input member)` of the `location: querystring`
    /// members.
    pub query: &'static [(&'static str, &'static str)],
}

impl RestRoute {
    /// The `{Member}` values of `path` if it is this route's, decoded.
    pub(crate) fn captures(&self, method: &str, path: &str) -> Option<Vec<(&'static str, String)>> {
        if !self.method.eq_ignore_ascii_case(method) {
            return None;
        }
        let mut given = path.trim_end_matches('/').split('/');
        let mut captures = Vec::new();
        for segment in self.path.split('/') {
            let part = given.next()?;
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(member) if !part.is_empty() => {
                    let value = percent_encoding::percent_decode_str(part)
                        .decode_utf8()
                        .ok()?;
                    captures.push((member, value.into_owned()));
                }
                Some(_) => return None,
                None if segment == part => {}
                None => return None,
            }
        }
        given.next().is_none().then_some(captures)
    }

    /// Whether `path` lies under this route's fixed first segments (the
    /// API version Lambda's paths start with), matched or not.
    pub(crate) fn claims(&self, path: &str) -> bool {
        let version = self.path.split('/').nth(1).unwrap_or_default();
        !version.is_empty() && path.split('/').nth(1) == Some(version)
    }
}

/// A query-protocol service's facts, from its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryFacts {
    /// `metadata.apiVersion`: the form's `Version`.
    pub version: &'static str,
    /// `metadata.xmlNamespace`: the answers' `xmlns`.
    pub xml_namespace: &'static str,
    /// Each error shape's query code (the model's `error.code`), e.g.
    /// `("MissingRequiredParameterException", "MissingParameter")`: the
    /// XML `<Code>` and the `x-amzn-query-error` header. A shape not
    /// listed is its own code.
    pub error_codes: &'static [(&'static str, &'static str)],
}

impl QueryFacts {
    /// The query code of an error shape.
    pub(crate) fn code_of(&self, shape: &'static str) -> &'static str {
        self.error_codes
            .iter()
            .find(|(s, _)| *s == shape)
            .map_or(shape, |(_, code)| code)
    }
}

/// The two AWS JSON protocols; they differ in Content-Type only here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonVersion {
    /// `application/x-amz-json-1.0` (DynamoDB).
    V1_0,
    /// `application/x-amz-json-1.1` (Kinesis, Firehose).
    V1_1,
}

impl JsonVersion {
    pub fn content_type(self) -> &'static str {
        match self {
            JsonVersion::V1_0 => crate::errors::JSON_10,
            JsonVersion::V1_1 => crate::errors::JSON_11,
        }
    }
}

impl ServiceInfo {
    /// The operation named, as the model spells it.
    pub(crate) fn operation(&self, name: &str) -> Option<&'static str> {
        let at = self.operations.binary_search(&name).ok()?;
        Some(self.operations[at])
    }
}

/// A successful answer.
pub enum Reply {
    /// A whole body in the request's codec.
    Whole(Bytes),
    /// A streaming body with its content type (Kinesis's event streams).
    Stream(ResponseBody, &'static str),
}

/// A boxed future, so that services can be trait objects.
pub type CallFuture<'a> = Pin<Box<dyn Future<Output = Result<Reply, AwsError>> + Send + 'a>>;

/// A service served on the port.
pub trait Service: Send + Sync + 'static {
    fn info(&self) -> &'static ServiceInfo;

    /// The ARN `action` with `request` (as JSON) acts on, for policies;
    /// `*` for account-wide actions.
    fn resource(&self, action: &str, request: &[u8], region: &str, account_id: &str) -> String;

    /// The resource policy attached to `arn`, if the service keeps any.
    fn resource_policy(&self, _arn: &str) -> Option<String> {
        None
    }

    /// Whether any resource policy may exist (else keys without identity
    /// policies skip the policy check).
    fn has_resource_policies(&self) -> bool {
        false
    }

    /// Runs `action`. `stopping` turns true when the server shuts down
    /// (streaming answers end then). Errors are already in AWS's terms
    /// (mapped in `errors`, the one place).
    fn call<'a>(
        &'a self,
        action: &'static str,
        body: Bytes,
        codec: Codec,
        stopping: &watch::Receiver<bool>,
    ) -> CallFuture<'a>;

    /// Runs `action` asked in the query protocol: `request` is the form
    /// as JSON (`member.N` lists as arrays, every value a string). Only
    /// called for services with [`ServiceInfo::query`]; the edge writes the
    /// XML around the answer (`<ActionResult>`, when not empty).
    fn call_query<'a>(&'a self, action: &'static str, request: Bytes) -> CallFuture<'a> {
        let _ = (action, request);
        Box::pin(async {
            Err(AwsError {
                status: hyper::StatusCode::BAD_REQUEST,
                code: "InvalidAction",
                message: None,
                members: None,
            })
        })
    }

    /// The service's own metrics, in Prometheus's text format.
    fn write_metrics(&self, _out: &mut String) {}
}

/// A call answered with one whole body, its crate's error mapped to AWS's
/// (`errors`): what the services' `call` is, but for Kinesis's streams.
pub(crate) fn whole<'a, E: 'a>(
    answer: impl Future<Output = Result<Bytes, E>> + Send + 'a,
    aws_error: fn(&E) -> AwsError,
) -> CallFuture<'a> {
    Box::pin(async move {
        answer
            .await
            .map(Reply::Whole)
            .map_err(|err| aws_error(&err))
    })
}

/// A top-level string member of a JSON request (what names the resource
/// a policy is checked against), read without parsing the other members;
/// `None` if absent or the body is not a JSON object.
pub(crate) fn string_member(request: &[u8], name: &str) -> Option<String> {
    use serde_json::value::RawValue;
    let members: std::collections::HashMap<&str, &RawValue> =
        serde_json::from_slice(request).ok()?;
    serde_json::from_str(members.get(name)?.get()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_routes_capture_their_members_and_match_nothing_else() {
        let route = RestRoute {
            method: "GET",
            path: "/2015-03-31/event-source-mappings/{UUID}",
            operation: "GetEventSourceMapping",
            status: 200,
            query: &[],
        };
        let got = route.captures("GET", "/2015-03-31/event-source-mappings/a%2Fb");
        assert_eq!(got, Some(vec![("UUID", "a/b".to_owned())]));
        assert_eq!(
            route.captures("DELETE", "/2015-03-31/event-source-mappings/x"),
            None
        );
        assert_eq!(
            route.captures("GET", "/2015-03-31/event-source-mappings/"),
            None
        );
        assert_eq!(
            route.captures("GET", "/2015-03-31/event-source-mappings/x/y"),
            None
        );
        assert_eq!(route.captures("GET", "/2015-03-31/functions/x"), None);
        assert!(route.claims("/2015-03-31/functions/x/invocations"));
        assert!(!route.claims("/bucket/2015-03-31"));
    }

    #[test]
    fn string_members_are_read_from_json_objects_only() {
        let request = br#"{"TableName":"t\u0031","Item":{"k":{"S":"v"}},"N":1}"#;
        assert_eq!(string_member(request, "TableName").as_deref(), Some("t1"));
        assert_eq!(string_member(request, "N"), None);
        assert_eq!(string_member(request, "Missing"), None);
        assert_eq!(string_member(b"[1]", "TableName"), None);
    }
}
