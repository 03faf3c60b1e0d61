//! The Lambda Runtime API (version 2018-06-01) that one instance's process
//! talks to at `AWS_LAMBDA_RUNTIME_API`: each instance has its own listener
//! on 127.0.0.1, so a request needs no routing to its instance.
//!
//! - `GET  /2018-06-01/runtime/invocation/next`: long poll; the event as
//!   body, `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`,
//!   `-Invoked-Function-Arn` and `-Trace-Id` headers.
//! - `POST /2018-06-01/runtime/invocation/{id}/response`: 202; 413 past
//!   6 MB (the invocation then fails with `Function.ResponseSizeTooLarge`).
//! - `POST /2018-06-01/runtime/invocation/{id}/error`: 202; the body is the
//!   invocation's result, with `FunctionError: Unhandled`.
//! - `POST /2018-06-01/runtime/init/error`: 202; the pending invocation
//!   fails with that body and the instance is replaced.
//!
//! An id that is not the current invocation's gets 400 `InvalidRequestID`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::MAX_PAYLOAD_BYTES;
use crate::shapes;
use crate::slot::{Reply, Slot};

const PREFIX: &str = "/2018-06-01/runtime/";

/// Serves the Runtime API on `listener` until the task is aborted; its
/// connections end with it (they live in the task's `JoinSet`).
pub(crate) async fn serve(listener: TcpListener, slot: Arc<Slot>, function: String) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(function, "runtime API accept failed: {e}");
                continue;
            }
        };
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let slot = slot.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let slot = slot.clone();
                async move { Ok::<_, Infallible>(route(req, &slot).await) }
            });
            // A runtime that drops its connection is the runtime's business:
            // its process's exit is what fails the invocation.
            // Title case, as Lambda sends them: a runtime that looks its
            // headers up by their documented spelling finds them.
            let _ = hyper::server::conn::http1::Builder::new()
                .title_case_headers(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(req: Request<Incoming>, slot: &Slot) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return json(StatusCode::NOT_FOUND, shapes::api_not_found(&path));
    };
    let method = req.method().clone();
    let parts: Vec<&str> = rest.split('/').collect();
    match (method, parts.as_slice()) {
        (Method::GET, ["invocation", "next"]) => next(slot).await,
        (Method::POST, ["invocation", id, "response"]) => {
            let id = (*id).to_owned();
            respond(req, slot, &id, Reply::Response).await
        }
        (Method::POST, ["invocation", id, "error"]) => {
            let id = (*id).to_owned();
            log_error_type(&req, &id);
            respond(req, slot, &id, Reply::Error).await
        }
        (Method::POST, ["init", "error"]) => init_error(req, slot).await,
        (
            _,
            ["invocation", "next"] | ["invocation", _, "response" | "error"] | ["init", "error"],
        ) => json(StatusCode::METHOD_NOT_ALLOWED, shapes::api_not_found(&path)),
        _ => json(StatusCode::NOT_FOUND, shapes::api_not_found(&path)),
    }
}

async fn next(slot: &Slot) -> Response<Full<Bytes>> {
    let job = slot.next().await;
    let deadline = SystemTime::now() + job.timeout;
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("lambda-runtime-aws-request-id", &job.id)
        .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
        .header("lambda-runtime-invoked-function-arn", &job.meta.invoked_arn)
        .header("lambda-runtime-trace-id", trace_id());
    if let Some(context) = &job.meta.options.client_context {
        builder = builder.header("lambda-runtime-client-context", context);
    }
    if let Some(identity) = &job.meta.options.cognito_identity {
        builder = builder.header("lambda-runtime-cognito-identity", identity);
    }
    built(builder.body(Full::new(job.payload)))
}

/// `/response` and `/error`: the active invocation's end.
async fn respond(
    req: Request<Incoming>,
    slot: &Slot,
    id: &str,
    reply: fn(Bytes) -> Reply,
) -> Response<Full<Bytes>> {
    if !slot.is_active(id) {
        return json(StatusCode::BAD_REQUEST, shapes::api_invalid_request_id());
    }
    match read_limited(req).await {
        Body::Read(body) => accepted(slot.complete(id, reply(body))),
        Body::TooLarge => {
            slot.complete(id, Reply::TooLarge);
            json(StatusCode::PAYLOAD_TOO_LARGE, shapes::api_too_large())
        }
        // The runtime hung up mid-body: its exit (or its retry) decides.
        Body::Broken => json(StatusCode::BAD_REQUEST, shapes::api_invalid_request_id()),
    }
}

async fn init_error(req: Request<Incoming>, slot: &Slot) -> Response<Full<Bytes>> {
    let body = match read_limited(req).await {
        Body::Read(body) => body,
        Body::TooLarge | Body::Broken => shapes::api_too_large(),
    };
    slot.fail("init error", || Reply::InitError(body.clone()));
    json(StatusCode::ACCEPTED, shapes::api_accepted())
}

fn accepted(was_active: bool) -> Response<Full<Bytes>> {
    if was_active {
        json(StatusCode::ACCEPTED, shapes::api_accepted())
    } else {
        // Timed out or answered twice between the check and the body.
        json(StatusCode::BAD_REQUEST, shapes::api_invalid_request_id())
    }
}

fn log_error_type(req: &Request<Incoming>, id: &str) {
    if let Some(kind) = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
    {
        tracing::debug!(request_id = id, error_type = kind, "function error");
    }
}

enum Body {
    Read(Bytes),
    TooLarge,
    Broken,
}

async fn read_limited(req: Request<Incoming>) -> Body {
    match Limited::new(req.into_body(), MAX_PAYLOAD_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Body::Read(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Body::TooLarge,
        Err(_) => Body::Broken,
    }
}

fn json(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    built(
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(body)),
    )
}

fn built(response: Result<Response<Full<Bytes>>, hyper::http::Error>) -> Response<Full<Bytes>> {
    response.unwrap_or_else(|e| {
        // Only a malformed header value fails a build; ids, ARNs and numbers
        // are ASCII, so this is a bug to report, not to crash on.
        tracing::error!("runtime API response not built: {e}");
        let mut fallback = Response::new(Full::new(Bytes::new()));
        *fallback.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// An X-Ray trace header as Lambda passes one: `Root=1-<epoch hex>-<96-bit
/// hex>;Parent=<64-bit hex>;Sampled=0`.
fn trace_id() -> String {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let root: u128 = rand::random::<u128>() >> 32;
    let parent: u64 = rand::random();
    format!("Root=1-{epoch:08x}-{root:024x};Parent={parent:016x};Sampled=0")
}
