//! ORC output (OrcSerDe) through orc-rust, which writes Arrow's flat
//! types: boolean, the integers, float, double, strings, binary, date and
//! timestamp. Decimals, arrays, maps and structs it cannot write yet, so a
//! table with such a column is refused for ORC (`unsupported`).

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
use orc_rust::arrow_writer::ArrowWriterBuilder;
use orc_rust::compression::CompressionType;
use riffle_glue::HiveType;

use super::ConvertError;
use super::config::OrcSettings;

/// The first column of a type orc-rust cannot write, as a sentence.
pub fn unsupported(columns: &[(String, HiveType)]) -> Option<String> {
    columns.iter().find_map(|(name, t)| {
        let kind = match t {
            HiveType::Decimal { .. } => "decimal",
            HiveType::Array(_) => "array",
            HiveType::Map(..) => "map",
            HiveType::Struct(_) => "struct",
            _ => return None,
        };
        Some(format!(
            "Column {name} is a {kind}, which Riffle's ORC output (orc-rust) cannot write yet; use ParquetSerDe."
        ))
    })
}

/// An ORC file in the making: its batches, written out at the end.
pub struct OrcFile {
    schema: Arc<Schema>,
    settings: OrcSettings,
    batches: Vec<RecordBatch>,
}

/// Hive's timestamp has no zone: ORC's `timestamp`, not the instant type.
fn zoneless(field: &Field) -> Field {
    match field.data_type() {
        DataType::Timestamp(unit, Some(_)) => field
            .clone()
            .with_data_type(DataType::Timestamp(*unit, None)),
        _ => field.clone(),
    }
}

impl OrcFile {
    pub fn new(schema: &Arc<Schema>, settings: &OrcSettings) -> Result<OrcFile, ConvertError> {
        let nested = schema.fields().iter().find(|f| {
            matches!(
                f.data_type(),
                DataType::List(_)
                    | DataType::Map(..)
                    | DataType::Struct(_)
                    | DataType::Decimal128(..)
            )
        });
        if let Some(field) = nested {
            return Err(ArrowError::NotYetImplemented(format!(
                "ORC output of column {} ({})",
                field.name(),
                field.data_type()
            ))
            .into());
        }
        let fields: Vec<Field> = schema.fields().iter().map(|f| zoneless(f)).collect();
        Ok(OrcFile {
            schema: Arc::new(Schema::new(fields)),
            settings: settings.clone(),
            batches: Vec::new(),
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ConvertError> {
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => Arc::new(
                    c.as_primitive::<TimestampMicrosecondType>()
                        .clone()
                        .with_timezone_opt(None::<Arc<str>>),
                )
                    as ArrayRef,
                _ => Arc::clone(c),
            })
            .collect();
        self.batches
            .push(RecordBatch::try_new(Arc::clone(&self.schema), columns)?);
        Ok(())
    }

    pub fn finish(self) -> Result<Vec<u8>, ConvertError> {
        let mut body = Vec::new();
        let mut builder = ArrowWriterBuilder::new(&mut body, Arc::clone(&self.schema))
            .with_stripe_byte_size(self.settings.stripe_size);
        builder = match self.settings.compression.as_str() {
            "ZLIB" => builder.with_compression(CompressionType::Zlib),
            "SNAPPY" => builder.with_compression(CompressionType::Snappy),
            _ => builder,
        };
        let mut writer = builder.try_build()?;
        for batch in &self.batches {
            writer.write(batch)?;
        }
        writer.close()?;
        Ok(body)
    }
}
