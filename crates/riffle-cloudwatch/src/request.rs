//! PutMetricData's request, read from any of the three protocols into one
//! shape and checked as CloudWatch checks it.
//!
//! Each protocol's body first becomes a [`serde_json::Value`]: JSON 1.0 as
//! it is, rpc-v2-cbor by [`cbor_to_json`] (tags dropped: a timestamp is tag
//! 1 around epoch seconds), and the query protocol's form by the edge's
//! `member.N` flattening, whose leaves are all strings ([`Format::Query`]
//! lets numbers be read from them). Messages name members as the query
//! protocol does (`MetricData.member.1.MetricName`), as CloudWatch words
//! them in every protocol.

use serde_json::Value;

use crate::errors::CloudWatchError;

/// At most this many MetricData entries (MetricData and EntityMetricData
/// together) per call: the model's documentation of PutMetricData.
pub const METRIC_DATA_MAX: usize = 1000;
/// At most this many dimensions per metric: the model's `Dimensions` `max`.
pub const DIMENSIONS_MAX: usize = 30;
/// At most this many values (and counts) per metric: PutMetricData's docs.
pub const VALUES_MAX: usize = 150;
/// Names and namespaces: the model's `MetricName`/`Namespace`/`DimensionName` `max`.
pub const NAME_CHARS_MAX: usize = 255;
/// Dimension values: the model's `DimensionValue` `max`.
pub const DIMENSION_VALUE_CHARS_MAX: usize = 1024;
/// CloudWatch rejects values outside ±2^360 (PutMetricData's docs).
const VALUE_MAGNITUDE_MAX: f64 = 2.3485425827738332e108; // 2^360

/// The model's `StandardUnit` enum, in its order (AWS lists it so in errors).
const UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// The protocol a request came in, for how its scalars are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// awsJson1_0: numbers are JSON numbers.
    Json,
    /// smithy-rpc-v2-cbor: numbers are CBOR numbers.
    Cbor,
    /// awsQuery, flattened to JSON by the edge: every leaf is a string.
    Query,
}

/// One MetricDatum, reduced to what Riffle keeps of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Datum {
    pub name: String,
    /// Sorted by name (a metric's identity does not depend on their order).
    pub dimensions: Vec<(String, String)>,
    pub stats: Stats,
}

/// The statistics one datum contributes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

/// A checked PutMetricData call.
#[derive(Debug, Clone, PartialEq)]
pub struct PutMetricData {
    pub namespace: String,
    pub data: Vec<Datum>,
}

/// Reads and checks a PutMetricData request.
pub fn put_metric_data(request: &Value, format: Format) -> Result<PutMetricData, CloudWatchError> {
    let Value::Object(members) = request else {
        return Err(CloudWatchError::Serialization(
            "Expected a structure".into(),
        ));
    };
    let namespace = required_string(members.get("Namespace"), "Namespace")?;
    check_name(&namespace, "Namespace")?;
    if namespace.starts_with(':') || namespace.starts_with("AWS/") {
        return Err(invalid_value(&namespace, "Namespace"));
    }
    let mut entries: Vec<(String, &Value)> = Vec::new();
    for (at, datum) in list(members.get("MetricData"), "MetricData")?
        .iter()
        .enumerate()
    {
        entries.push((format!("MetricData.member.{}", at + 1), datum));
    }
    let entities = list(members.get("EntityMetricData"), "EntityMetricData")?;
    for (e, entity) in entities.iter().enumerate() {
        let path = format!("EntityMetricData.member.{}.MetricData", e + 1);
        for (at, datum) in list(entity.get("MetricData"), &path)?.iter().enumerate() {
            entries.push((format!("{path}.member.{}", at + 1), datum));
        }
    }
    if entries.len() > METRIC_DATA_MAX {
        return Err(CloudWatchError::InvalidParameterValue(format!(
            "The collection MetricData must not have a size greater than {METRIC_DATA_MAX}."
        )));
    }
    let data = entries
        .iter()
        .map(|(path, datum)| metric_datum(datum, path, format))
        .collect::<Result<_, _>>()?;
    Ok(PutMetricData { namespace, data })
}

fn metric_datum(datum: &Value, path: &str, format: Format) -> Result<Datum, CloudWatchError> {
    let name = required_string(datum.get("MetricName"), &format!("{path}.MetricName"))?;
    check_name(&name, &format!("{path}.MetricName"))?;
    let dimensions = dimensions(datum.get("Dimensions"), &format!("{path}.Dimensions"))?;
    if let Some(unit) = optional_string(datum.get("Unit"), &format!("{path}.Unit"))?
        && !UNITS.contains(&unit.as_str())
    {
        return Err(CloudWatchError::InvalidParameterValue(format!(
            "The parameter {path}.Unit must be a value in the set [ {} ].",
            UNITS.join(", ")
        )));
    }
    if let Some(resolution) = datum.get("StorageResolution").filter(|v| !v.is_null()) {
        let member = format!("{path}.StorageResolution");
        let value = number(resolution, &member, format)?;
        if value != 1.0 && value != 60.0 {
            return Err(CloudWatchError::InvalidParameterValue(format!(
                "The value {value} for parameter {member} is invalid."
            )));
        }
    }
    let stats = stats(datum, path, format)?;
    Ok(Datum {
        name,
        dimensions,
        stats,
    })
}

/// The datum's Value, StatisticValues or Values/Counts, as statistics.
fn stats(datum: &Value, path: &str, format: Format) -> Result<Stats, CloudWatchError> {
    let present = |name| datum.get(name).is_some_and(|v| !v.is_null());
    let value = present("Value");
    let set = present("StatisticValues");
    let values = present("Values");
    for (a, b, both) in [
        ("Value", "StatisticValues", value && set),
        ("Value", "Values", value && values),
        ("StatisticValues", "Values", set && values),
    ] {
        if both {
            return Err(CloudWatchError::InvalidParameterCombination(format!(
                "The parameters {path}.{a} and {path}.{b} are mutually exclusive and you have specified both."
            )));
        }
    }
    if set {
        return statistic_set(
            &datum["StatisticValues"],
            &format!("{path}.StatisticValues"),
            format,
        );
    }
    if values {
        return values_and_counts(datum, path, format);
    }
    if present("Counts") {
        return Err(CloudWatchError::InvalidParameterCombination(format!(
            "The parameters {path}.Values and {path}.Counts must be of the same size."
        )));
    }
    if !value {
        return Err(CloudWatchError::MissingParameter(format!(
            "The parameter {path}.Value is required."
        )));
    }
    let value = datapoint(&datum["Value"], &format!("{path}.Value"), format)?;
    Ok(Stats {
        count: 1.0,
        sum: value,
        min: value,
        max: value,
    })
}

fn statistic_set(set: &Value, path: &str, format: Format) -> Result<Stats, CloudWatchError> {
    let member = |name: &str| {
        let member = format!("{path}.{name}");
        match set.get(name).filter(|v| !v.is_null()) {
            Some(v) => datapoint(v, &member, format),
            None => Err(CloudWatchError::MissingParameter(format!(
                "The parameter {member} is required."
            ))),
        }
    };
    let stats = Stats {
        count: member("SampleCount")?,
        sum: member("Sum")?,
        min: member("Minimum")?,
        max: member("Maximum")?,
    };
    if stats.count <= 0.0 {
        return Err(invalid_value(&stats.count, &format!("{path}.SampleCount")));
    }
    if stats.min > stats.max {
        return Err(CloudWatchError::InvalidParameterCombination(format!(
            "The parameter {path}.Minimum must not be greater than {path}.Maximum."
        )));
    }
    Ok(stats)
}

fn values_and_counts(datum: &Value, path: &str, format: Format) -> Result<Stats, CloudWatchError> {
    let values_path = format!("{path}.Values");
    let values = list(datum.get("Values"), &values_path)?;
    if values.len() > VALUES_MAX {
        return Err(CloudWatchError::InvalidParameterValue(format!(
            "The collection {values_path} must not have a size greater than {VALUES_MAX}."
        )));
    }
    let counts_path = format!("{path}.Counts");
    let counts = list(datum.get("Counts"), &counts_path)?;
    if !counts.is_empty() && counts.len() != values.len() {
        return Err(CloudWatchError::InvalidParameterCombination(format!(
            "The parameters {values_path} and {counts_path} must be of the same size."
        )));
    }
    let mut stats = Stats {
        count: 0.0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };
    for (at, value) in values.iter().enumerate() {
        let value = datapoint(value, &format!("{values_path}.member.{}", at + 1), format)?;
        let count = match counts.get(at) {
            Some(count) => datapoint(count, &format!("{counts_path}.member.{}", at + 1), format)?,
            None => 1.0,
        };
        if count < 0.0 {
            return Err(invalid_value(
                &count,
                &format!("{counts_path}.member.{}", at + 1),
            ));
        }
        stats.count += count;
        stats.sum += value * count;
        stats.min = stats.min.min(value);
        stats.max = stats.max.max(value);
    }
    if values.is_empty() {
        return Err(CloudWatchError::MissingParameter(format!(
            "The parameter {values_path} is required."
        )));
    }
    Ok(stats)
}

fn dimensions(raw: Option<&Value>, path: &str) -> Result<Vec<(String, String)>, CloudWatchError> {
    let raw = list(raw, path)?;
    if raw.len() > DIMENSIONS_MAX {
        return Err(CloudWatchError::InvalidParameterValue(format!(
            "The collection {path} must not have a size greater than {DIMENSIONS_MAX}."
        )));
    }
    let mut dimensions = Vec::with_capacity(raw.len());
    for (at, dimension) in raw.iter().enumerate() {
        let member = format!("{path}.member.{}", at + 1);
        let name = required_string(dimension.get("Name"), &format!("{member}.Name"))?;
        check_name(&name, &format!("{member}.Name"))?;
        let value = required_string(dimension.get("Value"), &format!("{member}.Value"))?;
        let length = value.chars().count();
        if length == 0 || length > DIMENSION_VALUE_CHARS_MAX {
            return Err(CloudWatchError::InvalidParameterValue(format!(
                "The parameter {member}.Value must be between 1 and {DIMENSION_VALUE_CHARS_MAX} characters long."
            )));
        }
        dimensions.push((name, value));
    }
    dimensions.sort();
    if dimensions.windows(2).any(|pair| pair[0].0 == pair[1].0) {
        return Err(CloudWatchError::InvalidParameterValue(
            "No metric may specify the same dimension name twice.".into(),
        ));
    }
    Ok(dimensions)
}

/// A name of 1 to [`NAME_CHARS_MAX`] characters.
fn check_name(name: &str, member: &str) -> Result<(), CloudWatchError> {
    let length = name.chars().count();
    if length == 0 || length > NAME_CHARS_MAX {
        return Err(CloudWatchError::InvalidParameterValue(format!(
            "The parameter {member} must be between 1 and {NAME_CHARS_MAX} characters long."
        )));
    }
    Ok(())
}

fn invalid_value(value: &dyn std::fmt::Display, member: &str) -> CloudWatchError {
    CloudWatchError::InvalidParameterValue(format!(
        "The value {value} for parameter {member} is invalid."
    ))
}

/// A list member: absent and null are empty.
fn list<'v>(raw: Option<&'v Value>, member: &str) -> Result<&'v [Value], CloudWatchError> {
    match raw {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(CloudWatchError::Serialization(format!(
            "Expected a list for {member}"
        ))),
    }
}

fn optional_string(raw: Option<&Value>, member: &str) -> Result<Option<String>, CloudWatchError> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(CloudWatchError::Serialization(format!(
            "Expected a string for {member}"
        ))),
    }
}

fn required_string(raw: Option<&Value>, member: &str) -> Result<String, CloudWatchError> {
    optional_string(raw, member)?.ok_or_else(|| {
        CloudWatchError::MissingParameter(format!("The parameter {member} is required."))
    })
}

/// A number as the protocol writes it: non-finite doubles are the strings
/// `NaN`, `Infinity` and `-Infinity` in JSON, and every query value is text.
fn number(raw: &Value, member: &str, format: Format) -> Result<f64, CloudWatchError> {
    let parsed = match raw {
        Value::Number(n) => n.as_f64(),
        Value::String(text) if format == Format::Query => text.trim().parse::<f64>().ok(),
        Value::String(text) => match text.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| match raw {
        Value::String(text) => invalid_value(text, member),
        _ => CloudWatchError::Serialization(format!("Expected a number for {member}")),
    })
}

/// A datapoint value: finite and within ±2^360, as CloudWatch requires.
fn datapoint(raw: &Value, member: &str, format: Format) -> Result<f64, CloudWatchError> {
    let value = number(raw, member, format)?;
    if !value.is_finite() || value.abs() > VALUE_MAGNITUDE_MAX {
        return Err(invalid_value(&value, member));
    }
    Ok(value)
}

/// A CBOR value as JSON: maps with text keys, arrays, text, numbers (tags,
/// such as a timestamp's 1, dropped); non-finite floats become JSON's
/// strings for them. Byte strings have no place in PutMetricData and
/// become null.
pub fn cbor_to_json(value: ciborium::Value) -> Value {
    use ciborium::Value as C;
    match value {
        C::Integer(i) => {
            let i = i128::from(i);
            i64::try_from(i)
                .map(Value::from)
                .unwrap_or_else(|_| Value::from(i as f64))
        }
        C::Float(f) if f.is_nan() => Value::from("NaN"),
        C::Float(f) if f.is_infinite() => {
            Value::from(if f > 0.0 { "Infinity" } else { "-Infinity" })
        }
        C::Float(f) => Value::from(f),
        C::Text(text) => Value::String(text),
        C::Bool(b) => Value::Bool(b),
        C::Tag(_, inner) => cbor_to_json(*inner),
        C::Array(items) => Value::Array(items.into_iter().map(cbor_to_json).collect()),
        C::Map(pairs) => Value::Object(
            pairs
                .into_iter()
                .filter_map(|(k, v)| match k {
                    C::Text(key) => Some((key, cbor_to_json(v))),
                    _ => None,
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(request: Value, format: Format) -> Result<PutMetricData, CloudWatchError> {
        put_metric_data(&request, format)
    }

    #[test]
    fn values_statistic_sets_and_value_lists_become_statistics() {
        let request = json!({"Namespace": "App", "MetricData": [
            {"MetricName": "A", "Value": 2.5, "Dimensions": [
                {"Name": "ShardId", "Value": "s-1"}, {"Name": "Operation", "Value": "Process"}]},
            {"MetricName": "B", "StatisticValues": {"SampleCount": 4, "Sum": 10, "Minimum": 1, "Maximum": 4}},
            {"MetricName": "C", "Values": [1, 3], "Counts": [2, 1]},
        ]});
        let put = put(request, Format::Json).unwrap();
        assert_eq!(put.namespace, "App");
        assert_eq!(
            put.data[0].dimensions,
            vec![
                ("Operation".to_owned(), "Process".to_owned()),
                ("ShardId".to_owned(), "s-1".to_owned())
            ]
        );
        assert_eq!(
            put.data[0].stats,
            Stats {
                count: 1.0,
                sum: 2.5,
                min: 2.5,
                max: 2.5
            }
        );
        assert_eq!(
            put.data[1].stats,
            Stats {
                count: 4.0,
                sum: 10.0,
                min: 1.0,
                max: 4.0
            }
        );
        assert_eq!(
            put.data[2].stats,
            Stats {
                count: 3.0,
                sum: 5.0,
                min: 1.0,
                max: 3.0
            }
        );
    }

    #[test]
    fn query_values_are_read_from_text_and_json_values_are_not() {
        let request =
            json!({"Namespace": "App", "MetricData": [{"MetricName": "A", "Value": "7.5"}]});
        assert_eq!(
            put(request.clone(), Format::Query).unwrap().data[0]
                .stats
                .sum,
            7.5
        );
        let refused = put(request, Format::Json).unwrap_err();
        assert_eq!(refused.code(), "InvalidParameterValue");
    }

    #[test]
    fn limits_and_missing_members_get_cloudwatchs_codes_and_texts() {
        let many: Vec<Value> = (0..1001)
            .map(|_| json!({"MetricName": "A", "Value": 1}))
            .collect();
        let refused = put(json!({"Namespace": "N", "MetricData": many}), Format::Json).unwrap_err();
        assert_eq!(
            refused,
            CloudWatchError::InvalidParameterValue(
                "The collection MetricData must not have a size greater than 1000.".into()
            )
        );
        let dims: Vec<Value> = (0..31)
            .map(|i| json!({"Name": format!("d{i}"), "Value": "v"}))
            .collect();
        let refused = put(
            json!({"Namespace": "N", "MetricData": [{"MetricName": "A", "Value": 1, "Dimensions": dims}]}),
            Format::Json,
        )
        .unwrap_err();
        assert_eq!(
            refused.message(),
            "The collection MetricData.member.1.Dimensions must not have a size greater than 30."
        );
        let missing = put(json!({"MetricData": []}), Format::Json).unwrap_err();
        assert_eq!(
            missing,
            CloudWatchError::MissingParameter("The parameter Namespace is required.".into())
        );
        let empty = put(
            json!({"Namespace": "N", "MetricData": [{"MetricName": "", "Value": 1}]}),
            Format::Json,
        )
        .unwrap_err();
        assert_eq!(empty.code(), "InvalidParameterValue");
        let both = put(
            json!({"Namespace": "N", "MetricData": [{"MetricName": "A", "Values": [1, 2], "Counts": [1]}]}),
            Format::Json,
        )
        .unwrap_err();
        assert_eq!(both.code(), "InvalidParameterCombination");
        let nan = put(
            json!({"Namespace": "N", "MetricData": [{"MetricName": "A", "Value": "NaN"}]}),
            Format::Json,
        )
        .unwrap_err();
        assert_eq!(
            nan.message(),
            "The value NaN for parameter MetricData.member.1.Value is invalid."
        );
        let unit = put(
            json!({"Namespace": "N", "MetricData": [{"MetricName": "A", "Value": 1, "Unit": "Parsecs"}]}),
            Format::Json,
        )
        .unwrap_err();
        assert!(unit.message().starts_with(
            "The parameter MetricData.member.1.Unit must be a value in the set [ Seconds,"
        ));
    }

    #[test]
    fn cbor_timestamps_and_numbers_read_as_json() {
        use ciborium::Value as C;
        let cbor = C::Map(vec![
            (
                C::Text("Timestamp".into()),
                C::Tag(1, Box::new(C::Float(1.5e9))),
            ),
            (C::Text("Count".into()), C::Integer(3.into())),
            (C::Text("Bad".into()), C::Float(f64::NEG_INFINITY)),
        ]);
        assert_eq!(
            cbor_to_json(cbor),
            json!({"Timestamp": 1.5e9, "Count": 3, "Bad": "-Infinity"})
        );
    }
}
