//! Hive types as Arrow types, and JSON values built into Arrow arrays per
//! type. [`check`] decides whether a record fits; [`build`] then builds
//! the arrays of the records that fit (its reads cannot fail on them).

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, MapArray, StructArray};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields, TimeUnit};
use riffle_glue::HiveType;
use serde_json::Value;

use super::Reader;
use super::values::{self, Refusal};

/// Timestamps are written in UTC, to the microsecond.
const UTC: &str = "UTC";

/// The Arrow type of a Hive type (every field nullable, as Hive's are,
/// but a map's keys).
pub fn arrow_type(t: &HiveType) -> DataType {
    match t {
        HiveType::Boolean => DataType::Boolean,
        HiveType::TinyInt => DataType::Int8,
        HiveType::SmallInt => DataType::Int16,
        HiveType::Int => DataType::Int32,
        HiveType::BigInt => DataType::Int64,
        HiveType::Float => DataType::Float32,
        HiveType::Double => DataType::Float64,
        HiveType::String | HiveType::Char(_) | HiveType::Varchar(_) => DataType::Utf8,
        HiveType::Binary => DataType::Binary,
        HiveType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale as i8),
        HiveType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
        HiveType::Date => DataType::Date32,
        HiveType::Array(element) => DataType::List(list_field(element)),
        HiveType::Map(key, value) => DataType::Map(map_field(key, value), false),
        HiveType::Struct(fields) => DataType::Struct(struct_fields(fields)),
    }
}

fn list_field(element: &HiveType) -> Arc<Field> {
    Arc::new(Field::new("element", arrow_type(element), true))
}

fn map_entries(key: &HiveType, value: &HiveType) -> Fields {
    Fields::from(vec![
        Field::new("key", arrow_type(key), false),
        Field::new("value", arrow_type(value), true),
    ])
}

fn map_field(key: &HiveType, value: &HiveType) -> Arc<Field> {
    let entries = DataType::Struct(map_entries(key, value));
    Arc::new(Field::new("key_value", entries, false))
}

fn struct_fields(fields: &[(String, HiveType)]) -> Fields {
    fields
        .iter()
        .map(|(name, t)| Field::new(name, arrow_type(t), true))
        .collect()
}

/// A present, non-null value.
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// Whether `value` (absent or null: a null) can be read as `t`.
pub fn check(t: &HiveType, value: Option<&Value>, reader: &Reader) -> Result<(), Refusal> {
    let Some(value) = present(value) else {
        return Ok(());
    };
    match t {
        HiveType::Array(element) => match value {
            Value::Array(items) => items
                .iter()
                .try_for_each(|v| check(element, Some(v), reader)),
            _ => Err(format!("Cannot convert {value} to array")),
        },
        HiveType::Map(key, item) => match value {
            Value::Object(entries) => entries.iter().try_for_each(|(k, v)| {
                check(key, Some(&Value::String(k.clone())), reader)?;
                check(item, Some(v), reader)
            }),
            _ => Err(format!("Cannot convert {value} to map")),
        },
        HiveType::Struct(fields) => match value {
            Value::Object(object) => fields
                .iter()
                .try_for_each(|(name, t)| check(t, reader.field(object, name), reader)),
            _ => Err(format!("Cannot convert {value} to struct")),
        },
        HiveType::String | HiveType::Char(_) | HiveType::Varchar(_) => Ok(()),
        primitive => primitive_check(primitive, value, reader),
    }
}

fn primitive_check(t: &HiveType, value: &Value, reader: &Reader) -> Result<(), Refusal> {
    match t {
        HiveType::Boolean => values::boolean(value).map(drop),
        HiveType::TinyInt => {
            values::integer(value, i8::MIN.into(), i8::MAX.into(), "tinyint").map(drop)
        }
        HiveType::SmallInt => {
            values::integer(value, i16::MIN.into(), i16::MAX.into(), "smallint").map(drop)
        }
        HiveType::Int => values::integer(value, i32::MIN.into(), i32::MAX.into(), "int").map(drop),
        HiveType::BigInt => values::integer(value, i64::MIN, i64::MAX, "bigint").map(drop),
        HiveType::Float | HiveType::Double => values::double(value).map(drop),
        HiveType::Binary => values::binary(value).map(drop),
        HiveType::Decimal { precision, scale } => {
            values::decimal(value, *precision, *scale).map(drop)
        }
        HiveType::Timestamp => values::timestamp(value, reader.timestamp_formats()).map(drop),
        HiveType::Date => values::date(value).map(drop),
        _ => Ok(()),
    }
}

/// The array of `values` (each already [`check`]ed) as `t`.
pub fn build(t: &HiveType, values: &[Option<&Value>], reader: &Reader) -> ArrayRef {
    let values: Vec<Option<&Value>> = values.iter().map(|v| present(*v)).collect();
    macro_rules! primitive {
        ($builder:expr, $read:expr) => {{
            let mut b = $builder;
            for v in &values {
                b.append_option(v.and_then(|v| $read(v)));
            }
            Arc::new(b.finish()) as ArrayRef
        }};
    }
    let int = |v: &Value| values::integer(v, i64::MIN, i64::MAX, "").ok();
    match t {
        HiveType::Boolean => primitive!(BooleanBuilder::new(), |v| values::boolean(v).ok()),
        HiveType::TinyInt => primitive!(Int8Builder::new(), |v| int(v).map(|n| n as i8)),
        HiveType::SmallInt => primitive!(Int16Builder::new(), |v| int(v).map(|n| n as i16)),
        HiveType::Int => primitive!(Int32Builder::new(), |v| int(v).map(|n| n as i32)),
        HiveType::BigInt => primitive!(Int64Builder::new(), int),
        HiveType::Float => primitive!(Float32Builder::new(), |v| values::double(v)
            .ok()
            .map(|d| d as f32)),
        HiveType::Double => primitive!(Float64Builder::new(), |v| values::double(v).ok()),
        HiveType::String => primitive!(StringBuilder::new(), |v| Some(values::string(v))),
        HiveType::Char(n) | HiveType::Varchar(n) => {
            primitive!(StringBuilder::new(), |v| Some(values::truncated(
                values::string(v),
                *n
            )))
        }
        HiveType::Binary => primitive!(BinaryBuilder::new(), |v| values::binary(v).ok()),
        HiveType::Decimal { precision, scale } => {
            let builder = Decimal128Builder::new().with_data_type(arrow_type(t));
            primitive!(builder, |v| values::decimal(v, *precision, *scale).ok())
        }
        HiveType::Timestamp => {
            let builder = TimestampMicrosecondBuilder::new().with_timezone(UTC);
            primitive!(builder, |v| values::timestamp(
                v,
                reader.timestamp_formats()
            )
            .ok())
        }
        HiveType::Date => primitive!(Date32Builder::new(), |v| values::date(v).ok()),
        HiveType::Array(element) => build_list(element, &values, reader),
        HiveType::Map(key, item) => build_map(key, item, &values, reader),
        HiveType::Struct(fields) => Arc::new(build_struct(fields, &values, reader)),
    }
}

fn nulls(values: &[Option<&Value>]) -> Option<NullBuffer> {
    let valid: Vec<bool> = values.iter().map(Option::is_some).collect();
    Some(NullBuffer::from(valid)).filter(|n| n.null_count() > 0)
}

fn build_list(element: &HiveType, values: &[Option<&Value>], reader: &Reader) -> ArrayRef {
    let mut items: Vec<Option<&Value>> = Vec::new();
    let mut lengths = Vec::with_capacity(values.len());
    for v in values {
        let list = v
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        items.extend(list.iter().map(Some));
        lengths.push(list.len());
    }
    let child = build(element, &items, reader);
    let offsets = OffsetBuffer::from_lengths(lengths);
    Arc::new(ListArray::new(
        list_field(element),
        offsets,
        child,
        nulls(values),
    ))
}

fn build_map(
    key: &HiveType,
    item: &HiveType,
    values: &[Option<&Value>],
    reader: &Reader,
) -> ArrayRef {
    let empty = serde_json::Map::new();
    let mut keys: Vec<Value> = Vec::new();
    let mut items: Vec<Option<&Value>> = Vec::new();
    let mut lengths = Vec::with_capacity(values.len());
    for v in values {
        let entries = v.and_then(Value::as_object).unwrap_or(&empty);
        keys.extend(entries.keys().map(|k| Value::String(k.clone())));
        items.extend(entries.values().map(Some));
        lengths.push(entries.len());
    }
    let key_refs: Vec<Option<&Value>> = keys.iter().map(Some).collect();
    let entries = StructArray::new(
        map_entries(key, item),
        vec![build(key, &key_refs, reader), build(item, &items, reader)],
        None,
    );
    let offsets = OffsetBuffer::from_lengths(lengths);
    let field = map_field(key, item);
    Arc::new(MapArray::new(field, offsets, entries, nulls(values), false))
}

fn build_struct(
    fields: &[(String, HiveType)],
    values: &[Option<&Value>],
    reader: &Reader,
) -> StructArray {
    let children = fields
        .iter()
        .map(|(name, t)| {
            let column: Vec<Option<&Value>> = values
                .iter()
                .map(|v| {
                    v.and_then(Value::as_object)
                        .and_then(|o| reader.field(o, name))
                })
                .collect();
            build(t, &column, reader)
        })
        .collect();
    StructArray::new(struct_fields(fields), children, nulls(values))
}
