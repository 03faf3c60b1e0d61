//! The KPL's per-shard rate limit: token buckets for bytes and for Kinesis
//! records, refilled continuously at a percentage of the shard's limits,
//! so one producer does not keep a shard throttled with its retries
//! ("Customize KPL retries and rate limit behavior", Kinesis Data Streams
//! Developer Guide: separate buckets for records and bytes, by default 50%
//! above the shard limit).

use std::time::Duration;

use tokio::time::Instant;

/// A shard's write limit in bytes per second (Kinesis Data Streams quotas:
/// 1 MiB per second per shard).
pub const SHARD_BYTES_PER_SEC: f64 = 1_048_576.0;
/// A shard's write limit in records per second (same page: 1,000).
pub const SHARD_RECORDS_PER_SEC: f64 = 1_000.0;

#[derive(Debug)]
struct Bucket {
    per_sec: f64,
    tokens: f64,
}

impl Bucket {
    fn refill(&mut self, elapsed: Duration) {
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_sec).min(self.per_sec);
    }

    /// Enough for `amount`, or full (a record larger than a second's worth
    /// still goes, once the bucket is full).
    fn allows(&self, amount: f64) -> bool {
        self.tokens >= amount.min(self.per_sec)
    }

    fn wait_for(&self, amount: f64) -> Duration {
        let missing = amount.min(self.per_sec) - self.tokens;
        Duration::from_secs_f64((missing / self.per_sec).max(0.0))
    }
}

/// One shard's two buckets.
#[derive(Debug)]
pub(crate) struct ShardRate {
    bytes: Bucket,
    records: Bucket,
    last: Instant,
}

impl ShardRate {
    /// Buckets at `percent` of the shard's limits, full.
    pub(crate) fn new(percent: u64, now: Instant) -> ShardRate {
        let factor = percent as f64 / 100.0;
        let bucket = |limit: f64| Bucket {
            per_sec: limit * factor,
            tokens: limit * factor,
        };
        ShardRate {
            bytes: bucket(SHARD_BYTES_PER_SEC),
            records: bucket(SHARD_RECORDS_PER_SEC),
            last: now,
        }
    }

    /// Takes one record of `bytes` if both buckets allow it; otherwise
    /// how long until they do.
    pub(crate) fn take(&mut self, bytes: usize, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.bytes.refill(elapsed);
        self.records.refill(elapsed);
        let bytes = bytes as f64;
        if self.bytes.allows(bytes) && self.records.allows(1.0) {
            self.bytes.tokens -= bytes;
            self.records.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.bytes.wait_for(bytes).max(self.records.wait_for(1.0)))
        }
    }

    /// Returns what [`ShardRate::take`] took for a record that was not sent.
    pub(crate) fn give_back(&mut self, bytes: usize) {
        self.bytes.tokens = (self.bytes.tokens + bytes as f64).min(self.bytes.per_sec);
        self.records.tokens = (self.records.tokens + 1.0).min(self.records.per_sec);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shard_takes_its_share_per_second_then_waits() {
        let start = Instant::now();
        let mut rate = ShardRate::new(100, start);
        for _ in 0..1000 {
            assert!(rate.take(10, start).is_ok());
        }
        let wait = rate.take(10, start).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(1),
            "{wait:?}"
        );
        assert!(rate.take(10, start + Duration::from_millis(2)).is_ok());
    }

    #[test]
    fn bytes_are_limited_at_the_percentage_and_big_records_pass_when_full() {
        let start = Instant::now();
        let mut rate = ShardRate::new(50, start);
        assert!(rate.take(400_000, start).is_ok());
        let wait = rate.take(400_000, start).unwrap_err();
        // 524,288 B/s: 275,712 B missing take about 0.53 s.
        assert!((500..560).contains(&wait.as_millis()), "{wait:?}");
        let later = start + Duration::from_secs(2);
        assert!(
            rate.take(1_000_000, later).is_ok(),
            "a full bucket lets a 1 MB record by"
        );
        assert!(rate.take(1, later).is_err());
    }
}
