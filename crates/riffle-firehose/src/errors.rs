//! The service's errors: one variant per AWS error code, with AWS's message
//! texts (as AWS words them where known, recorded by other emulators'
//! tests against AWS), so clients that match on them behave the same.

use riffle_log::LogError;

/// Every error the service reports. Each variant is one AWS error code; the
/// string is the `message` AWS sends.
#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    /// The body is not JSON, or a member has the wrong type.
    #[error("{0}")]
    Serialization(String),
    /// Constraint violations in AWS's text form:
    /// `1 validation error detected: Value '…' at '…' failed to satisfy constraint: …`.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    UnknownOperation(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    LimitExceeded(String),
    /// UpdateDestination with a stale `CurrentDeliveryStreamVersionId`.
    #[error("{0}")]
    ConcurrentModification(String),
    /// Throughput limits (`Slow down.`).
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("{0}")]
    InvalidKmsResource(String),
    #[error("{0}")]
    InvalidSource(String),
    /// The storage engine failed; reported as `InternalFailure` (HTTP 500).
    #[error("storage failure: {0}")]
    Storage(#[from] LogError),
}

impl FirehoseError {
    /// The AWS error code, the response's `__type`.
    pub fn code(&self) -> &'static str {
        match self {
            FirehoseError::Serialization(_) => "SerializationException",
            FirehoseError::Validation(_) => "ValidationException",
            FirehoseError::UnknownOperation(_) => "UnknownOperationException",
            FirehoseError::ResourceNotFound(_) => "ResourceNotFoundException",
            FirehoseError::ResourceInUse(_) => "ResourceInUseException",
            FirehoseError::InvalidArgument(_) => "InvalidArgumentException",
            FirehoseError::LimitExceeded(_) => "LimitExceededException",
            FirehoseError::ConcurrentModification(_) => "ConcurrentModificationException",
            FirehoseError::ServiceUnavailable(_) => "ServiceUnavailableException",
            FirehoseError::InvalidKmsResource(_) => "InvalidKMSResourceException",
            FirehoseError::InvalidSource(_) => "InvalidSourceException",
            FirehoseError::Storage(_) => "InternalFailure",
        }
    }

    /// The response's `message`; `None` where AWS sends none (a body that
    /// is not JSON at all, an unknown operation).
    pub fn message(&self) -> Option<String> {
        match self {
            // The engine's own text names files; clients get AWS's.
            FirehoseError::Storage(_) => None,
            other => Some(other.to_string()).filter(|m| !m.is_empty()),
        }
    }

    /// The HTTP status AWS answers the error with.
    pub fn http_status(&self) -> u16 {
        match self {
            FirehoseError::Storage(_) => 500,
            FirehoseError::ServiceUnavailable(_) => 503,
            _ => 400,
        }
    }
}

/// AWS answers a Prefix, ErrorOutputPrefix, CustomTimeZone or FileExtension
/// it refuses with `InvalidArgumentException` and the rule's own text.
impl From<crate::prefix::PrefixError> for FirehoseError {
    fn from(err: crate::prefix::PrefixError) -> FirehoseError {
        FirehoseError::InvalidArgument(err.to_string())
    }
}

pub fn not_found(name: &str, account: &str) -> FirehoseError {
    FirehoseError::ResourceNotFound(format!(
        "Firehose {name} under account {account} not found."
    ))
}

pub fn already_exists(name: &str, account: &str) -> FirehoseError {
    FirehoseError::ResourceInUse(format!(
        "Firehose {name} under accountId {account} already exists"
    ))
}

/// What the model has and Riffle does not do yet: `InvalidArgumentException`
/// tells the client the request cannot succeed (not worth retrying).
pub fn not_supported(what: &str) -> FirehoseError {
    FirehoseError::InvalidArgument(format!("{what} is not supported by Riffle yet."))
}

pub fn meta(reason: String) -> FirehoseError {
    FirehoseError::Storage(LogError::Meta(reason))
}

/// A blocking task that panicked or was cancelled.
pub fn task(err: tokio::task::JoinError) -> FirehoseError {
    meta(format!("background task failed: {err}"))
}

impl From<riffle_coral::json::SerializationError> for FirehoseError {
    fn from(err: riffle_coral::json::SerializationError) -> Self {
        FirehoseError::Serialization(err.0)
    }
}

impl From<riffle_coral::validate::ValidationError> for FirehoseError {
    fn from(err: riffle_coral::validate::ValidationError) -> Self {
        FirehoseError::Validation(err.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_statuses_and_messages_are_awss() {
        let table = [
            (
                not_found("s", "1"),
                "ResourceNotFoundException",
                400,
                Some("Firehose s under account 1 not found."),
            ),
            (
                FirehoseError::ConcurrentModification("m".into()),
                "ConcurrentModificationException",
                400,
                Some("m"),
            ),
            (
                FirehoseError::ServiceUnavailable("Slow down.".into()),
                "ServiceUnavailableException",
                503,
                Some("Slow down."),
            ),
            (
                FirehoseError::Serialization(String::new()),
                "SerializationException",
                400,
                None,
            ),
            (
                FirehoseError::UnknownOperation(String::new()),
                "UnknownOperationException",
                400,
                None,
            ),
            (meta("disk on fire".into()), "InternalFailure", 500, None),
        ];
        for (err, code, status, message) in table {
            assert_eq!(
                (err.code(), err.http_status(), err.message().as_deref()),
                (code, status, message)
            );
        }
    }
}
