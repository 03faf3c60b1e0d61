//! `riffle tail STREAM --group NAME`: a Rust KCL worker (`riffle-kcl`) of
//! application NAME, so several terminals (or a Java KCL application of the
//! same name) spread the stream's shards, each printing its own.
//!
//! The lease table is NAME, served by the same endpoint's DynamoDB subset.
//! Beside Java KCL 3.x workers the terminal takes the leases their leader
//! assigns it (see `riffle_kcl::coordinator`).
//! What a terminal printed is checkpointed after each batch and when it
//! stops (Ctrl-C, `--count`), so the group resumes where it left off.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::{BehaviorVersion, Region};
use riffle_kcl::{
    Checkpointer, InitialPosition, InitializeInput, ProcessRecordsInput, RecordProcessor, Worker,
};
use tokio::sync::{mpsc, oneshot};

use crate::CliError;
use crate::tail::{Event, Start, TailArgs, print};

/// Sends one shard's records to the printer and checkpoints them.
struct Printer {
    shard: Arc<str>,
    events: mpsc::Sender<Event>,
}

impl RecordProcessor for Printer {
    async fn initialize(&mut self, _input: InitializeInput) {
        eprintln!("{}: printed here from now on", self.shard);
    }

    async fn process_records(
        &mut self,
        input: ProcessRecordsInput,
        checkpointer: &mut Checkpointer,
    ) {
        for record in input.records {
            let event = Event::Record {
                shard: Arc::clone(&self.shard),
                // As `riffle tail` names a KPL record's user records.
                sequence: if record.aggregated {
                    format!("{}/{}", record.sequence_number, record.sub_sequence_number)
                } else {
                    record.sequence_number
                },
                key: record.partition_key,
                data: record.data,
            };
            if self.events.send(event).await.is_err() {
                return; // the printer stopped: what it did not print stays unchecked
            }
        }
        let (flushed, printed) = oneshot::channel();
        if self.events.send(Event::Flush(flushed)).await.is_err() || printed.await.is_err() {
            return; // stopped before printing the whole batch: no checkpoint
        }
        // A lost lease is the new owner's to checkpoint.
        let _ = checkpointer.checkpoint().await;
    }

    async fn lease_lost(&mut self) {
        eprintln!("{}: taken over by another worker of the group", self.shard);
    }

    async fn shard_ended(&mut self, checkpointer: &mut Checkpointer) {
        if let Err(err) = checkpointer.checkpoint_shard_end().await {
            eprintln!("{}: {err}", self.shard);
        }
    }

    /// Everything checkpointable was checkpointed after its batch printed.
    async fn shutdown_requested(&mut self, _checkpointer: &mut Checkpointer) {}
}

pub(crate) async fn follow(args: &TailArgs, group: &str) -> Result<(), CliError> {
    let signing = riffle_bench::Signing::from_env(&args.endpoint.region);
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(signing.region.clone()))
            .credentials_provider(signing.credentials.clone())
            .endpoint_url(&args.endpoint.endpoint)
            .build(),
    );
    let worker = Worker::builder(group, &args.stream)
        .kinesis(args.endpoint.client())
        .dynamodb(dynamodb)
        .initial_position(match args.from {
            Start::Latest => InitialPosition::Latest,
            Start::TrimHorizon => InitialPosition::TrimHorizon,
        })
        .failover_time(Duration::from_millis(args.failover_millis))
        .metrics_interval(Duration::from_millis(args.worker_metrics_millis))
        .build()
        .map_err(|e| CliError::Other(e.to_string()))?;
    eprintln!(
        "following {} as worker {} of group {group}",
        args.stream,
        worker.worker_id()
    );
    let (events, mut received) = mpsc::channel(1024);
    let handle = worker.start(move |shard| Printer {
        shard: Arc::from(shard),
        events: events.clone(),
    });
    let (printer_done, printer_gone) = oneshot::channel::<()>();
    let printing = async move {
        let printed = print(args, &mut received).await;
        // Records still queued were not printed: dropping them (and their
        // batches' flushes) keeps them from being checkpointed.
        drop(received);
        let _ = printer_done.send(());
        printed
    };
    // On Ctrl-C the printer goes on while the worker stops, so batches in
    // flight are printed and checkpointed; the printer ends when the
    // worker, and with it every sender, is gone.
    let stopping = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminated() => {}
            _ = printer_gone => {}
        }
        handle.shutdown().await
    };
    let (printed, stopped) = tokio::join!(printing, stopping);
    printed.and(stopped.map_err(|e| CliError::Other(e.to_string())))
}

/// SIGTERM (`kill`, `timeout`, a service manager) stops the group member
/// as gracefully as Ctrl-C; without the handler, the leases would wait out
/// the failover time.
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signals) => {
            signals.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
