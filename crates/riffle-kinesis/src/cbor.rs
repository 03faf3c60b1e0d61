//! The CBOR codec (`application/x-amz-cbor-1.1`): what the AWS SDK for Java
//! v2 — and so the KCL and the KPL — speaks to Kinesis by default. It is a
//! transcoder at the edge of the service: a CBOR request becomes the JSON
//! request the actions already parse, and their JSON response becomes CBOR,
//! so every action has one implementation.
//!
//! The conventions, as the Java SDK applies them (sources followed:
//! aws-sdk-java-v2 `core/protocols/aws-cbor-protocol`: `SdkCborGenerator`
//! writes a timestamp as CBOR tag 1 followed by `Instant.toEpochMilli()` as
//! an integer; `AwsCborProtocolFactory` reads and writes payload timestamps
//! as `UNIX_TIMESTAMP_MILLIS`; Jackson's `CBORGenerator`, which the SDK
//! writes with, emits blobs as byte strings and objects and arrays with
//! indefinite lengths):
//!
//! | JSON 1.1 (what the actions speak)   | CBOR                                   |
//! |-------------------------------------|----------------------------------------|
//! | blob: base64 text                   | byte string (major type 2)             |
//! | timestamp: epoch seconds (fraction) | tag 1 (`0xC1`) + integer epoch **millis** |
//! | string, number, boolean, null       | text string, integer/float, simple     |
//! | object, array                       | map (text keys), array; either length  |
//!
//! Note that tag 1 carries milliseconds here, not RFC 8949's seconds: that
//! is what the SDK writes and expects back.
//!
//! Requests need no model knowledge: byte strings are always blobs and tag
//! 1 is always a timestamp. Responses do: the actions' JSON does not say
//! which strings are base64 and which numbers are times, so the members are
//! named here from the botocore model (`kinesis/2013-12-02/service-2.json`),
//! where each member name has one type across all shapes: the only blob
//! member is `Data`, and the timestamp members are [`TIMESTAMP_MEMBERS`].

use bytes::Bytes;
use ciborium::Value as Cbor;
use serde_json::Value as Json;

use crate::KinesisError;

/// CBOR tag 1, "epoch-based date/time" (RFC 8949 §3.4.2).
const TAG_EPOCH: u64 = 1;

/// The model's only blob member.
const BLOB_MEMBER: &str = "Data";

/// Every member of the model whose shape is a `timestamp` (no member of
/// these names has another type anywhere in the model).
const TIMESTAMP_MEMBERS: &[&str] = &[
    "ApproximateArrivalTimestamp",
    "ChannelCreationTimestamp",
    "ConsumerCreationTimestamp",
    "EarliestAllowedEndAt",
    "EndedAt",
    "FirstReceiveTimestamp",
    "QueueCreationTimestamp",
    "StartedAt",
    "StreamCreationTimestamp",
    "Timestamp",
];

/// A CBOR request body as the JSON body the actions parse. Anything that is
/// not one well-formed CBOR item is a `SerializationException` without a
/// message, as for a body that is not JSON.
pub(crate) fn request_to_json(body: &[u8]) -> Result<Vec<u8>, KinesisError> {
    let mut rest = body;
    let item: Cbor = ciborium::from_reader(&mut rest).map_err(|_| malformed())?;
    if !rest.is_empty() {
        return Err(malformed());
    }
    let json = to_json(item)?;
    // Writing a `Value` into a `Vec` cannot fail: every key is a string.
    Ok(serde_json::to_vec(&json).expect("a JSON value always serializes"))
}

/// A JSON response body (as the actions write it) in CBOR. An empty body
/// (CreateStream, DeleteStream, …) stays empty, as in the JSON protocol.
pub(crate) fn response_from_json(json: &[u8]) -> Result<Bytes, KinesisError> {
    if json.is_empty() {
        return Ok(Bytes::new());
    }
    // The actions write JSON themselves; a failure here is a bug, reported
    // rather than panicked on.
    let value: Json = serde_json::from_slice(json)
        .map_err(|err| KinesisError::Serialization(format!("response is not JSON: {err}")))?;
    let mut out = Vec::with_capacity(json.len());
    // Writing into a `Vec` cannot fail, and every value is representable.
    ciborium::into_writer(&to_cbor(value, None), &mut out).expect("CBOR into a Vec never fails");
    Ok(Bytes::from(out))
}

fn malformed() -> KinesisError {
    KinesisError::Serialization(String::new())
}

fn to_json(item: Cbor) -> Result<Json, KinesisError> {
    Ok(match item {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(b),
        Cbor::Text(s) => Json::String(s),
        Cbor::Bytes(b) => Json::String(base64_simd::STANDARD.encode_to_string(&b)),
        Cbor::Integer(i) => integer_to_json(i128::from(i)),
        Cbor::Float(f) => float_to_json(f)?,
        Cbor::Tag(TAG_EPOCH, inner) => millis_to_seconds(*inner)?,
        // Other tags carry no meaning in this protocol: the value counts.
        Cbor::Tag(_, inner) => to_json(*inner)?,
        Cbor::Array(items) => {
            Json::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Cbor::Map(entries) => {
            let mut object = serde_json::Map::with_capacity(entries.len());
            for (key, value) in entries {
                let Cbor::Text(key) = key else {
                    return Err(malformed());
                };
                object.insert(key, to_json(value)?);
            }
            Json::Object(object)
        }
        _ => return Err(malformed()),
    })
}

fn integer_to_json(i: i128) -> Json {
    if let Ok(i) = i64::try_from(i) {
        Json::from(i)
    } else if let Ok(u) = u64::try_from(i) {
        Json::from(u)
    } else {
        // Past 64 bits the JSON reader clamps anyway; a float keeps the sign.
        float_to_json(i as f64).unwrap_or(Json::Null)
    }
}

fn float_to_json(f: f64) -> Result<Json, KinesisError> {
    serde_json::Number::from_f64(f)
        .map(Json::Number)
        .ok_or_else(malformed)
}

/// Tag 1's epoch milliseconds as the JSON protocol's epoch seconds.
fn millis_to_seconds(inner: Cbor) -> Result<Json, KinesisError> {
    let ms = match inner {
        Cbor::Integer(i) => i128::from(i) as f64,
        Cbor::Float(f) => f,
        _ => return Err(malformed()),
    };
    float_to_json(ms / 1000.0)
}

/// `member` is the name the value is held under (list items inherit it).
fn to_cbor(value: Json, member: Option<&str>) -> Cbor {
    match value {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(b),
        Json::String(s) if member == Some(BLOB_MEMBER) => {
            match base64_simd::STANDARD.decode_to_vec(s.as_bytes()) {
                Ok(bytes) => Cbor::Bytes(bytes),
                Err(_) => Cbor::Text(s),
            }
        }
        Json::String(s) => Cbor::Text(s),
        Json::Number(n) if member.is_some_and(|m| TIMESTAMP_MEMBERS.contains(&m)) => {
            let ms = crate::time::seconds_to_ms(n.as_f64().unwrap_or_default());
            Cbor::Tag(TAG_EPOCH, Box::new(Cbor::Integer(ms.into())))
        }
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Cbor::Integer(i.into())
            } else if let Some(u) = n.as_u64() {
                Cbor::Integer(u.into())
            } else {
                Cbor::Float(n.as_f64().unwrap_or_default())
            }
        }
        Json::Array(items) => Cbor::Array(items.into_iter().map(|v| to_cbor(v, member)).collect()),
        Json::Object(object) => Cbor::Map(
            object
                .into_iter()
                .map(|(k, v)| {
                    let v = to_cbor(v, Some(&k));
                    (Cbor::Text(k), v)
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CBOR the way Jackson's `CBORGenerator` (the Java SDK) writes a
    /// PutRecords request: indefinite-length map (`0xBF … 0xFF`) and array
    /// (`0x9F … 0xFF`), definite text and byte strings.
    fn java_put_records() -> Vec<u8> {
        let mut b = vec![0xBF];
        text(&mut b, "StreamName");
        text(&mut b, "s");
        text(&mut b, "Records");
        b.push(0x9F);
        for (data, key) in [(&b"hi"[..], "a"), (&[0u8, 255][..], "b")] {
            b.push(0xBF);
            text(&mut b, "Data");
            b.push(0x40 | data.len() as u8);
            b.extend_from_slice(data);
            text(&mut b, "PartitionKey");
            text(&mut b, key);
            b.push(0xFF);
        }
        b.extend_from_slice(&[0xFF, 0xFF]);
        b
    }

    fn text(out: &mut Vec<u8>, s: &str) {
        assert!(s.len() < 24);
        out.push(0x60 | s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }

    fn json_of(body: &[u8]) -> Json {
        serde_json::from_slice(&request_to_json(body).unwrap()).unwrap()
    }

    #[test]
    fn java_style_put_records_becomes_the_json_request() {
        assert_eq!(
            json_of(&java_put_records()),
            serde_json::json!({"StreamName":"s","Records":[
                {"Data":"aGk=","PartitionKey":"a"},
                {"Data":"AP8=","PartitionKey":"b"}]})
        );
    }

    #[test]
    fn tag_1_millis_become_epoch_seconds() {
        // {"Timestamp": 1(1700000000123)}: 0xC1, then a 64-bit unsigned.
        let mut b = vec![0xA1];
        text(&mut b, "Timestamp");
        b.extend_from_slice(&[0xC1, 0x1B]);
        b.extend_from_slice(&1_700_000_000_123u64.to_be_bytes());
        let json = json_of(&b);
        assert_eq!(json["Timestamp"].as_f64(), Some(1_700_000_000.123));
    }

    #[test]
    fn malformed_cbor_is_a_serialization_error_without_message() {
        let cases: [&[u8]; 5] = [
            b"",
            &[0xBF, 0x61],             // truncated
            &[0xA1, 0x01, 0x02],       // integer key
            &[0xA0, 0x00],             // trailing bytes
            b"{\"StreamName\":\"s\"}", // JSON is not CBOR
        ];
        for body in cases {
            match request_to_json(body) {
                Err(KinesisError::Serialization(m)) => assert_eq!(m, "", "{body:?}"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
    }

    fn cbor_of(json: &str) -> Cbor {
        let bytes = response_from_json(json.as_bytes()).unwrap();
        ciborium::from_reader(&bytes[..]).unwrap()
    }

    fn member<'a>(map: &'a Cbor, name: &str) -> &'a Cbor {
        map.as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_text() == Some(name))
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no {name} in {map:?}"))
    }

    #[test]
    fn get_records_data_are_byte_strings_and_arrival_times_tag_1_millis() {
        let response = cbor_of(
            r#"{"Records":[{"Data":"aGk=","PartitionKey":"a","SequenceNumber":"1",
                "ApproximateArrivalTimestamp":1700000000.123}],
                "MillisBehindLatest":0,"NextShardIterator":"it"}"#,
        );
        let record = &member(&response, "Records").as_array().unwrap()[0];
        assert_eq!(member(record, "Data"), &Cbor::Bytes(b"hi".to_vec()));
        assert_eq!(member(record, "PartitionKey"), &Cbor::Text("a".into()));
        assert_eq!(
            member(record, "ApproximateArrivalTimestamp"),
            &Cbor::Tag(1, Box::new(Cbor::Integer(1_700_000_000_123i64.into())))
        );
        assert_eq!(
            member(&response, "MillisBehindLatest"),
            &Cbor::Integer(0.into())
        );
    }

    #[test]
    fn nested_timestamps_are_tagged_and_plain_numbers_are_not() {
        let response = cbor_of(
            r#"{"StreamDescriptionSummary":{"StreamCreationTimestamp":1.5,
                "RetentionPeriodHours":24,"OpenShardCount":2}}"#,
        );
        let summary = member(&response, "StreamDescriptionSummary");
        assert_eq!(
            member(summary, "StreamCreationTimestamp"),
            &Cbor::Tag(1, Box::new(Cbor::Integer(1500.into())))
        );
        assert_eq!(
            member(summary, "RetentionPeriodHours"),
            &Cbor::Integer(24.into())
        );
    }

    #[test]
    fn empty_responses_stay_empty() {
        assert!(response_from_json(b"").unwrap().is_empty());
    }

    #[test]
    fn responses_round_trip_through_the_request_direction() {
        let json = r#"{"Records":[{"Data":"AP8=","ApproximateArrivalTimestamp":12.345,
            "PartitionKey":"k"}],"HasMore":true,"Note":null,"Ratio":0.5,"Big":18446744073709551615}"#;
        let cbor = response_from_json(json.as_bytes()).unwrap();
        let back: Json = serde_json::from_slice(&request_to_json(&cbor).unwrap()).unwrap();
        let expected: Json = serde_json::from_str(json).unwrap();
        assert_eq!(back, expected);
    }
}
