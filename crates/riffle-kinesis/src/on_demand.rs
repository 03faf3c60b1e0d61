//! On-demand capacity: ON_DEMAND streams scale out by splitting hot shards
//! and back in by merging cold neighbours.
//!
//! # Policy
//!
//! AWS gives a new on-demand stream 4 MiB/s and 4,000 records/s of write
//! capacity and scales it to twice the peak of the previous 30 days
//! ("On-demand mode features and use cases"); each shard keeps the
//! provisioned per-shard limits. Riffle's on-demand stream starts with 4
//! shards (the same initial capacity) and, every scale interval
//! (`KinesisConfig::on_demand_scale_interval`, a minute by default), splits the
//! hottest open shard of each ACTIVE on-demand stream at the middle of its
//! hash range when, over that interval, the shard took at least
//! [`HOT_PERCENT`] of its write capacity (bytes or records) or refused a
//! record for throughput. One split per stream per interval keeps growth
//! gradual, like AWS's doubling of headroom over a peak; the account's
//! shard limit still applies. The split is an ordinary reshard (see
//! `reshard`): the stream is UPDATING for the status delay, records keep
//! flowing, and readers see parents and children as after SplitShard.
//!
//! Traffic is measured by the throughput buckets, so with
//! `throughput_limits` off nothing is ever hot: a raw-speed server keeps
//! its on-demand streams' shards as they are.
//!
//! When no shard is hot, a stream with more than its initial
//! [`SCALE_IN_FLOOR`] open shards scales back in: the two adjacent open
//! shards (neighbouring hash ranges) that together took the least of their
//! write capacity are merged when each took less than [`COLD_PERCENT`] of
//! it over the interval, neither refused a record, and both have been open
//! for at least [`MERGE_AFTER_INTERVALS`] intervals (so a split is not
//! undone by the next quiet interval: AWS scales in gradually). At most one
//! split or merge per stream per interval, and never below
//! [`SCALE_IN_FLOOR`] open shards. The merge is an ordinary reshard, as
//! after MergeShards. With `throughput_limits` off traffic is not measured,
//! so nothing is merged either.

use std::time::Duration;

use tracing::{debug, warn};

use crate::catalog::{Status, StreamMode};
use crate::stream::Stream;
use crate::throttle::{WRITE_BYTES_PER_SEC, WRITE_RECORDS_PER_SEC};
use crate::time::now_ms;
use crate::{Kinesis, KinesisError, reshard};

/// How often on-demand streams are looked at, and the window their shards'
/// traffic is measured over, unless `KinesisConfig::on_demand_scale_interval`
/// says otherwise. A minute smooths over bursts the buckets already absorb.
pub const SCALE_INTERVAL_DEFAULT: Duration = Duration::from_secs(60);
/// The share of a shard's write capacity, over one interval, that makes it hot.
pub const HOT_PERCENT: u64 = 50;
/// A shard that took less than this share of its write capacity over an
/// interval is cold. Far below [`HOT_PERCENT`], so that a merged shard (at
/// most twice this) is not hot and split again at once.
pub const COLD_PERCENT: u64 = 10;
/// How many intervals a shard must have been open before it may be merged.
pub const MERGE_AFTER_INTERVALS: i64 = 5;
/// The open shards an on-demand stream never scales in below: the 4 it is
/// created with (`create_stream::ON_DEMAND_SHARDS`, AWS's initial 4 MiB/s).
pub const SCALE_IN_FLOOR: usize = 4;

/// What one round decided for a stream.
enum Scale {
    Split(u32),
    /// Merge these open shards, the lower hash range first.
    Merge(u32, u32),
}

/// One open shard's write utilisation over the window.
struct Utilisation {
    index: u32,
    start: u128,
    end: u128,
    created_ms: i64,
    percent: u64,
}

impl Kinesis {
    /// One round of on-demand scaling over the traffic of the last
    /// `window_ms` (see the module's policy). Errors are logged: the next
    /// round tries again.
    pub(crate) async fn scale_on_demand(&self, window_ms: i64) {
        // The buckets' clock: the one a test fixes, `None` when not measuring.
        let clock_ms = self.throttle_ms();
        for stream in self.all() {
            if stream.record.mode != StreamMode::OnDemand || stream.record.pending.is_some() {
                continue;
            }
            let usage = utilisation(&stream, window_ms);
            let Some(change) = decide(&usage, window_ms, clock_ms) else {
                continue;
            };
            let (name, incarnation) = (stream.name(), stream.record.incarnation);
            let done = match change {
                Scale::Split(index) => self.split_hot(name, incarnation, index).await,
                Scale::Merge(low, high) => self.merge_cold(name, incarnation, low, high).await,
            };
            if let Err(err) = done {
                warn!(stream = name, error = %err, "on-demand scaling failed; will retry");
            }
        }
    }

    async fn split_hot(
        &self,
        name: &str,
        incarnation: u64,
        index: u32,
    ) -> Result<(), KinesisError> {
        let _catalog = self.catalog_guard().await;
        let now = now_ms();
        let Some(stream) = self.get(name) else {
            return Ok(());
        };
        let unchanged = stream.record.incarnation == incarnation
            && stream.record.mode == StreamMode::OnDemand
            && stream.record.pending.is_none()
            && stream.status(now) == Some(Status::Active);
        let Some(shard) = stream.shard(index).filter(|s| unchanged && !s.closed) else {
            return Ok(());
        };
        let (start, end) = (shard.range.start, shard.range.end);
        if end - start < 3 || !self.below_shard_limit(now) {
            debug!(stream = name, shard = %shard.id, "hot shard cannot be split");
            return Ok(());
        }
        // The middle of the range, as UpdateShardCount and the AWS guides split.
        let at = start + (end - start) / 2 + 1;
        let plan = reshard::split(&stream.record, index, at, now);
        debug!(stream = name, shard = %shard.id, "splitting a hot on-demand shard");
        self.reshard(&stream, plan, now).await
    }

    async fn merge_cold(
        &self,
        name: &str,
        incarnation: u64,
        low: u32,
        high: u32,
    ) -> Result<(), KinesisError> {
        let _catalog = self.catalog_guard().await;
        let now = now_ms();
        let Some(stream) = self.get(name) else {
            return Ok(());
        };
        let unchanged = stream.record.incarnation == incarnation
            && stream.record.mode == StreamMode::OnDemand
            && stream.record.pending.is_none()
            && stream.status(now) == Some(Status::Active)
            && stream.open_shard_count() > SCALE_IN_FLOOR;
        let open = |i| stream.shard(i).filter(|s| !s.closed);
        let (Some(a), Some(b)) = (open(low), open(high)) else {
            return Ok(());
        };
        if !unchanged || a.range.end.checked_add(1) != Some(b.range.start) {
            return Ok(());
        }
        debug!(stream = name, shard = %a.id, adjacent = %b.id, "merging cold on-demand shards");
        let plan = reshard::merge(&stream.record, low, high, now);
        self.reshard(&stream, plan, now).await
    }

    fn below_shard_limit(&self, now: i64) -> bool {
        let open: usize = self
            .all()
            .iter()
            .filter(|s| s.status(now).is_some())
            .map(|s| s.open_shard_count())
            .sum();
        open < crate::actions::shard_limit(&self.config().region) as usize
    }
}

/// Each open shard's write utilisation over the window, by hash range.
/// Resets every open shard's counts.
fn utilisation(stream: &Stream, window_ms: i64) -> Vec<Utilisation> {
    let window_ms = window_ms.max(1) as u64;
    let bytes_cap = WRITE_BYTES_PER_SEC as u64 * window_ms / 1000;
    let records_cap = WRITE_RECORDS_PER_SEC as u64 * window_ms / 1000;
    let mut out: Vec<Utilisation> = stream
        .shards
        .iter()
        .filter(|s| !s.closed)
        .map(|shard| {
            let usage = shard.throttle.take_usage();
            let percent = (usage.bytes * 100 / bytes_cap.max(1))
                .max(usage.records * 100 / records_cap.max(1))
                .max(if usage.refused > 0 { 100 } else { 0 });
            Utilisation {
                index: shard.index,
                start: shard.range.start,
                end: shard.range.end,
                created_ms: shard.created_ms,
                percent,
            }
        })
        .collect();
    out.sort_by_key(|u| u.start);
    out
}

/// The policy (see the module doc): split the hottest shard if one is hot,
/// else merge the coldest pair of old, cold neighbours if the stream has
/// shards to spare. `clock_ms` is `None` when traffic is not measured.
fn decide(usage: &[Utilisation], window_ms: i64, clock_ms: Option<i64>) -> Option<Scale> {
    let hottest = usage.iter().filter(|u| u.percent >= HOT_PERCENT);
    // `max_by_key` keeps the last maximum; the first (lowest range) wins ties.
    if let Some(hot) = hottest.rev().max_by_key(|u| u.percent) {
        return Some(Scale::Split(hot.index));
    }
    let now = clock_ms?;
    if usage.len() <= SCALE_IN_FLOOR {
        return None;
    }
    let min_age = window_ms.max(1).saturating_mul(MERGE_AFTER_INTERVALS);
    let cold = |u: &Utilisation| u.percent < COLD_PERCENT && now - u.created_ms >= min_age;
    usage
        .windows(2)
        .filter(|w| w[0].end.checked_add(1) == Some(w[1].start) && cold(&w[0]) && cold(&w[1]))
        .min_by_key(|w| w[0].percent + w[1].percent)
        .map(|w| Scale::Merge(w[0].index, w[1].index))
}

#[cfg(test)]
#[path = "on_demand_tests.rs"]
mod tests;
