//! The server's life: every acknowledged record survives SIGKILL, SIGTERM
//! and SIGINT stop it cleanly with exit code 0, and shard iterators expire.

mod common;

use std::cmp::Ordering;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as AtomicOrdering};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, Record, ShardIteratorType, StreamStatus};
use common::{Riffle, create_active, error_of, eventually, wait_active};

const STREAM: &str = "durable";
const SHARDS: i32 = 2;

fn seq_cmp(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Every record of a shard, from TRIM_HORIZON to the tip.
async fn read_shard(client: &Client, shard: &str) -> Vec<Record> {
    let mut iterator = client
        .get_shard_iterator()
        .stream_name(STREAM)
        .shard_id(shard)
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_owned();
    let mut records = Vec::new();
    loop {
        let out = client
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .unwrap();
        if out.records().is_empty() && out.millis_behind_latest() == Some(0) {
            return records;
        }
        records.extend(out.records().iter().cloned());
        iterator = out.next_shard_iterator().unwrap().to_owned();
    }
}

/// An acknowledged write: where it went and what it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Acked {
    shard: String,
    seq: String,
    data: Vec<u8>,
}

#[tokio::test]
async fn acknowledged_records_survive_sigkill_and_sequence_numbers_keep_growing() {
    let dir = tempfile::tempdir().unwrap();
    let mut riffle = Riffle::start_in(dir.path(), &["--fsync", "always"]);
    let client = riffle.client();
    create_active(&client, STREAM, SHARDS).await;

    // Batches first, then single records from a writer that is still
    // running when the server is killed.
    let mut acked: Vec<Acked> = Vec::new();
    for batch in 0..5 {
        let entries: Vec<PutRecordsRequestEntry> = (0..50)
            .map(|i| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("key-{i}"))
                    .data(Blob::new(format!("batch-{batch}-{i}")))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = client
            .put_records()
            .stream_name(STREAM)
            .set_records(Some(entries.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_record_count(), Some(0));
        for (result, entry) in out.records().iter().zip(&entries) {
            acked.push(Acked {
                shard: result.shard_id().unwrap().to_owned(),
                seq: result.sequence_number().unwrap().to_owned(),
                data: entry.data().as_ref().to_vec(),
            });
        }
    }
    let writing = Arc::new(AtomicBool::new(true));
    let landed = Arc::new(AtomicUsize::new(0));
    let writer = {
        let client = client.clone();
        let writing = Arc::clone(&writing);
        let landed = Arc::clone(&landed);
        tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0;
            while writing.load(AtomicOrdering::Relaxed) {
                let data = format!("single-{i}").into_bytes();
                let put = client
                    .put_record()
                    .stream_name(STREAM)
                    .partition_key(format!("single-{i}"))
                    .data(Blob::new(data.clone()))
                    .send()
                    .await;
                // Once the server is gone, writes fail: those were never
                // acknowledged and carry no promise.
                let Ok(out) = put else { break };
                acked.push(Acked {
                    shard: out.shard_id().to_owned(),
                    seq: out.sequence_number().to_owned(),
                    data,
                });
                landed.fetch_add(1, AtomicOrdering::Relaxed);
                i += 1;
            }
            acked
        })
    };
    // Kill while the writer is mid-stream, once it has made progress.
    let landed_ref = &landed;
    eventually(
        Duration::from_secs(30),
        "the writer to land 50 records",
        move || async move { (landed_ref.load(AtomicOrdering::Relaxed) >= 50).then_some(()) },
    )
    .await;
    riffle.kill();
    writing.store(false, AtomicOrdering::Relaxed);
    let singles = writer.await.unwrap();
    assert!(
        singles.len() >= 50,
        "the writer landed {} records",
        singles.len()
    );
    acked.extend(singles);

    let mut riffle = Riffle::start_in(dir.path(), &["--fsync", "always"]);
    let client = riffle.client();
    let mut last_seq: Vec<(String, String)> = Vec::new();
    for shard in 0..SHARDS {
        let shard = format!("shardId-{shard:012}");
        let records = read_shard(&client, &shard).await;
        let wanted: Vec<&Acked> = acked.iter().filter(|a| a.shard == shard).collect();
        // Every acknowledged record, in order, with its sequence number;
        // at most the one write in flight at the kill may follow them.
        assert!(
            records.len() == wanted.len() || records.len() == wanted.len() + 1,
            "{shard}: {} records read back, {} acknowledged",
            records.len(),
            wanted.len()
        );
        for (record, want) in records.iter().zip(&wanted) {
            assert_eq!(record.sequence_number(), want.seq, "{shard}");
            assert_eq!(record.data().as_ref(), &want.data[..], "{shard}");
        }
        if let Some(last) = records.last() {
            last_seq.push((shard.clone(), last.sequence_number().to_owned()));
        }
    }
    assert_eq!(last_seq.len(), SHARDS as usize);

    // New writes get larger sequence numbers than anything before the crash.
    for (shard, old) in &last_seq {
        let hash = if shard.ends_with('0') {
            "0"
        } else {
            "340282366920938463463374607431768211455"
        };
        let out = client
            .put_record()
            .stream_name(STREAM)
            .partition_key("after-restart")
            .explicit_hash_key(hash)
            .data(Blob::new("after"))
            .send()
            .await
            .unwrap();
        assert_eq!(out.shard_id(), shard);
        assert_eq!(
            seq_cmp(old, out.sequence_number()),
            Ordering::Less,
            "{shard}: {} after {old}",
            out.sequence_number()
        );
    }
    assert_eq!(riffle.terminate().code(), Some(0), "{}", riffle.log());
}

async fn stop_with(signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    let mut riffle = Riffle::start_in(dir.path(), &[]);
    let client = riffle.client();
    create_active(&client, STREAM, 1).await;
    let put = client
        .put_record()
        .stream_name(STREAM)
        .partition_key("k")
        .data(Blob::new("kept"))
        .send()
        .await
        .unwrap();
    riffle.signal(signal);
    let status = riffle.wait_exit();
    assert_eq!(status.code(), Some(0), "{status:?}; log:\n{}", riffle.log());
    // Stopped means stopped: the port no longer accepts connections.
    assert!(std::net::TcpStream::connect(riffle.addr).is_err());

    let riffle = Riffle::start_in(dir.path(), &[]);
    let records = read_shard(&riffle.client(), "shardId-000000000000").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].sequence_number(), put.sequence_number());
    assert_eq!(records[0].data().as_ref(), b"kept");
}

#[tokio::test]
async fn sigterm_stops_the_server_with_exit_code_zero_and_keeps_the_data() {
    stop_with(libc::SIGTERM).await;
}

#[tokio::test]
async fn sigint_stops_the_server_with_exit_code_zero_and_keeps_the_data() {
    stop_with(libc::SIGINT).await;
}

#[tokio::test]
async fn shard_iterators_expire_after_their_ttl() {
    // A 2-second lifetime instead of AWS's 5 minutes (a hidden flag).
    let riffle = Riffle::start_with_args(&["--shard-iterator-ttl-ms", "2000"]);
    let client = riffle.client();
    create_active(&client, STREAM, 1).await;
    let iterator = client
        .get_shard_iterator()
        .stream_name(STREAM)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_owned();
    // Fresh, it works, and hands out a fresh one.
    let next = client
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .unwrap()
        .next_shard_iterator()
        .unwrap()
        .to_owned();
    assert_ne!(next, iterator);

    let (client, iterator) = (&client, &iterator);
    let (code, message) = eventually(
        Duration::from_secs(30),
        "the iterator to expire",
        move || async move {
            let err = client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
                .err()?;
            Some(error_of(&err))
        },
    )
    .await;
    assert_eq!(code, "ExpiredIteratorException", "{message}");
    assert!(message.starts_with("Iterator expired."), "{message}");
}

#[tokio::test]
async fn streams_pass_through_creating_and_deleting_as_aws_streams_do() {
    // Long enough that the checks right after each call see the
    // transitional status even on a loaded machine.
    let riffle = Riffle::start_with_args(&["--status-delay-ms", "1500"]);
    let client = riffle.client();
    let name = "slow";
    client
        .create_stream()
        .stream_name(name)
        .shard_count(1)
        .send()
        .await
        .unwrap();
    let status = |client: Client| async move {
        client
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .map(|out| {
                out.stream_description_summary()
                    .unwrap()
                    .stream_status()
                    .clone()
            })
    };
    assert_eq!(
        status(client.clone()).await.unwrap(),
        StreamStatus::Creating
    );
    // A CREATING stream takes no records yet.
    let err = client
        .put_record()
        .stream_name(name)
        .partition_key("k")
        .data(Blob::new("early"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_of(&err).0, "ResourceNotFoundException", "{err:?}");
    wait_active(&client, name).await;

    client
        .delete_stream()
        .stream_name(name)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status(client.clone()).await.unwrap(),
        StreamStatus::Deleting
    );
    let client_ref = &client;
    eventually(
        Duration::from_secs(10),
        "the stream to be gone",
        move || async move {
            let err = status(client_ref.clone()).await.err()?;
            assert_eq!(error_of(&err).0, "ResourceNotFoundException");
            Some(())
        },
    )
    .await;
}

#[tokio::test]
async fn sigterm_lets_a_request_already_in_flight_finish() {
    use std::io::{Read, Write};

    let dir = tempfile::tempdir().unwrap();
    let mut riffle = Riffle::start_in(dir.path(), &[]);
    create_active(&riffle.client(), STREAM, 1).await;

    // A PutRecord whose body is still on its way: with `Expect:
    // 100-continue` the server says "100 Continue" once the handler reads
    // the body, so the test knows the request is in flight.
    let body = format!(r#"{{"StreamName":"{STREAM}","PartitionKey":"k","Data":"aW4tZmxpZ2h0"}}"#);
    let (head, tail) = body.split_at(body.len() / 2);
    let mut socket = std::net::TcpStream::connect(riffle.addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: Kinesis_20131202.PutRecord\r\nExpect: 100-continue\r\n\
         Content-Length: {}\r\n",
        riffle.addr,
        body.len()
    );
    for (name, value) in common::SIGNED {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    socket.write_all(request.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    socket.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    socket.write_all(head.as_bytes()).unwrap();

    riffle.signal(libc::SIGTERM);
    // Shutdown has begun once new connections are refused.
    let addr = riffle.addr;
    eventually(
        Duration::from_secs(10),
        "the listener to close",
        move || async move { std::net::TcpStream::connect(addr).is_err().then_some(()) },
    )
    .await;
    socket.write_all(tail.as_bytes()).unwrap();
    let mut response = Vec::new();
    socket.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains(r#""ShardId":"shardId-000000000000""#),
        "{response}"
    );
    let status = riffle.wait_exit();
    assert_eq!(status.code(), Some(0), "{status:?}; log:\n{}", riffle.log());

    // The record answered during shutdown is on disk.
    let riffle = Riffle::start_in(dir.path(), &[]);
    let records = read_shard(&riffle.client(), "shardId-000000000000").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].data().as_ref(), b"in-flight");
}
