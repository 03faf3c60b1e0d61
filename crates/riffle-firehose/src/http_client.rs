//! The HTTPS client Firehose delivers to HTTP destinations with: one per
//! server (connections are pooled and shared by every stream), trusting
//! the system's roots and, with `--firehose-destination-ca`, a CA of the
//! user's (a private endpoint's, or a test's).
//!
//! Every request is bounded by the response timeout (AWS: "HTTP endpoints
//! have 3 minutes to respond to a request") and its response body by
//! [`RESPONSE_BODY_MAX`]; redirects are never followed (hyper's client
//! does not), so a 3xx is a failed delivery, as AWS treats any non-200.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// AWS: "HTTP endpoints have 3 minutes to respond to a request before
/// Amazon Data Firehose times out that request" (HTTP endpoint delivery
/// request and response specifications).
pub const RESPONSE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(180);
/// The most of a response body read: the answer is a short JSON object,
/// and an endpoint answering more is not trusted to be a Firehose receiver.
pub const RESPONSE_BODY_MAX: usize = 1024 * 1024;

/// A shared client; cloning it shares its connection pool.
#[derive(Clone)]
pub struct DestinationClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for DestinationClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DestinationClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why the client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read the destination CA file {path}: {source}")]
    ReadCa {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the destination CA file {path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// Why a request got no usable response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the endpoint did not respond within {0:?}")]
    Timeout(Duration),
    #[error("could not reach the endpoint: {0}")]
    Unreachable(String),
    #[error("the response could not be read: {0}")]
    Body(String),
}

/// A response: its status and (bounded) body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl DestinationClient {
    /// A client trusting the system's roots and the certificates of
    /// `ca_file` (PEM), whose requests time out after `timeout`.
    pub fn new(
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<DestinationClient, ClientError> {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates are skipped: the CA file, or no
        // HTTPS destination at all, may be all a server needs.
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(path) = ca_file {
            let pem = std::fs::read(path).map_err(|source| ClientError::ReadCa {
                path: path.to_owned(),
                source,
            })?;
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                .filter_map(Result::ok)
                .collect();
            if certs.is_empty() {
                return Err(ClientError::NoCertificate {
                    path: path.to_owned(),
                });
            }
            roots.add_parsable_certificates(certs);
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        // Header names as the specification writes them
        // (`X-Amz-Firehose-Request-Id`): names are case-insensitive, but
        // receivers written against AWS may look them up as AWS sends them.
        let client = Client::builder(TokioExecutor::new())
            .http1_title_case_headers(true)
            .build(connector);
        Ok(DestinationClient { client, timeout })
    }

    /// The client of a service given none: the system's roots, AWS's timeout.
    pub fn system() -> DestinationClient {
        static SYSTEM: OnceLock<DestinationClient> = OnceLock::new();
        SYSTEM
            .get_or_init(|| {
                // Without a CA file nothing is read that could fail, and
                // the aws-lc-rs provider supports the safe default versions.
                DestinationClient::new(None, RESPONSE_TIMEOUT_DEFAULT)
                    .expect("a client with the system's roots")
            })
            .clone()
    }

    /// Sends `request` and reads its response, within the timeout.
    pub async fn send(&self, request: http::Request<Full<Bytes>>) -> Result<Response, SendError> {
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| SendError::Unreachable(error_chain(&e)))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), RESPONSE_BODY_MAX)
                .collect()
                .await
                .map_err(|e| SendError::Body(e.to_string()))?
                .to_bytes();
            Ok(Response { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(SendError::Timeout(self.timeout)))
    }
}

/// An error and its sources, `: `-separated (hyper's own says little).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
