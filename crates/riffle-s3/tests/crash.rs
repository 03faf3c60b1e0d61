//! kill -9 while uploads are in flight: after a restart every acknowledged object is whole,
//! and no object is ever visible half-written.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use md5::{Digest, Md5};
use riffle_s3::{ListQuery, S3};

/// Set in the child process: the store directory it serves.
const CHILD_DIR: &str = "RIFFLE_S3_CRASH_CHILD_DIR";
const TEST_NAME: &str = "acknowledged_objects_survive_kill_9_and_none_is_ever_half_written";
const WRITERS: usize = 4;
/// Enough acknowledged objects that the kill lands amid steady writing.
const ACKED_BEFORE_KILL: usize = 24;
const OBJECT_LEN: usize = 512 * 1024;

/// Kills the server when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Each object's bytes follow from its key, so any object can be checked.
fn content(key: &str) -> Vec<u8> {
    let seed = Md5::digest(key.as_bytes());
    (0..OBJECT_LEN)
        .map(|i| seed[i % 16] ^ (i / 16) as u8)
        .collect()
}

fn serve_forever(dir: String) -> ! {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let s3 = S3::open(dir).expect("open store");
        println!("{}", common::serve(s3).await);
        std::future::pending::<()>().await;
    });
    unreachable!("the server runs until it is killed")
}

fn spawn_server(dir: &std::path::Path) -> (Killed, String) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the server");
    let stdout = child.stdout.take().expect("piped stdout");
    let guard = Killed(child);
    // The harness prints a few lines first (and the test's name before the
    // endpoint, on its line); a child that dies ends the
    // stream and fails the test here rather than hanging it.
    let url = BufReader::new(stdout)
        .lines()
        .map(|l| l.expect("read the child's output"))
        .find_map(|l| l.find("http://").map(|at| l[at..].trim().to_owned()))
        .expect("the server printed its endpoint");
    (guard, url)
}

#[test]
fn acknowledged_objects_survive_kill_9_and_none_is_ever_half_written() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        serve_forever(dir);
    }
    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().join("s3");
    let (mut server, url) = spawn_server(&root);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    runtime.block_on(async {
        let client = common::client_for(&url);
        client
            .create_bucket()
            .bucket("crash")
            .send()
            .await
            .expect("create bucket");
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (client, acked) = (client.clone(), Arc::clone(&acked));
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("w{w}/obj-{i}");
                    let body = ByteStream::from(content(&key));
                    let put = client
                        .put_object()
                        .bucket("crash")
                        .key(&key)
                        .body(body)
                        .send()
                        .await;
                    if put.is_err() {
                        return; // the server is gone
                    }
                    acked.lock().unwrap().push(key);
                }
            }));
        }
        common::eventually_sync(
            std::time::Duration::from_secs(60),
            "enough acknowledged puts",
            || (acked.lock().unwrap().len() >= ACKED_BEFORE_KILL).then_some(()),
        )
        .await;
        server.0.kill().expect("kill -9 the server");
        for writer in writers {
            writer.await.unwrap();
        }
    });
    drop(server);

    let acked = acked.lock().unwrap().clone();
    runtime.block_on(async {
        let s3 = S3::open(&root).expect("reopen after the crash");
        for key in &acked {
            let (meta, bytes) = s3
                .get_object("crash", key)
                .await
                .expect("acknowledged object");
            assert!(bytes[..] == content(key)[..], "{key} is not whole");
            assert_eq!(meta.size as usize, OBJECT_LEN);
        }
        let page = s3
            .list_objects(
                "crash",
                ListQuery {
                    max_keys: 1000,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        assert!(page.objects.len() >= acked.len());
        for meta in &page.objects {
            let (_, bytes) = s3.get_object("crash", &meta.key).await.unwrap();
            assert!(
                bytes[..] == content(&meta.key)[..],
                "{} is half-written",
                meta.key
            );
            let md5: String = Md5::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(meta.etag, md5);
        }
    });
}
