//! `riffle-firehose`: the Firehose service (`Firehose_20150804`).
//!
//! Delivery streams take records (PutRecord, PutRecordBatch, or a Kinesis
//! stream as source), keep them durably in `riffle-log` until a buffer
//! fills or its interval passes, and deliver them as objects to S3.
//!
//! **Architecture Invariant:** this crate knows nothing about HTTP. The
//! server hands it an action name and a JSON body and gets back an encoded
//! body or a typed [`FirehoseError`] (whose AWS code, message and status
//! the edge encodes); where objects go is behind [`sink::ObjectSink`].
//!
//! **Architecture Invariant:** a record is acknowledged only once durable in
//! its stream's log, and the log position delivered is recorded only after
//! the object holding it is stored: delivery is at least once, never lossy.
//!
//! Module map:
//! - `sink`: the one interface delivery writes objects through.
//! - `prefix`: AWS's custom S3 prefixes (`!{timestamp:…}`, `!{firehose:…}`)
//!   and the names of delivered objects.
//! - `compression`: the CompressionFormat codecs and their file extensions.
//! - `actions`: one module per API action, and the dispatch.
//! - `service`: loading the catalog, catalog commits, deletions.
//! - `stream`: a delivery stream in memory (definition, log, task).
//! - `delivery`: the per-stream task that buffers, makes objects, retries
//!   and checkpoints; `buffer`: its records, boundaries kept.
//! - `processing`, `transform`: ProcessingConfiguration's checks, and the
//!   record transformation through a `[functions]` function.
//! - `partition`: dynamic partitioning's keys (JQ queries through jaq) and
//!   the grouping of a buffer into one object per partition.
//! - `catalog`, `destination`: the stored definitions and the S3
//!   destination's shapes, defaults and descriptions.
//! - `endpoint`, `http_endpoint`: destinations other than S3 (the HTTP
//!   endpoint's shapes, defaults and description), kept beside the S3
//!   configuration they back up to.
//! - `opensearch`, `opensearch_delivery`: the OpenSearch Service and
//!   Elasticsearch destinations and their `_bulk` delivery.
//! - `splunk`, `splunk_delivery`: the Splunk destination and HEC delivery
//!   with indexer acknowledgement.
//! - `redshift`, `redshift_delivery`: the Redshift destination, and the
//!   COPY of staged objects into PostgreSQL (Redshift's wire protocol).
//! - `http_delivery`, `http_client`: AWS's HTTP endpoint delivery protocol,
//!   its retries within RetryOptions, over one shared HTTPS client.
//! - `throttle`: DirectPut's throughput limits.
//! - `metrics`: per-stream counters with CloudWatch's names, for Prometheus.
//! - `json`, `validate`, `errors`, `time`: AWS's JSON typing, constraint
//!   messages, error texts and time formats.
//! - `remote`: the sink for an S3-compatible server (`--s3-endpoint`).
//! - `source`: KinesisStreamAsSource: reading the source Data Stream's
//!   shards into the delivery stream's log, with durable checkpoints.
//! - `sink_s3`: the sink for the embedded S3 (`riffle-s3`), in-process.
//! - `options`: `riffle serve`'s Firehose options (`--s3-*`,
//!   `--firehose-destination-*`).

mod actions;
mod buffer;
mod catalog;
pub mod compression;
pub mod convert;
mod delivery;
#[cfg(test)]
mod delivery_tests;
mod destination;
mod endpoint;
mod errors;
mod http_client;
mod http_delivery;
mod http_endpoint;
mod json;
mod metrics;
mod opensearch;
mod opensearch_delivery;
mod options;
pub mod partition;
pub mod prefix;
mod processing;
mod redshift;
mod redshift_delivery;
pub mod remote;
mod retry;
mod service;
pub mod sink;
mod sink_s3;
pub mod source;
#[cfg(test)]
mod source_tests;
mod splunk;
mod splunk_delivery;
mod stream;
#[cfg(test)]
mod testkit;
mod throttle;
mod time;
mod transform;
mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use riffle_kinesis::Kinesis;
use riffle_log::LogStore;

pub use crate::actions::MODEL_OPERATIONS;
pub use crate::errors::FirehoseError;
pub use crate::http_client::DestinationClient;
pub use crate::options::{FirehoseOptions, FirehoseOptionsError, S3_REGION_DEFAULT};
use crate::sink::ObjectSink;
use crate::stream::DeliveryStream;

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct FirehoseConfig {
    /// Goes into ARNs, e.g. `us-east-1`.
    pub region: String,
    /// Goes into ARNs and error messages, e.g. `000000000000`.
    pub account_id: String,
    /// How long a delivery stream stays CREATING or DELETING (and its
    /// encryption ENABLING or DISABLING). Zero is allowed (tests use it).
    pub status_delay: Duration,
    /// Enforce a DirectPut stream's limits (5 MiB/s, 2,000 requests/s,
    /// 500,000 records/s), answering `ServiceUnavailableException` as AWS
    /// does. Off: no limits.
    pub throughput_limits: bool,
    /// How long an object that S3 keeps refusing is retried before AWS
    /// would give it up: Firehose retries S3 delivery for 24 hours (its
    /// retention of DirectPut records, "Troubleshoot errors in Amazon Data
    /// Firehose") and then discards the data, with no error output for S3
    /// failures. Riffle never drops what it acknowledged: past this
    /// duration it keeps retrying, logs the object once as an error and
    /// counts its records in `*_records_past_retry_duration_total`.
    pub s3_retry_duration: Duration,
    /// The functions a Lambda processor's LambdaArn names (`[functions]`
    /// of the config file). `None`: none; transformation fails every
    /// record as AWS does for a function it may not invoke.
    pub functions: Option<riffle_lambda::Functions>,
    /// The client HTTP endpoint destinations are delivered with (the
    /// `--firehose-destination-*` options); `None`: the system's roots
    /// and AWS's 3-minute timeout.
    pub destination_client: Option<DestinationClient>,
    /// OpenSearch (and Elasticsearch) DomainARNs and the URLs they are
    /// reached at (`--firehose-opensearch-domains`).
    pub opensearch_domains: BTreeMap<String, String>,
    /// The destinations' retry timings (`--firehose-redshift-retry-interval-s`,
    /// `--firehose-splunk-ack-timeout-s`).
    pub timings: DestinationTimings,
}

/// Timings of destination deliveries that differ from AWS's only when an
/// option asks (tests shorten them to seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestinationTimings {
    /// Between attempts of a failed Redshift COPY; `None`: AWS's 5 minutes.
    pub redshift_retry_interval: Option<Duration>,
    /// Instead of every Splunk destination's HECAcknowledgmentTimeoutInSeconds.
    pub splunk_ack_timeout: Option<Duration>,
}

/// AWS's retry limit for S3 delivery (see [`FirehoseConfig::s3_retry_duration`]).
pub const S3_RETRY_DURATION_DEFAULT: Duration = Duration::from_secs(24 * 60 * 60);

impl Default for FirehoseConfig {
    fn default() -> Self {
        FirehoseConfig {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            status_delay: Duration::from_millis(500),
            throughput_limits: true,
            s3_retry_duration: S3_RETRY_DURATION_DEFAULT,
            functions: None,
            destination_client: None,
            opensearch_domains: BTreeMap::new(),
            timings: DestinationTimings::default(),
        }
    }
}

/// Every delivery stream by name. Held only to look up or swap an `Arc`,
/// never across I/O or an await.
type Streams = Arc<RwLock<BTreeMap<String, Arc<DeliveryStream>>>>;

/// The Firehose service over one [`LogStore`], delivering through one
/// [`ObjectSink`].
pub struct Firehose {
    store: Arc<LogStore>,
    config: FirehoseConfig,
    sink: Arc<dyn ObjectSink>,
    streams: Streams,
    /// Serializes catalog changes so that checking a name or a version and
    /// committing are one step. Control-plane only: records never take it.
    catalog_lock: tokio::sync::Mutex<()>,
    /// The Data Streams service KinesisStreamAsSource streams read, once
    /// [`Firehose::attach_kinesis`] has given it.
    kinesis: OnceLock<Arc<Kinesis>>,
    /// The source task of each KinesisStreamAsSource stream, by
    /// incarnation. Held only to insert or take a handle.
    sources: parking_lot::Mutex<BTreeMap<u64, source::SourceTask>>,
}

impl Firehose {
    /// Loads the catalog from the store's metadata, opens every delivery
    /// stream's log (recovering it), completes deletions a restart
    /// interrupted, and starts each stream's delivery task, which first
    /// delivers what was buffered but not delivered before. Must be called
    /// inside a Tokio runtime.
    pub fn open(
        store: Arc<LogStore>,
        config: FirehoseConfig,
        sink: Arc<dyn ObjectSink>,
    ) -> Result<Arc<Firehose>, FirehoseError> {
        let loaded = service::load_streams(&store)?;
        let streams = loaded
            .iter()
            .map(|(stream, _)| (stream.record().name, Arc::clone(stream)))
            .collect();
        let firehose = Arc::new(Firehose {
            store,
            config,
            sink,
            streams: Arc::new(RwLock::new(streams)),
            catalog_lock: tokio::sync::Mutex::new(()),
            kinesis: OnceLock::new(),
            sources: parking_lot::Mutex::new(BTreeMap::new()),
        });
        for (stream, delivered) in &loaded {
            firehose.start_delivery(stream, *delivered);
        }
        Ok(firehose)
    }

    /// Runs one API action. `action` is the part of `X-Amz-Target` after
    /// `Firehose_20150804.`; an unknown one is `UnknownOperation`.
    pub async fn handle(&self, action: &str, body: &[u8]) -> Result<Bytes, FirehoseError> {
        actions::dispatch(self, action, body).await
    }

    /// Gives the service the Data Streams service of the same process and
    /// starts reading the source of every KinesisStreamAsSource stream
    /// (each from its checkpoints; see [`source`]). Streams created later
    /// start reading when they become ACTIVE. Only the first call counts.
    pub fn attach_kinesis(&self, kinesis: Arc<Kinesis>) {
        if self.kinesis.set(kinesis).is_err() {
            return;
        }
        for stream in self.all() {
            self.start_source(&stream);
        }
    }

    /// Stops every source and delivery task (what they had not delivered
    /// stays in the logs for the next start) and waits for them to end.
    pub async fn shutdown(&self) {
        let sources = std::mem::take(&mut *self.sources.lock());
        for task in sources.into_values() {
            task.stop().await;
        }
        for stream in self.all() {
            stream.stop_delivery().await;
        }
    }
}
