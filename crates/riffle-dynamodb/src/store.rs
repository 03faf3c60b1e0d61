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
//!
//! A group is durable once the committer has appended it to the
//! [`crate::journal`] and synced that (one small write, one `fdatasync`);
//! the writers are answered then, and a second thread (`dynamodb-fold`)
//! applies the group to redb without a sync while the committer writes the
//! next one; redb is made durable only at a checkpoint, once that thread
//! has applied every group before it, and only then is the journal reset. So redb may lag what was
//! answered, never the journal: [`Committer::start`] replays the journal
//! into redb before [`load`] reads it. A group too large for the journal
//! is committed to redb durably (after a checkpoint).
//!
//! A read sees the in-memory map, which may be ahead of the store by the
//! writes still queued. So that no one reads what a crash could take back,
//! each job has a sequence number (given in queue order, so the committer
//! makes them durable in that order), each table remembers the last one
//! that changed each item ([`TableState::unsynced`]), and a read answers
//! only once the committer has made the writes it saw durable
//! ([`Committer::visible`]). A failed commit leaves memory ahead of the
//! store for good: from then on every write fails and every read of what
//! was not made durable fails, until a restart reloads the store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use riffle_log::{LogStore, MetaOp};
use tokio::sync::{mpsc, oneshot, watch};

use crate::errors::DynamoError;
use crate::journal::{Appended, JOURNAL_BYTES, Journal};
use crate::table::{ItemKey, TABLE_VERSION, TableDef};
use crate::value::{Item, item_from_json, item_size, item_to_json};

pub const TABLE_PREFIX: &str = "dynamodb/table/";
pub const ITEM_PREFIX: &str = "dynamodb/item/";

/// Jobs one commit takes at most, so one transaction stays short.
const GROUP_JOBS_MAX: usize = 1024;

/// How many items of a table may have a recorded write before the ones
/// already durable are forgotten; keeps [`TableState::unsynced`] small
/// without a pass per write.
const UNSYNCED_PRUNE_AT: usize = 1024;

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
    /// The committer's sequence number of the last write to each item, for
    /// the items written since the last prune; a read of an item waits for
    /// its number to be durable.
    unsynced: HashMap<ItemKey, u64>,
    /// The sequence number of the last write to any item: what a Query or
    /// Scan, which read many, wait for.
    last_write: u64,
}

impl TableState {
    pub fn new(def: TableDef) -> TableState {
        TableState {
            def,
            items: BTreeMap::new(),
            bytes: 0,
            deleted: false,
            unsynced: HashMap::new(),
            last_write: 0,
        }
    }

    /// Notes that the write the committer numbered `seq` changed `key`;
    /// `durable` is how far the committer has got, for pruning.
    pub fn note_write(&mut self, key: &ItemKey, seq: u64, durable: u64) {
        if self.unsynced.len() >= UNSYNCED_PRUNE_AT {
            self.unsynced.retain(|_, at| *at > durable);
        }
        self.unsynced.insert(key.clone(), seq);
        self.last_write = self.last_write.max(seq);
    }

    /// The write a read of `key` must see durable first (0: none).
    pub fn written_at(&self, key: &ItemKey) -> u64 {
        self.unsynced.get(key).copied().unwrap_or(0)
    }

    /// The write a read of many items must see durable first.
    pub fn last_write(&self) -> u64 {
        self.last_write
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
    seq: u64,
    ops: Vec<MetaOp>,
    done: oneshot::Sender<Result<(), String>>,
}

/// How far the committer has got.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Every job numbered up to this is durable.
    durable: u64,
    /// Why a commit failed; nothing after `durable` will be durable.
    failed: Option<String>,
}

/// The queue's end: jobs are numbered and sent under one lock, so their
/// numbers are in the order the committer sees them.
struct Queue {
    last_seq: u64,
    /// `None` once dropped, which ends the thread.
    jobs: Option<mpsc::UnboundedSender<Job>>,
}

/// The group committer: one thread that commits what writers queued.
pub struct Committer {
    queue: Mutex<Queue>,
    progress: watch::Receiver<Progress>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Dropping the committer waits for its thread, so the store it holds is
/// released (and what was queued is committed) when the service goes.
impl Drop for Committer {
    fn drop(&mut self) {
        self.queue.lock().jobs = None;
        if let Some(thread) = self.thread.take() {
            // A panicked committer has nothing left to release.
            let _ = thread.join();
        }
    }
}

/// What a writer waits on: its changes are durable when it resolves.
pub struct Pending {
    seq: u64,
    done: oneshot::Receiver<Result<(), String>>,
}

impl Pending {
    /// The job's sequence number, for [`TableState::note_write`].
    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub async fn durable(self) -> Result<(), DynamoError> {
        match self.done.await {
            Ok(result) => result.map_err(DynamoError::Storage),
            Err(_) => Err(DynamoError::Storage("the committer stopped".to_owned())),
        }
    }
}

impl Committer {
    /// Replays the journal into the store (call it before [`load`]) and
    /// starts the committer's thread.
    pub fn start(store: Arc<LogStore>) -> Result<Committer, DynamoError> {
        let (report, progress) = watch::channel(Progress::default());
        let report = Arc::new(report);
        let mut durable = Durable::open(store, JOURNAL_BYTES, Arc::clone(&report))?;
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
                    run_group(&mut durable, &report, group);
                }
            })
            .map_err(|e| DynamoError::Storage(format!("cannot start the committer: {e}")))?;
        Ok(Committer {
            queue: Mutex::new(Queue {
                last_seq: 0,
                jobs: Some(jobs),
            }),
            progress,
            thread: Some(thread),
        })
    }

    /// Queues `ops`; call it in the critical section that applied them.
    pub fn submit(&self, ops: Vec<MetaOp>) -> Pending {
        let (done, wait) = oneshot::channel();
        let mut queue = self.queue.lock();
        queue.last_seq += 1;
        let seq = queue.last_seq;
        let job = Job { seq, ops, done };
        let refused = match &queue.jobs {
            Some(jobs) => jobs.send(job).err().map(|e| e.0),
            None => Some(job),
        };
        drop(queue);
        if let Some(job) = refused {
            let _ = job.done.send(Err("the committer stopped".to_owned()));
        }
        Pending { seq, done: wait }
    }

    /// How far the committer has got: every job up to this is durable.
    pub fn durable_seq(&self) -> u64 {
        self.progress.borrow().durable
    }

    /// Waits until the job numbered `seq` (what a read saw) is durable;
    /// fails if it never will be.
    pub async fn visible(&self, seq: u64) -> Result<(), DynamoError> {
        visible_in(self.progress.clone(), seq).await
    }
}

/// [`Committer::visible`], on the committer's progress.
async fn visible_in(mut progress: watch::Receiver<Progress>, seq: u64) -> Result<(), DynamoError> {
    let reached = progress
        .wait_for(|p| p.durable >= seq || p.failed.is_some())
        .await
        .map_err(|_| DynamoError::Storage("the committer stopped".to_owned()))?;
    match &reached.failed {
        Some(why) if reached.durable < seq => Err(DynamoError::Storage(why.clone())),
        _ => Ok(()),
    }
}

/// Makes a group durable, answers its writers, then folds it into redb.
fn run_group(durable: &mut Durable, report: &watch::Sender<Progress>, mut group: Vec<Job>) {
    let ops: Vec<MetaOp> = group.iter_mut().flat_map(|j| j.ops.drain(..)).collect();
    let last = group.last().map_or(0, |j| j.seq);
    let result = commit_group(|ops| durable.write(ops), report, &ops, last);
    for job in group {
        // A writer that went away needs no answer.
        let _ = job
            .done
            .send(result.as_ref().map(|_| ()).map_err(Clone::clone));
    }
    if let Ok(Written::Journaled) = result {
        durable.fold(ops);
    }
}

/// Makes a group's changes durable and reports how far the committer got.
/// After a failure nothing more is committed: the in-memory tables hold
/// changes the store does not, and a later commit would make the store a
/// mix that never existed in memory.
fn commit_group<T, E: std::fmt::Display>(
    commit: impl FnOnce(&[MetaOp]) -> Result<T, E>,
    report: &watch::Sender<Progress>,
    ops: &[MetaOp],
    last: u64,
) -> Result<T, String> {
    if let Some(why) = &report.borrow().failed {
        return Err(why.clone());
    }
    match commit(ops) {
        Ok(written) => {
            report.send_modify(|p| p.durable = last);
            Ok(written)
        }
        Err(e) => Err(fail(report, e)),
    }
}

/// Records that the committer failed; returns why, for the writers.
fn fail(report: &watch::Sender<Progress>, e: impl std::fmt::Display) -> String {
    tracing::error!(error = %e, "DynamoDB commit failed; writes fail until a restart");
    let why = format!("{e}; the DynamoDB subset refuses writes until Riffle restarts");
    report.send_modify(|p| {
        p.failed.get_or_insert(why.clone());
    });
    why
}

/// Where a group went.
#[derive(Debug, PartialEq, Eq)]
enum Written {
    /// Durable in the journal; redb does not have it yet.
    Journaled,
    /// Durable in redb (a group too large for the journal).
    Committed,
}

/// The committer's durable side: the journal, and the store behind it.
struct Durable {
    store: Arc<LogStore>,
    journal: Journal,
    folder: Folder,
}

/// What the fold thread is asked to do, in the order asked.
enum FoldJob {
    /// Apply journaled changes to redb, durable at the next checkpoint.
    Ops(Vec<MetaOp>),
    /// Make redb durable, with every fold asked before this, and answer.
    Checkpoint(std::sync::mpsc::SyncSender<Result<(), String>>),
}

/// The thread that applies journaled groups to redb, so that the
/// committer starts the next group's write while it does: redb's
/// copy-on-write commit costs CPU the journal's sync does not.
struct Folder {
    jobs: Option<std::sync::mpsc::Sender<FoldJob>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Dropping the folder waits for what it was given, so the store is
/// released with every group applied.
impl Drop for Folder {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            // A panicked folder has nothing left to release.
            let _ = thread.join();
        }
    }
}

impl Folder {
    fn start(
        store: Arc<LogStore>,
        report: Arc<watch::Sender<Progress>>,
    ) -> std::io::Result<Folder> {
        let (jobs, queue) = std::sync::mpsc::channel::<FoldJob>();
        let thread = std::thread::Builder::new()
            .name("dynamodb-fold".to_owned())
            .spawn(move || {
                // After a failure nothing more is applied, nor checkpointed:
                // the journal keeps every group since the last checkpoint,
                // and a restart replays them.
                let mut failed: Option<String> = None;
                for job in queue {
                    match job {
                        FoldJob::Ops(ops) if failed.is_none() => {
                            if let Err(e) = store.meta().commit_eventual(&ops) {
                                failed = Some(fail(&report, e));
                            }
                        }
                        FoldJob::Ops(_) => {}
                        FoldJob::Checkpoint(answer) => {
                            let done = match &failed {
                                Some(why) => Err(why.clone()),
                                None => store.meta().commit(&[]).map_err(|e| e.to_string()),
                            };
                            // The committer waits for this answer.
                            let _ = answer.send(done);
                        }
                    }
                }
            })?;
        Ok(Folder {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    fn send(&self, job: FoldJob) {
        if let Some(jobs) = &self.jobs {
            // Refused only if the thread panicked; the next checkpoint then
            // gets no answer and fails.
            let _ = jobs.send(job);
        }
    }
}

impl Durable {
    /// Opens the journal and replays what it holds into the store.
    fn open(
        store: Arc<LogStore>,
        journal_bytes: u64,
        report: Arc<watch::Sender<Progress>>,
    ) -> Result<Durable, DynamoError> {
        let (mut journal, replay) =
            Journal::open(store.dir(), journal_bytes).map_err(journal_err)?;
        if !replay.is_empty() {
            tracing::info!(
                changes = replay.len(),
                "replaying the DynamoDB journal into the store"
            );
            store.meta().commit(&replay)?;
        }
        // Also after a clean shutdown: a torn entry may follow the last
        // whole one, and a new generation makes sure it is never read.
        journal.reset().map_err(journal_err)?;
        let folder = Folder::start(Arc::clone(&store), report)
            .map_err(|e| DynamoError::Storage(format!("cannot start the fold thread: {e}")))?;
        Ok(Durable {
            store,
            journal,
            folder,
        })
    }

    /// Makes `ops` durable: in the journal, or when they could never fit
    /// there, in redb after a checkpoint (so that no older entry can be
    /// replayed over them).
    fn write(&mut self, ops: &[MetaOp]) -> Result<Written, DynamoError> {
        if !self.journal.could_take(ops) {
            self.checkpoint()?;
            self.store.meta().commit(ops)?;
            return Ok(Written::Committed);
        }
        if self.journal.append(ops).map_err(journal_err)? == Appended::Full {
            self.checkpoint()?;
            self.journal.append(ops).map_err(journal_err)?;
        }
        Ok(Written::Journaled)
    }

    /// Has journaled `ops` applied to redb, durable at the next
    /// checkpoint; every journaled group must be, in order, before it.
    fn fold(&self, ops: Vec<MetaOp>) {
        self.folder.send(FoldJob::Ops(ops));
    }

    /// Makes redb durable (and with it every group folded so far), then
    /// empties the journal.
    fn checkpoint(&mut self) -> Result<(), DynamoError> {
        let (answer, done) = std::sync::mpsc::sync_channel(1);
        self.folder.send(FoldJob::Checkpoint(answer));
        match done.recv() {
            Ok(Ok(())) => self.journal.reset().map_err(journal_err),
            Ok(Err(why)) => Err(DynamoError::Storage(why)),
            Err(_) => Err(DynamoError::Storage("the fold thread stopped".to_owned())),
        }
    }
}

fn journal_err(e: std::io::Error) -> DynamoError {
    DynamoError::Storage(format!("the DynamoDB journal: {e}"))
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

    fn report() -> Arc<watch::Sender<Progress>> {
        Arc::new(watch::channel(Progress::default()).0)
    }

    fn delete(key: &str) -> Vec<MetaOp> {
        vec![MetaOp::Delete {
            key: key.to_owned(),
        }]
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_later_write_and_the_reads_of_what_was_not_durable() {
        let (report, progress) = watch::channel(Progress::default());
        let ok = |_: &[MetaOp]| Ok::<(), String>(());
        assert_eq!(commit_group(ok, &report, &delete("k1"), 1), Ok(()));
        assert!(visible_in(progress.clone(), 1).await.is_ok());

        let disk_failed = |_: &[MetaOp]| Err::<(), String>("No space left on device".to_owned());
        let failed = commit_group(disk_failed, &report, &delete("k2"), 2);
        assert!(
            failed
                .as_ref()
                .is_err_and(|why| why.contains("No space left")),
            "{failed:?}"
        );

        let never =
            |_: &[MetaOp]| -> Result<(), String> { panic!("nothing is committed after a failure") };
        assert!(commit_group(never, &report, &delete("k3"), 3).is_err());
        // What was durable before stays readable; what was not never is.
        assert!(visible_in(progress.clone(), 1).await.is_ok());
        assert!(matches!(
            visible_in(progress.clone(), 2).await,
            Err(DynamoError::Storage(_))
        ));
        assert!(matches!(
            visible_in(progress, 3).await,
            Err(DynamoError::Storage(_))
        ));
    }

    #[test]
    fn a_group_only_in_the_journal_is_in_the_store_once_the_committer_starts_again() {
        let dir = tempfile::tempdir().unwrap();
        let item = item_from_json(&json!({"k": {"S": "lease-1"}, "owner": {"S": "w1"}})).unwrap();
        let key = ItemKey(KeyPart::S("lease-1".to_owned()), None);
        {
            let store = Arc::new(LogStore::open(dir.path(), Default::default()).unwrap());
            let mut durable = Durable::open(store, JOURNAL_BYTES, report()).unwrap();
            let ops = [put_table(&def("leases", 3)), put_item(3, &key, &item)];
            // What a crash between the journal's sync and the fold leaves.
            assert_eq!(durable.journal.append(&ops).unwrap(), Appended::Durable);
        }
        let store = Arc::new(LogStore::open(dir.path(), Default::default()).unwrap());
        assert!(load(&store).unwrap().is_empty(), "redb never got the group");
        let _committer = Committer::start(Arc::clone(&store)).unwrap();
        let tables = load(&store).unwrap();
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].items.get(&key), Some(&item));
    }

    #[test]
    fn groups_past_a_full_journal_and_one_larger_than_it_are_all_durable_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let key = |i: usize| ItemKey(KeyPart::S(format!("lease-{i}")), None);
        let item = |i: usize, n: usize| {
            item_from_json(&json!({"k": {"S": format!("lease-{i}")}, "n": {"N": n.to_string()}}))
                .unwrap()
        };
        {
            let store = Arc::new(LogStore::open(dir.path(), Default::default()).unwrap());
            // Room for a few groups: the journal fills and is checkpointed.
            let mut durable = Durable::open(store, 4096 + 1024, report()).unwrap();
            let create = [put_table(&def("leases", 1))];
            durable.write(&create).unwrap();
            durable.fold(create.to_vec());
            for n in 0..40 {
                let ops = [put_item(1, &key(n % 4), &item(n % 4, n))];
                assert_eq!(durable.write(&ops).unwrap(), Written::Journaled);
                durable.fold(ops.to_vec());
            }
            let large: Vec<MetaOp> = (0..64)
                .map(|i| put_item(1, &key(i), &item(i, 1000)))
                .collect();
            assert_eq!(durable.write(&large).unwrap(), Written::Committed);
            let last = [put_item(1, &key(0), &item(0, 2000))];
            assert_eq!(durable.write(&last).unwrap(), Written::Journaled);
            // Not folded: only the journal has it.
        }
        let store = Arc::new(LogStore::open(dir.path(), Default::default()).unwrap());
        let _committer = Committer::start(Arc::clone(&store)).unwrap();
        let tables = load(&store).unwrap();
        assert_eq!(tables[0].items.len(), 64);
        assert_eq!(tables[0].items.get(&key(0)), Some(&item(0, 2000)));
        assert_eq!(tables[0].items.get(&key(1)), Some(&item(1, 1000)));
    }

    #[tokio::test]
    async fn a_read_is_answered_once_the_write_it_saw_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LogStore::open(dir.path(), Default::default()).unwrap());
        let committer = Committer::start(store).unwrap();
        let key = ItemKey(KeyPart::S("lease-1".to_owned()), None);
        let mut table = TableState::new(def("leases", 1));
        let pending = committer.submit(vec![put_table(&def("leases", 1))]);
        table.note_write(&key, pending.seq(), committer.durable_seq());
        assert_eq!(table.written_at(&key), pending.seq());
        assert_eq!(table.last_write(), pending.seq());
        // The read waits on the committer, not on the writer's answer.
        committer.visible(table.written_at(&key)).await.unwrap();
        assert!(committer.durable_seq() >= pending.seq());
        pending.durable().await.unwrap();
    }

    #[test]
    fn writes_already_durable_are_forgotten_once_many_items_were_written() {
        let mut table = TableState::new(def("leases", 1));
        let key = |i: usize| ItemKey(KeyPart::S(format!("lease-{i}")), None);
        for i in 0..UNSYNCED_PRUNE_AT {
            table.note_write(&key(i), i as u64 + 1, 0);
        }
        let newest = UNSYNCED_PRUNE_AT as u64 + 1;
        table.note_write(&key(UNSYNCED_PRUNE_AT), newest, newest - 1);
        assert_eq!(table.unsynced.len(), 1);
        assert_eq!(table.written_at(&key(0)), 0);
        assert_eq!(table.written_at(&key(UNSYNCED_PRUNE_AT)), newest);
        assert_eq!(table.last_write(), newest);
    }
}
