//! Requests no SDK would send, over raw HTTP/1.1: each gets the answer AWS
//! gives it (status, `__type`, message) and the server keeps serving.

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;

use common::{Riffle, SIGNED, post, post_action, unique_name};
use serde_json::{Value, json};

fn shared() -> &'static Riffle {
    static SERVER: OnceLock<Riffle> = OnceLock::new();
    SERVER.get_or_init(Riffle::start)
}

/// The message of an AWS JSON error, under the one member name AWS uses for
/// its exception: `Message` (capital M) for SerializationException,
/// `message` for the others met here. The other spelling must be absent.
fn message_of(body: &Value) -> Option<&str> {
    let (member, other) = if body["__type"] == "SerializationException" {
        ("Message", "message")
    } else {
        ("message", "Message")
    };
    assert!(body.get(other).is_none(), "{body}");
    body.get(member).and_then(Value::as_str)
}

/// After any bad request the server must still answer a good one.
fn assert_still_serving(addr: SocketAddr) {
    let response = post_action(addr, "ListStreams", b"{}");
    assert_eq!(
        response.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(response.json().get("StreamNames").is_some());
}

/// A stream for requests that need one to get past "not found".
fn stream(addr: SocketAddr) -> String {
    let name = unique_name("bad-input");
    let body = json!({"StreamName": name, "ShardCount": 1}).to_string();
    let created = post_action(addr, "CreateStream", body.as_bytes());
    assert_eq!(
        created.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&created.body)
    );
    name
}

#[test]
fn malformed_json_is_a_serialization_exception() {
    let addr = shared().addr;
    for body in [
        &b"{\"StreamName\": "[..],
        b"not json",
        b"[1, 2]",
        b"{\"a\":1}}",
    ] {
        let response = post_action(addr, "DescribeStream", body);
        assert_eq!(response.status, 400, "{body:?}");
        assert_eq!(
            response.header("content-type"),
            Some("application/x-amz-json-1.1")
        );
        assert_eq!(
            response.json()["__type"],
            "SerializationException",
            "{body:?}"
        );
    }
    assert_still_serving(addr);
}

#[test]
fn a_member_of_the_wrong_type_is_a_serialization_exception_in_aws_words() {
    let addr = shared().addr;
    // AWS's JSON front end is Java: its messages name Java classes.
    let cases = [
        (
            json!({"StreamName": "s", "ShardCount": "one"}),
            "class java.lang.String can not be converted to an Integer",
        ),
        (
            json!({"StreamName": "s", "ShardCount": true}),
            "class java.lang.Boolean can not be converted to an Integer",
        ),
        (
            json!({"StreamName": ["s"], "ShardCount": 1}),
            "Start of list found where not expected",
        ),
        (
            json!({"StreamName": {"s": 1}, "ShardCount": 1}),
            "Start of structure or map found where not expected.",
        ),
    ];
    for (body, expected) in cases {
        let response = post_action(addr, "CreateStream", body.to_string().as_bytes());
        assert_eq!(response.status, 400, "{body}");
        let error = response.json();
        assert_eq!(error["__type"], "SerializationException", "{body}: {error}");
        assert_eq!(message_of(&error), Some(expected), "{body}");
    }
    // A number where a string belongs: the class name varies with the
    // number, the sentence does not.
    let body = json!({"StreamName": 5, "ShardCount": 1}).to_string();
    let response = post_action(addr, "CreateStream", body.as_bytes());
    let error = response.json();
    assert_eq!(error["__type"], "SerializationException");
    let message = message_of(&error).unwrap_or_default();
    assert!(
        message.ends_with(" can not be converted to an String"),
        "{message}"
    );
    assert_still_serving(addr);
}

#[test]
fn an_oversized_body_is_refused_with_413_before_it_is_buffered() {
    let addr = shared().addr;
    let name = stream(addr);
    // 20 MB of base64 data in an otherwise valid PutRecord.
    let mut body = format!(r#"{{"StreamName":"{name}","PartitionKey":"k","Data":""#).into_bytes();
    body.resize(body.len() + 20_000_000, b'A');
    body.extend_from_slice(b"\"}");
    let response = post_action(addr, "PutRecord", &body);
    // AWS answers a body over its size limit with 413 and no body at all.
    assert_eq!(response.status, 413);
    assert!(
        response.body.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&response.body)
    );
    assert_still_serving(addr);
}

#[test]
fn an_empty_body_is_a_serialization_exception() {
    let addr = shared().addr;
    let response = post_action(addr, "ListStreams", b"");
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["__type"], "SerializationException");
    assert_still_serving(addr);
}

#[test]
fn an_unknown_target_is_an_unknown_operation_exception() {
    let addr = shared().addr;
    for target in [
        "Kinesis_20131202.NoSuchAction",
        "DynamoDBStreams_20120810.ListStreams",
        "Kinesis_20131202",
        "",
    ] {
        let mut headers = vec![
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", target),
        ];
        headers.extend(SIGNED);
        let response = post(addr, &headers, b"{}");
        assert_eq!(response.status, 400, "{target:?}");
        assert_eq!(
            response.json()["__type"],
            "UnknownOperationException",
            "{target:?}"
        );
    }
    // And with no X-Amz-Target at all.
    let mut headers = vec![("Content-Type", "application/x-amz-json-1.1")];
    headers.extend(SIGNED);
    let response = post(addr, &headers, b"{}");
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["__type"], "UnknownOperationException");
    assert_still_serving(addr);
}

#[test]
fn a_missing_or_foreign_content_type_gets_the_answers_aws_gives() {
    let addr = shared().addr;
    // A Kinesis target but no Content-Type: AWS answers 404 with an XML
    // UnknownOperationException.
    let mut headers = vec![("X-Amz-Target", "Kinesis_20131202.ListStreams")];
    headers.extend(SIGNED);
    let response = post(addr, &headers, b"{}");
    assert_eq!(response.status, 404);
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        "<UnknownOperationException/>\n"
    );

    // Neither Content-Type nor target: AWS cannot tell what is asked: 403.
    let response = post(addr, &SIGNED, b"{}");
    assert_eq!(response.status, 403);
    let body = String::from_utf8_lossy(&response.body).into_owned();
    assert!(body.starts_with("<AccessDeniedException>"), "{body}");
    assert!(
        body.contains("Unable to determine service/operation name to be authorized"),
        "{body}"
    );
    assert_still_serving(addr);
}

#[test]
fn the_legacy_json_content_type_gets_the_coral_envelope_without_null_members() {
    let addr = shared().addr;
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("X-Amz-Target", "Kinesis_20131202.ListStreams"),
    ];
    headers.extend(SIGNED);
    // AWS answers 200 and never runs the action; the envelope holds only
    // the code, no `"message":null` / `"Message":null`.
    for (body, code) in [
        (&b"{}"[..], "UnknownOperationException"),
        (b"hello", "SerializationException"),
    ] {
        let response = post(addr, &headers, body);
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(
            String::from_utf8_lossy(&response.body),
            format!(
                r#"{{"Output":{{"__type":"com.amazon.coral.service#{code}"}},"Version":"1.0"}}"#
            )
        );
    }
    assert_still_serving(addr);
}

#[test]
fn a_tag_map_of_the_wrong_type_is_a_serialization_exception_under_message() {
    let addr = shared().addr;
    let name = stream(addr);
    let body = json!({"StreamName": name, "Tags": "x"}).to_string();
    let response = post_action(addr, "AddTagsToStream", body.as_bytes());
    assert_eq!(response.status, 400);
    // Byte for byte what AWS sends: the member is `Message`.
    assert_eq!(
        String::from_utf8_lossy(&response.body),
        r#"{"__type":"SerializationException","Message":"Expected map or null"}"#
    );
    assert_still_serving(addr);
}

#[test]
fn an_unsigned_request_is_missing_its_authentication_token() {
    let addr = shared().addr;
    let headers = [
        ("Content-Type", "application/x-amz-json-1.1"),
        ("X-Amz-Target", "Kinesis_20131202.ListStreams"),
    ];
    let response = post(addr, &headers, b"{}");
    assert_eq!(response.status, 400);
    let error = response.json();
    assert_eq!(error["__type"], "MissingAuthenticationTokenException");
    assert_eq!(message_of(&error), Some("Missing Authentication Token"));
    assert_still_serving(addr);
}

#[test]
fn a_300_byte_partition_key_is_a_validation_exception() {
    let addr = shared().addr;
    let name = stream(addr);
    let key = "p".repeat(300);
    let body = json!({"StreamName": name, "PartitionKey": key, "Data": "AAAA"}).to_string();
    let response = post_action(addr, "PutRecord", body.as_bytes());
    assert_eq!(response.status, 400);
    let error = response.json();
    assert_eq!(error["__type"], "ValidationException");
    assert_eq!(
        message_of(&error),
        Some(
            format!(
                "1 validation error detected: Value '{key}' at 'partitionKey' failed to satisfy \
                 constraint: Member must have length less than or equal to 256"
            )
            .as_str()
        )
    );
    assert_still_serving(addr);
}

#[test]
fn invalid_base64_data_is_a_serialization_exception() {
    let addr = shared().addr;
    let name = stream(addr);
    let cases = [
        (
            "abc",
            "'abc' can not be converted to a Blob: Base64 encoded length is expected a multiple \
             of 4 bytes but found: 3",
        ),
        (
            "a!bc",
            "'a!bc' can not be converted to a Blob: Invalid Base64 character: '!'",
        ),
    ];
    for (data, expected) in cases {
        let body = json!({"StreamName": name, "PartitionKey": "k", "Data": data}).to_string();
        let response = post_action(addr, "PutRecord", body.as_bytes());
        assert_eq!(response.status, 400, "{data}");
        let error = response.json();
        assert_eq!(error["__type"], "SerializationException", "{data}: {error}");
        assert_eq!(message_of(&error), Some(expected), "{data}");
    }
    let records = json!({"StreamName": name, "Records": [
        {"PartitionKey": "k", "Data": "AAAA"},
        {"PartitionKey": "k", "Data": "A"},
    ]});
    let response = post_action(addr, "PutRecords", records.to_string().as_bytes());
    assert_eq!(response.status, 400);
    assert_eq!(response.json()["__type"], "SerializationException");
    assert_still_serving(addr);
}

#[test]
fn many_bad_requests_in_a_row_do_not_disturb_good_ones() {
    let addr = shared().addr;
    let name = stream(addr);
    for i in 0..50 {
        let bad = post_action(
            addr,
            "PutRecord",
            format!("{{\"StreamName\": {i}").as_bytes(),
        );
        assert_eq!(bad.status, 400);
    }
    let body = json!({"StreamName": name, "PartitionKey": "k", "Data": "aGVsbG8="}).to_string();
    let mut ok = post_action(addr, "PutRecord", body.as_bytes());
    // The stream may still be CREATING for a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ok.status != 200 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
        ok = post_action(addr, "PutRecord", body.as_bytes());
    }
    assert_eq!(ok.status, 200, "{:?}", String::from_utf8_lossy(&ok.body));
    assert_eq!(ok.json()["ShardId"], "shardId-000000000000");
}
