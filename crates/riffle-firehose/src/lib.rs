//! `riffle-firehose`: the Firehose service (`Firehose_20150804`).
//!
//! Delivery streams take records (PutRecord, PutRecordBatch, or a Kinesis
//! stream as source), keep them durably in `riffle-log` until a buffer
//! fills or its interval passes, and deliver them as objects to S3.
//!
//! **Architecture Invariant:** this crate knows nothing about HTTP. The
//! server hands it an action name and a JSON body; where objects go is
//! behind [`sink::ObjectSink`].
//!
//! Module map:
//! - `sink`: the one interface delivery writes objects through.
//! - `prefix`: AWS's custom S3 prefixes (`!{timestamp:…}`, `!{firehose:…}`)
//!   and the names of delivered objects.
//! - `compression`: the CompressionFormat codecs and their file extensions.
//! - `remote`: the sink for an S3-compatible server (`--s3-endpoint`).

pub mod compression;
pub mod prefix;
pub mod remote;
pub mod sink;
