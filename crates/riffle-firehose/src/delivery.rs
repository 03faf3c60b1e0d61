//! Delivery: per delivery stream, one task per lane (the destination, and
//! the backup of the source records when S3BackupMode is `Enabled`) reads
//! the stream's log from the lane's last delivered position, fills a
//! buffer until the lane's size hint or interval is reached (whichever
//! comes first), makes an object of it (named by AWS's custom prefixes,
//! compressed per CompressionFormat) and stores it through the
//! [`ObjectSink`], retrying with backoff until it is stored; only then
//! does it record, durably, the position delivered. A crash at any point
//! re-delivers from the last recorded position: at least once, never lost.
//! The log is trimmed only below what every lane delivered. Each stream's
//! tasks wait and retry on their own, so a failing bucket never holds up
//! another stream.
//!
//! With an enabled Lambda processor, the destination's buffer is first
//! transformed ([`crate::transform`]); the transformed records make its
//! object, the records that failed make a `processing-failed/` object, and
//! the position is recorded once both are stored.
//!
//! With dynamic partitioning, the destination's lane keeps one buffer per
//! active partition ([`ActivePartitions`]), each delivered when its own
//! size hint or interval is reached ([`run_partitioned`]). The recorded
//! position then only advances to the oldest record still held in any
//! partition buffer: after a crash the log is read again from there, and
//! records of partitions already delivered past it are delivered again
//! (at least once, as without partitioning; never lost).

use std::mem::{Discriminant, discriminant};
use std::sync::Arc;

use bytes::Bytes;
use riffle_log::{LogError, LogStore, MetaOp, ReadLimits, Seq};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tracing::{debug, error, info, warn};

use crate::buffer::{Buffer, Records};
use crate::catalog::{self, StreamRecord};
use crate::compression::CompressionFormat;
use crate::convert;
use crate::destination::{S3Destination, timestamp};
use crate::endpoint::Endpoint;
use crate::http_client::DestinationClient;
use crate::metrics::LaneMetrics;
use crate::partition::{
    ACTIVE_PARTITIONS_MAX, ActivePartitions, Hints, METADATA_EXTRACTION_FAILED,
    PARTITIONS_LIMIT_EXCEEDED, Partition, Query,
};
use crate::prefix::{self, ErrorOutputType, PartitionKeys, S3Prefixes, ThreadRandom};
use crate::processing::{ErrorLines, LambdaProcessor, Partitioning, Reshaped, Reshaping};
use crate::redshift::RedshiftDestination;
use crate::redshift_delivery;
use crate::sink::{ObjectSink, SinkError};
use crate::stream::DeliveryStream;
use crate::time::now_ms;
use crate::transform::{ErrorRecord, Failure, Transformer, error_line};

/// The first retry of a failed upload waits this long, each next one twice
/// as long, up to [`BACKOFF_MAX`]: AWS retries S3 deliveries "every 5
/// seconds" ("Data delivery failure handling", Amazon S3). Unlike AWS,
/// which gives up after 24 hours, Riffle keeps retrying: nothing it
/// acknowledged is dropped (see `FirehoseConfig::s3_retry_duration`).
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Records and bytes per log read while filling a buffer: a read is a
/// `pread` on an async thread, so a 128 MiB buffer is read in short steps.
const READ_RECORDS_MAX: usize = 10_000;
const READ_BYTES_MAX: usize = 4 * 1024 * 1024;
const MIB: usize = 1024 * 1024;
/// With dynamic partitioning, the lane reads the log in chunks of at most
/// this many bytes, or what arrived within [`CHUNK_INTERVAL`], and adds
/// each chunk's records to their partitions' buffers (AWS's "multi-stage
/// buffering"): short enough that a partition is delivered close to its
/// own interval, long enough that a Lambda processor sees batches.
const CHUNK_BYTES_MAX: usize = 4 * MIB;
const CHUNK_INTERVAL: Duration = Duration::from_millis(500);
/// What all partition buffers of a lane may hold together: the API's
/// largest SizeInMBs (128), so that a partitioned lane holds no more than
/// a lane without partitioning; past it the largest buffers are
/// delivered early.
const PARTITION_BUFFERS_BYTES_MAX: usize = 128 * MIB;
/// Where a Redshift destination's manifests go in its intermediate bucket
/// (after the S3 Prefix), and those of copies that failed for the whole
/// retry duration (AWS's `errors/manifests/` folder, "Data delivery
/// failure handling", Amazon Redshift).
const MANIFESTS: &str = "manifests/";
const ERROR_MANIFESTS: &str = "errors/manifests/";

/// Which copy of a stream's records a task delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// To the destination bucket (`DeliveryToS3.*`).
    Destination,
    /// The source records to the backup bucket (`BackupToS3.*`), with the
    /// backup's own prefixes, buffering hints and compression, while
    /// S3BackupMode is `Enabled`.
    Backup,
}

impl Lane {
    fn index(self) -> usize {
        match self {
            Lane::Destination => 0,
            Lane::Backup => 1,
        }
    }

    /// Where this lane delivers, if anywhere now. With an endpoint (see
    /// [`Endpoint::lane_destination`]), the destination lane buffers by the
    /// endpoint's hints, and the backup lane copies every record to the
    /// S3 configuration's bucket with `AllData`.
    fn destination(self, record: &StreamRecord) -> Option<S3Destination> {
        match (self, &record.endpoint) {
            (Lane::Destination, None) => Some(record.destination.clone()),
            (Lane::Destination, Some(e)) => Some(e.lane_destination(&record.destination)),
            (Lane::Backup, None) => record.destination.backup_enabled().cloned(),
            (Lane::Backup, Some(e)) => e.backup_destination(&record.destination),
        }
    }

    fn checkpoint_key(self, record: &StreamRecord) -> String {
        match self {
            Lane::Destination => record.delivered_key(),
            Lane::Backup => record.backup_delivered_key(),
        }
    }
}

/// What record transformation needs of the service: the function
/// registry, and where the stream is (for its ARN in the event).
#[derive(Clone, Default)]
pub struct TransformEnv {
    /// `None`: no `[functions]` registry; every invocation fails as one of
    /// a function Lambda does not let Firehose invoke.
    pub functions: Option<riffle_lambda::Functions>,
    pub region: String,
    pub account_id: String,
    /// The client of HTTP destinations; `None`: one with the system's roots.
    pub http: Option<DestinationClient>,
    /// OpenSearch DomainARN → URL.
    pub domains: Arc<std::collections::BTreeMap<String, String>>,
    /// The wait between attempts of a failed Redshift COPY; `None`: AWS's
    /// ([`crate::redshift_delivery::RETRY_INTERVAL_DEFAULT`]).
    pub redshift_retry_interval: Option<Duration>,
    /// Overrides every Splunk destination's HECAcknowledgmentTimeoutInSeconds.
    pub splunk_ack_timeout: Option<Duration>,
}

/// Starts a stream's delivery tasks: the destination's from `delivered`,
/// the backup's from its own recorded position.
pub fn spawn(
    store: Arc<LogStore>,
    sink: Arc<dyn ObjectSink>,
    stream: Arc<DeliveryStream>,
    delivered: Seq,
    retry_duration: Duration,
    env: TransformEnv,
) -> Vec<JoinHandle<()>> {
    let env = Arc::new(env);
    let deliverer = |lane| Deliverer {
        store: Arc::clone(&store),
        sink: Arc::clone(&sink),
        stream: Arc::clone(&stream),
        lane,
        retry_duration,
        failing: None,
        env: Arc::clone(&env),
        query: Arc::default(),
    };
    let destination = deliverer(Lane::Destination);
    let backup = deliverer(Lane::Backup);
    vec![
        tokio::spawn(run(destination, Some(delivered))),
        tokio::spawn(async move {
            let start = backup.recorded_backup_position().await;
            run(backup, start).await;
        }),
    ]
}

#[derive(Clone)]
struct Deliverer {
    store: Arc<LogStore>,
    sink: Arc<dyn ObjectSink>,
    stream: Arc<DeliveryStream>,
    lane: Lane,
    retry_duration: Duration,
    /// The kind of the failure the sink last answered, until a put works:
    /// each kind is logged once, however many retries and buffers it lasts.
    failing: Option<Discriminant<SinkError>>,
    env: Arc<TransformEnv>,
    /// The MetadataExtraction query, compiled once per stream (again only
    /// when an update changes it).
    query: Arc<parking_lot::Mutex<Option<CompiledQuery>>>,
}

/// A MetadataExtraction query's text and its compiled form.
type CompiledQuery = (String, Arc<Query>);

/// One object to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub bucket: String,
    pub key: String,
    pub body: Bytes,
}

/// Delivers the lane's buffers one after another from `next`; `None` is a
/// backup lane with no position yet (it starts at the log's end when the
/// backup is enabled).
///
/// The next buffer fills while the last one is made and stored (its MD5,
/// write and sync take as long as filling it), so at most two buffers are
/// held; one object is stored at a time, so positions are recorded in
/// order.
async fn run(d: Deliverer, mut next: Option<Seq>) {
    // Dynamic partitioning is set at creation and never turned off.
    if let (Lane::Destination, Some(from)) = (d.lane, next)
        && d.lane
            .destination(&d.stream.record())
            .is_some_and(|dest| dest.dynamic_partitioning_enabled())
    {
        return run_partitioned(d, from).await;
    }
    let mut storing = Storing::Idle(d.clone());
    loop {
        let record = d.stream.record();
        if d.lane.destination(&record).is_none() {
            // The object in flight records its position before the
            // backup's is forgotten.
            let Some(idle) = storing.settle().await else {
                return;
            };
            storing = idle;
            next = d.backup_disabled(next.take()).await;
            d.changed().notified().await;
            continue;
        }
        let from = match next {
            Some(from) => from,
            None => d.backup_enabled().await,
        };
        next = Some(from);
        let filled = d.fill(from, None).await;
        // Flushed (or given up): the next buffer starts empty.
        d.metrics().buffering(0, 0, 0);
        let buffer = match filled {
            Ok(buffer) => buffer,
            Err(LogError::Deleted { .. } | LogError::Closed { .. }) => {
                storing.settle().await;
                return;
            }
            Err(err) => {
                warn!(stream = %d.name(), %err, "reading a delivery stream's buffer failed; retrying");
                tokio::time::sleep(BACKOFF_MAX).await;
                continue;
            }
        };
        // The definition as of the flush: an UpdateDestination while the
        // buffer filled names its object (new version, prefix, format).
        let record = d.stream.record();
        let Some(destination) = d.lane.destination(&record) else {
            // The backup was disabled while this buffer filled: AWS backs
            // up only while S3BackupMode is Enabled.
            continue;
        };
        next = Some(buffer.end);
        let Some(Storing::Idle(mut storer)) = storing.settle().await else {
            return;
        };
        storing = Storing::Busy(StoreTask(tokio::spawn(async move {
            storer.deliver(&record, &destination, buffer).await;
            storer
        })));
    }
}

/// A lane's storing side: idle, or storing one object in its own task
/// (which hands the storer back, with its failure state, when done).
enum Storing {
    Idle(Deliverer),
    Busy(StoreTask),
}

/// The task storing one object. Dropping it (the lane's task stopped or
/// aborted) aborts it, so that stopping a lane stops its storing too, as
/// when both were one task; what it had not recorded is delivered again
/// at the next start.
struct StoreTask(JoinHandle<Deliverer>);

impl Drop for StoreTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Storing {
    /// Waits until no object is in flight. `None` if the storing task
    /// died: the lane stops, and a restart re-delivers from the last
    /// recorded position, so nothing is skipped.
    async fn settle(self) -> Option<Storing> {
        match self {
            Storing::Idle(storer) => Some(Storing::Idle(storer)),
            Storing::Busy(mut task) => match (&mut task.0).await {
                Ok(storer) => Some(Storing::Idle(storer)),
                Err(err) => {
                    error!(%err, "a delivery task ended abnormally; the lane stops until a restart");
                    None
                }
            },
        }
    }
}

impl Deliverer {
    fn name(&self) -> String {
        self.stream.record().name
    }

    fn metrics(&self) -> &LaneMetrics {
        self.lane_metrics(self.lane)
    }

    /// `DeliveryToS3.*` or `BackupToS3.*`.
    fn lane_metrics(&self, lane: Lane) -> &LaneMetrics {
        match lane {
            Lane::Destination => &self.stream.metrics.delivery,
            Lane::Backup => &self.stream.metrics.backup,
        }
    }

    fn changed(&self) -> &Notify {
        match self.lane {
            Lane::Destination => &self.stream.changed,
            Lane::Backup => &self.stream.backup_changed,
        }
    }

    /// The Lambda processor this lane runs, if any: the destination's,
    /// never the backup's (it keeps the source records).
    fn processor(&self, destination: &S3Destination) -> Option<LambdaProcessor> {
        match self.lane {
            Lane::Destination => LambdaProcessor::of(destination.processing.as_ref()),
            Lane::Backup => None,
        }
    }

    /// Makes, stores and checkpoints one buffer's objects.
    async fn deliver(
        &mut self,
        record: &StreamRecord,
        destination: &S3Destination,
        buffer: Buffer,
    ) {
        let (end, last_arrival_ms) = (buffer.end, buffer.last_arrival_ms);
        let oldest_ms = buffer.oldest_ms();
        let reshaped = self.reshape(destination, buffer).await;
        let buffer = reshaped.buffer;
        let mut processed = match self.processor(destination) {
            Some(processor) => self.transformed(record, buffer, processor).await,
            None => Processed {
                oldest_ms: buffer.oldest_ms(),
                records: buffer.into_records(),
                ..Processed::default()
            },
        };
        let early = reshaped.processing_failed;
        processed.failed.extend_from_slice(&early.lines);
        processed.failed_records += early.count;
        self.deliver_processed(record, destination, processed).await;
        let kind = ErrorOutputType::DecompressionFailed;
        self.store_failed(
            record,
            destination,
            oldest_ms,
            reshaped.decompression_failed,
            kind,
        )
        .await;
        self.checkpoint(end, last_arrival_ms).await;
    }

    /// Makes and stores the object of `records`, the oldest of which
    /// arrived at `oldest_ms`.
    async fn deliver_records(
        &mut self,
        record: &StreamRecord,
        destination: &S3Destination,
        oldest_ms: i64,
        records: Records,
        keys: &PartitionKeys,
    ) {
        if self.lane == Lane::Destination
            && let Some(Endpoint::Redshift(redshift)) = &record.endpoint
        {
            self.deliver_to_redshift(record, destination, redshift, oldest_ms, records, keys)
                .await;
            return;
        }
        if self.lane == Lane::Destination
            && let Some(endpoint) = &record.endpoint
        {
            self.deliver_to_endpoint(record, destination, endpoint, oldest_ms, records)
                .await;
            return;
        }
        let count = records.ends.len() as u64;
        let objects = match convert::deliver::enabled(destination) {
            Some(conversion) => {
                self.convert(record, destination, oldest_ms, records, keys, conversion)
                    .await
            }
            None => vec![
                self.make_object(record, destination, oldest_ms, records, keys)
                    .await,
            ],
        };
        let mut bytes = 0;
        for object in &objects {
            self.store_object(object, count).await;
            bytes += object.body.len() as u64;
        }
        let freshness_ms = now_ms().saturating_sub(oldest_ms);
        self.metrics().delivered(count, bytes, freshness_ms.max(0));
    }

    /// Hands `records` to the stream's endpoint; what it could not deliver
    /// within its retry duration is stored in the S3 configuration's
    /// bucket under the error prefix, so nothing acknowledged is lost.
    async fn deliver_to_endpoint(
        &mut self,
        record: &StreamRecord,
        destination: &S3Destination,
        endpoint: &Endpoint,
        oldest_ms: i64,
        records: Records,
    ) {
        let client = self
            .env
            .http
            .clone()
            .unwrap_or_else(DestinationClient::system);
        let source_arn = format!(
            "arn:aws:firehose:{}:{}:deliverystream/{}",
            self.env.region, self.env.account_id, record.name
        );
        let env = crate::endpoint::Env {
            client: &client,
            source_arn: &source_arn,
            domains: &self.env.domains,
            splunk_ack_timeout: self.env.splunk_ack_timeout,
        };
        let Some(failed) = endpoint
            .deliver(&env, &self.stream.metrics, &records, oldest_ms)
            .await
        else {
            return;
        };
        let key = error_object_key(record, destination, oldest_ms, endpoint.error_output_type());
        let object = Object {
            bucket: destination.bucket().to_owned(),
            key,
            body: Bytes::from(failed.lines),
        };
        // The failed data is the destination's S3 backup: AWS counts it
        // in BackupToS3.*, as the AllData copies.
        self.store_object_in(&object, failed.records, Lane::Backup)
            .await;
        let freshness_ms = now_ms().saturating_sub(oldest_ms).max(0);
        self.lane_metrics(Lane::Backup).delivered(
            failed.records,
            object.body.len() as u64,
            freshness_ms,
        );
    }

    /// Redshift, as AWS delivers it: stages the records as an object in
    /// the intermediate bucket (`DeliveryToS3.*`), writes the manifest
    /// listing it, then copies it into the table within the retry
    /// duration; past it, the manifest goes under `errors/manifests/`.
    /// Only then does the lane record its position, so a crash before
    /// the COPY committed copies the records again (at least once).
    async fn deliver_to_redshift(
        &mut self,
        record: &StreamRecord,
        destination: &S3Destination,
        redshift: &RedshiftDestination,
        oldest_ms: i64,
        records: Records,
        keys: &PartitionKeys,
    ) {
        let count = records.ends.len() as u64;
        let staged = self
            .make_object(record, destination, oldest_ms, records, keys)
            .await;
        self.store_object(&staged, count).await;
        let freshness_ms = now_ms().saturating_sub(oldest_ms).max(0);
        self.metrics()
            .delivered(count, staged.body.len() as u64, freshness_ms);
        let prefix = destination.prefix.as_deref();
        let manifest = Object {
            bucket: staged.bucket.clone(),
            key: redshift_delivery::manifest_key(&staged.key, prefix, MANIFESTS),
            body: redshift_delivery::manifest_body(&staged.bucket, &staged.key),
        };
        self.store_object(&manifest, 0).await;
        let stream = Arc::clone(&self.stream);
        let target = redshift_delivery::Target {
            destination: redshift,
            retry: Duration::from_secs(u64::try_from(redshift.retry_s).unwrap_or(0)),
            interval: self
                .env
                .redshift_retry_interval
                .unwrap_or(redshift_delivery::RETRY_INTERVAL_DEFAULT),
            metrics: &stream.metrics.endpoint,
        };
        if redshift_delivery::deliver(&target, &staged.body, oldest_ms)
            .await
            .is_ok()
        {
            return;
        }
        stream.metrics.endpoint.failed(count);
        let errors = Object {
            key: redshift_delivery::manifest_key(&staged.key, prefix, ERROR_MANIFESTS),
            ..manifest
        };
        self.store_object(&errors, count).await;
    }

    /// The converted object of `records` (named with `keys`) and the
    /// `format-conversion-failed/` object of those that did not fit,
    /// made on a blocking thread (it reads the catalog and builds the
    /// file).
    async fn convert(
        &self,
        record: &StreamRecord,
        destination: &S3Destination,
        oldest_ms: i64,
        records: Records,
        keys: &PartitionKeys,
        conversion: convert::Conversion,
    ) -> Vec<Object> {
        let key = object_key(record, destination, oldest_ms, keys).0;
        let (store, record, destination) =
            (Arc::clone(&self.store), record.clone(), destination.clone());
        let converted = tokio::task::spawn_blocking(move || {
            let bounds = records.bounds();
            convert::deliver::convert_buffer(
                &store,
                &record,
                &destination,
                &conversion,
                (oldest_ms, key),
                &records.data,
                &bounds,
            )
        })
        .await;
        match converted {
            Ok(converted) => [converted.object, converted.failed]
                .into_iter()
                .flatten()
                .collect(),
            // A panicked conversion ends this storing task, so the lane
            // stops unrecorded and a restart converts the records again.
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            // Cancelled: the runtime is stopping. Nothing is recorded.
            Err(_) => std::future::pending().await,
        }
    }

    /// The buffer transformed by the Lambda processor, with the records
    /// that failed as error lines.
    async fn transformed(
        &self,
        record: &StreamRecord,
        buffer: Buffer,
        processor: LambdaProcessor,
    ) -> Processed {
        let transformer = Arc::new(Transformer {
            functions: self.env.functions.clone(),
            delivery_stream_arn: format!(
                "arn:aws:firehose:{}:{}:deliverystream/{}",
                self.env.region, self.env.account_id, record.name
            ),
            source_stream_arn: record.source.as_ref().map(|s| s.stream_arn.clone()),
            region: self.env.region.clone(),
            processor,
            stream: Arc::clone(&self.stream),
        });
        let out = transformer.transform(&buffer).await;
        Processed {
            records: out.records,
            lambda_keys: out.partition_keys,
            failed: out.failed,
            failed_records: out.failed_records,
            oldest_ms: buffer.oldest_ms(),
        }
    }

    /// Stores processed records' object (none when no record is left, as
    /// AWS writes no empty object), then the failed records'
    /// `processing-failed/` object.
    async fn deliver_processed(
        &mut self,
        record: &StreamRecord,
        destination: &S3Destination,
        mut processed: Processed,
    ) {
        let oldest_ms = processed.oldest_ms;
        if !processed.records.ends.is_empty() {
            let mut records = std::mem::take(&mut processed.records);
            if self.lane == Lane::Destination
                && Partitioning::of(destination.processing.as_ref()).delimiter
            {
                records = records.delimited();
            }
            let keys = PartitionKeys::default();
            self.deliver_records(record, destination, oldest_ms, records, &keys)
                .await;
        }
        let failed = ErrorLines {
            lines: processed.failed,
            count: processed.failed_records,
        };
        let kind = ErrorOutputType::ProcessingFailed;
        self.store_failed(record, destination, oldest_ms, failed, kind)
            .await;
    }

    /// The destination lane's buffer after the processors that reshape
    /// records (decompression, CloudWatch Logs messages, deaggregation),
    /// off the async threads; the buffer as it is without them.
    async fn reshape(&self, destination: &S3Destination, buffer: Buffer) -> Reshaped {
        let reshaping = match self.lane {
            Lane::Destination => Reshaping::of(destination.processing.as_ref()),
            Lane::Backup => None,
        };
        let Some(reshaping) = reshaping else {
            return Reshaped {
                buffer,
                ..Reshaped::default()
            };
        };
        match tokio::task::spawn_blocking(move || reshaping.apply(&buffer)).await {
            Ok(reshaped) => reshaped,
            // Reshaping returns errors as values; a panic ends this task
            // unrecorded, and a restart reads the records again.
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            // Cancelled: the runtime is stopping. Nothing is recorded.
            Err(_) => std::future::pending().await,
        }
    }

    /// Stores the error output object of `kind` with these error lines.
    async fn store_failed(
        &mut self,
        record: &StreamRecord,
        destination: &S3Destination,
        oldest_ms: i64,
        failed: ErrorLines,
        kind: ErrorOutputType,
    ) {
        if failed.count == 0 {
            return;
        }
        let key = error_object_key(record, destination, oldest_ms, kind);
        let object = Object {
            bucket: destination.bucket().to_owned(),
            key,
            body: Bytes::from(failed.lines),
        };
        self.store_object(&object, failed.count).await;
    }

    /// Adds a chunk's records (transformed first by a Lambda processor)
    /// to their partitions' buffers, off the async threads; the records
    /// that failed are error lines.
    async fn partition_chunk(
        &self,
        record: &StreamRecord,
        destination: &S3Destination,
        chunk: Buffer,
        mut active: ActivePartitions,
    ) -> Result<(ActivePartitions, Failed), ()> {
        let since = (chunk.from, chunk.oldest_ms());
        let reshaped = self.reshape(destination, chunk).await;
        let chunk = reshaped.buffer;
        let mut processed = match self.processor(destination) {
            Some(processor) => self.transformed(record, chunk, processor).await,
            None => Processed {
                oldest_ms: chunk.oldest_ms(),
                records: chunk.into_records(),
                ..Processed::default()
            },
        };
        let settings = Partitioning::of(destination.processing.as_ref());
        let query = settings.query.as_deref().and_then(|q| self.query(q));
        let records = std::mem::take(&mut processed.records);
        let lambda_keys = std::mem::take(&mut processed.lambda_keys);
        let split = tokio::task::spawn_blocking(move || {
            let chunk = Chunk {
                records: &records,
                lambda_keys: &lambda_keys,
                since,
            };
            let failed = partition(&mut active, &chunk, query.as_deref(), settings.delimiter);
            (active, failed)
        })
        .await;
        // The closure does not panic (jq errors are values); should its
        // task die anyway, the lane stops without a checkpoint and the
        // records are delivered again at the next start.
        let (active, failed) = split.map_err(|_| ())?;
        let mut processing = reshaped.processing_failed;
        processing.append(ErrorLines {
            lines: processed.failed,
            count: processed.failed_records,
        });
        processing.append(failed);
        Ok((
            active,
            Failed {
                processing,
                decompression: reshaped.decompression_failed,
                oldest_ms: since.1,
            },
        ))
    }

    /// Stores the delivered partitions' objects and a chunk's failed
    /// records, then records `position` (the oldest record still held).
    async fn store_partitions(
        &mut self,
        record: &StreamRecord,
        destination: &S3Destination,
        flushed: Vec<Partition>,
        failed: Failed,
        position: (Seq, i64),
    ) {
        for p in flushed {
            let oldest_ms = p.oldest_ms();
            self.deliver_records(record, destination, oldest_ms, p.records, &p.keys)
                .await;
        }
        let at = failed.oldest_ms;
        let kind = ErrorOutputType::ProcessingFailed;
        self.store_failed(record, destination, at, failed.processing, kind)
            .await;
        let kind = ErrorOutputType::DecompressionFailed;
        self.store_failed(record, destination, at, failed.decompression, kind)
            .await;
        self.checkpoint(position.0, position.1).await;
    }

    /// The stream's MetadataExtraction query, compiled on first use (it
    /// was checked when set; one that no longer compiles extracts nothing).
    fn query(&self, code: &str) -> Option<Arc<Query>> {
        let mut cached = self.query.lock();
        if let Some((cached_code, query)) = cached.as_ref()
            && cached_code == code
        {
            return Some(Arc::clone(query));
        }
        match Query::compile(code) {
            Ok(query) => {
                let query = Arc::new(query);
                *cached = Some((code.to_owned(), Arc::clone(&query)));
                Some(query)
            }
            Err(why) => {
                warn!(stream = %self.name(), %why, "the MetadataExtractionQuery does not compile");
                None
            }
        }
    }

    /// Where a backup lane starts after a (re)start: its recorded position;
    /// none recorded but the backup enabled (created so, or a crash before
    /// its first record): the oldest record kept, which is every one not
    /// yet backed up (the log is not trimmed past an unknown backup).
    async fn recorded_backup_position(&self) -> Option<Seq> {
        let key = self.lane.checkpoint_key(&self.stream.record());
        let store = Arc::clone(&self.store);
        let stored = tokio::task::spawn_blocking(move || store.meta().get(&key)).await;
        match stored {
            Ok(Ok(Some(value))) => {
                let key = self.lane.checkpoint_key(&self.stream.record());
                match catalog::decode_delivered(&key, &value) {
                    Ok(seq) => return Some(seq),
                    Err(err) => {
                        warn!(stream = %self.name(), %err, "unreadable backup position; backing up every record kept")
                    }
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(err)) => {
                warn!(stream = %self.name(), %err, "reading the backup position failed; backing up every record kept")
            }
            Err(err) => {
                warn!(stream = %self.name(), %err, "reading the backup position failed; backing up every record kept")
            }
        }
        let record = self.stream.record();
        self.lane
            .destination(&record)
            .map(|_| self.stream.log.oldest_seq())
    }

    /// The backup was just enabled: it backs up the records that arrive
    /// from now on, and records that position before anything else so that
    /// a restart starts there too.
    async fn backup_enabled(&self) -> Seq {
        // Hold trimming back first: every record from `from` on stays in
        // the log until the backup delivered it.
        self.stream.delivered_before(self.lane.index(), i64::MIN);
        let from = self.stream.log.next_seq();
        let key = self.lane.checkpoint_key(&self.stream.record());
        self.commit(vec![MetaOp::Put {
            key,
            value: catalog::encode_delivered(from),
        }])
        .await;
        from
    }

    /// The backup is disabled: it forgets its position (a later enabling
    /// starts afresh) and holds nothing back from trimming.
    async fn backup_disabled(&self, position: Option<Seq>) -> Option<Seq> {
        if position.is_some() {
            let key = self.lane.checkpoint_key(&self.stream.record());
            self.commit(vec![MetaOp::Delete { key }]).await;
        }
        self.stream.delivered_before(self.lane.index(), i64::MAX);
        None
    }

    /// Waits for a record at `from`, then reads until the size hint is
    /// reached or the interval since the buffer's first record has passed;
    /// a `chunk` reads less, and ends (empty, if need be) at its `due`.
    async fn fill(&self, from: Seq, chunk: Option<ChunkLimits>) -> Result<Buffer, LogError> {
        let log = &self.stream.log;
        let due = chunk.and_then(|c| c.due);
        while log.next_seq() <= from {
            tokio::select! {
                () = log.wait_readable(from) => still_open(log, from)?,
                () = sleep_until(due) => return Ok(Buffer::new(from)),
            }
        }
        let mut buffer = Buffer::new(from);
        let mut started = None;
        loop {
            let record = self.stream.record();
            let Some(destination) = self.lane.destination(&record) else {
                return Ok(buffer);
            };
            // A transformation sends a Kinesis source's record metadata.
            let keep_slots = record.source.is_some() && self.processor(&destination).is_some();
            let mut size_max = usize::try_from(destination.size_mb).unwrap_or(1) * MIB;
            let mut interval =
                Duration::from_secs(u64::try_from(destination.interval_s).unwrap_or(0));
            if chunk.is_some() {
                size_max = size_max.min(CHUNK_BYTES_MAX);
                interval = interval.min(CHUNK_INTERVAL);
            }
            while buffer.data.len() < size_max && log.next_seq() > buffer.end {
                let limits = ReadLimits {
                    records_max: READ_RECORDS_MAX,
                    bytes_max: (size_max - buffer.data.len()).min(READ_BYTES_MAX),
                };
                let batch = log.read(buffer.end, limits)?;
                if let (None, Some(first)) = (started, batch.records.first()) {
                    started = Some(buffer_start(first.arrival_ms));
                    // Room for a full buffer at once: growing by doubling
                    // copied a 128 MiB buffer's bytes once more. Pages
                    // are only touched as records fill them.
                    buffer
                        .data
                        .reserve(size_max.saturating_sub(buffer.data.len()));
                }
                for record in &batch.records {
                    buffer.push(record, keep_slots);
                }
                buffer.end = batch.next_seq;
                if chunk.is_none() {
                    // A chunk is not the lane's buffer: `run_partitioned`
                    // reports its partition buffers instead.
                    self.metrics().buffering(
                        buffer.len() as u64,
                        buffer.data.len() as u64,
                        buffer.oldest_ms(),
                    );
                }
                // Each read is a `pread` on this thread; let others run
                // between the steps of a big buffer.
                tokio::task::yield_now().await;
            }
            let mut deadline = started.unwrap_or_else(Instant::now) + interval;
            if let Some(due) = due {
                deadline = deadline.min(due);
            }
            if buffer.data.len() >= size_max || Instant::now() >= deadline {
                return Ok(buffer);
            }
            tokio::select! {
                () = log.wait_readable(buffer.end) => still_open(log, buffer.end)?,
                () = tokio::time::sleep_until(deadline) => {}
                () = self.changed().notified() => {}
            }
        }
    }

    /// Stores the object, retrying with backoff until it is stored. A
    /// failure is logged when its kind changes, not at every retry; an
    /// object still failing after the retry duration is logged as an error
    /// once and its records counted (AWS would discard them).
    async fn store_object(&mut self, object: &Object, records: u64) {
        self.store_object_in(object, records, self.lane).await;
    }

    /// [`Self::store_object`], its failures counted in `lane`'s metrics.
    async fn store_object_in(&mut self, object: &Object, records: u64, lane: Lane) {
        let mut backoff = BACKOFF_MIN;
        let first_attempt = Instant::now();
        let mut past_retry_duration = false;
        loop {
            let put = self
                .sink
                .put_object(&object.bucket, &object.key, object.body.clone())
                .await;
            let err = match put {
                Ok(()) => {
                    if self.failing.take().is_some() {
                        info!(stream = %self.name(), lane = ?self.lane, key = %object.key, "delivery resumed");
                    }
                    return;
                }
                Err(err) => err,
            };
            self.lane_metrics(lane).put_failed();
            if self.failing != Some(discriminant(&err)) {
                warn!(stream = %self.name(), lane = ?self.lane, bucket = %object.bucket, %err, "delivery failed; retrying with backoff");
                self.failing = Some(discriminant(&err));
            } else {
                debug!(stream = %self.name(), %err, "delivery failed again");
            }
            if !past_retry_duration && first_attempt.elapsed() >= self.retry_duration {
                past_retry_duration = true;
                self.lane_metrics(lane).past_retry_duration(records);
                error!(
                    stream = %self.name(), lane = ?self.lane, bucket = %object.bucket, key = %object.key, records, %err,
                    "an object is still undelivered after the S3 retry duration, when AWS would discard it; Riffle keeps retrying"
                );
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Makes the object of a flushed buffer whose oldest record arrived at
    /// `oldest_ms`: its key from the destination's prefixes evaluated at
    /// that time, its body the records as they came (Firehose adds no
    /// delimiter) compressed per CompressionFormat, off the async threads.
    async fn make_object(
        &self,
        record: &StreamRecord,
        destination: &S3Destination,
        oldest_ms: i64,
        records: Records,
        keys: &PartitionKeys,
    ) -> Object {
        let data = records.data;
        let (key, id) = object_key(record, destination, oldest_ms, keys);
        let format = destination.compression_format();
        if format == CompressionFormat::Uncompressed {
            // The records as they came: the buffer is the body, uncopied.
            return Object {
                bucket: destination.bucket().to_owned(),
                key,
                body: Bytes::from(data),
            };
        }
        let data = Arc::new(data);
        let mut backoff = BACKOFF_MIN;
        loop {
            let data = Arc::clone(&data);
            let entry = id.to_string();
            match tokio::task::spawn_blocking(move || format.compress(&data, &entry)).await {
                Ok(Ok(body)) => {
                    return Object {
                        bucket: destination.bucket().to_owned(),
                        key,
                        body: Bytes::from(body),
                    };
                }
                // In-memory codecs do not fail on any input; should one,
                // the records stay undelivered (and retried), never lost.
                Ok(Err(err)) => {
                    warn!(stream = %record.name, %err, "compressing an object failed; retrying")
                }
                Err(err) => {
                    warn!(stream = %record.name, %err, "compressing an object failed; retrying")
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Commits `ops` to the metadata store, retrying until it is durable.
    async fn commit(&self, ops: Vec<MetaOp>) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let store = Arc::clone(&self.store);
            let batch = ops.clone();
            match tokio::task::spawn_blocking(move || store.meta().commit(&batch)).await {
                Ok(Ok(())) => return,
                Ok(Err(err)) => {
                    warn!(stream = %self.name(), %err, "recording a delivery failed; retrying")
                }
                Err(err) => {
                    warn!(stream = %self.name(), %err, "recording a delivery failed; retrying")
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Records durably that everything below `end` is delivered, then
    /// drops the log's segments that hold only records every lane
    /// delivered.
    async fn checkpoint(&self, end: Seq, last_arrival_ms: i64) {
        let key = self.lane.checkpoint_key(&self.stream.record());
        self.commit(vec![MetaOp::Put {
            key,
            value: catalog::encode_delivered(end),
        }])
        .await;
        // Arrival times never decrease in a log, so every record that
        // arrived before the last delivered one is delivered too.
        let Some(cutoff) = self
            .stream
            .delivered_before(self.lane.index(), last_arrival_ms)
        else {
            return;
        };
        let log = self.stream.log.clone();
        if let Ok(Err(err)) = tokio::task::spawn_blocking(move || log.trim_before(cutoff)).await {
            debug!(stream = %self.name(), %err, "trimming delivered records failed");
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

/// An object's key and the UUID that ends it: `<evaluated prefix><stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid><extension>`,
/// the prefix and the time evaluated at `oldest_ms` in the destination's
/// time zone, the extension the FileExtension or the compression's.
pub(crate) fn object_key(
    record: &StreamRecord,
    destination: &S3Destination,
    oldest_ms: i64,
    keys: &PartitionKeys,
) -> (String, uuid::Uuid) {
    let prefixes = stream_prefixes(record, destination);
    let at = timestamp(oldest_ms);
    let mut rng = ThreadRandom;
    let evaluated = prefixes.evaluate(at, keys, &mut rng);
    let extension = prefix::object_extension(
        destination.file_extension.as_deref(),
        destination.default_extension(),
    );
    let id = prefix::random_uuid(&mut rng);
    let key = prefix::object_key(
        &evaluated,
        &record.name,
        record.version,
        at,
        prefixes.time_zone(),
        id,
        extension,
    );
    (key, id)
}

/// Records after the Lambda processor (or as they came), with what
/// partitioning and the error output need.
#[derive(Default)]
struct Processed {
    records: Records,
    /// The Lambda answer's partition keys, per record (empty without one).
    lambda_keys: Vec<std::collections::BTreeMap<String, String>>,
    failed: Vec<u8>,
    failed_records: u64,
    oldest_ms: i64,
}

/// How a partitioned lane reads its next chunk: less than a buffer, and
/// no later than the next partition buffer is due.
#[derive(Debug, Clone, Copy)]
struct ChunkLimits {
    due: Option<Instant>,
}

/// Sleeps until `at`; never without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A chunk's records that failed, as error lines.
#[derive(Debug, Default)]
struct Failed {
    processing: ErrorLines,
    decompression: ErrorLines,
    /// The chunk's oldest arrival, which names their objects.
    oldest_ms: i64,
}

/// A chunk's records after the Lambda processor, with the log position
/// they were read from.
struct Chunk<'a> {
    records: &'a Records,
    lambda_keys: &'a [std::collections::BTreeMap<String, String>],
    since: (Seq, i64),
}

/// A lane with dynamic partitioning: reads the log in chunks, adds each
/// record to its partition's buffer, and delivers each buffer when its
/// own size hint or interval is reached (or the largest ones when all
/// together hold [`PARTITION_BUFFERS_BYTES_MAX`]). A record of a new
/// partition while [`ACTIVE_PARTITIONS_MAX`] are active goes to the error
/// output, as AWS's ("Buffer data for dynamic partitioning"). Objects are
/// stored by one task at a time, each storing recording the oldest
/// position still held in a buffer, so positions are recorded in order.
async fn run_partitioned(d: Deliverer, from: Seq) {
    let mut storing = Storing::Idle(d.clone());
    let mut active = ActivePartitions::default();
    let (mut read_at, mut read_arrival_ms) = (from, i64::MIN);
    let mut recorded = from;
    let clock = LaneClock::start();
    loop {
        let record = d.stream.record();
        let Some(destination) = d.lane.destination(&record) else {
            return;
        };
        let hints = partition_hints(&destination);
        let due = active
            .next_due_ms(hints.interval_ms)
            .map(|ms| clock.instant(ms));
        let chunk = match d.fill(read_at, Some(ChunkLimits { due })).await {
            Ok(chunk) => chunk,
            Err(LogError::Deleted { .. } | LogError::Closed { .. }) => {
                storing.settle().await;
                return;
            }
            Err(err) => {
                warn!(stream = %d.name(), %err, "reading a delivery stream's buffer failed; retrying");
                tokio::time::sleep(BACKOFF_MAX).await;
                continue;
            }
        };
        let mut failed = Failed::default();
        if chunk.len() > 0 {
            (read_at, read_arrival_ms) = (chunk.end, chunk.last_arrival_ms);
            let Ok(split) = d
                .partition_chunk(&record, &destination, chunk, active)
                .await
            else {
                error!(stream = %record.name, "partitioning a buffer failed; the lane stops until a restart");
                storing.settle().await;
                return;
            };
            (active, failed) = split;
        }
        // Behind the log (records waiting to be read), buffers are not
        // due by time yet: their records already waited, and reading on
        // fills them to their size instead of making an object per
        // partition of every chunk; as without partitioning, a buffer
        // goes by time once the lane has caught up.
        let caught_up = d.stream.log.next_seq() <= read_at;
        let now_ms = if caught_up { clock.now_ms() } else { i64::MIN };
        let flushed = active.take_due(now_ms, hints);
        let (records, oldest_ms) = active.held_records();
        d.metrics()
            .buffering(records as u64, active.bytes() as u64, oldest_ms);
        let position = active.held_since().unwrap_or((read_at, read_arrival_ms));
        let no_failures = failed.processing.count + failed.decompression.count == 0;
        if flushed.is_empty() && no_failures && position.0 == recorded {
            continue;
        }
        recorded = position.0;
        debug!(
            stream = %record.name, delivered = flushed.len(), active = active.count(),
            held_bytes = active.bytes(), "partition buffers due"
        );
        let Some(Storing::Idle(mut storer)) = storing.settle().await else {
            return;
        };
        storing = Storing::Busy(StoreTask(tokio::spawn(async move {
            storer
                .store_partitions(&record, &destination, flushed, failed, position)
                .await;
            storer
        })));
    }
}

/// Wall-clock times (records' arrivals) on Tokio's clock, from the lane's
/// start: a partition's deadline becomes a timer, and a due buffer is
/// found by the same clock that woke the lane (also when tests pause it).
struct LaneClock {
    at: Instant,
    ms: i64,
}

impl LaneClock {
    fn start() -> LaneClock {
        LaneClock {
            at: Instant::now(),
            ms: now_ms(),
        }
    }

    fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.at.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.ms.saturating_add(elapsed)
    }

    /// The instant of wall-clock time `ms`.
    fn instant(&self, ms: i64) -> Instant {
        let offset = Duration::from_millis(ms.abs_diff(self.ms));
        if ms >= self.ms {
            self.at + offset
        } else {
            self.at.checked_sub(offset).unwrap_or(self.at)
        }
    }
}

/// The destination's buffering hints, per partition buffer.
fn partition_hints(destination: &S3Destination) -> Hints {
    Hints {
        size_bytes: usize::try_from(destination.size_mb).unwrap_or(1) * MIB,
        interval_ms: i64::from(destination.interval_s) * 1000,
        total_bytes_max: PARTITION_BUFFERS_BYTES_MAX,
    }
}

/// Adds a chunk's records to their partitions' buffers; a record whose
/// query fails, or of a partition past the active limit, becomes an error
/// line (returned with their count).
fn partition(
    active: &mut ActivePartitions,
    chunk: &Chunk<'_>,
    query: Option<&Query>,
    delimiter: bool,
) -> ErrorLines {
    let mut failed = ErrorLines::default();
    let records = chunk.records;
    for i in 0..records.ends.len() {
        let data = records.record(i);
        let arrival_ms = records.arrivals.get(i).copied().unwrap_or(chunk.since.1);
        let mut fail = |failure: Failure| {
            failed.count += 1;
            error_line(
                &mut failed.lines,
                &ErrorRecord {
                    attempts: 1,
                    arrival_ms,
                    failure: &failure,
                    ended_ms: now_ms(),
                    raw: data,
                    lambda_arn: None,
                },
            );
        };
        let from_query = match query.map(|q| q.keys(data)) {
            None => Vec::new(),
            Some(Ok(keys)) => keys,
            Some(Err(why)) => {
                fail(Failure::new(METADATA_EXTRACTION_FAILED, why));
                continue;
            }
        };
        let from_lambda = chunk
            .lambda_keys
            .get(i)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let keys = PartitionKeys {
            from_query,
            from_lambda,
        };
        if !active.push(keys, data, arrival_ms, delimiter, chunk.since) {
            let why = format!(
                "The number of active partitions exceeded the limit of {ACTIVE_PARTITIONS_MAX}."
            );
            fail(Failure::new(PARTITIONS_LIMIT_EXCEEDED, why));
        }
    }
    failed
}

/// The key of an error output object of a buffer whose oldest record
/// arrived at `oldest_ms`: the ErrorOutputPrefix evaluated for `kind`
/// (AWS's `<Prefix>processing-failed/YYYY/MM/dd/HH/` without one), then
/// the object name. Error records are written uncompressed, one JSON
/// object a line.
pub(crate) fn error_object_key(
    record: &StreamRecord,
    destination: &S3Destination,
    oldest_ms: i64,
    kind: ErrorOutputType,
) -> String {
    let prefixes = stream_prefixes(record, destination);
    let at = timestamp(oldest_ms);
    let mut rng = ThreadRandom;
    let evaluated = prefixes.evaluate_error(at, kind, &mut rng);
    let id = prefix::random_uuid(&mut rng);
    prefix::object_key(
        &evaluated,
        &record.name,
        record.version,
        at,
        prefixes.time_zone(),
        id,
        "",
    )
}

/// The destination's prefixes, checked at the time the destination was
/// set (when they were accepted, so AWS's length limit holds). A stored
/// destination that no longer passes (one kept by an older Riffle that
/// did not check prefixes) falls back to AWS's default prefix.
pub(crate) fn stream_prefixes(record: &StreamRecord, destination: &S3Destination) -> S3Prefixes {
    let set_ms = record.updated_ms.unwrap_or(record.created_ms);
    destination.prefixes(set_ms).unwrap_or_else(|err| {
        warn!(stream = %record.name, %err, "the stored prefix is invalid; using the default prefix");
        // No prefix, no error prefix, UTC: nothing to refuse.
        S3Prefixes::new(None, None, None, timestamp(set_ms)).expect("the default prefix is valid")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an ExtendedS3 destination of these members is, as the catalog
    /// keeps it.
    fn stream(destination: serde_json::Value, version: u64) -> StreamRecord {
        let mut config = serde_json::json!({
            "RoleARN": "arn:aws:iam::000000000000:role/r",
            "BucketARN": "arn:aws:s3:::b",
        });
        for (k, v) in destination.as_object().unwrap() {
            config[k] = v.clone();
        }
        let input: crate::destination::S3Input = serde_json::from_value(config).unwrap();
        let destination = input.into_destination(true);
        let stored = serde_json::json!({
            "v": catalog::CATALOG_VERSION, "name": "orders", "incarnation": 7,
            "created_ms": 1_796_525_107_000_i64, "updated_ms": null, "kind": "DirectPut",
            "source": null, "throughput_hint_mb": null, "status": "CREATING",
            "status_until_ms": 0, "version": version, "destination": destination,
            "tags": {}, "encryption": null,
        });
        serde_json::from_value(stored).unwrap()
    }

    /// The key without the UUID that ends it (and its extension).
    fn key_at(record: &StreamRecord, at_ms: i64) -> (String, String) {
        let (key, id) = object_key(
            record,
            &record.destination,
            at_ms,
            &PartitionKeys::default(),
        );
        let id = id.to_string();
        let (before, after) = key.split_once(&id).unwrap();
        (before.to_owned(), after.to_owned())
    }

    // 2026-12-06T02:45:07Z, a Sunday; 18:45:07 the day before in Los Angeles.
    const AT: i64 = 1_796_525_107_000;

    #[test]
    fn object_names_follow_awss_form() {
        assert_eq!(
            key_at(&stream(serde_json::json!({}), 1), AT),
            (
                "2026/12/06/02/orders-1-2026-12-06-02-45-07-".to_owned(),
                String::new()
            )
        );
        assert_eq!(
            key_at(
                &stream(
                    serde_json::json!({"Prefix": "raw-data/", "CompressionFormat": "GZIP"}),
                    3
                ),
                AT
            ),
            (
                "raw-data/2026/12/06/02/orders-3-2026-12-06-02-45-07-".to_owned(),
                ".gz".to_owned()
            )
        );
    }

    #[test]
    fn a_timestamp_prefix_is_evaluated_in_the_custom_time_zone() {
        let record = stream(
            serde_json::json!({
                "Prefix": "raw/!{timestamp:yyyy/MM/dd}/",
                "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
                "CustomTimeZone": "America/Los_Angeles",
                "CompressionFormat": "Snappy",
                "FileExtension": ".json.snappy",
            }),
            2,
        );
        assert_eq!(
            key_at(&record, AT),
            (
                "raw/2026/12/05/orders-2-2026-12-05-18-45-07-".to_owned(),
                ".json.snappy".to_owned()
            )
        );
    }

    #[test]
    fn error_output_keys_name_the_kind_of_failure() {
        let record = stream(
            serde_json::json!({
                "Prefix": "raw/!{timestamp:yyyy}/",
                "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/",
            }),
            1,
        );
        let prefixes = stream_prefixes(&record, &record.destination);
        let error = prefixes.evaluate_error(
            timestamp(AT),
            ErrorOutputType::FormatConversionFailed,
            &mut ThreadRandom,
        );
        assert_eq!(error, "errors/format-conversion-failed/2026/12/06/");
        // A literal Prefix and no ErrorOutputPrefix: under the Prefix.
        let record = stream(serde_json::json!({"Prefix": "raw-data/"}), 1);
        let prefixes = stream_prefixes(&record, &record.destination);
        let error = prefixes.evaluate_error(
            timestamp(AT),
            ErrorOutputType::ProcessingFailed,
            &mut ThreadRandom,
        );
        assert_eq!(error, "raw-data/processing-failed/2026/12/06/02/");
    }
}
