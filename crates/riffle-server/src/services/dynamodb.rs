//! Amazon DynamoDB (`DynamoDB_20120810`), JSON 1.0: the subset the
//! Kinesis Client Library keeps its leases in (`riffle-dynamodb`).

use std::sync::Arc;

use bytes::Bytes;
use riffle_dynamodb::{DynamoDb, OPERATIONS};
use riffle_kinesis::Codec;
use tokio::sync::watch;

use crate::errors::dynamodb_error;
use crate::service::{CallFuture, JsonVersion, Service, ServiceInfo, string_member, whole};

/// The DynamoDB model's facts.
pub static DYNAMODB: ServiceInfo = ServiceInfo {
    target_prefix: "DynamoDB_20120810",
    signing_name: "dynamodb",
    iam_prefix: "dynamodb",
    event_source: "dynamodb.amazonaws.com",
    operations: OPERATIONS,
    // CloudTrail logs DynamoDB's item-level calls as data events.
    data_events: &[
        "BatchGetItem",
        "BatchWriteItem",
        "DeleteItem",
        "GetItem",
        "PutItem",
        "Query",
        "Scan",
        "TransactWriteItems",
        "UpdateItem",
    ],
    cbor: false,
    json_version: JsonVersion::V1_0,
    error_namespace: Some("com.amazonaws.dynamodb.v20120810"),
    query: None,
    rpc_v2_cbor: None,
    rest_json: &[],
};

/// The DynamoDB subset, registered with the edge.
pub struct DynamoDbService(pub Arc<DynamoDb>);

impl Service for DynamoDbService {
    fn info(&self) -> &'static ServiceInfo {
        &DYNAMODB
    }

    /// `arn:aws:dynamodb:<region>:<account>:table/<name>`, as IAM names a
    /// table (a TableName may already be one); ListTables and the batches,
    /// which name several tables, act on `*`.
    fn resource(&self, _action: &str, request: &[u8], region: &str, account_id: &str) -> String {
        let table = string_member(request, "TableName");
        match (table, string_member(request, "ResourceArn")) {
            (Some(name), _) if name.starts_with("arn:") => name,
            (Some(name), _) => format!("arn:aws:dynamodb:{region}:{account_id}:table/{name}"),
            (None, Some(arn)) => arn,
            (None, None) => "*".to_owned(),
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
            dynamodb_error,
        )
    }
}
