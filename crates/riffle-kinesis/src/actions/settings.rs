//! What the settings actions (tags, enhanced monitoring, capacity mode,
//! record size, warm throughput) share: changing one stream's catalog
//! record under the catalog lock.

use std::sync::Arc;

use riffle_log::MetaOp;

use crate::catalog::{Status, StreamRecord};
use crate::stream::Stream;
use crate::time::now_ms;
use crate::{Kinesis, KinesisError, errors};

/// Which stream statuses a change accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// Any status but a completed deletion (tags can be changed while the
    /// stream is CREATING or UPDATING).
    Exists,
    /// ACTIVE only; otherwise `ResourceInUseException` naming the status.
    Active,
}

/// Replaces stream `name`'s catalog record by the one `change` builds from
/// the current stream (or refuses with `change`'s error), durably, then
/// swaps the in-memory stream. Returns `change`'s second value.
pub(crate) async fn update<T>(
    kinesis: &Kinesis,
    name: &str,
    needs: Needs,
    change: impl FnOnce(&Stream, i64) -> Result<(StreamRecord, T), KinesisError>,
) -> Result<T, KinesisError> {
    let _catalog = kinesis.catalog_guard().await;
    let now = now_ms();
    let stream: Arc<Stream> = kinesis.lookup(name, now)?;
    let status = stream.status(now).unwrap_or(Status::Deleting);
    if needs == Needs::Active && status != Status::Active {
        return Err(errors::stream_not_active(
            name,
            kinesis.account(),
            status.as_str(),
        ));
    }
    let (record, out) = change(&stream, now)?;
    if record != stream.record {
        kinesis
            .commit(vec![MetaOp::Put {
                key: record.key(),
                value: record.encode(),
            }])
            .await?;
        kinesis.insert(stream.with_record(record));
    }
    Ok(out)
}

/// How long a stream stays UPDATING after a change, in milliseconds.
pub(crate) fn status_delay_ms(kinesis: &Kinesis) -> i64 {
    i64::try_from(kinesis.config().status_delay.as_millis()).unwrap_or(i64::MAX)
}
