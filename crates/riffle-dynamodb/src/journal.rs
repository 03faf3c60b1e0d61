//! The write-ahead journal that makes a group of DynamoDB writes durable
//! with one small write and one `fdatasync`, before the metadata store
//! (redb) holds them durably.
//!
//! A durable redb commit writes every page its copy-on-write B-tree
//! changed, its allocator records and its header, then syncs; the
//! committer's group waits for all of it. With the journal, the committer
//! appends the group's changes as one entry to a file of fixed size and
//! syncs that (the writers are answered then); redb gets them later, in
//! one durable commit per file's worth ([`crate::store`]). Each file is
//! written full of zeros when it is created, so an append overwrites
//! blocks already allocated and its sync writes no inode.
//!
//! **Two files**, used in turn: when the next entry does not fit in the
//! active file, the committer asks for that file's changes to be committed
//! to redb (a **checkpoint**, done by another thread while writes go on)
//! and **switches** to the other file, which it first **resets** (a new
//! generation in its header, synced), invalidating every entry in it. It
//! may switch to a file only once that file's checkpoint is done, so a
//! reset never drops a change redb does not hold. A group larger than a
//! whole file is committed to redb durably after both files' changes are,
//! and both files are reset, so no older entry can ever be replayed over it.
//!
//! **Replay**: when the service opens, before the tables are loaded, the
//! entries of both files (each file's current generation only) are applied
//! to redb in generation order in one durable commit, and both files are
//! reset. Applying an entry again is harmless: it puts or deletes whole
//! values, so applying the entries after any prefix of them already
//! reached redb leaves each key as the last entry left it.
//!
//! # Format
//!
//! `<data dir>/DYNAMODB_JOURNAL` and `<data dir>/DYNAMODB_JOURNAL.1`, each
//! [`JOURNAL_BYTES`] long:
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
//! Generations are unique across the two files and grow with each reset,
//! so the file with the lower one holds the older entries. Replay reads a
//! file's entries until one is not whole: its length runs past the file,
//! its generation is not the header's, or its checksum fails (a torn
//! write, or what an older generation left there). An entry is written
//! only after the one before it was synced, so nothing valid follows a
//! torn one.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use riffle_log::MetaOp;

/// The two files' names; a data directory from before the second file
/// existed has only the first, and its entries replay as the older ones.
pub const JOURNAL_FILES: [&str; 2] = ["DYNAMODB_JOURNAL", "DYNAMODB_JOURNAL.1"];
/// Each file's size: at ~300 bytes per lease renewal, 10,000 renewals a
/// second fill one in about 3 s, so checkpoints are rare; it is written
/// once, as zeros, when created.
pub const JOURNAL_BYTES: u64 = 8 * 1024 * 1024;
const HEADER_LEN: usize = 4096;
const MAGIC: &[u8; 8] = b"RFLDDBJ1";
const ENTRY_HEADER_LEN: usize = 16;
const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;

/// The two journal files, one of them active (taking entries).
pub struct Journal {
    files: [JournalFile; 2],
    active: usize,
    /// The generation the next reset gives: above both files' own.
    next_generation: u64,
    /// The entry being written, kept to reuse its allocation.
    entry: Vec<u8>,
}

/// One of the journal's files.
struct JournalFile {
    file: File,
    generation: u64,
    /// Where the next entry goes.
    pos: u64,
    capacity: u64,
}

/// What [`Journal::append`] did with an entry.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    /// Written and synced: durable.
    Durable,
    /// Not written: it does not fit after the entries already in the
    /// active file.
    Full,
}

impl Journal {
    /// Opens (creating if missing) the journal's files in `dir`, and
    /// returns it with the changes of the files' current generations, in
    /// order, to be applied durably before [`Journal::reset_all`] is called.
    pub fn open(dir: &Path, capacity: u64) -> io::Result<(Journal, Vec<MetaOp>)> {
        let (first, first_ops) = JournalFile::open(dir, JOURNAL_FILES[0], capacity)?;
        let (second, second_ops) = JournalFile::open(dir, JOURNAL_FILES[1], capacity)?;
        let next_generation = first.generation.max(second.generation) + 1;
        let replay = if first.generation <= second.generation {
            [first_ops, second_ops].concat()
        } else {
            [second_ops, first_ops].concat()
        };
        let journal = Journal {
            files: [first, second],
            active: 0,
            next_generation,
            entry: Vec::new(),
        };
        Ok((journal, replay))
    }

    /// Whether `ops` fit in an empty file.
    pub fn could_take(&self, ops: &[MetaOp]) -> bool {
        (HEADER_LEN + entry_len(ops)) as u64 <= self.files[self.active].capacity
    }

    /// Appends `ops` as one entry to the active file and syncs it, unless
    /// it does not fit. After an error the entry may or may not be durable.
    pub fn append(&mut self, ops: &[MetaOp]) -> io::Result<Appended> {
        let file = &mut self.files[self.active];
        if file.pos + entry_len(ops) as u64 > file.capacity {
            return Ok(Appended::Full);
        }
        self.entry.clear();
        encode_entry(&mut self.entry, file.generation, ops);
        file.file.write_all_at(&self.entry, file.pos)?;
        file.file.sync_data()?;
        file.pos += self.entry.len() as u64;
        Ok(Appended::Durable)
    }

    /// Resets the other file and makes it the active one: only once what
    /// it holds is durable elsewhere.
    pub fn switch(&mut self) -> io::Result<()> {
        let other = 1 - self.active;
        self.reset(other)?;
        self.active = other;
        Ok(())
    }

    /// Resets both files, invalidating every entry: only once what they
    /// hold is durable elsewhere.
    pub fn reset_all(&mut self) -> io::Result<()> {
        let older = usize::from(self.files[1].generation < self.files[0].generation);
        self.reset(older)?;
        self.reset(1 - older)?;
        self.active = 1 - older;
        Ok(())
    }

    fn reset(&mut self, index: usize) -> io::Result<()> {
        let generation = self.next_generation;
        let file = &mut self.files[index];
        file.file.write_all_at(&encode_header(generation), 0)?;
        file.file.sync_data()?;
        file.generation = generation;
        file.pos = HEADER_LEN as u64;
        self.next_generation += 1;
        Ok(())
    }
}

impl JournalFile {
    /// Opens (creating if missing) the file `name` in `dir`, with the
    /// changes of its current generation's entries.
    fn open(dir: &Path, name: &str, capacity: u64) -> io::Result<(JournalFile, Vec<MetaOp>)> {
        let path = dir.join(name);
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
        let journal_file = JournalFile {
            file,
            generation,
            pos: HEADER_LEN as u64,
            capacity: capacity.max(bytes.len() as u64),
        };
        Ok((journal_file, ops))
    }
}

/// Writes a new journal file, zeros but for its header (generation 0:
/// below any reset's), beside `path` and renames it into place, so a
/// journal file that exists is always whole.
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
    file.write_all_at(&encode_header(0), 0)?;
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

    fn journal_len(dir: &Path, name: &str) -> u64 {
        std::fs::metadata(dir.join(name)).unwrap().len()
    }

    #[test]
    fn entries_round_trip_through_the_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let capacity = (HEADER_LEN + 200) as u64;
        let (mut journal, replay) = Journal::open(dir.path(), capacity).unwrap();
        assert!(replay.is_empty());
        for name in JOURNAL_FILES {
            assert_eq!(
                journal_len(dir.path(), name),
                capacity,
                "{name} written whole"
            );
        }
        let first = [put("dynamodb/item/a", "{\"k\":1}"), del("dynamodb/item/b")];
        let second = [put("dynamodb/item/a", ""), put("ключ", "\u{0}\u{ff}")];
        let third = [put("dynamodb/item/c", &"x".repeat(100))];
        assert_eq!(journal.append(&first).unwrap(), Appended::Durable);
        assert_eq!(journal.append(&second).unwrap(), Appended::Durable);
        assert_eq!(journal.append(&third).unwrap(), Appended::Full);
        // The first file's entries are still valid after a switch: until
        // the next one, a crash replays them before the second file's.
        journal.switch().unwrap();
        assert_eq!(journal.append(&third).unwrap(), Appended::Durable);
        drop(journal);
        let (_, replay) = Journal::open(dir.path(), capacity).unwrap();
        let expected: Vec<MetaOp> = first.iter().chain(&second).chain(&third).cloned().collect();
        assert_eq!(keys(&replay), keys(&expected));
    }

    #[test]
    fn the_older_file_replays_first_whichever_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let capacity = (HEADER_LEN + 150) as u64;
        let (mut journal, _) = Journal::open(dir.path(), capacity).unwrap();
        let op = |n: usize| [put(&format!("k{n}"), &"v".repeat(40))];
        for n in 0..5 {
            if journal.append(&op(n)).unwrap() == Appended::Full {
                journal.switch().unwrap();
                assert_eq!(journal.append(&op(n)).unwrap(), Appended::Durable);
            }
        }
        // Two entries fit in a file: k0 k1 | k2 k3 | k4 (the first file
        // again, now newer than the second).
        assert_eq!(journal.active, 0);
        drop(journal);
        let (_, replay) = Journal::open(dir.path(), capacity).unwrap();
        let expected: Vec<MetaOp> = [2, 3, 4].iter().flat_map(|&n| op(n)).collect();
        assert_eq!(keys(&replay), keys(&expected));
    }

    #[test]
    fn a_reset_invalidates_every_entry_before_it_even_where_newer_ones_are_shorter() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), 64 * 1024).unwrap();
        journal.append(&[put("k1", &"x".repeat(100))]).unwrap();
        journal.append(&[put("k2", "old")]).unwrap();
        journal.switch().unwrap();
        journal.append(&[put("k3", "other file")]).unwrap();
        journal.switch().unwrap();
        journal.append(&[put("k4", "new")]).unwrap();
        drop(journal);
        let (mut journal, replay) = Journal::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(keys(&replay), ["put k3=other file", "put k4=new"]);
        journal.reset_all().unwrap();
        drop(journal);
        let (_, replay) = Journal::open(dir.path(), 64 * 1024).unwrap();
        assert!(replay.is_empty(), "{:?}", keys(&replay));
    }

    #[test]
    fn a_journal_from_before_the_second_file_replays_and_gets_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), 64 * 1024).unwrap();
        journal.append(&[put("k1", "kept")]).unwrap();
        drop(journal);
        std::fs::remove_file(dir.path().join(JOURNAL_FILES[1])).unwrap();
        let (_, replay) = Journal::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(keys(&replay), ["put k1=kept"]);
        assert_eq!(journal_len(dir.path(), JOURNAL_FILES[1]), 64 * 1024);
    }

    #[test]
    fn replay_stops_at_a_torn_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(dir.path(), 64 * 1024).unwrap();
        journal.append(&[put("k1", "whole")]).unwrap();
        let torn_at = journal.files[0].pos;
        journal.append(&[put("k2", "torn")]).unwrap();
        journal.append(&[put("k3", "after")]).unwrap();
        // The second entry's last byte never reached the disk.
        let last = torn_at + entry_len(&[put("k2", "torn")]) as u64 - 1;
        journal.files[0].file.write_all_at(b"?", last).unwrap();
        drop(journal);
        let (_, replay) = Journal::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(keys(&replay), ["put k1=whole"]);
    }

    #[test]
    fn an_entry_that_does_not_fit_is_refused_and_fits_after_a_switch() {
        let dir = tempfile::tempdir().unwrap();
        let capacity = (HEADER_LEN + 200) as u64;
        let (mut journal, _) = Journal::open(dir.path(), capacity).unwrap();
        let op = [put("k", &"v".repeat(100))];
        assert_eq!(journal.append(&op).unwrap(), Appended::Durable);
        assert_eq!(journal.append(&op).unwrap(), Appended::Full);
        journal.switch().unwrap();
        assert_eq!(journal.append(&op).unwrap(), Appended::Durable);
        assert!(!journal.could_take(&[put("k", &"v".repeat(300))]));
    }

    #[test]
    fn a_corrupt_header_is_refused_not_taken_for_an_empty_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path(), 64 * 1024).unwrap();
        journal.files[1].file.write_all_at(b"X", 9).unwrap();
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
