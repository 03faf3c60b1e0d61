//! Time as Firehose writes it: epoch seconds in JSON, and the UTC calendar
//! fields of object names.

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

/// The UTC calendar fields of `ms`: year, month, day, hour, minute, second.
pub fn utc_fields(ms: i64) -> [i64; 6] {
    let secs = ms.div_euclid(1000);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    [
        year,
        month,
        day,
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
    ]
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_fields_are_utc() {
        assert_eq!(utc_fields(0), [1970, 1, 1, 0, 0, 0]);
        // 2024-02-29T23:59:58.999Z, a leap day.
        assert_eq!(utc_fields(1_709_251_198_999), [2024, 2, 29, 23, 59, 58]);
        assert_eq!(utc_fields(-1), [1969, 12, 31, 23, 59, 59]);
    }
}
