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

    pub fn pattern(&mut self, value: Option<&str>, path: &str, pattern: impl ModelPattern) {
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

    /// The violations as AWS's `ValidationException`, in the caller's error
    /// type (each service converts [`ValidationError`] into its own).
    pub fn into_result<E: From<ValidationError>>(self) -> Result<(), E> {
        match self.found.len() {
            0 => Ok(()),
            1 => Err(
                ValidationError(format!("1 validation error detected: {}", self.found[0])).into(),
            ),
            n => Err(ValidationError(format!(
                "{n} validation errors detected: {}",
                self.found.join("; ")
            ))
            .into()),
        }
    }
}

/// AWS's `ValidationException`, with its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(pub String);

/// A pattern of the model's string shapes: each service lists its own.
pub trait ModelPattern {
    /// The pattern as AWS's messages quote it (botocore's model may anchor
    /// it as `^(…)$`; the service's messages do not).
    fn source(&self) -> &'static str;
    /// Whether `text` matches the whole pattern.
    fn matches(&self, text: &str) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_violation_uses_the_singular_form() {
        let mut v = Violations::new();
        v.length(Some(&"a".repeat(129)), "streamName", 1, 128);
        let Err(ValidationError(m)) = v.into_result::<ValidationError>() else {
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
        let Err(ValidationError(m)) = v.into_result::<ValidationError>() else {
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
    fn blobs_and_enums_print_as_aws_prints_them() {
        let mut v = Violations::new();
        v.check(
            false,
            Shown::Bytes(1_048_577),
            "data",
            "Member must have length less than or equal to 1048576",
        );
        v.one_of(Some("X"), "shardIteratorType", &["A", "B"]);
        let Err(ValidationError(m)) = v.into_result::<ValidationError>() else {
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
