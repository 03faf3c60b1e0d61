//! The `riffle serve` command line as a user meets it: the banner, where
//! each setting comes from (flag > environment > config file > default),
//! and clear errors with distinct exit codes when it cannot start.

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Riffle, endpoint_of, spawn_kept};

/// The binary with a clean environment for its own variables.
fn riffle() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_riffle"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("RIFFLE_") {
            command.env_remove(var);
        }
    }
    command.stdin(Stdio::null());
    command
}

/// Runs a command that is expected to exit by itself, within 30 s.
fn run(mut command: Command) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let (mut child, _keeper) = spawn_kept(command);
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("poll the child").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("riffle did not exit within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("collect the output")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn serve_in(dir: &Path) -> Command {
    let mut command = riffle();
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir);
    command
}

#[test]
fn a_bad_flag_value_exits_2_naming_the_key_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = serve_in(dir.path());
    command.args(["--fsync", "sometimes"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output)
            .contains("invalid `fsync` (from flag --fsync): expected always, never or interval:MS"),
        "{}",
        stderr_of(&output)
    );
    // Nothing was created for a server that never started.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn flags_beat_environment_which_beats_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("riffle.toml");
    std::fs::write(&file, "fsync = \"from-file\"\n").unwrap();
    let data = dir.path().join("data");

    let attempt = |env: Option<&str>, flag: Option<&str>| {
        let mut command = serve_in(&data);
        command.arg("--config").arg(&file);
        if let Some(value) = env {
            command.env("RIFFLE_FSYNC", value);
        }
        if let Some(value) = flag {
            command.args(["--fsync", value]);
        }
        let output = run(command);
        assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
        stderr_of(&output)
    };
    let err = attempt(Some("from-env"), Some("from-flag"));
    assert!(
        err.contains("(from flag --fsync)") && err.contains("\"from-flag\""),
        "{err}"
    );
    let err = attempt(Some("from-env"), None);
    assert!(
        err.contains("(from environment variable RIFFLE_FSYNC)") && err.contains("\"from-env\""),
        "{err}"
    );
    let err = attempt(None, None);
    assert!(
        err.contains("(from config file ") && err.contains("\"from-file\""),
        "{err}"
    );
}

#[test]
fn a_config_file_with_an_unknown_key_or_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("riffle.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nfsnyc = \"always\"\n").unwrap();
    let mut command = riffle();
    command.args(["serve", "--config"]).arg(&file);
    let output = run(command);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("fsnyc"),
        "{}",
        stderr_of(&output)
    );

    let mut command = riffle();
    command
        .args(["serve", "--config"])
        .arg(dir.path().join("missing.toml"));
    let output = run(command);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("cannot read config file"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn an_unknown_flag_exits_2_with_usage() {
    let mut command = riffle();
    command.args(["serve", "--no-such-flag"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("--no-such-flag"));
}

#[test]
fn help_lists_the_documented_flags_but_not_the_hidden_test_one() {
    let mut command = riffle();
    command.args(["serve", "--help"]);
    let output = run(command);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen",
        "--data-dir",
        "--fsync",
        "--region",
        "--account-id",
        "--status-delay-ms",
        "--throughput-limits",
        "--config",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(!help.contains("shard-iterator-ttl"), "{help}");
}

#[test]
fn a_busy_port_exits_1_with_a_hint() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let mut command = riffle();
    command
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path());
    let output = run(command);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let err = stderr_of(&output);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.contains("--listen"), "{err}");
}

#[test]
fn an_unusable_data_directory_exits_1_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-directory");
    std::fs::write(&file, "x").unwrap();
    let output = run(serve_in(&file));
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let err = stderr_of(&output);
    assert!(err.contains("cannot use data directory"), "{err}");
    assert!(err.contains("not-a-directory"), "{err}");
}

/// Starts `command` and returns it with its banner: the lines up to the
/// `try:` line. Stdout keeps being drained afterwards.
fn start_with_banner(mut command: Command) -> (Child, mpsc::Sender<()>, Vec<String>) {
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    let (mut child, keeper) = spawn_kept(command);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line); // the receiver stops listening after the banner
        }
    });
    let mut banner = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) {
        let done = line.trim_start().starts_with("try:");
        banner.push(line);
        if done {
            break;
        }
    }
    (child, keeper, banner)
}

#[test]
fn the_banner_shows_the_bound_endpoint_and_a_command_to_try() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = serve_in(dir.path());
    command.args(["--region", "eu-west-3", "--account-id", "123456789012"]);
    let (mut child, _keeper, banner) = start_with_banner(command);
    let _ = child.kill();
    let _ = child.wait();

    let endpoints: Vec<&str> = banner.iter().filter_map(|l| endpoint_of(l)).collect();
    assert_eq!(endpoints.len(), 1, "{banner:#?}");
    let endpoint = endpoints[0];
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0, "the banner must show the bound port");
    let try_line = banner.last().unwrap().trim();
    assert_eq!(
        try_line,
        format!("try:       aws --endpoint-url {endpoint} kinesis list-streams")
    );
    let text = banner.join("\n");
    assert!(
        text.contains("eu-west-3") && text.contains("123456789012"),
        "{text}"
    );
}

#[test]
fn the_harness_finds_the_endpoint_and_the_server_answers_there() {
    let riffle = Riffle::start();
    assert!(riffle.endpoint.starts_with("http://127.0.0.1:"));
    let response = common::post_action(riffle.addr, "ListStreams", b"{}");
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
}

#[test]
fn a_data_directory_already_served_by_another_riffle_exits_1() {
    let first = Riffle::start();
    let output = run(serve_in(&first.data_dir));
    assert_eq!(output.status.code(), Some(1), "{}", stderr_of(&output));
    let err = stderr_of(&output);
    assert!(err.contains("cannot use data directory"), "{err}");
    // The first server is unaffected.
    let response = common::post_action(first.addr, "ListStreams", b"{}");
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn settings_from_the_config_file_and_environment_reach_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("riffle.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {data:?}\nregion = \"ap-south-1\"\n\
             account_id = \"111122223333\"\nstatus_delay_ms = 0\n"
        ),
    )
    .unwrap();
    let mut command = riffle();
    command
        .args(["serve", "--config"])
        .arg(&file)
        .env("RIFFLE_ACCOUNT_ID", "444455556666");
    let (mut child, _keeper, banner) = start_with_banner(command);
    let endpoint = banner
        .iter()
        .find_map(|l| endpoint_of(l))
        .unwrap_or_else(|| panic!("no endpoint in {banner:#?}"))
        .to_owned();

    let client = common::client_for(&endpoint);
    common::create_active(&client, "configured", 1).await;
    let summary = client
        .describe_stream_summary()
        .stream_name("configured")
        .send()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        summary.stream_description_summary().unwrap().stream_arn(),
        "arn:aws:kinesis:ap-south-1:444455556666:stream/configured"
    );
    assert!(
        data.is_dir(),
        "the data directory from the file was not used"
    );
}
