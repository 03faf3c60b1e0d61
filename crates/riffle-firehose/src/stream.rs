//! A delivery stream in memory: its definition (swapped whole on every
//! catalog change), its log, its delivery task and its throughput limits.

use std::sync::atomic::{AtomicI64, Ordering};

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
    /// Wake the destination's and the backup's delivery tasks when the
    /// definition changes (new buffering hints apply to the buffer being
    /// filled; the backup may be enabled or disabled).
    pub changed: Notify,
    pub backup_changed: Notify,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Per delivery lane (destination, backup), the arrival time below
    /// which every record is delivered: `i64::MIN` while unknown,
    /// `i64::MAX` for a lane that holds nothing back (a disabled backup).
    /// The log is trimmed below the smaller.
    delivered_before_ms: [AtomicI64; 2],
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
            backup_changed: Notify::new(),
            tasks: Mutex::new(Vec::new()),
            delivered_before_ms: [AtomicI64::new(i64::MIN), AtomicI64::new(i64::MIN)],
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
        self.backup_changed.notify_one();
    }

    pub fn data_key(&self) -> Option<DataKey> {
        self.key.read().clone()
    }

    pub fn set_data_key(&self, key: Option<DataKey>) {
        *self.key.write() = key;
    }

    pub fn set_tasks(&self, tasks: Vec<JoinHandle<()>>) {
        for old in std::mem::replace(&mut *self.tasks.lock(), tasks) {
            old.abort();
        }
    }

    /// Records that lane `lane` delivered every record that arrived before
    /// `ms`, and returns the arrival time below which every lane has (the
    /// log may be trimmed there), if any.
    pub fn delivered_before(&self, lane: usize, ms: i64) -> Option<i64> {
        self.delivered_before_ms[lane].store(ms, Ordering::Relaxed);
        let all = self
            .delivered_before_ms
            .iter()
            .map(|m| m.load(Ordering::Relaxed))
            .min()
            .unwrap_or(i64::MIN);
        (all != i64::MIN && all != i64::MAX).then_some(all)
    }

    /// Ends the delivery task. Aborting at any await is safe: the
    /// delivered position is recorded only after an object is stored, so
    /// the worst case is that object again after the next start.
    pub async fn stop_delivery(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}
