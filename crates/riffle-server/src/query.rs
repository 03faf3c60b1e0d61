//! The query protocol's form bodies (`Action=PutMetricData&Version=…&
//! MetricData.member.1.MetricName=…`), read into the JSON the services
//! read: a key's dotted parts are members, `member.N` is the N-th item of
//! a list (1-based). Every value stays a string: the form does not say
//! which are numbers, the service's model does.
//!
//! `A.member.2.B=x&A.member.1.B=y&C=z` becomes
//! `{"A":[{"B":"y"},{"B":"x"}],"C":"z"}`; a list with a gap has `null`
//! in it.

use serde_json::{Map, Value};

/// The highest `member.N` read: well above any list of a query service's
/// model (CloudWatch's longest is 1,000), low enough that a forged index
/// cannot make the edge allocate much.
pub(crate) const LIST_MEMBERS_MAX: usize = 10_000;

/// A form that is not one the query protocol sends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FormError {
    #[error("the list index in {0} is out of range")]
    Index(String),
    #[error("{0} is both a value and a structure or list")]
    Conflict(String),
}

/// A query-protocol request: its `Action`, `Version` and other members.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Form {
    pub action: Option<String>,
    pub version: Option<String>,
    pub members: Value,
}

/// Reads a form body (`application/x-www-form-urlencoded`).
pub(crate) fn parse(body: &[u8]) -> Result<Form, FormError> {
    let mut form = Form {
        action: None,
        version: None,
        members: Value::Object(Map::new()),
    };
    for (key, value) in form_urlencoded::parse(body) {
        match &*key {
            "Action" => form.action = Some(value.into_owned()),
            "Version" => form.version = Some(value.into_owned()),
            _ => insert(&mut form.members, &key, value.into_owned())?,
        }
    }
    Ok(form)
}

/// Puts `value` at the dotted `key`.
fn insert(root: &mut Value, key: &str, value: String) -> Result<(), FormError> {
    let parts: Vec<&str> = key.split('.').collect();
    let conflict = || FormError::Conflict(key.to_owned());
    let mut at = root;
    let mut i = 0;
    while i < parts.len() {
        let index = match (parts[i], parts.get(i + 1)) {
            ("member", Some(n)) => n.parse::<usize>().ok(),
            _ => None,
        };
        if let Some(n) = index {
            if n == 0 || n > LIST_MEMBERS_MAX {
                return Err(FormError::Index(key.to_owned()));
            }
            if at.is_null() {
                *at = Value::Array(Vec::new());
            }
            let Value::Array(items) = at else {
                return Err(conflict());
            };
            if items.len() < n {
                items.resize(n, Value::Null);
            }
            at = &mut items[n - 1];
            i += 2;
        } else {
            if at.is_null() {
                *at = Value::Object(Map::new());
            }
            let Value::Object(members) = at else {
                return Err(conflict());
            };
            at = members.entry(parts[i]).or_insert(Value::Null);
            i += 1;
        }
    }
    if !at.is_null() && !at.is_string() {
        return Err(conflict());
    }
    *at = Value::String(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn member_n_keys_become_lists_in_index_order() {
        let form = parse(
            b"Action=PutMetricData&Version=2010-08-01&Namespace=KCL%20app\
              &MetricData.member.2.MetricName=B&MetricData.member.1.MetricName=A\
              &MetricData.member.1.Dimensions.member.1.Name=ShardId\
              &MetricData.member.1.Dimensions.member.1.Value=shardId-000000000001\
              &MetricData.member.1.StatisticValues.Sum=10.5\
              &MetricData.member.2.Values.member.1=1&MetricData.member.2.Values.member.2=2",
        )
        .unwrap();
        assert_eq!(form.action.as_deref(), Some("PutMetricData"));
        assert_eq!(form.version.as_deref(), Some("2010-08-01"));
        assert_eq!(
            form.members,
            json!({"Namespace": "KCL app", "MetricData": [
                {"MetricName": "A", "Dimensions": [{"Name": "ShardId", "Value": "shardId-000000000001"}],
                 "StatisticValues": {"Sum": "10.5"}},
                {"MetricName": "B", "Values": ["1", "2"]},
            ]})
        );
    }

    #[test]
    fn gaps_are_null_and_forged_indexes_and_conflicts_are_refused() {
        let form = parse(b"L.member.2=x").unwrap();
        assert_eq!(form.members, json!({"L": [null, "x"]}));
        assert!(matches!(parse(b"L.member.0=x"), Err(FormError::Index(_))));
        assert!(matches!(
            parse(b"L.member.10001=x"),
            Err(FormError::Index(_))
        ));
        assert!(matches!(parse(b"A=1&A.B=2"), Err(FormError::Conflict(_))));
        assert!(matches!(parse(b"A.B=2&A=1"), Err(FormError::Conflict(_))));
        // A repeated key keeps its last value.
        assert_eq!(parse(b"A=1&A=2").unwrap().members, json!({"A": "2"}));
    }
}
