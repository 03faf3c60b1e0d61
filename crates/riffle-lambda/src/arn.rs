//! The names a function goes by: Lambda's `FunctionName` forms, parsed into
//! a function name and an optional qualifier.
//!
//! Lambda accepts, for one function `my-function`:
//! - the name: `my-function` (and `my-function:QUALIFIER`);
//! - a partial ARN: `123456789012:function:my-function[:QUALIFIER]`;
//! - the full ARN:
//!   `arn:aws:lambda:us-west-2:123456789012:function:my-function[:QUALIFIER]`.
//!
//! The region and account of an ARN are checked for form only: a
//! configuration copied from AWS names the function of another account, and
//! the name is what finds it in `[functions]`.

use crate::errors::LambdaError;

/// Lambda's limit on a function's name (the CreateFunction `FunctionName`
/// of the name form: "The length constraint applies only to the full ARN. If
/// you specify only the function name, it is limited to 64 characters").
pub const FUNCTION_NAME_MAX: usize = 64;
/// Lambda's limit on a version number or alias (`Qualifier`, 1-128).
pub const QUALIFIER_MAX: usize = 128;
/// Lambda's limit on the whole `FunctionName` of Invoke (1-170 characters).
pub const FUNCTION_NAME_ARG_MAX: usize = 170;

/// A function name with its qualifier, as a caller named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedName {
    pub name: String,
    /// `$LATEST`, a version number or an alias; `None` when not given.
    pub qualifier: Option<String>,
}

/// Parses any of the forms Lambda accepts for a function.
pub fn parse(given: &str) -> Result<ParsedName, LambdaError> {
    let invalid = |reason| LambdaError::InvalidName {
        given: given.to_owned(),
        reason,
    };
    if given.is_empty() || given.len() > FUNCTION_NAME_ARG_MAX {
        return Err(invalid("it must be 1 to 170 characters"));
    }
    let parts: Vec<&str> = given.split(':').collect();
    let rest: &[&str] = match parts.as_slice() {
        [
            "arn",
            partition,
            service,
            region,
            account,
            "function",
            rest @ ..,
        ] => {
            if !partition.starts_with("aws") || *service != "lambda" {
                return Err(invalid("an ARN must be arn:aws:lambda:…"));
            }
            if !is_region(region) {
                return Err(invalid("the ARN's region is not a region"));
            }
            if !is_account(account) {
                return Err(invalid("the ARN's account is not 12 digits"));
            }
            rest
        }
        ["arn", ..] => {
            return Err(invalid(
                "an ARN must be arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]",
            ));
        }
        [account, "function", rest @ ..] if is_account(account) => rest,
        rest => rest,
    };
    let (name, qualifier) = match rest {
        [name] => (*name, None),
        [name, qualifier] => (*name, Some(*qualifier)),
        _ => return Err(invalid("too many or too few `:`-separated parts")),
    };
    if !is_name(name) {
        return Err(invalid(
            "a function name is 1 to 64 letters, digits, hyphens or underscores",
        ));
    }
    if let Some(q) = qualifier
        && !is_qualifier(q)
    {
        return Err(invalid(
            "a qualifier is $LATEST, or 1 to 128 letters, digits, hyphens or underscores",
        ));
    }
    Ok(ParsedName {
        name: name.to_owned(),
        qualifier: qualifier.map(str::to_owned),
    })
}

/// The full ARN of a function, as Lambda hands it to the runtime
/// (`Lambda-Runtime-Invoked-Function-Arn`): qualified when it was invoked so.
pub fn function_arn(region: &str, account: &str, name: &str, qualifier: Option<&str>) -> String {
    match qualifier {
        Some(q) => format!("arn:aws:lambda:{region}:{account}:function:{name}:{q}"),
        None => format!("arn:aws:lambda:{region}:{account}:function:{name}"),
    }
}

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Whether `name` is a function name Lambda allows.
pub fn is_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= FUNCTION_NAME_MAX && name.chars().all(word_char)
}

fn is_qualifier(q: &str) -> bool {
    q == "$LATEST" || (!q.is_empty() && q.len() <= QUALIFIER_MAX && q.chars().all(word_char))
}

fn is_account(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

/// `[a-z]{2}(-gov)?-[a-z]+-\d`, Lambda's pattern for a region.
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let (first, middle, last) = match parts.as_slice() {
        [first, middle @ .., last] if !middle.is_empty() => (*first, middle, *last),
        _ => return false,
    };
    let lower = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
    first.len() == 2
        && lower(first)
        && middle.len() <= 2
        && middle.iter().all(|p| lower(p))
        && (middle.len() == 1 || middle[0] == "gov")
        && last.len() == 1
        && last.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(given: &str) -> (String, Option<String>) {
        let parsed = parse(given).unwrap_or_else(|e| panic!("{given}: {e}"));
        (parsed.name, parsed.qualifier)
    }

    #[test]
    fn every_form_lambda_accepts_names_the_same_function() {
        let plain = ("my-function".to_owned(), None);
        assert_eq!(ok("my-function"), plain);
        assert_eq!(ok("123456789012:function:my-function"), plain);
        assert_eq!(
            ok("arn:aws:lambda:us-west-2:123456789012:function:my-function"),
            plain
        );
        assert_eq!(
            ok("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:my-function"),
            plain
        );
    }

    #[test]
    fn a_qualifier_is_kept_in_every_form() {
        let v1 = ("f_1".to_owned(), Some("v1".to_owned()));
        assert_eq!(ok("f_1:v1"), v1);
        assert_eq!(ok("123456789012:function:f_1:v1"), v1);
        assert_eq!(
            ok("arn:aws:lambda:eu-central-1:123456789012:function:f_1:v1"),
            v1
        );
        assert_eq!(ok("f:$LATEST").1.as_deref(), Some("$LATEST"));
    }

    #[test]
    fn malformed_names_are_refused_with_the_reason() {
        for bad in [
            "",
            "has space",
            "a:b:c",
            "arn:aws:s3:us-east-1:123456789012:function:f",
            "arn:aws:lambda:us-east-1:1234:function:f",
            "arn:aws:lambda:nowhere:123456789012:function:f",
            "arn:aws:lambda:us-east-1:123456789012:layer:f",
            "f:$NEWEST",
            "f:",
            ":f",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(
                matches!(err, LambdaError::InvalidName { .. }),
                "{bad}: {err}"
            );
        }
        assert!(parse(&"f".repeat(FUNCTION_NAME_MAX)).is_ok());
        assert!(parse(&"f".repeat(FUNCTION_NAME_MAX + 1)).is_err());
    }

    #[test]
    fn the_invoked_arn_carries_the_qualifier_it_was_invoked_with() {
        assert_eq!(
            function_arn("us-east-1", "000000000000", "f", Some("live")),
            "arn:aws:lambda:us-east-1:000000000000:function:f:live"
        );
        assert_eq!(
            function_arn("us-east-1", "000000000000", "f", None),
            "arn:aws:lambda:us-east-1:000000000000:function:f"
        );
    }
}
