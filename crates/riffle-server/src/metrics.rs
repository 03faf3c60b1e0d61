//! The metrics endpoint: `GET /metrics` in Prometheus's text format on its
//! own listener (`--metrics-listen`), so that the API port answers exactly
//! what AWS answers.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::requests::RequestMetrics;
use crate::service::Service;

/// The services whose own metrics are shown.
type Shown = Arc<Vec<Arc<dyn Service>>>;

/// Prometheus's text exposition format, version 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    services: Vec<Arc<dyn Service>>,
    requests: Arc<RequestMetrics>,
    shutdown: impl Future<Output = ()>,
) {
    let services: Shown = Arc::new(services);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (services, requests) = (Arc::clone(&services), Arc::clone(&requests));
                    let service = service_fn(move |req| {
                        answer(Arc::clone(&services), Arc::clone(&requests), req)
                    });
                    tokio::spawn(async move {
                        let served = auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        if let Err(err) = served {
                            debug!(%peer, %err, "metrics connection ended with an error");
                        }
                    });
                }
                Err(err) => {
                    warn!(%err, "metrics accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn answer(
    services: Shown,
    requests: Arc<RequestMetrics>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let mut text = String::with_capacity(16 * 1024);
            for service in services.iter() {
                service.write_metrics(&mut text);
            }
            requests.write(&mut text);
            (StatusCode::OK, text)
        }
        (&Method::GET, _) => (StatusCode::NOT_FOUND, "Only /metrics is here.\n".to_owned()),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "/metrics answers GET.\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    Ok(response)
}
