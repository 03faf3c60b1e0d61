//! Time as the Kinesis API writes it: epoch seconds with a millisecond
//! fraction in JSON, Java's `Date.toString()` form in some messages, and
//! the ISO-8601 basic form (`20261204T130502Z`) of SigV4's `X-Amz-Date`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Appends `ms` as a JSON number of epoch seconds with three decimals,
/// e.g. `1700000000.123`, the form the AWS SDKs parse.
pub fn write_epoch_seconds(out: &mut String, ms: i64) {
    let secs = ms.div_euclid(1000);
    let frac = ms.rem_euclid(1000) as u16;
    // Digits by hand, not `write!`: every record of a GetRecords answer
    // has one, and the formatting machinery cost more than the rest of
    // the timestamp.
    if secs < 0 {
        out.push('-');
    }
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = secs.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
    out.push('.');
    for div in [100, 10, 1] {
        out.push(char::from(b'0' + (frac / div % 10) as u8));
    }
}

/// Epoch seconds (a JSON number, possibly fractional) to milliseconds,
/// rounded to the nearest millisecond and saturating at the ends of i64.
pub fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

/// `ms` in the form Java's `Date.toString()` gives in UTC, as AWS writes
/// times in messages: `Thu Jan 22 01:22:02 UTC 2015`.
pub fn java_date_utc(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let in_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        day,
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60,
        year
    )
}

/// Epoch seconds as SigV4 writes a time: `YYYYMMDDTHHMMSSZ` in UTC.
pub fn amz_date(secs: i64) -> String {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Parses SigV4's `YYYYMMDDTHHMMSSZ` into epoch seconds; `None` unless the
/// text is exactly that form with a real date and time.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = &b[range];
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
    let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
    // A leap second (60) is allowed, as ISO-8601 allows it.
    if !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    // 31 February and the like do not round-trip.
    if day == 0 || civil_from_days(days) != (year, month, day) {
        return None;
    }
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// (year, month 1-12, day 1-31) to days since 1970-01-01: Howard Hinnant's
/// `days_from_civil`, the inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31): Howard Hinnant's
/// `civil_from_days` algorithm for the proleptic Gregorian calendar.
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
    fn java_dates_match_aws_messages() {
        // 2015-01-22T01:22:02Z, the example in AWS's ExpiredIterator message.
        assert_eq!(
            java_date_utc(1_421_889_722_000),
            "Thu Jan 22 01:22:02 UTC 2015"
        );
        assert_eq!(java_date_utc(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(
            java_date_utc(1_795_392_000_000),
            "Mon Nov 23 00:00:00 UTC 2026"
        );
        assert_eq!(
            java_date_utc(951_782_400_000),
            "Tue Feb 29 00:00:00 UTC 2000"
        );
    }

    #[test]
    fn amz_dates_round_trip_and_refuse_what_is_not_a_time() {
        for secs in [0, 951_782_400, 1_795_442_121, 1_767_225_599, 4_102_444_800] {
            let text = amz_date(secs);
            assert_eq!(parse_amz_date(&text), Some(secs), "{text}");
        }
        assert_eq!(amz_date(1_795_442_121), "20261123T135521Z");
        assert_eq!(parse_amz_date("20000229T000000Z"), Some(951_782_400));
        for bad in [
            "",
            "20261123T135521",
            "20261123 135521Z",
            "2026112XT135521Z",
            "20261323T135521Z",
            "20260230T000000Z",
            "20261100T000000Z",
            "20261123T245521Z",
            "20261123T136021Z",
            "+0261123T135521Z",
            "20261123T135521Z ",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn epoch_seconds_have_millisecond_fractions() {
        let mut out = String::new();
        write_epoch_seconds(&mut out, 1_700_000_000_007);
        assert_eq!(out, "1700000000.007");
        for ms in [0, 999, 1_000, -1, -1_000, -1_001, i64::MAX, i64::MIN] {
            let mut out = String::new();
            write_epoch_seconds(&mut out, ms);
            let expected = format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000));
            assert_eq!(out, expected, "{ms}");
        }
        assert_eq!(seconds_to_ms(1_700_000_000.007), 1_700_000_000_007);
        assert_eq!(seconds_to_ms(1.5), 1500);
    }
}
