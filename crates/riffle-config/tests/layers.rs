//! The layering with a small options struct of its own: flags beat the
//! file, the file beats the defaults, unknown keys are refused, and a bad
//! value is named by its key and origin, also inside a flattened struct.

use clap::{Args, Command, FromArgMatches};
use riffle_config::values::{Bounded, OnOff};
use riffle_config::{ConfigError, Origin};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
struct Options {
    /// A number
    #[arg(long, env = "RIFFLE_TEST_LAYERS_NUMBER", default_value = "5")]
    number: Bounded<1, 10>,
    #[command(flatten)]
    #[serde(flatten)]
    inner: Inner,
}

#[derive(Debug, Clone, PartialEq, Args, Serialize, Deserialize)]
struct Inner {
    /// A switch
    #[arg(long, env = "RIFFLE_TEST_LAYERS_SWITCH", default_value = "off")]
    switch: OnOff,
}

fn resolve(argv: &[&str], file: Option<&str>) -> Result<Options, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("options.toml");
    if let Some(text) = file {
        std::fs::write(&path, text).unwrap();
    }
    let command = Options::augment_args(Command::new("test"));
    let matches = command
        .clone()
        .try_get_matches_from(std::iter::once("test").chain(argv.iter().copied()))
        .unwrap();
    let parsed = Options::from_arg_matches(&matches).unwrap();
    let layers = riffle_config::resolve(
        &parsed,
        &command,
        &matches,
        file.map(|_| path.as_path()),
        &[],
    )?;
    layers.extract::<Inner>()?;
    layers.extract()
}

#[test]
fn flags_beat_the_file_which_beats_the_defaults() {
    let defaults = resolve(&[], None).unwrap();
    assert_eq!(
        (defaults.number, defaults.inner.switch),
        (Bounded(5), OnOff(false))
    );
    let from_file = resolve(&[], Some("number = 7\nswitch = true\n")).unwrap();
    assert_eq!(
        (from_file.number, from_file.inner.switch),
        (Bounded(7), OnOff(true))
    );
    let from_flag = resolve(&["--number", "9"], Some("number = 7\n")).unwrap();
    assert_eq!(from_flag.number, Bounded(9));
}

#[test]
fn a_bad_file_value_is_named_by_key_and_file_even_when_flattened() {
    for (text, key) in [
        ("number = 11\n", "number"),
        ("switch = \"maybe\"\n", "switch"),
    ] {
        match resolve(&[], Some(text)) {
            Err(ConfigError::Invalid {
                key: got,
                origin: Origin::File(_),
                reason,
            }) => {
                assert_eq!(got, key, "{reason}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn an_unknown_key_in_the_file_is_refused_with_the_known_ones() {
    match resolve(&[], Some("numbr = 3\n")) {
        Err(ConfigError::UnknownKey { key, known, .. }) => {
            assert_eq!(key, "numbr");
            assert_eq!(known, "number, switch");
        }
        other => panic!("{other:?}"),
    }
}
