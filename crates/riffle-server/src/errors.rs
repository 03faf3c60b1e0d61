//! THE one place where an error becomes an AWS error response.
//!
//! [`kinesis_error`] maps each [`KinesisError`] variant to its HTTP status,
//! `__type` code and message; [`aws_error`] does the same for what the edge
//! itself refuses (oversized bodies, unsigned requests, unknown targets, …);
//! [`encode`] writes the result in the form the client's protocol expects.
//!
//! What AWS sends, and so what Riffle sends, for the Kinesis JSON 1.1 protocol:
//! HTTP 400 (500 for `InternalFailure`), `Content-Type:
//! application/x-amz-json-1.1`, body `{"__type":"<Code>","message":"<text>"}`,
//! and no message member where AWS sends none (e.g.
//! `{"__type":"SerializationException"}` for a body that is not JSON). The
//! member's name is the exception's own ([`message_member`]): `Message` for
//! the front end's SerializationException and the authorizer's
//! AccessDeniedException, `message` for every other error.
//! Kinesis puts the code in the body only: no `x-amzn-ErrorType` header, so
//! none is sent (the SDKs read `__type`). For `application/x-amz-cbor-1.1`
//! the same map is written in CBOR, which the AWS SDK for Java's CBOR
//! protocol reads the same way (its JSON error unmarshaller takes the code
//! from `x-amzn-ErrorType` if present, else from the body's `__type`).

use hyper::StatusCode;
use riffle_cloudwatch::CloudWatchError;
use riffle_dynamodb::DynamoError;
use riffle_firehose::FirehoseError;
use riffle_glue::GlueError;
use riffle_kinesis::{Codec, KinesisError};
use riffle_s3::S3Error;
use riffle_triggers::TriggersError;

use std::borrow::Cow;

use bytes::Bytes;

use crate::auth::AuthError;
use crate::headers::RequestId;
use crate::service::QueryFacts;

/// Everything that ends a request without a successful reply.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The service refused the call; already in AWS's terms.
    #[error("{}: {}", .0.code, .0.message.as_deref().unwrap_or(""))]
    Service(AwsError),
    /// The body exceeds [`crate::BODY_BYTES_MAX`].
    #[error("request body too large")]
    PayloadTooLarge,
    /// Any method but POST.
    #[error("method is not POST")]
    NotPost,
    /// A Content-Type AWS does not serve, and no usable `X-Amz-Target`.
    #[error("no target and no known content type")]
    NoOperation,
    /// A Content-Type AWS does not serve (e.g. `application/x-amz-json-1.0`).
    #[error("unsupported content type")]
    UnsupportedContentType,
    /// `X-Amz-Target` missing, of another service, or naming no Kinesis action.
    #[error("unknown operation")]
    UnknownOperation,
    /// The body is empty or not a JSON object.
    #[error("body is not a JSON object")]
    Malformed,
    /// Logged by its summary: a mismatch's full message quotes the
    /// canonical request, session token included, which logs must not keep.
    #[error("credentials refused: {}", .0.summary())]
    Auth(AuthError),
    /// An access key's policy does not allow the call; AWS's message.
    #[error("access denied: {0}")]
    AccessDenied(String),
}

/// One AWS error before it is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: StatusCode,
    /// The `__type` member.
    pub code: &'static str,
    /// The message member (named by [`message_member`]); `None` where AWS
    /// sends none.
    pub message: Option<String>,
    /// The exception's other members (DynamoDB's `Item` of a failed
    /// condition, `CancellationReasons` of a cancelled transaction),
    /// written after the message in the JSON encodings.
    pub members: Option<serde_json::Map<String, serde_json::Value>>,
}

/// How an error is written, chosen from the request's Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-amz-json-1.1`: `{"__type":…,"message":…}`.
    AwsJson11,
    /// `application/x-amz-json-1.0`, the same body, `__type` qualified by
    /// the service's namespace if it has one ([`qualified_type`]); a
    /// query-compatible service's also carry `x-amzn-query-error`.
    AwsJson10 {
        namespace: Option<&'static str>,
        query: Option<&'static QueryFacts>,
    },
    /// smithy-rpc-v2-cbor: `application/cbor`, the JSON 1.0 map in CBOR,
    /// `smithy-protocol: rpc-v2-cbor`, and `x-amzn-query-error` for a
    /// query-compatible service.
    RpcV2Cbor {
        namespace: Option<&'static str>,
        query: Option<&'static QueryFacts>,
    },
    /// The query protocol: `<ErrorResponse>` in XML ([`query_body`]).
    Query {
        facts: &'static QueryFacts,
        request_id: RequestId,
    },
    /// `application/x-amz-cbor-1.1`: the same map in CBOR.
    Cbor,
    /// `application/json`: AWS never runs an action for it and answers
    /// HTTP 200 with its older "coral" envelope holding the error.
    Coral,
    /// Requests AWS cannot attribute to a protocol get a small XML document.
    Xml,
    /// No body at all (HTTP 413).
    Empty,
    /// restJson1 (Lambda): `application/json`, the code in
    /// `x-amzn-ErrorType`, the body `{"Type":"User"|"Service","Message":…}`.
    RestJson,
}

/// An encoded error: status, Content-Type (if any), the protocol's own
/// headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub status: StatusCode,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

/// THE mapping of the service's errors: each variant is one AWS code.
pub fn kinesis_error(err: &KinesisError) -> AwsError {
    use KinesisError as E;
    let (status, code, message) = match err {
        E::Serialization(m) => (StatusCode::BAD_REQUEST, "SerializationException", m),
        E::Validation(m) => (StatusCode::BAD_REQUEST, "ValidationException", m),
        E::UnknownOperation(m) => (StatusCode::BAD_REQUEST, "UnknownOperationException", m),
        E::ResourceNotFound(m) => (StatusCode::BAD_REQUEST, "ResourceNotFoundException", m),
        E::ResourceInUse(m) => (StatusCode::BAD_REQUEST, "ResourceInUseException", m),
        E::InvalidArgument(m) => (StatusCode::BAD_REQUEST, "InvalidArgumentException", m),
        E::LimitExceeded(m) => (StatusCode::BAD_REQUEST, "LimitExceededException", m),
        E::ExpiredIterator(m) => (StatusCode::BAD_REQUEST, "ExpiredIteratorException", m),
        E::ProvisionedThroughputExceeded(m) => (
            StatusCode::BAD_REQUEST,
            "ProvisionedThroughputExceededException",
            m,
        ),
        E::AccessDenied(m) => (StatusCode::BAD_REQUEST, "AccessDeniedException", m),
        // The client sees that the server failed, and the engine's reason:
        // on a self-hosted server the operator and the client are often
        // the same person. The full error is also logged with the request id.
        E::Storage(source) => {
            let message = format!("Internal service failure: {source}");
            return AwsError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "InternalFailure",
                message: Some(message),
                members: None,
            };
        }
    };
    AwsError {
        status,
        code,
        message: (!message.is_empty()).then(|| message.clone()),
        members: None,
    }
}

/// THE mapping of Firehose's errors: the crate names each one's AWS code,
/// message and status; they are taken as they are.
pub fn firehose_error(err: &FirehoseError) -> AwsError {
    if matches!(err, FirehoseError::Storage(_)) {
        // The engine's text stays in the log (with the request id).
        tracing::error!(error = %err, "Firehose storage failure");
    }
    AwsError {
        status: StatusCode::from_u16(err.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        code: err.code(),
        message: err.message(),
        members: None,
    }
}

/// THE mapping of the DynamoDB subset's errors: the crate names each
/// one's code, message and status; the JSON 1.0 encoding qualifies the
/// code with DynamoDB's namespace.
pub fn dynamodb_error(err: &DynamoError) -> AwsError {
    if let DynamoError::Storage(reason) = err {
        // The engine's text stays in the log (with the request id).
        tracing::error!(error = %reason, "DynamoDB storage failure");
    }
    AwsError {
        status: StatusCode::from_u16(err.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        code: err.code(),
        message: Some(err.message()),
        members: err.members(),
    }
}

/// THE mapping of the Glue subset's errors: the model's error shape and
/// AWS's message.
pub fn glue_error(err: &GlueError) -> AwsError {
    if let GlueError::Storage(reason) = err {
        // The engine's text stays in the log (with the request id).
        tracing::error!(error = %reason, "Glue storage failure");
    }
    AwsError {
        status: StatusCode::from_u16(err.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        code: err.code(),
        message: Some(err.message()),
        members: None,
    }
}

/// THE mapping of CloudWatch's errors: `code` is the model's error shape
/// (the JSON and CBOR `__type`); the query code, which the XML and the
/// `x-amzn-query-error` header carry, is looked up in the service's
/// [`QueryFacts`].
pub fn cloudwatch_error(err: &CloudWatchError) -> AwsError {
    AwsError {
        status: StatusCode::BAD_REQUEST,
        code: err.shape(),
        message: Some(err.message()),
        members: None,
    }
}

pub fn triggers_error(err: &TriggersError) -> AwsError {
    AwsError {
        status: StatusCode::from_u16(err.status()).unwrap_or(StatusCode::BAD_REQUEST),
        code: err.code(),
        message: Some(err.message().to_owned()),
        members: None,
    }
}

/// A query form the edge cannot read into members (a forged list index,
/// a key both a value and a structure): the query front end's
/// `MalformedQueryString`.
pub(crate) fn malformed_query(message: String) -> AwsError {
    AwsError {
        status: StatusCode::BAD_REQUEST,
        code: "MalformedQueryString",
        message: Some(message),
        members: None,
    }
}

/// What the edge refuses of an S3 request, as S3 says it (an XML
/// `<Error>` written by `riffle_s3::error_response`).
pub fn s3_error(rejection: &Rejection) -> S3Error {
    match rejection {
        Rejection::PayloadTooLarge => S3Error::EntityTooLarge {
            size: crate::body::S3_BODY_BYTES_MAX as u64 + 1,
            max: crate::body::S3_BODY_BYTES_MAX as u64,
        },
        Rejection::Auth(AuthError::UnknownKey) => S3Error::InvalidAccessKeyId {
            access_key_id: String::new(),
        },
        Rejection::Auth(AuthError::Invalid(_)) => S3Error::SignatureDoesNotMatch,
        Rejection::Auth(AuthError::Incomplete(message)) => S3Error::InvalidRequest {
            message: message.clone(),
        },
        // The client broke off mid-body.
        Rejection::Malformed => S3Error::IncompleteBody {
            message: "The request body terminated unexpectedly".to_owned(),
        },
        // Anonymous requests, policies' denials and anything else.
        _ => S3Error::AccessDenied,
    }
}

/// An error after a SubscribeToShard event stream started: an
/// event-stream `exception` message whose `:exception-type` is the AWS
/// code and whose payload is the usual error body in the request's codec.
pub fn exception_event(err: &KinesisError, codec: Codec) -> Bytes {
    let aws = kinesis_error(err);
    let body = match codec {
        Codec::Json => json_body(&aws),
        Codec::Cbor => cbor_body(&aws),
    };
    crate::eventstream::exception(aws.code, codec, &body)
}

/// The mapping of everything else, in AWS's words.
pub fn aws_error(rejection: &Rejection) -> AwsError {
    let (status, code, message) = match rejection {
        Rejection::Service(err) => return err.clone(),
        Rejection::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", None),
        Rejection::NotPost | Rejection::NoOperation => (
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            Some("Unable to determine service/operation name to be authorized".to_owned()),
        ),
        Rejection::UnsupportedContentType => (StatusCode::NOT_FOUND, "UnknownOperationException", None),
        Rejection::UnknownOperation => (StatusCode::BAD_REQUEST, "UnknownOperationException", None),
        Rejection::Malformed => (StatusCode::BAD_REQUEST, "SerializationException", None),
        Rejection::Auth(AuthError::Missing) => (
            StatusCode::BAD_REQUEST,
            "MissingAuthenticationTokenException",
            Some("Missing Authentication Token".to_owned()),
        ),
        Rejection::Auth(AuthError::Ambiguous) => (
            StatusCode::BAD_REQUEST,
            "InvalidSignatureException",
            Some("Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".to_owned()),
        ),
        Rejection::Auth(AuthError::Incomplete(m)) => {
            (StatusCode::BAD_REQUEST, "IncompleteSignatureException", Some(m.clone()))
        }
        Rejection::Auth(AuthError::UnknownKey) => (
            StatusCode::BAD_REQUEST,
            "UnrecognizedClientException",
            Some("The security token included in the request is invalid.".to_owned()),
        ),
        Rejection::Auth(AuthError::Invalid(m)) => {
            (StatusCode::BAD_REQUEST, "InvalidSignatureException", Some(m.clone()))
        }
        Rejection::AccessDenied(m) => {
            (StatusCode::BAD_REQUEST, "AccessDeniedException", Some(m.clone()))
        }
    };
    AwsError {
        status,
        code,
        message,
        members: None,
    }
}

/// Why an HTTP ingest request (`ingest`) wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum IngestRejection {
    #[error("no ingest route")]
    NoRoute,
    #[error("method is not POST")]
    NotPost,
    #[error("no valid API key")]
    Forbidden,
    #[error("API key {key:?} may not write {stream:?}")]
    StreamNotAllowed { key: String, stream: String },
    #[error("throttled")]
    Throttled,
    #[error("body too large")]
    TooLarge,
    #[error("reading the body failed")]
    BodyRead,
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("body is not JSON: {0}")]
    Malformed(String),
    #[error("no records")]
    NoRecords,
    #[error("{0} records")]
    TooManyRecords(usize),
    #[error("no partition key header {0:?}")]
    NoKeyHeader(String),
    #[error("record {record} has no key field {field:?}")]
    NoKeyField { record: usize, field: String },
    #[error("{}: {}", .0.code, .0.message.as_deref().unwrap_or(""))]
    Service(AwsError),
    #[error("internal error")]
    Internal,
}

/// An ingest rejection's status and JSON body. The edge's own refusals
/// are API Gateway's (`{"message":"Forbidden"}`, `{"message":"Too Many
/// Requests"}`, …) with Riffle's explanation where API Gateway has none;
/// a refused call keeps the service's code and message.
pub(crate) fn ingest_error(rejection: &IngestRejection) -> (StatusCode, Bytes) {
    use crate::ingest::{INGEST_BODY_BYTES_MAX, INGEST_RECORDS_MAX};
    let (status, message) = match rejection {
        IngestRejection::Service(error) => return (error.status, json_body(error)),
        IngestRejection::NoRoute => (
            StatusCode::NOT_FOUND,
            "Not Found: POST to /streams/<stream name> or /delivery-streams/<delivery stream name>"
                .to_owned(),
        ),
        IngestRejection::NotPost => (
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed: records are sent with POST".to_owned(),
        ),
        IngestRejection::Forbidden => (StatusCode::FORBIDDEN, "Forbidden".to_owned()),
        IngestRejection::StreamNotAllowed { stream, .. } => (
            StatusCode::FORBIDDEN,
            format!("Forbidden: this API key may not write to {stream}"),
        ),
        IngestRejection::Throttled => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too Many Requests".to_owned(),
        ),
        IngestRejection::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request Too Long: the body may have at most {INGEST_BODY_BYTES_MAX} bytes"),
        ),
        IngestRejection::BodyRead => (
            StatusCode::BAD_REQUEST,
            "The request body could not be read".to_owned(),
        ),
        IngestRejection::NotUtf8 => (
            StatusCode::BAD_REQUEST,
            "The body is not UTF-8 JSON".to_owned(),
        ),
        IngestRejection::Malformed(why) => (
            StatusCode::BAD_REQUEST,
            format!("The body is not a JSON array or JSON values one after another: {why}"),
        ),
        IngestRejection::NoRecords => (
            StatusCode::BAD_REQUEST,
            "The body holds no records".to_owned(),
        ),
        IngestRejection::TooManyRecords(n) => (
            StatusCode::BAD_REQUEST,
            format!("The body holds {n} records; a request may carry at most {INGEST_RECORDS_MAX}"),
        ),
        IngestRejection::NoKeyHeader(name) => (
            StatusCode::BAD_REQUEST,
            format!("partition-key-header names {name:?}, which the request does not carry"),
        ),
        IngestRejection::NoKeyField { record, field } => (
            StatusCode::BAD_REQUEST,
            format!(
                "Record {record} has no string, number or boolean member {field:?} to take its partition key from"
            ),
        ),
        IngestRejection::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal server error".to_owned(),
        ),
    };
    let body = serde_json::json!({ "message": message });
    (status, Bytes::from(body.to_string()))
}

/// Writes an error in the client's encoding.
pub fn encode(error: &AwsError, encoding: Encoding) -> Encoded {
    let (status, content_type, body) = match encoding {
        Encoding::AwsJson11 => (error.status, Some(JSON_11), json_body(error)),
        Encoding::AwsJson10 { namespace, query } => {
            let type_name = qualified_type(error.code, namespace);
            let mut encoded = Encoded {
                status: error.status,
                content_type: Some(JSON_10),
                headers: Vec::new(),
                body: json_body_typed(&type_name, error),
            };
            push_query_error(&mut encoded.headers, error, query);
            return encoded;
        }
        Encoding::RpcV2Cbor { namespace, query } => {
            let type_name = qualified_type(error.code, namespace);
            let mut encoded = Encoded {
                status: error.status,
                content_type: Some(CBOR),
                headers: vec![(SMITHY_PROTOCOL, RPC_V2_CBOR.to_owned())],
                body: cbor_body_typed(&type_name, error),
            };
            push_query_error(&mut encoded.headers, error, query);
            return encoded;
        }
        Encoding::Query { facts, request_id } => (
            error.status,
            Some(TEXT_XML),
            query_body(error, facts, request_id),
        ),
        Encoding::Cbor => (error.status, Some(CBOR_11), cbor_body(error)),
        Encoding::Coral => (StatusCode::OK, Some(PLAIN_JSON), coral_body(error)),
        Encoding::Xml => (error.status, None, xml_body(error)),
        Encoding::Empty => (error.status, None, Bytes::new()),
        Encoding::RestJson => {
            return Encoded {
                status: error.status,
                content_type: Some(PLAIN_JSON),
                headers: vec![(ERROR_TYPE, error.code.to_owned())],
                body: rest_json_body(error),
            };
        }
    };
    Encoded {
        status,
        content_type,
        headers: Vec::new(),
        body,
    }
}

/// The header restJson1 names an error's code in.
const ERROR_TYPE: &str = "x-amzn-ErrorType";

/// The message member of a restJson1 error shape, as Lambda's model
/// spells it: `Message` for ResourceNotFoundException and
/// ServiceException, `message` for the others.
fn rest_json_message_member(code: &str) -> &'static str {
    match code {
        "ResourceNotFoundException" | "ServiceException" => "Message",
        _ => "message",
    }
}

/// Lambda's error body: who is at fault and the message, then any other
/// members of the exception.
fn rest_json_body(error: &AwsError) -> Bytes {
    let mut body = serde_json::Map::new();
    let at_fault = if error.status.is_server_error() {
        "Service"
    } else {
        "User"
    };
    body.insert("Type".to_owned(), at_fault.into());
    if let Some(message) = &error.message {
        body.insert(
            rest_json_message_member(error.code).to_owned(),
            message.clone().into(),
        );
    }
    for (name, value) in error.members.iter().flatten() {
        body.insert(name.clone(), value.clone());
    }
    Bytes::from(serde_json::Value::Object(body).to_string())
}

/// `x-amzn-query-error: <Code>;<Sender|Receiver>`, which an
/// `awsQueryCompatible` service adds so that the SDKs report the query
/// code (botocore and the SDK for Rust take it over `__type`).
fn push_query_error(
    headers: &mut Vec<(&'static str, String)>,
    error: &AwsError,
    query: Option<&'static QueryFacts>,
) {
    if let Some(facts) = query {
        let fault = fault(error.status);
        headers.push((
            QUERY_ERROR,
            format!("{};{fault}", query_code(error.code, facts)),
        ));
    }
}

/// Who is at fault, as the query protocol's `<Type>` says it.
fn fault(status: StatusCode) -> &'static str {
    if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    }
}

/// An error's query code: the service's own from its [`QueryFacts`], the
/// edge's in the words of the query services' common errors
/// (CloudWatch's "Common Errors": `MissingAuthenticationToken`,
/// `InvalidClientTokenId`, `SignatureDoesNotMatch`, …).
fn query_code(code: &'static str, facts: &QueryFacts) -> &'static str {
    match code {
        "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
        "IncompleteSignatureException" => "IncompleteSignature",
        "InvalidSignatureException" => "SignatureDoesNotMatch",
        "UnrecognizedClientException" => "InvalidClientTokenId",
        "AccessDeniedException" => "AccessDenied",
        "UnknownOperationException" => "InvalidAction",
        "SerializationException" => "MalformedQueryString",
        "InternalFailure" => "InternalFailure",
        _ => facts.code_of(code),
    }
}

/// The query protocol's error document, as AWS sends it:
///
/// ```xml
/// <ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">
///   <Error>
///     <Type>Sender</Type>
///     <Code>InvalidParameterValue</Code>
///     <Message>…</Message>
///   </Error>
///   <RequestId>…</RequestId>
/// </ErrorResponse>
/// ```
fn query_body(error: &AwsError, facts: &QueryFacts, request_id: RequestId) -> Bytes {
    let message = match &error.message {
        Some(message) => format!("\n    <Message>{}</Message>", xml_escape(message)),
        None => String::new(),
    };
    Bytes::from(format!(
        "<ErrorResponse xmlns=\"{}\">\n  <Error>\n    <Type>{}</Type>\n    <Code>{}</Code>{message}\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
        facts.xml_namespace,
        fault(error.status),
        query_code(error.code, facts),
    ))
}

/// A successful query-protocol answer: `<ActionResponse>` with the
/// action's `result` (XML members) in `<ActionResult>` when it has any,
/// and the request id.
pub(crate) fn query_answer(
    action: &str,
    result: &[u8],
    facts: &QueryFacts,
    request_id: RequestId,
) -> Bytes {
    let result = if result.is_empty() {
        String::new()
    } else {
        format!(
            "\n  <{action}Result>{}</{action}Result>",
            String::from_utf8_lossy(result)
        )
    };
    Bytes::from(format!(
        "<{action}Response xmlns=\"{}\">{result}\n  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        facts.xml_namespace
    ))
}

pub(crate) const JSON_11: &str = "application/x-amz-json-1.1";
pub(crate) const JSON_10: &str = "application/x-amz-json-1.0";
pub(crate) const CBOR_11: &str = "application/x-amz-cbor-1.1";
pub(crate) const PLAIN_JSON: &str = "application/json";
/// smithy-rpc-v2-cbor's Content-Type.
pub(crate) const CBOR: &str = "application/cbor";
/// The query protocol's answers' Content-Type.
pub(crate) const TEXT_XML: &str = "text/xml";
/// The header that names an rpc-v2 protocol, on requests and answers.
pub(crate) const SMITHY_PROTOCOL: &str = "smithy-protocol";
pub(crate) const RPC_V2_CBOR: &str = "rpc-v2-cbor";
const QUERY_ERROR: &str = "x-amzn-query-error";

/// The name of an error's message member, as AWS writes it for that
/// exception (the member of the exception's own class, so it is the same
/// in JSON, CBOR, the coral envelope and event-stream exceptions).
///
/// `Message`: SerializationException, which the JSON front end raises
/// (`{"__type":"SerializationException","Message":"Expected map or null"}`,
/// as kinesalite recorded AWS's answers, and DynamoDB's front end writes it
/// alike), and AccessDeniedException, which the IAM authorizer raises (its
/// answers recorded from EMR, DynamoDB and Cognito read
/// `{"__type":"AccessDeniedException","Message":"User: … is not authorized
/// to perform: …"}`). `message`: every exception of the Kinesis model (its
/// shapes name the member so), ValidationException, InternalFailure, and
/// the authentication errors (MissingAuthenticationToken,
/// IncompleteSignature, InvalidSignature, UnrecognizedClient). The SDKs
/// read either spelling (botocore: `message`, else `Message`; the Rust and
/// JavaScript SDKs likewise), so the difference shows only to raw HTTP.
pub(crate) fn message_member(code: &str) -> &'static str {
    match code {
        "SerializationException" | "AccessDeniedException" => "Message",
        _ => "message",
    }
}

/// The `__type` of an error of a service that qualifies its codes
/// (DynamoDB's `namespace` is `com.amazonaws.dynamodb.v20120810`). The
/// front end's own errors carry its namespaces, as AWS sends them
/// (`com.amazon.coral.validate#ValidationException`,
/// `com.amazon.coral.service#SerializationException`, …, as recorded from
/// DynamoDB by dynalite and DynamoDB Local); the service's errors carry
/// the service's. botocore and the SDKs keep what follows the `#`.
fn qualified_type(code: &'static str, namespace: Option<&'static str>) -> Cow<'static, str> {
    let Some(namespace) = namespace else {
        return code.into();
    };
    match code {
        "ValidationException" => "com.amazon.coral.validate#ValidationException",
        "SerializationException" => "com.amazon.coral.service#SerializationException",
        "UnknownOperationException" => "com.amazon.coral.service#UnknownOperationException",
        "MissingAuthenticationTokenException" => {
            "com.amazon.coral.service#MissingAuthenticationTokenException"
        }
        "IncompleteSignatureException" => "com.amazon.coral.service#IncompleteSignatureException",
        "InvalidSignatureException" => "com.amazon.coral.service#InvalidSignatureException",
        "UnrecognizedClientException" => "com.amazon.coral.service#UnrecognizedClientException",
        "AccessDeniedException" => "com.amazon.coral.service#AccessDeniedException",
        "InternalFailure" => "com.amazon.coral.service#InternalFailure",
        _ => return format!("{namespace}#{code}").into(),
    }
    .into()
}

/// [`json_body`] with `type_name` as the `__type` (the message member is
/// still named for the bare code).
fn json_body_typed(type_name: &str, error: &AwsError) -> Bytes {
    let mut out = format!(r#"{{"__type":"{type_name}""#);
    push_json_message(&mut out, error);
    out.push('}');
    Bytes::from(out)
}

/// `{"__type":"<code>","<member>":"<escaped>"}`, or `{"__type":"<code>"}`.
fn json_body(error: &AwsError) -> Bytes {
    let mut out = format!(r#"{{"__type":"{}""#, error.code);
    push_json_message(&mut out, error);
    out.push('}');
    Bytes::from(out)
}

/// `,"<member>":"<escaped>"` if the error has a message, then its other
/// members.
fn push_json_message(out: &mut String, error: &AwsError) {
    if let Some(message) = &error.message {
        out.push_str(&format!(r#","{}":"#, message_member(error.code)));
        // Serializing a &str into JSON cannot fail.
        out.push_str(&serde_json::to_string(message).expect("a string is always valid JSON"));
    }
    for (name, value) in error.members.iter().flatten() {
        // Strings and JSON values always serialize.
        out.push_str(&format!(
            ",{}:{}",
            serde_json::to_string(name).expect("a string is always valid JSON"),
            serde_json::to_string(value).expect("a JSON value serializes")
        ));
    }
}

/// The coral 1.0 envelope AWS sends for `application/json`, e.g.
/// `{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException"},"Version":"1.0"}`.
/// AWS's answers today carry no message member when there is no message
/// (older records, kinesalite's among them, show `"message":null`; the
/// answers recorded from AWS's coral front ends since have none); a
/// message, if any, is written under its member's name.
fn coral_body(error: &AwsError) -> Bytes {
    let mut out = format!(
        r#"{{"Output":{{"__type":"com.amazon.coral.service#{}""#,
        error.code
    );
    push_json_message(&mut out, error);
    out.push_str(r#"},"Version":"1.0"}"#);
    Bytes::from(out)
}

/// `<Code>\n  <Message>text</Message>\n</Code>\n`, or `<Code/>\n`.
fn xml_body(error: &AwsError) -> Bytes {
    let code = error.code;
    Bytes::from(match &error.message {
        Some(message) => format!(
            "<{code}>\n  <Message>{}</Message>\n</{code}>\n",
            xml_escape(message)
        ),
        None => format!("<{code}/>\n"),
    })
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A CBOR map (RFC 8949) of text strings: `__type` and, if present, the
/// message under its member's name ([`message_member`]).
///
/// Byte layout: `0xA1`/`0xA2` (map of 1/2 pairs), then for each key and
/// value a text-string head (major type 3: `0x60 | len` for len < 24,
/// `0x78 len8`, `0x79 len16be` or `0x7A len32be`) followed by the UTF-8 bytes.
fn cbor_body(error: &AwsError) -> Bytes {
    cbor_body_typed(error.code, error)
}

/// [`cbor_body`] with `type_name` as the `__type`.
fn cbor_body_typed(type_name: &str, error: &AwsError) -> Bytes {
    let mut out = Vec::with_capacity(64);
    out.push(if error.message.is_some() { 0xA2 } else { 0xA1 });
    cbor_text(&mut out, "__type");
    cbor_text(&mut out, type_name);
    if let Some(message) = &error.message {
        cbor_text(&mut out, message_member(error.code));
        cbor_text(&mut out, message);
    }
    Bytes::from(out)
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    const TEXT: u8 = 3 << 5;
    let len = text.len();
    match len {
        0..=23 => out.push(TEXT | len as u8),
        24..=0xFF => out.extend_from_slice(&[TEXT | 24, len as u8]),
        0x100..=0xFFFF => {
            out.push(TEXT | 25);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            // Error messages are far below 4 GiB; saturate rather than panic.
            out.push(TEXT | 26);
            out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        }
    }
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use riffle_log::LogError;

    const DYNAMODB_NAMESPACE: Option<&str> = Some("com.amazonaws.dynamodb.v20120810");

    #[test]
    fn json_1_0_errors_qualify_service_codes_with_the_namespace_and_front_end_codes_with_corals() {
        let encoding = Encoding::AwsJson10 {
            namespace: DYNAMODB_NAMESPACE,
            query: None,
        };
        let failed = encode(
            &dynamodb_error(&DynamoError::ConditionalCheckFailed { item: None }),
            encoding,
        );
        assert_eq!(failed.status, StatusCode::BAD_REQUEST);
        assert_eq!(failed.content_type, Some(JSON_10));
        assert_eq!(
            failed.body,
            &br#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#[..]
        );
        let invalid = encode(&dynamodb_error(&DynamoError::validation("bad")), encoding);
        assert_eq!(
            invalid.body,
            &br#"{"__type":"com.amazon.coral.validate#ValidationException","message":"bad"}"#[..]
        );
        let unknown = encode(&aws_error(&Rejection::UnknownOperation), encoding);
        assert_eq!(
            unknown.body,
            &br#"{"__type":"com.amazon.coral.service#UnknownOperationException"}"#[..]
        );
        // A JSON 1.0 service without a namespace sends bare codes.
        let bare = encode(
            &aws_error(&Rejection::Malformed),
            Encoding::AwsJson10 {
                namespace: None,
                query: None,
            },
        );
        assert_eq!(bare.body, &br#"{"__type":"SerializationException"}"#[..]);
    }

    #[test]
    fn firehose_errors_keep_the_code_message_and_status_their_crate_names() {
        let aws = firehose_error(&FirehoseError::ResourceNotFound("gone".into()));
        assert_eq!(
            (aws.status, aws.code, aws.message.as_deref()),
            (
                StatusCode::BAD_REQUEST,
                "ResourceNotFoundException",
                Some("gone")
            )
        );
        let aws = firehose_error(&FirehoseError::ServiceUnavailable("slow down".into()));
        assert_eq!(aws.status, StatusCode::SERVICE_UNAVAILABLE);
        let aws = firehose_error(&FirehoseError::Storage(LogError::Closed {
            name: "f".into(),
        }));
        assert_eq!(
            (aws.status.as_u16(), aws.code, aws.message),
            (500, "InternalFailure", None)
        );
    }

    #[test]
    fn s3_refusals_are_s3_errors() {
        let code = |rejection| s3_error(&rejection).code();
        assert_eq!(
            code(Rejection::Auth(AuthError::Invalid("m".into()))),
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            code(Rejection::Auth(AuthError::UnknownKey)),
            "InvalidAccessKeyId"
        );
        assert_eq!(code(Rejection::Auth(AuthError::Missing)), "AccessDenied");
        assert_eq!(code(Rejection::AccessDenied("m".into())), "AccessDenied");
        assert_eq!(code(Rejection::PayloadTooLarge), "EntityTooLarge");
    }

    #[test]
    fn every_kinesis_error_maps_to_its_aws_code_and_status() {
        let m = || "text".to_owned();
        let table: Vec<(KinesisError, u16, &str)> = vec![
            (
                KinesisError::Serialization(m()),
                400,
                "SerializationException",
            ),
            (KinesisError::Validation(m()), 400, "ValidationException"),
            (
                KinesisError::UnknownOperation(m()),
                400,
                "UnknownOperationException",
            ),
            (
                KinesisError::ResourceNotFound(m()),
                400,
                "ResourceNotFoundException",
            ),
            (
                KinesisError::ResourceInUse(m()),
                400,
                "ResourceInUseException",
            ),
            (
                KinesisError::InvalidArgument(m()),
                400,
                "InvalidArgumentException",
            ),
            (
                KinesisError::LimitExceeded(m()),
                400,
                "LimitExceededException",
            ),
            (
                KinesisError::ExpiredIterator(m()),
                400,
                "ExpiredIteratorException",
            ),
            (
                KinesisError::ProvisionedThroughputExceeded(m()),
                400,
                "ProvisionedThroughputExceededException",
            ),
            (
                KinesisError::AccessDenied(m()),
                400,
                "AccessDeniedException",
            ),
        ];
        for (err, status, code) in table {
            let aws = kinesis_error(&err);
            assert_eq!(
                (aws.status.as_u16(), aws.code, aws.message.as_deref()),
                (status, code, Some("text"))
            );
        }
    }

    #[test]
    fn a_storage_failure_is_an_internal_failure_with_status_500() {
        let aws = kinesis_error(&KinesisError::Storage(LogError::Closed {
            name: "s/0".into(),
        }));
        assert_eq!((aws.status.as_u16(), aws.code), (500, "InternalFailure"));
        assert!(aws.message.is_some_and(|m| m.contains("log s/0 is closed")));
    }

    #[test]
    fn an_empty_message_is_left_out_as_aws_does() {
        let aws = kinesis_error(&KinesisError::Serialization(String::new()));
        assert_eq!(
            encode(&aws, Encoding::AwsJson11).body,
            r#"{"__type":"SerializationException"}"#
        );
    }

    #[test]
    fn json_errors_have_type_and_lowercase_message_escaped() {
        let aws = kinesis_error(&KinesisError::ResourceNotFound(
            r#"Stream "a" not found."#.into(),
        ));
        let encoded = encode(&aws, Encoding::AwsJson11);
        assert_eq!(encoded.status, StatusCode::BAD_REQUEST);
        assert_eq!(encoded.content_type, Some("application/x-amz-json-1.1"));
        assert_eq!(
            encoded.body,
            r#"{"__type":"ResourceNotFoundException","message":"Stream \"a\" not found."}"#
        );
        let parsed: serde_json::Value = serde_json::from_slice(&encoded.body).unwrap();
        assert_eq!(parsed["message"], r#"Stream "a" not found."#);
    }

    #[test]
    fn edge_rejections_use_aws_codes_and_forms() {
        let cases: Vec<(Rejection, Encoding, u16, &str)> = vec![
            (
                Rejection::UnknownOperation,
                Encoding::AwsJson11,
                400,
                r#"{"__type":"UnknownOperationException"}"#,
            ),
            (
                Rejection::Malformed,
                Encoding::AwsJson11,
                400,
                r#"{"__type":"SerializationException"}"#,
            ),
            (
                Rejection::Auth(AuthError::Missing),
                Encoding::AwsJson11,
                400,
                r#"{"__type":"MissingAuthenticationTokenException","message":"Missing Authentication Token"}"#,
            ),
            (
                Rejection::UnsupportedContentType,
                Encoding::Xml,
                404,
                "<UnknownOperationException/>\n",
            ),
            (
                Rejection::NotPost,
                Encoding::Xml,
                403,
                "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be \
                 authorized</Message>\n</AccessDeniedException>\n",
            ),
            (Rejection::PayloadTooLarge, Encoding::Empty, 413, ""),
            (
                Rejection::UnknownOperation,
                Encoding::Coral,
                200,
                r#"{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException"},"Version":"1.0"}"#,
            ),
            (
                Rejection::Malformed,
                Encoding::Coral,
                200,
                r#"{"Output":{"__type":"com.amazon.coral.service#SerializationException"},"Version":"1.0"}"#,
            ),
        ];
        for (rejection, encoding, status, body) in cases {
            let encoded = encode(&aws_error(&rejection), encoding);
            assert_eq!(
                (encoded.status.as_u16(), &encoded.body[..]),
                (status, body.as_bytes()),
                "{rejection:?}"
            );
        }
    }

    #[test]
    fn serialization_and_access_denied_name_their_member_message_with_a_capital() {
        let serialization =
            kinesis_error(&KinesisError::Serialization("Expected map or null".into()));
        assert_eq!(
            encode(&serialization, Encoding::AwsJson11).body,
            r#"{"__type":"SerializationException","Message":"Expected map or null"}"#
        );
        let denied = aws_error(&Rejection::AccessDenied("User: x is not authorized".into()));
        assert_eq!(
            encode(&denied, Encoding::AwsJson11).body,
            r#"{"__type":"AccessDeniedException","Message":"User: x is not authorized"}"#
        );
        // The same exceptions in CBOR: the map's second key is `Message`.
        let cbor = encode(&serialization, Encoding::Cbor).body;
        let key_at = 1 + 7 + 1 + "SerializationException".len();
        assert_eq!(&cbor[key_at..key_at + 8], b"\x67Message");
        // In an event stream's exception message too.
        let event = exception_event(&KinesisError::Serialization("m".into()), Codec::Json);
        let payload = br#"{"__type":"SerializationException","Message":"m"}"#;
        assert!(event.windows(payload.len()).any(|w| w == payload));
    }

    #[test]
    fn every_other_error_names_its_member_message_in_lower_case() {
        let lower = [
            kinesis_error(&KinesisError::Validation("m".into())),
            kinesis_error(&KinesisError::ResourceNotFound("m".into())),
            kinesis_error(&KinesisError::Storage(LogError::Closed {
                name: "s/0".into(),
            })),
            aws_error(&Rejection::Auth(AuthError::Missing)),
            aws_error(&Rejection::Auth(AuthError::UnknownKey)),
            aws_error(&Rejection::Auth(AuthError::Invalid("m".into()))),
            aws_error(&Rejection::Auth(AuthError::Incomplete("m".into()))),
        ];
        for error in lower {
            let body: serde_json::Value =
                serde_json::from_slice(&encode(&error, Encoding::AwsJson11).body).unwrap();
            assert!(body["message"].is_string(), "{}: {body}", error.code);
            assert!(body.get("Message").is_none(), "{}: {body}", error.code);
        }
    }

    #[test]
    fn the_coral_envelope_carries_a_message_only_when_there_is_one() {
        let with = AwsError {
            status: StatusCode::BAD_REQUEST,
            code: "SerializationException",
            message: Some("Expected map or null".into()),
            members: None,
        };
        assert_eq!(
            encode(&with, Encoding::Coral).body,
            r#"{"Output":{"__type":"com.amazon.coral.service#SerializationException","Message":"Expected map or null"},"Version":"1.0"}"#
        );
        for rejection in [Rejection::UnknownOperation, Rejection::Malformed] {
            let body = encode(&aws_error(&rejection), Encoding::Coral).body;
            let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let output = parsed["Output"].as_object().unwrap();
            assert_eq!(output.len(), 1, "only __type: {parsed}");
        }
    }

    #[test]
    fn cbor_errors_are_text_maps_in_rfc_8949_layout() {
        let unknown = encode(&aws_error(&Rejection::UnknownOperation), Encoding::Cbor);
        let mut expected = vec![0xA1, 0x66];
        expected.extend_from_slice(b"__type");
        expected.extend_from_slice(&[0x78, 25]);
        expected.extend_from_slice(b"UnknownOperationException");
        assert_eq!(&unknown.body[..], &expected[..]);
        assert_eq!(unknown.content_type, Some("application/x-amz-cbor-1.1"));

        let long = AwsError {
            status: StatusCode::BAD_REQUEST,
            code: "X",
            message: Some("m".repeat(300)),
            members: None,
        };
        let body = encode(&long, Encoding::Cbor).body;
        assert_eq!(&body[..6], &[0xA2, 0x66, b'_', b'_', b't', b'y']);
        let message_head = 1 + 7 + 2 + 8;
        assert_eq!(&body[message_head..message_head + 3], &[0x79, 0x01, 0x2C]);
        assert_eq!(body.len(), message_head + 3 + 300);
    }

    #[test]
    fn query_compatible_errors_carry_the_query_code_in_xml_cbor_and_json() {
        use crate::services::cloudwatch::CLOUDWATCH;
        let facts = CLOUDWATCH.query.as_ref().unwrap();
        let missing = cloudwatch_error(&CloudWatchError::MissingParameter(
            "The parameter Namespace is required.".into(),
        ));
        let request_id = RequestId::new();
        let xml = encode(&missing, Encoding::Query { facts, request_id });
        assert_eq!(
            (xml.status.as_u16(), xml.content_type),
            (400, Some(TEXT_XML))
        );
        let doc = String::from_utf8(xml.body.to_vec()).unwrap();
        let parsed = roxmltree::Document::parse(&doc).unwrap();
        let text = |tag: &str| {
            parsed
                .descendants()
                .find(|n| n.has_tag_name(tag))
                .and_then(|n| n.text())
                .map(str::to_owned)
        };
        assert_eq!(
            parsed.root_element().tag_name().namespace(),
            Some(facts.xml_namespace)
        );
        assert_eq!(text("Type").as_deref(), Some("Sender"));
        assert_eq!(text("Code").as_deref(), Some("MissingParameter"));
        assert_eq!(
            text("Message").as_deref(),
            Some("The parameter Namespace is required.")
        );
        assert_eq!(text("RequestId"), Some(request_id.to_string()));

        let rpc = encode(
            &missing,
            Encoding::RpcV2Cbor {
                namespace: CLOUDWATCH.error_namespace,
                query: Some(facts),
            },
        );
        assert_eq!(rpc.content_type, Some(CBOR));
        assert!(
            rpc.headers
                .contains(&(SMITHY_PROTOCOL, RPC_V2_CBOR.to_owned()))
        );
        assert!(
            rpc.headers
                .contains(&(QUERY_ERROR, "MissingParameter;Sender".to_owned()))
        );
        let map: ciborium::Value = ciborium::from_reader(&rpc.body[..]).unwrap();
        let pairs: Vec<(String, String)> = map
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_text().unwrap().into(), v.as_text().unwrap().into()))
            .collect();
        assert_eq!(
            pairs,
            [
                (
                    "__type".to_owned(),
                    "com.amazonaws.cloudwatch#MissingRequiredParameterException".to_owned()
                ),
                (
                    "message".to_owned(),
                    "The parameter Namespace is required.".to_owned()
                )
            ]
        );
        // The edge's own refusals have the query services' common codes.
        let json = encode(
            &aws_error(&Rejection::Auth(AuthError::UnknownKey)),
            Encoding::AwsJson10 {
                namespace: CLOUDWATCH.error_namespace,
                query: Some(facts),
            },
        );
        assert!(
            json.headers
                .contains(&(QUERY_ERROR, "InvalidClientTokenId;Sender".to_owned()))
        );
    }

    #[test]
    fn query_answers_wrap_the_result_and_name_the_request() {
        use crate::services::cloudwatch::CLOUDWATCH;
        let facts = CLOUDWATCH.query.as_ref().unwrap();
        let id = RequestId::new();
        let empty = query_answer("PutMetricData", b"", facts, id);
        let doc = String::from_utf8(empty.to_vec()).unwrap();
        let parsed = roxmltree::Document::parse(&doc).unwrap();
        assert_eq!(
            parsed.root_element().tag_name().name(),
            "PutMetricDataResponse"
        );
        assert!(!doc.contains("PutMetricDataResult"));
        let id_text = parsed
            .descendants()
            .find(|n| n.has_tag_name("RequestId"))
            .unwrap();
        assert_eq!(id_text.text(), Some(id.to_string().as_str()));
        let full = query_answer("ListMetrics", b"<Metrics/>", facts, id);
        let doc = String::from_utf8(full.to_vec()).unwrap();
        assert!(doc.contains("<ListMetricsResult><Metrics/></ListMetricsResult>"));
    }
}
