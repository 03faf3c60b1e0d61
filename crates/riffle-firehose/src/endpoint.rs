//! The destinations that are not S3 buckets, as a stream's definition
//! keeps them beside its S3 destination (for them, the bucket records are
//! backed up to: their `S3Configuration`).
//!
//! Delivery fills buffers with each one's own hints and hands the records
//! to [`crate::http_delivery`]; what it could not deliver within the retry
//! duration, it returns as error lines for the S3 lane's bucket.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use tokio::time::Duration;

use crate::buffer::Records;
use crate::destination::S3Destination;
use crate::http_client::DestinationClient;
use crate::http_delivery::{self, Target, Undelivered};
use crate::http_endpoint::HttpEndpointDestination;
use crate::metrics::StreamMetrics;
use crate::prefix::ErrorOutputType;

/// A destination other than S3, as the catalog keeps it: `{"type":
/// "HttpEndpoint", …the destination's members}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Endpoint {
    HttpEndpoint(HttpEndpointDestination),
}

impl Endpoint {
    /// The destination lane's buffering and processing: the endpoint's
    /// hints and ProcessingConfiguration, over the S3 configuration's
    /// prefixes (processing failures go to the backup bucket, as AWS
    /// writes them there).
    pub fn lane_destination(&self, s3: &S3Destination) -> S3Destination {
        let mut lane = s3.clone();
        match self {
            Endpoint::HttpEndpoint(http) => {
                lane.size_mb = http.size_mb;
                lane.interval_s = http.interval_s;
                lane.processing = http.processing.clone();
            }
        }
        lane.data_format_conversion = None;
        lane.dynamic_partitioning = None;
        lane.backup = None;
        lane
    }

    /// Whether the backup lane copies every source record to the S3
    /// configuration's bucket (`AllData`; else only failures go there).
    pub fn backs_up_all(&self) -> bool {
        match self {
            Endpoint::HttpEndpoint(http) => http.backs_up_all(),
        }
    }

    /// Delivers a batch, retrying within the destination's retry
    /// duration; `None` once delivered, else the error records to back up.
    pub async fn deliver(
        &self,
        client: &DestinationClient,
        source_arn: &str,
        metrics: &StreamMetrics,
        records: &Records,
        oldest_ms: i64,
    ) -> Option<Undelivered> {
        match self {
            Endpoint::HttpEndpoint(http) => {
                let retry = Duration::from_secs(u64::try_from(http.retry_s).unwrap_or(0));
                let target = Target {
                    client,
                    destination: http,
                    source_arn,
                    retry,
                    metrics: &metrics.endpoint,
                };
                http_delivery::deliver(&target, records, oldest_ms).await
            }
        }
    }

    /// Where undelivered records go under the S3 configuration's bucket.
    pub fn error_output_type(&self) -> ErrorOutputType {
        match self {
            Endpoint::HttpEndpoint(_) => ErrorOutputType::HttpEndpointFailed,
        }
    }

    /// The destination's entry in DescribeDeliveryStream's `Destinations`
    /// (beside `DestinationId`).
    pub fn describe(&self, s3: &S3Destination) -> (&'static str, Value) {
        match self {
            Endpoint::HttpEndpoint(http) => {
                ("HttpEndpointDestinationDescription", http.describe(s3))
            }
        }
    }
}
