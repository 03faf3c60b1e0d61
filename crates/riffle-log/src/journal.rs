//! The store-wide journal: one file, `<dir>/JOURNAL`, that makes a
//! group-commit round of small appends durable with a single `fdatasync`.
//!
//! Without it, a round under `fsync=always` syncs every segment file it
//! wrote: a PutRecord load spread over four shards pays four syncs per
//! round, and on ext4 each sync of an appended file also writes its inode
//! (the size changed). With it, the writer still writes each log's batches
//! to its segment (readers read them from there), then copies the round's
//! batches into one journal write and syncs only the journal. The file is
//! reused from its start after each reset, so after its first pass a sync
//! overwrites blocks already allocated and writes no inode.
//!
//! The segments it covers are synced later, at a **checkpoint**: when the
//! next round would not fit, before a log with entries is deleted, and at
//! shutdown. A checkpoint syncs every segment written since the last one,
//! then **resets** the journal (a new generation at offset 0, synced), which
//! invalidates every entry before it.
//!
//! **Replay**, when the store opens and before any log is recovered, writes
//! each entry of the current generation back to its segment at its offset,
//! syncs those segments and resets the journal. Writing an entry again is
//! harmless: it holds exactly the bytes the segment holds if that write
//! reached the disk. An entry whose segment is gone (trimmed, or its log
//! deleted) is skipped; a log with entries is never deleted before a
//! checkpoint, so a log created again under the same name never receives
//! another's bytes.
//!
//! A round larger than [`JOURNAL_ROUND_BYTES_MAX`] syncs its segments
//! directly, as without a journal: its cost is bandwidth, not the number of
//! syncs, and journaling would write it twice.
//!
//! Failures: if the journal cannot be written or synced, the round falls
//! back to syncing its segments directly and the next round checkpoints. If
//! a segment the journal covers fails to sync (its log is poisoned), the
//! journal is never reset again until the store is reopened, since its
//! entries may be the only durable copy of acknowledged batches; rounds then
//! sync their segments directly. When that log reopens itself in place
//! (`writer::reopen`), [`Journal::restore`] first writes its entries back
//! into its segments and syncs them, whatever the page cache shows; once no
//! log the journal covers refuses writes, [`Journal::thaw`] lets the next
//! round checkpoint and reset it. Only entries before `pos` are restored:
//! those of rounds whose journal sync succeeded, which were acknowledged.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::format::{self, DecodeError, JOURNAL_ENTRY_HEADER_LEN, JOURNAL_HEADER_LEN};
use crate::log::LogInner;
use crate::segment::{self, decode_err, io_err};
use crate::{LogError, Result};

pub(crate) const JOURNAL_FILE: &str = "JOURNAL";
/// A round with more bytes of batches than this syncs its segment files
/// instead of the journal (see the module docs).
pub(crate) const JOURNAL_ROUND_BYTES_MAX: usize = 1024 * 1024;
/// What one entry costs in the journal besides its batches: the header and
/// the segment's path (a log directory name is at most 255 bytes, a
/// segment file name 24).
pub(crate) const JOURNAL_ENTRY_OVERHEAD_MAX: usize = JOURNAL_ENTRY_HEADER_LEN + 256 + 1 + 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Entries may be appended.
    Ready,
    /// A write or sync of the journal failed, or it is full: a checkpoint
    /// must reset it before it takes entries again.
    NeedsReset,
    /// A segment it covers failed to sync: its entries must survive until
    /// the store is reopened and replays them.
    Frozen,
}

pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    generation: u64,
    /// Where the next entry goes.
    pos: u64,
    capacity: u64,
    state: State,
    /// The entries of the round being built.
    staged: Vec<u8>,
    /// The logs with entries in this generation, by address; holding the
    /// `Arc` keeps the address from being reused while it is here.
    logs: HashMap<usize, Arc<LogInner>>,
}

/// What replay did, for the log line and for tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Replayed {
    pub entries: usize,
    /// Entries whose bytes were not all in their segment and were rewritten.
    pub rewritten: usize,
}

impl Journal {
    /// Replays the journal of the store in `dir` into its logs, then (with a
    /// `capacity` above zero) returns it reset and ready. With `capacity`
    /// zero the journal is off: an existing one is still replayed and
    /// reset, none is created.
    pub fn open(dir: &Path, capacity: u64) -> Result<Option<Journal>> {
        let path = dir.join(JOURNAL_FILE);
        let existing = read_if_needed(&path)?;
        let next_generation = match &existing {
            Some(bytes) => {
                let (generation, replayed) =
                    replay(&path, &dir.join(crate::store::LOGS_DIR), bytes)?;
                if replayed.entries > 0 {
                    tracing::info!(
                        entries = replayed.entries,
                        rewritten = replayed.rewritten,
                        "replayed the journal into the segments"
                    );
                }
                generation.map_or_else(fresh_generation, |g| g.wrapping_add(1))
            }
            None if capacity == 0 => return Ok(None),
            None => fresh_generation(),
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut journal = Journal {
            file,
            path,
            generation: next_generation.wrapping_sub(1),
            pos: JOURNAL_HEADER_LEN as u64,
            capacity,
            state: State::NeedsReset,
            staged: Vec::new(),
            logs: HashMap::new(),
        };
        journal.reset()?;
        if existing.is_none() {
            segment::sync_dir(dir)?;
        }
        Ok((capacity > 0).then_some(journal))
    }

    /// Whether a round of about `bytes` (batches plus
    /// [`JOURNAL_ENTRY_OVERHEAD_MAX`] per log) can be journaled now.
    pub fn has_room(&self, bytes: usize) -> bool {
        self.state == State::Ready && self.pos + bytes as u64 <= self.capacity
    }

    /// Whether the journal can take entries once a checkpoint reset it: it
    /// is not frozen, and a round of `bytes` fits in an empty one.
    pub fn could_take(&self, bytes: usize) -> bool {
        self.state != State::Frozen && (JOURNAL_HEADER_LEN + bytes) as u64 <= self.capacity
    }

    /// Adds an entry for `frames`, written to `log`'s segment `segment` at
    /// `offset`, to the round being built.
    pub fn stage(&mut self, log: &Arc<LogInner>, segment: &Path, offset: u64, frames: &[Vec<u8>]) {
        let mut rel = Vec::with_capacity(64);
        for part in [log.dir.file_name(), segment.file_name()] {
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(part.unwrap_or_default().as_encoded_bytes());
        }
        format::append_journal_entry(&mut self.staged, self.generation, &rel, offset, frames);
        self.logs
            .entry(Arc::as_ptr(log) as usize)
            .or_insert_with(|| log.clone());
    }

    /// Writes the staged entries and syncs the journal: once this returns
    /// `Ok`, the round's batches survive a crash. On an error the journal
    /// needs a reset before it takes entries again.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.staged.is_empty() {
            // Every batch of the round went out with a segment roll, which
            // synced it.
            return Ok(());
        }
        let written = self
            .file
            .write_all_at(&self.staged, self.pos)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => self.pos += self.staged.len() as u64,
            Err(_) => self.state = State::NeedsReset,
        }
        self.staged.clear();
        written
    }

    /// Whether `log` has entries in this generation.
    pub fn covers(&self, log: &LogInner) -> bool {
        self.logs.contains_key(&(std::ptr::from_ref(log) as usize))
    }

    /// Starts a new generation, invalidating every entry. Only after every
    /// segment the entries cover has been synced (a checkpoint). Refused,
    /// and the journal frozen, if one of those segments' logs was poisoned.
    pub fn reset(&mut self) -> Result<()> {
        if self.state == State::Frozen {
            return Err(self.frozen_error());
        }
        if self
            .logs
            .values()
            .any(|log| log.writer.lock().poisoned.is_some())
        {
            tracing::error!(path = %self.path.display(), "a segment covered by the journal failed to sync; the journal keeps its entries until the store is reopened, and appends sync their segments directly");
            self.state = State::Frozen;
            return Err(self.frozen_error());
        }
        let generation = self.generation.wrapping_add(1);
        let header = format::encode_journal_header(generation);
        let written = self
            .file
            .write_all_at(&header, 0)
            .and_then(|()| self.file.sync_data());
        if let Err(source) = written {
            self.state = State::NeedsReset;
            return Err(LogError::Io {
                path: self.path.clone(),
                source,
            });
        }
        self.generation = generation;
        self.pos = JOURNAL_HEADER_LEN as u64;
        self.logs.clear();
        self.state = State::Ready;
        Ok(())
    }

    /// Writes `log`'s batches held by this generation's committed entries
    /// back into their segments and syncs those: after a failed sync, a
    /// segment's pages may be clean in the page cache and yet not on disk,
    /// and the journal's copy is then the only durable one. Returns how
    /// many entries were written. A segment since trimmed is skipped.
    pub fn restore(&self, log: &LogInner) -> Result<usize> {
        if !self.covers(log) {
            return Ok(0);
        }
        let mut bytes = vec![0u8; self.pos as usize];
        self.file
            .read_exact_at(&mut bytes, 0)
            .map_err(io_err(&self.path))?;
        let own_dir = log.dir.file_name().unwrap_or_default().as_encoded_bytes();
        let logs_dir = log.dir.parent().unwrap_or(Path::new("."));
        let mut files: HashMap<PathBuf, Option<File>> = HashMap::new();
        let mut restored = 0;
        let mut at = JOURNAL_HEADER_LEN;
        while at < bytes.len() {
            let Ok((entry, len)) = format::decode_journal_entry(&bytes[at..]) else {
                break;
            };
            if entry.generation != self.generation {
                break;
            }
            at += len;
            let ours = entry.path.split(|&b| b == b'/').next() == Some(own_dir);
            let Some(segment) = segment_path(logs_dir, entry.path).filter(|_| ours) else {
                continue;
            };
            if !files.contains_key(&segment) {
                let file = match OpenOptions::new().write(true).open(&segment) {
                    Ok(f) => Some(f),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                    Err(e) => return Err(io_err(&segment)(e)),
                };
                files.insert(segment.clone(), file);
            }
            if let Some(Some(file)) = files.get(&segment) {
                file.write_all_at(entry.frames, entry.offset)
                    .map_err(io_err(&segment))?;
                restored += 1;
            }
        }
        for (segment, file) in &files {
            if let Some(file) = file {
                file.sync_data().map_err(io_err(segment))?;
            }
        }
        Ok(restored)
    }

    /// After `reopened` was reopened: a journal frozen because a log it
    /// covers failed takes entries again once none of them refuses writes
    /// (the next round checkpoints and resets it first). `reopened` is
    /// skipped: its caller holds its writer lock.
    pub fn thaw(&mut self, reopened: &LogInner) {
        let skip = std::ptr::from_ref(reopened) as usize;
        let failed = self
            .logs
            .iter()
            .any(|(&ptr, log)| ptr != skip && log.writer.lock().poisoned.is_some());
        if self.state == State::Frozen && !failed {
            self.state = State::NeedsReset;
        }
    }

    fn frozen_error(&self) -> LogError {
        LogError::Io {
            path: self.path.clone(),
            source: io::Error::other(
                "the journal holds the only durable copy of batches whose segment failed to sync; reopen the store",
            ),
        }
    }
}

/// The journal's bytes: all of them if its first entry is of its
/// generation, else only the start (after a clean shutdown the journal was
/// just reset, and a start-up should not read the whole file to learn it).
/// `None` if there is no journal.
fn read_if_needed(path: &Path) -> Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LogError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut start = vec![0u8; JOURNAL_HEADER_LEN + JOURNAL_ENTRY_HEADER_LEN];
    let mut read = 0;
    while read < start.len() {
        match file.read_at(&mut start[read..], read as u64) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(LogError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
    }
    start.truncate(read);
    let first_entry_generation = start
        .get(JOURNAL_HEADER_LEN + 8..JOURNAL_HEADER_LEN + 16)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    let header_generation = format::decode_journal_header(&start).ok();
    if header_generation.is_some() && first_entry_generation != header_generation {
        return Ok(Some(start));
    }
    std::fs::read(path).map(Some).map_err(io_err(path))
}

/// A generation for a journal whose header is missing or unreadable: the
/// clock in nanoseconds, so that it matches no entry left in the file.
fn fresh_generation() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// Writes every entry of the journal's generation back to its segment and
/// syncs the segments it changed. Returns the generation (`None` if the
/// header is torn or damaged: then the journal was being reset, after a
/// checkpoint, and holds nothing needed).
fn replay(path: &Path, logs_dir: &Path, bytes: &[u8]) -> Result<(Option<u64>, Replayed)> {
    let generation = match format::decode_journal_header(bytes) {
        Ok(g) => g,
        Err(DecodeError::Version(found)) => {
            return Err(LogError::UnsupportedVersion {
                path: path.to_path_buf(),
                found,
            });
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = ?e, "the journal's header is unreadable; nothing to replay");
            return Ok((None, Replayed::default()));
        }
    };
    let mut done = Replayed::default();
    let mut changed: HashMap<PathBuf, File> = HashMap::new();
    let mut at = JOURNAL_HEADER_LEN;
    while at < bytes.len() {
        // The first torn entry, or one of an older generation, ends it.
        let Ok((entry, len)) = format::decode_journal_entry(&bytes[at..]) else {
            break;
        };
        if entry.generation != generation {
            break;
        }
        let segment = segment_path(logs_dir, entry.path).ok_or_else(|| {
            decode_err(
                path,
                at as u64,
                DecodeError::Corrupt("journal entry names no segment of this store"),
            )
        })?;
        done.entries += 1;
        if let Some(file) = rewrite(&segment, entry.offset, entry.frames)? {
            done.rewritten += 1;
            changed.insert(segment, file);
        }
        at += len;
    }
    for (segment, file) in &changed {
        file.sync_data().map_err(io_err(segment))?;
    }
    Ok((Some(generation), done))
}

/// `<log directory>/<segment file>` under `logs/`, refusing anything else.
fn segment_path(logs_dir: &Path, rel: &[u8]) -> Option<PathBuf> {
    let rel = std::str::from_utf8(rel).ok()?;
    let (dir, file) = rel.split_once('/')?;
    let plain = |s: &str| !s.is_empty() && s != "." && s != ".." && !s.contains('/');
    (plain(dir) && plain(file) && file.ends_with(".seg")).then(|| logs_dir.join(dir).join(file))
}

/// Makes `segment` hold `frames` at `offset`; returns the file if it had to
/// write. A segment that no longer exists is skipped.
fn rewrite(segment: &Path, offset: u64, frames: &[u8]) -> Result<Option<File>> {
    let file = match OpenOptions::new().read(true).write(true).open(segment) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LogError::Io {
                path: segment.to_path_buf(),
                source,
            });
        }
    };
    let mut present = vec![0u8; frames.len()];
    let mut read = 0;
    while read < present.len() {
        match file.read_at(&mut present[read..], offset + read as u64) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(LogError::Io {
                    path: segment.to_path_buf(),
                    source,
                });
            }
        }
    }
    if read == frames.len() && present == frames {
        return Ok(None);
    }
    file.write_all_at(frames, offset).map_err(io_err(segment))?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use super::{Journal, read_if_needed, segment_path};
    use crate::format::{self, JOURNAL_ENTRY_HEADER_LEN, JOURNAL_HEADER_LEN};
    use std::os::unix::fs::FileExt;
    use std::path::Path;

    /// A start-up after a clean shutdown reads the journal's first bytes
    /// only; one after a crash reads all of it.
    #[test]
    fn only_a_journal_with_entries_of_its_generation_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::open(dir.path(), 1 << 20).unwrap().unwrap();
        let path = dir.path().join(super::JOURNAL_FILE);
        let mut entry = Vec::new();
        format::append_journal_entry(
            &mut entry,
            journal.generation,
            b"a/b.seg",
            32,
            &[vec![1; 5000]],
        );
        journal
            .file
            .write_all_at(&entry, JOURNAL_HEADER_LEN as u64)
            .unwrap();
        let whole = read_if_needed(&path).unwrap().unwrap();
        assert_eq!(whole.len(), JOURNAL_HEADER_LEN + entry.len());
        journal.reset().unwrap();
        let start = read_if_needed(&path).unwrap().unwrap();
        assert_eq!(start.len(), JOURNAL_HEADER_LEN + JOURNAL_ENTRY_HEADER_LEN);
        assert_eq!(read_if_needed(&dir.path().join("none")).unwrap(), None);
    }

    #[test]
    fn entry_paths_stay_inside_the_logs_directory() {
        let logs = Path::new("/d/logs");
        assert_eq!(
            segment_path(logs, b"s+shardId-0/00000000000000000000.seg"),
            Some(logs.join("s+shardId-0/00000000000000000000.seg"))
        );
        for bad in [
            &b"../x.seg"[..],
            b"a/../x.seg",
            b"a/b/c.seg",
            b"/a.seg",
            b"a/",
            b"a/b.idx",
            b"a",
            b"a/\xff.seg",
        ] {
            assert_eq!(segment_path(logs, bad), None, "{bad:?}");
        }
    }
}
