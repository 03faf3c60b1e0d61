//! The headers every AWS response carries: `x-amzn-RequestId` (a UUID) and
//! `x-amz-id-2` (72 random bytes in base64), plus the framing ones.

use std::fmt;

use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{HeaderMap, StatusCode};

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-amzn-requestid");
pub(crate) const ID_2: HeaderName = HeaderName::from_static("x-amz-id-2");

/// Bytes of randomness in `x-amz-id-2`, as AWS sends it (96 base64 characters).
const ID_2_BYTES: usize = 72;

/// One request's id: a random (version 4) UUID. Unique, not secret, so a
/// fast thread-local generator suffices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestId(uuid::Uuid);

impl RequestId {
    pub(crate) fn new() -> RequestId {
        RequestId(uuid::Builder::from_random_bytes(fastrand::u128(..).to_le_bytes()).into_uuid())
    }

    pub(crate) fn header_value(&self) -> HeaderValue {
        let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = self.0.hyphenated().encode_lower(&mut buf);
        // A hyphenated UUID is ASCII hex and dashes: always a valid header value.
        HeaderValue::from_str(text).expect("a UUID is a valid header value")
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

fn id_2() -> HeaderValue {
    let mut raw = [0u8; ID_2_BYTES];
    fastrand::fill(&mut raw);
    let mut text = [0u8; ID_2_BYTES / 3 * 4];
    let encoded = base64_simd::STANDARD.encode(&raw, base64_simd::Out::from_slice(&mut text));
    // Standard base64 is a subset of visible ASCII.
    HeaderValue::from_bytes(encoded).expect("base64 is a valid header value")
}

/// Sets the AWS response headers. `content_type` is `None` for the bodies
/// AWS sends without one (its XML refusals and the empty 413).
pub(crate) fn set(
    headers: &mut HeaderMap,
    id: RequestId,
    content_type: Option<&'static str>,
    content_length: usize,
) {
    headers.insert(REQUEST_ID, id.header_value());
    headers.insert(ID_2, id_2());
    if let Some(content_type) = content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(content_length));
}

/// Whether a status is reported as an error in the logs.
pub(crate) fn is_error(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_ids_have_the_shapes_aws_uses() {
        let mut headers = HeaderMap::new();
        let id = RequestId::new();
        set(&mut headers, id, Some("application/x-amz-json-1.1"), 2);
        let request_id = headers[&REQUEST_ID].to_str().unwrap();
        assert_eq!(
            uuid::Uuid::parse_str(request_id).unwrap().get_version_num(),
            4
        );
        assert_eq!(request_id, id.to_string());
        let id_2 = headers[&ID_2].as_bytes();
        assert_eq!(
            base64_simd::STANDARD.decode_to_vec(id_2).unwrap().len(),
            ID_2_BYTES
        );
        assert_eq!(headers[CONTENT_LENGTH], "2");
        assert_ne!(RequestId::new(), RequestId::new());
    }
}
