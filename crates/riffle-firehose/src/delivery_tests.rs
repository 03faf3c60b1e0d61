//! Delivery end to end through the service: buffering by size and by
//! interval (on Tokio's paused clock), retries after sink failures with
//! nothing lost, re-delivery after a restart, and object names.

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
