//! The Splunk destination: `SplunkDestinationConfiguration` and
//! `SplunkDestinationUpdate` as requests give them (checked against the
//! model), as the catalog keeps them and as DescribeDeliveryStream shows
//! them (AWS's `SplunkDestinationDescription` includes the HEC token).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::destination::{S3Destination, S3Input};
use crate::json::{Int, Text};
use crate::validate::Violations;

/// `SplunkBufferingHints`: 1–5 MiB and 0–60 s (model); AWS's defaults
/// are 5 MiB and 60 s (API reference, `SplunkBufferingHints`).
const SIZE_MB_MAX: i64 = 5;
const SIZE_MB_DEFAULT: i32 = 5;
const INTERVAL_S_MAX: i64 = 60;
const INTERVAL_S_DEFAULT: i32 = 60;
/// `HECAcknowledgmentTimeoutInSeconds`: 180–600, default 180 (model, API
/// reference).
const ACK_TIMEOUT_S_MIN: i64 = 180;
const ACK_TIMEOUT_S_MAX: i64 = 600;
const ACK_TIMEOUT_S_DEFAULT: i32 = 180;
/// `SplunkRetryDurationInSeconds`: 0–7,200 (model); 3,600 when not given,
/// the Firehose console's default for Splunk.
const RETRY_S_MAX: i64 = 7200;
const RETRY_S_DEFAULT: i32 = 3600;
const ENDPOINT_MAX: usize = 2048;
const TOKEN_MAX: usize = 2048;
const ENDPOINT_TYPES: &[&str] = &["Raw", "Event"];
const BACKUP_MODES: &[&str] = &["FailedEventsOnly", "AllEvents"];

#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub struct HintsInput {
    IntervalInSeconds: Option<Int>,
    SizeInMBs: Option<Int>,
}

#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub struct RetryInput {
    DurationInSeconds: Option<Int>,
}

/// A configuration or update as a request gives it.
#[derive(Debug, Deserialize, Default)]
#[allow(non_snake_case)]
pub struct SplunkInput {
    HECEndpoint: Option<Text>,
    HECEndpointType: Option<Text>,
    HECToken: Option<Text>,
    HECAcknowledgmentTimeoutInSeconds: Option<Int>,
    RetryOptions: Option<RetryInput>,
    S3BackupMode: Option<Text>,
    S3Configuration: Option<S3Input>,
    S3Update: Option<S3Input>,
    ProcessingConfiguration: Option<Value>,
    CloudWatchLoggingOptions: Option<Value>,
    BufferingHints: Option<HintsInput>,
    SecretsManagerConfiguration: Option<Value>,
}

/// The Splunk destination as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplunkDestination {
    pub hec_endpoint: String,
    /// `Raw` or `Event`.
    pub endpoint_type: String,
    pub token: Option<String>,
    pub ack_timeout_s: i32,
    pub retry_s: i32,
    /// `FailedEventsOnly` or `AllEvents`.
    pub backup_mode: String,
    pub size_mb: i32,
    pub interval_s: i32,
    pub cloudwatch: Value,
    pub processing: Option<Value>,
    pub secrets_manager: Option<Value>,
}

impl SplunkInput {
    /// Checks the model's constraints; `create`: HECEndpoint,
    /// HECEndpointType and S3Configuration are required.
    pub fn check(&self, v: &mut Violations, path: &str, create: bool) {
        let at = |member: &str| format!("{path}.{member}");
        let text = |t: &Option<Text>| t.as_ref().map(Text::as_str).map(str::to_owned);
        if create {
            v.required(&self.HECEndpoint, &at("hECEndpoint"));
            v.required(&self.HECEndpointType, &at("hECEndpointType"));
            v.required(&self.S3Configuration, &at("s3Configuration"));
        }
        let endpoint = text(&self.HECEndpoint);
        v.length(endpoint.as_deref(), &at("hECEndpoint"), 0, ENDPOINT_MAX);
        let kind = text(&self.HECEndpointType);
        v.one_of(kind.as_deref(), &at("hECEndpointType"), ENDPOINT_TYPES);
        let token = text(&self.HECToken);
        v.length(token.as_deref(), &at("hECToken"), 0, TOKEN_MAX);
        let ack = self
            .HECAcknowledgmentTimeoutInSeconds
            .map(|n| i64::from(n.0));
        v.range(
            ack,
            &at("hECAcknowledgmentTimeoutInSeconds"),
            Some(ACK_TIMEOUT_S_MIN),
            Some(ACK_TIMEOUT_S_MAX),
        );
        if let Some(r) = &self.RetryOptions {
            let retry = r.DurationInSeconds.map(|n| i64::from(n.0));
            let retry_at = at("retryOptions.durationInSeconds");
            v.range(retry, &retry_at, Some(0), Some(RETRY_S_MAX));
        }
        let mode = text(&self.S3BackupMode);
        v.one_of(mode.as_deref(), &at("s3BackupMode"), BACKUP_MODES);
        if let Some(h) = &self.BufferingHints {
            let interval = h.IntervalInSeconds.map(|n| i64::from(n.0));
            let interval_at = at("bufferingHints.intervalInSeconds");
            v.range(interval, &interval_at, Some(0), Some(INTERVAL_S_MAX));
            let size = h.SizeInMBs.map(|n| i64::from(n.0));
            v.range(
                size,
                &at("bufferingHints.sizeInMBs"),
                Some(1),
                Some(SIZE_MB_MAX),
            );
        }
        crate::endpoint::check_shared_members(
            v,
            path,
            self.ProcessingConfiguration.as_ref(),
            self.S3Configuration.as_ref(),
            self.S3Update.as_ref(),
        );
    }

    /// The destination a CreateDeliveryStream asks for, with AWS's
    /// defaults, and its S3Configuration.
    pub fn into_destination(mut self) -> (SplunkDestination, S3Destination) {
        let s3 = self
            .S3Configuration
            .take()
            .unwrap_or_default()
            .into_destination(false);
        SplunkDestination::empty().updated(self, s3)
    }
}

impl SplunkDestination {
    /// AWS's defaults, no endpoint yet.
    pub fn empty() -> SplunkDestination {
        SplunkDestination {
            hec_endpoint: String::new(),
            endpoint_type: "Raw".to_owned(),
            token: None,
            ack_timeout_s: ACK_TIMEOUT_S_DEFAULT,
            retry_s: RETRY_S_DEFAULT,
            backup_mode: "FailedEventsOnly".to_owned(),
            size_mb: SIZE_MB_DEFAULT,
            interval_s: INTERVAL_S_DEFAULT,
            cloudwatch: json!({"Enabled": false}),
            processing: None,
            secrets_manager: None,
        }
    }

    /// This destination with an update's members replaced.
    pub fn updated(
        mut self,
        u: SplunkInput,
        s3: S3Destination,
    ) -> (SplunkDestination, S3Destination) {
        if let Some(e) = u.HECEndpoint {
            self.hec_endpoint = e.0;
        }
        if let Some(t) = u.HECEndpointType {
            self.endpoint_type = t.0;
        }
        if let Some(t) = u.HECToken {
            self.token = Some(t.0);
        }
        if let Some(a) = u.HECAcknowledgmentTimeoutInSeconds {
            self.ack_timeout_s = a.0;
        }
        if let Some(r) = u.RetryOptions.and_then(|r| r.DurationInSeconds) {
            self.retry_s = r.0;
        }
        if let Some(m) = u.S3BackupMode {
            self.backup_mode = m.0;
        }
        if let Some(h) = u.BufferingHints {
            self.size_mb = h.SizeInMBs.map_or(self.size_mb, |n| n.0);
            self.interval_s = h.IntervalInSeconds.map_or(self.interval_s, |n| n.0);
        }
        if let Some(c) = u.CloudWatchLoggingOptions {
            self.cloudwatch = c;
        }
        if u.ProcessingConfiguration.is_some() {
            self.processing = u.ProcessingConfiguration;
        }
        if u.SecretsManagerConfiguration.is_some() {
            self.secrets_manager = u.SecretsManagerConfiguration;
        }
        let s3 = s3.backup_updated(u.S3Configuration, u.S3Update);
        (self, s3)
    }

    pub fn backs_up_all(&self) -> bool {
        self.backup_mode == "AllEvents"
    }

    /// `SplunkDestinationDescription`.
    pub fn describe(&self, s3: &S3Destination) -> Value {
        let mut d = json!({
            "HECEndpoint": self.hec_endpoint,
            "HECEndpointType": self.endpoint_type,
            "HECAcknowledgmentTimeoutInSeconds": self.ack_timeout_s,
            "RetryOptions": {"DurationInSeconds": self.retry_s},
            "S3BackupMode": self.backup_mode,
            "S3DestinationDescription": s3.describe_s3(),
            "CloudWatchLoggingOptions": self.cloudwatch,
            "BufferingHints": {"IntervalInSeconds": self.interval_s, "SizeInMBs": self.size_mb},
        });
        if let Some(t) = &self.token {
            d["HECToken"] = Value::from(t.as_str());
        }
        if let Some(p) = &self.processing {
            d["ProcessingConfiguration"] = p.clone();
        }
        if let Some(s) = &self.secrets_manager {
            d["SecretsManagerConfiguration"] = s.clone();
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_awss_and_an_update_keeps_the_rest() {
        let input: SplunkInput = serde_json::from_str(
            r#"{"HECEndpoint":"https://splunk:8088","HECEndpointType":"Event","HECToken":"t",
                "S3Configuration":{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b"}}"#,
        )
        .unwrap();
        let (d, s3) = input.into_destination();
        let described = d.describe(&s3);
        assert_eq!(described["HECAcknowledgmentTimeoutInSeconds"], 180);
        assert_eq!(
            described["RetryOptions"],
            json!({"DurationInSeconds": 3600})
        );
        assert_eq!(
            described["BufferingHints"],
            json!({"IntervalInSeconds": 60, "SizeInMBs": 5})
        );
        assert_eq!(described["S3BackupMode"], "FailedEventsOnly");
        let update: SplunkInput = serde_json::from_str(r#"{"HECEndpointType":"Raw"}"#).unwrap();
        let (d, _) = d.updated(update, s3);
        assert_eq!(
            (d.endpoint_type.as_str(), d.token.as_deref()),
            ("Raw", Some("t"))
        );
    }
}
