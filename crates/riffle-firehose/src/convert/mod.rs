//! Record format conversion (`DataFormatConversionConfiguration`): JSON
//! records read per the input SerDe's rules against a Glue table's
//! columns, built into Arrow arrays and written as one Parquet file per
//! object. Records that do not fit (not a JSON object, a value of the
//! wrong type) are left out of the file and returned as the JSON lines
//! AWS writes under `format-conversion-failed/`.
//!
//! [`convert`] is pure: records in, (body, failed records) out. Delivery
//! looks the table up in the metadata store (`riffle_glue::lookup_table`)
//! at each object, as AWS reads the schema at delivery.

mod arrays;
pub mod config;
pub(crate) mod deliver;
pub mod json;
mod orc;
mod values;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};
use riffle_glue::HiveType;
use serde_json::{Value, json};

use arrays::Column;
use json::Json;

pub use config::{Conversion, ConversionInput, Deserializer, Output, check_destination};

/// Records are built into Arrow batches of at most this many: a 128 MiB
/// buffer is never all parsed JSON at once.
const BATCH_RECORDS: usize = 8192;
/// The `lastErrorCode`s of failed records, as AWS writes them ("Data
/// format conversion errors"; the first two as AWS's objects show them): a
/// record that is not JSON; one that is JSON but not an object, empty, or
/// does not fit the schema; a table that is missing; one whose columns do
/// not parse.
pub const PARSE_ERROR: &str = "DataFormatConversion.ParseError";
pub const MALFORMED_DATA: &str = "DataFormatConversion.MalformedData";
pub const ENTITY_NOT_FOUND: &str = "DataFormatConversion.EntityNotFound";
pub const INVALID_SCHEMA: &str = "DataFormatConversion.InvalidSchema";
/// The texts AWS gives with those codes; Riffle adds the detail after them.
pub const PARSE_ERROR_MESSAGE: &str = "Encountered malformed JSON.";
pub const EMPTY_MESSAGE: &str = "The record was empty or contained only whitespace.";
pub const PRIMITIVE_MESSAGE: &str = "The input JSON contained a primitive at the top level. The top level must be an object or array.";
pub const MISMATCH_MESSAGE: &str = "Data does not match the schema.";
pub const ENTITY_NOT_FOUND_MESSAGE: &str = "The specified table/database could not be found. Please ensure that the table/database exists and that the values provided in the schema configuration are correct, especially with regards to casing.";

/// One record of a buffer.
#[derive(Debug, Clone, Copy)]
pub struct InRecord<'a> {
    pub data: &'a [u8],
    pub arrival_ms: i64,
}

/// A record left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Its index among the records given.
    pub index: usize,
    pub code: &'static str,
    pub message: String,
}

/// What a conversion made: the Parquet file (`None` when no record fit)
/// and the records left out.
#[derive(Debug, Default)]
pub struct Converted {
    pub body: Option<Vec<u8>>,
    pub failed: Vec<Failure>,
}

/// The table's columns, as a reader of records needs them.
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub columns: Vec<(String, HiveType)>,
}

impl TableSchema {
    /// The columns of a table as GetTable answers it
    /// (`StorageDescriptor.Columns`), each type parsed.
    pub fn from_table(table: &Value) -> Result<TableSchema, String> {
        let columns = table
            .pointer("/StorageDescriptor/Columns")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or("The table has no columns.")?;
        let columns = columns
            .iter()
            .map(|c| {
                let name = c.get("Name").and_then(Value::as_str).unwrap_or_default();
                let text = c.get("Type").and_then(Value::as_str).unwrap_or_default();
                let t =
                    riffle_glue::hive::parse(text).map_err(|e| format!("Column {name}: {e}"))?;
                Ok((name.to_owned(), t))
            })
            .collect::<Result<_, String>>()?;
        Ok(TableSchema { columns })
    }

    fn arrow_schema(&self) -> Arc<Schema> {
        let fields: Vec<Field> = self
            .columns
            .iter()
            .map(|(name, t)| Field::new(name, arrays::arrow_type(t), true))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

/// How a SerDe finds a column's or field's value in a JSON object.
#[derive(Debug, Clone)]
pub struct Reader {
    case_insensitive: bool,
    dots_to_underscores: bool,
    mappings: Vec<(String, String)>,
    timestamp_formats: Vec<String>,
}

impl Reader {
    pub fn new(deserializer: &Deserializer) -> Reader {
        match deserializer {
            Deserializer::OpenX {
                case_insensitive,
                dots_to_underscores,
                mappings,
            } => Reader {
                case_insensitive: *case_insensitive,
                dots_to_underscores: *dots_to_underscores,
                mappings: mappings.clone(),
                timestamp_formats: Vec::new(),
            },
            // Hive's JSON SerDe lowercases keys, as Hive does names.
            Deserializer::Hive { timestamp_formats } => Reader {
                case_insensitive: true,
                dots_to_underscores: false,
                mappings: Vec::new(),
                timestamp_formats: timestamp_formats.clone(),
            },
        }
    }

    fn timestamp_formats(&self) -> &[String] {
        &self.timestamp_formats
    }

    /// The JSON key a top-level column is read from when
    /// ColumnToJsonKeyMappings maps it (that key then matched as given).
    fn mapped_key(&self, column: &str) -> Option<&str> {
        self.mappings
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(column) || *c == column.to_lowercase())
            .map(|(_, key)| key.as_str())
    }

    /// Whether keys may match a name other than exactly.
    fn loose(&self) -> bool {
        self.case_insensitive || self.dots_to_underscores
    }

    /// A field's value: the exact key (the last if given twice), else the
    /// first key that matches per the SerDe (case, dots read as
    /// underscores).
    fn field<'j, 'a>(
        &self,
        pairs: &'j [(Cow<'a, str>, Json<'a>)],
        name: &str,
    ) -> Option<&'j Json<'a>> {
        if let Some(v) = json::get(pairs, name) {
            return Some(v);
        }
        if !self.loose() {
            return None;
        }
        pairs
            .iter()
            .find(|(key, _)| self.key_matches(key, name))
            .map(|(_, v)| v)
    }

    fn key_matches(&self, key: &str, name: &str) -> bool {
        let norm = |c: char| {
            let c = if self.dots_to_underscores && c == '.' {
                '_'
            } else {
                c
            };
            if self.case_insensitive {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                c
            }
        };
        key.chars().map(norm).eq(name.chars().map(norm))
    }
}

/// The Parquet writer's properties for the ParquetSerDe's settings.
fn writer_properties(settings: &config::ParquetSettings) -> WriterProperties {
    let compression = match settings.compression.as_str() {
        "UNCOMPRESSED" => Compression::UNCOMPRESSED,
        "GZIP" => Compression::GZIP(GzipLevel::default()),
        _ => Compression::SNAPPY,
    };
    let version = if settings.writer_v2 {
        WriterVersion::PARQUET_2_0
    } else {
        WriterVersion::PARQUET_1_0
    };
    WriterProperties::builder()
        .set_compression(compression)
        .set_dictionary_enabled(settings.dictionary)
        .set_data_page_size_limit(settings.page_size)
        .set_writer_version(version)
        .set_created_by("Riffle (Amazon Data Firehose format conversion)".to_owned())
        .build()
}

/// Converts `records` to one Parquet file: each a JSON object read per
/// `reader` against `schema`. Pure; runs on a blocking thread.
pub fn convert(
    records: &[InRecord<'_>],
    schema: &TableSchema,
    reader: &Reader,
    output: &Output,
) -> Result<Converted, ConvertError> {
    let arrow_schema = schema.arrow_schema();
    let mut failed = Vec::new();
    let mut writer: Option<FileWriter> = None;
    let mut batch = Batch::new(schema);
    for (index, record) in records.iter().enumerate() {
        if let Err((code, message)) = batch.push(record.data, reader) {
            failed.push(Failure {
                index,
                code,
                message,
            });
        }
        let last = index + 1 == records.len();
        if batch.rows == BATCH_RECORDS || (last && batch.rows > 0) {
            let arrays = RecordBatch::try_new(Arc::clone(&arrow_schema), batch.take(schema))?;
            let writer = match &mut writer {
                Some(writer) => writer,
                None => writer.insert(FileWriter::new(&arrow_schema, output)?),
            };
            writer.write(&arrays)?;
        }
    }
    let body = writer.map(FileWriter::finish).transpose()?;
    Ok(Converted { body, failed })
}

/// The records of a batch so far, a column each, and which column each
/// top-level key feeds (worked out once per distinct key, not per record).
struct Batch<'s> {
    names: Vec<&'s str>,
    columns: Vec<Column>,
    keys: KeyIndex,
    rows: usize,
}

/// Distinct top-level keys remembered per conversion. Past it a key is
/// matched per record: records whose keys are all different (ids used as
/// keys) would otherwise grow the index with every record.
const KEY_INDEX_MAX: usize = 4096;

/// The columns a top-level key is read into, each with whether the key
/// names it exactly (an exact key wins over one matched by case or dots).
type KeyIndex = HashMap<String, Vec<(usize, bool)>, foldhash::fast::RandomState>;

impl<'s> Batch<'s> {
    fn new(schema: &'s TableSchema) -> Batch<'s> {
        Batch {
            names: schema.columns.iter().map(|(n, _)| n.as_str()).collect(),
            columns: schema.columns.iter().map(|(_, t)| Column::new(t)).collect(),
            keys: KeyIndex::default(),
            rows: 0,
        }
    }

    /// Reads a record into the columns, or says why it does not fit (and
    /// leaves the columns as they were).
    fn push(&mut self, data: &[u8], reader: &Reader) -> Result<(), (&'static str, String)> {
        let pairs = match Json::parse(data) {
            Ok(Json::Object(pairs)) => pairs,
            Ok(Json::Array(_)) => {
                let why = format!("{MISMATCH_MESSAGE} The record is a JSON array, not an object.");
                return Err((MALFORMED_DATA, why));
            }
            Ok(_) => return Err((MALFORMED_DATA, PRIMITIVE_MESSAGE.to_owned())),
            Err(_) if data.iter().all(u8::is_ascii_whitespace) => {
                return Err((MALFORMED_DATA, EMPTY_MESSAGE.to_owned()));
            }
            Err(e) => return Err((PARSE_ERROR, format!("{PARSE_ERROR_MESSAGE} {e}"))),
        };
        // Each column's value, and 2 if its key was exact, 1 if loose.
        let mut found: Vec<(Option<&Json<'_>>, u8)> = vec![(None, 0); self.columns.len()];
        for (key, value) in &pairs {
            let unindexed;
            let columns = match self.keys.get(key.as_ref()) {
                Some(columns) => columns,
                None if self.keys.len() < KEY_INDEX_MAX => {
                    let columns = key_columns(&self.names, key, reader);
                    self.keys.entry(key.to_string()).or_insert(columns)
                }
                None => {
                    unindexed = key_columns(&self.names, key, reader);
                    &unindexed
                }
            };
            for &(c, exact) in columns {
                let slot = &mut found[c];
                if exact {
                    *slot = (Some(value), 2);
                } else if slot.1 == 0 {
                    *slot = (Some(value), 1);
                }
            }
        }
        let refused = self.columns.iter_mut().zip(&found).enumerate().find_map(
            |(c, (column, (value, _)))| column.push(*value, reader).err().map(|r| (c, r)),
        );
        if let Some((c, reason)) = refused {
            let rows = self.rows;
            self.columns
                .iter_mut()
                .for_each(|column| column.truncate(rows));
            let why = format!("{MISMATCH_MESSAGE} {reason} for column {}.", self.names[c]);
            return Err((MALFORMED_DATA, why));
        }
        self.rows += 1;
        Ok(())
    }

    /// The batch's arrays, the columns starting over empty.
    fn take(&mut self, schema: &TableSchema) -> Vec<ArrayRef> {
        let fresh = schema.columns.iter().map(|(_, t)| Column::new(t)).collect();
        self.rows = 0;
        std::mem::replace(&mut self.columns, fresh)
            .into_iter()
            .map(Column::finish)
            .collect()
    }
}

/// The columns a top-level key feeds: the column mapped to it by
/// ColumnToJsonKeyMappings, an unmapped column it names exactly, and the
/// unmapped columns it matches per the SerDe.
fn key_columns(names: &[&str], key: &str, reader: &Reader) -> Vec<(usize, bool)> {
    let mut columns = Vec::new();
    for (c, name) in names.iter().enumerate() {
        match reader.mapped_key(name) {
            Some(mapped) if mapped == key => columns.push((c, true)),
            Some(_) => {}
            None if *name == key => columns.push((c, true)),
            None if reader.loose() && reader.key_matches(key, name) => columns.push((c, false)),
            None => {}
        }
    }
    columns
}

/// Why a file could not be written (a schema the writer refuses).
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{0}")]
    Orc(#[from] orc_rust::error::OrcError),
    #[error("{0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// The file being written: Parquet, or ORC (batches kept until the end:
/// orc-rust writes to a `Write` it owns until closed).
enum FileWriter {
    /// Boxed: the writer is large and there is one per object.
    Parquet(Box<ArrowWriter<Vec<u8>>>),
    Orc(orc::OrcFile),
}

impl FileWriter {
    fn new(schema: &Arc<Schema>, output: &Output) -> Result<FileWriter, ConvertError> {
        Ok(match output {
            Output::Parquet(settings) => FileWriter::Parquet(Box::new(ArrowWriter::try_new(
                Vec::new(),
                Arc::clone(schema),
                Some(writer_properties(settings)),
            )?)),
            Output::Orc(settings) => FileWriter::Orc(orc::OrcFile::new(schema, settings)?),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), ConvertError> {
        match self {
            FileWriter::Parquet(w) => w.write(batch)?,
            FileWriter::Orc(w) => w.write(batch)?,
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>, ConvertError> {
        match self {
            FileWriter::Parquet(w) => Ok(w.into_inner()?),
            FileWriter::Orc(w) => w.finish(),
        }
    }
}

/// The `dataCatalogTable` of failed records' lines; `catalog` the id the
/// table was looked up in. The Region is the configuration's (Riffle's
/// one catalog serves every region).
pub fn catalog_table(conversion: &Conversion, catalog: &str) -> Value {
    let s = &conversion.schema;
    let region = s.Region.as_deref();
    json!({
        "catalogId": catalog,
        "databaseName": s.DatabaseName,
        "tableName": s.TableName,
        "region": region,
        "versionId": s.VersionId.clone().unwrap_or_else(|| "LATEST".to_owned()),
        "catalogArn": format!("arn:aws:glue:{}:{catalog}:catalog", region.unwrap_or("")),
    })
}

/// The failed records as AWS writes them under `format-conversion-failed/`:
/// one JSON document a line ("Handling errors for data format conversion").
pub fn failed_lines(
    failed: &[(InRecord<'_>, &'static str, String)],
    table: &Value,
    now_ms: i64,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (record, code, message) in failed {
        let line = json!({
            "attemptsMade": 1,
            "arrivalTimestamp": record.arrival_ms,
            "lastErrorCode": code,
            "lastErrorMessage": message,
            "attemptEndingTimestamp": now_ms,
            "rawData": base64_simd::STANDARD.encode_to_string(record.data),
            "dataCatalogTable": table,
        });
        // JSON values always serialize.
        serde_json::to_writer(&mut out, &line).expect("JSON serializes");
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests;
