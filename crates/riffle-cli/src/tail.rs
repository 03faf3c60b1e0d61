//! `riffle tail STREAM`: follows every shard of a stream with GetRecords and
//! prints records as they arrive, across reshards.
//!
//! One reader per shard polls at most five times a second (a shard's
//! GetRecords limit) while caught up. At a closed shard's end the reader
//! hands over to the children GetRecords names, and a child is read once
//! every parent being followed has been read to its end, so records of a
//! partition key come out in order, as the KCL does it.
//!
//! KPL-aggregated records are printed as their user records (the KCL's
//! de-aggregation), their sequence numbers followed by `/SUB`, the user
//! record's sub-sequence number.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::types::{ChildShard, Record, ShardFilter, ShardFilterType, ShardIteratorType};
use clap::{Args, ValueEnum};
use tokio::sync::mpsc;

use crate::{CliError, Endpoint};

/// A caught-up reader's pause between calls: 5 calls a second, a shard's
/// GetRecords limit (API_GetRecords).
const IDLE_POLL: Duration = Duration::from_millis(200);
/// A throttled reader's pause before it tries again.
const THROTTLED_PAUSE: Duration = Duration::from_secs(1);

/// `riffle tail`
#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    /// The stream to follow (its name)
    pub stream: String,
    /// Where to start: new records only, or everything retained
    #[arg(long, value_enum, default_value_t = Start::Latest)]
    pub from: Start,
    /// Print only each record's data, one per line
    #[arg(long)]
    pub raw: bool,
    /// Stop after this many records
    #[arg(long)]
    pub count: Option<u64>,
    /// Share the stream with other `tail --group NAME` terminals: a KCL
    /// application of that name (its lease table too) spreads the shards
    /// over them and checkpoints what each printed; --from applies to a new
    /// group only
    #[arg(long, value_name = "NAME")]
    pub group: Option<String>,
    /// --group: milliseconds a lease may go unrenewed before another worker
    /// takes it (KCL's failoverTimeMillis; renewals every third of it):
    /// the same for every worker of the group, Java ones included
    #[arg(long, value_name = "MS", default_value_t = 10_000, requires = "group")]
    pub failover_millis: u64,
    /// --group: how often this worker reports itself to a Java KCL 3.x
    /// leader (KCL's workerMetricsReporterFreqInMillis): at most the Java
    /// workers' setting
    #[arg(long, value_name = "MS", default_value_t = 30_000, requires = "group")]
    pub worker_metrics_millis: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Start {
    Latest,
    TrimHorizon,
}

/// What readers tell the printer.
pub(crate) enum Event {
    Record {
        shard: Arc<str>,
        sequence: String,
        key: String,
        data: Vec<u8>,
    },
    Failed(CliError),
    /// Answered once every record sent before it was printed (`--group`
    /// checkpoints only what was printed).
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// Which shards are followed and which were read to their end.
#[derive(Default)]
struct Progress {
    followed: HashSet<String>,
    finished: HashSet<String>,
}

pub(crate) async fn follow(args: &TailArgs) -> Result<(), CliError> {
    if let Some(group) = &args.group {
        return crate::group::follow(args, group).await;
    }
    let client = args.endpoint.client();
    let filter = ShardFilter::builder()
        .r#type(match args.from {
            Start::Latest => ShardFilterType::AtLatest,
            Start::TrimHorizon => ShardFilterType::AtTrimHorizon,
        })
        .build()
        .map_err(|e| CliError::Other(e.to_string()))?;
    let shards = crate::list_shards(&client, &args.stream, Some(filter)).await?;
    let kind = match args.from {
        Start::Latest => ShardIteratorType::Latest,
        Start::TrimHorizon => ShardIteratorType::TrimHorizon,
    };
    // Every iterator is taken before anything is announced, so a record
    // put after the announcement is never missed.
    let mut starts = Vec::with_capacity(shards.len());
    for shard in &shards {
        starts.push((
            shard.shard_id.clone(),
            iterator(&client, &args.stream, &shard.shard_id, kind.clone(), None).await?,
        ));
    }
    let progress = Arc::new(Mutex::new(Progress {
        followed: shards.iter().map(|s| s.shard_id.clone()).collect(),
        finished: HashSet::new(),
    }));
    eprintln!(
        "following {} shard(s) of {} from {}",
        starts.len(),
        args.stream,
        match args.from {
            Start::Latest => "the latest record",
            Start::TrimHorizon => "the trim horizon",
        }
    );
    let (events, mut received) = mpsc::channel(1024);
    for (shard, start) in starts {
        spawn_reader(
            client.clone(),
            args.stream.clone(),
            shard,
            start,
            Arc::clone(&progress),
            events.clone(),
        );
    }
    drop(events);

    print(args, &mut received).await
}

/// Prints what readers send until `--count` records were printed, the
/// readers are done, or stdout is closed.
pub(crate) async fn print(
    args: &TailArgs,
    received: &mut mpsc::Receiver<Event>,
) -> Result<(), CliError> {
    let mut printed = 0;
    let mut out = std::io::stdout().lock();
    while let Some(event) = received.recv().await {
        if args.count.is_some_and(|count| printed >= count) {
            break;
        }
        let (shard, sequence, key, data) = match event {
            Event::Record {
                shard,
                sequence,
                key,
                data,
            } => (shard, sequence, key, data),
            Event::Failed(err) => return Err(err),
            Event::Flush(printed) => {
                let _ = printed.send(());
                continue;
            }
        };
        let written = if args.raw {
            out.write_all(&data).and_then(|()| out.write_all(b"\n"))
        } else {
            writeln!(
                out,
                "{shard} {sequence} {key} {}",
                String::from_utf8_lossy(&data).escape_debug()
            )
        };
        // A closed pipe (`riffle tail … | head`) ends the command quietly.
        if written.and_then(|()| out.flush()).is_err() {
            return Ok(());
        }
        printed += 1;
        if args.count.is_some_and(|count| printed >= count) {
            break;
        }
    }
    Ok(())
}

fn spawn_reader(
    client: Client,
    stream: String,
    shard: String,
    start: String,
    progress: Arc<Mutex<Progress>>,
    events: mpsc::Sender<Event>,
) {
    tokio::spawn(async move {
        if let Err(err) = read_shard(&client, &stream, &shard, start, &progress, &events).await {
            let _ = events.send(Event::Failed(err)).await;
        }
    });
}

/// Reads `shard` to its end (if it is ever closed), then starts the
/// children whose followed parents are all done.
async fn read_shard(
    client: &Client,
    stream: &str,
    shard: &str,
    start: String,
    progress: &Arc<Mutex<Progress>>,
    events: &mpsc::Sender<Event>,
) -> Result<(), CliError> {
    let label: Arc<str> = Arc::from(shard);
    let mut position = Some(start);
    let mut last_sequence: Option<String> = None;
    let mut children: Vec<ChildShard> = Vec::new();
    while let Some(current) = position.take() {
        let answer = match client.get_records().shard_iterator(&current).send().await {
            Ok(answer) => answer,
            Err(err) => match CliError::from(err) {
                CliError::Service { code, .. }
                    if code == "ProvisionedThroughputExceededException" =>
                {
                    tokio::time::sleep(THROTTLED_PAUSE).await;
                    position = Some(current);
                    continue;
                }
                CliError::Service { code, .. } if code == "ExpiredIteratorException" => {
                    position = Some(match &last_sequence {
                        Some(seq) => {
                            let after = ShardIteratorType::AfterSequenceNumber;
                            iterator(client, stream, shard, after, Some(seq)).await?
                        }
                        None => {
                            let horizon = ShardIteratorType::TrimHorizon;
                            iterator(client, stream, shard, horizon, None).await?
                        }
                    });
                    continue;
                }
                err => return Err(err),
            },
        };
        let caught_up = answer.records.is_empty() && answer.millis_behind_latest == Some(0);
        for record in answer.records {
            last_sequence = Some(record.sequence_number.clone());
            for event in user_records(&label, record) {
                if events.send(event).await.is_err() {
                    return Ok(()); // the printer is done
                }
            }
        }
        position = answer.next_shard_iterator;
        if position.is_none() {
            children = answer.child_shards.unwrap_or_default();
        } else if caught_up {
            tokio::time::sleep(IDLE_POLL).await;
        }
    }
    let ready: Vec<String> = {
        let mut progress = progress.lock().expect("progress lock poisoned");
        progress.finished.insert(shard.to_owned());
        let mut ready = Vec::new();
        for child in &children {
            let parents_done = child
                .parent_shards
                .iter()
                .filter(|p| progress.followed.contains(*p))
                .all(|p| progress.finished.contains(p));
            if parents_done && progress.followed.insert(child.shard_id.clone()) {
                ready.push(child.shard_id.clone());
            }
        }
        ready
    };
    for child in ready {
        let start = iterator(client, stream, &child, ShardIteratorType::TrimHorizon, None).await?;
        spawn_reader(
            client.clone(),
            stream.to_owned(),
            child,
            start,
            Arc::clone(progress),
            events.clone(),
        );
    }
    Ok(())
}

async fn iterator(
    client: &Client,
    stream: &str,
    shard: &str,
    kind: ShardIteratorType,
    after: Option<&str>,
) -> Result<String, CliError> {
    client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_starting_sequence_number(after.map(str::to_owned))
        .send()
        .await?
        .shard_iterator
        .ok_or_else(|| {
            CliError::Other(format!("GetShardIterator answered no iterator for {shard}"))
        })
}

/// The user records of a Kinesis record, as the KCL hands them over: those
/// of a KPL-aggregated record, named `SEQUENCE/SUB` by their sub-sequence
/// numbers, or the record itself.
fn user_records(shard: &Arc<str>, record: Record) -> Vec<Event> {
    let data = record.data.into_inner();
    match riffle_kpl::decode(&data) {
        Some(users) => users
            .into_iter()
            .map(|user| Event::Record {
                shard: Arc::clone(shard),
                sequence: format!("{}/{}", record.sequence_number, user.sub_sequence_number),
                key: user.partition_key.to_owned(),
                data: user.data.to_vec(),
            })
            .collect(),
        None => vec![Event::Record {
            shard: Arc::clone(shard),
            sequence: record.sequence_number,
            key: record.partition_key.unwrap_or_default(),
            data,
        }],
    }
}
