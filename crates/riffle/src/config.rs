//! The configuration of `riffle serve`: one typed tree, filled from flags,
//! environment variables, a TOML file and defaults (in that precedence), and
//! validated at start-up with errors that name the offending key.
//!
//! The contract (flag names, variables, defaults) is `notes/CLI.md`; the
//! README's options table documents it for users.

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
    /// AWS region shown in ARNs, e.g. `us-east-1`.
    pub region: String,
    /// 12-digit AWS account id shown in ARNs and error messages.
    pub account_id: String,
    /// How long a stream stays CREATING, UPDATING or DELETING (0 for tests).
    pub status_delay: Duration,
    /// How long a shard iterator stays valid (AWS: 5 minutes).
    pub shard_iterator_ttl: Duration,
}

/// Default listen address: the port local Kinesis emulators use.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:4567";
pub const DATA_DIR_DEFAULT: &str = "./riffle-data";
pub const REGION_DEFAULT: &str = "us-east-1";
pub const ACCOUNT_ID_DEFAULT: &str = "000000000000";
pub const STATUS_DELAY_MS_DEFAULT: u64 = 500;
/// AWS: "A shard iterator expires 5 minutes after it is returned" (API_GetShardIterator).
pub const SHARD_ITERATOR_TTL_MS_DEFAULT: u64 = 300_000;

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
    pub region: Option<String>,
    pub account_id: Option<String>,
    pub status_delay_ms: Option<u64>,
    pub shard_iterator_ttl_ms: Option<u64>,
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
        // Picks flag/env, else the file, else the default, remembering which.
        let pick = |id: &'static str,
                    env: &'static str,
                    arg: Option<String>,
                    file: Option<String>,
                    default: &str| {
            let from_env =
                matches.and_then(|m| m.value_source(id)) == Some(ValueSource::EnvVariable);
            match (arg, file) {
                (Some(v), _) => (
                    v,
                    if from_env {
                        Origin::Env(env)
                    } else {
                        Origin::Flag(flag_name(id))
                    },
                ),
                (None, Some(v)) => (v, Origin::File(file_path)),
                (None, None) => (default.to_owned(), Origin::Default),
            }
        };
        let text = |v: Option<&String>| v.cloned();
        let num = |v: Option<u64>| v.map(|n| n.to_string());
        let path = |v: Option<&PathBuf>| v.map(|p| p.to_string_lossy().into_owned());

        let (listen, o) = pick(
            "listen",
            "RIFFLE_LISTEN",
            text(args.listen.as_ref()),
            text(file.listen.as_ref()),
            LISTEN_DEFAULT,
        );
        let listen = parse_listen(&listen).ok_or_else(|| {
            invalid(
                "listen",
                &o,
                &listen,
                "expected HOST:PORT such as 127.0.0.1:4567",
            )
        })?;

        let (data_dir, o) = pick(
            "data_dir",
            "RIFFLE_DATA_DIR",
            path(args.data_dir.as_ref()),
            path(file.data_dir.as_ref()),
            DATA_DIR_DEFAULT,
        );
        if data_dir.trim().is_empty() {
            return Err(invalid(
                "data_dir",
                &o,
                &data_dir,
                "expected a directory path",
            ));
        }

        let (fsync, o) = pick(
            "fsync",
            "RIFFLE_FSYNC",
            text(args.fsync.as_ref()),
            text(file.fsync.as_ref()),
            "always",
        );
        let fsync = parse_fsync(&fsync).ok_or_else(|| {
            invalid(
                "fsync",
                &o,
                &fsync,
                "expected always, never or interval:MS with MS in 1..=60000",
            )
        })?;

        let (region, o) = pick(
            "region",
            "RIFFLE_REGION",
            text(args.region.as_ref()),
            text(file.region.as_ref()),
            REGION_DEFAULT,
        );
        if !is_region(&region) {
            return Err(invalid(
                "region",
                &o,
                &region,
                "expected an AWS region name such as us-east-1",
            ));
        }

        let (account_id, o) = pick(
            "account_id",
            "RIFFLE_ACCOUNT_ID",
            text(args.account_id.as_ref()),
            text(file.account_id.as_ref()),
            ACCOUNT_ID_DEFAULT,
        );
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("account_id", &o, &account_id, "expected 12 digits"));
        }

        let (delay, o) = pick(
            "status_delay_ms",
            "RIFFLE_STATUS_DELAY_MS",
            num(args.status_delay_ms),
            num(file.status_delay_ms),
            &STATUS_DELAY_MS_DEFAULT.to_string(),
        );
        let status_delay = parse_ms(&delay, 0, STATUS_DELAY_MS_MAX).ok_or_else(|| {
            invalid(
                "status_delay_ms",
                &o,
                &delay,
                "expected milliseconds in 0..=3600000",
            )
        })?;

        let (ttl, o) = pick(
            "shard_iterator_ttl_ms",
            "RIFFLE_SHARD_ITERATOR_TTL_MS",
            num(args.shard_iterator_ttl_ms),
            num(file.shard_iterator_ttl_ms),
            &SHARD_ITERATOR_TTL_MS_DEFAULT.to_string(),
        );
        let shard_iterator_ttl = parse_ms(&ttl, 1, SHARD_ITERATOR_TTL_MS_MAX).ok_or_else(|| {
            invalid(
                "shard_iterator_ttl_ms",
                &o,
                &ttl,
                "expected milliseconds in 1..=86400000",
            )
        })?;

        Ok(ServeConfig {
            listen,
            data_dir: PathBuf::from(data_dir),
            fsync,
            region,
            account_id,
            status_delay,
            shard_iterator_ttl,
        })
    }
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

/// The flag spelling of a key.
fn flag_name(id: &'static str) -> &'static str {
    match id {
        "data_dir" => "data-dir",
        "account_id" => "account-id",
        "status_delay_ms" => "status-delay-ms",
        "shard_iterator_ttl_ms" => "shard-iterator-ttl-ms",
        other => other,
    }
}

fn invalid(
    key: &'static str,
    origin: &Origin<'_>,
    value: &str,
    reason: &'static str,
) -> ConfigError {
    ConfigError::Invalid {
        key,
        origin: origin.to_string(),
        value: value.to_owned(),
        reason,
    }
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
