//! The constraint checks of the Firehose model: the collecting and the
//! message texts are `riffle-coral`'s (the same Java front end as
//! Kinesis's); the patterns of Firehose's string shapes are listed here.

use riffle_coral::validate::ModelPattern;
pub use riffle_coral::validate::{Shown, ValidationError, Violations};

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
    /// `HttpEndpointUrl`: `https://.*` (AWS delivers over HTTPS only).
    HttpsUrl,
    /// `HttpEndpointName`, `HttpEndpointAttributeName`: `^(?!\s*$).+`.
    NotBlank,
    /// `AmazonopensearchserviceDomainARN`, `ElasticsearchDomainARN`.
    DomainArn,
    /// `AmazonopensearchserviceClusterEndpoint`: `https:.*`.
    HttpsPrefix,
    /// `ClusterJDBCURL`: `jdbc:redshift://` or `jdbc:postgresql://`, a
    /// host with a `redshift` (or `redshift-serverless`) label after the
    /// first, a port and a database.
    ClusterJdbcUrl,
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
            Pattern::HttpsUrl => "https://.*",
            Pattern::NotBlank => r"^(?!\s*$).+",
            Pattern::DomainArn => r"arn:.*:es:[a-zA-Z0-9\-]+:\d{12}:domain/[a-z][-0-9a-z]{2,27}",
            Pattern::HttpsPrefix => "https:.*",
            Pattern::ClusterJdbcUrl => {
                r"jdbc:(redshift|postgresql)://((?!-)[A-Za-z0-9-]{1,63}(?<!-)\.)+(redshift(-serverless)?)\.([a-zA-Z0-9\.\-]+):\d{1,5}/[a-zA-Z0-9_$-]+"
            }
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
            // `.` matches anything but a line break.
            Pattern::HttpsUrl => text.starts_with("https://") && !text.contains('\n'),
            Pattern::NotBlank => !text.trim().is_empty() && !text.contains('\n'),
            Pattern::DomainArn => arn_matches(text, ":es:", |rest| {
                region_account_then(rest, "domain/").is_some_and(|name| {
                    let len = name.len();
                    name.starts_with(|c: char| c.is_ascii_lowercase())
                        && (3..=28).contains(&len)
                        && all_of(name, |c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
                        })
                })
            }),
            Pattern::HttpsPrefix => text.starts_with("https:") && !text.contains('\n'),
            Pattern::ClusterJdbcUrl => jdbc_url_matches(text),
        }
    }
}

/// [`Pattern::ClusterJdbcUrl`]: labels before a `redshift` label, each
/// 1–63 letters, digits and inner hyphens; then `.`, the rest of the host
/// (letters, digits, dots, hyphens), a port of 1–5 digits, `/`, a database.
fn jdbc_url_matches(text: &str) -> bool {
    let Some(rest) = text
        .strip_prefix("jdbc:redshift://")
        .or_else(|| text.strip_prefix("jdbc:postgresql://"))
    else {
        return false;
    };
    let Some((host, tail)) = rest.split_once(':') else {
        return false;
    };
    let Some((port, database)) = tail.split_once('/') else {
        return false;
    };
    let port_ok = (1..=5).contains(&port.len()) && all_of(port, |c| c.is_ascii_digit());
    let database_ok = all_of(database, |c| c.is_ascii_alphanumeric() || "_$-".contains(c));
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && all_of(l, |c| c.is_ascii_alphanumeric() || c == '-')
    };
    let host_ok = (1..labels.len().saturating_sub(1)).any(|i| {
        matches!(labels[i], "redshift" | "redshift-serverless")
            && labels[..i].iter().all(|l| label_ok(l))
            && all_of(&labels[i + 1..].join("."), |c| {
                c.is_ascii_alphanumeric() || ".-".contains(c)
            })
    });
    port_ok && database_ok && host_ok
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
            (Pattern::HttpsUrl, "https://example.com:8443/in?x=1", true),
            (Pattern::HttpsUrl, "http://example.com", false),
            (Pattern::NotBlank, "Datadog", true),
            (Pattern::NotBlank, "  ", false),
            (
                Pattern::DomainArn,
                "arn:aws:es:us-east-1:000000000000:domain/logs-1",
                true,
            ),
            (
                Pattern::DomainArn,
                "arn:aws:es:us-east-1:000000000000:domain/Logs",
                false,
            ),
            (
                Pattern::DomainArn,
                "arn:aws:es:us-east-1:000000000000:domain/ab",
                false,
            ),
            (
                Pattern::HttpsPrefix,
                "https://search-logs.example.com",
                true,
            ),
            (Pattern::HttpsPrefix, "http://127.0.0.1:9200", false),
            (
                Pattern::ClusterJdbcUrl,
                "jdbc:redshift://c1.abc123.us-east-1.redshift.amazonaws.com:5439/dev",
                true,
            ),
            (
                Pattern::ClusterJdbcUrl,
                "jdbc:postgresql://wg.123.us-east-1.redshift-serverless.amazonaws.com:5439/db_1",
                true,
            ),
            (
                Pattern::ClusterJdbcUrl,
                "jdbc:postgresql://riffle.redshift.localhost:5432/postgres",
                true,
            ),
            (
                Pattern::ClusterJdbcUrl,
                "jdbc:postgresql://127.0.0.1:5432/postgres",
                false,
            ),
            (
                Pattern::ClusterJdbcUrl,
                "jdbc:redshift://redshift.amazonaws.com:5439/dev",
                false,
            ),
            (
                Pattern::ClusterJdbcUrl,
                "jdbc:mysql://c.redshift.amazonaws.com:5439/dev",
                false,
            ),
            (
                Pattern::ClusterJdbcUrl,
                "jdbc:redshift://-c.redshift.amazonaws.com:5439/dev",
                false,
            ),
        ];
        for (pattern, text, ok) in table {
            assert_eq!(pattern.matches(text), ok, "{pattern:?} {text}");
        }
    }
}
