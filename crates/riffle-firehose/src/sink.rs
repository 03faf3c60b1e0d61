//! Where delivered objects go: the embedded S3 or an S3-compatible server.
//!
//! Delivery needs one thing of object storage: put a whole object under a
//! key, durably, and say whether it worked. Keeping it to that lets the
//! embedded store and a remote server be swapped without delivery knowing.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;

/// The Content-Type of every delivered object, stored with no
/// Content-Encoding, GZIP included: the `.gz` extension says what the
/// bytes are, and a client downloading one gets them as stored (with
/// `Content-Encoding: gzip`, browsers and some HTTP stacks would inflate
/// them on the way, behind a `.gz` name). This is how Firehose's objects
/// are known to look; AWS's documentation does not say either way.
pub const OBJECT_CONTENT_TYPE: &str = "application/octet-stream";

/// A boxed future, so that [`ObjectSink`] can be used as a trait object.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Writes delivered objects.
pub trait ObjectSink: Send + Sync + 'static {
    /// Stores `body` as the object `key` of `bucket`, replacing any object of
    /// that name, with [`OBJECT_CONTENT_TYPE`] and no Content-Encoding. Resolves once the object is durable (the embedded store)
    /// or acknowledged by the server (a remote one).
    fn put_object<'a>(&'a self, bucket: &'a str, key: &'a str, body: Bytes) -> SinkFuture<'a>;
}

/// Why an object could not be stored; every kind is retried by delivery.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The bucket does not exist.
    #[error("bucket {bucket} does not exist")]
    NoSuchBucket { bucket: String },
    /// The store refused the request (permissions, a bad key, …).
    #[error("object store refused the upload: {reason}")]
    Refused { reason: String },
    /// The store could not be reached or failed mid-request.
    #[error("object store unavailable: {reason}")]
    Unavailable { reason: String },
}
