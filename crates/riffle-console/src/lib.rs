//! `riffle-console`: the web console, a page served by `riffle serve` on a
//! listener of its own (`--console-listen`, on by default at
//! `127.0.0.1:4568`; the API port keeps answering only what AWS answers).
//!
//! **Design.** The page is plain HTML, JavaScript modules and CSS embedded
//! in the binary (`assets`), with uPlot vendored for charts: no build step,
//! no network at run time. Everything it shows comes from the same service
//! calls clients make: `POST /api/call` hands `{service, operation, input}`
//! to the [`riffle_server::Service`] registered on the API port, through
//! [`riffle_server::DirectCalls`], which applies the edge's identity and
//! resource policies, writes the audit line and counts the call as the API
//! port does. AWS's answers, validation messages included, come back
//! verbatim, and the page shows `__type` and `message` beside the form.
//! The live charts poll `GET /api/metrics`, the counters the services
//! already keep for `/metrics`, and chart the differences.
//!
//! **Who calls.** When the server verifies signatures, the page asks for an
//! access key id and secret; `POST /api/login` compares them with the
//! server's keys and answers a session cookie (HttpOnly, SameSite=Strict)
//! that names the key every later call runs as. Without keys, calls run
//! anonymous, as unsigned-but-accepted API calls do. API POSTs must carry
//! the `x-riffle-console` header, which another origin's page cannot send
//! without a CORS preflight the console never grants. On a loopback address
//! the console answers only requests whose `Host` is a loopback name, so a
//! site that re-points its own name at 127.0.0.1 (DNS rebinding) cannot
//! use it.
//!
//! **Scale.** The overview lists streams with one ListStreams page walk (its
//! StreamSummaries carry status and mode) and shows them 100 rows a page;
//! the shard counts and retention of the rows shown come from one
//! `POST /api/calls` for the page (in-process DescribeStreamSummary calls),
//! not a request per row. The metrics endpoint is one pass over the
//! services' counters, and the sparklines and charts are drawn from it.
//!
//! Module map: `options` (the flag), `server` (listener, routing, files,
//! security headers), `api` (sessions, calls, server facts, metrics),
//! `records` (the record browser's reads, KPL de-aggregation), `s3` (the
//! embedded S3 browser), `functions` (the `[functions]` registry, listed),
//! `metrics` (Prometheus text → samples), `assets`.

mod api;
mod assets;
mod functions;
mod metrics;
mod options;
mod records;
mod s3;
mod server;

use std::path::PathBuf;
use std::sync::Arc;

pub use api::CALLS_MAX;
pub use options::{CONSOLE_LISTEN_DEFAULT, ConsoleOptions};
pub use records::RECORDS_LIMIT_MAX;
pub use server::{API_BODY_BYTES_MAX, CSRF_HEADER, serve_console};

/// What the console serves from.
pub struct ConsoleConfig {
    /// The registered services, behind the edge's checks.
    pub calls: Arc<riffle_server::DirectCalls>,
    /// The embedded S3, when Firehose delivers there.
    pub s3: Option<Arc<riffle_s3::S3>>,
    /// The `[functions]` registry the overview lists (read-only).
    pub functions: Option<riffle_lambda::Functions>,
    pub facts: ServerFacts,
}

/// The server's facts the overview shows.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    pub version: String,
    pub data_dir: PathBuf,
    /// The fsync policy, as `--fsync` spells it.
    pub fsync: String,
    pub region: String,
    pub account_id: String,
    /// The API port's URL, for the page's "try it" hints.
    pub endpoint: String,
}
