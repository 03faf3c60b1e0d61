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
//! Requests are read into a `ciborium::Value` (ciborium: maintained,
//! serde-based, and reads indefinite lengths and tags, which Jackson
//! writes) and written out as JSON; answers are streamed from the JSON
//! reader straight into CBOR with no tree in between.
//!
//! Requests need no model knowledge: byte strings are always blobs and tag
//! 1 is always a timestamp. Responses do: the actions' JSON does not say
//! which strings are base64 and which numbers are times, so the members are
//! named here from the botocore model (`kinesis/2013-12-02/service-2.json`),
//! where each member name has one type across all shapes: the only blob
//! member is `Data`, and the timestamp members are [`TIMESTAMP_MEMBERS`].

use bytes::Bytes;
use ciborium::Value as Cbor;
use serde::de::{self, DeserializeSeed};
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
    let mut json = String::with_capacity(body.len() / 3 * 4 + 64);
    write_json(&item, &mut json)?;
    Ok(json.into_bytes())
}

/// A JSON response body (as the actions write it) in CBOR. An empty body
/// (CreateStream, DeleteStream, …) stays empty, as in the JSON protocol.
pub(crate) fn response_from_json(json: &[u8]) -> Result<Bytes, KinesisError> {
    if json.is_empty() {
        return Ok(Bytes::new());
    }
    // Streamed: the JSON is read once and CBOR written as it is read, with
    // no tree in between (GetRecords answers are up to 10 MiB). A failure
    // is a bug in an action's writer, reported rather than panicked on.
    let mut out = Vec::with_capacity(json.len());
    let mut reader = serde_json::Deserializer::from_slice(json);
    Transcode {
        out: &mut out,
        member: None,
    }
    .deserialize(&mut reader)
    .and_then(|()| reader.end())
    .map_err(|err| KinesisError::Serialization(format!("response is not JSON: {err}")))?;
    Ok(Bytes::from(out))
}

/// CBOR written directly, item by item, exactly as [`response_from_json`]
/// would write the same JSON: for an answer too large to write as JSON
/// and transcode (GetRecords: up to 10 MiB of data would be base64-encoded
/// only to be decoded again).
pub(crate) struct CborWriter {
    pub out: Vec<u8>,
}

impl CborWriter {
    pub fn with_capacity(capacity: usize) -> CborWriter {
        CborWriter {
            out: Vec::with_capacity(capacity),
        }
    }

    /// Starts a map or an array; [`CborWriter::end`] ends it (both are
    /// written with indefinite lengths, as Jackson writes them).
    pub fn map(&mut self) {
        self.out.push(MAJOR_MAP | INDEFINITE);
    }

    pub fn array(&mut self) {
        self.out.push(MAJOR_ARRAY | INDEFINITE);
    }

    pub fn end(&mut self) {
        self.out.push(BREAK);
    }

    pub fn text(&mut self, s: &str) {
        write_text(&mut self.out, s);
    }

    /// A blob (`Data`): a byte string.
    pub fn bytes(&mut self, b: &[u8]) {
        write_head(&mut self.out, MAJOR_BYTES, b.len() as u64);
        self.out.extend_from_slice(b);
    }

    pub fn unsigned(&mut self, u: u64) {
        write_head(&mut self.out, MAJOR_UNSIGNED, u);
    }

    /// A timestamp member: tag 1 and epoch milliseconds.
    pub fn timestamp_ms(&mut self, ms: i64) {
        write_head(&mut self.out, MAJOR_TAG, TAG_EPOCH);
        write_i64(&mut self.out, ms);
    }

    /// A JSON value held under `member`, transcoded.
    pub fn json(&mut self, member: &str, json: &[u8]) -> Result<(), KinesisError> {
        let mut reader = serde_json::Deserializer::from_slice(json);
        Transcode {
            out: &mut self.out,
            member: Some(member),
        }
        .deserialize(&mut reader)
        .and_then(|()| reader.end())
        .map_err(|err| KinesisError::Serialization(format!("response is not JSON: {err}")))
    }
}

/// CBOR major types (RFC 8949 §3.1), shifted into the initial byte.
const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1 << 5;
const MAJOR_BYTES: u8 = 2 << 5;
const MAJOR_TEXT: u8 = 3 << 5;
const MAJOR_ARRAY: u8 = 4 << 5;
const MAJOR_MAP: u8 = 5 << 5;
const MAJOR_TAG: u8 = 6 << 5;
/// Indefinite-length arrays and maps (as Jackson writes them) end with it.
const BREAK: u8 = 0xFF;
const INDEFINITE: u8 = 31;

/// A head: major type and argument in its shortest form.
fn write_head(out: &mut Vec<u8>, major: u8, arg: u64) {
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

fn write_i64(out: &mut Vec<u8>, i: i64) {
    match u64::try_from(i) {
        Ok(u) => write_head(out, MAJOR_UNSIGNED, u),
        // -1 - i is non-negative and cannot overflow for a negative i.
        Err(_) => write_head(out, MAJOR_NEGATIVE, (-1 - i) as u64),
    }
}

fn write_text(out: &mut Vec<u8>, s: &str) {
    write_head(out, MAJOR_TEXT, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads one JSON value and writes it as CBOR; `member` is the name it is
/// held under (list items inherit it), which says whether it is a blob or
/// a timestamp.
struct Transcode<'o, 'm> {
    out: &'o mut Vec<u8>,
    member: Option<&'m str>,
}

impl Transcode<'_, '_> {
    fn is_timestamp(&self) -> bool {
        self.member.is_some_and(|m| TIMESTAMP_MEMBERS.contains(&m))
    }

    fn timestamp_ms(&mut self, ms: i64) {
        write_head(self.out, MAJOR_TAG, TAG_EPOCH);
        write_i64(self.out, ms);
    }
}

impl<'de> de::DeserializeSeed<'de> for Transcode<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Transcode<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push(0xF6);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<(), E> {
        self.out.push(if b { 0xF5 } else { 0xF4 });
        Ok(())
    }

    fn visit_u64<E: de::Error>(mut self, u: u64) -> Result<(), E> {
        if self.is_timestamp() {
            self.timestamp_ms(
                i64::try_from(u)
                    .unwrap_or(i64::MAX / 1000)
                    .saturating_mul(1000),
            );
        } else {
            write_head(self.out, MAJOR_UNSIGNED, u);
        }
        Ok(())
    }

    fn visit_i64<E: de::Error>(mut self, i: i64) -> Result<(), E> {
        if self.is_timestamp() {
            self.timestamp_ms(i.saturating_mul(1000));
        } else {
            write_i64(self.out, i);
        }
        Ok(())
    }

    fn visit_f64<E: de::Error>(mut self, f: f64) -> Result<(), E> {
        if self.is_timestamp() {
            self.timestamp_ms(crate::time::seconds_to_ms(f));
        } else {
            self.out.push(0xFB);
            self.out.extend_from_slice(&f.to_be_bytes());
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        if self.member == Some(BLOB_MEMBER) {
            // Base64 straight into the output, after a head of its length.
            if let Ok(len) = base64_simd::STANDARD.decoded_length(s.as_bytes()) {
                write_head(self.out, MAJOR_BYTES, len as u64);
                let start = self.out.len();
                self.out.resize(start + len, 0);
                let target = base64_simd::Out::from_slice(&mut self.out[start..]);
                if let Ok(decoded) = base64_simd::STANDARD.decode(s.as_bytes(), target) {
                    let decoded_len = decoded.len();
                    self.out.truncate(start + decoded_len);
                    return Ok(());
                }
            }
            return Err(E::custom("a Data member is not base64"));
        }
        write_text(self.out, s);
        Ok(())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push(MAJOR_ARRAY | INDEFINITE);
        while seq
            .next_element_seed(Transcode {
                out: &mut *self.out,
                member: self.member,
            })?
            .is_some()
        {}
        self.out.push(BREAK);
        Ok(())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.out.push(MAJOR_MAP | INDEFINITE);
        // Member names borrow from the body unless escaped (they never are).
        while let Some(key) = map.next_key::<crate::json::Str<'de>>()? {
            write_text(self.out, key.as_str());
            map.next_value_seed(Transcode {
                out: &mut *self.out,
                member: Some(key.as_str()),
            })?;
        }
        self.out.push(BREAK);
        Ok(())
    }
}

fn malformed() -> KinesisError {
    KinesisError::Serialization(String::new())
}

/// Writes `item` as the JSON [`to_json`] makes of it, straight into `out`:
/// blobs base64-encoded into place, no `serde_json::Value` tree and no
/// second pass to serialize it (that was most of a CBOR PutRecords'
/// decoding time). Maps come out as a `serde_json::Map` holds them: keys
/// sorted, the last of equal keys kept, so the actions see the same
/// members in the same order either way.
fn write_json(item: &Cbor, out: &mut String) -> Result<(), KinesisError> {
    match item {
        Cbor::Null => out.push_str("null"),
        Cbor::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Cbor::Text(text) => crate::json::write_str(out, text),
        Cbor::Bytes(bytes) => {
            out.push('"');
            base64_simd::STANDARD.encode_append(bytes, out);
            out.push('"');
        }
        // Numbers and times are few and small: serde_json renders them.
        Cbor::Integer(_) | Cbor::Float(_) | Cbor::Tag(TAG_EPOCH, _) => {
            let number = to_json(item.clone())?;
            out.push_str(&number.to_string());
        }
        Cbor::Tag(_, inner) => write_json(inner, out)?,
        Cbor::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out)?;
            }
            out.push(']');
        }
        Cbor::Map(entries) => write_json_map(entries, out)?,
        _ => return Err(malformed()),
    }
    Ok(())
}

fn write_json_map(entries: &[(Cbor, Cbor)], out: &mut String) -> Result<(), KinesisError> {
    let mut members = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let Cbor::Text(key) = key else {
            return Err(malformed());
        };
        members.push((key.as_str(), value));
    }
    // Stable: equal keys keep their order, and the last one wins.
    members.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    let mut first = true;
    for (i, (key, value)) in members.iter().enumerate() {
        if members.get(i + 1).is_some_and(|next| next.0 == *key) {
            // Overwritten, but still checked, as `to_json` checks it.
            write_json(value, &mut String::new())?;
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        crate::json::write_str(out, key);
        out.push(':');
        write_json(value, out)?;
    }
    out.push('}');
    Ok(())
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

    #[test]
    fn requests_become_the_json_the_value_tree_gave() {
        use Cbor as C;
        let t = |s: &str| C::Text(s.into());
        let items = [
            ciborium::from_reader::<Cbor, _>(&java_put_records()[..]).unwrap(),
            C::Map(vec![
                (t("b"), C::Integer(1.into())),
                (t("a"), C::Bytes(vec![0, 1, 2, 250])),
                (t("b"), C::Integer((-7).into())),
                (
                    t("q\"\\\u{1}\u{e9}"),
                    C::Array(vec![C::Null, C::Bool(true), C::Float(1.5)]),
                ),
                (
                    t("Timestamp"),
                    C::Tag(1, Box::new(C::Integer(1_700_000_000_123u64.into()))),
                ),
                (t("T2"), C::Tag(1, Box::new(C::Float(1.5e12)))),
                (t("other"), C::Tag(42, Box::new(t("x")))),
                (t("big"), C::Integer(u64::MAX.into())),
                (t("neg"), C::Integer(i64::MIN.into())),
                (t("m"), C::Map(vec![])),
            ]),
        ];
        for item in items {
            let mut direct = String::new();
            write_json(&item, &mut direct).unwrap();
            let parsed: Json = serde_json::from_str(&direct).unwrap();
            assert_eq!(parsed, to_json(item).unwrap(), "{direct}");
        }
        let bad = [
            C::Map(vec![(C::Integer(1.into()), t("x"))]),
            C::Float(f64::NAN),
            C::Tag(1, Box::new(t("x"))),
            // An overwritten member is still checked.
            C::Map(vec![(t("a"), C::Float(f64::NAN)), (t("a"), C::Null)]),
        ];
        for item in bad {
            assert!(write_json(&item, &mut String::new()).is_err(), "{item:?}");
            assert!(to_json(item).is_err());
        }
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
    fn answers_are_written_with_indefinite_lengths_as_jackson_writes() {
        let bytes = response_from_json(br#"{"A":[1,-2],"Data":"aGk=","Timestamp":1.5}"#).unwrap();
        let mut expected = vec![0xBF, 0x61, b'A', 0x9F, 0x01, 0x21, 0xFF];
        expected.extend_from_slice(&[0x64, b'D', b'a', b't', b'a', 0x42, b'h', b'i']);
        expected.extend_from_slice(&[0x69]);
        expected.extend_from_slice(b"Timestamp");
        // Tag 1, then 1500 as a 16-bit unsigned.
        expected.extend_from_slice(&[0xC1, 0x19, 0x05, 0xDC, 0xFF]);
        assert_eq!(&bytes[..], &expected[..]);
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
