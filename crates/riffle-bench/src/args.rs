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
/// PutRecordBatch's records per request (the Firehose model's `Records` max).
pub const PUT_RECORD_BATCH_COUNT_MAX: usize = 500;
/// BufferingHints.SizeInMBs' range in the Firehose model (1–128).
const BUFFER_MB_RANGE: std::ops::RangeInclusive<u32> = 1..=128;
/// BufferingHints.IntervalInSeconds' range in the Firehose model (0–900).
const BUFFER_INTERVAL_S_RANGE: std::ops::RangeInclusive<u32> = 0..=900;
/// How long `firehose` writes unless told: the sustained minute.
const FIREHOSE_DURATION_DEFAULT: Duration = Duration::from_secs(60);
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
    /// Firehose PutRecordBatch into a DirectPut delivery stream, every
    /// record read back from the S3 objects it delivered.
    Firehose,
}

/// The CompressionFormat of the bench's delivery stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compression {
    Uncompressed,
    Gzip,
}

impl Compression {
    /// The model's enum value.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::Uncompressed => "UNCOMPRESSED",
            Compression::Gzip => "GZIP",
        }
    }
}

/// The options only `firehose` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct FirehoseOptions {
    /// BufferingHints.SizeInMBs: deliver once this many MiB are buffered
    /// (1–128). The largest buffer is what a throughput-minded user picks
    /// and what costs the server least per byte.
    #[arg(long, default_value_t = 128)]
    pub buffer_size_mb: u32,
    /// BufferingHints.IntervalInSeconds (0–900): at full load objects are
    /// cut by size long before this; it only decides when the last,
    /// partial buffer is delivered after the writers stop.
    #[arg(long, default_value_t = 60)]
    pub buffer_interval: u32,
    /// CompressionFormat of the delivered objects.
    #[arg(long, value_enum, default_value = "UNCOMPRESSED")]
    pub compression: Compression,
    /// The bucket objects are delivered to, created if missing
    /// [default: the delivery stream's name].
    #[arg(long)]
    pub bucket: Option<String>,
    /// How long to wait, after the writers stop, for the last objects
    /// beyond the buffer interval.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    pub drain_timeout: Duration,
    /// Transform every record with this function (a Lambda processor's
    /// LambdaArn, a `[functions]` function of the server). Every delivered
    /// record is verified, so the function must return records unchanged
    /// (`Ok` with the same data): what is measured is the transformation
    /// path, not the function's own work.
    #[arg(long, value_name = "ARN")]
    pub transform_function: Option<String>,
    /// Partition records dynamically by this JQ query (a MetadataExtraction
    /// processor), e.g. '{customer_id: .customer_id}'. Records are then
    /// JSON objects with a `customer_id` (one of 100) and the verified
    /// payload in base64 as `data`; each member the query gives names a
    /// level of the objects' prefix.
    #[arg(long, value_name = "QUERY")]
    pub partition_query: Option<String>,
}

/// `riffle bench firehose`'s options: the common ones and its own.
#[derive(Debug, Clone, clap::Args)]
pub struct FirehoseArgs {
    #[command(flatten)]
    pub common: BenchOptions,
    #[command(flatten)]
    pub firehose: FirehoseOptions,
}

/// The resolved delivery stream settings of a `firehose` run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirehosePlan {
    pub buffer_size_mb: u32,
    pub buffer_interval: u32,
    pub compression: Compression,
    pub bucket: String,
    pub drain_timeout: Duration,
    pub transform_function: Option<String>,
    pub partition_query: Option<String>,
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
    /// Firehose: PutRecordBatch into a DirectPut delivery stream to S3 on
    /// the same endpoint, then every acknowledged record read back from
    /// the delivered objects (ListObjectsV2 + GetObject): acknowledged and
    /// delivered MB/s, records lost, DataFreshness.
    ///
    /// Defaults: 500 records of 1024 bytes per request, 16 in flight, for
    /// 60 s, into a 128 MiB / 60 s buffer, UNCOMPRESSED.
    Firehose(FirehoseArgs),
}

impl WorkloadArgs {
    /// The workload, its options, and `firehose`'s own; `None` for
    /// `dynamodb`, which runs on its own (`crate::dynamodb`).
    pub fn split(self) -> Option<(Workload, BenchOptions, Option<FirehoseOptions>)> {
        Some(match self {
            WorkloadArgs::Put(o) => (Workload::Put, o, None),
            WorkloadArgs::PutBatch(o) => (Workload::PutBatch, o, None),
            WorkloadArgs::Get(o) => (Workload::Get, o, None),
            WorkloadArgs::E2e(o) => (Workload::E2e, o, None),
            WorkloadArgs::Mixed(o) => (Workload::Mixed, o, None),
            WorkloadArgs::Kpl(o) => (Workload::Kpl, o, None),
            WorkloadArgs::Firehose(f) => (Workload::Firehose, f.common, Some(f.firehose)),
            WorkloadArgs::Dynamodb(_) => return None,
        })
    }
}

/// The options every workload takes (each applies where its help says).
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// The Kinesis (or Firehose and S3) endpoint (http://HOST:PORT or
    /// https://HOST).
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
    /// `firehose` only: its delivery stream and bucket.
    pub firehose: Option<FirehosePlan>,
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
        let Some((w, args, firehose)) = args.workload.split() else {
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
            (Firehose, None) => PUT_RECORD_BATCH_COUNT_MAX,
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
            (Firehose, None, None) => Stop::After(FIREHOSE_DURATION_DEFAULT),
            (_, None, None) => Stop::After(Duration::from_secs(10)),
        };
        check_rest(w, &args)?;
        let rate = args.rate.or((w == E2e).then_some(1000.0));
        let concurrency = args.concurrency.unwrap_or(match w {
            Put => 64,
            Kpl => 24,
            _ => 16,
        });
        // Firehose delivers the warm-up's records too, and delivered
        // throughput counts from the first acknowledgement: no warm-up.
        let warmup = args.warmup.unwrap_or(match stop {
            Stop::After(_) if !matches!(w, Get | Firehose) => Duration::from_secs(1),
            _ => Duration::ZERO,
        });
        let stream = args.stream.unwrap_or_else(default_stream_name);
        let firehose = firehose.map(|f| firehose_plan(f, &stream)).transpose()?;
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
            firehose,
        })
    }
}

/// Checks `firehose`'s own options against the model's ranges.
fn firehose_plan(options: FirehoseOptions, stream: &str) -> Result<FirehosePlan, BenchError> {
    if !BUFFER_MB_RANGE.contains(&options.buffer_size_mb) {
        return Err(usage(
            "buffer-size-mb",
            format!("{} is outside 1..=128", options.buffer_size_mb),
        ));
    }
    if !BUFFER_INTERVAL_S_RANGE.contains(&options.buffer_interval) {
        return Err(usage(
            "buffer-interval",
            format!("{} is outside 0..=900 seconds", options.buffer_interval),
        ));
    }
    Ok(FirehosePlan {
        buffer_size_mb: options.buffer_size_mb,
        buffer_interval: options.buffer_interval,
        compression: options.compression,
        // Stream names allow upper case and `_`; bucket names do not.
        bucket: options
            .bucket
            .unwrap_or_else(|| stream.to_ascii_lowercase().replace('_', "-")),
        drain_timeout: options.drain_timeout,
        transform_function: options.transform_function,
        partition_query: options.partition_query,
    })
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
    if workload == Workload::Firehose {
        if args.reuse_stream {
            return Err(usage(
                "reuse-stream",
                "firehose creates its delivery stream and deletes it",
            ));
        }
        if args
            .batch_size
            .is_some_and(|n| n > PUT_RECORD_BATCH_COUNT_MAX)
        {
            return Err(usage(
                "batch-size",
                format!("PutRecordBatch takes at most {PUT_RECORD_BATCH_COUNT_MAX} records"),
            ));
        }
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
        let firehose = plan(&["firehose", "--stream", "Bench_1"]).unwrap();
        assert_eq!(
            (firehose.record_size, firehose.batch_size, firehose.warmup),
            (1024, 500, Duration::ZERO)
        );
        assert_eq!(firehose.stop, Stop::After(Duration::from_secs(60)));
        let settings = firehose.firehose.unwrap();
        assert_eq!(
            (settings.buffer_size_mb, settings.buffer_interval),
            (128, 60)
        );
        assert_eq!(settings.compression, Compression::Uncompressed);
        assert_eq!(settings.bucket, "bench-1");
        let gzip = plan(&["firehose", "--compression", "GZIP"]).unwrap();
        assert_eq!(gzip.firehose.unwrap().compression, Compression::Gzip);
        assert!(plan(&["put"]).unwrap().firehose.is_none());
        let arn = "arn:aws:lambda:us-east-1:000000000000:function:identity";
        let transformed = plan(&["firehose", "--transform-function", arn]).unwrap();
        assert_eq!(
            transformed.firehose.unwrap().transform_function.as_deref(),
            Some(arn)
        );
        let query = "{customer_id: .customer_id}";
        let partitioned = plan(&["firehose", "--partition-query", query]).unwrap();
        assert_eq!(
            partitioned.firehose.unwrap().partition_query.as_deref(),
            Some(query)
        );
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
            (&["firehose", "--buffer-size-mb", "129"], "buffer-size-mb"),
            (&["firehose", "--buffer-interval", "901"], "buffer-interval"),
            (&["firehose", "--reuse-stream"], "reuse-stream"),
        ] {
            match plan(argv) {
                Err(BenchError::Usage { flag: got, .. }) => assert_eq!(got, flag, "{argv:?}"),
                other => panic!("{argv:?}: {other:?}"),
            }
        }
    }
}
