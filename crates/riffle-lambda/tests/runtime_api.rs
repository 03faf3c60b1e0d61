//! The edges of the Runtime API Riffle serves, seen by a runtime written
//! by hand against it (tests/handlers/raw_runtime.py): the /next headers,
//! Lambda's errors for a wrong request id and an oversized response.

mod common;

use bytes::Bytes;
use common::{functions, handlers_dir, json, python};

fn raw_runtime() -> riffle_lambda::Functions {
    functions(&format!(
        "[functions.raw]\ncommand = [{:?}, \"raw_runtime.py\"]\nworking_dir = {:?}\ntimeout_seconds = 10\n",
        python(),
        handlers_dir().display().to_string()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_carries_lambdas_headers_and_a_wrong_request_id_is_refused() {
    let fns = raw_runtime();
    let function = fns.resolve("raw:prod").unwrap();
    let answer = fns
        .invoke(&function, Bytes::from_static(b"{\"k\":\"v\"}"))
        .await
        .unwrap();
    assert_eq!(answer.function_error, None, "{answer:?}");
    let seen = json(&answer.payload);
    assert_eq!(seen["next_status"], 200);
    assert_eq!(seen["event"], serde_json::json!({"k": "v"}));
    let headers = &seen["headers"];
    assert_eq!(
        headers["Lambda-Runtime-Invoked-Function-Arn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:raw:prod"
    );
    let deadline: u64 = headers["Lambda-Runtime-Deadline-Ms"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(deadline > 1_700_000_000_000, "{deadline}");
    let trace = headers["Lambda-Runtime-Trace-Id"].as_str().unwrap();
    assert!(
        trace.starts_with("Root=1-") && trace.contains(";Parent="),
        "{trace}"
    );
    assert_eq!(
        seen["wrong_id"],
        serde_json::json!([400, {"errorType": "InvalidRequestID", "errorMessage": "Invalid request ID"}])
    );
    assert_eq!(seen["unknown_path"], 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_response_is_refused_with_413_and_fails_the_invocation() {
    let fns = raw_runtime();
    let function = fns.resolve("raw").unwrap();
    let answer = fns
        .invoke(&function, Bytes::from_static(b"{\"oversize\":true}"))
        .await
        .unwrap();
    assert_eq!(answer.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(
        json(&answer.payload)["errorType"],
        "Function.ResponseSizeTooLarge"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_context_and_cognito_identity_reach_the_runtime_as_headers() {
    let fns = raw_runtime();
    let function = fns.resolve("raw").unwrap();
    let options = riffle_lambda::InvokeOptions {
        client_context: Some("eyJjdXN0b20iOnt9fQ==".to_owned()),
        cognito_identity: Some(
            r#"{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}"#.to_owned(),
        ),
    };
    let answer = fns
        .invoke_with(&function, Bytes::from_static(b"{}"), options)
        .await
        .unwrap();
    let headers = &json(&answer.payload)["headers"];
    assert_eq!(
        headers["Lambda-Runtime-Client-Context"],
        "eyJjdXN0b20iOnt9fQ=="
    );
    assert_eq!(
        headers["Lambda-Runtime-Cognito-Identity"],
        r#"{"cognitoIdentityId":"id","cognitoIdentityPoolId":"pool"}"#
    );
    // Without them, neither header is sent.
    let plain = fns
        .invoke(&function, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let headers = &json(&plain.payload)["headers"];
    assert!(
        headers.get("Lambda-Runtime-Client-Context").is_none(),
        "{headers}"
    );
}
