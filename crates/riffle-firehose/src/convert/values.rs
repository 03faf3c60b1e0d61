//! A JSON value read as a Hive primitive, as the JSON SerDes read them:
//! numbers from numbers or numeric strings, strings from any scalar,
//! decimals from their text (no float rounding), timestamps in the
//! SerDe's formats, dates as `yyyy-MM-dd`.

use std::borrow::Cow;

use super::json::Json;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

/// Epoch numbers at or above this are milliseconds, below it seconds: the
/// OpenX SerDe takes both ("Epoch seconds – 1518033528; epoch
/// milliseconds – 1518033528123"), and 10^11 seconds is the year 5138.
const EPOCH_MILLIS_FROM: f64 = 1e11;

/// What a value could not be read as.
pub type Refusal = String;

fn refuse(value: &Json<'_>, what: &str) -> Refusal {
    let mut shown = value.to_string();
    if shown.len() > 100 {
        let end = (0..=100)
            .rev()
            .find(|&i| shown.is_char_boundary(i))
            .unwrap_or(0);
        shown.truncate(end);
        shown.push('…');
    }
    format!("Cannot convert {shown} to {what}")
}

pub fn boolean(value: &Json<'_>) -> Result<bool, Refusal> {
    match value {
        Json::Bool(b) => Ok(*b),
        Json::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Json::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(refuse(value, "boolean")),
    }
}

/// An integer in `[min, max]`, from an integral number or its text.
pub fn integer(value: &Json<'_>, min: i64, max: i64, what: &str) -> Result<i64, Refusal> {
    let n = match value {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.filter(|n| (min..=max).contains(n))
        .ok_or_else(|| refuse(value, what))
}

pub fn double(value: &Json<'_>) -> Result<f64, Refusal> {
    match value {
        Json::Number(n) => n.as_f64(),
        Json::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .ok_or_else(|| refuse(value, "double"))
}

/// A string column takes any value: scalars as their text, objects and
/// arrays as their JSON.
pub fn string<'v>(value: &'v Json<'_>) -> Cow<'v, str> {
    match value {
        Json::String(s) => Cow::Borrowed(s.as_ref()),
        other => Cow::Owned(other.to_string()),
    }
}

/// `char(n)`/`varchar(n)`: at most `n` characters, as Hive truncates.
pub fn truncated(text: Cow<'_, str>, n: u32) -> Cow<'_, str> {
    let n = n as usize;
    match text.char_indices().nth(n) {
        Some((end, _)) => Cow::Owned(text[..end].to_owned()),
        None => text,
    }
}

/// Binary columns are base64 text in JSON.
pub fn binary(value: &Json<'_>) -> Result<Vec<u8>, Refusal> {
    match value {
        Json::String(s) => base64_simd::STANDARD
            .decode_to_vec(s.as_bytes())
            .map_err(|_| refuse(value, "binary (base64)")),
        _ => Err(refuse(value, "binary (base64)")),
    }
}

/// A decimal's unscaled value at `scale` (rounded half up, as Hive
/// rounds), if it has at most `precision` digits.
pub fn decimal(value: &Json<'_>, precision: u8, scale: u8) -> Result<i128, Refusal> {
    let what = || format!("decimal({precision},{scale})");
    let text: Cow<'_, str> = match value {
        Json::Number(n) => Cow::Owned(n.to_string()),
        Json::String(s) => Cow::Borrowed(s.trim()),
        _ => return Err(refuse(value, &what())),
    };
    let unscaled = parse_decimal(&text, scale).ok_or_else(|| refuse(value, &what()))?;
    let limit = 10i128.pow(u32::from(precision));
    if unscaled.abs() >= limit {
        return Err(refuse(value, &what()));
    }
    Ok(unscaled)
}

/// `[-+]digits[.digits][e[-+]digits]` as an integer times 10^-scale.
fn parse_decimal(text: &str, scale: u8) -> Option<i128> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (negative, digits) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    // The digits as one integer (None past i128), and the power of ten
    // it is scaled by.
    let n = whole
        .bytes()
        .chain(fraction.bytes())
        .try_fold(0i128, |n, b| {
            n.checked_mul(10)?.checked_add(i128::from(b - b'0'))
        })?;
    let shift = exponent - fraction.len() as i32 + i32::from(scale);
    let scaled = if shift >= 0 {
        n.checked_mul(10i128.checked_pow(shift.unsigned_abs())?)?
    } else {
        let divisor = 10i128
            .checked_pow(shift.unsigned_abs())
            .unwrap_or(i128::MAX);
        let (q, r) = (n / divisor, n % divisor);
        if r * 2 >= divisor { q + 1 } else { q }
    };
    Some(if negative { -scaled } else { scaled })
}

/// Days since 1970-01-01 of a `yyyy-MM-dd` date (or a day number).
pub fn date(value: &Json<'_>) -> Result<i32, Refusal> {
    let days = match value {
        Json::String(s) => s
            .trim()
            .parse::<Date>()
            .ok()
            .and_then(|d| d.since(Date::constant(1970, 1, 1)).ok())
            .map(|span| span.get_days()),
        Json::Number(n) => n.as_i64().and_then(|d| i32::try_from(d).ok()),
        _ => None,
    };
    days.ok_or_else(|| refuse(value, "date"))
}

/// Microseconds since the epoch (UTC) of a timestamp: in `formats` (Joda
/// patterns or `millis`) when the SerDe gives some, else the defaults:
/// ISO 8601 with `T` or a space (an offset or `Z` optional, UTC if none),
/// epoch seconds (possibly fractional) or epoch milliseconds.
pub fn timestamp(value: &Json<'_>, formats: &[String]) -> Result<i64, Refusal> {
    let micros = if formats.is_empty() {
        default_timestamp(value)
    } else {
        formats.iter().find_map(|f| formatted_timestamp(value, f))
    };
    micros.ok_or_else(|| refuse(value, "timestamp"))
}

fn default_timestamp(value: &Json<'_>) -> Option<i64> {
    match value {
        Json::Number(n) => epoch_micros(n.as_f64()?),
        Json::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<f64>() {
                return epoch_micros(n);
            }
            iso_micros(s)
        }
        _ => None,
    }
}

fn epoch_micros(n: f64) -> Option<i64> {
    let micros = if n.abs() >= EPOCH_MILLIS_FROM {
        n * 1e3
    } else {
        n * 1e6
    };
    micros.is_finite().then(|| micros.round() as i64)
}

fn iso_micros(text: &str) -> Option<i64> {
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Some(ts.as_microsecond());
    }
    let civil: DateTime = text.parse().ok()?;
    let zoned = civil.to_zoned(TimeZone::UTC).ok()?;
    Some(zoned.timestamp().as_microsecond())
}

fn formatted_timestamp(value: &Json<'_>, format: &str) -> Option<i64> {
    if format == "millis" {
        let ms = match value {
            Json::Number(n) => n.as_i64()?,
            Json::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        return ms.checked_mul(1000);
    }
    let Json::String(text) = value else {
        return None;
    };
    let pattern = joda_to_strftime(format);
    let parsed = jiff::fmt::strtime::parse(&pattern, text.trim()).ok()?;
    if let Ok(ts) = parsed.to_timestamp() {
        return Some(ts.as_microsecond());
    }
    let civil = parsed.to_datetime().ok()?;
    Some(
        civil
            .to_zoned(TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_microsecond(),
    )
}

/// The Joda-Time pattern letters Hive's formats use, as strftime
/// directives (`'…'` quotes literal text).
fn joda_to_strftime(pattern: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&d| d == c).count();
        if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == '\'')
                .map_or(chars.len(), |p| i + 1 + p);
            out.extend(
                chars[i + 1..end]
                    .iter()
                    .map(|&c| {
                        if c == '%' {
                            "%%".to_owned()
                        } else {
                            c.to_string()
                        }
                    })
                    .collect::<Vec<_>>(),
            );
            i = end + 1;
            continue;
        }
        let directive = match (c, run) {
            ('y', 2) => "%y",
            ('y', _) => "%Y",
            ('M', 1 | 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', _) => "%d",
            ('H', _) => "%H",
            ('h', _) => "%I",
            ('m', _) => "%M",
            ('s', _) => "%S",
            ('S', _) => "%f",
            ('a', _) => "%p",
            ('Z' | 'X', _) => "%z",
            ('%', _) => "%%",
            _ => {
                out.extend(std::iter::repeat_n(c, run));
                i += run;
                continue;
            }
        };
        out.push_str(directive);
        i += run;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// A test value as the parser would give it.
    fn v(value: Value) -> Json<'static> {
        match value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(b),
            Value::Number(n) => Json::Number(n),
            Value::String(s) => Json::String(Cow::Owned(s)),
            Value::Array(items) => Json::Array(items.into_iter().map(v).collect()),
            Value::Object(map) => Json::Object(
                map.into_iter()
                    .map(|(k, x)| (Cow::Owned(k), v(x)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn decimals_are_read_from_their_text_and_rounded_half_up() {
        assert_eq!(decimal(&v(json!(12.345)), 10, 2), Ok(1235));
        assert_eq!(decimal(&v(json!("-0.005")), 5, 2), Ok(-1));
        assert_eq!(decimal(&v(json!("1.5e3")), 6, 1), Ok(15000));
        assert_eq!(
            decimal(&v(json!(123456789012345678u64)), 38, 2),
            Ok(12345678901234567800)
        );
        assert!(decimal(&v(json!("1000")), 3, 0).is_err());
        assert!(decimal(&v(json!("12a")), 10, 0).is_err());
        assert!(decimal(&v(json!(true)), 10, 0).is_err());
    }

    #[test]
    fn default_timestamps_take_iso_and_epoch_forms() {
        let at = 1_518_033_528_000_000;
        for value in [
            json!("2018-02-07T19:58:48Z"),
            json!("2018-02-07 19:58:48"),
            json!(1518033528),
            json!(1518033528000u64),
            json!("1518033528"),
        ] {
            assert_eq!(timestamp(&v(value.clone()), &[]), Ok(at), "{value}");
        }
        assert_eq!(timestamp(&v(json!(1518033528.123)), &[]), Ok(at + 123_000));
        assert!(timestamp(&v(json!("yesterday")), &[]).is_err());
    }

    #[test]
    fn hive_timestamp_formats_include_millis_and_joda_patterns() {
        let formats = vec!["millis".to_owned(), "dd/MM/yyyy HH:mm:ss".to_owned()];
        assert_eq!(
            timestamp(&v(json!(1518033528123u64)), &formats),
            Ok(1_518_033_528_123_000)
        );
        assert_eq!(
            timestamp(&v(json!("07/02/2018 19:58:48")), &formats),
            Ok(1_518_033_528_000_000)
        );
        let iso = vec!["yyyy-MM-dd'T'HH:mm:ss".to_owned()];
        assert_eq!(
            timestamp(&v(json!("2018-02-07T19:58:48")), &iso),
            Ok(1_518_033_528_000_000)
        );
        assert!(timestamp(&v(json!("2018-02-07 19:58:48")), &iso).is_err());
    }

    #[test]
    fn scalars_coerce_as_the_serdes_do() {
        assert_eq!(integer(&v(json!("42")), -128, 127, "tinyint"), Ok(42));
        assert!(integer(&v(json!(300)), -128, 127, "tinyint").is_err());
        assert!(integer(&v(json!(1.5)), i64::MIN, i64::MAX, "bigint").is_err());
        assert_eq!(boolean(&v(json!("TRUE"))), Ok(true));
        assert_eq!(string(&v(json!({"a": 1}))), "{\"a\":1}");
        assert_eq!(truncated(Cow::Borrowed("héllo"), 2), "hé");
        assert_eq!(date(&v(json!("2026-12-06"))), Ok(20793));
        assert_eq!(binary(&v(json!("aGk="))), Ok(b"hi".to_vec()));
    }
}
