//! agent.json, the Kinesis Agent's own configuration format, read as the Java
//! agent reads it: its keys, defaults and ranges (from the AWS developer
//! guide's "Agent Configuration Settings"); unknown keys are warned about.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::AgentError;
use crate::processing::Converter;

/// Where positions are kept when agent.json names no `checkpointFile`. The
/// Java agent's `/var/run/aws-kinesis-agent/checkpoints` needs root; a
/// file in the working directory does not.
pub const DEFAULT_CHECKPOINT_FILE: &str = "riffle-agent.checkpoints";
/// `maxBufferAgeMillis`: default and range (agent configuration settings).
const BUFFER_AGE_DEFAULT_MS: u64 = 60_000;
const BUFFER_AGE_RANGE_MS: (u64, u64) = (1_000, 900_000);
/// `maxBufferSizeRecords`: default and range, PutRecords' and
/// PutRecordBatch's 500 records per call.
const BUFFER_RECORDS_DEFAULT: usize = 500;
const BUFFER_RECORDS_RANGE: (usize, usize) = (1, 500);
/// `maxBufferSizeBytes`: default and range (4 MiB, PutRecordBatch's limit).
const BUFFER_BYTES_DEFAULT: usize = 4 * 1024 * 1024;
const BUFFER_BYTES_RANGE: (usize, usize) = (1, 4 * 1024 * 1024);
/// `cloudwatch.metricsBufferTimeMillis`, between two PutMetricData
/// (the agent's default; at least a second here).
const METRICS_INTERVAL_DEFAULT_MS: u64 = 30_000;
const METRICS_INTERVAL_RANGE_MS: (u64, u64) = (1_000, 86_400_000);
/// `cloudwatch.namespace`'s default, the agent's.
const DEFAULT_NAMESPACE: &str = "AWSKinesisAgent";
/// `log.statusReportingPeriodSeconds`, between two progress lines.
const PROGRESS_DEFAULT_S: u64 = 30;
const PROGRESS_RANGE_S: (u64, u64) = (1, 86_400);
/// `shutdownTimeoutMillis`: how long SIGTERM waits for buffered records
/// to be acknowledged (the agent's default).
const SHUTDOWN_TIMEOUT_DEFAULT_MS: u64 = 10_000;
const SHUTDOWN_TIMEOUT_RANGE_MS: (u64, u64) = (0, 3_600_000);
/// `truncatedRecordTerminator`'s default, the agent's.
const DEFAULT_TERMINATOR: &str = "\n";

/// The general keys the agent reads (the rest are warned about).
const GENERAL_KEYS: &[&str] = &[
    "kinesis.endpoint",
    "firehose.endpoint",
    "checkpointFile",
    "awsAccessKeyId",
    "awsSecretAccessKey",
    "cloudwatch.emitMetrics",
    "cloudwatch.endpoint",
    "cloudwatch.metricsBufferTimeMillis",
    "cloudwatch.namespace",
    "log.level",
    "log.statusReportingPeriodSeconds",
    "flows",
    // Accepted for compatibility; the agent's tuning knobs have no use here.
    "assumeRoleARN",
    "assumeRoleExternalId",
    "awsSessionToken",
    "sts.endpoint",
    "shutdownTimeoutMillis",
    "sendingThreadsKeepAliveMillis",
    "sendingThreadsMaxQueueSize",
    "maxSendingThreads",
    "checkpointTimeToLiveDays",
    "log.maxBackupIndex",
    "log.maxFileSize",
    "log.file",
    "log.emitMetrics",
    "log.emitInternalMetrics",
    "cloudwatch.metricsQueueSize",
    "maxSendingThreadsPerCore",
    "maxConnections",
    "connectionTimeoutMillis",
    "connectionTTLMillis",
    "socketTimeoutMillis",
    "useTcpKeepAlive",
    "useHttpGzip",
];
/// The flow keys the agent reads.
const FLOW_KEYS: &[&str] = &[
    "filePattern",
    "kinesisStream",
    "deliveryStream",
    "partitionKeyOption",
    "initialPosition",
    "maxBufferAgeMillis",
    "maxBufferSizeRecords",
    "maxBufferSizeBytes",
    "multiLineStartPattern",
    "skipHeaderLines",
    "truncatedRecordTerminator",
    "dataProcessingOptions",
    // Accepted for compatibility (the Java agent's retry and threading knobs).
    "minTimeBetweenFilePollsMillis",
    "maxTimeBetweenFilePollsMillis",
    "retryInitialBackoffMillis",
    "retryMaxBackoffMillis",
    "publishQueueCapacity",
    "fileFooterPattern",
    "aggregatedRecordSizeBytes",
];

/// The whole of agent.json.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub kinesis_endpoint: Option<String>,
    pub firehose_endpoint: Option<String>,
    pub cloudwatch_endpoint: Option<String>,
    pub checkpoint_file: PathBuf,
    /// `awsAccessKeyId` and `awsSecretAccessKey`, else the SDK's chain.
    pub credentials: Option<(String, String)>,
    pub emit_metrics: bool,
    pub metrics_interval: Duration,
    pub metrics_namespace: String,
    pub progress_interval: Duration,
    pub shutdown_timeout: Duration,
    pub log_level: Option<String>,
    pub flows: Vec<FlowConfig>,
}

/// Where a flow's records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Kinesis(String),
    Firehose(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKeyOption {
    /// A random number, as the agent's `nextDouble(1000000)`.
    Random,
    /// The MD5 of the record's data, in hex.
    Deterministic,
}

/// One entry of `flows`.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    pub file_pattern: PathBuf,
    pub destination: Destination,
    pub partition_key: PartitionKeyOption,
    /// `initialPosition` START_OF_FILE (else END_OF_FILE, the default).
    pub start_of_file: bool,
    pub max_buffer_age: Duration,
    pub max_buffer_records: usize,
    pub max_buffer_bytes: usize,
    pub multi_line_start: Option<regex::Regex>,
    pub skip_header_lines: usize,
    pub truncated_terminator: Vec<u8>,
    pub converters: Vec<Converter>,
}

impl FlowConfig {
    /// The flow's key in the checkpoint file: its destination and pattern,
    /// as the Java agent identifies a flow.
    pub fn id(&self) -> String {
        let (kind, name) = match &self.destination {
            Destination::Kinesis(name) => ("kinesis", name),
            Destination::Firehose(name) => ("firehose", name),
        };
        format!("{kind}:{name}:{}", self.file_pattern.display())
    }
}

impl AgentConfig {
    /// Reads and checks agent.json.
    pub fn load(path: &Path) -> Result<AgentConfig, AgentError> {
        let text = std::fs::read_to_string(path).map_err(|source| AgentError::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        AgentConfig::parse(&text)
    }

    /// Parses agent.json's text.
    pub fn parse(text: &str) -> Result<AgentConfig, AgentError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|err| AgentError::Config(format!("agent.json is not JSON: {err}")))?;
        let Value::Object(root) = value else {
            return Err(AgentError::Config(
                "agent.json must be a JSON object".into(),
            ));
        };
        warn_unknown(&root, GENERAL_KEYS, "agent.json");
        let flows = match root.get("flows") {
            Some(Value::Array(flows)) => flows,
            _ => return Err(AgentError::Config("`flows` must be a list of flows".into())),
        };
        if flows.is_empty() {
            return Err(AgentError::Config(
                "`flows` is empty: nothing to tail".into(),
            ));
        }
        let flows = flows
            .iter()
            .enumerate()
            .map(|(index, flow)| parse_flow(flow, index))
            .collect::<Result<Vec<_>, _>>()?;
        let key = string(&root, "awsAccessKeyId", "agent.json")?;
        let secret = string(&root, "awsSecretAccessKey", "agent.json")?;
        let credentials = match (key, secret) {
            (Some(key), Some(secret)) => Some((key, secret)),
            (None, None) => None,
            _ => {
                return Err(AgentError::Config(
                    "awsAccessKeyId and awsSecretAccessKey go together".into(),
                ));
            }
        };
        Ok(AgentConfig {
            kinesis_endpoint: endpoint(&root, "kinesis.endpoint")?,
            firehose_endpoint: endpoint(&root, "firehose.endpoint")?,
            cloudwatch_endpoint: endpoint(&root, "cloudwatch.endpoint")?,
            checkpoint_file: string(&root, "checkpointFile", "agent.json")?
                .unwrap_or_else(|| DEFAULT_CHECKPOINT_FILE.to_owned())
                .into(),
            credentials,
            emit_metrics: boolean(&root, "cloudwatch.emitMetrics")?.unwrap_or(true),
            metrics_interval: Duration::from_millis(ranged(
                &root,
                "cloudwatch.metricsBufferTimeMillis",
                "agent.json",
                METRICS_INTERVAL_DEFAULT_MS,
                METRICS_INTERVAL_RANGE_MS,
            )?),
            metrics_namespace: string(&root, "cloudwatch.namespace", "agent.json")?
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            progress_interval: Duration::from_secs(ranged(
                &root,
                "log.statusReportingPeriodSeconds",
                "agent.json",
                PROGRESS_DEFAULT_S,
                PROGRESS_RANGE_S,
            )?),
            shutdown_timeout: Duration::from_millis(ranged(
                &root,
                "shutdownTimeoutMillis",
                "agent.json",
                SHUTDOWN_TIMEOUT_DEFAULT_MS,
                SHUTDOWN_TIMEOUT_RANGE_MS,
            )?),
            log_level: string(&root, "log.level", "agent.json")?,
            flows,
        })
    }
}

/// An endpoint: the agent takes bare host names and prefixes `https://`;
/// an empty one (as the agent's packaged agent.json has) means the default.
fn endpoint(root: &Map<String, Value>, key: &str) -> Result<Option<String>, AgentError> {
    Ok(string(root, key, "agent.json")?
        .map(|endpoint| endpoint.trim().to_owned())
        .filter(|endpoint| !endpoint.is_empty())
        .map(|endpoint| match endpoint.contains("://") {
            true => endpoint,
            false => format!("https://{endpoint}"),
        }))
}

fn parse_flow(value: &Value, index: usize) -> Result<FlowConfig, AgentError> {
    let at = format!("flows[{index}]");
    let Value::Object(flow) = value else {
        return Err(AgentError::Config(format!("{at} must be an object")));
    };
    warn_unknown(flow, FLOW_KEYS, &at);
    let file_pattern = file_pattern(flow, &at)?;
    let destination = destination(flow, &at)?;
    let partition_key = match choice(
        flow,
        "partitionKeyOption",
        &at,
        &["RANDOM", "DETERMINISTIC"],
    )? {
        Some("DETERMINISTIC") => PartitionKeyOption::Deterministic,
        _ => PartitionKeyOption::Random,
    };
    let start_of_file = choice(
        flow,
        "initialPosition",
        &at,
        &["END_OF_FILE", "START_OF_FILE"],
    )? == Some("START_OF_FILE");
    let multi_line_start = string(flow, "multiLineStartPattern", &at)?
        .map(|pattern| compile(&pattern, &format!("{at}.multiLineStartPattern")))
        .transpose()?;
    let converters = match flow.get("dataProcessingOptions") {
        None => Vec::new(),
        Some(Value::Array(options)) => options
            .iter()
            .enumerate()
            .filter_map(|(i, option)| {
                Converter::from_config(option, &format!("{at}.dataProcessingOptions[{i}]"))
                    .transpose()
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(AgentError::Config(format!(
                "{at}: dataProcessingOptions must be a list"
            )));
        }
    };
    Ok(FlowConfig {
        file_pattern: file_pattern.into(),
        destination,
        partition_key,
        start_of_file,
        max_buffer_age: Duration::from_millis(ranged(
            flow,
            "maxBufferAgeMillis",
            &at,
            BUFFER_AGE_DEFAULT_MS,
            BUFFER_AGE_RANGE_MS,
        )?),
        max_buffer_records: ranged(
            flow,
            "maxBufferSizeRecords",
            &at,
            BUFFER_RECORDS_DEFAULT as u64,
            (BUFFER_RECORDS_RANGE.0 as u64, BUFFER_RECORDS_RANGE.1 as u64),
        )? as usize,
        max_buffer_bytes: ranged(
            flow,
            "maxBufferSizeBytes",
            &at,
            BUFFER_BYTES_DEFAULT as u64,
            (BUFFER_BYTES_RANGE.0 as u64, BUFFER_BYTES_RANGE.1 as u64),
        )? as usize,
        skip_header_lines: ranged(flow, "skipHeaderLines", &at, 0, (0, u64::from(u32::MAX)))?
            as usize,
        truncated_terminator: string(flow, "truncatedRecordTerminator", &at)?
            .unwrap_or_else(|| DEFAULT_TERMINATOR.to_owned())
            .into_bytes(),
        multi_line_start,
        converters,
    })
}

/// `filePattern`: absolute, with wildcards in the file name only (the agent's rule).
fn file_pattern(flow: &Map<String, Value>, at: &str) -> Result<String, AgentError> {
    let pattern = string(flow, "filePattern", at)?
        .ok_or_else(|| AgentError::Config(format!("{at}: filePattern is required")))?;
    if !pattern.starts_with('/') {
        return Err(AgentError::Config(format!(
            "{at}: filePattern `{pattern}` must be an absolute path"
        )));
    }
    let dir = pattern.rsplit_once('/').map_or("", |(dir, _)| dir);
    if dir.contains(['*', '?', '[']) {
        return Err(AgentError::Config(format!(
            "{at}: filePattern `{pattern}` has a wildcard in its directory; only the file name may have one"
        )));
    }
    Ok(pattern)
}

fn destination(flow: &Map<String, Value>, at: &str) -> Result<Destination, AgentError> {
    match (
        string(flow, "kinesisStream", at)?,
        string(flow, "deliveryStream", at)?,
    ) {
        (Some(stream), None) => Ok(Destination::Kinesis(stream)),
        (None, Some(stream)) => Ok(Destination::Firehose(stream)),
        _ => Err(AgentError::Config(format!(
            "{at}: exactly one of kinesisStream and deliveryStream is required"
        ))),
    }
}

/// One of a key's allowed values (exactly as written: the agent refuses
/// `random`), or `None` when absent.
fn choice(
    object: &Map<String, Value>,
    key: &str,
    at: &str,
    allowed: &[&'static str],
) -> Result<Option<&'static str>, AgentError> {
    let Some(value) = string(object, key, at)? else {
        return Ok(None);
    };
    match allowed.iter().find(|a| **a == value) {
        Some(found) => Ok(Some(*found)),
        None => Err(AgentError::Config(format!(
            "{at}: {key} `{value}` is not {}",
            allowed.join(" or ")
        ))),
    }
}

/// Compiles a Java regex as the regex crate reads it; look-around and
/// back-references, which it lacks, are refused by name.
pub fn compile(pattern: &str, at: &str) -> Result<regex::Regex, AgentError> {
    regex::Regex::new(pattern).map_err(|err| {
        AgentError::Config(format!("{at}: `{pattern}` is not a usable regex: {err}"))
    })
}

fn warn_unknown(object: &Map<String, Value>, known: &[&str], at: &str) {
    for key in object.keys().filter(|key| !known.contains(&key.as_str())) {
        tracing::warn!("{at}: unknown key `{key}` ignored");
    }
}

/// A string value; the agent also takes numbers and booleans written as strings.
pub fn string(
    object: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<String>, AgentError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(AgentError::Config(format!("{at}: {key} must be a string"))),
    }
}

fn boolean(object: &Map<String, Value>, key: &str) -> Result<Option<bool>, AgentError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(value)) => Ok(Some(*value)),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(AgentError::Config(format!("{key} must be true or false"))),
    }
}

/// A whole number within the agent's documented range.
fn ranged(
    object: &Map<String, Value>,
    key: &str,
    at: &str,
    default: u64,
    (min, max): (u64, u64),
) -> Result<u64, AgentError> {
    let value = match object.get(key) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(text)) => text.trim().parse().ok(),
        Some(_) => None,
    };
    match value {
        Some(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(AgentError::Config(format!(
            "{at}: {key} must be a whole number from {min} to {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_flow_takes_the_agents_defaults() {
        let config = AgentConfig::parse(
            r#"{"kinesis.endpoint": "kinesis.us-west-2.amazonaws.com", "firehose.endpoint": "",
                "maxSendingThreads": 4,
                "flows": [{"filePattern": "/var/log/app/*.log*", "kinesisStream": "s"}]}"#,
        )
        .unwrap();
        assert_eq!(
            config.kinesis_endpoint.as_deref(),
            Some("https://kinesis.us-west-2.amazonaws.com")
        );
        assert_eq!(config.firehose_endpoint, None);
        assert_eq!(config.checkpoint_file, Path::new(DEFAULT_CHECKPOINT_FILE));
        let flow = &config.flows[0];
        assert_eq!(flow.destination, Destination::Kinesis("s".into()));
        assert_eq!(flow.partition_key, PartitionKeyOption::Random);
        assert!(!flow.start_of_file);
        assert_eq!(flow.max_buffer_age, Duration::from_secs(60));
        assert_eq!(flow.max_buffer_records, 500);
        assert_eq!(flow.max_buffer_bytes, 4 * 1024 * 1024);
        assert_eq!(flow.truncated_terminator, b"\n");
    }

    #[test]
    fn out_of_range_and_ambiguous_flows_are_refused() {
        for bad in [
            r#"{"flows": [{"filePattern": "/a/*", "kinesisStream": "s", "maxBufferSizeRecords": 501}]}"#,
            r#"{"flows": [{"filePattern": "/a/*", "kinesisStream": "s", "maxBufferAgeMillis": 10}]}"#,
            r#"{"flows": [{"filePattern": "/a/*", "kinesisStream": "s", "deliveryStream": "d"}]}"#,
            r#"{"flows": [{"filePattern": "/a/*", "kinesisStream": "s", "partitionKeyOption": "random"}]}"#,
            r#"{"flows": [{"filePattern": "a/*", "kinesisStream": "s"}]}"#,
            r#"{"flows": [{"filePattern": "/var/*/app.log", "kinesisStream": "s"}]}"#,
            r#"{"flows": []}"#,
        ] {
            assert!(AgentConfig::parse(bad).is_err(), "{bad}");
        }
    }
}
