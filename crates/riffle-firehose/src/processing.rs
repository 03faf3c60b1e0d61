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

use serde_json::Value;

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

/// AWS's rules on an enabled configuration's processors, and what Riffle
/// does not run yet (RecordDeAggregation, Decompression,
/// CloudWatchLogProcessing). `partitioning`: dynamic partitioning is
/// enabled, which MetadataExtraction and AppendDelimiterToRecord need.
pub fn check_rules(config: &Value, partitioning: bool) -> Result<(), FirehoseError> {
    if config.get("Enabled").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let mut lambdas = 0;
    for processor in processors(config) {
        let kind = processor.get("Type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "Lambda" => {
                lambdas += 1;
                check_lambda(processor)?;
            }
            "MetadataExtraction" | "AppendDelimiterToRecord" if !partitioning => {
                return Err(invalid(format!(
                    "Processor type {kind} is only supported when dynamic partitioning is enabled."
                )));
            }
            "MetadataExtraction" => check_metadata_extraction(processor)?,
            "AppendDelimiterToRecord" => {}
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
    let mut seen = Vec::new();
    for param in parameters(processor) {
        let name = param
            .get("ParameterName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !LAMBDA_PARAMETERS.contains(&name) {
            return Err(invalid(format!(
                "Processor parameter {name} is not valid for processor type Lambda."
            )));
        }
        if seen.contains(&name) {
            return Err(invalid(format!(
                "Processor parameter {name} is specified more than once for processor type Lambda."
            )));
        }
        seen.push(name);
    }
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
        assert!(message(&good).contains("only supported when dynamic partitioning is enabled"));
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
}
