//! Hash keys: the 128-bit space partition keys are mapped into, its even
//! split into shards at CreateStream, and the routing of a record to a shard.

use md5::{Digest, Md5};

/// An inclusive range of the hash-key space owned by one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashRange {
    pub start: u128,
    pub end: u128,
}

impl HashRange {
    pub fn contains(&self, key: u128) -> bool {
        self.start <= key && key <= self.end
    }
}

/// The hash key of a partition key: its MD5 digest read as a big-endian
/// 128-bit integer, as Kinesis does (PutRecord API reference: "Amazon
/// Kinesis Data Streams uses the partition key as input to a hash function
/// that maps the partition key ... to 128-bit integer values").
pub fn of_partition_key(partition_key: &[u8]) -> u128 {
    let digest: [u8; 16] = Md5::digest(partition_key).into();
    u128::from_be_bytes(digest)
}

/// Parses a decimal hash key (the model's `HashKey` pattern
/// `0|[1-9]\d{0,38}`). `None` when it is not such a string, or larger
/// than 2^128 - 1.
pub fn parse(text: &str) -> Option<u128> {
    if !matches_pattern(text) {
        return None;
    }
    text.parse::<u128>().ok()
}

/// Whether `text` matches the model's `HashKey` pattern `0|([1-9]\d{0,38})`.
pub fn matches_pattern(text: &str) -> bool {
    let bytes = text.as_bytes();
    match bytes {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.len() <= 38 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// Splits the whole space 0..=2^128-1 into `count` ranges as AWS does at
/// CreateStream: each range is floor(2^128 / count) keys wide and the last
/// one runs to the end of the space. For 2 shards this gives
/// 0..=2^127-1 and 2^127..=2^128-1.
pub fn split_evenly(count: u32) -> Vec<HashRange> {
    assert!(count > 0, "a stream has at least one shard");
    if count == 1 {
        return vec![HashRange {
            start: 0,
            end: u128::MAX,
        }];
    }
    let n = u128::from(count);
    // floor(2^128 / n) computed without 2^128: 2^128 = u128::MAX + 1.
    let step = u128::MAX / n + u128::from(u128::MAX % n == n - 1);
    (0..n)
        .map(|i| HashRange {
            start: step * i,
            end: if i + 1 == n {
                u128::MAX
            } else {
                step * (i + 1) - 1
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_shards_split_at_two_to_the_127_as_aws_does() {
        let ranges = split_evenly(2);
        assert_eq!(ranges[0].start, 0);
        assert_eq!(
            ranges[0].end.to_string(),
            "170141183460469231731687303715884105727"
        );
        assert_eq!(
            ranges[1].start.to_string(),
            "170141183460469231731687303715884105728"
        );
        assert_eq!(
            ranges[1].end.to_string(),
            "340282366920938463463374607431768211455"
        );
    }

    #[test]
    fn every_split_covers_the_space_without_gaps_or_overlaps() {
        for count in [1u32, 2, 3, 4, 5, 7, 10, 64, 199, 500] {
            let ranges = split_evenly(count);
            assert_eq!(ranges.len(), count as usize);
            assert_eq!(ranges[0].start, 0);
            assert_eq!(ranges.last().unwrap().end, u128::MAX);
            for pair in ranges.windows(2) {
                assert_eq!(pair[0].end + 1, pair[1].start, "count {count}");
            }
        }
    }

    #[test]
    fn three_shards_match_aws_boundaries() {
        let ranges = split_evenly(3);
        assert_eq!(
            ranges[0].end.to_string(),
            "113427455640312821154458202477256070484"
        );
        assert_eq!(
            ranges[1].start.to_string(),
            "113427455640312821154458202477256070485"
        );
        assert_eq!(
            ranges[2].start.to_string(),
            "226854911280625642308916404954512140970"
        );
    }

    #[test]
    fn partition_keys_hash_to_their_md5_big_endian() {
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(of_partition_key(b"a"), 0x0cc175b9c0f1b6a831c399e269772661);
    }

    #[test]
    fn explicit_hash_keys_follow_the_model_pattern() {
        assert_eq!(parse("0"), Some(0));
        assert_eq!(
            parse("340282366920938463463374607431768211455"),
            Some(u128::MAX)
        );
        for bad in [
            "",
            "01",
            "-1",
            "1.5",
            " 1",
            "340282366920938463463374607431768211456",
            "a",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert!(matches_pattern("340282366920938463463374607431768211456"));
        assert!(!matches_pattern(&"9".repeat(40)));
    }
}
