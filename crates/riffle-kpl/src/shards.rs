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
        Some(text) => {
            let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
            let canonical = text == "0" || !text.starts_with('0');
            (digits_only && canonical)
                .then(|| text.parse().ok())
                .flatten()
        }
        None => Some(u128::from_be_bytes(
            Md5::digest(partition_key.as_bytes()).into(),
        )),
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
