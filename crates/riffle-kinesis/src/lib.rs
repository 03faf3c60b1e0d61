//! `riffle-kinesis`: the Kinesis Data Streams service (`Kinesis_20131202`).
//!
//! Owns streams, shards and their hash-key ranges, partition-key routing,
//! the sequence-number and shard-iterator formats, the stream catalog (kept
//! in `riffle-log`'s metadata store) and the API's request/response shapes,
//! which follow the botocore model `kinesis/2013-12-02/service-2.json`.
//!
//! **Architecture Invariant:** this crate knows nothing about HTTP. The
//! server hands it an action name and a request body and gets back an
//! encoded response body or a typed [`KinesisError`]; turning that error into
//! an AWS error response is the server's job, in one place.
//!
//! THIS FILE IS THE PUBLIC CONTRACT the server is written against.
//!
//! Module map:
//! - `actions`: one module per API action (shape, validation, behaviour),
//!   and the dispatch. Model actions not implemented yet answer
//!   `InvalidArgumentException` "`<Action>` is not supported by Riffle yet.".
//! - `service`: loading the catalog, finding streams, catalog commits,
//!   deletions, and the background duties (status transitions, retention).
//! - `stream`: a stream in memory: status as of now, routing, shard logs.
//! - `reshard`: split, merge and uniform-scaling plans and their
//!   crash-safe application while records keep flowing.
//! - `catalog`: the on-disk stream records in the metadata store.
//! - `hashkey`, `seqnum`, `iterator`: the hash-key space, the sequence-number
//!   and shard-iterator formats (each with its layout documented).
//! - `throttle`: per-shard throughput limits (token buckets).
//! - `on_demand`: scaling ON_DEMAND streams out (splitting hot shards) and
//!   back in (merging cold neighbours).
//! - `json`, `validate`, `errors`, `time`: AWS's JSON typing, constraint
//!   messages, error texts and time formats.
//! - `cbor`: the CBOR protocol of the Java SDK (`Codec::Cbor`), transcoded
//!   to and from the JSON the actions speak.
//! - `reader`: in-process read access to a stream's shards for other
//!   services of the same process (Firehose's Kinesis source).
//! - `hotpath`: the record path's CPU-heavy steps one at a time, for the
//!   criterion benches only (hidden, no contract).
//!
//! The record path (PutRecord(s), GetRecords) takes no lock but a brief
//! read lock to clone a stream's `Arc`; catalog changes are serialized by
//! one async mutex and committed atomically off the async threads.

mod actions;
mod catalog;
mod cbor;
mod errors;
mod hashkey;
#[doc(hidden)]
pub mod hotpath;
mod iterator;
mod json;
mod metrics;
mod on_demand;
mod options;
mod reader;
mod reshard;
mod seqnum;
mod service;
pub mod shard_checkpoint;
mod stream;
mod throttle;
mod time;
mod validate;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use riffle_log::{LogError, LogStore};

pub use crate::actions::MODEL_OPERATIONS;
pub use crate::actions::subscribe_to_shard::Subscription;
use crate::iterator::IteratorKey;
pub use crate::options::KinesisOptions;
pub use crate::reader::{ShardReader, StreamShards};
use crate::stream::Stream;
pub use crate::time::{amz_date, parse_amz_date};

/// Settings of the service.
#[derive(Debug, Clone)]
pub struct KinesisConfig {
    /// Goes into ARNs, e.g. `us-east-1`.
    pub region: String,
    /// Goes into ARNs and error messages, e.g. `000000000000`.
    pub account_id: String,
    /// How long a stream stays CREATING, DELETING or UPDATING before it
    /// becomes ACTIVE (or disappears). Zero is allowed (tests use it).
    pub status_delay: Duration,
    /// How long a shard iterator stays valid; AWS: 5 minutes.
    pub iterator_ttl: Duration,
    /// Enforce AWS's per-shard throughput limits (writes 1 MiB/s and 1,000
    /// records/s, reads 2 MiB/s and 5 GetRecords calls/s), answering
    /// `ProvisionedThroughputExceededException` as AWS does. Off: no limits.
    pub throughput_limits: bool,
    /// How often ON_DEMAND streams are looked at for a hot shard to split,
    /// and the window their traffic is measured over (see `on_demand` for
    /// the policy). Zero turns on-demand scaling off.
    pub on_demand_scale_interval: Duration,
    /// How long a SubscribeToShard subscription lasts before it ends
    /// cleanly; AWS: 5 minutes. Tests shorten it.
    pub subscription_ttl: Duration,
    /// How many UpdateShardCount calls one stream may make in a rolling
    /// 24 hours; AWS's quota is 10. Zero lifts the quota.
    pub shard_count_updates_per_day: u32,
    /// Checks a PutResourcePolicy document; `Err` says why it cannot be
    /// used (answered as `InvalidArgumentException`). The grammar belongs
    /// to whoever evaluates the policies (the server's `policy` module);
    /// the default only asks for a JSON object.
    pub resource_policy_check: fn(&str) -> Result<(), String>,
}

/// [`KinesisConfig::resource_policy_check`]'s default: a JSON object.
fn policy_is_json_object(text: &str) -> Result<(), String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err("the policy must be a JSON object".to_owned()),
        Err(err) => Err(format!("not a JSON policy document: {err}")),
    }
}

impl Default for KinesisConfig {
    fn default() -> Self {
        KinesisConfig {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            status_delay: Duration::from_millis(500),
            iterator_ttl: Duration::from_secs(300),
            throughput_limits: true,
            on_demand_scale_interval: on_demand::SCALE_INTERVAL_DEFAULT,
            subscription_ttl: Duration::from_secs(300),
            shard_count_updates_per_day: actions::SHARD_COUNT_UPDATES_PER_DAY_AWS,
            resource_policy_check: policy_is_json_object,
        }
    }
}

/// The serialization of a request and its response, chosen by the
/// request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// `application/x-amz-json-1.1`
    Json,
    /// `application/x-amz-cbor-1.1`, the AWS SDK for Java's default: the
    /// same shapes in CBOR (blobs as byte strings, timestamps as tag 1 with
    /// epoch milliseconds); see the `cbor` module.
    Cbor,
}

impl Codec {
    /// A JSON document as the service produces it (a SubscribeToShard
    /// event's payload, see [`Subscription::next_event`]) in this codec.
    pub fn encode_json(self, json: Bytes) -> Result<Bytes, KinesisError> {
        match self {
            Codec::Json => Ok(json),
            Codec::Cbor => cbor::response_from_json(&json),
        }
    }

    /// A request body in this codec as the JSON the actions read (blobs as
    /// base64, timestamps as epoch seconds), e.g. for an audit record.
    pub fn request_json(self, body: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, KinesisError> {
        match self {
            Codec::Json => Ok(std::borrow::Cow::Borrowed(body)),
            Codec::Cbor => cbor::request_to_json(body).map(std::borrow::Cow::Owned),
        }
    }
}

/// Every error the service reports. Each variant is one AWS error code; the
/// string is the exact `message` AWS sends.
#[derive(Debug, thiserror::Error)]
pub enum KinesisError {
    /// The body is not valid for the codec, or a member has the wrong type.
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
    #[error("{0}")]
    ExpiredIterator(String),
    #[error("{0}")]
    ProvisionedThroughputExceeded(String),
    #[error("{0}")]
    AccessDenied(String),
    /// The storage engine failed; reported as `InternalFailure` (HTTP 500).
    #[error("storage failure: {0}")]
    Storage(#[from] LogError),
}

/// The Kinesis service over one [`LogStore`].
pub struct Kinesis {
    store: Arc<LogStore>,
    config: KinesisConfig,
    /// Signs shard iterators; stored in the metadata store so iterators
    /// stay valid across restarts.
    iterator_key: IteratorKey,
    /// Every stream by name. Held only to look up or swap an `Arc`, never
    /// across I/O or an await.
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    /// Serializes catalog changes (create, delete, status transitions) so
    /// that checking a name and committing it are one step. Control-plane
    /// only: the record path never takes it.
    catalog_lock: tokio::sync::Mutex<()>,
    /// Woken whenever a stream is swapped in `streams`: appends that found
    /// their shard closed by a reshard wait on it for the new shard map.
    shard_maps: tokio::sync::Notify,
    /// Drives the throughput limits; tests fix it instead of sleeping.
    clock: throttle::Clock,
    /// Live SubscribeToShard subscriptions, so a new one can take over.
    subscriptions: actions::subscribe_to_shard::Subscriptions,
    /// Whether any stream or consumer may have a resource policy: until
    /// one is put, the edge need not look a request's resource up.
    resource_policies: std::sync::atomic::AtomicBool,
}

impl Kinesis {
    /// Loads the stream catalog from the store's metadata and opens every
    /// shard's log (recovering them).
    pub fn open(store: Arc<LogStore>, config: KinesisConfig) -> Result<Arc<Kinesis>, KinesisError> {
        let iterator_key = service::load_or_create_key(&store)?;
        let streams = service::load_streams(&store, &config)?;
        let resource_policies = streams
            .values()
            .any(|s| s.record.settings.resource_policy.is_some())
            || actions::any_consumer_policy(&store)?;
        Ok(Arc::new(Kinesis {
            store,
            config,
            iterator_key,
            streams: RwLock::new(streams),
            catalog_lock: tokio::sync::Mutex::new(()),
            shard_maps: tokio::sync::Notify::new(),
            clock: throttle::Clock::default(),
            subscriptions: Default::default(),
            resource_policies: resource_policies.into(),
        }))
    }

    /// The resource policy attached to the stream or consumer `arn`, if
    /// any, for the edge to evaluate with the caller's identity policy.
    pub fn resource_policy(&self, arn: &str) -> Option<String> {
        if !self
            .resource_policies
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return None;
        }
        actions::attached_policy(self, arn)
    }

    /// Whether [`Kinesis::resource_policy`] may find any policy at all.
    pub fn has_resource_policies(&self) -> bool {
        self.resource_policies
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// A policy is about to be put: from now on the edge looks for them.
    pub(crate) fn note_resource_policy(&self) {
        self.resource_policies
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Runs one API action. `action` is the part of `X-Amz-Target` after
    /// `Kinesis_20131202.`; an unknown one is `UnknownOperation`.
    pub async fn handle(
        &self,
        action: &str,
        body: Bytes,
        codec: Codec,
    ) -> Result<Bytes, KinesisError> {
        match codec {
            Codec::Json => actions::dispatch(self, action, &body).await,
            Codec::Cbor => {
                let json = cbor::request_to_json(&body)?;
                actions::dispatch_cbor(self, action, &json).await
            }
        }
    }

    /// SubscribeToShard: validates the request and starts a subscription
    /// whose events the caller pulls with [`Subscription::next_event`].
    /// Errors here come before any event (the server answers them as
    /// ordinary AWS errors); errors after the start come as events.
    pub async fn subscribe_to_shard(
        self: &Arc<Self>,
        body: Bytes,
        codec: Codec,
    ) -> Result<Subscription, KinesisError> {
        match codec {
            Codec::Json => actions::subscribe_to_shard::start(self, &body).await,
            // The events are JSON; the server encodes them with
            // `Codec::encode_json`.
            Codec::Cbor => {
                actions::subscribe_to_shard::start(self, &cbor::request_to_json(&body)?).await
            }
        }
    }

    /// Background duties until `shutdown` resolves: stream status
    /// transitions and retention trimming.
    pub async fn run_background(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        service::run_background(&self, shutdown).await
    }
}

impl From<riffle_coral::json::SerializationError> for KinesisError {
    fn from(err: riffle_coral::json::SerializationError) -> Self {
        KinesisError::Serialization(err.0)
    }
}

impl From<riffle_coral::validate::ValidationError> for KinesisError {
    fn from(err: riffle_coral::validate::ValidationError) -> Self {
        KinesisError::Validation(err.0)
    }
}
