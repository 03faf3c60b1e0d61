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
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

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

/// Failed logins one remote address may make in a [`LOGIN_WINDOW`] before
/// its logins are refused unchecked until the window ends: room for a few
/// typos, while guessing a secret from one address drops to a handful of
/// tries a minute. (The API port needs no such brake: a signature proves
/// the secret without sending it, and cannot be guessed a try at a time.)
pub(crate) const LOGIN_FAILURES_MAX: u32 = 5;
/// The fixed window failed logins are counted in, from the first failure.
pub(crate) const LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Remote addresses whose failures are tracked at once: a bound on the
/// table (past it, expired windows are dropped, then the oldest).
const LOGIN_ADDRESSES_MAX: usize = 10_000;

/// Failed logins per remote address, in fixed windows.
#[derive(Debug, Default)]
pub(crate) struct LoginLimiter {
    /// Address → when its window started, and its failures in it.
    windows: HashMap<IpAddr, (Instant, u32)>,
}

impl LoginLimiter {
    /// `None` if `ip` may try to log in at `now`; else how long until it may.
    pub(crate) fn refused(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let &(start, failures) = self.windows.get(&ip)?;
        let end = start + LOGIN_WINDOW;
        (failures >= LOGIN_FAILURES_MAX && now < end).then(|| end - now)
    }

    /// A login from `ip` failed at `now`.
    pub(crate) fn failed(&mut self, ip: IpAddr, now: Instant) {
        if !self.windows.contains_key(&ip) && self.windows.len() >= LOGIN_ADDRESSES_MAX {
            self.windows
                .retain(|_, (start, _)| now.duration_since(*start) < LOGIN_WINDOW);
            if self.windows.len() >= LOGIN_ADDRESSES_MAX
                && let Some(oldest) = self
                    .windows
                    .iter()
                    .min_by_key(|(_, (start, _))| *start)
                    .map(|(ip, _)| *ip)
            {
                self.windows.remove(&oldest);
            }
        }
        let window = self.windows.entry(ip).or_insert((now, 0));
        if now.duration_since(window.0) >= LOGIN_WINDOW {
            *window = (now, 0);
        }
        window.1 = window.1.saturating_add(1);
    }

    /// A login from `ip` worked: its failures are forgotten.
    pub(crate) fn succeeded(&mut self, ip: IpAddr) {
        self.windows.remove(&ip);
    }
}

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
    #[error("Too many failed sign-ins from this address; try again in {retry_after_secs} s.")]
    LoginThrottled { retry_after_secs: u64 },
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
            // AWS's name for a request refused for its rate.
            ApiError::LoginThrottled { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "ThrottlingException")
            }
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
    /// Failed logins by remote address. Held only to check or count one.
    logins: Mutex<LoginLimiter>,
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
            logins: Mutex::new(LoginLimiter::default()),
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
            (&Method::POST, "/api/login") => self.login(&req.body, peer.ip()),
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

    fn login(&self, body: &[u8], from: IpAddr) -> Result<Answer, ApiError> {
        let login: LoginRequest = serde_json::from_slice(body).map_err(|err| {
            ApiError::BadRequest(format!(
                "a login is {{accessKeyId, secretAccessKey}}: {err}"
            ))
        })?;
        // Checked before the secret is: a refused try tells nothing.
        if let Some(wait) = self.logins.lock().refused(from, Instant::now()) {
            return Err(ApiError::LoginThrottled {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        if !self
            .config
            .calls
            .login(&login.access_key_id, &login.secret_access_key)
        {
            self.logins.lock().failed(from, Instant::now());
            return Err(ApiError::LoginFailed);
        }
        self.logins.lock().succeeded(from);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_logins_past_the_limit_are_refused_until_the_window_ends() {
        let mut limiter = LoginLimiter::default();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..LOGIN_FAILURES_MAX {
            assert_eq!(limiter.refused(a, t0), None, "try {i}");
            limiter.failed(a, t0 + Duration::from_secs(u64::from(i)));
        }
        let later = t0 + Duration::from_secs(10);
        assert_eq!(
            limiter.refused(a, later),
            Some(LOGIN_WINDOW - Duration::from_secs(10))
        );
        // Another address is counted apart.
        assert_eq!(limiter.refused(b, later), None);
        // The window is fixed, from the first failure.
        assert_eq!(limiter.refused(a, t0 + LOGIN_WINDOW), None);
        limiter.failed(a, t0 + LOGIN_WINDOW);
        assert_eq!(limiter.refused(a, t0 + LOGIN_WINDOW), None, "a new window");
        // A login that works forgets the failures.
        for _ in 0..LOGIN_FAILURES_MAX {
            limiter.failed(b, later);
        }
        assert!(limiter.refused(b, later).is_some());
        limiter.succeeded(b);
        assert_eq!(limiter.refused(b, later), None);
    }

    #[test]
    fn the_failure_table_is_bounded() {
        let mut limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..=LOGIN_ADDRESSES_MAX as u32 {
            limiter.failed(
                IpAddr::from(i.to_be_bytes()),
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        assert_eq!(limiter.windows.len(), LOGIN_ADDRESSES_MAX);
        // The oldest went to make room.
        assert!(
            !limiter
                .windows
                .contains_key(&IpAddr::from(0u32.to_be_bytes()))
        );
    }
}
