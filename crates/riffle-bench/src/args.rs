//! The command line of `riffle bench`, and the plan it resolves to (each
//! workload's defaults filled in, combinations checked).

use std::path::PathBuf;
use std::time::Duration;

use crate::error::BenchError;
use crate::payload::{HEADER_LEN, RECORD_SIZE_MAX};

/// PutRecords' records per request (the API model's `Records` max).
pub const PUT_RECORDS_COUNT_MAX: usize = 500;
/// CreateStream's largest shard count the bench asks for (AWS's default
/// account quota is 500 or 200 shards per region).
const SHARDS_MAX: u32 = 500;
/// Records `get` fills and drains unless told: about 1 GB of 1 KiB records,
/// two seconds of draining here. With 200,000 the drain lasted half a second
/// and the ramp-up of its first requests took 20-30 % off the measured rate
/// (357-427 against 507-535 MB/s on the same server).
const GET_RECORDS_DEFAULT: u64 = 1_000_000;

/// What the bench does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// PutRecord, one small record per request.
    Put,
    /// PutRecords, --batch-size records of --record-size bytes.
    PutBatch,
    /// Fill the stream, then drain every shard from TRIM_HORIZON with
    /// GetRecords (read throughput; every record verified).
    Get,
    /// Put while a consumer follows the tip (put-to-receive latency;
    /// every record verified).
    E2e,
    /// PutRecords and a polling reader at full speed together (every
    /// record verified).
    Mixed,
    /// Small user records through the KPL producer (riffle-kpl), aggregated
    /// per shard, then drained and de-aggregated (every record verified).
    Kpl,
}

/// How the e2e consumer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Consumer {
    /// GetRecords in a loop on every shard.
    Polling,
    /// Enhanced fan-out: SubscribeToShard on every shard.
    Efo,
}

/// `riffle bench WORKLOAD [options]`: one subcommand per workload, so that
/// `riffle bench put --help` describes `put` and its defaults.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub workload: WorkloadArgs,
}

/// The workloads, each with the options they share.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum WorkloadArgs {
    /// PutRecord, one small record per request: requests/s and latency.
    ///
    /// Defaults: 64-byte records, 64 requests in flight, a 1 s warm-up, then
    /// 10 s measured, closed loop (or open loop with --rate).
    Put(BenchOptions),
    /// PutRecords, --batch-size records of --record-size bytes: MB/s.
    ///
    /// Defaults: 100 records of 1024 bytes per request, 16 in flight, a 1 s
    /// warm-up, then 10 s measured.
    PutBatch(BenchOptions),
    /// Fill the stream, then drain every shard from TRIM_HORIZON with
    /// GetRecords: read MB/s, every record verified.
    ///
    /// Defaults: 1,000,000 records of 1024 bytes, filled 500 per PutRecords,
    /// drained by one reader per shard on 2 client threads.
    Get(BenchOptions),
    /// Put while a consumer follows the tip: put-to-receive latency, every
    /// record verified.
    ///
    /// Defaults: 1,000 PutRecord/s of 1024 bytes for 10 s, a polling consumer
    /// (GetRecords every --poll-interval when idle); --consumer efo reads
    /// with SubscribeToShard instead.
    E2e(BenchOptions),
    /// PutRecords and a polling reader at full speed together, every record
    /// verified.
    ///
    /// Defaults: 100 records of 1024 bytes per request, 16 in flight, for 10 s.
    Mixed(BenchOptions),
    /// KCL lease traffic on a DynamoDB endpoint: GetItem and conditional
    /// UpdateItem latency.
    ///
    /// Defaults: 16 workers over 256 lease items, a 1 s warm-up, then 10 s
    /// measured.
    Dynamodb(crate::dynamodb::DynamoOptions),
    /// User records through the KPL producer (riffle-kpl): aggregated per
    /// shard into PutRecords calls; user records/s and Kinesis records/s,
    /// then every user record read back, de-aggregated and verified.
    ///
    /// Defaults: 100-byte records, 24 PutRecords in flight (the KPL's
    /// MaxConnections), the KPL's other defaults but its per-shard rate
    /// limit (out of the way: run the server with --throughput-limits off),
    /// a 1 s warm-up, then 10 s measured.
    Kpl(BenchOptions),
}

impl WorkloadArgs {
    /// The workload and its options; `None` for `dynamodb`, which runs
    /// on its own (`crate::dynamodb`).
    pub fn split(self) -> Option<(Workload, BenchOptions)> {
        Some(match self {
            WorkloadArgs::Put(o) => (Workload::Put, o),
            WorkloadArgs::PutBatch(o) => (Workload::PutBatch, o),
            WorkloadArgs::Get(o) => (Workload::Get, o),
            WorkloadArgs::E2e(o) => (Workload::E2e, o),
            WorkloadArgs::Mixed(o) => (Workload::Mixed, o),
            WorkloadArgs::Kpl(o) => (Workload::Kpl, o),
            WorkloadArgs::Dynamodb(_) => return None,
        })
    }
}

/// The options every workload takes (each applies where its help says).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// The Kinesis endpoint (http://HOST:PORT or https://HOST).
    #[arg(long, default_value = "http://127.0.0.1:4567")]
    pub endpoint: String,
    /// The region requests are signed for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Stream name [default: riffle-bench-PID-TIME].
    #[arg(long)]
    pub stream: Option<String>,
    /// Shards of the stream the bench creates.
    #[arg(long, default_value_t = 4)]
    pub shards: u32,
    /// Use the stream if it exists, and do not delete it afterwards.
    #[arg(long)]
    pub reuse_stream: bool,
    /// Bytes per record (at least 28: the verification header)
    /// [default: 64 for put, 1024 otherwise].
    #[arg(long)]
    pub record_size: Option<usize>,
    /// Records per PutRecords (1 sends PutRecord)
    /// [default: 100 for put-batch and mixed, 500 for get's fill, 1 for e2e].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Distinct partition keys (spread over the shards by their MD5).
    #[arg(long, default_value_t = 1024)]
    pub keys: u32,
    /// Requests in flight at once (writers; get: readers are one per shard)
    /// [default: 64 for put, 16 otherwise].
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// How long to measure, e.g. 10s, 500ms, 2m [default: 10s; get reads
    /// --records instead].
    #[arg(long, value_parser = parse_duration, conflicts_with = "records")]
    pub duration: Option<Duration>,
    /// Records to write (and, for get, to drain) instead of a duration
    /// [default for get: 1000000].
    #[arg(long)]
    pub records: Option<u64>,
    /// Target requests per second, open loop: every request has an intended
    /// start time and its latency counts from then [default: closed loop;
    /// e2e: 1000].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Time spent writing before measuring [default: 1s with --duration,
    /// 0s with --records].
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// The e2e consumer: polling (GetRecords) or efo (SubscribeToShard).
    #[arg(long, value_enum, default_value = "polling")]
    pub consumer: Consumer,
    /// Pause of a polling reader after an empty GetRecords.
    #[arg(long, value_parser = parse_duration, default_value = "10ms")]
    pub poll_interval: Duration,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Write latency and throughput charts to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Threads of the load generator's runtime [default: 2 for get and
    /// mixed, whose readers verify every record; 1 otherwise].
    #[arg(long)]
    pub client_threads: Option<usize>,
    /// Send the data-plane calls over HTTP/2 (prior knowledge on http://,
    /// ALPN on https://), multiplexed on one connection, as the Java and
    /// JavaScript SDKs can, instead of one HTTP/1.1 connection per request
    /// in flight.
    #[arg(long)]
    pub http2: bool,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    After(Duration),
    Records(u64),
}

/// A run, every default resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    pub workload: Workload,
    pub endpoint: String,
    pub region: String,
    pub stream: String,
    pub shards: u32,
    pub reuse_stream: bool,
    pub record_size: usize,
    pub batch_size: usize,
    pub keys: u32,
    pub concurrency: usize,
    pub stop: Stop,
    pub rate: Option<f64>,
    pub warmup: Duration,
    pub consumer: Consumer,
    pub poll_interval: Duration,
    pub json: bool,
    pub plot: Option<PathBuf>,
    pub client_threads: usize,
    pub http2: bool,
    pub progress: bool,
}

fn usage(flag: &'static str, reason: impl Into<String>) -> BenchError {
    BenchError::Usage {
        flag,
        reason: reason.into(),
    }
}

impl Plan {
    /// Fills in the workload's defaults and refuses what cannot run.
    pub fn resolve(args: BenchArgs) -> Result<Plan, BenchError> {
        use Workload::*;
        let Some((w, args)) = args.workload.split() else {
            return Err(usage("workload", "dynamodb is run by riffle_bench::main"));
        };
        let record_size = args.record_size.unwrap_or(match w {
            Put => 64,
            Kpl => 100,
            _ => 1024,
        });
        if !(HEADER_LEN..=RECORD_SIZE_MAX).contains(&record_size) {
            return Err(usage(
                "record-size",
                format!("{record_size} is outside {HEADER_LEN}..={RECORD_SIZE_MAX} bytes"),
            ));
        }
        let batch_size = match (w, args.batch_size) {
            (Put, Some(n)) if n != 1 => {
                return Err(usage(
                    "batch-size",
                    "put sends one record per PutRecord; use put-batch",
                ));
            }
            (_, Some(n)) => n,
            (Put | E2e | Kpl, None) => 1,
            (PutBatch | Mixed, None) => 100,
            (Get, None) => PUT_RECORDS_COUNT_MAX,
        };
        if !(1..=PUT_RECORDS_COUNT_MAX).contains(&batch_size) {
            return Err(usage(
                "batch-size",
                format!("{batch_size} is outside 1..={PUT_RECORDS_COUNT_MAX}"),
            ));
        }
        let stop = match (w, args.duration, args.records) {
            (Get, Some(_), _) => {
                return Err(usage(
                    "duration",
                    "get drains --records records; give --records",
                ));
            }
            (_, _, Some(0)) => return Err(usage("records", "must be at least 1")),
            (_, _, Some(n)) => Stop::Records(n),
            (_, Some(d), None) if d.is_zero() => {
                return Err(usage("duration", "must be more than 0"));
            }
            (_, Some(d), None) => Stop::After(d),
            (Get, None, None) => Stop::Records(GET_RECORDS_DEFAULT),
            (_, None, None) => Stop::After(Duration::from_secs(10)),
        };
        check_rest(w, &args)?;
        let rate = args.rate.or((w == E2e).then_some(1000.0));
        let concurrency = args.concurrency.unwrap_or(match w {
            Put => 64,
            Kpl => 24,
            _ => 16,
        });
        let warmup = args.warmup.unwrap_or(match stop {
            Stop::After(_) if w != Get => Duration::from_secs(1),
            _ => Duration::ZERO,
        });
        let stream = args.stream.unwrap_or_else(default_stream_name);
        Ok(Plan {
            workload: w,
            endpoint: args.endpoint.trim_end_matches('/').to_owned(),
            region: args.region,
            stream,
            shards: args.shards,
            reuse_stream: args.reuse_stream,
            record_size,
            batch_size,
            keys: args.keys,
            concurrency,
            stop,
            rate,
            warmup,
            consumer: args.consumer,
            poll_interval: args.poll_interval,
            json: args.json,
            plot: args.plot,
            // A current-thread runtime has no cross-thread wake-ups: PutRecord
            // cost the client 30 instead of 39 us a request and PutRecords 254
            // instead of 305. The verifying readers need more than one core.
            client_threads: args.client_threads.unwrap_or(if matches!(w, Get | Mixed) {
                2
            } else {
                1
            }),
            http2: args.http2,
            progress: !args.quiet,
        })
    }
}

/// The checks of options that need no workload defaults.
fn check_rest(workload: Workload, args: &BenchOptions) -> Result<(), BenchError> {
    if let Some(rate) = args.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return Err(usage(
            "rate",
            format!("{rate} is not a positive number of requests per second"),
        ));
    }
    if args.rate.is_some() && workload == Workload::Get {
        return Err(usage(
            "rate",
            "get drains as fast as it can; --rate applies to writes",
        ));
    }
    if args.concurrency == Some(0) {
        return Err(usage("concurrency", "must be at least 1"));
    }
    if !(1..=SHARDS_MAX).contains(&args.shards) {
        return Err(usage(
            "shards",
            format!("{} is outside 1..={SHARDS_MAX}", args.shards),
        ));
    }
    if args.keys == 0 {
        return Err(usage("keys", "must be at least 1"));
    }
    if args.client_threads == Some(0) {
        return Err(usage("client-threads", "must be at least 1"));
    }
    if args.consumer == Consumer::Efo && workload != Workload::E2e {
        return Err(usage("consumer", "only e2e takes a consumer kind"));
    }
    // The charts are SVG only (no font libraries needed); a .png name
    // would get SVG content a viewer cannot open.
    if let Some(plot) = &args.plot
        && !plot
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
    {
        return Err(usage(
            "plot",
            "charts are written as SVG: name the file FILE.svg (any browser opens it)",
        ));
    }
    Ok(())
}

fn default_stream_name() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    format!("riffle-bench-{}-{secs}", std::process::id())
}

/// `10s`, `500ms`, `2m`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 500ms or 2m"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn plan(argv: &[&str]) -> Result<Plan, BenchError> {
        let cli = Cli::try_parse_from(std::iter::once("bench").chain(argv.iter().copied()))
            .map_err(|e| usage("args", e.to_string()))?;
        Plan::resolve(cli.args)
    }

    #[test]
    fn durations_parse_in_the_units_people_type() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }

    #[test]
    fn each_workload_gets_its_defaults() {
        let put = plan(&["put"]).unwrap();
        assert_eq!(
            (put.record_size, put.batch_size, put.concurrency),
            (64, 1, 64)
        );
        assert_eq!(put.stop, Stop::After(Duration::from_secs(10)));
        assert_eq!(put.warmup, Duration::from_secs(1));
        let batch = plan(&["put-batch", "--records", "1000"]).unwrap();
        assert_eq!((batch.record_size, batch.batch_size), (1024, 100));
        assert_eq!(batch.warmup, Duration::ZERO);
        assert_eq!(
            plan(&["get"]).unwrap().stop,
            Stop::Records(GET_RECORDS_DEFAULT)
        );
        assert_eq!(plan(&["e2e"]).unwrap().rate, Some(1000.0));
        let threads = |argv: &[&str]| plan(argv).unwrap().client_threads;
        assert_eq!(threads(&["put"]), 1);
        assert_eq!(threads(&["get"]), 2);
        assert_eq!(threads(&["mixed"]), 2);
        assert_eq!(threads(&["put", "--client-threads", "3"]), 3);
    }

    #[test]
    fn impossible_combinations_are_refused_with_the_flag_named() {
        for (argv, flag) in [
            (&["put", "--batch-size", "10"][..], "batch-size"),
            (&["put-batch", "--batch-size", "501"], "batch-size"),
            (&["put", "--record-size", "8"], "record-size"),
            (&["get", "--duration", "5s"], "duration"),
            (&["put", "--rate", "0"], "rate"),
            (&["put", "--consumer", "efo"], "consumer"),
            (&["put", "--shards", "0"], "shards"),
            (&["put", "--plot", "chart.png"], "plot"),
        ] {
            match plan(argv) {
                Err(BenchError::Usage { flag: got, .. }) => assert_eq!(got, flag, "{argv:?}"),
                other => panic!("{argv:?}: {other:?}"),
            }
        }
    }
}
