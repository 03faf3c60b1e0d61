//! `riffle serve`: wires the storage engine, the services (Kinesis,
//! Firehose, the embedded S3, the DynamoDB subset) and the network edge together, prints the
//! banner, and shuts down cleanly on SIGTERM/SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use riffle_firehose::sink::ObjectSink;
use riffle_firehose::{Firehose, FirehoseError};
use riffle_kinesis::{Kinesis, KinesisError};
use riffle_log::{LogError, LogStore, StoreConfig};
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::watch;
use tracing::{error, info, warn};

use riffle_server::services::{
    CloudWatchService, DynamoDbService, FirehoseService, GlueService, KinesisService, LambdaService,
};
use riffle_server::{Service, TlsFiles};

use crate::config::ServeConfig;

/// Why the server could not start or stop cleanly. Each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("cannot use data directory {dir}: {source}")]
    DataDir { dir: PathBuf, source: LogError },
    #[error("cannot open the streams stored in {dir}: {source}")]
    Catalog { dir: PathBuf, source: KinesisError },
    #[error("cannot open the delivery streams stored in {dir}: {source}")]
    Firehose { dir: PathBuf, source: FirehoseError },
    #[error("cannot open the DynamoDB tables stored in {dir}: {source}")]
    DynamoDb {
        dir: PathBuf,
        source: riffle_dynamodb::DynamoError,
    },
    #[error("cannot open the event source mappings stored in {dir}: {source}")]
    Triggers {
        dir: PathBuf,
        source: riffle_triggers::TriggersError,
    },
    #[error("cannot open the embedded S3 in {dir}: {source}")]
    S3 {
        dir: PathBuf,
        source: riffle_s3::S3Error,
    },
    #[error(transparent)]
    FirehoseOptions(#[from] riffle_firehose::FirehoseOptionsError),
    #[error("cannot install the SIGTERM/SIGINT handlers: {0}")]
    Signal(std::io::Error),
    #[error("cannot serve HTTPS with {cert} and {key}: {source}")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        source: riffle_server::TlsError,
    },
    #[error(transparent)]
    Audit(#[from] riffle_server::AuditError),
    #[error("cannot read the policy of {key} from {}: {source}", path.display())]
    PolicyFile {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the policy of {key} in {} is not usable: {source}", path.display())]
    Policy {
        key: String,
        path: PathBuf,
        source: riffle_server::PolicyError,
    },
    #[error(transparent)]
    Server(#[from] riffle_server::ServerError),
    #[error(transparent)]
    Functions(#[from] riffle_lambda::LambdaError),
    #[error("flushing the data directory at shutdown failed: {0}")]
    Shutdown(LogError),
}

/// Runs the server until SIGTERM or SIGINT.
pub async fn run(config: ServeConfig) -> Result<(), ServeError> {
    // Files first: a wrong one is reported before the data is opened.
    let tls = match &config.tls {
        None => None,
        Some(files) => Some(
            riffle_server::Tls::from_pem_files(&files.cert, &files.key).map_err(|source| {
                ServeError::Tls {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                    source,
                }
            })?,
        ),
    };
    let policies = read_policies(&config)?;
    let options = &config.options;
    let audit = match &options.edge.audit_log {
        Some(path) => Some(riffle_server::AuditLog::open(
            path,
            options.edge.audit_data_events.0,
            &options.region.0,
            &options.account_id.0,
        )?),
        None => None,
    };
    let (audit, audit_writer) = audit.unzip();
    let listener = bind(options.listen.0).await?;
    let metrics_listener = match options.edge.metrics_listen.0 {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let ingest_listener = match options.edge.ingest_listen.0 {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let console_listener = bind_console(&options.console).await?;
    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: options.listen.0,
        source,
        hint: "",
    })?;
    // Both handlers are installed before the banner announces the server,
    // so a signal sent right after it is never the default (fatal) action.
    let signals = Signals {
        terminate: signal(SignalKind::terminate()).map_err(ServeError::Signal)?,
        interrupt: signal(SignalKind::interrupt()).map_err(ServeError::Signal)?,
    };

    let dir = options.data_dir.0.clone();
    let store_config = StoreConfig {
        fsync: options.fsync.0,
        disk_free_min: options.disk_free_min,
        ..StoreConfig::default()
    };
    let store = LogStore::open(&dir, store_config).map_err(|source| ServeError::DataDir {
        dir: dir.clone(),
        source,
    })?;
    if let Some(key_file) = &options.master_key_file {
        store.set_master_key_file(key_file);
    }
    let store = Arc::new(store);
    let mut kinesis_config = config.kinesis();
    kinesis_config.resource_policy_check = riffle_server::check_resource_policy;
    let kinesis = Kinesis::open(Arc::clone(&store), kinesis_config).map_err(|source| {
        ServeError::Catalog {
            dir: dir.clone(),
            source,
        }
    })?;

    // Buckets are directories under <data-dir>/s3/; the API port serves
    // them, and Firehose delivers there unless --s3-endpoint is given.
    let s3_dir = dir.join("s3");
    let s3 = Arc::new(
        riffle_s3::S3::open(&s3_dir).map_err(|source| ServeError::S3 {
            dir: s3_dir.clone(),
            source,
        })?,
    );
    let sink: Arc<dyn ObjectSink> = match options.firehose.remote()? {
        Some(remote) => {
            info!(endpoint = %remote.endpoint, "Firehose delivers to an S3-compatible server");
            Arc::new(riffle_firehose::remote::RemoteSink::new(&remote))
        }
        None => Arc::clone(&s3) as Arc<dyn ObjectSink>,
    };
    // `[functions]`: no process starts before a first invocation (Firehose's
    // record transformation invokes them).
    let functions = riffle_lambda::Functions::new(config.functions())?;
    let firehose_config = riffle_firehose::FirehoseConfig {
        functions: Some(functions.clone()),
        destination_client: Some(options.firehose.destination_client()?),
        opensearch_domains: options.firehose.opensearch_domains()?,
        timings: options.firehose.timings()?,
        ..config.firehose()
    };
    let firehose = Firehose::open(Arc::clone(&store), firehose_config, sink).map_err(|source| {
        ServeError::Firehose {
            dir: dir.clone(),
            source,
        }
    })?;
    // A KinesisStreamAsSource delivery stream reads its Data Stream in-process.
    firehose.attach_kinesis(Arc::clone(&kinesis));
    // KCL applications keep their leases here: the same port, no DynamoDB.
    let dynamodb = riffle_dynamodb::DynamoDb::open(Arc::clone(&store), config.dynamodb()).map_err(
        |source| ServeError::DynamoDb {
            dir: dir.clone(),
            source,
        },
    )?;
    // Lambda's event source mappings: pollers read streams and invoke
    // `[functions]`.
    let triggers = riffle_triggers::Triggers::open(
        Arc::clone(&store),
        Arc::clone(&kinesis),
        functions.clone(),
        config.triggers(),
    )
    .map_err(|source| ServeError::Triggers {
        dir: dir.clone(),
        source,
    })?;
    let triggers = Arc::new(triggers);
    // Enabled mappings' pollers start reading their streams now.
    triggers.start(Some(Arc::clone(&s3)));
    let services: Vec<Arc<dyn Service>> = vec![
        Arc::new(KinesisService(Arc::clone(&kinesis))),
        Arc::new(FirehoseService(Arc::clone(&firehose))),
        Arc::new(DynamoDbService(dynamodb)),
        // Lambda's event-source-mapping operations (restJson1).
        Arc::new(LambdaService(Arc::clone(&triggers))),
        // The Data Catalog tables format conversion reads its schemas from.
        Arc::new(GlueService(riffle_glue::Glue::open(
            Arc::clone(&store),
            config.glue(),
        ))),
        // What applications (a KCL worker) put shows on /metrics.
        Arc::new(CloudWatchService(Arc::new(
            riffle_cloudwatch::CloudWatch::new(),
        ))),
    ];

    // Tells the background duties (status transitions, retention) to stop.
    let (stop_background, stopped) = watch::channel(());
    let background = tokio::spawn(Arc::clone(&kinesis).run_background(changed(stopped)));

    let metrics_local = local_addr(metrics_listener.as_ref(), options.edge.metrics_listen.0)?;
    let ingest_local = local_addr(ingest_listener.as_ref(), options.edge.ingest_listen.0)?;
    let console_local = local_addr(console_listener.as_ref(), options.console.console_listen.0)?;
    let mut infos: Vec<_> = services.iter().map(|s| s.info()).collect();
    infos.push(&riffle_server::services::s3::S3_INFO);
    let request_metrics = Arc::new(riffle_server::RequestMetrics::new(&infos));
    let (stop_metrics, metrics_stopped) = watch::channel(());
    let metrics = metrics_listener.map(|listener| {
        tokio::spawn(riffle_server::serve_metrics(
            listener,
            services.clone(),
            Arc::clone(&request_metrics),
            changed(metrics_stopped.clone()),
        ))
    });
    let ingest = ingest_listener.map(|listener| {
        let config = riffle_server::IngestConfig {
            keys: options.edge.ingest_keys.clone(),
            cors: options.edge.cors.0,
            request_metrics: Arc::clone(&request_metrics),
        };
        tokio::spawn(riffle_server::serve_ingest(
            listener,
            services.clone(),
            config,
            changed(metrics_stopped.clone()),
        ))
    });

    let console = match console_listener {
        Some(listener) => {
            let console = console_config(
                &config,
                services.clone(),
                (&s3, &functions),
                (audit.clone(), Arc::clone(&request_metrics)),
                endpoint_url(local, config.tls.is_some()),
            )?;
            Some(tokio::spawn(riffle_console::serve_console(
                listener,
                console,
                changed(metrics_stopped.clone()),
            )))
        }
        None => None,
    };

    if let (Some(tls), Some(files)) = (&tls, &config.tls) {
        // Installed before the banner, like the stop signals.
        let hangups = signal(SignalKind::hangup()).map_err(ServeError::Signal)?;
        tokio::spawn(reload_on_hangup(hangups, tls.clone(), files.clone()));
    }

    let listeners = Listeners {
        metrics: metrics_local,
        ingest: ingest_local,
        console: console_local,
    };
    print_banner(&config, local, listeners);
    let edge = riffle_server::EdgeConfig {
        credentials: (!config.access_keys.0.is_empty()).then(|| {
            riffle_server::Credentials::new(&options.region.0, config.access_keys.0.clone())
        }),
        tls,
        audit,
        policies,
        request_metrics,
        cors: options.edge.cors.0,
    };
    let served = riffle_server::Services {
        json: services,
        s3: Some(s3),
    };
    let served = riffle_server::serve(listener, served, edge, shutdown_signal(signals)).await;
    if let Some(writer) = audit_writer {
        writer.close().await;
    }
    // Stops the metrics, ingest and console listeners; no receiver left just means
    // they already stopped.
    let _ = stop_metrics.send(());
    for (name, task) in [
        ("metrics", metrics),
        ("ingest", ingest),
        ("console", console),
    ] {
        if let Some(task) = task
            && let Err(err) = task.await
        {
            warn!(%err, listener = name, "a listener ended abnormally");
        }
    }

    // Delivery stops where it is: what was not delivered stays in the logs
    // and goes out at the next start.
    firehose.shutdown().await;
    // Pollers stop before their functions do: a batch in flight is read
    // again at the next start, not failed by the kill below.
    triggers.shutdown().await;
    functions.shutdown(); // kills every function's process group
    let _ = stop_background.send(()); // no receiver left just means it already stopped
    if let Err(err) = background.await {
        warn!(%err, "the background task ended abnormally");
    }
    served?;
    store.shutdown().await.map_err(ServeError::Shutdown)?;
    info!("stopped; every acknowledged record is on disk");
    Ok(())
}

/// The console's listener: none when off, or when the default address is
/// taken (another Riffle serves its console there), with a warning; an
/// address asked for that cannot be bound is an error, as for the others.
async fn bind_console(
    options: &riffle_console::ConsoleOptions,
) -> Result<Option<TcpListener>, ServeError> {
    let Some(addr) = options.console_listen.0 else {
        return Ok(None);
    };
    match bind(addr).await {
        Ok(listener) => Ok(Some(listener)),
        Err(ServeError::Bind { source, .. })
            if options.is_default_listen() && source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            warn!(%addr, "the console's default address is taken: no console (give --console-listen ADDR)");
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// The console's view of the server: the services behind the edge's own
/// checks (a second `Credentials` and `Policies` from the same options, the
/// same audit log and request counters), the embedded S3, the `[functions]`
/// registry (listed read-only), the facts.
fn console_config(
    config: &ServeConfig,
    services: Vec<Arc<dyn Service>>,
    (s3, functions): (&Arc<riffle_s3::S3>, &riffle_lambda::Functions),
    (audit, request_metrics): (
        Option<riffle_server::AuditLog>,
        Arc<riffle_server::RequestMetrics>,
    ),
    endpoint: String,
) -> Result<riffle_console::ConsoleConfig, ServeError> {
    let options = &config.options;
    let credentials = (!config.access_keys.0.is_empty())
        .then(|| riffle_server::Credentials::new(&options.region.0, config.access_keys.0.clone()));
    let calls = riffle_server::DirectCalls::new(
        services,
        credentials,
        read_policies(config)?,
        audit,
        request_metrics,
    );
    let data_dir =
        std::path::absolute(&options.data_dir.0).unwrap_or_else(|_| options.data_dir.0.clone());
    Ok(riffle_console::ConsoleConfig {
        calls: Arc::new(calls),
        // Firehose delivers to --s3-endpoint instead: the browser shows the embedded one still.
        s3: Some(Arc::clone(s3)),
        functions: Some(functions.clone()),
        facts: riffle_console::ServerFacts {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            data_dir,
            fsync: options.fsync.to_string(),
            region: options.region.0.clone(),
            account_id: options.account_id.0.clone(),
            endpoint,
        },
    })
}

/// The address `listener` (bound to `addr`, given for errors) serves on.
fn local_addr(
    listener: Option<&TcpListener>,
    addr: Option<SocketAddr>,
) -> Result<Option<SocketAddr>, ServeError> {
    let (Some(listener), Some(addr)) = (listener, addr) else {
        return Ok(None);
    };
    let local = listener.local_addr().map_err(|source| ServeError::Bind {
        addr,
        source,
        hint: "",
    })?;
    Ok(Some(local))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr).await.map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::AddrInUse => {
                " (is another Riffle or Kinesis emulator running? pick another address with --listen)"
            }
            std::io::ErrorKind::PermissionDenied => " (ports below 1024 need privileges; try --listen 127.0.0.1:4567)",
            _ => "",
        };
        ServeError::Bind { addr, source, hint }
    })
}

async fn changed(mut stop: watch::Receiver<()>) {
    let _ = stop.changed().await; // a dropped sender also means stop
}

/// The signals that stop the server.
struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT. A second one during the
/// graceful shutdown exits at once, as people who press Ctrl-C twice expect.
async fn shutdown_signal(mut signals: Signals) {
    let first = signals.next().await;
    info!(signal = first, "stopping: finishing in-flight requests");
    tokio::spawn(async move {
        let second = signals.next().await;
        warn!(
            signal = second,
            "second signal: exiting without waiting for in-flight requests"
        );
        std::process::exit(130);
    });
}

/// SIGHUP reads the certificate and key again, for rotation without a
/// restart; files that cannot be used leave the current ones serving.
async fn reload_on_hangup(mut hangups: Signal, tls: riffle_server::Tls, files: TlsFiles) {
    while hangups.recv().await.is_some() {
        match tls.reload(&files.cert, &files.key) {
            Ok(()) => {
                info!(cert = %files.cert.display(), "SIGHUP: new TLS handshakes use the reloaded certificate")
            }
            Err(err) => {
                error!(%err, "SIGHUP: the TLS files cannot be used; the current certificate stays")
            }
        }
    }
}

/// Reads and parses every `[policies]` file, naming the one that fails.
fn read_policies(config: &ServeConfig) -> Result<Option<riffle_server::Policies>, ServeError> {
    // Verified keys are held to resource policies even without policies
    // of their own; unverified callers prove no identity to hold to any.
    if config.access_keys.0.is_empty() {
        return Ok(None);
    }
    let policies = &config.options.edge.policies;
    let mut documents = Vec::with_capacity(policies.len());
    for (key, path) in policies {
        let text = std::fs::read_to_string(path).map_err(|source| ServeError::PolicyFile {
            key: key.clone(),
            path: path.clone(),
            source,
        })?;
        let document =
            riffle_server::PolicyDocument::parse(&text).map_err(|source| ServeError::Policy {
                key: key.clone(),
                path: path.clone(),
                source,
            })?;
        documents.push((key.clone(), document));
    }
    Ok(Some(riffle_server::Policies::new(
        &config.options.region.0,
        &config.options.account_id.0,
        documents,
    )))
}

/// The lines a user sees first. Tests find the endpoint with
/// `^\s*endpoint:\s+(https?://\S+)\s*$` (the README says so): keep that line's shape.
/// The side listeners' addresses, for the banner.
struct Listeners {
    metrics: Option<SocketAddr>,
    ingest: Option<SocketAddr>,
    console: Option<SocketAddr>,
}

fn print_banner(config: &ServeConfig, local: SocketAddr, listeners: Listeners) {
    let Listeners {
        metrics,
        ingest,
        console,
    } = listeners;
    let endpoint = endpoint_url(local, config.tls.is_some());
    let options = &config.options;
    let data_dir =
        std::path::absolute(&options.data_dir.0).unwrap_or_else(|_| options.data_dir.0.clone());
    let mut out = std::io::stdout().lock();
    // A closed stdout must not stop the server; the banner is informational.
    let _ = writeln!(
        out,
        "Riffle {version} — Amazon Kinesis Data Streams, Firehose, S3 and CloudWatch PutMetricData APIs\n\
         \x20 endpoint:  {endpoint}\n{tls}\
         \x20 data dir:  {dir} (fsync: {fsync})\n\
         \x20 region:    {region}, account {account}; {credentials}\n\
         \x20 limits:    {limits}\n{console}{metrics}{ingest}{audit}\
         \x20 try:       aws --endpoint-url {endpoint} kinesis list-streams",
        version = env!("CARGO_PKG_VERSION"),
        tls = match &config.tls {
            Some(files) => format!("  tls:       certificate {}\n", files.cert.display()),
            None => String::new(),
        },
        console = match console {
            Some(addr) => format!("  console:   {}/\n", endpoint_url(addr, false)),
            None => String::new(),
        },
        metrics = match metrics {
            Some(addr) => format!("  metrics:   {}/metrics\n", endpoint_url(addr, false)),
            None => String::new(),
        },
        ingest = match ingest {
            Some(addr) => format!(
                "  ingest:    {}/streams/<name> and /delivery-streams/<name> ({})\n",
                endpoint_url(addr, false),
                match options.edge.ingest_keys.len() {
                    0 => "no API key asked for".to_owned(),
                    1 => "1 API key".to_owned(),
                    n => format!("{n} API keys"),
                }
            ),
            None => String::new(),
        },
        audit = match &options.edge.audit_log {
            Some(path) => format!(
                "  audit:     {} ({})\n",
                path.display(),
                if options.edge.audit_data_events.0 {
                    "management and data events"
                } else {
                    "management events"
                }
            ),
            None => String::new(),
        },
        dir = data_dir.display(),
        fsync = options.fsync,
        region = options.region,
        account = options.account_id,
        credentials = match config.access_keys.0.len() {
            0 => "any credentials are accepted".to_owned(),
            1 => "SigV4 signatures verified (1 access key)".to_owned(),
            n => format!("SigV4 signatures verified ({n} access keys)"),
        } + &match options.edge.policies.len() {
            0 => String::new(),
            n => format!(", {n} with a policy"),
        },
        limits = if options.throughput_limits.0 {
            "AWS's per-shard throughput limits (--throughput-limits off to lift them)"
        } else {
            "off (no per-shard throughput limits)"
        },
    );
    let _ = out.flush();
}

/// The URL clients use. A wildcard address is reachable on loopback.
fn endpoint_url(local: SocketAddr, tls: bool) -> String {
    let mut shown = local;
    if local.ip().is_unspecified() {
        shown.set_ip(match local {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{shown}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_a_url_clients_can_reach() {
        assert_eq!(
            endpoint_url("127.0.0.1:4567".parse().unwrap(), false),
            "http://127.0.0.1:4567"
        );
        assert_eq!(
            endpoint_url("127.0.0.1:4567".parse().unwrap(), true),
            "https://127.0.0.1:4567"
        );
        assert_eq!(
            endpoint_url("0.0.0.0:80".parse().unwrap(), false),
            "http://127.0.0.1:80"
        );
        assert_eq!(
            endpoint_url("[::]:4567".parse().unwrap(), false),
            "http://[::1]:4567"
        );
    }
}
