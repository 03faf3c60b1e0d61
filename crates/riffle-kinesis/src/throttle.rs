//! Per-shard throughput limits, as AWS enforces them on provisioned and
//! on-demand streams: token buckets for write bytes, write records, read
//! bytes and read calls, driven by a clock the caller passes in.
//!
//! # Buckets and bursts
//!
//! Each bucket refills continuously at its per-second rate and holds at
//! most one second of it ([`BURST_MS`]): AWS states every shard limit per
//! second ("Quotas and limits", Kinesis Data Streams developer guide), so
//! a shard idle for a second may take a full second's worth at once, and
//! a steady producer gets exactly the rate.
//!
//! Two buckets may go into debt, because AWS lets one request exceed the
//! rate and throttles the ones after it instead:
//! - read bytes: a GetRecords call is admitted while the balance is not
//!   negative and then charged what it returned. API_GetRecords: "If a
//!   call returns 10 MiB of data, subsequent calls made within the next
//!   5 seconds throw `ProvisionedThroughputExceededException`" — a 10 MiB
//!   response from a full 2 MiB bucket leaves 8 MiB of debt, repaid in 4 s,
//!   and the call that finds it positive again is admitted.
//! - write bytes: a record larger than one second of write capacity (up to
//!   10 MiB once UpdateMaxRecordSize allows it) is admitted when the
//!   bucket is full and drives it into debt. "Handle large records": a
//!   stream "can burst up to 10 MiB, while averaging 1 MiB per second".
//!
//! # Cost
//!
//! One `parking_lot` mutex per shard, held for a few arithmetic operations
//! per call (one lock for a whole PutRecords group); no allocation.
//! Balances are integers in thousandths of a unit, so that a refill of
//! `rate` units per second is exactly `rate` per millisecond.

use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;

use crate::KinesisError;

/// Write bytes per second per shard, data and partition keys counted
/// (API_PutRecords: "up to a maximum data write total of 1 MiB per second").
pub const WRITE_BYTES_PER_SEC: i64 = 1024 * 1024;
/// Records written per second per shard (API_PutRecords: "Each shard can
/// support writes up to 1,000 records per second").
pub const WRITE_RECORDS_PER_SEC: i64 = 1_000;
/// Bytes read per second per shard (API_GetRecords and "Quotas and
/// limits": a shard's total data read rate is at most 2 MiB per second).
pub const READ_BYTES_PER_SEC: i64 = 2 * 1024 * 1024;
/// GetRecords calls per second per shard, shared by every polling consumer
/// (API_GetRecords: each shard supports up to five read transactions per
/// second).
pub const READ_CALLS_PER_SEC: i64 = 5;
/// How much unused capacity a bucket keeps: one second's worth.
pub const BURST_MS: i64 = 1_000;

/// A token bucket. `milli` is the balance in thousandths of a unit; it may
/// be negative (debt) for the buckets documented above.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli: i64,
    at_ms: i64,
}

impl Bucket {
    const fn full(rate: i64) -> Bucket {
        Bucket {
            milli: rate * BURST_MS,
            at_ms: i64::MIN,
        }
    }

    /// Adds what accrued since the last refill, up to the burst.
    fn refill(&mut self, rate: i64, now_ms: i64) {
        if self.at_ms == i64::MIN {
            self.at_ms = now_ms;
            return;
        }
        // A clock that steps back accrues nothing rather than draining.
        let elapsed = now_ms.saturating_sub(self.at_ms).max(0);
        self.milli = self
            .milli
            .saturating_add(rate.saturating_mul(elapsed))
            .min(rate * BURST_MS);
        self.at_ms = self.at_ms.max(now_ms);
    }

    fn has(&self, units: i64) -> bool {
        self.milli >= units.saturating_mul(1000)
    }

    fn take(&mut self, units: i64) {
        self.milli = self.milli.saturating_sub(units.saturating_mul(1000));
    }
}

#[derive(Debug)]
struct Buckets {
    write_bytes: Bucket,
    write_records: Bucket,
    read_bytes: Bucket,
    read_calls: Bucket,
    /// Writes since the on-demand scaler last looked.
    usage: WriteUsage,
}

/// What a shard was asked to take since the last [`ShardThrottle::take_usage`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteUsage {
    pub bytes: u64,
    pub records: u64,
    /// Records refused for throughput.
    pub refused: u64,
}

/// The throughput state of one shard. Shared (`Arc`) by every in-memory
/// version of the shard, so a catalog change does not reset it.
#[derive(Debug)]
pub struct ShardThrottle {
    buckets: Mutex<Buckets>,
}

impl Default for ShardThrottle {
    fn default() -> Self {
        ShardThrottle {
            buckets: Mutex::new(Buckets {
                write_bytes: Bucket::full(WRITE_BYTES_PER_SEC),
                write_records: Bucket::full(WRITE_RECORDS_PER_SEC),
                read_bytes: Bucket::full(READ_BYTES_PER_SEC),
                read_calls: Bucket::full(READ_CALLS_PER_SEC),
                usage: WriteUsage::default(),
            }),
        }
    }
}

impl ShardThrottle {
    /// Admits the longest prefix of `sizes` (each record's data plus
    /// partition-key bytes) the write buckets allow and charges it; returns
    /// how many records were admitted. The rest are refused, so a shard's
    /// accepted records keep their request order.
    pub fn admit_writes(&self, now_ms: i64, sizes: impl IntoIterator<Item = usize>) -> usize {
        let mut b = self.buckets.lock();
        b.write_bytes.refill(WRITE_BYTES_PER_SEC, now_ms);
        b.write_records.refill(WRITE_RECORDS_PER_SEC, now_ms);
        let mut admitted = 0;
        let mut refused = 0;
        for size in sizes {
            let size = i64::try_from(size).unwrap_or(i64::MAX);
            // A record larger than the burst needs a full bucket (see the
            // module doc on large records). After a refusal, the rest of
            // the group is refused too, keeping the shard's order.
            let needed = size.min(WRITE_BYTES_PER_SEC * BURST_MS / 1000);
            if refused > 0 || !b.write_records.has(1) || !b.write_bytes.has(needed) {
                refused += 1;
                continue;
            }
            b.write_records.take(1);
            b.write_bytes.take(size);
            b.usage.bytes += size as u64;
            admitted += 1;
        }
        b.usage.records += admitted as u64;
        b.usage.refused += refused;
        admitted
    }

    /// The writes since the last call, and a fresh count.
    pub fn take_usage(&self) -> WriteUsage {
        std::mem::take(&mut self.buckets.lock().usage)
    }

    /// Admits one GetRecords call (and charges it) unless the shard has had
    /// its five calls this second or is still repaying a large read.
    pub fn admit_read(&self, now_ms: i64) -> bool {
        let mut b = self.buckets.lock();
        b.read_bytes.refill(READ_BYTES_PER_SEC, now_ms);
        b.read_calls.refill(READ_CALLS_PER_SEC, now_ms);
        if b.read_bytes.milli < 0 || !b.read_calls.has(1) {
            return false;
        }
        b.read_calls.take(1);
        true
    }

    /// Charges the bytes an admitted GetRecords call returned; may leave
    /// the read-bytes bucket in debt.
    pub fn charge_read(&self, now_ms: i64, bytes: usize) {
        let mut b = self.buckets.lock();
        b.read_bytes.refill(READ_BYTES_PER_SEC, now_ms);
        b.read_bytes
            .take(i64::try_from(bytes).unwrap_or(i64::MAX / 1000));
    }
}

/// The clock the buckets are driven by: the system clock, or a fixed time
/// a test sets (so that tests measure rates without sleeping).
#[derive(Debug, Default)]
pub struct Clock {
    /// Epoch milliseconds set by a test; 0 means the system clock.
    fixed_ms: AtomicI64,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        match self.fixed_ms.load(Ordering::Relaxed) {
            0 => crate::time::now_ms(),
            fixed => fixed,
        }
    }

    #[cfg(test)]
    pub fn set_ms(&self, ms: i64) {
        self.fixed_ms.store(ms, Ordering::Relaxed);
    }
}

/// PutRecord's error, and a PutRecords entry's `ErrorMessage`, as AWS
/// words them: "Rate exceeded for shard shardId-000000000000 in stream foo
/// under account 000000000000.".
pub fn write_message(shard_id: &str, stream: &str, account: &str) -> String {
    format!("Rate exceeded for shard {shard_id} in stream {stream} under account {account}.")
}

pub fn write_exceeded(shard_id: &str, stream: &str, account: &str) -> KinesisError {
    KinesisError::ProvisionedThroughputExceeded(write_message(shard_id, stream, account))
}

/// GetRecords' error as AWS words it today:
/// "Rate exceeded for Shard - 000000000000/foo/shardId-000000000000".
pub fn read_exceeded(shard_id: &str, stream: &str, account: &str) -> KinesisError {
    KinesisError::ProvisionedThroughputExceeded(format!(
        "Rate exceeded for Shard - {account}/{stream}/{shard_id}"
    ))
}

impl crate::Kinesis {
    /// The time to charge the buckets at, or `None` when limits are off.
    pub(crate) fn throttle_ms(&self) -> Option<i64> {
        self.config.throughput_limits.then(|| self.clock.now_ms())
    }

    #[cfg(test)]
    pub(crate) fn set_clock_ms(&self, ms: i64) {
        self.clock.set_ms(ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;
    const T0: i64 = 1_795_000_000_000;

    #[test]
    fn writes_allow_one_second_of_records_then_the_rate() {
        let t = ShardThrottle::default();
        assert_eq!(t.admit_writes(T0, std::iter::repeat_n(10, 1500)), 1000);
        assert_eq!(t.admit_writes(T0, [10]), 0);
        // 100 ms refill 100 records.
        assert_eq!(t.admit_writes(T0 + 100, std::iter::repeat_n(10, 500)), 100);
        // An idle shard never accrues more than one second's worth.
        assert_eq!(
            t.admit_writes(T0 + 60_000, std::iter::repeat_n(10, 5000)),
            1000
        );
    }

    #[test]
    fn writes_allow_one_mib_of_bytes_then_the_rate() {
        let t = ShardThrottle::default();
        assert_eq!(t.admit_writes(T0, [MIB / 2, MIB / 2, 1]), 2);
        assert_eq!(t.admit_writes(T0 + 500, [MIB / 2 + 1]), 0);
        assert_eq!(t.admit_writes(T0 + 500, [MIB / 2]), 1);
    }

    #[test]
    fn a_large_record_needs_a_full_bucket_and_leaves_debt() {
        let t = ShardThrottle::default();
        assert_eq!(t.admit_writes(T0, [10 * MIB]), 1);
        // 9 MiB of debt: nothing fits until it is repaid, 9 s later.
        assert_eq!(t.admit_writes(T0 + 8_999, [1]), 0);
        assert_eq!(t.admit_writes(T0 + 9_001, [1]), 1);
        // A second large record waits for a full bucket again.
        assert_eq!(t.admit_writes(T0 + 9_500, [2 * MIB]), 0);
        assert_eq!(t.admit_writes(T0 + 10_100, [2 * MIB]), 1);
    }

    #[test]
    fn reads_allow_five_calls_per_second() {
        let t = ShardThrottle::default();
        assert!((0..5).all(|_| t.admit_read(T0)));
        assert!(!t.admit_read(T0));
        assert!(!t.admit_read(T0 + 199));
        assert!(t.admit_read(T0 + 200));
        assert!(!t.admit_read(T0 + 200));
    }

    #[test]
    fn a_ten_mib_read_throttles_the_calls_of_the_next_seconds() {
        let t = ShardThrottle::default();
        assert!(t.admit_read(T0));
        t.charge_read(T0, 10 * MIB);
        for ms in [1, 1_000, 2_000, 3_999] {
            assert!(!t.admit_read(T0 + ms), "{ms}");
        }
        assert!(t.admit_read(T0 + 4_000));
    }

    #[test]
    fn usage_counts_admitted_and_refused_writes_until_taken() {
        let t = ShardThrottle::default();
        assert_eq!(t.admit_writes(T0, std::iter::repeat_n(100, 1200)), 1000);
        let usage = t.take_usage();
        assert_eq!(
            usage,
            WriteUsage {
                bytes: 100_000,
                records: 1000,
                refused: 200
            }
        );
        assert_eq!(t.take_usage(), WriteUsage::default());
    }

    #[test]
    fn a_clock_stepping_back_accrues_nothing() {
        let t = ShardThrottle::default();
        assert_eq!(t.admit_writes(T0, std::iter::repeat_n(1, 1000)), 1000);
        assert_eq!(t.admit_writes(T0 - 5_000, [1]), 0);
        assert_eq!(t.admit_writes(T0 + 1, [1]), 1);
    }
}
