//! Which open shard a user record goes to: the stream's hash-key ranges
//! from ListShards, and a record's hash key (the MD5 of its partition key
//! as a big-endian 128-bit integer, or its explicit hash key), as Kinesis
//! routes (API_PutRecord).

use std::sync::Arc;

use md5::{Digest, Md5};

/// The hash key a record is routed by; `None` for an explicit hash key
/// that is not a decimal in 0..2^128.
pub fn hash_key_of(partition_key: &str, explicit_hash_key: Option<&str>) -> Option<u128> {
    match explicit_hash_key {
        Some(text) => parse_explicit_hash_key(text),
        None => Some(md5_hash_key(partition_key)),
    }
}

/// An explicit hash key as Kinesis reads it (the model's `HashKey`
/// pattern `0|[1-9]\d{0,38}`, at most 2^128 - 1).
pub(crate) fn parse_explicit_hash_key(text: &str) -> Option<u128> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let canonical = text == "0" || !text.starts_with('0');
    (digits_only && canonical)
        .then(|| text.parse().ok())
        .flatten()
}

fn md5_hash_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// Slots of the [`KeyHashCache`]: a producer's working set of keys (the
/// users, devices or tenants it writes for) usually fits.
const KEY_HASH_SLOTS: usize = 4096;

/// Recently seen partition keys' hash keys, direct-mapped: a key put again
/// costs a short hash and a compare instead of an MD5, the largest cost of
/// a small user record after its aggregate's own MD5. A miss reuses the
/// slot's buffer, so unique keys cost no allocation either.
#[derive(Debug)]
pub(crate) struct KeyHashCache {
    slots: Vec<(String, u128)>,
    hasher: foldhash::fast::FixedState,
}

impl Default for KeyHashCache {
    fn default() -> KeyHashCache {
        KeyHashCache {
            slots: vec![(String::new(), 0); KEY_HASH_SLOTS],
            hasher: foldhash::fast::FixedState::with_seed(0x006b_706c),
        }
    }
}

impl KeyHashCache {
    /// The hash key of a (non-empty) partition key.
    pub(crate) fn of(&mut self, partition_key: &str) -> u128 {
        use std::hash::BuildHasher;
        let slot = self.hasher.hash_one(partition_key) as usize % KEY_HASH_SLOTS;
        let (key, hash) = &mut self.slots[slot];
        if key == partition_key && !key.is_empty() {
            return *hash;
        }
        *hash = md5_hash_key(partition_key);
        key.clear();
        key.push_str(partition_key);
        *hash
    }
}

/// The open shards of a stream, by the start of their hash-key ranges.
#[derive(Debug, Clone, Default)]
pub struct ShardMap {
    /// (starting hash key, ending hash key, shard id), sorted and disjoint.
    ranges: Vec<(u128, u128, Arc<str>)>,
}

impl ShardMap {
    /// A map of the given (start, end, id) ranges; closed shards are left
    /// out by the caller.
    pub fn new(mut ranges: Vec<(u128, u128, Arc<str>)>) -> ShardMap {
        ranges.sort_by_key(|r| r.0);
        ShardMap { ranges }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The shard whose range holds `hash_key`, as its index and id.
    pub fn route(&self, hash_key: u128) -> Option<(usize, &Arc<str>)> {
        let after = self.ranges.partition_point(|r| r.0 <= hash_key);
        let index = after.checked_sub(1)?;
        let (_, end, id) = &self.ranges[index];
        (hash_key <= *end).then_some((index, id))
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// The shard id at `index`.
    pub fn id(&self, index: usize) -> &Arc<str> {
        &self.ranges[index].2
    }

    pub fn contains(&self, shard_id: &str) -> bool {
        self.ranges.iter().any(|r| &*r.2 == shard_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_shards() -> ShardMap {
        let half = u128::MAX / 2;
        ShardMap::new(vec![
            (half + 1, u128::MAX, Arc::from("shardId-000000000001")),
            (0, half, Arc::from("shardId-000000000000")),
        ])
    }

    #[test]
    fn routes_by_the_md5_of_the_partition_key_or_the_explicit_hash_key() {
        let map = two_shards();
        // MD5("a") = 0cc175b9…: the lower half.
        let low = hash_key_of("a", None).unwrap();
        assert_eq!(low >> 120, 0x0c);
        assert_eq!(&**map.route(low).unwrap().1, "shardId-000000000000");
        let high = hash_key_of("a", Some("340282366920938463463374607431768211455")).unwrap();
        assert_eq!(high, u128::MAX);
        assert_eq!(&**map.route(high).unwrap().1, "shardId-000000000001");
        assert_eq!(map.route(0).unwrap().0, 0);
    }

    #[test]
    fn the_key_cache_answers_as_md5_does_for_repeated_and_colliding_keys() {
        let mut cache = KeyHashCache::default();
        for round in 0..3 {
            for i in 0..(KEY_HASH_SLOTS * 2) {
                let key = format!("key-{i}");
                assert_eq!(
                    cache.of(&key),
                    hash_key_of(&key, None).unwrap(),
                    "{key} round {round}"
                );
            }
        }
    }

    #[test]
    fn bad_explicit_hash_keys_and_gaps_route_nowhere() {
        for bad in [
            "",
            "-1",
            "01",
            "1e3",
            "340282366920938463463374607431768211456",
        ] {
            assert_eq!(hash_key_of("a", Some(bad)), None, "{bad}");
        }
        let map = ShardMap::new(vec![(10, 20, Arc::from("s"))]);
        assert!(map.route(5).is_none());
        assert!(map.route(21).is_none());
        assert!(map.route(15).is_some());
    }
}
