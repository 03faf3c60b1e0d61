//! Amazon CloudWatch (`monitoring`), PutMetricData only (`riffle-cloudwatch`),
//! in the three protocols its model lists: smithy-rpc-v2-cbor (the AWS SDK
//! for Rust), JSON 1.0 (`GraniteServiceVersion20100801`: botocore, which
//! ranks it first) and the query protocol (the AWS SDK for Java v2 in KCL 3.x).

use std::sync::Arc;

use bytes::Bytes;
use riffle_cloudwatch::{CloudWatch, Format, OPERATIONS};
use riffle_kinesis::Codec;
use tokio::sync::watch;

use crate::errors::cloudwatch_error;
use crate::service::{CallFuture, JsonVersion, QueryFacts, Reply, Service, ServiceInfo};

/// The CloudWatch model's facts (`monitoring/2010-08-01`).
pub static CLOUDWATCH: ServiceInfo = ServiceInfo {
    target_prefix: "GraniteServiceVersion20100801",
    signing_name: "monitoring",
    iam_prefix: "cloudwatch",
    event_source: "monitoring.amazonaws.com",
    operations: OPERATIONS,
    // CloudTrail logs PutMetricData and the other read/put calls of
    // CloudWatch as data events (management events are the alarms,
    // dashboards, …).
    data_events: &[
        "GetMetricData",
        "GetMetricStatistics",
        "ListMetrics",
        "PutMetricData",
    ],
    cbor: false,
    json_version: JsonVersion::V1_0,
    error_namespace: Some("com.amazonaws.cloudwatch"),
    query: Some(QueryFacts {
        version: "2010-08-01",
        xml_namespace: "http://monitoring.amazonaws.com/doc/2010-08-01/",
        // The model's error shapes whose query code differs from the name.
        error_codes: &[
            ("InvalidParameterValueException", "InvalidParameterValue"),
            ("MissingRequiredParameterException", "MissingParameter"),
            (
                "InvalidParameterCombinationException",
                "InvalidParameterCombination",
            ),
            ("InternalServiceFault", "InternalServiceError"),
        ],
    }),
    rpc_v2_cbor: Some("GraniteServiceVersion20100801"),
    rest_json: &[],
};

/// The CloudWatch service, registered with the edge.
pub struct CloudWatchService(pub Arc<CloudWatch>);

impl CloudWatchService {
    fn run(&self, action: &'static str, body: Bytes, format: Format) -> CallFuture<'_> {
        let answer = self.0.handle(action, &body, format);
        Box::pin(async move {
            answer
                .map(Reply::Whole)
                .map_err(|err| cloudwatch_error(&err))
        })
    }
}

impl Service for CloudWatchService {
    fn info(&self) -> &'static ServiceInfo {
        &CLOUDWATCH
    }

    /// Metrics are not resources: IAM authorizes `cloudwatch:PutMetricData` on `*`.
    fn resource(&self, _action: &str, _request: &[u8], _region: &str, _account: &str) -> String {
        "*".to_owned()
    }

    fn call<'a>(
        &'a self,
        action: &'static str,
        body: Bytes,
        codec: Codec,
        _stopping: &watch::Receiver<bool>,
    ) -> CallFuture<'a> {
        let format = match codec {
            Codec::Json => Format::Json,
            Codec::Cbor => Format::Cbor,
        };
        self.run(action, body, format)
    }

    fn call_query<'a>(&'a self, action: &'static str, request: Bytes) -> CallFuture<'a> {
        self.run(action, request, Format::Query)
    }

    fn write_metrics(&self, out: &mut String) {
        self.0.write_metrics(out);
    }
}
