//! The catalog as stored in the metadata store.
//!
//! # Format
//!
//! Key `glue/database/<catalog id>/<database>`, value a UTF-8 JSON object
//! `{"v":1,"database":{…}}`, the `Database` shape as GetDatabase answers
//! it (Name lowercased, `CreateTime` in epoch seconds, `CatalogId`).
//!
//! Key `glue/table/<catalog id>/<database>/<table>`, value
//! `{"v":1,"table":{…}}`, the `Table` shape as GetTable answers it
//! (`VersionId` counting the UpdateTables from "0").
//!
//! Names may hold any character but the model's excluded controls, `/`
//! included, so each key segment escapes `%` as `%25` and `/` as `%2F`:
//! one database's tables are exactly the keys under its prefix. The
//! metadata store (redb) checksums and commits atomically, so the format
//! carries no checksum of its own.

use riffle_log::{LogStore, MetaOp};
use serde_json::{Value as Json, json};

use crate::GlueError;

/// The format version this code writes and reads.
pub const STORE_VERSION: u64 = 1;
const DATABASE_PREFIX: &str = "glue/database/";
const TABLE_PREFIX: &str = "glue/table/";

fn escape(segment: &str) -> String {
    segment.replace('%', "%25").replace('/', "%2F")
}

pub fn database_key(catalog: &str, database: &str) -> String {
    format!("{DATABASE_PREFIX}{}/{}", escape(catalog), escape(database))
}

/// The prefix of every database key of a catalog.
pub fn databases_prefix(catalog: &str) -> String {
    format!("{DATABASE_PREFIX}{}/", escape(catalog))
}

pub fn table_key(catalog: &str, database: &str, table: &str) -> String {
    format!("{}{}", tables_prefix(catalog, database), escape(table))
}

/// The prefix of every table key of a database.
pub fn tables_prefix(catalog: &str, database: &str) -> String {
    format!("{TABLE_PREFIX}{}/{}/", escape(catalog), escape(database))
}

/// A stored entry's value: `{"v":1,"<kind>":<shape>}`.
pub fn encode(kind: &str, shape: &Json) -> Vec<u8> {
    // JSON values always serialize.
    serde_json::to_vec(&json!({"v": STORE_VERSION, kind: shape})).expect("JSON serializes")
}

/// The shape of a stored entry, refusing a corrupt one or another version.
pub fn decode(key: &str, kind: &str, value: &[u8]) -> Result<Json, GlueError> {
    let corrupt = |reason: String| GlueError::Storage(format!("entry {key} is corrupt: {reason}"));
    let mut entry: Json = serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
    match entry.get("v").and_then(Json::as_u64) {
        Some(STORE_VERSION) => {}
        other => return Err(corrupt(format!("format version {other:?}"))),
    }
    match entry.get_mut(kind).map(Json::take) {
        Some(shape @ Json::Object(_)) => Ok(shape),
        _ => Err(corrupt(format!("no {kind} object"))),
    }
}

/// A stored entry's shape, if the key is stored.
pub fn get(store: &LogStore, key: &str, kind: &str) -> Result<Option<Json>, GlueError> {
    match store.meta().get(key)? {
        Some(value) => decode(key, kind, &value).map(Some),
        None => Ok(None),
    }
}

/// Every entry under `prefix`, in key order.
pub fn scan(store: &LogStore, prefix: &str, kind: &str) -> Result<Vec<Json>, GlueError> {
    store
        .meta()
        .scan_prefix(prefix)?
        .into_iter()
        .map(|(key, value)| decode(&key, kind, &value))
        .collect()
}

pub fn commit(store: &LogStore, ops: &[MetaOp]) -> Result<(), GlueError> {
    Ok(store.meta().commit(ops)?)
}

/// The table a reader (Firehose's format conversion) names, as GetTable
/// answers it; names are matched as Glue matches them (lowercased).
pub fn lookup_table(
    store: &LogStore,
    catalog: &str,
    database: &str,
    table: &str,
) -> Result<Option<Json>, GlueError> {
    let key = table_key(catalog, &database.to_lowercase(), &table.to_lowercase());
    get(store, &key, "table")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_slashes_stay_one_segment() {
        assert_eq!(table_key("1", "a/b", "c%d"), "glue/table/1/a%2Fb/c%25d");
        assert!(!table_key("1", "a/b", "c").starts_with(&tables_prefix("1", "a")));
    }

    #[test]
    fn entries_round_trip_and_bad_ones_are_refused() {
        let shape = json!({"Name": "t", "VersionId": "0"});
        let value = encode("table", &shape);
        assert_eq!(decode("k", "table", &value).unwrap(), shape);
        assert!(decode("k", "database", &value).is_err());
        assert!(decode("k", "table", br#"{"v":2,"table":{}}"#).is_err());
        assert!(decode("k", "table", b"not json").is_err());
    }
}
