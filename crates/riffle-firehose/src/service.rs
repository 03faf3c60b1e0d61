//! The service's plumbing: loading the catalog at start, finding streams,
//! committing catalog changes, starting delivery and completing deletions.

use std::sync::Arc;

use riffle_log::{LogStore, MetaOp, Seq};
use tracing::warn;

use crate::catalog::{self, Kind, Status, StreamRecord};
use crate::errors::{self, FirehoseError};
use crate::stream::DeliveryStream;
use crate::{Firehose, FirehoseConfig, Streams, delivery, source};

/// Reads every catalog entry, opens its log and reads its delivered
/// position. Streams whose deletion a restart interrupted are deleted now
/// instead.
pub fn load_streams(store: &LogStore) -> Result<Vec<(Arc<DeliveryStream>, Seq)>, FirehoseError> {
    let mut streams = Vec::new();
    for (key, value) in store.meta().scan_prefix(catalog::STREAM_PREFIX)? {
        let record = StreamRecord::decode(&key, &value).map_err(|e| errors::meta(e.to_string()))?;
        if record.status == Status::Deleting {
            remove_stored(store, &record)?;
            continue;
        }
        let key = match &record.encryption {
            Some(enc) if enc.enabled => Some(store.data_key(enc.data_key_name())?),
            _ => None,
        };
        let delivered = match store.meta().get(&record.delivered_key())? {
            Some(value) => catalog::decode_delivered(&record.delivered_key(), &value)
                .map_err(|e| errors::meta(e.to_string()))?,
            None => 0,
        };
        let log = store.open_log(&record.log_name())?;
        streams.push((Arc::new(DeliveryStream::new(record, log, key)), delivered));
    }
    Ok(streams)
}

/// Deletes a stream's log, definition, delivered position and source
/// checkpoints (blocking).
fn remove_stored(store: &LogStore, record: &StreamRecord) -> Result<(), FirehoseError> {
    store.delete_log(&record.log_name())?;
    let mut ops = source::delete_checkpoints(store, record.incarnation)?;
    ops.push(MetaOp::Delete { key: record.key() });
    ops.push(MetaOp::Delete {
        key: record.delivered_key(),
    });
    ops.push(MetaOp::Delete {
        key: record.backup_delivered_key(),
    });
    store.meta().commit(&ops)?;
    Ok(())
}

pub fn stream_arn(config: &FirehoseConfig, name: &str) -> String {
    format!(
        "arn:aws:firehose:{}:{}:deliverystream/{name}",
        config.region, config.account_id
    )
}

impl Firehose {
    pub(crate) fn config(&self) -> &FirehoseConfig {
        &self.config
    }

    pub(crate) fn account(&self) -> &str {
        &self.config.account_id
    }

    pub(crate) fn store(&self) -> &Arc<LogStore> {
        &self.store
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<DeliveryStream>> {
        self.streams.read().get(name).cloned()
    }

    /// Every stream, in name order (a snapshot).
    pub(crate) fn all(&self) -> Vec<Arc<DeliveryStream>> {
        self.streams.read().values().cloned().collect()
    }

    pub(crate) fn count(&self) -> usize {
        self.streams.read().len()
    }

    /// The stream called `name`, or AWS's not-found error.
    pub(crate) fn lookup(&self, name: &str) -> Result<Arc<DeliveryStream>, FirehoseError> {
        self.get(name)
            .ok_or_else(|| errors::not_found(name, self.account()))
    }

    pub(crate) async fn lock_catalog(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.catalog_lock.lock().await
    }

    /// Applies catalog changes atomically and durably, off the async threads.
    pub(crate) async fn commit(&self, ops: Vec<MetaOp>) -> Result<(), FirehoseError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.meta().commit(&ops))
            .await
            .map_err(errors::task)??;
        Ok(())
    }

    /// Commits a stream's new definition and installs it.
    pub(crate) async fn save(
        &self,
        stream: &DeliveryStream,
        record: StreamRecord,
    ) -> Result<(), FirehoseError> {
        self.commit(vec![MetaOp::Put {
            key: record.key(),
            value: record.encode(),
        }])
        .await?;
        stream.set_record(record);
        Ok(())
    }

    /// Adds a new stream whose definition is committed, and starts its
    /// delivery (from its log's start: nothing of it is delivered yet).
    pub(crate) fn insert(&self, stream: Arc<DeliveryStream>) {
        let name = stream.record().name;
        self.streams.write().insert(name, Arc::clone(&stream));
        self.start_delivery(&stream, 0);
        self.start_source(&stream);
    }

    /// Starts reading the source of a KinesisStreamAsSource stream (the
    /// task waits for ACTIVE), once the Kinesis service is attached.
    pub(crate) fn start_source(&self, stream: &Arc<DeliveryStream>) {
        let record = stream.record();
        if record.kind != Kind::KinesisStreamAsSource || record.status == Status::Deleting {
            return;
        }
        let Some(kinesis) = self.kinesis.get() else {
            return;
        };
        let task = source::spawn(
            Arc::clone(&self.store),
            Arc::clone(kinesis),
            Arc::clone(stream),
        );
        // Dropping a replaced task's `stop` ends it.
        self.sources.lock().insert(record.incarnation, task);
    }

    /// Stops reading a stream's source: the task no longer appends to
    /// its log once the returned one resolves.
    pub(crate) fn take_source(&self, stream: &DeliveryStream) -> Option<source::SourceTask> {
        self.sources.lock().remove(&stream.record().incarnation)
    }

    /// Starts the stream's delivery task from `delivered`, the first
    /// record not known to be in a stored object.
    pub(crate) fn start_delivery(&self, stream: &Arc<DeliveryStream>, delivered: Seq) {
        let tasks = delivery::spawn(
            Arc::clone(&self.store),
            Arc::clone(&self.sink),
            Arc::clone(stream),
            delivered,
            self.config.s3_retry_duration,
            delivery::TransformEnv {
                functions: self.config.functions.clone(),
                region: self.config.region.clone(),
                account_id: self.config.account_id.clone(),
                http: self.config.destination_client.clone(),
                domains: Arc::new(self.config.opensearch_domains.clone()),
                redshift_retry_interval: self.config.timings.redshift_retry_interval,
                splunk_ack_timeout: self.config.timings.splunk_ack_timeout,
            },
        );
        stream.set_tasks(tasks);
    }

    /// Completes a deletion once DELETING has shown for the status delay:
    /// the log, definition and delivered position go, then the name.
    pub(crate) fn finish_deletion(&self, stream: Arc<DeliveryStream>) {
        let source = self.take_source(&stream);
        let store = Arc::clone(&self.store);
        let streams: Streams = Arc::clone(&self.streams);
        let delay = self.config.status_delay;
        tokio::spawn(async move {
            if let Some(source) = source {
                source.stop().await;
            }
            tokio::time::sleep(delay).await;
            let record = stream.record();
            let removed = {
                let store = Arc::clone(&store);
                let record = record.clone();
                tokio::task::spawn_blocking(move || remove_stored(&store, &record)).await
            };
            match removed {
                Ok(Ok(())) => {
                    let mut map = streams.write();
                    if map
                        .get(&record.name)
                        .is_some_and(|s| Arc::ptr_eq(s, &stream))
                    {
                        map.remove(&record.name);
                    }
                }
                // The stream stays DELETING; the next start completes it.
                Ok(Err(err)) => {
                    warn!(stream = %record.name, %err, "deleting a delivery stream failed")
                }
                Err(err) => warn!(stream = %record.name, %err, "deleting a delivery stream failed"),
            }
        });
    }
}
