//! An [`ObjectSink`] for any S3-compatible server (AWS S3, SeaweedFS, MinIO, …).
//!
//! Objects go out as one path-style `PutObject` each
//! (`<endpoint>/<bucket>/<key>`), SigV4-signed with static credentials, so
//! that servers without virtual-host buckets work. Delivery owns retrying
//! (with its backoff, metrics and logging), so the SDK makes one attempt.

use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::put_object::PutObjectError;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use crate::sink::{OBJECT_CONTENT_TYPE, ObjectSink, SinkError, SinkFuture};

/// How long to wait for a TCP (and TLS) connection before calling the server
/// unavailable: long enough for a distant region, short enough that a stopped
/// server is noticed at once.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest one upload may take. A buffer is at most 128 MiB
/// (BufferingHints SizeInMBs); at 1 MiB/s that is about two minutes.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Where and as whom to upload.
#[derive(Clone)]
pub struct RemoteConfig {
    /// The server's base URL, e.g. `http://127.0.0.1:8333`.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for RemoteConfig {
    // The secret and token stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Puts objects on an S3-compatible server.
#[derive(Debug, Clone)]
pub struct RemoteSink {
    client: aws_sdk_s3::Client,
}

impl RemoteSink {
    pub fn new(config: &RemoteConfig) -> RemoteSink {
        let credentials = Credentials::new(
            &config.access_key_id,
            &config.secret_access_key,
            config.session_token.clone(),
            None,
            "riffle-firehose",
        );
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_attempt_timeout(ATTEMPT_TIMEOUT)
            .build();
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&config.endpoint)
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(true)
            .timeout_config(timeouts)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            // Flexible checksums send aws-chunked bodies with trailers, which
            // many S3-compatible servers refuse; plain bodies work everywhere.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        RemoteSink {
            client: aws_sdk_s3::Client::from_conf(conf),
        }
    }

    async fn put(&self, bucket: &str, key: &str, body: Bytes) -> Result<(), SinkError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            // No Content-Encoding, GZIP included (see OBJECT_CONTENT_TYPE).
            .content_type(OBJECT_CONTENT_TYPE)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(bucket, e))
    }
}

impl ObjectSink for RemoteSink {
    fn put_object<'a>(&'a self, bucket: &'a str, key: &'a str, body: Bytes) -> SinkFuture<'a> {
        Box::pin(self.put(bucket, key, body))
    }
}

/// S3 error codes that mean "try again later" rather than "no".
const TRANSIENT_CODES: [&str; 5] = [
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "Throttling",
];

/// Turns an SDK failure into the kind delivery reacts to.
fn classify(bucket: &str, err: SdkError<PutObjectError, HttpResponse>) -> SinkError {
    match &err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let status = service.raw().status().as_u16();
            let code = e.code().unwrap_or("");
            let reason = format!("{code} ({status}): {}", e.message().unwrap_or(""));
            if code == "NoSuchBucket" {
                SinkError::NoSuchBucket {
                    bucket: bucket.to_owned(),
                }
            } else if TRANSIENT_CODES.contains(&code) || status >= 500 {
                SinkError::Unavailable { reason }
            } else {
                SinkError::Refused { reason }
            }
        }
        SdkError::ConstructionFailure(_) => SinkError::Refused {
            reason: describe(&err),
        },
        // Dispatch failures (connect refused, DNS), timeouts and unreadable
        // responses: the server is not there or not answering.
        _ => SinkError::Unavailable {
            reason: describe(&err),
        },
    }
}

/// The error and its causes on one line (the SDK's own `Display` is terse).
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
