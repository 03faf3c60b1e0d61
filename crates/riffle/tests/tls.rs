//! HTTPS through the AWS SDK for Rust: `riffle serve --tls-cert --tls-key`
//! serves the API over TLS (SubscribeToShard's event stream included), a
//! client that does not trust the certificate is refused by its own TLS
//! stack, plain HTTP to the port gets nowhere, SIGHUP rotates the
//! certificate, and the server keeps serving through all of it. Each test
//! makes its own CA and server certificate.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use common::{
    Riffle, config_for, create_active, eventually, first_event_from_trim_horizon,
    records_from_trim_horizon, register_active, serve_command, unique_name,
};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tempfile::TempDir;

/// A CA and a server certificate it signed, for `localhost` and
/// `127.0.0.1`, as PEM files.
struct Certificates {
    dir: TempDir,
    ca_pem: String,
}

impl Certificates {
    fn new() -> Certificates {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Riffle test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        // The chain a server sends: its certificate, then the issuer's.
        std::fs::write(
            dir.path().join("cert.pem"),
            format!("{}{}", server.pem(), ca.pem()),
        )
        .unwrap();
        std::fs::write(dir.path().join("key.pem"), server_key.serialize_pem()).unwrap();
        Certificates {
            dir,
            ca_pem: ca.pem(),
        }
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

fn https_server(certs: &Certificates, extra: &[&str]) -> Riffle {
    let (cert, key) = (certs.cert(), certs.key());
    let mut args = vec![
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Riffle::start_with_args(&args)
}

/// An SDK client whose TLS trusts only `ca_pem`.
fn client_trusting(endpoint: &str, ca_pem: &str) -> Client {
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(ca_pem.as_bytes());
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(trust)
                .build()
                .unwrap(),
        )
        .build_https();
    let config = config_for(endpoint).http_client(http).build();
    Client::from_conf(config)
}

#[tokio::test]
async fn records_and_event_streams_travel_over_https_with_signatures_verified() {
    let certs = Certificates::new();
    // With the harness's key pair verified too: the deployment a team runs.
    let riffle = https_server(
        &certs,
        &[
            "--access-key-id",
            "AKIDTEST",
            "--secret-access-key",
            "secret",
        ],
    );
    assert!(
        riffle.endpoint.starts_with("https://"),
        "{}",
        riffle.endpoint
    );
    let client = client_trusting(&riffle.endpoint, &certs.ca_pem);
    let stream = unique_name("tls");
    create_active(&client, &stream, 1).await;
    let put = client
        .put_record()
        .stream_name(&stream)
        .partition_key("k")
        .data(Blob::new("over tls"))
        .send()
        .await
        .unwrap();

    let records = records_from_trim_horizon(&client, &stream, "shardId-000000000000").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].data.as_ref(), b"over tls");

    let consumer = register_active(&client, &stream, "tls").await;
    let event = first_event_from_trim_horizon(&client, &consumer).await;
    assert_eq!(event.records[0].sequence_number, put.sequence_number);
}

#[tokio::test]
async fn untrusted_clients_and_plain_http_are_turned_away_while_the_server_serves() {
    let certs = Certificates::new();
    let riffle = https_server(&certs, &[]);

    // A client trusting another CA (of the same name): its TLS stack
    // refuses the server's certificate.
    let stranger = client_trusting(&riffle.endpoint, &Certificates::new().ca_pem);
    let err = stranger.list_streams().send().await.unwrap_err();
    let failure = format!("{:?}", aws_sdk_kinesis::error::DisplayErrorContext(&err));
    assert!(failure.contains("InvalidCertificate"), "{failure}");

    // Plain HTTP on the TLS port: the server closes without an HTTP answer.
    let mut socket = TcpStream::connect(riffle.addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket
        .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        .unwrap();
    let mut answer = Vec::new();
    let _ = socket.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    let trusted = client_trusting(&riffle.endpoint, &certs.ca_pem);
    let listed = trusted.list_streams().send().await.unwrap();
    assert!(listed.stream_names.is_empty());

    // An HTTP client is not served by an HTTPS server, and AWS's error shape
    // does not apply: the SDK sees a dispatch failure, not a service error.
    let http = common::client_for(&riffle.endpoint.replace("https://", "http://"));
    let err = http.list_streams().send().await.unwrap_err();
    assert!(err.as_service_error().is_none(), "{err:?}");

    let listed = trusted.list_streams().send().await.unwrap();
    assert!(listed.stream_names.is_empty());
}

#[tokio::test]
async fn sighup_rotates_the_certificate_but_never_to_files_that_cannot_be_used() {
    let first = Certificates::new();
    let riffle = https_server(&first, &[]);
    client_trusting(&riffle.endpoint, &first.ca_pem)
        .list_streams()
        .send()
        .await
        .expect("the first certificate serves");

    // New files at the same paths, from another CA; then SIGHUP.
    let second = Certificates::new();
    std::fs::copy(second.cert(), first.cert()).unwrap();
    std::fs::copy(second.key(), first.key()).unwrap();
    riffle.signal(libc::SIGHUP);
    eventually(
        Duration::from_secs(10),
        "the rotated certificate",
        || async {
            let fresh = client_trusting(&riffle.endpoint, &second.ca_pem);
            fresh.list_streams().send().await.ok()
        },
    )
    .await;
    let stale = client_trusting(&riffle.endpoint, &first.ca_pem);
    assert!(
        stale.list_streams().send().await.is_err(),
        "the old certificate is gone"
    );

    // A key that is not a key: the server says so and keeps the second one.
    std::fs::write(first.key(), "not a key").unwrap();
    riffle.signal(libc::SIGHUP);
    eventually(
        Duration::from_secs(10),
        "the refused reload logged",
        || async {
            riffle
                .log()
                .contains("the current certificate stays")
                .then_some(())
        },
    )
    .await;
    client_trusting(&riffle.endpoint, &second.ca_pem)
        .list_streams()
        .send()
        .await
        .expect("the second certificate still serves");
}

#[test]
fn a_certificate_that_cannot_be_used_stops_the_start_with_its_name() {
    let certs = Certificates::new();
    let data = tempfile::tempdir().unwrap();
    let other_key = certs.dir.path().join("other-key.pem");
    std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    let cases: [(&Path, &Path, &str); 2] = [
        (
            &certs.dir.path().join("absent.pem"),
            &certs.key(),
            "absent.pem",
        ),
        (&certs.cert(), &other_key, "cannot be used together"),
    ];
    for (cert, key, expected) in cases {
        let mut command = serve_command(
            data.path(),
            &[
                "--tls-cert",
                cert.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
        );
        command.stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        let status = wait_for_exit(&mut child);
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(!status.success(), "{stderr}");
        assert!(stderr.contains("cannot serve HTTPS"), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

/// The exit status of a server that must refuse to start; one that serves
/// instead is killed and fails the test.
fn wait_for_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("riffle serve started with an unusable certificate");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
