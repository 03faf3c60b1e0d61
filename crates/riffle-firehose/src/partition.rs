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

use std::collections::BTreeMap;

use jaq_core::data::JustLut;
use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Ctx, Vars, unwrap_valr};
use jaq_json::Val;

use crate::buffer::Records;
use crate::prefix::PartitionKeys;

/// The error code of a record whose partition keys could not be extracted.
pub const METADATA_EXTRACTION_FAILED: &str = "DynamicPartitioning.MetadataExtractionFailed";
/// The error code of a record of a partition past the active-partition
/// limit.
pub const PARTITIONS_LIMIT_EXCEEDED: &str = "DynamicPartitioning.ActivePartitionsLimitExceeded";
/// Active partitions per delivery stream: AWS's default quota ("Dynamic
/// partitioning": 500 active partitions; past it, records go to the error
/// output). Riffle counts the partitions of one buffer.
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

/// One partition's records and keys.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Partition {
    pub keys: PartitionKeys,
    pub records: Records,
}

/// Groups records by their keys, in the order partitions first appear;
/// `delimiter` (AppendDelimiterToRecord) ends each record with a newline.
#[derive(Debug, Default)]
pub struct Partitions {
    index: BTreeMap<KeyValues, usize>,
    pub partitions: Vec<Partition>,
}

impl Partitions {
    /// Adds a record to its partition; `false` (and nothing added) when
    /// that would be a partition past [`ACTIVE_PARTITIONS_MAX`].
    pub fn push(
        &mut self,
        keys: PartitionKeys,
        record: &[u8],
        arrival_ms: i64,
        delimiter: bool,
    ) -> bool {
        let slot = (keys.from_query.clone(), keys.from_lambda.clone());
        let next = self.partitions.len();
        if next >= ACTIVE_PARTITIONS_MAX && !self.index.contains_key(&slot) {
            return false;
        }
        let i = *self.index.entry(slot).or_insert(next);
        if i == next {
            self.partitions.push(Partition {
                keys,
                records: Records::default(),
            });
        }
        let records = &mut self.partitions[i].records;
        records.data.extend_from_slice(record);
        if delimiter {
            records.data.push(b'\n');
        }
        records.ends.push(records.data.len());
        records.arrivals.push(arrival_ms);
        true
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

    #[test]
    fn records_group_by_their_keys_in_order_of_first_appearance() {
        let keys = |c: &str| PartitionKeys {
            from_query: pairs(&[("c", c)]),
            from_lambda: Vec::new(),
        };
        let mut partitions = Partitions::default();
        assert!(partitions.push(keys("1"), b"a", 0, true));
        assert!(partitions.push(keys("2"), b"b", 0, true));
        assert!(partitions.push(keys("1"), b"c", 0, true));
        type Got = (Vec<(String, String)>, Vec<u8>);
        let got: Vec<Got> = partitions
            .partitions
            .into_iter()
            .map(|p| (p.keys.from_query, p.records.data))
            .collect();
        assert_eq!(
            got,
            [
                (pairs(&[("c", "1")]), b"a\nc\n".to_vec()),
                (pairs(&[("c", "2")]), b"b\n".to_vec())
            ]
        );
    }

    #[test]
    fn a_partition_past_the_active_limit_is_refused_and_known_ones_still_take_records() {
        let keys = |c: usize| PartitionKeys {
            from_query: pairs(&[("c", &c.to_string())]),
            from_lambda: Vec::new(),
        };
        let mut partitions = Partitions::default();
        for c in 0..ACTIVE_PARTITIONS_MAX {
            assert!(partitions.push(keys(c), b"x", 0, false));
        }
        assert!(!partitions.push(keys(ACTIVE_PARTITIONS_MAX), b"y", 0, false));
        assert!(partitions.push(keys(0), b"z", 0, false));
        assert_eq!(partitions.partitions.len(), ACTIVE_PARTITIONS_MAX);
        assert_eq!(partitions.partitions[0].records.data, b"xz");
    }
}
