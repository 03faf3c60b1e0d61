//! `riffle-lambda`: the function registry. A Lambda ARN in a configuration
//! (`arn:aws:lambda:<region>:<account>:function:<name>[:qualifier]`) names a
//! function defined in the config file's `[functions]` table, which is
//! either a local command that Riffle runs as a Lambda runtime (serving it
//! the Lambda Runtime API) or an HTTP URL answering Lambda's Invoke shape.
//!
//! Firehose's record transformation and the event source mappings call
//! [`Functions::invoke`], concurrently: the registry is shared by cloning.
//!
//! **Architecture Invariant:** no process outlives the registry. Every
//! instance runs in a process group of its own, killed when the instance is
//! dropped, at [`Functions::shutdown`] and when the last clone is dropped.
//!
//! **Architecture Invariant:** a function's failure (exception, crash,
//! timeout, oversized answer) is an [`Invocation`] with `function_error`,
//! worded as Lambda's Invoke words it; [`LambdaError`] is for the registry's
//! own failures (unknown function, unreachable URL, oversized request).
//!
//! Module map:
//! - `arn`: the names and ARNs Lambda accepts for a function.
//! - `config`: `[functions.<name>]`, its keys, defaults and limits.
//! - `pool`: the instances of a command function (cold start, warm reuse,
//!   `max_instances`, replacement after a crash or timeout).
//! - `instance`: one process, its environment, logs and exit.
//! - `slot`: the hand-over of one invocation between invoker and runtime.
//! - `runtime_api`: the Lambda Runtime API each instance is served.
//! - `url`: functions at an HTTP URL.
//! - `shapes`: Lambda's error payloads and the Runtime API's bodies.
//! - `errors`: [`LambdaError`].

pub mod arn;
pub mod config;
mod errors;
mod instance;
mod pool;
mod runtime_api;
mod shapes;
mod slot;
mod url;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

pub use crate::config::{FunctionConfig, FunctionSpec, FunctionTable};
pub use crate::errors::LambdaError;
use crate::instance::{Context, Groups};
pub use crate::pool::INIT_TIMEOUT;
use crate::pool::Pool;
use crate::url::HttpFunctions;

/// Lambda's limit on a synchronous invocation's request and response
/// payloads ("6 MB each for request and response (synchronous)"; the
/// Invoke API's RequestTooLargeException is raised past 6,291,456 bytes).
pub const MAX_PAYLOAD_BYTES: usize = 6 * 1024 * 1024;

/// The only version Riffle's functions have.
pub const LATEST: &str = "$LATEST";

/// Where the registry's functions live, for their ARNs and environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionsConfig {
    pub region: String,
    pub account_id: String,
    /// `[functions]` from the config file.
    pub functions: FunctionTable,
}

/// What an invocation may carry besides its event, as Invoke takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeOptions {
    /// Invoke's `ClientContext` (base64 JSON), handed to the runtime as
    /// `Lambda-Runtime-Client-Context`.
    pub client_context: Option<String>,
    /// The caller's Cognito identity (JSON), as
    /// `Lambda-Runtime-Cognito-Identity`.
    pub cognito_identity: Option<String>,
}

/// What the runtime is told of an invocation besides its event.
#[derive(Debug)]
pub(crate) struct InvokeMeta {
    pub invoked_arn: String,
    pub options: InvokeOptions,
}

/// A function as a caller named it, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<String>,
    /// The full ARN the function is told it was invoked as.
    pub arn: String,
}

/// The result of one invocation, as Lambda's Invoke returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The function's result, or its error document.
    pub payload: Bytes,
    /// `Some("Unhandled")` when the function failed (Invoke's
    /// `FunctionError`); the payload then says how.
    pub function_error: Option<String>,
    /// `$LATEST`, or what a URL function's server reported.
    pub executed_version: String,
}

impl Invocation {
    fn ok(payload: Bytes) -> Invocation {
        Invocation {
            payload,
            function_error: None,
            executed_version: LATEST.to_owned(),
        }
    }
}

enum Function {
    Command(Pool),
    Url(config::UrlSpec),
}

/// How a function runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// A local command behind the Runtime API (`command = [...]`).
    Command,
    /// An HTTP URL answering Invoke's shape (`url = "..."`).
    Url,
}

/// One function of the registry as it is now, for a listing (the web
/// console's overview).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSummary {
    pub name: String,
    pub arn: String,
    pub kind: FunctionKind,
    /// The program a command function runs, or a URL function's URL
    /// without its query (where a token would be): not its arguments or
    /// environment, which may carry secrets.
    pub target: String,
    /// Instances running now (warm or invoked); always 0 for a URL.
    pub instances_running: usize,
    /// The most instances it runs at once; `None` for a URL.
    pub max_instances: Option<u32>,
}

struct Inner {
    region: String,
    account_id: String,
    functions: BTreeMap<String, Function>,
    groups: Arc<Groups>,
    http: HttpFunctions,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.groups.kill_all();
    }
}

/// The registry of functions. Cheap to clone; clones share the instances.
#[derive(Clone)]
pub struct Functions {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions")
            .field("functions", &self.inner.functions.keys())
            .finish()
    }
}

impl Functions {
    /// Checks every definition; starts nothing (instances start on first
    /// use).
    pub fn new(config: FunctionsConfig) -> Result<Functions, LambdaError> {
        let groups = Arc::new(Groups::default());
        let mut functions = BTreeMap::new();
        for (name, definition) in &config.functions {
            let function = match definition.spec(name)? {
                FunctionSpec::Command(spec) => {
                    let ctx = Context {
                        region: config.region.clone(),
                    };
                    Function::Command(Pool::new(spec, ctx, groups.clone()))
                }
                FunctionSpec::Url(spec) => Function::Url(spec),
            };
            functions.insert(name.clone(), function);
        }
        Ok(Functions {
            inner: Arc::new(Inner {
                region: config.region,
                account_id: config.account_id,
                functions,
                groups,
                http: HttpFunctions::default(),
            }),
        })
    }

    /// The function a name, partial ARN or ARN names.
    pub fn resolve(&self, arn_or_name: &str) -> Result<FunctionRef, LambdaError> {
        let parsed = arn::parse(arn_or_name)?;
        if !self.inner.functions.contains_key(&parsed.name) {
            return Err(LambdaError::NotFound { name: parsed.name });
        }
        let arn = arn::function_arn(
            &self.inner.region,
            &self.inner.account_id,
            &parsed.name,
            parsed.qualifier.as_deref(),
        );
        Ok(FunctionRef {
            name: parsed.name,
            qualifier: parsed.qualifier,
            arn,
        })
    }

    /// Invokes `function` synchronously (RequestResponse) with `payload`.
    ///
    /// Dropping the future gives up the invocation: a command function's
    /// instance is then killed (its state is unknown), not reused.
    pub async fn invoke(
        &self,
        function: &FunctionRef,
        payload: Bytes,
    ) -> Result<Invocation, LambdaError> {
        self.invoke_with(function, payload, InvokeOptions::default())
            .await
    }

    /// [`Functions::invoke`] with a client context or Cognito identity
    /// (command functions only: a URL function is sent the event alone).
    pub async fn invoke_with(
        &self,
        function: &FunctionRef,
        payload: Bytes,
        options: InvokeOptions,
    ) -> Result<Invocation, LambdaError> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(LambdaError::RequestTooLarge {
                size: payload.len(),
                limit: MAX_PAYLOAD_BYTES,
            });
        }
        if self.inner.groups.is_shut() {
            return Err(LambdaError::ShutDown);
        }
        match self.inner.functions.get(&function.name) {
            Some(Function::Command(pool)) => {
                let meta = InvokeMeta {
                    invoked_arn: function.arn.clone(),
                    options,
                };
                pool.invoke(payload, Arc::new(meta)).await
            }
            Some(Function::Url(spec)) => self.inner.http.invoke(spec, payload).await,
            None => Err(LambdaError::NotFound {
                name: function.name.clone(),
            }),
        }
    }

    /// Every function of the registry, in name order, with its instances
    /// running now.
    pub fn list(&self) -> Vec<FunctionSummary> {
        let inner = &self.inner;
        inner
            .functions
            .iter()
            .map(|(name, function)| {
                let arn = arn::function_arn(&inner.region, &inner.account_id, name, None);
                let (kind, target, instances_running, max_instances) = match function {
                    Function::Command(pool) => (
                        FunctionKind::Command,
                        pool.program().to_owned(),
                        pool.running(),
                        Some(pool.max_instances()),
                    ),
                    Function::Url(spec) => {
                        let url = &spec.url;
                        let target = match (url.scheme_str(), url.authority()) {
                            (Some(scheme), Some(authority)) => {
                                format!("{scheme}://{authority}{}", url.path())
                            }
                            _ => url.path().to_owned(),
                        };
                        (FunctionKind::Url, target, 0, None)
                    }
                };
                FunctionSummary {
                    name: name.clone(),
                    arn,
                    kind,
                    target,
                    instances_running,
                    max_instances,
                }
            })
            .collect()
    }

    /// The process ids of a command function's warm instances, idle now.
    pub fn warm_pids(&self, function: &FunctionRef) -> Vec<u32> {
        match self.inner.functions.get(&function.name) {
            Some(Function::Command(pool)) => pool.idle_pids(),
            _ => Vec::new(),
        }
    }

    /// Stops every instance (their process groups are killed, invocations
    /// in flight fail) and refuses further invocations.
    pub fn shutdown(&self) {
        self.inner.groups.kill_all();
        for function in self.inner.functions.values() {
            if let Function::Command(pool) = function {
                pool.close();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_names_each_function_its_kind_and_no_secrets() {
        let table: FunctionTable = toml_table(
            r#"
            [cmd]
            command = ["/usr/bin/python3", "-m", "awslambdaric", "--secret-arg"]
            max_instances = 3
            env = { TOKEN = "hidden" }
            [web]
            url = "http://127.0.0.1:9000/2015-03-31/functions/function/invocations?token=hidden"
            "#,
        );
        let functions = Functions::new(FunctionsConfig {
            region: "eu-west-1".into(),
            account_id: "123456789012".into(),
            functions: table,
        })
        .unwrap();
        let listed = functions.list();
        assert_eq!(
            listed,
            [
                FunctionSummary {
                    name: "cmd".into(),
                    arn: "arn:aws:lambda:eu-west-1:123456789012:function:cmd".into(),
                    kind: FunctionKind::Command,
                    target: "/usr/bin/python3".into(),
                    instances_running: 0,
                    max_instances: Some(3),
                },
                FunctionSummary {
                    name: "web".into(),
                    arn: "arn:aws:lambda:eu-west-1:123456789012:function:web".into(),
                    kind: FunctionKind::Url,
                    target: "http://127.0.0.1:9000/2015-03-31/functions/function/invocations"
                        .into(),
                    instances_running: 0,
                    max_instances: None,
                },
            ]
        );
    }

    fn toml_table(text: &str) -> FunctionTable {
        toml::from_str(text).unwrap()
    }
}
