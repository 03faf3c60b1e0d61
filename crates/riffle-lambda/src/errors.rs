//! Why a function could not be resolved or invoked. A failure of the
//! function itself (it raised, crashed or timed out) is not one of these:
//! Lambda reports it as the invocation's result, with `FunctionError`, and so
//! does [`crate::Invocation`].

/// An error of the registry, for the caller (Firehose, an event source
/// mapping) to report or retry.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// Not a function name, partial ARN or ARN that Lambda accepts.
    #[error("invalid function name or ARN {given:?}: {reason}")]
    InvalidName { given: String, reason: &'static str },
    /// A well-formed name that the config file does not define.
    #[error(
        "function {name:?} is not in [functions] of the config file (Riffle runs only the functions defined there)"
    )]
    NotFound { name: String },
    /// A function's definition in `[functions.<name>]` does not hold.
    #[error("invalid [functions.{name}]: {reason}")]
    InvalidConfig { name: String, reason: String },
    /// Lambda's `RequestTooLargeException` for a synchronous invoke.
    #[error(
        "Request must be smaller than {limit} bytes for the InvokeFunction operation (got {size} bytes)"
    )]
    RequestTooLarge { size: usize, limit: usize },
    /// A URL function's server refused or dropped the connection: the caller
    /// may retry, as it would a throttled or unavailable Lambda.
    #[error("function {name:?}: cannot reach {url}: {reason}")]
    Unreachable {
        name: String,
        url: String,
        reason: String,
    },
    /// A URL function's server answered something other than a result.
    #[error("function {name:?}: {url} answered HTTP {status}: {body}")]
    HttpStatus {
        name: String,
        url: String,
        status: u16,
        body: String,
    },
    /// The runtime API of a new instance could not be opened.
    #[error("function {name:?}: cannot serve its runtime API: {source}")]
    RuntimeApi {
        name: String,
        source: std::io::Error,
    },
    /// [`crate::Functions::shutdown`] was called: no more invocations.
    #[error("the function registry is shut down")]
    ShutDown,
}

impl LambdaError {
    /// Whether the same invocation may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LambdaError::Unreachable { .. } | LambdaError::RuntimeApi { .. }
        )
    }
}
