//! The Rust KCL (`riffle-kcl`) against `riffle serve`, Kinesis and the
//! lease table at one endpoint: two workers spread a 4-shard stream and
//! process each record once, a crashed worker's leases are taken after the
//! failover time with nothing lost, checkpoints resume after a restart,
//! parents are read before children across a split and a merge, and
//! enhanced fan-out delivers as polling does, KPL records arrive as their
//! user records; `riffle tail --group` terminals share a stream and resume
//! where their group stopped; beside a KCL 3.x leader (played by the test,
//! writing Java's items) a worker processes what the leader assigns and
//! hands leases over gracefully both ways.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use common::{Riffle, create_active, eventually, sdk_config, unique_name, wait_active};
use riffle_kcl::{
    Checkpointer, InitialPosition, InitializeInput, Lease, ProcessRecordsInput, RecordProcessor,
    RetrievalMode, Worker, WorkerHandle,
};

/// Short, so takeovers happen within a test (KCL's default is 10 s), yet
/// long enough that renewals every second never miss it on a loaded
/// 2-core machine, which would make a live lease look expired.
const FAILOVER: Duration = Duration::from_secs(3);
/// How long records or a spread of leases may take to appear.
const SETTLE_TIME_MAX: Duration = Duration::from_secs(30);

/// One delivery: which worker saw which record of which shard, in the
/// order all workers together saw them.
#[derive(Debug, Clone)]
struct Delivery {
    worker: String,
    shard: String,
    data: String,
    sequence: String,
    sub_sequence: i64,
}

/// What every worker's processors saw.
#[derive(Debug, Default)]
struct Journal {
    deliveries: Vec<Delivery>,
    /// (worker, shard) of each processor initialized and not yet ended.
    active: Vec<(String, String)>,
}

type Log = Arc<Mutex<Journal>>;

/// Records every delivery and checkpoints after each batch, at the shard's
/// end and at shutdown, as a typical KCL application does.
struct Recorder {
    worker: String,
    shard: String,
    log: Log,
}

impl RecordProcessor for Recorder {
    async fn initialize(&mut self, input: InitializeInput) {
        assert_eq!(input.shard_id, self.shard);
    }

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) {
        {
            let mut log = self.log.lock().expect("no test thread panicked holding it");
            for record in &input.records {
                log.deliveries.push(Delivery {
                    worker: self.worker.clone(),
                    shard: self.shard.clone(),
                    data: String::from_utf8_lossy(&record.data).into_owned(),
                    sequence: record.sequence_number.clone(),
                    sub_sequence: record.sub_sequence_number,
                });
            }
        }
        // A lost lease is the next owner's to checkpoint.
        let _ = checkpointer.checkpoint().await;
    }

    async fn lease_lost(&mut self) {
        self.ended();
    }

    async fn shard_ended(&mut self, checkpointer: &mut Checkpointer) {
        checkpointer
            .checkpoint_shard_end()
            .await
            .expect("SHARD_END checkpointed");
        self.ended();
    }

    async fn shutdown_requested(&mut self, checkpointer: &mut Checkpointer) {
        let _ = checkpointer.checkpoint().await;
        self.ended();
    }
}

impl Recorder {
    fn ended(&self) {
        let mine = (self.worker.clone(), self.shard.clone());
        let mut log = self.log.lock().expect("unpoisoned");
        log.active.retain(|active| *active != mine);
    }
}

/// The lease table's client; with the SDK's standard retries, as a
/// worker's own client has.
fn dynamodb(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk_config(endpoint))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::standard())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn start_worker(
    riffle: &Riffle,
    app: &str,
    stream: &str,
    id: &str,
    mode: RetrievalMode,
    log: &Log,
) -> WorkerHandle {
    // The library's notes (leases taken and lost) go with a failure's output.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("riffle_kcl=debug")
        .try_init();
    let worker = Worker::builder(app, stream)
        .kinesis(riffle.client())
        .dynamodb(dynamodb(&riffle.endpoint))
        .worker_id(id)
        .initial_position(InitialPosition::TrimHorizon)
        .failover_time(FAILOVER)
        .retrieval(mode)
        .build()
        .expect("a complete configuration");
    let (id, log) = (id.to_owned(), log.clone());
    // Made when the lease is taken, so `active` shows every consumer from
    // its start until its processor's ending.
    worker.start(move |shard| {
        let mine = (id.clone(), shard.to_owned());
        log.lock().expect("unpoisoned").active.push(mine);
        Recorder {
            worker: id.clone(),
            shard: shard.to_owned(),
            log: log.clone(),
        }
    })
}

async fn put(riffle: &Riffle, stream: &str, records: std::ops::Range<u32>) {
    let client = riffle.client();
    for i in records {
        client
            .put_record()
            .stream_name(stream)
            .partition_key(format!("key-{i}"))
            .data(Blob::new(format!("r{i}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutRecord {i}: {e:?}"));
    }
}

async fn leases(riffle: &Riffle, app: &str) -> Vec<Lease> {
    try_leases(riffle, app)
        .await
        .expect("the lease table is readable")
}

async fn try_leases(riffle: &Riffle, app: &str) -> Result<Vec<Lease>, riffle_kcl::KclError> {
    riffle_kcl::table::LeaseTable::new(dynamodb(&riffle.endpoint), app)
        .list()
        .await
}

/// Leases per owner, once every lease of the table is owned.
async fn spread(riffle: &Riffle, app: &str) -> Option<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    for lease in try_leases(riffle, app).await.ok()? {
        *counts.entry(lease.owner?).or_insert(0) += 1;
    }
    Some(counts)
}

/// Waits until each of `workers` holds `each` leases in the table and runs
/// exactly those: a worker robbed of a lease has noticed and stopped
/// reading it, so no shard is read twice from then on.
async fn settled(riffle: &Riffle, app: &str, log: &Log, workers: &[&str], each: usize) {
    let deadline = Instant::now() + SETTLE_TIME_MAX;
    loop {
        let owned: BTreeSet<(String, String)> = try_leases(riffle, app)
            .await
            .unwrap_or_default()
            .into_iter()
            .filter_map(|l| Some((l.owner?, l.key)))
            .collect();
        let active: BTreeSet<(String, String)> = log
            .lock()
            .expect("unpoisoned")
            .active
            .iter()
            .cloned()
            .collect();
        let even = workers
            .iter()
            .all(|w| owned.iter().filter(|(owner, _)| owner == w).count() == each);
        if even && owned.len() == workers.len() * each && active == owned {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no settled spread: leases owned {owned:?}, consumers running {active:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until every record `r0..r{count}` was delivered at least once.
async fn all_delivered(log: &Log, count: u32) {
    let what = format!("{count} records delivered");
    eventually(SETTLE_TIME_MAX, &what, || async {
        let seen: BTreeSet<String> = log
            .lock()
            .expect("unpoisoned")
            .deliveries
            .iter()
            .map(|d| d.data.clone())
            .collect();
        (0..count)
            .all(|i| seen.contains(&format!("r{i}")))
            .then_some(())
    })
    .await
}

fn deliveries_of(log: &Log, data: &str) -> Vec<Delivery> {
    log.lock()
        .expect("unpoisoned")
        .deliveries
        .iter()
        .filter(|d| d.data == data)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_spread_a_four_shard_stream_and_process_each_record_once() {
    let riffle = Riffle::start();
    let (stream, app) = (unique_name("kcl-spread"), unique_name("app"));
    create_active(&riffle.client(), &stream, 4).await;
    let log = Log::default();
    let a = start_worker(
        &riffle,
        &app,
        &stream,
        "worker-a",
        RetrievalMode::Polling,
        &log,
    );
    let b = start_worker(
        &riffle,
        &app,
        &stream,
        "worker-b",
        RetrievalMode::Polling,
        &log,
    );
    settled(&riffle, &app, &log, &["worker-a", "worker-b"], 2).await;
    put(&riffle, &stream, 0..200).await;
    all_delivered(&log, 200).await;
    for i in 0..200 {
        assert_eq!(
            deliveries_of(&log, &format!("r{i}")).len(),
            1,
            "r{i} was processed once: {:?}",
            deliveries_of(&log, &format!("r{i}"))
        );
    }
    let workers: BTreeSet<String> = log
        .lock()
        .expect("unpoisoned")
        .deliveries
        .iter()
        .map(|d| d.worker.clone())
        .collect();
    assert_eq!(workers.len(), 2, "both workers processed records");
    a.shutdown().await.expect("a clean shutdown");
    b.shutdown().await.expect("a clean shutdown");
    for lease in leases(&riffle, &app).await {
        assert_eq!(lease.owner, None, "{} released at shutdown", lease.key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_workers_leases_are_taken_after_the_failover_time_and_nothing_is_lost() {
    let riffle = Riffle::start();
    let (stream, app) = (unique_name("kcl-crash"), unique_name("app"));
    create_active(&riffle.client(), &stream, 4).await;
    let log = Log::default();
    let a = start_worker(
        &riffle,
        &app,
        &stream,
        "worker-a",
        RetrievalMode::Polling,
        &log,
    );
    let b = start_worker(
        &riffle,
        &app,
        &stream,
        "worker-b",
        RetrievalMode::Polling,
        &log,
    );
    settled(&riffle, &app, &log, &["worker-a", "worker-b"], 2).await;
    put(&riffle, &stream, 0..100).await;
    all_delivered(&log, 100).await;
    b.abort();
    let crashed = Instant::now();
    put(&riffle, &stream, 100..200).await;
    eventually(
        SETTLE_TIME_MAX,
        "worker-a holding all four leases",
        || async { (spread(&riffle, &app).await?.get("worker-a") == Some(&4)).then_some(()) },
    )
    .await;
    assert!(
        crashed.elapsed() >= FAILOVER,
        "the leases were taken only once their counters stood still for the failover time"
    );
    all_delivered(&log, 200).await;
    a.shutdown().await.expect("a clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_application_resumes_from_its_checkpoints() {
    let riffle = Riffle::start();
    let (stream, app) = (unique_name("kcl-resume"), unique_name("app"));
    create_active(&riffle.client(), &stream, 2).await;
    put(&riffle, &stream, 0..50).await;
    let first = Log::default();
    let worker = start_worker(
        &riffle,
        &app,
        &stream,
        "first-run",
        RetrievalMode::Polling,
        &first,
    );
    all_delivered(&first, 50).await;
    worker.shutdown().await.expect("a clean shutdown");

    put(&riffle, &stream, 50..100).await;
    let second = Log::default();
    let worker = start_worker(
        &riffle,
        &app,
        &stream,
        "second-run",
        RetrievalMode::Polling,
        &second,
    );
    eventually(
        SETTLE_TIME_MAX,
        "the records put between the runs",
        || async {
            let seen = second.lock().expect("unpoisoned").deliveries.len();
            (seen >= 50).then_some(())
        },
    )
    .await;
    let data: BTreeSet<String> = second
        .lock()
        .expect("unpoisoned")
        .deliveries
        .iter()
        .map(|d| d.data.clone())
        .collect();
    let expected: BTreeSet<String> = (50..100).map(|i| format!("r{i}")).collect();
    assert_eq!(
        data, expected,
        "the second run starts after the first run's checkpoints"
    );
    worker.shutdown().await.expect("a clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_are_processed_before_children_across_a_split_and_a_merge() {
    let riffle = Riffle::start();
    let client = riffle.client();
    let (stream, app) = (unique_name("kcl-lineage"), unique_name("app"));
    create_active(&client, &stream, 1).await;
    put(&riffle, &stream, 0..30).await;
    client
        .split_shard()
        .stream_name(&stream)
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key("170141183460469231731687303715884105728")
        .send()
        .await
        .expect("SplitShard");
    wait_active(&client, &stream).await;
    put(&riffle, &stream, 30..60).await;
    client
        .merge_shards()
        .stream_name(&stream)
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await
        .expect("MergeShards");
    wait_active(&client, &stream).await;
    put(&riffle, &stream, 60..90).await;

    let log = Log::default();
    let worker = start_worker(
        &riffle,
        &app,
        &stream,
        "worker",
        RetrievalMode::Polling,
        &log,
    );
    all_delivered(&log, 90).await;
    let order = log.lock().expect("unpoisoned").deliveries.clone();
    let first = |shard: &str| order.iter().position(|d| d.shard.ends_with(shard));
    let last = |shard: &str| order.iter().rposition(|d| d.shard.ends_with(shard));
    for (parent, child) in [("0", "1"), ("0", "2"), ("1", "3"), ("2", "3")] {
        let (Some(parent_last), Some(child_first)) = (last(parent), first(child)) else {
            panic!("shards {parent} and {child} both had records: {order:?}");
        };
        assert!(
            parent_last < child_first,
            "shard {parent} was finished before its child {child} started"
        );
    }
    let table = leases(&riffle, &app).await;
    let root = table
        .iter()
        .find(|l| l.key == "shardId-000000000000")
        .expect("the root's lease");
    assert!(root.is_finished());
    assert_eq!(
        root.child_shard_ids,
        BTreeSet::from([
            "shardId-000000000001".to_owned(),
            "shardId-000000000002".to_owned()
        ])
    );
    let merged = table
        .iter()
        .find(|l| l.key == "shardId-000000000003")
        .expect("the merged shard's lease");
    assert_eq!(merged.parent_shard_ids.len(), 2);
    worker.shutdown().await.expect("a clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fan_out_worker_receives_every_record_through_its_own_consumer() {
    let riffle = Riffle::start();
    let client = riffle.client();
    let (stream, app) = (unique_name("kcl-efo"), unique_name("app"));
    create_active(&client, &stream, 2).await;
    put(&riffle, &stream, 0..40).await;
    let log = Log::default();
    let worker = start_worker(
        &riffle,
        &app,
        &stream,
        "worker",
        RetrievalMode::FanOut,
        &log,
    );
    all_delivered(&log, 40).await;
    put(&riffle, &stream, 40..80).await;
    all_delivered(&log, 80).await;
    for i in 0..80 {
        assert_eq!(
            deliveries_of(&log, &format!("r{i}")).len(),
            1,
            "r{i} was delivered once: {:?}",
            deliveries_of(&log, &format!("r{i}"))
        );
    }
    let summary = client
        .describe_stream_summary()
        .stream_name(&stream)
        .send()
        .await
        .expect("described");
    let arn = summary
        .stream_description_summary()
        .expect("a summary")
        .stream_arn()
        .to_owned();
    let consumers = client
        .list_stream_consumers()
        .stream_arn(arn)
        .send()
        .await
        .expect("listed");
    assert!(
        consumers
            .consumers()
            .iter()
            .any(|c| c.consumer_name() == app),
        "a consumer named after the application"
    );
    worker.shutdown().await.expect("a clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregated_records_reach_the_processor_as_their_user_records() {
    let riffle = Riffle::start();
    let client = riffle.client();
    let (stream, app) = (unique_name("kcl-kpl"), unique_name("app"));
    create_active(&client, &stream, 1).await;
    // Three Kinesis records of ten user records each, as the KPL writes them.
    for aggregate in 0..3 {
        let data: Vec<String> = (0..10)
            .map(|i| format!("r{}", aggregate * 10 + i))
            .collect();
        let users: Vec<_> = data
            .iter()
            .map(|d| riffle_kpl::UserRecord {
                partition_key: "key",
                explicit_hash_key: None,
                data: d.as_bytes(),
            })
            .collect();
        client
            .put_record()
            .stream_name(&stream)
            .partition_key("key")
            .data(Blob::new(riffle_kpl::format::encode(&users)))
            .send()
            .await
            .expect("an aggregated record put");
    }
    let log = Log::default();
    let worker = start_worker(
        &riffle,
        &app,
        &stream,
        "worker",
        RetrievalMode::Polling,
        &log,
    );
    all_delivered(&log, 30).await;
    let mut sequences = BTreeSet::new();
    for i in 0..30 {
        let got = deliveries_of(&log, &format!("r{i}"));
        assert_eq!(got.len(), 1, "r{i} delivered once: {got:?}");
        assert_eq!(
            got[0].sub_sequence,
            i64::from(i % 10),
            "r{i}'s index in its aggregate"
        );
        sequences.insert(got[0].sequence.clone());
    }
    assert_eq!(
        sequences.len(),
        3,
        "one Kinesis sequence number per aggregate"
    );
    worker.shutdown().await.expect("a clean shutdown");
}

/// A `riffle tail STREAM --group NAME --raw` as a terminal runs it.
struct Terminal {
    child: Child,
    /// Printed records, one per line.
    stdout: mpsc::Receiver<String>,
    /// Its notes: which shards it prints, which it handed over.
    stderr: mpsc::Receiver<String>,
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    received
}

fn tail_group(riffle: &Riffle, stream: &str, group: &str, extra: &[&str]) -> Terminal {
    let mut child = Command::new(env!("CARGO_BIN_EXE_riffle"))
        .args([
            "tail",
            stream,
            "--group",
            group,
            "--from",
            "trim-horizon",
            "--raw",
        ])
        .args(extra)
        .args(["--endpoint", &riffle.endpoint])
        .env_remove("RIFFLE_ENDPOINT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("riffle tail starts");
    let stdout = lines_of(child.stdout.take().expect("piped stdout"));
    let stderr = lines_of(child.stderr.take().expect("piped stderr"));
    Terminal {
        child,
        stdout,
        stderr,
    }
}

/// Collects lines until `done` says so, failing after the settle time.
fn lines_until(
    sources: &[&mpsc::Receiver<String>],
    seen: &mut [Vec<String>],
    done: impl Fn(&[Vec<String>]) -> bool,
) {
    let deadline = Instant::now() + SETTLE_TIME_MAX;
    while !done(seen) {
        assert!(Instant::now() < deadline, "timed out; so far: {seen:?}");
        for (source, lines) in sources.iter().zip(seen.iter_mut()) {
            lines.extend(source.try_iter());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn interrupt(child: &mut Child) {
    let pid = i32::try_from(child.id()).expect("a pid fits in i32");
    // SAFETY: kill(2) on a child this test spawned and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let deadline = Instant::now() + SETTLE_TIME_MAX;
    loop {
        if let Some(status) = child.try_wait().expect("waitable") {
            assert!(
                status.success(),
                "tail --group ends cleanly on Ctrl-C: {status}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "tail --group did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_group_terminals_share_a_stream_and_resume_where_the_group_stopped() {
    let riffle = Riffle::start();
    let (stream, group) = (unique_name("kcl-tail"), unique_name("terminals"));
    create_active(&riffle.client(), &stream, 2).await;
    let mut first = tail_group(&riffle, &stream, &group, &[]);
    eventually(
        SETTLE_TIME_MAX,
        "the first terminal holding both leases",
        || async {
            let counts = spread(&riffle, &group).await?;
            (counts.values().sum::<usize>() == 2).then_some(())
        },
    )
    .await;
    let mut second = tail_group(&riffle, &stream, &group, &[]);
    // The second terminal steals a lease, and the first notices and says so.
    let mut notes = vec![Vec::new(), Vec::new()];
    lines_until(&[&first.stderr, &second.stderr], &mut notes, |notes| {
        notes[0]
            .iter()
            .any(|n| n.ends_with("taken over by another worker of the group"))
            && notes[1]
                .iter()
                .any(|n| n.ends_with("printed here from now on"))
    });
    put(&riffle, &stream, 0..100).await;
    let mut seen = vec![Vec::new(), Vec::new()];
    let all: BTreeSet<String> = (0..100).map(|i| format!("r{i}")).collect();
    lines_until(&[&first.stdout, &second.stdout], &mut seen, |seen| {
        let printed: BTreeSet<String> = seen.iter().flatten().cloned().collect();
        printed == all
    });
    assert!(
        seen.iter().all(|lines| !lines.is_empty()),
        "both terminals printed records: {seen:?}"
    );
    assert_eq!(
        seen.iter().map(Vec::len).sum::<usize>(),
        100,
        "each record printed once: {seen:?}"
    );
    interrupt(&mut first.child);
    interrupt(&mut second.child);
    for lease in leases(&riffle, &group).await {
        assert_eq!(lease.owner, None, "{} released on Ctrl-C", lease.key);
    }

    put(&riffle, &stream, 100..110).await;
    let mut third = tail_group(&riffle, &stream, &group, &["--count", "10"]);
    let mut seen = vec![Vec::new()];
    lines_until(&[&third.stdout], &mut seen, |seen| seen[0].len() >= 10);
    let printed: BTreeSet<String> = seen[0].iter().cloned().collect();
    let expected: BTreeSet<String> = (100..110).map(|i| format!("r{i}")).collect();
    assert_eq!(
        printed, expected,
        "the group resumed after what it had printed"
    );
    let status = third.child.wait().expect("waitable");
    assert!(
        status.success(),
        "tail --group --count ends cleanly: {status}"
    );
}

/// Plays a Java KCL 3.x application's leader by hand, writing its items as
/// KCL 3.1.3 writes them (see `riffle_kcl::coordinator`): the
/// CoordinatorState table with the DynamoDB lock client's `Leader` item,
/// heartbeated with a fresh record version, and the `Migration3.0` item at
/// `CLIENT_VERSION_3X`; the WorkerMetricStats table; lease assignments
/// and graceful hand-overs as its LeaseAssignmentManager writes them.
struct Kcl3Leader {
    ddb: aws_sdk_dynamodb::Client,
    app: String,
    beating: Arc<std::sync::atomic::AtomicBool>,
}

/// The leader lock's lease, short so the test sees it expire.
const LOCK_LEASE: Duration = Duration::from_secs(3);

impl Kcl3Leader {
    async fn start(riffle: &Riffle, app: &str) -> Kcl3Leader {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let ddb = dynamodb(&riffle.endpoint);
        for (table, key) in [
            (format!("{app}-CoordinatorState"), "key"),
            (format!("{app}-WorkerMetricStats"), "wid"),
        ] {
            ddb.create_table()
                .table_name(table)
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(key)
                        .key_type(KeyType::Hash)
                        .build()
                        .expect("complete"),
                )
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(key)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .expect("complete"),
                )
                .billing_mode(BillingMode::PayPerRequest)
                .send()
                .await
                .expect("table created");
        }
        ddb.put_item()
            .table_name(format!("{app}-CoordinatorState"))
            .item("key", s("Migration3.0"))
            .item("cv", s("CLIENT_VERSION_3X"))
            .send()
            .await
            .expect("migration state written");
        let leader = Kcl3Leader {
            ddb,
            app: app.to_owned(),
            beating: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        };
        leader.heartbeat().await;
        let (ddb, app, beating) = (leader.ddb.clone(), app.to_owned(), leader.beating.clone());
        tokio::spawn(async move {
            // The lock client's heartbeat (every 30 s in KCL 3.1.3, here
            // well within the short lock lease), and the renewals of a
            // Java worker that is finishing a lease it hands over.
            while beating.load(std::sync::atomic::Ordering::SeqCst) {
                let beat = Kcl3Leader {
                    ddb: ddb.clone(),
                    app: app.clone(),
                    beating: beating.clone(),
                };
                beat.heartbeat().await;
                beat.renew_handed_over("java-b").await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        leader
    }

    async fn heartbeat(&self) {
        self.ddb
            .put_item()
            .table_name(format!("{}-CoordinatorState", self.app))
            .item("key", s("Leader"))
            .item("ownerName", s("java-leader"))
            .item("recordVersionNumber", s(&uuid_like()))
            .item("leaseDuration", s(&LOCK_LEASE.as_millis().to_string()))
            .send()
            .await
            .expect("lock heartbeat");
    }

    /// A finishing old owner keeps renewing (Java's renewer does).
    async fn renew_handed_over(&self, worker: &str) {
        let Ok(leases) = try_leases_of(&self.ddb, &self.app).await else {
            return;
        };
        for lease in leases {
            if lease.checkpoint_owner.as_deref() == Some(worker) {
                let _ = self
                    .ddb
                    .update_item()
                    .table_name(&self.app)
                    .key("leaseKey", s(&lease.key))
                    .update_expression("ADD leaseCounter :one")
                    .expression_attribute_values(":one", n(1))
                    .send()
                    .await;
            }
        }
    }

    /// The leader dies: its lock is no longer heartbeated.
    fn die(&self) {
        self.beating
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// LeaseAssignmentManager's `assignLease`: a new owner, the counter
    /// bumped (the old owner's renewal fails), no hand-over.
    async fn assign(&self, key: &str, owner: &str) {
        self.ddb
            .update_item()
            .table_name(&self.app)
            .key("leaseKey", s(key))
            .update_expression("SET leaseOwner = :o ADD leaseCounter :one REMOVE checkpointOwner")
            .expression_attribute_values(":o", s(owner))
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .expect("lease assigned");
    }

    /// `initiateGracefulLeaseHandoff`: the new owner in `leaseOwner`, the
    /// old one, still finishing, in `checkpointOwner`; the counter is left
    /// alone.
    async fn hand_over(&self, key: &str, from: &str, to: &str) {
        self.ddb
            .update_item()
            .table_name(&self.app)
            .key("leaseKey", s(key))
            .condition_expression("leaseOwner = :from AND attribute_not_exists(checkpointOwner)")
            .update_expression("SET leaseOwner = :to, checkpointOwner = :from")
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .send()
            .await
            .expect("hand-over initiated");
    }

    /// The old owner's `evictLease` at the end of a hand-over.
    async fn finish_hand_over(&self, key: &str) {
        self.ddb
            .update_item()
            .table_name(&self.app)
            .key("leaseKey", s(key))
            .update_expression("REMOVE checkpointOwner ADD leaseCounter :one")
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .expect("hand-over finished");
    }

    /// A Java worker's checkpoint on a lease.
    async fn checkpoint(&self, key: &str, sequence: &str) {
        self.ddb
            .update_item()
            .table_name(&self.app)
            .key("leaseKey", s(key))
            .update_expression("SET checkpoint = :c, checkpointSubSequenceNumber = :zero")
            .expression_attribute_values(":c", s(sequence))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .expect("checkpointed");
    }

    async fn metrics_rows(&self) -> Vec<riffle_kcl::coordinator::WorkerMetricStats> {
        riffle_kcl::coordinator::CoordinatorTables::new(self.ddb.clone(), &self.app)
            .worker_metrics()
            .await
            .expect("WorkerMetricStats readable")
    }
}

fn s(text: &str) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::S(text.to_owned())
}

fn n(value: i64) -> aws_sdk_dynamodb::types::AttributeValue {
    aws_sdk_dynamodb::types::AttributeValue::N(value.to_string())
}

/// A record version number: unique per heartbeat, as the lock client's UUIDs.
fn uuid_like() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "rvn-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    )
}

async fn try_leases_of(
    ddb: &aws_sdk_dynamodb::Client,
    app: &str,
) -> Result<Vec<Lease>, riffle_kcl::KclError> {
    riffle_kcl::table::LeaseTable::new(ddb.clone(), app)
        .list()
        .await
}

/// Puts records `{tag}{i}` to the shard `index` (at its starting hash
/// key); returns their sequence numbers.
async fn put_to_shard(
    riffle: &Riffle,
    stream: &str,
    index: usize,
    tag: &str,
    count: u32,
) -> Vec<String> {
    let client = riffle.client();
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards")
        .shards
        .unwrap_or_default();
    let start = shards[index]
        .hash_key_range()
        .expect("a hash key range")
        .starting_hash_key()
        .to_owned();
    let mut sequences = Vec::new();
    for i in 0..count {
        let put = client
            .put_record()
            .stream_name(stream)
            .partition_key("any")
            .explicit_hash_key(&start)
            .data(Blob::new(format!("{tag}{i}")))
            .send()
            .await
            .expect("PutRecord");
        assert_eq!(put.shard_id, shards[index].shard_id);
        sequences.push(put.sequence_number);
    }
    sequences
}

fn delivered_on(log: &Log, shard: &str) -> Vec<Delivery> {
    log.lock()
        .expect("unpoisoned")
        .deliveries
        .iter()
        .filter(|d| d.shard == shard)
        .cloned()
        .collect()
}

fn is_active(log: &Log, worker: &str, shard: &str) -> bool {
    log.lock()
        .expect("unpoisoned")
        .active
        .contains(&(worker.to_owned(), shard.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beside_a_live_kcl3_leader_a_worker_processes_what_it_assigns_and_hands_leases_over_gracefully_both_ways()
 {
    let riffle = Riffle::start();
    let (stream, app) = (unique_name("kcl3"), unique_name("app"));
    create_active(&riffle.client(), &stream, 3).await;
    let leader = Kcl3Leader::start(&riffle, &app).await;
    let log = Log::default();
    let worker = start_worker(
        &riffle,
        &app,
        &stream,
        "rust-w",
        RetrievalMode::Polling,
        &log,
    );
    let shard = |i: usize| format!("shardId-{i:012}");

    // It reports itself as a Java worker does (the default metric).
    let row = eventually(
        SETTLE_TIME_MAX,
        "rust-w's WorkerMetricStats row",
        || async {
            leader
                .metrics_rows()
                .await
                .into_iter()
                .find(|row| row.worker_id == "rust-w")
        },
    )
    .await;
    assert!(row.metric_stats.is_empty() && row.operating_range.is_empty());
    let leases_made = format!("the worker's shard sync made the leases of {app}");
    eventually(SETTLE_TIME_MAX, &leases_made, || async {
        (try_leases(&riffle, &app).await.ok()?.len() == 3).then_some(())
    })
    .await;

    // The leader assigns shard 0: the worker processes it, and only it (the
    // free shards 1 and 2 are the leader's to assign, not the worker's to
    // take).
    leader.assign(&shard(0), "rust-w").await;
    let zero = put_to_shard(&riffle, &stream, 0, "zero-", 5).await;
    put_to_shard(&riffle, &stream, 1, "one-", 5).await;
    eventually(SETTLE_TIME_MAX, "shard 0's records processed", || async {
        (delivered_on(&log, &shard(0)).len() == 5).then_some(())
    })
    .await;
    assert!(delivered_on(&log, &shard(1)).is_empty());
    for lease in leases(&riffle, &app).await {
        if lease.key != shard(0) {
            assert_eq!(
                lease.owner, None,
                "{} taken beside a live leader",
                lease.key
            );
        }
    }
    let throughput = format!("{} renewed with its throughput", shard(0));
    eventually(SETTLE_TIME_MAX, &throughput, || async {
        let lease = try_leases(&riffle, &app)
            .await
            .ok()?
            .into_iter()
            .find(|l| l.key == shard(0))?;
        lease.throughput_kbps.map(|_| ())
    })
    .await;

    // Moved away gracefully: the worker finishes, checkpoints what it
    // processed and clears `checkpointOwner`; the new owner is left alone.
    leader.hand_over(&shard(0), "rust-w", "java-b").await;
    let handed = eventually(SETTLE_TIME_MAX, "shard 0 handed over", || async {
        let lease = try_leases(&riffle, &app)
            .await
            .ok()?
            .into_iter()
            .find(|l| l.key == shard(0))?;
        (lease.checkpoint_owner.is_none()).then_some(lease)
    })
    .await;
    assert_eq!(handed.owner.as_deref(), Some("java-b"));
    assert_eq!(
        handed.checkpoint,
        riffle_kcl::Checkpoint::Sequence {
            sequence: zero[4].clone(),
            sub_sequence: 0
        },
        "the worker checkpointed its last record before handing over"
    );
    assert!(!is_active(&log, "rust-w", &shard(0)));

    // Given to it gracefully: it waits while the old owner (java-b, still
    // renewing) finishes, then starts at the old owner's checkpoint.
    leader.assign(&shard(1), "java-b").await;
    let one_sequences = sequences_on_shard(&riffle, &stream, 1).await;
    leader.checkpoint(&shard(1), &one_sequences[2]).await;
    leader.hand_over(&shard(1), "java-b", "rust-w").await;
    leader.assign(&shard(2), "rust-w").await;
    eventually(SETTLE_TIME_MAX, "shard 2 started", || async {
        is_active(&log, "rust-w", &shard(2)).then_some(())
    })
    .await;
    assert!(
        !is_active(&log, "rust-w", &shard(1)),
        "started while the old owner was still finishing"
    );
    leader.finish_hand_over(&shard(1)).await;
    eventually(
        SETTLE_TIME_MAX,
        "shard 1 resumed after java-b's checkpoint",
        || async { (delivered_on(&log, &shard(1)).len() == 2).then_some(()) },
    )
    .await;
    let resumed: Vec<String> = delivered_on(&log, &shard(1))
        .into_iter()
        .map(|d| d.data)
        .collect();
    assert_eq!(resumed, ["one-3", "one-4"]);

    // The leader dies: once its lock stood still for its lease, the worker
    // takes leases as KCL 2.x does, java-b's unrenewed one included.
    leader.die();
    eventually(
        SETTLE_TIME_MAX,
        "every lease taken after the leader died",
        || async {
            spread(&riffle, &app)
                .await
                .filter(|counts| counts.get("rust-w") == Some(&3))
        },
    )
    .await;
    eventually(
        SETTLE_TIME_MAX,
        "shard 0 consumed again by rust-w",
        || async { is_active(&log, "rust-w", &shard(0)).then_some(()) },
    )
    .await;
    assert_eq!(
        delivered_on(&log, &shard(0)).len(),
        5,
        "shard 0 resumed at the worker's own hand-over checkpoint"
    );

    worker.shutdown().await.expect("a clean shutdown");
    assert!(
        !leader
            .metrics_rows()
            .await
            .iter()
            .any(|row| row.worker_id == "rust-w"),
        "the worker's WorkerMetricStats row is removed at shutdown"
    );
}

/// The sequence numbers of the records on shard `index`, oldest first.
async fn sequences_on_shard(riffle: &Riffle, stream: &str, index: usize) -> Vec<String> {
    let client = riffle.client();
    let iterator = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(format!("shardId-{index:012}"))
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("GetShardIterator")
        .shard_iterator
        .expect("an iterator");
    client
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .expect("GetRecords")
        .records
        .into_iter()
        .map(|r| r.sequence_number)
        .collect()
}
