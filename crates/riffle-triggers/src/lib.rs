//! `riffle-triggers`: Lambda event source mappings on Kinesis streams, the
//! seeds' "triggers that call functions with batches".
//!
//! This crate serves the Lambda API's mapping operations
//! (`CreateEventSourceMapping`, `GetEventSourceMapping`,
//! `ListEventSourceMappings`, `UpdateEventSourceMapping`,
//! `DeleteEventSourceMapping`; restJson1 under
//! `/2015-03-31/event-source-mappings`, whose routes the edge declares),
//! with Lambda's checks and defaults for Kinesis sources. Mappings name
//! functions of the registry (`riffle-lambda`) and are kept durably in the
//! metadata store.
//!
//! **Architecture Invariant:** a mapping is answered only once it is
//! durable: every change is one metadata commit before the answer.
//!
//! **Architecture Invariant:** one poller per mapping at a time: a change
//! starts the mapping's new poller only once the old one has stopped, so
//! two never invoke for the same shard.
//!
//! Module map:
//! - `api`: the operations' inputs, checks and defaults.
//! - `mapping`: a mapping as stored and as described.
//! - `poller`: what an enabled mapping does: read, batch, invoke, retry.
//! - `event`: Lambda's Kinesis event, partial-batch answers, failure records.
//! - `filter`: `FilterCriteria` patterns.
//! - `window`: tumbling windows' event members and stored state.
//! - `checkpoint`: each shard's committed position.
//! - `errors`: [`TriggersError`].

mod api;
mod checkpoint;
mod errors;
mod event;
mod filter;
mod mapping;
mod poller;
mod window;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use riffle_kinesis::Kinesis;
use riffle_lambda::Functions;
use riffle_log::{LogStore, MetaOp};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use crate::api::{
    BATCH_SIZE_DEFAULT, BATCH_SIZE_MAX, LIST_ITEMS_DEFAULT, LIST_ITEMS_MAX, PARALLELIZATION_MAX,
};
use crate::api::{ListInput, MappingInput, UuidInput, list_answer};
pub use crate::errors::TriggersError;
use crate::mapping::{KEY_PREFIX, Mapping};
use crate::poller::{PollerTask, Shared, Status};

/// The operations served, sorted: the Lambda model's mapping operations.
pub const OPERATIONS: &[&str] = &[
    "CreateEventSourceMapping",
    "DeleteEventSourceMapping",
    "GetEventSourceMapping",
    "ListEventSourceMappings",
    "UpdateEventSourceMapping",
];

/// Where mappings live, for their ARNs.
#[derive(Debug, Clone)]
pub struct TriggersConfig {
    pub region: String,
    pub account_id: String,
}

/// The mappings, in memory as committed.
pub struct Triggers {
    shared: Arc<Shared>,
    config: TriggersConfig,
    mappings: RwLock<BTreeMap<String, Mapping>>,
    /// The running poller of each mapping (a disabled one's ends at once).
    pollers: Mutex<BTreeMap<String, PollerTask>>,
    /// Each mapping's `LastProcessingResult`, as its poller sets it.
    statuses: Mutex<BTreeMap<String, Status>>,
    /// Where pollers run; set by [`Triggers::start`].
    runtime: OnceLock<tokio::runtime::Handle>,
}

impl Triggers {
    /// Loads the stored mappings.
    pub fn open(
        store: Arc<LogStore>,
        kinesis: Arc<Kinesis>,
        functions: Functions,
        config: TriggersConfig,
    ) -> Result<Triggers, TriggersError> {
        let mut mappings = BTreeMap::new();
        for (key, value) in store.meta().scan_prefix(KEY_PREFIX)? {
            match serde_json::from_slice::<Mapping>(&value) {
                Ok(mapping) => {
                    mappings.insert(mapping.uuid.clone(), mapping);
                }
                Err(err) => {
                    tracing::error!(%key, %err, "an unreadable event source mapping is skipped")
                }
            }
        }
        let shared = Shared {
            store,
            kinesis,
            functions,
            s3: OnceLock::new(),
            region: config.region.clone(),
            account_id: config.account_id.clone(),
        };
        Ok(Triggers {
            shared: Arc::new(shared),
            config,
            mappings: RwLock::new(mappings),
            pollers: Mutex::new(BTreeMap::new()),
            statuses: Mutex::new(BTreeMap::new()),
            runtime: OnceLock::new(),
        })
    }

    /// Starts the pollers of the stored mappings, on the current tokio
    /// runtime; later changes start and stop theirs. `s3` is the embedded
    /// S3 that bucket destinations name.
    pub fn start(&self, s3: Option<Arc<riffle_s3::S3>>) {
        if let Some(s3) = s3 {
            let _ = self.shared.s3.set(s3);
        }
        let _ = self.runtime.set(tokio::runtime::Handle::current());
        let mappings = self.mappings.read();
        for mapping in mappings.values() {
            self.restart(mapping);
        }
    }

    /// Stops every poller; what was in flight is read again at the next
    /// start.
    pub async fn shutdown(&self) {
        let pollers = std::mem::take(&mut *self.pollers.lock());
        for poller in pollers.into_values() {
            poller.stop().await;
        }
    }

    /// Starts `mapping`'s poller (after its previous one has stopped).
    fn restart(&self, mapping: &Mapping) {
        let Some(runtime) = self.runtime.get() else {
            return; // `start` starts every mapping's
        };
        let status = Arc::clone(
            self.statuses
                .lock()
                .entry(mapping.uuid.clone())
                .or_insert_with(|| Arc::new(Mutex::new(poller::NO_RECORDS.to_owned()))),
        );
        let mut pollers = self.pollers.lock();
        let previous = pollers.remove(&mapping.uuid);
        let _entered = runtime.enter();
        let task = poller::spawn(Arc::clone(&self.shared), mapping.clone(), status, previous);
        pollers.insert(mapping.uuid.clone(), task);
    }

    /// Stops a deleted mapping's poller, then deletes its positions.
    fn forget(&self, uuid: &str) {
        let previous = self.pollers.lock().remove(uuid);
        self.statuses.lock().remove(uuid);
        let store = Arc::clone(&self.shared.store);
        let uuid = uuid.to_owned();
        let Some(runtime) = self.runtime.get() else {
            if let Err(err) = checkpoint::delete_all(&store, &uuid) {
                tracing::warn!(%uuid, %err, "a deleted mapping's positions stay");
            }
            return;
        };
        runtime.spawn(async move {
            if let Some(previous) = previous {
                previous.stop().await;
            }
            let deleted =
                tokio::task::spawn_blocking(move || checkpoint::delete_all(&store, &uuid)).await;
            if let Ok(Err(err)) = deleted {
                tracing::warn!(%err, "a deleted mapping's positions stay");
            }
        });
    }

    /// Runs one operation on its JSON input (the edge has merged the
    /// path's and query's members into it).
    pub fn handle(&self, action: &str, body: &[u8]) -> Result<Bytes, TriggersError> {
        let answer = match action {
            "CreateEventSourceMapping" => self.create(parse(body)?)?,
            "GetEventSourceMapping" => self.get(parse(body)?)?,
            "ListEventSourceMappings" => self.list(parse(body)?)?,
            "UpdateEventSourceMapping" => self.update(parse(body)?)?,
            "DeleteEventSourceMapping" => self.delete(parse(body)?)?,
            other => {
                return Err(TriggersError::InvalidParameterValue(format!(
                    "Riffle does not serve the Lambda operation {other}."
                )));
            }
        };
        Ok(Bytes::from(answer.to_string()))
    }

    fn create(&self, input: MappingInput) -> Result<Value, TriggersError> {
        input.check(true)?;
        let source = input.EventSourceArn.clone().unwrap_or_default();
        self.check_source(&source)?;
        let function = self.function(input.FunctionName.as_deref().unwrap_or_default())?;
        let uuid = uuid::Uuid::new_v4().to_string();
        let mapping = input.into_mapping(uuid, function.arn.clone(), now_s());
        let mut mappings = self.mappings.write();
        let same = mappings.values().find(|m| {
            m.event_source_arn == source
                && unqualified(&m.function_arn) == unqualified(&function.arn)
        });
        if let Some(existing) = same {
            return Err(TriggersError::ResourceConflict(format!(
                "An event source mapping with Kinesis arn (\" {source} \") and function (\" {} \") already exists. Please update or delete the existing mapping with UUID {}",
                function.name, existing.uuid
            )));
        }
        self.commit(&[put(&mapping)])?;
        let described = self.describe(&mapping, "Creating");
        self.restart(&mapping);
        mappings.insert(mapping.uuid.clone(), mapping);
        Ok(described)
    }

    fn get(&self, input: UuidInput) -> Result<Value, TriggersError> {
        let mappings = self.mappings.read();
        let mapping = found(&mappings, input.UUID.as_deref())?;
        Ok(self.describe(mapping, mapping.state.as_str()))
    }

    fn list(&self, input: ListInput) -> Result<Value, TriggersError> {
        let size = input.page_size()?;
        let function = match input.FunctionName.as_deref() {
            Some(name) => Some(self.function(name)?),
            None => None,
        };
        let mappings = self.mappings.read();
        let matching = mappings.values().filter(|m| {
            input
                .EventSourceArn
                .as_ref()
                .is_none_or(|arn| *arn == m.event_source_arn)
                && function
                    .as_ref()
                    .is_none_or(|f| unqualified(&f.arn) == unqualified(&m.function_arn))
        });
        // The marker is the last UUID of the previous page: mappings are
        // listed in UUID order, so a page never repeats or skips one that
        // stayed.
        let after = input.Marker.as_deref().unwrap_or("");
        let mut page: Vec<&Mapping> = matching
            .filter(|m| m.uuid.as_str() > after)
            .take(size + 1)
            .collect();
        let next = (page.len() > size).then(|| {
            page.truncate(size);
            page.last().map(|m| m.uuid.clone()).unwrap_or_default()
        });
        let described = page
            .into_iter()
            .map(|m| self.describe(m, m.state.as_str()))
            .collect();
        Ok(list_answer(described, next))
    }

    fn update(&self, input: MappingInput) -> Result<Value, TriggersError> {
        input.check(false)?;
        let function = match input.FunctionName.as_deref() {
            Some(name) => Some(self.function(name)?.arn),
            None => None,
        };
        let mut mappings = self.mappings.write();
        let current = found(&mappings, input.UUID.as_deref())?.clone();
        let updated = input.update(current, function, now_s());
        self.commit(&[put(&updated)])?;
        let described = self.describe(&updated, "Updating");
        self.restart(&updated);
        mappings.insert(updated.uuid.clone(), updated);
        Ok(described)
    }

    fn delete(&self, input: UuidInput) -> Result<Value, TriggersError> {
        let mut mappings = self.mappings.write();
        let mapping = found(&mappings, input.UUID.as_deref())?.clone();
        self.commit(&[MetaOp::Delete { key: mapping.key() }])?;
        mappings.remove(&mapping.uuid);
        let described = self.describe(&mapping, "Deleting");
        self.forget(&mapping.uuid);
        Ok(described)
    }

    /// The source must be a Kinesis stream that exists (or a consumer of
    /// one): Lambda refuses a mapping it could not read from.
    fn check_source(&self, arn: &str) -> Result<(), TriggersError> {
        let stream = poller::stream_of(arn);
        if !arn.starts_with("arn:aws:kinesis:") || !stream.contains(":stream/") {
            return Err(TriggersError::InvalidParameterValue(
                "Unrecognized event source. Riffle maps Kinesis streams and stream consumers."
                    .to_owned(),
            ));
        }
        self.shared
            .kinesis
            .stream_shards(stream)
            .map(|_| ())
            .map_err(|_| {
                TriggersError::InvalidParameterValue(format!(
                    "Cannot access stream {stream}. Please ensure the stream exists and is ACTIVE."
                ))
            })
    }

    fn function(&self, name: &str) -> Result<riffle_lambda::FunctionRef, TriggersError> {
        self.shared.functions.resolve(name).map_err(|_| {
            let arn = riffle_lambda::arn::function_arn(
                &self.config.region,
                &self.config.account_id,
                name.rsplit(':').next().unwrap_or(name),
                None,
            );
            TriggersError::ResourceNotFound(format!("Function not found: {arn}"))
        })
    }

    fn describe(&self, mapping: &Mapping, state: &str) -> Value {
        let result = self
            .statuses
            .lock()
            .get(&mapping.uuid)
            .map_or_else(|| poller::NO_RECORDS.to_owned(), |s| s.lock().clone());
        mapping.describe(state, &result, &self.config.region, &self.config.account_id)
    }

    /// Commits durably. Called under the mappings' write lock, so that two
    /// creations cannot both pass the conflict check: one small metadata
    /// commit, as the Kinesis catalog does for its changes.
    fn commit(&self, ops: &[MetaOp]) -> Result<(), TriggersError> {
        Ok(self.shared.store.meta().commit(ops)?)
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, TriggersError> {
    serde_json::from_slice(body).map_err(|err| {
        TriggersError::InvalidParameterValue(format!("The request could not be read: {err}"))
    })
}

fn put(mapping: &Mapping) -> MetaOp {
    MetaOp::Put {
        key: mapping.key(),
        // A struct of strings, numbers and JSON values always serializes.
        value: serde_json::to_vec(mapping).expect("a mapping serializes"),
    }
}

fn found<'m>(
    mappings: &'m BTreeMap<String, Mapping>,
    uuid: Option<&str>,
) -> Result<&'m Mapping, TriggersError> {
    uuid.and_then(|uuid| mappings.get(uuid)).ok_or_else(|| {
        TriggersError::ResourceNotFound("The resource you requested does not exist.".to_owned())
    })
}

/// A function ARN without its qualifier.
fn unqualified(arn: &str) -> &str {
    match arn.match_indices(':').nth(6) {
        Some((at, _)) => &arn[..at],
        None => arn,
    }
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| (d.as_millis() as f64) / 1000.0)
}
