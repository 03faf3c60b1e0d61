//! The AWS event-stream framing (`application/vnd.amazon.eventstream`)
//! SubscribeToShard's response is written in.
//!
//! # Byte layout of one message (all integers big-endian)
//!
//! ```text
//! offset  size  field
//! 0       4     total length: the whole message, these 4 bytes and the trailing CRC included
//! 4       4     headers length: bytes of the headers section
//! 8       4     prelude CRC: CRC-32 (IEEE) of bytes 0..8
//! 12      h     headers, each:
//!                 1  name length n
//!                 n  name (UTF-8)
//!                 1  value type: 7 = string (the only type sent here)
//!                 2  value length v
//!                 v  value (UTF-8)
//! 12+h    p     payload (here: a JSON document)
//! 12+h+p  4     message CRC: CRC-32 (IEEE) of every byte before it
//! ```
//!
//! The SDKs check both CRCs and refuse a message whose lengths disagree, so
//! the framing has to be exact. The first message of a SubscribeToShard
//! response is an `initial-response` event with payload `{}`; then come
//! `SubscribeToShardEvent` events, and an error after the start is an
//! `exception` message whose `:exception-type` is the AWS error code.

use bytes::{BufMut, Bytes, BytesMut};
use riffle_kinesis::Codec;

/// Bytes before the headers: total length, headers length, prelude CRC.
const PRELUDE_BYTES: usize = 12;
/// The trailing message CRC.
const MESSAGE_CRC_BYTES: usize = 4;
/// Header value type of a UTF-8 string, as the specification numbers it.
const HEADER_TYPE_STRING: u8 = 7;
/// The content type of a payload: the codec of the request.
fn payload_content_type(codec: Codec) -> &'static str {
    match codec {
        Codec::Json => crate::errors::JSON_11,
        Codec::Cbor => crate::errors::CBOR_11,
    }
}
/// The HTTP Content-Type of an event stream.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// One message with string headers (names under 256 bytes, values under
/// 64 KiB: all of them are short constants or AWS error codes).
pub(crate) fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let headers_len: usize = headers
        .iter()
        .map(|(name, value)| 1 + name.len() + 1 + 2 + value.len())
        .sum();
    let total = PRELUDE_BYTES + headers_len + payload.len() + MESSAGE_CRC_BYTES;
    let mut out = BytesMut::with_capacity(total);
    // A message is at most one 10 MiB event plus headers: it fits in u32.
    out.put_u32(total as u32);
    out.put_u32(headers_len as u32);
    out.put_u32(crc32fast::hash(&out[..8]));
    for (name, value) in headers {
        debug_assert!(name.len() <= usize::from(u8::MAX) && value.len() <= usize::from(u16::MAX));
        out.put_u8(name.len() as u8);
        out.put_slice(name.as_bytes());
        out.put_u8(HEADER_TYPE_STRING);
        out.put_u16(value.len() as u16);
        out.put_slice(value.as_bytes());
    }
    out.put_slice(payload);
    let crc = crc32fast::hash(&out);
    out.put_u32(crc);
    debug_assert_eq!(out.len(), total);
    out.freeze()
}

/// An `event` message of type `event_type` carrying a payload in `codec`.
pub(crate) fn event(event_type: &str, codec: Codec, payload: &[u8]) -> Bytes {
    message(
        &[
            (":message-type", "event"),
            (":event-type", event_type),
            (":content-type", payload_content_type(codec)),
        ],
        payload,
    )
}

/// The first message of every SubscribeToShard response.
pub(crate) fn initial_response(codec: Codec) -> Bytes {
    let empty: &[u8] = match codec {
        Codec::Json => b"{}",
        // An empty CBOR map.
        Codec::Cbor => &[0xA0],
    };
    event("initial-response", codec, empty)
}

/// An error after the stream started: `code` is the AWS error code.
pub(crate) fn exception(code: &str, codec: Codec, payload: &[u8]) -> Bytes {
    message(
        &[
            (":message-type", "exception"),
            (":exception-type", code),
            (":content-type", payload_content_type(codec)),
        ],
        payload,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::read_message_from;
    use aws_smithy_types::event_stream::HeaderValue;

    fn header<'a>(message: &'a aws_smithy_types::event_stream::Message, name: &str) -> &'a str {
        let found = message.headers().iter().find(|h| h.name().as_str() == name);
        match found.map(|h| h.value()) {
            Some(HeaderValue::String(s)) => s.as_str(),
            other => panic!("header {name}: {other:?}"),
        }
    }

    #[test]
    fn events_decode_with_the_aws_sdk_event_stream_reader() {
        let payload = br#"{"Records":[],"ContinuationSequenceNumber":"1","MillisBehindLatest":0}"#;
        let mut bytes = event("SubscribeToShardEvent", Codec::Json, payload);
        let decoded = read_message_from(&mut bytes).unwrap();
        assert!(bytes.is_empty(), "one message, consumed whole");
        assert_eq!(header(&decoded, ":message-type"), "event");
        assert_eq!(header(&decoded, ":event-type"), "SubscribeToShardEvent");
        assert_eq!(
            header(&decoded, ":content-type"),
            "application/x-amz-json-1.1"
        );
        assert_eq!(&decoded.payload()[..], &payload[..]);

        let mut bytes = exception("ResourceInUseException", Codec::Json, br#"{"message":"m"}"#);
        let decoded = read_message_from(&mut bytes).unwrap();
        assert_eq!(header(&decoded, ":message-type"), "exception");
        assert_eq!(
            header(&decoded, ":exception-type"),
            "ResourceInUseException"
        );
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let bytes = initial_response(Codec::Json);
        let total = u32::from_be_bytes(bytes[0..4].try_into().unwrap()) as usize;
        let headers = u32::from_be_bytes(bytes[4..8].try_into().unwrap()) as usize;
        assert_eq!(total, bytes.len());
        assert_eq!(
            u32::from_be_bytes(bytes[8..12].try_into().unwrap()),
            crc32fast::hash(&bytes[..8])
        );
        // The first header: length 13, ":message-type", type 7, length 5, "event".
        assert_eq!(&bytes[12..14], &[13, b':']);
        assert_eq!(&bytes[12 + 1 + 13..12 + 1 + 13 + 3], &[7, 0, 5]);
        assert_eq!(&bytes[12 + headers..total - 4], b"{}");
        assert_eq!(
            u32::from_be_bytes(bytes[total - 4..].try_into().unwrap()),
            crc32fast::hash(&bytes[..total - 4])
        );
    }

    #[test]
    fn a_corrupted_message_is_refused_by_the_reader() {
        let good = event("SubscribeToShardEvent", Codec::Json, b"{}");
        for at in [0, 9, 20, good.len() - 6, good.len() - 1] {
            let mut bad = good.to_vec();
            bad[at] ^= 0x01;
            let mut bad = Bytes::from(bad);
            assert!(read_message_from(&mut bad).is_err(), "flipped byte {at}");
        }
    }
}
