//! `dataProcessingOptions`: the agent's converters (SINGLELINE, CSVTOJSON,
//! LOGTOJSON, ADDMETADATA), producing the JSON the Java agent produces: keys
//! in the configured order, compact, one object per record and a newline.

use serde_json::{Map, Value};

use crate::config::{compile, string};
use crate::error::AgentError;

/// What the converters end a JSON record with, as the agent's NEW_LINE.
const NEW_LINE: &str = "\n";

/// The pieces the agent's log formats are built from (its PatternConstants).
mod pattern {
    pub const INT: &str = r"(?:[+-]?(?:[0-9]+))";
    pub const POSINT: &str = r"(?:[1-9][0-9]*)";
    pub const NONNEGINT: &str = r"(?:[0-9]+)";
    pub const WORD: &str = r"\w+";
    pub const NOQUOTE: &str = r#"[^"]+"#;
    pub const IP: &str = r"(?:[\d\.]+)";
    pub const HOSTNAME: &str = r"(?:[\w\-]+)(?:\.(?:[\w\-]+))*(?:\.?|\b)";
    pub const USER: &str = r"(?:[a-zA-Z0-9._-]+)";
    pub const MONTHDAY: &str = r"(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])";
    pub const DAY: &str = r"(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)";
    pub const MONTH: &str = r"\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b";
    pub const YEAR: &str = r"(?:[1-9]\d*)";
    pub const HOUR: &str = r"(?:2[0123]|[01]?[0-9])";
    pub const MINUTE: &str = r"(?:[0-5][0-9])";
    pub const SECOND: &str = r"(?:(?:[0-5]?[0-9]|60)(?:[:\.,][0-9]+)?)";
    pub const ISO8601: &str =
        r"(?:\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[\.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)";
}

/// The field names of each log format, the agent's.
const COMMON_FIELDS: &[&str] = &[
    "host", "ident", "authuser", "datetime", "request", "response", "bytes",
];
const COMBINED_FIELDS: &[&str] = &[
    "host", "ident", "authuser", "datetime", "request", "response", "bytes", "referer", "agent",
];
const ERROR_FIELDS: &[&str] = &[
    "timestamp",
    "module",
    "severity",
    "processid",
    "threadid",
    "client",
    "message",
];
const SYSLOG_FIELDS: &[&str] = &["timestamp", "hostname", "program", "processid", "message"];

/// One data processing option.
#[derive(Debug, Clone)]
pub enum Converter {
    /// Lines joined into one, each trimmed.
    SingleLine,
    /// `delimiter` (a regex, as Java's `String.split`) splits the record
    /// into the `customFieldNames`; missing columns are null.
    CsvToJson {
        fields: Vec<String>,
        delimiter: regex::Regex,
    },
    /// A log line matched by a format's regex into its fields; a line that
    /// does not match is dropped, as the agent drops it.
    LogToJson {
        pattern: regex::Regex,
        fields: Vec<String>,
        /// Apache formats write `-` for a missing field; it becomes null.
        dash_is_null: bool,
    },
    /// `{"metadata": …, "data": …}` with `"ts"` when `timestamp` is true.
    AddMetadata { metadata: Value, timestamp: bool },
}

impl Converter {
    /// Reads one `dataProcessingOptions` entry; `None` for one that is
    /// accepted but does nothing here (ADDEC2METADATA: no EC2 to ask).
    pub fn from_config(value: &Value, at: &str) -> Result<Option<Converter>, AgentError> {
        let Value::Object(option) = value else {
            return Err(AgentError::Config(format!("{at} must be an object")));
        };
        let name = string(option, "optionName", at)?
            .ok_or_else(|| AgentError::Config(format!("{at}: optionName is required")))?;
        let converter = match name.as_str() {
            "SINGLELINE" => Converter::SingleLine,
            "CSVTOJSON" => Converter::CsvToJson {
                fields: field_names(option, at)?.ok_or_else(|| {
                    AgentError::Config(format!("{at}: customFieldNames is required"))
                })?,
                delimiter: compile(
                    &string(option, "delimiter", at)?.unwrap_or_else(|| ",".into()),
                    &format!("{at}.delimiter"),
                )?,
            },
            "LOGTOJSON" => log_to_json(option, at)?,
            "ADDMETADATA" => Converter::AddMetadata {
                metadata: option
                    .get("metadata")
                    .or_else(|| option.get("metadataFields"))
                    .cloned()
                    .unwrap_or(Value::Null),
                timestamp: match option.get("timestamp") {
                    Some(Value::Bool(on)) => *on,
                    Some(Value::String(text)) => text.eq_ignore_ascii_case("true"),
                    _ => false,
                },
            },
            "ADDEC2METADATA" => {
                tracing::warn!(
                    "{at}: ADDEC2METADATA is ignored: riffle agent does not run on EC2's instance metadata service"
                );
                return Ok(None);
            }
            other => {
                return Err(AgentError::Config(format!(
                    "{at}: optionName `{other}` is not SINGLELINE, CSVTOJSON, LOGTOJSON, ADDMETADATA or ADDEC2METADATA"
                )));
            }
        };
        Ok(Some(converter))
    }

    /// Converts one record; `None` drops it.
    pub fn convert(&self, data: &[u8]) -> Option<Vec<u8>> {
        let text = String::from_utf8_lossy(data);
        let text = text.strip_suffix(NEW_LINE).unwrap_or(&text);
        let json = match self {
            Converter::SingleLine => {
                let joined: String = text.split(NEW_LINE).map(str::trim).collect();
                return Some(format!("{joined}{NEW_LINE}").into_bytes());
            }
            Converter::CsvToJson { fields, delimiter } => {
                let mut columns: Vec<&str> = delimiter.split(text).collect();
                // Java's split drops trailing empty strings.
                while columns.last() == Some(&"") {
                    columns.pop();
                }
                object(
                    fields
                        .iter()
                        .enumerate()
                        .map(|(i, name)| (name.as_str(), columns.get(i).map(|c| Value::from(*c)))),
                )
            }
            Converter::LogToJson {
                pattern,
                fields,
                dash_is_null,
            } => {
                let captures = pattern.captures(text)?;
                if captures.len() - 1 != fields.len() {
                    return None;
                }
                object(fields.iter().enumerate().map(|(i, name)| {
                    let value = captures
                        .get(i + 1)
                        .map(|m| m.as_str())
                        .filter(|v| !(*dash_is_null && *v == "-"));
                    (name.as_str(), value.map(Value::from))
                }))
            }
            Converter::AddMetadata {
                metadata,
                timestamp,
            } => {
                let ts = timestamp.then(|| {
                    Value::from(
                        jiff::Timestamp::now()
                            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
                            .to_string(),
                    )
                });
                let members = [
                    ("metadata", Some(metadata.clone())),
                    ("data", Some(Value::from(text))),
                ];
                let members = members.into_iter().chain(ts.map(|ts| ("ts", Some(ts))));
                object(members)
            }
        };
        Some(format!("{json}{NEW_LINE}").into_bytes())
    }
}

/// A JSON object with its keys in the given order (serde_json's map sorts them).
fn object<'a>(fields: impl Iterator<Item = (&'a str, Option<Value>)>) -> String {
    let members: Vec<String> = fields
        .map(|(name, value)| format!("{}:{}", Value::from(name), value.unwrap_or(Value::Null)))
        .collect();
    format!("{{{}}}", members.join(","))
}

fn field_names(option: &Map<String, Value>, at: &str) -> Result<Option<Vec<String>>, AgentError> {
    match option.get("customFieldNames") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(names)) => names
            .iter()
            .map(|name| match name {
                Value::String(name) => Ok(name.clone()),
                _ => Err(AgentError::Config(format!(
                    "{at}: customFieldNames must be strings"
                ))),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(AgentError::Config(format!(
            "{at}: customFieldNames must be a list"
        ))),
    }
}

fn log_to_json(option: &Map<String, Value>, at: &str) -> Result<Converter, AgentError> {
    use pattern::*;
    let format = string(option, "logFormat", at)?
        .ok_or_else(|| AgentError::Config(format!("{at}: logFormat is required")))?;
    let common = format!(
        r#"({IP}|{HOSTNAME}) ({USER}) ({USER}) \[({MONTHDAY}/{MONTH}/{YEAR}:{HOUR}:{MINUTE}:{SECOND}\s{INT})\] "({NOQUOTE})" ({INT}|\-) ({INT}|\-)"#
    );
    let syslog_tail =
        format!(r"(?:<{NONNEGINT}.{NONNEGINT}> )?({USER}) ([\w\._/%-]+)(?:\[({POSINT})\])?: (.*)");
    let (regex, defaults, dash_is_null) = match format.as_str() {
        "COMMONAPACHELOG" => (format!("{common}.*"), COMMON_FIELDS, true),
        "COMBINEDAPACHELOG" => (
            format!(r#"{common} "({NOQUOTE})" "({NOQUOTE})".*"#),
            COMBINED_FIELDS,
            true,
        ),
        "APACHEERRORLOG" => (
            format!(
                r"\[({DAY}\s+{MONTH}\s+{MONTHDAY}\s+{HOUR}:{MINUTE}:{SECOND}\s+{YEAR})\] \[(?:({WORD}):)?({WORD})\] \[pid ({NONNEGINT})(?::tid ({NONNEGINT}))?\] \[client ((?:{HOSTNAME}|{IP})(?::{POSINT})?)\] (.*)"
            ),
            ERROR_FIELDS,
            true,
        ),
        "SYSLOG" => (
            format!(r"({MONTH}\s+{MONTHDAY}\s+{HOUR}:{MINUTE}:{SECOND}) {syslog_tail}"),
            SYSLOG_FIELDS,
            false,
        ),
        "RFC3339SYSLOG" => (format!(r"({ISO8601}) {syslog_tail}"), SYSLOG_FIELDS, false),
        other => {
            return Err(AgentError::Config(format!(
                "{at}: logFormat `{other}` is not COMMONAPACHELOG, COMBINEDAPACHELOG, APACHEERRORLOG, SYSLOG or RFC3339SYSLOG"
            )));
        }
    };
    let custom = field_names(option, at)?;
    let (regex, fields) = match (string(option, "matchPattern", at)?, custom) {
        (Some(pattern), Some(fields)) => (pattern, fields),
        (Some(_), None) => {
            return Err(AgentError::Config(format!(
                "{at}: customFieldNames must be given with matchPattern"
            )));
        }
        (None, Some(fields)) if fields.len() != defaults.len() => {
            return Err(AgentError::Config(format!(
                "{at}: {format} has {} fields, customFieldNames names {}",
                defaults.len(),
                fields.len()
            )));
        }
        (None, Some(fields)) => (regex, fields),
        (None, None) => (regex, defaults.iter().map(|f| f.to_string()).collect()),
    };
    // Java's Matcher.matches(): the whole line.
    let pattern = compile(&format!("^(?:{regex})$"), &format!("{at}.matchPattern"))?;
    Ok(Converter::LogToJson {
        pattern,
        fields,
        dash_is_null,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn converter(option: Value) -> Converter {
        Converter::from_config(&option, "test").unwrap().unwrap()
    }

    fn convert(converter: &Converter, line: &str) -> Option<String> {
        converter
            .convert(line.as_bytes())
            .map(|out| String::from_utf8(out).unwrap())
    }

    #[test]
    fn common_apache_log_becomes_the_agents_json() {
        // The developer guide's example for LOGTOJSON with COMMONAPACHELOG.
        let log = converter(json!({"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG"}));
        assert_eq!(
            convert(
                &log,
                "64.242.88.10 - - [07/Mar/2004:16:10:02 -0800] \"GET /mailman/listinfo/hsdivision HTTP/1.1\" 200 6291\n"
            )
            .unwrap(),
            "{\"host\":\"64.242.88.10\",\"ident\":null,\"authuser\":null,\"datetime\":\"07/Mar/2004:16:10:02 -0800\",\"request\":\"GET /mailman/listinfo/hsdivision HTTP/1.1\",\"response\":\"200\",\"bytes\":\"6291\"}\n"
        );
        assert_eq!(convert(&log, "not an access log line\n"), None);
    }

    #[test]
    fn combined_apache_log_adds_referer_and_agent() {
        let log = converter(json!({"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG"}));
        let out = convert(
            &log,
            "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 \"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\"\n",
        )
        .unwrap();
        assert_eq!(
            out,
            "{\"host\":\"127.0.0.1\",\"ident\":null,\"authuser\":\"frank\",\"datetime\":\"10/Oct/2000:13:55:36 -0700\",\"request\":\"GET /apache_pb.gif HTTP/1.0\",\"response\":\"200\",\"bytes\":\"2326\",\"referer\":\"http://www.example.com/start.html\",\"agent\":\"Mozilla/4.08 [en] (Win98; I ;Nav)\"}\n"
        );
    }

    #[test]
    fn apache_error_log_and_syslogs_parse_into_their_fields() {
        let error = converter(json!({"optionName": "LOGTOJSON", "logFormat": "APACHEERRORLOG"}));
        assert_eq!(
            convert(&error, "[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /usr/local/apache2/htdocs/favicon.ico").unwrap(),
            "{\"timestamp\":\"Fri Sep 09 10:42:29.902022 2011\",\"module\":\"core\",\"severity\":\"error\",\"processid\":\"35708\",\"threadid\":\"4328636416\",\"client\":\"72.15.99.187\",\"message\":\"File does not exist: /usr/local/apache2/htdocs/favicon.ico\"}\n"
        );
        let syslog = converter(json!({"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}));
        assert_eq!(
            convert(&syslog, "Mar 12 12:00:08 server2 rcd[308]: Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds)\n").unwrap(),
            "{\"timestamp\":\"Mar 12 12:00:08\",\"hostname\":\"server2\",\"program\":\"rcd\",\"processid\":\"308\",\"message\":\"Loaded 12 packages in 'ximian-red-carpet|351' (0.01878 seconds)\"}\n"
        );
        let rfc = converter(json!({"optionName": "LOGTOJSON", "logFormat": "RFC3339SYSLOG"}));
        assert_eq!(
            convert(
                &rfc,
                "2026-12-06T10:00:00.123+00:00 web1 sshd: session opened\n"
            )
            .unwrap(),
            "{\"timestamp\":\"2026-12-06T10:00:00.123+00:00\",\"hostname\":\"web1\",\"program\":\"sshd\",\"processid\":null,\"message\":\"session opened\"}\n"
        );
    }

    #[test]
    fn custom_match_pattern_names_its_groups() {
        let log = converter(json!({"optionName": "LOGTOJSON", "logFormat": "SYSLOG",
            "matchPattern": "^([\\w:]+) (\\w+)", "customFieldNames": ["time", "word"]}));
        assert_eq!(
            convert(&log, "12:00 hello\n").unwrap(),
            "{\"time\":\"12:00\",\"word\":\"hello\"}\n"
        );
    }

    #[test]
    fn csv_becomes_json_with_missing_columns_null() {
        let csv = converter(json!({"optionName": "CSVTOJSON",
            "customFieldNames": ["field1", "field2", "field3"], "delimiter": "\\t"}));
        assert_eq!(
            convert(&csv, "a\tb\n").unwrap(),
            "{\"field1\":\"a\",\"field2\":\"b\",\"field3\":null}\n"
        );
        let comma = converter(json!({"optionName": "CSVTOJSON", "customFieldNames": ["x", "y"]}));
        assert_eq!(
            convert(&comma, "1,\"q\",extra\n").unwrap(),
            "{\"x\":\"1\",\"y\":\"\\\"q\\\"\"}\n"
        );
    }

    #[test]
    fn single_line_and_metadata_wrap_the_record() {
        assert_eq!(
            convert(&Converter::SingleLine, "  a\n  b  \n").unwrap(),
            "ab\n"
        );
        let meta = converter(json!({"optionName": "ADDMETADATA", "metadata": {"env": "prod"}}));
        assert_eq!(
            convert(&meta, "hello\n").unwrap(),
            "{\"metadata\":{\"env\":\"prod\"},\"data\":\"hello\"}\n"
        );
        let stamped =
            converter(json!({"optionName": "ADDMETADATA", "timestamp": "true", "metadata": {}}));
        let out: Value = serde_json::from_str(&convert(&stamped, "x\n").unwrap()).unwrap();
        assert!(out["ts"].as_str().unwrap().ends_with('Z'), "{out}");
    }

    #[test]
    fn ec2_metadata_is_accepted_and_ignored() {
        let option = json!({"optionName": "ADDEC2METADATA"});
        assert!(Converter::from_config(&option, "t").unwrap().is_none());
        let unknown = json!({"optionName": "GZIP"});
        assert!(Converter::from_config(&unknown, "t").is_err());
    }
}
