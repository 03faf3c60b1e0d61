//! `riffle-server`: Riffle's network edge.
//!
//! One port serves HTTP/1.1 and HTTP/2 (cleartext, prior knowledge) through
//! hyper-util's auto builder, for several services. A JSON call — `POST /`,
//! `X-Amz-Target: <prefix>.<Action>`, `Content-Type:
//! application/x-amz-json-1.1` (`Codec::Json`) or
//! `application/x-amz-cbor-1.1` (`Codec::Cbor`, the Java SDK's default) —
//! goes to the [`Service`] registered with that target prefix (Kinesis,
//! Firehose), as one [`bytes::Bytes`]. A query-protocol form post
//! (`Action=…&Version=…`) goes to the service whose `Version` it names, and
//! `POST /service/<name>/operation/<Op>` (smithy-rpc-v2-cbor) to the
//! service of that name (CloudWatch speaks both). Any other request that is
//! not a `POST /` is an S3 REST request and goes to the embedded S3.
//!
//! **Architecture Invariant:** this is the only crate that knows HTTP, and
//! `errors` is the only place where an error becomes an AWS error response.
//!
//! **Architecture Invariant:** the request path (`request`, `sigv4`,
//! `audit`, `requests`, `cors`) has no per-service code: what differs
//! between services is in their [`ServiceInfo`] and [`Service`] impl
//! (`services`).
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
//! - `query`: the query protocol's forms read into JSON (`member.N` lists).
//! - `policy`: IAM policies: access keys' identity policies and the
//!   resource policies of streams and consumers.
//! - `metrics`: the Prometheus endpoint on its own listener.
//! - `ingest`: HTTP ingest (JSON posted to a stream's path, API keys) on
//!   its own listener.
//! - `direct`: in-process calls as a known access key (the web console's),
//!   through the same policies, audit log and request metrics.
//! - `requests`: per-operation request counts and latencies it shows.
//! - `errors`: every error → (HTTP status, `__type`, message, encoding).
//! - `service`: what a service registers; `services`: the registrations.
//! - `headers`: the headers every AWS response carries.
//! - `events`: SubscribeToShard's streaming response body.
//! - `eventstream`: the AWS event-stream framing (byte layout documented).

mod audit;
mod auth;
mod body;
mod cors;
mod direct;
mod errors;
mod events;
mod eventstream;
mod headers;
mod ingest;
mod metrics;
mod options;
mod policy;
mod query;
mod request;
mod requests;
mod server;
mod service;
pub mod services;
mod sigv4;
mod tls;

pub use audit::{AuditError, AuditLog, AuditWriter};
pub use body::BODY_BYTES_MAX;
pub use direct::{Caller, DirectCalls, DirectError};
pub use errors::AwsError;
pub use ingest::{INGEST_BODY_BYTES_MAX, INGEST_RECORDS_MAX, IngestConfig, serve_ingest};
pub use metrics::serve_metrics;
pub use options::{EDGE_OPTION_TABLES, EdgeOptions, IngestKeyOptions, OptionsError, TlsFiles};
pub use policy::{Policies, PolicyDocument, PolicyError, check_resource_policy};
pub use requests::RequestMetrics;
pub use server::{EdgeConfig, ServerError, Services, serve};
pub use service::{CallFuture, Reply, Service, ServiceInfo};
pub use sigv4::Credentials;
pub use tls::{Tls, TlsError};
