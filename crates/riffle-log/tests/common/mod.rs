//! What the tests that crash a real process share: the child is this test
//! binary, re-executed to run one entry-point test with its environment.

use std::process::{Child, Command, Stdio};

/// Kills the child when dropped, so no process outlives a failed test.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts this test binary running only the test `entry_point`, with `envs`
/// set and its stdout piped.
pub fn spawn_child(entry_point: &str, envs: &[(&str, String)]) -> ChildGuard {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", entry_point, "--nocapture", "--test-threads=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (key, value) in envs {
        command.env(key, value);
    }
    ChildGuard(command.spawn().unwrap())
}
