//! `riffle bench dynamodb`: KCL lease traffic against a DynamoDB endpoint.
//! `--clients` workers each own a slice of lease items and loop: GetItem
//! (`ConsistentRead`) of a lease, then the conditional renewal KCL makes
//! (`SET leaseCounter = leaseCounter + :one` if the owner is still the
//! worker). Each call's latency goes into a histogram per operation;
//! p50/p99/p99.9 and calls per second are reported. The table is created
//! for the run and deleted after it.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::args::parse_duration;
use crate::client::{Signing, parse_endpoint};
use crate::error::BenchError;
use crate::sign::Signer;
use crate::stats;

const JSON_1_0: &str = "application/x-amz-json-1.0";
/// DynamoDB's SigV4 signing name.
const SERVICE: &str = "dynamodb";

/// `riffle bench dynamodb` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DynamoOptions {
    /// The DynamoDB endpoint (http://HOST:PORT).
    #[arg(long, default_value = "http://127.0.0.1:4567")]
    pub endpoint: String,
    /// The region requests are signed for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Workers, each with one request in flight (KCL workers renewing).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Lease items, spread over the workers.
    #[arg(long, default_value_t = 256)]
    pub leases: usize,
    /// How long to measure, e.g. 10s.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Time spent renewing before measuring.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub warmup: Duration,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// A small signed JSON 1.0 client.
struct Dynamo {
    http: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    host: String,
    signer: Signer,
}

impl Dynamo {
    async fn call(&self, op: &str, body: serde_json::Value) -> Result<serde_json::Value, String> {
        let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let target = format!("DynamoDB_20120810.{op}");
        let signature = self
            .signer
            .sign(&self.host, JSON_1_0, &target, &body, SystemTime::now());
        let value = |text: String| HeaderValue::try_from(text).map_err(|e| e.to_string());
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(HOST, value(self.host.clone())?)
            .header(CONTENT_TYPE, JSON_1_0)
            .header("x-amz-target", value(target)?)
            .header("x-amz-date", value(signature.amz_date)?)
            .header(AUTHORIZATION, value(signature.authorization)?)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let parsed = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        if status.is_success() {
            Ok(parsed)
        } else {
            Err(format!("{op}: HTTP {status}: {parsed}"))
        }
    }
}

/// What one run measured.
struct Measured {
    get: Histogram<u64>,
    update: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs the workload; prints the summary; returns the exit code.
pub fn main(options: &DynamoOptions) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(source) => return fail(&BenchError::Runtime { source }),
    };
    match runtime.block_on(run(options)) {
        Ok(()) => std::process::ExitCode::from(crate::EXIT_OK),
        Err(err) => fail(&err),
    }
}

fn fail(err: &BenchError) -> std::process::ExitCode {
    eprintln!("riffle bench: error: {err}");
    std::process::ExitCode::from(crate::EXIT_FAILURE)
}

fn control<'a>(op: &'static str, table: &'a str) -> impl Fn(String) -> BenchError + 'a {
    move |message| BenchError::ControlPlane {
        action: op,
        stream: table.to_owned(),
        message,
    }
}

async fn run(options: &DynamoOptions) -> Result<(), BenchError> {
    if options.clients == 0 || options.leases < options.clients {
        return Err(BenchError::Usage {
            flag: "leases",
            reason: "needs at least one lease per client, and at least one client".to_owned(),
        });
    }
    let uri = parse_endpoint(&options.endpoint)?;
    let signing = Signing::from_env(&options.region);
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    let client = Arc::new(Dynamo {
        http: Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(options.clients)
            .build(tcp),
        host: uri.authority().map(|a| a.to_string()).unwrap_or_default(),
        uri,
        signer: Signer::new(signing.credentials, &options.region, SERVICE),
    });
    let table = format!("riffle-bench-leases-{}", std::process::id());
    setup(&client, &table, options).await?;
    let measured = drive(&client, &table, options).await;
    let deleted = client
        .call("DeleteTable", json!({"TableName": table}))
        .await
        .map_err(control("DeleteTable", &table));
    report(options, &measured);
    deleted.map(|_| ())
}

fn lease_key(i: usize) -> String {
    format!("shardId-{i:012}")
}

fn owner(worker: usize) -> String {
    format!("worker-{worker}")
}

async fn setup(client: &Dynamo, table: &str, options: &DynamoOptions) -> Result<(), BenchError> {
    client
        .call(
            "CreateTable",
            json!({
                "TableName": table,
                "KeySchema": [{"AttributeName": "leaseKey", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "leaseKey", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST",
            }),
        )
        .await
        .map_err(control("CreateTable", table))?;
    for i in 0..options.leases {
        let item = json!({
            "leaseKey": {"S": lease_key(i)},
            "leaseOwner": {"S": owner(i % options.clients)},
            "leaseCounter": {"N": "0"},
            "checkpoint": {"S": "TRIM_HORIZON"},
            "ownerSwitchesSinceCheckpoint": {"N": "0"},
        });
        client
            .call("PutItem", json!({"TableName": table, "Item": item}))
            .await
            .map_err(control("PutItem", table))?;
    }
    Ok(())
}

/// Runs every worker through the warm-up and the measured window.
async fn drive(client: &Arc<Dynamo>, table: &str, options: &DynamoOptions) -> Measured {
    let started = Instant::now();
    let measure_from = started + options.warmup;
    let until = measure_from + options.duration;
    let workers: Vec<_> = (0..options.clients)
        .map(|w| {
            let client = Arc::clone(client);
            let table = table.to_owned();
            let mine: Vec<String> = (w..options.leases)
                .step_by(options.clients)
                .map(lease_key)
                .collect();
            tokio::spawn(
                async move { worker(&client, &table, w, &mine, measure_from, until).await },
            )
        })
        .collect();
    let mut total = Measured {
        get: stats::histogram(),
        update: stats::histogram(),
        errors: 0,
        first_error: None,
    };
    for handle in workers {
        // A worker that panicked measured nothing.
        if let Ok(m) = handle.await {
            total.get.add(&m.get).ok();
            total.update.add(&m.update).ok();
            total.errors += m.errors;
            total.first_error = total.first_error.or(m.first_error);
        }
    }
    total
}

async fn worker(
    client: &Dynamo,
    table: &str,
    w: usize,
    leases: &[String],
    measure_from: Instant,
    until: Instant,
) -> Measured {
    let mut m = Measured {
        get: stats::histogram(),
        update: stats::histogram(),
        errors: 0,
        first_error: None,
    };
    let me = owner(w);
    for key in leases.iter().cycle() {
        let now = Instant::now();
        if now >= until {
            break;
        }
        let get =
            json!({"TableName": table, "Key": {"leaseKey": {"S": key}}, "ConsistentRead": true});
        let got = client.call("GetItem", get).await;
        let after_get = Instant::now();
        let renew = json!({
            "TableName": table,
            "Key": {"leaseKey": {"S": key}},
            "UpdateExpression": "SET leaseCounter = leaseCounter + :one",
            "ConditionExpression": "leaseOwner = :me",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":me": {"S": me}},
        });
        let renewed = client.call("UpdateItem", renew).await;
        let done = Instant::now();
        if now >= measure_from {
            stats::record(&mut m.get, after_get - now);
            stats::record(&mut m.update, done - after_get);
            for result in [got.err(), renewed.err()].into_iter().flatten() {
                m.errors += 1;
                m.first_error.get_or_insert(result);
            }
        }
    }
    m
}

fn report(options: &DynamoOptions, m: &Measured) {
    let seconds = options.duration.as_secs_f64();
    let summary = |h: &Histogram<u64>| {
        json!({
            "calls": h.len(),
            "per_second": (h.len() as f64 / seconds).round(),
            "p50_us": h.value_at_quantile(0.50),
            "p99_us": h.value_at_quantile(0.99),
            "p999_us": h.value_at_quantile(0.999),
            "max_us": h.max(),
        })
    };
    let out = json!({
        "workload": "dynamodb",
        "clients": options.clients,
        "leases": options.leases,
        "duration_s": seconds,
        "get_item": summary(&m.get),
        "update_item": summary(&m.update),
        "errors": m.errors,
        "first_error": m.first_error,
    });
    if options.json {
        println!("{out}");
        return;
    }
    println!(
        "dynamodb: {} clients, {} leases, {:.1} s measured",
        options.clients, options.leases, seconds
    );
    println!(
        "{:<28} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "operation", "calls/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for (name, h) in [
        ("GetItem (consistent)", &m.get),
        ("UpdateItem (conditional)", &m.update),
    ] {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{:<28} {:>9.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
            name,
            h.len() as f64 / seconds,
            ms(0.5),
            ms(0.99),
            ms(0.999),
            h.max() as f64 / 1000.0
        );
    }
    println!("errors: {}", m.errors);
    if let Some(first) = &m.first_error {
        println!("first error: {first}");
    }
}
