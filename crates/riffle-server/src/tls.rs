//! TLS on the listener, when `riffle serve` is given a certificate and key.
//!
//! AWS's endpoints speak only HTTPS; with a certificate Riffle does too, on
//! the same port, offering `h2` and `http/1.1` by ALPN so that HTTP/2
//! clients (SubscribeToShard in the Java, JavaScript and Rust SDKs) and
//! HTTP/1.1 clients are served as they are without TLS.
//!
//! Both files are PEM: the certificate file holds the server's certificate
//! first, then any intermediates; the key file holds one private key
//! (PKCS#8, PKCS#1 or SEC1).
//!
//! [`Tls::reload`] swaps in a new certificate (on SIGHUP, for rotation
//! without a restart): handshakes from then on use it, connections already
//! open keep theirs, and files that cannot be used leave the old one in
//! place.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The protocols offered by ALPN, preferred first.
const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A TLS configuration for the listener, read and checked at start-up.
/// Clones share it, so a reload through one is seen by all.
#[derive(Clone)]
pub struct Tls {
    /// Read once per handshake (an `Arc` clone), written on reload.
    config: Arc<RwLock<Arc<ServerConfig>>>,
}

/// Why the certificate or key cannot be used; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate (expected `-----BEGIN CERTIFICATE-----`)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no PEM private key (expected `-----BEGIN PRIVATE KEY-----` or an RSA/EC key)", path.display())]
    NoKey { path: PathBuf },
    #[error("{} is not valid PEM: {source:?}", path.display())]
    Pem {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("the certificate and key cannot be used together: {0}")]
    Unusable(#[source] rustls::Error),
}

/// Shows nothing of the key.
impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads a PEM certificate chain and private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Tls, TlsError> {
        Ok(Tls {
            config: Arc::new(RwLock::new(read_config(cert, key)?)),
        })
    }

    /// Reads the files again and, if they can be used, serves new
    /// handshakes with them; otherwise keeps the current certificate.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let config = read_config(cert, key)?;
        *self.config.write() = config;
        Ok(())
    }

    /// The configuration for the next handshake.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config.read())
    }
}

/// Reads and checks a PEM certificate chain and private key.
fn read_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: cert.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| match source {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: key.to_owned(),
        },
        source => TlsError::Pem {
            path: key.to_owned(),
            source,
        },
    })?;
    from_der(chain, key_der)
}

fn from_der(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    // The provider is named rather than taken from the process default,
    // which is ambiguous when a build links more than one.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Unusable)?
        .with_no_client_auth()
        // Checks that the key is the certificate's.
        .with_single_cert(chain, key)
        .map_err(TlsError::Unusable)?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair(name: &str) -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_certificate_and_its_key_offer_http2_and_http11() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pem_pair("localhost");
        let tls = Tls::from_pem_files(
            &write(dir.path(), "cert.pem", &cert),
            &write(dir.path(), "key.pem", &key),
        )
        .unwrap();
        assert_eq!(
            tls.current().alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn a_reload_swaps_the_certificate_only_when_the_new_files_work() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pem_pair("localhost");
        let cert_path = write(dir.path(), "cert.pem", &cert);
        let key_path = write(dir.path(), "key.pem", &key);
        let tls = Tls::from_pem_files(&cert_path, &key_path).unwrap();
        let shared = tls.clone();
        let before = tls.current();

        let (cert, key) = pem_pair("riffle.example");
        write(dir.path(), "cert.pem", &cert);
        write(dir.path(), "key.pem", &key);
        tls.reload(&cert_path, &key_path).unwrap();
        let after = shared.current();
        assert!(!Arc::ptr_eq(&before, &after), "clones see the reload");

        write(dir.path(), "key.pem", "not a key");
        assert!(tls.reload(&cert_path, &key_path).is_err());
        assert!(
            Arc::ptr_eq(&after, &shared.current()),
            "a bad reload keeps the current one"
        );
    }

    #[test]
    fn unusable_files_are_refused_with_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pem_pair("localhost");
        let (_, other_key) = pem_pair("localhost");
        let cert_path = write(dir.path(), "cert.pem", &cert);
        let key_path = write(dir.path(), "key.pem", &key);
        let missing = dir.path().join("absent.pem");

        let err = Tls::from_pem_files(&missing, &key_path).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err}");
        assert!(err.to_string().contains("absent.pem"), "{err}");

        // The two files swapped: neither holds what it should.
        let err = Tls::from_pem_files(&key_path, &cert_path).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        let err = Tls::from_pem_files(&cert_path, &cert_path).unwrap_err();
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");

        let other = write(dir.path(), "other-key.pem", &other_key);
        let err = Tls::from_pem_files(&cert_path, &other).unwrap_err();
        assert!(matches!(err, TlsError::Unusable(_)), "{err}");

        let torn = write(dir.path(), "torn.pem", &cert[..cert.len() / 2]);
        let err = Tls::from_pem_files(&torn, &key_path).unwrap_err();
        assert!(matches!(err, TlsError::Pem { .. }), "{err}");
    }
}
