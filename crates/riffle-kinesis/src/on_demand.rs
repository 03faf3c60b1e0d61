//! On-demand capacity: ON_DEMAND streams scale out by splitting hot shards.
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
//! Scaling back in when traffic falls is not done: shards are never merged
//! automatically (AWS scales in gradually over days).

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

impl Kinesis {
    /// One round of on-demand scaling over the traffic of the last
    /// `window_ms` (see the module's policy). Errors are logged: the next
    /// round tries again.
    pub(crate) async fn scale_on_demand(&self, window_ms: i64) {
        for stream in self.all() {
            if stream.record.mode != StreamMode::OnDemand || stream.record.pending.is_some() {
                continue;
            }
            let Some(index) = hottest_shard(&stream, window_ms) else {
                continue;
            };
            if let Err(err) = self
                .split_hot(stream.name(), stream.record.incarnation, index)
                .await
            {
                warn!(stream = stream.name(), error = %err, "on-demand scaling failed; will retry");
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

/// The open shard of `stream` with the highest write utilisation over the
/// window, if it is hot. Resets every open shard's counts.
fn hottest_shard(stream: &Stream, window_ms: i64) -> Option<u32> {
    let window_ms = window_ms.max(1) as u64;
    let bytes_cap = WRITE_BYTES_PER_SEC as u64 * window_ms / 1000;
    let records_cap = WRITE_RECORDS_PER_SEC as u64 * window_ms / 1000;
    let mut hottest = None;
    for shard in stream.shards.iter().filter(|s| !s.closed) {
        let usage = shard.throttle.take_usage();
        let percent = (usage.bytes * 100 / bytes_cap.max(1))
            .max(usage.records * 100 / records_cap.max(1))
            .max(if usage.refused > 0 { 100 } else { 0 });
        if percent >= HOT_PERCENT && hottest.is_none_or(|(_, p)| percent > p) {
            hottest = Some((shard.index, percent));
        }
    }
    hottest.map(|(index, _)| index)
}
