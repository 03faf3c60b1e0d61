//! The OpenSearch Service and Elasticsearch destinations:
//! `AmazonopensearchserviceDestinationConfiguration` and
//! `ElasticsearchDestinationConfiguration` (one shape: the model's two
//! differ only in their names), their updates as requests give them, as
//! the catalog keeps them and as DescribeDeliveryStream shows them.
//!
//! A `DomainARN` names no server Riffle can reach by itself: the
//! `--firehose-opensearch-domains` option maps each to a URL; a
//! `ClusterEndpoint` is used as given.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::FirehoseError;
use crate::destination::{S3Destination, S3Input};
use crate::json::{Int, Text};
use crate::validate::{Pattern, Violations};

/// `…BufferingHints`: 1–100 MiB and 0–900 s (model); AWS's defaults are
/// 5 MiB and 300 s (API reference, `AmazonopensearchserviceBufferingHints`).
const SIZE_MB_MAX: i64 = 100;
const SIZE_MB_DEFAULT: i32 = 5;
const INTERVAL_S_MAX: i64 = 900;
const INTERVAL_S_DEFAULT: i32 = 300;
/// `…RetryDurationInSeconds`: 0–7,200; AWS's default is 300 (API reference).
const RETRY_S_MAX: i64 = 7200;
const RETRY_S_DEFAULT: i32 = 300;
const ARN_MAX: usize = 512;
const INDEX_NAME_MAX: usize = 80;
const TYPE_NAME_MAX: usize = 100;
const ROTATIONS: &[&str] = &["NoRotation", "OneHour", "OneDay", "OneWeek", "OneMonth"];
/// AWS's default IndexRotationPeriod (API reference).
const ROTATION_DEFAULT: &str = "OneDay";
const BACKUP_MODES: &[&str] = &["FailedDocumentsOnly", "AllDocuments"];
const DOCUMENT_ID_FORMATS: &[&str] = &["FIREHOSE_DEFAULT", "NO_DOCUMENT_ID"];

/// Which of the two API shapes a destination was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Flavor {
    OpenSearch,
    Elasticsearch,
}

impl Flavor {
    /// The description's member name.
    pub fn description_key(self) -> &'static str {
        match self {
            Flavor::OpenSearch => "AmazonopensearchserviceDestinationDescription",
            Flavor::Elasticsearch => "ElasticsearchDestinationDescription",
        }
    }
}

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

#[derive(Debug, Deserialize)]
#[allow(non_snake_case)]
pub struct DocumentIdInput {
    DefaultDocumentIdFormat: Option<Text>,
}

/// A configuration or update as a request gives it.
#[derive(Debug, Deserialize, Default)]
#[allow(non_snake_case)]
pub struct OpenSearchInput {
    RoleARN: Option<Text>,
    DomainARN: Option<Text>,
    ClusterEndpoint: Option<Text>,
    IndexName: Option<Text>,
    TypeName: Option<Text>,
    IndexRotationPeriod: Option<Text>,
    BufferingHints: Option<HintsInput>,
    RetryOptions: Option<RetryInput>,
    S3BackupMode: Option<Text>,
    S3Configuration: Option<S3Input>,
    S3Update: Option<S3Input>,
    ProcessingConfiguration: Option<Value>,
    CloudWatchLoggingOptions: Option<Value>,
    VpcConfiguration: Option<Value>,
    DocumentIdOptions: Option<DocumentIdInput>,
}

/// The destination as the catalog keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenSearchDestination {
    pub flavor: Flavor,
    pub role_arn: String,
    pub domain_arn: Option<String>,
    pub cluster_endpoint: Option<String>,
    pub index_name: String,
    pub type_name: Option<String>,
    pub rotation: String,
    pub size_mb: i32,
    pub interval_s: i32,
    pub retry_s: i32,
    /// `FailedDocumentsOnly` or `AllDocuments`.
    pub backup_mode: String,
    pub cloudwatch: Value,
    pub processing: Option<Value>,
    pub vpc: Option<Value>,
    /// `FIREHOSE_DEFAULT` or `NO_DOCUMENT_ID`.
    pub document_id: String,
}

impl OpenSearchInput {
    /// Checks the model's constraints; `create`: RoleARN, IndexName and
    /// S3Configuration are required.
    pub fn check(&self, v: &mut Violations, path: &str, create: bool) {
        let at = |member: &str| format!("{path}.{member}");
        let text = |t: &Option<Text>| t.as_ref().map(Text::as_str).map(str::to_owned);
        if create {
            v.required(&self.RoleARN, &at("roleARN"));
            v.required(&self.IndexName, &at("indexName"));
            v.required(&self.S3Configuration, &at("s3Configuration"));
        }
        let role = text(&self.RoleARN);
        v.pattern(role.as_deref(), &at("roleARN"), Pattern::RoleArn);
        v.length(role.as_deref(), &at("roleARN"), 1, ARN_MAX);
        let domain = text(&self.DomainARN);
        v.pattern(domain.as_deref(), &at("domainARN"), Pattern::DomainArn);
        v.length(domain.as_deref(), &at("domainARN"), 1, ARN_MAX);
        let endpoint = text(&self.ClusterEndpoint);
        v.pattern(
            endpoint.as_deref(),
            &at("clusterEndpoint"),
            Pattern::HttpsPrefix,
        );
        v.length(endpoint.as_deref(), &at("clusterEndpoint"), 1, ARN_MAX);
        let index = text(&self.IndexName);
        v.length(index.as_deref(), &at("indexName"), 1, INDEX_NAME_MAX);
        let type_name = text(&self.TypeName);
        v.length(type_name.as_deref(), &at("typeName"), 0, TYPE_NAME_MAX);
        let rotation = text(&self.IndexRotationPeriod);
        v.one_of(rotation.as_deref(), &at("indexRotationPeriod"), ROTATIONS);
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
        if let Some(r) = &self.RetryOptions {
            let retry = r.DurationInSeconds.map(|n| i64::from(n.0));
            let retry_at = at("retryOptions.durationInSeconds");
            v.range(retry, &retry_at, Some(0), Some(RETRY_S_MAX));
        }
        let mode = text(&self.S3BackupMode);
        v.one_of(mode.as_deref(), &at("s3BackupMode"), BACKUP_MODES);
        if let Some(d) = &self.DocumentIdOptions {
            let format_at = at("documentIdOptions.defaultDocumentIdFormat");
            v.required(&d.DefaultDocumentIdFormat, &format_at);
            let format = text(&d.DefaultDocumentIdFormat);
            v.one_of(format.as_deref(), &format_at, DOCUMENT_ID_FORMATS);
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
    pub fn into_destination(mut self, flavor: Flavor) -> (OpenSearchDestination, S3Destination) {
        let s3 = self
            .S3Configuration
            .take()
            .unwrap_or_default()
            .into_destination(false);
        let empty = OpenSearchDestination {
            flavor,
            role_arn: String::new(),
            domain_arn: None,
            cluster_endpoint: None,
            index_name: String::new(),
            type_name: None,
            rotation: ROTATION_DEFAULT.to_owned(),
            size_mb: SIZE_MB_DEFAULT,
            interval_s: INTERVAL_S_DEFAULT,
            retry_s: RETRY_S_DEFAULT,
            backup_mode: "FailedDocumentsOnly".to_owned(),
            cloudwatch: json!({"Enabled": false}),
            processing: None,
            vpc: None,
            document_id: "FIREHOSE_DEFAULT".to_owned(),
        };
        empty.updated(self, s3)
    }
}

impl OpenSearchDestination {
    /// This destination with an update's members replaced.
    pub fn updated(
        mut self,
        u: OpenSearchInput,
        s3: S3Destination,
    ) -> (OpenSearchDestination, S3Destination) {
        let set = |slot: &mut String, t: Option<Text>| {
            if let Some(t) = t {
                *slot = t.0;
            }
        };
        set(&mut self.role_arn, u.RoleARN);
        set(&mut self.index_name, u.IndexName);
        set(&mut self.rotation, u.IndexRotationPeriod);
        set(&mut self.backup_mode, u.S3BackupMode);
        // A request names the cluster one way: the other is forgotten.
        if let Some(domain) = u.DomainARN {
            self.domain_arn = Some(domain.0);
            self.cluster_endpoint = None;
        }
        if let Some(endpoint) = u.ClusterEndpoint {
            self.cluster_endpoint = Some(endpoint.0);
            self.domain_arn = None;
        }
        if let Some(t) = u.TypeName {
            self.type_name = Some(t.0);
        }
        if let Some(h) = u.BufferingHints {
            self.size_mb = h.SizeInMBs.map_or(self.size_mb, |n| n.0);
            self.interval_s = h.IntervalInSeconds.map_or(self.interval_s, |n| n.0);
        }
        if let Some(r) = u.RetryOptions.and_then(|r| r.DurationInSeconds) {
            self.retry_s = r.0;
        }
        if let Some(d) = u.DocumentIdOptions.and_then(|d| d.DefaultDocumentIdFormat) {
            self.document_id = d.0;
        }
        if let Some(c) = u.CloudWatchLoggingOptions {
            self.cloudwatch = c;
        }
        if u.ProcessingConfiguration.is_some() {
            self.processing = u.ProcessingConfiguration;
        }
        if u.VpcConfiguration.is_some() {
            self.vpc = u.VpcConfiguration;
        }
        let s3 = s3.backup_updated(u.S3Configuration, u.S3Update);
        (self, s3)
    }

    /// AWS's rules the model does not express: exactly one of DomainARN
    /// and ClusterEndpoint, and a DomainARN Riffle can reach.
    pub fn check_rules(&self, domains: &BTreeMap<String, String>) -> Result<(), FirehoseError> {
        match (&self.domain_arn, &self.cluster_endpoint) {
            (None, None) => Err(FirehoseError::InvalidArgument(
                "Either DomainARN or ClusterEndpoint must be specified.".to_owned(),
            )),
            (Some(arn), None) if !domains.contains_key(arn) => {
                Err(FirehoseError::InvalidArgument(format!(
                    "Domain {arn} is not known: riffle serve maps a DomainARN to its URL with --firehose-opensearch-domains."
                )))
            }
            _ => Ok(()),
        }
    }

    /// The cluster's base URL.
    pub fn base_url<'a>(&'a self, domains: &'a BTreeMap<String, String>) -> Option<&'a str> {
        match (&self.cluster_endpoint, &self.domain_arn) {
            (Some(url), _) => Some(url.as_str()),
            (None, Some(arn)) => domains.get(arn).map(String::as_str),
            (None, None) => None,
        }
    }

    pub fn backs_up_all(&self) -> bool {
        self.backup_mode == "AllDocuments"
    }

    /// `AmazonopensearchserviceDestinationDescription` (or Elasticsearch's).
    pub fn describe(&self, s3: &S3Destination) -> Value {
        let mut d = json!({
            "RoleARN": self.role_arn,
            "IndexName": self.index_name,
            "IndexRotationPeriod": self.rotation,
            "BufferingHints": {"IntervalInSeconds": self.interval_s, "SizeInMBs": self.size_mb},
            "RetryOptions": {"DurationInSeconds": self.retry_s},
            "S3BackupMode": self.backup_mode,
            "S3DestinationDescription": s3.describe_s3(),
            "CloudWatchLoggingOptions": self.cloudwatch,
            "DocumentIdOptions": {"DefaultDocumentIdFormat": self.document_id},
        });
        let optional = [
            ("DomainARN", self.domain_arn.clone().map(Value::from)),
            (
                "ClusterEndpoint",
                self.cluster_endpoint.clone().map(Value::from),
            ),
            ("TypeName", self.type_name.clone().map(Value::from)),
            ("ProcessingConfiguration", self.processing.clone()),
            ("VpcConfigurationDescription", self.vpc.clone()),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                d[key] = value;
            }
        }
        d
    }
}

/// Parses `--firehose-opensearch-domains`: `ARN=URL` pairs, comma-separated.
pub fn parse_domains(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut domains = BTreeMap::new();
    for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (arn, url) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not ARN=URL"))?;
        if !Pattern::DomainArn.matches(arn) {
            return Err(format!("`{arn}` is not an OpenSearch domain ARN"));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("`{url}` is not an http:// or https:// URL"));
        }
        domains.insert(arn.to_owned(), url.trim_end_matches('/').to_owned());
    }
    Ok(domains)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:es:us-east-1:000000000000:domain/logs";

    fn input(json: &str) -> OpenSearchInput {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_are_awss_and_a_domain_needs_a_mapping() {
        let (d, s3) = input(&format!(
            r#"{{"RoleARN":"arn:aws:iam::000000000000:role/r","DomainARN":"{ARN}","IndexName":"logs",
                "S3Configuration":{{"RoleARN":"arn:aws:iam::000000000000:role/r","BucketARN":"arn:aws:s3:::b"}}}}"#
        ))
        .into_destination(Flavor::OpenSearch);
        let described = d.describe(&s3);
        assert_eq!(described["IndexRotationPeriod"], "OneDay");
        assert_eq!(described["S3BackupMode"], "FailedDocumentsOnly");
        assert_eq!(
            described["DocumentIdOptions"]["DefaultDocumentIdFormat"],
            "FIREHOSE_DEFAULT"
        );
        assert_eq!(
            described["BufferingHints"],
            json!({"IntervalInSeconds": 300, "SizeInMBs": 5})
        );
        assert!(d.check_rules(&BTreeMap::new()).is_err());
        let domains = parse_domains(&format!("{ARN}=http://127.0.0.1:9200/")).unwrap();
        assert!(d.check_rules(&domains).is_ok());
        assert_eq!(d.base_url(&domains), Some("http://127.0.0.1:9200"));
    }

    #[test]
    fn malformed_domain_mappings_are_refused() {
        assert!(parse_domains("nonsense").is_err());
        assert!(parse_domains(&format!("{ARN}=ftp://x")).is_err());
        assert!(parse_domains("arn:aws:s3:::b=http://x").is_err());
        assert!(parse_domains("").unwrap().is_empty());
    }
}
