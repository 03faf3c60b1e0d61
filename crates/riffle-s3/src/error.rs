//! The errors of the embedded S3, each with S3's error code, HTTP status and message.
//!
//! The `Display` text of a client error is the `<Message>` S3 writes; the
//! XML document itself is rendered in one place, `api::error_response`.

use std::path::PathBuf;

use http::StatusCode;

/// Why an S3 operation failed.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("The specified bucket does not exist")]
    NoSuchBucket { bucket: String },
    #[error("The specified key does not exist.")]
    NoSuchKey { key: String },
    #[error(
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )]
    NoSuchUpload { upload_id: String },
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    BucketAlreadyOwnedByYou { bucket: String },
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty { bucket: String },
    #[error("The specified bucket is not valid.")]
    InvalidBucketName { bucket: String },
    #[error("Your key is too long")]
    KeyTooLong { size: usize, max: usize },
    #[error("The Content-MD5 you specified was invalid.")]
    InvalidDigest { content_md5: String },
    #[error("The Content-MD5 you specified did not match what we received.")]
    BadDigest {
        expected: String,
        calculated: String,
    },
    #[error("The requested range is not satisfiable")]
    InvalidRange { requested: String, size: u64 },
    #[error(
        "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."
    )]
    InvalidPart {
        upload_id: String,
        part_number: u32,
        etag: String,
    },
    #[error("The list of parts was not in ascending order. Parts must be ordered by part number.")]
    InvalidPartOrder { upload_id: String },
    #[error("Your proposed upload is smaller than the minimum allowed size")]
    EntityTooSmall {
        size: u64,
        min: u64,
        part_number: u32,
    },
    #[error("Your proposed upload exceeds the maximum allowed size")]
    EntityTooLarge { size: u64, max: u64 },
    #[error(
        "The XML you provided was not well-formed or did not validate against our published schema"
    )]
    MalformedXml,
    #[error("Your metadata headers exceed the maximum allowed metadata size.")]
    MetadataTooLarge { size: usize, max: usize },
    #[error("{message}")]
    InvalidArgument {
        message: String,
        name: String,
        value: String,
    },
    #[error("{message}")]
    InvalidRequest { message: String },
    #[error("Couldn't parse the specified URI.")]
    InvalidUri,
    #[error("{message}")]
    IncompleteBody { message: String },
    #[error("A header you provided implies functionality that is not implemented")]
    NotImplemented { what: String },
    #[error("The specified method is not allowed against this resource.")]
    MethodNotAllowed {
        method: String,
        resource: &'static str,
    },
    /// For the edge: the caller may not make this call.
    #[error("Access Denied")]
    AccessDenied,
    /// For the edge: the SigV4 signature does not match.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
    )]
    SignatureDoesNotMatch,
    /// For the edge: the access key is not one the server knows.
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    InvalidAccessKeyId { access_key_id: String },
    /// A file of the store is not in the format this version writes.
    #[error("corrupt store file {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// What S3 says for any failure of its own.
const INTERNAL_MESSAGE: &str = "We encountered an internal error. Please try again.";

impl S3Error {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn invalid_argument(
        message: impl Into<String>,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        Self::InvalidArgument {
            message: message.into(),
            name: name.into(),
            value: value.into(),
        }
    }

    /// S3's error code, the `<Code>` of the error document.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSuchBucket { .. } => "NoSuchBucket",
            Self::NoSuchKey { .. } => "NoSuchKey",
            Self::NoSuchUpload { .. } => "NoSuchUpload",
            Self::BucketAlreadyOwnedByYou { .. } => "BucketAlreadyOwnedByYou",
            Self::BucketNotEmpty { .. } => "BucketNotEmpty",
            Self::InvalidBucketName { .. } => "InvalidBucketName",
            Self::KeyTooLong { .. } => "KeyTooLongError",
            Self::InvalidDigest { .. } => "InvalidDigest",
            Self::BadDigest { .. } => "BadDigest",
            Self::InvalidRange { .. } => "InvalidRange",
            Self::InvalidPart { .. } => "InvalidPart",
            Self::InvalidPartOrder { .. } => "InvalidPartOrder",
            Self::EntityTooSmall { .. } => "EntityTooSmall",
            Self::EntityTooLarge { .. } => "EntityTooLarge",
            Self::MalformedXml => "MalformedXML",
            Self::MetadataTooLarge { .. } => "MetadataTooLarge",
            Self::InvalidArgument { .. } => "InvalidArgument",
            Self::InvalidRequest { .. } => "InvalidRequest",
            Self::InvalidUri => "InvalidURI",
            Self::IncompleteBody { .. } => "IncompleteBody",
            Self::NotImplemented { .. } => "NotImplemented",
            Self::MethodNotAllowed { .. } => "MethodNotAllowed",
            Self::AccessDenied => "AccessDenied",
            Self::SignatureDoesNotMatch => "SignatureDoesNotMatch",
            Self::InvalidAccessKeyId { .. } => "InvalidAccessKeyId",
            Self::Corrupt { .. } | Self::Io { .. } => "InternalError",
        }
    }

    /// The HTTP status S3 answers this error with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoSuchBucket { .. } | Self::NoSuchKey { .. } | Self::NoSuchUpload { .. } => {
                StatusCode::NOT_FOUND
            }
            Self::BucketAlreadyOwnedByYou { .. } | Self::BucketNotEmpty { .. } => {
                StatusCode::CONFLICT
            }
            Self::InvalidRange { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::NotImplemented { .. } => StatusCode::NOT_IMPLEMENTED,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::AccessDenied | Self::SignatureDoesNotMatch | Self::InvalidAccessKeyId { .. } => {
                StatusCode::FORBIDDEN
            }
            Self::Corrupt { .. } | Self::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The `<Message>` of the error document (internal details stay in the log).
    pub fn wire_message(&self) -> String {
        match self {
            Self::Corrupt { .. } | Self::Io { .. } => INTERNAL_MESSAGE.to_owned(),
            other => other.to_string(),
        }
    }

    /// The extra elements S3 adds to this error's document, in its order.
    pub fn details(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::NoSuchBucket { bucket }
            | Self::BucketAlreadyOwnedByYou { bucket }
            | Self::BucketNotEmpty { bucket }
            | Self::InvalidBucketName { bucket } => vec![("BucketName", bucket.clone())],
            Self::NoSuchKey { key } => vec![("Key", key.clone())],
            Self::NoSuchUpload { upload_id } | Self::InvalidPartOrder { upload_id } => {
                vec![("UploadId", upload_id.clone())]
            }
            Self::KeyTooLong { size, max } => vec![
                ("Size", size.to_string()),
                ("MaxSizeAllowed", max.to_string()),
            ],
            Self::BadDigest {
                expected,
                calculated,
            } => vec![
                ("ExpectedDigest", expected.clone()),
                ("CalculatedDigest", calculated.clone()),
            ],
            Self::InvalidRange { requested, size } => vec![
                ("RangeRequested", requested.clone()),
                ("ActualObjectSize", size.to_string()),
            ],
            Self::InvalidPart {
                upload_id,
                part_number,
                etag,
            } => vec![
                ("UploadId", upload_id.clone()),
                ("PartNumber", part_number.to_string()),
                ("ETag", etag.clone()),
            ],
            Self::EntityTooSmall {
                size,
                min,
                part_number,
            } => vec![
                ("ProposedSize", size.to_string()),
                ("MinSizeAllowed", min.to_string()),
                ("PartNumber", part_number.to_string()),
            ],
            Self::EntityTooLarge { size, max } => vec![
                ("ProposedSize", size.to_string()),
                ("MaxSizeAllowed", max.to_string()),
            ],
            Self::MetadataTooLarge { size, max } => vec![
                ("Size", size.to_string()),
                ("MaxSizeAllowed", max.to_string()),
            ],
            Self::InvalidArgument { name, value, .. } => vec![
                ("ArgumentName", name.clone()),
                ("ArgumentValue", value.clone()),
            ],
            Self::MethodNotAllowed { method, resource } => vec![
                ("Method", method.clone()),
                ("ResourceType", (*resource).to_owned()),
            ],
            Self::InvalidAccessKeyId { access_key_id } => {
                vec![("AWSAccessKeyId", access_key_id.clone())]
            }
            _ => Vec::new(),
        }
    }
}
