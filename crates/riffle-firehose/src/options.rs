//! Firehose's options, as `riffle serve` takes them (flag, environment
//! variable, config-file key, default and help, each declared once here;
//! see `riffle-config`): where delivered objects go.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http_client::{ClientError, DestinationClient, RESPONSE_TIMEOUT_DEFAULT};
use crate::remote::RemoteConfig;

/// The region an S3-compatible server is addressed in when none is given:
/// most such servers (SeaweedFS, MinIO) accept any and default to this one.
pub const S3_REGION_DEFAULT: &str = "us-east-1";

/// `riffle serve`'s options of the Firehose service.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct FirehoseOptions {
    /// Deliver to this S3-compatible server (path-style); absent: the embedded S3 under <data-dir>/s3/
    #[arg(long, env = "RIFFLE_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// The region requests to --s3-endpoint are signed for
    #[arg(
        long,
        env = "RIFFLE_S3_REGION",
        value_name = "REGION",
        default_value = S3_REGION_DEFAULT
    )]
    pub s3_region: String,
    /// The access key id of --s3-endpoint
    #[arg(long, env = "RIFFLE_S3_ACCESS_KEY_ID", value_name = "ID")]
    pub s3_access_key_id: Option<String>,
    /// The secret access key of --s3-endpoint (prefer the environment variable)
    #[arg(
        long,
        env = "RIFFLE_S3_SECRET_ACCESS_KEY",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub s3_secret_access_key: Option<String>,
    /// PEM file of CA certificates HTTP endpoint destinations are trusted by, beside the system's
    #[arg(long, env = "RIFFLE_FIREHOSE_DESTINATION_CA", value_name = "FILE")]
    pub firehose_destination_ca: Option<PathBuf>,
    /// Seconds an HTTP endpoint destination has to answer a request (AWS: 180)
    #[arg(
        long,
        env = "RIFFLE_FIREHOSE_DESTINATION_TIMEOUT_S",
        value_name = "SECONDS",
        default_value_t = RESPONSE_TIMEOUT_DEFAULT.as_secs()
    )]
    pub firehose_destination_timeout_s: u64,
    /// OpenSearch domains Firehose delivers to: DomainARN=URL pairs, comma-separated
    #[arg(
        long,
        env = "RIFFLE_FIREHOSE_OPENSEARCH_DOMAINS",
        value_name = "ARN=URL,…"
    )]
    pub firehose_opensearch_domains: Option<String>,
    /// Seconds between attempts of a failed Redshift COPY (AWS: 300)
    #[arg(
        long,
        env = "RIFFLE_FIREHOSE_REDSHIFT_RETRY_INTERVAL_S",
        value_name = "SECONDS"
    )]
    pub firehose_redshift_retry_interval_s: Option<u64>,
    /// Seconds Splunk has to acknowledge events, instead of each destination's HECAcknowledgmentTimeoutInSeconds (180-600)
    #[arg(
        long,
        env = "RIFFLE_FIREHOSE_SPLUNK_ACK_TIMEOUT_S",
        value_name = "SECONDS"
    )]
    pub firehose_splunk_ack_timeout_s: Option<u64>,
}

/// Options that do not fit together.
#[derive(Debug, thiserror::Error)]
pub enum FirehoseOptionsError {
    #[error(
        "`{given}` is set but `s3_endpoint` is not: credentials are only used for --s3-endpoint"
    )]
    KeyWithoutEndpoint { given: &'static str },
    #[error(
        "`{given}` is set but `{missing}` is not: give both, or neither to sign with an empty key"
    )]
    HalfKey {
        given: &'static str,
        missing: &'static str,
    },
    #[error("`firehose_destination_ca`: {0}")]
    DestinationCa(#[from] ClientError),
    #[error("`firehose_destination_timeout_s` must be at least 1")]
    ZeroTimeout,
    #[error("`firehose_opensearch_domains`: {0}")]
    Domains(String),
    #[error("`{0}` must be at least 1")]
    ZeroSeconds(&'static str),
}

impl FirehoseOptions {
    /// The OpenSearch DomainARNs and their URLs.
    pub fn opensearch_domains(
        &self,
    ) -> Result<std::collections::BTreeMap<String, String>, FirehoseOptionsError> {
        let text = self.firehose_opensearch_domains.as_deref().unwrap_or("");
        crate::opensearch::parse_domains(text).map_err(FirehoseOptionsError::Domains)
    }

    /// The destinations' retry timings, AWS's unless an option is given.
    pub fn timings(&self) -> Result<crate::DestinationTimings, FirehoseOptionsError> {
        let seconds = |value: Option<u64>, name| match value {
            Some(0) => Err(FirehoseOptionsError::ZeroSeconds(name)),
            other => Ok(other.map(Duration::from_secs)),
        };
        Ok(crate::DestinationTimings {
            redshift_retry_interval: seconds(
                self.firehose_redshift_retry_interval_s,
                "firehose_redshift_retry_interval_s",
            )?,
            splunk_ack_timeout: seconds(
                self.firehose_splunk_ack_timeout_s,
                "firehose_splunk_ack_timeout_s",
            )?,
        })
    }

    /// The client HTTP destinations are delivered with.
    pub fn destination_client(&self) -> Result<DestinationClient, FirehoseOptionsError> {
        if self.firehose_destination_timeout_s == 0 {
            return Err(FirehoseOptionsError::ZeroTimeout);
        }
        let timeout = Duration::from_secs(self.firehose_destination_timeout_s);
        Ok(DestinationClient::new(
            self.firehose_destination_ca.as_deref(),
            timeout,
        )?)
    }

    /// The remote server to deliver to, or `None` for the embedded S3.
    pub fn remote(&self) -> Result<Option<RemoteConfig>, FirehoseOptionsError> {
        let (id, secret) = (&self.s3_access_key_id, &self.s3_secret_access_key);
        let Some(endpoint) = &self.s3_endpoint else {
            return match (id, secret) {
                (Some(_), _) => Err(FirehoseOptionsError::KeyWithoutEndpoint {
                    given: "s3_access_key_id",
                }),
                (_, Some(_)) => Err(FirehoseOptionsError::KeyWithoutEndpoint {
                    given: "s3_secret_access_key",
                }),
                (None, None) => Ok(None),
            };
        };
        let (access_key_id, secret_access_key) = match (id, secret) {
            (Some(id), Some(secret)) => (id.clone(), secret.clone()),
            (None, None) => (String::new(), String::new()),
            (Some(_), None) => {
                return Err(FirehoseOptionsError::HalfKey {
                    given: "s3_access_key_id",
                    missing: "s3_secret_access_key",
                });
            }
            (None, Some(_)) => {
                return Err(FirehoseOptionsError::HalfKey {
                    given: "s3_secret_access_key",
                    missing: "s3_access_key_id",
                });
            }
        };
        Ok(Some(RemoteConfig {
            endpoint: endpoint.clone(),
            region: self.s3_region.clone(),
            access_key_id,
            secret_access_key,
            session_token: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(endpoint: Option<&str>, id: Option<&str>, secret: Option<&str>) -> FirehoseOptions {
        FirehoseOptions {
            s3_endpoint: endpoint.map(str::to_owned),
            s3_region: S3_REGION_DEFAULT.to_owned(),
            s3_access_key_id: id.map(str::to_owned),
            s3_secret_access_key: secret.map(str::to_owned),
            firehose_destination_ca: None,
            firehose_destination_timeout_s: RESPONSE_TIMEOUT_DEFAULT.as_secs(),
            firehose_opensearch_domains: None,
            firehose_redshift_retry_interval_s: None,
            firehose_splunk_ack_timeout_s: None,
        }
    }

    #[test]
    fn no_endpoint_means_the_embedded_s3_and_an_endpoint_its_key_pair() {
        assert!(options(None, None, None).remote().unwrap().is_none());
        let remote = options(Some("http://127.0.0.1:8333"), Some("id"), Some("secret"))
            .remote()
            .unwrap()
            .unwrap();
        assert_eq!(remote.endpoint, "http://127.0.0.1:8333");
        assert_eq!(remote.region, S3_REGION_DEFAULT);
        assert_eq!(
            (
                remote.access_key_id.as_str(),
                remote.secret_access_key.as_str()
            ),
            ("id", "secret")
        );
    }

    #[test]
    fn half_a_key_or_a_key_without_endpoint_is_refused() {
        assert!(
            options(Some("http://x"), Some("id"), None)
                .remote()
                .is_err()
        );
        assert!(options(Some("http://x"), None, Some("s")).remote().is_err());
        assert!(options(None, Some("id"), Some("s")).remote().is_err());
    }

    #[test]
    fn timings_are_awss_unless_given_and_zero_is_refused() {
        let mut o = options(None, None, None);
        assert_eq!(o.timings().unwrap(), crate::DestinationTimings::default());
        o.firehose_redshift_retry_interval_s = Some(2);
        assert_eq!(
            o.timings().unwrap().redshift_retry_interval,
            Some(Duration::from_secs(2))
        );
        o.firehose_splunk_ack_timeout_s = Some(0);
        assert!(matches!(
            o.timings(),
            Err(FirehoseOptionsError::ZeroSeconds(_))
        ));
    }

    #[tokio::test]
    async fn a_destination_ca_file_without_a_certificate_or_a_zero_timeout_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let mut o = options(None, None, None);
        assert!(o.destination_client().is_ok());
        o.firehose_destination_ca = Some(empty);
        assert!(matches!(
            o.destination_client(),
            Err(FirehoseOptionsError::DestinationCa(
                ClientError::NoCertificate { .. }
            ))
        ));
        o.firehose_destination_ca = Some(dir.path().join("missing.pem"));
        assert!(matches!(
            o.destination_client(),
            Err(FirehoseOptionsError::DestinationCa(
                ClientError::ReadCa { .. }
            ))
        ));
        o.firehose_destination_ca = None;
        o.firehose_destination_timeout_s = 0;
        assert!(matches!(
            o.destination_client(),
            Err(FirehoseOptionsError::ZeroTimeout)
        ));
    }
}
