//! Node.js handlers run unmodified through npm's aws-lambda-ric, the
//! official runtime interface client, against the Runtime API Riffle serves.

mod common;

use common::{call, functions, json, node_function, pid_of};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_handler_answers_the_event_through_aws_lambda_ric() {
    let fns = functions(&node_function("echo", "app.echo", ""));
    let answer = call(&fns, "echo:live", json!({"n": 1, "s": "é"})).await;
    assert_eq!(answer.function_error, None, "{answer:?}");
    let body = json(&answer.payload);
    assert_eq!(body["event"], json!({"n": 1, "s": "é"}));
    assert_eq!(body["request_id"].as_str().unwrap().len(), 36, "{body}");
    assert_eq!(
        body["invoked_function_arn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:echo:live"
    );
    assert_eq!(body["function_name"], "echo");
    let remaining = body["remaining_ms"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 3_000, "{remaining}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thrown_error_is_unhandled_and_a_crash_starts_a_new_process() {
    let fns = functions(&node_function("f", "app.behave", ""));
    let first = pid_of(&call(&fns, "f", json!({})).await);
    let failed = call(&fns, "f", json!({"action": "throw"})).await;
    assert_eq!(failed.function_error.as_deref(), Some("Unhandled"));
    let error = json(&failed.payload);
    assert_eq!(error["errorType"], "TypeError", "{error}");
    assert_eq!(error["errorMessage"], "the event asked for an error");
    // Lambda keeps an instance whose handler threw.
    assert_eq!(pid_of(&call(&fns, "f", json!({})).await), first);
    let crashed = call(&fns, "f", json!({"action": "exit"})).await;
    assert_eq!(crashed.function_error.as_deref(), Some("Unhandled"));
    let error = json(&crashed.payload);
    assert_eq!(error["errorType"], "Runtime.ExitError", "{error}");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.ends_with("Error: Runtime exited with error: exit status 3"),
        "{message}"
    );
    assert_ne!(pid_of(&call(&fns, "f", json!({})).await), first);
}
