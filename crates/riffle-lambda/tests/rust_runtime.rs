//! A Rust handler (examples/rust_handler.rs) run unmodified through AWS's
//! `lambda_runtime` crate against the Runtime API Riffle serves.

mod common;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{functions, json};

/// The example binary cargo built beside this test: `target/<profile>/
/// examples/rust_handler`, the test itself being in `target/<profile>/deps`.
fn rust_handler() -> PathBuf {
    let test = std::env::current_exe().expect("the test's own path");
    let profile = test
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let handler = profile.join("examples/rust_handler");
    assert!(
        handler.is_file(),
        "{} is missing: `cargo test -p riffle-lambda` builds it (a `--test` filter alone does \
         not; add `--examples` or build it with `cargo build -p riffle-lambda --example rust_handler`)",
        handler.display()
    );
    handler
}

fn rust_function() -> riffle_lambda::Functions {
    functions(&format!(
        "[functions.rusty]\ncommand = [{:?}]\ntimeout_seconds = 5\n",
        rust_handler().display().to_string()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_handler_answers_through_the_lambda_runtime_crate() {
    let fns = rust_function();
    let function = fns.resolve("123456789012:function:rusty").unwrap();
    let before_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let answer = fns
        .invoke(&function, Bytes::from_static(br#"{"records": [1, 2, 3]}"#))
        .await
        .unwrap();
    assert_eq!(answer.function_error, None, "{answer:?}");
    let body = json(&answer.payload);
    assert_eq!(body["echo"], serde_json::json!({"records": [1, 2, 3]}));
    assert_eq!(body["function_name"], "rusty");
    assert_eq!(
        body["invoked_function_arn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:rusty"
    );
    assert_eq!(body["request_id"].as_str().unwrap().len(), 36, "{body}");
    // The deadline header: the 5 s timeout from when the runtime took it.
    let deadline = body["deadline_ms"].as_u64().unwrap();
    assert!(
        deadline > before_ms && deadline <= before_ms + 5_000 + 1_000,
        "{deadline} vs {before_ms}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_handlers_error_is_an_unhandled_function_error() {
    let fns = rust_function();
    let function = fns.resolve("rusty").unwrap();
    let failed = fns
        .invoke(
            &function,
            Bytes::from_static(br#"{"fail": "no such record"}"#),
        )
        .await
        .unwrap();
    assert_eq!(failed.function_error.as_deref(), Some("Unhandled"));
    let error = json(&failed.payload);
    assert_eq!(error["errorMessage"], "no such record", "{error}");
    assert!(error["errorType"].is_string(), "{error}");
    // Still warm: the next event is answered by the same process.
    let ok = fns
        .invoke(&function, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(ok.function_error, None);
}
