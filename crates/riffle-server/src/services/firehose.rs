//! Amazon Data Firehose (`Firehose_20150804`), JSON 1.1.

use std::sync::Arc;

use bytes::Bytes;
use riffle_firehose::{Firehose, MODEL_OPERATIONS};
use riffle_kinesis::Codec;
use tokio::sync::watch;

use crate::errors::firehose_error;
use crate::service::{CallFuture, JsonVersion, Service, ServiceInfo, string_member, whole};

/// The Firehose model's facts.
pub static FIREHOSE: ServiceInfo = ServiceInfo {
    target_prefix: "Firehose_20150804",
    signing_name: "firehose",
    iam_prefix: "firehose",
    event_source: "firehose.amazonaws.com",
    operations: MODEL_OPERATIONS,
    // CloudTrail logs Firehose's record calls as data events.
    data_events: &["PutRecord", "PutRecordBatch"],
    cbor: false,
    json_version: JsonVersion::V1_1,
    error_namespace: None,
    query: None,
    rpc_v2_cbor: None,
    rest_json: &[],
};

/// The Firehose service, registered with the edge.
pub struct FirehoseService(pub Arc<Firehose>);

impl Service for FirehoseService {
    fn info(&self) -> &'static ServiceInfo {
        &FIREHOSE
    }

    /// `arn:aws:firehose:<region>:<account>:deliverystream/<name>`, as IAM
    /// names a delivery stream; ListDeliveryStreams acts on `*`.
    fn resource(&self, _action: &str, request: &[u8], region: &str, account_id: &str) -> String {
        match string_member(request, "DeliveryStreamName") {
            Some(name) => format!("arn:aws:firehose:{region}:{account_id}:deliverystream/{name}"),
            None => "*".to_owned(),
        }
    }

    fn call<'a>(
        &'a self,
        action: &'static str,
        body: Bytes,
        _codec: Codec,
        _stopping: &watch::Receiver<bool>,
    ) -> CallFuture<'a> {
        whole(
            async move { self.0.handle(action, &body).await },
            firehose_error,
        )
    }

    fn write_metrics(&self, out: &mut String) {
        self.0.write_metrics(out);
    }
}
