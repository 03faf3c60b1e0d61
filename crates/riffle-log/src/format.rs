//! On-disk encodings: the store's `FORMAT` file, segment headers, batch
//! frames, index files and the `CLOSED` marker. Pure functions over byte
//! slices, so they can be round-trip tested and fuzzed without any I/O.
//!
//! All integers are little-endian. Every structure carries a CRC32C
//! (Castagnoli) so that a torn write or a flipped bit is detected, never
//! served.
//!
//! # Store file `FORMAT` (16 bytes)
//! ```text
//! 0        8           12          16
//! +--------+-----------+-----------+
//! | magic  | version   | crc32c    |   magic = "RFLSTORE", crc over bytes 0..12
//! +--------+-----------+-----------+
//! ```
//!
//! # Segment file `<first_seq:020>.seg`
//! A 32-byte header followed by batch frames, back to back:
//! ```text
//! 0        8         12         16          24        28         32
//! +--------+---------+----------+-----------+---------+----------+
//! | magic  | version | reserved | first_seq | crc32c  | reserved |  magic = "RFLSEGMT"
//! +--------+---------+----------+-----------+---------+----------+  crc over bytes 0..24
//! ```
//!
//! # Batch frame (one append; atomic because one CRC covers all of it)
//! ```text
//! 0      4        8           16           24      28         32
//! +------+--------+-----------+------------+-------+----------+-----------+
//! | len  | crc32c | first_seq | arrival_ms | count | reserved | records.. |
//! +------+--------+-----------+------------+-------+----------+-----------+
//!  len   = number of bytes after the crc field (24 + records)
//!  crc32c over bytes 8..8+len
//!
//! record: [pk_len u16][ehk_len u16, 0xFFFF = none][data_len u32][pk][ehk][data]
//! ```
//! The i-th record of a batch has sequence number `first_seq + i`; all share
//! `arrival_ms`. Bytes 28..32 are the batch's `flags` (zero in batches
//! written before encryption existed, so those still read unchanged); a
//! flag this version does not know is refused as corruption.
//!
//! # Encrypted batch frame (`flags` bit 0 = [`BATCH_FLAG_ENCRYPTED`])
//! ```text
//! 0      4        8           16           24      28      32       36      48               len+8-16  len+8
//! +------+--------+-----------+------------+-------+-------+--------+-------+-----------------+--------+
//! | len  | crc32c | first_seq | arrival_ms | count | flags | key_id | nonce | ciphertext ...  | tag    |
//! +------+--------+-----------+------------+-------+-------+--------+-------+-----------------+--------+
//!  ciphertext = AES-256-GCM(data key `key_id`, nonce, records as above)
//!  tag        = its 16-byte authentication tag; associated data = bytes 24..48
//! ```
//! The CRC still covers every stored byte (8..8+len), so damage is reported
//! as a checksum mismatch before any decryption is tried; the GCM tag then
//! also rejects a ciphertext rewritten together with its CRC. `count`,
//! `flags`, `key_id` and `nonce` are authenticated; `first_seq` and
//! `arrival_ms` are not (the writer assigns them after encryption), they are
//! covered by the CRC only. Nonces are 96 random bits per batch.
//!
//! # Wrapped data key (a metadata-store value under `riffle-log/data-key/<id:010>`)
//! ```text
//! 0         1       13                  61
//! +---------+-------+-------------------+--------------+
//! | version | nonce | wrapped key + tag | name (UTF-8) |   version = 1
//! +---------+-------+-------------------+--------------+
//! ```
//! The 32-byte data key is AES-256-GCM-encrypted under the master key, with
//! associated data `"riffle-log data key" ++ id (u32 LE) ++ name`, so a
//! wrapped key cannot be moved to another id or name unnoticed.
//!
//! # Index file `<first_seq:020>.idx` (written when a segment is sealed)
//! ```text
//! 0      8         12      16          24        32            40                48
//! +------+---------+-------+-----------+---------+-------------+-----------------+
//! |magic | version | count | first_seq | end_seq | segment_len | last_arrival_ms |
//! +------+---------+-------+-----------+---------+-------------+-----------------+
//! then `count` entries of 24 bytes: [seq u64][offset u64][arrival_ms i64]
//! then crc32c u32 over everything before it.          magic = "RFLINDEX"
//! ```
//! `end_seq` is one past the segment's last record; `last_arrival_ms` is
//! `i64::MIN` when the segment holds no record. Each entry points at the
//! start of a batch; entries are at least [`INDEX_INTERVAL_BYTES`] apart.
//!
//! # Closed marker `CLOSED` (12 bytes)
//! `[next_seq u64][crc32c u32 over bytes 0..8]`: the log was closed when its
//! next sequence number was `next_seq`.
//!
//! # Journal file `JOURNAL` (store-wide, see the `journal` module)
//! A 32-byte header, then entries back to back. The file is reused: a reset
//! writes a header with a new generation at offset 0 and the next entries
//! overwrite the old ones, so only entries of the header's generation count,
//! and replay stops at the first entry that is torn or of another one.
//! ```text
//! 0        8         12         16           24        28         32
//! +--------+---------+----------+------------+---------+----------+
//! | magic  | version | reserved | generation | crc32c  | reserved |  magic = "RFLJOURN"
//! +--------+---------+----------+------------+---------+----------+  crc over bytes 0..24
//! ```
//! Entry: batch frames written to one segment at one offset.
//! ```text
//! 0      4        8            16       24         26         28     28+path_len
//! +------+--------+------------+--------+----------+----------+------+---------+
//! | len  | crc32c | generation | offset | path_len | reserved | path | frames..|
//! +------+--------+------------+--------+----------+----------+------+---------+
//!  len   = number of bytes after the crc field (20 + path_len + frames)
//!  crc32c over bytes 8..8+len
//!  path  = "<log directory>/<segment file>" under `logs/`, UTF-8
//! ```

use crate::Seq;

/// Version of every file format in this module. Bumped on any change; files
/// with another version are refused with `LogError::UnsupportedVersion`.
pub const FORMAT_VERSION: u32 = 1;

pub const STORE_MAGIC: [u8; 8] = *b"RFLSTORE";
pub const STORE_FILE_LEN: usize = 16;

pub const SEGMENT_MAGIC: [u8; 8] = *b"RFLSEGMT";
pub const SEGMENT_HEADER_LEN: u64 = 32;

pub const BATCH_HEADER_LEN: usize = 32;
/// Bytes of a batch header covered by `len` (everything after the crc).
const BATCH_LEN_MIN: usize = BATCH_HEADER_LEN - 8;
pub const RECORD_HEADER_LEN: usize = 8;
/// Bit 0 of a batch's `flags`: its records are encrypted.
pub const BATCH_FLAG_ENCRYPTED: u32 = 1;
/// Length of an AES-GCM nonce and authentication tag.
pub const NONCE_LEN: usize = 12;
pub const TAG_LEN: usize = 16;
/// Where an encrypted batch's ciphertext starts: after `key_id` and `nonce`.
pub const ENCRYPTED_BODY_START: usize = BATCH_HEADER_LEN + 4 + NONCE_LEN;
/// The bytes of an encrypted batch that are authenticated (not encrypted).
const ENCRYPTION_AAD: std::ops::Range<usize> = 24..ENCRYPTED_BODY_START;
const EHK_NONE: u16 = u16::MAX;

/// The engine's own limits, wider than Kinesis's (the API layer enforces
/// the stream's limits: 256-byte keys, 1 MiB records, 5 MiB PutRecords).
/// A partition key's length is stored in a u16.
pub const PARTITION_KEY_BYTES_MAX: usize = u16::MAX as usize;
/// 0xFFFF is the "no explicit hash key" marker, so one less.
pub const EXPLICIT_HASH_KEY_BYTES_MAX: usize = u16::MAX as usize - 1;
/// Kinesis records carry 0 to 10 MiB of data (the issue's record limit).
pub const DATA_BYTES_MAX: usize = 10 * 1024 * 1024;
/// Caps one frame. Also bounds the allocation a bit-flipped `len` field can
/// cause when a frame is read back.
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;
const _: () = assert!(BATCH_BYTES_MAX <= u32::MAX as usize);
const _: () = assert!(DATA_BYTES_MAX + PARTITION_KEY_BYTES_MAX * 2 + 64 <= BATCH_BYTES_MAX);

pub const INDEX_MAGIC: [u8; 8] = *b"RFLINDEX";
pub const INDEX_HEADER_LEN: usize = 48;
pub const INDEX_ENTRY_LEN: usize = 24;
/// One sparse index entry per this many segment bytes: a lookup reads at most
/// about this much (plus one batch) past the entry it lands on.
pub const INDEX_INTERVAL_BYTES: u64 = 64 * 1024;

pub const CLOSED_FILE_LEN: usize = 12;

/// Why bytes failed to decode. `Short` means "not enough bytes yet" (a torn
/// tail when it happens at the end of a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Short,
    Corrupt(&'static str),
    Version(u32),
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    u64_at(b, at) as i64
}

// ---------------------------------------------------------------- FORMAT

pub fn encode_store_file() -> [u8; STORE_FILE_LEN] {
    let mut b = [0u8; STORE_FILE_LEN];
    b[..8].copy_from_slice(&STORE_MAGIC);
    b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32c::crc32c(&b[..12]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    b
}

pub fn decode_store_file(b: &[u8]) -> Result<(), DecodeError> {
    if b.len() != STORE_FILE_LEN {
        return Err(DecodeError::Corrupt(
            "store FORMAT file has the wrong length",
        ));
    }
    if b[..8] != STORE_MAGIC {
        return Err(DecodeError::Corrupt("bad magic in store FORMAT file"));
    }
    if crc32c::crc32c(&b[..12]) != u32_at(b, 12) {
        return Err(DecodeError::Corrupt(
            "checksum mismatch in store FORMAT file",
        ));
    }
    match u32_at(b, 8) {
        FORMAT_VERSION => Ok(()),
        other => Err(DecodeError::Version(other)),
    }
}

// ---------------------------------------------------------------- segment header

pub fn encode_segment_header(first_seq: Seq) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut b = [0u8; SEGMENT_HEADER_LEN as usize];
    b[..8].copy_from_slice(&SEGMENT_MAGIC);
    b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&b[..24]);
    b[24..28].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Returns the segment's first sequence number.
pub fn decode_segment_header(b: &[u8]) -> Result<Seq, DecodeError> {
    if b.len() < SEGMENT_HEADER_LEN as usize {
        return Err(DecodeError::Short);
    }
    if b[..8] != SEGMENT_MAGIC {
        return Err(DecodeError::Corrupt("bad segment magic"));
    }
    if crc32c::crc32c(&b[..24]) != u32_at(b, 24) {
        return Err(DecodeError::Corrupt("segment header checksum mismatch"));
    }
    match u32_at(b, 8) {
        FORMAT_VERSION => Ok(u64_at(b, 16)),
        other => Err(DecodeError::Version(other)),
    }
}

// ---------------------------------------------------------------- batches

/// One record as handed to the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub partition_key: &'a [u8],
    pub explicit_hash_key: Option<&'a [u8]>,
    pub data: &'a [u8],
}

/// Which field of a record or batch is over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub field: &'static str,
    pub len: usize,
    pub max: usize,
}

/// Encodes records into a complete frame whose `first_seq`, `arrival_ms`
/// and checksum are filled in later by [`seal_batch`] (the writer assigns
/// sequence numbers). This is the one copy of the caller's bytes.
pub fn encode_batch<'a, I>(records: I) -> Result<Vec<u8>, TooLarge>
where
    I: IntoIterator<Item = RecordRef<'a>> + Clone,
{
    encode_batch_at(records, BATCH_HEADER_LEN, 0)
}

/// Like [`encode_batch`], but lays out an encrypted frame: `flags`, `key_id`
/// and `nonce` are set and the records are still plaintext at
/// [`ENCRYPTED_BODY_START`], followed by room for the tag. The caller then
/// encrypts them in place through [`encrypted_parts`].
pub fn encode_batch_encrypted<'a, I>(
    records: I,
    key_id: u32,
    nonce: [u8; NONCE_LEN],
) -> Result<Vec<u8>, TooLarge>
where
    I: IntoIterator<Item = RecordRef<'a>> + Clone,
{
    let mut buf = encode_batch_at(records, ENCRYPTED_BODY_START, TAG_LEN)?;
    buf[28..32].copy_from_slice(&BATCH_FLAG_ENCRYPTED.to_le_bytes());
    buf[32..36].copy_from_slice(&key_id.to_le_bytes());
    buf[36..ENCRYPTED_BODY_START].copy_from_slice(&nonce);
    Ok(buf)
}

/// The parts of an encrypted frame built by [`encode_batch_encrypted`]:
/// `(associated data, records to encrypt in place, tag to fill in)`.
pub fn encrypted_parts(frame: &mut [u8]) -> (&[u8], &mut [u8], &mut [u8]) {
    let (head, rest) = frame.split_at_mut(ENCRYPTED_BODY_START);
    let body_len = rest.len() - TAG_LEN;
    let (body, tag) = rest.split_at_mut(body_len);
    (&head[ENCRYPTION_AAD], body, tag)
}

/// Encodes records at `prefix` (the header's length) with `suffix` spare
/// bytes after them.
fn encode_batch_at<'a, I>(records: I, prefix: usize, suffix: usize) -> Result<Vec<u8>, TooLarge>
where
    I: IntoIterator<Item = RecordRef<'a>> + Clone,
{
    let mut total = prefix + suffix;
    let mut count = 0usize;
    for r in records.clone() {
        check_len(
            "partition_key",
            r.partition_key.len(),
            PARTITION_KEY_BYTES_MAX,
        )?;
        let ehk = r.explicit_hash_key.map_or(0, <[u8]>::len);
        check_len("explicit_hash_key", ehk, EXPLICIT_HASH_KEY_BYTES_MAX)?;
        check_len("data", r.data.len(), DATA_BYTES_MAX)?;
        total += RECORD_HEADER_LEN + r.partition_key.len() + ehk + r.data.len();
        count += 1;
        check_len("batch", total, BATCH_BYTES_MAX)?;
    }
    let mut buf = Vec::with_capacity(total);
    buf.resize(prefix, 0);
    buf[24..28].copy_from_slice(&(count as u32).to_le_bytes());
    for r in records {
        // Lengths were checked against u16/u32-sized limits above.
        buf.extend_from_slice(&(r.partition_key.len() as u16).to_le_bytes());
        let ehk_len = r.explicit_hash_key.map_or(EHK_NONE, |k| k.len() as u16);
        buf.extend_from_slice(&ehk_len.to_le_bytes());
        buf.extend_from_slice(&(r.data.len() as u32).to_le_bytes());
        buf.extend_from_slice(r.partition_key);
        buf.extend_from_slice(r.explicit_hash_key.unwrap_or_default());
        buf.extend_from_slice(r.data);
    }
    buf.resize(total, 0);
    let len = (total - 8) as u32;
    buf[0..4].copy_from_slice(&len.to_le_bytes());
    Ok(buf)
}

fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), TooLarge> {
    if len > max {
        Err(TooLarge { field, len, max })
    } else {
        Ok(())
    }
}

/// Number of records in a frame built by [`encode_batch`].
pub fn batch_count(frame: &[u8]) -> u32 {
    u32_at(frame, 24)
}

/// Stamps the sequence number and arrival time into a frame and computes its
/// checksum. After this the frame is ready to be written.
pub fn seal_batch(frame: &mut [u8], first_seq: Seq, arrival_ms: i64) {
    frame[8..16].copy_from_slice(&first_seq.to_le_bytes());
    frame[16..24].copy_from_slice(&arrival_ms.to_le_bytes());
    let crc = crc32c::crc32c(&frame[8..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Total frame length announced by the 4 bytes at the start of `b`
/// (`b.len() >= 4`), validated against the format's bounds.
pub fn frame_len(b: &[u8]) -> Result<usize, DecodeError> {
    if b.len() < 4 {
        return Err(DecodeError::Short);
    }
    let len = u32_at(b, 0) as usize;
    if len < BATCH_LEN_MIN {
        return Err(DecodeError::Corrupt("batch length below the header size"));
    }
    if len + 8 > BATCH_BYTES_MAX {
        return Err(DecodeError::Corrupt("batch length above the maximum"));
    }
    Ok(len + 8)
}

/// How an encrypted batch was encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encryption {
    pub key_id: u32,
    pub nonce: [u8; NONCE_LEN],
}

/// A verified batch: its checksum matched and, unless it is encrypted, its
/// records exactly fill it (an encrypted batch's records are checked by
/// [`decrypted_records`] once decrypted).
#[derive(Debug, Clone, Copy)]
pub struct BatchView<'a> {
    pub first_seq: Seq,
    pub arrival_ms: i64,
    pub count: u32,
    /// The whole frame.
    pub frame: &'a [u8],
    pub encryption: Option<Encryption>,
}

/// Decodes and verifies the frame at the start of `b`. Returns the batch and
/// its total length. Never panics, whatever the bytes.
pub fn decode_batch(b: &[u8]) -> Result<BatchView<'_>, DecodeError> {
    let total = frame_len(b)?;
    if b.len() < total {
        return Err(DecodeError::Short);
    }
    let frame = &b[..total];
    if crc32c::crc32c(&frame[8..]) != u32_at(frame, 4) {
        return Err(DecodeError::Corrupt("batch checksum mismatch"));
    }
    let count = u32_at(frame, 24);
    let mut view = BatchView {
        first_seq: u64_at(frame, 8),
        arrival_ms: i64_at(frame, 16),
        count,
        frame,
        encryption: None,
    };
    if view.first_seq.checked_add(u64::from(count)).is_none() {
        return Err(DecodeError::Corrupt("batch sequence number overflows"));
    }
    match u32_at(frame, 28) {
        0 => {}
        BATCH_FLAG_ENCRYPTED => {
            let body = total.checked_sub(ENCRYPTED_BODY_START + TAG_LEN);
            if body.is_none_or(|n| n < count as usize * RECORD_HEADER_LEN) {
                return Err(DecodeError::Corrupt(
                    "encrypted batch too short for its record count",
                ));
            }
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&frame[36..ENCRYPTED_BODY_START]);
            view.encryption = Some(Encryption {
                key_id: u32_at(frame, 32),
                nonce,
            });
            return Ok(view);
        }
        _ => return Err(DecodeError::Corrupt("unknown batch flags")),
    }
    check_records(frame, BATCH_HEADER_LEN, count)?;
    Ok(view)
}

/// Checks that `count` records starting at `pos` exactly fill `bytes`.
fn check_records(bytes: &[u8], pos: usize, count: u32) -> Result<(), DecodeError> {
    let mut it = RecordIter {
        frame: bytes,
        pos,
        left: count,
    };
    let mut seen = 0u32;
    while let Some(r) = it.next_checked() {
        r?;
        seen += 1;
    }
    if seen != count || it.pos != bytes.len() {
        return Err(DecodeError::Corrupt(
            "batch record count does not match its length",
        ));
    }
    Ok(())
}

/// The records of a decrypted batch body, verified to fill it exactly.
pub fn decrypted_records(plain: &[u8], count: u32) -> Result<RecordIter<'_>, DecodeError> {
    check_records(plain, 0, count)?;
    Ok(RecordIter {
        frame: plain,
        pos: 0,
        left: count,
    })
}

impl<'a> BatchView<'a> {
    pub fn len(&self) -> usize {
        self.frame.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// One past the batch's last sequence number.
    pub fn end_seq(&self) -> Seq {
        self.first_seq + u64::from(self.count)
    }

    /// The records of a plaintext batch. An encrypted batch yields none:
    /// decrypt [`BatchView::ciphertext`] and use [`decrypted_records`].
    pub fn records(&self) -> RecordIter<'a> {
        RecordIter {
            frame: self.frame,
            pos: BATCH_HEADER_LEN,
            left: if self.encryption.is_some() {
                0
            } else {
                self.count
            },
        }
    }

    /// Of an encrypted batch: `(associated data, ciphertext, tag)`.
    pub fn ciphertext(&self) -> (&'a [u8], &'a [u8], &'a [u8]) {
        let f = self.frame;
        let tag_at = f.len() - TAG_LEN;
        (
            &f[ENCRYPTION_AAD],
            &f[ENCRYPTED_BODY_START..tag_at],
            &f[tag_at..],
        )
    }
}

/// Walks the records of a frame. On a verified [`BatchView`] every step
/// succeeds.
pub struct RecordIter<'a> {
    frame: &'a [u8],
    pos: usize,
    left: u32,
}

impl<'a> RecordIter<'a> {
    fn next_checked(&mut self) -> Option<Result<RecordRef<'a>, DecodeError>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let bad = DecodeError::Corrupt("record runs past the end of its batch");
        let f = self.frame;
        let Some(head) = f.get(self.pos..self.pos + RECORD_HEADER_LEN) else {
            self.left = 0;
            return Some(Err(bad));
        };
        let pk_len = u16_at(head, 0) as usize;
        let ehk_raw = u16_at(head, 2);
        let ehk_len = if ehk_raw == EHK_NONE {
            0
        } else {
            ehk_raw as usize
        };
        let data_len = u32_at(head, 4) as usize;
        let start = self.pos + RECORD_HEADER_LEN;
        let end = start + pk_len + ehk_len + data_len;
        if end > f.len() {
            self.left = 0;
            return Some(Err(bad));
        }
        let pk = &f[start..start + pk_len];
        let ehk = (ehk_raw != EHK_NONE).then(|| &f[start + pk_len..start + pk_len + ehk_len]);
        let data = &f[start + pk_len + ehk_len..end];
        self.pos = end;
        Some(Ok(RecordRef {
            partition_key: pk,
            explicit_hash_key: ehk,
            data,
        }))
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = RecordRef<'a>;

    fn next(&mut self) -> Option<RecordRef<'a>> {
        // A verified batch cannot fail here; an unverified one just ends.
        self.next_checked().and_then(Result::ok)
    }
}

// ---------------------------------------------------------------- index

/// One sparse index entry: the batch starting at `offset` has first sequence
/// number `seq` and arrival time `arrival_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    pub seq: Seq,
    pub offset: u64,
    pub arrival_ms: i64,
}

/// Everything an index file records about a sealed segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIndex {
    pub first_seq: Seq,
    pub end_seq: Seq,
    pub segment_len: u64,
    pub last_arrival_ms: Option<i64>,
    pub entries: Vec<IndexEntry>,
}

pub fn encode_index(ix: &SegmentIndex) -> Vec<u8> {
    let mut b = Vec::with_capacity(INDEX_HEADER_LEN + ix.entries.len() * INDEX_ENTRY_LEN + 4);
    b.extend_from_slice(&INDEX_MAGIC);
    b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    b.extend_from_slice(&(ix.entries.len() as u32).to_le_bytes());
    b.extend_from_slice(&ix.first_seq.to_le_bytes());
    b.extend_from_slice(&ix.end_seq.to_le_bytes());
    b.extend_from_slice(&ix.segment_len.to_le_bytes());
    b.extend_from_slice(&ix.last_arrival_ms.unwrap_or(i64::MIN).to_le_bytes());
    for e in &ix.entries {
        b.extend_from_slice(&e.seq.to_le_bytes());
        b.extend_from_slice(&e.offset.to_le_bytes());
        b.extend_from_slice(&e.arrival_ms.to_le_bytes());
    }
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

pub fn decode_index(b: &[u8]) -> Result<SegmentIndex, DecodeError> {
    if b.len() < INDEX_HEADER_LEN + 4 {
        return Err(DecodeError::Short);
    }
    if b[..8] != INDEX_MAGIC {
        return Err(DecodeError::Corrupt("bad index magic"));
    }
    let count = u32_at(b, 12) as usize;
    let expected = count
        .checked_mul(INDEX_ENTRY_LEN)
        .and_then(|n| n.checked_add(INDEX_HEADER_LEN + 4));
    if expected != Some(b.len()) {
        return Err(DecodeError::Corrupt(
            "index length does not match its entry count",
        ));
    }
    let body = b.len() - 4;
    if crc32c::crc32c(&b[..body]) != u32_at(b, body) {
        return Err(DecodeError::Corrupt("index checksum mismatch"));
    }
    let version = u32_at(b, 8);
    if version != FORMAT_VERSION {
        return Err(DecodeError::Version(version));
    }
    let last = i64_at(b, 40);
    let entries = (0..count)
        .map(|i| {
            let at = INDEX_HEADER_LEN + i * INDEX_ENTRY_LEN;
            IndexEntry {
                seq: u64_at(b, at),
                offset: u64_at(b, at + 8),
                arrival_ms: i64_at(b, at + 16),
            }
        })
        .collect();
    Ok(SegmentIndex {
        first_seq: u64_at(b, 16),
        end_seq: u64_at(b, 24),
        segment_len: u64_at(b, 32),
        last_arrival_ms: (last != i64::MIN).then_some(last),
        entries,
    })
}

// ---------------------------------------------------------------- CLOSED

pub fn encode_closed(next_seq: Seq) -> [u8; CLOSED_FILE_LEN] {
    let mut b = [0u8; CLOSED_FILE_LEN];
    b[..8].copy_from_slice(&next_seq.to_le_bytes());
    let crc = crc32c::crc32c(&b[..8]);
    b[8..12].copy_from_slice(&crc.to_le_bytes());
    b
}

pub fn decode_closed(b: &[u8]) -> Result<Seq, DecodeError> {
    if b.len() != CLOSED_FILE_LEN {
        return Err(DecodeError::Corrupt("CLOSED marker has the wrong length"));
    }
    if crc32c::crc32c(&b[..8]) != u32_at(b, 8) {
        return Err(DecodeError::Corrupt("CLOSED marker checksum mismatch"));
    }
    Ok(u64_at(b, 0))
}

// ---------------------------------------------------------------- journal

pub const JOURNAL_MAGIC: [u8; 8] = *b"RFLJOURN";
pub const JOURNAL_HEADER_LEN: usize = 32;
pub const JOURNAL_ENTRY_HEADER_LEN: usize = 28;
/// Bytes of an entry header covered by `len` (everything after the crc).
const JOURNAL_ENTRY_LEN_MIN: usize = JOURNAL_ENTRY_HEADER_LEN - 8;

pub fn encode_journal_header(generation: u64) -> [u8; JOURNAL_HEADER_LEN] {
    let mut b = [0u8; JOURNAL_HEADER_LEN];
    b[..8].copy_from_slice(&JOURNAL_MAGIC);
    b[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    b[16..24].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32c::crc32c(&b[..24]);
    b[24..28].copy_from_slice(&crc.to_le_bytes());
    b
}

/// Returns the journal's generation.
pub fn decode_journal_header(b: &[u8]) -> Result<u64, DecodeError> {
    if b.len() < JOURNAL_HEADER_LEN {
        return Err(DecodeError::Short);
    }
    if b[..8] != JOURNAL_MAGIC {
        return Err(DecodeError::Corrupt("bad journal magic"));
    }
    if crc32c::crc32c(&b[..24]) != u32_at(b, 24) {
        return Err(DecodeError::Corrupt("journal header checksum mismatch"));
    }
    match u32_at(b, 8) {
        FORMAT_VERSION => Ok(u64_at(b, 16)),
        other => Err(DecodeError::Version(other)),
    }
}

/// Appends one journal entry to `buf`: `frames` (sealed batch frames, back
/// to back in the segment) go to `path` at `offset`. `path` is at most
/// `u16::MAX` bytes (log names are far shorter).
pub fn append_journal_entry(
    buf: &mut Vec<u8>,
    generation: u64,
    path: &[u8],
    offset: u64,
    frames: &[Vec<u8>],
) {
    let start = buf.len();
    let frames_len: usize = frames.iter().map(Vec::len).sum();
    let len = JOURNAL_ENTRY_LEN_MIN + path.len() + frames_len;
    buf.reserve(len + 8);
    // The entry's length is bounded by the round it journals (far below 4 GiB).
    buf.extend_from_slice(&(len as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]);
    buf.extend_from_slice(&generation.to_le_bytes());
    buf.extend_from_slice(&offset.to_le_bytes());
    buf.extend_from_slice(&(path.len() as u16).to_le_bytes());
    buf.extend_from_slice(&[0; 2]);
    buf.extend_from_slice(path);
    for f in frames {
        buf.extend_from_slice(f);
    }
    let crc = crc32c::crc32c(&buf[start + 8..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A verified journal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalEntry<'a> {
    pub generation: u64,
    pub offset: u64,
    pub path: &'a [u8],
    /// The batch frames, back to back, exactly as in the segment.
    pub frames: &'a [u8],
}

/// Decodes and verifies the entry at the start of `b`; returns it and its
/// total length. Never panics, whatever the bytes.
pub fn decode_journal_entry(b: &[u8]) -> Result<(JournalEntry<'_>, usize), DecodeError> {
    if b.len() < JOURNAL_ENTRY_HEADER_LEN {
        return Err(DecodeError::Short);
    }
    let len = u32_at(b, 0) as usize;
    if len < JOURNAL_ENTRY_LEN_MIN {
        return Err(DecodeError::Corrupt(
            "journal entry length below its header",
        ));
    }
    let total = len + 8;
    if b.len() < total {
        return Err(DecodeError::Short);
    }
    if crc32c::crc32c(&b[8..total]) != u32_at(b, 4) {
        return Err(DecodeError::Corrupt("journal entry checksum mismatch"));
    }
    let path_len = u16_at(b, 24) as usize;
    let path_end = JOURNAL_ENTRY_HEADER_LEN + path_len;
    if path_end > total {
        return Err(DecodeError::Corrupt("journal entry path runs past its end"));
    }
    let entry = JournalEntry {
        generation: u64_at(b, 8),
        offset: u64_at(b, 16),
        path: &b[JOURNAL_ENTRY_HEADER_LEN..path_end],
        frames: &b[path_end..total],
    };
    Ok((entry, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec<'a>(pk: &'a [u8], ehk: Option<&'a [u8]>, data: &'a [u8]) -> RecordRef<'a> {
        RecordRef {
            partition_key: pk,
            explicit_hash_key: ehk,
            data,
        }
    }

    fn sample_frame() -> Vec<u8> {
        let recs = [
            rec(b"k1", None, b"hello"),
            rec(b"key-2", Some(b"123"), b""),
            rec(b"k", Some(b""), &[7; 300]),
        ];
        let mut f = encode_batch(recs.iter().copied()).unwrap();
        seal_batch(&mut f, 42, 1_700_000_000_000);
        f
    }

    #[test]
    fn batch_round_trips_every_field() {
        let f = sample_frame();
        let b = decode_batch(&f).unwrap();
        assert_eq!(
            (b.first_seq, b.arrival_ms, b.count, b.len()),
            (42, 1_700_000_000_000, 3, f.len())
        );
        let got: Vec<_> = b.records().collect();
        assert_eq!(got[0], rec(b"k1", None, b"hello"));
        assert_eq!(got[1], rec(b"key-2", Some(b"123"), b""));
        assert_eq!(got[2], rec(b"k", Some(b""), &[7; 300]));
        assert_eq!(b.end_seq(), 45);
    }

    /// An encrypted frame as the engine lays it out; the "encryption" here
    /// is a reversible stand-in (XOR), because this module is pure layout.
    fn sample_encrypted_frame() -> Vec<u8> {
        let recs = [rec(b"k1", None, b"hello"), rec(b"k2", Some(b"9"), b"")];
        let mut f = encode_batch_encrypted(recs.iter().copied(), 7, [3; NONCE_LEN]).unwrap();
        let (aad, body, tag) = encrypted_parts(&mut f);
        assert_eq!(aad.len(), 24);
        body.iter_mut().for_each(|b| *b ^= 0x5a);
        tag.copy_from_slice(&[9; TAG_LEN]);
        seal_batch(&mut f, 10, 5);
        f
    }

    #[test]
    fn encrypted_batch_round_trips_with_the_documented_layout() {
        let f = sample_encrypted_frame();
        let b = decode_batch(&f).unwrap();
        assert_eq!((b.first_seq, b.arrival_ms, b.count), (10, 5, 2));
        let enc = b.encryption.unwrap();
        assert_eq!((enc.key_id, enc.nonce), (7, [3; NONCE_LEN]));
        assert_eq!(u32_at(&f, 28), BATCH_FLAG_ENCRYPTED);
        assert_eq!(u32_at(&f, 32), 7);
        assert_eq!(&f[36..48], &[3; NONCE_LEN]);
        assert_eq!(&f[f.len() - TAG_LEN..], &[9; TAG_LEN]);
        // No plaintext records are visible through the view.
        assert_eq!(b.records().count(), 0);
        let (aad, body, tag) = b.ciphertext();
        assert_eq!(aad, &f[24..48]);
        assert_eq!(tag, &[9; TAG_LEN]);
        let plain: Vec<u8> = body.iter().map(|b| b ^ 0x5a).collect();
        let got: Vec<_> = decrypted_records(&plain, b.count).unwrap().collect();
        assert_eq!(
            got,
            [rec(b"k1", None, b"hello"), rec(b"k2", Some(b"9"), b"")]
        );
        assert!(decrypted_records(&plain, 3).is_err());
        assert!(decrypted_records(&plain[1..], 2).is_err());
    }

    #[test]
    fn every_single_bit_flip_in_an_encrypted_batch_is_detected() {
        let f = sample_encrypted_frame();
        for bit in 0..f.len() * 8 {
            let mut g = f.clone();
            g[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_batch(&g).is_err(), "bit {bit} flip not detected");
        }
    }

    #[test]
    fn unknown_batch_flags_are_refused() {
        let mut f = sample_frame();
        f[28] = 2;
        seal_batch(&mut f, 42, 1);
        assert_eq!(
            decode_batch(&f).unwrap_err(),
            DecodeError::Corrupt("unknown batch flags")
        );
    }

    #[test]
    fn batch_layout_matches_the_documented_offsets() {
        let f = sample_frame();
        assert_eq!(u32_at(&f, 0) as usize, f.len() - 8);
        assert_eq!(u32_at(&f, 4), crc32c::crc32c(&f[8..]));
        assert_eq!(u64_at(&f, 8), 42);
        assert_eq!(u32_at(&f, 24), 3);
        assert_eq!(u16_at(&f, 32), 2);
        assert_eq!(u16_at(&f, 34), EHK_NONE);
        assert_eq!(u32_at(&f, 36), 5);
        assert_eq!(&f[40..42], b"k1");
    }

    #[test]
    fn every_single_bit_flip_in_a_batch_is_detected() {
        let f = sample_frame();
        for i in 0..f.len() * 8 {
            let mut g = f.clone();
            g[i / 8] ^= 1 << (i % 8);
            assert!(decode_batch(&g).is_err(), "flip of bit {i} went unnoticed");
        }
    }

    #[test]
    fn every_truncation_of_a_batch_is_short_or_corrupt() {
        let f = sample_frame();
        for n in 0..f.len() {
            assert!(
                decode_batch(&f[..n]).is_err(),
                "truncation to {n} bytes decoded"
            );
        }
    }

    #[test]
    fn oversized_fields_are_refused_at_encode() {
        let big = vec![0u8; PARTITION_KEY_BYTES_MAX + 1];
        let e = encode_batch([rec(&big, None, b"")]).unwrap_err();
        assert_eq!(e.field, "partition_key");
        let data = vec![0u8; DATA_BYTES_MAX + 1];
        assert_eq!(
            encode_batch([rec(b"k", None, &data)]).unwrap_err().field,
            "data"
        );
    }

    #[test]
    fn empty_batch_round_trips() {
        let mut f = encode_batch(std::iter::empty()).unwrap();
        seal_batch(&mut f, 9, 5);
        let b = decode_batch(&f).unwrap();
        assert_eq!((b.count, b.first_seq, b.records().count()), (0, 9, 0));
    }

    #[test]
    fn random_bytes_never_panic_the_decoder() {
        // A small xorshift generator: deterministic, no extra dependency.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let base = sample_frame();
        for _ in 0..20_000 {
            let mut g = base.clone();
            let n = (next() % 6) as usize;
            for _ in 0..n {
                let i = (next() as usize) % g.len();
                g[i] = next() as u8;
            }
            g.truncate((next() as usize) % (g.len() + 1));
            let _ = decode_batch(&g);
            let _ = decode_index(&g);
            let _ = decode_segment_header(&g);
            let r: Vec<u8> = (0..(next() % 200)).map(|_| next() as u8).collect();
            let _ = decode_batch(&r);
        }
    }

    #[test]
    fn segment_header_round_trips_and_refuses_other_versions() {
        let h = encode_segment_header(123_456);
        assert_eq!(decode_segment_header(&h), Ok(123_456));
        let mut v = h;
        v[8..12].copy_from_slice(&2u32.to_le_bytes());
        let crc = crc32c::crc32c(&v[..24]);
        v[24..28].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_segment_header(&v), Err(DecodeError::Version(2)));
        let mut c = h;
        c[17] ^= 1;
        assert!(matches!(
            decode_segment_header(&c),
            Err(DecodeError::Corrupt(_))
        ));
        assert_eq!(decode_segment_header(&h[..10]), Err(DecodeError::Short));
    }

    #[test]
    fn store_file_round_trips_and_refuses_other_versions() {
        let f = encode_store_file();
        assert_eq!(decode_store_file(&f), Ok(()));
        let mut v = f;
        v[8..12].copy_from_slice(&7u32.to_le_bytes());
        let crc = crc32c::crc32c(&v[..12]);
        v[12..16].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_store_file(&v), Err(DecodeError::Version(7)));
        assert!(decode_store_file(&f[..15]).is_err());
    }

    #[test]
    fn index_round_trips_and_detects_damage() {
        let ix = SegmentIndex {
            first_seq: 10,
            end_seq: 500,
            segment_len: 1 << 20,
            last_arrival_ms: Some(99),
            entries: vec![
                IndexEntry {
                    seq: 10,
                    offset: 32,
                    arrival_ms: 5,
                },
                IndexEntry {
                    seq: 300,
                    offset: 70_000,
                    arrival_ms: 60,
                },
            ],
        };
        let b = encode_index(&ix);
        assert_eq!(decode_index(&b).unwrap(), ix);
        for i in 0..b.len() {
            let mut g = b.clone();
            g[i] ^= 0x10;
            assert!(decode_index(&g).is_err(), "flip at {i}");
        }
        assert!(decode_index(&b[..b.len() - 1]).is_err());
        let empty = SegmentIndex {
            last_arrival_ms: None,
            entries: vec![],
            ..ix
        };
        assert_eq!(decode_index(&encode_index(&empty)).unwrap(), empty);
    }

    #[test]
    fn closed_marker_round_trips() {
        assert_eq!(decode_closed(&encode_closed(77)), Ok(77));
        let mut b = encode_closed(77);
        b[0] ^= 1;
        assert!(decode_closed(&b).is_err());
    }
    #[test]
    fn journal_header_round_trips_and_rejects_damage() {
        let h = encode_journal_header(0xDEAD_BEEF_0102);
        assert_eq!(decode_journal_header(&h), Ok(0xDEAD_BEEF_0102));
        assert_eq!(decode_journal_header(&h[..31]), Err(DecodeError::Short));
        for i in 0..28 {
            let mut bad = h;
            bad[i] ^= 1;
            assert!(decode_journal_header(&bad).is_err(), "byte {i} flipped");
        }
    }

    #[test]
    fn journal_entries_round_trip_back_to_back() {
        let frames = vec![sample_frame(), sample_encrypted_frame()];
        let mut buf = Vec::new();
        append_journal_entry(
            &mut buf,
            7,
            b"s+shardId-1/00000000000000000000.seg",
            32,
            &frames,
        );
        append_journal_entry(&mut buf, 7, b"other/x.seg", 4096, &[]);
        let (first, n) = decode_journal_entry(&buf).unwrap();
        assert_eq!(first.generation, 7);
        assert_eq!(first.offset, 32);
        assert_eq!(first.path, b"s+shardId-1/00000000000000000000.seg");
        assert_eq!(
            first.frames,
            [frames[0].clone(), frames[1].clone()].concat()
        );
        let (second, m) = decode_journal_entry(&buf[n..]).unwrap();
        assert_eq!(
            (second.offset, second.path, second.frames),
            (4096, &b"other/x.seg"[..], &[][..])
        );
        assert_eq!(n + m, buf.len());
    }

    #[test]
    fn journal_entry_damage_is_detected_never_returned() {
        let mut buf = Vec::new();
        append_journal_entry(&mut buf, 1, b"a/b.seg", 32, &[sample_frame()]);
        for cut in 0..buf.len() {
            assert!(decode_journal_entry(&buf[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x10;
            assert!(decode_journal_entry(&bad).is_err(), "byte {i} flipped");
        }
    }
}
