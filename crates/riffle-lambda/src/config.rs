//! `[functions]`: the functions Riffle knows, from the config file only (a
//! map of tables has no flag or environment form).
//!
//! ```toml
//! [functions.transform]
//! command = ["python3", "-m", "awslambdaric", "app.handler"]
//! working_dir = "/srv/transform"
//! timeout_seconds = 60
//! max_instances = 2
//! env = { STAGE = "local" }
//!
//! [functions.enrich]
//! url = "http://127.0.0.1:9000/2015-03-31/functions/function/invocations"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::errors::LambdaError;

/// Lambda's default function timeout (CreateFunction `Timeout`: "The default
/// is 3 seconds. The maximum allowed value is 900 seconds").
pub const TIMEOUT_SECONDS_DEFAULT: u32 = 3;
/// Lambda's maximum function timeout (15 minutes).
pub const TIMEOUT_SECONDS_MAX: u32 = 900;
/// Lambda's default memory (CreateFunction `MemorySize`, 128-10240 MB); only
/// told to the function (AWS_LAMBDA_FUNCTION_MEMORY_SIZE), not enforced.
pub const MEMORY_MB_DEFAULT: u32 = 128;
pub const MEMORY_MB_MIN: u32 = 128;
pub const MEMORY_MB_MAX: u32 = 10_240;
/// One warm process per function unless told otherwise: a local function
/// is usually a development copy, and one process keeps its logs in order.
/// Raise it for callers that invoke in parallel.
pub const MAX_INSTANCES_DEFAULT: u32 = 1;
/// A bound against typos: each instance is a process.
pub const MAX_INSTANCES_MAX: u32 = 256;

/// The `[functions]` table: function name → its definition.
pub type FunctionTable = BTreeMap<String, FunctionConfig>;

/// One `[functions.<name>]` table, as written. Exactly one of `command` and
/// `url` is given; [`FunctionConfig::spec`] checks it and the bounds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// Run this program (and arguments) as a Lambda runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Or POST each event to this URL (Lambda's Invoke shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The command's working directory and LAMBDA_TASK_ROOT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<PathBuf>,
    /// More environment variables for the command (they win over Lambda's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `_HANDLER`, for runtimes that read the handler from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
}

/// A checked function definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FunctionSpec {
    Command(CommandSpec),
    Url(UrlSpec),
}

/// A function run as a local command behind the Runtime API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub name: String,
    pub program: String,
    pub args: Vec<String>,
    pub working_dir: Option<PathBuf>,
    pub env: BTreeMap<String, String>,
    pub handler: Option<String>,
    pub timeout: Duration,
    pub memory_mb: u32,
    pub max_instances: u32,
}

/// A function served at an HTTP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlSpec {
    pub name: String,
    pub url: hyper::Uri,
    pub timeout: Duration,
}

impl FunctionConfig {
    /// Checks the definition of function `name`.
    pub fn spec(&self, name: &str) -> Result<FunctionSpec, LambdaError> {
        let invalid = |reason: String| LambdaError::InvalidConfig {
            name: name.to_owned(),
            reason,
        };
        if !crate::arn::is_name(name) {
            return Err(invalid(
                "a function name is 1 to 64 letters, digits, hyphens or underscores".into(),
            ));
        }
        let timeout = bounded(
            "timeout_seconds",
            self.timeout_seconds,
            TIMEOUT_SECONDS_DEFAULT,
            1..=TIMEOUT_SECONDS_MAX,
        )
        .map_err(invalid)?;
        let timeout = Duration::from_secs(u64::from(timeout));
        match (&self.command, &self.url) {
            (Some(command), None) => self.command_spec(name, command, timeout).map_err(invalid),
            (None, Some(url)) => self.url_spec(name, url, timeout).map_err(invalid),
            (Some(_), Some(_)) => Err(invalid("give `command` or `url`, not both".into())),
            (None, None) => Err(invalid("give `command` (a local runtime) or `url`".into())),
        }
    }

    fn command_spec(
        &self,
        name: &str,
        command: &[String],
        timeout: Duration,
    ) -> Result<FunctionSpec, String> {
        let Some((program, args)) = command.split_first() else {
            return Err("`command` is empty: give the program and its arguments".into());
        };
        if program.is_empty() {
            return Err("`command`'s program is empty".into());
        }
        let memory_mb = bounded(
            "memory_mb",
            self.memory_mb,
            MEMORY_MB_DEFAULT,
            MEMORY_MB_MIN..=MEMORY_MB_MAX,
        )?;
        let max_instances = bounded(
            "max_instances",
            self.max_instances,
            MAX_INSTANCES_DEFAULT,
            1..=MAX_INSTANCES_MAX,
        )?;
        Ok(FunctionSpec::Command(CommandSpec {
            name: name.to_owned(),
            program: program.clone(),
            args: args.to_vec(),
            working_dir: self.working_dir.clone(),
            env: self.env.clone(),
            handler: self.handler.clone(),
            timeout,
            memory_mb,
            max_instances,
        }))
    }

    fn url_spec(&self, name: &str, url: &str, timeout: Duration) -> Result<FunctionSpec, String> {
        let given: Vec<&str> = [
            ("working_dir", self.working_dir.is_some()),
            ("env", !self.env.is_empty()),
            ("handler", self.handler.is_some()),
            ("memory_mb", self.memory_mb.is_some()),
            ("max_instances", self.max_instances.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        if !given.is_empty() {
            return Err(format!(
                "{} apply to `command` functions only, not to a `url`",
                given.join(", ")
            ));
        }
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| format!("`url` {url:?} is not a URL: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(format!("`url` {url:?} must be http://HOST[:PORT]/PATH"));
        }
        Ok(FunctionSpec::Url(UrlSpec {
            name: name.to_owned(),
            url: uri,
            timeout,
        }))
    }
}

fn bounded(
    key: &str,
    value: Option<u32>,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, String> {
    let value = value.unwrap_or(default);
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "`{key}` is {value}; it must be {} to {}",
            range.start(),
            range.end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> FunctionTable {
        #[derive(Deserialize)]
        struct File {
            functions: FunctionTable,
        }
        toml::from_str::<File>(text).unwrap().functions
    }

    #[test]
    fn a_command_function_takes_lambdas_defaults() {
        let t =
            table("[functions.f]\ncommand = [\"python3\", \"-m\", \"awslambdaric\", \"app.h\"]\n");
        let FunctionSpec::Command(spec) = t["f"].spec("f").unwrap() else {
            panic!("not a command");
        };
        assert_eq!(spec.program, "python3");
        assert_eq!(spec.args, ["-m", "awslambdaric", "app.h"]);
        assert_eq!(spec.timeout, Duration::from_secs(3));
        assert_eq!(spec.memory_mb, 128);
        assert_eq!(spec.max_instances, 1);
    }

    #[test]
    fn every_key_of_a_command_function_is_read() {
        let t = table(
            "[functions.f]\ncommand = [\"./bootstrap\"]\nworking_dir = \"/srv/f\"\nhandler = \"main\"\n\
             timeout_seconds = 900\nmemory_mb = 10240\nmax_instances = 4\nenv = { A = \"1\" }\n",
        );
        let FunctionSpec::Command(spec) = t["f"].spec("f").unwrap() else {
            panic!("not a command");
        };
        assert_eq!(spec.working_dir, Some(PathBuf::from("/srv/f")));
        assert_eq!(spec.handler.as_deref(), Some("main"));
        assert_eq!(spec.timeout, Duration::from_secs(900));
        assert_eq!((spec.memory_mb, spec.max_instances), (10240, 4));
        assert_eq!(spec.env["A"], "1");
    }

    #[test]
    fn a_url_function_is_an_http_url() {
        let t = table(
            "[functions.u]\nurl = \"http://127.0.0.1:9000/2015-03-31/functions/function/invocations\"\ntimeout_seconds = 10\n",
        );
        let FunctionSpec::Url(spec) = t["u"].spec("u").unwrap() else {
            panic!("not a url");
        };
        assert_eq!(spec.url.port_u16(), Some(9000));
        assert_eq!(spec.timeout, Duration::from_secs(10));
    }

    #[test]
    fn definitions_lambda_would_refuse_say_why() {
        let cases = [
            ("command = []", "`command` is empty"),
            ("command = [\"x\"]\nurl = \"http://h/\"", "not both"),
            ("handler = \"h\"", "give `command`"),
            (
                "command = [\"x\"]\ntimeout_seconds = 0",
                "`timeout_seconds` is 0; it must be 1 to 900",
            ),
            (
                "command = [\"x\"]\ntimeout_seconds = 901",
                "it must be 1 to 900",
            ),
            ("command = [\"x\"]\nmemory_mb = 64", "`memory_mb` is 64"),
            (
                "command = [\"x\"]\nmax_instances = 0",
                "`max_instances` is 0",
            ),
            ("url = \"https://h/\"", "must be http://"),
            (
                "url = \"http://h/\"\nmax_instances = 2",
                "max_instances apply to `command` functions only",
            ),
        ];
        for (body, want) in cases {
            let t = table(&format!("[functions.f]\n{body}\n"));
            let err = t["f"].spec("f").unwrap_err().to_string();
            assert!(err.contains(want), "{body}: {err}");
            assert!(err.starts_with("invalid [functions.f]"), "{err}");
        }
    }

    #[test]
    fn an_unknown_key_is_refused_rather_than_ignored() {
        let err =
            toml::from_str::<FunctionTable>("[f]\ncommand = [\"x\"]\ntimeout = 5\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `timeout`"), "{err}");
    }

    #[test]
    fn a_function_name_must_be_one_lambda_allows() {
        let t = table("[functions.\"bad name\"]\ncommand = [\"x\"]\n");
        let err = t["bad name"].spec("bad name").unwrap_err();
        assert!(err.to_string().contains("1 to 64 letters"), "{err}");
    }
}
