//! The legacy conditional parameters (KCL 1.x and older clients use them):
//! `Expected` (with `Exists`/`Value` or `ComparisonOperator`), the filters
//! and key conditions of the same `Condition` shape (`ScanFilter`,
//! `QueryFilter`, `KeyConditions`), and `AttributeUpdates` with PUT, ADD
//! and DELETE. Conditions become the same trees as expressions.

use serde_json::Value as Json;

use crate::errors::DynamoError;
use crate::expr::{Cmp, Cond, Operand, Step};
use crate::value::{Item, Value, set_difference, set_union};

/// A `Condition`: `ComparisonOperator` over the attribute and
/// `AttributeValueList`.
pub fn condition(name: &str, op: &str, args: Vec<Value>) -> Result<Cond, DynamoError> {
    let path = || Operand::Path(vec![Step::Name(name.to_owned())]);
    let wants = |n: usize| -> Result<(), DynamoError> {
        if args.len() == n {
            Ok(())
        } else {
            Err(DynamoError::invalid(format!(
                "Invalid number of argument(s) for the {op} ComparisonOperator"
            )))
        }
    };
    let cmp = |c: Cmp| -> Result<Cond, DynamoError> {
        wants(1)?;
        if c != Cmp::Eq
            && c != Cmp::Ne
            && !matches!(args[0], Value::S(_) | Value::N(_) | Value::B(_))
        {
            return Err(DynamoError::invalid(format!(
                "ComparisonOperator {op} is not valid for {} AttributeValue type",
                args[0].type_name()
            )));
        }
        Ok(Cond::Cmp(path(), c, Operand::Value(args[0].clone())))
    };
    let path_only = vec![Step::Name(name.to_owned())];
    match op {
        "EQ" => cmp(Cmp::Eq),
        "NE" => cmp(Cmp::Ne),
        "LT" => cmp(Cmp::Lt),
        "LE" => cmp(Cmp::Le),
        "GT" => cmp(Cmp::Gt),
        "GE" => cmp(Cmp::Ge),
        "NOT_NULL" => wants(0).map(|()| Cond::Exists(path_only)),
        "NULL" => wants(0).map(|()| Cond::NotExists(path_only)),
        "CONTAINS" => wants(1).map(|()| Cond::Contains(path(), Operand::Value(args[0].clone()))),
        "NOT_CONTAINS" => wants(1).map(|()| {
            Cond::And(
                Box::new(Cond::Exists(path_only)),
                Box::new(Cond::Not(Box::new(Cond::Contains(
                    path(),
                    Operand::Value(args[0].clone()),
                )))),
            )
        }),
        "BEGINS_WITH" => {
            wants(1).map(|()| Cond::BeginsWith(path(), Operand::Value(args[0].clone())))
        }
        "IN" => {
            if args.is_empty() {
                return wants(1).map(|()| unreachable!("an empty list is refused"));
            }
            Ok(Cond::In(
                path(),
                args.iter().cloned().map(Operand::Value).collect(),
            ))
        }
        "BETWEEN" => {
            wants(2)?;
            Ok(Cond::Between(
                path(),
                Operand::Value(args[0].clone()),
                Operand::Value(args[1].clone()),
            ))
        }
        other => Err(DynamoError::validation(format!(
            "1 validation error detected: Value '{other}' at 'comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
        ))),
    }
}

fn values(list: Option<&Json>) -> Result<Vec<Value>, DynamoError> {
    match list {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items.iter().map(Value::from_json).collect(),
        Some(_) => Err(DynamoError::Serialization(
            "Unexpected value type in payload".to_owned(),
        )),
    }
}

fn combine(conds: Vec<Cond>, operator: Option<&str>) -> Option<Cond> {
    let or = operator == Some("OR");
    conds.into_iter().reduce(|a, b| {
        if or {
            Cond::Or(Box::new(a), Box::new(b))
        } else {
            Cond::And(Box::new(a), Box::new(b))
        }
    })
}

/// `ScanFilter`, `QueryFilter` or `KeyConditions`: attribute to Condition.
pub fn filter(map: &Json, operator: Option<&str>) -> Result<Option<Cond>, DynamoError> {
    let Json::Object(map) = map else {
        return Ok(None);
    };
    let mut conds = Vec::new();
    for (name, entry) in map {
        let op = entry
            .get("ComparisonOperator")
            .and_then(Json::as_str)
            .ok_or_else(|| {
                DynamoError::validation(
                    "1 validation error detected: Value null at 'comparisonOperator' failed to satisfy constraint: Member must not be null",
                )
            })?;
        conds.push(condition(
            name,
            op,
            values(entry.get("AttributeValueList"))?,
        )?);
    }
    Ok(combine(conds, operator))
}

/// `Expected` with `ConditionalOperator`.
pub fn expected(map: &Json, operator: Option<&str>) -> Result<Option<Cond>, DynamoError> {
    let Json::Object(map) = map else {
        return Ok(None);
    };
    let mut conds = Vec::new();
    for (name, entry) in map {
        let value = match entry.get("Value") {
            None | Some(Json::Null) => None,
            Some(v) => Some(Value::from_json(v)?),
        };
        let exists = entry.get("Exists").and_then(Json::as_bool);
        let list = entry.get("AttributeValueList").filter(|v| !v.is_null());
        let cond = match entry.get("ComparisonOperator").and_then(Json::as_str) {
            Some(op) => {
                if exists.is_some() {
                    return Err(DynamoError::invalid(format!(
                        "Exists and ComparisonOperator cannot be used together for Attribute: {name}"
                    )));
                }
                if value.is_some() && list.is_some() {
                    return Err(DynamoError::invalid(format!(
                        "Value and AttributeValueList cannot be used together for Attribute: {name}"
                    )));
                }
                let args = match value {
                    Some(v) => vec![v],
                    None => values(list)?,
                };
                condition(name, op, args)?
            }
            None => match (exists.unwrap_or(true), value) {
                (true, Some(v)) => condition(name, "EQ", vec![v])?,
                (true, None) => {
                    return Err(DynamoError::invalid(format!(
                        "Value must be provided when Exists is true for Attribute: {name}"
                    )));
                }
                (false, None) => Cond::NotExists(vec![Step::Name(name.clone())]),
                (false, Some(_)) => {
                    return Err(DynamoError::invalid(format!(
                        "Value cannot be used when Exists is false for Attribute: {name}"
                    )));
                }
            },
        };
        conds.push(cond);
    }
    Ok(combine(conds, operator))
}

/// One entry of `AttributeUpdates`.
pub struct AttributeUpdate {
    pub name: String,
    pub action: String,
    pub value: Option<Value>,
}

pub fn attribute_updates(map: &Json) -> Result<Vec<AttributeUpdate>, DynamoError> {
    let Json::Object(map) = map else {
        return Ok(Vec::new());
    };
    map.iter()
        .map(|(name, entry)| {
            let action = entry
                .get("Action")
                .and_then(Json::as_str)
                .unwrap_or("PUT")
                .to_owned();
            if !matches!(action.as_str(), "PUT" | "ADD" | "DELETE") {
                return Err(DynamoError::validation(format!(
                    "1 validation error detected: Value '{action}' at 'attributeUpdates.{name}.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]"
                )));
            }
            let value = match entry.get("Value") {
                None | Some(Json::Null) => None,
                Some(v) => Some(Value::from_json(v)?),
            };
            Ok(AttributeUpdate {
                name: name.clone(),
                action,
                value,
            })
        })
        .collect()
}

/// Applies `AttributeUpdates` to `item`.
pub fn apply_attribute_updates(
    item: &mut Item,
    updates: &[AttributeUpdate],
) -> Result<(), DynamoError> {
    for update in updates {
        let name = &update.name;
        match (update.action.as_str(), &update.value) {
            ("PUT", Some(v)) => {
                item.insert(name.clone(), v.clone());
            }
            ("DELETE", None) => {
                item.remove(name);
            }
            (_, None) => {
                return Err(DynamoError::invalid(
                    "Only DELETE action is allowed when no attribute value is specified",
                ));
            }
            ("DELETE", Some(v)) => {
                if !matches!(v, Value::Ss(_) | Value::Ns(_) | Value::Bs(_)) {
                    return Err(DynamoError::invalid(format!(
                        "DELETE action with value is not supported for the type {}",
                        v.type_name()
                    )));
                }
                if let Some(old) = item.get(name) {
                    match set_difference(old, v) {
                        Some(Some(left)) => {
                            item.insert(name.clone(), left);
                        }
                        Some(None) => {
                            item.remove(name);
                        }
                        None => {
                            return Err(DynamoError::invalid(
                                "Type mismatch for attribute to update",
                            ));
                        }
                    }
                }
            }
            (_, Some(v)) => {
                // ADD
                let new = match (item.get(name), v) {
                    (_, Value::S(_) | Value::B(_) | Value::Bool(_) | Value::Null | Value::M(_)) => {
                        return Err(DynamoError::invalid(format!(
                            "ADD action is not supported for the type {}",
                            v.type_name()
                        )));
                    }
                    (None, v) => v.clone(),
                    (Some(Value::N(a)), Value::N(b)) => Value::N(a.add(b)?),
                    (Some(Value::L(a)), Value::L(b)) => {
                        Value::L(a.iter().chain(b).cloned().collect())
                    }
                    (Some(old), v) => set_union(old, v).ok_or_else(|| {
                        DynamoError::invalid("Type mismatch for attribute to update")
                    })?,
                };
                item.insert(name.clone(), new);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::item_from_json;
    use serde_json::json;

    #[test]
    fn expected_exists_value_and_comparison_operators_decide_as_dynamodb_does() {
        let it = item_from_json(&json!({"owner": {"S": "w1"}, "counter": {"N": "3"}})).unwrap();
        let holds = |e: Json| expected(&e, None).unwrap().unwrap().eval(&it);
        assert!(holds(json!({"owner": {"Value": {"S": "w1"}}})));
        assert!(!holds(json!({"owner": {"Value": {"S": "w2"}}})));
        assert!(holds(json!({"nope": {"Exists": false}})));
        assert!(!holds(json!({"owner": {"Exists": false}})));
        assert!(holds(
            json!({"counter": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "2"}]}})
        ));
        assert!(holds(
            json!({"counter": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"N": "1"}, {"N": "3"}]}})
        ));
        assert!(holds(json!({"owner": {"ComparisonOperator": "NOT_NULL"}})));
        let or = expected(
            &json!({"owner": {"Value": {"S": "x"}}, "counter": {"Value": {"N": "3"}}}),
            Some("OR"),
        )
        .unwrap()
        .unwrap();
        assert!(or.eval(&it));
    }

    #[test]
    fn contradictory_expected_entries_are_refused() {
        let err = |e: Json| expected(&e, None).unwrap_err().message();
        assert_eq!(
            err(json!({"a": {"Exists": true}})),
            "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: a"
        );
        assert_eq!(
            err(json!({"a": {"Exists": false, "Value": {"S": "x"}}})),
            "One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: a"
        );
        assert!(
            err(json!({"a": {"ComparisonOperator": "EQ"}}))
                .contains("Invalid number of argument(s) for the EQ")
        );
    }

    #[test]
    fn attribute_updates_put_add_and_delete() {
        let mut it =
            item_from_json(&json!({"n": {"N": "1"}, "s": {"SS": ["a", "b"]}, "x": {"S": "y"}}))
                .unwrap();
        let updates = attribute_updates(&json!({
            "n": {"Action": "ADD", "Value": {"N": "2"}},
            "s": {"Action": "DELETE", "Value": {"SS": ["a"]}},
            "x": {"Action": "DELETE"},
            "fresh": {"Value": {"BOOL": true}},
            "c": {"Action": "ADD", "Value": {"N": "5"}}
        }))
        .unwrap();
        apply_attribute_updates(&mut it, &updates).unwrap();
        assert_eq!(
            it,
            item_from_json(&json!({"n": {"N": "3"}, "s": {"SS": ["b"]}, "fresh": {"BOOL": true}, "c": {"N": "5"}})).unwrap()
        );
        let bad = attribute_updates(&json!({"x": {"Action": "ADD", "Value": {"S": "a"}}})).unwrap();
        assert!(
            apply_attribute_updates(&mut it, &bad)
                .unwrap_err()
                .message()
                .contains("ADD action is not supported for the type S")
        );
    }
}
