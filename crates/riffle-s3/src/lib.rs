//! `riffle-s3`: the embedded S3, a subset of the S3 REST API over buckets that are directories.
//!
//! Firehose delivers to it in-process ([`S3::put_object`]); users read what
//! was delivered through the S3 API on Riffle's port ([`S3::handle`], which
//! the edge calls for requests that are not `X-Amz-Target` JSON calls).
//!
//! **Architecture Invariant:** this crate has no server and no HTTP
//! framing. It takes an [`http::Request`] whose body the edge has read
//! and authenticated, and returns an [`http::Response`] whose body
//! ([`S3Body`]) streams objects from their files.
//!
//! Module map:
//! - `store`: the on-disk layout, durable writes and the in-process API
//!   (see [`S3`] for the layout).
//! - `format`: the object file (header + bytes) and the JSON records.
//! - `names`: bucket-name and key rules; keys to file names.
//! - `list`: ListObjects' prefix/delimiter/pagination algorithm.
//! - `api`: HTTP routing, S3 headers, ranges, `aws-chunked`, errors.
//! - `xml`: the XML documents written and read.
//! - `body`: the streaming response body.
//! - `time`: S3's date formats.

mod api;
mod body;
mod error;
pub mod format;
pub mod list;
pub mod names;
mod store;
mod time;
mod xml;

pub use api::{ErrorInfo, RequestId, error_response};
pub use body::S3Body;
pub use error::S3Error;
pub use format::ObjectMeta;
pub use list::ListQuery;
pub use store::{
    BucketInfo, CopySource, MAX_PART_NUMBER, MAX_PART_SIZE, MAX_PUT_SIZE, MAX_USER_METADATA,
    MIN_PART_SIZE, ObjectPage, OpenObject, PartInfo, PutOptions, S3,
};
