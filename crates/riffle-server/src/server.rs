//! The accept loop: one listener, HTTP/1.1 and HTTP/2 on every connection
//! (over TLS when configured), and a graceful shutdown that finishes
//! in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use riffle_s3::S3;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::audit::AuditLog;
use crate::cors;
use crate::policy::Policies;
use crate::request;
use crate::requests::RequestMetrics;
use crate::service::Service;
use crate::sigv4::Credentials;
use crate::tls::Tls;

/// The services served on the port.
#[derive(Default, Clone)]
pub struct Services {
    /// The JSON-protocol services, found by their `X-Amz-Target` prefix.
    pub json: Vec<Arc<dyn Service>>,
    /// The S3 REST API (path-style), for requests that are not JSON calls.
    pub s3: Option<Arc<S3>>,
}

/// How the edge treats requests, beyond what the services decide.
pub struct EdgeConfig {
    /// The access keys whose SigV4 signatures are verified; `None` accepts
    /// any credentials (the zero-set-up default).
    pub credentials: Option<Credentials>,
    /// Serve HTTPS with this certificate; `None` serves plain HTTP.
    pub tls: Option<Tls>,
    /// Append a CloudTrail-shaped line per call to this log.
    pub audit: Option<AuditLog>,
    /// What verified access keys may call: their identity policies, and
    /// the resource policies of what they call (needs `credentials`: only
    /// a verified signature proves which key called). Without it, no
    /// policy is checked.
    pub policies: Option<Policies>,
    /// Per-operation counts and latencies, shared with the metrics endpoint.
    pub request_metrics: Arc<RequestMetrics>,
    /// Answer CORS preflights and let browser pages read every answer
    /// (`cors`), as AWS does; on unless turned off.
    pub cors: bool,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            credentials: None,
            tls: None,
            audit: None,
            policies: None,
            request_metrics: Arc::default(),
            cors: true,
        }
    }
}

/// What every request of a server shares.
pub(crate) struct Edge {
    pub(crate) services: Services,
    pub(crate) config: EdgeConfig,
}

/// Errors that stop [`serve`] before it serves.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot read the listener's address: {0}")]
    LocalAddr(#[source] std::io::Error),
}

/// A client must send its request head within this time, so idle or
/// half-open sockets cannot pile up. SDKs send the head in one write.
const HEADER_READ_TIME_MAX: Duration = Duration::from_secs(30);

/// How long shutdown waits for in-flight requests before giving up on them.
/// A request normally finishes in milliseconds; a long GetRecords poll or a
/// stalled client must not keep the process alive forever.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A client must finish its TLS handshake within this time, for the same
/// reason; a handshake takes two round trips.
const TLS_HANDSHAKE_TIME_MAX: Duration = Duration::from_secs(10);

/// Pause after a failed accept (e.g. out of file descriptors), so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `services` on `listener` until `shutdown` resolves, then
/// stops accepting, lets every in-flight request finish (up to
/// [`SHUTDOWN_GRACE`]) and returns.
///
/// Takes a bound listener so that callers choose the address (tests bind
/// `127.0.0.1:0`) and can report it before serving.
pub async fn serve(
    listener: TcpListener,
    services: Services,
    config: EdgeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let local = listener.local_addr().map_err(ServerError::LocalAddr)?;
    let tls = config.tls.clone();
    let names: Vec<&str> = services
        .json
        .iter()
        .map(|s| s.info().signing_name)
        .collect();
    let s3 = services.s3.is_some();
    let edge = Arc::new(Edge { services, config });
    info!(%local, tls = tls.is_some(), services = ?names, s3, "serving (HTTP/1.1 and HTTP/2)");
    let builder = Arc::new(connection_builder());
    let graceful = GracefulShutdown::new();
    // Tells SubscribeToShard event streams to end, so that shutdown need
    // not wait for their 5 minutes.
    let (stopping, stopping_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Responses are written whole; Nagle would only delay them.
                    if let Err(err) = stream.set_nodelay(true) {
                        debug!(%peer, %err, "cannot set TCP_NODELAY");
                    }
                    let connection = Connection {
                        builder: Arc::clone(&builder),
                        graceful: graceful.watcher(),
                        peer,
                        edge: Arc::clone(&edge),
                        stopping: stopping_rx.clone(),
                    };
                    match &tls {
                        None => connection.spawn(stream),
                        // The certificate of the moment: a reload applies to
                        // the handshakes after it.
                        Some(tls) => connection.spawn_tls(TlsAcceptor::from(tls.current()), stream),
                    }
                }
                Err(err) => {
                    warn!(%err, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    drop(listener); // stop accepting: new connections are refused from here on
    stopping.send_replace(true);
    info!(
        connections = graceful.count(),
        "shutting down: finishing in-flight requests"
    );
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period; closing them");
    }
    Ok(())
}

fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIME_MAX);
    builder.http2().timer(TokioTimer::new());
    builder
}

/// What a connection's task needs besides its socket.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    graceful: Watcher,
    peer: SocketAddr,
    edge: Arc<Edge>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Connection {
    fn spawn(self, stream: TcpStream) {
        tokio::spawn(self.serve(stream));
    }

    /// The handshake runs in the connection's own task, so a slow client
    /// cannot hold up the accept loop.
    fn spawn_tls(self, acceptor: TlsAcceptor, stream: TcpStream) {
        tokio::spawn(async move {
            let peer = self.peer;
            match tokio::time::timeout(TLS_HANDSHAKE_TIME_MAX, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => self.serve(stream).await,
                // Plain HTTP sent to the TLS port ends here too.
                Ok(Err(err)) => debug!(%peer, %err, "TLS handshake failed"),
                Err(_) => debug!(%peer, limit = ?TLS_HANDSHAKE_TIME_MAX, "TLS handshake timed out"),
            }
        });
    }

    async fn serve<S>(self, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            builder,
            graceful,
            peer,
            edge,
            stopping,
        } = self;
        let service = service_fn(move |req| {
            let edge = Arc::clone(&edge);
            let stopping = stopping.clone();
            // CORS wraps the whole handler, so every service on the port has it.
            cors::around(edge.config.cors, req, move |req| {
                request::handle(edge, req, peer, stopping)
            })
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        if let Err(err) = graceful.watch(connection).await {
            debug!(%peer, %err, "connection ended with an error");
        }
    }
}
