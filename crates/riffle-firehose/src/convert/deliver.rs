//! The delivery side of conversion: a flushed buffer's records converted
//! against the table as the catalog has it now, into the object and the
//! `format-conversion-failed/` object of the records that did not fit.

use std::sync::Arc;

use riffle_log::LogStore;
use serde_json::Value;
use tracing::warn;

use super::Output;
use super::{
    Conversion, ENTITY_NOT_FOUND, ENTITY_NOT_FOUND_MESSAGE, INVALID_SCHEMA, InRecord, Reader,
    TableSchema, catalog_table, convert, failed_lines,
};
use crate::FirehoseError;
use crate::catalog::StreamRecord;
use crate::delivery::{Object, error_object_key};
use crate::destination::S3Destination;
use crate::prefix::ErrorOutputType;
use crate::time::now_ms;

/// A converted buffer: the Parquet object (none if no record fit) and the
/// failed records' object (none if all fit).
pub struct ConvertedObjects {
    pub object: Option<Object>,
    pub failed: Option<Object>,
}

/// The catalog the schema is in: SchemaConfiguration.CatalogId, else the
/// account of its RoleARN (`arn:aws:iam::<account>:role/…`), the account
/// Firehose reads the catalog as.
fn catalog_id(conversion: &Conversion) -> String {
    let schema = &conversion.schema;
    schema.CatalogId.clone().unwrap_or_else(|| {
        let role = schema.RoleARN.as_deref().unwrap_or_default();
        role.split(':').nth(4).unwrap_or_default().to_owned()
    })
}

/// The table's schema, or the code and message every record fails with.
fn table_schema(
    store: &LogStore,
    conversion: &Conversion,
) -> Result<TableSchema, (&'static str, String)> {
    let catalog = catalog_id(conversion);
    let database = conversion
        .schema
        .DatabaseName
        .as_deref()
        .unwrap_or_default();
    let table = conversion.schema.TableName.as_deref().unwrap_or_default();
    let found = riffle_glue::lookup_table(store, &catalog, database, table).map_err(|e| {
        warn!(%e, "reading a Glue table failed");
        (
            ENTITY_NOT_FOUND,
            format!("{ENTITY_NOT_FOUND_MESSAGE} Cannot read the table {database}.{table}: {e}"),
        )
    })?;
    let Some(found) = found else {
        return Err((
            ENTITY_NOT_FOUND,
            format!(
                "{ENTITY_NOT_FOUND_MESSAGE} Table {database}.{table} is not in the Glue Data Catalog {catalog}."
            ),
        ));
    };
    let schema = TableSchema::from_table(&found).map_err(|reason| (INVALID_SCHEMA, reason))?;
    if let Output::Orc(_) = conversion.output
        && let Some(reason) = super::orc::unsupported(&schema.columns)
    {
        return Err((INVALID_SCHEMA, reason));
    }
    Ok(schema)
}

/// Refuses ORC output for a table (if it exists yet) with a column type
/// orc-rust cannot write: AWS writes them, so Riffle says so at once
/// rather than failing every record at delivery.
pub async fn check_orc_table(
    store: &Arc<LogStore>,
    destination: &S3Destination,
) -> Result<(), FirehoseError> {
    let Some(conversion) = enabled(destination) else {
        return Ok(());
    };
    if !matches!(conversion.output, Output::Orc(_)) {
        return Ok(());
    }
    let store = Arc::clone(store);
    let found = tokio::task::spawn_blocking(move || table_schema(&store, &conversion)).await;
    match found {
        Ok(Err((INVALID_SCHEMA, reason))) => Err(FirehoseError::InvalidArgument(reason)),
        _ => Ok(()),
    }
}

/// Converts a buffer (`bounds`: each record's end offset in `data` and its
/// arrival time) whose oldest record arrived at `oldest_ms` into the object
/// `key` (named by delivery, with the partition's keys). Runs on a
/// blocking thread: it reads the catalog and builds the file.
pub fn convert_buffer(
    store: &Arc<LogStore>,
    record: &StreamRecord,
    destination: &S3Destination,
    conversion: &Conversion,
    (oldest_ms, key): (i64, String),
    data: &[u8],
    bounds: &[(usize, i64)],
) -> ConvertedObjects {
    let mut start = 0;
    let records: Vec<InRecord<'_>> = bounds
        .iter()
        .map(|&(end, arrival_ms)| {
            let r = InRecord {
                data: &data[start..end],
                arrival_ms,
            };
            start = end;
            r
        })
        .collect();
    let everything_failed =
        |code: &'static str, message: String| -> Vec<(InRecord<'_>, &'static str, String)> {
            records
                .iter()
                .map(|r| (*r, code, message.clone()))
                .collect()
        };
    let (body, failed) = match table_schema(store, conversion) {
        Err((code, message)) => (None, everything_failed(code, message)),
        Ok(schema) => {
            let reader = Reader::new(&conversion.deserializer);
            match convert(&records, &schema, &reader, &conversion.output) {
                Ok(out) => {
                    let failed = out
                        .failed
                        .into_iter()
                        .map(|f| (records[f.index], f.code, f.message))
                        .collect();
                    (out.body, failed)
                }
                Err(e) => (None, everything_failed(INVALID_SCHEMA, e.to_string())),
            }
        }
    };
    let bucket = destination.bucket().to_owned();
    let object = body.map(|body| Object {
        bucket: bucket.clone(),
        key,
        body: body.into(),
    });
    let failed = (!failed.is_empty()).then(|| {
        let table = catalog_table(conversion, &catalog_id(conversion));
        Object {
            bucket,
            key: error_object_key(
                record,
                destination,
                oldest_ms,
                ErrorOutputType::FormatConversionFailed,
            ),
            body: failed_lines(&failed, &table, now_ms()).into(),
        }
    });
    ConvertedObjects { object, failed }
}

/// The conversion a destination asks for, if enabled (and valid, which
/// Create/UpdateDestination checked).
pub fn enabled(destination: &S3Destination) -> Option<Conversion> {
    let value: &Value = destination.data_format_conversion.as_ref()?;
    let input = super::ConversionInput::from_value(value).ok()?;
    if !input.enabled() {
        return None;
    }
    input.conversion().ok()
}
