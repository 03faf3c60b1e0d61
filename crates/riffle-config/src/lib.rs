//! `riffle-config`: every option of `riffle serve` declared once.
//!
//! An option is one field of an options struct that derives `clap::Args`
//! and serde. The clap attributes give its flag, its environment variable,
//! its default and its help text; the field's name is its key in the TOML
//! file. Each service crate owns the struct of its own options, and the
//! binary flattens them into one command. [`resolve`] then fills the
//! struct from, in precedence order, flags, environment variables, the
//! config file and the defaults, and a bad value is reported with its key
//! and where it came from.
//!
//! The value types in [`values`] parse the same text from a flag, a
//! variable or the file, so a value means the same wherever it is given.
//! [`options_table`] lists the declared options, so the README's table is
//! checked against them rather than kept by hand.

mod layers;
pub mod values;

pub use layers::{ConfigError, Layers, OptionRow, Origin, Origins, options_table, resolve};
