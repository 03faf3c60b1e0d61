//! Functions at an HTTP URL: a real local HTTP server (hyper) that answers
//! as Lambda's Invoke API does.

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use common::functions;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use riffle_lambda::LambdaError;
use tokio::net::TcpListener;

/// Answers as the Runtime Interface Emulator does: the body back, or a
/// function error for a body with "fail", or nothing for "hang".
async fn answer(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    if text.contains("hang") {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let mut response = Response::builder().header("x-amz-executed-version", "7");
    if text.contains("fail") {
        response = response.header("x-amz-function-error", "Unhandled");
        let error = format!(r#"{{"errorType":"Boom","errorMessage":"{path}"}}"#);
        return Ok(response.body(Full::new(Bytes::from(error))).unwrap());
    }
    Ok(response.body(Full::new(body)).unwrap())
}

async fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(answer);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}/2015-03-31/functions/function/invocations")
}

fn url_function(url: &str, extra: &str) -> riffle_lambda::Functions {
    functions(&format!("[functions.remote]\nurl = {url:?}\n{extra}\n"))
}

#[tokio::test]
async fn a_url_function_answers_with_the_servers_body_and_version() {
    let fns = url_function(&server().await, "");
    let function = fns.resolve("remote").unwrap();
    let answer = fns
        .invoke(&function, Bytes::from_static(b"{\"a\":1}"))
        .await
        .unwrap();
    assert_eq!(answer.payload, Bytes::from_static(b"{\"a\":1}"));
    assert_eq!(answer.function_error, None);
    assert_eq!(answer.executed_version, "7");
}

#[tokio::test]
async fn x_amz_function_error_becomes_the_function_error() {
    let fns = url_function(&server().await, "");
    let function = fns.resolve("remote").unwrap();
    let answer = fns
        .invoke(&function, Bytes::from_static(b"\"fail\""))
        .await
        .unwrap();
    assert_eq!(answer.function_error.as_deref(), Some("Unhandled"));
    let error = common::json(&answer.payload);
    assert_eq!(error["errorType"], "Boom");
    assert_eq!(
        error["errorMessage"],
        "/2015-03-31/functions/function/invocations"
    );
}

#[tokio::test]
async fn a_url_function_past_its_timeout_is_a_timed_out_invocation() {
    let fns = url_function(&server().await, "timeout_seconds = 1");
    let function = fns.resolve("remote").unwrap();
    let answer = fns
        .invoke(&function, Bytes::from_static(b"\"hang\""))
        .await
        .unwrap();
    assert_eq!(answer.function_error.as_deref(), Some("Unhandled"));
    let error = common::json(&answer.payload);
    assert_eq!(error["errorType"], "Sandbox.Timedout", "{error}");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .ends_with("Task timed out after 1.00 seconds"),
        "{error}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_a_retryable_unreachable_error() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let fns = url_function(&format!("http://127.0.0.1:{port}/invoke"), "");
    let function = fns.resolve("remote").unwrap();
    let err = fns
        .invoke(&function, Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    assert!(matches!(err, LambdaError::Unreachable { .. }), "{err}");
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}
