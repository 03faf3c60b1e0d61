//! A stream in memory: its catalog record, its shards with their open logs,
//! its status as of now, and the routing of a hash key to a shard.
//!
//! A [`Stream`] is immutable; a change (status, deletion) builds a new one
//! and swaps the `Arc` in the service's map, so request handlers hold no
//! lock while they append or read.

use std::sync::Arc;

use riffle_log::{LogStore, Seq, ShardLog};

use crate::KinesisError;
use crate::catalog::{self, ShardRecord, Status, StreamRecord};
use crate::errors;
use crate::hashkey::HashRange;
use crate::metrics::ShardMetrics;
use crate::seqnum::SeqNum;
use crate::throttle::ShardThrottle;

pub struct Stream {
    pub record: StreamRecord,
    pub arn: String,
    pub shards: Vec<Shard>,
    /// Indexes into `shards` of the open shards, by starting hash key.
    open_by_hash: Vec<usize>,
    /// Per shard (by position): when it was closed, i.e. when its first
    /// child was created; `None` while open.
    closed_ms: Vec<Option<i64>>,
}

pub struct Shard {
    pub index: u32,
    pub id: String,
    pub range: HashRange,
    pub parent_id: Option<String>,
    pub adjacent_parent_id: Option<String>,
    pub created_ms: i64,
    pub closed: bool,
    pub log: ShardLog,
    /// Throughput limits; shared by every version of this shard.
    pub throttle: Arc<ShardThrottle>,
    /// Counters for the metrics endpoint; shared the same way.
    pub metrics: Arc<ShardMetrics>,
}

impl Stream {
    /// Builds the stream of `record`, opening (and recovering) every
    /// shard's log. Blocking I/O.
    pub fn open(
        store: &LogStore,
        record: StreamRecord,
        arn: String,
    ) -> Result<Stream, KinesisError> {
        let mut shards = Vec::with_capacity(record.shards.len());
        for shard in &record.shards {
            shards.push(Shard::open(store, &record, shard)?);
        }
        Ok(Stream::with_shards(record, arn, shards))
    }

    /// The same stream with another record (status change); shards shared.
    pub fn with_record(&self, record: StreamRecord) -> Stream {
        let shards = self.shards.iter().map(Shard::clone_handle).collect();
        Stream::with_shards(record, self.arn.clone(), shards)
    }

    /// The stream after a reshard: `record` marks the closed parents and
    /// lists the new shards `added` (opened by the caller) after the old
    /// ones. Shards keep their positions across versions.
    pub fn resharded(&self, record: StreamRecord, added: Vec<Shard>) -> Stream {
        let mut shards: Vec<Shard> = self.shards.iter().map(Shard::clone_handle).collect();
        shards.extend(added);
        debug_assert_eq!(shards.len(), record.shards.len());
        for (shard, stored) in shards.iter_mut().zip(&record.shards) {
            shard.closed = stored.closed;
        }
        Stream::with_shards(record, self.arn.clone(), shards)
    }

    fn with_shards(record: StreamRecord, arn: String, shards: Vec<Shard>) -> Stream {
        let mut open_by_hash: Vec<usize> =
            (0..shards.len()).filter(|&i| !shards[i].closed).collect();
        open_by_hash.sort_by_key(|&i| shards[i].range.start);
        let mut closed_ms: Vec<Option<i64>> = vec![None; shards.len()];
        for child in &record.shards {
            for parent in [child.parent, child.adjacent_parent].into_iter().flatten() {
                if let Some(at) = closed_ms.get_mut(parent as usize) {
                    *at = Some(at.map_or(child.created_ms, |t| t.min(child.created_ms)));
                }
            }
        }
        Stream {
            record,
            arn,
            shards,
            open_by_hash,
            closed_ms,
        }
    }

    /// When `shard` was closed (its children's creation), if it is.
    pub fn closed_ms(&self, shard: &Shard) -> Option<i64> {
        self.closed_ms
            .get(shard.index as usize)
            .copied()
            .flatten()
            .filter(|_| shard.closed)
    }

    /// The oldest time whose records are still retained at `now_ms`.
    pub fn trim_horizon_ms(&self, now_ms: i64) -> i64 {
        now_ms - i64::from(self.record.retention_hours) * 3_600_000
    }

    /// Whether `shard` has left the stream: closed before the retention
    /// period began, so all its records are past retention. AWS then
    /// lists it no more.
    pub fn is_expired(&self, shard: &Shard, now_ms: i64) -> bool {
        self.closed_ms(shard)
            .is_some_and(|closed| closed < self.trim_horizon_ms(now_ms))
    }

    /// The shards AWS lists: all but the expired ones, in index order.
    pub fn listed(&self, now_ms: i64) -> impl Iterator<Item = &Shard> {
        self.shards
            .iter()
            .filter(move |s| !self.is_expired(s, now_ms))
    }

    /// The shards whose parent or adjacent parent is `shard`.
    pub fn children(&self, shard: &Shard) -> impl Iterator<Item = &Shard> {
        self.shards.iter().filter(move |s| {
            s.parent_id.as_deref() == Some(shard.id.as_str())
                || s.adjacent_parent_id.as_deref() == Some(shard.id.as_str())
        })
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// The status as of `now_ms`; `None` once a deletion has completed. A
    /// CREATING or UPDATING stream is ACTIVE once its delay has passed,
    /// whether or not the background task has recorded it yet.
    pub fn status(&self, now_ms: i64) -> Option<Status> {
        let due = now_ms >= self.record.status_until_ms;
        // A stream stays UPDATING (refusing another reshard) until its
        // pending reshard is applied: when the delay is over, or, if that
        // failed, once a retry or a restart has finished it.
        let reshard_pending = self.record.pending.is_some();
        match self.record.status {
            Status::Active | Status::Updating if reshard_pending => Some(Status::Updating),
            Status::Creating | Status::Updating if due => Some(Status::Active),
            Status::Deleting if due => None,
            status => Some(status),
        }
    }

    /// Whether records may be written and read: ACTIVE or UPDATING.
    pub fn is_usable(&self, now_ms: i64) -> bool {
        matches!(self.status(now_ms), Some(Status::Active | Status::Updating))
    }

    /// The open shard owning `hash_key`.
    pub fn route(&self, hash_key: u128) -> Option<&Shard> {
        let at = self
            .open_by_hash
            .partition_point(|&i| self.shards[i].range.start <= hash_key);
        let shard = &self.shards[*self.open_by_hash.get(at.checked_sub(1)?)?];
        shard.range.contains(hash_key).then_some(shard)
    }

    pub fn shard(&self, index: u32) -> Option<&Shard> {
        // Shards are stored by index; resharding appends.
        self.shards.get(index as usize).filter(|s| s.index == index)
    }

    pub fn open_shard_count(&self) -> usize {
        self.open_by_hash.len()
    }

    /// The sequence number of record `seq` of `shard`.
    pub fn seq_number(&self, shard: &Shard, seq: Seq, arrival_ms: i64) -> String {
        self.seq_num(shard, seq, arrival_ms).encode()
    }

    /// Appends the sequence number of record `seq` of `shard` to `out`
    /// (what responses with one per record use: no `String` each).
    pub fn write_seq_number(&self, out: &mut String, shard: &Shard, seq: Seq, arrival_ms: i64) {
        self.seq_num(shard, seq, arrival_ms).encode_into(out)
    }

    fn seq_num(&self, shard: &Shard, seq: Seq, arrival_ms: i64) -> SeqNum {
        SeqNum {
            shard_created_secs: (shard.created_ms / 1000) as u64,
            shard_index: shard.index,
            seq,
            incarnation_byte: self.record.incarnation as u8,
            arrival_secs: (arrival_ms.max(0) / 1000) as u64,
        }
    }

    /// Whether a decoded sequence number was issued by `shard` of this
    /// stream incarnation (apart from its shard index, checked separately).
    pub fn issued_here(&self, shard: &Shard, number: &SeqNum) -> bool {
        number.shard_created_secs == (shard.created_ms / 1000) as u64
            && number.incarnation_byte == self.record.incarnation as u8
    }
}

impl Shard {
    /// Opens (creating or recovering) the log of `record`. Blocking I/O.
    pub fn open(
        store: &LogStore,
        stream: &StreamRecord,
        record: &ShardRecord,
    ) -> Result<Shard, KinesisError> {
        let id = catalog::shard_id(record.index);
        let log = store.open_log(&stream.log_name(&id))?;
        let range = record.range().ok_or_else(|| {
            errors::catalog(catalog::CatalogError::Corrupt {
                key: stream.key(),
                reason: format!("shard {} has a bad hash range", record.index),
            })
        })?;
        Ok(Shard {
            index: record.index,
            id,
            range,
            parent_id: record.parent.map(catalog::shard_id),
            adjacent_parent_id: record.adjacent_parent.map(catalog::shard_id),
            created_ms: record.created_ms,
            closed: record.closed,
            log,
            throttle: Arc::default(),
            metrics: Arc::default(),
        })
    }

    fn clone_handle(&self) -> Shard {
        Shard {
            index: self.index,
            id: self.id.clone(),
            range: self.range,
            parent_id: self.parent_id.clone(),
            adjacent_parent_id: self.adjacent_parent_id.clone(),
            created_ms: self.created_ms,
            closed: self.closed,
            log: self.log.clone(),
            throttle: self.throttle.clone(),
            metrics: self.metrics.clone(),
        }
    }
}
