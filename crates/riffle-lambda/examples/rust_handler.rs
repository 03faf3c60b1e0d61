//! A Rust Lambda handler, written as for AWS and run unmodified through
//! AWS's `lambda_runtime` crate: the tests run it as a `[functions]` command
//! (`cargo test` builds the examples before it runs the tests).
//!
//! It answers the event with what the runtime was told (request id, ARN,
//! deadline, function name), and fails when the event asks it to.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    if let Some(message) = payload.get("fail").and_then(Value::as_str) {
        return Err(message.into());
    }
    Ok(json!({
        "echo": payload,
        "request_id": context.request_id,
        "invoked_function_arn": context.invoked_function_arn,
        "deadline_ms": context.deadline,
        "function_name": std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
