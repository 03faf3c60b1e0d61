//! `FilterCriteria`: Lambda's event filtering ("Control which events Lambda
//! sends to your function"). A record goes to the function when any filter's
//! pattern matches it; the others are skipped (and their position committed
//! with the batch's), as Lambda drops them.
//!
//! A Kinesis record is matched as the object
//! `{"kinesisSchemaVersion", "partitionKey", "sequenceNumber",
//! "approximateArrivalTimestamp", "data"}`, where `data` is the record's
//! data parsed as JSON. Data that is not JSON matches no pattern that
//! names `data` (Lambda: "If the data isn't valid JSON … Lambda drops the
//! record" for a pattern on it).
//!
//! Rules: a value list (`["a", 1, null]`: equal to one of them; a field that
//! is an array matches when one of its items does), nested objects (every
//! key must match), and the comparison objects `prefix`, `suffix`,
//! `equals-ignore-case`, `wildcard`, `numeric` (`["<", 10, ">=", 0]`),
//! `exists` and `anything-but` (a value, a list, or `{"prefix": …}`).

use serde_json::{Map, Value, json};

use crate::event::Rec;

/// The patterns of a mapping, parsed once; an unreadable one matches
/// nothing (Lambda refuses it at creation).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    patterns: Vec<Map<String, Value>>,
    /// No `FilterCriteria`: every record goes to the function.
    all: bool,
}

impl Filters {
    pub fn new(criteria: Option<&Value>) -> Filters {
        let Some(filters) = criteria.and_then(|c| c["Filters"].as_array()) else {
            return Filters {
                patterns: Vec::new(),
                all: true,
            };
        };
        let patterns = filters
            .iter()
            .filter_map(|f| f["Pattern"].as_str())
            .filter_map(|p| serde_json::from_str::<Map<String, Value>>(p).ok())
            .collect();
        Filters {
            patterns,
            all: filters.is_empty(),
        }
    }

    pub fn matches(&self, rec: &Rec) -> bool {
        if self.all {
            return true;
        }
        let data = serde_json::from_slice::<Value>(&rec.data).ok();
        let mut record = json!({
            "kinesisSchemaVersion": "1.0",
            "partitionKey": rec.partition_key,
            "sequenceNumber": rec.sequence_number,
            "approximateArrivalTimestamp": (rec.arrival_ms as f64) / 1000.0,
        });
        if let Some(data) = data {
            record["data"] = data;
        }
        self.patterns.iter().any(|p| object_matches(p, &record))
    }
}

/// Pattern text is checked when a mapping is created: each filter's
/// `Pattern` must be a JSON object whose leaves are rule lists.
pub fn check(criteria: &Value) -> Result<(), String> {
    for filter in criteria["Filters"].as_array().into_iter().flatten() {
        let pattern = filter["Pattern"].as_str().unwrap_or_default();
        match serde_json::from_str::<Value>(pattern) {
            Ok(Value::Object(map)) if leaves_are_lists(&map) => {}
            _ => return Err(format!("Invalid filter pattern definition. {pattern}")),
        }
    }
    Ok(())
}

fn leaves_are_lists(map: &Map<String, Value>) -> bool {
    map.values().all(|v| match v {
        Value::Object(inner) => leaves_are_lists(inner),
        Value::Array(_) => true,
        _ => false,
    })
}

fn object_matches(pattern: &Map<String, Value>, value: &Value) -> bool {
    pattern.iter().all(|(key, rule)| {
        let field = value.get(key);
        match rule {
            Value::Object(inner) => field.is_some_and(|f| object_matches(inner, f)),
            Value::Array(rules) => rules.iter().any(|r| rule_matches(r, field)),
            _ => false,
        }
    })
}

/// One rule of a list against a field (absent: `None`).
fn rule_matches(rule: &Value, field: Option<&Value>) -> bool {
    if let Value::Object(cmp) = rule {
        if let Some(exists) = cmp.get("exists").and_then(Value::as_bool) {
            return field.is_some() == exists;
        }
        if let Some(not) = cmp.get("anything-but") {
            return field.is_some_and(|f| each(f, |v| !anything_but_hits(not, v)));
        }
    }
    field.is_some_and(|f| each(f, |v| scalar_matches(rule, v)))
}

/// A field that is an array matches when one of its items does.
fn each(field: &Value, test: impl Fn(&Value) -> bool) -> bool {
    match field {
        Value::Array(items) => items.iter().any(test),
        v => test(v),
    }
}

fn anything_but_hits(not: &Value, v: &Value) -> bool {
    match not {
        Value::Array(list) => list.iter().any(|n| equal(n, v)),
        Value::Object(cmp) => cmp
            .get("prefix")
            .and_then(Value::as_str)
            .zip(v.as_str())
            .is_some_and(|(p, s)| s.starts_with(p)),
        n => equal(n, v),
    }
}

fn scalar_matches(rule: &Value, v: &Value) -> bool {
    let Value::Object(cmp) = rule else {
        return equal(rule, v);
    };
    let text = |name: &str| cmp.get(name).and_then(Value::as_str);
    if let Some(p) = text("prefix") {
        return v.as_str().is_some_and(|s| s.starts_with(p));
    }
    if let Some(p) = text("suffix") {
        return v.as_str().is_some_and(|s| s.ends_with(p));
    }
    if let Some(p) = text("equals-ignore-case") {
        return v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(p));
    }
    if let Some(p) = text("wildcard") {
        return v.as_str().is_some_and(|s| wildcard(p, s));
    }
    if let Some(Value::Array(terms)) = cmp.get("numeric") {
        return v.as_f64().is_some_and(|n| numeric(terms, n));
    }
    false
}

fn equal(rule: &Value, v: &Value) -> bool {
    match (rule, v) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// `["<", 10, ">=", 0]`: every comparison holds.
fn numeric(terms: &[Value], n: f64) -> bool {
    terms.chunks(2).all(|pair| match pair {
        [Value::String(op), bound] => bound.as_f64().is_some_and(|b| match op.as_str() {
            "<" => n < b,
            "<=" => n <= b,
            "=" => n == b,
            ">" => n > b,
            ">=" => n >= b,
            _ => false,
        }),
        _ => false,
    })
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first().unwrap_or((&"", &[]));
    let Some(mut left) = s.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return left.is_empty();
    };
    for part in middle {
        match left.find(part) {
            Some(at) => left = &left[at + part.len()..],
            None => return false,
        }
    }
    left.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rec(pk: &str, data: &str) -> Rec {
        Rec {
            seq: 0,
            sequence_number: "4959".into(),
            arrival_ms: 1_000,
            partition_key: pk.into(),
            data: Bytes::from(data.to_owned()),
        }
    }

    fn filters(patterns: &[&str]) -> Filters {
        let list: Vec<Value> = patterns.iter().map(|p| json!({"Pattern": p})).collect();
        Filters::new(Some(&json!({"Filters": list})))
    }

    #[test]
    fn patterns_match_data_as_json_and_metadata() {
        let f = filters(&[
            r#"{"data": {"kind": ["order"], "total": [{"numeric": [">", 10, "<=", 100]}]}}"#,
        ]);
        assert!(f.matches(&rec("k", r#"{"kind": "order", "total": 50}"#)));
        assert!(!f.matches(&rec("k", r#"{"kind": "order", "total": 500}"#)));
        assert!(!f.matches(&rec("k", r#"{"kind": "refund", "total": 50}"#)));
        assert!(
            !f.matches(&rec("k", "not json")),
            "data that is not JSON matches no data pattern"
        );
        let by_key = filters(&[r#"{"partitionKey": [{"prefix": "eu-"}]}"#]);
        assert!(by_key.matches(&rec("eu-1", "not json")));
        assert!(!by_key.matches(&rec("us-1", "{}")));
    }

    #[test]
    fn each_comparison_rule_holds() {
        let cases = [
            (
                r#"{"data": {"a": [{"exists": false}]}}"#,
                r#"{"b": 1}"#,
                true,
            ),
            (
                r#"{"data": {"a": [{"exists": true}]}}"#,
                r#"{"b": 1}"#,
                false,
            ),
            (
                r#"{"data": {"a": [{"anything-but": ["x", "y"]}]}}"#,
                r#"{"a": "z"}"#,
                true,
            ),
            (
                r#"{"data": {"a": [{"anything-but": "x"}]}}"#,
                r#"{"a": "x"}"#,
                false,
            ),
            (
                r#"{"data": {"a": [{"anything-but": {"prefix": "x"}}]}}"#,
                r#"{"a": "xy"}"#,
                false,
            ),
            (
                r#"{"data": {"a": [{"suffix": ".png"}]}}"#,
                r#"{"a": "cat.png"}"#,
                true,
            ),
            (
                r#"{"data": {"a": [{"equals-ignore-case": "ok"}]}}"#,
                r#"{"a": "OK"}"#,
                true,
            ),
            (
                r#"{"data": {"a": [{"wildcard": "a*c*e"}]}}"#,
                r#"{"a": "abcde"}"#,
                true,
            ),
            (
                r#"{"data": {"a": [{"wildcard": "a*c"}]}}"#,
                r#"{"a": "abcd"}"#,
                false,
            ),
            (r#"{"data": {"a": [null]}}"#, r#"{"a": null}"#, true),
            (r#"{"data": {"a": [2]}}"#, r#"{"a": 2.0}"#, true),
            (
                r#"{"data": {"tags": ["red"]}}"#,
                r#"{"tags": ["blue", "red"]}"#,
                true,
            ),
        ];
        for (pattern, data, expected) in cases {
            assert_eq!(
                filters(&[pattern]).matches(&rec("k", data)),
                expected,
                "{pattern} on {data}"
            );
        }
    }

    #[test]
    fn any_filter_may_match_and_no_criteria_match_all() {
        let f = filters(&[r#"{"data": {"a": [1]}}"#, r#"{"data": {"a": [2]}}"#]);
        assert!(f.matches(&rec("k", r#"{"a": 2}"#)));
        assert!(!f.matches(&rec("k", r#"{"a": 3}"#)));
        assert!(Filters::new(None).matches(&rec("k", "x")));
    }

    #[test]
    fn a_pattern_must_be_an_object_of_rule_lists() {
        assert!(check(&json!({"Filters": [{"Pattern": "{\"data\": {\"a\": [1]}}"}]})).is_ok());
        assert!(check(&json!({"Filters": [{"Pattern": "{\"data\": 1}"}]})).is_err());
        assert!(check(&json!({"Filters": [{"Pattern": "nope"}]})).is_err());
    }
}
