//! A Firehose transformation handler in Rust, written as for AWS Lambda and
//! run unmodified through AWS's `lambda_runtime` crate (the Firehose
//! transformation tests run it as a `[functions]` command; `cargo test -p
//! riffle` builds it). Each record is answered by its data:
//! `drop…` Dropped, `fail…` ProcessingFailed, `sleep…` sleeps past any
//! short timeout, `crash…` exits the process; any other is Ok, prefixed
//! with `rust:`. With `IDENTITY` in its environment (`env = { IDENTITY =
//! "1" }`) every record is Ok and unchanged: the trivial function of
//! `riffle bench firehose --transform-function`, whose records are
//! verified.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let records = event.payload["records"]
        .as_array()
        .ok_or("the event has no records")?;
    if std::env::var_os("IDENTITY").is_some() {
        let out: Vec<Value> = records
            .iter()
            .map(|r| json!({"recordId": r["recordId"], "result": "Ok", "data": r["data"]}))
            .collect();
        return Ok(json!({ "records": out }));
    }
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        let id = &record["recordId"];
        let data = base64_simd::STANDARD.decode_to_vec(record["data"].as_str().unwrap_or(""))?;
        let result = if data.starts_with(b"drop") {
            json!({"recordId": id, "result": "Dropped", "data": record["data"]})
        } else if data.starts_with(b"fail") {
            json!({"recordId": id, "result": "ProcessingFailed", "data": record["data"]})
        } else if data.starts_with(b"sleep") {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            return Err("slept".into());
        } else if data.starts_with(b"crash") {
            std::process::exit(1);
        } else {
            let mut transformed = b"rust:".to_vec();
            transformed.extend_from_slice(&data);
            let encoded = base64_simd::STANDARD.encode_to_string(&transformed);
            json!({"recordId": id, "result": "Ok", "data": encoded})
        };
        out.push(result);
    }
    Ok(json!({ "records": out }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
