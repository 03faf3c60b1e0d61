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
//!   and checkpoints.
//! - `catalog`, `destination`: the stored definitions and the S3
//!   destination's shapes, defaults and descriptions.
//! - `throttle`: DirectPut's throughput limits.
//! - `metrics`: per-stream counters with CloudWatch's names, for Prometheus.
//! - `json`, `validate`, `errors`, `time`: AWS's JSON typing, constraint
//!   messages, error texts and time formats.
//! - `remote`: the sink for an S3-compatible server (`--s3-endpoint`).
//! - `sink_s3`: the sink for the embedded S3 (`riffle-s3`), in-process.
//! - `options`: `riffle serve`'s Firehose options (`--s3-*`).

mod actions;
mod catalog;
pub mod compression;
mod delivery;
#[cfg(test)]
mod delivery_tests;
mod destination;
mod errors;
mod json;
mod metrics;
mod options;
pub mod prefix;
pub mod remote;
mod service;
pub mod sink;
mod sink_s3;
mod stream;
#[cfg(test)]
mod testkit;
mod throttle;
mod time;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use riffle_log::LogStore;

pub use crate::actions::MODEL_OPERATIONS;
pub use crate::errors::FirehoseError;
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
}

impl Default for FirehoseConfig {
    fn default() -> Self {
        FirehoseConfig {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            status_delay: Duration::from_millis(500),
            throughput_limits: true,
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

    /// Stops every delivery task (what they had not delivered stays in the
    /// logs for the next start) and waits for them to end.
    pub async fn shutdown(&self) {
        for stream in self.all() {
            stream.stop_delivery().await;
        }
    }
}
