//! KCL 3.x's coordination items, so a Rust worker can join a Java KCL 3.x
//! application: it reads the leader lock and the migration state, and
//! publishes its own worker-metrics row so the leader assigns it leases.
//!
//! A KCL 3.x application keeps two tables beside its lease table:
//!
//! `<app>-CoordinatorState` (hash key `key`, S), two items:
//!
//! | `key` | attribute | type | meaning |
//! | --- | --- | --- | --- |
//! | `Leader` | `ownerName` | S | the worker holding the leader lock (the DynamoDB lock client's item) |
//! | | `recordVersionNumber` | S | a fresh UUID at every heartbeat of the lock (30 s in KCL 3.1.3) |
//! | | `leaseDuration` | S | milliseconds without a heartbeat after which the lock is free (2 min) |
//! | | `isReleased` | S | `"1"` once the owner released the lock |
//! | `Migration3.0` | `cv` | S | the client version: `CLIENT_VERSION_3X`, `CLIENT_VERSION_3X_WITH_ROLLBACK`, `CLIENT_VERSION_UPGRADE_FROM_2X` or `CLIENT_VERSION_2X` |
//! | | `mb`, `mts`, `h` | S, N, L | who changed it, when (epoch ms), its history (not read here) |
//!
//! `<app>-WorkerMetricStats` (hash key `wid`, S), one item per worker
//! (Java's `WorkerMetricStats`):
//!
//! | attribute | type | meaning |
//! | --- | --- | --- |
//! | `wid` | S | the worker id, as in the lease table's `leaseOwner` |
//! | `lut` | N | last update, epoch seconds: the leader counts a worker alive while `lut` is within two reporting periods |
//! | `sts` | M of L of N | recent values per metric (`C` CPU, `M` memory, `NI`/`NO` network); empty: the default metric, throughput |
//! | `opr` | M of L of N | per metric, its operating range (first value: the ceiling) |
//!
//! A Rust worker reports the default metric (empty `sts` and `opr`): the
//! leader then balances it by the throughput of its leases, as it does a
//! Java worker that reports no host metric.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::KclError;
use crate::lease::{Item, s};
use crate::table::ddb;

/// The CoordinatorState table's hash key (KCL's `CoordinatorState`).
pub(crate) const COORDINATOR_KEY: &str = "key";
/// The leader lock's item (`CoordinatorState.LEADER_HASH_KEY`).
pub(crate) const LEADER_ITEM: &str = "Leader";
/// The migration state's item (`MigrationState.MIGRATION_HASH_KEY`).
pub(crate) const MIGRATION_ITEM: &str = "Migration3.0";
pub(crate) const OWNER_NAME: &str = "ownerName";
pub(crate) const RECORD_VERSION: &str = "recordVersionNumber";
pub(crate) const LOCK_LEASE_DURATION: &str = "leaseDuration";
pub(crate) const IS_RELEASED: &str = "isReleased";
pub(crate) const CLIENT_VERSION: &str = "cv";
/// The WorkerMetricStats table's hash key and attributes.
pub(crate) const WORKER_ID: &str = "wid";
pub(crate) const LAST_UPDATE_TIME: &str = "lut";
pub(crate) const METRIC_STATS: &str = "sts";
pub(crate) const OPERATING_RANGE: &str = "opr";

/// The lock's lease when its item does not say (the DynamoDB lock client's
/// duration in KCL 3.1.3's `DynamoDBLockBasedLeaderDecider`).
pub const DEFAULT_LOCK_LEASE_DURATION: Duration = Duration::from_secs(120);
/// KCL's `workerMetricsReporterFreqInMillis` default.
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(30);

/// The DynamoDB lock client's leader lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderLock {
    pub owner: String,
    pub record_version: String,
    pub lease_duration: Duration,
    pub released: bool,
}

impl LeaderLock {
    pub(crate) fn from_item(item: &Item) -> Option<LeaderLock> {
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        };
        Some(LeaderLock {
            owner: text(OWNER_NAME)?,
            record_version: text(RECORD_VERSION)?,
            lease_duration: text(LOCK_LEASE_DURATION)
                .and_then(|ms| ms.parse().ok())
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_LOCK_LEASE_DURATION),
            released: text(IS_RELEASED).as_deref() == Some("1"),
        })
    }

    #[cfg(test)]
    pub(crate) fn to_item(&self) -> Item {
        let mut item = Item::from([
            (COORDINATOR_KEY.into(), s(LEADER_ITEM)),
            (OWNER_NAME.into(), s(&self.owner)),
            (RECORD_VERSION.into(), s(&self.record_version)),
            (
                LOCK_LEASE_DURATION.into(),
                s(&self.lease_duration.as_millis().to_string()),
            ),
        ]);
        if self.released {
            item.insert(IS_RELEASED.into(), s("1"));
        }
        item
    }
}

/// How the application's leases are handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coordination {
    /// KCL 1.x/2.x (and 3.x in its 2.x-compatible modes): each worker takes
    /// free and expired leases and steals toward an even spread.
    Taking,
    /// KCL 3.x: this live leader assigns every lease; workers process what
    /// they are given.
    Assigned { leader: String },
}

/// Whether the migration state lets a KCL 3.x leader assign leases: KCL
/// 3.x runs its lease assignment in the two 3.x client versions only; in
/// the 2.x-compatible ones its workers take leases as 2.x did.
pub fn assigns_leases(client_version: Option<&str>) -> bool {
    matches!(
        client_version,
        None | Some("CLIENT_VERSION_3X") | Some("CLIENT_VERSION_3X_WITH_ROLLBACK")
    )
}

/// The client version of a `Migration3.0` item.
pub(crate) fn client_version(item: &Item) -> Option<String> {
    match item.get(CLIENT_VERSION) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// Judges the leader lock alive as the lock client does: by watching its
/// record version change, on this worker's clock, never by comparing clocks
/// across hosts. A lock first seen counts as alive for its lease duration.
#[derive(Debug, Default)]
pub struct LeaderWatch {
    seen: Option<(String, Instant)>,
}

impl LeaderWatch {
    /// The live leader, if any, given the lock item read at `now`.
    pub fn observe(&mut self, lock: Option<&LeaderLock>, now: Instant) -> Option<String> {
        let Some(lock) = lock.filter(|l| !l.released) else {
            self.seen = None;
            return None;
        };
        let since = match &self.seen {
            Some((version, since)) if *version == lock.record_version => *since,
            _ => now,
        };
        self.seen = Some((lock.record_version.clone(), since));
        (now.duration_since(since) <= lock.lease_duration).then(|| lock.owner.clone())
    }
}

/// This worker's WorkerMetricStats row.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerMetricStats {
    pub worker_id: String,
    /// Epoch seconds.
    pub last_update_time: u64,
    pub metric_stats: HashMap<String, Vec<f64>>,
    pub operating_range: HashMap<String, Vec<i64>>,
}

impl WorkerMetricStats {
    /// The default-metric row of `worker_id`, stamped `at`.
    pub fn default_metric(worker_id: &str, at: SystemTime) -> WorkerMetricStats {
        WorkerMetricStats {
            worker_id: worker_id.to_owned(),
            last_update_time: at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            metric_stats: HashMap::new(),
            operating_range: HashMap::new(),
        }
    }

    pub(crate) fn to_item(&self) -> Item {
        let stats = self
            .metric_stats
            .iter()
            .map(|(name, values)| {
                let list = values.iter().map(|v| AttributeValue::N(v.to_string()));
                (name.clone(), AttributeValue::L(list.collect()))
            })
            .collect();
        let ranges = self
            .operating_range
            .iter()
            .map(|(name, values)| {
                let list = values.iter().map(|v| AttributeValue::N(v.to_string()));
                (name.clone(), AttributeValue::L(list.collect()))
            })
            .collect();
        Item::from([
            (WORKER_ID.into(), s(&self.worker_id)),
            (
                LAST_UPDATE_TIME.into(),
                AttributeValue::N(self.last_update_time.to_string()),
            ),
            (METRIC_STATS.into(), AttributeValue::M(stats)),
            (OPERATING_RANGE.into(), AttributeValue::M(ranges)),
        ])
    }

    pub(crate) fn from_item(item: &Item) -> Result<WorkerMetricStats, KclError> {
        let bad = |what: &str| KclError::BadLease(format!("WorkerMetricStats: {what}"));
        let Some(AttributeValue::S(worker_id)) = item.get(WORKER_ID) else {
            return Err(bad("no wid"));
        };
        let last_update_time = match item.get(LAST_UPDATE_TIME) {
            Some(AttributeValue::N(v)) => v.parse().map_err(|_| bad("lut is not an integer"))?,
            _ => return Err(bad("no lut")),
        };
        Ok(WorkerMetricStats {
            worker_id: worker_id.clone(),
            last_update_time,
            metric_stats: number_lists(item.get(METRIC_STATS)),
            operating_range: number_lists(item.get(OPERATING_RANGE)),
        })
    }
}

fn number_lists<T: std::str::FromStr>(value: Option<&AttributeValue>) -> HashMap<String, Vec<T>> {
    let Some(AttributeValue::M(map)) = value else {
        return HashMap::new();
    };
    map.iter()
        .filter_map(|(name, list)| match list {
            AttributeValue::L(values) => Some((
                name.clone(),
                values
                    .iter()
                    .filter_map(|v| match v {
                        AttributeValue::N(n) => n.parse().ok(),
                        _ => None,
                    })
                    .collect(),
            )),
            _ => None,
        })
        .collect()
}

/// The application's CoordinatorState and WorkerMetricStats tables, which
/// Java KCL 3.x workers create; a Rust worker never creates them.
#[derive(Debug, Clone)]
pub struct CoordinatorTables {
    client: Client,
    state: String,
    metrics: String,
}

impl CoordinatorTables {
    pub fn new(client: Client, application: &str) -> CoordinatorTables {
        CoordinatorTables {
            client,
            state: format!("{application}-CoordinatorState"),
            metrics: format!("{application}-WorkerMetricStats"),
        }
    }

    /// The leader lock and the client version; both `None` when no KCL 3.x
    /// worker ever ran (no CoordinatorState table).
    pub async fn read(&self) -> Result<(Option<LeaderLock>, Option<String>), KclError> {
        let lock = self.get(LEADER_ITEM).await?;
        let migration = self.get(MIGRATION_ITEM).await?;
        Ok((
            lock.as_ref().and_then(LeaderLock::from_item),
            migration.as_ref().and_then(client_version),
        ))
    }

    async fn get(&self, key: &str) -> Result<Option<Item>, KclError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.state)
            .key(COORDINATOR_KEY, s(key))
            .consistent_read(true)
            .send()
            .await;
        match got {
            Ok(output) => Ok(output.item),
            Err(error) if error.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(error) => Err(ddb(error)),
        }
    }

    /// Writes this worker's row; false when the table does not exist (no
    /// KCL 3.x worker created it: nobody reads it).
    pub async fn publish(&self, stats: &WorkerMetricStats) -> Result<bool, KclError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.metrics)
            .set_item(Some(stats.to_item()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(error) if error.code() == Some("ResourceNotFoundException") => Ok(false),
            Err(error) => Err(ddb(error)),
        }
    }

    /// Removes this worker's row at shutdown, so the leader stops counting
    /// it at once instead of after two reporting periods.
    pub async fn withdraw(&self, worker_id: &str) -> Result<(), KclError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.metrics)
            .key(WORKER_ID, s(worker_id))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(error) if error.code() == Some("ResourceNotFoundException") => Ok(()),
            Err(error) => Err(ddb(error)),
        }
    }

    /// Every worker's row (for tests and tools).
    pub async fn worker_metrics(&self) -> Result<Vec<WorkerMetricStats>, KclError> {
        let page = self
            .client
            .scan()
            .table_name(&self.metrics)
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb)?;
        page.items()
            .iter()
            .map(WorkerMetricStats::from_item)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(version: &str) -> LeaderLock {
        LeaderLock {
            owner: "java-a".into(),
            record_version: version.into(),
            lease_duration: Duration::from_secs(120),
            released: false,
        }
    }

    /// Captured from a KCL 3.1.3 MultiLangDaemon against `riffle serve`:
    /// the lock item as the DynamoDB lock client 1.3.0 writes it.
    fn java_lock_item() -> Item {
        Item::from([
            ("key".into(), s("Leader")),
            ("ownerName".into(), s("java-a")),
            (
                "recordVersionNumber".into(),
                s("7745815a-8388-4525-b1eb-5794d3f7c599"),
            ),
            ("leaseDuration".into(), s("120000")),
        ])
    }

    /// Captured beside it: the migration state a new 3.x application
    /// writes.
    fn java_migration_item() -> Item {
        let entry = Item::from([
            ("cv".into(), s("CLIENT_VERSION_INIT")),
            ("mb".into(), s("java-a")),
            ("mts".into(), AttributeValue::N("1796546958736".into())),
        ]);
        Item::from([
            ("key".into(), s("Migration3.0")),
            ("cv".into(), s("CLIENT_VERSION_3X")),
            ("mb".into(), s("java-a")),
            ("mts".into(), AttributeValue::N("1796546958736".into())),
            (
                "h".into(),
                AttributeValue::L(vec![AttributeValue::M(entry)]),
            ),
        ])
    }

    /// Captured beside it: the Java worker's WorkerMetricStats row (no
    /// host metric: the default one, as the Rust worker writes it).
    fn java_metrics_item() -> Item {
        Item::from([
            ("wid".into(), s("java-a")),
            ("lut".into(), AttributeValue::N("1796546960".into())),
            ("sts".into(), AttributeValue::M(HashMap::new())),
            ("opr".into(), AttributeValue::M(HashMap::new())),
        ])
    }

    #[test]
    fn the_java_migration_state_gives_its_client_version() {
        let version = client_version(&java_migration_item());
        assert_eq!(version.as_deref(), Some("CLIENT_VERSION_3X"));
        assert!(assigns_leases(version.as_deref()));
    }

    #[test]
    fn the_java_worker_metrics_row_reads_and_writes_back_identically() {
        let row = WorkerMetricStats::from_item(&java_metrics_item()).expect("valid");
        assert_eq!(row.worker_id, "java-a");
        assert_eq!(row.last_update_time, 1_796_546_960);
        assert_eq!(row.to_item(), java_metrics_item());
        let at = UNIX_EPOCH + Duration::from_secs(1_796_546_960);
        assert_eq!(WorkerMetricStats::default_metric("java-a", at), row);
    }

    #[test]
    fn the_java_lock_item_reads_and_writes_back_identically() {
        let lock = LeaderLock::from_item(&java_lock_item()).expect("a lock");
        assert_eq!(lock.owner, "java-a");
        assert_eq!(lock.lease_duration, Duration::from_secs(120));
        assert!(!lock.released);
        assert_eq!(lock.to_item(), java_lock_item());
        let mut released = lock.clone();
        released.released = true;
        assert_eq!(
            LeaderLock::from_item(&released.to_item()),
            Some(released.clone())
        );
    }

    #[test]
    fn a_leader_is_live_until_its_lock_stands_still_for_the_lease_duration() {
        let mut watch = LeaderWatch::default();
        let start = Instant::now();
        assert_eq!(
            watch.observe(Some(&lock("v1")), start).as_deref(),
            Some("java-a")
        );
        let later = start + Duration::from_secs(100);
        assert!(watch.observe(Some(&lock("v1")), later).is_some());
        // A heartbeat restarts the clock.
        assert!(watch.observe(Some(&lock("v2")), later).is_some());
        assert!(
            watch
                .observe(Some(&lock("v2")), later + Duration::from_secs(119))
                .is_some()
        );
        assert!(
            watch
                .observe(Some(&lock("v2")), later + Duration::from_secs(121))
                .is_none()
        );
        let mut released = lock("v3");
        released.released = true;
        assert!(watch.observe(Some(&released), later).is_none());
        assert!(watch.observe(None, later).is_none());
    }

    #[test]
    fn only_the_3x_client_versions_assign_leases() {
        assert!(assigns_leases(Some("CLIENT_VERSION_3X")));
        assert!(assigns_leases(Some("CLIENT_VERSION_3X_WITH_ROLLBACK")));
        assert!(assigns_leases(None));
        assert!(!assigns_leases(Some("CLIENT_VERSION_UPGRADE_FROM_2X")));
        assert!(!assigns_leases(Some("CLIENT_VERSION_2X")));
    }

    #[test]
    fn worker_metric_stats_round_trip_in_the_java_layout() {
        let at = UNIX_EPOCH + Duration::from_secs(1_765_000_000);
        let plain = WorkerMetricStats::default_metric("rust-1", at);
        let item = plain.to_item();
        assert_eq!(item["wid"], s("rust-1"));
        assert_eq!(item["lut"], AttributeValue::N("1765000000".into()));
        assert_eq!(item["sts"], AttributeValue::M(HashMap::new()));
        assert_eq!(item["opr"], AttributeValue::M(HashMap::new()));
        assert_eq!(WorkerMetricStats::from_item(&item).expect("valid"), plain);

        let mut cpu = plain.clone();
        cpu.metric_stats.insert("C".into(), vec![12.5, 20.0]);
        cpu.operating_range.insert("C".into(), vec![100]);
        let item = cpu.to_item();
        assert_eq!(
            item["opr"],
            AttributeValue::M(HashMap::from([(
                "C".into(),
                AttributeValue::L(vec![AttributeValue::N("100".into())])
            )]))
        );
        assert_eq!(WorkerMetricStats::from_item(&item).expect("valid"), cpu);
    }
}
