//! Reading a request body into one [`Bytes`], never more than [`BODY_BYTES_MAX`].

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// The largest data blob one request can carry: one PutRecord of 10 MiB
/// once UpdateMaxRecordSize raised the stream's limit ("Handle large
/// records", Kinesis Data Streams developer guide), or a PutRecords call
/// of 10 MiB of data and partition keys (API_PutRecords).
pub const PAYLOAD_BYTES_MAX: usize = 10 * 1024 * 1024;

/// Room for everything around the base64 payload: member names, the stream
/// name or ARN, and up to 500 partition keys (256 characters each, up to six
/// bytes each once JSON-escaped) with their explicit hash keys.
const FRAMING_BYTES_MAX: usize = 1024 * 1024;

/// The largest request body read into memory. Base64 turns every 3 bytes of
/// payload into 4 characters. Anything bigger is refused with AWS's answer
/// to an oversized request — HTTP 413 with an empty body — before it is
/// buffered, so a huge body costs neither memory nor time.
pub const BODY_BYTES_MAX: usize = PAYLOAD_BYTES_MAX.div_ceil(3) * 4 + FRAMING_BYTES_MAX;

// PutRecords' 10 MiB must always fit, and issue 3's 20 MB probe must not.
const _: () =
    assert!((10 * 1024 * 1024usize).div_ceil(3) * 4 + FRAMING_BYTES_MAX <= BODY_BYTES_MAX);
const _: () = assert!(BODY_BYTES_MAX < 20_000_000);

/// The largest S3 request body (a PutObject or an UploadPart) read into
/// memory. S3 takes 5 GiB per PutObject, which no in-memory edge should
/// buffer; the aws CLI and boto3's transfer manager switch to multipart
/// uploads of 8 MiB parts above 8 MiB (`multipart_threshold` and
/// `multipart_chunksize`, s3transfer's defaults), and the SDKs' managers
/// use 5–16 MiB parts, so 64 MiB leaves room for parts four times their
/// usual size while bounding what one request can hold.
pub const S3_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// After refusing an oversized body the server still reads (and drops) up
/// to this much of it. HTTP/1.1 clients send the whole body before they read
/// the response; closing the socket on unread data makes the kernel send a
/// reset, and the client would see "connection reset" instead of our 413.
const DRAIN_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Bounds the time a draining client can hold its connection.
const DRAIN_TIME_MAX: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("request body exceeds the size cap")]
    TooLarge,
    /// The client went away or broke the framing mid-body.
    #[error("reading the request body failed: {0}")]
    Read(#[from] hyper::Error),
}

/// Reads the whole body. `declared` is the Content-Length, if any; a body
/// that announces itself as too large is refused before any of it is kept.
///
/// A body that arrives in one frame (the usual case for small requests) is
/// returned as that frame, without a copy.
pub(crate) async fn read_body(
    mut body: Incoming,
    declared: Option<u64>,
    cap: usize,
) -> Result<Bytes, BodyError> {
    if declared.is_some_and(|n| n > cap as u64) {
        drain(body).await;
        return Err(BodyError::TooLarge);
    }
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame?.into_data() else {
            continue;
        }; // trailers carry no payload
        total += chunk.len();
        if total > cap {
            drain(body).await;
            return Err(BodyError::TooLarge);
        }
        match (&mut first, &mut joined) {
            (None, None) => first = Some(chunk),
            (Some(head), None) => {
                // `declared` is trusted only up to the cap checked above.
                let capacity = declared.map_or(total, |n| n as usize).max(total);
                let mut buf = BytesMut::with_capacity(capacity);
                buf.extend_from_slice(head);
                buf.extend_from_slice(&chunk);
                joined = Some(buf);
                first = None;
            }
            (_, Some(buf)) => buf.extend_from_slice(&chunk),
        }
    }
    Ok(match (first, joined) {
        (_, Some(buf)) => buf.freeze(),
        (Some(chunk), None) => chunk,
        (None, None) => Bytes::new(),
    })
}

/// Reads and drops the rest of a refused body, within [`DRAIN_BYTES_MAX`]
/// and [`DRAIN_TIME_MAX`]; past either, hyper closes the connection.
async fn drain(mut body: Incoming) {
    let discard = async {
        let mut dropped = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            dropped += frame.data_ref().map_or(0, Bytes::len);
            if dropped > DRAIN_BYTES_MAX {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME_MAX, discard).await; // a timeout just ends the drain
}
