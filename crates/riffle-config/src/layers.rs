//! The layering of option sources: defaults < config file < environment
//! variables < flags.
//!
//! clap already ranks flags above environment variables above defaults;
//! what it cannot place is the config file, which sits between the
//! environment and the defaults. So the struct clap parsed is split back
//! into its sources (clap records where each value came from), the file is
//! laid between them, and figment merges the layers and deserializes the
//! struct again. Every layer is named, so an error says where the value it
//! refuses came from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why the options could not be resolved; each names the key and, for a
/// value, where it came from.
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
    /// A key no option declares: a typo must not silently leave a default.
    #[error("invalid config file {path}: unknown key `{key}`; the keys are {known}")]
    UnknownKey {
        path: PathBuf,
        key: String,
        known: String,
    },
    #[error("invalid `{key}` ({origin}): {reason}")]
    Invalid {
        key: String,
        origin: Origin,
        reason: String,
    },
}

/// Where an option's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag(String),
    Env(String),
    File(PathBuf),
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "from flag --{flag}"),
            Origin::Env(var) => write!(f, "from environment variable {var}"),
            Origin::File(path) => write!(f, "from config file {}", path.display()),
            Origin::Default => f.write_str("the default"),
        }
    }
}

/// Where each key's value came from, for checks made after resolution
/// (e.g. two options that must be given together).
#[derive(Debug, Clone, Default)]
pub struct Origins(BTreeMap<String, Origin>);

impl Origins {
    pub fn of(&self, key: &str) -> Origin {
        self.0.get(key).cloned().unwrap_or(Origin::Default)
    }
}

/// The merged layers of a command's options, ready to be read as typed
/// structs.
pub struct Layers {
    figment: Figment,
    origins: Origins,
}

impl Layers {
    /// Reads `U` (the whole options struct, or one of the structs it
    /// flattens) from the merged layers.
    ///
    /// serde loses the key of an error inside a `#[serde(flatten)]`ed
    /// struct, so read each flattened struct on its own before the whole:
    /// then a bad value is reported with its key.
    pub fn extract<U: DeserializeOwned>(&self) -> Result<U, ConfigError> {
        self.figment
            .extract::<U>()
            .map_err(|err| invalid(err, &self.origins.0))
    }

    /// Where each value came from.
    pub fn origins(&self) -> &Origins {
        &self.origins
    }
}

/// Layers the options of `parsed`. `parsed` is what clap parsed from
/// `matches` (flags, environment and clap's defaults); `command` is the
/// command it was parsed by, whose arguments are the keys a file may set,
/// besides `tables` (file-only settings such as `[credentials]`). The
/// `config` argument itself is never a key.
pub fn resolve<T: Serialize>(
    parsed: &T,
    command: &Command,
    matches: &ArgMatches,
    file: Option<&Path>,
    tables: &[&str],
) -> Result<Layers, ConfigError> {
    let names = ArgNames::of(command);
    let values = match Value::serialize(parsed) {
        Ok(Value::Dict(_, dict)) => dict,
        // An options struct serializes to a map; anything else is a bug in
        // its declaration, reported as such rather than panicking.
        other => {
            return Err(ConfigError::Invalid {
                key: "*".to_owned(),
                origin: Origin::Default,
                reason: format!("the options do not serialize to a map: {other:?}"),
            });
        }
    };
    let mut layers = [Dict::new(), Dict::new(), Dict::new()]; // defaults, env, flags
    let mut origins = BTreeMap::new();
    for (key, value) in values {
        let source = names
            .env
            .contains_key(&key)
            .then(|| matches.value_source(&key))
            .flatten();
        let (layer, origin) = match source {
            Some(ValueSource::EnvVariable) => (1, Origin::Env(names.env[&key].clone())),
            Some(ValueSource::CommandLine) => (2, Origin::Flag(names.flag[&key].clone())),
            _ => (0, Origin::Default),
        };
        if layer > 0 {
            origins.insert(key.clone(), origin);
        }
        layers[layer].insert(key, value);
    }
    let [defaults, env, flags] = layers;

    let mut figment = Figment::from(Layer::new("defaults", defaults, |_| Origin::Default));
    if let Some(path) = file {
        let table = read_table(path, &names, tables)?;
        for key in table.keys() {
            origins
                .entry(key.clone())
                .or_insert_with(|| Origin::File(path.to_owned()));
        }
        let owned = path.to_owned();
        figment = figment.merge(Layer::new(
            &format!("config file {}", path.display()),
            table,
            move |_| Origin::File(owned.clone()),
        ));
    }
    let env_names = names.env.clone();
    let flag_names = names.flag.clone();
    figment = figment
        .merge(Layer::new("environment variables", env, move |key| {
            Origin::Env(env_names.get(key).cloned().unwrap_or_default())
        }))
        .merge(Layer::new("flags", flags, move |key| {
            Origin::Flag(flag_names.get(key).cloned().unwrap_or_default())
        }));
    Ok(Layers {
        figment,
        origins: Origins(origins),
    })
}

/// The file as a table, every key one an option declares.
fn read_table(path: &Path, names: &ArgNames, tables: &[&str]) -> Result<Dict, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|source| ConfigError::ParseFile {
        path: path.to_owned(),
        source: Box::new(source),
    })?;
    for key in table.keys() {
        if !names.env.contains_key(key) && !tables.contains(&key.as_str()) {
            let mut known: Vec<&str> = names.env.keys().map(String::as_str).collect();
            known.extend(tables);
            known.sort_unstable();
            return Err(ConfigError::UnknownKey {
                path: path.to_owned(),
                key: key.clone(),
                known: known.join(", "),
            });
        }
    }
    match Value::serialize(&table) {
        Ok(Value::Dict(_, dict)) => Ok(dict),
        _ => Ok(Dict::new()), // a toml::Table always serializes to a map
    }
}

/// Turns figment's error into one that names the key and its origin.
fn invalid(err: figment::Error, origins: &BTreeMap<String, Origin>) -> ConfigError {
    let key = err.path.first().cloned().unwrap_or_default();
    let origin = origins.get(&key).cloned().unwrap_or(Origin::Default);
    ConfigError::Invalid {
        reason: err.kind.to_string(),
        key,
        origin,
    }
}

/// The flag and environment variable of each argument id (the id is the
/// field's name, and so the file's key).
struct ArgNames {
    flag: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
}

impl ArgNames {
    fn of(command: &Command) -> ArgNames {
        let mut flag = BTreeMap::new();
        let mut env = BTreeMap::new();
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            // `--config` names the file; it is not a setting of its own.
            if id == "config" || id == "help" || id == "version" {
                continue;
            }
            if let Some(long) = arg.get_long() {
                flag.insert(id.to_owned(), long.to_owned());
            }
            let var = arg
                .get_env()
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default();
            env.insert(id.to_owned(), var);
        }
        ArgNames { flag, env }
    }
}

/// One named layer of values.
struct Layer {
    name: String,
    dict: Dict,
    origin: std::sync::Arc<dyn Fn(&str) -> Origin + Send + Sync>,
}

impl Layer {
    fn new(
        name: &str,
        dict: Dict,
        origin: impl Fn(&str) -> Origin + Send + Sync + 'static,
    ) -> Layer {
        Layer {
            name: name.to_owned(),
            dict,
            origin: std::sync::Arc::new(origin),
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        let origin = self.origin.clone();
        Metadata::named(self.name.clone()).interpolater(move |_: &Profile, keys: &[&str]| {
            origin(keys.first().copied().unwrap_or("")).to_string()
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// One row of the options table: what the README documents per option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionRow {
    /// `--listen`.
    pub flag: String,
    /// `RIFFLE_LISTEN`.
    pub env: String,
    /// The config file's key: `listen`.
    pub key: String,
    /// The default as clap shows it, if there is one.
    pub default: Option<String>,
    /// Hidden options (for tests) are not documented.
    pub hidden: bool,
}

/// Every option of `command` (except `--config` and help), in declaration
/// order: the source the README's options table is checked against.
pub fn options_table(command: &Command) -> Vec<OptionRow> {
    command
        .get_arguments()
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .filter_map(|arg| {
            Some(OptionRow {
                flag: format!("--{}", arg.get_long()?),
                env: arg.get_env()?.to_string_lossy().into_owned(),
                key: arg.get_id().as_str().to_owned(),
                default: arg
                    .get_default_values()
                    .first()
                    .map(|v| v.to_string_lossy().into_owned()),
                hidden: arg.is_hide_set(),
            })
        })
        .collect()
}
