//! Dynamic partitioning: the partition keys of each record (from the
//! `MetadataExtraction` processor's JQ query, and from the Lambda
//! processor's `metadata.partitionKeys`), and the grouping of a buffer's
//! records into one object per partition ("Dynamic partitioning in Amazon
//! Data Firehose", "Partitioning keys with inline parsing").
//!
//! A query is compiled once per stream ([`Query::compile`]) with jaq, a
//! Rust jq, and run on each record parsed as JSON. Its one output must be
//! an object whose values are strings, numbers or booleans: each member is
//! a key for `!{partitionKeyFromQuery:<name>}`. A record that is not JSON,
//! or whose query fails or gives anything else, fails with
//! [`METADATA_EXTRACTION_FAILED`] to `processing-failed/`.

use std::collections::HashMap;

use jaq_core::data::JustLut;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Ctx, Vars, unwrap_valr};
use jaq_json::Val;
use riffle_log::Seq;

use crate::buffer::Records;
use crate::prefix::PartitionKeys;

/// The error code of a record whose partition keys could not be extracted.
pub const METADATA_EXTRACTION_FAILED: &str = "DynamicPartitioning.MetadataExtractionFailed";
/// The error code of a record of a partition past the active-partition
/// limit.
pub const PARTITIONS_LIMIT_EXCEEDED: &str = "DynamicPartitioning.ActivePartitionsLimitExceeded";
/// Active partitions per delivery stream: AWS's default quota ("Dynamic
/// partitioning": 500 active partitions; past it, "the rest of the
/// records in the Firehose stream are delivered to the specified S3 error
/// bucket prefix"). Riffle counts the lane's partition buffers.
pub const ACTIVE_PARTITIONS_MAX: usize = 500;
/// The only `JsonParsingEngine` AWS accepts.
pub const JQ_ENGINE: &str = "JQ-1.6";

/// A compiled `MetadataExtractionQuery`.
pub struct Query {
    filter: jaq_core::Filter<JustLut<Val>>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Query")
    }
}

impl Query {
    /// Compiles `code` with jq's standard library; the error says why not.
    pub fn compile(code: &str) -> Result<Query, String> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|errs| format!("the query does not parse ({} errors)", errs.len()))?;
        let filter = jaq_core::Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| format!("the query names undefined filters ({} errors)", errs.len()))?;
        Ok(Query { filter })
    }

    /// The keys the query extracts from one record.
    pub fn keys(&self, record: &[u8]) -> Result<Vec<(String, String)>, String> {
        let input = jaq_json::read::parse_single(trim(record))
            .map_err(|_| "Non JSON record provided".to_owned())?;
        let ctx = Ctx::<JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut out = self.filter.id.run((ctx, input)).map(unwrap_valr);
        let first = match out.next() {
            Some(Ok(value)) => value,
            Some(Err(err)) => return Err(format!("the query failed: {err}")),
            None => return Err("the query gave no result".to_owned()),
        };
        let Val::Obj(members) = first else {
            return Err("the query did not give an object".to_owned());
        };
        let mut keys = Vec::with_capacity(members.len());
        for (name, value) in members.iter() {
            let name = scalar(name).ok_or("a partition key's name is not a string")?;
            let value = scalar(value)
                .ok_or_else(|| format!("partition key {name} is null, an object or an array"))?;
            keys.push((name, value));
        }
        Ok(keys)
    }
}

/// A record's JSON without the whitespace (a newline) around it.
fn trim(record: &[u8]) -> &[u8] {
    record.trim_ascii()
}

fn scalar(value: &Val) -> Option<String> {
    match value {
        Val::TStr(bytes) | Val::BStr(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Val::Num(n) => Some(n.to_string()),
        Val::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A partition's keys from the query and from the function, by which
/// records are grouped.
type KeyValues = (Vec<(String, String)>, Vec<(String, String)>);

/// One active partition's buffer ("Buffer data for dynamic
/// partitioning": a buffer per active partition, delivered as one object
/// when its own size hint or interval is reached).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Partition {
    pub keys: PartitionKeys,
    pub records: Records,
    /// Where a restart re-reads the log to find every record of this
    /// buffer again: the start of the first chunk that added one, and
    /// that chunk's first arrival time (the log's trim cutoff).
    pub since: (Seq, i64),
}

impl Partition {
    /// When its first record arrived: its interval counts from here, and
    /// its object is named by it.
    pub fn oldest_ms(&self) -> i64 {
        self.records
            .arrivals
            .first()
            .copied()
            .unwrap_or(self.since.1)
    }
}

/// Appends a record (and the AppendDelimiterToRecord newline); the bytes
/// added.
fn append(records: &mut Records, record: &[u8], arrival_ms: i64, delimiter: bool) -> usize {
    let before = records.data.len();
    records.data.extend_from_slice(record);
    if delimiter {
        records.data.push(b'\n');
    }
    records.ends.push(records.data.len());
    records.arrivals.push(arrival_ms);
    records.data.len() - before
}

/// When partition buffers are delivered: the destination's buffering
/// hints per partition, and a bound on them all together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hints {
    pub size_bytes: usize,
    pub interval_ms: i64,
    /// The bytes all buffers may hold together; past it the largest are
    /// delivered early.
    pub total_bytes_max: usize,
}

/// The lane's active partitions, each with its buffer; `delimiter`
/// (AppendDelimiterToRecord) ends each record with a newline.
#[derive(Debug, Default)]
pub struct ActivePartitions {
    buffers: HashMap<KeyValues, Partition>,
    bytes: usize,
}

impl ActivePartitions {
    /// Adds a record of the chunk read from `since` to its partition's
    /// buffer; `false` (and nothing added) when that would be a partition
    /// past [`ACTIVE_PARTITIONS_MAX`].
    pub fn push(
        &mut self,
        keys: PartitionKeys,
        record: &[u8],
        arrival_ms: i64,
        delimiter: bool,
        since: (Seq, i64),
    ) -> bool {
        let slot = (keys.from_query, keys.from_lambda);
        if let Some(partition) = self.buffers.get_mut(&slot) {
            self.bytes += append(&mut partition.records, record, arrival_ms, delimiter);
            return true;
        }
        if self.buffers.len() >= ACTIVE_PARTITIONS_MAX {
            return false;
        }
        let mut partition = Partition {
            keys: PartitionKeys {
                from_query: slot.0.clone(),
                from_lambda: slot.1.clone(),
            },
            records: Records::default(),
            since,
        };
        self.bytes += append(&mut partition.records, record, arrival_ms, delimiter);
        self.buffers.insert(slot, partition);
        true
    }

    /// How many partitions are active.
    pub fn count(&self) -> usize {
        self.buffers.len()
    }

    /// The bytes all buffers hold.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The records all buffers hold, and when the oldest arrived (0 with
    /// none): one pass over at most [`ACTIVE_PARTITIONS_MAX`] buffers.
    pub fn held_records(&self) -> (usize, i64) {
        let records = self.buffers.values().map(|p| p.records.ends.len()).sum();
        let oldest = self.buffers.values().map(Partition::oldest_ms).min();
        (records, oldest.unwrap_or(0))
    }

    /// Takes out the buffers due at `now_ms`: those at their size hint or
    /// past their interval, then the largest while all of them together
    /// hold more than the total bound; oldest first.
    pub fn take_due(&mut self, now_ms: i64, hints: Hints) -> Vec<Partition> {
        let due: Vec<KeyValues> = self
            .buffers
            .iter()
            .filter(|(_, p)| {
                p.records.data.len() >= hints.size_bytes
                    || now_ms.saturating_sub(p.oldest_ms()) >= hints.interval_ms
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut out: Vec<Partition> = due.iter().filter_map(|k| self.remove(k)).collect();
        while self.bytes > hints.total_bytes_max {
            let Some(largest) = self
                .buffers
                .iter()
                .max_by_key(|(_, p)| p.records.data.len())
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            out.extend(self.remove(&largest));
        }
        out.sort_by_key(Partition::oldest_ms);
        out
    }

    fn remove(&mut self, slot: &KeyValues) -> Option<Partition> {
        let partition = self.buffers.remove(slot)?;
        self.bytes -= partition.records.data.len();
        Some(partition)
    }

    /// The oldest log position (and its arrival time) a buffer still
    /// needs: the lane's durable position can go no further.
    pub fn held_since(&self) -> Option<(Seq, i64)> {
        self.buffers.values().map(|p| p.since).min()
    }

    /// When the next buffer is due by its interval (ms since the epoch).
    pub fn next_due_ms(&self, interval_ms: i64) -> Option<i64> {
        self.buffers
            .values()
            .map(|p| p.oldest_ms().saturating_add(interval_ms))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// AWS's documented example ("Partitioning keys with inline parsing"):
    /// the query `{customer_id: .customer_id}` on a record with a
    /// `customer_id` member.
    #[test]
    fn awss_documented_query_extracts_the_customer_id() {
        let query = Query::compile("{customer_id: .customer_id}").unwrap();
        let record = br#"{"type": {"device": "mobile", "event": "user_clicked_submit_button"}, "customer_id": "1234567890", "event_timestamp": 1565382027, "region": "sample_value"}"#;
        assert_eq!(
            query.keys(record).unwrap(),
            pairs(&[("customer_id", "1234567890")])
        );
        let nested = Query::compile("{device: .type.device, customer_id: .customer_id}").unwrap();
        assert_eq!(
            nested.keys(record).unwrap(),
            pairs(&[("device", "mobile"), ("customer_id", "1234567890")])
        );
    }

    #[test]
    fn numbers_and_booleans_are_keys_and_null_is_a_failure() {
        let query = Query::compile("{n: .n, b: .b}").unwrap();
        assert_eq!(
            query.keys(b"{\"n\": 42, \"b\": true}\n").unwrap(),
            pairs(&[("n", "42"), ("b", "true")])
        );
        assert!(
            query
                .keys(b"{\"n\": 42}")
                .unwrap_err()
                .contains("partition key b")
        );
        assert_eq!(
            query.keys(b"not json").unwrap_err(),
            "Non JSON record provided"
        );
        assert!(Query::compile("{a: .b").is_err());
        assert!(Query::compile("{a: nosuchfilter}").is_err());
    }

    fn keyed(c: &str) -> PartitionKeys {
        PartitionKeys {
            from_query: pairs(&[("c", c)]),
            from_lambda: Vec::new(),
        }
    }

    const HINTS: Hints = Hints {
        size_bytes: 4,
        interval_ms: 1_000,
        total_bytes_max: 10,
    };

    #[test]
    fn each_partition_is_due_at_its_own_size_or_interval() {
        let mut active = ActivePartitions::default();
        assert!(active.push(keyed("1"), b"a", 100, true, (0, 100)));
        assert!(active.push(keyed("2"), b"b", 500, true, (1, 500)));
        assert!(active.push(keyed("1"), b"c", 600, true, (1, 500)));
        assert_eq!(active.bytes(), 6);
        assert_eq!(active.held_since(), Some((0, 100)));
        assert_eq!(active.next_due_ms(HINTS.interval_ms), Some(1_100));
        // Partition 1 is at its size hint (4 bytes); 2 is not, nor due.
        let due = active.take_due(700, HINTS);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].keys, keyed("1"));
        assert_eq!(due[0].records.data, b"a\nc\n");
        assert_eq!(due[0].records.arrivals, [100, 600]);
        // What is held now starts at partition 2's chunk.
        assert_eq!(active.held_since(), Some((1, 500)));
        assert!(active.take_due(1_499, HINTS).is_empty());
        let due = active.take_due(1_500, HINTS);
        assert_eq!(due[0].records.data, b"b\n");
        assert_eq!(active.count(), 0);
        assert_eq!((active.bytes(), active.held_since()), (0, None));
    }

    #[test]
    fn the_largest_partitions_are_delivered_when_all_together_pass_the_bound() {
        let mut active = ActivePartitions::default();
        let hints = Hints {
            size_bytes: 100,
            ..HINTS
        };
        assert!(active.push(keyed("small"), b"ab", 0, false, (0, 0)));
        assert!(active.push(keyed("big"), b"cdefgh", 0, false, (0, 0)));
        assert!(active.push(keyed("mid"), b"ijk", 0, false, (1, 0)));
        let due = active.take_due(0, hints);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].keys, keyed("big"));
        assert_eq!(active.bytes(), 5);
        assert_eq!(active.count(), 2);
    }

    #[test]
    fn a_partition_past_the_active_limit_is_refused_and_known_ones_still_take_records() {
        let keys = |c: usize| keyed(&c.to_string());
        let mut active = ActivePartitions::default();
        for c in 0..ACTIVE_PARTITIONS_MAX {
            assert!(active.push(keys(c), b"x", 0, false, (0, 0)));
        }
        assert!(!active.push(keys(ACTIVE_PARTITIONS_MAX), b"y", 0, false, (0, 0)));
        assert!(active.push(keys(0), b"z", 0, false, (0, 0)));
        assert_eq!(active.count(), ACTIVE_PARTITIONS_MAX);
        // A delivered partition is no longer active: a new one fits.
        let hints = Hints {
            size_bytes: 2,
            interval_ms: 1_000,
            total_bytes_max: 1_000,
        };
        let due = active.take_due(0, hints);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].records.data, b"xz");
        assert!(active.push(keys(ACTIVE_PARTITIONS_MAX), b"y", 0, false, (0, 0)));
    }
}
