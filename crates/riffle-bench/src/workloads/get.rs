//! The `get` workload: fill the stream (not measured), then drain every
//! shard from where the run began with GetRecords, one reader per shard,
//! verifying each record; the drain is what is measured.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::sync::watch;

use super::read::{ReadShared, Until, spawn_pollers, take_iterators};
use super::write::{self, PassSpec};
use super::{Ctx, with_progress};
use crate::args::Stop;
use crate::error::BenchError;
use crate::report::Summary;
use crate::stats::{self, Measured};

pub async fn run(ctx: &Arc<Ctx>) -> Result<Summary, BenchError> {
    let (_stop_tx, stop) = watch::channel(false);
    let shared = Arc::new(ReadShared {
        measured: Arc::new(Measured::default()),
        count_from_ns: AtomicU64::new(0),
        stop,
    });
    // Taken before the fill, so a reused stream is read from where this
    // run's records begin.
    let iterators = take_iterators(ctx).await?;
    let fill = PassSpec {
        records: match ctx.plan.stop {
            Stop::Records(n) => Some(n),
            Stop::After(_) => None, // refused by the argument check
        },
        until: None,
        rate: None,
    };
    write::pass(ctx, fill, &Arc::new(Measured::default()), "fill").await;
    let cpu = stats::Cpu::now();
    let measured = shared.measured.clone();
    let readers = spawn_pollers(ctx, &shared, iterators, Until::Drained);
    let ((), elapsed, samples) = with_progress(ctx, "get", &measured, async {
        for reader in readers {
            let _ = reader.await; // a panicked reader's records count as lost
        }
    })
    .await;
    let cpu = cpu.elapsed();
    let verdict = ctx.verifier.verdict(ctx.issued());
    Ok(Summary::build(
        ctx,
        &measured,
        elapsed,
        cpu,
        samples,
        Some(verdict),
    ))
}
