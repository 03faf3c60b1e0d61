//! One instance of a command function: its process (in a process group of
//! its own), the Runtime API it is served, the tasks that log its output
//! and watch its exit. Dropping an [`Instance`] kills its process group.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::config::CommandSpec;
use crate::errors::LambdaError;
use crate::slot::{Reply, Slot};

/// The environment variables of Riffle's own that a function inherits: what
/// a program needs to be found and to run; nothing else (Riffle's secrets
/// stay out of functions).
const INHERITED_ENV: [&str; 5] = ["PATH", "HOME", "LANG", "LD_LIBRARY_PATH", "TMPDIR"];

/// A log line of a function longer than this is cut (not lost whole).
const LOG_LINE_MAX: usize = 64 * 1024;

/// Every live process group of a registry, so that shutdown kills them all,
/// including those of instances lent to invocations in flight.
#[derive(Default)]
pub(crate) struct Groups {
    next_key: AtomicU64,
    live: Mutex<HashMap<u64, i32>>,
    shut: AtomicBool,
}

impl Groups {
    /// Kills every live group; later spawns are refused.
    pub fn kill_all(&self) {
        self.shut.store(true, Ordering::SeqCst);
        let groups: Vec<i32> = self.live.lock().drain().map(|(_, g)| g).collect();
        for group in groups {
            kill_group(group);
        }
    }

    pub fn is_shut(&self) -> bool {
        self.shut.load(Ordering::SeqCst)
    }
}

/// Where an instance's process runs and what it is told.
pub(crate) struct Context {
    pub region: String,
}

/// Why an instance could not be started.
pub(crate) enum SpawnError {
    /// The program could not be run: the invocation fails as Lambda's
    /// `Runtime.InvalidEntrypoint`.
    Program(String),
    Registry(LambdaError),
}

pub(crate) struct Instance {
    pub slot: Arc<Slot>,
    pub pid: u32,
    key: u64,
    group: i32,
    groups: Arc<Groups>,
    server: JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        kill_group(self.group);
        self.groups.live.lock().remove(&self.key);
        self.server.abort();
    }
}

impl Instance {
    /// Starts an instance of `spec`: the Runtime API first, then the process
    /// that is told where it is.
    pub async fn start(
        spec: &CommandSpec,
        ctx: &Context,
        groups: &Arc<Groups>,
    ) -> Result<Instance, SpawnError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await;
        let (listener, addr) = match listener.and_then(|l| Ok((l.local_addr()?, l))) {
            Ok((addr, listener)) => (listener, addr),
            Err(source) => {
                return Err(SpawnError::Registry(LambdaError::RuntimeApi {
                    name: spec.name.clone(),
                    source,
                }));
            }
        };
        if let Some(dir) = &spec.working_dir
            && !tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir())
        {
            let reason = format!("chdir {}: working_dir is not a directory", dir.display());
            return Err(SpawnError::Program(reason));
        }
        let mut command = command(spec, ctx, &addr.to_string());
        let mut child = command
            .spawn()
            .map_err(|e| SpawnError::Program(format!("fork/exec {}: {e}", spec.program)))?;
        let slot = Arc::new(Slot::default());
        let server = tokio::spawn(crate::runtime_api::serve(
            listener,
            slot.clone(),
            spec.name.clone(),
        ));
        // A child's id is there until it is reaped, and it was just spawned.
        let pid = child.id().unwrap_or_default();
        let group = i32::try_from(pid).unwrap_or_default();
        let key = groups.next_key.fetch_add(1, Ordering::Relaxed);
        groups.live.lock().insert(key, group);
        let instance = Instance {
            slot: slot.clone(),
            pid,
            key,
            group,
            groups: groups.clone(),
            server,
        };
        if groups.is_shut() {
            return Err(SpawnError::Registry(LambdaError::ShutDown));
        }
        tracing::info!(function = spec.name, pid, runtime_api = %addr, "function instance started");
        log_output(&mut child, &spec.name, pid);
        tokio::spawn(watch_exit(child, slot, spec.name.clone()));
        Ok(instance)
    }
}

fn command(spec: &CommandSpec, ctx: &Context, api: &str) -> Command {
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: killpg reaches whatever it starts, too.
        .process_group(0)
        .kill_on_drop(true);
    for key in INHERITED_ENV {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    if let Some(dir) = &spec.working_dir {
        command.current_dir(dir);
    }
    command.envs(lambda_env(spec, ctx, api));
    command.envs(&spec.env);
    command
}

/// Lambda's "Defined runtime environment variables".
fn lambda_env(spec: &CommandSpec, ctx: &Context, api: &str) -> Vec<(&'static str, String)> {
    let task_root = spec
        .working_dir
        .clone()
        .or_else(|| std::env::current_dir().ok())
        .map(|dir| std::path::absolute(&dir).unwrap_or(dir))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut env = vec![
        ("AWS_LAMBDA_RUNTIME_API", api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", log_stream_name()),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("AWS_REGION", ctx.region.clone()),
        ("AWS_DEFAULT_REGION", ctx.region.clone()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_riffle".to_owned()),
        ("LAMBDA_TASK_ROOT", task_root.display().to_string()),
        ("TZ", ":UTC".to_owned()),
        // Lambda hands the execution role's credentials; Riffle has no
        // roles, so these are placeholders unless `env` gives real ones.
        ("AWS_ACCESS_KEY_ID", "AKIDRIFFLELAMBDA".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "riffle-lambda-placeholder".to_owned(),
        ),
        ("AWS_SESSION_TOKEN", "riffle-lambda-placeholder".to_owned()),
    ];
    if let Some(handler) = &spec.handler {
        env.push(("_HANDLER", handler.clone()));
    }
    env
}

/// `YYYY/MM/DD/[$LATEST]<32 hex>`, as Lambda names an instance's stream.
fn log_stream_name() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}/{m:02}/{d:02}/[$LATEST]{:032x}",
        rand::random::<u128>()
    )
}

/// Howard Hinnant's days-to-civil: the UTC date `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The function's stdout and stderr, line by line, into Riffle's log; read
/// on their own tasks so a chatty function never blocks on a full pipe.
fn log_output(child: &mut Child, function: &str, pid: u32) {
    if let Some(out) = child.stdout.take() {
        tokio::spawn(log_lines(out, function.to_owned(), pid, "stdout"));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(log_lines(err, function.to_owned(), pid, "stderr"));
    }
}

async fn log_lines(pipe: impl AsyncRead + Unpin, function: String, pid: u32, stream: &'static str) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(LOG_LINE_MAX as u64)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                tracing::info!(
                    target: "riffle_lambda::function",
                    function,
                    pid,
                    stream,
                    "{}",
                    text.trim_end()
                );
            }
        }
    }
}

/// Waits for the process to end, then fails whatever it had.
async fn watch_exit(mut child: Child, slot: Arc<Slot>, function: String) {
    let status = match child.wait().await {
        Ok(status) => describe(status),
        Err(e) => format!("wait failed: {e}"),
    };
    tracing::info!(function, status, "function instance exited");
    slot.fail(&status, || Reply::Exited(status.clone()));
}

/// An exit status in Go's words, which Lambda's messages quote:
/// `exit status 1`, `signal: killed`.
pub(crate) fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(libc::SIGKILL) => "signal: killed".to_owned(),
        Some(libc::SIGTERM) => "signal: terminated".to_owned(),
        Some(libc::SIGSEGV) => "signal: segmentation fault".to_owned(),
        Some(libc::SIGABRT) => "signal: aborted".to_owned(),
        Some(libc::SIGINT) => "signal: interrupt".to_owned(),
        Some(signal) => format!("signal: {signal}"),
        None => "exited".to_owned(),
    }
}

fn kill_group(group: i32) {
    if group > 0 {
        // SAFETY: killpg only sends a signal; a group already gone is ESRCH,
        // which is what we want then.
        unsafe {
            libc::killpg(group, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_are_worded_as_lambda_quotes_them() {
        assert_eq!(describe(ExitStatus::from_raw(1 << 8)), "exit status 1");
        assert_eq!(
            describe(ExitStatus::from_raw(libc::SIGKILL)),
            "signal: killed"
        );
    }

    #[test]
    fn log_streams_are_named_by_the_utc_date() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_428), (2025, 12, 6));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let name = log_stream_name();
        assert_eq!(name.len(), "2026/12/06/[$LATEST]".len() + 32, "{name}");
        assert!(name[10..].starts_with("/[$LATEST]"), "{name}");
    }
}
