//! The bench's one error type: what can stop a run, with the context a
//! user needs to act on it.

use std::time::Duration;

/// Why a bench run could not start or finish. Failed requests during a run
/// are not errors: they are counted and reported.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid option --{flag}: {reason}")]
    Usage { flag: &'static str, reason: String },

    #[error("endpoint {endpoint} is unreachable: {source}")]
    Unreachable {
        endpoint: String,
        source: std::io::Error,
    },

    #[error("endpoint {endpoint} is not usable: {reason}")]
    BadEndpoint { endpoint: String, reason: String },

    #[error("{action} on stream {stream} failed: {message}")]
    ControlPlane {
        action: &'static str,
        stream: String,
        message: String,
    },

    #[error(
        "stream {stream} already exists; pass --reuse-stream to use it or choose another --stream"
    )]
    StreamExists { stream: String },

    #[error("stream {stream} did not become ACTIVE within {waited:?}")]
    NotActive { stream: String, waited: Duration },

    #[error("{action} request could not be sent: {message}")]
    Transport {
        action: &'static str,
        message: String,
    },

    #[error("{action} failed with HTTP {status} {error_type}: {message}")]
    Request {
        action: &'static str,
        status: u16,
        error_type: String,
        message: String,
    },

    #[error("{action} returned a body the bench cannot parse: {source}")]
    BadResponse {
        action: &'static str,
        source: serde_json::Error,
    },

    #[error("request signing failed: {message}")]
    Signing { message: String },

    #[error("could not write {path}: {message}")]
    Output { path: String, message: String },

    #[error("interrupted")]
    Interrupted,

    #[error("could not start the async runtime or its signal handler: {source}")]
    Runtime { source: std::io::Error },
}
