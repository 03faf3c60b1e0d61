//! The store: buckets as directories, objects as files written durably, multipart uploads,
//! and the in-process API (`put_object`, `get_object`, …) that Firehose delivery calls.
//!
//! Every operation runs its file-system work in one `spawn_blocking` closure.
//! No lock is held anywhere: an object appears by `rename`, which replaces
//! any earlier version atomically, and a reader keeps the file it opened.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};

use crate::format::{self, BucketRecord, ObjectMeta, RECORD_VERSION, UploadRecord};
use crate::list::{self, Entry, ListQuery};
use crate::names::{self, hex};
use crate::{S3Body, S3Error, time};

/// "Using a single PUT operation, you can upload a single object up to
/// 5 GB in size." (S3 User Guide, uploading objects)
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Multipart upload limits (S3 User Guide, "Amazon S3 multipart upload
/// limits"): parts of 5 MiB to 5 GiB, the last one smaller; part numbers
/// 1 to 10,000.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
pub const MAX_PART_NUMBER: u32 = 10_000;
/// "The user-defined metadata is limited to 2 KB in size", counted as the
/// UTF-8 bytes of every name and value (S3 User Guide, object metadata).
pub const MAX_USER_METADATA: usize = 2 * 1024;

const OBJECTS: &str = "objects";
const UPLOADS: &str = "uploads";
const TMP: &str = "tmp";
const BUCKET_RECORD: &str = "bucket.json";
const UPLOAD_RECORD: &str = "upload.json";
/// Names in the store's root that are not buckets: a bucket being created
/// or deleted. A valid bucket name never starts with `.`.
const STAGING_PREFIX: &str = ".staging-";
const DELETING_PREFIX: &str = ".deleting-";
/// Upload IDs are 32 lower-case hex digits; anything else is refused
/// before it is used as a path.
const UPLOAD_ID_LEN: usize = 32;

/// The embedded S3, opened on a directory (`<data-dir>/s3/`).
///
/// # On-disk layout
///
/// ```text
/// <root>/
///   <bucket>/                    one directory per bucket, named as it
///     bucket.json                {"version":1,"created_ms":…}
///     objects/<file name>        one file per object: header + bytes
///     uploads/<upload id>/       a multipart upload in progress
///       upload.json              key, content type, metadata (versioned JSON)
///       part-00001 …             each part, in the object file format
///     tmp/                       files being written
/// ```
///
/// An object's file name is its key, percent-encoded (see
/// [`names::key_to_file_name`]); its file holds its metadata (ETag,
/// content type, user metadata, last-modified, see [`format`]) and then its
/// bytes, so that one rename publishes both.
///
/// # Durability
///
/// A write goes to a new file in `tmp/`, is `fdatasync`ed, renamed into
/// `objects/` (or the upload's directory), and that directory is
/// `fsync`ed, all before the operation answers. After a crash an object is
/// either its old version or its new one, never half of one: files left in
/// `tmp/`, staging directories and uploads without a record are removed
/// by [`S3::open`]. Creating and deleting a bucket are one rename each.
#[derive(Clone, Debug)]
pub struct S3 {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
}

/// What a listing of buckets shows of one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BucketInfo {
    pub name: String,
    pub created_ms: u64,
}

/// How an object is stored, besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    /// `x-amz-meta-*`, by name without the prefix.
    pub user_metadata: BTreeMap<String, String>,
    /// `Content-Encoding`, `Content-Disposition`, … by lower-case name.
    pub headers: BTreeMap<String, String>,
    /// The base64 MD5 the client sent in `Content-MD5`, checked.
    pub content_md5: Option<String>,
}

/// One page of ListObjectsV2 / ListObjects.
#[derive(Clone, Debug)]
pub struct ObjectPage {
    pub objects: Vec<ObjectMeta>,
    pub common_prefixes: Vec<String>,
    /// Set when more follow: the continuation token of the next page, and
    /// the last key or prefix of this one (ListObjects' NextMarker).
    pub next_token: Option<String>,
    pub next_marker: Option<String>,
    /// Objects plus common prefixes on this page.
    pub key_count: usize,
}

/// Where to copy an object from, and whether its metadata goes with it.
#[derive(Clone, Debug)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    /// `None` copies the source's metadata (`x-amz-metadata-directive: COPY`).
    pub replace: Option<PutOptions>,
}

/// One part as ListParts shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartInfo {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub last_modified_ms: u64,
}

/// An object opened for reading: its metadata and an open file positioned
/// at its first byte.
#[derive(Debug)]
pub struct OpenObject {
    pub meta: ObjectMeta,
    file: File,
    data_offset: u64,
}

impl OpenObject {
    /// A body of `len` bytes from `start` (an offset into the object).
    pub async fn body(self, start: u64, len: u64) -> Result<S3Body, S3Error> {
        let mut file = self.file;
        let at = self.data_offset + start;
        let file = blocking(move || {
            file.seek(SeekFrom::Start(at))
                .map_err(|e| S3Error::io("seek in object", e))?;
            Ok(file)
        })
        .await?;
        Ok(S3Body::file(file, at, len))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, S3Error> + Send + 'static,
) -> Result<T, S3Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| S3Error::io("blocking task", io::Error::other(e)))?
}

impl S3 {
    /// Opens (creating it if needed) the store in `root`, and removes what
    /// a crash left half-done.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, S3Error> {
        let root = root.into();
        fs::create_dir_all(&root)
            .map_err(|e| S3Error::io(format!("create {}", root.display()), e))?;
        let inner = Inner { root };
        inner.recover()?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, S3Error> + Send + 'static,
    ) -> Result<T, S3Error> {
        let inner = Arc::clone(&self.inner);
        blocking(move || f(&inner)).await
    }

    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>, S3Error> {
        self.run(Inner::list_buckets).await
    }

    pub async fn create_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        let bucket = bucket.to_owned();
        self.run(move |s| s.create_bucket(&bucket)).await
    }

    /// `Ok` if the bucket exists.
    pub async fn head_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        let bucket = bucket.to_owned();
        self.run(move |s| s.require_bucket(&bucket)).await
    }

    pub async fn delete_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        let bucket = bucket.to_owned();
        self.run(move |s| s.delete_bucket(&bucket)).await
    }

    /// Stores `body` as `key`, durably; returns its metadata (the ETag).
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
    ) -> Result<ObjectMeta, S3Error> {
        self.put_object_with(bucket, key, body, PutOptions::default())
            .await
    }

    /// [`S3::put_object`] with a content type, user metadata and a checked MD5.
    pub async fn put_object_with(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        options: PutOptions,
    ) -> Result<ObjectMeta, S3Error> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.put_object(&bucket, &key, &body, options))
            .await
    }

    /// Opens an object for reading (GetObject and HeadObject).
    pub async fn open_object(&self, bucket: &str, key: &str) -> Result<OpenObject, S3Error> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.open_object(&bucket, &key)).await
    }

    /// Reads a whole object into memory.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectMeta, Bytes), S3Error> {
        let object = self.open_object(bucket, key).await?;
        let meta = object.meta.clone();
        let size = meta.size;
        let bytes = object
            .body(0, size)
            .await?
            .collect()
            .await
            .map_err(|e| S3Error::io("read object", e))?;
        Ok((meta, bytes))
    }

    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta, S3Error> {
        Ok(self.open_object(bucket, key).await?.meta)
    }

    /// Deletes an object; deleting one that does not exist succeeds.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.delete_object(&bucket, &key)).await
    }

    /// One page of a listing (ListObjectsV2 and ListObjects).
    pub async fn list_objects(
        &self,
        bucket: &str,
        query: ListQuery,
    ) -> Result<ObjectPage, S3Error> {
        let bucket = bucket.to_owned();
        self.run(move |s| s.list_objects(&bucket, &query)).await
    }

    /// Copies an object (CopyObject); returns the new object's metadata.
    pub async fn copy_object(
        &self,
        source: CopySource,
        bucket: &str,
        key: &str,
    ) -> Result<ObjectMeta, S3Error> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.copy_object(&source, &bucket, &key))
            .await
    }

    /// Starts a multipart upload; returns its upload ID.
    pub async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        options: PutOptions,
    ) -> Result<String, S3Error> {
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        self.run(move |s| s.create_upload(&bucket, &key, options))
            .await
    }

    /// Stores one part durably; returns its ETag (without quotes).
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
        content_md5: Option<String>,
    ) -> Result<String, S3Error> {
        let (bucket, key, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.run(move |s| s.upload_part(&bucket, &key, &id, part_number, &body, content_md5))
            .await
    }

    /// Assembles the listed parts (number, ETag) into the object.
    pub async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
    ) -> Result<ObjectMeta, S3Error> {
        let (bucket, key, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.run(move |s| s.complete_upload(&bucket, &key, &id, &parts))
            .await
    }

    pub async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<(), S3Error> {
        let (bucket, key, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.run(move |s| s.abort_upload(&bucket, &key, &id)).await
    }

    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<PartInfo>, S3Error> {
        let (bucket, key, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        self.run(move |s| s.list_parts(&bucket, &key, &id)).await
    }
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(io::Error) -> S3Error {
    let context = format!("{what} {}", path.display());
    move |e| S3Error::io(context, e)
}

fn random_hex(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex(&raw)
}

/// Makes a directory's entries (a rename, a new file, a removal) durable.
fn sync_dir(dir: &Path) -> Result<(), S3Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

/// The largest `write` an object's body is split into. One `write` of a
/// whole 128 MiB Firehose object cost this machine's kernel 5 to 7 times
/// the CPU of the same bytes in 1 MiB writes (`dd bs=128M` against
/// `bs=1M`, both `conv=fdatasync`: 3.2-4.1 s against 0.6 s of system time
/// per 2 GiB), and that copy was the largest item in `riffle bench
/// firehose`'s profile.
const WRITE_CHUNK: usize = 1024 * 1024;

fn write_in_chunks(file: &mut File, body: &[u8]) -> io::Result<()> {
    body.chunks(WRITE_CHUNK)
        .try_for_each(|chunk| file.write_all(chunk))
}

fn md5_hex(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

/// The `Content-MD5` header value of `data`: its MD5 in base64.
pub(crate) fn content_md5_of(data: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(Md5::digest(data))
}

fn check_content_md5(given: Option<&str>, data: &[u8]) -> Result<(), S3Error> {
    let Some(given) = given else { return Ok(()) };
    let invalid = || S3Error::InvalidDigest {
        content_md5: given.to_owned(),
    };
    let decoded = base64_simd::STANDARD
        .decode_to_vec(given)
        .map_err(|_| invalid())?;
    if decoded.len() != 16 {
        return Err(invalid());
    }
    let actual = Md5::digest(data);
    if decoded[..] != actual[..] {
        return Err(S3Error::BadDigest {
            expected: given.to_owned(),
            calculated: base64_simd::STANDARD.encode_to_string(actual),
        });
    }
    Ok(())
}

fn check_metadata(options: &PutOptions) -> Result<(), S3Error> {
    let size: usize = options
        .user_metadata
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if size > MAX_USER_METADATA {
        return Err(S3Error::MetadataTooLarge {
            size,
            max: MAX_USER_METADATA,
        });
    }
    Ok(())
}

fn check_upload_id(id: &str) -> Result<(), S3Error> {
    let ok = id.len() == UPLOAD_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(S3Error::NoSuchUpload {
            upload_id: id.to_owned(),
        })
    }
}

fn check_part_number(n: u32) -> Result<(), S3Error> {
    if (1..=MAX_PART_NUMBER).contains(&n) {
        Ok(())
    } else {
        Err(S3Error::invalid_argument(
            "Part number must be an integer between 1 and 10000, inclusive",
            "partNumber",
            n.to_string(),
        ))
    }
}

fn part_file_name(n: u32) -> String {
    format!("part-{n:05}")
}

/// A file being written in a bucket's `tmp/`; removed unless committed.
struct TempFile {
    file: File,
    path: PathBuf,
    committed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl TempFile {
    /// Syncs the file, renames it to `dest_dir/name` and syncs that
    /// directory: the write is durable and visible at once, or not at all.
    fn commit(mut self, dest_dir: &Path, name: &str) -> Result<(), S3Error> {
        self.file
            .sync_data()
            .map_err(io_err("fdatasync", &self.path))?;
        release_cached_pages(&self.file);
        let dest = dest_dir.join(name);
        let renamed = match fs::rename(&self.path, &dest) {
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && dest_dir.ends_with(OBJECTS)
                    && self.path.exists() =>
            {
                // A bucket made by hand has no objects/ yet. (An upload's
                // directory is never re-created: it was aborted.)
                create_dir_if_missing(dest_dir)?;
                fs::rename(&self.path, &dest)
            }
            other => other,
        };
        renamed.map_err(io_err("rename into", &dest))?;
        self.committed = true;
        sync_dir(dest_dir)
    }
}

/// Tells the kernel a written, synced file's pages need not stay cached.
///
/// An object is written once, in bulk (Firehose's are up to 128 MiB), and
/// seldom read soon; cached, the objects grow the page cache until it has
/// taken every free page, and each write then lands in memory the kernel
/// had not used yet. On this project's 2-vCPU VM that cost 5 to 10 times
/// the CPU of reusing pages just freed (4 GiB with `dd bs=1M`: 10-14 s of
/// system time into a new file, 1.5 s right after removing one), and was
/// the largest item of `riffle bench firehose`'s profile. Dropped, the pages
/// go back to the free lists the next writes take from, and the cache is
/// left to what is read (the shards' logs). Advice only: a failure changes
/// nothing but speed, so it is not reported.
fn release_cached_pages(file: &File) {
    use std::os::fd::AsRawFd;
    release_cached_range(file.as_raw_fd(), 0, 0);
}

/// Drops `len` bytes of an open file's cached pages from `start` (0: to
/// the end), as [`release_cached_pages`] says why. The caller keeps `fd`
/// open for the call.
pub(crate) fn release_cached_range(fd: std::os::fd::RawFd, start: u64, len: u64) {
    let (Ok(start), Ok(len)) = (libc::off_t::try_from(start), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: posix_fadvise reads and writes no memory of ours; an fd that
    // is not open only makes it fail, which is ignored (advice only).
    unsafe {
        libc::posix_fadvise(fd, start, len, libc::POSIX_FADV_DONTNEED);
    }
}

/// Creates `dir` (not its parents: a missing bucket stays missing) and
/// makes its entry durable.
fn create_dir_if_missing(dir: &Path) -> Result<(), S3Error> {
    match fs::create_dir(dir) {
        Ok(()) => dir.parent().map_or(Ok(()), sync_dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err("create", dir)(e)),
    }
}

fn remove_file_if_present(path: &Path) -> Result<bool, S3Error> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>, S3Error> {
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.map_err(io_err("read directory", dir))?,
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("read directory", dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

impl Inner {
    fn bucket_dir(&self, bucket: &str) -> PathBuf {
        self.root.join(bucket)
    }

    fn objects_dir(&self, bucket: &str) -> PathBuf {
        self.bucket_dir(bucket).join(OBJECTS)
    }

    fn upload_dir(&self, bucket: &str, id: &str) -> PathBuf {
        self.bucket_dir(bucket).join(UPLOADS).join(id)
    }

    /// Fails with NoSuchBucket unless the bucket exists. An invalid name
    /// can never exist, and is never used as a path.
    fn require_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        let missing = || S3Error::NoSuchBucket {
            bucket: bucket.to_owned(),
        };
        if !names::is_valid_bucket_name(bucket) {
            return Err(missing());
        }
        match fs::metadata(self.bucket_dir(bucket)) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(missing()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(missing()),
            Err(e) => Err(io_err("stat bucket", &self.bucket_dir(bucket))(e)),
        }
    }

    /// Removes what a crash left: staging and deleting directories, files
    /// in every `tmp/`, and uploads whose record was never written.
    fn recover(&self) -> Result<(), S3Error> {
        for name in read_dir_names(&self.root)? {
            let path = self.root.join(&name);
            if name.starts_with(STAGING_PREFIX) || name.starts_with(DELETING_PREFIX) {
                fs::remove_dir_all(&path).map_err(io_err("remove", &path))?;
            } else if names::is_valid_bucket_name(&name) && path.is_dir() {
                self.recover_bucket(&name)?;
            }
        }
        Ok(())
    }

    fn recover_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        let tmp = self.bucket_dir(bucket).join(TMP);
        for name in read_dir_names(&tmp)? {
            remove_file_if_present(&tmp.join(name))?;
        }
        let uploads = self.bucket_dir(bucket).join(UPLOADS);
        for id in read_dir_names(&uploads)? {
            let dir = uploads.join(&id);
            if !dir.join(UPLOAD_RECORD).exists() {
                fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
            }
        }
        Ok(())
    }

    fn list_buckets(&self) -> Result<Vec<BucketInfo>, S3Error> {
        let mut buckets = Vec::new();
        for name in read_dir_names(&self.root)? {
            let dir = self.root.join(&name);
            if !names::is_valid_bucket_name(&name) || !dir.is_dir() {
                continue;
            }
            let created_ms = self.bucket_created_ms(&dir);
            buckets.push(BucketInfo { name, created_ms });
        }
        buckets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(buckets)
    }

    fn bucket_created_ms(&self, dir: &Path) -> u64 {
        let recorded = fs::read(dir.join(BUCKET_RECORD))
            .ok()
            .and_then(|b| serde_json::from_slice::<BucketRecord>(&b).ok())
            .map(|r| r.created_ms);
        recorded.unwrap_or_else(|| {
            fs::metadata(dir)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0))
        })
    }

    /// Builds the bucket in a staging directory and renames it into place.
    fn create_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        names::validate_bucket_name(bucket)?;
        let exists = || S3Error::BucketAlreadyOwnedByYou {
            bucket: bucket.to_owned(),
        };
        let dest = self.bucket_dir(bucket);
        if dest.exists() {
            return Err(exists());
        }
        let staging = self.root.join(format!("{STAGING_PREFIX}{}", random_hex(8)));
        let result = self
            .stage_bucket(&staging)
            .and_then(|()| match fs::rename(&staging, &dest) {
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::AlreadyExists
                    ) =>
                {
                    Err(exists())
                }
                other => other.map_err(io_err("rename into", &dest)),
            });
        if result.is_err() {
            let _ = fs::remove_dir_all(&staging);
        }
        result?;
        sync_dir(&self.root)
    }

    fn stage_bucket(&self, staging: &Path) -> Result<(), S3Error> {
        fs::create_dir(staging).map_err(io_err("create", staging))?;
        for sub in [OBJECTS, UPLOADS, TMP] {
            fs::create_dir(staging.join(sub)).map_err(io_err("create", staging))?;
        }
        let record = BucketRecord {
            version: RECORD_VERSION,
            created_ms: time::now_ms(),
        };
        let path = staging.join(BUCKET_RECORD);
        let mut file = File::create(&path).map_err(io_err("create", &path))?;
        // A struct of two integers always serializes.
        let json = serde_json::to_vec(&record).expect("BucketRecord serializes");
        file.write_all(&json).map_err(io_err("write", &path))?;
        file.sync_all().map_err(io_err("fsync", &path))?;
        sync_dir(staging)
    }

    /// Refuses a bucket with objects; otherwise moves it aside in one rename
    /// and removes it.
    fn delete_bucket(&self, bucket: &str) -> Result<(), S3Error> {
        self.require_bucket(bucket)?;
        if !read_dir_names(&self.objects_dir(bucket))?.is_empty() {
            return Err(S3Error::BucketNotEmpty {
                bucket: bucket.to_owned(),
            });
        }
        let doomed = self
            .root
            .join(format!("{DELETING_PREFIX}{}", random_hex(8)));
        let dir = self.bucket_dir(bucket);
        fs::rename(&dir, &doomed).map_err(io_err("rename", &dir))?;
        sync_dir(&self.root)?;
        fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))
    }

    /// A new file in the bucket's `tmp/`.
    fn temp_file(&self, bucket: &str) -> Result<TempFile, S3Error> {
        let tmp = self.bucket_dir(bucket).join(TMP);
        let path = tmp.join(random_hex(16));
        let open = || OpenOptions::new().write(true).create_new(true).open(&path);
        let file = match open() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.require_bucket(bucket)?;
                create_dir_if_missing(&tmp)?;
                open()
            }
            other => other,
        }
        .map_err(io_err("create", &path))?;
        Ok(TempFile {
            file,
            path,
            committed: false,
        })
    }

    /// Writes a header and data into a temp file and commits it as `name`
    /// in `dest_dir`.
    fn write_durably(
        &self,
        bucket: &str,
        meta: &ObjectMeta,
        dest_dir: &Path,
        name: &str,
        data: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> Result<(), S3Error> {
        let mut temp = self.temp_file(bucket)?;
        temp.file
            .write_all(&format::encode_header(meta))
            .and_then(|()| data(&mut temp.file))
            .map_err(io_err("write", &temp.path))?;
        temp.commit(dest_dir, name)
    }

    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: &[u8],
        options: PutOptions,
    ) -> Result<ObjectMeta, S3Error> {
        self.require_bucket(bucket)?;
        names::validate_key(key)?;
        check_metadata(&options)?;
        if body.len() as u64 > MAX_PUT_SIZE {
            return Err(S3Error::EntityTooLarge {
                size: body.len() as u64,
                max: MAX_PUT_SIZE,
            });
        }
        check_content_md5(options.content_md5.as_deref(), body)?;
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: body.len() as u64,
            etag: md5_hex(body),
            content_type: options.content_type,
            last_modified_ms: time::now_ms(),
            user_metadata: options.user_metadata,
            headers: options.headers,
        };
        let name = names::key_to_file_name(key);
        self.write_durably(bucket, &meta, &self.objects_dir(bucket), &name, |f| {
            write_in_chunks(f, body)
        })?;
        Ok(meta)
    }

    fn open_object(&self, bucket: &str, key: &str) -> Result<OpenObject, S3Error> {
        self.require_bucket(bucket)?;
        let missing = || S3Error::NoSuchKey {
            key: key.to_owned(),
        };
        if names::validate_key(key).is_err() {
            return Err(missing());
        }
        let path = self.objects_dir(bucket).join(names::key_to_file_name(key));
        let mut file = match File::open(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
            other => other.map_err(io_err("open", &path))?,
        };
        let (meta, data_offset) = read_object_header(&mut file, &path)?;
        if meta.key != key {
            // Only a hash collision of two long keys could get here.
            return Err(missing());
        }
        Ok(OpenObject {
            meta,
            file,
            data_offset,
        })
    }

    fn delete_object(&self, bucket: &str, key: &str) -> Result<(), S3Error> {
        self.require_bucket(bucket)?;
        if names::validate_key(key).is_err() {
            return Ok(());
        }
        let dir = self.objects_dir(bucket);
        if remove_file_if_present(&dir.join(names::key_to_file_name(key)))? {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    fn sorted_keys(&self, bucket: &str) -> Result<Vec<(String, String)>, S3Error> {
        let dir = self.objects_dir(bucket);
        let mut keys = Vec::new();
        for name in read_dir_names(&dir)? {
            let key = if names::is_hashed_file_name(&name) {
                let path = dir.join(&name);
                match File::open(&path) {
                    Ok(mut f) => read_object_header(&mut f, &path)?.0.key,
                    Err(_) => continue,
                }
            } else {
                match names::file_name_to_key(&name) {
                    Some(key) => key,
                    None => continue,
                }
            };
            keys.push((key, name));
        }
        keys.sort();
        Ok(keys)
    }

    fn list_objects(&self, bucket: &str, query: &ListQuery) -> Result<ObjectPage, S3Error> {
        self.require_bucket(bucket)?;
        let keyed = self.sorted_keys(bucket)?;
        let keys: Vec<String> = keyed.iter().map(|(k, _)| k.clone()).collect();
        let page = list::list(&keys, query);
        let dir = self.objects_dir(bucket);
        let mut objects = Vec::new();
        let mut common_prefixes = Vec::new();
        for entry in &page.entries {
            match entry {
                Entry::CommonPrefix(p) => common_prefixes.push(p.clone()),
                Entry::Object(key) => {
                    let Ok(at) = keyed.binary_search_by(|(k, _)| k.as_str().cmp(key)) else {
                        continue;
                    };
                    let path = dir.join(&keyed[at].1);
                    // An object deleted since the directory was read is left out.
                    if let Ok(mut f) = File::open(&path) {
                        objects.push(read_object_header(&mut f, &path)?.0);
                    }
                }
            }
        }
        let next_marker = page.next.as_ref().map(|m| match &m.0 {
            Entry::Object(k) | Entry::CommonPrefix(k) => k.clone(),
        });
        Ok(ObjectPage {
            key_count: objects.len() + common_prefixes.len(),
            objects,
            common_prefixes,
            next_token: page.next.map(|m| m.to_token()),
            next_marker,
        })
    }

    fn copy_object(
        &self,
        source: &CopySource,
        bucket: &str,
        key: &str,
    ) -> Result<ObjectMeta, S3Error> {
        if source.bucket == bucket && source.key == key && source.replace.is_none() {
            return Err(S3Error::InvalidRequest {
                message: "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.".into(),
            });
        }
        self.require_bucket(bucket)?;
        names::validate_key(key)?;
        let mut src = self.open_object(&source.bucket, &source.key)?;
        let mut meta = src.meta.clone();
        meta.key = key.to_owned();
        meta.last_modified_ms = time::now_ms();
        if let Some(options) = &source.replace {
            check_metadata(options)?;
            meta.content_type.clone_from(&options.content_type);
            meta.user_metadata.clone_from(&options.user_metadata);
            meta.headers.clone_from(&options.headers);
        }
        let size = meta.size;
        let name = names::key_to_file_name(key);
        self.write_durably(bucket, &meta, &self.objects_dir(bucket), &name, |f| {
            copy_exact(&mut src.file, f, size)
        })?;
        Ok(meta)
    }

    fn read_upload(&self, bucket: &str, key: &str, id: &str) -> Result<UploadRecord, S3Error> {
        self.require_bucket(bucket)?;
        check_upload_id(id)?;
        let path = self.upload_dir(bucket, id).join(UPLOAD_RECORD);
        let missing = || S3Error::NoSuchUpload {
            upload_id: id.to_owned(),
        };
        let bytes = match fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
            other => other.map_err(io_err("read", &path))?,
        };
        let record: UploadRecord =
            serde_json::from_slice(&bytes).map_err(|e| S3Error::Corrupt {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        if record.key != key {
            return Err(missing());
        }
        Ok(record)
    }

    fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        options: PutOptions,
    ) -> Result<String, S3Error> {
        self.require_bucket(bucket)?;
        names::validate_key(key)?;
        check_metadata(&options)?;
        let id = random_hex(UPLOAD_ID_LEN / 2);
        let uploads = self.bucket_dir(bucket).join(UPLOADS);
        create_dir_if_missing(&uploads)?;
        let dir = uploads.join(&id);
        fs::create_dir(&dir).map_err(io_err("create", &dir))?;
        let record = UploadRecord {
            version: RECORD_VERSION,
            key: key.to_owned(),
            content_type: options.content_type,
            user_metadata: options.user_metadata,
            headers: options.headers,
            initiated_ms: time::now_ms(),
        };
        // Strings, integers and string maps always serialize.
        let json = serde_json::to_vec(&record).expect("UploadRecord serializes");
        let mut temp = self.temp_file(bucket)?;
        temp.file
            .write_all(&json)
            .map_err(io_err("write", &temp.path))?;
        temp.commit(&dir, UPLOAD_RECORD)?;
        sync_dir(&uploads)?;
        Ok(id)
    }

    fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        part_number: u32,
        body: &[u8],
        content_md5: Option<String>,
    ) -> Result<String, S3Error> {
        check_part_number(part_number)?;
        self.read_upload(bucket, key, id)?;
        if body.len() as u64 > MAX_PART_SIZE {
            return Err(S3Error::EntityTooLarge {
                size: body.len() as u64,
                max: MAX_PART_SIZE,
            });
        }
        check_content_md5(content_md5.as_deref(), body)?;
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: body.len() as u64,
            etag: md5_hex(body),
            content_type: None,
            last_modified_ms: time::now_ms(),
            user_metadata: BTreeMap::new(),
            headers: BTreeMap::new(),
        };
        let dir = self.upload_dir(bucket, id);
        self.write_durably(bucket, &meta, &dir, &part_file_name(part_number), |f| {
            write_in_chunks(f, body)
        })?;
        Ok(meta.etag)
    }

    fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        parts: &[(u32, String)],
    ) -> Result<ObjectMeta, S3Error> {
        let record = self.read_upload(bucket, key, id)?;
        if parts.is_empty() {
            return Err(S3Error::MalformedXml);
        }
        if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(S3Error::InvalidPartOrder {
                upload_id: id.to_owned(),
            });
        }
        let dir = self.upload_dir(bucket, id);
        let mut opened = Vec::with_capacity(parts.len());
        let mut md5s = Vec::with_capacity(parts.len() * 16);
        for (i, (number, etag)) in parts.iter().enumerate() {
            let (meta, file) = self.open_part(&dir, id, *number, etag)?;
            if i + 1 < parts.len() && meta.size < MIN_PART_SIZE {
                return Err(S3Error::EntityTooSmall {
                    size: meta.size,
                    min: MIN_PART_SIZE,
                    part_number: *number,
                });
            }
            md5s.extend(decode_hex(&meta.etag).unwrap_or_default());
            opened.push((meta.size, file));
        }
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: opened.iter().map(|(size, _)| size).sum(),
            etag: format!("{}-{}", md5_hex(&md5s), parts.len()),
            content_type: record.content_type,
            last_modified_ms: time::now_ms(),
            user_metadata: record.user_metadata,
            headers: record.headers,
        };
        let name = names::key_to_file_name(key);
        self.write_durably(bucket, &meta, &self.objects_dir(bucket), &name, |f| {
            opened
                .iter_mut()
                .try_for_each(|(size, part)| copy_exact(part, f, *size))
        })?;
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))?;
        Ok(meta)
    }

    /// Opens a part and checks the ETag the client listed for it.
    fn open_part(
        &self,
        dir: &Path,
        id: &str,
        number: u32,
        etag: &str,
    ) -> Result<(ObjectMeta, File), S3Error> {
        let wanted = etag.trim_matches('"');
        let invalid = || S3Error::InvalidPart {
            upload_id: id.to_owned(),
            part_number: number,
            etag: etag.to_owned(),
        };
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(invalid());
        }
        let path = dir.join(part_file_name(number));
        let mut file = match File::open(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(invalid()),
            other => other.map_err(io_err("open", &path))?,
        };
        let (meta, _) = read_object_header(&mut file, &path)?;
        if meta.etag != wanted {
            return Err(invalid());
        }
        Ok((meta, file))
    }

    fn abort_upload(&self, bucket: &str, key: &str, id: &str) -> Result<(), S3Error> {
        self.read_upload(bucket, key, id)?;
        let dir = self.upload_dir(bucket, id);
        // The record goes first: once it is gone the upload no longer exists.
        remove_file_if_present(&dir.join(UPLOAD_RECORD))?;
        sync_dir(&dir)?;
        fs::remove_dir_all(&dir).map_err(io_err("remove", &dir))
    }

    fn list_parts(&self, bucket: &str, key: &str, id: &str) -> Result<Vec<PartInfo>, S3Error> {
        self.read_upload(bucket, key, id)?;
        let dir = self.upload_dir(bucket, id);
        let mut parts = Vec::new();
        for name in read_dir_names(&dir)? {
            let Some(number) = name
                .strip_prefix("part-")
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let path = dir.join(&name);
            let Ok(mut file) = File::open(&path) else {
                continue;
            };
            let (meta, _) = read_object_header(&mut file, &path)?;
            parts.push(PartInfo {
                part_number: number,
                etag: meta.etag,
                size: meta.size,
                last_modified_ms: meta.last_modified_ms,
            });
        }
        parts.sort_by_key(|p| p.part_number);
        Ok(parts)
    }
}

fn read_object_header(file: &mut File, path: &Path) -> Result<(ObjectMeta, u64), S3Error> {
    let mut reader = io::BufReader::with_capacity(4096, &mut *file);
    let (meta, offset) = format::read_header(&mut reader).map_err(|e| S3Error::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    drop(reader);
    file.seek(SeekFrom::Start(offset))
        .map_err(io_err("seek", path))?;
    Ok((meta, offset))
}

/// Copies exactly `size` bytes (an object file shorter than its header says
/// is an error, not a shorter copy).
fn copy_exact(from: &mut File, to: &mut File, size: u64) -> io::Result<()> {
    let copied = io::copy(&mut from.take(size), to)?;
    if copied == size {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "object file is truncated",
        ))
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
