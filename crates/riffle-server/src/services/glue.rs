//! AWS Glue (`AWSGlue`), JSON 1.1: the Data Catalog subset that defines
//! the tables Firehose's format conversion reads its schemas from
//! (`riffle-glue`).

use std::sync::Arc;

use bytes::Bytes;
use riffle_glue::{Glue, OPERATIONS};
use riffle_kinesis::Codec;
use tokio::sync::watch;

use crate::errors::glue_error;
use crate::service::{CallFuture, JsonVersion, Service, ServiceInfo, string_member, whole};

/// The Glue model's facts (`glue/2017-03-31`).
pub static GLUE: ServiceInfo = ServiceInfo {
    target_prefix: "AWSGlue",
    signing_name: "glue",
    iam_prefix: "glue",
    event_source: "glue.amazonaws.com",
    operations: OPERATIONS,
    // CloudTrail logs the catalog's calls as management events.
    data_events: &[],
    cbor: false,
    json_version: JsonVersion::V1_1,
    error_namespace: None,
    query: None,
    rpc_v2_cbor: None,
    rest_json: &[],
};

/// The Glue subset, registered with the edge.
pub struct GlueService(pub Arc<Glue>);

impl Service for GlueService {
    fn info(&self) -> &'static ServiceInfo {
        &GLUE
    }

    /// As IAM names the catalog's resources:
    /// `arn:aws:glue:<region>:<account>:table/<database>/<table>`,
    /// `…:database/<database>`, or the catalog.
    fn resource(&self, _action: &str, request: &[u8], region: &str, account_id: &str) -> String {
        let base = format!("arn:aws:glue:{region}:{account_id}");
        let table = |name: String| {
            let database = string_member(request, "DatabaseName").unwrap_or_default();
            format!("{base}:table/{database}/{name}")
        };
        if let Some(database) = string_member(request, "DatabaseName") {
            return match string_member(request, "Name") {
                Some(name) => table(name),
                None => format!("{base}:database/{database}"),
            };
        }
        match string_member(request, "Name") {
            Some(name) => format!("{base}:database/{name}"),
            None => format!("{base}:catalog"),
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
            glue_error,
        )
    }
}
