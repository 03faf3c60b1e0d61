//! The edge's options, as `riffle serve` takes them (flag, environment
//! variable, config-file key, default and help, each declared once here;
//! see `riffle-config`), and the checks that span several of them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use riffle_config::values::{ListenOrOff, OnOff};
use serde::{Deserialize, Serialize};

/// `riffle serve`'s options of the network edge: who may call, over what,
/// and what is recorded of it.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct EdgeOptions {
    /// Verify SigV4 signatures: the access key id requests must be signed with
    #[arg(long, env = "RIFFLE_ACCESS_KEY_ID", value_name = "ID")]
    pub access_key_id: Option<String>,
    /// The secret access key of --access-key-id (prefer the environment variable)
    #[arg(
        long,
        env = "RIFFLE_SECRET_ACCESS_KEY",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub secret_access_key: Option<String>,
    /// More access keys, from the config file only: `[credentials]` with
    /// `"<key id>" = "<secret>"`.
    #[arg(skip)]
    #[serde(default)]
    pub credentials: BTreeMap<String, String>,
    /// Serve HTTPS: the PEM certificate chain (server certificate first)
    #[arg(long, env = "RIFFLE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, env = "RIFFLE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// IAM policies, from the config file only: `[policies]` with
    /// `"<key id>" = "<policy file>"`.
    #[arg(skip)]
    #[serde(default)]
    pub policies: BTreeMap<String, PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics, or off
    #[arg(
        long,
        env = "RIFFLE_METRICS_LISTEN",
        value_name = "ADDR",
        default_value = "off"
    )]
    pub metrics_listen: ListenOrOff,
    /// Append one CloudTrail-shaped JSON line per API call to FILE
    #[arg(long, env = "RIFFLE_AUDIT_LOG", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Audit data events too (Kinesis: PutRecord(s), GetRecords, GetShardIterator, SubscribeToShard; Firehose: PutRecord, PutRecordBatch; S3: the object operations)
    #[arg(
        long,
        env = "RIFFLE_AUDIT_DATA_EVENTS",
        value_name = "on|off",
        default_value = "off"
    )]
    pub audit_data_events: OnOff,
    /// CORS for browser pages, as AWS answers it (preflights, Access-Control-* headers)
    #[arg(long, env = "RIFFLE_CORS", value_name = "on|off", default_value = "on")]
    pub cors: OnOff,
    /// Serve HTTP ingest at ADDR: POST JSON to /streams/NAME or /delivery-streams/NAME with no SDK and no signature, or off
    #[arg(
        long,
        env = "RIFFLE_INGEST_LISTEN",
        value_name = "ADDR",
        default_value = "off"
    )]
    pub ingest_listen: ListenOrOff,
    /// HTTP ingest's API keys, from the config file only:
    /// `[ingest_keys.<name>]` tables. None configured: no key is asked for.
    #[arg(skip)]
    #[serde(default)]
    pub ingest_keys: BTreeMap<String, IngestKeyOptions>,
}

/// The config-file tables of [`EdgeOptions`] (no flag sets them).
pub const EDGE_OPTION_TABLES: [&str; 3] = ["credentials", "policies", "ingest_keys"];

/// One HTTP ingest API key, as an API Gateway usage plan would grant it:
/// `[ingest_keys.<name>]` with `key`, `streams`, and optionally
/// `rate_limit` (requests per second) and `burst_limit` (requests).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestKeyOptions {
    /// The value clients send in `x-api-key`.
    pub key: String,
    /// The streams and delivery streams it may write, by name; `"*"` for all.
    pub streams: Vec<String>,
    /// The steady rate of requests per second (a usage plan's `rateLimit`).
    pub rate_limit: Option<f64>,
    /// The requests it may make at once above the rate (`burstLimit`);
    /// defaults to the rate, rounded up.
    pub burst_limit: Option<u32>,
}

/// An API key's value: "an alphanumeric string between 20 and 128
/// characters" ("Usage plans and API keys for REST APIs in API Gateway").
const INGEST_KEY_CHARS: std::ops::RangeInclusive<usize> = 20..=128;

/// Options that do not fit together.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    #[error(
        "`{given}` is set but `{missing}` is not: give both, or neither to accept any credentials"
    )]
    HalfKey {
        given: &'static str,
        missing: &'static str,
    },
    #[error("`{given}` is set but `{missing}` is not: give both to serve HTTPS, or neither")]
    HalfTls {
        given: &'static str,
        missing: &'static str,
    },
    #[error(
        "`[policies]` names access key {id:?}, which is not one of the server's keys ({known}): policies apply to verified keys only"
    )]
    PolicyKey { id: String, known: String },
    #[error("invalid access key id {id:?}: {reason}")]
    AccessKeyId { id: String, reason: &'static str },
    #[error("invalid [ingest_keys.{name}]: {reason}")]
    IngestKey { name: String, reason: String },
}

/// The PEM files of `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl EdgeOptions {
    /// Every access key the server verifies: the `--access-key-id` pair and
    /// the file's `[credentials]`. Empty accepts any credentials.
    pub fn access_keys(&self) -> Result<BTreeMap<String, String>, OptionsError> {
        let mut keys = self.credentials.clone();
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(secret)) => {
                keys.insert(id.clone(), secret.clone());
            }
            (Some(_), None) => {
                return Err(OptionsError::HalfKey {
                    given: "access_key_id",
                    missing: "secret_access_key",
                });
            }
            (None, Some(_)) => {
                return Err(OptionsError::HalfKey {
                    given: "secret_access_key",
                    missing: "access_key_id",
                });
            }
            (None, None) => {}
        }
        for (id, secret) in &keys {
            check_key(id, secret)?;
        }
        for id in self.policies.keys() {
            if !keys.contains_key(id) {
                let known: Vec<&str> = keys.keys().map(String::as_str).collect();
                return Err(OptionsError::PolicyKey {
                    id: id.clone(),
                    known: if known.is_empty() {
                        "none are configured".to_owned()
                    } else {
                        known.join(", ")
                    },
                });
            }
        }
        Ok(keys)
    }

    /// The certificate and key to serve HTTPS with, if both are given.
    pub fn tls_files(&self) -> Result<Option<TlsFiles>, OptionsError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            })),
            (Some(_), None) => Err(OptionsError::HalfTls {
                given: "tls_cert",
                missing: "tls_key",
            }),
            (None, Some(_)) => Err(OptionsError::HalfTls {
                given: "tls_key",
                missing: "tls_cert",
            }),
            (None, None) => Ok(None),
        }
    }

    /// `[ingest_keys]`, checked: each key's value as API Gateway takes one,
    /// no value twice (API Gateway treats two keys of one value as one),
    /// a stream list, and a positive rate.
    pub fn ingest_keys(&self) -> Result<&BTreeMap<String, IngestKeyOptions>, OptionsError> {
        let mut values = std::collections::BTreeSet::new();
        for (name, key) in &self.ingest_keys {
            let bad = |reason: String| OptionsError::IngestKey {
                name: name.clone(),
                reason,
            };
            let chars = key.key.chars().count();
            if !INGEST_KEY_CHARS.contains(&chars)
                || !key.key.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(bad(format!(
                    "`key` must be {} to {} letters and digits (API Gateway's API key values)",
                    INGEST_KEY_CHARS.start(),
                    INGEST_KEY_CHARS.end()
                )));
            }
            if !values.insert(key.key.as_str()) {
                return Err(bad("its `key` is another key's too".to_owned()));
            }
            if key.streams.is_empty() {
                return Err(bad(
                    "`streams` lists none: name the streams it may write, or \"*\"".to_owned(),
                ));
            }
            if let Some(rate) = key.rate_limit
                && !(rate.is_finite() && rate > 0.0)
            {
                return Err(bad(format!("`rate_limit` is {rate}; it must be above 0")));
            }
            if key.burst_limit == Some(0) {
                return Err(bad("`burst_limit` is 0; it must be at least 1".to_owned()));
            }
            if key.burst_limit.is_some() && key.rate_limit.is_none() {
                return Err(bad("`burst_limit` is set without `rate_limit`".to_owned()));
            }
        }
        Ok(&self.ingest_keys)
    }
}

/// The id is the first `/`-separated part of a SigV4 credential, in a
/// header whose parameters are split at commas and spaces; secrets are
/// never echoed.
fn check_key(id: &str, secret: &str) -> Result<(), OptionsError> {
    let reason = if id.is_empty() {
        Some("it is empty")
    } else if id
        .bytes()
        .any(|b| b == b'/' || b == b',' || !b.is_ascii_graphic())
    {
        Some("expected printable ASCII without '/' or ','")
    } else if secret.is_empty() {
        Some("its secret access key is empty")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(OptionsError::AccessKeyId {
            id: id.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}
