//! The service's error messages, worded as AWS words them (texts checked
//! against AWS's answers as recorded by the kinesalite and kinesis-mock
//! test suites), so clients that match on them behave the same.

use riffle_log::LogError;

use crate::KinesisError;
use crate::catalog::CatalogError;

pub fn stream_not_found(stream: &str, account: &str) -> KinesisError {
    KinesisError::ResourceNotFound(format!(
        "Stream {stream} under account {account} not found."
    ))
}

pub fn stream_exists(stream: &str, account: &str) -> KinesisError {
    KinesisError::ResourceInUse(format!(
        "Stream {stream} under account {account} already exists."
    ))
}

pub fn stream_not_active(stream: &str, account: &str, status: &str) -> KinesisError {
    KinesisError::ResourceInUse(format!(
        "Stream {stream} under account {account} not ACTIVE, instead in state {status}"
    ))
}

pub fn shard_not_found(shard_id: &str, stream: &str, account: &str) -> KinesisError {
    KinesisError::ResourceNotFound(format!(
        "Shard {shard_id} in stream {stream} under account {account} does not exist"
    ))
}

pub fn shard_id_unknown(shard_id: &str, stream: &str, account: &str) -> KinesisError {
    KinesisError::ResourceNotFound(format!(
        "Could not find shard {shard_id} in stream {stream} under account {account}."
    ))
}

pub fn invalid_iterator() -> KinesisError {
    KinesisError::InvalidArgument("Invalid ShardIterator.".to_owned())
}

pub fn expired_iterator(issued_ms: i64, now_ms: i64, ttl_ms: u128) -> KinesisError {
    KinesisError::ExpiredIterator(format!(
        "Iterator expired. The iterator was created at time {} while right now it is {} which is \
         further in the future than the tolerated delay of {ttl_ms} milliseconds.",
        crate::time::java_date_utc(issued_ms),
        crate::time::java_date_utc(now_ms)
    ))
}

pub fn no_stream_named() -> KinesisError {
    KinesisError::InvalidArgument("Either StreamName or StreamARN must be provided.".to_owned())
}

/// Actions of the model Riffle does not implement yet. They exist in AWS,
/// so they are not `UnknownOperation`; `InvalidArgumentException` is in
/// the error list of most of them and tells the client the request itself
/// cannot succeed (not worth retrying).
pub fn not_supported(action: &str) -> KinesisError {
    KinesisError::InvalidArgument(format!("{action} is not supported by Riffle yet."))
}

/// A catalog entry that cannot be read is a storage failure.
pub fn catalog(err: CatalogError) -> KinesisError {
    KinesisError::Storage(LogError::Meta(err.to_string()))
}

/// A blocking task that panicked or was cancelled.
pub fn task(err: tokio::task::JoinError) -> KinesisError {
    KinesisError::Storage(LogError::Meta(format!("background task failed: {err}")))
}
