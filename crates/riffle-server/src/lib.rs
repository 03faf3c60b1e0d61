//! `riffle-server`: Riffle's network edge.
//!
//! One port serves HTTP/1.1 and HTTP/2 (cleartext, prior knowledge) through
//! hyper-util's auto builder. Each request is framed the way AWS frames the
//! Kinesis protocol — `POST /`, `X-Amz-Target: Kinesis_20131202.<Action>`,
//! `Content-Type: application/x-amz-json-1.1` (`Codec::Json`) or
//! `application/x-amz-cbor-1.1` (`Codec::Cbor`, the Java SDK's default) —
//! and handed to [`riffle_kinesis::Kinesis::handle`] as one [`bytes::Bytes`].
//!
//! **Architecture Invariant:** this is the only crate that knows HTTP, and
//! `errors` is the only place where an error becomes an AWS error response.
//!
//! Module map:
//! - `server`: the accept loop, connections and graceful shutdown.
//! - `request`: the path of one request, from headers to response.
//! - `body`: reading a body with a size cap.
//! - `cors`: CORS preflights and headers, for every service on the port.
//! - `auth`: the check that a request carries credentials at all.
//! - `audit`: the CloudTrail-shaped audit log and its writer thread.
//! - `sigv4`: verification of SigV4 signatures, when credentials are given.
//! - `tls`: the listener's TLS configuration, when a certificate is given.
//! - `policy`: IAM policies: access keys' identity policies and the
//!   resource policies of streams and consumers.
//! - `metrics`: the Prometheus endpoint on its own listener.
//! - `requests`: per-operation request counts and latencies it shows.
//! - `errors`: every error → (HTTP status, `__type`, message, encoding).
//! - `headers`: the headers every AWS response carries.
//! - `events`: SubscribeToShard's streaming response body.
//! - `eventstream`: the AWS event-stream framing (byte layout documented).

mod audit;
mod auth;
mod body;
mod cors;
mod errors;
mod events;
mod eventstream;
mod headers;
mod metrics;
mod options;
mod policy;
mod request;
mod requests;
mod server;
mod sigv4;
mod tls;

pub use audit::{AuditError, AuditLog, AuditWriter};
pub use body::BODY_BYTES_MAX;
pub use metrics::serve_metrics;
pub use options::{EDGE_OPTION_TABLES, EdgeOptions, OptionsError, TlsFiles};
pub use policy::{Policies, PolicyDocument, PolicyError, check_resource_policy};
pub use requests::RequestMetrics;
pub use server::{EdgeConfig, ServerError, serve};
pub use sigv4::Credentials;
pub use tls::{Tls, TlsError};
