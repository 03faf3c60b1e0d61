//! What the crate's tests share: a service on a temporary data directory
//! and an in-memory [`ObjectSink`] that can be told to fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use riffle_log::{LogStore, StoreConfig};
use serde_json::{Value, json};

use crate::sink::{ObjectSink, SinkError, SinkFuture};
use crate::{Firehose, FirehoseConfig, FirehoseError};

/// One stored object, and when (on Tokio's clock) it was stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub bucket: String,
    pub key: String,
    pub body: Bytes,
    pub at: tokio::time::Instant,
}

/// Keeps objects in memory; fails the next `fail_next` puts, or every put
/// while `fail_always` is set.
#[derive(Default)]
pub struct MemorySink {
    pub objects: Mutex<Vec<Stored>>,
    pub fail_next: AtomicUsize,
    pub fail_always: std::sync::atomic::AtomicBool,
    /// Puts to this bucket fail (a bucket that is down).
    pub fail_bucket: Mutex<Option<String>>,
    pub attempts: AtomicUsize,
    pub stored: tokio::sync::Notify,
}

impl ObjectSink for MemorySink {
    fn put_object<'a>(&'a self, bucket: &'a str, key: &'a str, body: Bytes) -> SinkFuture<'a> {
        Box::pin(async move {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            let fail_once = self
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let bucket_down = self.fail_bucket.lock().as_deref() == Some(bucket);
            if fail_once || bucket_down || self.fail_always.load(Ordering::SeqCst) {
                return Err(SinkError::Unavailable {
                    reason: "told to fail".into(),
                });
            }
            self.objects.lock().push(Stored {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                body,
                at: tokio::time::Instant::now(),
            });
            self.stored.notify_waiters();
            Ok(())
        })
    }
}

impl MemorySink {
    /// Waits until the objects stored hold `bytes` bytes in all. Polls on
    /// Tokio's clock (so paused time moves on to the next timer), with a
    /// deadline in real time (so a slow disk cannot fail it).
    pub async fn wait_for_bytes(&self, bytes: usize) -> Vec<Stored> {
        let deadline = std::time::Instant::now() + WAIT_MAX;
        loop {
            let objects = self.objects.lock().clone();
            if objects.iter().map(|o| o.body.len()).sum::<usize>() >= bytes {
                return objects;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {objects:?} stored"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until at least `n` puts were tried.
    pub async fn wait_for_attempts(&self, n: usize) {
        let deadline = std::time::Instant::now() + WAIT_MAX;
        while self.attempts.load(Ordering::SeqCst) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "fewer than {n} attempts"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every stored body, concatenated in the order stored.
    pub fn all_bytes(&self) -> Vec<u8> {
        self.objects
            .lock()
            .iter()
            .flat_map(|o| o.body.to_vec())
            .collect()
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Arc<LogStore>,
    pub firehose: Arc<Firehose>,
    pub sink: Arc<MemorySink>,
    pub config: FirehoseConfig,
}

pub fn config() -> FirehoseConfig {
    FirehoseConfig {
        status_delay: Duration::ZERO,
        throughput_limits: false,
        ..FirehoseConfig::default()
    }
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(config())
    }

    pub fn with_config(config: FirehoseConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(MemorySink::default());
        let (store, firehose) = open(&dir, &config, &sink);
        Harness {
            dir,
            store,
            firehose,
            sink,
            config,
        }
    }

    /// Stops the service and closes the store, then opens both again on
    /// the same directory with `sink`, as a restart does.
    pub async fn restart(self, sink: Arc<MemorySink>) -> Harness {
        let Harness {
            dir,
            store,
            firehose,
            config,
            ..
        } = self;
        firehose.shutdown().await;
        drop(firehose);
        store.shutdown().await.unwrap();
        drop(store);
        let (store, firehose) = open(&dir, &config, &sink);
        Harness {
            dir,
            store,
            firehose,
            sink,
            config,
        }
    }

    pub async fn call(&self, action: &str, body: Value) -> Result<Value, FirehoseError> {
        let out = self
            .firehose
            .handle(action, body.to_string().as_bytes())
            .await?;
        Ok(serde_json::from_slice(&out).unwrap())
    }

    /// The error code and message of a call that must fail.
    pub async fn error(&self, action: &str, body: Value) -> (&'static str, String) {
        match self.call(action, body).await {
            Err(e) => (e.code(), e.message().unwrap_or_default()),
            Ok(out) => panic!("{action} succeeded: {out}"),
        }
    }

    /// Creates a DirectPut stream to bucket `b` with these buffering hints.
    pub async fn create(&self, name: &str, size_mb: i32, interval_s: i32) {
        self.create_to(name, "b", size_mb, interval_s).await
    }

    pub async fn create_to(&self, name: &str, bucket: &str, size_mb: i32, interval_s: i32) {
        self.call(
            "CreateDeliveryStream",
            json!({
                "DeliveryStreamName": name,
                "ExtendedS3DestinationConfiguration": {
                    "RoleARN": ROLE,
                    "BucketARN": format!("arn:aws:s3:::{bucket}"),
                    "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": interval_s},
                },
            }),
        )
        .await
        .unwrap();
    }

    pub async fn put_batch(&self, name: &str, records: &[Vec<u8>]) -> Value {
        let records: Vec<Value> = records
            .iter()
            .map(|r| json!({"Data": base64_simd::STANDARD.encode_to_string(r)}))
            .collect();
        self.call(
            "PutRecordBatch",
            json!({"DeliveryStreamName": name, "Records": records}),
        )
        .await
        .unwrap()
    }
}

/// How long (real time) a test waits for delivery before it fails.
const WAIT_MAX: Duration = Duration::from_secs(30);

pub const ROLE: &str = "arn:aws:iam::000000000000:role/firehose";

fn open(
    dir: &tempfile::TempDir,
    config: &FirehoseConfig,
    sink: &Arc<MemorySink>,
) -> (Arc<LogStore>, Arc<Firehose>) {
    let store = Arc::new(open_store(dir.path()));
    let firehose = Firehose::open(Arc::clone(&store), config.clone(), sink.clone()).unwrap();
    (store, firehose)
}

/// `n` records of `len` bytes each, every one different.
pub fn records(n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut r = format!("{i:08}|").into_bytes();
            r.resize(len, b'x');
            r
        })
        .collect()
}

/// Opens the store, waiting while the one a restart closed is still held:
/// a blocking metadata commit that was under way when its task was stopped
/// keeps the old store until it returns.
fn open_store(dir: &std::path::Path) -> LogStore {
    let deadline = std::time::Instant::now() + WAIT_MAX;
    loop {
        match LogStore::open(dir, StoreConfig::default()) {
            Ok(store) => return store,
            Err(riffle_log::LogError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::WouldBlock
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            // The same, as redb words it when the metadata file's lock is
            // still held (seen on a loaded machine).
            Err(riffle_log::LogError::Meta(why))
                if why.contains("already open") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(err) => panic!("opening the store: {err}"),
        }
    }
}
