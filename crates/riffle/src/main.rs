//! The `riffle` binary: the command line, logging set-up and exit codes.
//! The work is done by the library crates; this only wires them together.

mod config;
mod serve;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{ServeArgs, ServeConfig};

/// Riffle: a self-hosted Amazon Kinesis Data Streams server that speaks the
/// AWS wire protocols (any AWS SDK or the `aws` CLI works against it), and
/// its command-line client.
///
/// Start the server with `riffle serve`, then point a client at
/// http://127.0.0.1:4567.
#[derive(Debug, Parser)]
#[command(name = "riffle", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (Kinesis Data Streams, Firehose and S3 APIs on HTTP/1.1 and HTTP/2).
    // Boxed: the options of every service make it the largest variant.
    Serve(Box<ServeArgs>),
    /// Load-test any Kinesis endpoint: throughput, latency, and a check
    /// that every record written is read back once and intact.
    Bench(riffle_bench::BenchArgs),
    /// Create, list, describe or delete streams.
    Stream(riffle_cli::StreamArgs),
    /// Put records: the arguments, or each line of stdin.
    Put(riffle_cli::PutArgs),
    /// Follow a stream's records as they arrive, across reshards.
    Tail(riffle_cli::TailArgs),
    /// Create, list, describe or delete Firehose delivery streams to S3, and put records.
    Firehose(riffle_cli::FirehoseArgs),
    /// Tail log files into streams or delivery streams, as the Kinesis Agent does with its agent.json.
    Agent(riffle_agent::AgentArgs),
}

/// Exit code for a configuration the server refuses (as for usage errors).
const EXIT_CONFIG: u8 = 2;
/// Exit code for a server that could not start or stop cleanly.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(err) => return invalid_value(&err).unwrap_or_else(|| err.exit()),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    match cli.command {
        // The bench prints its own progress and summary; logs would only
        // interleave with them.
        Command::Bench(args) => riffle_bench::main(args),
        Command::Stream(args) => riffle_cli::stream(args),
        Command::Put(args) => riffle_cli::put(args),
        Command::Tail(args) => riffle_cli::tail(args),
        Command::Firehose(args) => riffle_cli::firehose(args),
        Command::Agent(args) => riffle_agent::main(args, init_logging),
        Command::Serve(args) => {
            init_logging("info");
            let command = Cli::command();
            let (Some(serve_command), Some(serve_matches)) = (
                command.find_subcommand("serve"),
                matches.subcommand_matches("serve"),
            ) else {
                unreachable!("clap matched the serve subcommand")
            };
            let config = match ServeConfig::resolve(&args, serve_command, serve_matches) {
                Ok(config) => config,
                Err(err) => return fail(EXIT_CONFIG, &err),
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(err) => return fail(EXIT_FAILURE, &err),
            };
            match runtime.block_on(serve::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => fail(EXIT_FAILURE, &err),
            }
        }
    }
}

/// Logs go to stderr (stdout carries the banner); RUST_LOG sets the level,
/// else `default_level`.
/// Colours only on a terminal, so log files and CI output stay plain text.
///
/// A log line that cannot be written (stderr on a full disk, a closed
/// pipe) is dropped: [`LogSink`] never reports a failed write, and
/// tracing's own report of one is off, because that report is an
/// `eprintln!`, which panics when stderr fails, and a panic in a
/// request's task closes its connection without an answer.
fn init_logging(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogSink)
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// A value clap refused, said as the config file's errors are: its key,
/// where it came from (clap does not tell a flag from its environment
/// variable) and why. `None` for every other usage error, which clap says
/// best itself.
fn invalid_value(err: &clap::Error) -> Option<ExitCode> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::ValueValidation {
        return None;
    }
    let Some(ContextValue::String(arg)) = err.get(ContextKind::InvalidArg) else {
        return None;
    };
    // `--fsync <always|interval:MS|never>`
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let command = Cli::command();
    let declared = command
        .get_subcommands()
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(long))?;
    let as_flag =
        std::env::args().any(|a| a == format!("--{long}") || a.starts_with(&format!("--{long}=")));
    let origin = match (as_flag, declared.get_env()) {
        (false, Some(var)) => riffle_config::Origin::Env(var.to_string_lossy().into_owned()),
        _ => riffle_config::Origin::Flag(long.to_owned()),
    };
    let reason = std::error::Error::source(err)?.to_string();
    let refused = riffle_config::ConfigError::Invalid {
        key: declared.get_id().to_string(),
        origin,
        reason,
    };
    Some(fail(EXIT_CONFIG, &refused))
}

/// Stderr for log lines, whose write errors are dropped (see [`init_logging`]).
struct LogSink;

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LogSink;

    fn make_writer(&'a self) -> LogSink {
        LogSink
    }
}

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // One line per call (tracing formats it whole first), written under
        // stderr's lock so concurrent lines do not interleave.
        let _ = std::io::stderr().lock().write_all(buf); // a log that cannot be written is lost, nothing more
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush(); // as above
        Ok(())
    }
}

/// Reports why the command failed and returns its exit code; the code is
/// what counts, so a stderr that cannot be written changes nothing.
fn fail(code: u8, err: &dyn std::error::Error) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {err}");
    ExitCode::from(code)
}
