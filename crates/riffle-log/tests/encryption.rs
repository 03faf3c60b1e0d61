//! Encryption at rest through the public API, on real files: encrypted
//! batches read back transparently, never appear in plaintext on disk, and a
//! missing or wrong master key or a tampered ciphertext is a clear error,
//! never garbage.

use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use riffle_log::{LogError, LogStore, ReadLimits, RecordIn, StoreConfig};

const ALL: ReadLimits = ReadLimits {
    records_max: usize::MAX,
    bytes_max: usize::MAX,
};
const SECRET: &[u8] = b"the-secret-plaintext-7f3a9c";

fn rec<'a>(pk: &'a str, data: &'a [u8]) -> RecordIn<'a> {
    RecordIn {
        partition_key: pk.as_bytes(),
        explicit_hash_key: None,
        data,
    }
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "seg") {
                out.push(p);
            }
        }
    }
    out
}

fn on_disk_contains(dir: &Path, needle: &[u8]) -> bool {
    segment_files(dir).iter().any(|p| {
        let bytes = std::fs::read(p).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle)
    })
}

#[tokio::test]
async fn encrypted_and_plain_batches_read_back_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
        let key = store.data_key("alias/aws/kinesis").unwrap();
        assert_eq!(key.name(), "alias/aws/kinesis");
        let log = store.open_log("s/0").unwrap();
        log.append(&[rec("a", b"plain-1")], 1).await.unwrap();
        let a = log
            .append_encrypted(&[rec("b", b"secret-1"), rec("c", b"")], 2, &key)
            .await
            .unwrap();
        assert_eq!(a.first_seq, 1);
        log.append(&[rec("d", b"plain-2")], 3).await.unwrap();
        store.shutdown().await.unwrap();
    }
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let log = store.open_log("s/0").unwrap();
    let got = log.read(0, ALL).unwrap().records;
    let seen: Vec<(&[u8], &[u8], bool)> = got
        .iter()
        .map(|r| (&r.partition_key[..], &r.data[..], r.encrypted))
        .collect();
    assert_eq!(
        seen,
        [
            (&b"a"[..], &b"plain-1"[..], false),
            (b"b", b"secret-1", true),
            (b"c", b"", true),
            (b"d", b"plain-2", false),
        ]
    );
    // Reading from the middle of an encrypted batch works too.
    let mid = log.read(2, ALL).unwrap().records;
    assert_eq!(mid[0].partition_key, &b"c"[..]);
}

#[tokio::test]
async fn segment_files_hold_no_plaintext_when_encrypted_and_do_when_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let key = store.data_key("k1").unwrap();
    let log = store.open_log("enc").unwrap();
    log.append_encrypted(&[rec("pk", SECRET)], 1, &key)
        .await
        .unwrap();
    assert!(!on_disk_contains(dir.path(), SECRET), "plaintext on disk");
    assert!(!on_disk_contains(dir.path(), b"pk\x00"));
    assert_eq!(&log.read(0, ALL).unwrap().records[0].data[..], SECRET);

    let plain = store.open_log("plain").unwrap();
    plain.append(&[rec("pk", SECRET)], 1).await.unwrap();
    assert!(
        on_disk_contains(dir.path(), SECRET),
        "the grep finds plaintext"
    );
}

#[tokio::test]
async fn data_keys_are_stable_per_name_and_the_master_key_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let a = store.data_key("a").unwrap();
    let b = store.data_key("b").unwrap();
    assert_eq!(
        format!("{:?}", store.data_key("a").unwrap()),
        format!("{a:?}")
    );
    assert_ne!(format!("{a:?}"), format!("{b:?}"));
    let master = dir.path().join("keys/master.key");
    let meta = std::fs::metadata(&master).unwrap();
    assert_eq!(meta.len(), 32);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    drop(store);
    // After a reopen the same name is the same key.
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(
        format!("{:?}", store.data_key("b").unwrap()),
        format!("{b:?}")
    );
}

async fn store_with_secret(dir: &Path) {
    let store = LogStore::open(dir, StoreConfig::default()).unwrap();
    let key = store.data_key("k").unwrap();
    let log = store.open_log("l").unwrap();
    log.append_encrypted(&[rec("pk", SECRET)], 1, &key)
        .await
        .unwrap();
    store.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_missing_master_key_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    store_with_secret(dir.path()).await;
    let master = dir.path().join("keys/master.key");
    std::fs::remove_file(&master).unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let log = store.open_log("l").unwrap();
    match log.read(0, ALL) {
        Err(LogError::Io { path, source }) => {
            assert_eq!(path, master);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a NotFound naming the key file, got {other:?}"),
    }
    // Nor is a new master key made up while data keys exist.
    assert!(store.data_key("other").is_err());
    assert!(!master.exists());
}

#[tokio::test]
async fn a_wrong_master_key_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    store_with_secret(dir.path()).await;
    let master = dir.path().join("keys/master.key");
    std::fs::write(&master, [7u8; 32]).unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let log = store.open_log("l").unwrap();
    match log.read(0, ALL) {
        Err(LogError::Corrupt { path, .. }) => assert_eq!(path, master),
        other => panic!("expected Corrupt naming the key file, got {other:?}"),
    }
    std::fs::write(&master, [7u8; 5]).unwrap();
    let store2 = {
        drop(log);
        drop(store);
        LogStore::open(dir.path(), StoreConfig::default()).unwrap()
    };
    let err = store2.open_log("l").unwrap().read(0, ALL).unwrap_err();
    assert!(err.to_string().contains("master.key"), "{err}");
}

#[tokio::test]
async fn a_master_key_file_named_by_the_caller_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let master = keys.path().join("riffle.key");
    {
        let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
        store.set_master_key_file(&master);
        let key = store.data_key("k").unwrap();
        let log = store.open_log("l").unwrap();
        log.append_encrypted(&[rec("pk", SECRET)], 1, &key)
            .await
            .unwrap();
    }
    assert!(master.exists());
    assert!(!dir.path().join("keys/master.key").exists());
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    store.set_master_key_file(&master);
    let got = store.open_log("l").unwrap().read(0, ALL).unwrap();
    assert_eq!(&got.records[0].data[..], SECRET);
}

#[tokio::test]
async fn tampered_ciphertext_is_corrupt_never_garbage() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path(), StoreConfig::default()).unwrap();
    let key = store.data_key("k").unwrap();
    let log = store.open_log("l").unwrap();
    log.append_encrypted(&[rec("pk", SECRET)], 1, &key)
        .await
        .unwrap();
    let seg = segment_files(dir.path()).pop().unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg)
        .unwrap();
    let mut frame = std::fs::read(&seg).unwrap()[32..].to_vec();
    let original = frame.clone();

    // A flipped ciphertext byte: the CRC catches it before decryption.
    frame[60] ^= 1;
    file.write_all_at(&frame, 32).unwrap();
    let err = log.read(0, ALL).unwrap_err();
    assert!(
        matches!(&err, LogError::Corrupt { reason, offset: 32, .. } if reason.contains("checksum")),
        "{err:?}"
    );

    // The same flip with the CRC recomputed: the GCM tag catches it.
    riffle_log::format::seal_batch(&mut frame, 0, 1);
    file.write_all_at(&frame, 32).unwrap();
    let err = log.read(0, ALL).unwrap_err();
    assert!(
        matches!(&err, LogError::Corrupt { reason, offset: 32, .. } if reason.contains("authentication")),
        "{err:?}"
    );

    // A changed record count (authenticated data), CRC recomputed.
    let mut frame = original.clone();
    frame[24] = 2;
    riffle_log::format::seal_batch(&mut frame, 0, 1);
    file.write_all_at(&frame, 32).unwrap();
    assert!(matches!(log.read(0, ALL), Err(LogError::Corrupt { .. })));

    file.write_all_at(&original, 32).unwrap();
    assert_eq!(&log.read(0, ALL).unwrap().records[0].data[..], SECRET);
}
