//! The stream catalog as stored in the [`riffle_log::MetaStore`]: one entry
//! per stream, plus the shard-iterator signing key.
//!
//! # Format
//!
//! Key `kinesis/stream/<StreamName>`, value a UTF-8 JSON object:
//!
//! ```text
//! {"v":1,                        format version; any other is refused
//!  "name":"orders",
//!  "incarnation":1234,           random u64, new at every CreateStream
//!  "created_ms":1795000000000,
//!  "mode":"PROVISIONED",         or "ON_DEMAND"
//!  "retention_hours":24,
//!  "max_record_kib":1024,
//!  "status":"CREATING",          CREATING | ACTIVE | UPDATING | DELETING
//!  "status_until_ms":1795000000500,  when CREATING/UPDATING end, DELETING completes
//!  "shards":[{"index":0,"start_hash":"0","end_hash":"3402…455",
//!             "parent":null,"adjacent_parent":null,"created_ms":1795000000000,
//!             "closed":false}],
//!  "pending":{"close":[0],"open":[{"index":1,…},{"index":2,…}]},
//!  "settings":{"tags":{"team":"data"},
//!              "shard_level_metrics":["IncomingBytes"],
//!              "warm_throughput_mibps":10,
//!              "mode_switches_ms":[1795000000000],
//!              "shard_count_updates_ms":[1795000000000],
//!              "encryption_key_id":"alias/aws/kinesis",
//!              "resource_policy":"{\"Version\":…}"}}
//! ```
//!
//! `settings` (absent when all of its members are) holds what a user sets
//! and reads back: tags, the enhanced-monitoring metric names (in the
//! model's order), the warm throughput target, and when the capacity mode
//! was last switched (AWS allows two switches in 24 hours). Each member is absent when
//! empty, so entries written before it existed decode with none.
//!
//! `pending` (absent when there is none) is a reshard that was accepted
//! but not applied yet: the shards to close and the children to open. It
//! is written before any parent log is closed, so a restart in the middle
//! of a reshard finds it and finishes it (see `reshard`). Records written
//! before `pending` existed decode with none.
//!
//! Hash keys are decimal strings (128-bit numbers are not portable JSON
//! numbers). The metadata store (redb) checksums and commits entries
//! atomically, so the format carries no checksum of its own.
//!
//! Key `kinesis/iterator-key`: the 32 raw bytes of the HMAC key.
//!
//! Each shard's records live in the log `kinesis/<incarnation as 16 hex
//! digits>/<ShardId>`: the incarnation keeps a recreated stream from ever
//! seeing the logs of a deleted one, and stream names (which may be `..`)
//! never become path segments.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hashkey::HashRange;

/// The catalog format version this code writes and reads.
pub const CATALOG_VERSION: u32 = 1;
pub const STREAM_PREFIX: &str = "kinesis/stream/";
pub const ITERATOR_KEY: &str = "kinesis/iterator-key";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamMode {
    Provisioned,
    OnDemand,
}

impl StreamMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Creating,
    Active,
    Updating,
    Deleting,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "CREATING",
            Status::Active => "ACTIVE",
            Status::Updating => "UPDATING",
            Status::Deleting => "DELETING",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    pub v: u32,
    pub name: String,
    pub incarnation: u64,
    pub created_ms: i64,
    pub mode: StreamMode,
    pub retention_hours: u32,
    pub max_record_kib: u32,
    pub status: Status,
    pub status_until_ms: i64,
    pub shards: Vec<ShardRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Reshard>,
    #[serde(default, skip_serializing_if = "StreamSettings::is_empty")]
    pub settings: StreamSettings,
}

/// What a user sets on a stream and reads back unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamSettings {
    /// Tags by key (AddTagsToStream, TagResource, CreateStream's Tags).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Enhanced monitoring: shard-level metric names, in the model's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_level_metrics: Vec<String>,
    /// UpdateStreamWarmThroughput's target, in MiB/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_throughput_mibps: Option<u32>,
    /// When UpdateStreamMode last switched the mode (epoch ms, oldest
    /// first; only those within the last 24 hours are kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mode_switches_ms: Vec<i64>,
    /// When UpdateShardCount was called (epoch ms, oldest first; only those
    /// within the last 24 hours are kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_count_updates_ms: Vec<i64>,
    /// StartStreamEncryption's KMS KeyId while the stream is encrypted;
    /// it also names the storage engine's data key for the stream's records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key_id: Option<String>,
    /// PutResourcePolicy's document, as the text it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<String>,
}

impl StreamSettings {
    pub fn is_empty(&self) -> bool {
        *self == StreamSettings::default()
    }
}

/// A reshard in progress: close the shards `close`, then open `open`
/// (whose records name their parents). Shard indexes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reshard {
    pub close: Vec<u32>,
    pub open: Vec<ShardRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub index: u32,
    pub start_hash: String,
    pub end_hash: String,
    pub parent: Option<u32>,
    pub adjacent_parent: Option<u32>,
    pub created_ms: i64,
    pub closed: bool,
}

/// Why a catalog entry cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog entry {key} is not valid: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("catalog entry {key} has unsupported format version {found}")]
    UnsupportedVersion { key: String, found: u32 },
}

impl StreamRecord {
    pub fn key(&self) -> String {
        stream_key(&self.name)
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_vec(self).expect("a stream record always serializes")
    }

    pub fn decode(key: &str, bytes: &[u8]) -> Result<StreamRecord, CatalogError> {
        #[derive(Deserialize)]
        struct Versioned {
            v: u32,
        }
        let corrupt = |reason: String| CatalogError::Corrupt {
            key: key.to_owned(),
            reason,
        };
        let Versioned { v } = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        if v != CATALOG_VERSION {
            return Err(CatalogError::UnsupportedVersion {
                key: key.to_owned(),
                found: v,
            });
        }
        let record: StreamRecord =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        let pending = record.pending.iter().flat_map(|p| &p.open);
        for shard in record.shards.iter().chain(pending) {
            shard
                .range()
                .ok_or_else(|| corrupt(format!("shard {} has a bad hash range", shard.index)))?;
        }
        Ok(record)
    }

    /// The name of the log holding shard `index`'s records.
    pub fn log_name(&self, shard_id: &str) -> String {
        format!("kinesis/{:016x}/{shard_id}", self.incarnation)
    }
}

impl ShardRecord {
    pub fn range(&self) -> Option<HashRange> {
        let start = crate::hashkey::parse(&self.start_hash)?;
        let end = crate::hashkey::parse(&self.end_hash)?;
        (start <= end).then_some(HashRange { start, end })
    }
}

pub fn stream_key(name: &str) -> String {
    format!("{STREAM_PREFIX}{name}")
}

/// `shardId-000000000007`: AWS's shard ids, the index in 12 digits.
pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// The largest shard index a shard id can name: AWS reads the number as a
/// Java `int` (`Integer.parseInt`), so `2147483648` names no shard.
pub const SHARD_INDEX_MAX: u32 = i32::MAX as u32;

/// The index a client's shard id names, read as AWS reads it: the text
/// after the last `-` (all of it without one) as a decimal number, with
/// any prefix (`shardId-5`, `a-00002147483647`, `5` and `-5` all name a
/// shard) and any number of leading zeros, up to [`SHARD_INDEX_MAX`].
/// Anything else (`shardId-`, `2.14E4`, `2147483648`) names no shard, and
/// AWS then quotes the text as given; a shard id that parses is quoted in
/// its normal form ([`shard_id`]).
pub fn parse_shard_id(text: &str) -> Option<u32> {
    let digits = text.rsplit_once('-').map_or(text, |(_, n)| n);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    // Ten digits hold every int; more overflow whatever they are.
    if significant.len() > 10 {
        return None;
    }
    let n: u64 = significant.parse().unwrap_or(0);
    u32::try_from(n).ok().filter(|&n| n <= SHARD_INDEX_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StreamRecord {
        StreamRecord {
            v: CATALOG_VERSION,
            name: "orders".into(),
            incarnation: 0xABCD,
            created_ms: 1_795_000_000_000,
            mode: StreamMode::OnDemand,
            retention_hours: 24,
            max_record_kib: 1024,
            status: Status::Creating,
            status_until_ms: 1_795_000_000_500,
            shards: vec![ShardRecord {
                index: 0,
                start_hash: "0".into(),
                end_hash: u128::MAX.to_string(),
                parent: None,
                adjacent_parent: None,
                created_ms: 1_795_000_000_000,
                closed: false,
            }],
            pending: None,
            settings: StreamSettings::default(),
        }
    }

    #[test]
    fn records_round_trip() {
        let record = sample();
        assert_eq!(StreamRecord::decode("k", &record.encode()), Ok(record));
    }

    #[test]
    fn records_with_a_pending_reshard_round_trip_and_old_ones_have_none() {
        let mut record = sample();
        let child = ShardRecord {
            index: 1,
            parent: Some(0),
            ..record.shards[0].clone()
        };
        record.pending = Some(Reshard {
            close: vec![0],
            open: vec![child],
        });
        let bytes = record.encode();
        assert!(
            String::from_utf8_lossy(&bytes)
                .contains(r#""pending":{"close":[0],"open":[{"index":1,"#)
        );
        assert_eq!(StreamRecord::decode("k", &bytes), Ok(record));
        let text = String::from_utf8(sample().encode()).unwrap();
        assert!(!text.contains("pending"), "{text}");
    }

    #[test]
    fn settings_round_trip_and_old_entries_have_none() {
        let mut record = sample();
        let old = record.encode();
        assert!(!String::from_utf8_lossy(&old).contains("settings"));
        assert_eq!(
            StreamRecord::decode("k", &old).unwrap().settings,
            StreamSettings::default()
        );
        record.settings.tags.insert("team".into(), "data".into());
        record.settings.shard_level_metrics = vec!["IncomingBytes".into()];
        record.settings.warm_throughput_mibps = Some(10);
        record.settings.mode_switches_ms = vec![1_795_000_000_000];
        let text = String::from_utf8(record.encode()).unwrap();
        assert!(
            text.ends_with(
                r#""settings":{"tags":{"team":"data"},"shard_level_metrics":["IncomingBytes"],"warm_throughput_mibps":10,"mode_switches_ms":[1795000000000]}}"#
            ),
            "{text}"
        );
        assert_eq!(StreamRecord::decode("k", text.as_bytes()), Ok(record));
    }

    #[test]
    fn the_format_is_the_documented_json() {
        let text = String::from_utf8(sample().encode()).unwrap();
        assert!(
            text.starts_with(r#"{"v":1,"name":"orders","incarnation":43981,"#),
            "{text}"
        );
        assert!(text.contains(r#""mode":"ON_DEMAND""#) && text.contains(r#""status":"CREATING""#));
    }

    #[test]
    fn an_unknown_version_is_refused() {
        let text = String::from_utf8(sample().encode())
            .unwrap()
            .replacen(r#""v":1"#, r#""v":2"#, 1);
        assert_eq!(
            StreamRecord::decode("k", text.as_bytes()),
            Err(CatalogError::UnsupportedVersion {
                key: "k".into(),
                found: 2
            })
        );
    }

    #[test]
    fn corrupt_entries_are_refused() {
        let good = String::from_utf8(sample().encode()).unwrap();
        let cases = [
            good[..good.len() - 1].to_owned(),
            good.replace(r#""end_hash":"3"#, r#""end_hash":"x3"#),
            good.replace(r#""status":"CREATING""#, r#""status":"NOPE""#),
            "{}".to_owned(),
        ];
        for bad in cases {
            assert!(
                matches!(
                    StreamRecord::decode("k", bad.as_bytes()),
                    Err(CatalogError::Corrupt { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn shard_ids_have_twelve_digits_and_parse_as_aws_reads_them() {
        assert_eq!(shard_id(7), "shardId-000000000007");
        assert_eq!(shard_id(SHARD_INDEX_MAX), "shardId-002147483647");
        let good = [
            ("shardId-000000000007", 7),
            ("7", 7),
            ("shardId-5", 5),
            ("a-00002147483647", SHARD_INDEX_MAX),
            ("-00002147483647", SHARD_INDEX_MAX),
            ("2147483647", SHARD_INDEX_MAX),
            ("x-y-12", 12),
            ("shard-0", 0),
            ("0", 0),
            ("000", 0),
            // Leading zeros do not count towards the overflow.
            ("shardId-00000000000000000000000042", 42),
        ];
        for (text, index) in good {
            assert_eq!(parse_shard_id(text), Some(index), "{text}");
        }
        for bad in [
            "",
            "-",
            "shardId-",
            "shardId-x",
            "ABKLFD8",
            "2.14E4",
            "shardId-5a",
            "5-",
            "2147483648",
            "shardId-002147483648",
            "shardId-9999999999999",
            "4294967296",
            "99999999999999999999999999999",
        ] {
            assert_eq!(parse_shard_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn logs_are_named_by_incarnation_not_stream_name() {
        let record = StreamRecord {
            name: "..".into(),
            ..sample()
        };
        assert_eq!(
            record.log_name("shardId-000000000000"),
            "kinesis/000000000000abcd/shardId-000000000000"
        );
    }
}
