//! A real write failure, like a full disk: a child process (this test binary,
//! re-executed) caps its own file size with `RLIMIT_FSIZE`, so the kernel
//! fails the segment write with `EFBIG`. The append reports the error naming
//! the file, the log refuses writes afterwards (poisoned), and after a
//! reopen nothing acknowledged is lost and appends work again.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use riffle_log::{FsyncPolicy, LogError, LogStore, ReadLimits, RecordIn, StoreConfig};

const CHILD_DIR_ENV: &str = "RIFFLE_LOG_FAULT_CHILD_DIR";
const ALL: ReadLimits = ReadLimits {
    records_max: usize::MAX,
    bytes_max: usize::MAX,
};
/// The file size cap: a few batches past where the child starts.
const FSIZE_LIMIT_BYTES: u64 = 24 * 1024;

fn config() -> StoreConfig {
    StoreConfig {
        fsync: FsyncPolicy::Always,
        segment_bytes_max: 1 << 20,
        ..StoreConfig::default()
    }
}

fn set_fsize_limit(bytes: Option<u64>) {
    // SAFETY: plain libc calls on a valid, initialised struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim), 0);
        lim.rlim_cur = bytes.unwrap_or(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
}

fn data(i: usize) -> Vec<u8> {
    let mut d = format!("record-{i:06}-").into_bytes();
    d.resize(1024, b'x');
    d
}

/// The child's side: a no-op unless spawned by the parent test below.
#[tokio::test]
async fn fault_child_entry_point() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    // Without this, exceeding the cap kills the process (SIGXFSZ).
    // SAFETY: setting a signal disposition to SIG_IGN.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let store = LogStore::open(dir, config()).unwrap();
    let log = store.open_log("f/0").unwrap();
    set_fsize_limit(Some(FSIZE_LIMIT_BYTES));
    let mut acked = 0;
    let err = loop {
        let d = data(acked);
        match log
            .append(
                &[RecordIn {
                    partition_key: b"pk",
                    explicit_hash_key: None,
                    data: &d,
                }],
                1,
            )
            .await
        {
            Ok(a) => {
                assert_eq!(a.first_seq, acked as u64);
                acked += 1;
                assert!(acked < 1000, "the file size cap never took effect");
            }
            Err(e) => break e,
        }
    };
    match &err {
        LogError::Io { path, source } => {
            assert_eq!(path.extension().unwrap(), "seg", "{err}");
            assert_eq!(source.raw_os_error(), Some(libc::EFBIG), "{err}");
        }
        other => panic!("expected an I/O error naming the segment, got {other}"),
    }
    let again = log
        .append(
            &[RecordIn {
                partition_key: b"pk",
                explicit_hash_key: None,
                data: b"x",
            }],
            1,
        )
        .await;
    assert!(matches!(again, Err(LogError::Poisoned { .. })), "{again:?}");
    assert_eq!(
        log.read(0, ALL).unwrap().records.len(),
        acked,
        "acknowledged records stay readable"
    );
    set_fsize_limit(None);
    drop(log);
    drop(store);
    let store = LogStore::open(dir, config()).unwrap();
    let log = store.open_log("f/0").unwrap();
    let got = log.read(0, ALL).unwrap();
    assert_eq!(
        got.records.len(),
        acked,
        "the torn write was cut off, nothing acknowledged lost"
    );
    for (i, r) in got.records.iter().enumerate() {
        assert_eq!(r.data, data(i));
    }
    let a = log
        .append(
            &[RecordIn {
                partition_key: b"pk",
                explicit_hash_key: None,
                data: b"after",
            }],
            1,
        )
        .await;
    assert_eq!(a.unwrap().first_seq, acked as u64);
    println!("FAULT-CHILD-OK acked={acked}");
}

#[test]
fn a_failed_write_poisons_the_log_and_a_reopen_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fault_child_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fault child did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success() && out.contains("FAULT-CHILD-OK"),
        "child failed:\n{out}\n{err}"
    );
}
