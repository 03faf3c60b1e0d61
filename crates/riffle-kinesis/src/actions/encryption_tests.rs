//! StartStreamEncryption / StopStreamEncryption driven through
//! `Kinesis::handle` on a real `LogStore`: records written while a stream
//! is encrypted are not on disk in plaintext, read back decrypted with
//! `EncryptionType` `KMS`, and the errors are AWS's exceptions.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::limits_tests::{b64, config, create, env_with, err, ok, open};
use crate::KinesisConfig;

const KEY: &str = "alias/aws/kinesis";

fn on_disk_contains(dir: &Path, needle: &[u8]) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "seg") {
                let bytes = std::fs::read(&p).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    return true;
                }
            }
        }
    }
    false
}

async fn put(k: &crate::Kinesis, data: &[u8]) -> Value {
    ok(
        k,
        "PutRecord",
        json!({"StreamName": "s", "PartitionKey": "pk", "Data": b64(data)}),
    )
    .await
}

/// Every record of the one-shard stream `s`: (data, EncryptionType).
async fn read_all(k: &crate::Kinesis) -> Vec<(Vec<u8>, String)> {
    let it = ok(
        k,
        "GetShardIterator",
        json!({"StreamName": "s", "ShardId": "shardId-000000000000",
               "ShardIteratorType": "TRIM_HORIZON"}),
    )
    .await;
    let out = ok(
        k,
        "GetRecords",
        json!({"ShardIterator": it["ShardIterator"]}),
    )
    .await;
    out["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let data = base64_simd::STANDARD
                .decode_to_vec(r["Data"].as_str().unwrap())
                .unwrap();
            (data, r["EncryptionType"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn summary_encryption(out: &Value) -> (Value, Value) {
    let s = &out["StreamDescriptionSummary"];
    (s["EncryptionType"].clone(), s["KeyId"].clone())
}

#[tokio::test]
async fn records_written_while_encrypted_are_ciphertext_on_disk_and_read_back_as_kms() {
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "s", 1).await;
    let before = put(k, b"plaintext-before-4d1e").await;
    assert_eq!(before["EncryptionType"], "NONE");

    ok(
        k,
        "StartStreamEncryption",
        json!({"StreamName": "s", "EncryptionType": "KMS", "KeyId": KEY}),
    )
    .await;
    let summary = ok(k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    assert_eq!(summary_encryption(&summary), (json!("KMS"), json!(KEY)));
    let described = ok(k, "DescribeStream", json!({"StreamName": "s"})).await;
    assert_eq!(described["StreamDescription"]["EncryptionType"], "KMS");
    assert_eq!(described["StreamDescription"]["KeyId"], KEY);

    let secret = b"secret-while-encrypted-9b2c";
    assert_eq!(put(k, secret).await["EncryptionType"], "KMS");
    let many = ok(
        k,
        "PutRecords",
        json!({"StreamName": "s", "Records": [
            {"PartitionKey": "a", "Data": b64(b"secret-batch-1-77aa")},
            {"PartitionKey": "b", "Data": b64(b"secret-batch-2-77aa")},
        ]}),
    )
    .await;
    assert_eq!(many["EncryptionType"], "KMS");
    assert_eq!(many["FailedRecordCount"], 0);

    assert!(on_disk_contains(env.dir.path(), b"plaintext-before-4d1e"));
    assert!(
        !on_disk_contains(env.dir.path(), secret),
        "plaintext on disk"
    );
    assert!(!on_disk_contains(env.dir.path(), b"secret-batch-"));

    ok(
        k,
        "StopStreamEncryption",
        json!({"StreamName": "s", "EncryptionType": "KMS", "KeyId": KEY}),
    )
    .await;
    let summary = ok(k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    assert_eq!(summary_encryption(&summary), (json!("NONE"), Value::Null));
    assert_eq!(
        put(k, b"plaintext-after-4d1e").await["EncryptionType"],
        "NONE"
    );
    assert!(on_disk_contains(env.dir.path(), b"plaintext-after-4d1e"));

    let expected = vec![
        (b"plaintext-before-4d1e".to_vec(), "NONE".to_owned()),
        (secret.to_vec(), "KMS".to_owned()),
        (b"secret-batch-1-77aa".to_vec(), "KMS".to_owned()),
        (b"secret-batch-2-77aa".to_vec(), "KMS".to_owned()),
        (b"plaintext-after-4d1e".to_vec(), "NONE".to_owned()),
    ];
    assert_eq!(read_all(k).await, expected);

    // The setting and the records survive a restart.
    ok(
        k,
        "StartStreamEncryption",
        json!({"StreamName": "s", "EncryptionType": "KMS", "KeyId": KEY}),
    )
    .await;
    let dir = env.dir;
    drop(env.kinesis);
    let k = open(dir.path(), config());
    let summary = ok(&k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    assert_eq!(summary_encryption(&summary), (json!("KMS"), json!(KEY)));
    assert_eq!(read_all(&k).await, expected);
}

#[tokio::test]
async fn encryption_requests_are_refused_in_aws_terms() {
    let env = env_with(config());
    let k = &env.kinesis;
    create(k, "s", 1).await;
    let start = |body: Value| err(k, "StartStreamEncryption", body);
    let (kind, _) = start(json!({"StreamName": "s", "EncryptionType": "KMS"})).await;
    assert_eq!(kind, "Validation");
    let (kind, msg) =
        start(json!({"StreamName": "s", "EncryptionType": "AES", "KeyId": KEY})).await;
    assert_eq!(kind, "Validation");
    assert!(msg.contains("enum value set: [NONE, KMS]"), "{msg}");
    let long = "k".repeat(2049);
    let (kind, msg) =
        start(json!({"StreamName": "s", "EncryptionType": "KMS", "KeyId": long})).await;
    assert_eq!(kind, "Validation");
    assert!(msg.contains("keyId"), "{msg}");
    let (kind, _) = start(json!({"StreamName": "s", "EncryptionType": "NONE", "KeyId": KEY})).await;
    assert_eq!(kind, "InvalidArgument");
    let (kind, _) =
        start(json!({"StreamName": "nope", "EncryptionType": "KMS", "KeyId": KEY})).await;
    assert_eq!(kind, "ResourceNotFound");

    let stop = |body: Value| err(k, "StopStreamEncryption", body);
    let (kind, msg) = stop(json!({"StreamName": "s", "EncryptionType": "KMS", "KeyId": KEY})).await;
    assert_eq!(kind, "InvalidArgument");
    assert!(msg.contains("not encrypted"), "{msg}");
    ok(
        k,
        "StartStreamEncryption",
        json!({"StreamName": "s", "EncryptionType": "KMS",
               "KeyId": "arn:aws:kms:us-east-1:123456789012:key/12345678-1234-1234-1234-123456789012"}),
    )
    .await;
    let (kind, msg) = stop(json!({"StreamName": "s", "EncryptionType": "KMS", "KeyId": KEY})).await;
    assert_eq!(kind, "InvalidArgument");
    assert!(msg.contains("does not match"), "{msg}");
}

#[tokio::test]
async fn the_stream_is_updating_while_encryption_is_applied_then_active() {
    let env = env_with(KinesisConfig {
        status_delay: Duration::from_millis(300),
        ..config()
    });
    let k = &env.kinesis;
    create(k, "s", 1).await;
    let status = |out: &Value| out["StreamDescriptionSummary"]["StreamStatus"].clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&ok(k, "DescribeStreamSummary", json!({"StreamName": "s"})).await) != "ACTIVE" {
        assert!(Instant::now() < deadline, "stream never became ACTIVE");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body = json!({"StreamName": "s", "EncryptionType": "KMS", "KeyId": KEY});
    ok(k, "StartStreamEncryption", body.clone()).await;
    let summary = ok(k, "DescribeStreamSummary", json!({"StreamName": "s"})).await;
    assert_eq!(status(&summary), "UPDATING");
    assert_eq!(summary_encryption(&summary), (json!("KMS"), json!(KEY)));
    let (kind, _) = err(k, "StopStreamEncryption", body.clone()).await;
    assert_eq!(kind, "ResourceInUse");
    while status(&ok(k, "DescribeStreamSummary", json!({"StreamName": "s"})).await) != "ACTIVE" {
        assert!(
            Instant::now() < deadline,
            "stream never became ACTIVE again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ok(k, "StopStreamEncryption", body).await;
}
