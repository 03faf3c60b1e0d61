//! The destinations that are not S3 buckets, as a stream's definition
//! keeps them beside its S3 destination (for them, the bucket records are
//! backed up to: their `S3Configuration`).
//!
//! Delivery fills buffers with each one's own hints and hands the records
//! to [`crate::http_delivery`] or [`crate::opensearch_delivery`]; what
//! could not be delivered within the retry duration comes back as error
//! lines for the S3 configuration's bucket. Redshift is delivered through
//! its intermediate bucket instead: the lane stages the buffer there and
//! [`crate::redshift_delivery`] copies it into the table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Duration;

use crate::buffer::Records;
use crate::destination::{S3Destination, S3Input};
use crate::http_client::DestinationClient;
use crate::http_delivery::{self, Target, Undelivered};
use crate::http_endpoint::HttpEndpointDestination;
use crate::metrics::StreamMetrics;
use crate::opensearch::{Flavor, OpenSearchDestination};
use crate::opensearch_delivery;
use crate::prefix::ErrorOutputType;
use crate::redshift::RedshiftDestination;
use crate::splunk::SplunkDestination;
use crate::splunk_delivery;
use crate::validate::Violations;

/// A destination other than S3, as the catalog keeps it: `{"type":
/// "HttpEndpoint", …the destination's members}` (or `"OpenSearch"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Endpoint {
    #[serde(rename = "HttpEndpoint")]
    Http(HttpEndpointDestination),
    /// OpenSearch Service or Elasticsearch (its `flavor`).
    OpenSearch(OpenSearchDestination),
    /// Splunk's HTTP Event Collector.
    Splunk(SplunkDestination),
    /// Redshift (on PostgreSQL), through the S3 configuration's bucket.
    Redshift(RedshiftDestination),
}

/// The members every endpoint destination's input shares: its
/// ProcessingConfiguration, and its backup bucket as `S3Configuration`
/// (create) or `S3Update` (update), checked under `path`.
pub fn check_shared_members(
    v: &mut Violations,
    path: &str,
    processing: Option<&Value>,
    s3_configuration: Option<&S3Input>,
    s3_update: Option<&S3Input>,
) {
    if let Some(processing) = processing {
        crate::processing::check_model(processing, v, &format!("{path}.processingConfiguration"));
    }
    if let Some(s3) = s3_configuration {
        s3.check(v, &format!("{path}.s3Configuration"), true);
    }
    if let Some(s3) = s3_update {
        s3.check(v, &format!("{path}.s3Update"), false);
    }
}

/// What delivery to an endpoint needs of the server.
pub struct Env<'a> {
    pub client: &'a DestinationClient,
    /// The delivery stream's ARN.
    pub source_arn: &'a str,
    /// DomainARN → URL (`--firehose-opensearch-domains`).
    pub domains: &'a BTreeMap<String, String>,
    /// Overrides every Splunk destination's HECAcknowledgmentTimeoutInSeconds
    /// (`--firehose-splunk-ack-timeout-s`).
    pub splunk_ack_timeout: Option<Duration>,
}

impl Endpoint {
    /// The destination lane's buffering and processing: the endpoint's
    /// hints and ProcessingConfiguration, over the S3 configuration's
    /// prefixes (processing failures go to the backup bucket, as AWS
    /// writes them there).
    /// Redshift's lane buffers by the S3 configuration's hints, as AWS's
    /// Redshift destination has none of its own.
    pub fn lane_destination(&self, s3: &S3Destination) -> S3Destination {
        let mut lane = s3.clone();
        let (size_mb, interval_s, processing) = match self {
            Endpoint::Http(http) => (http.size_mb, http.interval_s, &http.processing),
            Endpoint::OpenSearch(os) => (os.size_mb, os.interval_s, &os.processing),
            Endpoint::Splunk(s) => (s.size_mb, s.interval_s, &s.processing),
            Endpoint::Redshift(r) => (s3.size_mb, s3.interval_s, &r.processing),
        };
        lane.size_mb = size_mb;
        lane.interval_s = interval_s;
        lane.processing = processing.clone();
        lane.data_format_conversion = None;
        lane.dynamic_partitioning = None;
        lane.backup = None;
        lane
    }

    /// Where the backup lane copies every source record, if anywhere:
    /// the S3 configuration's bucket with `AllData`, `AllDocuments`,
    /// `AllEvents` (else only failures go there); Redshift's
    /// S3BackupConfiguration while its S3BackupMode is `Enabled`.
    pub fn backup_destination(&self, s3: &S3Destination) -> Option<S3Destination> {
        let all = match self {
            Endpoint::Http(http) => http.backs_up_all(),
            Endpoint::OpenSearch(os) => os.backs_up_all(),
            Endpoint::Splunk(s) => s.backs_up_all(),
            Endpoint::Redshift(_) => return s3.backup_enabled().cloned(),
        };
        all.then(|| s3.clone())
    }

    /// Delivers a batch, retrying within the destination's retry
    /// duration; `None` once delivered, else the error records to back up.
    /// Not for Redshift, whose lane stages its buffers first.
    pub async fn deliver(
        &self,
        env: &Env<'_>,
        metrics: &StreamMetrics,
        records: &Records,
        oldest_ms: i64,
    ) -> Option<Undelivered> {
        let seconds = |s: i32| Duration::from_secs(u64::try_from(s).unwrap_or(0));
        match self {
            Endpoint::Http(http) => {
                let target = Target {
                    client: env.client,
                    destination: http,
                    source_arn: env.source_arn,
                    retry: seconds(http.retry_s),
                    metrics: &metrics.endpoint,
                };
                http_delivery::deliver(&target, records, oldest_ms).await
            }
            Endpoint::OpenSearch(os) => {
                let target = opensearch_delivery::Target {
                    client: env.client,
                    destination: os,
                    base_url: os.base_url(env.domains),
                    retry: seconds(os.retry_s),
                    metrics: &metrics.endpoint,
                };
                opensearch_delivery::deliver(&target, records, oldest_ms).await
            }
            Endpoint::Splunk(splunk) => {
                let ack_timeout = env
                    .splunk_ack_timeout
                    .unwrap_or_else(|| seconds(splunk.ack_timeout_s));
                let target = splunk_delivery::Target {
                    client: env.client,
                    destination: splunk,
                    retry: seconds(splunk.retry_s),
                    ack_timeout,
                    metrics: &metrics.endpoint,
                };
                splunk_delivery::deliver(&target, records, oldest_ms).await
            }
            // Cannot happen: delivery stages a Redshift lane's buffers and
            // copies them (redshift_delivery). Should it, the records stay
            // unrecorded, so a restart delivers them: never lost.
            Endpoint::Redshift(_) => {
                tracing::error!(
                    "a Redshift lane handed records to endpoint delivery; they stay undelivered until a restart"
                );
                std::future::pending().await
            }
        }
    }

    /// The Prometheus and CloudWatch prefixes of its delivery metrics.
    pub fn metrics_prefix(&self) -> (&'static str, &'static str) {
        match self {
            Endpoint::Http(_) => ("delivery_to_http_endpoint_", "DeliveryToHttpEndpoint."),
            Endpoint::OpenSearch(os) if os.flavor == Flavor::Elasticsearch => {
                ("delivery_to_elasticsearch_", "DeliveryToElasticsearch.")
            }
            Endpoint::OpenSearch(_) => (
                "delivery_to_amazon_open_search_service_",
                "DeliveryToAmazonOpenSearchService.",
            ),
            Endpoint::Splunk(_) => ("delivery_to_splunk_", "DeliveryToSplunk."),
            Endpoint::Redshift(_) => ("delivery_to_redshift_", "DeliveryToRedshift."),
        }
    }

    /// Where undelivered records go under the S3 configuration's bucket.
    pub fn error_output_type(&self) -> ErrorOutputType {
        match self {
            Endpoint::Http(_) => ErrorOutputType::HttpEndpointFailed,
            Endpoint::OpenSearch(_) => ErrorOutputType::ElasticsearchFailed,
            Endpoint::Splunk(_) => ErrorOutputType::SplunkFailed,
            // Redshift's failures are manifests under errors/manifests/;
            // its processing failures go under processing-failed/.
            Endpoint::Redshift(_) => ErrorOutputType::ProcessingFailed,
        }
    }

    /// The destination's entry in DescribeDeliveryStream's `Destinations`
    /// (beside `DestinationId`).
    pub fn describe(&self, s3: &S3Destination) -> (&'static str, Value) {
        match self {
            Endpoint::Http(http) => ("HttpEndpointDestinationDescription", http.describe(s3)),
            Endpoint::OpenSearch(os) => (os.flavor.description_key(), os.describe(s3)),
            Endpoint::Splunk(s) => ("SplunkDestinationDescription", s.describe(s3)),
            Endpoint::Redshift(r) => ("RedshiftDestinationDescription", r.describe(s3)),
        }
    }
}
