//! In-process calls on behalf of a caller the server already knows (the web
//! console's): the same identity policy and resource policy check, audit
//! line and request metrics as a call on the API port, without HTTP
//! framing or a signature to verify.
//!
//! The caller proves its access key once (a login: [`DirectCalls::login`]
//! compares the secret with the server's keys) and then names that key on
//! each call. Calls are JSON ([`Codec::Json`]), answered as the service
//! answers them, and counted on `/metrics` under protocol `console`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use riffle_kinesis::Codec;
use tokio::sync::watch;

use crate::audit::{AuditLog, Call};
use crate::errors::{AwsError, Rejection, aws_error};
use crate::headers::RequestId;
use crate::policy::Policies;
use crate::requests::{ApiProtocol, Outcome, RequestMetrics};
use crate::service::{Reply, Service, ServiceInfo};
use crate::sigv4::Credentials;

/// What in-process calls share: the services and the edge's checks.
pub struct DirectCalls {
    services: Vec<Arc<dyn Service>>,
    /// `None`: the server accepts any credentials.
    credentials: Option<Credentials>,
    policies: Option<Policies>,
    audit: Option<AuditLog>,
    metrics: Arc<RequestMetrics>,
    /// Never turns true: in-process answers are whole bodies.
    stopping: watch::Receiver<bool>,
}

/// Who makes a call, as its audit line tells it.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The logged-in access key; `None` when the server verifies none.
    pub access_key_id: Option<&'a str>,
    pub peer: SocketAddr,
    pub user_agent: Option<&'a str>,
}

/// Why a call was not made or failed, in AWS's terms.
#[derive(Debug)]
pub enum DirectError {
    /// No registered service is named so.
    UnknownService(String),
    /// The service has no such operation.
    UnknownOperation { service: String, operation: String },
    /// The server verifies signatures and no (known) key was given.
    NotLoggedIn,
    /// The policy or the service refused it (`__type`, message, status).
    Aws(AwsError),
}

impl DirectCalls {
    pub fn new(
        services: Vec<Arc<dyn Service>>,
        credentials: Option<Credentials>,
        policies: Option<Policies>,
        audit: Option<AuditLog>,
        metrics: Arc<RequestMetrics>,
    ) -> DirectCalls {
        DirectCalls {
            services,
            credentials,
            policies,
            audit,
            metrics,
            stopping: watch::channel(false).1,
        }
    }

    /// Whether callers must log in with an access key.
    pub fn verifies(&self) -> bool {
        self.credentials.is_some()
    }

    /// Whether `secret` is the secret of access key `id`.
    pub fn login(&self, id: &str, secret: &str) -> bool {
        self.credentials
            .as_ref()
            .is_some_and(|c| c.secret_matches(id, secret))
    }

    /// The registered service whose signing name (`kinesis`, `firehose`)
    /// or target prefix is `name`.
    pub fn service(&self, name: &str) -> Option<&Arc<dyn Service>> {
        self.services.iter().find(|s| {
            let info = s.info();
            info.signing_name == name || info.target_prefix == name
        })
    }

    /// Every registered service's own metrics, in Prometheus's text format.
    pub fn write_metrics(&self, out: &mut String) {
        for service in &self.services {
            service.write_metrics(out);
        }
    }

    /// Calls `operation` of `service` with `input` (JSON) as `caller`:
    /// policies, then the service; audited and counted either way.
    pub async fn call(
        &self,
        caller: Caller<'_>,
        service: &str,
        operation: &str,
        input: Bytes,
    ) -> Result<Bytes, DirectError> {
        let found = self
            .service(service)
            .ok_or_else(|| DirectError::UnknownService(service.to_owned()))?;
        let info = found.info();
        let action = info
            .operation(operation)
            .ok_or_else(|| DirectError::UnknownOperation {
                service: service.to_owned(),
                operation: operation.to_owned(),
            })?;
        if self.verifies() && caller.access_key_id.is_none() {
            return Err(DirectError::NotLoggedIn);
        }
        let started = Instant::now();
        let answer = self.authorize_and_call(found, caller, action, &input).await;
        let error = answer.as_ref().err();
        let outcome = match error {
            None => Outcome::Success,
            Some(e) if e.status.is_server_error() => Outcome::ServerError,
            Some(_) => Outcome::ClientError,
        };
        self.metrics.record_protocol(info, ApiProtocol::Console);
        self.metrics
            .record(info, action, outcome, started.elapsed());
        self.audit(info, action, caller, &input, error, started)
            .await;
        answer.map_err(DirectError::Aws)
    }

    /// Checks and audits a call `caller` makes of a service that is not a
    /// registered [`Service`] (the embedded S3's reads): `action` of
    /// `info` (IAM's `iam_action`) on `resource`, `parameters` as its
    /// audit line shows them.
    pub async fn authorize(
        &self,
        caller: Caller<'_>,
        info: &'static ServiceInfo,
        (action, iam_action): (&'static str, &str),
        resource: &str,
        parameters: &[u8],
    ) -> Result<(), DirectError> {
        if self.verifies() && caller.access_key_id.is_none() {
            return Err(DirectError::NotLoggedIn);
        }
        let started = Instant::now();
        let refused = match (&self.policies, caller.access_key_id) {
            (Some(policies), Some(key)) if policies.governs(key) => {
                let qualified = format!("{}:{iam_action}", info.iam_prefix);
                policies
                    .authorize(key, &qualified, resource, None)
                    .err()
                    .map(|message| aws_error(&Rejection::AccessDenied(message)))
            }
            _ => None,
        };
        self.audit(info, action, caller, parameters, refused.as_ref(), started)
            .await;
        refused.map_or(Ok(()), |e| Err(DirectError::Aws(e)))
    }

    async fn authorize_and_call(
        &self,
        service: &Arc<dyn Service>,
        caller: Caller<'_>,
        action: &'static str,
        input: &Bytes,
    ) -> Result<Bytes, AwsError> {
        let info = service.info();
        if let Some(policies) = &self.policies
            && let Some(key) = caller.access_key_id
            && (policies.governs(key) || service.has_resource_policies())
        {
            let resource =
                service.resource(action, input, policies.region(), policies.account_id());
            let attached = service.resource_policy(&resource);
            let qualified = format!("{}:{action}", info.iam_prefix);
            if let Err(message) = policies.authorize(key, &qualified, &resource, attached) {
                return Err(aws_error(&Rejection::AccessDenied(message)));
            }
        }
        match service
            .call(action, input.clone(), Codec::Json, &self.stopping)
            .await?
        {
            Reply::Whole(body) => Ok(body),
            // Only SubscribeToShard streams; the console reads with GetRecords.
            Reply::Stream(..) => Err(aws_error(&Rejection::UnknownOperation)),
        }
    }

    async fn audit(
        &self,
        info: &'static ServiceInfo,
        action: &'static str,
        caller: Caller<'_>,
        input: &[u8],
        error: Option<&AwsError>,
        started: Instant,
    ) {
        let Some(log) = self.audit.as_ref().filter(|log| log.logs(info, action)) else {
            return;
        };
        let request_id = RequestId::new().to_string();
        let call = Call {
            service: info,
            action,
            request_id: &request_id,
            peer: caller.peer,
            access_key_id: caller.access_key_id,
            verified: self.verifies(),
            user_agent: caller.user_agent,
            parameters: Some(input),
            status: error.map_or(200, |e| e.status.as_u16()),
            error: error.map(|e| (e.code, e.message.as_deref())),
            latency_micros: started.elapsed().as_micros() as u64,
        };
        log.record(&call).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PolicyDocument;
    use crate::services::KinesisService;

    const KEY: &str = "AKIDDIRECTTEST";

    fn calls(dir: &std::path::Path, policy: &str) -> DirectCalls {
        let store =
            Arc::new(riffle_log::LogStore::open(dir, riffle_log::StoreConfig::default()).unwrap());
        let kinesis =
            riffle_kinesis::Kinesis::open(store, riffle_kinesis::KinesisConfig::default()).unwrap();
        let service: Arc<dyn Service> = Arc::new(KinesisService(kinesis));
        let metrics = Arc::new(RequestMetrics::new(&[service.info()]));
        let credentials = Credentials::new("us-east-1", [(KEY.to_owned(), "s3cret".to_owned())]);
        let policies = Policies::new(
            "us-east-1",
            "000000000000",
            [(KEY.to_owned(), PolicyDocument::parse(policy).unwrap())],
        );
        DirectCalls::new(
            vec![service],
            Some(credentials),
            Some(policies),
            None,
            metrics,
        )
    }

    fn caller(key: Option<&str>) -> Caller<'_> {
        Caller {
            access_key_id: key,
            peer: "127.0.0.1:1".parse().unwrap(),
            user_agent: None,
        }
    }

    #[tokio::test]
    async fn calls_run_as_the_key_under_its_policy() {
        let dir = tempfile::tempdir().unwrap();
        let policy = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"kinesis:*","Resource":"*"},
            {"Effect":"Deny","Action":"kinesis:DeleteStream","Resource":"*"}]}"#;
        let calls = calls(dir.path(), policy);
        assert!(calls.login(KEY, "s3cret"));
        assert!(!calls.login(KEY, "s3cre"));
        assert!(!calls.login("AKIDOTHER", "s3cret"));

        let input = Bytes::from_static(br#"{"StreamName":"s","ShardCount":1}"#);
        calls
            .call(caller(Some(KEY)), "kinesis", "CreateStream", input)
            .await
            .unwrap();
        let delete = Bytes::from_static(br#"{"StreamName":"s"}"#);
        match calls
            .call(caller(Some(KEY)), "kinesis", "DeleteStream", delete.clone())
            .await
        {
            Err(DirectError::Aws(e)) => {
                assert_eq!(e.code, "AccessDeniedException");
                assert!(
                    e.message.unwrap().ends_with(
                        "kinesis:DeleteStream on resource: arn:aws:kinesis:us-east-1:000000000000:stream/s with an explicit deny in an identity-based policy"
                    )
                );
            }
            other => panic!("expected AccessDeniedException, got {other:?}"),
        }
        assert!(matches!(
            calls
                .call(caller(None), "kinesis", "DeleteStream", delete)
                .await,
            Err(DirectError::NotLoggedIn)
        ));
        assert!(matches!(
            calls
                .call(caller(Some(KEY)), "kinesis", "Nope", Bytes::new())
                .await,
            Err(DirectError::UnknownOperation { .. })
        ));
        assert!(matches!(
            calls
                .call(caller(Some(KEY)), "sqs", "ListQueues", Bytes::new())
                .await,
            Err(DirectError::UnknownService(_))
        ));
    }
}
