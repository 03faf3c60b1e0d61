//! Where a mapping's reading of each shard stands, durably: a poller
//! commits a shard's position only after the function took the records
//! before it (or they were discarded as Lambda discards them), so a restart
//! re-reads at most the batch that was in flight.
//!
//! # Layout
//!
//! Key `lambda/event-source-mapping-positions/<UUID>/<source stream
//! incarnation, 16 hex>/<ShardId>`; value 9 bytes: the little-endian u64
//! position of the shard's first record not yet processed, then a flag byte
//! (1: the shard is closed and was processed to its end, 0: not). The
//! stream's incarnation keeps a deleted stream's positions from applying to
//! a new one of the same name. The prefix is not under the mappings' own
//! (`lambda/event-source-mappings/`), which is read back as mappings.

use std::collections::BTreeMap;

use riffle_log::{LogError, LogStore, MetaOp, Seq};
use tracing::warn;

const PREFIX: &str = "lambda/event-source-mapping-positions/";

/// Where a shard's processing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// The position of the first record not yet processed.
    pub next: Seq,
    /// The shard is closed and every record of it was processed.
    pub done: bool,
}

impl Checkpoint {
    pub fn encode(self) -> Vec<u8> {
        let mut out = self.next.to_le_bytes().to_vec();
        out.push(u8::from(self.done));
        out
    }

    pub fn decode(value: &[u8]) -> Option<Checkpoint> {
        let (next, flag) = value.split_at_checked(8)?;
        let done = match flag {
            [0] => false,
            [1] => true,
            _ => return None,
        };
        Some(Checkpoint {
            next: u64::from_le_bytes(next.try_into().ok()?),
            done,
        })
    }
}

/// Every position of the mapping `uuid`.
pub fn mapping_prefix(uuid: &str) -> String {
    format!("{PREFIX}{uuid}/")
}

fn stream_prefix(uuid: &str, incarnation: u64) -> String {
    format!("{}{incarnation:016x}/", mapping_prefix(uuid))
}

/// The one metadata operation that commits a shard's position.
pub fn put(uuid: &str, incarnation: u64, shard_id: &str, at: Checkpoint) -> MetaOp {
    MetaOp::Put {
        key: format!("{}{shard_id}", stream_prefix(uuid, incarnation)),
        value: at.encode(),
    }
}

/// The positions stored for one incarnation of the source stream, by
/// shard id. An unreadable value is skipped: its shard is read again from
/// the starting position (more, never less).
pub fn load(
    store: &LogStore,
    uuid: &str,
    incarnation: u64,
) -> Result<BTreeMap<String, Checkpoint>, LogError> {
    let prefix = stream_prefix(uuid, incarnation);
    let mut out = BTreeMap::new();
    for (key, value) in store.meta().scan_prefix(&prefix)? {
        match Checkpoint::decode(&value) {
            Some(at) => {
                out.insert(key[prefix.len()..].to_owned(), at);
            }
            None => warn!(%key, "ignoring an unreadable event source mapping position"),
        }
    }
    Ok(out)
}

/// Deletes every position and open window of the mapping `uuid`
/// (blocking).
pub fn delete_all(store: &LogStore, uuid: &str) -> Result<(), LogError> {
    let mut ops: Vec<MetaOp> = Vec::new();
    for prefix in [mapping_prefix(uuid), crate::window::mapping_prefix(uuid)] {
        let keys = store.meta().scan_prefix(&prefix)?.into_iter();
        ops.extend(keys.map(|(key, _)| MetaOp::Delete { key }));
    }
    if ops.is_empty() {
        return Ok(());
    }
    store.meta().commit(&ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_reads_back_as_written() {
        for at in [
            Checkpoint {
                next: 0,
                done: false,
            },
            Checkpoint {
                next: 1 << 40,
                done: true,
            },
        ] {
            assert_eq!(Checkpoint::decode(&at.encode()), Some(at));
        }
        assert_eq!(
            Checkpoint::decode(&[0; 8]),
            None,
            "the flag byte is required"
        );
        assert_eq!(Checkpoint::decode(&[0, 0, 0, 0, 0, 0, 0, 0, 2]), None);
    }

    #[test]
    fn positions_are_kept_per_mapping_stream_incarnation_and_shard() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path(), riffle_log::StoreConfig::default()).unwrap();
        let at = Checkpoint {
            next: 7,
            done: false,
        };
        store
            .meta()
            .commit(&[
                put("u", 1, "shardId-000000000000", at),
                put("u", 2, "shardId-000000000000", at),
            ])
            .unwrap();
        let one = load(&store, "u", 1).unwrap();
        assert_eq!(one.get("shardId-000000000000"), Some(&at));
        assert_eq!(load(&store, "other", 1).unwrap().len(), 0);
        delete_all(&store, "u").unwrap();
        assert!(load(&store, "u", 2).unwrap().is_empty());
    }
}
