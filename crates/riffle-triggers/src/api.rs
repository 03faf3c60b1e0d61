//! The five event-source-mapping operations: their inputs as the model
//! types them, Lambda's checks and defaults for Kinesis sources, and their
//! answers.

use riffle_coral::validate::Violations;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::errors::TriggersError;
use crate::mapping::{Mapping, State};

/// Lambda's defaults and limits for Kinesis sources ("Lambda parameters
/// for Amazon Kinesis Data Streams event source mappings").
pub const BATCH_SIZE_DEFAULT: i64 = 100;
pub const BATCH_SIZE_MAX: i64 = 10_000;
/// `MaximumBatchingWindowInSeconds`: 0 to 300 (`MaximumBatchingWindowInSeconds` shape).
pub const BATCHING_WINDOW_MAX_S: i64 = 300;
/// `ParallelizationFactor`: 1 to 10.
pub const PARALLELIZATION_MAX: i64 = 10;
/// `MaximumRecordAgeInSeconds`: -1 (no limit) or 60 to 604,800 (7 days).
pub const RECORD_AGE_MIN_S: i64 = 60;
pub const RECORD_AGE_MAX_S: i64 = 604_800;
/// `MaximumRetryAttempts`: -1 (until the record expires) to 10,000.
pub const RETRY_ATTEMPTS_MAX: i64 = 10_000;
/// `TumblingWindowInSeconds`: 0 to 900.
pub const TUMBLING_WINDOW_MAX_S: i64 = 900;
/// `ListEventSourceMappings`' `MaxItems`: 1 to 10,000, 100 by default.
pub const LIST_ITEMS_DEFAULT: usize = 100;
pub const LIST_ITEMS_MAX: i64 = 10_000;
/// The `FunctionName` member's length (`FunctionName` shape: 1 to 140).
const FUNCTION_NAME_MAX: usize = 140;
/// The `Arn` shape's length (`EventSourceArn`).
const ARN_MIN: usize = 12;
const ARN_MAX: usize = 1024;

const STARTING_POSITIONS: [&str; 3] = ["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"];
const RESPONSE_TYPES: [&str; 1] = ["ReportBatchItemFailures"];

/// The members of Create and Update (Update takes `UUID` and no source).
#[derive(Debug, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct MappingInput {
    pub UUID: Option<String>,
    pub EventSourceArn: Option<String>,
    pub FunctionName: Option<String>,
    pub Enabled: Option<bool>,
    pub BatchSize: Option<i64>,
    pub FilterCriteria: Option<Value>,
    pub MaximumBatchingWindowInSeconds: Option<i64>,
    pub ParallelizationFactor: Option<i64>,
    pub StartingPosition: Option<String>,
    pub StartingPositionTimestamp: Option<f64>,
    pub DestinationConfig: Option<Value>,
    pub MaximumRecordAgeInSeconds: Option<i64>,
    pub BisectBatchOnFunctionError: Option<bool>,
    pub MaximumRetryAttempts: Option<i64>,
    pub TumblingWindowInSeconds: Option<i64>,
    pub FunctionResponseTypes: Option<Vec<String>>,
}

impl MappingInput {
    /// The model's constraints on the members given.
    pub fn check(&self, create: bool) -> Result<(), TriggersError> {
        let mut v = Violations::new();
        if create {
            v.required(&self.EventSourceArn, "eventSourceArn");
            v.required(&self.FunctionName, "functionName");
            v.length(
                self.EventSourceArn.as_deref(),
                "eventSourceArn",
                ARN_MIN,
                ARN_MAX,
            );
        }
        v.length(
            self.FunctionName.as_deref(),
            "functionName",
            1,
            FUNCTION_NAME_MAX,
        );
        v.range(self.BatchSize, "batchSize", Some(1), Some(BATCH_SIZE_MAX));
        v.range(
            self.MaximumBatchingWindowInSeconds,
            "maximumBatchingWindowInSeconds",
            Some(0),
            Some(BATCHING_WINDOW_MAX_S),
        );
        v.range(
            self.ParallelizationFactor,
            "parallelizationFactor",
            Some(1),
            Some(PARALLELIZATION_MAX),
        );
        v.one_of(
            self.StartingPosition.as_deref(),
            "startingPosition",
            &STARTING_POSITIONS,
        );
        v.range(
            self.MaximumRecordAgeInSeconds,
            "maximumRecordAgeInSeconds",
            Some(-1),
            Some(RECORD_AGE_MAX_S),
        );
        v.range(
            self.MaximumRetryAttempts,
            "maximumRetryAttempts",
            Some(-1),
            Some(RETRY_ATTEMPTS_MAX),
        );
        v.range(
            self.TumblingWindowInSeconds,
            "tumblingWindowInSeconds",
            Some(0),
            Some(TUMBLING_WINDOW_MAX_S),
        );
        for kind in self.FunctionResponseTypes.iter().flatten() {
            v.one_of(Some(kind), "functionResponseTypes", &RESPONSE_TYPES);
        }
        v.into_result::<TriggersError>()?;
        self.check_meaning(create)
    }

    /// Lambda's own checks beyond the model's.
    fn check_meaning(&self, create: bool) -> Result<(), TriggersError> {
        let invalid = |m: &str| Err(TriggersError::InvalidParameterValue(m.to_owned()));
        if let Some(age) = self.MaximumRecordAgeInSeconds
            && age != -1
            && age < RECORD_AGE_MIN_S
        {
            return invalid("MaximumRecordAgeInSeconds must be -1 or between 60 and 604800.");
        }
        if let Some(criteria) = &self.FilterCriteria {
            crate::filter::check(criteria).map_err(TriggersError::InvalidParameterValue)?;
        }
        if let Some(destination) = self
            .DestinationConfig
            .as_ref()
            .and_then(|d| d["OnFailure"]["Destination"].as_str())
            && !destination.is_empty()
            && !is_stream_arn(destination)
            && !destination.starts_with("arn:aws:s3:::")
        {
            return invalid(
                "Unsupported destination type. Riffle sends discarded batches to a Kinesis stream or an S3 bucket.",
            );
        }
        if create && self.StartingPosition.is_none() {
            return invalid("StartingPosition is required for stream event sources.");
        }
        if self.StartingPosition.as_deref() == Some("AT_TIMESTAMP")
            && self.StartingPositionTimestamp.is_none()
        {
            return invalid(
                "StartingPositionTimestamp is required when StartingPosition is AT_TIMESTAMP.",
            );
        }
        if self.StartingPosition.as_deref() != Some("AT_TIMESTAMP")
            && self.StartingPositionTimestamp.is_some()
        {
            return invalid(
                "StartingPositionTimestamp may only be given with StartingPosition AT_TIMESTAMP.",
            );
        }
        Ok(())
    }

    /// A new mapping of these members, Lambda's defaults filled in.
    pub fn into_mapping(self, uuid: String, function_arn: String, now_s: f64) -> Mapping {
        Mapping {
            uuid,
            event_source_arn: self.EventSourceArn.unwrap_or_default(),
            function_arn,
            batch_size: self.BatchSize.unwrap_or(BATCH_SIZE_DEFAULT),
            maximum_batching_window_in_seconds: self.MaximumBatchingWindowInSeconds.unwrap_or(0),
            parallelization_factor: self.ParallelizationFactor.unwrap_or(1),
            starting_position: self.StartingPosition.unwrap_or_default(),
            starting_position_timestamp: self.StartingPositionTimestamp,
            maximum_record_age_in_seconds: self.MaximumRecordAgeInSeconds.unwrap_or(-1),
            bisect_batch_on_function_error: self.BisectBatchOnFunctionError.unwrap_or(false),
            maximum_retry_attempts: self.MaximumRetryAttempts.unwrap_or(-1),
            tumbling_window_in_seconds: self.TumblingWindowInSeconds,
            function_response_types: self.FunctionResponseTypes.unwrap_or_default(),
            filter_criteria: self.FilterCriteria.filter(has_filters),
            destination_config: self.DestinationConfig,
            state: State::of(self.Enabled.unwrap_or(true)),
            last_modified: now_s,
            created: Some(now_s),
        }
    }

    /// `mapping` with the members an Update gives.
    pub fn update(self, mut mapping: Mapping, function_arn: Option<String>, now_s: f64) -> Mapping {
        if let Some(arn) = function_arn {
            mapping.function_arn = arn;
        }
        if let Some(enabled) = self.Enabled {
            mapping.state = State::of(enabled);
        }
        macro_rules! take {
            ($($member:ident => $field:ident),* $(,)?) => {
                $(if let Some(value) = self.$member { mapping.$field = value; })*
            };
        }
        take!(
            BatchSize => batch_size,
            MaximumBatchingWindowInSeconds => maximum_batching_window_in_seconds,
            ParallelizationFactor => parallelization_factor,
            MaximumRecordAgeInSeconds => maximum_record_age_in_seconds,
            BisectBatchOnFunctionError => bisect_batch_on_function_error,
            MaximumRetryAttempts => maximum_retry_attempts,
            FunctionResponseTypes => function_response_types,
        );
        if let Some(window) = self.TumblingWindowInSeconds {
            mapping.tumbling_window_in_seconds = Some(window);
        }
        if let Some(filter) = self.FilterCriteria {
            // An empty filter list removes the filters, as Lambda documents.
            mapping.filter_criteria = Some(filter).filter(has_filters);
        }
        if let Some(destination) = self.DestinationConfig {
            mapping.destination_config = Some(destination);
        }
        mapping.last_modified = now_s;
        mapping
    }
}

fn is_stream_arn(arn: &str) -> bool {
    arn.starts_with("arn:aws:kinesis:") && arn.contains(":stream/")
}

/// `FilterCriteria` that has at least one filter.
fn has_filters(filter: &Value) -> bool {
    filter["Filters"].as_array().is_some_and(|f| !f.is_empty())
}

/// ListEventSourceMappings' members (the query string's, as strings).
#[derive(Debug, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct ListInput {
    pub EventSourceArn: Option<String>,
    pub FunctionName: Option<String>,
    pub Marker: Option<String>,
    pub MaxItems: Option<Value>,
}

impl ListInput {
    /// How many mappings a page holds.
    pub fn page_size(&self) -> Result<usize, TriggersError> {
        let Some(given) = &self.MaxItems else {
            return Ok(LIST_ITEMS_DEFAULT);
        };
        let n = match given {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        let Some(n) = n else {
            return Err(TriggersError::InvalidParameterValue(format!(
                "MaxItems must be a number, got {given}."
            )));
        };
        let mut v = Violations::new();
        v.range(Some(n), "maxItems", Some(1), Some(LIST_ITEMS_MAX));
        v.into_result::<TriggersError>()?;
        Ok(usize::try_from(n).unwrap_or(LIST_ITEMS_DEFAULT))
    }
}

/// Get, Delete: the mapping's `UUID` (from the path).
#[derive(Debug, Default, Deserialize)]
#[allow(non_snake_case)]
pub struct UuidInput {
    pub UUID: Option<String>,
}

/// The answer of a list page.
pub fn list_answer(page: Vec<Value>, next: Option<String>) -> Value {
    let mut answer = json!({ "EventSourceMappings": page });
    if let Some(next) = next {
        answer["NextMarker"] = json!(next);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: Value) -> MappingInput {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn model_constraints_are_worded_as_the_front_end_words_them() {
        let bad = input(
            json!({"EventSourceArn": "arn:aws:kinesis:us-east-1:000000000000:stream/s",
            "FunctionName": "f", "StartingPosition": "LATEST", "BatchSize": 0}),
        );
        assert_eq!(
            bad.check(true).unwrap_err(),
            TriggersError::Validation(
                "1 validation error detected: Value '0' at 'batchSize' failed to satisfy constraint: Member must have value greater than or equal to 1".to_owned()
            )
        );
        let missing = input(json!({"FunctionName": "f"}));
        assert!(
            matches!(missing.check(true), Err(TriggersError::Validation(m)) if m.contains("'eventSourceArn'"))
        );
    }

    #[test]
    fn lambdas_own_checks_follow_the_models() {
        let base = json!({"EventSourceArn": "arn:aws:kinesis:us-east-1:000000000000:stream/s", "FunctionName": "f"});
        let no_position = input(base.clone());
        assert!(matches!(
            no_position.check(true),
            Err(TriggersError::InvalidParameterValue(_))
        ));
        let mut young = base.clone();
        young["StartingPosition"] = json!("LATEST");
        young["MaximumRecordAgeInSeconds"] = json!(30);
        assert!(
            matches!(input(young).check(true), Err(TriggersError::InvalidParameterValue(m)) if m.starts_with("MaximumRecordAgeInSeconds"))
        );
        let mut at = base;
        at["StartingPosition"] = json!("AT_TIMESTAMP");
        assert!(input(at.clone()).check(true).is_err());
        at["StartingPositionTimestamp"] = json!(1_700_000_000.0);
        assert!(input(at).check(true).is_ok());
    }

    #[test]
    fn defaults_are_lambdas_and_an_update_changes_only_what_it_names() {
        let created = input(
            json!({"EventSourceArn": "arn:aws:kinesis:us-east-1:000000000000:stream/s",
            "FunctionName": "f", "StartingPosition": "TRIM_HORIZON"}),
        )
        .into_mapping("u".into(), "arn:f".into(), 1.0);
        assert_eq!(
            (created.batch_size, created.maximum_retry_attempts),
            (100, -1)
        );
        assert_eq!(created.state, State::Enabled);
        let updated =
            input(json!({"BatchSize": 7, "Enabled": false, "FilterCriteria": {"Filters": []}}))
                .update(created.clone(), None, 2.0);
        assert_eq!((updated.batch_size, updated.state), (7, State::Disabled));
        assert_eq!(
            updated.parallelization_factor,
            created.parallelization_factor
        );
        assert_eq!(updated.filter_criteria, None);
        assert_eq!(updated.last_modified, 2.0);
    }
}
