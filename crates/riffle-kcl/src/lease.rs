//! A lease as the Java KCL (1.x to 3.x) stores it: one DynamoDB item per shard.
//!
//! Item layout (attribute names from KCL's `DynamoDBLeaseSerializer`):
//!
//! | attribute | type | meaning |
//! | --- | --- | --- |
//! | `leaseKey` | S | the shard id (hash key of the table) |
//! | `leaseOwner` | S | the worker holding the lease; absent when free |
//! | `leaseCounter` | N | bumped by every renewal: the owner's heartbeat |
//! | `checkpoint` | S | a sequence number, or `TRIM_HORIZON`, `LATEST`, `AT_TIMESTAMP`, `SHARD_END` |
//! | `checkpointSubSequenceNumber` | N | the sub-record (KPL aggregation) within it |
//! | `pendingCheckpoint` | S | a prepared checkpoint, absent when none |
//! | `pendingCheckpointSubSequenceNumber` | N | its sub-record |
//! | `pendingCheckpointState` | B | opaque application state of a prepared checkpoint |
//! | `ownerSwitchesSinceCheckpoint` | N | how often the lease changed hands since its last checkpoint |
//! | `parentShardId` | SS | the shards this one was split or merged from |
//! | `childShardIds` | SS | the shards it closed into (written at SHARD_END) |
//! | `startingHashKey`, `endingHashKey` | S | the shard's hash key range (KCL 2.3+) |
//! | `checkpointOwner` | S | KCL 3.x graceful hand-over: the old owner, still finishing |
//! | `throughputKBps` | N | KCL 3.x: the lease's recent throughput, for the leader |

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::KclError;

pub(crate) const LEASE_KEY: &str = "leaseKey";
pub(crate) const LEASE_OWNER: &str = "leaseOwner";
pub(crate) const LEASE_COUNTER: &str = "leaseCounter";
pub(crate) const CHECKPOINT: &str = "checkpoint";
pub(crate) const CHECKPOINT_SUB: &str = "checkpointSubSequenceNumber";
pub(crate) const PENDING_CHECKPOINT: &str = "pendingCheckpoint";
pub(crate) const PENDING_CHECKPOINT_SUB: &str = "pendingCheckpointSubSequenceNumber";
pub(crate) const PENDING_CHECKPOINT_STATE: &str = "pendingCheckpointState";
pub(crate) const OWNER_SWITCHES: &str = "ownerSwitchesSinceCheckpoint";
pub(crate) const PARENT_SHARD_ID: &str = "parentShardId";
pub(crate) const CHILD_SHARD_IDS: &str = "childShardIds";
pub(crate) const STARTING_HASH_KEY: &str = "startingHashKey";
pub(crate) const ENDING_HASH_KEY: &str = "endingHashKey";
pub(crate) const CHECKPOINT_OWNER: &str = "checkpointOwner";
pub(crate) const THROUGHPUT_KBPS: &str = "throughputKBps";

/// Where a shard's processing stands: a sequence number or one of KCL's
/// sentinel positions, spelled as the Java `SentinelCheckpoint` names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checkpoint {
    TrimHorizon,
    Latest,
    AtTimestamp,
    /// The shard was read to its end and its children may start.
    ShardEnd,
    /// After this record (and sub-record) everything is still to process.
    Sequence {
        sequence: String,
        sub_sequence: i64,
    },
}

impl Checkpoint {
    pub(crate) fn as_attribute(&self) -> &str {
        match self {
            Checkpoint::TrimHorizon => "TRIM_HORIZON",
            Checkpoint::Latest => "LATEST",
            Checkpoint::AtTimestamp => "AT_TIMESTAMP",
            Checkpoint::ShardEnd => "SHARD_END",
            Checkpoint::Sequence { sequence, .. } => sequence,
        }
    }

    pub(crate) fn sub_sequence(&self) -> i64 {
        match self {
            Checkpoint::Sequence { sub_sequence, .. } => *sub_sequence,
            _ => 0,
        }
    }

    fn from_parts(value: &str, sub_sequence: i64) -> Checkpoint {
        match value {
            "TRIM_HORIZON" => Checkpoint::TrimHorizon,
            "LATEST" => Checkpoint::Latest,
            "AT_TIMESTAMP" => Checkpoint::AtTimestamp,
            "SHARD_END" => Checkpoint::ShardEnd,
            sequence => Checkpoint::Sequence {
                sequence: sequence.to_owned(),
                sub_sequence,
            },
        }
    }
}

/// One row of the lease table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub owner: Option<String>,
    pub counter: i64,
    pub checkpoint: Checkpoint,
    pub pending_checkpoint: Option<Checkpoint>,
    pub pending_checkpoint_state: Option<Vec<u8>>,
    pub owner_switches_since_checkpoint: i64,
    pub parent_shard_ids: BTreeSet<String>,
    pub child_shard_ids: BTreeSet<String>,
    /// The shard's hash key range, decimal strings as in ListShards.
    pub hash_key_range: Option<(String, String)>,
    pub checkpoint_owner: Option<String>,
    pub throughput_kbps: Option<String>,
}

pub(crate) type Item = HashMap<String, AttributeValue>;

impl Lease {
    /// A fresh lease for a shard, as shard sync creates it.
    pub fn new(key: &str, checkpoint: Checkpoint) -> Lease {
        Lease {
            key: key.to_owned(),
            owner: None,
            counter: 0,
            checkpoint,
            pending_checkpoint: None,
            pending_checkpoint_state: None,
            owner_switches_since_checkpoint: 0,
            parent_shard_ids: BTreeSet::new(),
            child_shard_ids: BTreeSet::new(),
            hash_key_range: None,
            checkpoint_owner: None,
            throughput_kbps: None,
        }
    }

    /// The item Java's `DynamoDBLeaseSerializer.toDynamoRecord` writes.
    pub(crate) fn to_item(&self) -> Item {
        let mut item = Item::new();
        item.insert(LEASE_KEY.into(), s(&self.key));
        item.insert(LEASE_COUNTER.into(), n(self.counter));
        if let Some(owner) = &self.owner {
            item.insert(LEASE_OWNER.into(), s(owner));
        }
        item.insert(
            OWNER_SWITCHES.into(),
            n(self.owner_switches_since_checkpoint),
        );
        item.insert(CHECKPOINT.into(), s(self.checkpoint.as_attribute()));
        item.insert(CHECKPOINT_SUB.into(), n(self.checkpoint.sub_sequence()));
        if !self.parent_shard_ids.is_empty() {
            item.insert(PARENT_SHARD_ID.into(), ss(&self.parent_shard_ids));
        }
        if !self.child_shard_ids.is_empty() {
            item.insert(CHILD_SHARD_IDS.into(), ss(&self.child_shard_ids));
        }
        if let Some(pending) = &self.pending_checkpoint {
            item.insert(PENDING_CHECKPOINT.into(), s(pending.as_attribute()));
            item.insert(PENDING_CHECKPOINT_SUB.into(), n(pending.sub_sequence()));
        }
        if let Some(state) = &self.pending_checkpoint_state {
            item.insert(
                PENDING_CHECKPOINT_STATE.into(),
                AttributeValue::B(Blob::new(state.clone())),
            );
        }
        if let Some((start, end)) = &self.hash_key_range {
            item.insert(STARTING_HASH_KEY.into(), s(start));
            item.insert(ENDING_HASH_KEY.into(), s(end));
        }
        if let Some(owner) = &self.checkpoint_owner {
            item.insert(CHECKPOINT_OWNER.into(), s(owner));
        }
        if let Some(kbps) = &self.throughput_kbps {
            item.insert(THROUGHPUT_KBPS.into(), AttributeValue::N(kbps.clone()));
        }
        item
    }

    /// Reads an item of any KCL version; attributes it does not know are
    /// left alone (they stay in the table: updates name only their own).
    pub(crate) fn from_item(item: &Item) -> Result<Lease, KclError> {
        let key = string(item, LEASE_KEY)?.ok_or_else(|| bad("no leaseKey"))?;
        let checkpoint = string(item, CHECKPOINT)?.unwrap_or_else(|| "TRIM_HORIZON".into());
        let pending = string(item, PENDING_CHECKPOINT)?;
        let start = string(item, STARTING_HASH_KEY)?;
        let end = string(item, ENDING_HASH_KEY)?;
        Ok(Lease {
            owner: string(item, LEASE_OWNER)?,
            counter: number(item, LEASE_COUNTER)?.unwrap_or(0),
            checkpoint: Checkpoint::from_parts(
                &checkpoint,
                number(item, CHECKPOINT_SUB)?.unwrap_or(0),
            ),
            pending_checkpoint: pending.map(|p| {
                Checkpoint::from_parts(
                    &p,
                    number(item, PENDING_CHECKPOINT_SUB)
                        .ok()
                        .flatten()
                        .unwrap_or(0),
                )
            }),
            pending_checkpoint_state: match item.get(PENDING_CHECKPOINT_STATE) {
                Some(AttributeValue::B(blob)) => Some(blob.as_ref().to_vec()),
                _ => None,
            },
            owner_switches_since_checkpoint: number(item, OWNER_SWITCHES)?.unwrap_or(0),
            parent_shard_ids: string_set(item, PARENT_SHARD_ID),
            child_shard_ids: string_set(item, CHILD_SHARD_IDS),
            hash_key_range: start.zip(end),
            checkpoint_owner: string(item, CHECKPOINT_OWNER)?,
            throughput_kbps: match item.get(THROUGHPUT_KBPS) {
                Some(AttributeValue::N(v)) => Some(v.clone()),
                _ => None,
            },
            key,
        })
    }

    /// Whether the shard was read to its end and its children may start.
    pub fn is_finished(&self) -> bool {
        self.checkpoint == Checkpoint::ShardEnd
    }
}

pub(crate) fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn ss(values: &BTreeSet<String>) -> AttributeValue {
    AttributeValue::Ss(values.iter().cloned().collect())
}

fn bad(what: &str) -> KclError {
    KclError::BadLease(what.to_owned())
}

fn string(item: &Item, name: &str) -> Result<Option<String>, KclError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
        Some(_) => Err(bad(&format!("{name} is not a string"))),
    }
}

fn number(item: &Item, name: &str) -> Result<Option<i64>, KclError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| bad(&format!("{name} is not an integer: {v}"))),
        Some(_) => Err(bad(&format!("{name} is not a number"))),
    }
}

fn string_set(item: &Item, name: &str) -> BTreeSet<String> {
    match item.get(name) {
        Some(AttributeValue::Ss(values)) => values.iter().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lease in the Java KCL 3.1.3 layout (from its
    /// `DynamoDBLeaseSerializer`) with the attributes the captured one lacks:
    /// a split child, checkpointed mid-aggregate, with a throughput.
    fn java_item() -> Item {
        HashMap::from([
            ("leaseKey".into(), s("shardId-000000000004")),
            ("leaseOwner".into(), s("4f7c6b2e-worker")),
            ("leaseCounter".into(), AttributeValue::N("118".into())),
            (
                "checkpoint".into(),
                s("49650000000000000000000000000000000000000000000000000066"),
            ),
            (
                "checkpointSubSequenceNumber".into(),
                AttributeValue::N("3".into()),
            ),
            (
                "ownerSwitchesSinceCheckpoint".into(),
                AttributeValue::N("1".into()),
            ),
            (
                "parentShardId".into(),
                AttributeValue::Ss(vec!["shardId-000000000001".into()]),
            ),
            ("startingHashKey".into(), s("0")),
            (
                "endingHashKey".into(),
                s("85070591730234615865843651857942052863"),
            ),
            ("throughputKBps".into(), AttributeValue::N("12.5".into())),
        ])
    }

    /// Captured from the lease table of a real KCL 3.1.3 MultiLangDaemon
    /// (against `riffle serve`) once its leader had assigned the lease.
    fn captured_java_item() -> Item {
        HashMap::from([
            ("checkpoint".into(), s("TRIM_HORIZON")),
            (
                "checkpointSubSequenceNumber".into(),
                AttributeValue::N("0".into()),
            ),
            (
                "endingHashKey".into(),
                s("170141183460469231731687303715884105727"),
            ),
            ("leaseCounter".into(), AttributeValue::N("1".into())),
            ("leaseKey".into(), s("shardId-000000000000")),
            (
                "leaseOwner".into(),
                s("b334e7fd-0f6f-4ab2-8eea-0d027d39e861"),
            ),
            (
                "ownerSwitchesSinceCheckpoint".into(),
                AttributeValue::N("0".into()),
            ),
            ("startingHashKey".into(), s("0")),
        ])
    }

    #[test]
    fn a_lease_the_java_kcl_wrote_reads_and_writes_back_identically() {
        let lease = Lease::from_item(&captured_java_item()).expect("a valid lease");
        assert_eq!(lease.checkpoint, Checkpoint::TrimHorizon);
        assert_eq!(
            lease.owner.as_deref(),
            Some("b334e7fd-0f6f-4ab2-8eea-0d027d39e861")
        );
        assert_eq!(
            lease.hash_key_range,
            Some(("0".into(), "170141183460469231731687303715884105727".into()))
        );
        assert_eq!(lease.to_item(), captured_java_item());
    }

    #[test]
    fn a_split_child_lease_in_the_java_layout_round_trips() {
        let lease = Lease::from_item(&java_item()).expect("a valid lease");
        assert_eq!(lease.owner.as_deref(), Some("4f7c6b2e-worker"));
        assert_eq!(lease.counter, 118);
        assert_eq!(lease.checkpoint.sub_sequence(), 3);
        assert!(lease.parent_shard_ids.contains("shardId-000000000001"));
        assert_eq!(lease.to_item(), java_item());
    }

    #[test]
    fn sentinels_pending_checkpoints_and_children_round_trip() {
        let mut lease = Lease::new("shardId-000000000000", Checkpoint::ShardEnd);
        lease.child_shard_ids = ["shardId-000000000002".to_owned()].into();
        lease.pending_checkpoint = Some(Checkpoint::Sequence {
            sequence: "123".into(),
            sub_sequence: 7,
        });
        lease.pending_checkpoint_state = Some(b"state".to_vec());
        lease.checkpoint_owner = Some("old-owner".into());
        let item = lease.to_item();
        assert_eq!(item["checkpoint"], s("SHARD_END"));
        assert_eq!(item["pendingCheckpointSubSequenceNumber"], n(7));
        assert_eq!(Lease::from_item(&item).expect("valid"), lease);
        assert!(lease.is_finished());
    }

    #[test]
    fn a_lease_with_a_mistyped_counter_is_refused() {
        let mut item = java_item();
        item.insert("leaseCounter".into(), s("118"));
        assert!(matches!(
            Lease::from_item(&item),
            Err(KclError::BadLease(_))
        ));
    }
}
