//! A reader's durable position in one shard, for the services that read
//! streams on a user's behalf and must resume where they stopped
//! (Firehose's Kinesis source, Lambda event source mappings). Each keeps
//! these values under keys of its own in the metadata store.
//!
//! # Layout
//!
//! 9 bytes: the little-endian u64 log position of the shard's first
//! record not yet taken, then a flag byte (1: the shard is closed and was
//! read to its end, 0: not).

use std::collections::BTreeMap;

use riffle_log::{LogError, LogStore, Seq};
use tracing::warn;

/// Where a reader of a shard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardCheckpoint {
    /// The position of the first record not yet taken.
    pub next: Seq,
    /// The shard is closed and every record of it was taken.
    pub done: bool,
}

impl ShardCheckpoint {
    pub fn encode(self) -> Vec<u8> {
        let mut out = self.next.to_le_bytes().to_vec();
        out.push(u8::from(self.done));
        out
    }

    pub fn decode(value: &[u8]) -> Option<ShardCheckpoint> {
        let (next, flag) = value.split_at_checked(8)?;
        let done = match flag {
            [0] => false,
            [1] => true,
            _ => return None,
        };
        Some(ShardCheckpoint {
            next: u64::from_le_bytes(next.try_into().ok()?),
            done,
        })
    }
}

/// The checkpoints stored under `prefix`, by what follows it in their keys
/// (the shard id). An unreadable value is skipped: its shard is read again
/// from the starting position (more, never less).
pub fn load_checkpoints(
    store: &LogStore,
    prefix: &str,
) -> Result<BTreeMap<String, ShardCheckpoint>, LogError> {
    let mut out = BTreeMap::new();
    for (key, value) in store.meta().scan_prefix(prefix)? {
        match ShardCheckpoint::decode(&value) {
            Some(at) => {
                out.insert(key[prefix.len()..].to_owned(), at);
            }
            None => warn!(%key, "ignoring an unreadable shard checkpoint"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use riffle_log::MetaOp;

    #[test]
    fn a_checkpoint_reads_back_as_written_and_a_bad_one_is_refused() {
        for at in [
            ShardCheckpoint {
                next: 0,
                done: false,
            },
            ShardCheckpoint {
                next: 1 << 40,
                done: true,
            },
        ] {
            assert_eq!(ShardCheckpoint::decode(&at.encode()), Some(at));
        }
        assert_eq!(
            ShardCheckpoint::decode(&[0; 8]),
            None,
            "the flag is required"
        );
        assert_eq!(ShardCheckpoint::decode(&[0, 0, 0, 0, 0, 0, 0, 0, 2]), None);
    }

    #[test]
    fn only_the_prefixs_readable_checkpoints_load_by_shard() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path(), Default::default()).unwrap();
        let at = ShardCheckpoint {
            next: 7,
            done: true,
        };
        let put = |key: &str, value: Vec<u8>| MetaOp::Put {
            key: key.to_owned(),
            value,
        };
        store
            .meta()
            .commit(&[
                put("a/1/shardId-000000000000", at.encode()),
                put("a/1/shardId-000000000001", b"garbage".to_vec()),
                put("a/2/shardId-000000000000", at.encode()),
            ])
            .unwrap();
        let loaded = load_checkpoints(&store, "a/1/").unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded.get("shardId-000000000000"), Some(&at));
    }
}
