//! Following a flow's files: which files match, which of them is which
//! across rotation by rename (same inode) and by copy-truncate (the file
//! shrinks or its first bytes change; the copy is found by those first
//! bytes), and cutting new bytes into records.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::checkpoint::FileCheckpoint;
use crate::config::FlowConfig;

/// How many first bytes of a file identify its content (its fingerprint).
const HEAD_BYTES: usize = 1024;
/// How long the content of a truncated file waits for its copy to appear
/// (a copy-truncate rotation whose copy is still being written).
const GHOST_LIFETIME: Duration = Duration::from_secs(10);
/// The most of a file read in one pass; a longer backlog takes several.
const READ_CHUNK: usize = 8 * 1024 * 1024;

/// A file's first bytes, as a length and CRC-32C; the bytes themselves too
/// while the agent runs (a checkpoint keeps only the CRC).
#[derive(Debug, Clone, Default)]
pub struct Head {
    pub len: u32,
    pub crc: u32,
    bytes: Option<Vec<u8>>,
}

/// How a file's first bytes compare with a head.
#[derive(Debug, PartialEq, Eq)]
enum Likeness {
    Same,
    /// Shorter, and a prefix of it: a copy still being written, perhaps.
    Prefix,
    Different,
}

impl Head {
    fn of(prefix: &[u8]) -> Head {
        Head {
            len: prefix.len() as u32,
            crc: crc32c::crc32c(prefix),
            bytes: Some(prefix.to_vec()),
        }
    }

    fn compare(&self, prefix: &[u8]) -> Likeness {
        let len = self.len as usize;
        if len == 0 {
            return Likeness::Different;
        }
        if prefix.len() >= len {
            return match crc32c::crc32c(&prefix[..len]) == self.crc {
                true => Likeness::Same,
                false => Likeness::Different,
            };
        }
        match &self.bytes {
            Some(bytes) if !prefix.is_empty() && bytes.starts_with(prefix) => Likeness::Prefix,
            _ => Likeness::Different,
        }
    }
}

/// One file being followed.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// Changes whenever the content is another (truncation), so that an
    /// acknowledgement for the old content does not move the new one's position.
    pub generation: u64,
    pub path: PathBuf,
    dev: u64,
    inode: u64,
    /// The next byte to read.
    read: u64,
    /// Every byte before it was acknowledged (or dropped by a converter).
    acked: u64,
    head: Head,
    /// Size and mtime at the last scan; a change re-checks the head.
    seen: Option<(u64, SystemTime)>,
    last_growth: Instant,
    /// Header lines still to skip (`skipHeaderLines`, from offset 0 only).
    header_left: usize,
    /// In an over-long line already sent truncated: skip to its newline.
    skipping: bool,
}

/// A unit of the send buffer: a record to send, or only a position reached
/// (lines skipped or dropped), both acknowledged in order.
#[derive(Debug)]
pub struct Pending {
    pub generation: u64,
    pub end: u64,
    pub data: Option<Vec<u8>>,
}

/// The files of one flow.
pub struct Tracker {
    dir: PathBuf,
    name_pattern: String,
    files: Vec<Tracked>,
    /// Positions from the checkpoint file not yet matched to a file.
    restored: Vec<Tracked>,
    /// The old content of truncated files, until their copy shows up.
    ghosts: Vec<(Tracked, Instant)>,
    /// The content of a generation now followed as another (its copy).
    successors: HashMap<u64, u64>,
    next_generation: u64,
    /// No scan yet and nothing checkpointed: `initialPosition` applies.
    fresh_start: bool,
    start_of_file: bool,
    skip_header_lines: usize,
}

impl Tracker {
    /// A tracker resuming from the flow's checkpointed positions.
    pub fn new(flow: &FlowConfig, checkpoints: Vec<FileCheckpoint>) -> Tracker {
        let dir = flow
            .file_pattern
            .parent()
            .unwrap_or(Path::new("/"))
            .to_owned();
        let name_pattern = flow
            .file_pattern
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let now = Instant::now();
        let restored: Vec<Tracked> = checkpoints
            .into_iter()
            .enumerate()
            .map(|(i, c)| Tracked {
                generation: i as u64,
                path: c.path,
                dev: c.dev,
                inode: c.inode,
                read: c.offset,
                acked: c.offset,
                head: Head {
                    len: c.head_length,
                    crc: c.head_crc32c,
                    bytes: None,
                },
                seen: None,
                last_growth: now,
                header_left: 0,
                skipping: false,
            })
            .collect();
        Tracker {
            dir,
            name_pattern,
            fresh_start: restored.is_empty(),
            next_generation: restored.len() as u64,
            restored,
            ghosts: Vec::new(),
            successors: HashMap::new(),
            files: Vec::new(),
            start_of_file: flow.start_of_file,
            skip_header_lines: flow.skip_header_lines,
        }
    }

    pub fn files(&self) -> &[Tracked] {
        &self.files
    }

    /// The positions to checkpoint.
    pub fn checkpoints(&self, flow: &str) -> Vec<FileCheckpoint> {
        self.files
            .iter()
            .map(|t| FileCheckpoint {
                flow: flow.to_owned(),
                path: t.path.clone(),
                dev: t.dev,
                inode: t.inode,
                offset: t.acked,
                head_length: t.head.len,
                head_crc32c: t.head.crc,
            })
            .collect()
    }

    /// Records that everything before `end` of that content was acknowledged.
    /// An acknowledgement for content since copied goes to the copy, whose
    /// offsets are the same.
    pub fn acknowledge(&mut self, generation: u64, end: u64) {
        let mut generation = generation;
        while let Some(&next) = self.successors.get(&generation) {
            generation = next;
        }
        if let Some(t) = self.files.iter_mut().find(|t| t.generation == generation) {
            t.acked = t.acked.max(end);
        }
    }

    /// Lists the matching files and works out which is which.
    pub fn scan(&mut self) -> std::io::Result<()> {
        let mut found = self.list()?;
        found.sort_by(|a, b| (a.1.modified().ok(), &a.0).cmp(&(b.1.modified().ok(), &b.0)));
        let mut unmatched: Vec<Tracked> = std::mem::take(&mut self.files);
        unmatched.append(&mut self.restored);
        self.ghosts.retain(|(_, until)| *until > Instant::now());
        unmatched.extend(self.ghosts.drain(..).map(|(ghost, _)| ghost));
        let mut kept = Vec::new();
        let mut new = Vec::new();
        for (path, meta) in found {
            let id = (meta.dev(), meta.ino());
            match unmatched.iter().position(|t| (t.dev, t.inode) == id) {
                Some(i) => {
                    let tracked = unmatched.swap_remove(i);
                    let unchanged = tracked.clone();
                    match follow(tracked, path.clone(), &meta) {
                        Ok(Followed::Same(tracked)) => kept.push(tracked),
                        Ok(Followed::Replaced(ghost)) => {
                            unmatched.push(ghost);
                            new.push((path, meta));
                        }
                        // Unreadable for a moment: as it was, till the next scan.
                        Err(_) => kept.push(unchanged),
                    }
                }
                None => new.push((path, meta)),
            }
        }
        for (path, meta) in new {
            let Ok(prefix) = read_prefix(&path) else {
                continue;
            };
            if let Some(tracked) = self.adopt(path, &meta, &prefix, &mut unmatched, &kept) {
                kept.push(tracked);
            }
        }
        // Old content whose copy may not be there yet.
        let until = Instant::now() + GHOST_LIFETIME;
        self.ghosts.extend(
            unmatched
                .into_iter()
                .filter(|t| t.dev == u64::MAX)
                .map(|ghost| (ghost, until)),
        );
        self.files = kept;
        self.fresh_start = false;
        Ok(())
    }

    /// A file not seen before: a copy of known content (continue from its
    /// position), a copy still being written (`None`: wait), or new.
    fn adopt(
        &mut self,
        path: PathBuf,
        meta: &std::fs::Metadata,
        prefix: &[u8],
        unmatched: &mut Vec<Tracked>,
        kept: &[Tracked],
    ) -> Option<Tracked> {
        let like = |t: &Tracked| t.head.compare(prefix);
        if unmatched
            .iter()
            .chain(kept)
            .any(|t| like(t) == Likeness::Prefix)
        {
            return None;
        }
        // A copy of a file still followed repeats it: not read while the
        // original lives; once it is truncated, the copy takes over from it.
        if kept.iter().any(|t| like(t) == Likeness::Same) {
            return None;
        }
        let copied_from = unmatched
            .iter()
            .position(|t| like(t) == Likeness::Same)
            .map(|i| unmatched.swap_remove(i));
        let generation = self.generation();
        if let Some(original) = &copied_from {
            self.successors.insert(original.generation, generation);
        }
        let (read, acked, header_left) = match copied_from {
            Some(t) => (
                t.read.min(meta.len()),
                t.acked.min(meta.len()),
                t.header_left,
            ),
            None if self.fresh_start && !self.start_of_file => (meta.len(), meta.len(), 0),
            None => (0, 0, self.skip_header_lines),
        };
        Some(Tracked {
            generation,
            path,
            dev: meta.dev(),
            inode: meta.ino(),
            read,
            acked,
            head: Head::of(prefix),
            seen: meta.modified().ok().map(|m| (meta.len(), m)),
            last_growth: Instant::now(),
            header_left,
            skipping: false,
        })
    }

    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    fn list(&self) -> std::io::Result<Vec<(PathBuf, std::fs::Metadata)>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            // The directory may appear later, as the agent allows.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            if !glob(self.name_pattern.as_bytes(), name.as_encoded_bytes()) {
                continue;
            }
            // Follows symlinks, as the agent does.
            if let Ok(meta) = std::fs::metadata(entry.path())
                && meta.is_file()
            {
                found.push((entry.path(), meta));
            }
        }
        Ok(found)
    }

    /// Reads what is new in the `index`th file and cuts it into records.
    pub fn read(
        &mut self,
        index: usize,
        flow: &FlowConfig,
        max_record: usize,
        out: &mut Vec<Pending>,
    ) -> std::io::Result<()> {
        let last = index + 1 == self.files.len();
        let tracked = &mut self.files[index];
        let mut file = File::open(&tracked.path)?;
        let size = file.metadata()?.len();
        if size <= tracked.read {
            return Ok(());
        }
        file.seek(SeekFrom::Start(tracked.read))?;
        let mut buf = Vec::new();
        file.take(READ_CHUNK as u64).read_to_end(&mut buf)?;
        // The last record of a multi-line file ends only at the next start
        // line, unless the file was rotated away or went quiet.
        let flush_tail = !last || tracked.last_growth.elapsed() >= flow.max_buffer_age;
        let cut = Cutter {
            flow,
            max_record,
            flush_tail,
            whole_chunk: buf.len() == READ_CHUNK,
        };
        cut.cut(tracked, &buf, out);
        Ok(())
    }
}

/// Cuts a chunk of a file into records.
struct Cutter<'a> {
    flow: &'a FlowConfig,
    max_record: usize,
    flush_tail: bool,
    /// The chunk is as large as a read: what it holds must go out even
    /// without its end.
    whole_chunk: bool,
}

impl Cutter<'_> {
    fn cut(&self, tracked: &mut Tracked, buf: &[u8], out: &mut Vec<Pending>) {
        let base = tracked.read;
        let mut pos = 0;
        // The start of the multi-line record being gathered.
        let mut record_start: Option<usize> = None;
        while pos < buf.len() {
            let Some(newline) = buf[pos..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let line_end = pos + newline + 1;
            if tracked.skipping {
                tracked.skipping = false;
                out.push(mark(tracked, base + line_end as u64));
            } else if tracked.header_left > 0 {
                tracked.header_left -= 1;
                out.push(mark(tracked, base + line_end as u64));
            } else if let Some(start) = &self.flow.multi_line_start {
                let line = String::from_utf8_lossy(&buf[pos..line_end - 1]);
                if let Some(begun) = record_start
                    && start.is_match(&line)
                {
                    self.emit(tracked, &buf[begun..pos], base + pos as u64, out);
                    record_start = Some(pos);
                } else if record_start.is_none() {
                    record_start = Some(pos);
                }
            } else {
                self.emit(tracked, &buf[pos..line_end], base + line_end as u64, out);
            }
            pos = line_end;
        }
        if let Some(begun) = record_start {
            if self.flush_tail || (begun == 0 && self.whole_chunk) {
                self.emit(tracked, &buf[begun..pos], base + pos as u64, out);
            } else {
                pos = begun;
            }
        }
        // An unfinished line longer than any record: send what fits, skip the rest.
        if record_start.is_none() && buf.len() - pos > self.max_record && !tracked.skipping {
            self.emit(tracked, &buf[pos..], base + buf.len() as u64, out);
            tracked.skipping = true;
            pos = buf.len();
        } else if tracked.skipping && pos < buf.len() {
            pos = buf.len();
            out.push(mark(tracked, base + pos as u64));
        }
        tracked.read = base + pos as u64;
    }

    /// One record, converted and truncated as the agent does.
    fn emit(&self, tracked: &Tracked, raw: &[u8], end: u64, out: &mut Vec<Pending>) {
        let mut data = Some(self.truncate(raw.to_vec()));
        for converter in &self.flow.converters {
            data = data.and_then(|d| converter.convert(&d));
        }
        out.push(Pending {
            generation: tracked.generation,
            end,
            data: data.map(|d| self.truncate(d)),
        });
    }

    fn truncate(&self, mut data: Vec<u8>) -> Vec<u8> {
        if data.len() > self.max_record {
            let terminator = &self.flow.truncated_terminator;
            data.truncate(self.max_record.saturating_sub(terminator.len()));
            data.extend_from_slice(terminator);
        }
        data
    }
}

/// What a known file turned out to be.
enum Followed {
    /// The same content, perhaps grown.
    Same(Tracked),
    /// Truncated or overwritten: the old content, for a copy to take over.
    Replaced(Tracked),
}

/// A known file found again (at `path`, perhaps renamed).
fn follow(
    mut tracked: Tracked,
    path: PathBuf,
    meta: &std::fs::Metadata,
) -> std::io::Result<Followed> {
    tracked.path = path;
    let seen = (meta.len(), meta.modified()?);
    if tracked.seen == Some(seen) {
        return Ok(Followed::Same(tracked));
    }
    if tracked.seen.is_some_and(|(size, _)| size != seen.0) {
        tracked.last_growth = Instant::now();
    }
    tracked.seen = Some(seen);
    let prefix = read_prefix(&tracked.path)?;
    let replaced = meta.len() < tracked.read
        || (tracked.head.len > 0 && tracked.head.compare(&prefix) == Likeness::Different);
    if replaced {
        (tracked.dev, tracked.inode) = (u64::MAX, u64::MAX);
        return Ok(Followed::Replaced(tracked));
    }
    if prefix.len() > tracked.head.len as usize {
        tracked.head = Head::of(&prefix);
    }
    Ok(Followed::Same(tracked))
}

fn mark(tracked: &Tracked, end: u64) -> Pending {
    Pending {
        generation: tracked.generation,
        end,
        data: None,
    }
}

fn read_prefix(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(HEAD_BYTES);
    File::open(path)?
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut prefix)?;
    Ok(prefix)
}

/// A shell glob on a file name: `*` any run, `?` any one byte.
pub fn glob(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::config::AgentConfig;

    fn flow(dir: &Path, extra: &str) -> FlowConfig {
        let config = format!(
            r#"{{"flows": [{{"filePattern": "{}/app.log*", "kinesisStream": "s",
                "initialPosition": "START_OF_FILE" {extra}}}]}}"#,
            dir.display()
        );
        AgentConfig::parse(&config).unwrap().flows.remove(0)
    }

    fn pass(tracker: &mut Tracker, flow: &FlowConfig) -> Vec<String> {
        tracker.scan().unwrap();
        let mut out = Vec::new();
        for i in 0..tracker.files().len() {
            tracker.read(i, flow, 1 << 20, &mut out).unwrap();
        }
        for p in &out {
            tracker.acknowledge(p.generation, p.end);
        }
        out.into_iter()
            .filter_map(|p| p.data)
            .map(|d| String::from_utf8(d).unwrap())
            .collect()
    }

    fn append(path: &Path, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn globs_match_file_names() {
        assert!(glob(b"*.log*", b"app.log.1"));
        assert!(glob(b"app.log", b"app.log"));
        assert!(glob(b"a?p*", b"app"));
        assert!(!glob(b"*.log", b"app.log.1"));
        assert!(!glob(b"app", b"app.log"));
    }

    #[test]
    fn lines_are_read_once_across_rename_and_copy_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let flow = flow(dir.path(), "");
        let log = dir.path().join("app.log");
        let mut tracker = Tracker::new(&flow, Vec::new());
        append(&log, "line one\nline two\npartial");
        assert_eq!(pass(&mut tracker, &flow), ["line one\n", "line two\n"]);
        append(&log, " now whole\n");
        // Rotation by rename: the old file keeps its inode and position.
        std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        append(&log, "fresh file first line\n");
        let mut got = pass(&mut tracker, &flow);
        got.sort();
        assert_eq!(got, ["fresh file first line\n", "partial now whole\n"]);
        // Rotation by copy-truncate: the copy is known by its first bytes.
        append(&log, "after rename\n");
        assert_eq!(pass(&mut tracker, &flow), ["after rename\n"]);
        std::fs::remove_file(dir.path().join("app.log.1")).unwrap();
        std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
        std::fs::File::create(&log).unwrap();
        append(&log, "after truncate\n");
        assert_eq!(pass(&mut tracker, &flow), ["after truncate\n"]);
        assert_eq!(pass(&mut tracker, &flow), Vec::<String>::new());
    }

    #[test]
    fn end_of_file_skips_what_was_there_on_the_first_run_only() {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"{{"flows": [{{"filePattern": "{}/app.log*", "kinesisStream": "s"}}]}}"#,
            dir.path().display()
        );
        let flow = AgentConfig::parse(&config).unwrap().flows.remove(0);
        let log = dir.path().join("app.log");
        append(&log, "old\n");
        let mut tracker = Tracker::new(&flow, Vec::new());
        assert_eq!(pass(&mut tracker, &flow), Vec::<String>::new());
        append(&log, "new\n");
        std::fs::rename(&log, dir.path().join("app.log.1")).unwrap();
        append(&log, "rotated in\n");
        let mut got = pass(&mut tracker, &flow);
        got.sort();
        assert_eq!(got, ["new\n", "rotated in\n"]);
        // A restart resumes from the checkpoint, not from the end.
        append(&log, "while down\n");
        let mut restarted = Tracker::new(&flow, tracker.checkpoints("f"));
        assert_eq!(pass(&mut restarted, &flow), ["while down\n"]);
    }

    #[test]
    fn a_copy_seen_before_the_truncation_repeats_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let flow = flow(dir.path(), "");
        let log = dir.path().join("app.log");
        let mut tracker = Tracker::new(&flow, Vec::new());
        append(&log, "one\n");
        assert_eq!(pass(&mut tracker, &flow), ["one\n"]);
        append(&log, "two\n");
        std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
        // The copy waits; the original still delivers.
        assert_eq!(pass(&mut tracker, &flow), ["two\n"]);
        append(&log, "three\n");
        let copy = std::fs::read(&log).unwrap();
        std::fs::write(dir.path().join("app.log.1"), copy).unwrap();
        std::fs::File::create(&log).unwrap();
        append(&log, "four\n");
        let mut got = pass(&mut tracker, &flow);
        got.sort();
        assert_eq!(got, ["four\n", "three\n"]);
        assert_eq!(pass(&mut tracker, &flow), Vec::<String>::new());
        let positions = tracker.checkpoints("f");
        assert!(
            positions
                .iter()
                .all(|c| c.offset == std::fs::metadata(&c.path).unwrap().len())
        );
    }

    #[test]
    fn a_restart_resumes_at_the_checkpoint_even_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let flow = flow(dir.path(), "");
        let log = dir.path().join("app.log");
        let mut tracker = Tracker::new(&flow, Vec::new());
        append(&log, "a\nb\n");
        assert_eq!(pass(&mut tracker, &flow), ["a\n", "b\n"]);
        let saved = tracker.checkpoints("f");
        append(&log, "c\n");
        std::fs::copy(&log, dir.path().join("app.log.1")).unwrap();
        std::fs::File::create(&log).unwrap();
        append(&log, "d\n");
        let mut restarted = Tracker::new(&flow, saved);
        let mut got = pass(&mut restarted, &flow);
        got.sort();
        assert_eq!(got, ["c\n", "d\n"]);
    }

    #[test]
    fn multi_line_records_headers_and_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let flow = flow(
            dir.path(),
            r#", "multiLineStartPattern": "^\\d", "skipHeaderLines": 1"#,
        );
        let log = dir.path().join("app.log");
        let mut tracker = Tracker::new(&flow, Vec::new());
        append(&log, "header\n1 first\n  more\n2 second\n");
        assert_eq!(pass(&mut tracker, &flow), ["1 first\n  more\n"]);
        append(&log, "  tail\n3 third\n");
        assert_eq!(pass(&mut tracker, &flow), ["2 second\n  tail\n"]);

        let plain = self::flow(dir.path(), r#", "truncatedRecordTerminator": "~""#);
        let other = tempfile::tempdir().unwrap();
        let plain = FlowConfig {
            file_pattern: other.path().join("app.log*"),
            ..plain
        };
        let mut tracker = Tracker::new(&plain, Vec::new());
        let long = other.path().join("app.log");
        append(&long, &format!("{}\nshort\n", "x".repeat(30)));
        tracker.scan().unwrap();
        let mut out = Vec::new();
        tracker.read(0, &plain, 10, &mut out).unwrap();
        let data: Vec<_> = out.into_iter().filter_map(|p| p.data).collect();
        assert_eq!(data, [b"xxxxxxxxx~".to_vec(), b"short\n".to_vec()]);
    }
}
