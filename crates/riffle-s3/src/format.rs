//! The on-disk formats: an object file (a header with the object's metadata, then its bytes),
//! a multipart upload's record and a bucket's record.
//!
//! **Object file** (`objects/<file name>` and, for parts, `uploads/<id>/part-NNNNN`):
//!
//! ```text
//! offset 0   4 bytes  magic "RS3O"
//! offset 4   u16 LE   format version (1)
//! offset 6   u32 LE   M, the length of the metadata
//! offset 10  M bytes  metadata: UTF-8 JSON of `ObjectMeta`
//!                     {"key", "size", "etag", "content_type",
//!                      "last_modified_ms", "user_metadata", "headers"}
//! offset 10+M         the object's `size` bytes, as uploaded
//! ```
//!
//! Metadata and data are one file so that one rename publishes both.
//!
//! **Upload record** (`uploads/<id>/upload.json`) and **bucket record**
//! (`bucket.json`): JSON objects with a `"version": 1` member.

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 4] = b"RS3O";
/// The object file format this version writes and reads.
pub const OBJECT_FORMAT_VERSION: u16 = 1;
const HEADER_PREFIX_LEN: usize = 10;
/// Metadata is bounded (a 1,024-byte key, 2 KB of user metadata, a few
/// headers); a larger length field means the file is not ours or is damaged.
const MAX_META_LEN: usize = 64 * 1024;
/// The record formats this version writes and reads.
pub const RECORD_VERSION: u32 = 1;

/// What S3 keeps about an object besides its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// The ETag without its quotes: the MD5 in hex, or `<md5 of md5s>-N`
    /// for a multipart upload.
    pub etag: String,
    pub content_type: Option<String>,
    pub last_modified_ms: u64,
    /// `x-amz-meta-*` headers, by their lower-case name without the prefix.
    #[serde(default)]
    pub user_metadata: BTreeMap<String, String>,
    /// The other headers S3 stores and returns (`Content-Encoding`,
    /// `Content-Disposition`, `Content-Language`, `Cache-Control`, `Expires`),
    /// by lower-case name.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The headers of an object file that precede its data.
pub fn encode_header(meta: &ObjectMeta) -> Vec<u8> {
    // Serializing a struct of strings, integers and string maps cannot fail.
    let json = serde_json::to_vec(meta).expect("ObjectMeta serializes");
    let mut out = Vec::with_capacity(HEADER_PREFIX_LEN + json.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&OBJECT_FORMAT_VERSION.to_le_bytes());
    // The metadata is far below 4 GiB (keys and user metadata are capped).
    out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&json);
    out
}

/// Why a header could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not an object file (bad magic)")]
    BadMagic,
    #[error(
        "object file format version {0} is not supported (this build reads {OBJECT_FORMAT_VERSION})"
    )]
    Version(u16),
    #[error("metadata length {0} is out of range")]
    MetaLength(usize),
    #[error("metadata is not valid: {0}")]
    Meta(#[from] serde_json::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads an object file's header; returns the metadata and the offset of
/// the data. `reader` is left at that offset.
pub fn read_header(reader: &mut impl Read) -> Result<(ObjectMeta, u64), FormatError> {
    let mut prefix = [0u8; HEADER_PREFIX_LEN];
    reader.read_exact(&mut prefix)?;
    if &prefix[..4] != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let version = u16::from_le_bytes([prefix[4], prefix[5]]);
    if version != OBJECT_FORMAT_VERSION {
        return Err(FormatError::Version(version));
    }
    let len = u32::from_le_bytes([prefix[6], prefix[7], prefix[8], prefix[9]]) as usize;
    if len > MAX_META_LEN {
        return Err(FormatError::MetaLength(len));
    }
    let mut json = vec![0u8; len];
    reader.read_exact(&mut json)?;
    let meta = serde_json::from_slice(&json)?;
    Ok((meta, (HEADER_PREFIX_LEN + len) as u64))
}

/// A multipart upload in progress: what the completed object will carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub version: u32,
    pub key: String,
    pub content_type: Option<String>,
    #[serde(default)]
    pub user_metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub initiated_ms: u64,
}

/// A bucket's creation date (a bucket directory made by hand has none and
/// shows its directory's modification time).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub version: u32,
    pub created_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ObjectMeta {
        ObjectMeta {
            key: "raw-data/2026/ünï code".into(),
            size: 5,
            etag: "5d41402abc4b2a76b9719d911017c592".into(),
            content_type: Some("text/plain".into()),
            last_modified_ms: 1_796_525_000_123,
            user_metadata: BTreeMap::from([("owner".into(), "firehose".into())]),
            headers: BTreeMap::from([("content-encoding".into(), "gzip".into())]),
        }
    }

    #[test]
    fn object_header_round_trips_and_points_at_the_data() {
        let mut file = encode_header(&sample());
        let header_len = file.len() as u64;
        file.extend_from_slice(b"hello");
        let mut reader = &file[..];
        let (meta, offset) = read_header(&mut reader).unwrap();
        assert_eq!(meta, sample());
        assert_eq!(offset, header_len);
        assert_eq!(reader, b"hello");
    }

    #[test]
    fn object_header_layout_is_magic_version_length_json() {
        let file = encode_header(&sample());
        assert_eq!(&file[..4], b"RS3O");
        assert_eq!(u16::from_le_bytes([file[4], file[5]]), 1);
        let len = u32::from_le_bytes([file[6], file[7], file[8], file[9]]) as usize;
        assert_eq!(file.len(), 10 + len);
        let json: serde_json::Value = serde_json::from_slice(&file[10..]).unwrap();
        assert_eq!(json["etag"], "5d41402abc4b2a76b9719d911017c592");
    }

    #[test]
    fn unknown_versions_and_foreign_files_are_refused() {
        let mut file = encode_header(&sample());
        file[4] = 2;
        assert!(matches!(
            read_header(&mut &file[..]),
            Err(FormatError::Version(2))
        ));
        assert!(matches!(
            read_header(&mut &b"PK\x03\x04 a zip file"[..]),
            Err(FormatError::BadMagic)
        ));
        let truncated = &encode_header(&sample())[..20];
        assert!(matches!(
            read_header(&mut &truncated[..]),
            Err(FormatError::Io(_))
        ));
    }

    #[test]
    fn records_round_trip_with_their_version() {
        let upload = UploadRecord {
            version: RECORD_VERSION,
            key: "k".into(),
            content_type: None,
            user_metadata: BTreeMap::new(),
            headers: BTreeMap::new(),
            initiated_ms: 7,
        };
        let json = serde_json::to_string(&upload).unwrap();
        assert!(json.contains("\"version\":1"));
        assert_eq!(serde_json::from_str::<UploadRecord>(&json).unwrap(), upload);
        let bucket = BucketRecord {
            version: RECORD_VERSION,
            created_ms: 9,
        };
        let json = serde_json::to_string(&bucket).unwrap();
        assert_eq!(serde_json::from_str::<BucketRecord>(&json).unwrap(), bucket);
    }
}
