//! Retries within a destination's `RetryOptions.DurationInSeconds`:
//! exponential backoff with jitter, the window starting at the first
//! failed attempt ("This duration starts after the initial attempt to
//! send data to the custom destination via HTTPS endpoint fails", API
//! reference, `HttpEndpointRetryOptions`). The last wait is cut to end
//! with the window, so a last attempt is made at its end.

use tokio::time::{Duration, Instant};

/// The first wait after a failure; each next one is twice as long, up to
/// [`BACKOFF_MAX`]. AWS publishes no schedule for these destinations.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// One batch's retry state.
#[derive(Debug)]
pub struct RetryWindow {
    duration: Duration,
    first_failure: Option<Instant>,
    next: Duration,
    attempts: u32,
}

impl RetryWindow {
    pub fn new(duration: Duration) -> RetryWindow {
        RetryWindow {
            duration,
            first_failure: None,
            next: BACKOFF_FIRST,
            attempts: 0,
        }
    }

    /// Attempts made so far (the error records' `attemptsMade`).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After a failed attempt: how long to wait before the next one, or
    /// `None` once the window has passed (the batch is then backed up).
    pub fn after_failure(&mut self) -> Option<Duration> {
        self.attempts += 1;
        let start = *self.first_failure.get_or_insert_with(Instant::now);
        let remaining = self.duration.checked_sub(start.elapsed())?;
        if remaining.is_zero() {
            return None;
        }
        let base = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        // "Equal jitter": half the backoff, plus up to as much again at
        // random, so that streams failing together do not retry together.
        let half = base / 2;
        let jitter = half.mul_f64(rand::random::<f64>());
        Some((half + jitter).min(remaining))
    }

    /// A successful attempt (counted in `attempts`).
    pub fn succeeded(&mut self) {
        self.attempts += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_grow_with_jitter_and_end_with_the_window() {
        let mut window = RetryWindow::new(Duration::from_secs(5));
        let mut waited = Duration::ZERO;
        let mut waits = Vec::new();
        while let Some(wait) = window.after_failure() {
            waits.push(wait);
            tokio::time::sleep(wait).await;
            waited += wait;
        }
        // The timer rounds each sleep up to its millisecond.
        let short = Duration::from_secs(5).saturating_sub(waited);
        assert!(
            waited <= Duration::from_secs(5) + Duration::from_millis(10),
            "{waits:?}"
        );
        assert!(short < Duration::from_millis(10), "{waits:?}");
        assert!(waits[0] >= BACKOFF_FIRST / 2 && waits[0] <= BACKOFF_FIRST);
        assert!(waits[1] >= BACKOFF_FIRST && waits[1] <= BACKOFF_FIRST * 2);
        assert_eq!(window.attempts() as usize, waits.len() + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_duration_never_retries() {
        let mut window = RetryWindow::new(Duration::ZERO);
        assert_eq!(window.after_failure(), None);
        assert_eq!(window.attempts(), 1);
    }
}
