//! A delivery stream in memory: its definition (swapped whole on every
//! catalog change), its log, its delivery task and its throughput limits.

use parking_lot::{Mutex, RwLock};
use riffle_log::{DataKey, ShardLog};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::catalog::StreamRecord;
use crate::metrics::StreamMetrics;
use crate::throttle::Throttle;

pub struct DeliveryStream {
    record: RwLock<StreamRecord>,
    pub log: ShardLog,
    /// The data key records are sealed under while encryption is on.
    key: RwLock<Option<DataKey>>,
    /// Wakes the delivery task when the definition changes (new buffering
    /// hints apply to the buffer being filled).
    pub changed: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
    pub throttle: Throttle,
    pub metrics: StreamMetrics,
}

impl DeliveryStream {
    pub fn new(record: StreamRecord, log: ShardLog, key: Option<DataKey>) -> DeliveryStream {
        DeliveryStream {
            record: RwLock::new(record),
            log,
            key: RwLock::new(key),
            changed: Notify::new(),
            task: Mutex::new(None),
            throttle: Throttle::default(),
            metrics: StreamMetrics::default(),
        }
    }

    /// A snapshot of the definition.
    pub fn record(&self) -> StreamRecord {
        self.record.read().clone()
    }

    /// Installs a definition already committed to the catalog.
    pub fn set_record(&self, record: StreamRecord) {
        *self.record.write() = record;
        self.changed.notify_one();
    }

    pub fn data_key(&self) -> Option<DataKey> {
        self.key.read().clone()
    }

    pub fn set_data_key(&self, key: Option<DataKey>) {
        *self.key.write() = key;
    }

    pub fn set_task(&self, task: JoinHandle<()>) {
        if let Some(old) = self.task.lock().replace(task) {
            old.abort();
        }
    }

    /// Ends the delivery task. Aborting at any await is safe: the
    /// delivered position is recorded only after an object is stored, so
    /// the worst case is that object again after the next start.
    pub async fn stop_delivery(&self) {
        let task = self.task.lock().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}
