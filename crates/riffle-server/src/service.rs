//! What a JSON-protocol service registers with the edge, so that the edge
//! serves it with no code of its own for that service.
//!
//! The edge dispatches on the `X-Amz-Target` prefix ([`ServiceInfo::target_prefix`]),
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

    /// The service's own metrics, in Prometheus's text format.
    fn write_metrics(&self, _out: &mut String) {}
}
