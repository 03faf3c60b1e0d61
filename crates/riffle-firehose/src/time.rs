//! Time as Firehose writes it: epoch seconds in JSON. (Object names take
//! their calendar fields from `prefix`, in the destination's time zone.)

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Epoch seconds with a millisecond fraction, the JSON form of a timestamp.
pub fn epoch_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}
