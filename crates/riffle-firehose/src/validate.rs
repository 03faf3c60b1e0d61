//! Constraint checks from the API model (lengths, ranges, patterns, enums),
//! collected into one `ValidationException` in AWS's text form:
//! `2 validation errors detected: Value '0' at 'limit' failed to
//! satisfy constraint: Member must have value greater than or equal to 1;
//! Value null at 'deliveryStreamName' failed to satisfy constraint: Member must not be null`.

use std::fmt::Display;

use crate::FirehoseError;

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

    pub fn into_result(self) -> Result<(), FirehoseError> {
        match self.found.len() {
            0 => Ok(()),
            1 => Err(FirehoseError::Validation(format!(
                "1 validation error detected: {}",
                self.found[0]
            ))),
            n => Err(FirehoseError::Validation(format!(
                "{n} validation errors detected: {}",
                self.found.join("; ")
            ))),
        }
    }
}

/// The patterns of the model's string shapes (Java regexes, matched whole).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// `DeliveryStreamName`: `[a-zA-Z0-9_.-]+`.
    Name,
    /// `RoleARN`.
    RoleArn,
    /// `BucketARN`.
    BucketArn,
    /// `KinesisStreamARN`.
    KinesisStreamArn,
    /// `AWSKMSKeyARNForSSE`.
    KmsKeyArn,
    /// `DeliveryStreamVersionId`: `[0-9]+`.
    VersionId,
    /// `DestinationId`: `[a-zA-Z0-9-]+`.
    DestinationId,
    /// `FileExtension`.
    FileExtension,
    /// `CustomTimeZone`.
    CustomTimeZone,
    /// `TagKey`: no `aws:` prefix, then the tag characters.
    TagKey,
    /// `TagValue`: the tag characters.
    TagValue,
}

impl Pattern {
    pub fn source(self) -> &'static str {
        match self {
            Pattern::Name => "[a-zA-Z0-9_.-]+",
            Pattern::RoleArn => r"arn:.*:iam::\d{12}:role/[a-zA-Z_0-9+=,.@\-_/]+",
            Pattern::BucketArn => r"arn:.*:s3:::[\w\.\-]{1,255}",
            Pattern::KinesisStreamArn => {
                r"arn:.*:kinesis:[a-zA-Z0-9\-]+:\d{12}:stream/[a-zA-Z0-9_.-]+"
            }
            Pattern::KmsKeyArn => r"arn:.*:kms:[a-zA-Z0-9\-]+:\d{12}:key/[a-zA-Z_0-9+=,.@\-_/]+",
            Pattern::VersionId => "[0-9]+",
            Pattern::DestinationId => "[a-zA-Z0-9-]+",
            Pattern::FileExtension => r"^$|\.[0-9a-z!\-_.*'()]+",
            Pattern::CustomTimeZone => "^$|[a-zA-Z/_]+",
            Pattern::TagKey => r"^(?!aws:)[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$",
            Pattern::TagValue => r"^[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$",
        }
    }

    pub fn matches(self, text: &str) -> bool {
        let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
        let role_char = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-/".contains(c);
        match self {
            Pattern::Name => all_of(text, name_char),
            Pattern::RoleArn => arn_matches(text, ":iam::", |rest| {
                account_then(rest, "role/").is_some_and(|r| all_of(r, role_char))
            }),
            Pattern::BucketArn => arn_matches(text, ":s3:::", |rest| {
                let len = rest.chars().count();
                (1..=255).contains(&len)
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            }),
            Pattern::KinesisStreamArn => arn_matches(text, ":kinesis:", |rest| {
                region_account_then(rest, "stream/").is_some_and(|r| all_of(r, name_char))
            }),
            Pattern::KmsKeyArn => arn_matches(text, ":kms:", |rest| {
                region_account_then(rest, "key/").is_some_and(|r| all_of(r, role_char))
            }),
            Pattern::VersionId => all_of(text, |c| c.is_ascii_digit()),
            Pattern::DestinationId => all_of(text, |c| c.is_ascii_alphanumeric() || c == '-'),
            Pattern::FileExtension => {
                text.is_empty()
                    || text.strip_prefix('.').is_some_and(|rest| {
                        all_of(rest, |c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || "!-_.*'()".contains(c)
                        })
                    })
            }
            Pattern::CustomTimeZone => {
                text.is_empty() || all_of(text, |c| c.is_ascii_alphabetic() || "/_".contains(c))
            }
            Pattern::TagKey => !text.starts_with("aws:") && text.chars().all(tag_char),
            Pattern::TagValue => text.chars().all(tag_char),
        }
    }
}

/// `\p{L}\p{Z}\p{N}` and `_.:/=+-@%`.
fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || c == '\u{a0}' || "_.:/=+-@%".contains(c)
}

/// One or more characters, all of them `ok`.
fn all_of(text: &str, ok: impl Fn(char) -> bool) -> bool {
    !text.is_empty() && text.chars().all(ok)
}

/// `arn:.*<service><rest>` with `rest` accepted by `tail`, for some split
/// (the `.*` backtracks over every occurrence of `service`).
fn arn_matches(text: &str, service: &str, tail: impl Fn(&str) -> bool) -> bool {
    text.starts_with("arn:")
        && !text.contains('\n')
        && text[3..]
            .match_indices(service)
            .any(|(at, _)| tail(&text[3 + at + service.len()..]))
}

/// `\d{12}:<resource>` → what follows `<resource>`.
fn account_then<'t>(text: &'t str, resource: &str) -> Option<&'t str> {
    let (account, rest) = text.split_at_checked(12)?;
    let ok = account.bytes().all(|b| b.is_ascii_digit());
    rest.strip_prefix(':')?
        .strip_prefix(resource)
        .filter(|_| ok)
}

/// `[a-zA-Z0-9\-]+:\d{12}:<resource>` → what follows `<resource>`.
fn region_account_then<'t>(text: &'t str, resource: &str) -> Option<&'t str> {
    let (region, rest) = text.split_once(':')?;
    let region_ok = all_of(region, |c| c.is_ascii_alphanumeric() || c == '-');
    account_then(rest, resource).filter(|_| region_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_violation_uses_the_singular_form() {
        let mut v = Violations::new();
        v.length(Some(&"a".repeat(129)), "deliveryStreamName", 1, 128);
        let Err(FirehoseError::Validation(m)) = v.into_result() else {
            panic!()
        };
        assert_eq!(
            m,
            format!(
                "1 validation error detected: Value '{}' at 'deliveryStreamName' failed to satisfy constraint: \
                 Member must have length less than or equal to 128",
                "a".repeat(129)
            )
        );
    }

    #[test]
    fn several_violations_are_joined_in_check_order() {
        let mut v = Violations::new();
        v.range(Some(0), "limit", Some(1), None);
        v.required(&None::<()>, "deliveryStreamName");
        let Err(FirehoseError::Validation(m)) = v.into_result() else {
            panic!()
        };
        assert_eq!(
            m,
            "2 validation errors detected: Value '0' at 'limit' failed to satisfy constraint: \
             Member must have value greater than or equal to 1; Value null at 'deliveryStreamName' failed to \
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
                Pattern::RoleArn,
                "arn:aws:iam::123456789012:role/firehose_delivery_role",
                true,
            ),
            (Pattern::RoleArn, "arn:aws:iam::12345:role/r", false),
            (Pattern::RoleArn, "arn:aws:iam::123456789012:user/r", false),
            (Pattern::BucketArn, "arn:aws:s3:::my-bucket.logs", true),
            (Pattern::BucketArn, "arn:aws:s3:::", false),
            (Pattern::BucketArn, "arn:aws:s3:::a/b", false),
            (
                Pattern::KinesisStreamArn,
                "arn:aws:kinesis:us-east-1:000000000000:stream/orders",
                true,
            ),
            (
                Pattern::KinesisStreamArn,
                "arn:aws:kinesis:us-east-1:000000000000:stream/",
                false,
            ),
            (
                Pattern::KmsKeyArn,
                "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab",
                true,
            ),
            (Pattern::VersionId, "12", true),
            (Pattern::VersionId, "1a", false),
            (Pattern::DestinationId, "destinationId-000000000001", true),
            (Pattern::DestinationId, "dest_1", false),
            (Pattern::FileExtension, "", true),
            (Pattern::FileExtension, ".json.gz", true),
            (Pattern::FileExtension, "json", false),
            (Pattern::FileExtension, ".JSON", false),
            (Pattern::CustomTimeZone, "America/New_York", true),
            (Pattern::CustomTimeZone, "UTC+1", false),
            (Pattern::TagKey, "team:data/x", true),
            (Pattern::TagKey, "aws:owner", false),
            (Pattern::TagKey, "a#b", false),
            (Pattern::TagValue, "", true),
            (Pattern::TagValue, "héllo wörld", true),
        ];
        for (pattern, text, ok) in table {
            assert_eq!(pattern.matches(text), ok, "{pattern:?} {text}");
        }
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
        v.one_of(Some("X"), "deliveryStreamType", &["A", "B"]);
        let Err(FirehoseError::Validation(m)) = v.into_result() else {
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
