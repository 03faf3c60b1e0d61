//! The KPL aggregated-record format (awslabs/amazon-kinesis-producer,
//! `aggregation-format.md`): several user records in the data of one
//! Kinesis record.
//!
//! ```text
//! offset  size  field
//! 0       4     magic F3 89 9A C2
//! 4       n     protobuf AggregatedRecord (proto2), n = len - 20
//! 4+n     16    MD5 of the n protobuf bytes
//!
//! message AggregatedRecord {
//!   repeated string partition_key_table     = 1;  // key 0x0A
//!   repeated string explicit_hash_key_table = 2;  // key 0x12
//!   repeated Record records                 = 3;  // key 0x1A
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;  // key 0x08
//!   optional uint64 explicit_hash_key_index = 2;  // key 0x10
//!   required bytes  data                    = 3;  // key 0x1A
//!   repeated Tag    tags                    = 4;  // key 0x22
//! }
//! message Tag { required string key = 1; optional string value = 2; }
//! ```
//!
//! The encoder writes the tables before the records, as the KPL does; the
//! decoder accepts fields in any order and skips unknown ones, as protobuf
//! requires. A user record's sub-sequence number is its index in `records`.
//! Data without the magic, too short, with an empty message, a wrong MD5 or
//! a message that does not parse (or names a key index past its table) is
//! one plain record, as the KCL treats it.

use std::collections::HashMap;

/// A key table's index: keys are the caller's, so a fast hash will do.
type KeyIndex = HashMap<String, u64, foldhash::fast::RandomState>;

use md5::{Digest, Md5};

/// The first four bytes of an aggregated record.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
/// The MD5 trailer's length.
pub const DIGEST_LEN: usize = 16;
/// Magic and trailer: what an aggregated record adds to its message.
pub const OVERHEAD: usize = MAGIC.len() + DIGEST_LEN;

const WIRE_VARINT: u8 = 0;
const WIRE_I64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_I32: u8 = 5;

const KEY_PK_TABLE: u8 = (1 << 3) | WIRE_LEN;
const KEY_EHK_TABLE: u8 = (2 << 3) | WIRE_LEN;
const KEY_RECORDS: u8 = (3 << 3) | WIRE_LEN;
const KEY_PK_INDEX: u8 = (1 << 3) | WIRE_VARINT;
const KEY_EHK_INDEX: u8 = (2 << 3) | WIRE_VARINT;
const KEY_DATA: u8 = (3 << 3) | WIRE_LEN;

/// A user record to aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRecord<'a> {
    pub partition_key: &'a str,
    pub explicit_hash_key: Option<&'a str>,
    pub data: &'a [u8],
}

/// A user record read out of a Kinesis record, borrowing its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRecord<'a> {
    pub partition_key: &'a str,
    pub explicit_hash_key: Option<&'a str>,
    pub data: &'a [u8],
    /// Its index in the aggregated record (0 for a plain record).
    pub sub_sequence_number: u64,
    /// The KPL's tags (key, optional value); no reader uses them.
    pub tags: Vec<(&'a str, Option<&'a str>)>,
}

/// Packs user records into one aggregated record, keeping its exact size as
/// records are added so that a caller can stop before a limit.
#[derive(Debug, Default)]
pub struct Aggregator {
    pk_table: Vec<u8>,
    pk_index: KeyIndex,
    ehk_table: Vec<u8>,
    ehk_index: KeyIndex,
    records: Vec<u8>,
    count: usize,
}

impl Aggregator {
    pub fn new() -> Aggregator {
        Aggregator::default()
    }

    /// User records added since the last [`Aggregator::finish`].
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The size of the aggregated record [`Aggregator::finish`] would make.
    pub fn size(&self) -> usize {
        OVERHEAD + self.pk_table.len() + self.ehk_table.len() + self.records.len()
    }

    /// The size after adding `record`.
    pub fn size_with(&self, record: &UserRecord<'_>) -> usize {
        let (pk_index, pk_new) = index_or_next(&self.pk_index, record.partition_key);
        let mut grown = if pk_new {
            string_field_len(record.partition_key.len())
        } else {
            0
        };
        let ehk_index = record.explicit_hash_key.map(|ehk| {
            let (index, new) = index_or_next(&self.ehk_index, ehk);
            if new {
                grown += string_field_len(ehk.len());
            }
            index
        });
        let body = record_body_len(pk_index, ehk_index, record.data.len());
        self.size() + grown + 1 + varint_len(body as u64) + body
    }

    /// Adds `record` if the aggregate stays within `max_size` bytes and
    /// `max_count` records; false (nothing changed) if it would not. One
    /// key lookup: this is the producer's per-record path.
    pub fn try_add(&mut self, record: &UserRecord<'_>, max_size: usize, max_count: usize) -> bool {
        if self.count >= max_count {
            return false;
        }
        let pk = self.pk_index.get(record.partition_key).copied();
        let mut grown = 0;
        let pk_index = pk.unwrap_or_else(|| {
            grown += string_field_len(record.partition_key.len());
            self.pk_index.len() as u64
        });
        let ehk = record
            .explicit_hash_key
            .map(|key| (key, self.ehk_index.get(key).copied()));
        let ehk_index = ehk.map(|(key, index)| {
            index.unwrap_or_else(|| {
                grown += string_field_len(key.len());
                self.ehk_index.len() as u64
            })
        });
        let body = record_body_len(pk_index, ehk_index, record.data.len());
        if self.size() + grown + 1 + varint_len(body as u64) + body > max_size {
            return false;
        }
        if pk.is_none() {
            intern(
                &mut self.pk_index,
                &mut self.pk_table,
                KEY_PK_TABLE,
                record.partition_key,
            );
        }
        if let Some((key, None)) = ehk {
            intern(&mut self.ehk_index, &mut self.ehk_table, KEY_EHK_TABLE, key);
        }
        self.push_record(pk_index, ehk_index, record.data);
        true
    }

    /// Adds `record`; its sub-sequence number is the count before it.
    pub fn add(&mut self, record: &UserRecord<'_>) {
        let pk_index = intern(
            &mut self.pk_index,
            &mut self.pk_table,
            KEY_PK_TABLE,
            record.partition_key,
        );
        let ehk_index = record
            .explicit_hash_key
            .map(|ehk| intern(&mut self.ehk_index, &mut self.ehk_table, KEY_EHK_TABLE, ehk));
        self.push_record(pk_index, ehk_index, record.data);
    }

    fn push_record(&mut self, pk_index: u64, ehk_index: Option<u64>, data: &[u8]) {
        let body = record_body_len(pk_index, ehk_index, data.len());
        let out = &mut self.records;
        out.reserve(1 + varint_len(body as u64) + body);
        out.push(KEY_RECORDS);
        put_varint(out, body as u64);
        out.push(KEY_PK_INDEX);
        put_varint(out, pk_index);
        if let Some(index) = ehk_index {
            out.push(KEY_EHK_INDEX);
            put_varint(out, index);
        }
        out.push(KEY_DATA);
        put_varint(out, data.len() as u64);
        out.extend_from_slice(data);
        self.count += 1;
    }

    /// The aggregated record of everything added, and a fresh start.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.pk_table);
        out.extend_from_slice(&self.ehk_table);
        out.extend_from_slice(&self.records);
        let digest = Md5::digest(&out[MAGIC.len()..]);
        out.extend_from_slice(&digest);
        self.pk_table.clear();
        self.pk_index.clear();
        self.ehk_table.clear();
        self.ehk_index.clear();
        self.records.clear();
        self.count = 0;
        out
    }
}

/// Aggregates `records` into one aggregated record.
pub fn encode(records: &[UserRecord<'_>]) -> Vec<u8> {
    let mut aggregator = Aggregator::new();
    for record in records {
        aggregator.add(record);
    }
    aggregator.finish()
}

fn index_or_next(index: &KeyIndex, key: &str) -> (u64, bool) {
    match index.get(key) {
        Some(&at) => (at, false),
        None => (index.len() as u64, true),
    }
}

fn intern(index: &mut KeyIndex, table: &mut Vec<u8>, field: u8, key: &str) -> u64 {
    if let Some(&at) = index.get(key) {
        return at;
    }
    let at = index.len() as u64;
    index.insert(key.to_owned(), at);
    table.push(field);
    put_varint(table, key.len() as u64);
    table.extend_from_slice(key.as_bytes());
    at
}

fn string_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn record_body_len(pk_index: u64, ehk_index: Option<u64>, data_len: usize) -> usize {
    1 + varint_len(pk_index)
        + ehk_index.map_or(0, |i| 1 + varint_len(i))
        + 1
        + varint_len(data_len as u64)
        + data_len
}

fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Whether `data` is an aggregated record: the magic, a message that is not
/// empty (an empty one holds no user record: reading it as such would make
/// the Kinesis record vanish, so it stays one record, as in the
/// aws-kinesis-agg de-aggregators), and the MD5 of that message.
pub fn is_aggregated(data: &[u8]) -> bool {
    data.len() > OVERHEAD && data[..MAGIC.len()] == MAGIC && {
        let (message, digest) = data[MAGIC.len()..].split_at(data.len() - OVERHEAD);
        Md5::digest(message).as_slice() == digest
    }
}

/// The user records of an aggregated record; `None` when `data` is not
/// one (see the module's note), so the caller treats it as a plain record.
pub fn decode(data: &[u8]) -> Option<Vec<SubRecord<'_>>> {
    if !is_aggregated(data) {
        return None;
    }
    let message = &data[MAGIC.len()..data.len() - DIGEST_LEN];
    let mut pk_table = Vec::new();
    let mut ehk_table = Vec::new();
    let mut raw = Vec::new();
    let mut reader = Reader(message);
    while let Some((field, value)) = reader.field()? {
        match (field, value) {
            (1, Value::Bytes(b)) => pk_table.push(std::str::from_utf8(b).ok()?),
            (2, Value::Bytes(b)) => ehk_table.push(std::str::from_utf8(b).ok()?),
            (3, Value::Bytes(b)) => raw.push(b),
            (1..=3, _) => return None,
            _ => {}
        }
    }
    raw.iter()
        .enumerate()
        .map(|(i, body)| record(body, i as u64, &pk_table, &ehk_table))
        .collect()
}

fn record<'a>(
    body: &'a [u8],
    sub_sequence_number: u64,
    pk_table: &[&'a str],
    ehk_table: &[&'a str],
) -> Option<SubRecord<'a>> {
    let (mut pk, mut ehk, mut data, mut tags) = (None, None, None, Vec::new());
    let mut reader = Reader(body);
    while let Some((field, value)) = reader.field()? {
        match (field, value) {
            (1, Value::Varint(v)) => pk = Some(v),
            (2, Value::Varint(v)) => ehk = Some(v),
            (3, Value::Bytes(b)) => data = Some(b),
            (4, Value::Bytes(b)) => tags.push(tag(b)?),
            (1..=4, _) => return None,
            _ => {}
        }
    }
    let explicit_hash_key = match ehk {
        Some(i) => Some(*ehk_table.get(usize::try_from(i).ok()?)?),
        None => None,
    };
    Some(SubRecord {
        partition_key: pk_table.get(usize::try_from(pk?).ok()?)?,
        explicit_hash_key,
        data: data?,
        sub_sequence_number,
        tags,
    })
}

fn tag(body: &[u8]) -> Option<(&str, Option<&str>)> {
    let (mut key, mut value) = (None, None);
    let mut reader = Reader(body);
    while let Some((field, v)) = reader.field()? {
        match (field, v) {
            (1, Value::Bytes(b)) => key = Some(std::str::from_utf8(b).ok()?),
            (2, Value::Bytes(b)) => value = Some(std::str::from_utf8(b).ok()?),
            (1 | 2, _) => return None,
            _ => {}
        }
    }
    Some((key?, value))
}

/// The user records in a Kinesis record's data: those of an aggregated
/// record, or the record itself (sub-sequence number 0) under the Kinesis
/// record's partition key.
pub fn deaggregate<'a>(
    data: &'a [u8],
    partition_key: &'a str,
    explicit_hash_key: Option<&'a str>,
) -> Vec<SubRecord<'a>> {
    decode(data).unwrap_or_else(|| {
        vec![SubRecord {
            partition_key,
            explicit_hash_key,
            data,
            sub_sequence_number: 0,
            tags: Vec::new(),
        }]
    })
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// A protobuf field reader over a byte slice; `None` on malformed input.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// The next (field number, value), `Some(None)` at the end.
    fn field(&mut self) -> Option<Option<(u64, Value<'a>)>> {
        if self.0.is_empty() {
            return Some(None);
        }
        let key = self.varint()?;
        let value = match (key & 7) as u8 {
            WIRE_VARINT => Value::Varint(self.varint()?),
            WIRE_LEN => {
                let len = usize::try_from(self.varint()?).ok()?;
                Value::Bytes(self.take(len)?)
            }
            WIRE_I64 => self.take(8).map(|_| Value::Fixed)?,
            WIRE_I32 => self.take(4).map(|_| Value::Fixed)?,
            _ => return None,
        };
        Some(Some((key >> 3, value)))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.0.len() {
            return None;
        }
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(taken)
    }
}

#[cfg(test)]
mod tests;
