//! The console's listener: the accept loop, and each request routed to an
//! embedded file or to the JSON API (`api`).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::ConsoleConfig;
use crate::api::{Answer, Api, ApiError};
use crate::assets;

/// The largest API request body: a PutRecord's 1 MiB of data in base64
/// plus its members (API_PutRecord), with room to spare.
pub const API_BODY_BYTES_MAX: usize = 2 * 1024 * 1024;

/// The header every API POST must carry: a page of another origin cannot
/// send it without a CORS preflight, which the console never grants.
pub const CSRF_HEADER: &str = "x-riffle-console";

/// What every response carries: the page loads only its own files.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

/// Serves the console on `listener` until `shutdown` resolves.
pub async fn serve_console(
    listener: TcpListener,
    config: ConsoleConfig,
    shutdown: impl Future<Output = ()>,
) {
    let mut api = Api::new(config);
    // A wildcard or routable address is meant to be reached by any name.
    api.loopback_only = listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    let api = Arc::new(api);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => spawn_connection(Arc::clone(&api), stream, peer),
                Err(err) => {
                    warn!(%err, "console accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

fn spawn_connection(api: Arc<Api>, stream: tokio::net::TcpStream, peer: SocketAddr) {
    let service = service_fn(move |req| {
        let api = Arc::clone(&api);
        async move { Ok::<_, Infallible>(handle(&api, req, peer).await) }
    });
    tokio::spawn(async move {
        let served = auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service)
            .await;
        if let Err(err) = served {
            debug!(%peer, %err, "console connection ended with an error");
        }
    });
}

/// Answers one request: a file, or an API call's JSON.
pub(crate) async fn handle<B>(api: &Api, req: Request<B>, peer: SocketAddr) -> Response<Full<Bytes>>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path().to_owned();
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|h| h.to_str().ok());
    let mut response = if api.loopback_only && !is_loopback_host(host.unwrap_or("")) {
        answer_response(Err(ApiError::ForeignHost))
    } else if let Some(asset) = (req.method() == Method::GET)
        .then(|| assets::find(&path))
        .flatten()
    {
        let mut response = Response::new(Full::new(Bytes::from_static(asset.body)));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
        response
    } else if path.starts_with("/api/") {
        let answer = match read_request(req).await {
            Ok(request) => api.answer(request, peer).await,
            Err(err) => Err(err),
        };
        answer_response(answer)
    } else {
        answer_response(Err(ApiError::NotFound))
    };
    for (name, value) in SECURITY_HEADERS {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

/// Whether a `Host` header names the loopback interface (with any port).
/// A console on loopback answers only such requests: a page whose own name
/// was re-pointed at 127.0.0.1 (DNS rebinding) sends its name instead.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An API request as the handlers take it.
#[derive(Debug)]
pub(crate) struct ApiRequest {
    pub method: Method,
    pub path: String,
    pub query: String,
    /// The session cookie's value, if sent.
    pub session: Option<String>,
    pub user_agent: Option<String>,
    pub body: Bytes,
}

async fn read_request<B>(req: Request<B>) -> Result<ApiRequest, ApiError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    if parts.method == Method::POST && !parts.headers.contains_key(CSRF_HEADER) {
        return Err(ApiError::Forbidden);
    }
    let body = Limited::new(body, API_BODY_BYTES_MAX)
        .collect()
        .await
        .map_err(|_| ApiError::TooLarge)?
        .to_bytes();
    let header = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let session = header(hyper::header::COOKIE).and_then(|cookies| {
        cookies
            .split(';')
            .find_map(|c| {
                c.trim()
                    .strip_prefix(crate::api::SESSION_COOKIE)?
                    .strip_prefix('=')
            })
            .map(str::to_owned)
    });
    Ok(ApiRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        session,
        user_agent: header(hyper::header::USER_AGENT),
        body,
    })
}

fn answer_response(answer: Result<Answer, ApiError>) -> Response<Full<Bytes>> {
    let (status, content_type, body, headers) = match answer {
        Ok(answer) => (
            StatusCode::OK,
            answer.content_type,
            answer.body,
            answer.headers,
        ),
        Err(err) => {
            let (status, body) = err.response();
            (status, "application/json", body, Vec::new())
        }
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers_out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers_out.insert(CONTENT_TYPE, value);
    }
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers_out.insert(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConsoleConfig, ServerFacts};
    use riffle_server::services::KinesisService;
    use riffle_server::{Credentials, DirectCalls, RequestMetrics, Service};

    const KEY: &str = "AKIDCONSOLETEST";
    const SECRET: &str = "console-secret";

    /// An API over a real Kinesis service in a temporary directory; with
    /// `keys`, the server verifies KEY/SECRET.
    async fn api(dir: &std::path::Path, keys: bool) -> Api {
        let store =
            Arc::new(riffle_log::LogStore::open(dir, riffle_log::StoreConfig::default()).unwrap());
        let kinesis =
            riffle_kinesis::Kinesis::open(store, riffle_kinesis::KinesisConfig::default()).unwrap();
        let service: Arc<dyn Service> = Arc::new(KinesisService(kinesis));
        let metrics = Arc::new(RequestMetrics::new(&[service.info()]));
        let credentials =
            keys.then(|| Credentials::new("us-east-1", [(KEY.to_owned(), SECRET.to_owned())]));
        let calls = DirectCalls::new(vec![service], credentials, None, None, metrics);
        let function = riffle_lambda::FunctionConfig {
            url: Some("http://127.0.0.1:9/2015-03-31/functions/function/invocations".into()),
            ..riffle_lambda::FunctionConfig::default()
        };
        let functions = riffle_lambda::Functions::new(riffle_lambda::FunctionsConfig {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            functions: [("enrich".to_owned(), function)].into(),
        })
        .unwrap();
        Api::new(ConsoleConfig {
            calls: Arc::new(calls),
            s3: None,
            functions: Some(functions),
            facts: ServerFacts {
                version: "0.0.0".into(),
                data_dir: dir.to_owned(),
                fsync: "always".into(),
                region: "us-east-1".into(),
                account_id: "000000000000".into(),
                endpoint: "http://127.0.0.1:4567".into(),
            },
        })
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:50000".parse().unwrap()
    }

    /// A POST as the page sends it (with the console's header), and cookie.
    fn post(path: &str, body: &str, cookie: Option<&str>) -> Request<Full<Bytes>> {
        let mut req = Request::post(path).header(CSRF_HEADER, "1");
        if let Some(cookie) = cookie {
            req = req.header(hyper::header::COOKIE, cookie);
        }
        req.body(Full::new(Bytes::from(body.to_owned()))).unwrap()
    }

    async fn json(response: Response<Full<Bytes>>) -> (StatusCode, serde_json::Value) {
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn the_page_is_served_with_its_security_headers_and_unknown_paths_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(dir.path(), false).await;
        let page = handle(
            &api,
            Request::get("/").body(Full::new(Bytes::new())).unwrap(),
            peer(),
        )
        .await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(
            page.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with("default-src 'self'")
        );
        let missing = handle(
            &api,
            Request::get("/nope").body(Full::new(Bytes::new())).unwrap(),
            peer(),
        )
        .await;
        assert_eq!(json(missing).await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn calls_answer_the_services_json_and_its_errors_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(dir.path(), false).await;
        let create = r#"{"service":"kinesis","operation":"CreateStream","input":{"StreamName":"s","ShardCount":1}}"#;
        let (status, _) = json(handle(&api, post("/api/call", create, None), peer()).await).await;
        assert_eq!(status, StatusCode::OK);
        let list = r#"{"service":"kinesis","operation":"ListStreams"}"#;
        let (_, listed) = json(handle(&api, post("/api/call", list, None), peer()).await).await;
        assert_eq!(listed["StreamNames"], serde_json::json!(["s"]));
        let retention = r#"{"service":"kinesis","operation":"IncreaseStreamRetentionPeriod","input":{"StreamName":"s","RetentionPeriodHours":9000}}"#;
        let (status, error) =
            json(handle(&api, post("/api/call", retention, None), peer()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["__type"], "InvalidArgumentException");
        assert_eq!(
            error["message"],
            "Maximum allowed retention period is 8760 hours. Requested retention period (9000 hours) is too long."
        );
        let unknown = r#"{"service":"kinesis","operation":"DropEverything"}"#;
        let (status, error) =
            json(handle(&api, post("/api/call", unknown, None), peer()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["__type"], "UnknownOperationException");
        let (status, error) =
            json(handle(&api, post("/api/call", "not json", None), peer()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(error["__type"], "BadRequest");
    }

    #[tokio::test]
    async fn a_batch_of_calls_answers_each_and_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(dir.path(), false).await;
        let calls = r#"[{"service":"kinesis","operation":"ListStreams"},{"service":"kinesis","operation":"DescribeStreamSummary","input":{"StreamName":"none"}}]"#;
        let (status, answers) =
            json(handle(&api, post("/api/calls", calls, None), peer()).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answers[0]["ok"]["StreamNames"], serde_json::json!([]));
        assert_eq!(answers[1]["error"]["__type"], "ResourceNotFoundException");
        let many = format!(
            "[{}]",
            vec![r#"{"service":"kinesis","operation":"ListStreams"}"#; crate::CALLS_MAX + 1]
                .join(",")
        );
        let (status, _) = json(handle(&api, post("/api/calls", &many, None), peer()).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn only_loopback_names_are_loopback_hosts() {
        for host in [
            "127.0.0.1:4568",
            "localhost:4568",
            "LOCALHOST",
            "[::1]:4568",
            "127.0.0.2",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:4568",
            "10.0.0.1:4568",
            "",
            "[::2]:1",
            "localhost.evil.example",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[tokio::test]
    async fn a_console_on_loopback_refuses_other_host_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut api = api(dir.path(), false).await;
        api.loopback_only = true;
        let get = |host: &str| {
            Request::get("/")
                .header(hyper::header::HOST, host)
                .body(Full::new(Bytes::new()))
                .unwrap()
        };
        assert_eq!(
            handle(&api, get("127.0.0.1:4568"), peer()).await.status(),
            StatusCode::OK
        );
        let rebound = handle(&api, get("attacker.example:4568"), peer()).await;
        assert_eq!(rebound.status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn posts_without_the_console_header_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(dir.path(), false).await;
        let req = Request::post("/api/call")
            .body(Full::new(Bytes::from_static(
                br#"{"service":"kinesis","operation":"ListStreams"}"#,
            )))
            .unwrap();
        assert_eq!(
            json(handle(&api, req, peer()).await).await.0,
            StatusCode::FORBIDDEN
        );
    }

    #[tokio::test]
    async fn with_keys_calls_need_a_login_whose_cookie_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(dir.path(), true).await;
        let list = r#"{"service":"kinesis","operation":"ListStreams"}"#;
        let (status, error) = json(handle(&api, post("/api/call", list, None), peer()).await).await;
        assert_eq!(
            (status, &error["__type"]),
            (StatusCode::UNAUTHORIZED, &"NotLoggedIn".into())
        );

        let wrong = format!(r#"{{"accessKeyId":"{KEY}","secretAccessKey":"nope"}}"#);
        let (status, error) =
            json(handle(&api, post("/api/login", &wrong, None), peer()).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error["__type"], "UnrecognizedClientException");

        let right = format!(r#"{{"accessKeyId":"{KEY}","secretAccessKey":"{SECRET}"}}"#);
        let login = handle(&api, post("/api/login", &right, None), peer()).await;
        let cookie = login.headers()[hyper::header::SET_COOKIE]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
        let session = cookie.split(';').next().unwrap().to_owned();
        let (status, listed) =
            json(handle(&api, post("/api/call", list, Some(&session)), peer()).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(listed["StreamNames"], serde_json::json!([]));
        let who = Request::get("/api/session")
            .header(hyper::header::COOKIE, &session)
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(
            json(handle(&api, who, peer()).await).await.1["accessKeyId"],
            KEY
        );

        handle(&api, post("/api/logout", "{}", Some(&session)), peer()).await;
        let (status, _) =
            json(handle(&api, post("/api/call", list, Some(&session)), peer()).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn the_functions_registry_is_listed_read_only_to_a_logged_in_key() {
        let dir = tempfile::tempdir().unwrap();
        let get = |cookie: Option<&str>| {
            let mut req = Request::get("/api/functions");
            if let Some(cookie) = cookie {
                req = req.header(hyper::header::COOKIE, cookie);
            }
            req.body(Full::new(Bytes::new())).unwrap()
        };
        let open = api(dir.path(), false).await;
        let (status, listed) = json(handle(&open, get(None), peer()).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            listed["functions"],
            serde_json::json!([{
                "name": "enrich",
                "arn": "arn:aws:lambda:us-east-1:000000000000:function:enrich",
                "kind": "url",
                "target": "http://127.0.0.1:9/2015-03-31/functions/function/invocations",
                "instancesRunning": 0,
                "maxInstances": null,
            }])
        );
        // Nothing changes it: a POST is no API.
        let (status, _) =
            json(handle(&open, post("/api/functions", "{}", None), peer()).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let dir = tempfile::tempdir().unwrap();
        let governed = api(dir.path(), true).await;
        let (status, _) = json(handle(&governed, get(None), peer()).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn repeated_failed_logins_from_one_address_are_throttled_even_with_the_right_secret() {
        let dir = tempfile::tempdir().unwrap();
        let api = api(dir.path(), true).await;
        let wrong = format!(r#"{{"accessKeyId":"{KEY}","secretAccessKey":"nope"}}"#);
        let right = format!(r#"{{"accessKeyId":"{KEY}","secretAccessKey":"{SECRET}"}}"#);
        for _ in 0..crate::api::LOGIN_FAILURES_MAX {
            let (status, _) =
                json(handle(&api, post("/api/login", &wrong, None), peer()).await).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
        let (status, error) =
            json(handle(&api, post("/api/login", &right, None), peer()).await).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error["__type"], "ThrottlingException");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with("Too many failed sign-ins from this address"),
            "{error}"
        );
        // Another address signs in.
        let other: SocketAddr = "127.0.0.2:50000".parse().unwrap();
        let (status, _) = json(handle(&api, post("/api/login", &right, None), other).await).await;
        assert_eq!(status, StatusCode::OK);
    }
}
