//! In-process read access to a stream's shards for services in the same
//! process (Firehose's Kinesis source): a consumer's view without shard
//! iterators, throttling or HTTP. The caller keeps its own positions (the
//! shard logs' sequence positions) and reads, and waits at the tip, through
//! each shard's [`ShardLog`].

use riffle_log::{Seq, ShardLog};

use crate::seqnum::SeqNum;
use crate::stream::Stream;
use crate::time::now_ms;
use crate::{Kinesis, KinesisError};

/// A snapshot of a stream's shards, as a consumer sees them when it looks.
/// Resharding adds shards: look again to see them.
pub struct StreamShards {
    /// New at every CreateStream: a stream deleted and created again under
    /// the same name has another, and none of its positions carry over.
    pub incarnation: u64,
    /// Every shard ever created (closed and expired ones included), in
    /// creation order, so that parents come before their children.
    pub shards: Vec<ShardReader>,
}

/// One shard: its id, its lineage and its records.
pub struct ShardReader {
    /// `shardId-000000000000`.
    pub shard_id: String,
    /// The shards it was split or merged from (zero, one or two): a
    /// consumer reads them to their end before this one.
    pub parents: Vec<String>,
    /// The shard's records. Reads decrypt transparently; a closed shard's
    /// read ends with `end_of_log`; `wait_readable` resolves at new records,
    /// at the close and at the deletion of the stream.
    pub log: ShardLog,
    /// What its sequence numbers are made of besides the position.
    created_ms: i64,
    index: u32,
    incarnation: u64,
}

impl ShardReader {
    /// The sequence number (as GetRecords shows it) of the record at
    /// position `seq` that arrived at `arrival_ms`.
    pub fn sequence_number(&self, seq: Seq, arrival_ms: i64) -> String {
        SeqNum {
            shard_created_secs: (self.created_ms / 1000) as u64,
            shard_index: self.index,
            seq,
            incarnation_byte: self.incarnation as u8,
            arrival_secs: (arrival_ms.max(0) / 1000) as u64,
        }
        .encode()
    }
}

impl Kinesis {
    /// The shards of the stream `stream_arn` names, or `ResourceNotFound`
    /// when it does not exist, is still CREATING or was deleted (as
    /// GetShardIterator would answer).
    pub fn stream_shards(&self, stream_arn: &str) -> Result<StreamShards, KinesisError> {
        let name = self.target_name(None, Some(stream_arn))?;
        let now = now_ms();
        let stream = self.lookup(&name, now)?;
        if !stream.is_usable(now) {
            return Err(crate::errors::stream_not_found(&name, self.account()));
        }
        Ok(shards_of(&stream))
    }
}

fn shards_of(stream: &Stream) -> StreamShards {
    let incarnation = stream.record.incarnation;
    let shards = stream
        .shards
        .iter()
        .map(|shard| ShardReader {
            shard_id: shard.id.clone(),
            parents: [&shard.parent_id, &shard.adjacent_parent_id]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            log: shard.log.clone(),
            created_ms: shard.created_ms,
            index: shard.index,
            incarnation,
        })
        .collect();
    StreamShards {
        incarnation,
        shards,
    }
}
