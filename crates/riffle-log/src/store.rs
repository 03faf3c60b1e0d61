//! The store: one data directory, its lock, format check, metadata store,
//! registry of open logs, the writer thread and the bounded caches of open
//! segment files (`files`).
//!
//! Directory layout:
//! ```text
//! <dir>/LOCK                      advisory lock: one process per directory
//! <dir>/FORMAT                    magic + format version (see `format`)
//! <dir>/meta.redb                 the metadata store
//! <dir>/JOURNAL                   the journal of recent small rounds (see `journal`)
//! <dir>/DYNAMODB_JOURNAL          riffle-dynamodb's journal of writes not yet durable in meta.redb
//! <dir>/logs/<name>/              one directory per log; '/' in a name is '+'
//!         <first_seq:020>.seg     segment files (the last one is active)
//!         <first_seq:020>.idx     index of each sealed segment
//!         CLOSED                  present once the log is closed
//! ```

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore};

use crate::files::{OPEN_FILES_MIN, ReadFiles};
use crate::format;
use crate::journal::Journal;
use crate::keys::KeyRing;
use crate::log::{self, LogInner};
use crate::meta::Meta;
use crate::segment::{self, decode_err, io_err};
use crate::space::Space;
use crate::writer::{self, IN_FLIGHT_PERMITS, Msg, Shared};
use crate::{LogError, Result, StorageStats, StoreConfig};

pub(crate) const LOGS_DIR: &str = "logs";
/// A name segment's length limit, from the contract
/// (`[A-Za-z0-9._-]{1,200}`).
const NAME_SEGMENT_BYTES_MAX: usize = 200;
/// The whole name becomes one directory name, which Linux caps at 255 bytes.
const NAME_BYTES_MAX: usize = 255;

/// Per log name: filled once the log is open. The inner lock serialises
/// opening (recovery does I/O) per name only, so one slow recovery does not
/// hold up other logs.
type Slot = Arc<Mutex<Option<Arc<LogInner>>>>;

pub(crate) struct StoreInner {
    logs_dir: PathBuf,
    registry: Mutex<HashMap<String, Slot>>,
    shared: Arc<Shared>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Held (locked) for the store's lifetime.
    _lock: File,
}

/// Checks a log name and maps it to its directory name.
pub(crate) fn dir_name(name: &str) -> Result<String> {
    let invalid = || LogError::InvalidName(name.to_string());
    if name.len() > NAME_BYTES_MAX {
        return Err(invalid());
    }
    for part in name.split('/') {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if part.is_empty() || part.len() > NAME_SEGMENT_BYTES_MAX || part == "." || part == ".." {
            return Err(invalid());
        }
        if !part.chars().all(ok_char) {
            return Err(invalid());
        }
    }
    Ok(name.replace('/', "+"))
}

fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path);
    let file = file.map_err(io_err(&path))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            let source = io::Error::new(
                io::ErrorKind::WouldBlock,
                "data directory is in use by another store",
            );
            Err(LogError::Io { path, source })
        }
        Err(std::fs::TryLockError::Error(source)) => Err(LogError::Io { path, source }),
    }
}

fn check_format(dir: &Path) -> Result<()> {
    let path = dir.join("FORMAT");
    match std::fs::read(&path) {
        Ok(b) => format::decode_store_file(&b).map_err(|e| decode_err(&path, 0, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            segment::write_atomically(&path, &format::encode_store_file())
        }
        Err(source) => Err(LogError::Io { path, source }),
    }
}

impl StoreInner {
    pub fn open(dir: &Path, config: StoreConfig) -> Result<(StoreInner, Arc<Meta>)> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock = lock_dir(dir)?;
        check_format(dir)?;
        let logs_dir = dir.join(LOGS_DIR);
        let created = !logs_dir.is_dir();
        std::fs::create_dir_all(&logs_dir).map_err(io_err(&logs_dir))?;
        if created {
            segment::sync_dir(dir)?;
        }
        let meta = Arc::new(Meta::open(&dir.join("meta.redb"))?);
        // Before any log is opened: recovery must see the replayed segments.
        let journal = Journal::open(dir, config.journal_bytes_max)?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Half of the descriptors for readers, half for the writer.
        let files_max = config.open_files_max.max(OPEN_FILES_MIN);
        let write_files_open = Arc::new(AtomicUsize::new(0));
        let space = Arc::new(Space::new(dir, config.disk_free_min));
        let handle = writer::spawn(
            rx,
            &config,
            journal,
            files_max - files_max / 2,
            write_files_open.clone(),
            space.clone(),
        )
        .map_err(io_err(dir))?;
        let shared = Arc::new(Shared {
            tx,
            inflight: Arc::new(Semaphore::new(IN_FLIGHT_PERMITS)),
            store_dir: dir.to_path_buf(),
            keys: KeyRing::new(meta.clone(), dir),
            read_files: Arc::new(ReadFiles::new(files_max / 2)),
            write_files_open,
            space,
        });
        let inner = StoreInner {
            logs_dir,
            registry: Mutex::new(HashMap::new()),
            shared,
            writer: Mutex::new(Some(handle)),
            _lock: lock,
        };
        Ok((inner, meta))
    }

    pub fn keys(&self) -> &KeyRing {
        &self.shared.keys
    }

    pub fn open_files(&self) -> usize {
        self.shared.read_files.len() + self.shared.write_files_open.load(Ordering::Relaxed)
    }

    pub fn storage_stats(&self) -> StorageStats {
        self.shared.space.stats()
    }

    pub fn set_disk_free_min(&self, bytes: u64) {
        self.shared.space.set_min(bytes)
    }

    pub fn open_log(&self, name: &str) -> Result<Arc<LogInner>> {
        let dir = self.logs_dir.join(dir_name(name)?);
        let slot = self
            .registry
            .lock()
            .entry(name.to_string())
            .or_default()
            .clone();
        let mut slot = slot.lock();
        if let Some(log) = slot.as_ref() {
            return Ok(log.clone());
        }
        // Checked first: create_dir_all on an existing directory costs a
        // failed mkdir and a stat, per log, at every start-up.
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            segment::sync_dir(&self.logs_dir)?;
        }
        let (state, writer_side) = log::recover(&dir, &self.shared.read_files)?;
        let log = Arc::new(LogInner {
            name: name.to_string(),
            dir,
            state: Mutex::new(state),
            writer: Mutex::new(writer_side),
            notify: Notify::new(),
            shared: self.shared.clone(),
        });
        *slot = Some(log.clone());
        Ok(log)
    }

    pub fn delete_log(&self, name: &str) -> Result<()> {
        let dir = self.logs_dir.join(dir_name(name)?);
        let slot = self.registry.lock().remove(name);
        let open = slot.as_ref().and_then(|s| s.lock().clone());
        let Some(log) = open else {
            return writer::remove_log_dir(&dir);
        };
        let (tx, rx) = std::sync::mpsc::channel();
        self.shared
            .tx
            .send(Msg::Delete { log, reply: tx })
            .map_err(|_| self.shared.shut_down_error())?;
        rx.recv().map_err(|_| self.shared.shut_down_error())?
    }

    pub async fn shutdown(&self) -> Result<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .shared
            .tx
            .send(Msg::Shutdown { reply: Some(tx) })
            .is_err()
        {
            return Ok(()); // Already stopped.
        }
        rx.await.unwrap_or(Ok(()))
    }
}

impl Drop for StoreInner {
    fn drop(&mut self) {
        // Stop the writer and wait for it, so that a store reopened on the
        // same directory never races a write from this one.
        let _ = self.shared.tx.send(Msg::Shutdown { reply: None });
        if let Some(handle) = self.writer.lock().take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dir_name;

    #[test]
    fn log_names_map_to_one_directory_each() {
        assert_eq!(
            dir_name("stream-1/shardId-000000000000").unwrap(),
            "stream-1+shardId-000000000000"
        );
        assert_eq!(dir_name("a.b_c-D9").unwrap(), "a.b_c-D9");
        for bad in [
            "",
            "/",
            "a/",
            "/a",
            "a//b",
            ".",
            "a/..",
            "a b",
            "a+b",
            "ü",
            &"x".repeat(201),
            &"a/".repeat(130),
        ] {
            assert!(dir_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
