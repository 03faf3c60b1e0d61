//! A Kinesis Client Library for Rust, sharing the Java KCL's lease table.
//!
//! A [`Worker`] of an application keeps one lease per shard in the DynamoDB
//! table named after the application, in the Java KCL's item layout
//! ([`lease`]), renews its leases by incrementing their counters, takes
//! expired ones and steals toward an even spread ([`taker`]), and runs a
//! [`RecordProcessor`] per held shard: parents before children, checkpoints
//! (and pending checkpoints) with sub-sequence numbers, SHARD_END, polling
//! or enhanced fan-out. KPL-aggregated records are de-aggregated
//! ([`KplDeaggregation`], the default [`Deaggregator`]), as the Java KCL does.
//!
//! Beside Java KCL 3.x workers, whose leader assigns leases instead of
//! letting workers take them, a worker publishes its WorkerMetricStats row
//! and processes what the live leader assigns it, handing leases over
//! gracefully both ways ([`coordinator`]).

mod consumer;
pub mod coordinator;
pub mod lease;
mod processor;
pub mod table;
pub mod taker;
mod worker;

pub use consumer::MAX_RECORDS;
pub use lease::{Checkpoint, Lease};
pub use processor::{
    Checkpointer, Deaggregator, InitializeInput, KplDeaggregation, NoDeaggregation,
    ProcessRecordsInput, Record, RecordProcessor,
};
pub use worker::{
    DEFAULT_FAILOVER_TIME, InitialPosition, RetrievalMode, Worker, WorkerBuilder, WorkerHandle,
};

/// What can go wrong in a worker.
#[derive(Debug, thiserror::Error)]
pub enum KclError {
    #[error("Kinesis: {0}")]
    Kinesis(String),
    #[error("DynamoDB (lease table): {0}")]
    DynamoDb(String),
    #[error("lease of {0} is held by another worker now")]
    LeaseLost(String),
    #[error("a lease item is not in KCL's layout: {0}")]
    BadLease(String),
    #[error("worker configuration: {0}")]
    Config(&'static str),
    #[error("the worker stopped: {0}")]
    Stopped(String),
}

/// The resolved retrieval mode.
#[derive(Debug, Clone)]
pub(crate) enum Retrieval {
    Polling,
    FanOut { consumer_arn: String },
}
