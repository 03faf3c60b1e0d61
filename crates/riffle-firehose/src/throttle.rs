//! DirectPut's throughput limits ("Amazon Data Firehose Quota": 5 MiB/s,
//! 2,000 requests/s and 500,000 records/s per delivery stream in the big
//! regions), counted over one-second windows on Tokio's clock, so tests
//! can move time instead of sleeping.

use parking_lot::Mutex;
use tokio::time::{Duration, Instant};

pub const BYTES_PER_SECOND: u64 = 5 * 1024 * 1024;
pub const REQUESTS_PER_SECOND: u64 = 2_000;
pub const RECORDS_PER_SECOND: u64 = 500_000;
/// What AWS answers a throttled call or record with.
pub const SLOW_DOWN: &str = "Slow down.";

const WINDOW: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Throttle {
    window: Mutex<Option<Window>>,
}

struct Window {
    start: Instant,
    bytes: u64,
    requests: u64,
    records: u64,
}

impl Throttle {
    /// Charges one request of records of `sizes` bytes. `None`: the request
    /// itself is over the limit; `Some(n)`: the first `n` records fit (the
    /// rest are refused one by one, as AWS does).
    pub fn admit(&self, sizes: impl Iterator<Item = usize>) -> Option<usize> {
        let now = Instant::now();
        let mut guard = self.window.lock();
        let w = guard.get_or_insert(Window {
            start: now,
            bytes: 0,
            requests: 0,
            records: 0,
        });
        if now.duration_since(w.start) >= WINDOW {
            *w = Window {
                start: now,
                bytes: 0,
                requests: 0,
                records: 0,
            };
        }
        if w.requests >= REQUESTS_PER_SECOND {
            return None;
        }
        w.requests += 1;
        let mut admitted = 0;
        for size in sizes {
            let bytes = w.bytes + size as u64;
            if bytes > BYTES_PER_SECOND || w.records >= RECORDS_PER_SECOND {
                break;
            }
            w.bytes = bytes;
            w.records += 1;
            admitted += 1;
        }
        Some(admitted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bytes_past_the_limit_are_refused_until_the_next_second() {
        let t = Throttle::default();
        let mib = 1024 * 1024;
        assert_eq!(t.admit([mib; 4].into_iter()), Some(4));
        assert_eq!(t.admit([mib; 3].into_iter()), Some(1));
        tokio::time::advance(WINDOW).await;
        assert_eq!(t.admit([mib; 3].into_iter()), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn requests_past_the_limit_are_refused_whole() {
        let t = Throttle::default();
        for _ in 0..REQUESTS_PER_SECOND {
            assert_eq!(t.admit([1].into_iter()), Some(1));
        }
        assert_eq!(t.admit([1].into_iter()), None);
    }
}
