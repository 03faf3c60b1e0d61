//! The record payloads the bench writes, and the verifier that checks each
//! one comes back exactly once and intact.
//!
//! Every payload starts with a header that names the run and the record and
//! carries a checksum over the whole payload, so a reader can tell a lost,
//! duplicated, corrupted or foreign (another run's) record apart:
//!
//! ```text
//! offset  size  field
//!      0     4  magic "RFB1"
//!      4     4  run id, u32 little-endian (random per run)
//!      8     8  record id, u64 little-endian (0, 1, 2, … per run)
//!     16     8  sent at: nanoseconds since the run's start, u64 LE
//!     24     4  CRC32C of bytes 0..24 and 28..end, u32 LE
//!     28     …  filler up to --record-size, from a pre-generated pool
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use crate::idset::IdSet;

/// Marks a bench payload (and the layout version).
const MAGIC: [u8; 4] = *b"RFB1";
/// Bytes before the filler.
pub const HEADER_LEN: usize = 28;
/// Kinesis's largest record data blob (1 MiB; PutRecord's `Data` max in
/// the API model).
pub const RECORD_SIZE_MAX: usize = 1 << 20;
/// The filler pool: bytes are taken from it at a record-dependent offset,
/// so payloads differ without generating random bytes per record.
const FILLER_LEN: usize = RECORD_SIZE_MAX + 4096;

const _: () = assert!(HEADER_LEN <= RECORD_SIZE_MAX);

/// Writes payloads of one size for one run.
pub struct PayloadMaker {
    run: u32,
    size: usize,
    filler: Vec<u8>,
}

impl PayloadMaker {
    /// `size` must be in `HEADER_LEN..=RECORD_SIZE_MAX` (checked by the
    /// argument parser).
    pub fn new(run: u32, size: usize) -> PayloadMaker {
        // A cheap xorshift fill: the bytes only need to vary, not be secret.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(run);
        let filler_len = size.saturating_sub(HEADER_LEN) + 4096;
        let mut filler = Vec::with_capacity(filler_len.min(FILLER_LEN));
        while filler.len() < filler_len.min(FILLER_LEN) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            filler.extend_from_slice(&state.to_le_bytes());
        }
        PayloadMaker { run, size, filler }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn run(&self) -> u32 {
        self.run
    }

    /// Writes record `id`'s payload into `out` (cleared first, so one buffer
    /// serves every record of a worker).
    pub fn write(&self, id: u64, sent_ns: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.run.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&sent_ns.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let filler_len = self.size - HEADER_LEN;
        let start = (id.wrapping_mul(61) % 4096) as usize;
        out.extend_from_slice(&self.filler[start..start + filler_len]);
        let crc = checksum(out);
        out[24..28].copy_from_slice(&crc.to_le_bytes());
    }
}

fn checksum(payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&payload[..24]), &payload[28..])
}

/// What a payload read back turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// This run's record `id`, intact, sent `sent_ns` after the run began.
    Ours { id: u64, sent_ns: u64 },
    /// Intact, but written by another run (a reused stream).
    Foreign,
    /// Not a bench payload, or its checksum does not match.
    Corrupt,
}

/// Reads a payload's header and checks its checksum.
pub fn check(run: u32, payload: &[u8]) -> Checked {
    if payload.len() < HEADER_LEN || payload[..4] != MAGIC {
        return Checked::Corrupt;
    }
    let word = |at: usize| u64::from_le_bytes(payload[at..at + 8].try_into().unwrap_or([0; 8]));
    let stored = u32::from_le_bytes(payload[24..28].try_into().unwrap_or([0; 4]));
    if stored != checksum(payload) {
        return Checked::Corrupt;
    }
    let payload_run = u32::from_le_bytes(payload[4..8].try_into().unwrap_or([0; 4]));
    if payload_run != run {
        return Checked::Foreign;
    }
    Checked::Ours {
        id: word(8),
        sent_ns: word(16),
    }
}

/// Tracks which record ids were read (lock-free, so every shard's reader
/// marks records concurrently) and which the endpoint acknowledged.
#[derive(Default)]
pub struct Verifier {
    run: u32,
    seen: IdSet,
    acknowledged: IdSet,
    received: AtomicU64,
    acknowledged_count: AtomicU64,
    duplicates: AtomicU64,
    corrupt: AtomicU64,
    foreign: AtomicU64,
}

/// The verdict over a run: every acknowledged record once and intact.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Verdict {
    /// Records the endpoint acknowledged, which must all come back.
    pub expected: u64,
    /// Distinct records of this run read back.
    pub received: u64,
    /// Acknowledged records never read back.
    pub lost: u64,
    /// Records read back more than once (each extra read counts).
    pub duplicates: u64,
    /// Payloads whose checksum or header does not match.
    pub corrupt: u64,
    /// Intact records of other runs (a reused stream); not an error.
    pub foreign: u64,
    /// No loss, no duplicate, no corruption.
    pub passed: bool,
}

impl Verifier {
    /// A verifier for the records of run `run`.
    pub fn new(run: u32) -> Verifier {
        Verifier {
            run,
            ..Verifier::default()
        }
    }

    /// Notes that the endpoint acknowledged record `id`.
    pub fn acknowledge(&self, id: u64) {
        if self.acknowledged.insert(id) == Some(false) {
            self.acknowledged_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Checks one payload read back; returns when it was sent if it is one
    /// of ours, read for the first time.
    pub fn observe(&self, payload: &[u8]) -> Option<u64> {
        match check(self.run, payload) {
            Checked::Ours { id, sent_ns } => match self.seen.insert(id) {
                Some(false) => {
                    self.received.fetch_add(1, Ordering::Relaxed);
                    Some(sent_ns)
                }
                Some(true) => {
                    self.duplicates.fetch_add(1, Ordering::Relaxed);
                    None
                }
                // An id past anything a run writes, under our run id and a
                // valid checksum, can only be a bug: call it corrupt.
                None => {
                    self.corrupt.fetch_add(1, Ordering::Relaxed);
                    None
                }
            },
            Checked::Corrupt => {
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                None
            }
            Checked::Foreign => {
                self.foreign.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Distinct records of this run read so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Records acknowledged so far.
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged_count.load(Ordering::Relaxed)
    }

    /// Whether every acknowledged record has been read.
    pub fn complete(&self) -> bool {
        self.received() >= self.acknowledged()
    }

    /// The verdict over record ids `0..issued`.
    pub fn verdict(&self, issued: u64) -> Verdict {
        let lost = (0..issued)
            .filter(|&id| self.acknowledged.contains(id) && !self.seen.contains(id))
            .count() as u64;
        let duplicates = self.duplicates.load(Ordering::Relaxed);
        let corrupt = self.corrupt.load(Ordering::Relaxed);
        Verdict {
            expected: self.acknowledged(),
            received: self.received(),
            lost,
            duplicates,
            corrupt,
            foreign: self.foreign.load(Ordering::Relaxed),
            passed: lost == 0 && duplicates == 0 && corrupt == 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_through_their_header() {
        let maker = PayloadMaker::new(7, 100);
        let mut out = Vec::new();
        maker.write(42, 1234, &mut out);
        assert_eq!(out.len(), 100);
        assert_eq!(
            check(7, &out),
            Checked::Ours {
                id: 42,
                sent_ns: 1234
            }
        );
        assert_eq!(check(8, &out), Checked::Foreign);
    }

    #[test]
    fn any_flipped_byte_is_corruption() {
        let maker = PayloadMaker::new(1, HEADER_LEN + 8);
        let mut out = Vec::new();
        maker.write(3, 0, &mut out);
        for at in 0..out.len() {
            let mut bad = out.clone();
            bad[at] ^= 0x10;
            assert_eq!(check(1, &bad), Checked::Corrupt, "flip at {at}");
        }
        assert_eq!(check(1, &out[..HEADER_LEN - 1]), Checked::Corrupt);
    }

    #[test]
    fn the_verifier_finds_lost_duplicated_and_corrupt_records() {
        let maker = PayloadMaker::new(9, 64);
        let verifier = Verifier::new(9);
        let mut out = Vec::new();
        for id in 0..4 {
            verifier.acknowledge(id);
        }
        for id in [0, 1, 1, 3] {
            maker.write(id, 0, &mut out);
            verifier.observe(&out);
        }
        verifier.observe(b"not a payload");
        let verdict = verifier.verdict(4);
        assert_eq!(verdict.expected, 4);
        assert_eq!(verdict.received, 3);
        assert_eq!(verdict.lost, 1, "record 2");
        assert_eq!(verdict.duplicates, 1);
        assert_eq!(verdict.corrupt, 1);
        assert!(!verdict.passed);
        let clean = Verifier::new(9);
        for id in 0..2 {
            clean.acknowledge(id);
            maker.write(id, 0, &mut out);
            clean.observe(&out);
        }
        assert!(clean.complete());
        assert!(clean.verdict(2).passed);
    }
}
