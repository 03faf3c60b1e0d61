//! Delivery to Redshift, as Firehose does it, on PostgreSQL (which speaks
//! Redshift's wire protocol): the lane stages each buffer as an object in
//! the intermediate bucket and writes a manifest listing it
//! (`<Prefix>manifests/…`), then this module runs the CopyCommand:
//!
//! ```text
//! BEGIN
//! SELECT <DataTableColumns or *> FROM <DataTableName> LIMIT 0   (the columns and their types)
//! COPY <DataTableName> (<columns>) FROM STDIN WITH (FORMAT csv)
//!   <the staged object's rows, translated per CopyOptions into PostgreSQL CSV>
//! COMMIT
//! ```
//!
//! One manifest is one transaction: all its rows or none. Redshift's
//! data formats are read here ([`CopyPlan`]: `JSON 'auto'` maps each JSON
//! object's keys to the columns by name; pipe-delimited text, `CSV`,
//! `DELIMITER`, `GZIP`, `IGNOREHEADER`, `NULL AS`, `EMPTYASNULL`,
//! `BLANKSASNULL`, `TRIMBLANKS`, `TIMEFORMAT`, `DATEFORMAT`) and every row
//! is sent to PostgreSQL in one canonical CSV form (each value quoted, a
//! NULL an unquoted empty field), so PostgreSQL's own CSV rules never
//! change what Redshift's would load. Options that cannot be translated
//! are refused when the destination is created or updated.
//!
//! A failed copy (server down, authentication, missing table, bad data)
//! is retried every [`RETRY_INTERVAL_DEFAULT`] within
//! RetryOptions.DurationInSeconds; past it, the lane writes the manifest
//! under `errors/manifests/` in the intermediate bucket, as AWS does.

use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr};

use bytes::Bytes;
use futures_util::SinkExt as _;
use serde_json::{Map, Value};
use tokio::time::{Duration, Instant};
use tracing::{debug, info, warn};

use crate::metrics::EndpointMetrics;
use crate::redshift::RedshiftDestination;
use crate::time::now_ms;

/// How long Firehose waits between attempts of a failed COPY: "Firehose
/// retries every 5 minutes until the retry duration ends" (Amazon Data
/// Firehose Developer Guide, "Data delivery failure handling", Amazon
/// Redshift). `--firehose-redshift-retry-interval-s` shortens it.
pub const RETRY_INTERVAL_DEFAULT: Duration = Duration::from_secs(300);
/// Connecting to the cluster: a server that accepts no connection within
/// this is a failed attempt (AWS publishes no number).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One whole attempt (connect, COPY, COMMIT): a server that hangs is a
/// failed attempt, retried, never a lane held forever.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(600);
/// Redshift's defaults: `|` delimits text fields, `,` CSV's, `"` quotes
/// CSV fields, and `\N` is NULL ("COPY parameter reference").
const TEXT_DELIMITER: u8 = b'|';
const CSV_DELIMITER: u8 = b',';
const CSV_QUOTE: u8 = b'"';
const NULL_DEFAULT: &str = "\\N";
/// The options translated, for the refusal's message.
const TRANSLATED: &str = "JSON 'auto', JSON 'auto ignorecase', CSV [QUOTE AS], DELIMITER, GZIP, IGNOREHEADER, NULL AS, EMPTYASNULL, BLANKSASNULL, TRIMBLANKS, TIMEFORMAT ('auto', 'epochsecs', 'epochmillisecs', year-month-day formats), DATEFORMAT ('auto', 'YYYY-MM-DD'), COMPUPDATE, STATUPDATE";

/// CopyOptions Riffle cannot run on PostgreSQL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    #[error(
        "CopyOptions {0} is not supported: Riffle runs the COPY on PostgreSQL and translates only {TRANSLATED}."
    )]
    Unsupported(String),
    #[error("CopyOptions could not be read: {0}.")]
    Malformed(String),
}

/// Why an attempt of a COPY failed, with the error code AWS's Redshift
/// delivery logs name it by.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("ClusterJDBCURL {0} is not jdbc:redshift://host:port/database")]
    Url(String),
    #[error("the COPY options could not be used: {0}")]
    Options(#[from] OptionsError),
    #[error("{0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the staged data could not be loaded: {0}")]
    Data(String),
    #[error("the attempt did not finish within {} seconds", ATTEMPT_TIMEOUT.as_secs())]
    Timeout,
}

impl CopyError {
    /// AWS's error code for it ("Amazon Redshift data delivery errors").
    pub fn code(&self) -> &'static str {
        let CopyError::Postgres(err) = self else {
            return match self {
                CopyError::Data(_) => "Redshift.CopyFailed",
                CopyError::Timeout => "Redshift.ConnectionFailed",
                _ => "Redshift.InvalidConfiguration",
            };
        };
        match err.code().map(tokio_postgres::error::SqlState::code) {
            Some("42P01" | "3F000") => "Redshift.TableNotFound",
            Some("42703") => "Redshift.ColumnNotFound",
            Some("28P01" | "28000") => "Redshift.AuthenticationFailed",
            Some("3D000") => "Redshift.DatabaseNotFound",
            Some("42501") => "Redshift.InsufficientPrivilege",
            Some("42601") => "Redshift.SyntaxError",
            // Data exceptions (22xxx), constraint violations (23xxx), …
            Some(_) => "Redshift.CopyFailed",
            None => "Redshift.ConnectionFailed",
        }
    }
}

/// The data format of the staged objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Delimited text, fields as they are.
    Text,
    Csv {
        quote: u8,
    },
    /// `JSON 'auto'`: each object's keys name columns.
    JsonAuto {
        ignore_case: bool,
    },
}

/// `TIMEFORMAT`: how timestamps in the data are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeFormat {
    /// As PostgreSQL reads them itself (ISO 8601 and the like).
    Auto,
    EpochSeconds,
    EpochMillis,
}

/// The CopyOptions, as this module runs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyPlan {
    format: Format,
    delimiter: Option<u8>,
    gzip: bool,
    ignore_header: usize,
    null_as: String,
    empty_as_null: bool,
    blanks_as_null: bool,
    trim_blanks: bool,
    time: TimeFormat,
}

/// A word or a quoted string of the options.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
}

/// Splits CopyOptions into words and `'quoted'` strings (`''` or `\'` is
/// a quote inside one).
fn tokens(text: &str) -> Result<Vec<Token>, OptionsError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() || c == ',' || c == ';' {
            chars.next();
            continue;
        }
        if c == '\'' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return Err(OptionsError::Malformed("a quote is not closed".into())),
                    Some('\\') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        s.push('\'');
                    }
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        s.push('\'');
                    }
                    Some('\'') => break,
                    Some(c) => s.push(c),
                }
            }
            out.push(Token::Quoted(s));
            continue;
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '\'' || c == ',' || c == ';' {
                break;
            }
            w.push(c);
            chars.next();
        }
        out.push(Token::Word(w));
    }
    Ok(out)
}

/// The options' tokens, read one after another.
struct Reader {
    tokens: std::iter::Peekable<std::vec::IntoIter<Token>>,
}

impl Reader {
    /// Skips an `AS` before an option's argument.
    fn skip_as(&mut self) {
        if matches!(self.tokens.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case("AS")) {
            self.tokens.next();
        }
    }

    fn quoted(&mut self, option: &str) -> Result<String, OptionsError> {
        self.skip_as();
        match self.tokens.next() {
            Some(Token::Quoted(s)) => Ok(s),
            _ => Err(OptionsError::Malformed(format!(
                "{option} needs a quoted argument"
            ))),
        }
    }

    fn word(&mut self, option: &str) -> Result<String, OptionsError> {
        self.skip_as();
        match self.tokens.next() {
            Some(Token::Word(w) | Token::Quoted(w)) => Ok(w),
            None => Err(OptionsError::Malformed(format!(
                "{option} needs an argument"
            ))),
        }
    }

    /// The next word if it is one of `words` (an optional argument).
    fn optional(&mut self, words: &[&str]) -> Option<String> {
        match self.tokens.peek() {
            Some(Token::Word(w)) if words.iter().any(|x| w.eq_ignore_ascii_case(x)) => {
                let w = w.clone();
                self.tokens.next();
                Some(w)
            }
            _ => None,
        }
    }
}

/// One character of DELIMITER or QUOTE (`\t` is a tab, as Redshift reads it).
fn one_byte(option: &str, arg: &str) -> Result<u8, OptionsError> {
    match arg {
        "\\t" => Ok(b'\t'),
        _ if arg.len() == 1 && arg.is_ascii() => Ok(arg.as_bytes()[0]),
        _ => Err(OptionsError::Unsupported(format!(
            "{option} '{arg}' (one ASCII character)"
        ))),
    }
}

/// TIMEFORMAT's argument: `auto`, the epochs, or a year-month-day format
/// PostgreSQL reads as it is.
fn time_format(arg: &str) -> Result<TimeFormat, OptionsError> {
    match arg.to_ascii_lowercase().as_str() {
        "auto" => return Ok(TimeFormat::Auto),
        "epochsecs" => return Ok(TimeFormat::EpochSeconds),
        "epochmillisecs" => return Ok(TimeFormat::EpochMillis),
        _ => {}
    }
    let bare: String = arg
        .to_ascii_uppercase()
        .replace("HH24", "HH")
        .chars()
        .filter(|c| !"-/ :T.".contains(*c))
        .collect();
    let fraction = |rest: &str| {
        rest.is_empty()
            || rest.chars().all(|c| c == 'S')
            || rest == "US"
            || rest.strip_prefix("FF").is_some_and(|d| d.len() <= 1)
    };
    let ok = bare.strip_prefix("YYYYMMDD").is_some_and(|rest| {
        rest.is_empty() || rest == "HHMI" || rest.strip_prefix("HHMISS").is_some_and(fraction)
    });
    if ok {
        Ok(TimeFormat::Auto)
    } else {
        Err(OptionsError::Unsupported(format!("TIMEFORMAT '{arg}'")))
    }
}

impl CopyPlan {
    /// The plan of CopyOptions (empty: pipe-delimited text), or why they
    /// cannot be run on PostgreSQL.
    pub fn parse(options: &str) -> Result<CopyPlan, OptionsError> {
        let mut plan = CopyPlan {
            format: Format::Text,
            delimiter: None,
            gzip: false,
            ignore_header: 0,
            null_as: NULL_DEFAULT.to_owned(),
            empty_as_null: false,
            blanks_as_null: false,
            trim_blanks: false,
            time: TimeFormat::Auto,
        };
        let mut r = Reader {
            tokens: tokens(options)?.into_iter().peekable(),
        };
        while let Some(token) = r.tokens.next() {
            let Token::Word(word) = token else {
                return Err(OptionsError::Malformed(
                    "a quoted string stands where an option was expected".into(),
                ));
            };
            let mut keyword = word.to_ascii_uppercase();
            if keyword == "FORMAT" {
                keyword = r.word("FORMAT")?.to_ascii_uppercase();
            }
            plan.apply(&keyword, &mut r)?;
        }
        Ok(plan)
    }

    /// Applies one option.
    fn apply(&mut self, keyword: &str, r: &mut Reader) -> Result<(), OptionsError> {
        match keyword {
            "CSV" => {
                let mut quote = CSV_QUOTE;
                if r.optional(&["QUOTE"]).is_some() {
                    quote = one_byte("QUOTE", &r.quoted("QUOTE")?)?;
                }
                self.format = Format::Csv { quote };
            }
            "JSON" => {
                let arg = r.quoted("JSON")?;
                let ignore_case = match arg.trim().to_ascii_lowercase().as_str() {
                    "auto" => false,
                    "auto ignorecase" => true,
                    _ => {
                        return Err(OptionsError::Unsupported(format!(
                            "JSON '{arg}' (a JSONPaths file)"
                        )));
                    }
                };
                self.format = Format::JsonAuto { ignore_case };
            }
            "DELIMITER" => self.delimiter = Some(one_byte("DELIMITER", &r.quoted("DELIMITER")?)?),
            "GZIP" => self.gzip = true,
            "IGNOREHEADER" => {
                let n = r.word("IGNOREHEADER")?;
                self.ignore_header = n.parse().map_err(|_| {
                    OptionsError::Malformed(format!("IGNOREHEADER {n} is not a number of lines"))
                })?;
            }
            "NULL" => self.null_as = r.quoted("NULL")?,
            "EMPTYASNULL" => self.empty_as_null = true,
            "BLANKSASNULL" => self.blanks_as_null = true,
            "TRIMBLANKS" => self.trim_blanks = true,
            "TIMEFORMAT" => self.time = time_format(&r.quoted("TIMEFORMAT")?)?,
            "DATEFORMAT" => {
                let arg = r.quoted("DATEFORMAT")?;
                if !["auto", "YYYY-MM-DD"].contains(&arg.as_str()) {
                    return Err(OptionsError::Unsupported(format!("DATEFORMAT '{arg}'")));
                }
            }
            // Table statistics and compression encodings: they change no
            // loaded row, and PostgreSQL keeps its own statistics.
            "COMPUPDATE" | "STATUPDATE" => {
                r.optional(&["ON", "OFF", "TRUE", "FALSE", "PRESET"]);
            }
            other => return Err(OptionsError::Unsupported(other.to_owned())),
        }
        Ok(())
    }
}

/// A column loaded into, as the table describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    /// CHAR, VARCHAR or TEXT: an empty field is an empty string (or NULL
    /// with EMPTYASNULL); for other types it is NULL.
    pub is_char: bool,
    pub is_timestamp: bool,
}

impl ColumnInfo {
    fn of(name: &str, type_name: &str) -> ColumnInfo {
        ColumnInfo {
            name: name.to_owned(),
            is_char: matches!(type_name, "text" | "varchar" | "bpchar" | "char" | "name"),
            is_timestamp: matches!(type_name, "timestamp" | "timestamptz"),
        }
    }
}

/// One field as the data has it: its text, and whether it was quoted (a
/// quoted field is never NULL AS).
struct Field<'a> {
    text: std::borrow::Cow<'a, str>,
    quoted: bool,
}

impl CopyPlan {
    /// The staged object's rows in PostgreSQL's CSV, one column a field
    /// in `columns`' order, and how many rows.
    pub fn rows(&self, staged: &[u8], columns: &[ColumnInfo]) -> Result<(Vec<u8>, u64), String> {
        let inflated;
        let data = if self.gzip {
            let mut out = Vec::with_capacity(staged.len() * 4);
            flate2::read::MultiGzDecoder::new(staged)
                .read_to_end(&mut out)
                .map_err(|e| format!("gzip: {e}"))?;
            inflated = out;
            &inflated[..]
        } else {
            staged
        };
        let mut out = Vec::with_capacity(data.len() + data.len() / 4);
        let mut count = 0;
        match self.format {
            Format::JsonAuto { ignore_case } => {
                for value in serde_json::Deserializer::from_slice(data).into_iter::<Value>() {
                    let value = value.map_err(|e| format!("Invalid JSON: {e}"))?;
                    let Value::Object(object) = value else {
                        return Err(format!("Invalid JSON: {value} is not an object"));
                    };
                    self.json_row(&object, columns, ignore_case, &mut out)?;
                    count += 1;
                }
            }
            Format::Text | Format::Csv { .. } => {
                for line in self.lines(data).into_iter().skip(self.ignore_header) {
                    if line.iter().all(|b| *b == b'\r') {
                        continue;
                    }
                    self.delimited_row(line, columns, &mut out)?;
                    count += 1;
                }
            }
        }
        Ok((out, count))
    }

    fn quote(&self) -> Option<u8> {
        match self.format {
            Format::Csv { quote } => Some(quote),
            _ => None,
        }
    }

    fn delimiter(&self) -> u8 {
        self.delimiter.unwrap_or(match self.format {
            Format::Csv { .. } => CSV_DELIMITER,
            _ => TEXT_DELIMITER,
        })
    }

    /// The data's lines; in CSV, a newline inside quotes is data.
    fn lines<'a>(&self, data: &'a [u8]) -> Vec<&'a [u8]> {
        let quote = self.quote();
        let mut lines = Vec::new();
        let (mut start, mut quoted) = (0, false);
        for (i, b) in data.iter().enumerate() {
            if Some(*b) == quote {
                quoted = !quoted;
            } else if *b == b'\n' && !quoted {
                lines.push(&data[start..i]);
                start = i + 1;
            }
        }
        if start < data.len() {
            lines.push(&data[start..]);
        }
        lines
    }

    /// A line's fields, split at the delimiter (quotes honoured in CSV).
    fn fields<'a>(&self, line: &'a str) -> Result<Vec<Field<'a>>, String> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let delimiter = self.delimiter() as char;
        let Some(quote) = self.quote().map(char::from) else {
            return Ok(line
                .split(delimiter)
                .map(|f| Field {
                    text: f.into(),
                    quoted: false,
                })
                .collect());
        };
        let mut fields = Vec::new();
        let mut rest = line;
        loop {
            let (field, next) = match rest.strip_prefix(quote) {
                Some(inner) => {
                    let (text, after) = quoted_field(inner, quote)?;
                    let next = match after.strip_prefix(delimiter) {
                        Some(next) => Some(next),
                        None if after.is_empty() => None,
                        None => return Err(format!("characters after a closing quote: {after}")),
                    };
                    let field = Field {
                        text: text.into(),
                        quoted: true,
                    };
                    (field, next)
                }
                None => {
                    let (text, next) = match rest.split_once(delimiter) {
                        Some((text, next)) => (text, Some(next)),
                        None => (rest, None),
                    };
                    let field = Field {
                        text: text.into(),
                        quoted: false,
                    };
                    (field, next)
                }
            };
            fields.push(field);
            match next {
                Some(next) => rest = next,
                None => return Ok(fields),
            }
        }
    }

    fn delimited_row(
        &self,
        line: &[u8],
        columns: &[ColumnInfo],
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let line = std::str::from_utf8(line).map_err(|e| format!("Invalid UTF-8: {e}"))?;
        let fields = self.fields(line)?;
        if fields.len() < columns.len() {
            return Err(format!("Delimiter not found: {line}"));
        }
        if fields.len() > columns.len() {
            return Err(format!("Extra column(s) found: {line}"));
        }
        for (i, (field, column)) in fields.iter().zip(columns).enumerate() {
            let null = !field.quoted && field.text == self.null_as;
            let cell = if null {
                None
            } else {
                self.cell(&field.text, column)?
            };
            write_cell(out, i, cell.as_deref());
        }
        out.push(b'\n');
        Ok(())
    }

    fn json_row(
        &self,
        object: &Map<String, Value>,
        columns: &[ColumnInfo],
        ignore_case: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        for (i, column) in columns.iter().enumerate() {
            let value = if ignore_case {
                object
                    .iter()
                    .find(|(k, _)| k.to_lowercase() == column.name.to_lowercase())
                    .map(|(_, v)| v)
            } else {
                object.get(&column.name)
            };
            let text = match value {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(std::borrow::Cow::Borrowed(s.as_str())),
                Some(other) => Some(other.to_string().into()),
            };
            let cell = match text {
                None => None,
                Some(text) => self.cell(&text, column)?,
            };
            write_cell(out, i, cell.as_deref());
        }
        out.push(b'\n');
        Ok(())
    }

    /// A field's value for `column` (`None`: NULL), per Redshift's rules
    /// on blanks, empties and time formats.
    fn cell(&self, text: &str, column: &ColumnInfo) -> Result<Option<String>, String> {
        let text = if self.trim_blanks && column.is_char {
            text.trim_end_matches(' ')
        } else {
            text
        };
        if text.is_empty() {
            return Ok((column.is_char && !self.empty_as_null).then(String::new));
        }
        if self.blanks_as_null && text.trim().is_empty() {
            return Ok(None);
        }
        if column.is_timestamp && self.time != TimeFormat::Auto {
            return epoch(text, self.time).map(Some);
        }
        Ok(Some(text.to_owned()))
    }
}

/// A CSV field after its opening quote: its text (a doubled quote is one
/// quote) and what follows its closing quote.
fn quoted_field(inner: &str, quote: char) -> Result<(String, &str), String> {
    let mut text = String::new();
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != quote {
            text.push(c);
        } else if inner[i + c.len_utf8()..].starts_with(quote) {
            text.push(quote);
            chars.next();
        } else {
            return Ok((text, &inner[i + c.len_utf8()..]));
        }
    }
    Err("a quoted field is not closed".to_owned())
}

/// An epoch in seconds or milliseconds (fractions allowed) as an ISO
/// timestamp in UTC.
fn epoch(text: &str, format: TimeFormat) -> Result<String, String> {
    let n: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("Invalid timestamp: {text} is not an epoch"))?;
    let millis = if format == TimeFormat::EpochSeconds {
        n * 1000.0
    } else {
        n
    };
    // `as` saturates beyond i64's range, which jiff then refuses.
    let ms = millis.round() as i64;
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .map_err(|e| format!("Invalid timestamp: {text}: {e}"))
}

/// One field of PostgreSQL CSV: a value quoted (quotes doubled), NULL an
/// unquoted empty field.
fn write_cell(out: &mut Vec<u8>, index: usize, cell: Option<&str>) {
    if index > 0 {
        out.push(b',');
    }
    if let Some(text) = cell {
        out.push(b'"');
        for b in text.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    }
}

/// A Redshift manifest listing the staged object, AWS's format:
/// `{"entries":[{"url":"s3://<bucket>/<key>","mandatory":true}]}`.
pub fn manifest_body(bucket: &str, key: &str) -> Bytes {
    let body = serde_json::json!({
        "entries": [{"url": format!("s3://{bucket}/{key}"), "mandatory": true}]
    });
    Bytes::from(body.to_string())
}

/// The manifest's key: the staged object's key with `folder`
/// (`manifests/`, `errors/manifests/`) after the S3 configuration's
/// literal Prefix (or first, for a prefix with expressions), its name
/// without the file extension.
pub fn manifest_key(staged_key: &str, prefix: Option<&str>, folder: &str) -> String {
    let literal = prefix.filter(|p| !p.contains("!{")).unwrap_or("");
    let (head, tail) = match staged_key.strip_prefix(literal) {
        Some(tail) => (literal, tail),
        None => ("", staged_key),
    };
    let mut key = format!("{head}{folder}{tail}");
    let name_start = key.rfind('/').map_or(0, |i| i + 1);
    let uuid_start = key[name_start..]
        .rfind('-')
        .map_or(name_start, |i| name_start + i);
    if let Some(dot) = key[uuid_start..].find('.') {
        key.truncate(uuid_start + dot);
    }
    key
}

/// What delivery needs besides the staged object.
pub struct Target<'a> {
    pub destination: &'a RedshiftDestination,
    pub retry: Duration,
    pub interval: Duration,
    pub metrics: &'a EndpointMetrics,
}

/// Copies the staged object into the table, retrying every interval
/// within the retry duration; `Err` (the last failure) once it passed.
pub async fn deliver(target: &Target<'_>, staged: &Bytes, oldest_ms: i64) -> Result<(), CopyError> {
    let d = target.destination;
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let result = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt(d, staged))
            .await
            .unwrap_or(Err(CopyError::Timeout));
        let err = match result {
            Ok((rows, bytes)) => {
                let freshness = now_ms().saturating_sub(oldest_ms).max(0);
                target.metrics.delivered(rows, bytes, freshness);
                if attempts > 1 {
                    info!(table = %d.copy.table, attempts, "Redshift COPY succeeded after retries");
                }
                return Ok(());
            }
            Err(err) => err,
        };
        target.metrics.request_failed();
        let remaining = target
            .retry
            .checked_sub(start.elapsed())
            .filter(|r| !r.is_zero());
        let Some(remaining) = remaining else {
            warn!(table = %d.copy.table, code = err.code(), %err, attempts, "Redshift COPY failed for the whole retry duration; its manifest goes to errors/");
            return Err(err);
        };
        if attempts == 1 {
            warn!(table = %d.copy.table, code = err.code(), %err, "Redshift COPY failed; retrying within the retry duration");
        } else {
            debug!(table = %d.copy.table, code = err.code(), %err, "Redshift COPY failed again");
        }
        tokio::time::sleep(target.interval.min(remaining)).await;
    }
}

/// Where ClusterJDBCURL points: host, port and database.
fn parse_url(url: &str) -> Result<(String, u16, String), CopyError> {
    let bad = || CopyError::Url(url.to_owned());
    let rest = url
        .strip_prefix("jdbc:redshift://")
        .or_else(|| url.strip_prefix("jdbc:postgresql://"))
        .ok_or_else(bad)?;
    let (authority, database) = rest.split_once('/').ok_or_else(bad)?;
    let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    let database = database.split(['?', ';']).next().unwrap_or_default();
    Ok((host.to_owned(), port, database.to_owned()))
}

/// The connection settings. A host under `localhost.` or `.localhost` is
/// the loopback address (RFC 6761 §6.3), so a local PostgreSQL can have
/// a name the model's ClusterJDBCURL pattern accepts
/// (`jdbc:postgresql://riffle.redshift.localhost:5432/db`).
fn config(d: &RedshiftDestination) -> Result<tokio_postgres::Config, CopyError> {
    let (host, port, database) = parse_url(&d.jdbc_url)?;
    let mut config = tokio_postgres::Config::new();
    config
        .host(&host)
        .port(port)
        .dbname(&database)
        .user(d.username.as_deref().unwrap_or_default())
        .password(d.password.as_deref().unwrap_or_default())
        .application_name("riffle-firehose")
        .connect_timeout(CONNECT_TIMEOUT);
    if host == "localhost" || host.ends_with(".localhost") {
        config.hostaddr(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    Ok(config)
}

/// One attempt: connect, read the columns, COPY the rows, COMMIT. The
/// rows and data bytes copied.
async fn attempt(d: &RedshiftDestination, staged: &Bytes) -> Result<(u64, u64), CopyError> {
    let plan = CopyPlan::parse(d.copy.options.as_deref().unwrap_or(""))?;
    let (mut client, connection) = config(d)?.connect(tokio_postgres::NoTls).await?;
    // The connection task ends when the client is dropped.
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            debug!(%err, "a Redshift connection ended with an error");
        }
    });
    let tx = client.transaction().await?;
    let listed = d.copy.columns.as_deref().unwrap_or("*");
    let probe = tx
        .prepare(&format!("SELECT {listed} FROM {} LIMIT 0", d.copy.table))
        .await?;
    let columns: Vec<ColumnInfo> = probe
        .columns()
        .iter()
        .map(|c| ColumnInfo::of(c.name(), c.type_().name()))
        .collect();
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    let copy_sql = format!(
        "COPY {} ({}) FROM STDIN WITH (FORMAT csv)",
        d.copy.table,
        quoted_names(&names)
    );
    let body = staged.clone();
    let (rows, count) = tokio::task::spawn_blocking(move || plan.rows(&body, &columns))
        .await
        .map_err(|e| CopyError::Data(e.to_string()))?
        .map_err(CopyError::Data)?;
    let bytes = rows.len() as u64;
    let sink = tx.copy_in::<_, Bytes>(&copy_sql).await?;
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from(rows)).await?;
    let copied = sink.finish().await?;
    tx.commit().await?;
    debug_assert_eq!(copied, count);
    Ok((copied, bytes))
}

/// Column names as identifiers, quoted (as PostgreSQL gave them).
fn quoted_names(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{}\"", n.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(spec: &[(&str, &str)]) -> Vec<ColumnInfo> {
        spec.iter().map(|(n, t)| ColumnInfo::of(n, t)).collect()
    }

    fn rows(options: &str, data: &[u8], cols: &[(&str, &str)]) -> Result<String, String> {
        let plan = CopyPlan::parse(options).unwrap();
        plan.rows(data, &columns(cols))
            .map(|(out, _)| String::from_utf8(out).unwrap())
    }

    #[test]
    fn the_common_options_parse_and_the_others_are_refused_by_name() {
        let plan = CopyPlan::parse(
            "FORMAT AS JSON 'auto ignorecase' GZIP TIMEFORMAT 'epochmillisecs' compupdate off",
        )
        .unwrap();
        assert_eq!(plan.format, Format::JsonAuto { ignore_case: true });
        assert!(plan.gzip);
        assert_eq!(plan.time, TimeFormat::EpochMillis);
        let plan = CopyPlan::parse("csv quote as '''' delimiter '\\t' IGNOREHEADER 1 NULL AS 'nil' EMPTYASNULL TIMEFORMAT 'YYYY-MM-DD HH24:MI:SS'").unwrap();
        assert_eq!(plan.format, Format::Csv { quote: b'\'' });
        assert_eq!((plan.delimiter, plan.ignore_header), (Some(b'\t'), 1));
        assert_eq!(plan.null_as, "nil");
        for refused in [
            "LZOP",
            "JSON 's3://b/paths.json'",
            "TIMEFORMAT 'MM/DD/YYYY HH:MI'",
            "MAXERROR 10",
            "FORMAT PARQUET",
        ] {
            let err = CopyPlan::parse(refused).unwrap_err();
            assert!(
                matches!(err, OptionsError::Unsupported(_)),
                "{refused}: {err}"
            );
            assert!(err.to_string().contains("JSON 'auto'"), "{err}");
        }
        assert!(matches!(
            CopyPlan::parse("NULL AS 'x"),
            Err(OptionsError::Malformed(_))
        ));
    }

    #[test]
    fn json_auto_maps_keys_to_columns_by_name_and_missing_keys_to_null() {
        let data = br#"{"id":1,"name":"a \"q\"","extra":true}{"id":2,"tags":["x"]}
{"ID":3,"name":""}"#;
        let cols = [("id", "int4"), ("name", "text"), ("tags", "jsonb")];
        assert_eq!(
            rows("JSON 'auto'", data, &cols).unwrap(),
            "\"1\",\"a \"\"q\"\"\",\n\"2\",,\"[\"\"x\"\"]\"\n,\"\",\n"
        );
        assert!(
            rows("JSON 'auto ignorecase'", data, &cols)
                .unwrap()
                .ends_with("\"3\",\"\",\n")
        );
        assert!(rows("JSON 'auto'", b"[1]", &cols).is_err());
        assert!(rows("JSON 'auto'", b"{\"id\":", &cols).is_err());
    }

    #[test]
    fn delimited_text_and_csv_follow_redshifts_null_and_empty_rules() {
        let cols = [("id", "int4"), ("name", "varchar"), ("at", "timestamp")];
        let text = b"1|a|2024-01-02 03:04:05\n2||\\N\n";
        assert_eq!(
            rows("", text, &cols).unwrap(),
            "\"1\",\"a\",\"2024-01-02 03:04:05\"\n\"2\",\"\",\n"
        );
        assert_eq!(
            rows("EMPTYASNULL", text, &cols).unwrap().lines().nth(1),
            Some("\"2\",,")
        );
        let csv = b"id,name,at\r\n1,\"x, \"\"y\"\"\n z\",\n";
        assert_eq!(
            rows("CSV IGNOREHEADER 1", csv, &cols).unwrap(),
            "\"1\",\"x, \"\"y\"\"\n z\",\n"
        );
        assert!(
            rows("", b"1|a\n", &cols)
                .unwrap_err()
                .starts_with("Delimiter not found")
        );
        assert!(
            rows("", b"1|a|b|c\n", &cols)
                .unwrap_err()
                .starts_with("Extra column")
        );
        let epoch = rows(
            "DELIMITER ',' TIMEFORMAT 'epochsecs'",
            b"1,a,1700000000\n",
            &cols,
        )
        .unwrap();
        assert_eq!(epoch, "\"1\",\"a\",\"2023-11-14T22:13:20Z\"\n");
    }

    #[test]
    fn gzip_staged_objects_are_inflated_first() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"id\":7}").unwrap();
        let data = gz.finish().unwrap();
        assert_eq!(
            rows("json 'auto' gzip", &data, &[("id", "int8")]).unwrap(),
            "\"7\"\n"
        );
        assert!(rows("gzip", b"not gzip", &[("id", "int8")]).is_err());
    }

    #[test]
    fn manifests_are_awss_json_and_keys_sit_under_the_prefix() {
        let body: Value = serde_json::from_slice(&manifest_body(
            "b",
            "p/2026/x-1-2026-12-06-18-00-00-ab-cd.gz",
        ))
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"entries":[{"url":"s3://b/p/2026/x-1-2026-12-06-18-00-00-ab-cd.gz","mandatory":true}]})
        );
        assert_eq!(
            manifest_key(
                "p/2026/12/06/18/s.1-1-2026-12-06-18-00-00-ab-cd.gz",
                Some("p/"),
                "manifests/"
            ),
            "p/manifests/2026/12/06/18/s.1-1-2026-12-06-18-00-00-ab-cd"
        );
        assert_eq!(
            manifest_key(
                "2026/12/06/18/s-1-2026-12-06-18-00-00-ab",
                None,
                "errors/manifests/"
            ),
            "errors/manifests/2026/12/06/18/s-1-2026-12-06-18-00-00-ab"
        );
    }

    #[test]
    fn jdbc_urls_name_host_port_and_database() {
        assert_eq!(
            parse_url("jdbc:redshift://c.x.redshift.amazonaws.com:5439/dev").unwrap(),
            (
                "c.x.redshift.amazonaws.com".to_owned(),
                5439,
                "dev".to_owned()
            )
        );
        assert!(parse_url("jdbc:redshift://c:notaport/dev").is_err());
    }
}
