//! The delivery-stream catalog as stored in the [`riffle_log::MetaStore`].
//!
//! # Format
//!
//! Key `firehose/stream/<DeliveryStreamName>`, value a UTF-8 JSON object:
//!
//! ```text
//! {"v":1,                          format version; any other is refused
//!  "name":"orders-to-s3",
//!  "incarnation":1234,             random u64, new at every CreateDeliveryStream
//!  "created_ms":1795000000000,
//!  "updated_ms":null,              the last UpdateDestination
//!  "kind":"DirectPut",             or "KinesisStreamAsSource"
//!  "source":null,                  {"stream_arn":…,"role_arn":…,"start_ms":…}
//!  "throughput_hint_mb":null,      DirectPutSourceConfiguration's hint
//!  "status":"CREATING",            CREATING | DELETING (ACTIVE once `status_until_ms` passed)
//!  "status_until_ms":1795000000500,
//!  "version":1,                    VersionId; +1 at every UpdateDestination
//!  "destination":{…},              see `destination::S3Destination`; with an
//!                                  endpoint, its S3Configuration (the backup bucket)
//!  "endpoint":{"type":"HttpEndpoint",…},  see `endpoint::Endpoint` (HttpEndpoint,
//!                                  OpenSearch, Splunk, Redshift); absent for
//!                                  S3 destinations (and in catalogs written before it)
//!  "tags":{"team":"data"},
//!  "encryption":null}              {"key_type":…,"key_arn":…,"enabled":true,"until_ms":…}
//! ```
//!
//! Key `firehose/delivered/<incarnation as 16 hex digits>`: 8 bytes, the
//! little-endian sequence number of the first record of the stream's log
//! that is not yet delivered (all below it are in stored objects). Kept
//! apart from the definition so that delivery never rewrites it.
//! Key `firehose/backup-delivered/<incarnation as 16 hex digits>`: the same
//! for the backup of the source records, while S3BackupMode is `Enabled`.
//!
//! The records live in the log `firehose/<incarnation as 16 hex digits>`:
//! the incarnation keeps a recreated stream from ever seeing the records of
//! a deleted one, and names (which may be `..`) never become path segments.
//! The metadata store (redb) checksums and commits entries atomically, so
//! the format carries no checksum of its own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::destination::S3Destination;
use crate::endpoint::Endpoint;

/// The catalog format version this code writes and reads.
pub const CATALOG_VERSION: u32 = 1;
pub const STREAM_PREFIX: &str = "firehose/stream/";
const DELIVERED_PREFIX: &str = "firehose/delivered/";
const BACKUP_DELIVERED_PREFIX: &str = "firehose/backup-delivered/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    DirectPut,
    KinesisStreamAsSource,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DirectPut => "DirectPut",
            Kind::KinesisStreamAsSource => "KinesisStreamAsSource",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Creating,
    Deleting,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KinesisSource {
    pub stream_arn: String,
    pub role_arn: String,
    pub start_ms: i64,
}

/// Server-side encryption of the buffered records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// `AWS_OWNED_CMK` or `CUSTOMER_MANAGED_CMK`.
    pub key_type: String,
    pub key_arn: Option<String>,
    /// Started (true) or stopped (false); ENABLING/DISABLING until `until_ms`.
    pub enabled: bool,
    pub until_ms: i64,
}

impl Encryption {
    /// The storage engine's data key the records are sealed under: the
    /// customer's key ARN, or one key standing in for AWS's own.
    pub fn data_key_name(&self) -> &str {
        self.key_arn.as_deref().unwrap_or("aws/firehose")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRecord {
    pub v: u32,
    pub name: String,
    pub incarnation: u64,
    pub created_ms: i64,
    pub updated_ms: Option<i64>,
    pub kind: Kind,
    pub source: Option<KinesisSource>,
    pub throughput_hint_mb: Option<i32>,
    pub status: Status,
    pub status_until_ms: i64,
    pub version: u64,
    pub destination: S3Destination,
    /// A destination other than S3; `destination` is then its S3
    /// configuration. Absent from catalogs written before destinations
    /// other than S3 existed, which load as S3 destinations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    pub tags: BTreeMap<String, String>,
    pub encryption: Option<Encryption>,
}

#[derive(Debug, thiserror::Error)]
#[error("catalog entry {key} is corrupt: {reason}")]
pub struct CatalogError {
    pub key: String,
    pub reason: String,
}

impl StreamRecord {
    pub fn key(&self) -> String {
        format!("{STREAM_PREFIX}{}", self.name)
    }

    pub fn encode(&self) -> Vec<u8> {
        // A struct of strings, numbers and JSON values always serializes.
        serde_json::to_vec(self).expect("a StreamRecord serializes")
    }

    pub fn decode(key: &str, value: &[u8]) -> Result<StreamRecord, CatalogError> {
        let corrupt = |reason: String| CatalogError {
            key: key.to_owned(),
            reason,
        };
        let record: StreamRecord =
            serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
        if record.v != CATALOG_VERSION {
            return Err(corrupt(format!("unsupported version {}", record.v)));
        }
        Ok(record)
    }

    /// The log holding this stream's buffered records.
    pub fn log_name(&self) -> String {
        format!("firehose/{:016x}", self.incarnation)
    }

    pub fn delivered_key(&self) -> String {
        format!("{DELIVERED_PREFIX}{:016x}", self.incarnation)
    }

    /// The backup's delivered position (S3BackupMode `Enabled`), in the
    /// same form as [`StreamRecord::delivered_key`]'s; absent while the
    /// backup is disabled.
    pub fn backup_delivered_key(&self) -> String {
        format!("{BACKUP_DELIVERED_PREFIX}{:016x}", self.incarnation)
    }

    /// The status as of `now`: `CREATING` and the encryption changes end
    /// by the clock, so reads need no background task to see them.
    pub fn status_at(&self, now: i64) -> &'static str {
        match self.status {
            Status::Deleting => "DELETING",
            Status::Creating if now < self.status_until_ms => "CREATING",
            Status::Creating => "ACTIVE",
        }
    }
}

pub fn encode_delivered(next_seq: u64) -> Vec<u8> {
    next_seq.to_le_bytes().to_vec()
}

pub fn decode_delivered(key: &str, value: &[u8]) -> Result<u64, CatalogError> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| CatalogError {
        key: key.to_owned(),
        reason: format!("expected 8 bytes, found {}", value.len()),
    })?;
    Ok(u64::from_le_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destination::S3Input;

    fn record() -> StreamRecord {
        let input: S3Input = serde_json::from_str(
            r#"{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b"}"#,
        )
        .unwrap();
        StreamRecord {
            v: CATALOG_VERSION,
            name: "..".into(),
            incarnation: 0xfeed,
            created_ms: 1_795_000_000_000,
            updated_ms: Some(1_795_000_000_100),
            kind: Kind::KinesisStreamAsSource,
            source: Some(KinesisSource {
                stream_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s".into(),
                role_arn: "arn:aws:iam::000000000000:role/r".into(),
                start_ms: 1_795_000_000_000,
            }),
            throughput_hint_mb: None,
            status: Status::Creating,
            status_until_ms: 1_795_000_000_500,
            version: 3,
            destination: input.into_destination(true),
            endpoint: None,
            tags: [("team".to_owned(), "data".to_owned())].into(),
            encryption: Some(Encryption {
                key_type: "AWS_OWNED_CMK".into(),
                key_arn: None,
                enabled: true,
                until_ms: 0,
            }),
        }
    }

    #[test]
    fn records_round_trip() {
        let r = record();
        assert_eq!(StreamRecord::decode(&r.key(), &r.encode()).unwrap(), r);
        assert_eq!(r.log_name(), "firehose/000000000000feed");
        assert_eq!(decode_delivered("k", &encode_delivered(42)).unwrap(), 42);
    }

    #[test]
    fn an_endpoint_destination_round_trips_and_an_older_catalog_entry_still_loads() {
        let input: crate::http_endpoint::HttpInput = serde_json::from_str(
            r#"{"EndpointConfiguration":{"Url":"https://example.com/in","AccessKey":"k"},
                "RequestConfiguration":{"ContentEncoding":"GZIP","CommonAttributes":[{"AttributeName":"a","AttributeValue":"b"}]},
                "S3Configuration":{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::backup"}}"#,
        )
        .unwrap();
        let (http, s3) = input.into_destination();
        let mut r = record();
        r.destination = s3;
        r.endpoint = Some(Endpoint::Http(http));
        let encoded = r.encode();
        assert!(
            String::from_utf8_lossy(&encoded).contains(r#""endpoint":{"type":"HttpEndpoint","#),
            "{}",
            String::from_utf8_lossy(&encoded)
        );
        assert_eq!(StreamRecord::decode(&r.key(), &encoded).unwrap(), r);
        // What this version writes for an S3 destination is what the
        // version before endpoints wrote: no `endpoint` member.
        let s3_only = record();
        let value: serde_json::Value = serde_json::from_slice(&s3_only.encode()).unwrap();
        assert!(value.get("endpoint").is_none());
        // An entry written before endpoints existed loads as S3.
        let mut old = value;
        old.as_object_mut().unwrap().remove("endpoint");
        let loaded = StreamRecord::decode("k", &serde_json::to_vec(&old).unwrap()).unwrap();
        assert_eq!(loaded, s3_only);
    }

    #[test]
    fn other_versions_and_garbage_are_refused() {
        let mut r = record();
        r.v = 2;
        assert!(StreamRecord::decode("k", &r.encode()).is_err());
        assert!(StreamRecord::decode("k", b"{").is_err());
        assert!(decode_delivered("k", b"1234").is_err());
    }

    #[test]
    fn creating_turns_active_by_the_clock() {
        let r = record();
        assert_eq!(r.status_at(r.status_until_ms - 1), "CREATING");
        assert_eq!(r.status_at(r.status_until_ms), "ACTIVE");
    }
}
