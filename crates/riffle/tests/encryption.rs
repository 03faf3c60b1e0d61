//! Encryption at rest through the AWS SDK for Rust, with the master key in a
//! file outside the data directory (`--master-key-file`): records are stored
//! encrypted, read back in the clear, survive a SIGKILL, and cannot be read
//! by a server that lacks the key.

mod common;

use std::path::Path;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{EncryptionType, Record, ShardIteratorType};
use common::{Riffle, create_active, wait_active};

const PLAINTEXT: &[u8] = b"the vault code is 7f3a-91c2-encrypted-at-rest";

async fn read_all(client: &Client, stream: &str) -> Result<Vec<Record>, String> {
    let iterator = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?
        .shard_iterator
        .expect("GetShardIterator returns an iterator");
    let out = client
        .get_records()
        .shard_iterator(iterator)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(out.records)
}

/// Whether any file under `dir` contains `needle`.
fn any_file_contains(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            any_file_contains(&path, needle)
        } else {
            let bytes = std::fs::read(&path).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_encrypted_under_a_master_key_kept_outside_the_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key_file = keys.path().join("riffle-master.key");
    let key_flag = ["--master-key-file", key_file.to_str().unwrap()];
    let stream = "sealed";

    let mut riffle = Riffle::start_in(data.path(), &key_flag);
    let client = riffle.client();
    create_active(&client, stream, 1).await;
    client
        .start_stream_encryption()
        .stream_name(stream)
        .encryption_type(EncryptionType::Kms)
        .key_id("alias/aws/kinesis")
        .send()
        .await
        .unwrap();
    wait_active(&client, stream).await;
    let put = client
        .put_record()
        .stream_name(stream)
        .partition_key("k")
        .data(Blob::new(PLAINTEXT))
        .send()
        .await
        .unwrap();
    assert_eq!(put.encryption_type(), Some(&EncryptionType::Kms));

    let records = read_all(&client, stream).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].data().as_ref(), PLAINTEXT);
    assert_eq!(records[0].encryption_type(), Some(&EncryptionType::Kms));
    assert!(
        key_file.exists(),
        "the master key is created at the named file"
    );
    assert!(
        !data.path().join("keys/master.key").exists(),
        "no master key is kept in the data directory"
    );
    assert!(
        !any_file_contains(data.path(), PLAINTEXT),
        "the record's plaintext is on disk"
    );

    riffle.kill();
    let mut riffle = Riffle::start_in(data.path(), &key_flag);
    let records = read_all(&riffle.client(), stream).await.unwrap();
    assert_eq!(records.len(), 1, "the record survives SIGKILL");
    assert_eq!(records[0].data().as_ref(), PLAINTEXT);

    riffle.kill();
    let without_key = Riffle::start_in(data.path(), &[]);
    let refused = read_all(&without_key.client(), stream).await;
    assert!(
        refused.is_err(),
        "a server without the master key must not serve the records: {refused:?}"
    );
}
