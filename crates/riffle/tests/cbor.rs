//! The CBOR protocol of the AWS SDK for Java v2 (and so of the KCL and the
//! KPL), over raw HTTP: requests are written byte by byte the way the SDK's
//! Jackson `CBORGenerator` writes them, and the CBOR answers are decoded.
//!
//! What the SDK sends (aws-sdk-java-v2 `core/protocols/aws-cbor-protocol`:
//! `AwsCborProtocolFactory`, `SdkCborGenerator`): `Content-Type:
//! application/x-amz-cbor-1.1`, `X-Amz-Target: Kinesis_20131202.<Action>`,
//! a SigV4 `Authorization` and `X-Amz-Date`; the body is a map of
//! indefinite length (`0xBF … 0xFF`), lists are arrays of indefinite length
//! (`0x9F … 0xFF`), blobs byte strings, and timestamps tag 1 followed by
//! the epoch time in milliseconds. It expects the same conventions back.

mod common;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ciborium::Value;
use common::{Riffle, SIGNED, post, unique_name};

const CBOR: &str = "application/x-amz-cbor-1.1";
/// How long a new stream may take to become ACTIVE (status delay 0).
const ACTIVE_TIME_MAX: Duration = Duration::from_secs(10);

fn shared() -> &'static Riffle {
    static SERVER: OnceLock<Riffle> = OnceLock::new();
    SERVER.get_or_init(Riffle::start)
}

/// A value as the Java SDK writes it.
enum J<'a> {
    Str(&'a str),
    Int(i64),
    Bytes(&'a [u8]),
    /// A timestamp: tag 1 + epoch milliseconds.
    Time(i64),
    List(Vec<J<'a>>),
    Map(Vec<(&'a str, J<'a>)>),
}

/// Writes a CBOR head: major type and argument in the shortest form.
fn head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let major = major << 5;
    match arg {
        0..=23 => out.push(major | arg as u8),
        24..=0xFF => out.extend_from_slice(&[major | 24, arg as u8]),
        0x100..=0xFFFF => {
            out.push(major | 25);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xFFFF_FFFF => {
            out.push(major | 26);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

fn write(out: &mut Vec<u8>, value: &J) {
    match value {
        J::Str(s) => {
            head(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        J::Int(i) if *i >= 0 => head(out, 0, *i as u64),
        J::Int(i) => head(out, 1, (-1 - *i) as u64),
        J::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        J::Time(ms) => {
            head(out, 6, 1);
            write(out, &J::Int(*ms));
        }
        J::List(items) => {
            out.push(0x9F);
            items.iter().for_each(|item| write(out, item));
            out.push(0xFF);
        }
        J::Map(members) => {
            out.push(0xBF);
            for (name, member) in members {
                write(out, &J::Str(name));
                write(out, member);
            }
            out.push(0xFF);
        }
    }
}

/// A decoded CBOR response.
struct Answer {
    status: u16,
    body: Value,
}

impl Answer {
    fn get(&self, name: &str) -> &Value {
        member(&self.body, name)
    }

    fn error_type(&self) -> &str {
        self.get("__type").as_text().unwrap_or_default()
    }
}

fn member<'a>(map: &'a Value, name: &str) -> &'a Value {
    map.as_map()
        .unwrap_or_else(|| panic!("not a map: {map:?}"))
        .iter()
        .find(|(k, _)| k.as_text() == Some(name))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in {map:?}"))
}

fn text<'a>(map: &'a Value, name: &str) -> &'a str {
    member(map, name)
        .as_text()
        .unwrap_or_else(|| panic!("{name} is not text in {map:?}"))
}

/// Sends `request` as the Java SDK would and decodes the CBOR answer.
fn call(addr: SocketAddr, action: &str, request: J) -> Answer {
    let mut body = Vec::new();
    write(&mut body, &request);
    call_raw(addr, action, &body)
}

fn call_raw(addr: SocketAddr, action: &str, body: &[u8]) -> Answer {
    let target = format!("Kinesis_20131202.{action}");
    let mut headers = vec![("Content-Type", CBOR), ("X-Amz-Target", target.as_str())];
    headers.extend(SIGNED);
    let response = post(addr, &headers, body);
    assert_eq!(response.header("content-type"), Some(CBOR), "{action}");
    // Actions with an empty output shape (CreateStream, …) answer no body.
    if response.body.is_empty() {
        return Answer {
            status: response.status,
            body: Value::Map(Vec::new()),
        };
    }
    let body = ciborium::from_reader(&response.body[..]).unwrap_or_else(|e| {
        panic!(
            "{action}: the answer is not CBOR ({e}): {:?}",
            response.body
        )
    });
    Answer {
        status: response.status,
        body,
    }
}

fn ok(answer: Answer, action: &str) -> Answer {
    assert_eq!(answer.status, 200, "{action}: {:?}", answer.body);
    answer
}

/// A timestamp as the SDK reads it back: tag 1 + epoch milliseconds.
fn millis(value: &Value) -> i64 {
    match value {
        Value::Tag(1, inner) => match **inner {
            Value::Integer(i) => i64::try_from(i).expect("millis fit an i64"),
            ref other => panic!("tag 1 holds {other:?}, not integer millis"),
        },
        other => panic!("not a tag-1 timestamp: {other:?}"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_millis() as i64
}

fn create_active(addr: SocketAddr, name: &str, shards: i64) {
    let request = J::Map(vec![
        ("StreamName", J::Str(name)),
        ("ShardCount", J::Int(shards)),
    ]);
    ok(call(addr, "CreateStream", request), "CreateStream");
    let deadline = Instant::now() + ACTIVE_TIME_MAX;
    loop {
        let summary = ok(
            call(
                addr,
                "DescribeStreamSummary",
                J::Map(vec![("StreamName", J::Str(name))]),
            ),
            "DescribeStreamSummary",
        );
        let summary = summary.get("StreamDescriptionSummary");
        if text(summary, "StreamStatus") == "ACTIVE" {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never became ACTIVE");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn stream_lifecycle_in_cbor_carries_tag_1_millisecond_timestamps() {
    let addr = shared().addr;
    let name = unique_name("cbor-life");
    let before = now_ms();
    create_active(addr, &name, 2);

    let summary = ok(
        call(
            addr,
            "DescribeStreamSummary",
            J::Map(vec![("StreamName", J::Str(&name))]),
        ),
        "DescribeStreamSummary",
    );
    let summary = summary.get("StreamDescriptionSummary");
    assert_eq!(member(summary, "OpenShardCount"), &Value::Integer(2.into()));
    let created = millis(member(summary, "StreamCreationTimestamp"));
    assert!(
        (before - 1000..=now_ms() + 1000).contains(&created),
        "creation time {created} is not epoch millis near {before}"
    );

    let listed = ok(call(addr, "ListStreams", J::Map(vec![])), "ListStreams");
    let names = listed.get("StreamNames").as_array().expect("a list");
    assert!(names.iter().any(|n| n.as_text() == Some(name.as_str())));
    let summaries = listed.get("StreamSummaries").as_array().expect("a list");
    let ours = summaries
        .iter()
        .find(|s| text(s, "StreamName") == name)
        .expect("our stream is summarized");
    assert_eq!(millis(member(ours, "StreamCreationTimestamp")), created);

    let shards = ok(
        call(
            addr,
            "ListShards",
            J::Map(vec![("StreamName", J::Str(&name))]),
        ),
        "ListShards",
    );
    assert_eq!(shards.get("Shards").as_array().map(Vec::len), Some(2));

    ok(
        call(
            addr,
            "DeleteStream",
            J::Map(vec![("StreamName", J::Str(&name))]),
        ),
        "DeleteStream",
    );
    let deadline = Instant::now() + ACTIVE_TIME_MAX;
    loop {
        let answer = call(
            addr,
            "DescribeStreamSummary",
            J::Map(vec![("StreamName", J::Str(&name))]),
        );
        if answer.status == 400 {
            assert_eq!(answer.error_type(), "ResourceNotFoundException");
            break;
        }
        assert!(Instant::now() < deadline, "{name} was never deleted");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn shard_iterator(addr: SocketAddr, name: &str, shard: &str, request: Vec<(&str, J)>) -> String {
    let mut members = vec![("StreamName", J::Str(name)), ("ShardId", J::Str(shard))];
    members.extend(request);
    let answer = ok(
        call(addr, "GetShardIterator", J::Map(members)),
        "GetShardIterator",
    );
    text(&answer.body, "ShardIterator").to_owned()
}

#[test]
fn records_put_in_cbor_come_back_as_byte_strings_in_order() {
    let addr = shared().addr;
    let name = unique_name("cbor-records");
    create_active(addr, &name, 1);
    let binary: Vec<u8> = (0..=255).collect();
    let put = ok(
        call(
            addr,
            "PutRecord",
            J::Map(vec![
                ("StreamName", J::Str(&name)),
                ("Data", J::Bytes(&binary)),
                ("PartitionKey", J::Str("pk")),
            ]),
        ),
        "PutRecord",
    );
    let shard = text(&put.body, "ShardId").to_owned();
    let first_seq = text(&put.body, "SequenceNumber").to_owned();

    let entries = (0..3)
        .map(|i| {
            J::Map(vec![
                ("Data", J::Bytes([b"a", b"b", b"c"][i])),
                ("PartitionKey", J::Str("pk")),
            ])
        })
        .collect();
    let puts = ok(
        call(
            addr,
            "PutRecords",
            J::Map(vec![
                ("StreamName", J::Str(&name)),
                ("Records", J::List(entries)),
            ]),
        ),
        "PutRecords",
    );
    assert_eq!(puts.get("FailedRecordCount"), &Value::Integer(0.into()));
    assert_eq!(puts.get("Records").as_array().map(Vec::len), Some(3));

    let iterator = shard_iterator(
        addr,
        &name,
        &shard,
        vec![("ShardIteratorType", J::Str("TRIM_HORIZON"))],
    );
    let got = ok(
        call(
            addr,
            "GetRecords",
            J::Map(vec![("ShardIterator", J::Str(&iterator))]),
        ),
        "GetRecords",
    );
    let records = got.get("Records").as_array().expect("a list");
    let data: Vec<&[u8]> = records
        .iter()
        .map(|r| match member(r, "Data") {
            Value::Bytes(bytes) => &bytes[..],
            other => panic!("Data is not a byte string: {other:?}"),
        })
        .collect();
    assert_eq!(data, [&binary[..], b"a", b"b", b"c"]);
    assert_eq!(text(&records[0], "SequenceNumber"), first_seq);
    let arrival = millis(member(&records[0], "ApproximateArrivalTimestamp"));
    assert!((now_ms() - 60_000..=now_ms() + 1000).contains(&arrival));
    assert!(matches!(got.get("MillisBehindLatest"), Value::Integer(_)));

    // AT_TIMESTAMP with the SDK's tag-1 millis: a future time is refused
    // with the very millisecond it was given, and one just before the
    // first arrival finds every record.
    let future = now_ms() + 60_000;
    let mut request = vec![
        ("StreamName", J::Str(&name)),
        ("ShardId", J::Str(&shard)),
        ("ShardIteratorType", J::Str("AT_TIMESTAMP")),
    ];
    request.push(("Timestamp", J::Time(future)));
    let refused = call(addr, "GetShardIterator", J::Map(request));
    assert_eq!(refused.error_type(), "InvalidArgumentException");
    let message = text(&refused.body, "message");
    assert!(
        message.contains(&format!("timestampInMillis: {future},")),
        "{message}"
    );
    let earlier = shard_iterator(
        addr,
        &name,
        &shard,
        vec![
            ("ShardIteratorType", J::Str("AT_TIMESTAMP")),
            ("Timestamp", J::Time(arrival - 1)),
        ],
    );
    let all = ok(
        call(
            addr,
            "GetRecords",
            J::Map(vec![("ShardIterator", J::Str(&earlier))]),
        ),
        "GetRecords",
    );
    assert_eq!(all.get("Records").as_array().map(Vec::len), Some(4));
}

#[test]
fn errors_come_back_as_cbor_maps_with_type_and_message() {
    let addr = shared().addr;
    let missing = call(
        addr,
        "DescribeStreamSummary",
        J::Map(vec![("StreamName", J::Str("cbor-no-such-stream"))]),
    );
    assert_eq!(missing.status, 400);
    assert_eq!(missing.error_type(), "ResourceNotFoundException");
    assert!(
        text(&missing.body, "message").contains("cbor-no-such-stream"),
        "{:?}",
        missing.body
    );

    let invalid = call(
        addr,
        "CreateStream",
        J::Map(vec![("StreamName", J::Str("bad name!"))]),
    );
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.error_type(), "ValidationException");

    // A member of the wrong type: AWS's text, under `Message` (capital M)
    // as AWS writes SerializationException, in CBOR as in JSON.
    let wrong_type = call(
        addr,
        "CreateStream",
        J::Map(vec![
            ("StreamName", J::Str("s")),
            ("ShardCount", J::Str("one")),
        ]),
    );
    assert_eq!(wrong_type.status, 400);
    assert_eq!(wrong_type.error_type(), "SerializationException");
    assert_eq!(
        text(&wrong_type.body, "Message"),
        "class java.lang.String can not be converted to an Integer"
    );
    let keys: Vec<_> = wrong_type
        .body
        .as_map()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.as_text())
        .collect();
    assert_eq!(keys, ["__type", "Message"]);

    for body in [&b"\xBF\x6AStreamN"[..], b"{\"StreamName\":\"x\"}"] {
        let malformed = call_raw(addr, "DescribeStreamSummary", body);
        assert_eq!(malformed.status, 400);
        assert_eq!(malformed.error_type(), "SerializationException");
    }
    // The server keeps serving CBOR after the bad ones.
    ok(call(addr, "ListStreams", J::Map(vec![])), "ListStreams");
}

/// Reads SubscribeToShard's HTTP/1.1 chunked event stream message by
/// message (event-stream layout: total length, headers length, prelude
/// CRC, headers, payload, message CRC).
struct EventReader {
    stream: std::net::TcpStream,
    /// Bytes received and not yet parsed (past the HTTP head).
    raw: Vec<u8>,
    /// De-chunked event-stream bytes not yet parsed.
    events: Vec<u8>,
}

/// One event-stream message: its string headers and payload.
struct Message {
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

impl EventReader {
    fn open(addr: SocketAddr, body: &[u8]) -> (u16, String, EventReader) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).expect("connect to riffle");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("set a read timeout");
        let mut head = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\
             Content-Type: {CBOR}\r\nX-Amz-Target: Kinesis_20131202.SubscribeToShard\r\n",
            body.len()
        );
        for (name, value) in SIGNED {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("send the head");
        stream.write_all(body).expect("send the body");
        let mut raw = Vec::new();
        let split = loop {
            if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).expect("read the response head");
            assert!(n > 0, "connection closed before the head");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
        let status = head[9..12].parse().expect("a status code");
        let raw = raw[split + 4..].to_vec();
        let reader = EventReader {
            stream,
            raw,
            events: Vec::new(),
        };
        (status, head, reader)
    }

    fn fill(&mut self) {
        use std::io::Read;
        let mut buf = [0u8; 65536];
        let n = self.stream.read(&mut buf).expect("read the event stream");
        assert!(n > 0, "the event stream ended");
        self.raw.extend_from_slice(&buf[..n]);
    }

    /// Moves every complete chunk from `raw` to `events`.
    fn dechunk(&mut self) {
        while let Some(line) = self.raw.windows(2).position(|w| w == b"\r\n") {
            let size = std::str::from_utf8(&self.raw[..line])
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .expect("a chunk size line");
            let end = line + 2 + size + 2;
            if self.raw.len() < end {
                return;
            }
            self.events
                .extend_from_slice(&self.raw[line + 2..line + 2 + size]);
            self.raw.drain(..end);
        }
    }

    fn next(&mut self) -> Message {
        loop {
            self.dechunk();
            if self.events.len() >= 4 {
                let total = u32::from_be_bytes(self.events[..4].try_into().unwrap()) as usize;
                if self.events.len() >= total {
                    let message: Vec<u8> = self.events.drain(..total).collect();
                    return parse_message(&message);
                }
            }
            self.fill();
        }
    }
}

fn parse_message(m: &[u8]) -> Message {
    let headers_len = u32::from_be_bytes(m[4..8].try_into().unwrap()) as usize;
    let mut at = 12;
    let mut headers = Vec::new();
    while at < 12 + headers_len {
        let name_len = m[at] as usize;
        let name = String::from_utf8_lossy(&m[at + 1..at + 1 + name_len]).into_owned();
        at += 1 + name_len;
        assert_eq!(m[at], 7, "string headers only");
        let value_len = u16::from_be_bytes([m[at + 1], m[at + 2]]) as usize;
        let value = String::from_utf8_lossy(&m[at + 3..at + 3 + value_len]).into_owned();
        at += 3 + value_len;
        headers.push((name, value));
    }
    Message {
        headers,
        payload: m[12 + headers_len..m.len() - 4].to_vec(),
    }
}

#[test]
fn subscribe_to_shard_in_cbor_pushes_cbor_events() {
    let addr = shared().addr;
    let name = unique_name("cbor-efo");
    create_active(addr, &name, 1);
    let described = ok(
        call(
            addr,
            "DescribeStreamSummary",
            J::Map(vec![("StreamName", J::Str(&name))]),
        ),
        "DescribeStreamSummary",
    );
    let stream_arn = text(described.get("StreamDescriptionSummary"), "StreamARN").to_owned();
    let registered = ok(
        call(
            addr,
            "RegisterStreamConsumer",
            J::Map(vec![
                ("StreamARN", J::Str(&stream_arn)),
                ("ConsumerName", J::Str("cbor-consumer")),
            ]),
        ),
        "RegisterStreamConsumer",
    );
    let consumer = registered.get("Consumer");
    let consumer_arn = text(consumer, "ConsumerARN").to_owned();
    millis(member(consumer, "ConsumerCreationTimestamp"));
    let deadline = Instant::now() + ACTIVE_TIME_MAX;
    loop {
        let described = ok(
            call(
                addr,
                "DescribeStreamConsumer",
                J::Map(vec![("ConsumerARN", J::Str(&consumer_arn))]),
            ),
            "DescribeStreamConsumer",
        );
        if text(described.get("ConsumerDescription"), "ConsumerStatus") == "ACTIVE" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the consumer never became ACTIVE"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    let mut request = Vec::new();
    write(
        &mut request,
        &J::Map(vec![
            ("ConsumerARN", J::Str(&consumer_arn)),
            ("ShardId", J::Str("shardId-000000000000")),
            (
                "StartingPosition",
                J::Map(vec![("Type", J::Str("TRIM_HORIZON"))]),
            ),
        ]),
    );
    let (status, head, mut events) = EventReader::open(addr, &request);
    assert_eq!(status, 200, "{head}");
    let first = events.next();
    assert_eq!(first.header(":event-type"), "initial-response");
    assert_eq!(first.header(":content-type"), CBOR);

    ok(
        call(
            addr,
            "PutRecord",
            J::Map(vec![
                ("StreamName", J::Str(&name)),
                ("Data", J::Bytes(b"\x00pushed\xFF")),
                ("PartitionKey", J::Str("pk")),
            ]),
        ),
        "PutRecord",
    );
    let deadline = Instant::now() + ACTIVE_TIME_MAX;
    loop {
        let message = events.next();
        assert_eq!(message.header(":message-type"), "event");
        assert_eq!(message.header(":event-type"), "SubscribeToShardEvent");
        assert_eq!(message.header(":content-type"), CBOR);
        let event: Value = ciborium::from_reader(&message.payload[..]).expect("a CBOR payload");
        let records = member(&event, "Records").as_array().expect("a list");
        if let Some(record) = records.first() {
            assert_eq!(
                member(record, "Data"),
                &Value::Bytes(b"\x00pushed\xFF".to_vec())
            );
            millis(member(record, "ApproximateArrivalTimestamp"));
            break;
        }
        assert!(Instant::now() < deadline, "the record was never pushed");
    }

    // The shard's end, as the Java SDK decodes it for the KCL: ChildShards
    // and no ContinuationSequenceNumber (the KCL rejects an event with
    // both, or with neither, and subscribes again).
    ok(
        call(
            addr,
            "SplitShard",
            J::Map(vec![
                ("StreamName", J::Str(&name)),
                ("ShardToSplit", J::Str("shardId-000000000000")),
                ("NewStartingHashKey", J::Str(&(u128::MAX / 2).to_string())),
            ]),
        ),
        "SplitShard",
    );
    loop {
        let message = events.next();
        assert_eq!(message.header(":event-type"), "SubscribeToShardEvent");
        let event: Value = ciborium::from_reader(&message.payload[..]).expect("a CBOR payload");
        let has = |name: &str| {
            event
                .as_map()
                .expect("a map")
                .iter()
                .any(|(k, v)| k.as_text() == Some(name) && !v.is_null())
        };
        let ends = has("ChildShards");
        assert!(
            has("ContinuationSequenceNumber") != ends,
            "the KCL rejects {event:?}"
        );
        if ends {
            let children = member(&event, "ChildShards").as_array().expect("a list");
            assert_eq!(children.len(), 2);
            break;
        }
        assert!(Instant::now() < deadline, "the shard's end was never sent");
    }
}
