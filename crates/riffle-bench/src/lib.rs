//! `riffle bench`: a load generator for any Kinesis Data Streams (or
//! Firehose) endpoint
//! (Riffle, another implementation, AWS itself) that measures throughput
//! and latency and verifies that what it wrote is read back once and
//! intact.
//!
//! Module map: [`args`] is the command line and the resolved [`args::Plan`];
//! `client` the lean signed HTTP client of the hot calls and `sign` its
//! cached SigV4; `control` the
//! control plane through the AWS SDK (`delivery`: Firehose's and S3's);
//! `payload` and `idset` the
//! self-checking record format and the verifier; `stats` counters and
//! histograms; `workloads` what each workload does; `report` the table and
//! the JSON; `plot` the SVG charts; `dynamodb` the KCL lease-traffic
//! workload on a DynamoDB endpoint, which runs on its own.

mod api;
pub mod args;
mod client;
mod control;
mod delivery;
mod dynamodb;
mod error;
mod idset;
mod payload;
mod plot;
mod report;
mod sign;
mod stats;
mod workloads;

use std::process::ExitCode;

pub use args::{BenchArgs, Plan, Workload};
pub use client::Signing;
pub use control::sdk_client;
pub use error::BenchError;
pub use report::Summary;

/// Exit code of a run that completed and verified (when it verifies).
pub const EXIT_OK: u8 = 0;
/// Exit code when the run could not be made: unreachable endpoint, a failed
/// control-plane call, an unwritable output file.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for options the bench refuses.
pub const EXIT_USAGE: u8 = 2;
/// Exit code when records were lost, duplicated or corrupted.
pub const EXIT_VERIFICATION: u8 = 3;

/// Runs `riffle bench` with parsed arguments: prints the progress on
/// stderr and the summary on stdout, and returns the exit code.
pub fn main(args: BenchArgs) -> ExitCode {
    if let args::WorkloadArgs::Dynamodb(options) = &args.workload {
        return dynamodb::main(options);
    }
    let plan = match Plan::resolve(args) {
        Ok(plan) => plan,
        Err(err) => return fail(EXIT_USAGE, &err),
    };
    match run(&plan) {
        Ok(summary) => {
            if let Err(err) = report::print(&plan, &summary) {
                return fail(EXIT_FAILURE, &err);
            }
            if let Some(path) = &plan.plot
                && let Err(err) = plot::write(path, &plan, &summary)
            {
                return fail(EXIT_FAILURE, &err);
            }
            if summary.verification.as_ref().is_some_and(|v| !v.passed) {
                return ExitCode::from(EXIT_VERIFICATION);
            }
            ExitCode::from(EXIT_OK)
        }
        Err(err) => fail(EXIT_FAILURE, &err),
    }
}

/// Runs the plan on a runtime of its own and returns its summary.
pub fn run(plan: &Plan) -> Result<Summary, BenchError> {
    // One thread: a current-thread runtime, with no work stealing and no
    // cross-thread wake-ups, the cheapest per request.
    let mut builder = if plan.client_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(plan.client_threads);
        builder
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|source| BenchError::Runtime { source })?;
    runtime.block_on(workloads::run(plan))
}

fn fail(code: u8, err: &BenchError) -> ExitCode {
    eprintln!("riffle bench: error: {err}");
    ExitCode::from(code)
}
