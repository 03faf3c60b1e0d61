//! The HTTP endpoint destination: `HttpEndpointDestinationConfiguration`
//! and `HttpEndpointDestinationUpdate` as requests give them (checked
//! against the model), as the catalog keeps them (AWS's defaults filled
//! in) and as DescribeDeliveryStream shows them (the access key left out,
//! as AWS's `HttpEndpointDescription` has no member for it).
//!
//! The destination's `S3Configuration` (the bucket failed or all data is
//! backed up to) is kept as the stream's [`S3Destination`], so that the
//! S3 lanes deliver there unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::destination::{S3Destination, S3Input};
use crate::json::{Int, Text};
use crate::validate::{Pattern, Shown, Violations};

/// `HttpEndpointBufferingHints`: 1–64 MiB and 0–900 s (model); AWS's
/// defaults are 5 MiB and 300 s (API reference, `HttpEndpointBufferingHints`).
pub const SIZE_MB_MIN: i64 = 1;
pub const SIZE_MB_MAX: i64 = 64;
pub const SIZE_MB_DEFAULT: i32 = 5;
pub const INTERVAL_S_MIN: i64 = 0;
pub const INTERVAL_S_MAX: i64 = 900;
pub const INTERVAL_S_DEFAULT: i32 = 300;
/// `HttpEndpointRetryDurationInSeconds`: 0–7,200 (model); 300 when not
/// given (the default the console and CloudFormation give).
pub const RETRY_S_MAX: i64 = 7200;
pub const RETRY_S_DEFAULT: i32 = 300;
/// Bounds of the model's string and list shapes.
const URL_MAX: usize = 1000;
const NAME_MAX: usize = 256;
const ACCESS_KEY_MAX: usize = 4096;
const ROLE_ARN_MAX: usize = 512;
const ATTRIBUTES_MAX: usize = 50;
const ATTRIBUTE_NAME_MAX: usize = 256;
const ATTRIBUTE_VALUE_MAX: usize = 1024;
/// The model's `ContentEncoding` and `HttpEndpointS3BackupMode` values.
const CONTENT_ENCODINGS: &[&str] = &["NONE", "GZIP"];
const BACKUP_MODES: &[&str] = &["FailedDataOnly", "AllData"];

#[derive(Debug, Deserialize, Default)]
#[allow(non_snake_case)]
pub struct EndpointInput {
    Url: Option<Text>,
    Name: Option<Text>,
    AccessKey: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub struct HintsInput {
    SizeInMBs: Option<Int>,
    IntervalInSeconds: Option<Int>,
}

#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub struct RequestInput {
    ContentEncoding: Option<Text>,
    CommonAttributes: Option<Vec<AttributeInput>>,
}

#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub struct AttributeInput {
    AttributeName: Option<Text>,
    AttributeValue: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub struct RetryInput {
    DurationInSeconds: Option<Int>,
}

/// An HTTP endpoint configuration or update as a request gives it (the
/// update's `S3Update` is the configuration's `S3Configuration`).
#[derive(Debug, Deserialize, Default)]
#[allow(non_snake_case)]
pub struct HttpInput {
    EndpointConfiguration: Option<EndpointInput>,
    BufferingHints: Option<HintsInput>,
    CloudWatchLoggingOptions: Option<Value>,
    RequestConfiguration: Option<RequestInput>,
    ProcessingConfiguration: Option<Value>,
    RoleARN: Option<Text>,
    RetryOptions: Option<RetryInput>,
    S3BackupMode: Option<Text>,
    S3Configuration: Option<S3Input>,
    S3Update: Option<S3Input>,
    SecretsManagerConfiguration: Option<Value>,
}

/// A configured common attribute, sent in `X-Amz-Firehose-Common-Attributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub name: String,
    pub value: String,
}

/// The HTTP endpoint destination as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpEndpointDestination {
    pub url: String,
    pub name: Option<String>,
    pub access_key: Option<String>,
    pub size_mb: i32,
    pub interval_s: i32,
    /// `NONE` or `GZIP`.
    pub content_encoding: String,
    pub common_attributes: Vec<Attribute>,
    pub retry_s: i32,
    /// `FailedDataOnly` or `AllData`.
    pub backup_mode: String,
    pub role_arn: Option<String>,
    pub cloudwatch: Value,
    pub processing: Option<Value>,
    pub secrets_manager: Option<Value>,
}

impl HttpInput {
    /// Checks every member's model constraints; `path` is AWS's name of
    /// this structure in violation texts. `create`: EndpointConfiguration
    /// and S3Configuration are required.
    pub fn check(&self, v: &mut Violations, path: &str, create: bool) {
        let at = |member: &str| format!("{path}.{member}");
        let text = |t: &Option<Text>| t.as_ref().map(Text::as_str).map(str::to_owned);
        if create {
            v.required(&self.EndpointConfiguration, &at("endpointConfiguration"));
            v.required(&self.S3Configuration, &at("s3Configuration"));
        }
        if let Some(e) = &self.EndpointConfiguration {
            let url_at = at("endpointConfiguration.url");
            v.required(&e.Url, &url_at);
            let url = text(&e.Url);
            v.length(url.as_deref(), &url_at, 1, URL_MAX);
            v.pattern(url.as_deref(), &url_at, Pattern::HttpsUrl);
            let name_at = at("endpointConfiguration.name");
            let name = text(&e.Name);
            v.length(name.as_deref(), &name_at, 1, NAME_MAX);
            v.pattern(name.as_deref(), &name_at, Pattern::NotBlank);
            let key = text(&e.AccessKey);
            v.length(
                key.as_deref(),
                &at("endpointConfiguration.accessKey"),
                0,
                ACCESS_KEY_MAX,
            );
        }
        if let Some(hints) = &self.BufferingHints {
            let size = hints.SizeInMBs.map(|n| i64::from(n.0));
            let size_at = at("bufferingHints.sizeInMBs");
            v.range(size, &size_at, Some(SIZE_MB_MIN), Some(SIZE_MB_MAX));
            let interval = hints.IntervalInSeconds.map(|n| i64::from(n.0));
            let interval_at = at("bufferingHints.intervalInSeconds");
            v.range(
                interval,
                &interval_at,
                Some(INTERVAL_S_MIN),
                Some(INTERVAL_S_MAX),
            );
        }
        if let Some(request) = &self.RequestConfiguration {
            check_request(request, v, &at("requestConfiguration"));
        }
        let role = text(&self.RoleARN);
        v.length(role.as_deref(), &at("roleARN"), 1, ROLE_ARN_MAX);
        v.pattern(role.as_deref(), &at("roleARN"), Pattern::RoleArn);
        if let Some(retry) = &self.RetryOptions {
            let retry_s = retry.DurationInSeconds.map(|n| i64::from(n.0));
            let retry_at = at("retryOptions.durationInSeconds");
            v.range(retry_s, &retry_at, Some(0), Some(RETRY_S_MAX));
        }
        v.one_of(
            text(&self.S3BackupMode).as_deref(),
            &at("s3BackupMode"),
            BACKUP_MODES,
        );
        crate::endpoint::check_shared_members(
            v,
            path,
            self.ProcessingConfiguration.as_ref(),
            self.S3Configuration.as_ref(),
            self.S3Update.as_ref(),
        );
    }

    /// The destination a CreateDeliveryStream asks for (already checked),
    /// with AWS's defaults, and its S3Configuration.
    pub fn into_destination(mut self) -> (HttpEndpointDestination, S3Destination) {
        let s3 = self
            .S3Configuration
            .take()
            .unwrap_or_default()
            .into_destination(false);
        let (http, _) = HttpEndpointDestination::empty().updated(self, s3.clone());
        (http, s3)
    }
}

impl HttpEndpointDestination {
    /// AWS's defaults, no URL yet.
    pub fn empty() -> HttpEndpointDestination {
        HttpEndpointDestination {
            url: String::new(),
            name: None,
            access_key: None,
            size_mb: SIZE_MB_DEFAULT,
            interval_s: INTERVAL_S_DEFAULT,
            content_encoding: "NONE".to_owned(),
            common_attributes: Vec::new(),
            retry_s: RETRY_S_DEFAULT,
            backup_mode: "FailedDataOnly".to_owned(),
            role_arn: None,
            cloudwatch: json!({"Enabled": false}),
            processing: None,
            secrets_manager: None,
        }
    }
}

fn check_request(request: &RequestInput, v: &mut Violations, path: &str) {
    let encoding = request.ContentEncoding.as_ref().map(Text::as_str);
    v.one_of(
        encoding,
        &format!("{path}.contentEncoding"),
        CONTENT_ENCODINGS,
    );
    let Some(attributes) = &request.CommonAttributes else {
        return;
    };
    let list_at = format!("{path}.commonAttributes");
    let constraint = format_args!("Member must have length less than or equal to {ATTRIBUTES_MAX}");
    let shown = format!("{} attributes", attributes.len());
    v.check(
        attributes.len() <= ATTRIBUTES_MAX,
        Shown::Text(&shown),
        &list_at,
        constraint,
    );
    for (i, a) in attributes.iter().enumerate() {
        let name_at = format!("{list_at}.{}.member.attributeName", i + 1);
        let value_at = format!("{list_at}.{}.member.attributeValue", i + 1);
        v.required(&a.AttributeName, &name_at);
        v.required(&a.AttributeValue, &value_at);
        let name = a.AttributeName.as_ref().map(Text::as_str);
        v.length(name, &name_at, 1, ATTRIBUTE_NAME_MAX);
        v.pattern(name, &name_at, Pattern::NotBlank);
        let value = a.AttributeValue.as_ref().map(Text::as_str);
        v.length(value, &value_at, 0, ATTRIBUTE_VALUE_MAX);
    }
}

impl HttpEndpointDestination {
    /// This destination and its S3 configuration with the members an
    /// update gives replaced (an UpdateDestination keeps what it leaves out).
    pub fn updated(
        mut self,
        update: HttpInput,
        s3: S3Destination,
    ) -> (HttpEndpointDestination, S3Destination) {
        if let Some(e) = update.EndpointConfiguration {
            if let Some(url) = e.Url {
                self.url = url.0;
            }
            if let Some(name) = e.Name {
                self.name = Some(name.0);
            }
            if let Some(key) = e.AccessKey {
                self.access_key = Some(key.0);
            }
        }
        if let Some(hints) = update.BufferingHints {
            self.size_mb = hints.SizeInMBs.map_or(self.size_mb, |n| n.0);
            self.interval_s = hints.IntervalInSeconds.map_or(self.interval_s, |n| n.0);
        }
        if let Some(request) = update.RequestConfiguration {
            if let Some(encoding) = request.ContentEncoding {
                self.content_encoding = encoding.0;
            }
            if let Some(attributes) = request.CommonAttributes {
                self.common_attributes = attributes
                    .into_iter()
                    .map(|a| Attribute {
                        name: a.AttributeName.map(|t| t.0).unwrap_or_default(),
                        value: a.AttributeValue.map(|t| t.0).unwrap_or_default(),
                    })
                    .collect();
            }
        }
        if let Some(retry) = update.RetryOptions.and_then(|r| r.DurationInSeconds) {
            self.retry_s = retry.0;
        }
        if let Some(mode) = update.S3BackupMode {
            self.backup_mode = mode.0;
        }
        if let Some(role) = update.RoleARN {
            self.role_arn = Some(role.0);
        }
        if let Some(v) = update.CloudWatchLoggingOptions {
            self.cloudwatch = v;
        }
        if update.ProcessingConfiguration.is_some() {
            self.processing = update.ProcessingConfiguration;
        }
        if update.SecretsManagerConfiguration.is_some() {
            self.secrets_manager = update.SecretsManagerConfiguration;
        }
        let s3 = s3.backup_updated(update.S3Configuration, update.S3Update);
        (self, s3)
    }

    /// Whether every record is also backed up to S3 (`AllData`).
    pub fn backs_up_all(&self) -> bool {
        self.backup_mode == "AllData"
    }

    /// Whether request bodies are GZIP-compressed.
    pub fn gzip(&self) -> bool {
        self.content_encoding == "GZIP"
    }

    /// `HttpEndpointDestinationDescription`: everything but the access key.
    pub fn describe(&self, s3: &S3Destination) -> Value {
        let mut endpoint = json!({"Url": self.url});
        if let Some(name) = &self.name {
            endpoint["Name"] = Value::from(name.as_str());
        }
        let attributes: Vec<Value> = self
            .common_attributes
            .iter()
            .map(|a| json!({"AttributeName": a.name, "AttributeValue": a.value}))
            .collect();
        let mut d = json!({
            "EndpointConfiguration": endpoint,
            "BufferingHints": {"SizeInMBs": self.size_mb, "IntervalInSeconds": self.interval_s},
            "CloudWatchLoggingOptions": self.cloudwatch,
            "RequestConfiguration": {
                "ContentEncoding": self.content_encoding,
                "CommonAttributes": attributes,
            },
            "RetryOptions": {"DurationInSeconds": self.retry_s},
            "S3BackupMode": self.backup_mode,
            "S3DestinationDescription": s3.describe_s3(),
        });
        if let Some(role) = &self.role_arn {
            d["RoleARN"] = Value::from(role.as_str());
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

    fn input(json: &str) -> HttpInput {
        serde_json::from_str(json).unwrap()
    }

    const MINIMAL: &str = r#"{"EndpointConfiguration":{"Url":"https://example.com/in","AccessKey":"secret"},
        "S3Configuration":{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b"}}"#;

    #[test]
    fn defaults_are_awss_and_the_access_key_is_never_described() {
        let (http, s3) = input(MINIMAL).into_destination();
        assert_eq!(s3.bucket(), "b");
        let d = http.describe(&s3);
        assert_eq!(
            d["BufferingHints"],
            json!({"SizeInMBs": 5, "IntervalInSeconds": 300})
        );
        assert_eq!(d["RetryOptions"], json!({"DurationInSeconds": 300}));
        assert_eq!(d["S3BackupMode"], "FailedDataOnly");
        assert_eq!(d["RequestConfiguration"]["ContentEncoding"], "NONE");
        assert_eq!(
            d["EndpointConfiguration"],
            json!({"Url": "https://example.com/in"})
        );
        assert!(!d.to_string().contains("secret"), "{d}");
    }

    #[test]
    fn an_update_keeps_what_it_leaves_out_and_updates_the_backup_bucket() {
        let (http, s3) = input(MINIMAL).into_destination();
        let (http, s3) = http.updated(
            input(
                r#"{"RequestConfiguration":{"ContentEncoding":"GZIP"},"RetryOptions":{"DurationInSeconds":60},
                    "S3Update":{"Prefix":"backup/"}}"#,
            ),
            s3,
        );
        assert!(http.gzip());
        assert_eq!(http.retry_s, 60);
        assert_eq!(http.access_key.as_deref(), Some("secret"));
        assert_eq!(s3.prefix.as_deref(), Some("backup/"));
        assert_eq!(s3.bucket(), "b");
    }

    #[test]
    fn the_model_constraints_are_checked_with_awss_paths() {
        let mut v = Violations::new();
        input(
            r#"{"EndpointConfiguration":{"Url":"http://plain"},"BufferingHints":{"SizeInMBs":65},
                "S3BackupMode":"Enabled","RetryOptions":{"DurationInSeconds":7201}}"#,
        )
        .check(&mut v, "httpEndpointDestinationConfiguration", true);
        let err = v
            .into_result::<crate::validate::ValidationError>()
            .unwrap_err();
        let text = err.to_string();
        for path in [
            "httpEndpointDestinationConfiguration.endpointConfiguration.url",
            "httpEndpointDestinationConfiguration.bufferingHints.sizeInMBs",
            "httpEndpointDestinationConfiguration.s3BackupMode",
            "httpEndpointDestinationConfiguration.retryOptions.durationInSeconds",
            "httpEndpointDestinationConfiguration.s3Configuration",
        ] {
            assert!(text.contains(path), "{path} not in {text}");
        }
    }
}
