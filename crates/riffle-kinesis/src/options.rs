//! The options of the Data Streams service, as `riffle serve` takes them
//! (flag, environment variable, config-file key, default and help, each
//! declared once here; see `riffle-config`).

use riffle_config::values::Bounded;
use serde::{Deserialize, Serialize};

use crate::KinesisConfig;

/// Iterator lifetimes past a day make no sense even for debugging.
const SHARD_ITERATOR_TTL_MS_MAX: u64 = 86_400_000;
/// Scaling less often than daily would never keep up with traffic.
const ON_DEMAND_SCALE_INTERVAL_MS_MAX: u64 = 86_400_000;

/// `riffle serve`'s Data Streams options.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct KinesisOptions {
    /// Lifetime of shard iterators in ms (AWS: 5 minutes; lets tests reach
    /// ExpiredIteratorException)
    #[arg(
        long,
        env = "RIFFLE_SHARD_ITERATOR_TTL_MS",
        value_name = "MS",
        default_value = "300000",
        hide = true
    )]
    pub shard_iterator_ttl_ms: Bounded<1, SHARD_ITERATOR_TTL_MS_MAX>,
    /// How often ON_DEMAND streams are rescaled by their traffic, in ms; 0
    /// turns on-demand scaling off
    #[arg(
        long,
        env = "RIFFLE_ON_DEMAND_SCALE_INTERVAL_MS",
        value_name = "MS",
        default_value = "60000"
    )]
    pub on_demand_scale_interval_ms: Bounded<0, ON_DEMAND_SCALE_INTERVAL_MS_MAX>,
    /// UpdateShardCount calls one stream may make in a rolling 24 hours
    /// (AWS's quota); 0 lifts the quota
    #[arg(
        long,
        env = "RIFFLE_UPDATE_SHARD_COUNT_PER_DAY",
        value_name = "N",
        default_value = "10"
    )]
    pub update_shard_count_per_day: Bounded<0, { u32::MAX as u64 }>,
}

impl KinesisOptions {
    /// Sets the service settings these options govern.
    pub fn apply(&self, config: &mut KinesisConfig) {
        config.iterator_ttl = self.shard_iterator_ttl_ms.millis();
        config.on_demand_scale_interval = self.on_demand_scale_interval_ms.millis();
        // In range by the type's bound.
        config.shard_count_updates_per_day = self.update_shard_count_per_day.0 as u32;
    }
}
