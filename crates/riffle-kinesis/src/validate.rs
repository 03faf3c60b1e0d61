//! The constraint checks of the Kinesis model: the collecting and the
//! message texts are `riffle-coral`'s (AWS's Java front end words them the
//! same for every service); the patterns of Kinesis's string shapes are
//! listed here.
//!
//! Within one member AWS reports a broken pattern before a broken length
//! (`Value '' at 'streamName'`: the pattern `[a-zA-Z0-9_.-]+`, then the
//! minimum length), so callers check `pattern` before `length`.

use riffle_coral::validate::ModelPattern;
pub use riffle_coral::validate::{Shown, ValidationError, Violations};

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

impl ModelPattern for Pattern {
    fn source(&self) -> &'static str {
        Pattern::source(*self)
    }

    fn matches(&self, text: &str) -> bool {
        Pattern::matches(*self, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let Err(ValidationError(m)) = v.into_result::<ValidationError>() else {
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
}
