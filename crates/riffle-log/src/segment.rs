//! Segment files: opening them on demand, reading frames back with positioned
//! reads, scanning them to recover or rebuild an index, and the small file
//! helpers (durable create/rename, directory sync) every writer path uses.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;

use crate::files::{self, ReadFiles};
use crate::format::{self, DecodeError, INDEX_INTERVAL_BYTES, IndexEntry, SEGMENT_HEADER_LEN};
use crate::{LogError, Result, Seq};

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| io_error(path.to_path_buf(), source)
}

/// An OS error on `path`: `DiskFull` for a full filesystem or quota
/// (`ENOSPC`, `EDQUOT`), `Io` for anything else.
pub(crate) fn io_error(path: PathBuf, source: io::Error) -> LogError {
    match source.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => LogError::DiskFull { path, source },
        _ => LogError::Io { path, source },
    }
}

pub(crate) fn corrupt(path: &Path, offset: u64, reason: &'static str) -> LogError {
    LogError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    }
}

/// Maps a decode failure of the structure at `offset` in `path` to an error.
pub(crate) fn decode_err(path: &Path, offset: u64, e: DecodeError) -> LogError {
    match e {
        DecodeError::Short => corrupt(path, offset, "structure is cut short"),
        DecodeError::Corrupt(reason) => corrupt(path, offset, reason),
        DecodeError::Version(found) => LogError::UnsupportedVersion {
            path: path.to_path_buf(),
            found,
        },
    }
}

pub(crate) fn segment_file_name(first_seq: Seq) -> String {
    format!("{first_seq:020}.seg")
}

pub(crate) fn index_file_name(first_seq: Seq) -> String {
    format!("{first_seq:020}.idx")
}

/// Makes a directory's entries (created, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Writes `bytes` to `path` so that after a crash the file is either absent,
/// or its old version, or wholly the new one: write a temp file, sync it,
/// rename it over, sync the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> io::Result<()> {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all_at(bytes, 0)?;
        f.sync_all()
    };
    write().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Creates a new, empty segment file (header only), durably: the file and its
/// directory entry are synced before it receives any batch.
pub(crate) fn create_segment(dir: &Path, first_seq: Seq) -> Result<(PathBuf, File)> {
    let path = dir.join(segment_file_name(first_seq));
    let create = || -> io::Result<File> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        f.write_all_at(&format::encode_segment_header(first_seq), 0)?;
        f.sync_all()?;
        Ok(f)
    };
    let f = create().map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok((path, f))
}

/// One segment file. Readers open it on demand through the store's
/// [`ReadFiles`] cache, so an idle log holds no descriptor and a long one
/// not one per segment.
pub(crate) struct Segment {
    /// This handle's key in [`ReadFiles`] (see `files` on why not the path).
    id: u64,
    pub path: PathBuf,
    pub first_seq: Seq,
    files: Arc<ReadFiles>,
    /// Sparse index (one entry per ~[`INDEX_INTERVAL_BYTES`]). Grows while
    /// the segment is active; the lock is only held for a binary search.
    pub index: RwLock<Vec<IndexEntry>>,
}

impl Segment {
    pub fn new(
        files: &Arc<ReadFiles>,
        path: PathBuf,
        first_seq: Seq,
        index: Vec<IndexEntry>,
    ) -> Segment {
        Segment {
            id: files::next_segment_id(),
            path,
            first_seq,
            files: files.clone(),
            index: RwLock::new(index),
        }
    }

    /// A read-only handle of the file, from the cache or opened now. The
    /// caller's `Arc` keeps it open even if the cache evicts it meanwhile.
    pub fn file(&self) -> Result<Arc<File>> {
        if let Some(f) = self.files.get(self.id) {
            return Ok(f);
        }
        let f = File::open(&self.path).map_err(io_err(&self.path))?;
        // Sealed segments are trusted from their index at open; their header
        // (magic, version, first seq) is checked here, whenever the file is
        // opened for reading.
        let mut head = [0u8; SEGMENT_HEADER_LEN as usize];
        f.read_exact_at(&mut head, 0).map_err(io_err(&self.path))?;
        match format::decode_segment_header(&head) {
            Ok(first) if first == self.first_seq => {}
            Ok(_) => {
                return Err(corrupt(
                    &self.path,
                    16,
                    "segment header names another first seq",
                ));
            }
            Err(e) => return Err(decode_err(&self.path, 0, e)),
        }
        Ok(self.files.insert(self.id, f))
    }

    /// Closes the cached read handle now (the file is being deleted, so its
    /// space is freed at once rather than when the last snapshot goes).
    pub fn close_file(&self) {
        self.files.forget(self.id);
    }

    /// Where a read of the records `[from, until)` starts, and, if the index
    /// knows one, an offset by which all of them have ended: the first
    /// indexed batch starting at or after `until` holds none of them.
    pub fn window_for_seqs(&self, from: Seq, until: Seq) -> (u64, Option<u64>) {
        let ix = self.index.read();
        let i = ix.partition_point(|e| e.seq <= from);
        let start = if i == 0 {
            SEGMENT_HEADER_LEN
        } else {
            ix[i - 1].offset
        };
        let j = ix.partition_point(|e| e.seq < until);
        (start, ix.get(j).map(|e| e.offset))
    }

    /// Where to scan for the first batch arriving at or after `at_ms`:
    /// `(start offset, end offset bound, seq of the next indexed batch)`.
    pub fn window_for_time(&self, at_ms: i64) -> (u64, Option<(u64, Seq)>) {
        let ix = self.index.read();
        let i = ix.partition_point(|e| e.arrival_ms < at_ms);
        let start = if i == 0 {
            SEGMENT_HEADER_LEN
        } else {
            ix[i - 1].offset
        };
        (start, ix.get(i).map(|e| (e.offset, e.seq)))
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.files.forget(self.id);
    }
}

/// Why a [`FrameCursor`] stopped.
#[derive(Debug)]
pub(crate) enum CursorError {
    Io(io::Error),
    /// The bytes at `offset` are not a valid frame.
    Bad {
        offset: u64,
        reason: &'static str,
    },
    /// A frame at `offset` runs past the end of the range (a torn tail).
    Torn {
        offset: u64,
    },
}

impl CursorError {
    pub fn into_log_error(self, path: &Path) -> LogError {
        match self {
            CursorError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                corrupt(path, 0, "segment file is shorter than its index says")
            }
            CursorError::Io(source) => LogError::Io {
                path: path.to_path_buf(),
                source,
            },
            CursorError::Bad { offset, reason } => corrupt(path, offset, reason),
            CursorError::Torn { offset } => {
                corrupt(path, offset, "batch runs past the end of the segment")
            }
        }
    }
}

/// Reads frames from `[pos, end)` of a segment with positioned
/// reads of about `chunk` bytes; each returned frame is a slice of the
/// shared read buffer (no copy).
pub(crate) struct FrameCursor<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    chunk: usize,
    buf: Bytes,
    buf_at: u64,
    /// Reads before this offset stop at it: the caller needs nothing beyond
    /// (see [`FrameCursor::needs_until`]), so no buffer is faulted in for it.
    wanted_end: u64,
}

impl<'a> FrameCursor<'a> {
    pub fn new(file: &'a File, pos: u64, end: u64, chunk: usize) -> FrameCursor<'a> {
        FrameCursor {
            file,
            pos,
            end,
            chunk,
            buf: Bytes::new(),
            buf_at: pos,
            wanted_end: pos,
        }
    }

    /// Tells the cursor that the caller will probably stop at `end`: reads
    /// up to it are sized to reach just it, not a whole chunk. Frames
    /// beyond it are still read (in chunks) if asked for.
    pub fn needs_until(mut self, end: Option<u64>) -> FrameCursor<'a> {
        self.wanted_end = end.unwrap_or(self.pos);
        self
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Makes the buffer cover `[self.pos, self.pos + need)`.
    fn fill(&mut self, need: usize) -> Result<(), CursorError> {
        let have_from = self.pos.saturating_sub(self.buf_at) as usize;
        if self.pos >= self.buf_at && have_from + need <= self.buf.len() {
            return Ok(());
        }
        let want = match self.wanted_end.checked_sub(self.pos) {
            Some(left) if left > 0 => self.chunk.min(usize::try_from(left).unwrap_or(usize::MAX)),
            _ => self.chunk,
        };
        let len = need.max(want).min((self.end - self.pos) as usize);
        self.buf = read_shared(self.file, self.pos, len).map_err(CursorError::Io)?;
        self.buf_at = self.pos;
        Ok(())
    }

    /// The next frame and its offset. Only its length is checked here; the
    /// caller verifies it with [`format::decode_batch`] (one checksum pass).
    pub fn next_frame(&mut self) -> Result<Option<(u64, Bytes)>, CursorError> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let offset = self.pos;
        if self.end - offset < 8 {
            return Err(CursorError::Torn { offset });
        }
        self.fill(8)?;
        let at = (offset - self.buf_at) as usize;
        let total = format::frame_len(&self.buf[at..]).map_err(|e| bad(offset, e))?;
        if offset + total as u64 > self.end {
            return Err(CursorError::Torn { offset });
        }
        self.fill(total)?;
        let at = (offset - self.buf_at) as usize;
        let frame = self.buf.slice(at..at + total);
        self.pos += total as u64;
        Ok(Some((offset, frame)))
    }
}

thread_local! {
    /// The read buffer of this thread. Reads hand out slices of it as
    /// `Bytes`; once the caller has dropped them, the next read reuses the
    /// same (already faulted-in) memory instead of allocating afresh. It
    /// keeps the largest read chunk a thread has needed (at most 16 MiB).
    static READ_BUF: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Reads `len` bytes at `pos` into a shareable buffer.
fn read_shared(file: &File, pos: u64, len: usize) -> io::Result<Bytes> {
    READ_BUF.with_borrow_mut(|buf| {
        buf.clear();
        // Reclaims the previous allocation when no slice of it is alive.
        buf.reserve(len);
        let read = pread_exact_uninit(file, pos, &mut buf.spare_capacity_mut()[..len]);
        if read.is_ok() {
            // SAFETY: pread_exact_uninit initialised all `len` bytes.
            unsafe { buf.set_len(len) };
        }
        let bytes = buf.split().freeze();
        read.map(|()| bytes)
    })
}

/// `read_exact_at` into uninitialised memory: zeroing a multi-MiB buffer
/// first cost about a third of a cached read's CPU time.
fn pread_exact_uninit(
    file: &File,
    mut pos: u64,
    mut dst: &mut [MaybeUninit<u8>],
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    while !dst.is_empty() {
        let offset =
            libc::off_t::try_from(pos).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: the pointer and length describe `dst`, which is valid for
        // writes; pread writes at most that many bytes and never reads them.
        let n =
            unsafe { libc::pread(file.as_raw_fd(), dst.as_mut_ptr().cast(), dst.len(), offset) };
        match n {
            0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            n if n < 0 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            n => {
                // 0 < n <= dst.len(), so the cast is lossless.
                let n = n as usize;
                dst = &mut dst[n..];
                pos += n as u64;
            }
        }
    }
    Ok(())
}

/// The most buffers one `pwritev` takes (Linux's `IOV_MAX`).
const IOVECS_PER_CALL_MAX: usize = 1024;

/// Writes `frames` back to back at `pos`, with as few `pwritev` calls as
/// the kernel allows: a group-commit round writes all its batches for one
/// log in one system call instead of one each.
pub(crate) fn write_all_vectored_at(
    file: &File,
    frames: &[Vec<u8>],
    mut pos: u64,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut frames = frames;
    // Bytes of frames[0] already written by a partial write.
    let mut skip = 0usize;
    while let Some(first) = frames.first() {
        if frames.len() == 1 {
            return file.write_all_at(&first[skip..], pos);
        }
        let n = frames.len().min(IOVECS_PER_CALL_MAX);
        let iovecs: Vec<libc::iovec> = frames[..n]
            .iter()
            .enumerate()
            .map(|(i, frame)| {
                let part = if i == 0 { &frame[skip..] } else { &frame[..] };
                libc::iovec {
                    iov_base: part.as_ptr().cast_mut().cast(),
                    iov_len: part.len(),
                }
            })
            .collect();
        let offset =
            libc::off_t::try_from(pos).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: every iovec describes a live, initialised slice of
        // `frames`, which outlives the call; pwritev only reads them. `n`
        // is at most IOV_MAX, so the count fits in a c_int.
        let written =
            unsafe { libc::pwritev(file.as_raw_fd(), iovecs.as_ptr(), n as libc::c_int, offset) };
        if written < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if written == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        // 0 < written <= the iovecs' total, so the cast is lossless.
        let mut written = written as usize;
        pos += written as u64;
        while let Some(first) = frames.first() {
            let left = first.len() - skip;
            if written < left {
                skip += written;
                break;
            }
            written -= left;
            skip = 0;
            frames = &frames[1..];
        }
    }
    Ok(())
}

fn bad(offset: u64, e: DecodeError) -> CursorError {
    match e {
        DecodeError::Short => CursorError::Torn { offset },
        DecodeError::Corrupt(reason) => CursorError::Bad { offset, reason },
        DecodeError::Version(_) => CursorError::Bad {
            offset,
            reason: "unexpected version field",
        },
    }
}

/// What a scan of a segment found valid.
#[derive(Debug)]
pub(crate) struct ScanOutcome {
    /// End of the last valid batch.
    pub valid_len: u64,
    pub end_seq: Seq,
    pub last_arrival_ms: Option<i64>,
    pub entries: Vec<IndexEntry>,
    /// Set when the scan stopped before the end of the file.
    pub stopped: Option<CursorError>,
}

/// Reads a segment's batches from the header to `file_len`, verifying each
/// (checksum, contiguous sequence numbers, non-decreasing arrival times), and
/// builds its sparse index. Stops at the first invalid batch.
pub(crate) fn scan_segment(file: &File, first_seq: Seq, file_len: u64) -> ScanOutcome {
    const SCAN_CHUNK_BYTES: usize = 4 * 1024 * 1024;
    let mut cur = FrameCursor::new(file, SEGMENT_HEADER_LEN, file_len, SCAN_CHUNK_BYTES);
    let mut out = ScanOutcome {
        valid_len: SEGMENT_HEADER_LEN,
        end_seq: first_seq,
        last_arrival_ms: None,
        entries: Vec::new(),
        stopped: None,
    };
    let mut indexer = Indexer::default();
    loop {
        match cur.next_frame() {
            Ok(None) => break,
            Ok(Some((offset, frame))) => {
                let b = match format::decode_batch(&frame) {
                    Ok(b) => b,
                    Err(e) => {
                        out.stopped = Some(bad(offset, e));
                        break;
                    }
                };
                if b.first_seq != out.end_seq {
                    out.stopped = Some(CursorError::Bad {
                        offset,
                        reason: "batch sequence number out of order",
                    });
                    break;
                }
                if out.last_arrival_ms.is_some_and(|a| b.arrival_ms < a) {
                    out.stopped = Some(CursorError::Bad {
                        offset,
                        reason: "batch arrival time goes backwards",
                    });
                    break;
                }
                if let Some(e) = indexer.observe(offset, b.first_seq, b.arrival_ms) {
                    out.entries.push(e);
                }
                out.end_seq = b.end_seq();
                out.last_arrival_ms = Some(b.arrival_ms);
                out.valid_len = cur.pos();
            }
            Err(e) => {
                out.stopped = Some(e);
                break;
            }
        }
    }
    out
}

/// Decides which batches get a sparse index entry: the first of a segment,
/// then the first at least [`INDEX_INTERVAL_BYTES`] past the previous entry.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Indexer {
    last_offset: Option<u64>,
}

impl Indexer {
    pub fn resume(entries: &[IndexEntry]) -> Indexer {
        Indexer {
            last_offset: entries.last().map(|e| e.offset),
        }
    }

    pub fn observe(&mut self, offset: u64, seq: Seq, arrival_ms: i64) -> Option<IndexEntry> {
        match self.last_offset {
            Some(last) if offset - last < INDEX_INTERVAL_BYTES => None,
            _ => {
                self.last_offset = Some(offset);
                Some(IndexEntry {
                    seq,
                    offset,
                    arrival_ms,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_writes_put_every_frame_back_to_back_at_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        // More frames than one pwritev takes, of uneven sizes (some empty).
        for count in [0, 1, 2, IOVECS_PER_CALL_MAX, IOVECS_PER_CALL_MAX * 2 + 3] {
            let frames: Vec<Vec<u8>> = (0..count)
                .map(|i| vec![(i % 251) as u8; i % 7 * 13])
                .collect();
            let path = dir.path().join(format!("{count}"));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .unwrap();
            file.write_all_at(b"head", 0).unwrap();
            write_all_vectored_at(&file, &frames, 4).unwrap();
            let mut expected = b"head".to_vec();
            frames.iter().for_each(|f| expected.extend_from_slice(f));
            assert_eq!(std::fs::read(&path).unwrap(), expected, "{count} frames");
        }
    }

    #[test]
    fn vectored_write_errors_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read-only");
        std::fs::write(&path, b"").unwrap();
        let file = File::open(&path).unwrap();
        let frames = vec![vec![1u8; 10], vec![2u8; 10]];
        let err = write_all_vectored_at(&file, &frames, 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    }
}
