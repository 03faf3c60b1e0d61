//! Where a mapping's reading of each shard stands, durably: a poller
//! commits a shard's position only after the function took the records
//! before it (or they were discarded as Lambda discards them), so a restart
//! re-reads at most the batch that was in flight.
//!
//! # Layout
//!
//! Key `lambda/event-source-mapping-positions/<UUID>/<source stream
//! incarnation, 16 hex>/<ShardId>`; value a
//! [`riffle_kinesis::shard_checkpoint::ShardCheckpoint`] (its layout is
//! there): the shard's first record not yet processed, and whether the
//! shard was processed to its end. The
//! stream's incarnation keeps a deleted stream's positions from applying to
//! a new one of the same name. The prefix is not under the mappings' own
//! (`lambda/event-source-mappings/`), which is read back as mappings.

use std::collections::BTreeMap;

use riffle_log::{LogError, LogStore, MetaOp};

const PREFIX: &str = "lambda/event-source-mapping-positions/";

/// Where a shard's processing stands: `next` is the first record not yet
/// processed.
pub use riffle_kinesis::shard_checkpoint::ShardCheckpoint as Checkpoint;

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
    riffle_kinesis::shard_checkpoint::load_checkpoints(store, &stream_prefix(uuid, incarnation))
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
