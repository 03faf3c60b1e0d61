//! A table's definition (key schema, billing, indexes, TTL, tags), as
//! stored (see `store`) and as DescribeTable writes it, and the primary
//! keys items are ordered by.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};

use crate::errors::DynamoError;
use crate::number::Number;
use crate::value::{Item, Value};

/// A secondary index: global, or local (same partition key as the table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    pub hash: String,
    pub range: Option<String>,
    /// The `Projection` as given (`ProjectionType`, `NonKeyAttributes`).
    pub projection: Json,
    pub rcu: i64,
    pub wcu: i64,
    /// When the index was added.
    pub created_ms: i64,
}

impl IndexDef {
    /// The attributes an index's items carry: the keys, plus what its
    /// projection names (`ALL`: everything).
    pub fn projects(&self, table: &TableDef, item: &Item) -> Item {
        let kind = self.projection.get("ProjectionType").and_then(Json::as_str);
        if kind == Some("ALL") {
            return item.clone();
        }
        let extra: Vec<&str> = self
            .projection
            .get("NonKeyAttributes")
            .and_then(Json::as_array)
            .map(|a| a.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default();
        item.iter()
            .filter(|(k, _)| {
                table.is_key(k)
                    || **k == self.hash
                    || self.range.as_deref() == Some(k.as_str())
                    || extra.contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The stored definition of a table (`dynamodb/table/<name>`, JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// Format version, [`TABLE_VERSION`].
    pub v: u32,
    pub name: String,
    /// TableId (a UUID).
    pub id: String,
    /// New at every CreateTable; names the table's items in the store.
    pub incarnation: u64,
    pub created_ms: i64,
    /// AttributeDefinitions: name to `S`, `N` or `B`.
    pub attributes: BTreeMap<String, String>,
    pub hash: String,
    pub range: Option<String>,
    /// `PAY_PER_REQUEST` or `PROVISIONED`.
    pub billing: String,
    pub rcu: i64,
    pub wcu: i64,
    pub gsis: Vec<IndexDef>,
    pub lsis: Vec<IndexDef>,
    pub deletion_protection: bool,
    /// UpdateTimeToLive's attribute, when enabled.
    pub ttl_attribute: Option<String>,
    pub tags: BTreeMap<String, String>,
}

pub const TABLE_VERSION: u32 = 1;

impl TableDef {
    pub fn is_key(&self, name: &str) -> bool {
        name == self.hash || self.range.as_deref() == Some(name)
    }

    pub fn arn(&self, region: &str, account: &str) -> String {
        format!("arn:aws:dynamodb:{region}:{account}:table/{}", self.name)
    }

    pub fn index(&self, name: &str) -> Option<&IndexDef> {
        self.gsis.iter().chain(&self.lsis).find(|i| i.name == name)
    }

    /// The key schema's attribute names, hash first.
    pub fn key_names(&self) -> Vec<&str> {
        std::iter::once(self.hash.as_str())
            .chain(self.range.as_deref())
            .collect()
    }

    /// The primary key of an item (or of a `Key` member), checked against
    /// the schema. `exact`: a `Key` must hold nothing but the key.
    pub fn key_of(&self, item: &Item, exact: bool) -> Result<ItemKey, DynamoError> {
        if exact && item.len() != self.key_names().len() {
            return Err(DynamoError::validation(
                "The provided key element does not match the schema",
            ));
        }
        let part = |name: &str| -> Result<KeyPart, DynamoError> {
            let Some(value) = item.get(name) else {
                return Err(if exact {
                    DynamoError::validation("The provided key element does not match the schema")
                } else {
                    DynamoError::invalid(format!("Missing the key {name} in the item"))
                });
            };
            let expected = self.attributes.get(name).map_or("S", String::as_str);
            KeyPart::of(value, expected)
                .ok_or_else(|| {
                    if exact {
                        DynamoError::validation(
                            "The provided key element does not match the schema",
                        )
                    } else {
                        DynamoError::invalid(format!(
                            "Type mismatch for key {name} expected: {expected} actual: {}",
                            value.type_name()
                        ))
                    }
                })?
                .checked(name)
        };
        Ok(ItemKey(
            part(&self.hash)?,
            self.range.as_deref().map(part).transpose()?,
        ))
    }

    /// The key attributes of `item`, for LastEvaluatedKey.
    pub fn key_item(&self, item: &Item, index: Option<&IndexDef>) -> Item {
        let mut names = self.key_names();
        if let Some(index) = index {
            names.push(&index.hash);
            names.extend(index.range.as_deref());
        }
        names
            .into_iter()
            .filter_map(|n| item.get(n).map(|v| (n.to_owned(), v.clone())))
            .collect()
    }

    /// DescribeTable's `Table`, `status` the table's; the global indexes
    /// named in `creating` are CREATING, the others ACTIVE.
    pub fn describe(
        &self,
        status: &str,
        region: &str,
        account: &str,
        count: usize,
        bytes: usize,
        creating: &[&str],
    ) -> Json {
        let arn = self.arn(region, account);
        let mut out = json!({
            "TableName": self.name,
            "TableId": self.id,
            "TableArn": arn,
            "TableStatus": status,
            "CreationDateTime": self.created_ms as f64 / 1000.0,
            "AttributeDefinitions": self.attributes.iter()
                .map(|(n, t)| json!({"AttributeName": n, "AttributeType": t}))
                .collect::<Vec<_>>(),
            "KeySchema": key_schema(&self.hash, self.range.as_deref()),
            "ProvisionedThroughput": throughput(self.rcu, self.wcu),
            "ItemCount": count,
            "TableSizeBytes": bytes,
            "DeletionProtectionEnabled": self.deletion_protection,
        });
        if self.billing == "PAY_PER_REQUEST" {
            out["BillingModeSummary"] = json!({
                "BillingMode": "PAY_PER_REQUEST",
                "LastUpdateToPayPerRequestDateTime": self.created_ms as f64 / 1000.0,
            });
        }
        let describe_index = |index: &IndexDef, global: bool| {
            let mut out = json!({
                "IndexName": index.name,
                "KeySchema": key_schema(&index.hash, index.range.as_deref()),
                "Projection": index.projection,
                "IndexSizeBytes": 0,
                "ItemCount": 0,
                "IndexArn": format!("{arn}/index/{}", index.name),
            });
            if global {
                // Built at once: ACTIVE from the first DescribeTable on;
                // only UpdateTable's own answer says CREATING.
                let status = if creating.contains(&index.name.as_str()) {
                    "CREATING"
                } else {
                    "ACTIVE"
                };
                out["IndexStatus"] = json!(status);
                out["ProvisionedThroughput"] = throughput(index.rcu, index.wcu);
                if status == "CREATING" {
                    out["Backfilling"] = json!(false);
                }
            }
            out
        };
        if !self.gsis.is_empty() {
            out["GlobalSecondaryIndexes"] =
                Json::Array(self.gsis.iter().map(|i| describe_index(i, true)).collect());
        }
        if !self.lsis.is_empty() {
            out["LocalSecondaryIndexes"] =
                Json::Array(self.lsis.iter().map(|i| describe_index(i, false)).collect());
        }
        out
    }
}

pub fn key_schema(hash: &str, range: Option<&str>) -> Json {
    let mut schema = vec![json!({"AttributeName": hash, "KeyType": "HASH"})];
    if let Some(range) = range {
        schema.push(json!({"AttributeName": range, "KeyType": "RANGE"}));
    }
    Json::Array(schema)
}

fn throughput(rcu: i64, wcu: i64) -> Json {
    json!({"NumberOfDecreasesToday": 0, "ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu})
}

/// One key attribute's value: keys are S, N or B.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyPart {
    /// Ordered by UTF-8 bytes, as DynamoDB orders strings.
    S(String),
    N(Number),
    B(Vec<u8>),
}

/// The largest partition key value (Developer Guide, "Partition key
/// length": 2048 bytes) and sort key value (1024 bytes).
pub const HASH_KEY_BYTES_MAX: usize = 2048;
pub const RANGE_KEY_BYTES_MAX: usize = 1024;

impl KeyPart {
    /// The value as a key of type `expected`, if it is one.
    pub fn of(value: &Value, expected: &str) -> Option<KeyPart> {
        match (value, expected) {
            (Value::S(s), "S") => Some(KeyPart::S(s.clone())),
            (Value::N(n), "N") => Some(KeyPart::N(n.clone())),
            (Value::B(b), "B") => Some(KeyPart::B(b.clone())),
            _ => None,
        }
    }

    fn checked(self, name: &str) -> Result<KeyPart, DynamoError> {
        let empty = match &self {
            KeyPart::S(s) => s.is_empty(),
            KeyPart::B(b) => b.is_empty(),
            KeyPart::N(_) => false,
        };
        if empty {
            return Err(DynamoError::validation(format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty {} value. Key: {name}",
                if matches!(self, KeyPart::S(_)) {
                    "string"
                } else {
                    "binary"
                }
            )));
        }
        Ok(self)
    }

    fn len(&self) -> usize {
        match self {
            KeyPart::S(s) => s.len(),
            KeyPart::N(n) => n.significant_digits(),
            KeyPart::B(b) => b.len(),
        }
    }

    /// `<tag><hex>`: `s`, `n` or `b`, then the bytes (a number's text).
    fn encode(&self, out: &mut String) {
        let (tag, bytes): (char, Vec<u8>) = match self {
            KeyPart::S(s) => ('s', s.as_bytes().to_vec()),
            KeyPart::N(n) => ('n', n.to_string().into_bytes()),
            KeyPart::B(b) => ('b', b.clone()),
        };
        out.push(tag);
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
    }

    fn decode(text: &str) -> Option<KeyPart> {
        let tag = text.chars().next()?;
        let hex = &text[1..];
        if !hex.len().is_multiple_of(2) {
            return None;
        }
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect::<Option<_>>()?;
        match tag {
            's' => Some(KeyPart::S(String::from_utf8(bytes).ok()?)),
            'n' => Some(KeyPart::N(
                Number::parse(std::str::from_utf8(&bytes).ok()?).ok()?,
            )),
            'b' => Some(KeyPart::B(bytes)),
            _ => None,
        }
    }
}

/// An item's primary key: partition key and, if the table has one, sort key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemKey(pub KeyPart, pub Option<KeyPart>);

impl ItemKey {
    /// Refuses keys longer than DynamoDB's limits.
    pub fn check_lengths(&self) -> Result<(), DynamoError> {
        if self.0.len() > HASH_KEY_BYTES_MAX {
            return Err(DynamoError::invalid(
                "Size of hashkey has exceeded the maximum size limit of2048 bytes",
            ));
        }
        if self
            .1
            .as_ref()
            .is_some_and(|r| r.len() > RANGE_KEY_BYTES_MAX)
        {
            return Err(DynamoError::invalid(
                "Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
            ));
        }
        Ok(())
    }

    /// The key as a store key segment: `<hash>` or `<hash>.<range>`, each
    /// [`KeyPart::encode`]d.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        self.0.encode(&mut out);
        if let Some(range) = &self.1 {
            out.push('.');
            range.encode(&mut out);
        }
        out
    }

    pub fn decode(text: &str) -> Option<ItemKey> {
        match text.split_once('.') {
            Some((h, r)) => Some(ItemKey(KeyPart::decode(h)?, Some(KeyPart::decode(r)?))),
            None => Some(ItemKey(KeyPart::decode(text)?, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_keys_round_trip_through_their_store_encoding() {
        let keys = [
            ItemKey(KeyPart::S("shard-0001".into()), None),
            ItemKey(
                KeyPart::N(Number::parse("-1.5e3").unwrap()),
                Some(KeyPart::B(vec![0, 255, 46])),
            ),
            ItemKey(KeyPart::S("a.b/ü".into()), Some(KeyPart::S("x.y".into()))),
        ];
        for key in keys {
            let text = key.encode();
            assert!(
                text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'),
                "{text}"
            );
            assert_eq!(ItemKey::decode(&text), Some(key));
        }
        assert_eq!(ItemKey::decode("x00"), None);
    }

    #[test]
    fn number_keys_order_numerically() {
        let k = |t: &str| KeyPart::N(Number::parse(t).unwrap());
        assert!(k("9") < k("10"));
        assert!(k("-10") < k("-9"));
    }
}
