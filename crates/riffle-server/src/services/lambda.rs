//! AWS Lambda (`lambda`), its event-source-mapping operations only
//! (`riffle-triggers`), in restJson1: the routes below are the model's
//! `http` bindings (`lambda/2015-03-31`).

use std::sync::Arc;

use bytes::Bytes;
use riffle_kinesis::Codec;
use riffle_triggers::{OPERATIONS, Triggers};
use tokio::sync::watch;

use crate::errors::triggers_error;
use crate::service::{
    CallFuture, JsonVersion, Reply, RestRoute, Service, ServiceInfo, string_member,
};

/// The mapping operations' bindings: method, `requestUri`, `responseCode`
/// and `querystring` members, as the model declares them.
const ROUTES: &[RestRoute] = &[
    RestRoute {
        method: "POST",
        path: "/2015-03-31/event-source-mappings",
        operation: "CreateEventSourceMapping",
        status: 202,
        query: &[],
    },
    RestRoute {
        method: "GET",
        path: "/2015-03-31/event-source-mappings",
        operation: "ListEventSourceMappings",
        status: 200,
        query: &[
            ("EventSourceArn", "EventSourceArn"),
            ("FunctionName", "FunctionName"),
            ("Marker", "Marker"),
            ("MaxItems", "MaxItems"),
        ],
    },
    RestRoute {
        method: "GET",
        path: "/2015-03-31/event-source-mappings/{UUID}",
        operation: "GetEventSourceMapping",
        status: 200,
        query: &[],
    },
    RestRoute {
        method: "PUT",
        path: "/2015-03-31/event-source-mappings/{UUID}",
        operation: "UpdateEventSourceMapping",
        status: 202,
        query: &[],
    },
    RestRoute {
        method: "DELETE",
        path: "/2015-03-31/event-source-mappings/{UUID}",
        operation: "DeleteEventSourceMapping",
        status: 202,
        query: &[],
    },
];

/// The Lambda model's facts.
pub static LAMBDA: ServiceInfo = ServiceInfo {
    // restJson1 services are found by their paths, not a target.
    target_prefix: "",
    signing_name: "lambda",
    iam_prefix: "lambda",
    event_source: "lambda.amazonaws.com",
    operations: OPERATIONS,
    data_events: &[],
    cbor: false,
    json_version: JsonVersion::V1_1,
    error_namespace: None,
    query: None,
    rpc_v2_cbor: None,
    rest_json: ROUTES,
};

/// The Lambda service, registered with the edge.
pub struct LambdaService(pub Arc<Triggers>);

impl Service for LambdaService {
    fn info(&self) -> &'static ServiceInfo {
        &LAMBDA
    }

    /// A mapping's ARN for the calls on one mapping; `*` for creating and
    /// listing, as IAM authorizes them.
    fn resource(&self, _action: &str, request: &[u8], region: &str, account_id: &str) -> String {
        match string_member(request, "UUID") {
            Some(uuid) => {
                format!("arn:aws:lambda:{region}:{account_id}:event-source-mapping:{uuid}")
            }
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
        // Each operation is one small metadata commit at most: answered
        // in place, like the other catalog calls.
        let answer = self.0.handle(action, &body);
        Box::pin(async move { answer.map(Reply::Whole).map_err(|err| triggers_error(&err)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_names_a_served_operation_once() {
        let mut named: Vec<&str> = ROUTES.iter().map(|r| r.operation).collect();
        named.sort_unstable();
        assert_eq!(named, OPERATIONS);
        for route in ROUTES {
            assert_eq!(LAMBDA.operation(route.operation), Some(route.operation));
        }
    }
}
