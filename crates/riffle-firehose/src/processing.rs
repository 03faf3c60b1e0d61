//! `ProcessingConfiguration`: its checks at CreateDeliveryStream and
//! UpdateDestination (the model's constraints, then AWS's rules on the
//! processors and their parameters), and the Lambda processor that
//! delivery runs, with AWS's defaults ("Transform source data in Amazon
//! Data Firehose": NumberOfRetries 3; BufferSizeInMBs 0.2–3, default 1;
//! BufferIntervalInSeconds 60 by default).
//!
//! The configuration is kept as the request gave it, so that
//! DescribeDeliveryStream shows it back as AWS does; [`LambdaProcessor`]
//! is read from it when a buffer is delivered.
//!
//! The processors that reshape records before a Lambda processor sees
//! them ([`Reshaping`]) run here on a buffer: `Decompression` (GZIP),
//! `CloudWatchLogProcessing` (one record per log event's message of a
//! CloudWatch Logs subscription payload; control messages dropped) and
//! `RecordDeAggregation` (consecutive JSON objects, or records between a
//! delimiter), in that order ("Decompression of CloudWatch Logs", "Apply
//! dynamic partitioning to aggregated data": deaggregation, then the
//! Lambda transformation, then the partition keys).

use std::io::Read;

use serde::Deserialize;
use serde_json::Value;

use crate::buffer::Buffer;
use crate::time::now_ms;
use crate::transform::{ErrorRecord, Failure, error_line};

use crate::FirehoseError;
use crate::errors::not_supported;
use crate::validate::Violations;

/// The model's `ProcessorType` values.
const PROCESSOR_TYPES: &[&str] = &[
    "RecordDeAggregation",
    "Decompression",
    "CloudWatchLogProcessing",
    "Lambda",
    "MetadataExtraction",
    "AppendDelimiterToRecord",
];
/// The model's `ProcessorParameterName` values.
const PARAMETER_NAMES: &[&str] = &[
    "LambdaArn",
    "NumberOfRetries",
    "MetadataExtractionQuery",
    "JsonParsingEngine",
    "RoleArn",
    "BufferSizeInMBs",
    "BufferIntervalInSeconds",
    "SubRecordType",
    "Delimiter",
    "CompressionFormat",
    "DataMessageExtraction",
];
/// The parameters a `Lambda` processor takes.
const LAMBDA_PARAMETERS: &[&str] = &[
    "LambdaArn",
    "NumberOfRetries",
    "RoleArn",
    "BufferSizeInMBs",
    "BufferIntervalInSeconds",
];
/// `ProcessorParameterValue`: 1–5,120 characters.
const PARAMETER_VALUE_MAX: usize = 5120;
/// NumberOfRetries: 0–300, default 3 (API reference, `ProcessorParameter`;
/// the console's "Retries" allows up to 300).
pub const RETRIES_DEFAULT: u32 = 3;
const RETRIES_MAX: u32 = 300;
/// BufferSizeInMBs: 0.2–3 MB, default 1 ("Transform source data").
pub const BATCH_MB_DEFAULT: f64 = 1.0;
const BATCH_MB_MIN: f64 = 0.2;
const BATCH_MB_MAX: f64 = 3.0;
/// BufferIntervalInSeconds: 60–900, default 60 (the API's bounds for an S3
/// destination's Lambda buffering).
pub const BATCH_INTERVAL_S_DEFAULT: u32 = 60;
const BATCH_INTERVAL_S_MIN: u32 = 60;
const BATCH_INTERVAL_S_MAX: u32 = 900;
const MIB: f64 = 1024.0 * 1024.0;

/// The Lambda processor of an enabled ProcessingConfiguration.
#[derive(Debug, Clone, PartialEq)]
pub struct LambdaProcessor {
    pub lambda_arn: String,
    /// Invocations of a batch after the first failed one.
    pub retries: u32,
    /// Source bytes per invocation (BufferSizeInMBs).
    pub batch_bytes: usize,
    pub interval_s: u32,
}

impl LambdaProcessor {
    /// The processor of a stored ProcessingConfiguration, if it is enabled
    /// and has one (it was checked when it was set).
    pub fn of(config: Option<&Value>) -> Option<LambdaProcessor> {
        let config = config?;
        if config.get("Enabled").and_then(Value::as_bool) != Some(true) {
            return None;
        }
        let processor = processors(config)
            .iter()
            .find(|p| p.get("Type").and_then(Value::as_str) == Some("Lambda"))?;
        let param = |name: &str| parameter(processor, name);
        let mb = param("BufferSizeInMBs")
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(BATCH_MB_DEFAULT);
        Some(LambdaProcessor {
            lambda_arn: param("LambdaArn")?.to_owned(),
            retries: param("NumberOfRetries")
                .and_then(|v| v.parse().ok())
                .unwrap_or(RETRIES_DEFAULT),
            batch_bytes: (mb * MIB) as usize,
            interval_s: param("BufferIntervalInSeconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(BATCH_INTERVAL_S_DEFAULT),
        })
    }
}

fn processors(config: &Value) -> &[Value] {
    config
        .get("Processors")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn parameters(processor: &Value) -> &[Value] {
    processor
        .get("Parameters")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn parameter<'a>(processor: &'a Value, name: &str) -> Option<&'a str> {
    parameters(processor)
        .iter()
        .find(|p| p.get("ParameterName").and_then(Value::as_str) == Some(name))
        .and_then(|p| p.get("ParameterValue"))
        .and_then(Value::as_str)
}

/// The model's constraints on a ProcessingConfiguration; `path` is AWS's
/// name of it in violation texts.
pub fn check_model(config: &Value, v: &mut Violations, path: &str) {
    for (i, processor) in processors(config).iter().enumerate() {
        let at = format!("{path}.processors.{}", i + 1);
        let kind = processor.get("Type").and_then(Value::as_str);
        v.required(&kind, &format!("{at}.type"));
        v.one_of(kind, &format!("{at}.type"), PROCESSOR_TYPES);
        for (j, param) in parameters(processor).iter().enumerate() {
            let at = format!("{at}.parameters.{}", j + 1);
            let name = param.get("ParameterName").and_then(Value::as_str);
            v.required(&name, &format!("{at}.parameterName"));
            v.one_of(name, &format!("{at}.parameterName"), PARAMETER_NAMES);
            let value = param.get("ParameterValue").and_then(Value::as_str);
            v.required(&value, &format!("{at}.parameterValue"));
            v.length(
                value,
                &format!("{at}.parameterValue"),
                1,
                PARAMETER_VALUE_MAX,
            );
        }
    }
}

/// What dynamic partitioning's processors ask of delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Partitioning {
    /// The MetadataExtraction processor's JQ query.
    pub query: Option<String>,
    /// AppendDelimiterToRecord: a newline after each record.
    pub delimiter: bool,
}

impl Partitioning {
    /// The processors of a stored, enabled ProcessingConfiguration.
    pub fn of(config: Option<&Value>) -> Partitioning {
        let mut out = Partitioning::default();
        let Some(config) =
            config.filter(|c| c.get("Enabled").and_then(Value::as_bool) == Some(true))
        else {
            return out;
        };
        for processor in processors(config) {
            match processor.get("Type").and_then(Value::as_str) {
                Some("MetadataExtraction") => {
                    out.query = parameter(processor, "MetadataExtractionQuery").map(str::to_owned);
                }
                Some("AppendDelimiterToRecord") => out.delimiter = true,
                _ => {}
            }
        }
        out
    }
}

/// AWS's rules on an enabled configuration's processors. `partitioning`:
/// dynamic partitioning is enabled, which MetadataExtraction and
/// RecordDeAggregation need ("Apply dynamic partitioning to aggregated
/// data": de-aggregation is a step of partitioning). AppendDelimiterToRecord
/// does not: the API's Processor shape offers it to any S3 destination ("If
/// you want to add a new line delimiter between records in objects that
/// are delivered to Amazon S3, choose AppendDelimiterToRecord").
pub fn check_rules(config: &Value, partitioning: bool) -> Result<(), FirehoseError> {
    if config.get("Enabled").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let mut lambdas = 0;
    let kinds: Vec<&str> = processors(config)
        .iter()
        .map(|p| p.get("Type").and_then(Value::as_str).unwrap_or(""))
        .collect();
    for (processor, &kind) in processors(config).iter().zip(&kinds) {
        match kind {
            "Lambda" => {
                lambdas += 1;
                check_lambda(processor)?;
            }
            "MetadataExtraction" | "RecordDeAggregation" if !partitioning => {
                return Err(invalid(format!(
                    "Processor type {kind} is only supported when dynamic partitioning is enabled."
                )));
            }
            "MetadataExtraction" => check_metadata_extraction(processor)?,
            "AppendDelimiterToRecord" => {}
            "RecordDeAggregation" => check_deaggregation(processor)?,
            "Decompression" => check_decompression(processor)?,
            "CloudWatchLogProcessing" => {
                check_cloudwatch_logs(processor, kinds.contains(&"Decompression"))?
            }
            _ => return Err(not_supported(&format!("Processor type {kind}"))),
        }
    }
    if lambdas > 1 {
        return Err(invalid(
            "Only one processor of type Lambda is allowed in ProcessingConfiguration.".to_owned(),
        ));
    }
    Ok(())
}

fn invalid(message: String) -> FirehoseError {
    FirehoseError::InvalidArgument(message)
}

/// Each of the processor's parameters is one of `allowed`, given once.
fn check_parameter_names(
    processor: &Value,
    kind: &str,
    allowed: &[&str],
) -> Result<(), FirehoseError> {
    let mut seen = Vec::new();
    for param in parameters(processor) {
        let name = param
            .get("ParameterName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !allowed.contains(&name) {
            return Err(invalid(format!(
                "Processor parameter {name} is not valid for processor type {kind}."
            )));
        }
        if seen.contains(&name) {
            return Err(invalid(format!(
                "Processor parameter {name} is specified more than once for processor type {kind}."
            )));
        }
        seen.push(name);
    }
    Ok(())
}

fn check_deaggregation(processor: &Value) -> Result<(), FirehoseError> {
    check_parameter_names(
        processor,
        "RecordDeAggregation",
        &["SubRecordType", "Delimiter"],
    )?;
    match SubRecords::of(processor) {
        Ok(_) => Ok(()),
        Err(why) => Err(invalid(why)),
    }
}

fn check_decompression(processor: &Value) -> Result<(), FirehoseError> {
    check_parameter_names(processor, "Decompression", &["CompressionFormat"])?;
    match parameter(processor, "CompressionFormat") {
        None | Some("GZIP") => Ok(()),
        Some(other) => Err(invalid(format!(
            "Processor parameter CompressionFormat must be GZIP, got {other}."
        ))),
    }
}

fn check_cloudwatch_logs(processor: &Value, decompression: bool) -> Result<(), FirehoseError> {
    check_parameter_names(
        processor,
        "CloudWatchLogProcessing",
        &["DataMessageExtraction"],
    )?;
    if parameter(processor, "DataMessageExtraction") != Some("true") {
        return Err(invalid(
            "Processor parameter DataMessageExtraction must be true for processor type CloudWatchLogProcessing.".to_owned(),
        ));
    }
    if !decompression {
        return Err(invalid(
            "Processor type CloudWatchLogProcessing requires a processor of type Decompression."
                .to_owned(),
        ));
    }
    Ok(())
}

/// Sub-records per source record: "Record deaggregation by JSON or by
/// delimiter is capped at 500 per record" ("Apply dynamic partitioning to
/// aggregated data").
pub const SUB_RECORDS_MAX: usize = 500;
/// Error codes of the records these processors cannot read. AWS names the
/// decompression-failed/ output but not its codes; these say which step.
pub const DECOMPRESSION_FAILED: &str = "Decompression.Failed";
pub const MESSAGE_EXTRACTION_FAILED: &str = "CloudWatchLogProcessing.MessageExtractionFailed";
pub const DEAGGREGATION_FAILED: &str = "RecordDeAggregation.Failed";

/// How RecordDeAggregation splits a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubRecords {
    /// Consecutive JSON objects, side by side or one a line (not an array).
    Json,
    /// Records between occurrences of the (base64-given) delimiter.
    Delimited(Vec<u8>),
}

impl SubRecords {
    fn of(processor: &Value) -> Result<SubRecords, String> {
        match parameter(processor, "SubRecordType") {
            Some("JSON") => Ok(SubRecords::Json),
            Some("DELIMITED") => {
                let Some(encoded) = parameter(processor, "Delimiter") else {
                    return Err(
                        "Delimiter is a required processor parameter for SubRecordType DELIMITED."
                            .to_owned(),
                    );
                };
                match base64_simd::STANDARD.decode_to_vec(encoded) {
                    Ok(delimiter) if !delimiter.is_empty() => Ok(SubRecords::Delimited(delimiter)),
                    _ => Err(format!(
                        "Processor parameter Delimiter {encoded} is not a valid base64-encoded delimiter."
                    )),
                }
            }
            other => Err(format!(
                "Processor parameter SubRecordType must be JSON or DELIMITED, got {}.",
                other.unwrap_or("nothing")
            )),
        }
    }

    /// The sub-records of `data`, as ranges of it.
    fn split(&self, data: &[u8]) -> Result<Vec<std::ops::Range<usize>>, String> {
        let parts = match self {
            SubRecords::Json => json_objects(data)?,
            SubRecords::Delimited(delimiter) => delimited(data, delimiter),
        };
        if parts.len() > SUB_RECORDS_MAX {
            return Err(format!(
                "The record holds {} sub-records, more than {SUB_RECORDS_MAX}.",
                parts.len()
            ));
        }
        Ok(parts)
    }
}

/// The spans of consecutive JSON objects (whitespace between them).
fn json_objects(data: &[u8]) -> Result<Vec<std::ops::Range<usize>>, String> {
    let mut parts = Vec::new();
    let mut values =
        serde_json::Deserializer::from_slice(data).into_iter::<serde::de::IgnoredAny>();
    let mut start = 0;
    while let Some(value) = values.next() {
        value.map_err(|err| format!("The record is not a sequence of JSON objects: {err}."))?;
        let end = values.byte_offset();
        let span = &data[start..end];
        let skipped = span.len() - span.trim_ascii_start().len();
        if span.get(skipped) != Some(&b'{') {
            return Err("The record is not a sequence of JSON objects.".to_owned());
        }
        parts.push(start + skipped..end);
        start = end;
    }
    Ok(parts)
}

/// The non-empty spans between occurrences of `delimiter`.
fn delimited(data: &[u8], delimiter: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at + delimiter.len() <= data.len() {
        if &data[at..at + delimiter.len()] == delimiter {
            if at > start {
                parts.push(start..at);
            }
            at += delimiter.len();
            start = at;
        } else {
            at += 1;
        }
    }
    if start < data.len() {
        parts.push(start..data.len());
    }
    parts
}

/// The processors that reshape records before the Lambda processor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reshaping {
    pub decompress: bool,
    pub extract_messages: bool,
    pub deaggregate: Option<SubRecords>,
}

/// Error lines of records that failed, and how many.
#[derive(Debug, Default)]
pub struct ErrorLines {
    pub lines: Vec<u8>,
    pub count: u64,
}

impl ErrorLines {
    fn push(&mut self, raw: &[u8], arrival_ms: i64, code: &'static str, why: String) {
        self.count += 1;
        error_line(
            &mut self.lines,
            &ErrorRecord {
                attempts: 1,
                arrival_ms,
                failure: &Failure::new(code, why),
                ended_ms: now_ms(),
                raw,
                lambda_arn: None,
            },
        );
    }

    pub fn append(&mut self, other: ErrorLines) {
        self.lines.extend_from_slice(&other.lines);
        self.count += other.count;
    }
}

/// What reshaping a buffer gives: the records, and those that failed to
/// `decompression-failed/` (as they came) and `processing-failed/`.
#[derive(Debug, Default)]
pub struct Reshaped {
    pub buffer: Buffer,
    pub decompression_failed: ErrorLines,
    pub processing_failed: ErrorLines,
}

/// A CloudWatch Logs subscription payload (after GZIP decompression).
#[derive(Deserialize)]
struct LogsPayload {
    #[serde(rename = "messageType")]
    message_type: String,
    #[serde(rename = "logEvents", default)]
    log_events: Vec<LogEvent>,
}

#[derive(Deserialize)]
struct LogEvent {
    message: String,
}

/// The messageType of CloudWatch Logs' checks that a destination is
/// reachable: no log events, dropped ("Decompression of CloudWatch Logs").
const CONTROL_MESSAGE: &str = "CONTROL_MESSAGE";

impl Reshaping {
    /// The reshaping processors of a stored, enabled configuration; `None`
    /// when it has none.
    pub fn of(config: Option<&Value>) -> Option<Reshaping> {
        let config = config.filter(|c| c.get("Enabled").and_then(Value::as_bool) == Some(true))?;
        let mut out = Reshaping::default();
        for processor in processors(config) {
            match processor.get("Type").and_then(Value::as_str) {
                Some("Decompression") => out.decompress = true,
                Some("CloudWatchLogProcessing") => out.extract_messages = true,
                Some("RecordDeAggregation") => out.deaggregate = SubRecords::of(processor).ok(),
                _ => {}
            }
        }
        (out != Reshaping::default()).then_some(out)
    }

    /// The buffer's records reshaped; each derived record keeps its
    /// source's arrival time and slot, and the buffer its log positions.
    pub fn apply(&self, source: &Buffer) -> Reshaped {
        let mut out = Reshaped {
            buffer: Buffer::new(source.from),
            ..Reshaped::default()
        };
        out.buffer.end = source.end;
        let keep_slots = !source.slot_ends.is_empty();
        for i in 0..source.len() {
            let (raw, arrival) = (source.record(i), source.arrivals[i]);
            let slot = keep_slots.then(|| source.slot(i));
            let decompressed;
            let data = if self.decompress {
                match gunzip(raw) {
                    Ok(data) => {
                        decompressed = data;
                        &decompressed[..]
                    }
                    Err(why) => {
                        out.decompression_failed
                            .push(raw, arrival, DECOMPRESSION_FAILED, why);
                        continue;
                    }
                }
            } else {
                raw
            };
            if let Err((code, why)) = self.split(data, |part| {
                out.buffer.push_derived(part, arrival, slot);
            }) {
                out.processing_failed.push(raw, arrival, code, why);
            }
        }
        out
    }

    /// Hands each record made of one (decompressed) record to `emit`.
    fn split(
        &self,
        data: &[u8],
        mut emit: impl FnMut(&[u8]),
    ) -> Result<(), (&'static str, String)> {
        let messages;
        let records: Vec<&[u8]> = if self.extract_messages {
            let payload: LogsPayload = serde_json::from_slice(data).map_err(|err| {
                (
                    MESSAGE_EXTRACTION_FAILED,
                    format!("The record is not a CloudWatch Logs payload: {err}."),
                )
            })?;
            if payload.message_type == CONTROL_MESSAGE {
                return Ok(());
            }
            messages = payload.log_events;
            messages.iter().map(|e| e.message.as_bytes()).collect()
        } else {
            vec![data]
        };
        let mut parts = Vec::new();
        for record in records {
            match &self.deaggregate {
                None => parts.push(record),
                Some(how) => {
                    let spans = how
                        .split(record)
                        .map_err(|why| (DEAGGREGATION_FAILED, why))?;
                    parts.extend(spans.into_iter().map(|r| &record[r]));
                }
            }
        }
        parts.into_iter().for_each(&mut emit);
        Ok(())
    }
}

/// Decompression's input bound: a record is at most 1,000 KiB (Firehose's
/// record size limit); what it inflates to is bounded so that one bad
/// record cannot take the memory of a buffer (128 MiB, the largest).
const INFLATED_MAX: u64 = 128 * 1024 * 1024;

fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(data.len() * 4);
    flate2::read::MultiGzDecoder::new(data)
        .take(INFLATED_MAX + 1)
        .read_to_end(&mut out)
        .map_err(|err| format!("The record is not GZIP data: {err}."))?;
    if out.len() as u64 > INFLATED_MAX {
        return Err(format!(
            "The record decompresses to more than {INFLATED_MAX} bytes."
        ));
    }
    Ok(out)
}

fn check_metadata_extraction(processor: &Value) -> Result<(), FirehoseError> {
    let Some(query) = parameter(processor, "MetadataExtractionQuery") else {
        return Err(invalid(
            "MetadataExtractionQuery is a required processor parameter for processor type MetadataExtraction.".to_owned(),
        ));
    };
    match parameter(processor, "JsonParsingEngine") {
        Some(crate::partition::JQ_ENGINE) => {}
        other => {
            return Err(invalid(format!(
                "Processor parameter JsonParsingEngine must be {}, got {}.",
                crate::partition::JQ_ENGINE,
                other.unwrap_or("nothing")
            )));
        }
    }
    crate::partition::Query::compile(query).map_err(|why| {
        invalid(format!(
            "Processor parameter MetadataExtractionQuery {query} is not a valid JQ query: {why}."
        ))
    })?;
    Ok(())
}

fn check_lambda(processor: &Value) -> Result<(), FirehoseError> {
    check_parameter_names(processor, "Lambda", LAMBDA_PARAMETERS)?;
    let Some(arn) = parameter(processor, "LambdaArn") else {
        return Err(invalid(
            "LambdaArn is a required processor parameter for processor type Lambda.".to_owned(),
        ));
    };
    if riffle_lambda::arn::parse(arn).is_err() {
        return Err(invalid(format!(
            "Processor parameter LambdaArn {arn} is not a valid Lambda function ARN."
        )));
    }
    if let Some(retries) = parameter(processor, "NumberOfRetries")
        && retries.parse::<u32>().map_or(true, |n| n > RETRIES_MAX)
    {
        return Err(invalid(format!(
            "Processor parameter NumberOfRetries must be an integer between 0 and {RETRIES_MAX}, got {retries}."
        )));
    }
    if let Some(mb) = parameter(processor, "BufferSizeInMBs")
        && mb
            .parse::<f64>()
            .map_or(true, |n| !(BATCH_MB_MIN..=BATCH_MB_MAX).contains(&n))
    {
        return Err(invalid(format!(
            "Processor parameter BufferSizeInMBs must be a number between {BATCH_MB_MIN} and {BATCH_MB_MAX}, got {mb}."
        )));
    }
    if let Some(s) = parameter(processor, "BufferIntervalInSeconds")
        && s.parse::<u32>().map_or(true, |n| {
            !(BATCH_INTERVAL_S_MIN..=BATCH_INTERVAL_S_MAX).contains(&n)
        })
    {
        return Err(invalid(format!(
            "Processor parameter BufferIntervalInSeconds must be an integer between {BATCH_INTERVAL_S_MIN} and {BATCH_INTERVAL_S_MAX}, got {s}."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn lambda(params: Value) -> Value {
        json!({"Enabled": true, "Processors": [{"Type": "Lambda", "Parameters": params}]})
    }

    fn message(config: &Value) -> String {
        match check_rules(config, false) {
            Err(FirehoseError::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lambda_processor_gets_awss_defaults() {
        let config = lambda(json!([
            {"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:f"}
        ]));
        check_rules(&config, false).unwrap();
        assert_eq!(
            LambdaProcessor::of(Some(&config)),
            Some(LambdaProcessor {
                lambda_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".to_owned(),
                retries: 3,
                batch_bytes: 1024 * 1024,
                interval_s: 60,
            })
        );
        let disabled = json!({"Enabled": false, "Processors": config["Processors"].clone()});
        assert_eq!(LambdaProcessor::of(Some(&disabled)), None);
    }

    #[test]
    fn lambda_parameters_outside_awss_bounds_are_refused() {
        let arn = json!({"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:lambda:us-east-1:000000000000:function:f"});
        let with = |name: &str, value: &str| {
            lambda(json!([arn.clone(), {"ParameterName": name, "ParameterValue": value}]))
        };
        assert!(message(&lambda(json!([]))).contains("LambdaArn is a required"));
        assert!(message(&with("NumberOfRetries", "301")).contains("between 0 and 300"));
        assert!(message(&with("BufferSizeInMBs", "0.1")).contains("between 0.2 and 3"));
        assert!(message(&with("BufferSizeInMBs", "3.5")).contains("between 0.2 and 3"));
        assert!(message(&with("BufferIntervalInSeconds", "59")).contains("between 60 and 900"));
        assert!(message(&with("JsonParsingEngine", "JQ-1.6")).contains("not valid for"));
        check_rules(&with("BufferSizeInMBs", "0.2"), false).unwrap();
        check_rules(&with("NumberOfRetries", "0"), false).unwrap();
        let bad_arn =
            lambda(json!([{"ParameterName": "LambdaArn", "ParameterValue": "arn:aws:s3:::b"}]));
        assert!(message(&bad_arn).contains("not a valid Lambda function ARN"));
    }

    #[test]
    fn partitioning_processors_need_dynamic_partitioning_and_a_jq_query() {
        let config = |params: Value| {
            json!({"Enabled": true, "Processors": [
                {"Type": "MetadataExtraction", "Parameters": params},
                {"Type": "AppendDelimiterToRecord"}
            ]})
        };
        let good = config(json!([
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer_id: .customer_id}"},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}
        ]));
        check_rules(&good, true).unwrap();
        assert_eq!(
            Partitioning::of(Some(&good)),
            Partitioning {
                query: Some("{customer_id: .customer_id}".to_owned()),
                delimiter: true
            }
        );
        assert!(message(&good).contains(
            "Processor type MetadataExtraction is only supported when dynamic partitioning is enabled."
        ));
        let newline = json!({"Enabled": true, "Processors": [{"Type": "AppendDelimiterToRecord"}]});
        check_rules(&newline, false).unwrap();
        assert!(Partitioning::of(Some(&newline)).delimiter);
        let refused = |config: &Value| match check_rules(config, true) {
            Err(FirehoseError::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        };
        let bad_query = config(json!([
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{a: .b"},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}
        ]));
        assert!(refused(&bad_query).contains("not a valid JQ query"));
        let no_engine = config(json!([
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{a: .b}"}
        ]));
        assert!(refused(&no_engine).contains("JsonParsingEngine must be JQ-1.6"));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut out = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        out.write_all(data).unwrap();
        out.finish().unwrap()
    }

    fn buffer_of(records: &[&[u8]]) -> Buffer {
        let mut buffer = Buffer::new(7);
        for (i, r) in records.iter().enumerate() {
            buffer.push_derived(r, 100 + i as i64, None);
        }
        buffer.end = 7 + records.len() as u64;
        buffer
    }

    fn reshaping(processors: Value) -> Reshaping {
        let config = json!({"Enabled": true, "Processors": processors});
        Reshaping::of(Some(&config)).unwrap()
    }

    fn records_of(buffer: &Buffer) -> Vec<&[u8]> {
        (0..buffer.len()).map(|i| buffer.record(i)).collect()
    }

    /// A CloudWatch Logs subscription payload as Logs sends it to Firehose.
    fn logs_payload(kind: &str, messages: &[&str]) -> Vec<u8> {
        let events: Vec<Value> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| json!({"id": format!("{i:056}"), "timestamp": 1_510_109_208_016_i64 + i as i64, "message": m}))
            .collect();
        let payload = json!({
            "messageType": kind, "owner": "123456789012", "logGroup": "/app", "logStream": "s",
            "subscriptionFilters": ["f"], "logEvents": events,
        });
        gzip(payload.to_string().as_bytes())
    }

    #[test]
    fn cloudwatch_logs_payloads_become_one_record_per_message_and_control_messages_vanish() {
        let r = reshaping(json!([
            {"Type": "Decompression", "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]},
            {"Type": "CloudWatchLogProcessing", "Parameters": [{"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]},
        ]));
        let data = logs_payload("DATA_MESSAGE", &["first line", "{\"a\":1}"]);
        let control = logs_payload(
            "CONTROL_MESSAGE",
            &["CWL CONTROL MESSAGE: Checking health of destination Firehose."],
        );
        let out = r.apply(&buffer_of(&[&data, &control, b"not gzip"]));
        assert_eq!(records_of(&out.buffer), [&b"first line"[..], b"{\"a\":1}"]);
        assert_eq!(out.buffer.arrivals, [100, 100]);
        assert_eq!((out.buffer.from, out.buffer.end), (7, 10));
        assert_eq!(out.decompression_failed.count, 1);
        let line: Value = serde_json::from_slice(&out.decompression_failed.lines).unwrap();
        assert_eq!(line["errorCode"], DECOMPRESSION_FAILED);
        assert_eq!(
            line["rawData"],
            base64_simd::STANDARD.encode_to_string(b"not gzip")
        );
        assert_eq!(out.processing_failed.count, 0);
    }

    #[test]
    fn json_deaggregation_splits_consecutive_objects_and_refuses_arrays() {
        let r = reshaping(json!([{"Type": "RecordDeAggregation", "Parameters": [
            {"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]}]));
        let out = r.apply(&buffer_of(&[
            b"{\"a\":1}{\"a\":2}",
            b"{\"a\":3}\n{\"a\": {\"b\": [4]}}\n",
            b"[{\"a\":1}, {\"a\":2}]",
            b"{\"a\":",
        ]));
        assert_eq!(
            records_of(&out.buffer),
            [
                &b"{\"a\":1}"[..],
                b"{\"a\":2}",
                b"{\"a\":3}",
                b"{\"a\": {\"b\": [4]}}"
            ]
        );
        assert_eq!(out.buffer.arrivals, [100, 100, 101, 101]);
        assert_eq!(out.processing_failed.count, 2);
        let many: Vec<u8> = b"{}".repeat(SUB_RECORDS_MAX + 1);
        assert_eq!(r.apply(&buffer_of(&[&many])).processing_failed.count, 1);
    }

    #[test]
    fn delimited_deaggregation_splits_on_the_base64_delimiter() {
        // AWS's example: #### given as IyMjIw==.
        let r = reshaping(json!([{"Type": "RecordDeAggregation", "Parameters": [
            {"ParameterName": "SubRecordType", "ParameterValue": "DELIMITED"},
            {"ParameterName": "Delimiter", "ParameterValue": "IyMjIw=="}]}]));
        let out = r.apply(&buffer_of(&[b"a####bc####", b"####d#e"]));
        assert_eq!(records_of(&out.buffer), [&b"a"[..], b"bc", b"d#e"]);
    }

    #[test]
    fn a_record_failing_after_decompression_is_written_compressed_as_it_came() {
        // "Troubleshoot decompression": a record that fails a step after
        // decompression "is delivered in compressed format" to the error
        // output, as one that fails decompression is "delivered as is".
        let r = reshaping(json!([
            {"Type": "Decompression", "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]},
            {"Type": "CloudWatchLogProcessing", "Parameters": [{"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]},
        ]));
        let not_logs = gzip(b"{\"just\": \"json\"}");
        let out = r.apply(&buffer_of(&[&not_logs]));
        assert_eq!(out.processing_failed.count, 1);
        let line: Value = serde_json::from_slice(&out.processing_failed.lines).unwrap();
        assert_eq!(line["errorCode"], MESSAGE_EXTRACTION_FAILED);
        assert_eq!(
            line["rawData"],
            base64_simd::STANDARD.encode_to_string(&not_logs)
        );
        assert_eq!(out.buffer.len(), 0);
    }

    #[test]
    fn reshaping_processors_are_checked_as_aws_checks_them() {
        let refused = |processors: Value, partitioning: bool| match check_rules(
            &json!({"Enabled": true, "Processors": processors}),
            partitioning,
        ) {
            Err(FirehoseError::InvalidArgument(m)) => m,
            other => panic!("{other:?}"),
        };
        let deagg = |params: Value| json!([{"Type": "RecordDeAggregation", "Parameters": params}]);
        let json_type =
            deagg(json!([{"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]));
        assert!(
            refused(json_type.clone(), false).contains("only supported when dynamic partitioning")
        );
        check_rules(&json!({"Enabled": true, "Processors": json_type}), true).unwrap();
        assert!(
            refused(
                deagg(json!([{"ParameterName": "SubRecordType", "ParameterValue": "CSV"}])),
                true
            )
            .contains("JSON or DELIMITED")
        );
        assert!(
            refused(
                deagg(json!([{"ParameterName": "SubRecordType", "ParameterValue": "DELIMITED"}])),
                true
            )
            .contains("Delimiter is a required")
        );
        assert!(
            refused(
                deagg(json!([
            {"ParameterName": "SubRecordType", "ParameterValue": "DELIMITED"},
            {"ParameterName": "Delimiter", "ParameterValue": "not base64!"}])),
                true
            )
            .contains("not a valid base64")
        );
        let decompression = json!({"Type": "Decompression", "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "ZIP"}]});
        assert!(refused(json!([decompression]), false).contains("must be GZIP"));
        let extraction = json!({"Type": "CloudWatchLogProcessing", "Parameters": [{"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]});
        assert!(
            refused(json!([extraction.clone()]), false)
                .contains("requires a processor of type Decompression")
        );
        check_rules(
            &json!({"Enabled": true, "Processors": [{"Type": "Decompression"}, extraction]}),
            false,
        )
        .unwrap();
        let off = json!({"Type": "CloudWatchLogProcessing", "Parameters": [{"ParameterName": "DataMessageExtraction", "ParameterValue": "false"}]});
        assert!(refused(json!([{"Type": "Decompression"}, off]), false).contains("must be true"));
    }
}
