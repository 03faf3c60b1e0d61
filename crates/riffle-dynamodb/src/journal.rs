//! The write-ahead journal that makes a group of DynamoDB writes durable
//! with one small write and one `fdatasync`, before the metadata store
//! (redb) holds them durably.
//!
//! A durable redb commit writes every page its copy-on-write B-tree
//! changed, its allocator records and its header, then syncs; the
//! committer's group waits for all of it. With the journal, the committer
//! appends the group's changes as one entry to a file of fixed size and
//! syncs that (the writers are answered then), and only afterwards applies
//! them to redb with a commit that does not sync
//! ([`riffle_log::MetaStore::commit_eventual`]). The file is written full
//! of zeros when it is created, so an append overwrites blocks already
//! allocated and its sync writes no inode.
//!
//! **Checkpoint**: when the next entry would not fit, the committer makes
//! redb durable (`commit(&[])`, which makes every eventual commit before it
//! durable) and only then **resets** the journal (a new generation in the
//! header, synced), which invalidates every entry before it. A group larger
//! than the whole journal is committed to redb durably after a checkpoint,
//! so no older entry can ever be replayed over it.
//!
//! **Replay**: when the service opens, before the tables are loaded, the
//! entries of the current generation are applied to redb in order in one
//! durable commit and the journal is reset. Applying an entry again is
//! harmless: it puts or deletes whole values, so applying the entries
//! after any prefix of them already reached redb leaves each key as the
//! last entry left it.
//!
//! # Format
//!
//! `<data dir>/DYNAMODB_JOURNAL`, [`JOURNAL_BYTES`] long:
//!
//! ```text
//! header, HEADER_LEN (4096) bytes at offset 0:
//!   magic "RFLDDBJ1" | generation u64 LE | crc32c of the 16 bytes before, u32 LE | zeros
//! entries from offset 4096, one after another:
//!   payload length u32 LE | generation u64 LE | crc32c u32 LE of (length, generation, payload)
//!   | payload: op count u32 LE, then per op
//!       1 u8 | key length u32 LE | key (UTF-8) | value length u32 LE | value   (a put)
//!       2 u8 | key length u32 LE | key (UTF-8)                               (a delete)
//! ```
//!
//! Replay reads entries until one is not whole: its length runs past the
//! file, its generation is not the header's, or its checksum fails (a torn
//! write, or what an older generation left there). An entry is written
//! only after the one before it was synced, so nothing valid follows a
//! torn one.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use riffle_log::MetaOp;

pub const JOURNAL_FILE: &str = "DYNAMODB_JOURNAL";
/// The journal's size: at ~300 bytes per lease renewal, 10,000 renewals a
/// second fill it in about 3 s, so checkpoints (two syncs) are rare; it is
/// written once, as zeros, when created.
pub const JOURNAL_BYTES: u64 = 8 * 1024 * 1024;
const HEADER_LEN: usize = 4096;
const MAGIC: &[u8; 8] = b"RFLDDBJ1";
const ENTRY_HEADER_LEN: usize = 16;
const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;

/// The journal file, open for appending entries.
pub struct Journal {
    file: File,
    generation: u64,
    /// Where the next entry goes.
    pos: u64,
    capacity: u64,
    /// The entry being written, kept to reuse its allocation.
    entry: Vec<u8>,
}

/// What [`Journal::append`] did with an entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    /// Written and synced: durable.
    Durable,
    /// Not written: it does not fit after the entries already there.
    Full,
}

impl Journal {
    /// Opens (creating if missing) the journal in `dir`, and returns it with
    /// the changes of its current generation's entries, in order, to be
    /// applied durably before [`Journal::reset`] is called.
    pub fn open(dir: &Path, capacity: u64) -> io::Result<(Journal, Vec<MetaOp>)> {
        let path = dir.join(JOURNAL_FILE);
        if !path.exists() {
            create(dir, &path, capacity)?;
        }
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let bytes = std::fs::read(&path)?;
        let generation = decode_header(&bytes).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: the header is corrupt", path.display()),
            )
        })?;
        let ops = decode_entries(&bytes[HEADER_LEN..], generation);
        let journal = Journal {
            file,
            generation,
            pos: HEADER_LEN as u64,
            capacity: capacity.max(bytes.len() as u64),
            entry: Vec::new(),
        };
        Ok((journal, ops))
    }

    /// Whether `ops` fit in an empty journal.
    pub fn could_take(&self, ops: &[MetaOp]) -> bool {
        (HEADER_LEN + entry_len(ops)) as u64 <= self.capacity
    }

    /// Appends `ops` as one entry and syncs it, unless it does not fit.
    /// After an error the entry may or may not be durable.
    pub fn append(&mut self, ops: &[MetaOp]) -> io::Result<Appended> {
        if self.pos + entry_len(ops) as u64 > self.capacity {
            return Ok(Appended::Full);
        }
        self.entry.clear();
        encode_entry(&mut self.entry, self.generation, ops);
        self.file.write_all_at(&self.entry, self.pos)?;
        self.file.sync_data()?;
        self.pos += self.entry.len() as u64;
        Ok(Appended::Durable)
    }

    /// Starts a new generation, invalidating every entry: only once what
    /// they hold is durable elsewhere.
    pub fn reset(&mut self) -> io::Result<()> {
        let generation = self.generation.wrapping_add(1);
        self.file.write_all_at(&encode_header(generation), 0)?;
        self.file.sync_data()?;
        self.generation = generation;
        self.pos = HEADER_LEN as u64;
        Ok(())
    }
}

/// Writes a new journal, zeros but for its header, beside `path` and
/// renames it into place, so a journal that exists is always whole.
fn create(dir: &Path, path: &Path, capacity: u64) -> io::Result<()> {
    let new = path.with_extension("new");
    let file = File::create(&new)?;
    let zeros = vec![0u8; 1024 * 1024];
    let mut at = 0;
    while at < capacity {
        let n = zeros.len().min((capacity - at) as usize);
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.write_all_at(&encode_header(1), 0)?;
    file.sync_all()?;
    std::fs::rename(&new, path)?;
    File::open(dir)?.sync_all()
}

fn encode_header(generation: u64) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..16].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32c::crc32c(&header[..16]);
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    header
}

fn decode_header(bytes: &[u8]) -> Option<u64> {
    let header = bytes.get(..HEADER_LEN)?;
    let crc = u32::from_le_bytes(header[16..20].try_into().ok()?);
    if &header[..8] != MAGIC || crc32c::crc32c(&header[..16]) != crc {
        return None;
    }
    Some(u64::from_le_bytes(header[8..16].try_into().ok()?))
}

/// The bytes `ops` take as an entry.
fn entry_len(ops: &[MetaOp]) -> usize {
    let op_len = |op: &MetaOp| match op {
        MetaOp::Put { key, value } => 1 + 4 + key.len() + 4 + value.len(),
        MetaOp::Delete { key } => 1 + 4 + key.len(),
    };
    ENTRY_HEADER_LEN + 4 + ops.iter().map(op_len).sum::<usize>()
}

/// Lengths are u32: an entry is at most [`JOURNAL_BYTES`] long, and a
/// longer group never reaches the journal ([`Journal::could_take`]).
fn put_len(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&(len as u32).to_le_bytes());
}

fn encode_entry(out: &mut Vec<u8>, generation: u64, ops: &[MetaOp]) {
    let start = out.len();
    out.extend_from_slice(&[0u8; ENTRY_HEADER_LEN]);
    put_len(out, ops.len());
    for op in ops {
        match op {
            MetaOp::Put { key, value } => {
                out.push(OP_PUT);
                put_len(out, key.len());
                out.extend_from_slice(key.as_bytes());
                put_len(out, value.len());
                out.extend_from_slice(value);
            }
            MetaOp::Delete { key } => {
                out.push(OP_DELETE);
                put_len(out, key.len());
                out.extend_from_slice(key.as_bytes());
            }
        }
    }
    let payload_len = out.len() - start - ENTRY_HEADER_LEN;
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 12].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&out[start..start + 12]),
        &out[start + ENTRY_HEADER_LEN..],
    );
    out[start + 12..start + 16].copy_from_slice(&crc.to_le_bytes());
}

/// The ops of every whole entry of `generation` at the start of `bytes`.
fn decode_entries(mut bytes: &[u8], generation: u64) -> Vec<MetaOp> {
    let mut ops = Vec::new();
    while let Some((entry, rest)) = whole_entry(bytes, generation) {
        match decode_ops(entry) {
            Some(decoded) => ops.extend(decoded),
            None => break,
        }
        bytes = rest;
    }
    ops
}

/// The payload of the entry at the start of `bytes`, if it is whole and of
/// `generation`, and what follows it.
fn whole_entry(bytes: &[u8], generation: u64) -> Option<(&[u8], &[u8])> {
    let header = bytes.get(..ENTRY_HEADER_LEN)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let entry_generation = u64::from_le_bytes(header[4..12].try_into().ok()?);
    let crc = u32::from_le_bytes(header[12..16].try_into().ok()?);
    let payload = bytes.get(ENTRY_HEADER_LEN..ENTRY_HEADER_LEN.checked_add(len)?)?;
    let computed = crc32c::crc32c_append(crc32c::crc32c(&header[..12]), payload);
    (entry_generation == generation && computed == crc)
        .then(|| (payload, &bytes[ENTRY_HEADER_LEN + len..]))
}

/// Reads an entry's ops; `None` if they do not parse (a checksummed entry
/// this code did not write).
fn decode_ops(mut payload: &[u8]) -> Option<Vec<MetaOp>> {
    let count = take_len(&mut payload)?;
    let mut ops = Vec::with_capacity(count.min(payload.len()));
    for _ in 0..count {
        let (&kind, rest) = payload.split_first()?;
        payload = rest;
        let key = String::from_utf8(take(&mut payload)?.to_vec()).ok()?;
        ops.push(match kind {
            OP_PUT => MetaOp::Put {
                key,
                value: take(&mut payload)?.to_vec(),
            },
            OP_DELETE => MetaOp::Delete { key },
            _ => return None,
        });
    }
    payload.is_empty().then_some(ops)
}

fn take_len(bytes: &mut &[u8]) -> Option<usize> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    *bytes = rest;
    Some(u32::from_le_bytes(*len) as usize)
}

fn take<'a>(bytes: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = take_len(bytes)?;
    let (taken, rest) = bytes.split_at_checked(len)?;
    *bytes = rest;
    Some(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, value: &str) -> MetaOp {
        MetaOp::Put {
            key: key.to_owned(),
            value: value.as_bytes().to_vec(),
        }
    }

    fn del(key: &str) -> MetaOp {
        MetaOp::Delete {
            key: key.to_owned(),
        }
    }

    fn keys(ops: &[MetaOp]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                MetaOp::Put { key, value } => {
                    format!("put {key}={}", String::from_utf8_lossy(value))
                }
                MetaOp::Delete { key } => format!("delete {key}"),
            })
            .collect()
    }

    #[test]
    fn entries_round_trip_through_the_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, replay) = Journal::open(dir.path(), 64 * 1024).unwrap();
        assert!(replay.is_empty());
        assert_eq!(
            std::fs::metadata(dir.path().join(JOURNAL_FILE))
                .unwrap()
                .len(),
            64 * 1024,
            "written whole when created"
        );
        let first = [put("dynamodb/item/a", "{\"k\":1}"), del("dynamodb/item/b")];
        let second = [put("dynamodb/item/a", ""), put("ключ", "\u{0}\u{ff}")];
        assert_eq!(journal.append(&first).unwrap(), Appended::Durable);
        assert_eq!(journal.append(&second).unwrap(), Appended::Durable);
        drop(journal);
        let (_, replay) = Journal::open(dir.path(), 64 * 1024).unwrap();
        let expected: Vec<MetaOp> = first.iter().chain(&second).cloned().collect();
        assert_eq!(keys(&replay), keys(&expected));
    }

    #[test]
    fn a_reset_invalidates_every_entry_before_it_even_where_newer_ones_are_shorter() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), 64 * 1024).unwrap();
        journal.append(&[put("k1", &"x".repeat(100))]).unwrap();
        journal.append(&[put("k2", "old")]).unwrap();
        journal.reset().unwrap();
        journal.append(&[put("k3", "new")]).unwrap();
        drop(journal);
        let (_, replay) = Journal::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(keys(&replay), ["put k3=new"]);
    }

    #[test]
    fn replay_stops_at_a_torn_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), 64 * 1024).unwrap();
        journal.append(&[put("k1", "whole")]).unwrap();
        let torn_at = journal.pos;
        journal.append(&[put("k2", "torn")]).unwrap();
        journal.append(&[put("k3", "after")]).unwrap();
        // The second entry's last byte never reached the disk.
        let last = torn_at + entry_len(&[put("k2", "torn")]) as u64 - 1;
        journal.file.write_all_at(b"?", last).unwrap();
        drop(journal);
        let (_, replay) = Journal::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(keys(&replay), ["put k1=whole"]);
    }

    #[test]
    fn an_entry_that_does_not_fit_is_refused_and_fits_after_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let capacity = (HEADER_LEN + 200) as u64;
        let (mut journal, _) = Journal::open(dir.path(), capacity).unwrap();
        let op = [put("k", &"v".repeat(100))];
        assert_eq!(journal.append(&op).unwrap(), Appended::Durable);
        assert_eq!(journal.append(&op).unwrap(), Appended::Full);
        journal.reset().unwrap();
        assert_eq!(journal.append(&op).unwrap(), Appended::Durable);
        assert!(!journal.could_take(&[put("k", &"v".repeat(300))]));
    }

    #[test]
    fn a_corrupt_header_is_refused_not_taken_for_an_empty_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path(), 64 * 1024).unwrap();
        journal.file.write_all_at(b"X", 9).unwrap();
        drop(journal);
        let refused = Journal::open(dir.path(), 64 * 1024)
            .map(|_| ())
            .unwrap_err();
        assert!(
            refused.to_string().contains("header is corrupt"),
            "{refused}"
        );
    }
}
