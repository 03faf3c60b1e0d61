//! SigV4 verification through the AWS SDK for Rust: with credentials given
//! to `riffle serve`, the SDK's signed requests pass — SubscribeToShard's
//! event stream included — and a wrong secret or a clock more than five
//! minutes off gets AWS's InvalidSignatureException.

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::config::Credentials;
use aws_sdk_kinesis::primitives::Blob;
use aws_smithy_async::time::TimeSource;
use common::{
    Riffle, config_for, create_active, error_of, first_event_from_trim_horizon, register_active,
    unique_name,
};

/// The pair the harness's clients sign with (`common::client_for`).
const KEY_ID: &str = "AKIDTEST";
const SECRET: &str = "secret";

fn verifying_server() -> Riffle {
    Riffle::start_with_args(&["--access-key-id", KEY_ID, "--secret-access-key", SECRET])
}

/// A clock `behind` the real one.
#[derive(Debug)]
struct Behind(Duration);

impl TimeSource for Behind {
    fn now(&self) -> SystemTime {
        SystemTime::now() - self.0
    }
}

fn client_with(endpoint: &str, secret: &str, behind: Duration) -> Client {
    let config = config_for(endpoint)
        .credentials_provider(Credentials::new(KEY_ID, secret, None, None, "riffle-tests"))
        .time_source(Behind(behind))
        .build();
    Client::from_conf(config)
}

#[tokio::test]
async fn signed_requests_and_event_streams_pass_verification() {
    let riffle = verifying_server();
    let client = riffle.client();
    let stream = unique_name("signed");
    create_active(&client, &stream, 1).await;
    let consumer = register_active(&client, &stream, "signed").await;
    let put = client
        .put_record()
        .stream_name(&stream)
        .partition_key("k")
        .data(Blob::new("signed"))
        .send()
        .await
        .unwrap();
    let event = first_event_from_trim_horizon(&client, &consumer).await;
    assert_eq!(event.records[0].sequence_number, put.sequence_number);
    assert_eq!(event.records[0].data.as_ref(), b"signed");
}

#[tokio::test]
async fn a_wrong_secret_or_a_skewed_clock_is_an_invalid_signature() {
    let riffle = verifying_server();
    let wrong = client_with(&riffle.endpoint, "not the secret", Duration::ZERO);
    let err = wrong.list_streams().send().await.unwrap_err();
    let (code, message) = error_of(&err);
    assert_eq!(code, "InvalidSignatureException");
    assert!(
        message.starts_with("The request signature we calculated does not match"),
        "{message}"
    );

    // Four minutes behind is within AWS's five; ten is not.
    let close = client_with(&riffle.endpoint, SECRET, Duration::from_secs(240));
    close
        .list_streams()
        .send()
        .await
        .expect("within the allowed skew");
    let late = client_with(&riffle.endpoint, SECRET, Duration::from_secs(600));
    let err = late.list_streams().send().await.unwrap_err();
    let (code, message) = error_of(&err);
    assert_eq!(code, "InvalidSignatureException");
    assert!(message.starts_with("Signature expired: "), "{message}");
    assert!(message.ends_with(" - 5 min.)"), "{message}");
}
