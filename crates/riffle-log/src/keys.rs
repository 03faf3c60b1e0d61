//! The key ring for encryption at rest: named data keys (AES-256-GCM) that
//! encrypt batches, each stored in the metadata store wrapped (encrypted) by
//! one master key kept in a file outside it.
//!
//! Why two levels: the master key can be rotated (or kept on other storage)
//! by re-wrapping a few 32-byte data keys, without rewriting any segment.
//! The byte layout of a wrapped key is in [`crate::format`].

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::format::{self, BatchView, NONCE_LEN, TAG_LEN};
use crate::meta::Meta;
use crate::segment::{self, corrupt, io_err};
use crate::{DataKey, LogError, MetaOp, Result};

/// The default master key file, relative to the data directory.
pub(crate) const MASTER_KEY_FILE: &str = "keys/master.key";
/// AES-256: 32-byte keys, master and data alike.
const KEY_LEN: usize = 32;
/// Metadata-store key prefix of the wrapped data keys.
const DATA_KEY_PREFIX: &str = "riffle-log/data-key/";
const WRAPPED_VERSION: u8 = 1;
const WRAPPED_NAME_AT: usize = 1 + NONCE_LEN + KEY_LEN + TAG_LEN;
const WRAP_AAD_PREFIX: &[u8] = b"riffle-log data key";
/// A data key's name is the caller's (Kinesis: the stream's KeyId, at most
/// 2,048 characters per the Kinesis API model); this bounds the metadata
/// entry.
pub const KEY_NAME_BYTES_MAX: usize = 4096;

pub(crate) struct KeyRing {
    meta: Arc<Meta>,
    master_path: Mutex<PathBuf>,
    master: Mutex<Option<Arc<Aes256Gcm>>>,
    by_id: RwLock<HashMap<u32, DataKey>>,
    /// Serialises creating data keys, so that two callers asking for the
    /// same new name get the same key and ids are never reused.
    create: Mutex<()>,
}

fn random<const N: usize>(dir: &Path) -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|e| LogError::Io {
        path: dir.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })?;
    Ok(b)
}

fn wrap_aad(id: u32, name: &str) -> Vec<u8> {
    [WRAP_AAD_PREFIX, &id.to_le_bytes(), name.as_bytes()].concat()
}

impl KeyRing {
    pub fn new(meta: Arc<Meta>, store_dir: &Path) -> KeyRing {
        KeyRing {
            meta,
            master_path: Mutex::new(store_dir.join(MASTER_KEY_FILE)),
            master: Mutex::new(None),
            by_id: RwLock::new(HashMap::new()),
            create: Mutex::new(()),
        }
    }

    pub fn set_master_path(&self, path: &Path) {
        *self.master_path.lock() = path.to_path_buf();
        *self.master.lock() = None;
        self.by_id.write().clear();
    }

    /// The master key, read from its file on first use. It is created (32
    /// random bytes, mode 0600) only when `may_create`, i.e. while no data
    /// key exists that an older master key wrapped.
    fn master(&self, may_create: bool) -> Result<Arc<Aes256Gcm>> {
        let mut cached = self.master.lock();
        if let Some(m) = cached.as_ref() {
            return Ok(m.clone());
        }
        let path = self.master_path.lock().clone();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound && may_create => {
                create_master(&path)?.to_vec()
            }
            Err(source) => return Err(LogError::Io { path, source }),
        };
        let cipher = Aes256Gcm::new_from_slice(&bytes)
            .map_err(|_| corrupt(&path, 0, "a master key file must hold exactly 32 bytes"))?;
        let cipher = Arc::new(cipher);
        *cached = Some(cipher.clone());
        Ok(cipher)
    }

    /// The data key called `name`, created (and stored durably) if needed.
    pub fn get_or_create(&self, name: &str) -> Result<DataKey> {
        if name.is_empty() || name.len() > KEY_NAME_BYTES_MAX {
            return Err(LogError::TooLarge {
                field: "data key name",
                len: name.len(),
                max: KEY_NAME_BYTES_MAX,
            });
        }
        if let Some(k) = self.by_id.read().values().find(|k| &*k.name == name) {
            return Ok(k.clone());
        }
        let _creating = self.create.lock();
        let entries = self.meta.scan_prefix(DATA_KEY_PREFIX)?;
        let mut id_max = 0;
        for (key, value) in &entries {
            let id = parse_id(key)?;
            id_max = id_max.max(id);
            if value.get(WRAPPED_NAME_AT..) == Some(name.as_bytes()) {
                return self.unwrap_key(id, value);
            }
        }
        let master = self.master(entries.is_empty())?;
        let dir = self.master_path.lock().clone();
        let key: [u8; KEY_LEN] = random(&dir)?;
        let nonce: [u8; NONCE_LEN] = random(&dir)?;
        let id = id_max + 1;
        let mut wrapped = key.to_vec();
        let tag = master
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &wrap_aad(id, name), &mut wrapped)
            .map_err(|_| LogError::Meta(format!("wrapping data key {id} failed")))?;
        let value = [
            &[WRAPPED_VERSION][..],
            &nonce,
            &wrapped,
            tag.as_slice(),
            name.as_bytes(),
        ]
        .concat();
        self.meta.commit(
            &[MetaOp::Put {
                key: format!("{DATA_KEY_PREFIX}{id:010}"),
                value: value.clone(),
            }],
            true,
        )?;
        self.unwrap_key(id, &value)
    }

    /// The data key with this id (of an encrypted batch being read).
    pub fn by_id(&self, id: u32) -> Result<DataKey> {
        if let Some(k) = self.by_id.read().get(&id) {
            return Ok(k.clone());
        }
        let value = self
            .meta
            .get(&format!("{DATA_KEY_PREFIX}{id:010}"))?
            .ok_or_else(|| LogError::Meta(format!("data key {id} is missing")))?;
        self.unwrap_key(id, &value)
    }

    fn unwrap_key(&self, id: u32, value: &[u8]) -> Result<DataKey> {
        let path = self.master_path.lock().clone();
        if value.len() < WRAPPED_NAME_AT || value[0] != WRAPPED_VERSION {
            return Err(LogError::Meta(format!("data key {id} is malformed")));
        }
        let name = std::str::from_utf8(&value[WRAPPED_NAME_AT..])
            .map_err(|_| LogError::Meta(format!("data key {id} has a non-UTF-8 name")))?;
        let nonce = &value[1..1 + NONCE_LEN];
        let mut key = value[1 + NONCE_LEN..1 + NONCE_LEN + KEY_LEN].to_vec();
        let tag = &value[1 + NONCE_LEN + KEY_LEN..WRAPPED_NAME_AT];
        let master = self.master(false)?;
        master
            .decrypt_in_place_detached(
                Nonce::from_slice(nonce),
                &wrap_aad(id, name),
                &mut key,
                Tag::from_slice(tag),
            )
            .map_err(|_| {
                corrupt(
                    &path,
                    0,
                    "this master key does not unwrap the store's data keys (wrong master key file?)",
                )
            })?;
        let cipher = Aes256Gcm::new_from_slice(&key)
            .map_err(|_| LogError::Meta(format!("data key {id} does not have 32 bytes")))?;
        let k = DataKey {
            id,
            name: name.into(),
            cipher: Arc::new(cipher),
        };
        self.by_id.write().insert(id, k.clone());
        Ok(k)
    }

    /// A fresh random nonce for one encrypted batch.
    pub fn random_nonce(&self, dir: &Path) -> Result<[u8; NONCE_LEN]> {
        random(dir)
    }

    /// Encrypts the records of a frame laid out by
    /// [`format::encode_batch_encrypted`] in place.
    pub fn seal(&self, key: &DataKey, frame: &mut [u8]) -> Result<()> {
        let (aad, body, tag_out) = format::encrypted_parts(frame);
        let nonce_at = format::ENCRYPTED_BODY_START - NONCE_LEN;
        let nonce = *Nonce::from_slice(&aad[nonce_at - 24..]);
        let tag = key
            .cipher
            .encrypt_in_place_detached(&nonce, aad, body)
            .map_err(|_| LogError::TooLarge {
                field: "encrypted batch",
                len: body.len(),
                max: format::BATCH_BYTES_MAX,
            })?;
        tag_out.copy_from_slice(&tag);
        Ok(())
    }

    /// Decrypts an encrypted batch into a new buffer. A batch that fails
    /// authentication is `Corrupt` at its offset, never garbage.
    pub fn open(&self, b: &BatchView<'_>, path: &Path, offset: u64) -> Result<Bytes> {
        let Some(enc) = b.encryption else {
            return Ok(Bytes::new());
        };
        let key = self.by_id(enc.key_id)?;
        let (aad, body, tag) = b.ciphertext();
        let mut plain = body.to_vec();
        key.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&enc.nonce),
                aad,
                &mut plain,
                Tag::from_slice(tag),
            )
            .map_err(|_| corrupt(path, offset, "encrypted batch fails authentication"))?;
        Ok(Bytes::from(plain))
    }
}

fn parse_id(key: &str) -> Result<u32> {
    key[DATA_KEY_PREFIX.len()..]
        .parse()
        .map_err(|_| LogError::Meta(format!("bad data key entry {key:?}")))
}

/// Writes a new random master key: owner-only, synced, and never over an
/// existing file (`create_new`), so a race cannot replace a key in use.
fn create_master(path: &Path) -> Result<[u8; KEY_LEN]> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let key: [u8; KEY_LEN] = random(dir)?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(&key).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))?;
    segment::sync_dir(dir)?;
    Ok(key)
}
