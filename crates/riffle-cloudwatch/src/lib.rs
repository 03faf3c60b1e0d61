//! `riffle-cloudwatch`: Amazon CloudWatch's PutMetricData, so that what an
//! application publishes (a KCL worker's MillisBehindLatest,
//! RecordsProcessed, leases held, …) shows on Riffle's `/metrics` without
//! CloudWatch.
//!
//! The edge hands a call here in one of the three protocols the model
//! lists (rpc-v2-cbor, JSON 1.0, query; see [`Format`]); `request` reads
//! it into one shape and checks it as CloudWatch does, and `registry`
//! keeps the series in memory (bounded) and renders them. Every other
//! operation of the model is refused as one Riffle does not serve.

mod errors;
mod registry;
mod request;

use bytes::Bytes;
use parking_lot::Mutex;

pub use errors::CloudWatchError;
pub use registry::SERIES_MAX;
pub use request::{
    DIMENSIONS_MAX, Format, METRIC_DATA_MAX, NAME_CHARS_MAX, VALUES_MAX, cbor_to_json,
    put_metric_data,
};

/// Every operation of the CloudWatch model (`monitoring/2010-08-01`), sorted.
pub const OPERATIONS: &[&str] = &[
    "AssociateDatasetKmsKey",
    "CreateResourceMetricsConfiguration",
    "DeleteAlarmMuteRule",
    "DeleteAlarms",
    "DeleteAnomalyDetector",
    "DeleteDashboards",
    "DeleteInsightRules",
    "DeleteMetricDataQueryDefinition",
    "DeleteMetricStream",
    "DeleteResourceMetricsConfiguration",
    "DescribeAlarmContributors",
    "DescribeAlarmHistory",
    "DescribeAlarms",
    "DescribeAlarmsForMetric",
    "DescribeAnomalyDetectors",
    "DescribeInsightRules",
    "DisableAlarmActions",
    "DisableInsightRules",
    "DisassociateDatasetKmsKey",
    "EnableAlarmActions",
    "EnableInsightRules",
    "GetAlarmMuteRule",
    "GetDashboard",
    "GetDataset",
    "GetInsightRuleReport",
    "GetMetricData",
    "GetMetricDataQueryDefinition",
    "GetMetricStatistics",
    "GetMetricStream",
    "GetMetricWidgetImage",
    "GetOTelEnrichment",
    "GetResourceMetricsConfiguration",
    "ListAlarmMuteRules",
    "ListDashboards",
    "ListManagedInsightRules",
    "ListMetricDataQueryDefinitions",
    "ListMetricStreams",
    "ListMetrics",
    "ListTagsForResource",
    "PutAlarmMuteRule",
    "PutAnomalyDetector",
    "PutCompositeAlarm",
    "PutDashboard",
    "PutInsightRule",
    "PutLogAlarm",
    "PutManagedInsightRules",
    "PutMetricAlarm",
    "PutMetricData",
    "PutMetricDataQueryDefinition",
    "PutMetricStream",
    "SetAlarmState",
    "StartMetricStreams",
    "StartOTelEnrichment",
    "StopMetricStreams",
    "StopOTelEnrichment",
    "TagResource",
    "UntagResource",
    "UpdateOTelEnrichment",
    "UpdateResourceMetricsConfiguration",
];

/// The CloudWatch service: the series put, behind one short-held lock
/// (a put or a scrape only touches memory).
#[derive(Default)]
pub struct CloudWatch {
    registry: Mutex<registry::Registry>,
}

impl CloudWatch {
    pub fn new() -> CloudWatch {
        CloudWatch::default()
    }

    /// Runs `action` with `body` in `format` (for [`Format::Query`], the
    /// form flattened to JSON). Answers the operation's output: none for
    /// PutMetricData (`{}` in JSON, an empty body otherwise).
    pub fn handle(
        &self,
        action: &str,
        body: &[u8],
        format: Format,
    ) -> Result<Bytes, CloudWatchError> {
        let Some(action) = OPERATIONS.iter().find(|op| **op == action) else {
            return Err(CloudWatchError::Unsupported("unknown"));
        };
        if *action != "PutMetricData" {
            return Err(CloudWatchError::Unsupported(action));
        }
        let request = match format {
            Format::Cbor => ciborium::from_reader::<ciborium::Value, _>(body)
                .map(cbor_to_json)
                .map_err(|err| CloudWatchError::Serialization(format!("Invalid CBOR: {err}")))?,
            Format::Json | Format::Query => serde_json::from_slice(body)
                .map_err(|err| CloudWatchError::Serialization(format!("Invalid JSON: {err}")))?,
        };
        let put = put_metric_data(&request, format)?;
        let mut registry = self.registry.lock();
        for datum in put.data {
            registry.put(&put.namespace, datum);
        }
        drop(registry);
        Ok(match format {
            Format::Json => Bytes::from_static(b"{}"),
            Format::Cbor | Format::Query => Bytes::new(),
        })
    }

    /// The series and counters, in Prometheus's text format.
    pub fn write_metrics(&self, out: &mut String) {
        self.registry.lock().write_metrics(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operations_are_the_models_sorted_and_only_put_metric_data_runs() {
        assert!(OPERATIONS.is_sorted());
        let cloudwatch = CloudWatch::new();
        let refused = cloudwatch
            .handle("ListMetrics", b"{}", Format::Json)
            .unwrap_err();
        assert_eq!(refused.code(), "InvalidAction");
        assert!(refused.message().contains("ListMetrics"));
        let body = br#"{"Namespace":"N","MetricData":[{"MetricName":"M","Value":1}]}"#;
        assert_eq!(
            cloudwatch
                .handle("PutMetricData", body, Format::Json)
                .unwrap(),
            &b"{}"[..]
        );
        let mut out = String::new();
        cloudwatch.write_metrics(&mut out);
        assert!(out.contains(r#"riffle_cloudwatch_metric_count{namespace="N",metric="M"} 1"#));
    }
}
