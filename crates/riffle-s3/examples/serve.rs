//! Serves a directory as the embedded S3 on a loopback port, for trying the subset with the
//! `aws` CLI or boto3 before the API port serves it:
//! `cargo run -p riffle-s3 --example serve -- DIR [ADDR]` prints the endpoint URL.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use riffle_s3::S3;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: serve DIR [ADDR]")?;
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let s3 = S3::open(dir)?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let s3 = s3.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let s3 = s3.clone();
                async move {
                    let (parts, body) = req.into_parts();
                    let body: Bytes = body.collect().await?.to_bytes();
                    Ok::<_, hyper::Error>(s3.handle(hyper::Request::from_parts(parts, body)).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
