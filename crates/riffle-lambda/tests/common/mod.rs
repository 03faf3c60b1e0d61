//! What the function tests share: the interpreter with awslambdaric, the
//! handlers' directory, a registry built from a `[functions]` TOML text.

#![allow(dead_code)] // each test binary uses its own part

use std::path::PathBuf;
use std::time::{Duration, Instant};

use riffle_lambda::{FunctionTable, Functions, FunctionsConfig, Invocation};

/// The Python interpreter that has PyPI's awslambdaric: `scripts/test`
/// creates `.venv` and exports it. Missing is a failure, never a skip.
pub fn python() -> String {
    match std::env::var("RIFFLE_TEST_PYTHON") {
        Ok(python) if !python.is_empty() => python,
        _ => panic!(
            "RIFFLE_TEST_PYTHON is not set: these tests run Python handlers through PyPI's \
             awslambdaric. Run scripts/test, or `scripts/test-python --venv-only` and then \
             RIFFLE_TEST_PYTHON=$PWD/.venv/bin/python cargo test -p riffle-lambda"
        ),
    }
}

pub fn handlers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/handlers")
}

/// A registry of the functions in `toml` (the body of a config file's
/// `[functions]` tables).
pub fn functions(toml: &str) -> Functions {
    #[derive(serde::Deserialize)]
    struct File {
        functions: FunctionTable,
    }
    let file: File = toml::from_str(toml).unwrap_or_else(|e| panic!("{e}\n{toml}"));
    Functions::new(FunctionsConfig {
        region: "eu-west-1".to_owned(),
        account_id: "123456789012".to_owned(),
        functions: file.functions,
    })
    .expect("valid [functions]")
}

/// `[functions.NAME]` running `module.function` of tests/handlers through
/// awslambdaric, with `extra` keys.
pub fn python_function(name: &str, handler: &str, extra: &str) -> String {
    format!(
        "[functions.{name}]\ncommand = [{python:?}, \"-m\", \"awslambdaric\", {handler:?}]\n\
         working_dir = {dir:?}\n{extra}\n",
        python = python(),
        dir = handlers_dir().display().to_string(),
    )
}

/// Whether process `pid` is gone (reaped, or a zombie on its way out).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Polls until `pid` is gone, failing after a deadline.
pub async fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_gone(pid) {
        assert!(Instant::now() < deadline, "process {pid} still runs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(bytes)))
}

/// npm's aws-lambda-ric entry point (`bin/index.mjs`): `scripts/test`
/// installs it under tests/node and exports the path. Missing is a failure.
pub fn node_ric() -> String {
    match std::env::var("RIFFLE_TEST_NODE_RIC") {
        Ok(ric) if !ric.is_empty() => ric,
        _ => panic!(
            "RIFFLE_TEST_NODE_RIC is not set: these tests run Node.js handlers through npm's \
             aws-lambda-ric. Run scripts/test, or `scripts/test-lambda-node` and then \
             RIFFLE_TEST_NODE_RIC=$PWD/crates/riffle-lambda/tests/node/node_modules/aws-lambda-ric/bin/index.mjs \
             cargo test -p riffle-lambda"
        ),
    }
}

/// `[functions.NAME]` running `module.export` of tests/handlers (app.mjs)
/// through aws-lambda-ric, with `extra` keys.
pub fn node_function(name: &str, handler: &str, extra: &str) -> String {
    format!(
        "[functions.{name}]\ncommand = [\"node\", {ric:?}, {handler:?}]\n\
         working_dir = {dir:?}\n{extra}\n",
        ric = node_ric(),
        dir = handlers_dir().display().to_string(),
    )
}

/// Invokes the function `name` of `fns` with `event`.
pub async fn call(fns: &Functions, name: &str, event: serde_json::Value) -> Invocation {
    let function = fns.resolve(name).expect("defined");
    fns.invoke(&function, bytes::Bytes::from(event.to_string()))
        .await
        .expect("invoked")
}

/// The process id a handler answered with (`pid`), after checking it
/// answered without a function error.
pub fn pid_of(invocation: &Invocation) -> u64 {
    assert_eq!(invocation.function_error, None, "{invocation:?}");
    json(&invocation.payload)["pid"].as_u64().expect("a pid")
}
