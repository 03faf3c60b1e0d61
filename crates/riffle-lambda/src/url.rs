//! Functions served at an HTTP URL: the event is POSTed as the body and the
//! answer is the function's result, as Lambda's Invoke API shapes it
//! (`X-Amz-Function-Error`, `X-Amz-Executed-Version`). The Lambda Runtime
//! Interface Emulator and other Lambda-compatible servers answer so.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::UrlSpec;
use crate::errors::LambdaError;
use crate::{Invocation, LATEST, MAX_PAYLOAD_BYTES, shapes};

/// One client for every URL function: pooled keep-alive connections.
#[derive(Clone)]
pub(crate) struct HttpFunctions {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpFunctions {
    fn default() -> Self {
        HttpFunctions {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl HttpFunctions {
    pub async fn invoke(&self, spec: &UrlSpec, payload: Bytes) -> Result<Invocation, LambdaError> {
        let id = uuid::Uuid::new_v4().to_string();
        match tokio::time::timeout(spec.timeout, self.call(spec, &id, payload)).await {
            Ok(result) => result,
            Err(_) => Ok(Invocation {
                payload: shapes::timed_out(&id, spec.timeout.as_secs_f64()),
                function_error: Some(shapes::UNHANDLED.to_owned()),
                executed_version: LATEST.to_owned(),
            }),
        }
    }

    async fn call(
        &self,
        spec: &UrlSpec,
        id: &str,
        payload: Bytes,
    ) -> Result<Invocation, LambdaError> {
        let unreachable = |reason: String| LambdaError::Unreachable {
            name: spec.name.clone(),
            url: spec.url.to_string(),
            reason,
        };
        let request = Request::post(spec.url.clone())
            .header("content-type", "application/json")
            .header("x-amz-invocation-type", "RequestResponse")
            .header("lambda-runtime-aws-request-id", id)
            .body(Full::new(payload))
            .map_err(|e| unreachable(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        let (parts, body) = response.into_parts();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let function_error = header("x-amz-function-error");
        let executed_version =
            header("x-amz-executed-version").unwrap_or_else(|| LATEST.to_owned());
        let body = match Limited::new(body, MAX_PAYLOAD_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Ok(Invocation {
                    payload: shapes::response_too_large(),
                    function_error: Some(shapes::UNHANDLED.to_owned()),
                    executed_version,
                });
            }
            Err(e) => return Err(unreachable(format!("the answer broke off: {e}"))),
        };
        if !parts.status.is_success() {
            return Err(LambdaError::HttpStatus {
                name: spec.name.clone(),
                url: spec.url.to_string(),
                status: parts.status.as_u16(),
                body: String::from_utf8_lossy(&body).chars().take(512).collect(),
            });
        }
        Ok(Invocation {
            payload: body,
            function_error,
            executed_version,
        })
    }
}

/// An error with its causes ("client error (Connect): tcp connect error:
/// Connection refused"), as hyper's own Display shows only the first.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
