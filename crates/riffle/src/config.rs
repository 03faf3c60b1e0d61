//! The configuration of `riffle serve`: one typed tree, filled from flags,
//! environment variables, a TOML file and defaults (in that precedence), and
//! validated at start-up with errors that name the offending key.
//!
//! The contract (flag names, variables, defaults) is the README's options
//! table: change both together.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use riffle_log::FsyncPolicy;
use serde::Deserialize;

/// The validated configuration of `riffle serve`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Address the server listens on for HTTP/1.1 and HTTP/2 clients.
    /// Port 0 picks a free port (the banner shows the real one).
    pub listen: SocketAddr,
    /// Directory holding every shard's log and the metadata store; created
    /// if missing.
    pub data_dir: PathBuf,
    /// When an appended record is forced to disk before it is acknowledged.
    pub fsync: FsyncPolicy,
    /// Appends are refused (InternalFailure) while the data directory's
    /// filesystem has fewer bytes free; 0 turns the floor off.
    pub disk_free_min: u64,
    /// AWS region shown in ARNs, e.g. `us-east-1`.
    pub region: String,
    /// 12-digit AWS account id shown in ARNs and error messages.
    pub account_id: String,
    /// How long a stream stays CREATING, UPDATING or DELETING (0 for tests).
    pub status_delay: Duration,
    /// How long a shard iterator stays valid (AWS: 5 minutes).
    pub shard_iterator_ttl: Duration,
    /// Enforce AWS's per-shard throughput limits (`on`, the default, so code
    /// tested against Riffle is throttled as in AWS); `off` for raw speed.
    pub throughput_limits: bool,
    /// How often ON_DEMAND streams are checked for a hot shard to split
    /// (and the window their traffic is measured over); zero turns
    /// on-demand scaling off.
    pub on_demand_scale_interval: Duration,
    /// UpdateShardCount calls one stream may make in a rolling 24 hours
    /// (AWS: 10); zero lifts the quota.
    pub update_shard_count_per_day: u32,
    /// The master key that wraps the data keys of encryption at rest;
    /// `None` keeps it at `<data dir>/keys/master.key`. Kept outside the data
    /// directory, a copy of the data alone cannot be decrypted.
    pub master_key_file: Option<PathBuf>,
    /// The access keys whose SigV4 signatures are verified; empty accepts
    /// any credentials, as local emulators do.
    pub access_keys: AccessKeys,
    /// Serve HTTPS with this certificate and key; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Access key id → its IAM policy document (a JSON file); keys without
    /// one may call everything.
    pub policies: BTreeMap<String, PathBuf>,
    /// Serve Prometheus metrics on this address.
    pub metrics_listen: Option<SocketAddr>,
    /// Append a CloudTrail-shaped JSON line per API call to this file.
    pub audit_log: Option<PathBuf>,
    /// Log data events (PutRecord(s), GetRecords, …) too, not only
    /// management events.
    pub audit_data_events: bool,
}

/// The PEM files of `--tls-cert` and `--tls-key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Access key id → secret access key. Its `Debug` shows the ids only, so a
/// logged configuration never leaks a secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AccessKeys(pub BTreeMap<String, String>);

impl std::fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Default listen address: the port local Kinesis emulators use.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:4567";
pub const DATA_DIR_DEFAULT: &str = "./riffle-data";
pub const REGION_DEFAULT: &str = "us-east-1";
pub const ACCOUNT_ID_DEFAULT: &str = "000000000000";
pub const STATUS_DELAY_MS_DEFAULT: u64 = 500;
/// AWS: "A shard iterator expires 5 minutes after it is returned" (API_GetShardIterator).
pub const SHARD_ITERATOR_TTL_MS_DEFAULT: u64 = 300_000;

/// On-demand scaling looks at traffic once a minute unless told otherwise.
pub const ON_DEMAND_SCALE_INTERVAL_MS_DEFAULT: u64 = 60_000;
/// AWS's quota of UpdateShardCount calls per stream per rolling 24 hours.
pub const UPDATE_SHARD_COUNT_PER_DAY_DEFAULT: u32 = 10;
/// Scaling less often than daily would never keep up with traffic.
const ON_DEMAND_SCALE_INTERVAL_MS_MAX: u64 = 86_400_000;
/// A status delay beyond an hour would leave streams unusable; it is a typo.
const STATUS_DELAY_MS_MAX: u64 = 3_600_000;
/// Longer iterator lifetimes than a day make no sense even for debugging.
const SHARD_ITERATOR_TTL_MS_MAX: u64 = 86_400_000;
/// Syncing less often than once a minute defeats the point of `interval`.
const FSYNC_INTERVAL_MS_MAX: u64 = 60_000;

/// `riffle serve` flags. Each also reads an environment variable; unset
/// ones fall back to the `--config` file, then to the default.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:4567]
    #[arg(long, env = "RIFFLE_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Data directory [default: ./riffle-data]
    #[arg(long, env = "RIFFLE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// When records are forced to disk before they are acknowledged [default: always]
    #[arg(long, env = "RIFFLE_FSYNC", value_name = "always|interval:MS|never")]
    pub fsync: Option<String>,
    /// Refuse writes while the data directory's disk has fewer bytes free; 0 turns it off [default: 67108864]
    #[arg(long, env = "RIFFLE_DISK_FREE_MIN", value_name = "BYTES")]
    pub disk_free_min: Option<u64>,
    /// AWS region used in ARNs [default: us-east-1]
    #[arg(long, env = "RIFFLE_REGION", value_name = "R")]
    pub region: Option<String>,
    /// AWS account id used in ARNs [default: 000000000000]
    #[arg(long, env = "RIFFLE_ACCOUNT_ID", value_name = "ID")]
    pub account_id: Option<String>,
    /// How long streams stay CREATING/UPDATING/DELETING; 0 for tests [default: 500]
    #[arg(long, env = "RIFFLE_STATUS_DELAY_MS", value_name = "MS")]
    pub status_delay_ms: Option<u64>,
    /// Lifetime of shard iterators (lets tests reach ExpiredIteratorException).
    #[arg(
        long,
        env = "RIFFLE_SHARD_ITERATOR_TTL_MS",
        value_name = "MS",
        hide = true
    )]
    pub shard_iterator_ttl_ms: Option<u64>,
    /// AWS's per-shard throughput limits: on, or off for raw speed [default: on]
    #[arg(long, env = "RIFFLE_THROUGHPUT_LIMITS", value_name = "on|off")]
    pub throughput_limits: Option<String>,
    /// How often ON_DEMAND streams split a hot shard; 0 turns scaling off [default: 60000]
    #[arg(long, env = "RIFFLE_ON_DEMAND_SCALE_INTERVAL_MS", value_name = "MS")]
    pub on_demand_scale_interval_ms: Option<u64>,
    /// UpdateShardCount calls per stream in 24 hours, as AWS's quota; 0 lifts it [default: 10]
    #[arg(long, env = "RIFFLE_UPDATE_SHARD_COUNT_PER_DAY", value_name = "N")]
    pub update_shard_count_per_day: Option<u64>,
    /// Master key for encryption at rest [default: <data dir>/keys/master.key]
    #[arg(long, env = "RIFFLE_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Verify SigV4 signatures: the access key id requests must be signed with
    #[arg(
        long,
        env = "RIFFLE_ACCESS_KEY_ID",
        value_name = "ID",
        requires = "secret_access_key"
    )]
    pub access_key_id: Option<String>,
    /// The secret access key of --access-key-id (prefer the environment variable)
    #[arg(
        long,
        env = "RIFFLE_SECRET_ACCESS_KEY",
        value_name = "SECRET",
        hide_env_values = true,
        requires = "access_key_id"
    )]
    pub secret_access_key: Option<String>,
    /// Serve HTTPS: the PEM certificate chain (server certificate first)
    #[arg(
        long,
        env = "RIFFLE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(
        long,
        env = "RIFFLE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics [default: off]
    #[arg(long, env = "RIFFLE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Append one CloudTrail-shaped JSON line per API call to FILE
    #[arg(long, env = "RIFFLE_AUDIT_LOG", value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Audit data events (PutRecord(s), GetRecords, GetShardIterator, SubscribeToShard) too [default: off]
    #[arg(long, env = "RIFFLE_AUDIT_DATA_EVENTS", value_name = "on|off")]
    pub audit_data_events: Option<String>,
    /// TOML file with the same keys (listen, data_dir, fsync, region, account_id, status_delay_ms, …)
    #[arg(long, env = "RIFFLE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The `--config` TOML file: the same keys as the flags, in snake_case.
/// Unknown keys are refused so a typo does not silently use a default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub fsync: Option<String>,
    pub disk_free_min: Option<u64>,
    pub region: Option<String>,
    pub account_id: Option<String>,
    pub status_delay_ms: Option<u64>,
    pub shard_iterator_ttl_ms: Option<u64>,
    /// `"on"`/`"off"`, or a TOML boolean.
    pub throughput_limits: Option<Switch>,
    pub on_demand_scale_interval_ms: Option<u64>,
    pub update_shard_count_per_day: Option<u64>,
    pub master_key_file: Option<PathBuf>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// More access keys: `[credentials]` with `"<key id>" = "<secret>"`.
    pub credentials: Option<BTreeMap<String, String>>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub metrics_listen: Option<String>,
    pub audit_log: Option<PathBuf>,
    pub audit_data_events: Option<Switch>,
    /// `[policies]` with `"<key id>" = "<policy file>"`.
    pub policies: Option<BTreeMap<String, PathBuf>>,
}

/// An on/off setting in the TOML file: `"on"`, `"off"`, `true` or `false`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Switch {
    Bool(bool),
    Text(String),
}

impl Switch {
    fn text(&self) -> String {
        match self {
            Switch::Bool(true) => "on".to_owned(),
            Switch::Bool(false) => "off".to_owned(),
            Switch::Text(text) => text.clone(),
        }
    }
}

/// A configuration error, naming the key and where its value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    ParseFile {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
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
    #[error("invalid `{key}` {origin}: {reason}, got {value:?}")]
    Invalid {
        key: &'static str,
        origin: String,
        value: String,
        reason: &'static str,
    },
}

/// Where a value came from; named in errors.
#[derive(Debug, Clone)]
enum Origin<'a> {
    Flag(&'static str),
    Env(&'static str),
    File(&'a Path),
    Default,
}

impl std::fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "(from flag --{flag})"),
            Origin::Env(var) => write!(f, "(from environment variable {var})"),
            Origin::File(path) => write!(f, "(from config file {})", path.display()),
            Origin::Default => write!(f, "(the default)"),
        }
    }
}

/// One setting's names: its id (the clap argument id and the TOML key),
/// its flag and its environment variable.
struct Key {
    id: &'static str,
    flag: &'static str,
    env: &'static str,
}

const LISTEN: Key = Key {
    id: "listen",
    flag: "listen",
    env: "RIFFLE_LISTEN",
};
const DATA_DIR: Key = Key {
    id: "data_dir",
    flag: "data-dir",
    env: "RIFFLE_DATA_DIR",
};
const FSYNC: Key = Key {
    id: "fsync",
    flag: "fsync",
    env: "RIFFLE_FSYNC",
};
const DISK_FREE_MIN: Key = Key {
    id: "disk_free_min",
    flag: "disk-free-min",
    env: "RIFFLE_DISK_FREE_MIN",
};
const REGION: Key = Key {
    id: "region",
    flag: "region",
    env: "RIFFLE_REGION",
};
const ACCOUNT_ID: Key = Key {
    id: "account_id",
    flag: "account-id",
    env: "RIFFLE_ACCOUNT_ID",
};
const STATUS_DELAY_MS: Key = Key {
    id: "status_delay_ms",
    flag: "status-delay-ms",
    env: "RIFFLE_STATUS_DELAY_MS",
};
const SHARD_ITERATOR_TTL_MS: Key = Key {
    id: "shard_iterator_ttl_ms",
    flag: "shard-iterator-ttl-ms",
    env: "RIFFLE_SHARD_ITERATOR_TTL_MS",
};

const THROUGHPUT_LIMITS: Key = Key {
    id: "throughput_limits",
    flag: "throughput-limits",
    env: "RIFFLE_THROUGHPUT_LIMITS",
};

const METRICS_LISTEN: Key = Key {
    id: "metrics_listen",
    flag: "metrics-listen",
    env: "RIFFLE_METRICS_LISTEN",
};

const AUDIT_DATA_EVENTS: Key = Key {
    id: "audit_data_events",
    flag: "audit-data-events",
    env: "RIFFLE_AUDIT_DATA_EVENTS",
};

const ON_DEMAND_SCALE_INTERVAL_MS: Key = Key {
    id: "on_demand_scale_interval_ms",
    flag: "on-demand-scale-interval-ms",
    env: "RIFFLE_ON_DEMAND_SCALE_INTERVAL_MS",
};

const UPDATE_SHARD_COUNT_PER_DAY: Key = Key {
    id: "update_shard_count_per_day",
    flag: "update-shard-count-per-day",
    env: "RIFFLE_UPDATE_SHARD_COUNT_PER_DAY",
};

/// Where values can come from, in precedence order.
struct Sources<'a> {
    /// The `serve` matches, to tell a flag from an environment variable.
    matches: Option<&'a ArgMatches>,
    file: FileConfig,
    file_path: &'a Path,
}

impl Sources<'_> {
    /// Picks the flag/environment value, else the file's, else the default,
    /// and parses it; a value that does not parse is an error naming the
    /// key and where the value came from.
    fn value<T>(
        &self,
        key: &Key,
        arg: Option<String>,
        file: Option<String>,
        default: &str,
        parse: impl FnOnce(&str) -> Option<T>,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        let from_env =
            self.matches.and_then(|m| m.value_source(key.id)) == Some(ValueSource::EnvVariable);
        let (text, origin) = match (arg, file) {
            (Some(v), _) if from_env => (v, Origin::Env(key.env)),
            (Some(v), _) => (v, Origin::Flag(key.flag)),
            (None, Some(v)) => (v, Origin::File(self.file_path)),
            (None, None) => (default.to_owned(), Origin::Default),
        };
        parse(&text).ok_or_else(|| ConfigError::Invalid {
            key: key.id,
            origin: origin.to_string(),
            value: text,
            reason: expected,
        })
    }
}

impl ServeConfig {
    /// Builds and validates the configuration. `matches` are the `serve`
    /// subcommand's matches (to tell flags from environment variables);
    /// `None` treats every given value as a flag.
    pub fn resolve(
        args: &ServeArgs,
        matches: Option<&ArgMatches>,
    ) -> Result<ServeConfig, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let file_path = args.config.as_deref().unwrap_or(Path::new(""));
        let sources = Sources {
            matches,
            file,
            file_path,
        };
        let f = &sources.file;
        let num = |v: Option<u64>| v.map(|n| n.to_string());
        let path = |v: &Option<PathBuf>| v.as_ref().map(|p| p.to_string_lossy().into_owned());
        let not_blank = |t: &str| (!t.trim().is_empty()).then(|| PathBuf::from(t));
        let account = |t: &str| {
            (t.len() == 12 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.to_owned())
        };
        let region = |t: &str| is_region(t).then(|| t.to_owned());

        let access_keys = access_keys(args, f)?;
        let policies = policies(f, &access_keys)?;
        Ok(ServeConfig {
            listen: sources.value(
                &LISTEN,
                args.listen.clone(),
                f.listen.clone(),
                LISTEN_DEFAULT,
                parse_listen,
                "expected HOST:PORT such as 127.0.0.1:4567",
            )?,
            data_dir: sources.value(
                &DATA_DIR,
                path(&args.data_dir),
                path(&f.data_dir),
                DATA_DIR_DEFAULT,
                not_blank,
                "expected a directory path",
            )?,
            fsync: sources.value(
                &FSYNC,
                args.fsync.clone(),
                f.fsync.clone(),
                "always",
                parse_fsync,
                "expected always, never or interval:MS with MS in 1..=60000",
            )?,
            disk_free_min: sources.value(
                &DISK_FREE_MIN,
                num(args.disk_free_min),
                num(f.disk_free_min),
                &riffle_log::DISK_FREE_MIN_DEFAULT.to_string(),
                |t| t.parse::<u64>().ok(),
                "expected a number of bytes (0 turns the floor off)",
            )?,
            region: sources.value(
                &REGION,
                args.region.clone(),
                f.region.clone(),
                REGION_DEFAULT,
                region,
                "expected an AWS region name such as us-east-1",
            )?,
            account_id: sources.value(
                &ACCOUNT_ID,
                args.account_id.clone(),
                f.account_id.clone(),
                ACCOUNT_ID_DEFAULT,
                account,
                "expected 12 digits",
            )?,
            status_delay: sources.value(
                &STATUS_DELAY_MS,
                num(args.status_delay_ms),
                num(f.status_delay_ms),
                &STATUS_DELAY_MS_DEFAULT.to_string(),
                |t| parse_ms(t, 0, STATUS_DELAY_MS_MAX),
                "expected milliseconds in 0..=3600000",
            )?,
            shard_iterator_ttl: sources.value(
                &SHARD_ITERATOR_TTL_MS,
                num(args.shard_iterator_ttl_ms),
                num(f.shard_iterator_ttl_ms),
                &SHARD_ITERATOR_TTL_MS_DEFAULT.to_string(),
                |t| parse_ms(t, 1, SHARD_ITERATOR_TTL_MS_MAX),
                "expected milliseconds in 1..=86400000",
            )?,
            throughput_limits: sources.value(
                &THROUGHPUT_LIMITS,
                args.throughput_limits.clone(),
                f.throughput_limits.as_ref().map(Switch::text),
                "on",
                parse_on_off,
                "expected on or off",
            )?,
            on_demand_scale_interval: sources.value(
                &ON_DEMAND_SCALE_INTERVAL_MS,
                num(args.on_demand_scale_interval_ms),
                num(f.on_demand_scale_interval_ms),
                &ON_DEMAND_SCALE_INTERVAL_MS_DEFAULT.to_string(),
                |t| parse_ms(t, 0, ON_DEMAND_SCALE_INTERVAL_MS_MAX),
                "expected milliseconds in 0..=86400000",
            )?,
            update_shard_count_per_day: sources.value(
                &UPDATE_SHARD_COUNT_PER_DAY,
                num(args.update_shard_count_per_day),
                num(f.update_shard_count_per_day),
                &UPDATE_SHARD_COUNT_PER_DAY_DEFAULT.to_string(),
                |t| t.parse::<u32>().ok(),
                "expected a count of calls (0 lifts the quota)",
            )?,
            // No default to parse: the flag or its variable (clap already
            // ranks those), else the file, else the data directory's own.
            master_key_file: args
                .master_key_file
                .clone()
                .or_else(|| f.master_key_file.clone()),
            policies,
            access_keys,
            tls: tls_files(args, f)?,
            metrics_listen: sources.value(
                &METRICS_LISTEN,
                args.metrics_listen.clone(),
                f.metrics_listen.clone(),
                "off",
                |t| match t {
                    "off" => Some(None),
                    t => parse_listen(t).map(Some),
                },
                "expected HOST:PORT such as 127.0.0.1:9464, or off",
            )?,
            audit_log: args.audit_log.clone().or_else(|| f.audit_log.clone()),
            audit_data_events: sources.value(
                &AUDIT_DATA_EVENTS,
                args.audit_data_events.clone(),
                f.audit_data_events.as_ref().map(Switch::text),
                "off",
                parse_on_off,
                "expected on or off",
            )?,
        })
    }
}

/// The file's `[policies]`, each for a key the server verifies.
fn policies(
    file: &FileConfig,
    keys: &AccessKeys,
) -> Result<BTreeMap<String, PathBuf>, ConfigError> {
    let policies = file.policies.clone().unwrap_or_default();
    for id in policies.keys() {
        if !keys.0.contains_key(id) {
            let known: Vec<&str> = keys.0.keys().map(String::as_str).collect();
            return Err(ConfigError::PolicyKey {
                id: id.clone(),
                known: if known.is_empty() {
                    "none are configured".to_owned()
                } else {
                    known.join(", ")
                },
            });
        }
    }
    Ok(policies)
}

/// The flags' pair if either flag is given, else the file's pair.
fn tls_files(args: &ServeArgs, file: &FileConfig) -> Result<Option<TlsFiles>, ConfigError> {
    let pair = match (&args.tls_cert, &args.tls_key) {
        (None, None) => (&file.tls_cert, &file.tls_key),
        flags => flags,
    };
    match pair {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })),
        (Some(_), None) => Err(ConfigError::HalfTls {
            given: "tls_cert",
            missing: "tls_key",
        }),
        (None, Some(_)) => Err(ConfigError::HalfTls {
            given: "tls_key",
            missing: "tls_cert",
        }),
        (None, None) => Ok(None),
    }
}

/// The flag/variable pair (or the file's pair) plus the file's
/// `[credentials]` table; secrets are never echoed in errors.
fn access_keys(args: &ServeArgs, file: &FileConfig) -> Result<AccessKeys, ConfigError> {
    let pair = match (&args.access_key_id, &args.secret_access_key) {
        (None, None) => (&file.access_key_id, &file.secret_access_key),
        flags => flags,
    };
    let mut keys = file.credentials.clone().unwrap_or_default();
    match pair {
        (Some(id), Some(secret)) => {
            keys.insert(id.clone(), secret.clone());
        }
        (Some(_), None) => {
            return Err(ConfigError::HalfKey {
                given: "access_key_id",
                missing: "secret_access_key",
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError::HalfKey {
                given: "secret_access_key",
                missing: "access_key_id",
            });
        }
        (None, None) => {}
    }
    for (id, secret) in &keys {
        // The id is the first `/`-separated part of a SigV4 credential, in a
        // header whose parameters are split at commas and spaces.
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
        if let Some(reason) = reason {
            return Err(ConfigError::AccessKeyId {
                id: id.clone(),
                reason,
            });
        }
    }
    Ok(AccessKeys(keys))
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::ParseFile {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

/// `IP:PORT`, or `HOST:PORT` resolved once at start-up (e.g. `localhost:4567`).
fn parse_listen(text: &str) -> Option<SocketAddr> {
    text.parse()
        .ok()
        .or_else(|| text.to_socket_addrs().ok()?.next())
}

/// `always`, `never` or `interval:MS`.
pub fn parse_fsync(text: &str) -> Option<FsyncPolicy> {
    match text {
        "always" => Some(FsyncPolicy::Always),
        "never" => Some(FsyncPolicy::Never),
        _ => {
            let ms = parse_ms(text.strip_prefix("interval:")?, 1, FSYNC_INTERVAL_MS_MAX)?;
            Some(FsyncPolicy::Interval(ms))
        }
    }
}

/// How a policy is written in flags, files and the banner.
pub fn fsync_text(policy: FsyncPolicy) -> String {
    match policy {
        FsyncPolicy::Always => "always".to_owned(),
        FsyncPolicy::Never => "never".to_owned(),
        FsyncPolicy::Interval(every) => format!("interval:{}", every.as_millis()),
    }
}

fn parse_on_off(text: &str) -> Option<bool> {
    match text {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

fn parse_ms(text: &str, min: u64, max: u64) -> Option<Duration> {
    let ms: u64 = text.trim().parse().ok()?;
    (min..=max).contains(&ms).then(|| Duration::from_millis(ms))
}

/// AWS region names: lower-case letters, digits and dashes, e.g. `eu-west-3`.
fn is_region(text: &str) -> bool {
    (1..=32).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(args: ServeArgs) -> Result<ServeConfig, ConfigError> {
        ServeConfig::resolve(&args, None)
    }

    #[test]
    fn no_options_give_the_documented_defaults() {
        let config = resolve(ServeArgs::default()).unwrap();
        assert_eq!(config.listen, "127.0.0.1:4567".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("./riffle-data"));
        assert_eq!(config.fsync, FsyncPolicy::Always);
        assert_eq!(
            (config.region.as_str(), config.account_id.as_str()),
            ("us-east-1", "000000000000")
        );
        assert_eq!(config.status_delay, Duration::from_millis(500));
        assert_eq!(config.shard_iterator_ttl, Duration::from_secs(300));
        assert!(config.throughput_limits);
        assert_eq!(config.on_demand_scale_interval, Duration::from_secs(60));
        assert_eq!(config.master_key_file, None);
        assert_eq!(config.update_shard_count_per_day, 10);
    }

    #[test]
    fn the_master_key_file_comes_from_the_flag_before_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("riffle.toml");
        std::fs::write(&file, "master_key_file = \"/etc/riffle/file.key\"\n").unwrap();
        let from_file = resolve(ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(
            from_file.master_key_file,
            Some(PathBuf::from("/etc/riffle/file.key"))
        );
        let from_flag = resolve(ServeArgs {
            config: Some(file),
            master_key_file: Some("/run/secrets/riffle.key".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(
            from_flag.master_key_file,
            Some(PathBuf::from("/run/secrets/riffle.key"))
        );
    }

    #[test]
    fn throughput_limits_turn_off_by_flag_or_file() {
        let off = resolve(ServeArgs {
            throughput_limits: Some("off".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert!(!off.throughput_limits);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("riffle.toml");
        for (text, expected) in [
            ("throughput_limits = false\n", false),
            ("throughput_limits = \"off\"\n", false),
            ("throughput_limits = true\n", true),
        ] {
            std::fs::write(&file, text).unwrap();
            let config = resolve(ServeArgs {
                config: Some(file.clone()),
                ..ServeArgs::default()
            })
            .unwrap();
            assert_eq!(config.throughput_limits, expected, "{text}");
        }
        let err = resolve(ServeArgs {
            throughput_limits: Some("maybe".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `throughput_limits` (from flag --throughput-limits): expected on or off, got \"maybe\""
        );
    }

    #[test]
    fn the_free_space_floor_comes_from_flag_file_or_default() {
        assert_eq!(
            resolve(ServeArgs::default()).unwrap().disk_free_min,
            64 * 1024 * 1024
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("riffle.toml");
        std::fs::write(&file, "disk_free_min = 1048576\n").unwrap();
        let from_file = ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        };
        assert_eq!(resolve(from_file.clone()).unwrap().disk_free_min, 1 << 20);
        let flag = ServeArgs {
            disk_free_min: Some(0),
            ..from_file
        };
        assert_eq!(resolve(flag).unwrap().disk_free_min, 0);
        std::fs::write(&file, "disk_free_min = \"64MiB\"\n").unwrap();
        let err = resolve(ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk_free_min"), "{err}");
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("riffle.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nfsync = \"interval:50\"\nregion = \"eu-west-3\"\nstatus_delay_ms = 0\n")
            .unwrap();
        let args = ServeArgs {
            config: Some(file),
            region: Some("ap-south-1".into()),
            ..ServeArgs::default()
        };
        let config = resolve(args).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(
            config.fsync,
            FsyncPolicy::Interval(Duration::from_millis(50))
        );
        assert_eq!(config.region, "ap-south-1");
        assert_eq!(config.status_delay, Duration::ZERO);
        assert_eq!(config.account_id, ACCOUNT_ID_DEFAULT);
    }

    #[test]
    fn invalid_values_are_refused_naming_key_and_origin() {
        let err = resolve(ServeArgs {
            fsync: Some("sometimes".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `fsync` (from flag --fsync): expected always, never or interval:MS with MS in 1..=60000, \
             got \"sometimes\""
        );
        let err = resolve(ServeArgs {
            account_id: Some("123".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid `account_id` (from flag --account-id)"),
            "{err}"
        );
        let err = resolve(ServeArgs {
            listen: Some("nope".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with("invalid `listen`"), "{err}");
        let err = resolve(ServeArgs {
            shard_iterator_ttl_ms: Some(0),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid `shard_iterator_ttl_ms`"),
            "{err}"
        );
    }

    #[test]
    fn a_config_file_with_an_unknown_or_bad_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("riffle.toml");
        std::fs::write(&file, "fsnyc = \"always\"\n").unwrap();
        let err = resolve(ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("fsnyc"), "{err}");
        std::fs::write(&file, "region = \"US EAST\"\n").unwrap();
        let err = resolve(ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid `region` (from config file "),
            "{err}"
        );
    }

    /// Parses `serve` arguments the way the binary does, so that the keys'
    /// ids are checked against clap's.
    fn resolve_cli(argv: &[&str]) -> Result<ServeConfig, ConfigError> {
        use clap::{Command, FromArgMatches};
        let command = ServeArgs::augment_args(Command::new("serve"));
        let matches = command.try_get_matches_from(argv).unwrap();
        let args = ServeArgs::from_arg_matches(&matches).unwrap();
        ServeConfig::resolve(&args, Some(&matches))
    }

    #[test]
    fn every_flag_parsed_by_clap_reaches_the_config() {
        let config = resolve_cli(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "/tmp/x",
            "--fsync",
            "never",
            "--region",
            "eu-west-1",
            "--account-id",
            "123456789012",
            "--status-delay-ms",
            "7",
            "--shard-iterator-ttl-ms",
            "9",
            "--throughput-limits",
            "off",
            "--on-demand-scale-interval-ms",
            "0",
        ])
        .unwrap();
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.fsync, FsyncPolicy::Never);
        assert_eq!(config.region, "eu-west-1");
        assert_eq!(config.account_id, "123456789012");
        assert_eq!(config.status_delay, Duration::from_millis(7));
        assert_eq!(config.shard_iterator_ttl, Duration::from_millis(9));
        assert!(!config.throughput_limits);
        assert_eq!(config.on_demand_scale_interval, Duration::ZERO);
        for (flag, key) in [
            ("--listen", "listen"),
            ("--data-dir", "data_dir"),
            ("--region", "region"),
            ("--account-id", "account_id"),
            ("--status-delay-ms", "status_delay_ms"),
            ("--shard-iterator-ttl-ms", "shard_iterator_ttl_ms"),
            ("--throughput-limits", "throughput_limits"),
            (
                "--on-demand-scale-interval-ms",
                "on_demand_scale_interval_ms",
            ),
        ] {
            let bad = if flag.ends_with("-ms") {
                "999999999"
            } else {
                " "
            };
            let err = resolve_cli(&["serve", flag, bad]).unwrap_err();
            let prefix = format!("invalid `{key}` (from flag {flag})");
            assert!(err.to_string().starts_with(&prefix), "{err}");
        }
    }

    #[test]
    fn access_keys_come_from_the_flags_the_file_pair_and_its_table() {
        assert!(
            resolve(ServeArgs::default())
                .unwrap()
                .access_keys
                .0
                .is_empty()
        );
        let config = resolve_cli(&[
            "serve",
            "--access-key-id",
            "AKIDFLAG",
            "--secret-access-key",
            "s3cret",
        ])
        .unwrap();
        let expected = BTreeMap::from([("AKIDFLAG".to_owned(), "s3cret".to_owned())]);
        assert_eq!(config.access_keys.0, expected);
        assert_eq!(format!("{:?}", config.access_keys), r#"{"AKIDFLAG"}"#);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("riffle.toml");
        std::fs::write(
            &file,
            "access_key_id = \"AKIDFILE\"\nsecret_access_key = \"a\"\n\n[credentials]\nAKIDTABLE = \"b\"\n",
        )
        .unwrap();
        let from_file = resolve(ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        })
        .unwrap();
        let ids: Vec<&str> = from_file.access_keys.0.keys().map(String::as_str).collect();
        assert_eq!(ids, ["AKIDFILE", "AKIDTABLE"]);
        // The flags' pair replaces the file's pair, not its table.
        let both = resolve(ServeArgs {
            config: Some(file),
            access_key_id: Some("AKIDFLAG".into()),
            secret_access_key: Some("c".into()),
            ..ServeArgs::default()
        })
        .unwrap();
        let ids: Vec<&str> = both.access_keys.0.keys().map(String::as_str).collect();
        assert_eq!(ids, ["AKIDFLAG", "AKIDTABLE"]);
    }

    #[test]
    fn the_metrics_listener_is_off_unless_given_an_address() {
        assert_eq!(resolve(ServeArgs::default()).unwrap().metrics_listen, None);
        let config = resolve_cli(&["serve", "--metrics-listen", "127.0.0.1:9464"]).unwrap();
        assert_eq!(
            config.metrics_listen,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        let err = resolve_cli(&["serve", "--metrics-listen", "nowhere"]).unwrap_err();
        assert!(err.to_string().contains("metrics_listen"), "{err}");
    }

    #[test]
    fn policies_name_files_for_keys_the_server_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("riffle.toml");
        std::fs::write(
            &file,
            "[credentials]\nAKIDBOB = \"b\"\n\n[policies]\nAKIDBOB = \"/etc/riffle/bob.json\"\n",
        )
        .unwrap();
        let config = resolve(ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(
            config.policies,
            BTreeMap::from([("AKIDBOB".to_owned(), PathBuf::from("/etc/riffle/bob.json"))])
        );

        std::fs::write(&file, "[policies]\nAKIDEVE = \"/e.json\"\n").unwrap();
        let err = resolve(ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`[policies]` names access key \"AKIDEVE\", which is not one of the server's keys (none are configured): policies apply to verified keys only"
        );
    }

    #[test]
    fn the_audit_log_and_its_data_events_come_from_flags_or_the_file() {
        let default = resolve(ServeArgs::default()).unwrap();
        assert_eq!(
            (default.audit_log, default.audit_data_events),
            (None, false)
        );
        let config = resolve_cli(&[
            "serve",
            "--audit-log",
            "/var/log/riffle/audit.jsonl",
            "--audit-data-events",
            "on",
        ])
        .unwrap();
        assert_eq!(
            config.audit_log,
            Some(PathBuf::from("/var/log/riffle/audit.jsonl"))
        );
        assert!(config.audit_data_events);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("riffle.toml");
        std::fs::write(
            &file,
            "audit_log = \"/a.jsonl\"\naudit_data_events = true\n",
        )
        .unwrap();
        let from_file = resolve(ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(from_file.audit_log, Some(PathBuf::from("/a.jsonl")));
        assert!(from_file.audit_data_events);

        let err = resolve(ServeArgs {
            audit_data_events: Some("sometimes".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("audit_data_events"), "{err}");
    }

    #[test]
    fn tls_files_come_as_a_pair_from_the_flags_or_the_file() {
        assert_eq!(resolve(ServeArgs::default()).unwrap().tls, None);
        let config = resolve_cli(&[
            "serve",
            "--tls-cert",
            "/etc/riffle/cert.pem",
            "--tls-key",
            "/etc/riffle/key.pem",
        ])
        .unwrap();
        let expected = TlsFiles {
            cert: "/etc/riffle/cert.pem".into(),
            key: "/etc/riffle/key.pem".into(),
        };
        assert_eq!(config.tls, Some(expected));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("riffle.toml");
        std::fs::write(&file, "tls_key = \"/k.pem\"\n").unwrap();
        let half = resolve(ServeArgs {
            config: Some(file.clone()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert_eq!(
            half.to_string(),
            "`tls_key` is set but `tls_cert` is not: give both to serve HTTPS, or neither"
        );
        std::fs::write(&file, "tls_key = \"/k.pem\"\ntls_cert = \"/c.pem\"\n").unwrap();
        let from_file = resolve(ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        })
        .unwrap();
        assert_eq!(from_file.tls.unwrap().cert, PathBuf::from("/c.pem"));
    }

    #[test]
    fn half_a_key_or_a_bad_key_id_is_refused_without_echoing_secrets() {
        let half = resolve(ServeArgs {
            secret_access_key: Some("hidden".into()),
            ..ServeArgs::default()
        })
        .unwrap_err();
        assert_eq!(
            half.to_string(),
            "`secret_access_key` is set but `access_key_id` is not: give both, or neither to accept any credentials"
        );
        for (id, secret) in [
            ("AKID/X", "hidden"),
            ("", "hidden"),
            ("AKID X", "hidden"),
            ("AKID", ""),
        ] {
            let err = resolve(ServeArgs {
                access_key_id: Some(id.into()),
                secret_access_key: Some(secret.into()),
                ..ServeArgs::default()
            })
            .unwrap_err();
            assert!(matches!(err, ConfigError::AccessKeyId { .. }), "{err}");
            assert!(!err.to_string().contains("hidden"), "{err}");
        }
    }

    #[test]
    fn fsync_policies_round_trip_through_their_text() {
        for text in ["always", "never", "interval:1", "interval:60000"] {
            assert_eq!(fsync_text(parse_fsync(text).unwrap()), text);
        }
        for bad in [
            "",
            "Always",
            "interval:",
            "interval:0",
            "interval:60001",
            "interval:x",
        ] {
            assert_eq!(parse_fsync(bad), None, "{bad}");
        }
    }
}
