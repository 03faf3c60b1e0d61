//! AttributeValues: the ten DynamoDB types, read from and written to the
//! wire's JSON (`{"S":"x"}`, `{"N":"1"}`, `{"B":"<base64>"}`, …) with
//! DynamoDB's rules (one type per value, numbers per [`Number`], sets
//! non-empty and without duplicates), and items' sizes as DynamoDB counts
//! them against the 400 KB limit.
//!
//! The same JSON is the item's encoding on disk (see `store`).

use std::collections::BTreeMap;

use base64_simd::STANDARD as BASE64;
use serde_json::{Map, Value as Json};

use crate::errors::DynamoError;
use crate::number::Number;

/// An item: attribute names to values, in name order.
pub type Item = BTreeMap<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    S(String),
    N(Number),
    B(Vec<u8>),
    Bool(bool),
    Null,
    L(Vec<Value>),
    M(Item),
    /// Sets keep their elements sorted and unique.
    Ss(Vec<String>),
    Ns(Vec<Number>),
    Bs(Vec<Vec<u8>>),
}

/// The largest item (DynamoDB Developer Guide, "Service, account, and table
/// quotas": "The maximum item size in DynamoDB is 400 KB", names included).
pub const ITEM_BYTES_MAX: usize = 400 * 1024;

/// Nesting of lists and maps (Developer Guide: "DynamoDB supports nested
/// attributes up to 32 levels deep").
pub const DEPTH_MAX: usize = 32;

fn datatypes_error(many: bool) -> DynamoError {
    DynamoError::validation(if many {
        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
    } else {
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
    })
}

fn type_error(what: &str) -> DynamoError {
    DynamoError::Serialization(format!("Unexpected value type in payload: {what}"))
}

impl Value {
    /// The type's name as DynamoDB writes it (`S`, `NS`, `BOOL`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::S(_) => "S",
            Value::N(_) => "N",
            Value::B(_) => "B",
            Value::Bool(_) => "BOOL",
            Value::Null => "NULL",
            Value::L(_) => "L",
            Value::M(_) => "M",
            Value::Ss(_) => "SS",
            Value::Ns(_) => "NS",
            Value::Bs(_) => "BS",
        }
    }

    /// Reads one AttributeValue of the wire's JSON.
    pub fn from_json(json: &Json) -> Result<Value, DynamoError> {
        Value::read(json, 0)
    }

    fn read(json: &Json, depth: usize) -> Result<Value, DynamoError> {
        let Json::Object(map) = json else {
            return Err(type_error("expected an AttributeValue object"));
        };
        // Members of a newer model are skipped, as AWS skips them.
        let mut set = map.iter().filter(|(k, v)| is_type(k) && !v.is_null());
        let Some((kind, inner)) = set.next() else {
            return Err(datatypes_error(false));
        };
        if set.next().is_some() {
            return Err(datatypes_error(true));
        }
        if depth > DEPTH_MAX {
            return Err(DynamoError::validation(
                "Nesting Levels have exceeded supported limits",
            ));
        }
        let string = |j: &Json| {
            j.as_str()
                .map(str::to_owned)
                .ok_or_else(|| type_error(kind))
        };
        let list = |j: &Json| j.as_array().cloned().ok_or_else(|| type_error(kind));
        Ok(match kind.as_str() {
            "S" => Value::S(string(inner)?),
            "N" => Value::N(Number::parse(&string(inner)?)?),
            "B" => Value::B(decode_blob(&string(inner)?)?),
            "BOOL" => Value::Bool(inner.as_bool().ok_or_else(|| type_error(kind))?),
            "NULL" => {
                if inner.as_bool() != Some(true) {
                    return Err(DynamoError::invalid(
                        "Null attribute value types must have the value of true",
                    ));
                }
                Value::Null
            }
            "L" => Value::L(
                list(inner)?
                    .iter()
                    .map(|v| Value::read(v, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            "M" => Value::M(read_map(inner, depth + 1)?),
            "SS" => {
                let items = list(inner)?
                    .iter()
                    .map(string)
                    .collect::<Result<Vec<_>, _>>()?;
                Value::Ss(unique_set(items, "string", |s| s.clone())?)
            }
            "NS" => {
                let items = list(inner)?
                    .iter()
                    .map(|j| Number::parse(&string(j)?))
                    .collect::<Result<Vec<_>, _>>()?;
                Value::Ns(unique_set(items, "number", Number::to_string)?)
            }
            "BS" => {
                let items = list(inner)?
                    .iter()
                    .map(|j| decode_blob(&string(j)?))
                    .collect::<Result<Vec<_>, _>>()?;
                Value::Bs(unique_set(items, "binary", |b| BASE64.encode_to_string(b))?)
            }
            // `is_type` admits only the names above.
            _ => unreachable!("is_type admits only the ten type names"),
        })
    }

    pub fn to_json(&self) -> Json {
        let mut map = Map::with_capacity(1);
        let (kind, inner) = match self {
            Value::S(s) => ("S", Json::String(s.clone())),
            Value::N(n) => ("N", Json::String(n.to_string())),
            Value::B(b) => ("B", Json::String(BASE64.encode_to_string(b))),
            Value::Bool(b) => ("BOOL", Json::Bool(*b)),
            Value::Null => ("NULL", Json::Bool(true)),
            Value::L(l) => ("L", Json::Array(l.iter().map(Value::to_json).collect())),
            Value::M(m) => ("M", item_to_json(m)),
            Value::Ss(s) => ("SS", s.iter().cloned().map(Json::String).collect()),
            Value::Ns(s) => (
                "NS",
                s.iter().map(|n| Json::String(n.to_string())).collect(),
            ),
            Value::Bs(s) => (
                "BS",
                s.iter()
                    .map(|b| Json::String(BASE64.encode_to_string(b)))
                    .collect(),
            ),
        };
        map.insert(kind.to_owned(), inner);
        Json::Object(map)
    }

    /// The value's size as DynamoDB counts it ("Item sizes and formats" in
    /// the Developer Guide): strings and binaries their length, numbers
    /// about one byte per two digits plus one, 1 byte for BOOL and NULL,
    /// 3 bytes of overhead per list or map plus 1 per element.
    pub fn size(&self) -> usize {
        match self {
            Value::S(s) => s.len(),
            Value::N(n) => number_size(n),
            Value::B(b) => b.len(),
            Value::Bool(_) | Value::Null => 1,
            Value::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
            Value::M(m) => 3 + m.iter().map(|(k, v)| k.len() + v.size() + 1).sum::<usize>(),
            Value::Ss(s) => s.iter().map(String::len).sum(),
            Value::Ns(s) => s.iter().map(number_size).sum(),
            Value::Bs(s) => s.iter().map(Vec::len).sum(),
        }
    }
}

fn number_size(n: &Number) -> usize {
    n.significant_digits().div_ceil(2) + 1
}

fn is_type(name: &str) -> bool {
    matches!(
        name,
        "S" | "N" | "B" | "BOOL" | "NULL" | "L" | "M" | "SS" | "NS" | "BS"
    )
}

fn decode_blob(text: &str) -> Result<Vec<u8>, DynamoError> {
    BASE64.decode_to_vec(text).map_err(|_| {
        DynamoError::Serialization(
            "Base64 encoded length is expected a multiple of 4 bytes but found: ".to_owned()
                + &text.len().to_string(),
        )
    })
}

/// Sorts a set and refuses an empty one or one with duplicates, as
/// DynamoDB words it.
fn unique_set<T: Ord + Clone>(
    mut items: Vec<T>,
    kind: &str,
    show: impl Fn(&T) -> String,
) -> Result<Vec<T>, DynamoError> {
    if items.is_empty() {
        return Err(DynamoError::invalid(format!(
            "An {kind} set  may not be empty"
        )));
    }
    let shown: Vec<String> = items.iter().map(&show).collect();
    items.sort();
    if items.windows(2).any(|w| w[0] == w[1]) {
        return Err(DynamoError::invalid(format!(
            "Input collection [{}] contains duplicates.",
            shown.join(", ")
        )));
    }
    Ok(items)
}

fn read_map(json: &Json, depth: usize) -> Result<Item, DynamoError> {
    let Json::Object(map) = json else {
        return Err(type_error("expected a map"));
    };
    map.iter()
        .map(|(k, v)| Ok((k.clone(), Value::read(v, depth)?)))
        .collect()
}

/// Reads a map of AttributeValues (an item, a key, ExpressionAttributeValues).
pub fn item_from_json(json: &Json) -> Result<Item, DynamoError> {
    read_map(json, 0)
}

pub fn item_to_json(item: &Item) -> Json {
    Json::Object(item.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// An item's size: its names and values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// Set algebra for ADD and DELETE: `None` when the types differ.
pub fn set_union(a: &Value, b: &Value) -> Option<Value> {
    fn union<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
        let mut out: Vec<T> = a.iter().chain(b).cloned().collect();
        out.sort();
        out.dedup();
        out
    }
    Some(match (a, b) {
        (Value::Ss(a), Value::Ss(b)) => Value::Ss(union(a, b)),
        (Value::Ns(a), Value::Ns(b)) => Value::Ns(union(a, b)),
        (Value::Bs(a), Value::Bs(b)) => Value::Bs(union(a, b)),
        _ => return None,
    })
}

/// `a` without the elements of `b`; `Some(None)` when nothing is left.
pub fn set_difference(a: &Value, b: &Value) -> Option<Option<Value>> {
    fn minus<T: Ord + Clone>(a: &[T], b: &[T]) -> Vec<T> {
        a.iter().filter(|x| !b.contains(x)).cloned().collect()
    }
    let left = match (a, b) {
        (Value::Ss(a), Value::Ss(b)) => Value::Ss(minus(a, b)),
        (Value::Ns(a), Value::Ns(b)) => Value::Ns(minus(a, b)),
        (Value::Bs(a), Value::Bs(b)) => Value::Bs(minus(a, b)),
        _ => return None,
    };
    let empty = match &left {
        Value::Ss(s) => s.is_empty(),
        Value::Ns(s) => s.is_empty(),
        Value::Bs(s) => s.is_empty(),
        _ => false,
    };
    Some((!empty).then_some(left))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_type_round_trips_through_the_wire_json() {
        let wire = json!({
            "s": {"S": "text"}, "n": {"N": "1.50"}, "b": {"B": "AAEC"},
            "t": {"BOOL": true}, "z": {"NULL": true},
            "l": {"L": [{"S": "a"}, {"N": "2"}]},
            "m": {"M": {"x": {"SS": ["b", "a"]}}},
            "ns": {"NS": ["10", "9"]}, "bs": {"BS": ["AQ==", "AA=="]}
        });
        let item = item_from_json(&wire).unwrap();
        assert_eq!(item["n"], Value::N(Number::parse("1.5").unwrap()));
        assert_eq!(item["b"], Value::B(vec![0, 1, 2]));
        let back = item_to_json(&item);
        assert_eq!(back["n"], json!({"N": "1.5"}));
        assert_eq!(back["m"], json!({"M": {"x": {"SS": ["a", "b"]}}}));
        assert_eq!(item_from_json(&back).unwrap(), item);
    }

    #[test]
    fn values_with_no_type_or_two_types_or_bad_sets_are_refused() {
        let err = |j: Json| Value::from_json(&j).unwrap_err().message();
        assert!(err(json!({})).starts_with("Supplied AttributeValue is empty"));
        assert!(err(json!({"S": "a", "N": "1"})).contains("more than one datatypes"));
        assert_eq!(
            err(json!({"SS": []})),
            "One or more parameter values were invalid: An string set  may not be empty"
        );
        assert_eq!(
            err(json!({"NS": ["1", "1.0"]})),
            "One or more parameter values were invalid: Input collection [1, 1] contains duplicates."
        );
        assert!(err(json!({"N": "x"})).contains("cannot be converted into a number"));
    }

    #[test]
    fn sizes_count_names_and_values() {
        let item = item_from_json(&json!({"id": {"S": "abc"}, "n": {"N": "123"}})).unwrap();
        assert_eq!(item_size(&item), 2 + 3 + 1 + 3);
    }
}
