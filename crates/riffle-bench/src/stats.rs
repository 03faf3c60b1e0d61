//! What a run measures: counters the progress line and the time series
//! read every second, and latency histograms each task keeps to itself and
//! merges once at its end (no shared lock per request).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// The longest latency a histogram holds, in microseconds (an hour); longer
/// ones are clamped to it.
const LATENCY_US_MAX: u64 = 3_600_000_000;
/// Significant figures of the histograms (0.1% resolution).
const LATENCY_DIGITS: u8 = 3;

/// An empty latency histogram in microseconds.
pub fn histogram() -> Histogram<u64> {
    // Bounds and precision are constants the constructor accepts.
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_DIGITS).expect("valid histogram bounds")
}

/// Records `latency` into `hist`, clamped into its range.
pub fn record(hist: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    hist.saturating_record(us.clamp(1, LATENCY_US_MAX));
}

/// Running totals of one direction (writes or reads), updated per request.
#[derive(Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub records: AtomicU64,
    /// Payload bytes (the records' data, not the HTTP bodies).
    pub bytes: AtomicU64,
    /// Requests that failed (transport errors and AWS errors, throttles
    /// included).
    pub errors: AtomicU64,
    /// Requests refused with ProvisionedThroughputExceededException.
    pub throttles: AtomicU64,
    /// Records a PutRecords answer marked failed (its ErrorCode).
    pub failed_records: AtomicU64,
    /// Of those, the throttled ones.
    pub throttled_records: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Totals {
    pub requests: u64,
    pub records: u64,
    pub bytes: u64,
    pub errors: u64,
    pub throttles: u64,
    pub failed_records: u64,
    pub throttled_records: u64,
}

impl Counters {
    pub fn add(&self, field: &AtomicU64, n: u64) {
        field.fetch_add(n, Ordering::Relaxed);
    }

    pub fn totals(&self) -> Totals {
        let get = |f: &AtomicU64| f.load(Ordering::Relaxed);
        Totals {
            requests: get(&self.requests),
            records: get(&self.records),
            bytes: get(&self.bytes),
            errors: get(&self.errors),
            throttles: get(&self.throttles),
            failed_records: get(&self.failed_records),
            throttled_records: get(&self.throttled_records),
        }
    }
}

impl Totals {
    pub fn minus(&self, before: &Totals) -> Totals {
        Totals {
            requests: self.requests - before.requests,
            records: self.records - before.records,
            bytes: self.bytes - before.bytes,
            errors: self.errors - before.errors,
            throttles: self.throttles - before.throttles,
            failed_records: self.failed_records - before.failed_records,
            throttled_records: self.throttled_records - before.throttled_records,
        }
    }
}

/// A histogram that tasks merge their own into when they end.
pub struct SharedHistogram(Mutex<Histogram<u64>>);

impl Default for SharedHistogram {
    fn default() -> Self {
        SharedHistogram(Mutex::new(histogram()))
    }
}

impl SharedHistogram {
    pub fn merge(&self, local: &Histogram<u64>) {
        // A poisoned lock means a task panicked while merging; its
        // histogram is still a histogram.
        let mut hist = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Both have the same bounds, so adding cannot fail.
        let _ = hist.add(local);
    }

    pub fn snapshot(&self) -> Histogram<u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Everything one measured phase collects.
#[derive(Default)]
pub struct Measured {
    pub writes: Counters,
    pub reads: Counters,
    /// Latency of the writing requests (open loop: from intended start).
    pub write_latency: SharedHistogram,
    /// Latency of GetRecords requests.
    pub read_latency: SharedHistogram,
    /// From a record's (intended) put to its arrival at the consumer.
    pub e2e_latency: SharedHistogram,
}

/// One second of a run, for the throughput-over-time chart.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sample {
    /// Seconds since the measured phase began, at the sample's end.
    pub t_s: f64,
    pub write_records_per_s: f64,
    pub write_mb_per_s: f64,
    pub read_records_per_s: f64,
    pub read_mb_per_s: f64,
    pub errors: u64,
    pub throttles: u64,
}

/// Bytes per megabyte in every rate the bench reports (SI, as disks and
/// networks quote).
pub const MB: f64 = 1_000_000.0;

/// The CPU time this process has used, user and system, for the client's
/// own cost per request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    pub user: Duration,
    pub system: Duration,
}

impl Cpu {
    pub fn now() -> Cpu {
        // SAFETY: getrusage only writes into the struct we pass.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: RUSAGE_SELF and a valid pointer.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
            return Cpu::default();
        }
        let tv = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        Cpu {
            user: tv(usage.ru_utime),
            system: tv(usage.ru_stime),
        }
    }

    /// The CPU used since `self` was taken.
    pub fn elapsed(&self) -> Cpu {
        let now = Cpu::now();
        Cpu {
            user: now.user.saturating_sub(self.user),
            system: now.system.saturating_sub(self.system),
        }
    }

    pub fn total(&self) -> Duration {
        self.user + self.system
    }
}

/// Samples the counters about once a second: prints the live progress line
/// on stderr and keeps the time series.
pub struct Sampler {
    started: Instant,
    last: (Instant, Totals, Totals),
    pub samples: Vec<Sample>,
    label: String,
    print: bool,
}

impl Sampler {
    pub fn new(label: &str, measured: &Measured, print: bool) -> Sampler {
        let now = Instant::now();
        Sampler {
            started: now,
            last: (now, measured.writes.totals(), measured.reads.totals()),
            samples: Vec::new(),
            label: label.to_owned(),
            print,
        }
    }

    /// Takes one sample now.
    pub fn tick(&mut self, measured: &Measured) {
        let now = Instant::now();
        let (writes, reads) = (measured.writes.totals(), measured.reads.totals());
        let dw = writes.minus(&self.last.1);
        let dr = reads.minus(&self.last.2);
        let secs = now.duration_since(self.last.0).as_secs_f64().max(1e-9);
        let sample = Sample {
            t_s: now.duration_since(self.started).as_secs_f64(),
            write_records_per_s: dw.records as f64 / secs,
            write_mb_per_s: dw.bytes as f64 / MB / secs,
            read_records_per_s: dr.records as f64 / secs,
            read_mb_per_s: dr.bytes as f64 / MB / secs,
            errors: dw.errors + dr.errors,
            throttles: dw.throttles + dr.throttles + dw.throttled_records,
        };
        if self.print {
            let mut line = format!(
                "[{:6.1}s] {}: {:>9.0} req/s {:>8.2} MB/s written",
                sample.t_s,
                self.label,
                dw.requests as f64 / secs,
                sample.write_mb_per_s
            );
            if reads.requests > 0 {
                line.push_str(&format!(", {:>8.2} MB/s read", sample.read_mb_per_s));
            }
            line.push_str(&format!(
                ", errors {}, throttles {}",
                writes.errors + reads.errors,
                writes.throttles + reads.throttles + writes.throttled_records
            ));
            eprintln!("{line}");
        }
        self.samples.push(sample);
        self.last = (now, writes, reads);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_outside_the_range_are_clamped_not_lost() {
        let mut hist = histogram();
        record(&mut hist, Duration::ZERO);
        record(&mut hist, Duration::from_secs(10_000));
        assert_eq!(hist.len(), 2);
        assert_eq!(hist.min(), 1);
        assert!(hist.max() >= LATENCY_US_MAX);
    }
}
