//! An event source mapping as the metadata store keeps it, and as Lambda
//! describes it (`EventSourceMappingConfiguration`).
//!
//! Stored under `lambda/event-source-mappings/<UUID>` as the JSON of
//! [`Mapping`] (member names as below, snake case); a field added later
//! gets a serde default, so older records still read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The metadata-store key prefix of every mapping.
pub const KEY_PREFIX: &str = "lambda/event-source-mappings/";

/// Lambda's `State` of a mapping at rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Enabled,
    Disabled,
}

impl State {
    pub fn of(enabled: bool) -> State {
        if enabled {
            State::Enabled
        } else {
            State::Disabled
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::Enabled => "Enabled",
            State::Disabled => "Disabled",
        }
    }
}

/// One mapping of a Kinesis stream (or a stream's consumer) to a function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mapping {
    pub uuid: String,
    pub event_source_arn: String,
    /// The function's ARN with the qualifier it was named with.
    pub function_arn: String,
    pub batch_size: i64,
    pub maximum_batching_window_in_seconds: i64,
    pub parallelization_factor: i64,
    pub starting_position: String,
    /// Epoch seconds, for `AT_TIMESTAMP`.
    pub starting_position_timestamp: Option<f64>,
    pub maximum_record_age_in_seconds: i64,
    pub bisect_batch_on_function_error: bool,
    pub maximum_retry_attempts: i64,
    pub tumbling_window_in_seconds: Option<i64>,
    #[serde(default)]
    pub function_response_types: Vec<String>,
    pub filter_criteria: Option<Value>,
    pub destination_config: Option<Value>,
    pub state: State,
    /// Epoch seconds of the last create or update.
    pub last_modified: f64,
    /// Epoch seconds of the creation: where `LATEST` starts (absent in
    /// mappings stored before the pollers: their last change is taken).
    #[serde(default)]
    pub created: Option<f64>,
}

impl Mapping {
    /// When the mapping was created (epoch seconds).
    pub fn created(&self) -> f64 {
        self.created.unwrap_or(self.last_modified)
    }

    pub fn key(&self) -> String {
        format!("{KEY_PREFIX}{}", self.uuid)
    }

    /// `EventSourceMappingConfiguration`, in `state` (the settled one, or
    /// the transition an answer reports: `Creating`, `Updating`,
    /// `Deleting`).
    pub fn describe(&self, state: &str, last_result: &str, region: &str, account: &str) -> Value {
        let mut out = Map::new();
        let mut put = |name: &str, value: Value| {
            out.insert(name.to_owned(), value);
        };
        put("UUID", json!(self.uuid));
        put("StartingPosition", json!(self.starting_position));
        if let Some(at) = self.starting_position_timestamp {
            put("StartingPositionTimestamp", json!(at));
        }
        put("BatchSize", json!(self.batch_size));
        put(
            "MaximumBatchingWindowInSeconds",
            json!(self.maximum_batching_window_in_seconds),
        );
        put("ParallelizationFactor", json!(self.parallelization_factor));
        put("EventSourceArn", json!(self.event_source_arn));
        if let Some(filter) = &self.filter_criteria {
            put("FilterCriteria", filter.clone());
        }
        put("FunctionArn", json!(self.function_arn));
        put("LastModified", json!(self.last_modified));
        put("LastProcessingResult", json!(last_result));
        put("State", json!(state));
        put("StateTransitionReason", json!("User action"));
        put(
            "DestinationConfig",
            self.destination_config
                .clone()
                .unwrap_or_else(|| json!({"OnFailure": {}})),
        );
        put(
            "MaximumRecordAgeInSeconds",
            json!(self.maximum_record_age_in_seconds),
        );
        put(
            "BisectBatchOnFunctionError",
            json!(self.bisect_batch_on_function_error),
        );
        put("MaximumRetryAttempts", json!(self.maximum_retry_attempts));
        if let Some(window) = self.tumbling_window_in_seconds {
            put("TumblingWindowInSeconds", json!(window));
        }
        put("FunctionResponseTypes", json!(self.function_response_types));
        put(
            "EventSourceMappingArn",
            json!(format!(
                "arn:aws:lambda:{region}:{account}:event-source-mapping:{}",
                self.uuid
            )),
        );
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Mapping {
        Mapping {
            uuid: "6f0c2b1e-8d7a-4c55-9b1e-2f3a4b5c6d7e".to_owned(),
            event_source_arn: "arn:aws:kinesis:us-east-1:000000000000:stream/s".to_owned(),
            function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".to_owned(),
            batch_size: 100,
            maximum_batching_window_in_seconds: 0,
            parallelization_factor: 1,
            starting_position: "TRIM_HORIZON".to_owned(),
            starting_position_timestamp: None,
            maximum_record_age_in_seconds: -1,
            bisect_batch_on_function_error: false,
            maximum_retry_attempts: -1,
            tumbling_window_in_seconds: Some(30),
            function_response_types: vec!["ReportBatchItemFailures".to_owned()],
            filter_criteria: Some(json!({"Filters": [{"Pattern": "{}"}]})),
            destination_config: None,
            state: State::Enabled,
            last_modified: 1_700_000_000.5,
            created: Some(1_700_000_000.25),
        }
    }

    #[test]
    fn a_stored_mapping_reads_back_as_written() {
        let mapping = sample();
        let stored = serde_json::to_vec(&mapping).unwrap();
        let read: Mapping = serde_json::from_slice(&stored).unwrap();
        assert_eq!(read, mapping);
        assert_eq!(read.key(), format!("{KEY_PREFIX}{}", mapping.uuid));
    }

    #[test]
    fn a_description_has_lambdas_members() {
        let described = sample().describe("Creating", "OK", "eu-west-1", "123456789012");
        assert_eq!(described["State"], "Creating");
        assert_eq!(described["BatchSize"], 100);
        assert_eq!(described["LastProcessingResult"], "OK");
        assert_eq!(described["DestinationConfig"], json!({"OnFailure": {}}));
        assert_eq!(
            described["EventSourceMappingArn"],
            "arn:aws:lambda:eu-west-1:123456789012:event-source-mapping:6f0c2b1e-8d7a-4c55-9b1e-2f3a4b5c6d7e"
        );
        assert_eq!(described.get("StartingPositionTimestamp"), None);
    }
}
