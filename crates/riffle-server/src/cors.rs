//! CORS, as AWS answers it, for every service on the port: what lets a
//! browser page call the API with the JavaScript SDK.
//!
//! A request with an `Origin` header is a browser's. An `OPTIONS` one is a
//! preflight: it carries no credentials (browsers send none), so it is
//! answered here, before any check of the service's: 200, an empty body,
//! `Access-Control-Allow-Origin: *`, `Access-Control-Max-Age: 172800`,
//! and `Access-Control-Allow-Headers` / `-Methods` echoing the request's
//! `Access-Control-Request-Headers` / `-Method`. Every other answer to a
//! request with an `Origin` (errors and event streams too) gets
//! `Access-Control-Allow-Origin: *` and `Access-Control-Expose-Headers`
//! naming AWS's response headers, so the SDK can read the request id.
//!
//! It wraps the whole request handler ([`around`]), below which services
//! are dispatched, so a service needs no code of its own for it.

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, CONTENT_LENGTH, HeaderMap, HeaderValue, ORIGIN,
};
use hyper::{Method, Request, Response};
use tracing::debug;

use crate::headers::{self, RequestId};
use crate::request::ResponseBody;

/// How long a browser may cache a preflight's answer, in seconds: AWS's
/// `Access-Control-Max-Age` (two days).
const PREFLIGHT_MAX_AGE_SECONDS: &str = "172800";

/// The response headers a page may read, as AWS lists them.
const EXPOSED_HEADERS: &str =
    "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date";

/// Serves `req` with `next`, adding CORS when `enabled` and the request
/// comes from a browser (has an `Origin`); a preflight never reaches `next`.
pub(crate) async fn around<B, F, Fut>(
    enabled: bool,
    req: Request<B>,
    next: F,
) -> Result<Response<ResponseBody>, Infallible>
where
    F: FnOnce(Request<B>) -> Fut,
    Fut: Future<Output = Result<Response<ResponseBody>, Infallible>>,
{
    if !enabled || !req.headers().contains_key(ORIGIN) {
        return next(req).await;
    }
    if req.method() == Method::OPTIONS {
        return Ok(preflight(req.headers()));
    }
    let mut response = next(req).await?;
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
    Ok(response)
}

/// The answer to a preflight `OPTIONS` request with these headers. Like
/// AWS's, it has a request id but no `x-amz-id-2`, and echoes a request
/// header only when the browser sent it.
fn preflight(request: &HeaderMap) -> Response<ResponseBody> {
    let mut response = Response::new(crate::request::whole(Bytes::new()));
    let id = RequestId::new();
    let headers = response.headers_mut();
    headers.insert(headers::REQUEST_ID, id.header_value());
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    let echoes = [
        (ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_ALLOW_HEADERS),
        (ACCESS_CONTROL_REQUEST_METHOD, ACCESS_CONTROL_ALLOW_METHODS),
    ];
    for (asked, allowed) in echoes {
        if let Some(value) = request.get(&asked) {
            headers.insert(allowed, value.clone());
        }
    }
    headers.insert(
        ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(PREFLIGHT_MAX_AGE_SECONDS),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(0));
    debug!(request_id = %id, "CORS preflight answered");
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::StatusCode;

    fn request(method: Method, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().method(method).uri("/");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    /// A stand-in service: answers 400 with a body, and says it was called.
    async fn service(called: &std::cell::Cell<bool>) -> Result<Response<ResponseBody>, Infallible> {
        called.set(true);
        let mut response = Response::new(crate::request::whole(Bytes::from_static(b"{}")));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        Ok(response)
    }

    async fn serve(enabled: bool, req: Request<()>) -> (Response<ResponseBody>, bool) {
        let called = std::cell::Cell::new(false);
        let response = around(enabled, req, |_| service(&called)).await.unwrap();
        (response, called.get())
    }

    fn header<'a>(response: &'a Response<ResponseBody>, name: &str) -> Option<&'a str> {
        response.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn a_preflight_is_answered_without_the_service_echoing_what_was_asked() {
        let (response, called) = serve(
            true,
            request(
                Method::OPTIONS,
                &[
                    ("origin", "http://localhost:3000"),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "amz-sdk-invocation-id,content-type,x-amz-target",
                    ),
                ],
            ),
        )
        .await;
        assert!(
            !called,
            "a preflight carries no credentials: no service check"
        );
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
        assert_eq!(header(&response, "access-control-max-age"), Some("172800"));
        assert_eq!(
            header(&response, "access-control-allow-methods"),
            Some("POST")
        );
        assert_eq!(
            header(&response, "access-control-allow-headers"),
            Some("amz-sdk-invocation-id,content-type,x-amz-target")
        );
        assert_eq!(header(&response, "content-length"), Some("0"));
        assert!(header(&response, "x-amzn-requestid").is_some());
        assert!(header(&response, "x-amz-id-2").is_none());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn a_preflight_asking_nothing_echoes_nothing() {
        let (response, _) = serve(true, request(Method::OPTIONS, &[("origin", "null")])).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(header(&response, "access-control-allow-headers").is_none());
        assert!(header(&response, "access-control-allow-methods").is_none());
    }

    #[tokio::test]
    async fn answers_to_a_browser_allow_any_origin_and_expose_aws_headers() {
        let (response, called) = serve(
            true,
            request(Method::POST, &[("origin", "https://app.example")]),
        )
        .await;
        assert!(called);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
        assert_eq!(
            header(&response, "access-control-expose-headers"),
            Some(
                "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date"
            )
        );
    }

    #[tokio::test]
    async fn without_an_origin_or_with_cors_off_nothing_is_added() {
        let (response, called) = serve(true, request(Method::POST, &[])).await;
        assert!(called);
        assert!(header(&response, "access-control-allow-origin").is_none());
        // Off: a preflight is an ordinary request, refused by the service.
        let (response, called) = serve(
            false,
            request(Method::OPTIONS, &[("origin", "https://app.example")]),
        )
        .await;
        assert!(called);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(header(&response, "access-control-allow-origin").is_none());
    }
}
