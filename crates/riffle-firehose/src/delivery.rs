//! Delivery: one task per delivery stream reads its log from the last
//! delivered position, fills a buffer until the size hint or the interval
//! is reached (whichever comes first), makes an object of it and stores it
//! through the [`ObjectSink`], retrying with backoff until it is stored;
//! only then does it record, durably, the position delivered. A crash at
//! any point re-delivers from the last recorded position: at least once,
//! never lost. Each stream's task waits and retries on its own, so a
//! failing bucket never holds up another stream.

use std::mem::{Discriminant, discriminant};
use std::sync::Arc;

use bytes::Bytes;
use riffle_log::{LogError, LogStore, MetaOp, ReadLimits, Seq};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tracing::{debug, info, warn};

use crate::catalog::{self, StreamRecord};
use crate::sink::{ObjectSink, SinkError};
use crate::stream::DeliveryStream;
use crate::time::{now_ms, utc_fields};

/// The first retry of a failed upload waits this long, each next one twice
/// as long, up to [`BACKOFF_MAX`]: AWS retries S3 deliveries "every 5
/// seconds" ("Data delivery failure handling", Amazon S3). Unlike AWS,
/// which gives up after 24 hours, Riffle keeps retrying: nothing it
/// acknowledged is dropped.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Records and bytes per log read while filling a buffer: a read is a
/// `pread` on an async thread, so a 128 MiB buffer is read in short steps.
const READ_RECORDS_MAX: usize = 10_000;
const READ_BYTES_MAX: usize = 4 * 1024 * 1024;
const MIB: usize = 1024 * 1024;

pub fn spawn(
    store: Arc<LogStore>,
    sink: Arc<dyn ObjectSink>,
    stream: Arc<DeliveryStream>,
    delivered: Seq,
) -> JoinHandle<()> {
    let deliverer = Deliverer {
        store,
        sink,
        stream,
        failing: None,
    };
    tokio::spawn(run(deliverer, delivered))
}

struct Deliverer {
    store: Arc<LogStore>,
    sink: Arc<dyn ObjectSink>,
    stream: Arc<DeliveryStream>,
    /// The kind of the failure the sink last answered, until a put works:
    /// each kind is logged once, however many retries and buffers it lasts.
    failing: Option<Discriminant<SinkError>>,
}

/// A full (or due) buffer: the records `[from, end)` of the log.
struct Buffer {
    data: Vec<u8>,
    end: Seq,
    records: u64,
    first_arrival_ms: Option<i64>,
    last_arrival_ms: i64,
}

/// One object to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bucket: String,
    pub key: String,
    pub body: Bytes,
}

async fn run(mut d: Deliverer, mut next: Seq) {
    loop {
        let buffer = match d.fill(next).await {
            Ok(buffer) => buffer,
            Err(LogError::Deleted { .. } | LogError::Closed { .. }) => return,
            Err(err) => {
                warn!(stream = %d.name(), %err, "reading a delivery stream's buffer failed; retrying");
                tokio::time::sleep(BACKOFF_MAX).await;
                continue;
            }
        };
        let Buffer {
            data,
            end,
            records,
            first_arrival_ms,
            last_arrival_ms,
        } = buffer;
        let object = make_object(&d.stream.record(), now_ms(), data);
        d.store_object(&object).await;
        let freshness_ms = now_ms().saturating_sub(first_arrival_ms.unwrap_or(last_arrival_ms));
        let bytes = object.body.len() as u64;
        d.stream
            .metrics
            .delivered(records, bytes, freshness_ms.max(0));
        d.checkpoint(end, last_arrival_ms).await;
        next = end;
    }
}

impl Deliverer {
    fn name(&self) -> String {
        self.stream.record().name
    }

    /// Waits for a record at `from`, then reads until the size hint is
    /// reached or the interval since the buffer's first record has passed.
    async fn fill(&self, from: Seq) -> Result<Buffer, LogError> {
        let log = &self.stream.log;
        while log.next_seq() <= from {
            log.wait_readable(from).await;
            still_open(log, from)?;
        }
        let mut buffer = Buffer {
            data: Vec::new(),
            end: from,
            records: 0,
            first_arrival_ms: None,
            last_arrival_ms: 0,
        };
        let mut started = None;
        loop {
            let destination = self.stream.record().destination;
            let size_max = usize::try_from(destination.size_mb).unwrap_or(1) * MIB;
            let interval = Duration::from_secs(u64::try_from(destination.interval_s).unwrap_or(0));
            while buffer.data.len() < size_max && log.next_seq() > buffer.end {
                let limits = ReadLimits {
                    records_max: READ_RECORDS_MAX,
                    bytes_max: (size_max - buffer.data.len()).min(READ_BYTES_MAX),
                };
                let batch = log.read(buffer.end, limits)?;
                if let (None, Some(first)) = (started, batch.records.first()) {
                    started = Some(buffer_start(first.arrival_ms));
                }
                buffer.records += batch.records.len() as u64;
                for record in &batch.records {
                    buffer.first_arrival_ms.get_or_insert(record.arrival_ms);
                    buffer.data.extend_from_slice(&record.data);
                    buffer.last_arrival_ms = record.arrival_ms;
                }
                buffer.end = batch.next_seq;
                // Each read is a `pread` on this thread; let others run
                // between the steps of a big buffer.
                tokio::task::yield_now().await;
            }
            let deadline = started.unwrap_or_else(Instant::now) + interval;
            if buffer.data.len() >= size_max || Instant::now() >= deadline {
                return Ok(buffer);
            }
            tokio::select! {
                () = log.wait_readable(buffer.end) => still_open(log, buffer.end)?,
                () = tokio::time::sleep_until(deadline) => {}
                () = self.stream.changed.notified() => {}
            }
        }
    }

    /// Stores the object, retrying with backoff until it is stored. A
    /// failure is logged when its kind changes, not at every retry.
    async fn store_object(&mut self, object: &Object) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let put = self
                .sink
                .put_object(&object.bucket, &object.key, object.body.clone())
                .await;
            match put {
                Ok(()) => {
                    if self.failing.take().is_some() {
                        info!(stream = %self.name(), key = %object.key, "delivery resumed");
                    }
                    return;
                }
                Err(err) => {
                    self.stream.metrics.put_failed();
                    if self.failing != Some(discriminant(&err)) {
                        warn!(stream = %self.name(), bucket = %object.bucket, %err, "delivery failed; retrying with backoff");
                        self.failing = Some(discriminant(&err));
                    } else {
                        debug!(stream = %self.name(), %err, "delivery failed again");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Records durably that everything below `end` is delivered, then
    /// drops the log's segments that hold only delivered records.
    async fn checkpoint(&self, end: Seq, last_arrival_ms: i64) {
        let record = self.stream.record();
        let ops = vec![MetaOp::Put {
            key: record.delivered_key(),
            value: catalog::encode_delivered(end),
        }];
        let mut backoff = BACKOFF_MIN;
        loop {
            let store = Arc::clone(&self.store);
            let ops = ops.clone();
            match tokio::task::spawn_blocking(move || store.meta().commit(&ops)).await {
                Ok(Ok(())) => break,
                Ok(Err(err)) => {
                    warn!(stream = %record.name, %err, "recording a delivery failed; retrying")
                }
                Err(err) => {
                    warn!(stream = %record.name, %err, "recording a delivery failed; retrying")
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        // Arrival times never decrease in a log, so every record that
        // arrived before the last delivered one is delivered too.
        let log = self.stream.log.clone();
        let cutoff = last_arrival_ms;
        if let Ok(Err(err)) = tokio::task::spawn_blocking(move || log.trim_before(cutoff)).await {
            debug!(stream = %record.name, %err, "trimming delivered records failed");
        }
    }
}

/// When a buffer whose first record arrived at `arrival_ms` (wall clock)
/// began, on Tokio's clock: records left undelivered by a restart have
/// waited already, and are due when their interval since arrival passed.
fn buffer_start(arrival_ms: i64) -> Instant {
    let age = u64::try_from(now_ms().saturating_sub(arrival_ms)).unwrap_or(0);
    let now = Instant::now();
    now.checked_sub(Duration::from_millis(age)).unwrap_or(now)
}

/// After a wake-up with nothing new at `at`: the error of a deleted or
/// closed log, so that its task ends instead of spinning.
fn still_open(log: &riffle_log::ShardLog, at: Seq) -> Result<(), LogError> {
    if log.next_seq() > at {
        return Ok(());
    }
    let probe = ReadLimits {
        records_max: 1,
        bytes_max: 1,
    };
    log.read(at, probe)?;
    if log.is_closed() {
        return Err(LogError::Closed {
            name: log.name().to_owned(),
        });
    }
    Ok(())
}

/// Makes the object of a flushed buffer: where it goes, its name and its
/// body (the records as they came: Firehose adds no delimiter). The one
/// place compression and AWS's prefix expressions plug in.
fn make_object(record: &StreamRecord, now_ms: i64, data: Vec<u8>) -> Object {
    let destination = &record.destination;
    let mut key = object_key(
        destination.prefix.as_deref(),
        &record.name,
        record.version,
        now_ms,
        &random_id(),
    );
    if let Some(extension) = &destination.file_extension {
        key.push_str(extension);
    }
    Object {
        bucket: destination.bucket().to_owned(),
        key,
        body: Bytes::from(data),
    }
}

/// `<prefix or YYYY/MM/dd/HH/><stream>-<version>-YYYY-MM-DD-HH-MM-SS-<random>`
/// in UTC. A prefix without expressions gets the default time path after
/// it, as AWS does; expressions are left as written (the `prefix` module
/// will evaluate them).
fn object_key(
    prefix: Option<&str>,
    stream: &str,
    version: u64,
    now_ms: i64,
    random: &str,
) -> String {
    let [y, mo, d, h, mi, s] = utc_fields(now_ms);
    let time_path = format!("{y:04}/{mo:02}/{d:02}/{h:02}/");
    let prefix = match prefix {
        Some(p) if p.contains("!{") => p.to_owned(),
        Some(p) => format!("{p}{time_path}"),
        None => time_path,
    };
    format!("{prefix}{stream}-{version}-{y:04}-{mo:02}-{d:02}-{h:02}-{mi:02}-{s:02}-{random}")
}

/// A random UUID (version 4) in its usual text form, as AWS ends names with.
fn random_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_follow_awss_form() {
        // 2026-12-06T02:45:07Z
        let at = 1_796_525_107_000;
        assert_eq!(
            object_key(None, "orders", 1, at, "r"),
            "2026/12/06/02/orders-1-2026-12-06-02-45-07-r"
        );
        assert_eq!(
            object_key(Some("raw-data/"), "orders", 3, at, "r"),
            "raw-data/2026/12/06/02/orders-3-2026-12-06-02-45-07-r"
        );
    }

    #[test]
    fn random_ids_are_uuids() {
        let id = random_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, random_id());
    }
}
