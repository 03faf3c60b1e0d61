//! Python handlers run unmodified through PyPI's awslambdaric, the official
//! runtime interface client, against the Runtime API Riffle serves.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::{call, functions, json, pid_of, python_function, wait_gone};
use riffle_lambda::{LambdaError, MAX_PAYLOAD_BYTES};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_handler_answers_the_event_through_awslambdaric() {
    let fns = functions(&python_function("echo", "app.echo", ""));
    let function = fns
        .resolve("arn:aws:lambda:us-east-1:999999999999:function:echo:live")
        .unwrap();
    let answer = fns
        .invoke(&function, Bytes::from_static(br#"{"n": 1, "s": "\u00e9"}"#))
        .await
        .unwrap();
    assert_eq!(answer.function_error, None);
    assert_eq!(answer.executed_version, "$LATEST");
    let body = json(&answer.payload);
    assert_eq!(body["event"], json!({"n": 1, "s": "é"}));
    assert_eq!(body["request_id"].as_str().unwrap().len(), 36, "{body}");
    // The ARN Riffle tells is its own region and account, with the qualifier.
    assert_eq!(
        body["invoked_function_arn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:echo:live"
    );
    let remaining = body["remaining_ms"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 3_000, "{remaining}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_sees_lambdas_defined_environment_variables() {
    let fns = functions(&python_function(
        "echo",
        "app.echo",
        "memory_mb = 256\nhandler = \"app.echo\"\nenv = { GREETING = \"hello\" }",
    ));
    let answer = call(&fns, "echo", json!({})).await;
    let body = json(&answer.payload);
    let env = &body["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "echo");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(body["memory_limit_in_mb"], "256");
    assert_eq!(env["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/echo");
    assert!(
        env["AWS_LAMBDA_LOG_STREAM_NAME"]
            .as_str()
            .unwrap()
            .contains("/[$LATEST]"),
        "{env}"
    );
    assert!(
        env["AWS_LAMBDA_RUNTIME_API"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert_eq!(env["AWS_REGION"], "eu-west-1");
    assert_eq!(env["AWS_DEFAULT_REGION"], "eu-west-1");
    assert_eq!(env["TZ"], ":UTC");
    assert_eq!(env["_HANDLER"], "app.echo");
    assert_eq!(env["GREETING"], "hello");
    assert_eq!(
        env["LAMBDA_TASK_ROOT"],
        common::handlers_dir().display().to_string()
    );
    assert_eq!(env["AWS_EXECUTION_ENV"], "AWS_Lambda_riffle");
    // Riffle's own environment stays out (cargo gives the test process this one).
    assert!(
        std::env::var("CARGO_PKG_NAME").is_ok(),
        "run through cargo test"
    );
    assert_eq!(env["CARGO_PKG_NAME"], serde_json::Value::Null, "{env}");
    for credential in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ] {
        assert!(
            env[credential].as_str().is_some_and(|v| !v.is_empty()),
            "{credential}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exception_is_an_unhandled_function_error_and_the_instance_stays_warm() {
    let fns = functions(&python_function("f", "app.behave", ""));
    let first = pid_of(&call(&fns, "f", json!({})).await);
    let failed = call(&fns, "f", json!({"action": "raise"})).await;
    assert_eq!(failed.function_error.as_deref(), Some("Unhandled"));
    let error = json(&failed.payload);
    assert_eq!(error["errorType"], "ValueError", "{error}");
    assert_eq!(error["errorMessage"], "the event asked for an error");
    assert!(error["stackTrace"].is_array(), "{error}");
    // Lambda keeps an instance whose handler raised.
    assert_eq!(pid_of(&call(&fns, "f", json!({})).await), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_past_its_timeout_fails_and_its_instance_is_replaced() {
    let fns = functions(&python_function("f", "app.behave", "timeout_seconds = 1"));
    let first = pid_of(&call(&fns, "f", json!({})).await);
    let timed_out = call(&fns, "f", json!({"action": "sleep", "seconds": 30})).await;
    assert_eq!(timed_out.function_error.as_deref(), Some("Unhandled"));
    let error = json(&timed_out.payload);
    assert_eq!(error["errorType"], "Sandbox.Timedout", "{error}");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.starts_with("RequestId: "), "{message}");
    assert!(
        message.ends_with("Error: Task timed out after 1.00 seconds"),
        "{message}"
    );
    wait_gone(first as u32).await;
    let second = pid_of(&call(&fns, "f", json!({})).await);
    assert_ne!(second, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_invocation_fails_it_and_the_next_invoke_starts_a_new_process() {
    let fns = functions(&python_function("f", "app.behave", ""));
    let first = pid_of(&call(&fns, "f", json!({})).await);
    let crashed = call(&fns, "f", json!({"action": "exit"})).await;
    assert_eq!(crashed.function_error.as_deref(), Some("Unhandled"));
    let error = json(&crashed.payload);
    assert_eq!(error["errorType"], "Runtime.ExitError", "{error}");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.starts_with("RequestId: "), "{message}");
    assert!(
        message.ends_with("Error: Runtime exited with error: exit status 1"),
        "{message}"
    );
    let second = pid_of(&call(&fns, "f", json!({})).await);
    assert_ne!(second, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_invokes_are_all_answered_by_at_most_max_instances_processes() {
    let fns = functions(&python_function("f", "app.behave", "max_instances = 2"));
    let function = fns.resolve("f").unwrap();
    let calls = (0..6).map(|_| {
        let (fns, function) = (fns.clone(), function.clone());
        tokio::spawn(async move {
            let event = json!({"action": "sleep", "seconds": 0.3});
            fns.invoke(&function, Bytes::from(event.to_string())).await
        })
    });
    let mut pids = BTreeSet::new();
    for call in calls.collect::<Vec<_>>() {
        let answer = call.await.unwrap().unwrap();
        pids.insert(pid_of(&answer));
    }
    // Two permits, two cold starts; the other four waited for them.
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_eq!(fns.warm_pids(&function).len(), 2);
    // The listing counts them: both warm, none invoked now.
    let listed = fns.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].kind, riffle_lambda::FunctionKind::Command);
    assert_eq!(
        (listed[0].instances_running, listed[0].max_instances),
        (2, Some(2))
    );
    fns.shutdown();
    assert_eq!(fns.list()[0].instances_running, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_init_error_fails_the_invocation_and_the_instance_is_replaced() {
    let fns = functions(&python_function("broken", "broken.handler", ""));
    for _ in 0..2 {
        let failed = call(&fns, "broken", json!({})).await;
        assert_eq!(failed.function_error.as_deref(), Some("Unhandled"));
        let error = json(&failed.payload);
        let message = error["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains("broken at import"), "{error}");
        assert_eq!(error["errorType"], "RuntimeError", "{error}");
    }
    assert!(fns.warm_pids(&fns.resolve("broken").unwrap()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_past_6_mb_is_function_response_size_too_large() {
    let fns = functions(&python_function("f", "app.behave", "timeout_seconds = 30"));
    let big = call(
        &fns,
        "f",
        json!({"action": "big", "bytes": MAX_PAYLOAD_BYTES}),
    )
    .await;
    assert_eq!(big.function_error.as_deref(), Some("Unhandled"));
    let error = json(&big.payload);
    assert_eq!(
        error["errorType"], "Function.ResponseSizeTooLarge",
        "{error}"
    );
    // The function itself is fine: the next invocation is answered.
    pid_of(&call(&fns, "f", json!({})).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_past_6_mb_is_refused_before_any_process_starts() {
    let fns = functions(&python_function("f", "app.behave", ""));
    let function = fns.resolve("f").unwrap();
    let err = fns
        .invoke(&function, Bytes::from(vec![b' '; MAX_PAYLOAD_BYTES + 1]))
        .await
        .unwrap_err();
    assert!(matches!(err, LambdaError::RequestTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("6291456 bytes"), "{err}");
    assert!(fns.warm_pids(&function).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_and_drop_leave_no_process_behind() {
    let fns = functions(&python_function("f", "app.behave", ""));
    let pid = pid_of(&call(&fns, "f", json!({})).await);
    fns.shutdown();
    wait_gone(pid as u32).await;
    let function = fns.resolve("f").unwrap();
    let err = fns
        .invoke(&function, Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    assert!(matches!(err, LambdaError::ShutDown), "{err}");

    let fns = functions(&python_function("f", "app.behave", ""));
    let pid = pid_of(&call(&fns, "f", json!({})).await);
    drop(fns);
    wait_gone(pid as u32).await;
}

#[tokio::test]
async fn a_program_that_cannot_start_is_runtime_invalid_entrypoint() {
    let fns = functions("[functions.f]\ncommand = [\"/nonexistent/bootstrap\"]\n");
    let answer = call(&fns, "f", json!({})).await;
    assert_eq!(answer.function_error.as_deref(), Some("Unhandled"));
    let error = json(&answer.payload);
    assert_eq!(error["errorType"], "Runtime.InvalidEntrypoint", "{error}");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/bootstrap")
    );
}

#[tokio::test]
async fn a_function_missing_from_the_config_is_named_in_the_error() {
    let fns = functions(&python_function("f", "app.behave", ""));
    let err = fns
        .resolve("arn:aws:lambda:us-east-1:123456789012:function:other")
        .unwrap_err();
    assert!(matches!(err, LambdaError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("\"other\" is not in [functions]"),
        "{err}"
    );
}
