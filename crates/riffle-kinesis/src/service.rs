//! The service's plumbing: loading the catalog at start, finding streams,
//! committing catalog changes, completing deletions, and the background
//! duties (status transitions and retention trimming).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use riffle_log::{LogStore, MetaOp};
use tracing::{debug, warn};

use crate::catalog::{self, Status, StreamRecord};
use crate::errors;
use crate::iterator::IteratorKey;
use crate::stream::Stream;
use crate::time::now_ms;
use crate::{Kinesis, KinesisConfig, KinesisError};

/// How often the background task looks for due status transitions. Only
/// matters for what is persisted: reads compute the status from the clock.
const TRANSITION_TICK: Duration = Duration::from_millis(100);
/// How often retention trimming runs. Segments are deleted whole, so
/// trimming more often would gain little.
const TRIM_TICK: Duration = Duration::from_secs(60);

pub fn load_or_create_key(store: &LogStore) -> Result<IteratorKey, KinesisError> {
    if let Some(bytes) = store.meta().get(catalog::ITERATOR_KEY)? {
        let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            errors::catalog(catalog::CatalogError::Corrupt {
                key: catalog::ITERATOR_KEY.to_owned(),
                reason: format!("expected 32 bytes, found {}", bytes.len()),
            })
        })?;
        return Ok(IteratorKey::new(bytes));
    }
    let bytes: [u8; 32] = rand::random();
    store.meta().commit(&[MetaOp::Put {
        key: catalog::ITERATOR_KEY.to_owned(),
        value: bytes.to_vec(),
    }])?;
    Ok(IteratorKey::new(bytes))
}

pub fn load_streams(
    store: &LogStore,
    config: &KinesisConfig,
) -> Result<BTreeMap<String, Arc<Stream>>, KinesisError> {
    let mut streams = BTreeMap::new();
    for (key, value) in store.meta().scan_prefix(catalog::STREAM_PREFIX)? {
        let record = StreamRecord::decode(&key, &value).map_err(errors::catalog)?;
        let arn = stream_arn(config, &record.name);
        let name = record.name.clone();
        let stream = crate::reshard::recover(store, Stream::open(store, record, arn)?)?;
        streams.insert(name, Arc::new(stream));
    }
    Ok(streams)
}

pub fn stream_arn(config: &KinesisConfig, name: &str) -> String {
    format!(
        "arn:aws:kinesis:{}:{}:stream/{name}",
        config.region, config.account_id
    )
}

impl Kinesis {
    pub(crate) fn config(&self) -> &KinesisConfig {
        &self.config
    }

    pub(crate) fn account(&self) -> &str {
        &self.config.account_id
    }

    pub(crate) fn store(&self) -> &Arc<LogStore> {
        &self.store
    }

    pub(crate) fn iterator_key(&self) -> &crate::iterator::IteratorKey {
        &self.iterator_key
    }

    /// The stream a shard iterator this server issued reads, e.g. to
    /// authorize a GetRecords call; `None` for a token it did not issue.
    pub fn stream_of_iterator(&self, token: &str) -> Option<String> {
        crate::iterator::ShardIterator::decode(token, &self.iterator_key).map(|it| it.stream)
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<Stream>> {
        self.streams.read().get(name).cloned()
    }

    /// Every stream, in name order (a snapshot).
    pub(crate) fn all(&self) -> Vec<Arc<Stream>> {
        self.streams.read().values().cloned().collect()
    }

    /// The stream a request names by `StreamName` and/or `StreamARN`.
    pub(crate) fn target_name(
        &self,
        name: Option<&str>,
        arn: Option<&str>,
    ) -> Result<String, KinesisError> {
        let Some(arn) = arn else {
            return name.map(str::to_owned).ok_or_else(errors::no_stream_named);
        };
        // arn:<partition>:kinesis:<region>:<account>:stream/<name>
        let mut parts = arn.splitn(6, ':');
        let (region, account, resource) = (parts.nth(3), parts.next(), parts.next());
        let from_arn = resource
            .and_then(|r| r.strip_prefix("stream/"))
            .unwrap_or(arn);
        if account != Some(self.account()) || region != Some(self.config.region.as_str()) {
            return Err(errors::stream_not_found(
                from_arn,
                account.unwrap_or(self.account()),
            ));
        }
        match name {
            Some(name) if name != from_arn => Err(KinesisError::InvalidArgument(format!(
                "StreamARN {arn} and StreamName {name} do not refer to the same stream."
            ))),
            _ => Ok(from_arn.to_owned()),
        }
    }

    /// The stream called `name`, unless it does not exist (or its deletion
    /// has completed).
    pub(crate) fn lookup(&self, name: &str, now: i64) -> Result<Arc<Stream>, KinesisError> {
        self.get(name)
            .filter(|s| s.status(now).is_some())
            .ok_or_else(|| errors::stream_not_found(name, self.account()))
    }

    /// Applies catalog changes atomically and durably, off the async threads.
    pub(crate) async fn commit(&self, ops: Vec<MetaOp>) -> Result<(), KinesisError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.meta().commit(&ops))
            .await
            .map_err(errors::task)??;
        Ok(())
    }

    pub(crate) fn insert(&self, stream: Stream) {
        self.insert_arc(Arc::new(stream));
    }

    pub(crate) fn insert_arc(&self, stream: Arc<Stream>) {
        self.streams
            .write()
            .insert(stream.name().to_owned(), stream);
        self.shard_maps.notify_waiters();
    }

    /// Completes the deletion of `stream`: its catalog entry, then its logs.
    /// Caller holds the catalog lock. A crash in between leaves orphan logs
    /// no incarnation names, never a catalog entry without logs.
    pub(crate) async fn purge(&self, stream: &Arc<Stream>) -> Result<(), KinesisError> {
        self.commit(vec![MetaOp::Delete {
            key: stream.record.key(),
        }])
        .await?;
        {
            let mut streams = self.streams.write();
            if streams
                .get(stream.name())
                .is_some_and(|s| s.record.incarnation == stream.record.incarnation)
            {
                streams.remove(stream.name());
            }
        }
        let store = self.store.clone();
        let logs: Vec<String> = stream
            .shards
            .iter()
            .map(|s| s.log.name().to_owned())
            .collect();
        tokio::task::spawn_blocking(move || {
            logs.iter().try_for_each(|name| store.delete_log(name))
        })
        .await
        .map_err(errors::task)??;
        debug!(stream = stream.name(), "stream deleted");
        Ok(())
    }

    /// Persists due transitions: CREATING/UPDATING → ACTIVE, DELETING → gone,
    /// and applies a reshard whose UPDATING delay is over (also one whose
    /// application failed before: it is retried).
    async fn apply_due_transitions(&self) -> Result<(), KinesisError> {
        let now = now_ms();
        let due: Vec<Arc<Stream>> = self
            .all()
            .into_iter()
            .filter(|s| {
                let changing = s.record.status != Status::Active || s.record.pending.is_some();
                changing && s.record.status_until_ms <= now
            })
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let _catalog = self.catalog_lock.lock().await;
        for stream in due {
            // Re-check under the lock: a request may have changed it.
            let current = self.get(stream.name());
            if current.as_ref().is_none_or(|c| !Arc::ptr_eq(c, &stream)) {
                continue;
            }
            if stream.record.status == Status::Deleting {
                self.purge(&stream).await?;
                continue;
            }
            if stream.record.pending.is_some() {
                self.finish_reshard(&stream).await?;
                continue;
            }
            let record = StreamRecord {
                status: Status::Active,
                ..stream.record.clone()
            };
            self.commit(vec![MetaOp::Put {
                key: record.key(),
                value: record.encode(),
            }])
            .await?;
            self.insert(stream.with_record(record));
        }
        Ok(())
    }

    /// Deletes whole segments older than each stream's retention period,
    /// as of `now`. Closed shards whose records are all past retention
    /// lose all their segments this way; they are no longer listed (see
    /// `Stream::is_expired`). Deleting files is blocking I/O: it runs on
    /// the blocking pool.
    pub(crate) async fn trim_retention(&self, now: i64) {
        let mut work = Vec::new();
        for stream in self.all() {
            let cutoff = stream.trim_horizon_ms(now);
            work.extend(
                stream
                    .shards
                    .iter()
                    .map(|shard| (shard.log.clone(), cutoff)),
            );
        }
        let trimmed = tokio::task::spawn_blocking(move || {
            for (log, cutoff) in work {
                if let Err(err) = log.trim_before(cutoff) {
                    warn!(log = log.name(), error = %err, "retention trimming failed");
                }
            }
        });
        if let Err(err) = trimmed.await {
            warn!(error = %err, "retention trimming task failed");
        }
    }

    pub(crate) async fn catalog_guard(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.catalog_lock.lock().await
    }
}

pub async fn run_background(kinesis: &Kinesis, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut transitions = tokio::time::interval(TRANSITION_TICK);
    let mut trims = tokio::time::interval(TRIM_TICK);
    transitions.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    trims.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // On-demand scaling measures each interval's traffic; the first tick
    // (at once) only starts the window. A zero interval turns it off.
    let scale_every = kinesis.config().on_demand_scale_interval;
    let mut scaling = tokio::time::interval(scale_every.max(Duration::from_millis(1)));
    scaling.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let scale_window_ms = i64::try_from(scale_every.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = transitions.tick() => {
                if let Err(err) = kinesis.apply_due_transitions().await {
                    warn!(error = %err, "stream status transition failed; will retry");
                }
            }
            _ = trims.tick() => kinesis.trim_retention(now_ms()).await,
            _ = scaling.tick(), if !scale_every.is_zero() => {
                kinesis.scale_on_demand(scale_window_ms).await;
            }
        }
    }
}
