//! Reading request members: JSON types checked as AWS's front end checks
//! them (a wrong type is a SerializationException), and the constraints
//! the model puts on names and enums worded as its ValidationExceptions.

use riffle_coral::validate::{ModelPattern, Violations};
use serde_json::{Map, Value as Json};

use crate::errors::DynamoError;
use crate::value::{Item, item_from_json};

pub type Request = Map<String, Json>;

pub fn parse(body: &[u8]) -> Result<Request, DynamoError> {
    Ok(riffle_coral::json::parse::<Request>(body)?)
}

fn wrong_type(member: &str) -> DynamoError {
    DynamoError::Serialization(format!("Unexpected value type for member {member}"))
}

/// A string member, if present.
pub fn string<'a>(req: &'a Request, member: &str) -> Result<Option<&'a str>, DynamoError> {
    match req.get(member) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong_type(member)),
    }
}

pub fn boolean(req: &Request, member: &str) -> Result<Option<bool>, DynamoError> {
    match req.get(member) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(wrong_type(member)),
    }
}

pub fn integer(req: &Request, member: &str) -> Result<Option<i64>, DynamoError> {
    match req.get(member) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => Ok(n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))),
        Some(_) => Err(wrong_type(member)),
    }
}

/// A map of AttributeValues (Item, Key, ExclusiveStartKey), if present.
pub fn item(req: &Request, member: &str) -> Result<Option<Item>, DynamoError> {
    match req.get(member) {
        None | Some(Json::Null) => Ok(None),
        Some(json @ Json::Object(_)) => Ok(Some(item_from_json(json)?)),
        Some(_) => Err(wrong_type(member)),
    }
}

/// `[a-zA-Z0-9_.-]+`: TableName and IndexName.
struct NamePattern;

impl ModelPattern for NamePattern {
    fn source(&self) -> &'static str {
        "[a-zA-Z0-9_.-]+"
    }
    fn matches(&self, text: &str) -> bool {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    }
}

/// Table and index names: 3 to 255 of `[a-zA-Z0-9_.-]` (the model's
/// TableName and IndexName shapes).
const NAME_LEN_MIN: usize = 3;
const NAME_LEN_MAX: usize = 255;

/// Checks a name of the TableName/IndexName shape at `path`.
pub fn check_name(violations: &mut Violations, name: Option<&str>, path: &str) {
    violations.required(&name, path);
    violations.pattern(name, path, NamePattern);
    violations.length(name, path, NAME_LEN_MIN, NAME_LEN_MAX);
}

/// A `TableName` member, which may also be the table's ARN.
pub fn table_name(req: &Request) -> Result<String, DynamoError> {
    table_name_of(string(req, "TableName")?)
}

pub fn table_name_of(raw: Option<&str>) -> Result<String, DynamoError> {
    let name = raw.map(|n| match n.split_once(":table/") {
        Some((prefix, name)) if prefix.starts_with("arn:") => name,
        _ => n,
    });
    let mut violations = Violations::new();
    check_name(&mut violations, name, "tableName");
    violations.into_result::<DynamoError>()?;
    // Checked present just above.
    Ok(name.unwrap_or_default().to_owned())
}

/// `ReturnValues`, one of `allowed` (else `message`); `NONE` if absent.
pub fn return_values<'a>(
    req: &'a Request,
    allowed: &[&str],
    message: &str,
) -> Result<&'a str, DynamoError> {
    let value = string(req, "ReturnValues")?.unwrap_or("NONE");
    let all = ["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"];
    if !all.contains(&value) {
        let mut v = Violations::new();
        v.one_of(Some(value), "returnValues", &all);
        v.into_result::<DynamoError>()?;
    }
    if !allowed.contains(&value) {
        return Err(DynamoError::validation(message));
    }
    Ok(value)
}

/// `ConsumedCapacity` when `ReturnConsumedCapacity` asks for it: one unit
/// per call (Riffle does not meter capacity).
pub fn consumed(req: &Request, table: &str, out: &mut Map<String, Json>) {
    if matches!(
        req.get("ReturnConsumedCapacity").and_then(Json::as_str),
        Some("TOTAL" | "INDEXES")
    ) {
        out.insert(
            "ConsumedCapacity".to_owned(),
            serde_json::json!({"TableName": table, "CapacityUnits": 1.0}),
        );
    }
}
