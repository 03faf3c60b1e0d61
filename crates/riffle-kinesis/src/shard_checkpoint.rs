//! A reader's durable position in one shard, for the services that read
//! streams on a user's behalf and must resume where they stopped
//! (Firehose's Kinesis source, Lambda event source mappings). Each keeps
//! these values under keys of its own in the metadata store, and walks a
//! stream's shards the same way ([`ready_shards`]): parents before
//! children, as a Kinesis consumer must.
//!
//! # Layout
//!
//! 9 bytes: the little-endian u64 log position of the shard's first
//! record not yet taken, then a flag byte (1: the shard is closed and was
//! read to its end, 0: not).

use std::collections::{BTreeMap, BTreeSet};

use riffle_log::{LogError, LogStore, Seq};
use tracing::warn;

use crate::reader::ShardReader;

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

/// Where a reader of a whole stream stands: the shards read to their
/// end, the checkpoints it has, and the shards being read now.
#[derive(Debug, Clone, Copy)]
pub struct StreamProgress<'a> {
    pub done: &'a BTreeSet<String>,
    pub positions: &'a BTreeMap<String, ShardCheckpoint>,
    pub running: &'a BTreeSet<String>,
}

/// What the walk needs of a shard: its id and the shards it came from.
pub trait Lineage {
    fn shard_id(&self) -> &str;
    fn parents(&self) -> &[String];
}

impl Lineage for ShardReader {
    fn shard_id(&self) -> &str {
        &self.shard_id
    }

    fn parents(&self) -> &[String] {
        &self.parents
    }
}

/// The shards to start reading now, each with the position to read from:
/// every shard neither done nor being read whose parents are all done
/// (a child's records come after its parents', so it waits for them).
/// The position is the shard's checkpoint, or `start(shard)` for a shard
/// without one; a shard whose start cannot be had is left out with the
/// error, and found ready again at the next walk.
pub fn ready_shards<S: Lineage, E>(
    shards: Vec<S>,
    progress: StreamProgress<'_>,
    mut start: impl FnMut(&S) -> Result<Seq, E>,
) -> (Vec<(S, Seq)>, Vec<E>) {
    let (mut ready, mut failed) = (Vec::new(), Vec::new());
    for shard in shards {
        let id = shard.shard_id();
        let waiting = !shard.parents().iter().all(|p| progress.done.contains(p));
        if waiting || progress.done.contains(id) || progress.running.contains(id) {
            continue;
        }
        let next = match progress.positions.get(id) {
            Some(at) => Ok(at.next),
            None => start(&shard),
        };
        match next {
            Ok(next) => ready.push((shard, next)),
            Err(e) => failed.push(e),
        }
    }
    (ready, failed)
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
    struct Shard(&'static str, Vec<String>);

    impl Lineage for Shard {
        fn shard_id(&self) -> &str {
            self.0
        }

        fn parents(&self) -> &[String] {
            &self.1
        }
    }

    #[test]
    fn only_shards_whose_parents_are_done_start_at_their_checkpoint_or_the_start() {
        // 0 split into 1 and 2, which merged into 3; 4 is unrelated.
        let shards = || {
            vec![
                Shard("s0", vec![]),
                Shard("s1", vec!["s0".into()]),
                Shard("s2", vec!["s0".into()]),
                Shard("s3", vec!["s1".into(), "s2".into()]),
                Shard("s4", vec![]),
            ]
        };
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let positions = BTreeMap::from([(
            "s1".to_owned(),
            ShardCheckpoint {
                next: 40,
                done: false,
            },
        )]);
        let ids = |ready: &[(Shard, Seq)]| ready.iter().map(|(s, n)| (s.0, *n)).collect::<Vec<_>>();
        let (done, running) = (set(&[]), set(&["s4"]));
        let progress = StreamProgress {
            done: &done,
            positions: &positions,
            running: &running,
        };
        let (ready, failed) = ready_shards(shards(), progress, |_| Ok::<_, ()>(7));
        assert_eq!(
            ids(&ready),
            [("s0", 7)],
            "children wait, running shards are left alone"
        );
        assert!(failed.is_empty());
        let done = set(&["s0"]);
        let progress = StreamProgress {
            done: &done,
            positions: &positions,
            running: &running,
        };
        let (ready, _) = ready_shards(shards(), progress, |_| Ok::<_, ()>(7));
        assert_eq!(
            ids(&ready),
            [("s1", 40), ("s2", 7)],
            "a checkpoint wins over the start"
        );
        let done = set(&["s0", "s1"]);
        let progress = StreamProgress {
            done: &done,
            positions: &positions,
            running: &running,
        };
        let (ready, failed) = ready_shards(shards(), progress, |s| {
            if s.0 == "s2" { Err("no start") } else { Ok(7) }
        });
        assert!(ready.is_empty(), "a merge waits for both parents");
        assert_eq!(failed, ["no start"]);
        let done = set(&["s0", "s1", "s2"]);
        let progress = StreamProgress {
            done: &done,
            positions: &positions,
            running: &running,
        };
        let (ready, _) = ready_shards(shards(), progress, |_| Ok::<_, ()>(0));
        assert_eq!(ids(&ready), [("s3", 0)]);
    }
}
