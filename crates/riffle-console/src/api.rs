//! The console's JSON API, beside the page:
//!
//! - `GET /api/session`, `POST /api/login` `{accessKeyId, secretAccessKey}`,
//!   `POST /api/logout`: who the page calls as (a cookie names the session).
//! - `POST /api/call` `{service, operation, input}`: one call of a
//!   registered service (`kinesis`, `firehose`, …) as the session's key,
//!   through the edge's policy check and audit log
//!   ([`riffle_server::DirectCalls`]). The answer is the service's JSON as
//!   sent; an error is `{"__type", "message"}` with AWS's status.
//! - `POST /api/calls` `[{service, operation, input}, …]`: up to
//!   [`CALLS_MAX`] calls in one request (the overview's summaries of the
//!   rows it shows), answered `[{"ok": answer} | {"error": {…}}, …]`.
//! - `POST /api/records`: the record browser's reads (`records`).
//! - `GET /api/metrics`: the services' metrics as samples (`metrics`).
//! - `GET /api/server`: version, data directory, fsync, uptime, disk use.
//! - `GET /api/functions`: the `[functions]` registry, read-only (`functions`).
//! - `GET /api/s3/…`: the embedded S3's buckets and objects (`s3`).
//!
//! Every POST carries the `x-riffle-console` header (see `server`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use hyper::header::{HeaderName, SET_COOKIE};
use hyper::{Method, StatusCode};
use parking_lot::Mutex;
use rand::Rng as _;
use riffle_server::{Caller, DirectError};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::server::ApiRequest;
use crate::{ConsoleConfig, functions, metrics, records, s3};

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "riffle_console";

/// The most calls one `POST /api/calls` makes: a page of the overview.
pub const CALLS_MAX: usize = 100;

/// Sessions kept at once; past it the oldest logins must log in again.
const SESSIONS_MAX: usize = 10_000;

/// A successful answer.
pub(crate) struct Answer {
    pub content_type: &'static str,
    pub body: Bytes,
    pub headers: Vec<(HeaderName, String)>,
}

impl Answer {
    pub(crate) fn json(value: &impl Serialize) -> Answer {
        // Maps with string keys, strings and numbers: always serializable.
        let body = serde_json::to_vec(value).expect("console answers serialize");
        Answer::raw_json(Bytes::from(body))
    }

    pub(crate) fn raw_json(body: Bytes) -> Answer {
        Answer {
            content_type: "application/json",
            body,
            headers: Vec::new(),
        }
    }
}

/// Why an API request failed; each becomes `{"__type", "message"}`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("no such console API")]
    NotFound,
    #[error("console API calls must carry the x-riffle-console header")]
    Forbidden,
    #[error("this console answers only requests to a loopback name (localhost, 127.0.0.1, [::1])")]
    ForeignHost,
    #[error("the request body is larger than the console accepts")]
    TooLarge,
    #[error("{0}")]
    BadRequest(String),
    #[error("log in with an access key first")]
    NotLoggedIn,
    #[error("The security token included in the request is invalid.")]
    LoginFailed,
    #[error("{}", message.as_deref().unwrap_or(""))]
    Aws {
        status: StatusCode,
        code: &'static str,
        message: Option<String>,
    },
}

impl ApiError {
    /// The status and JSON body of the error.
    pub(crate) fn response(&self) -> (StatusCode, Bytes) {
        let (status, code) = match self {
            ApiError::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::Forbidden | ApiError::ForeignHost => (StatusCode::FORBIDDEN, "Forbidden"),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ApiError::NotLoggedIn => (StatusCode::UNAUTHORIZED, "NotLoggedIn"),
            // The answer AWS gives an unknown access key.
            ApiError::LoginFailed => (StatusCode::UNAUTHORIZED, "UnrecognizedClientException"),
            ApiError::Aws { status, code, .. } => (*status, *code),
        };
        let message = match self {
            ApiError::Aws { message: None, .. } => serde_json::Value::Null,
            other => other.to_string().into(),
        };
        let body = json!({"__type": code, "message": message});
        (status, Bytes::from(body.to_string()))
    }
}

impl From<DirectError> for ApiError {
    fn from(err: DirectError) -> ApiError {
        match err {
            DirectError::UnknownService(name) => {
                ApiError::BadRequest(format!("no service {name:?} is served"))
            }
            DirectError::UnknownOperation { service, operation } => ApiError::Aws {
                status: StatusCode::BAD_REQUEST,
                code: "UnknownOperationException",
                message: Some(format!("{service} has no operation {operation}")),
            },
            DirectError::NotLoggedIn => ApiError::NotLoggedIn,
            DirectError::Aws(e) => ApiError::Aws {
                status: e.status,
                code: e.code,
                message: e.message,
            },
        }
    }
}

/// `POST /api/call`'s body.
#[derive(Debug, Deserialize)]
struct CallRequest {
    service: String,
    operation: String,
    #[serde(default = "empty_object")]
    input: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    json!({})
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginRequest {
    access_key_id: String,
    secret_access_key: String,
}

/// The API's state: the configuration and the sessions.
pub(crate) struct Api {
    pub(crate) config: ConsoleConfig,
    /// Session token → access key id (and when it logged in). Held only to
    /// look up, insert or remove.
    sessions: Mutex<HashMap<String, (String, Instant)>>,
    started: Instant,
    /// Serves only requests whose `Host` is a loopback name (the listener
    /// is on loopback; see `server::is_loopback_host`).
    pub(crate) loopback_only: bool,
}

/// Who a request calls as, and from where.
pub(crate) struct Who<'a> {
    key: Option<String>,
    peer: SocketAddr,
    user_agent: Option<&'a str>,
}

impl Who<'_> {
    pub(crate) fn caller(&self) -> Caller<'_> {
        Caller {
            access_key_id: self.key.as_deref(),
            peer: self.peer,
            user_agent: self.user_agent,
        }
    }
}

impl Api {
    pub(crate) fn new(config: ConsoleConfig) -> Api {
        Api {
            config,
            sessions: Mutex::new(HashMap::new()),
            started: Instant::now(),
            loopback_only: false,
        }
    }

    pub(crate) async fn answer(
        &self,
        req: ApiRequest,
        peer: SocketAddr,
    ) -> Result<Answer, ApiError> {
        let who = Who {
            key: self.session_key(req.session.as_deref()),
            peer,
            user_agent: req.user_agent.as_deref(),
        };
        match (&req.method, req.path.as_str()) {
            (&Method::GET, "/api/session") => Ok(self.session(&who)),
            (&Method::POST, "/api/login") => self.login(&req.body),
            (&Method::POST, "/api/logout") => Ok(self.logout(req.session.as_deref())),
            (&Method::GET, "/api/server") => Ok(self.server().await),
            (&Method::GET, "/api/metrics") => Ok(self.metrics()),
            (&Method::GET, "/api/functions") => functions::list(self, &self.logged_in(who)?).await,
            (&Method::POST, "/api/call") => self.call(&self.logged_in(who)?, &req.body).await,
            (&Method::POST, "/api/calls") => self.calls(&self.logged_in(who)?, &req.body).await,
            (&Method::POST, "/api/records") => {
                records::read(self, &self.logged_in(who)?, &req.body).await
            }
            (&Method::GET, path) if path.starts_with("/api/s3/") => {
                s3::answer(self, &self.logged_in(who)?, path, &req.query).await
            }
            _ => Err(ApiError::NotFound),
        }
    }

    /// `who`, if the server asks for no key or it logged in with one.
    fn logged_in<'a>(&self, who: Who<'a>) -> Result<Who<'a>, ApiError> {
        if self.config.calls.verifies() && who.key.is_none() {
            return Err(ApiError::NotLoggedIn);
        }
        Ok(who)
    }

    fn session_key(&self, token: Option<&str>) -> Option<String> {
        let sessions = self.sessions.lock();
        sessions.get(token?).map(|(key, _)| key.clone())
    }

    fn session(&self, who: &Who<'_>) -> Answer {
        Answer::json(&json!({
            "verifies": self.config.calls.verifies(),
            "accessKeyId": who.key,
        }))
    }

    fn login(&self, body: &[u8]) -> Result<Answer, ApiError> {
        let login: LoginRequest = serde_json::from_slice(body).map_err(|err| {
            ApiError::BadRequest(format!(
                "a login is {{accessKeyId, secretAccessKey}}: {err}"
            ))
        })?;
        if !self
            .config
            .calls
            .login(&login.access_key_id, &login.secret_access_key)
        {
            return Err(ApiError::LoginFailed);
        }
        let token = new_token();
        {
            let mut sessions = self.sessions.lock();
            if sessions.len() >= SESSIONS_MAX
                && let Some(oldest) = sessions
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(t, _)| t.clone())
            {
                sessions.remove(&oldest);
            }
            sessions.insert(token.clone(), (login.access_key_id.clone(), Instant::now()));
        }
        let mut answer = Answer::json(&json!({"accessKeyId": login.access_key_id}));
        answer.headers.push((
            SET_COOKIE,
            format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"),
        ));
        Ok(answer)
    }

    fn logout(&self, token: Option<&str>) -> Answer {
        if let Some(token) = token {
            self.sessions.lock().remove(token);
        }
        let mut answer = Answer::json(&json!({}));
        answer.headers.push((
            SET_COOKIE,
            format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        ));
        answer
    }

    async fn call(&self, who: &Who<'_>, body: &[u8]) -> Result<Answer, ApiError> {
        let request: CallRequest = serde_json::from_slice(body).map_err(|err| {
            ApiError::BadRequest(format!("a call is {{service, operation, input}}: {err}"))
        })?;
        let answer = self
            .call_service(who, &request.service, &request.operation, &request.input)
            .await?;
        Ok(Answer::raw_json(answer))
    }

    async fn calls(&self, who: &Who<'_>, body: &[u8]) -> Result<Answer, ApiError> {
        let requests: Vec<CallRequest> = serde_json::from_slice(body).map_err(|err| {
            ApiError::BadRequest(format!(
                "calls are [{{service, operation, input}}, …]: {err}"
            ))
        })?;
        if requests.len() > CALLS_MAX {
            return Err(ApiError::BadRequest(format!(
                "{} calls asked for at once; at most {CALLS_MAX}",
                requests.len()
            )));
        }
        let mut answers = Vec::with_capacity(requests.len());
        for request in &requests {
            let answer = self
                .call_service(who, &request.service, &request.operation, &request.input)
                .await;
            answers.push(match answer {
                Ok(body) => {
                    let value: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    json!({ "ok": value })
                }
                Err(err) => {
                    let (_, body) = err.response();
                    let value: serde_json::Value =
                        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    json!({ "error": value })
                }
            });
        }
        Ok(Answer::json(&answers))
    }

    /// One call of a registered service as `who`, its answer's JSON.
    pub(crate) async fn call_service(
        &self,
        who: &Who<'_>,
        service: &str,
        operation: &str,
        input: &serde_json::Value,
    ) -> Result<Bytes, ApiError> {
        let input = Bytes::from(input.to_string());
        let answer = self
            .config
            .calls
            .call(who.caller(), service, operation, input)
            .await?;
        Ok(answer)
    }

    async fn server(&self) -> Answer {
        let facts = &self.config.facts;
        let dir = facts.data_dir.clone();
        // A walk of the data directory: files are few (segments, not records).
        let used = tokio::task::spawn_blocking(move || disk_use(&dir))
            .await
            .unwrap_or(0);
        Answer::json(&json!({
            "version": facts.version,
            "dataDir": facts.data_dir.display().to_string(),
            "fsync": facts.fsync,
            "region": facts.region,
            "accountId": facts.account_id,
            "endpoint": facts.endpoint,
            "uptimeSeconds": self.started.elapsed().as_secs(),
            "diskUsedBytes": used,
            "verifies": self.config.calls.verifies(),
        }))
    }

    fn metrics(&self) -> Answer {
        let mut text = String::with_capacity(64 * 1024);
        self.config.calls.write_metrics(&mut text);
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Answer::json(&json!({"at": at, "samples": metrics::samples(&text)}))
    }
}

/// A session token: 128 random bits from the thread's CSPRNG, in hex.
fn new_token() -> String {
    let bits: u128 = rand::rng().random();
    format!("{bits:032x}")
}

/// The bytes of the files under `dir`, symbolic links not followed;
/// what cannot be read counts nothing.
fn disk_use(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => pending.push(entry.path()),
                Ok(meta) => total += meta.len(),
                Err(_) => {}
            }
        }
    }
    total
}
