//! One flow's loop: scan its files, cut new bytes into records, buffer them
//! up to `maxBufferSizeRecords` / `maxBufferSizeBytes` / `maxBufferAgeMillis`,
//! send, and only then move the checkpointed positions.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::checkpoint::{self, FileCheckpoint};
use crate::config::FlowConfig;
use crate::send::{Sink, Stats};
use crate::tail::{Pending, Tracker};

/// Between two looks at a flow's files when nothing was new.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Between two tries to write a checkpoint file that failed.
const CHECKPOINT_RETRY: Duration = Duration::from_secs(1);

/// The positions of every flow, written to the checkpoint file by one task.
pub struct Book {
    path: PathBuf,
    flows: Mutex<BTreeMap<String, Vec<FileCheckpoint>>>,
    changed: Notify,
}

impl Book {
    pub fn new(path: PathBuf, loaded: Vec<FileCheckpoint>) -> Book {
        let mut flows: BTreeMap<String, Vec<FileCheckpoint>> = BTreeMap::new();
        for file in loaded {
            flows.entry(file.flow.clone()).or_default().push(file);
        }
        Book {
            path,
            flows: Mutex::new(flows),
            changed: Notify::new(),
        }
    }

    /// The positions checkpointed for a flow.
    pub fn flow(&self, id: &str) -> Vec<FileCheckpoint> {
        self.lock().get(id).cloned().unwrap_or_default()
    }

    fn update(&self, id: &str, files: Vec<FileCheckpoint>) {
        self.lock().insert(id.to_owned(), files);
        self.changed.notify_one();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<FileCheckpoint>>> {
        // A panic while holding it would leave a map that is still whole.
        self.flows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn snapshot(&self) -> Vec<FileCheckpoint> {
        self.lock().values().flatten().cloned().collect()
    }

    /// Writes the positions now (the lock is not held while writing).
    pub fn write(&self) -> Result<(), crate::error::AgentError> {
        checkpoint::store(&self.path, &self.snapshot())
    }

    /// Writes the file whenever positions moved, coalescing bursts.
    pub async fn writer(self: Arc<Book>) {
        loop {
            self.changed.notified().await;
            let book = Arc::clone(&self);
            let written = tokio::task::spawn_blocking(move || book.write()).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::error!("{err}; retrying");
                    tokio::time::sleep(CHECKPOINT_RETRY).await;
                    self.changed.notify_one();
                }
                Err(err) => tracing::error!("checkpoint writer: {err}"),
            }
        }
    }
}

/// A flow and its state.
pub struct Flow {
    config: FlowConfig,
    id: String,
    tracker: Tracker,
    sink: Sink,
    buffer: VecDeque<Pending>,
    /// When the oldest record still buffered was read.
    oldest: Option<Instant>,
    stats: Arc<Stats>,
    book: Arc<Book>,
}

impl Flow {
    pub fn new(config: FlowConfig, sink: Sink, stats: Arc<Stats>, book: Arc<Book>) -> Flow {
        let id = config.id();
        let tracker = Tracker::new(&config, book.flow(&id));
        Flow {
            config,
            id,
            tracker,
            sink,
            buffer: VecDeque::new(),
            oldest: None,
            stats,
            book,
        }
    }

    /// Follows the files until shutdown, then sends what is buffered.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            self.pass().await;
            if *shutdown.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = shutdown.changed() => {}
            }
        }
        while self.buffer.iter().any(|p| p.data.is_some()) {
            self.flush().await;
        }
        self.commit_marks();
    }

    async fn pass(&mut self) {
        if let Err(err) = self.tracker.scan() {
            tracing::warn!(
                "{}: cannot list files: {err}",
                self.config.file_pattern.display()
            );
            return;
        }
        let (max_record, _, _) = self.sink.limits();
        for index in 0..self.tracker.files().len() {
            loop {
                let mut out = Vec::new();
                if let Err(err) = self.tracker.read(index, &self.config, max_record, &mut out) {
                    let path = &self.tracker.files()[index].path;
                    tracing::warn!("{}: {err}", path.display());
                    break;
                }
                if out.is_empty() {
                    break;
                }
                self.count(&out);
                if self.oldest.is_none() && out.iter().any(|p| p.data.is_some()) {
                    self.oldest = Some(Instant::now());
                }
                self.buffer.extend(out);
                while self.is_full() {
                    self.flush().await;
                }
            }
        }
        if self
            .oldest
            .is_some_and(|t| t.elapsed() >= self.config.max_buffer_age)
        {
            while self.buffer.iter().any(|p| p.data.is_some()) {
                self.flush().await;
            }
        }
        self.commit_marks();
    }

    fn count(&self, out: &[Pending]) {
        let sent: Vec<_> = out.iter().filter_map(|p| p.data.as_ref()).collect();
        Stats::add(&self.stats.parsed_records, sent.len());
        Stats::add(&self.stats.parsed_bytes, sent.iter().map(|d| d.len()).sum());
        Stats::add(&self.stats.skipped_records, out.len() - sent.len());
    }

    /// The most records and bytes of one call: the flow's and the service's.
    fn batch_limits(&self) -> (usize, usize) {
        let (_, records, bytes) = self.sink.limits();
        (
            records.min(self.config.max_buffer_records),
            bytes.min(self.config.max_buffer_bytes),
        )
    }

    fn is_full(&self) -> bool {
        let (max_records, max_bytes) = self.batch_limits();
        let mut records = 0;
        let mut bytes = 0;
        for data in self.buffer.iter().filter_map(|p| p.data.as_ref()) {
            records += 1;
            bytes += data.len();
            if records >= max_records || bytes >= max_bytes {
                return true;
            }
        }
        false
    }

    /// Sends the batch at the front of the buffer, then acknowledges it.
    async fn flush(&mut self) {
        let (max_records, max_bytes) = self.batch_limits();
        let mut taken = Vec::new();
        let mut records = Vec::new();
        let mut bytes = 0;
        while let Some(front) = self.buffer.front() {
            if let Some(data) = &front.data {
                let full = records.len() >= max_records || bytes + data.len() > max_bytes;
                if full && !records.is_empty() {
                    break;
                }
                bytes += data.len();
            }
            let Some(mut item) = self.buffer.pop_front() else {
                break;
            };
            records.extend(item.data.take());
            taken.push(item);
        }
        if !records.is_empty() {
            self.sink.send(records, &self.stats).await;
        }
        for item in &taken {
            self.tracker.acknowledge(item.generation, item.end);
        }
        self.oldest = self
            .buffer
            .iter()
            .any(|p| p.data.is_some())
            .then(Instant::now);
        self.book
            .update(&self.id, self.tracker.checkpoints(&self.id));
    }

    /// Positions reached with nothing to send (skipped or dropped lines)
    /// at the front of the buffer are acknowledged at once.
    fn commit_marks(&mut self) {
        let mut moved = false;
        while self.buffer.front().is_some_and(|p| p.data.is_none()) {
            if let Some(mark) = self.buffer.pop_front() {
                self.tracker.acknowledge(mark.generation, mark.end);
                moved = true;
            }
        }
        let known = self.book.flow(&self.id);
        let now = self.tracker.checkpoints(&self.id);
        if moved || known != now {
            self.book.update(&self.id, now);
        }
    }
}
