//! Tables and items in the metadata store, and the group committer that
//! makes writes durable.
//!
//! # Format
//!
//! Key `dynamodb/table/<TableName>`: the [`TableDef`] as UTF-8 JSON
//! (`{"v":1,"name":…,"id":<TableId>,"incarnation":<u64>,"created_ms":…,
//! "attributes":{"leaseKey":"S"},"hash":"leaseKey","range":null,
//! "billing":"PAY_PER_REQUEST","rcu":0,"wcu":0,"gsis":[…],"lsis":[…],
//! "deletion_protection":false,"ttl_attribute":null,"tags":{}}`); a
//! version other than [`TABLE_VERSION`] is refused.
//!
//! Key `dynamodb/item/<incarnation as 16 hex digits>/<key>`: one item, its
//! value the item in the wire's JSON (`{"leaseKey":{"S":"shard-0"},…}`).
//! `<key>` is [`ItemKey::encode`]: per key attribute a type letter (`s`,
//! `n`, `b`) and the value's bytes in hex (a number's normalised text),
//! hash then `.` then range. The incarnation keeps a recreated table from
//! ever seeing a deleted one's items; DeleteTable removes the table and
//! its items in one commit. redb checksums and commits atomically, so the
//! format carries no checksum of its own.
//!
//! # Durability
//!
//! A write is checked and applied to the table's in-memory map under the
//! table's lock (so conditional writes to an item are atomic), its store
//! changes queued in the same critical section (so they reach the store
//! in the order they were applied), and the lock released; the caller
//! then waits for the committer, one thread that commits everything queued
//! since its last commit in one redb transaction (one fsync for many
//! writers), and only then answers. No lock is held across the store's I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use riffle_log::{LogStore, MetaOp};
use tokio::sync::{mpsc, oneshot};

use crate::errors::DynamoError;
use crate::table::{ItemKey, TABLE_VERSION, TableDef};
use crate::value::{Item, item_from_json, item_size, item_to_json};

pub const TABLE_PREFIX: &str = "dynamodb/table/";
pub const ITEM_PREFIX: &str = "dynamodb/item/";

/// Jobs one commit takes at most, so one transaction stays short.
const GROUP_JOBS_MAX: usize = 1024;

pub fn table_key(name: &str) -> String {
    format!("{TABLE_PREFIX}{name}")
}

fn items_prefix(incarnation: u64) -> String {
    format!("{ITEM_PREFIX}{incarnation:016x}/")
}

pub fn item_key(incarnation: u64, key: &ItemKey) -> String {
    format!("{}{}", items_prefix(incarnation), key.encode())
}

pub fn put_table(def: &TableDef) -> MetaOp {
    MetaOp::Put {
        key: table_key(&def.name),
        // A struct of strings, numbers and JSON values always serializes.
        value: serde_json::to_vec(def).expect("a TableDef serializes"),
    }
}

pub fn put_item(incarnation: u64, key: &ItemKey, item: &Item) -> MetaOp {
    MetaOp::Put {
        key: item_key(incarnation, key),
        // JSON values always serialize.
        value: serde_json::to_vec(&item_to_json(item)).expect("JSON serializes"),
    }
}

pub fn delete_item(incarnation: u64, key: &ItemKey) -> MetaOp {
    MetaOp::Delete {
        key: item_key(incarnation, key),
    }
}

/// One table in memory: its definition and its items in key order.
pub struct TableState {
    pub def: TableDef,
    pub items: BTreeMap<ItemKey, Item>,
    /// The sum of the items' sizes (TableSizeBytes).
    pub bytes: usize,
    /// Set by DeleteTable, for callers that looked the table up before.
    pub deleted: bool,
}

impl TableState {
    pub fn new(def: TableDef) -> TableState {
        TableState {
            def,
            items: BTreeMap::new(),
            bytes: 0,
            deleted: false,
        }
    }

    /// Replaces (or with `None` removes) an item, keeping `bytes`.
    pub fn set(&mut self, key: ItemKey, item: Option<Item>) {
        let old = match item {
            Some(item) => {
                self.bytes += item_size(&item);
                self.items.insert(key, item)
            }
            None => self.items.remove(&key),
        };
        if let Some(old) = old {
            self.bytes -= item_size(&old);
        }
    }
}

pub type Table = Mutex<TableState>;

/// Reads every table and its items.
pub fn load(store: &LogStore) -> Result<Vec<TableState>, DynamoError> {
    let meta = store.meta();
    let mut out = Vec::new();
    for (key, value) in meta.scan_prefix(TABLE_PREFIX)? {
        let def: TableDef = serde_json::from_slice(&value)
            .map_err(|e| DynamoError::Storage(format!("{key} is corrupt: {e}")))?;
        if def.v != TABLE_VERSION {
            return Err(DynamoError::Storage(format!(
                "{key}: unsupported version {}",
                def.v
            )));
        }
        let prefix = items_prefix(def.incarnation);
        let mut table = TableState::new(def);
        for (key, value) in meta.scan_prefix(&prefix)? {
            let corrupt = |why: String| DynamoError::Storage(format!("{key} is corrupt: {why}"));
            let item_key = ItemKey::decode(&key[prefix.len()..])
                .ok_or_else(|| corrupt("bad key".to_owned()))?;
            let json: serde_json::Value =
                serde_json::from_slice(&value).map_err(|e| corrupt(e.to_string()))?;
            let item = item_from_json(&json).map_err(|e| corrupt(e.message()))?;
            table.set(item_key, Some(item));
        }
        out.push(table);
    }
    Ok(out)
}

struct Job {
    ops: Vec<MetaOp>,
    done: oneshot::Sender<Result<(), String>>,
}

/// The group committer: one thread that commits what writers queued.
pub struct Committer {
    /// `None` once dropped, which ends the thread.
    jobs: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Dropping the committer waits for its thread, so the store it holds is
/// released (and what was queued is committed) when the service goes.
impl Drop for Committer {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            // A panicked committer has nothing left to release.
            let _ = thread.join();
        }
    }
}

/// What a writer waits on: its changes are durable when it resolves.
pub struct Pending(oneshot::Receiver<Result<(), String>>);

impl Pending {
    pub async fn durable(self) -> Result<(), DynamoError> {
        match self.0.await {
            Ok(result) => result.map_err(DynamoError::Storage),
            Err(_) => Err(DynamoError::Storage("the committer stopped".to_owned())),
        }
    }
}

impl Committer {
    pub fn start(store: Arc<LogStore>) -> std::io::Result<Committer> {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("dynamodb-commit".to_owned())
            .spawn(move || {
                // Ends when every sender (the service) is gone.
                while let Some(first) = queue.blocking_recv() {
                    let mut group = vec![first];
                    while group.len() < GROUP_JOBS_MAX {
                        match queue.try_recv() {
                            Ok(job) => group.push(job),
                            Err(_) => break,
                        }
                    }
                    let ops: Vec<MetaOp> = group.iter_mut().flat_map(|j| j.ops.drain(..)).collect();
                    let result = store.meta().commit(&ops).map_err(|e| {
                        tracing::error!(error = %e, "DynamoDB commit failed");
                        e.to_string()
                    });
                    for job in group {
                        // A writer that went away needs no answer.
                        let _ = job.done.send(result.clone());
                    }
                }
            })?;
        Ok(Committer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Queues `ops`; call it in the critical section that applied them.
    pub fn submit(&self, ops: Vec<MetaOp>) -> Pending {
        let (done, wait) = oneshot::channel();
        let job = Job { ops, done };
        let refused = match &self.jobs {
            Some(jobs) => jobs.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        if let Some(job) = refused {
            let _ = job.done.send(Err("the committer stopped".to_owned()));
        }
        Pending(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::KeyPart;
    use serde_json::json;

    fn def(name: &str, incarnation: u64) -> TableDef {
        TableDef {
            v: TABLE_VERSION,
            name: name.to_owned(),
            id: "00000000-0000-0000-0000-000000000000".to_owned(),
            incarnation,
            created_ms: 1,
            attributes: BTreeMap::from([("k".to_owned(), "S".to_owned())]),
            hash: "k".to_owned(),
            range: None,
            billing: "PAY_PER_REQUEST".to_owned(),
            rcu: 0,
            wcu: 0,
            gsis: Vec::new(),
            lsis: Vec::new(),
            deletion_protection: false,
            ttl_attribute: None,
            tags: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn tables_and_items_round_trip_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let item = item_from_json(&json!({
            "k": {"S": "lease-1"}, "n": {"N": "12.50"}, "b": {"B": "AAE="},
            "l": {"L": [{"NULL": true}, {"BOOL": false}]}, "ss": {"SS": ["x", "y"]}
        }))
        .unwrap();
        let key = ItemKey(KeyPart::S("lease-1".to_owned()), None);
        {
            let store = Arc::new(LogStore::open(dir.path(), Default::default()).unwrap());
            let committer = Committer::start(Arc::clone(&store)).unwrap();
            let ops = vec![put_table(&def("leases", 7)), put_item(7, &key, &item)];
            committer.submit(ops).durable().await.unwrap();
        }
        let store = LogStore::open(dir.path(), Default::default()).unwrap();
        let tables = load(&store).unwrap();
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].def, def("leases", 7));
        assert_eq!(tables[0].items.get(&key), Some(&item));
        assert_eq!(tables[0].bytes, item_size(&item));
    }
}
