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
mod orc;
mod values;

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel};
use parquet::file::properties::{WriterProperties, WriterVersion};
use riffle_glue::HiveType;
use serde_json::{Map, Value, json};

pub use config::{Conversion, ConversionInput, Deserializer, Output, check_destination};

/// Records are built into Arrow batches of at most this many: a 128 MiB
/// buffer is never all parsed JSON at once.
const BATCH_RECORDS: usize = 8192;
/// The `ErrorCode`s of failed records: a record that is not a JSON object
/// or does not fit the schema; a table that is missing or whose columns
/// do not parse.
pub const MALFORMED_DATA: &str = "DataFormatConversion.MalformedData";
pub const ENTITY_NOT_FOUND: &str = "DataFormatConversion.EntityNotFound";
pub const INVALID_SCHEMA: &str = "DataFormatConversion.InvalidSchema";

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

    /// A top-level column's value: through ColumnToJsonKeyMappings if the
    /// column is mapped (the key then matched as given).
    fn column<'a>(&self, object: &'a Map<String, Value>, column: &str) -> Option<&'a Value> {
        let mapped = self
            .mappings
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(column) || *c == column.to_lowercase());
        match mapped {
            Some((_, key)) => object.get(key),
            None => self.field(object, column),
        }
    }

    /// A field's value: the exact key, else the first key that matches
    /// per the SerDe (case, dots read as underscores).
    fn field<'a>(&self, object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
        if let Some(v) = object.get(name) {
            return Some(v);
        }
        if !self.case_insensitive && !self.dots_to_underscores {
            return None;
        }
        object
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
    for (chunk_at, chunk) in records.chunks(BATCH_RECORDS).enumerate() {
        let mut fitting: Vec<Map<String, Value>> = Vec::with_capacity(chunk.len());
        for (i, record) in chunk.iter().enumerate() {
            match fit(record.data, schema, reader) {
                Ok(object) => fitting.push(object),
                Err(message) => failed.push(Failure {
                    index: chunk_at * BATCH_RECORDS + i,
                    code: MALFORMED_DATA,
                    message,
                }),
            }
        }
        if fitting.is_empty() {
            continue;
        }
        let batch = batch(&fitting, schema, reader, &arrow_schema)?;
        let writer = match &mut writer {
            Some(writer) => writer,
            None => writer.insert(FileWriter::new(&arrow_schema, output)?),
        };
        writer.write(&batch)?;
    }
    let body = writer.map(FileWriter::finish).transpose()?;
    Ok(Converted { body, failed })
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

/// A record as a JSON object whose every column fits its type.
fn fit(data: &[u8], schema: &TableSchema, reader: &Reader) -> Result<Map<String, Value>, String> {
    let object = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err("The record is not a JSON object.".to_owned()),
        Err(e) => return Err(format!("The record is not valid JSON: {e}")),
    };
    for (name, t) in &schema.columns {
        arrays::check(t, reader.column(&object, name), reader)
            .map_err(|reason| format!("{reason} for column {name}."))?;
    }
    Ok(object)
}

fn batch(
    objects: &[Map<String, Value>],
    schema: &TableSchema,
    reader: &Reader,
    arrow_schema: &Arc<Schema>,
) -> Result<RecordBatch, ConvertError> {
    let columns: Vec<ArrayRef> = schema
        .columns
        .iter()
        .map(|(name, t)| {
            let values: Vec<Option<&Value>> =
                objects.iter().map(|o| reader.column(o, name)).collect();
            arrays::build(t, &values, reader)
        })
        .collect();
    Ok(RecordBatch::try_new(Arc::clone(arrow_schema), columns)?)
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
            "ErrorCode": code,
            "ErrorMessage": message,
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
