//! The configuration of `riffle serve`: every option declared once (the
//! server-wide ones here, each service's in its own crate), filled from
//! flags, environment variables, a TOML file and defaults (in that
//! precedence) by `riffle-config`, and checked at start-up with errors that
//! name the offending key and where its value came from.
//!
//! The README's options table is checked against these declarations by a
//! test, so the two cannot drift apart.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{ArgMatches, Args, Command};
use riffle_config::text_option;
use riffle_config::values::{Bounded, Listen, OnOff};
use riffle_console::ConsoleOptions;
use riffle_firehose::FirehoseOptions;
use riffle_kinesis::KinesisOptions;
use riffle_lambda::{FunctionTable, FunctionsConfig, LambdaError};
use riffle_log::FsyncPolicy;
use riffle_server::{EDGE_OPTION_TABLES, EdgeOptions, OptionsError, TlsFiles};
use serde::{Deserialize, Serialize};

/// Default listen address: the port local Kinesis emulators use.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:4567";
pub const DATA_DIR_DEFAULT: &str = "./riffle-data";
/// A status delay beyond an hour would leave streams unusable; it is a typo.
const STATUS_DELAY_MS_MAX: u64 = 3_600_000;
/// Syncing less often than once a minute defeats the point of `interval`.
const FSYNC_INTERVAL_MS_MAX: u64 = 60_000;

/// Every option of `riffle serve`. The server-wide ones are declared here;
/// each service's and the edge's come from their crates, flattened.
#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
pub struct ServeArgs {
    /// Address for HTTP/1.1 and HTTP/2 clients; port 0 picks a free one
    #[arg(long, env = "RIFFLE_LISTEN", value_name = "ADDR", default_value = LISTEN_DEFAULT)]
    pub listen: Listen,
    /// Where every shard's log and the metadata live; created if missing
    #[arg(long, env = "RIFFLE_DATA_DIR", value_name = "DIR", default_value = DATA_DIR_DEFAULT)]
    pub data_dir: DataDir,
    /// When records are forced to disk before they are acknowledged
    #[arg(
        long,
        env = "RIFFLE_FSYNC",
        value_name = "always|interval:MS|never",
        default_value = "always"
    )]
    pub fsync: Fsync,
    /// Refuse writes while the data directory's disk has fewer bytes free
    /// (a reserve for the journal and the metadata store); 0 turns it off
    #[arg(
        long,
        env = "RIFFLE_DISK_FREE_MIN",
        value_name = "BYTES",
        default_value_t = riffle_log::DISK_FREE_MIN_DEFAULT
    )]
    pub disk_free_min: u64,
    /// AWS region used in ARNs
    #[arg(
        long,
        env = "RIFFLE_REGION",
        value_name = "R",
        default_value = "us-east-1"
    )]
    pub region: Region,
    /// AWS account id used in ARNs and error messages
    #[arg(
        long,
        env = "RIFFLE_ACCOUNT_ID",
        value_name = "ID",
        default_value = "000000000000"
    )]
    pub account_id: AccountId,
    /// How long streams stay CREATING/UPDATING/DELETING, in ms; 0 for tests
    #[arg(
        long,
        env = "RIFFLE_STATUS_DELAY_MS",
        value_name = "MS",
        default_value = "500"
    )]
    pub status_delay_ms: Bounded<0, STATUS_DELAY_MS_MAX>,
    /// AWS's throughput limits: on, or off for raw speed
    #[arg(
        long,
        env = "RIFFLE_THROUGHPUT_LIMITS",
        value_name = "on|off",
        default_value = "on"
    )]
    pub throughput_limits: OnOff,
    /// Master key for encryption at rest [default: <data dir>/keys/master.key]
    #[arg(long, env = "RIFFLE_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    #[command(flatten)]
    #[serde(flatten)]
    pub kinesis: KinesisOptions,
    #[command(flatten)]
    #[serde(flatten)]
    pub edge: EdgeOptions,
    #[command(flatten)]
    #[serde(flatten)]
    pub firehose: FirehoseOptions,
    #[command(flatten)]
    #[serde(flatten)]
    pub console: ConsoleOptions,
    /// Lambda functions, from the config file only: `[functions.<name>]`
    /// tables (riffle-lambda's `config`; the README's "Functions").
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub functions: FunctionTable,
    /// TOML file with any of these options, by their names in snake_case
    /// (listen, data_dir, fsync, …)
    #[arg(long, env = "RIFFLE_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// The validated configuration of `riffle serve`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Every option, resolved.
    pub options: ServeArgs,
    /// The access keys whose SigV4 signatures are verified; empty accepts
    /// any credentials, as local emulators do.
    pub access_keys: AccessKeys,
    /// Serve HTTPS with this certificate and key; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
}

/// Access key id → secret access key. Its `Debug` shows the ids only, so a
/// logged configuration never leaks a secret.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AccessKeys(pub std::collections::BTreeMap<String, String>);

impl fmt::Debug for AccessKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A configuration error, naming the key and where its value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Layers(#[from] riffle_config::ConfigError),
    #[error(transparent)]
    Options(#[from] OptionsError),
    #[error(transparent)]
    Functions(#[from] LambdaError),
}

impl ServeConfig {
    /// Builds and validates the configuration from the `serve` subcommand
    /// clap parsed: `args` and its `matches` (to tell flags from variables
    /// from clap's defaults), `command` the subcommand itself.
    pub fn resolve(
        args: &ServeArgs,
        command: &Command,
        matches: &ArgMatches,
    ) -> Result<ServeConfig, ConfigError> {
        let tables: Vec<&str> = EDGE_OPTION_TABLES
            .into_iter()
            .chain(["functions"])
            .collect();
        let layers =
            riffle_config::resolve(args, command, matches, args.config.as_deref(), &tables)?;
        // The flattened parts first, so that a bad value is named by its key.
        layers.extract::<KinesisOptions>()?;
        layers.extract::<EdgeOptions>()?;
        layers.extract::<FirehoseOptions>()?;
        layers.extract::<ConsoleOptions>()?;
        let options: ServeArgs = layers.extract()?;
        let access_keys = AccessKeys(options.edge.access_keys()?);
        let tls = options.edge.tls_files()?;
        options.edge.ingest_keys()?;
        for (name, function) in &options.functions {
            function.spec(name)?;
        }
        Ok(ServeConfig {
            options: ServeArgs {
                config: args.config.clone(),
                ..options
            },
            access_keys,
            tls,
        })
    }

    /// The Data Streams service's settings.
    pub fn dynamodb(&self) -> riffle_dynamodb::DynamoConfig {
        riffle_dynamodb::DynamoConfig {
            region: self.options.region.0.clone(),
            account_id: self.options.account_id.0.clone(),
        }
    }

    /// The Glue catalog's: its default CatalogId is the account.
    pub fn glue(&self) -> riffle_glue::GlueConfig {
        riffle_glue::GlueConfig {
            account_id: self.options.account_id.0.clone(),
        }
    }

    pub fn kinesis(&self) -> riffle_kinesis::KinesisConfig {
        let o = &self.options;
        let mut config = riffle_kinesis::KinesisConfig {
            region: o.region.0.clone(),
            account_id: o.account_id.0.clone(),
            status_delay: o.status_delay_ms.millis(),
            throughput_limits: o.throughput_limits.0,
            ..riffle_kinesis::KinesisConfig::default()
        };
        o.kinesis.apply(&mut config);
        config
    }
}

impl ServeConfig {
    /// Where event source mappings live, for their ARNs.
    pub fn triggers(&self) -> riffle_triggers::TriggersConfig {
        riffle_triggers::TriggersConfig {
            region: self.options.region.0.clone(),
            account_id: self.options.account_id.0.clone(),
        }
    }

    /// The function registry's settings: `[functions]`, and the region and
    /// account of the ARNs functions are told they were invoked as.
    pub fn functions(&self) -> FunctionsConfig {
        FunctionsConfig {
            region: self.options.region.0.clone(),
            account_id: self.options.account_id.0.clone(),
            functions: self.options.functions.clone(),
        }
    }

    /// The Firehose service's settings: the server-wide ones.
    pub fn firehose(&self) -> riffle_firehose::FirehoseConfig {
        let o = &self.options;
        riffle_firehose::FirehoseConfig {
            region: o.region.0.clone(),
            account_id: o.account_id.0.clone(),
            status_delay: o.status_delay_ms.millis(),
            throughput_limits: o.throughput_limits.0,
            ..riffle_firehose::FirehoseConfig::default()
        }
    }
}

/// `always`, `never` or `interval:MS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fsync(pub FsyncPolicy);

impl FromStr for Fsync {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let policy = match text {
            "always" => Some(FsyncPolicy::Always),
            "never" => Some(FsyncPolicy::Never),
            _ => text
                .strip_prefix("interval:")
                .and_then(|ms| ms.parse::<Bounded<1, FSYNC_INTERVAL_MS_MAX>>().ok())
                .map(|ms| FsyncPolicy::Interval(ms.millis())),
        };
        policy.map(Fsync).ok_or_else(|| {
            format!("expected always, never or interval:MS with MS in 1..=60000, got {text:?}")
        })
    }
}

impl fmt::Display for Fsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::Never => f.write_str("never"),
            FsyncPolicy::Interval(every) => write!(f, "interval:{}", every.as_millis()),
        }
    }
}

text_option!(Fsync);

/// A directory path that is not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir(pub PathBuf);

impl FromStr for DataDir {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err(format!("expected a directory path, got {text:?}"));
        }
        Ok(DataDir(PathBuf::from(text)))
    }
}

impl fmt::Display for DataDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.display().fmt(f)
    }
}

text_option!(DataDir);

/// AWS region names: lower-case letters, digits and dashes, e.g. `eu-west-3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region(pub String);

impl FromStr for Region {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let ok = (1..=32).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !text.starts_with('-')
            && !text.ends_with('-');
        if ok {
            Ok(Region(text.to_owned()))
        } else {
            Err(format!(
                "expected an AWS region name such as us-east-1, got {text:?}"
            ))
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

text_option!(Region);

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountId(pub String);

impl FromStr for AccountId {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(text.to_owned()))
        } else {
            Err(format!("expected 12 digits, got {text:?}"))
        }
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

text_option!(AccountId);

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use clap::FromArgMatches;

    use super::*;

    /// Parses `serve` arguments the way the binary does (clap, then the
    /// layers), with `file` as the config file's text if given. Errors of
    /// either step come back as their text.
    fn resolve(argv: &[&str], file: Option<&str>) -> Result<ServeConfig, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("riffle.toml");
        let mut argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        argv.insert(0, "serve".into());
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
            argv.extend(["--config".into(), path.display().to_string()]);
        }
        let command = ServeArgs::augment_args(Command::new("serve"));
        let matches = command
            .clone()
            .try_get_matches_from(argv)
            .map_err(|e| e.to_string())?;
        let args = ServeArgs::from_arg_matches(&matches).unwrap();
        ServeConfig::resolve(&args, &command, &matches).map_err(|e| e.to_string())
    }

    #[test]
    fn no_options_give_the_documented_defaults() {
        let config = resolve(&[], None).unwrap();
        let o = &config.options;
        assert_eq!(o.listen.0, "127.0.0.1:4567".parse().unwrap());
        assert_eq!(o.data_dir.0, PathBuf::from("./riffle-data"));
        assert_eq!(o.fsync.0, FsyncPolicy::Always);
        assert_eq!(
            (o.region.0.as_str(), o.account_id.0.as_str()),
            ("us-east-1", "000000000000")
        );
        let kinesis = config.kinesis();
        assert_eq!(kinesis.status_delay, Duration::from_millis(500));
        assert_eq!(kinesis.iterator_ttl, Duration::from_secs(300));
        assert!(kinesis.throughput_limits);
        assert_eq!(kinesis.on_demand_scale_interval, Duration::from_secs(60));
        assert_eq!(kinesis.shard_count_updates_per_day, 10);
        assert_eq!(o.master_key_file, None);
        assert_eq!(o.edge.metrics_listen.0, None);
        assert_eq!(
            (&o.edge.audit_log, o.edge.audit_data_events.0),
            (&None, false)
        );
        assert!(config.access_keys.0.is_empty());
        assert_eq!(config.tls, None);
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let file = "listen = \"127.0.0.1:9000\"\nfsync = \"interval:50\"\nregion = \"eu-west-3\"\n\
                    status_delay_ms = 0\nmaster_key_file = \"/etc/riffle/file.key\"\n\
                    on_demand_scale_interval_ms = 5\n";
        let config = resolve(
            &[
                "--region",
                "ap-south-1",
                "--on-demand-scale-interval-ms",
                "7",
            ],
            Some(file),
        )
        .unwrap();
        let o = &config.options;
        assert_eq!(o.listen.0.port(), 9000);
        assert_eq!(o.fsync.0, FsyncPolicy::Interval(Duration::from_millis(50)));
        assert_eq!(o.region.0, "ap-south-1");
        assert_eq!(o.status_delay_ms.0, 0);
        assert_eq!(o.account_id.0, "000000000000");
        assert_eq!(
            o.master_key_file,
            Some(PathBuf::from("/etc/riffle/file.key"))
        );
        // A service's option is layered the same way as the server's.
        assert_eq!(
            config.kinesis().on_demand_scale_interval,
            Duration::from_millis(7)
        );
    }

    #[test]
    fn file_values_go_through_the_parsers_flags_do() {
        for (text, expected) in [
            ("throughput_limits = false\n", false),
            ("throughput_limits = \"off\"\n", false),
            ("throughput_limits = true\n", true),
        ] {
            let config = resolve(&[], Some(text)).unwrap();
            assert_eq!(config.options.throughput_limits.0, expected, "{text}");
        }
        let err = resolve(&[], Some("region = \"US EAST\"\n")).unwrap_err();
        assert!(
            err.starts_with("invalid `region` (from config file "),
            "{err}"
        );
        assert!(
            err.contains("expected an AWS region name such as us-east-1, got \"US EAST\""),
            "{err}"
        );
        let err = resolve(&[], Some("shard_iterator_ttl_ms = 0\n")).unwrap_err();
        assert!(
            err.starts_with("invalid `shard_iterator_ttl_ms` (from config file "),
            "{err}"
        );
        assert!(err.contains("1..=86400000"), "{err}");
        let err = resolve(&[], Some("fsync = \"sometimes\"\n")).unwrap_err();
        assert!(
            err.contains("expected always, never or interval:MS"),
            "{err}"
        );
    }

    #[test]
    fn invalid_flag_values_are_refused_naming_the_flag_and_the_reason() {
        for (argv, reason) in [
            (
                &["--fsync", "sometimes"][..],
                "expected always, never or interval:MS",
            ),
            (&["--account-id", "123"], "expected 12 digits"),
            (&["--listen", "nope"], "expected HOST:PORT"),
            (&["--shard-iterator-ttl-ms", "0"], "1..=86400000"),
            (&["--status-delay-ms", "999999999"], "0..=3600000"),
            (&["--throughput-limits", "maybe"], "expected on or off"),
            (&["--metrics-listen", "nowhere"], "or off"),
            (&["--audit-data-events", "sometimes"], "expected on or off"),
            (&["--data-dir", " "], "expected a directory path"),
        ] {
            let err = resolve(argv, None).unwrap_err();
            assert!(
                err.contains(argv[0]) && err.contains(reason),
                "{argv:?}: {err}"
            );
        }
    }

    #[test]
    fn a_config_file_with_an_unknown_key_is_refused_naming_it() {
        let err = resolve(&[], Some("fsnyc = \"always\"\n")).unwrap_err();
        assert!(err.contains("unknown key `fsnyc`"), "{err}");
        assert!(err.contains("fsync"), "the known keys are listed: {err}");
        // `config` names the file; it is not a key of it.
        assert!(resolve(&[], Some("config = \"x\"\n")).is_err());
    }

    #[test]
    fn every_flag_parsed_by_clap_reaches_the_config() {
        let config = resolve(
            &[
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
                "--update-shard-count-per-day",
                "3",
                "--master-key-file",
                "/k",
                "--metrics-listen",
                "127.0.0.1:9464",
                "--audit-log",
                "/a.jsonl",
                "--audit-data-events",
                "on",
            ],
            None,
        )
        .unwrap();
        let o = &config.options;
        assert_eq!(o.listen.0.port(), 0);
        assert_eq!(o.data_dir.0, PathBuf::from("/tmp/x"));
        assert_eq!(o.fsync.0, FsyncPolicy::Never);
        assert_eq!(
            (o.region.0.as_str(), o.account_id.0.as_str()),
            ("eu-west-1", "123456789012")
        );
        let kinesis = config.kinesis();
        assert_eq!(kinesis.status_delay, Duration::from_millis(7));
        assert_eq!(kinesis.iterator_ttl, Duration::from_millis(9));
        assert!(!kinesis.throughput_limits);
        assert_eq!(kinesis.on_demand_scale_interval, Duration::ZERO);
        assert_eq!(kinesis.shard_count_updates_per_day, 3);
        assert_eq!(o.master_key_file, Some(PathBuf::from("/k")));
        assert_eq!(
            o.edge.metrics_listen.0,
            Some("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(o.edge.audit_log, Some(PathBuf::from("/a.jsonl")));
        assert!(o.edge.audit_data_events.0);
    }

    #[test]
    fn access_keys_come_from_the_flags_the_file_and_its_table() {
        let config = resolve(
            &[
                "--access-key-id",
                "AKIDFLAG",
                "--secret-access-key",
                "s3cret",
            ],
            None,
        )
        .unwrap();
        let expected = BTreeMap::from([("AKIDFLAG".to_owned(), "s3cret".to_owned())]);
        assert_eq!(config.access_keys.0, expected);
        assert_eq!(format!("{:?}", config.access_keys), r#"{"AKIDFLAG"}"#);

        let file = "access_key_id = \"AKIDFILE\"\nsecret_access_key = \"a\"\n\n[credentials]\nAKIDTABLE = \"b\"\n";
        let from_file = resolve(&[], Some(file)).unwrap();
        let ids: Vec<&str> = from_file.access_keys.0.keys().map(String::as_str).collect();
        assert_eq!(ids, ["AKIDFILE", "AKIDTABLE"]);
        // The flags' pair replaces the file's pair, not its table.
        let both = resolve(
            &["--access-key-id", "AKIDFLAG", "--secret-access-key", "c"],
            Some(file),
        )
        .unwrap();
        let ids: Vec<&str> = both.access_keys.0.keys().map(String::as_str).collect();
        assert_eq!(ids, ["AKIDFLAG", "AKIDTABLE"]);
    }

    #[test]
    fn half_a_key_or_a_bad_key_id_is_refused_without_echoing_secrets() {
        let half = resolve(&["--secret-access-key", "hidden"], None).unwrap_err();
        assert_eq!(
            half,
            "`secret_access_key` is set but `access_key_id` is not: give both, or neither to accept any credentials"
        );
        let bad = resolve(&[], Some("[credentials]\n\"AKID/X\" = \"hidden\"\n")).unwrap_err();
        assert!(bad.contains("invalid access key id \"AKID/X\""), "{bad}");
        assert!(!bad.contains("hidden"), "{bad}");
    }

    #[test]
    fn policies_name_files_for_keys_the_server_verifies() {
        let file =
            "[credentials]\nAKIDBOB = \"b\"\n\n[policies]\nAKIDBOB = \"/etc/riffle/bob.json\"\n";
        let config = resolve(&[], Some(file)).unwrap();
        assert_eq!(
            config.options.edge.policies,
            BTreeMap::from([("AKIDBOB".to_owned(), PathBuf::from("/etc/riffle/bob.json"))])
        );
        let err = resolve(&[], Some("[policies]\nAKIDEVE = \"/e.json\"\n")).unwrap_err();
        assert_eq!(
            err,
            "`[policies]` names access key \"AKIDEVE\", which is not one of the server's keys (none are configured): policies apply to verified keys only"
        );
    }

    #[test]
    fn functions_come_from_the_files_functions_table_and_are_checked() {
        let file = "[functions.transform]\ncommand = [\"python3\", \"-m\", \"awslambdaric\", \"app.handler\"]\ntimeout_seconds = 60\n\n[functions.remote]\nurl = \"http://127.0.0.1:9000/2015-03-31/functions/function/invocations\"\n";
        let config = resolve(&[], Some(file)).unwrap();
        let functions = config.functions();
        assert_eq!(functions.region, "us-east-1");
        let names: Vec<&str> = functions.functions.keys().map(String::as_str).collect();
        assert_eq!(names, ["remote", "transform"]);
        assert_eq!(functions.functions["transform"].timeout_seconds, Some(60));
        let bad = resolve(
            &[],
            Some("[functions.f]\ncommand = [\"x\"]\ntimeout_seconds = 901\n"),
        )
        .unwrap_err();
        assert_eq!(
            bad,
            "invalid [functions.f]: `timeout_seconds` is 901; it must be 1 to 900"
        );
        let typo =
            resolve(&[], Some("[functions.f]\ncommand = [\"x\"]\ntimeout = 5\n")).unwrap_err();
        assert!(typo.contains("timeout"), "{typo}");
    }

    #[test]
    fn ingest_keys_come_from_the_files_table_and_are_checked() {
        let file = "ingest_listen = \"127.0.0.1:0\"\n[ingest_keys.web]\nkey = \"abcdefghij0123456789\"\nstreams = [\"clicks\"]\nrate_limit = 2.5\n";
        let config = resolve(&[], Some(file)).unwrap();
        let web = &config.options.edge.ingest_keys["web"];
        assert_eq!(web.streams, ["clicks"]);
        assert_eq!((web.rate_limit, web.burst_limit), (Some(2.5), None));
        assert!(config.options.edge.ingest_listen.0.is_some());
        let short = resolve(
            &[],
            Some("[ingest_keys.w]\nkey = \"short\"\nstreams = [\"*\"]\n"),
        )
        .unwrap_err();
        assert_eq!(
            short,
            "invalid [ingest_keys.w]: `key` must be 20 to 128 letters and digits (API Gateway's API key values)"
        );
        let twice = "[ingest_keys.a]\nkey = \"abcdefghij0123456789\"\nstreams = [\"*\"]\n[ingest_keys.b]\nkey = \"abcdefghij0123456789\"\nstreams = [\"*\"]\n";
        assert_eq!(
            resolve(&[], Some(twice)).unwrap_err(),
            "invalid [ingest_keys.b]: its `key` is another key's too"
        );
        let no_rate =
            "[ingest_keys.a]\nkey = \"abcdefghij0123456789\"\nstreams = [\"*\"]\nburst_limit = 3\n";
        assert_eq!(
            resolve(&[], Some(no_rate)).unwrap_err(),
            "invalid [ingest_keys.a]: `burst_limit` is set without `rate_limit`"
        );
    }

    #[test]
    fn tls_files_come_as_a_pair() {
        let config = resolve(&["--tls-cert", "/c.pem", "--tls-key", "/k.pem"], None).unwrap();
        let expected = TlsFiles {
            cert: "/c.pem".into(),
            key: "/k.pem".into(),
        };
        assert_eq!(config.tls, Some(expected));
        let half = resolve(&[], Some("tls_key = \"/k.pem\"\n")).unwrap_err();
        assert_eq!(
            half,
            "`tls_key` is set but `tls_cert` is not: give both to serve HTTPS, or neither"
        );
        let mixed = resolve(&["--tls-cert", "/c.pem"], Some("tls_key = \"/k.pem\"\n")).unwrap();
        assert_eq!(mixed.tls.unwrap().key, PathBuf::from("/k.pem"));
    }

    #[test]
    fn the_free_space_floor_comes_from_flag_file_or_default() {
        assert_eq!(
            resolve(&[], None).unwrap().options.disk_free_min,
            64 * 1024 * 1024
        );
        let file = "disk_free_min = 1048576\n";
        assert_eq!(
            resolve(&[], Some(file)).unwrap().options.disk_free_min,
            1 << 20
        );
        assert_eq!(
            resolve(&["--disk-free-min", "0"], Some(file))
                .unwrap()
                .options
                .disk_free_min,
            0
        );
        let err = resolve(&[], Some("disk_free_min = \"64MiB\"\n")).unwrap_err();
        assert!(
            err.starts_with("invalid `disk_free_min` (from config file "),
            "{err}"
        );
    }

    #[test]
    fn cors_is_on_unless_turned_off_by_flag_or_file() {
        assert!(resolve(&[], None).unwrap().options.edge.cors.0);
        assert!(
            !resolve(&["--cors", "off"], None)
                .unwrap()
                .options
                .edge
                .cors
                .0
        );
        for (text, expected) in [
            ("cors = false\n", false),
            ("cors = \"off\"\n", false),
            ("cors = \"on\"\n", true),
        ] {
            assert_eq!(
                resolve(&[], Some(text)).unwrap().options.edge.cors.0,
                expected,
                "{text}"
            );
        }
        assert!(
            resolve(&["--cors", "on"], Some("cors = false\n"))
                .unwrap()
                .options
                .edge
                .cors
                .0
        );
        let err = resolve(&["--cors", "maybe"], None).unwrap_err();
        assert!(
            err.contains("--cors") && err.contains("expected on or off, got \"maybe\""),
            "{err}"
        );
    }

    #[test]
    fn fsync_policies_round_trip_through_their_text() {
        for text in ["always", "never", "interval:1", "interval:60000"] {
            assert_eq!(text.parse::<Fsync>().unwrap().to_string(), text);
        }
        for bad in ["interval:0", "interval:60001", "interval:", "sometimes"] {
            assert!(bad.parse::<Fsync>().is_err(), "{bad}");
        }
    }

    /// The README's options table is the user's reference: each declared
    /// option has its row with its flag, variable, key and default.
    #[test]
    fn the_readme_options_table_documents_every_declared_option() {
        let readme = include_str!("../../../README.md");
        let command = ServeArgs::augment_args(Command::new("serve"));
        let rows = riffle_config::options_table(&command);
        assert!(rows.len() >= 15, "{rows:?}");
        for row in rows.iter().filter(|r| !r.hidden) {
            let line = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{}", row.flag)))
                .unwrap_or_else(|| panic!("README has no options row for {}", row.flag));
            assert!(line.contains(&format!("`{}`", row.env)), "{line}");
            let key = if row.key == "config" {
                "—".to_owned()
            } else {
                format!("`{}`", row.key)
            };
            assert!(line.contains(&key), "{line}");
            if let Some(default) = &row.default {
                assert!(
                    line.contains(&format!("`{default}`")),
                    "{} default {default}: {line}",
                    row.flag
                );
            }
        }
    }
}
