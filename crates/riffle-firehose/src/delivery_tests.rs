//! Delivery end to end through the service: buffering by size and by
//! interval (on Tokio's paused clock), retries after sink failures with
//! nothing lost, re-delivery after a restart, object names from AWS's
//! custom prefixes, compressed bodies, the backup lane, the checks of
//! prefixes at create and update, and the delivery metrics.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use crate::testkit::{Harness, MemorySink, records};

const MIB: usize = 1024 * 1024;
/// An interval counts from the arrival of a buffer's first record, stamped
/// (in real time) before the put is acknowledged: how much earlier than
/// the acknowledgement a flush may come.
const SLACK_S: u64 = 5;

#[tokio::test(start_paused = true)]
async fn a_full_buffer_is_delivered_before_its_interval() {
    let h = Harness::new();
    h.create("s", 1, 900).await;
    let data = records(500, 2_200);
    let all: Vec<u8> = data.concat();
    let t0 = tokio::time::Instant::now();
    let put = h.put_batch("s", &data).await;
    assert_eq!(put["FailedPutCount"], 0);
    let first = h.sink.wait_for_bytes(MIB).await;
    assert_eq!(first.len(), 1);
    assert!(
        first[0].at - t0 < Duration::from_secs(1),
        "flushed by size, not by time"
    );
    assert!(first[0].body.len() >= MIB && first[0].body.len() < MIB + 2_200);
    assert_eq!(&first[0].body[..], &all[..first[0].body.len()]);
    // The rest waits for the interval.
    let both = h.sink.wait_for_bytes(all.len()).await;
    assert_eq!(both.len(), 2);
    // Counted from the records' arrival (a little before `t0`, in real
    // time; the slack allows for a slow disk).
    assert!(both[1].at - t0 >= Duration::from_secs(900 - SLACK_S));
    assert_eq!(h.sink.all_bytes(), all);
}

#[tokio::test(start_paused = true)]
async fn a_buffer_is_delivered_when_its_interval_passes_with_records_as_they_came() {
    let h = Harness::new();
    h.create("s", 128, 60).await;
    // Taken before the put: while the put waits for the log's writer
    // thread, paused time may already move on to the buffer's deadline.
    let t0 = tokio::time::Instant::now();
    h.put_batch("s", &[b"a\n".to_vec(), b"bc".to_vec(), b"d".to_vec()])
        .await;
    let objects = h.sink.wait_for_bytes(5).await;
    let elapsed = objects[0].at - t0;
    assert!(
        elapsed >= Duration::from_secs(60 - SLACK_S) && elapsed < Duration::from_secs(61),
        "{elapsed:?}"
    );
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].bucket, "b");
    // No delimiter added.
    assert_eq!(&objects[0].body[..], b"a\nbcd");
    // YYYY/MM/dd/HH/s-1-YYYY-MM-DD-HH-MM-SS-<uuid>
    let key = &objects[0].key;
    let (path, name) = key.rsplit_once('/').unwrap();
    assert_eq!(path.len(), "2026/12/06/02".len(), "{key}");
    assert!(name.starts_with("s-1-20"), "{key}");
    assert_eq!(name.len(), "s-1-2026-12-06-02-45-07-".len() + 36, "{key}");
}

#[tokio::test(start_paused = true)]
async fn a_failing_sink_is_retried_with_nothing_lost_or_repeated() {
    let h = Harness::new();
    h.sink.fail_next.store(5, Ordering::SeqCst);
    h.create("s", 128, 0).await;
    let data = records(50, 100);
    h.put_batch("s", &data).await;
    h.sink.wait_for_bytes(5_000).await;
    assert_eq!(h.sink.all_bytes(), data.concat());
    assert_eq!(h.sink.attempts.load(Ordering::SeqCst), 6);
    let mut metrics = String::new();
    h.firehose.write_metrics(&mut metrics);
    for line in [
        "riffle_firehose_incoming_records_total{delivery_stream=\"s\"} 50",
        "riffle_firehose_delivery_to_s3_records_total{delivery_stream=\"s\"} 50",
        "riffle_firehose_delivery_to_s3_bytes_total{delivery_stream=\"s\"} 5000",
        "riffle_firehose_delivery_to_s3_object_count_total{delivery_stream=\"s\"} 1",
        "riffle_firehose_delivery_to_s3_failed_puts_total{delivery_stream=\"s\"} 5",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_bucket_that_is_down_does_not_hold_up_other_streams() {
    let h = Harness::new();
    *h.sink.fail_bucket.lock() = Some("down".into());
    h.create_to("stuck", "down", 128, 0).await;
    h.create_to("fine", "b", 128, 0).await;
    h.put_batch("stuck", &[b"later".to_vec()]).await;
    h.sink.wait_for_attempts(3).await;
    h.put_batch("fine", &[b"now".to_vec()]).await;
    let objects = h.sink.wait_for_bytes(3).await;
    assert_eq!(
        (objects[0].bucket.as_str(), &objects[0].body[..]),
        ("b", &b"now"[..])
    );
    *h.sink.fail_bucket.lock() = None;
    let objects = h.sink.wait_for_bytes(8).await;
    assert_eq!(objects[1].bucket, "down");
    assert_eq!(&objects[1].body[..], b"later");
}

#[tokio::test(start_paused = true)]
async fn a_restart_delivers_what_was_acknowledged_but_not_delivered() {
    let h = Harness::new();
    h.sink.fail_always.store(true, Ordering::SeqCst);
    h.create("s", 128, 0).await;
    let data = records(20, 50);
    h.put_batch("s", &data).await;
    h.sink.wait_for_attempts(2).await;
    let h = h.restart(Arc::new(MemorySink::default())).await;
    h.sink.wait_for_bytes(1_000).await;
    assert_eq!(h.sink.all_bytes(), data.concat());
}

#[tokio::test(start_paused = true)]
async fn delivered_records_are_not_delivered_again_after_a_restart() {
    let h = Harness::new();
    h.create("s", 128, 0).await;
    h.put_batch("s", &[b"first".to_vec()]).await;
    h.sink.wait_for_bytes(5).await;
    // The delivered position is committed after the object is stored:
    // wait for it before stopping.
    let key = h.firehose.get("s").unwrap().record().delivered_key();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h.store.meta().get(&key).unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let h = h.restart(Arc::new(MemorySink::default())).await;
    h.put_batch("s", &[b"second".to_vec()]).await;
    h.sink.wait_for_bytes(6).await;
    assert_eq!(h.sink.all_bytes(), b"second");
}

#[tokio::test(start_paused = true)]
async fn objects_after_an_update_carry_the_new_version_and_prefix() {
    let h = Harness::new();
    h.create("s", 128, 0).await;
    h.put_batch("s", &[b"v1".to_vec()]).await;
    let objects = h.sink.wait_for_bytes(2).await;
    assert!(objects[0].key.contains("/s-1-"), "{}", objects[0].key);
    h.call(
        "UpdateDestination",
        json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "1",
               "DestinationId": "destinationId-000000000001",
               "ExtendedS3DestinationUpdate": {"Prefix": "raw-data/"}}),
    )
    .await
    .unwrap();
    h.put_batch("s", &[b"v2".to_vec()]).await;
    let objects = h.sink.wait_for_bytes(4).await;
    let key = &objects[1].key;
    assert!(
        key.starts_with("raw-data/20") && key.contains("/s-2-"),
        "{key}"
    );
}

// Real time: the old stream's 900 s interval must not pass during the test.
#[tokio::test]
async fn a_deleted_streams_records_never_reach_its_successor() {
    let h = Harness::new();
    h.create("s", 128, 900).await;
    h.put_batch("s", &[b"old".to_vec()]).await;
    let old_record = h.firehose.get("s").unwrap().record();
    let log_name = old_record.log_name();
    // riffle-log keeps log `a/b` in the directory `logs/a+b`.
    let old_log = h.dir.path().join("logs").join(log_name.replace('/', "+"));
    assert!(old_log.exists());
    h.call("DeleteDeliveryStream", json!({"DeliveryStreamName": "s"}))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h.firehose.get("s").is_some() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.create("s", 128, 0).await;
    h.put_batch("s", &[b"new".to_vec()]).await;
    h.sink.wait_for_bytes(3).await;
    assert_eq!(h.sink.all_bytes(), b"new");
    let stored = h.store.meta().get("firehose/stream/s").unwrap().unwrap();
    let current = crate::catalog::StreamRecord::decode("firehose/stream/s", &stored).unwrap();
    assert_ne!(current.incarnation, old_record.incarnation);
    assert!(!old_log.exists(), "the deleted stream's log is gone");
}

#[tokio::test(start_paused = true)]
async fn encrypted_records_are_delivered_as_they_were_put_also_after_a_restart() {
    let h = Harness::new();
    h.create("s", 128, 0).await;
    h.call(
        "StartDeliveryStreamEncryption",
        json!({"DeliveryStreamName": "s",
               "DeliveryStreamEncryptionConfigurationInput": {
                   "KeyType": "CUSTOMER_MANAGED_CMK",
                   "KeyARN": "arn:aws:kms:us-east-1:000000000000:key/k1"}}),
    )
    .await
    .unwrap();
    h.sink.fail_always.store(true, Ordering::SeqCst);
    let put = h.put_batch("s", &[b"secret".to_vec()]).await;
    assert_eq!(put["Encrypted"], true);
    h.sink.wait_for_attempts(1).await;
    let h = h.restart(Arc::new(MemorySink::default())).await;
    h.put_batch("s", &[b"-more".to_vec()]).await;
    h.sink.wait_for_bytes(11).await;
    assert_eq!(h.sink.all_bytes(), b"secret-more");
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(body), &mut out).unwrap();
    out
}

/// `yyyy/MM/dd` of `ms` in `zone`.
fn local_date(ms: i64, zone: &str) -> String {
    let zone = jiff::tz::TimeZone::get(zone).unwrap();
    let t = crate::destination::timestamp(ms).to_zoned(zone);
    format!("{:04}/{:02}/{:02}", t.year(), t.month(), t.day())
}

async fn create_with(h: &Harness, name: &str, destination: serde_json::Value) {
    let mut config = json!({
        "RoleARN": crate::testkit::ROLE,
        "BucketARN": "arn:aws:s3:::b",
        "BufferingHints": {"SizeInMBs": 128, "IntervalInSeconds": 0},
    });
    for (k, v) in destination.as_object().unwrap() {
        config[k] = v.clone();
    }
    h.call(
        "CreateDeliveryStream",
        json!({"DeliveryStreamName": name, "ExtendedS3DestinationConfiguration": config}),
    )
    .await
    .unwrap();
}

fn metric(h: &Harness, name: &str, stream: &str) -> i64 {
    let mut out = String::new();
    h.firehose.write_metrics(&mut out);
    let prefix = format!("riffle_firehose_{name}{{delivery_stream=\"{stream}\"}} ");
    out.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{prefix} not in\n{out}"))
        .parse()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn gzip_objects_are_named_by_the_evaluated_prefix_in_the_custom_time_zone() {
    let h = Harness::new();
    create_with(
        &h,
        "s",
        json!({"Prefix": "raw-data/!{timestamp:yyyy/MM/dd}/",
               "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
               "CustomTimeZone": "Asia/Tokyo", "CompressionFormat": "GZIP"}),
    )
    .await;
    let before = crate::time::now_ms();
    let data = records(30, 40);
    h.put_batch("s", &data).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h.sink.objects.lock().is_empty() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = crate::time::now_ms();
    let object = h.sink.objects.lock()[0].clone();
    assert_eq!(gunzip(&object.body), data.concat(), "records as they came");
    // raw-data/<Tokyo date>/s-1-YYYY-MM-DD-HH-MM-SS-<uuid>.gz
    let dates = [
        local_date(before, "Asia/Tokyo"),
        local_date(after, "Asia/Tokyo"),
    ];
    let key = &object.key;
    assert!(
        dates
            .iter()
            .any(|d| key.starts_with(&format!("raw-data/{d}/s-1-{}-", d.replace('/', "-")))),
        "{key} not under {dates:?}"
    );
    assert!(key.ends_with(".gz"), "{key}");
    let name = key.rsplit('/').next().unwrap();
    assert_eq!(
        name.len(),
        "s-1-2026-12-06-11-45-07-".len() + 36 + ".gz".len(),
        "{key}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_file_extension_replaces_the_compressions_and_zip_holds_the_records() {
    let h = Harness::new();
    create_with(
        &h,
        "s",
        json!({"Prefix": "logs/", "CompressionFormat": "ZIP", "FileExtension": ".json.zip"}),
    )
    .await;
    h.put_batch("s", &[b"{\"a\":1}\n".to_vec(), b"{\"a\":2}\n".to_vec()])
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h.sink.objects.lock().is_empty() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let object = h.sink.objects.lock()[0].clone();
    assert!(object.key.starts_with("logs/20"), "{}", object.key);
    assert!(object.key.ends_with(".json.zip"), "{}", object.key);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(object.body.to_vec())).unwrap();
    assert_eq!(archive.len(), 1);
    let mut entry = archive.by_index(0).unwrap();
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut out).unwrap();
    assert_eq!(out, b"{\"a\":1}\n{\"a\":2}\n");
}

#[tokio::test]
async fn prefixes_time_zones_and_partition_keys_are_checked_as_aws_checks_them() {
    let h = Harness::new();
    let create = |name: &str, destination: serde_json::Value| {
        let mut config = json!({"RoleARN": crate::testkit::ROLE, "BucketARN": "arn:aws:s3:::b"});
        for (k, v) in destination.as_object().unwrap() {
            config[k] = v.clone();
        }
        json!({"DeliveryStreamName": name, "ExtendedS3DestinationConfiguration": config})
    };
    let cases = [
        (
            json!({"Prefix": "raw/!{timestamp:yyyy}/"}),
            "Ths supplied prefix(es) do not satisfy the following constraint: ErrorOutputPrefix cannot be null or empty when Prefix contains expressions",
        ),
        (
            json!({"Prefix": "raw/!{timestamp:yyyy}/", "ErrorOutputPrefix": "errors/!{timestamp:yyyy}/"}),
            "Ths supplied prefix(es) do not satisfy the following constraint: ErrorOutputPrefix must contain at least one occurrence of !{firehose:error-output-type}",
        ),
        (
            json!({"Prefix": "raw/!{nope:x}/", "ErrorOutputPrefix": "e/!{firehose:error-output-type}"}),
            "Namespace to the left of colon (nope) is an invalid keyword!",
        ),
        (
            json!({"Prefix": "raw/!{timestamp:yyyy}/!{partitionKeyFromQuery:id}/",
                   "ErrorOutputPrefix": "e/!{firehose:error-output-type}/"}),
            "Dynamic Partitioning Namespaces can only be part of a prefix expression when Dynamic Partitioning is enabled.",
        ),
        (
            json!({"CustomTimeZone": "Mars/Olympus_Mons"}),
            "CustomTimeZone Mars/Olympus_Mons is not a supported time zone",
        ),
        (
            json!({"S3BackupMode": "Enabled", "S3BackupConfiguration": {
                "RoleARN": crate::testkit::ROLE, "BucketARN": "arn:aws:s3:::bk",
                "Prefix": "backup/!{timestamp:yyyy}/"}}),
            "Ths supplied prefix(es) do not satisfy the following constraint: ErrorOutputPrefix cannot be null or empty when Prefix contains expressions",
        ),
    ];
    for (destination, message) in cases {
        let (code, got) = h
            .error("CreateDeliveryStream", create("s", destination.clone()))
            .await;
        assert_eq!(
            (code, got.as_str()),
            ("InvalidArgumentException", message),
            "{destination}"
        );
    }
    assert!(h.firehose.get("s").is_none(), "nothing was created");
    // An update is checked on the destination it results in.
    h.create("s", 128, 0).await;
    let (code, message) = h
        .error(
            "UpdateDestination",
            json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "1",
                   "DestinationId": "destinationId-000000000001",
                   "ExtendedS3DestinationUpdate": {"Prefix": "raw/!{timestamp:yyyy}/"}}),
        )
        .await;
    assert_eq!(code, "InvalidArgumentException");
    assert!(
        message.ends_with(
            "ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"
        ),
        "{message}"
    );
    assert_eq!(
        h.firehose.get("s").unwrap().record().version,
        1,
        "not applied"
    );
    h.call(
        "UpdateDestination",
        json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "1",
               "DestinationId": "destinationId-000000000001",
               "ExtendedS3DestinationUpdate": {"Prefix": "raw/!{timestamp:yyyy}/",
                   "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/"}}),
    )
    .await
    .unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_enabled_backup_gets_the_source_records_with_its_own_prefix_and_compression() {
    let h = Harness::new();
    create_with(
        &h,
        "s",
        json!({"Prefix": "out/", "S3BackupMode": "Enabled",
               "S3BackupConfiguration": {"RoleARN": crate::testkit::ROLE,
                   "BucketARN": "arn:aws:s3:::bk", "Prefix": "source/",
                   "CompressionFormat": "GZIP",
                   "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}}),
    )
    .await;
    let data = records(10, 10);
    h.put_batch("s", &data).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h.sink.objects.lock().len() < 2 {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let objects = h.sink.objects.lock().clone();
    let main = objects.iter().find(|o| o.bucket == "b").unwrap();
    let backup = objects.iter().find(|o| o.bucket == "bk").unwrap();
    assert_eq!(&main.body[..], &data.concat()[..]);
    assert!(
        main.key.starts_with("out/20") && !main.key.ends_with(".gz"),
        "{}",
        main.key
    );
    assert_eq!(gunzip(&backup.body), data.concat());
    assert!(
        backup.key.starts_with("source/20") && backup.key.ends_with(".gz"),
        "{}",
        backup.key
    );
    assert_eq!(metric(&h, "backup_to_s3_records_total", "s"), 10);
    assert_eq!(metric(&h, "backup_to_s3_object_count_total", "s"), 1);
    assert_eq!(
        metric(&h, "backup_to_s3_bytes_total", "s"),
        backup.body.len() as i64
    );
    assert_eq!(metric(&h, "backup_to_s3_success", "s"), 1);
    assert_eq!(metric(&h, "delivery_to_s3_records_total", "s"), 10);
}

#[tokio::test(start_paused = true)]
async fn a_backup_enabled_by_an_update_backs_up_later_records_also_across_a_restart() {
    let h = Harness::new();
    h.create("s", 128, 0).await;
    h.put_batch("s", &[b"before".to_vec()]).await;
    h.sink.wait_for_bytes(6).await;
    h.call(
        "UpdateDestination",
        json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "1",
               "DestinationId": "destinationId-000000000001",
               "ExtendedS3DestinationUpdate": {"S3BackupMode": "Enabled",
                   "S3BackupUpdate": {"RoleARN": crate::testkit::ROLE, "BucketARN": "arn:aws:s3:::bk",
                       "BufferingHints": {"IntervalInSeconds": 0}}}}),
    )
    .await
    .unwrap();
    // The backup records its start before it takes records.
    let key = h.firehose.get("s").unwrap().record().backup_delivered_key();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while h.store.meta().get(&key).unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    *h.sink.fail_bucket.lock() = Some("bk".into());
    h.put_batch("s", &[b"after".to_vec()]).await;
    h.sink.wait_for_bytes(11).await;
    // The backup of `after` failed so far; a restart delivers it.
    let h = h.restart(Arc::new(MemorySink::default())).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !h.sink.objects.lock().iter().any(|o| o.bucket == "bk") {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let backups: Vec<Vec<u8>> = h
        .sink
        .objects
        .lock()
        .iter()
        .filter(|o| o.bucket == "bk")
        .map(|o| o.body.to_vec())
        .collect();
    assert_eq!(
        backups.concat(),
        b"after",
        "only records after the enabling"
    );
}

#[tokio::test(start_paused = true)]
async fn an_object_failing_past_the_retry_duration_is_counted_and_still_delivered() {
    let h = Harness::with_config(crate::FirehoseConfig {
        s3_retry_duration: Duration::from_secs(20),
        ..crate::testkit::config()
    });
    h.sink.fail_always.store(true, Ordering::SeqCst);
    h.create("s", 128, 0).await;
    h.put_batch("s", &records(3, 5)).await;
    // Backoff reaches 5 s: 20 s of failures take a handful of attempts.
    h.sink.wait_for_attempts(12).await;
    assert_eq!(
        metric(&h, "delivery_to_s3_records_past_retry_duration_total", "s"),
        3
    );
    assert_eq!(metric(&h, "delivery_to_s3_success", "s"), 0);
    assert_eq!(metric(&h, "delivery_to_s3_object_count_total", "s"), 0);
    h.sink.fail_always.store(false, Ordering::SeqCst);
    h.sink.wait_for_bytes(15).await;
    assert_eq!(h.sink.all_bytes(), records(3, 5).concat(), "not dropped");
    assert_eq!(metric(&h, "delivery_to_s3_success", "s"), 1);
    let puts = metric(&h, "delivery_to_s3_puts_total", "s");
    let failed = metric(&h, "delivery_to_s3_failed_puts_total", "s");
    assert_eq!(puts - failed, 1, "one put stored the object");
}

// Real time: DataFreshness is measured on the wall clock.
#[tokio::test]
async fn data_freshness_is_the_age_of_the_oldest_record_at_delivery() {
    let h = Harness::new();
    h.create("s", 128, 1).await;
    assert_eq!(metric(&h, "delivery_to_s3_success", "s"), -1, "no put yet");
    h.put_batch("s", &[b"a".to_vec()]).await;
    h.put_batch("s", &[b"b".to_vec()]).await;
    h.sink.wait_for_bytes(2).await;
    let freshness = metric(&h, "delivery_to_s3_data_freshness_milliseconds", "s");
    // The buffer waited its 1 s interval from the first record's arrival
    // (less the milliseconds' rounding of the two clocks).
    assert!((990..30_000).contains(&freshness), "{freshness}");
}

#[tokio::test(start_paused = true)]
async fn a_backup_that_never_delivered_delivers_every_record_after_a_restart() {
    let h = Harness::new();
    create_with(
        &h,
        "s",
        json!({"S3BackupMode": "Enabled",
               "S3BackupConfiguration": {"RoleARN": crate::testkit::ROLE,
                   "BucketARN": "arn:aws:s3:::bk",
                   "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0}}}),
    )
    .await;
    *h.sink.fail_bucket.lock() = Some("bk".into());
    let data = records(5, 20);
    h.put_batch("s", &data).await;
    // The destination got them; the backup has recorded no position yet.
    h.sink.wait_for_bytes(100).await;
    let h = h.restart(Arc::new(MemorySink::default())).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !h.sink.objects.lock().iter().any(|o| o.bucket == "bk") {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let backup = h
        .sink
        .objects
        .lock()
        .iter()
        .find(|o| o.bucket == "bk")
        .cloned()
        .unwrap();
    assert_eq!(&backup.body[..], &data.concat()[..]);
}

/// The value of `riffle_firehose_<name>{delivery_stream="s"}`.
fn gauge(h: &Harness, name: &str) -> i64 {
    let mut out = String::new();
    h.firehose.write_metrics(&mut out);
    let prefix = format!("riffle_firehose_{name}{{delivery_stream=\"s\"}} ");
    out.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {prefix} in\n{out}"))
        .parse()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_buffer_gauges_show_what_waits_for_the_interval_and_empty_when_it_is_delivered() {
    let h = Harness::new();
    h.create("s", 128, 60).await;
    let data = records(4, 100);
    assert_eq!(h.put_batch("s", &data).await["FailedPutCount"], 0);
    // The lane reads what was put into its buffer as it arrives. Wait for
    // that in real time, and with Tokio's paused clock held still (a
    // blocking task keeps it from advancing): on a busy machine the
    // lane's read can take longer than the 60 s interval on a clock that
    // jumps 50 ms a poll, and the buffer would be flushed unseen.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while gauge(&h, "delivery_to_s3_buffered_records") < 4 {
        assert!(std::time::Instant::now() < deadline, "never buffered");
        tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(5)))
            .await
            .unwrap();
    }
    assert_eq!(gauge(&h, "delivery_to_s3_buffered_bytes"), 400);
    assert!(h.sink.objects.lock().is_empty(), "not flushed yet");
    assert_eq!(gauge(&h, "backup_to_s3_buffered_records"), 0);
    h.sink.wait_for_bytes(400).await;
    // Counted once the object is stored; the buffer emptied before that.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while gauge(&h, "delivery_to_s3_records_total") < 4 {
        assert!(tokio::time::Instant::now() < deadline, "never counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(gauge(&h, "delivery_to_s3_buffered_records"), 0);
    assert_eq!(gauge(&h, "delivery_to_s3_buffered_bytes"), 0);
    assert_eq!(gauge(&h, "delivery_to_s3_buffer_age_milliseconds"), 0);
}
