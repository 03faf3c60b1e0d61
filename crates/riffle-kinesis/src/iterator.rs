//! Shard iterators: opaque, tamper-evident tokens naming a position in one
//! shard of one stream incarnation, valid for a limited time.
//!
//! # Layout
//!
//! The token is the standard base64 (with padding) of:
//!
//! ```text
//! offset  size  field
//!  0       1    version, 1
//!  1       8    issued at, ms since the Unix epoch, i64 big-endian
//!  9       8    stream incarnation, u64 big-endian
//! 17       4    shard index, u32 big-endian
//! 21       8    position: the next Seq to read, u64 big-endian
//! 29       1    stream name length n (1..=128)
//! 30       n    stream name, UTF-8
//! 30+n    32    HMAC-SHA256 over bytes 0..30+n, keyed by the data
//!               directory's secret
//! ```
//!
//! At most 190 bytes, 256 base64 characters: within the model's 512.
//! Anything that does not decode, has another version, or fails the MAC is
//! refused as a whole; the caller reports `Invalid ShardIterator.`.

use base64_simd::STANDARD;
use hmac::{Hmac, Mac};
use riffle_log::Seq;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const HEADER_BYTES: usize = 30;
const MAC_BYTES: usize = 32;
/// The model's `StreamName` maximum length.
const NAME_BYTES_MAX: usize = 128;
/// The model's `ShardIterator` maximum length.
pub const ITERATOR_CHARS_MAX: usize = 512;
const _: () =
    assert!((HEADER_BYTES + NAME_BYTES_MAX + MAC_BYTES).div_ceil(3) * 4 <= ITERATOR_CHARS_MAX);

/// What a shard iterator says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardIterator {
    pub issued_ms: i64,
    pub incarnation: u64,
    pub shard_index: u32,
    pub position: Seq,
    pub stream: String,
}

/// The key iterators are signed with; one per data directory.
#[derive(Clone)]
pub struct IteratorKey([u8; 32]);

impl IteratorKey {
    pub fn new(bytes: [u8; 32]) -> IteratorKey {
        IteratorKey(bytes)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length.
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length")
    }
}

impl ShardIterator {
    /// The signed, base64 token.
    pub fn encode(&self, key: &IteratorKey) -> String {
        let name = self.stream.as_bytes();
        debug_assert!(!name.is_empty() && name.len() <= NAME_BYTES_MAX);
        let mut raw = Vec::with_capacity(HEADER_BYTES + name.len() + MAC_BYTES);
        raw.push(VERSION);
        raw.extend_from_slice(&self.issued_ms.to_be_bytes());
        raw.extend_from_slice(&self.incarnation.to_be_bytes());
        raw.extend_from_slice(&self.shard_index.to_be_bytes());
        raw.extend_from_slice(&self.position.to_be_bytes());
        raw.push(name.len() as u8);
        raw.extend_from_slice(name);
        let mut mac = key.mac();
        mac.update(&raw);
        raw.extend_from_slice(&mac.finalize().into_bytes());
        STANDARD.encode_to_string(&raw)
    }

    /// Checks and reads a token; `None` for anything not issued by this
    /// data directory (forged, corrupt, truncated, other version).
    pub fn decode(token: &str, key: &IteratorKey) -> Option<ShardIterator> {
        if token.len() > ITERATOR_CHARS_MAX {
            return None;
        }
        let raw = STANDARD.decode_to_vec(token).ok()?;
        if raw.len() < HEADER_BYTES + 1 + MAC_BYTES || raw[0] != VERSION {
            return None;
        }
        let name_len = usize::from(raw[29]);
        if raw.len() != HEADER_BYTES + name_len + MAC_BYTES {
            return None;
        }
        let (body, tag) = raw.split_at(HEADER_BYTES + name_len);
        let mut mac = key.mac();
        mac.update(body);
        mac.verify_slice(tag).ok()?;
        let u64_at = |at: usize| u64::from_be_bytes(body[at..at + 8].try_into().expect("8 bytes"));
        Some(ShardIterator {
            issued_ms: u64_at(1) as i64,
            incarnation: u64_at(9),
            shard_index: u32::from_be_bytes(body[17..21].try_into().expect("4 bytes")),
            position: u64_at(21),
            stream: String::from_utf8(body[HEADER_BYTES..].to_vec()).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> IteratorKey {
        IteratorKey::new([7; 32])
    }

    fn sample() -> ShardIterator {
        ShardIterator {
            issued_ms: 1_795_000_000_123,
            incarnation: 0xDEAD_BEEF_0123_4567,
            shard_index: 5,
            position: 99,
            stream: "orders.v2".into(),
        }
    }

    #[test]
    fn iterators_round_trip() {
        let token = sample().encode(&key());
        assert_eq!(ShardIterator::decode(&token, &key()), Some(sample()));
        let longest = ShardIterator {
            stream: "s".repeat(128),
            ..sample()
        };
        let token = longest.encode(&key());
        assert!(token.len() <= ITERATOR_CHARS_MAX);
        assert_eq!(ShardIterator::decode(&token, &key()), Some(longest));
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let raw = STANDARD.decode_to_vec(sample().encode(&key())).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x01;
            let token = STANDARD.encode_to_string(&bad);
            assert_eq!(ShardIterator::decode(&token, &key()), None, "byte {i}");
        }
    }

    #[test]
    fn another_key_truncation_or_garbage_is_refused() {
        let token = sample().encode(&key());
        assert_eq!(
            ShardIterator::decode(&token, &IteratorKey::new([8; 32])),
            None
        );
        assert_eq!(
            ShardIterator::decode(&token[..token.len() - 4], &key()),
            None
        );
        for garbage in [
            "",
            "AAAA",
            "====",
            "A===",
            "not base64 at all!",
            &"A".repeat(600),
        ] {
            assert_eq!(ShardIterator::decode(garbage, &key()), None, "{garbage}");
        }
    }

    #[test]
    fn an_unknown_version_is_refused_even_if_signed() {
        let mut raw = STANDARD.decode_to_vec(sample().encode(&key())).unwrap();
        raw.truncate(raw.len() - MAC_BYTES);
        raw[0] = 2;
        let mut mac = key().mac();
        mac.update(&raw);
        raw.extend_from_slice(&mac.finalize().into_bytes());
        assert_eq!(
            ShardIterator::decode(&STANDARD.encode_to_string(&raw), &key()),
            None
        );
    }
}
