//! Kinesis Data Streams (`Kinesis_20131202`), JSON 1.1 and CBOR, with
//! SubscribeToShard's event stream.

use std::sync::Arc;

use bytes::Bytes;
use riffle_kinesis::{Codec, Kinesis, MODEL_OPERATIONS};
use tokio::sync::watch;

use crate::errors::kinesis_error;
use crate::service::{CallFuture, JsonVersion, Reply, Service, ServiceInfo, whole};
use crate::{events, eventstream, policy};

/// The Kinesis model's facts.
pub static KINESIS: ServiceInfo = ServiceInfo {
    target_prefix: "Kinesis_20131202",
    signing_name: "kinesis",
    iam_prefix: "kinesis",
    event_source: "kinesis.amazonaws.com",
    operations: MODEL_OPERATIONS,
    // CloudTrail's data events of Kinesis Data Streams.
    data_events: &[
        "GetRecords",
        "GetShardIterator",
        "PutRecord",
        "PutRecords",
        "SubscribeToShard",
    ],
    cbor: true,
    json_version: JsonVersion::V1_1,
    error_namespace: None,
    query: None,
    rpc_v2_cbor: None,
    rest_json: &[],
};

/// The Kinesis service, registered with the edge.
pub struct KinesisService(pub Arc<Kinesis>);

impl Service for KinesisService {
    fn info(&self) -> &'static ServiceInfo {
        &KINESIS
    }

    fn resource(&self, action: &str, request: &[u8], region: &str, account_id: &str) -> String {
        let iterator_stream = |token: &str| self.0.stream_of_iterator(token);
        policy::kinesis_resource(region, account_id, action, request, iterator_stream)
    }

    fn resource_policy(&self, arn: &str) -> Option<String> {
        self.0.resource_policy(arn)
    }

    fn has_resource_policies(&self) -> bool {
        self.0.has_resource_policies()
    }

    fn call<'a>(
        &'a self,
        action: &'static str,
        body: Bytes,
        codec: Codec,
        stopping: &watch::Receiver<bool>,
    ) -> CallFuture<'a> {
        let stopping = stopping.clone();
        Box::pin(async move {
            if action == "SubscribeToShard" {
                let subscription = self.0.subscribe_to_shard(body, codec).await;
                return subscription
                    .map(|s| {
                        let body = events::body(s, codec, stopping);
                        Reply::Stream(body, eventstream::CONTENT_TYPE)
                    })
                    .map_err(|err| kinesis_error(&err));
            }
            whole(self.0.handle(action, body, codec), kinesis_error).await
        })
    }

    fn write_metrics(&self, out: &mut String) {
        self.0.write_metrics(out);
    }
}
