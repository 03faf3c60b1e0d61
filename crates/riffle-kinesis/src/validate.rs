//! Constraint checks from the API model (lengths, ranges, patterns, enums),
//! collected into one `ValidationException` in AWS's text form:
//! `2 validation errors detected: Value '0' at 'shardCount' failed to
//! satisfy constraint: Member must have value greater than or equal to 1;
//! Value null at 'streamName' failed to satisfy constraint: Member must not be null`.
//!
//! Within one member AWS reports a broken pattern before a broken length
//! (`Value '' at 'streamName'`: the pattern `[a-zA-Z0-9_.-]+`, then the
//! minimum length), so callers check `pattern` before `length`.

use std::fmt::Display;

use crate::KinesisError;

/// AWS reports at most this many violations in one message.
const VIOLATIONS_MAX: usize = 10;

/// The violations found in one request, in the order they were checked.
#[derive(Debug, Default)]
pub struct Violations {
    found: Vec<String>,
}

/// A member's value as AWS prints it in a violation.
pub enum Shown<'a> {
    Null,
    Text(&'a str),
    Number(i64),
    /// A blob of this many bytes: Java prints the `ByteBuffer`.
    Bytes(usize),
}

impl Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shown::Null => f.write_str("null"),
            Shown::Text(text) => write!(f, "'{text}'"),
            Shown::Number(n) => write!(f, "'{n}'"),
            Shown::Bytes(n) => write!(f, "'java.nio.HeapByteBuffer[pos=0 lim={n} cap={n}]'"),
        }
    }
}

impl Violations {
    pub fn new() -> Violations {
        Violations::default()
    }

    /// Records a violation unless `ok`. The texts are only formatted for
    /// a violation, so valid requests cost no allocation here.
    pub fn check(&mut self, ok: bool, shown: Shown<'_>, path: &str, constraint: impl Display) {
        if !ok && self.found.len() < VIOLATIONS_MAX {
            self.found.push(format!(
                "Value {shown} at '{path}' failed to satisfy constraint: {constraint}"
            ));
        }
    }

    pub fn required<T>(&mut self, value: &Option<T>, path: &str) {
        self.check(
            value.is_some(),
            Shown::Null,
            path,
            "Member must not be null",
        );
    }

    /// Length bounds of a string, counted in UTF-16 units as AWS (Java) does.
    pub fn length(&mut self, value: Option<&str>, path: &str, min: usize, max: usize) {
        let Some(text) = value else { return };
        let len = text.encode_utf16().count();
        let shown = || Shown::Text(text);
        let at_least = format_args!("Member must have length greater than or equal to {min}");
        self.check(len >= min, shown(), path, at_least);
        let at_most = format_args!("Member must have length less than or equal to {max}");
        self.check(len <= max, shown(), path, at_most);
    }

    pub fn pattern(&mut self, value: Option<&str>, path: &str, pattern: Pattern) {
        let Some(text) = value else { return };
        let source = pattern.source();
        let constraint = format_args!("Member must satisfy regular expression pattern: {source}");
        self.check(pattern.matches(text), Shown::Text(text), path, constraint);
    }

    pub fn range(&mut self, value: Option<i64>, path: &str, min: Option<i64>, max: Option<i64>) {
        let Some(n) = value else { return };
        if let Some(min) = min {
            let constraint = format_args!("Member must have value greater than or equal to {min}");
            self.check(n >= min, Shown::Number(n), path, constraint);
        }
        if let Some(max) = max {
            let constraint = format_args!("Member must have value less than or equal to {max}");
            self.check(n <= max, Shown::Number(n), path, constraint);
        }
    }

    pub fn one_of(&mut self, value: Option<&str>, path: &str, allowed: &[&str]) {
        let Some(text) = value else { return };
        if !allowed.contains(&text) {
            let constraint = format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            );
            self.check(false, Shown::Text(text), path, constraint);
        }
    }

    pub fn into_result(self) -> Result<(), KinesisError> {
        match self.found.len() {
            0 => Ok(()),
            1 => Err(KinesisError::Validation(format!(
                "1 validation error detected: {}",
                self.found[0]
            ))),
            n => Err(KinesisError::Validation(format!(
                "{n} validation errors detected: {}",
                self.found.join("; ")
            ))),
        }
    }
}

/// The patterns of the model's string shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// `StreamName`, `ShardId`: `[a-zA-Z0-9_.-]+`.
    Name,
    /// `StreamARN`: `arn:aws.*:kinesis:.*:\d{12}:stream/\S+`.
    StreamArn,
    /// `StreamId`: `[a-z0-9]{20}-[a-z0-9]{3}`.
    StreamId,
    /// `HashKey`: `0|([1-9]\d{0,38})` (botocore's model anchors it as
    /// `^(…)$`; AWS's messages quote the service's own form, unanchored).
    HashKey,
    /// `SequenceNumber`: `0|([1-9]\d{0,128})`, quoted the same way.
    SequenceNumber,
}

impl Pattern {
    pub fn source(self) -> &'static str {
        match self {
            Pattern::Name => "[a-zA-Z0-9_.-]+",
            Pattern::StreamArn => r"arn:aws.*:kinesis:.*:\d{12}:stream/\S+",
            Pattern::StreamId => "[a-z0-9]{20}-[a-z0-9]{3}",
            Pattern::HashKey => r"0|([1-9]\d{0,38})",
            Pattern::SequenceNumber => r"0|([1-9]\d{0,128})",
        }
    }

    pub fn matches(self, text: &str) -> bool {
        match self {
            Pattern::Name => {
                !text.is_empty()
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
            }
            Pattern::StreamArn => arn_matches(text),
            Pattern::StreamId => {
                let b = text.as_bytes();
                let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
                b.len() == 24 && b[20] == b'-' && b[..20].iter().all(ok) && b[21..].iter().all(ok)
            }
            Pattern::HashKey => decimal_matches(text, 38),
            Pattern::SequenceNumber => decimal_matches(text, 128),
        }
    }
}

/// `0` or a non-zero digit followed by at most `rest_max` digits.
fn decimal_matches(text: &str, rest_max: usize) -> bool {
    match text.as_bytes() {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.len() <= rest_max && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

fn arn_matches(text: &str) -> bool {
    const STREAM: &str = ":stream/";
    text.match_indices(STREAM).any(|(at, _)| {
        let name = &text[at + STREAM.len()..];
        let head = &text[..at];
        let name_ok = !name.is_empty() && !name.chars().any(char::is_whitespace);
        let Some(before_account) = head.len().checked_sub(13) else {
            return false;
        };
        let account_ok = head.as_bytes()[before_account] == b':'
            && head.as_bytes()[before_account + 1..]
                .iter()
                .all(u8::is_ascii_digit);
        let prefix = &head[..before_account];
        let prefix_ok = prefix.starts_with("arn:aws") && prefix[7..].contains(":kinesis:");
        name_ok && account_ok && prefix_ok && !text.contains('\n')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_violation_uses_the_singular_form() {
        let mut v = Violations::new();
        v.length(Some(&"a".repeat(129)), "streamName", 1, 128);
        let Err(KinesisError::Validation(m)) = v.into_result() else {
            panic!()
        };
        assert_eq!(
            m,
            format!(
                "1 validation error detected: Value '{}' at 'streamName' failed to satisfy constraint: \
                 Member must have length less than or equal to 128",
                "a".repeat(129)
            )
        );
    }

    #[test]
    fn several_violations_are_joined_in_check_order() {
        let mut v = Violations::new();
        v.range(Some(0), "shardCount", Some(1), None);
        v.required(&None::<()>, "streamName");
        let Err(KinesisError::Validation(m)) = v.into_result() else {
            panic!()
        };
        assert_eq!(
            m,
            "2 validation errors detected: Value '0' at 'shardCount' failed to satisfy constraint: \
             Member must have value greater than or equal to 1; Value null at 'streamName' failed to \
             satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn patterns_match_the_model() {
        let table = [
            (Pattern::Name, "a-b_c.9", true),
            (Pattern::Name, "", false),
            (Pattern::Name, "a b", false),
            (
                Pattern::StreamArn,
                "arn:aws:kinesis:us-east-1:000000000000:stream/s",
                true,
            ),
            (
                Pattern::StreamArn,
                "arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s.x",
                true,
            ),
            (
                Pattern::StreamArn,
                "arn:aws:kinesis:us-east-1:00000000000:stream/s",
                false,
            ),
            (
                Pattern::StreamArn,
                "arn:aws:kinesis:us-east-1:000000000000:stream/",
                false,
            ),
            (
                Pattern::StreamArn,
                "arn:aws:sqs:us-east-1:000000000000:stream/s",
                false,
            ),
            (Pattern::StreamId, "abcdefghij0123456789-abc", true),
            (Pattern::StreamId, "ABCDEFGHIJ0123456789-abc", false),
            (Pattern::HashKey, "0", true),
            (Pattern::HashKey, "01", false),
            (
                Pattern::SequenceNumber,
                "49590338271490256608559692538361571095921575989136588898",
                true,
            ),
        ];
        for (pattern, text, ok) in table {
            assert_eq!(pattern.matches(text), ok, "{pattern:?} {text}");
        }
    }

    #[test]
    fn patterns_are_quoted_as_the_service_writes_them() {
        // botocore anchors the decimal patterns as `^(…)$`; AWS's messages
        // quote them bare.
        let table = [
            (Pattern::HashKey, r"0|([1-9]\d{0,38})"),
            (Pattern::SequenceNumber, r"0|([1-9]\d{0,128})"),
            (Pattern::Name, "[a-zA-Z0-9_.-]+"),
            (
                Pattern::StreamArn,
                r"arn:aws.*:kinesis:.*:\d{12}:stream/\S+",
            ),
            (Pattern::StreamId, "[a-z0-9]{20}-[a-z0-9]{3}"),
        ];
        for (pattern, source) in table {
            assert_eq!(pattern.source(), source);
        }
        let mut v = Violations::new();
        v.pattern(Some("01"), "newStartingHashKey", Pattern::HashKey);
        let Err(KinesisError::Validation(m)) = v.into_result() else {
            panic!()
        };
        assert!(
            m.ends_with(r"Member must satisfy regular expression pattern: 0|([1-9]\d{0,38})"),
            "{m}"
        );
        // The decimal patterns: no leading zero, at most 39 / 129 digits.
        let longest_key = format!("1{}", "0".repeat(38));
        assert!(Pattern::HashKey.matches(&longest_key));
        assert!(!Pattern::HashKey.matches(&format!("{longest_key}0")));
        assert!(!Pattern::SequenceNumber.matches("-1"));
        assert!(!Pattern::SequenceNumber.matches(""));
    }

    #[test]
    fn blobs_and_enums_print_as_aws_prints_them() {
        let mut v = Violations::new();
        v.check(
            false,
            Shown::Bytes(1_048_577),
            "data",
            "Member must have length less than or equal to 1048576",
        );
        v.one_of(Some("X"), "shardIteratorType", &["A", "B"]);
        let Err(KinesisError::Validation(m)) = v.into_result() else {
            panic!()
        };
        assert!(
            m.contains("Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]' at 'data'"),
            "{m}"
        );
        assert!(
            m.ends_with("Member must satisfy enum value set: [A, B]"),
            "{m}"
        );
    }
}
