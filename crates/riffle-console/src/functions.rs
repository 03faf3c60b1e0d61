//! `GET /api/functions`: the `[functions]` of the config file, read-only,
//! for the overview: each function's name, ARN, kind (a local command or a
//! URL), what it runs, and its instances running now.
//!
//! The server serves no Lambda ListFunctions (its Lambda API is the event
//! source mappings'), so the registry is read in-process; the read is
//! checked against the session key's policy and audited as
//! `lambda:ListFunctions` on `*`, the call a client would make
//! ([`riffle_server::DirectCalls::authorize`]).

use riffle_lambda::FunctionKind;
use riffle_server::services::lambda::LAMBDA;
use serde_json::json;

use crate::api::{Answer, Api, ApiError, Who};

pub(crate) async fn list(api: &Api, who: &Who<'_>) -> Result<Answer, ApiError> {
    api.config
        .calls
        .authorize(
            who.caller(),
            &LAMBDA,
            ("ListFunctions", "ListFunctions"),
            "*",
            b"{}",
        )
        .await?;
    let listed = api
        .config
        .functions
        .as_ref()
        .map(riffle_lambda::Functions::list)
        .unwrap_or_default();
    let functions: Vec<_> = listed
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "arn": f.arn,
                "kind": match f.kind {
                    FunctionKind::Command => "command",
                    FunctionKind::Url => "url",
                },
                "target": f.target,
                "instancesRunning": f.instances_running,
                "maxInstances": f.max_instances,
            })
        })
        .collect();
    Ok(Answer::json(&json!({ "functions": functions })))
}
