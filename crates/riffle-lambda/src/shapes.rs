//! The payloads Lambda's Invoke answers when the function failed in a way
//! the runtime could not report itself, and the Runtime API's error bodies,
//! in Lambda's words.

use bytes::Bytes;
use serde_json::json;

use crate::MAX_PAYLOAD_BYTES;

/// `FunctionError` of every failure Lambda reports for a synchronous invoke
/// (`Handled` is gone from today's runtimes).
pub const UNHANDLED: &str = "Unhandled";

fn error(error_type: &str, message: String) -> Bytes {
    Bytes::from(json!({ "errorType": error_type, "errorMessage": message }).to_string())
}

/// The process exited or was killed during the invocation (or before it
/// picked it up): `status` as Lambda words it, `exit status 1`,
/// `signal: killed`.
pub fn runtime_exit(request_id: &str, status: &str) -> Bytes {
    error(
        "Runtime.ExitError",
        format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
    )
}

/// The invocation ran past the function's timeout.
pub fn timed_out(request_id: &str, seconds: f64) -> Bytes {
    error(
        "Sandbox.Timedout",
        format!("RequestId: {request_id} Error: Task timed out after {seconds:.2} seconds"),
    )
}

/// The command could not be started (missing program, no permission).
pub fn invalid_entrypoint(request_id: &str, reason: &str) -> Bytes {
    error(
        "Runtime.InvalidEntrypoint",
        format!("RequestId: {request_id} Error: {reason}"),
    )
}

/// The function's answer was larger than Lambda returns.
pub fn response_too_large() -> Bytes {
    error(
        "Function.ResponseSizeTooLarge",
        format!(
            "Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes)."
        ),
    )
}

/// The Runtime API's 413 to a runtime posting a response past the limit.
pub fn api_too_large() -> Bytes {
    error(
        "RequestEntityTooLarge",
        format!("Exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes)."),
    )
}

/// The Runtime API's 400 to a response or error for a request id that is
/// not the instance's current invocation.
pub fn api_invalid_request_id() -> Bytes {
    error("InvalidRequestID", "Invalid request ID".to_owned())
}

/// The Runtime API's answer to a path it does not serve.
pub fn api_not_found(path: &str) -> Bytes {
    error("NotFound", format!("No runtime API resource at {path}"))
}

/// The Runtime API's 202 to a response, an error or an init error.
pub fn api_accepted() -> Bytes {
    Bytes::from_static(br#"{"status":"OK"}"#)
}

/// The runtime asked for its next invocation without answering this one.
pub fn runtime_lost() -> Bytes {
    error(
        "Runtime.Unknown",
        "The runtime asked for the next invocation without answering this one".to_owned(),
    )
}
