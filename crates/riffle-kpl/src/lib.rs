//! The KPL's aggregated-record format ([`format`]) and a producer doing the
//! KPL's job over the AWS SDK for Rust ([`Producer`]): many small user
//! records packed into few Kinesis records, per shard, sent in PutRecords
//! calls with retries, a per-shard rate limit and a flush interval.

pub mod format;
mod producer;
mod rate;
mod shards;

pub use format::{Aggregator, SubRecord, UserRecord, deaggregate, decode};
pub use producer::{ProduceError, Producer, ProducerConfig, PutOutcome, UserRecordFuture};
pub use shards::{ShardMap, hash_key_of};
