//! Test-only glue: a tiny hyper server on 127.0.0.1:0 that reads each request's body and hands
//! the request to `S3::handle`, as Riffle's edge will, and an SDK client pointed at it.

#![allow(dead_code)]

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use riffle_s3::S3;
use tokio::net::TcpListener;

pub struct Server {
    pub client: aws_sdk_s3::Client,
    pub s3: S3,
    pub endpoint: String,
    pub dir: tempfile::TempDir,
}

/// Serves a fresh store in a temp dir and returns an SDK client for it.
pub async fn start() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let s3 = S3::open(dir.path().join("s3")).expect("open store");
    let endpoint = serve(s3.clone()).await;
    Server {
        client: client_for(&endpoint),
        s3,
        endpoint,
        dir,
    }
}

/// Serves `s3` over HTTP/1.1 on a loopback port; returns its URL.
pub async fn serve(s3: S3) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let s3 = s3.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let s3 = s3.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body: Bytes = body.collect().await?.to_bytes();
                        Ok::<_, hyper::Error>(
                            s3.handle(hyper::Request::from_parts(parts, body)).await,
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

pub fn client_for(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "AKIDTEST",
            "secret",
            None,
            None,
            "riffle-s3-tests",
        ))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// The S3 error code of a failed SDK call.
pub fn code<T: std::fmt::Debug, E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, E>,
) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("no error code in {e:?}"))
            .to_owned(),
    }
}

/// The HTTP status of a failed SDK call.
pub fn status<T: std::fmt::Debug, E: std::fmt::Debug>(
    result: Result<T, aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
) -> u16 {
    match result {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .raw_response()
            .unwrap_or_else(|| panic!("no response in {e:?}"))
            .status()
            .as_u16(),
    }
}

/// Polls `check` every few milliseconds until it returns `Some`, failing
/// the test after `within`.
pub async fn eventually_sync<T>(
    within: std::time::Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
