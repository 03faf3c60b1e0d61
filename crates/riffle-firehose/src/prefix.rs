//! AWS's custom S3 prefixes and the names of delivered objects.
//!
//! A delivery stream's `Prefix` and `ErrorOutputPrefix` are checked once, when
//! the destination is configured ([`S3Prefixes::new`]), and evaluated for each
//! object delivered ([`S3Prefixes::evaluate`], [`S3Prefixes::evaluate_error`]),
//! as pure functions of the arrival time and an injectable [`RandomSource`].
//!
//! The rules, from AWS's pages "Custom Prefixes for Amazon S3 Objects"
//! (`s3-prefixes`) and "Amazon S3 Object Name Format" (`s3-object-name`), and
//! the messages the service answers with (which the API sends as
//! `InvalidArgumentException`):
//! - Expressions are `!{namespace:value}`; the namespaces are `timestamp`,
//!   `firehose`, `partitionKeyFromQuery` and `partitionKeyFromLambda`; any
//!   other is refused ("Namespace to the left of colon (x) is an invalid
//!   keyword!"). The sequence `!{` appears only as the start of an expression:
//!   one never closed, one without a colon or one nested in another is
//!   "Invalid expression usage".
//! - `!{timestamp:p}` formats the arrival time of the object's oldest record
//!   with the `java.time.format.DateTimeFormatter` pattern `p` (the subset in
//!   [`datetime`]), in UTC or the destination's `CustomTimeZone`; text in
//!   single quotes is literal. Every timestamp of one prefix is the same
//!   instant. A letter Java does not know, or a wrong count of one it knows,
//!   is "Invalid conversion character used in the value of the expression in
//!   Prefix" (or `ErrorOutputPrefix`); so is a `firehose` value other than
//!   `random-string` and `error-output-type`.
//! - `!{firehose:random-string}` is 11 random letters and digits, new at each use;
//!   `!{firehose:error-output-type}` is the failure's kind
//!   (`processing-failed`, …), the same at each use, and only in
//!   `ErrorOutputPrefix` ("Prefix must not contain any occurrence of …").
//! - A `Prefix` with expressions needs an `ErrorOutputPrefix` ("ErrorOutputPrefix
//!   cannot be null or empty when Prefix contains expressions"); an
//!   `ErrorOutputPrefix` with expressions must use `error-output-type` at least
//!   once, and never the partition-key namespaces.
//! - `partitionKeyFromQuery`/`partitionKeyFromLambda` parse, but are valid
//!   only with dynamic partitioning: [`S3Prefixes::uses_partition_keys`] and
//!   [`S3Prefixes::check_dynamic_partitioning`] let the API refuse them.
//! - No prefix: `YYYY/MM/dd/HH/` of the arrival time. A `Prefix` without a
//!   timestamp expression gets `!{timestamp:yyyy/MM/dd/HH/}` appended. No
//!   `ErrorOutputPrefix` (so a literal `Prefix`): failed records go under
//!   `<Prefix><error-output-type>/YYYY/MM/dd/HH/`.
//! - Neither evaluates to more than 512 characters (checked at configuration
//!   on an evaluation with the longest error type; the error prefix derived
//!   when none is given is not checked).
//! - Object names are `<evaluated prefix><stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid><extension>`,
//!   the time in the same zone; the extension is the `FileExtension` if one is
//!   set (`^$|\.[0-9a-z!\-_.*'()]+`, at most 128 characters), else the
//!   compression format's.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Longest `Prefix` or `ErrorOutputPrefix` once evaluated ("Custom Prefixes
/// for Amazon S3 Objects", semantic rules).
pub const MAX_EVALUATED_PREFIX_CHARS: usize = 512;
/// Length of `!{firehose:random-string}` ("Custom Prefixes", firehose namespace).
pub const RANDOM_STRING_CHARS: usize = 11;
/// Longest `FileExtension` (botocore model, shape `FileExtension`).
pub const MAX_FILE_EXTENSION_CHARS: usize = 128;
/// Longest `CustomTimeZone` (botocore model, shape `CustomTimeZone`).
pub const MAX_TIME_ZONE_CHARS: usize = 50;

/// The lead-in AWS puts before its prefix-constraint messages. Observed in
/// full for the missing-ErrorOutputPrefix case (typo included); the sibling
/// constraints of the same validator are given the same lead-in.
const CONSTRAINT_LEAD: &str = "Ths supplied prefix(es) do not satisfy the following constraint: ";

/// Which of the two prefix fields a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Prefix,
    ErrorOutputPrefix,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Prefix => "Prefix",
            Field::ErrorOutputPrefix => "ErrorOutputPrefix",
        }
    }

    /// The word AWS uses in its length message ("evaluated prefix" but
    /// "evaluated ErrorOutputPrefix").
    fn length_label(self) -> &'static str {
        match self {
            Field::Prefix => "prefix",
            Field::ErrorOutputPrefix => "ErrorOutputPrefix",
        }
    }
}

/// A destination's prefixes, time zone or file extension that AWS refuses.
/// The display text is AWS's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error(
        "{CONSTRAINT_LEAD}ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"
    )]
    ErrorOutputPrefixRequired,
    #[error(
        "{CONSTRAINT_LEAD}ErrorOutputPrefix must contain at least one occurrence of !{{firehose:error-output-type}}"
    )]
    ErrorOutputTypeRequired,
    #[error(
        "{CONSTRAINT_LEAD}Prefix must not contain any occurrence of !{{firehose:error-output-type}}"
    )]
    ErrorOutputTypeInPrefix,
    #[error("Invalid expression usage")]
    InvalidExpression { field: Field },
    #[error("Namespace to the left of colon ({namespace}) is an invalid keyword!")]
    UnknownNamespace { field: Field, namespace: String },
    #[error("Invalid conversion character used in the value of the expression in {}", field.name())]
    InvalidValue { field: Field },
    #[error("Length of evaluated {} cannot be greater than {MAX_EVALUATED_PREFIX_CHARS}", field.length_label())]
    TooLong { field: Field },
    #[error("Dynamic Partitioning Namespaces can't be part of an error prefix expression")]
    PartitionKeyInErrorPrefix,
    #[error(
        "Dynamic Partitioning Namespaces can only be part of a prefix expression when Dynamic Partitioning is enabled."
    )]
    PartitionKeyWithoutDynamicPartitioning,
    #[error(
        "S3 Prefix should contain Dynamic Partitioning namespaces when Dynamic Partitioning is enabled"
    )]
    DynamicPartitioningWithoutPartitionKey,
    // Not a message seen from AWS: the model only bounds the shape.
    #[error("CustomTimeZone {name} is not a supported time zone")]
    UnknownTimeZone { name: String },
    // Not a message seen from AWS: the model only bounds the shape.
    #[error(
        "FileExtension {extension} is invalid: it must start with a period and use only 0-9a-z!-_.*'()"
    )]
    InvalidFileExtension { extension: String },
}

/// Why records are written under the error prefix; the value of
/// `!{firehose:error-output-type}` ("Custom Prefixes", firehose namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorOutputType {
    ProcessingFailed,
    FormatConversionFailed,
    /// Records the Decompression processor could not decompress, as they
    /// came ("Troubleshoot decompression in Firehose").
    DecompressionFailed,
    ElasticsearchFailed,
    SplunkFailed,
    HttpEndpointFailed,
}

impl ErrorOutputType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorOutputType::ProcessingFailed => "processing-failed",
            ErrorOutputType::FormatConversionFailed => "format-conversion-failed",
            ErrorOutputType::DecompressionFailed => "decompression-failed",
            ErrorOutputType::ElasticsearchFailed => "elasticsearch-failed",
            ErrorOutputType::SplunkFailed => "splunk-failed",
            ErrorOutputType::HttpEndpointFailed => "http-endpoint-failed",
        }
    }

    /// The longest value, for the configuration-time length check.
    const LONGEST: ErrorOutputType = ErrorOutputType::FormatConversionFailed;
}

/// Where random characters come from, so tests can fix them.
pub trait RandomSource {
    fn fill(&mut self, buf: &mut [u8]);
}

/// The thread's cryptographically seeded generator.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadRandom;

impl RandomSource for ThreadRandom {
    fn fill(&mut self, buf: &mut [u8]) {
        rand::RngCore::fill_bytes(&mut rand::rng(), buf);
    }
}

/// The characters of `!{firehose:random-string}`. AWS's pages show
/// `ztWxkdg3Thg` (Amazon S3 examples of the CloudWatch Logs tutorial) and
/// `5abf82daaa5` ("Custom Prefixes"): letters of both cases and digits.
const RANDOM_ALPHABET: &[u8; 62] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `!{firehose:random-string}`: 11 characters drawn uniformly from
/// [`RANDOM_ALPHABET`] (bytes of 248 and above are drawn again, so that no
/// character is likelier than another).
pub fn random_string(rng: &mut dyn RandomSource) -> String {
    const UNBIASED_BELOW: u8 = (256 / RANDOM_ALPHABET.len() * RANDOM_ALPHABET.len()) as u8;
    let mut out = String::with_capacity(RANDOM_STRING_CHARS);
    let mut byte = [0u8; 1];
    while out.len() < RANDOM_STRING_CHARS {
        rng.fill(&mut byte);
        if byte[0] < UNBIASED_BELOW {
            out.push(char::from(
                RANDOM_ALPHABET[usize::from(byte[0]) % RANDOM_ALPHABET.len()],
            ));
        }
    }
    out
}

/// The UUID at the end of an object name (a random, version 4 UUID).
pub fn random_uuid(rng: &mut dyn RandomSource) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    rng.fill(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// One part of a parsed prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Timestamp(datetime::Pattern),
    RandomString,
    ErrorOutputType,
    PartitionKeyFromQuery(String),
    PartitionKeyFromLambda(String),
}

/// A parsed `Prefix` or `ErrorOutputPrefix`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Template {
    segments: Vec<Segment>,
}

/// What an evaluation needs besides the template.
struct Inputs<'a> {
    at: &'a jiff::Zoned,
    error_output_type: Option<ErrorOutputType>,
    partition_keys: &'a PartitionKeys,
}

/// Values of the partition keys of one object (dynamic partitioning).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionKeys {
    pub from_query: Vec<(String, String)>,
    pub from_lambda: Vec<(String, String)>,
}

impl PartitionKeys {
    fn get(list: &[(String, String)], key: &str) -> String {
        list.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

impl Template {
    fn parse(field: Field, text: &str) -> Result<Template, PrefixError> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("!{") {
            if start > 0 {
                segments.push(Segment::Literal(rest[..start].to_owned()));
            }
            let body_and_after = &rest[start + 2..];
            let end = body_and_after
                .find('}')
                .ok_or(PrefixError::InvalidExpression { field })?;
            let body = &body_and_after[..end];
            // Nesting: a second opening before this expression closes.
            if body.contains('{') {
                return Err(PrefixError::InvalidExpression { field });
            }
            segments.push(Self::expression(field, body)?);
            rest = &body_and_after[end + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Literal(rest.to_owned()));
        }
        Ok(Template { segments })
    }

    fn expression(field: Field, body: &str) -> Result<Segment, PrefixError> {
        let (namespace, value) = body
            .split_once(':')
            .ok_or(PrefixError::InvalidExpression { field })?;
        let invalid = || PrefixError::InvalidValue { field };
        match namespace {
            "timestamp" => datetime::Pattern::parse(value)
                .map(Segment::Timestamp)
                .map_err(|_| invalid()),
            "firehose" => match value {
                "random-string" => Ok(Segment::RandomString),
                "error-output-type" => Ok(Segment::ErrorOutputType),
                _ => Err(invalid()),
            },
            "partitionKeyFromQuery" if !value.is_empty() => {
                Ok(Segment::PartitionKeyFromQuery(value.to_owned()))
            }
            "partitionKeyFromLambda" if !value.is_empty() => {
                Ok(Segment::PartitionKeyFromLambda(value.to_owned()))
            }
            "partitionKeyFromQuery" | "partitionKeyFromLambda" => Err(invalid()),
            other => Err(PrefixError::UnknownNamespace {
                field,
                namespace: other.to_owned(),
            }),
        }
    }

    fn has_expressions(&self) -> bool {
        self.segments
            .iter()
            .any(|s| !matches!(s, Segment::Literal(_)))
    }

    fn has(&self, pred: impl Fn(&Segment) -> bool) -> bool {
        self.segments.iter().any(pred)
    }

    fn has_timestamp(&self) -> bool {
        self.has(|s| matches!(s, Segment::Timestamp(_)))
    }

    fn has_partition_keys(&self) -> bool {
        self.has(|s| {
            matches!(
                s,
                Segment::PartitionKeyFromQuery(_) | Segment::PartitionKeyFromLambda(_)
            )
        })
    }

    fn has_error_output_type(&self) -> bool {
        self.has(|s| matches!(s, Segment::ErrorOutputType))
    }

    /// The literal text of a template without expressions.
    fn literal(&self) -> String {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Literal(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    fn evaluate(&self, inputs: &Inputs<'_>, rng: &mut dyn RandomSource) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => out.push_str(text),
                Segment::Timestamp(pattern) => pattern.format(inputs.at, &mut out),
                Segment::RandomString => out.push_str(&random_string(rng)),
                Segment::ErrorOutputType => out.push_str(
                    inputs
                        .error_output_type
                        .unwrap_or(ErrorOutputType::ProcessingFailed)
                        .as_str(),
                ),
                Segment::PartitionKeyFromQuery(key) => {
                    out.push_str(&PartitionKeys::get(&inputs.partition_keys.from_query, key))
                }
                Segment::PartitionKeyFromLambda(key) => {
                    out.push_str(&PartitionKeys::get(&inputs.partition_keys.from_lambda, key))
                }
            }
        }
        out
    }
}

/// `yyyy/MM/dd/HH/`: what a prefix without a timestamp gets appended, and the
/// whole prefix when there is none.
fn default_time_segment() -> Segment {
    // The pattern is a constant of valid letters; parsing it cannot fail.
    Segment::Timestamp(
        datetime::Pattern::parse("yyyy/MM/dd/HH/").expect("constant pattern is valid"),
    )
}

/// A destination's validated prefixes and time zone, ready to evaluate.
#[derive(Debug, Clone)]
pub struct S3Prefixes {
    prefix: Template,
    error_prefix: Template,
    zone: TimeZone,
    partition_keys: bool,
    /// Whether `error_prefix` was given (only a given one has a length limit).
    error_given: bool,
}

impl S3Prefixes {
    /// Checks `Prefix`, `ErrorOutputPrefix` and `CustomTimeZone` as AWS does
    /// when a destination is created or updated. `now` is the instant the
    /// 512-character limit is checked at. An empty string is the same as an
    /// absent one.
    pub fn new(
        prefix: Option<&str>,
        error_output_prefix: Option<&str>,
        custom_time_zone: Option<&str>,
        now: Timestamp,
    ) -> Result<S3Prefixes, PrefixError> {
        let zone = time_zone(custom_time_zone)?;
        let given = Template::parse(Field::Prefix, prefix.unwrap_or(""))?;
        let error_given = error_output_prefix
            .filter(|p| !p.is_empty())
            .map(|p| Template::parse(Field::ErrorOutputPrefix, p))
            .transpose()?;
        check_rules(&given, error_given.as_ref())?;
        let partition_keys = given.has_partition_keys();
        let prefix = with_default_time(given.clone());
        let error_set = error_given.is_some();
        let error_prefix = error_given.unwrap_or_else(|| derived_error_prefix(&given));
        let prefixes = S3Prefixes {
            prefix,
            error_prefix,
            zone,
            partition_keys,
            error_given: error_set,
        };
        prefixes.check_lengths(now)?;
        Ok(prefixes)
    }

    /// Whether `Prefix` uses `partitionKeyFromQuery` or
    /// `partitionKeyFromLambda`, which only dynamic partitioning allows.
    pub fn uses_partition_keys(&self) -> bool {
        self.partition_keys
    }

    /// AWS's checks between the prefix and `DynamicPartitioningConfiguration`.
    pub fn check_dynamic_partitioning(&self, enabled: bool) -> Result<(), PrefixError> {
        match (enabled, self.partition_keys) {
            (false, true) => Err(PrefixError::PartitionKeyWithoutDynamicPartitioning),
            (true, false) => Err(PrefixError::DynamicPartitioningWithoutPartitionKey),
            _ => Ok(()),
        }
    }

    /// The destination's time zone (UTC unless `CustomTimeZone` says otherwise).
    pub fn time_zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The evaluated `Prefix` of an object whose oldest record arrived `at`.
    pub fn evaluate(
        &self,
        at: Timestamp,
        keys: &PartitionKeys,
        rng: &mut dyn RandomSource,
    ) -> String {
        let local = at.to_zoned(self.zone.clone());
        let inputs = Inputs {
            at: &local,
            error_output_type: None,
            partition_keys: keys,
        };
        self.prefix.evaluate(&inputs, rng)
    }

    /// The evaluated `ErrorOutputPrefix` of failed records of kind `kind`.
    pub fn evaluate_error(
        &self,
        at: Timestamp,
        kind: ErrorOutputType,
        rng: &mut dyn RandomSource,
    ) -> String {
        let local = at.to_zoned(self.zone.clone());
        let none = PartitionKeys::default();
        let inputs = Inputs {
            at: &local,
            error_output_type: Some(kind),
            partition_keys: &none,
        };
        self.error_prefix.evaluate(&inputs, rng)
    }

    fn check_lengths(&self, now: Timestamp) -> Result<(), PrefixError> {
        let mut rng = ThreadRandom;
        let keys = PartitionKeys::default();
        if self.evaluate(now, &keys, &mut rng).chars().count() > MAX_EVALUATED_PREFIX_CHARS {
            return Err(PrefixError::TooLong {
                field: Field::Prefix,
            });
        }
        let error = self.evaluate_error(now, ErrorOutputType::LONGEST, &mut rng);
        if self.error_given && error.chars().count() > MAX_EVALUATED_PREFIX_CHARS {
            return Err(PrefixError::TooLong {
                field: Field::ErrorOutputPrefix,
            });
        }
        Ok(())
    }
}

/// The semantic rules between the two prefixes, in the order AWS reports them.
fn check_rules(prefix: &Template, error: Option<&Template>) -> Result<(), PrefixError> {
    if prefix.has_error_output_type() {
        return Err(PrefixError::ErrorOutputTypeInPrefix);
    }
    if let Some(error) = error {
        if error.has_partition_keys() {
            return Err(PrefixError::PartitionKeyInErrorPrefix);
        }
        if error.has_expressions() && !error.has_error_output_type() {
            return Err(PrefixError::ErrorOutputTypeRequired);
        }
    } else if prefix.has_expressions() {
        return Err(PrefixError::ErrorOutputPrefixRequired);
    }
    Ok(())
}

fn with_default_time(mut prefix: Template) -> Template {
    if !prefix.has_timestamp() {
        prefix.segments.push(default_time_segment());
    }
    prefix
}

/// `<Prefix><error-output-type>/yyyy/MM/dd/HH/`, for a literal `Prefix` and
/// no `ErrorOutputPrefix`.
fn derived_error_prefix(prefix: &Template) -> Template {
    let mut segments = Vec::new();
    let literal = prefix.literal();
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal));
    }
    segments.push(Segment::ErrorOutputType);
    segments.push(Segment::Literal("/".to_owned()));
    segments.push(default_time_segment());
    Template { segments }
}

/// `CustomTimeZone`: UTC when absent or empty, else an IANA zone name.
pub fn time_zone(custom: Option<&str>) -> Result<TimeZone, PrefixError> {
    let name = match custom {
        None | Some("") => return Ok(TimeZone::UTC),
        Some(name) => name,
    };
    let unknown = || PrefixError::UnknownTimeZone {
        name: name.to_owned(),
    };
    if name.len() > MAX_TIME_ZONE_CHARS
        || !name
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '/' || c == '_')
    {
        return Err(unknown());
    }
    jiff::tz::db().get(name).map_err(|_| unknown())
}

/// Checks a `FileExtension` against the model's pattern
/// (`^$|\.[0-9a-z!\-_.*'()]+`) and length.
pub fn check_file_extension(extension: &str) -> Result<(), PrefixError> {
    let allowed = |c: char| c.is_ascii_digit() || c.is_ascii_lowercase() || "!-_.*'()".contains(c);
    let valid = extension.is_empty()
        || (extension.len() <= MAX_FILE_EXTENSION_CHARS
            && extension.len() > 1
            && extension.starts_with('.')
            && extension.chars().all(allowed));
    if valid {
        Ok(())
    } else {
        Err(PrefixError::InvalidFileExtension {
            extension: extension.to_owned(),
        })
    }
}

/// The extension an object gets: `FileExtension` when set and not empty
/// (it replaces the compression's), else the compression format's.
pub fn object_extension<'a>(
    file_extension: Option<&'a str>,
    compression_extension: &'a str,
) -> &'a str {
    match file_extension {
        Some(ext) if !ext.is_empty() => ext,
        _ => compression_extension,
    }
}

/// An object's key: `<evaluated prefix><stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid><extension>`
/// ("Amazon S3 Object Name Format"), the time being `at` in `zone`.
pub fn object_key(
    evaluated_prefix: &str,
    stream_name: &str,
    version: u64,
    at: Timestamp,
    zone: &TimeZone,
    id: uuid::Uuid,
    extension: &str,
) -> String {
    let t = at.to_zoned(zone.clone());
    format!(
        "{evaluated_prefix}{stream_name}-{version}-{:04}-{:02}-{:02}-{:02}-{:02}-{:02}-{id}{extension}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
}

/// The subset of `java.time.format.DateTimeFormatter` patterns that
/// `!{timestamp:…}` accepts, printed in English (the service's locale), as
/// Java prints them.
///
/// Letters and counts follow `DateTimeFormatterBuilder.appendPattern`: the
/// letters Java does not know (`b C f i I j J l o P r R t T U`), `p` (padding,
/// which the service refuses alone), `#`, `{` and `}` are errors, as are
/// counts Java refuses (`HHH`, `aa`, `V`…). `'text'` is literal and `''` is a
/// quote; `[` and `]` mark optional sections, always printed since every
/// field is known. Week fields use the US rules (weeks start on Sunday, week 1
/// holds January 1st). Zone names Java takes from its locale data (`zzzz`,
/// `v`) print as the IANA name; `z` prints the zone's abbreviation.
pub mod datetime {
    use jiff::Zoned;
    use std::fmt::Write as _;

    /// A pattern Java would refuse.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PatternError;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Token {
        Literal(String),
        Field { letter: char, count: usize },
    }

    /// A parsed pattern.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Pattern {
        tokens: Vec<Token>,
    }

    /// The most pattern letters Java allows for a numeric field (19 digits).
    const MAX_NUMERIC_WIDTH: usize = 19;

    impl Pattern {
        pub fn parse(pattern: &str) -> Result<Pattern, PatternError> {
            if pattern.is_empty() {
                return Err(PatternError);
            }
            let chars: Vec<char> = pattern.chars().collect();
            let mut tokens = Vec::new();
            let mut optional_depth = 0usize;
            let mut i = 0;
            while i < chars.len() {
                let c = chars[i];
                if c.is_ascii_alphabetic() {
                    let count = chars[i..].iter().take_while(|&&x| x == c).count();
                    check_count(c, count)?;
                    tokens.push(Token::Field { letter: c, count });
                    i += count;
                } else if c == '\'' {
                    let (text, next) = quoted(&chars, i)?;
                    tokens.push(Token::Literal(text));
                    i = next;
                } else {
                    match c {
                        '[' => optional_depth += 1,
                        ']' => {
                            optional_depth = optional_depth.checked_sub(1).ok_or(PatternError)?
                        }
                        '#' | '{' | '}' => return Err(PatternError),
                        _ => tokens.push(Token::Literal(c.to_string())),
                    }
                    i += 1;
                }
            }
            Ok(Pattern { tokens })
        }

        /// Appends `t` formatted by this pattern to `out`.
        pub fn format(&self, t: &Zoned, out: &mut String) {
            for token in &self.tokens {
                match token {
                    Token::Literal(text) => out.push_str(text),
                    Token::Field { letter, count } => field(*letter, *count, t, out),
                }
            }
        }
    }

    /// A quoted literal starting at `chars[start] == '\''`: its text and the
    /// index after it.
    fn quoted(chars: &[char], start: usize) -> Result<(String, usize), PatternError> {
        if chars.get(start + 1) == Some(&'\'') {
            return Ok(("'".to_owned(), start + 2));
        }
        let mut text = String::new();
        let mut i = start + 1;
        loop {
            match chars.get(i) {
                None => return Err(PatternError),
                Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                    text.push('\'');
                    i += 2;
                }
                Some('\'') => return Ok((text, i + 1)),
                Some(&c) => {
                    text.push(c);
                    i += 1;
                }
            }
        }
    }

    /// The counts `DateTimeFormatterBuilder.parseField` accepts per letter.
    fn check_count(letter: char, count: usize) -> Result<(), PatternError> {
        let ok = match letter {
            'G' | 'M' | 'L' | 'Q' | 'q' | 'E' | 'e' | 'X' | 'x' | 'Z' => count <= 5,
            'c' => count != 2 && count <= 5,
            'y' | 'u' | 'Y' | 'n' | 'N' | 'A' | 'g' => count <= MAX_NUMERIC_WIDTH,
            // appendFraction takes at most nanoseconds' 9 digits.
            'S' => count <= 9,
            'd' | 'h' | 'H' | 'k' | 'K' | 'm' | 's' | 'w' => count <= 2,
            'D' => count <= 3,
            'a' | 'F' | 'W' => count == 1,
            'B' | 'v' | 'O' => count == 1 || count == 4 || (letter == 'B' && count == 5),
            'V' => count == 2,
            'z' => count <= 4,
            _ => false,
        };
        if ok { Ok(()) } else { Err(PatternError) }
    }

    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];

    /// Text style by count: 1–3 short, 4 full, 5 narrow.
    fn text(full: &str, count: usize, out: &mut String) {
        match count {
            4 => out.push_str(full),
            5 => out.push_str(&full[..1]),
            _ => out.push_str(&full[..3]),
        }
    }

    /// A number zero-padded to `width`, with a sign when negative.
    fn number(value: i64, width: usize, out: &mut String) {
        if value < 0 {
            out.push('-');
        }
        let _ = write!(out, "{:0width$}", value.unsigned_abs());
    }

    fn field(letter: char, count: usize, t: &Zoned, out: &mut String) {
        let year = i64::from(t.year());
        match letter {
            'G' => era(year, count, out),
            'u' => year_field(year, count, out),
            'y' => year_field(if year > 0 { year } else { 1 - year }, count, out),
            'Y' => year_field(us_week(t).0, count, out),
            'w' => number(us_week(t).1, count, out),
            'W' => number(week_of_month(t), 1, out),
            'Q' | 'q' => quarter(i64::from(t.month() - 1) / 3 + 1, count, out),
            'M' | 'L' if count >= 3 => text(MONTHS[t.month() as usize - 1], count, out),
            'M' | 'L' => number(i64::from(t.month()), count, out),
            'd' => number(i64::from(t.day()), count, out),
            'D' => number(i64::from(t.day_of_year()), count, out),
            'F' => number(i64::from(t.day() - 1) % 7 + 1, 1, out),
            'E' => text(DAYS[weekday(t)], count.max(3), out),
            'e' | 'c' if count >= 3 => text(DAYS[weekday(t)], count, out),
            'e' | 'c' => number(weekday(t) as i64 + 1, count, out),
            'a' => out.push_str(if t.hour() < 12 { "AM" } else { "PM" }),
            'B' => out.push_str(day_period(t)),
            'h' => number(i64::from((t.hour() + 11) % 12 + 1), count, out),
            'K' => number(i64::from(t.hour() % 12), count, out),
            'k' => number(
                i64::from(if t.hour() == 0 { 24 } else { t.hour() }),
                count,
                out,
            ),
            'H' => number(i64::from(t.hour()), count, out),
            'm' => number(i64::from(t.minute()), count, out),
            's' => number(i64::from(t.second()), count, out),
            'S' => fraction(t.subsec_nanosecond(), count, out),
            'A' => number(nanos_of_day(t) / 1_000_000, count, out),
            'n' => number(i64::from(t.subsec_nanosecond()), count, out),
            'N' => number(nanos_of_day(t), count, out),
            'g' => number(
                days_from_civil(year, t.month().into(), t.day().into()) - MJD_EPOCH_DAYS,
                count,
                out,
            ),
            _ => zone_field(letter, count, t, out),
        }
    }

    fn zone_field(letter: char, count: usize, t: &Zoned, out: &mut String) {
        let offset = t.offset().seconds();
        match (letter, count) {
            ('V', _) | ('v', _) | ('z', 4) => {
                out.push_str(t.time_zone().iana_name().unwrap_or("UTC"))
            }
            ('z', _) => out.push_str(t.time_zone().to_offset_info(t.timestamp()).abbreviation()),
            ('O', _) | ('Z', 4) => localized_offset(offset, count == 4, out),
            ('X', _) => iso_offset(offset, count, "Z", out),
            ('x', _) => iso_offset(offset, count, "", out),
            ('Z', 5) => iso_offset(offset, 5, "Z", out),
            // Z, ZZ, ZZZ: +HHMM, "+0000" at zero.
            _ => iso_offset(offset, 2, "", out),
        }
    }

    fn era(year: i64, count: usize, out: &mut String) {
        let (short, full) = if year > 0 {
            ("AD", "Anno Domini")
        } else {
            ("BC", "Before Christ")
        };
        match count {
            4 => out.push_str(full),
            5 => out.push_str(&short[..1]),
            _ => out.push_str(short),
        }
    }

    /// `yy` is the last two digits; otherwise at least `count` digits.
    fn year_field(year: i64, count: usize, out: &mut String) {
        if count == 2 {
            number(year.rem_euclid(100), 2, out);
        } else {
            number(year, count, out);
        }
    }

    fn quarter(q: i64, count: usize, out: &mut String) {
        const NAMES: [&str; 4] = ["1st quarter", "2nd quarter", "3rd quarter", "4th quarter"];
        match count {
            1 | 2 => number(q, count, out),
            3 => {
                let _ = write!(out, "Q{q}");
            }
            4 => out.push_str(NAMES[q as usize - 1]),
            _ => number(q, 1, out),
        }
    }

    /// Sunday = 0 … Saturday = 6.
    fn weekday(t: &Zoned) -> usize {
        t.weekday().to_sunday_zero_offset() as usize
    }

    /// English day periods (Java 16's `B`).
    fn day_period(t: &Zoned) -> &'static str {
        match (t.hour(), t.minute(), t.second(), t.subsec_nanosecond()) {
            (0, 0, 0, 0) => "midnight",
            (12, 0, 0, 0) => "noon",
            (6..=11, ..) => "in the morning",
            (12..=17, ..) => "in the afternoon",
            (18..=20, ..) => "in the evening",
            _ => "at night",
        }
    }

    /// The first `count` (at most 9) digits of the second's fraction.
    fn fraction(nanos: i32, count: usize, out: &mut String) {
        let digits = format!("{nanos:09}");
        out.push_str(&digits[..count.min(digits.len())]);
    }

    fn nanos_of_day(t: &Zoned) -> i64 {
        let seconds =
            i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second());
        seconds * 1_000_000_000 + i64::from(t.subsec_nanosecond())
    }

    /// `GMT`, `GMT+9`, `GMT+5:30` (short) or `GMT+09:00` (full).
    fn localized_offset(seconds: i32, full: bool, out: &mut String) {
        out.push_str("GMT");
        if seconds == 0 {
            return;
        }
        out.push(if seconds < 0 { '-' } else { '+' });
        let abs = seconds.unsigned_abs();
        let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
        if full {
            let _ = write!(out, "{h:02}:{m:02}");
            if s != 0 {
                let _ = write!(out, ":{s:02}");
            }
        } else {
            let _ = write!(out, "{h}");
            if m != 0 || s != 0 {
                let _ = write!(out, ":{m:02}");
            }
            if s != 0 {
                let _ = write!(out, ":{s:02}");
            }
        }
    }

    /// ISO-8601 offsets of `X`/`x` by count: `+HH[mm]`, `+HHmm`, `+HH:mm`,
    /// `+HHmm[ss]`, `+HH:mm[:ss]`; `zero` is printed for a zero offset.
    fn iso_offset(seconds: i32, count: usize, zero: &str, out: &mut String) {
        if seconds == 0 && !zero.is_empty() {
            out.push_str(zero);
            return;
        }
        out.push(if seconds < 0 { '-' } else { '+' });
        let abs = seconds.unsigned_abs();
        let (h, m, s) = (abs / 3600, abs / 60 % 60, abs % 60);
        let _ = write!(out, "{h:02}");
        let colon = if count == 3 || count == 5 { ":" } else { "" };
        if count >= 2 || m != 0 {
            let _ = write!(out, "{colon}{m:02}");
        }
        if count >= 4 && s != 0 {
            let _ = write!(out, "{colon}{s:02}");
        }
    }

    /// Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
    /// `days_from_civil`).
    pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// 1858-11-17, day 0 of the Modified Julian Day count.
    const MJD_EPOCH_DAYS: i64 = -40_587;

    /// The Sunday starting week 1 of `year` (the week holding January 1st).
    fn us_week_one_start(year: i64) -> i64 {
        let jan1 = days_from_civil(year, 1, 1);
        // 1970-01-01 was a Thursday (Sunday-zero offset 4).
        let weekday = (jan1 + 4).rem_euclid(7);
        jan1 - weekday
    }

    /// (week-based year, week of it), US rules.
    fn us_week(t: &Zoned) -> (i64, i64) {
        let year = i64::from(t.year());
        let day = days_from_civil(year, t.month().into(), t.day().into());
        let next = us_week_one_start(year + 1);
        if day >= next {
            return (year + 1, 1);
        }
        (year, (day - us_week_one_start(year)) / 7 + 1)
    }

    /// Week of the month, US rules (week 1 holds the 1st).
    fn week_of_month(t: &Zoned) -> i64 {
        let year = i64::from(t.year());
        let first = days_from_civil(year, t.month().into(), 1);
        let offset = (first + 4).rem_euclid(7);
        (i64::from(t.day()) - 1 + offset) / 7 + 1
    }
}
