//! Hive types as Arrow types, and the columns a batch is built in: each
//! record's values read once from its parsed JSON into typed vectors
//! ([`Column`]), which become Arrow arrays at the end of the batch.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int8Array, Int16Array, Int32Array, Int64Array, ListArray, MapArray, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use arrow_buffer::{BooleanBuffer, NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields, TimeUnit};
use riffle_glue::HiveType;

use super::Reader;
use super::json::Json;
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

/// One column of a batch being built: each record's value read once from
/// its parsed JSON, coerced and appended. A record that turns out not to
/// fit (a later column refuses its value) is taken back out of every
/// column with [`Column::truncate`], so no record is read twice.
pub struct Column {
    t: HiveType,
    valid: Vec<bool>,
    data: Data,
}

/// A column's values; a null holds a placeholder (0, an empty string or
/// list) beside its `valid` bit, as Arrow lays nulls out.
enum Data {
    Boolean(Vec<bool>),
    Integer(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    /// string, char(n), varchar(n) (`limit`: n) and binary.
    Bytes {
        offsets: Vec<i32>,
        bytes: Vec<u8>,
        limit: Option<u32>,
    },
    Decimal {
        values: Vec<i128>,
        precision: u8,
        scale: u8,
    },
    Timestamp(Vec<i64>),
    Date(Vec<i32>),
    List {
        offsets: Vec<i32>,
        items: Box<Column>,
    },
    Map {
        offsets: Vec<i32>,
        keys: Box<Column>,
        values: Box<Column>,
    },
    Struct(Vec<(String, Column)>),
}

/// An offset into a batch's bytes or items: a batch holds at most
/// `BATCH_RECORDS` records of a buffer of at most 128 MiB, well inside i32.
fn offset(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Column {
    pub fn new(t: &HiveType) -> Column {
        let data = match t {
            HiveType::Boolean => Data::Boolean(Vec::new()),
            HiveType::TinyInt | HiveType::SmallInt | HiveType::Int | HiveType::BigInt => {
                Data::Integer(Vec::new())
            }
            HiveType::Float => Data::Float(Vec::new()),
            HiveType::Double => Data::Double(Vec::new()),
            HiveType::String | HiveType::Binary => Data::Bytes {
                offsets: vec![0],
                bytes: Vec::new(),
                limit: None,
            },
            HiveType::Char(n) | HiveType::Varchar(n) => Data::Bytes {
                offsets: vec![0],
                bytes: Vec::new(),
                limit: Some(*n),
            },
            HiveType::Decimal { precision, scale } => Data::Decimal {
                values: Vec::new(),
                precision: *precision,
                scale: *scale,
            },
            HiveType::Timestamp => Data::Timestamp(Vec::new()),
            HiveType::Date => Data::Date(Vec::new()),
            HiveType::Array(item) => Data::List {
                offsets: vec![0],
                items: Box::new(Column::new(item)),
            },
            HiveType::Map(key, value) => Data::Map {
                offsets: vec![0],
                keys: Box::new(Column::new(key)),
                values: Box::new(Column::new(value)),
            },
            HiveType::Struct(fields) => {
                let columns = fields
                    .iter()
                    .map(|(name, t)| (name.clone(), Column::new(t)));
                Data::Struct(columns.collect())
            }
        };
        Column {
            t: t.clone(),
            valid: Vec::new(),
            data,
        }
    }

    fn len(&self) -> usize {
        self.valid.len()
    }

    /// Appends `value` (absent or null: a null), or says why it cannot be
    /// read as the column's type (the column may then hold part of it:
    /// truncate it to its length before).
    pub fn push(&mut self, value: Option<&Json<'_>>, reader: &Reader) -> Result<(), Refusal> {
        match value {
            None | Some(Json::Null) => {
                self.push_null();
                Ok(())
            }
            Some(value) => {
                self.push_value(value, reader)?;
                self.valid.push(true);
                Ok(())
            }
        }
    }

    fn push_null(&mut self) {
        self.valid.push(false);
        match &mut self.data {
            Data::Boolean(v) => v.push(false),
            Data::Integer(v) | Data::Timestamp(v) => v.push(0),
            Data::Float(v) => v.push(0.0),
            Data::Double(v) => v.push(0.0),
            Data::Decimal { values, .. } => values.push(0),
            Data::Date(v) => v.push(0),
            Data::Bytes { offsets, .. }
            | Data::List { offsets, .. }
            | Data::Map { offsets, .. } => {
                offsets.push(offsets.last().copied().unwrap_or(0));
            }
            Data::Struct(fields) => fields.iter_mut().for_each(|(_, f)| f.push_null()),
        }
    }

    fn push_value(&mut self, value: &Json<'_>, reader: &Reader) -> Result<(), Refusal> {
        match (&mut self.data, &self.t) {
            (Data::Boolean(v), _) => v.push(values::boolean(value)?),
            (Data::Integer(v), t) => {
                let (min, max, what) = integer_range(t);
                v.push(values::integer(value, min, max, what)?);
            }
            (Data::Float(v), _) => v.push(values::double(value)? as f32),
            (Data::Double(v), _) => v.push(values::double(value)?),
            (Data::Bytes { offsets, bytes, .. }, HiveType::Binary) => {
                bytes.extend_from_slice(&values::binary(value)?);
                offsets.push(offset(bytes.len()));
            }
            (
                Data::Bytes {
                    offsets,
                    bytes,
                    limit,
                },
                _,
            ) => {
                let text = values::string(value);
                let text = match limit {
                    Some(n) => values::truncated(text, *n),
                    None => text,
                };
                bytes.extend_from_slice(text.as_bytes());
                offsets.push(offset(bytes.len()));
            }
            (
                Data::Decimal {
                    values,
                    precision,
                    scale,
                },
                _,
            ) => values.push(values::decimal(value, *precision, *scale)?),
            (Data::Timestamp(v), _) => {
                v.push(values::timestamp(value, reader.timestamp_formats())?)
            }
            (Data::Date(v), _) => v.push(values::date(value)?),
            (Data::List { offsets, items }, _) => {
                let Json::Array(list) = value else {
                    return Err(format!("Cannot convert {value} to array"));
                };
                for item in list {
                    items.push(Some(item), reader)?;
                }
                offsets.push(offset(items.len()));
            }
            (
                Data::Map {
                    offsets,
                    keys,
                    values,
                },
                _,
            ) => {
                let Json::Object(entries) = value else {
                    return Err(format!("Cannot convert {value} to map"));
                };
                for (i, (key, item)) in entries.iter().enumerate() {
                    // A key given twice: the last one counts.
                    if entries[i + 1..].iter().any(|(k, _)| k == key) {
                        continue;
                    }
                    let key = Json::String(std::borrow::Cow::Borrowed(key.as_ref()));
                    keys.push(Some(&key), reader)?;
                    values.push(Some(item), reader)?;
                }
                offsets.push(offset(keys.len()));
            }
            (Data::Struct(fields), _) => {
                let Json::Object(pairs) = value else {
                    return Err(format!("Cannot convert {value} to struct"));
                };
                for (name, column) in fields {
                    column.push(reader.field(pairs, name), reader)?;
                }
            }
        }
        Ok(())
    }

    /// Takes back every value past the first `len`.
    pub fn truncate(&mut self, len: usize) {
        self.valid.truncate(len);
        match &mut self.data {
            Data::Boolean(v) => v.truncate(len),
            Data::Integer(v) | Data::Timestamp(v) => v.truncate(len),
            Data::Float(v) => v.truncate(len),
            Data::Double(v) => v.truncate(len),
            Data::Decimal { values, .. } => values.truncate(len),
            Data::Date(v) => v.truncate(len),
            Data::Bytes { offsets, bytes, .. } => {
                offsets.truncate(len + 1);
                bytes.truncate(end(offsets));
            }
            Data::List { offsets, items } => {
                offsets.truncate(len + 1);
                items.truncate(end(offsets));
            }
            Data::Map {
                offsets,
                keys,
                values,
            } => {
                offsets.truncate(len + 1);
                keys.truncate(end(offsets));
                values.truncate(end(offsets));
            }
            Data::Struct(fields) => fields.iter_mut().for_each(|(_, f)| f.truncate(len)),
        }
    }

    /// The column as an Arrow array of [`arrow_type`]`(t)`.
    pub fn finish(self) -> ArrayRef {
        let nulls = Some(NullBuffer::from(self.valid)).filter(|n| n.null_count() > 0);
        let t = self.t;
        match self.data {
            Data::Boolean(v) => Arc::new(BooleanArray::new(BooleanBuffer::from(v), nulls)),
            Data::Integer(v) => integers(&t, v, nulls),
            Data::Float(v) => Arc::new(Float32Array::new(v.into(), nulls)),
            Data::Double(v) => Arc::new(Float64Array::new(v.into(), nulls)),
            Data::Bytes { offsets, bytes, .. } => {
                let offsets = OffsetBuffer::new(offsets.into());
                if t == HiveType::Binary {
                    Arc::new(BinaryArray::new(offsets, bytes.into(), nulls))
                } else {
                    Arc::new(StringArray::new(offsets, bytes.into(), nulls))
                }
            }
            Data::Decimal { values, .. } => {
                Arc::new(Decimal128Array::new(values.into(), nulls).with_data_type(arrow_type(&t)))
            }
            Data::Timestamp(v) => {
                Arc::new(TimestampMicrosecondArray::new(v.into(), nulls).with_timezone(UTC))
            }
            Data::Date(v) => Arc::new(Date32Array::new(v.into(), nulls)),
            Data::List { offsets, items } => {
                let field = list_field(&items.t);
                let offsets = OffsetBuffer::new(offsets.into());
                Arc::new(ListArray::new(field, offsets, items.finish(), nulls))
            }
            Data::Map {
                offsets,
                keys,
                values,
            } => {
                let (key, value) = (keys.t.clone(), values.t.clone());
                let entries = StructArray::new(
                    map_entries(&key, &value),
                    vec![keys.finish(), values.finish()],
                    None,
                );
                let offsets = OffsetBuffer::new(offsets.into());
                Arc::new(MapArray::new(
                    map_field(&key, &value),
                    offsets,
                    entries,
                    nulls,
                    false,
                ))
            }
            Data::Struct(columns) => {
                let fields: Vec<(String, HiveType)> = columns
                    .iter()
                    .map(|(n, c)| (n.clone(), c.t.clone()))
                    .collect();
                let children = columns.into_iter().map(|(_, c)| c.finish()).collect();
                Arc::new(StructArray::new(struct_fields(&fields), children, nulls))
            }
        }
    }
}

/// Where a truncated offsets list ends.
fn end(offsets: &[i32]) -> usize {
    offsets
        .last()
        .map_or(0, |&o| usize::try_from(o).unwrap_or(0))
}

/// The range and name of an integer type.
fn integer_range(t: &HiveType) -> (i64, i64, &'static str) {
    match t {
        HiveType::TinyInt => (i8::MIN.into(), i8::MAX.into(), "tinyint"),
        HiveType::SmallInt => (i16::MIN.into(), i16::MAX.into(), "smallint"),
        HiveType::Int => (i32::MIN.into(), i32::MAX.into(), "int"),
        _ => (i64::MIN, i64::MAX, "bigint"),
    }
}

/// An integer column at its width (its values were checked in range).
fn integers(t: &HiveType, v: Vec<i64>, nulls: Option<NullBuffer>) -> ArrayRef {
    match t {
        HiveType::TinyInt => Arc::new(Int8Array::new(v.iter().map(|&n| n as i8).collect(), nulls)),
        HiveType::SmallInt => Arc::new(Int16Array::new(
            v.iter().map(|&n| n as i16).collect(),
            nulls,
        )),
        HiveType::Int => Arc::new(Int32Array::new(
            v.iter().map(|&n| n as i32).collect(),
            nulls,
        )),
        _ => Arc::new(Int64Array::new(v.into(), nulls)),
    }
}
