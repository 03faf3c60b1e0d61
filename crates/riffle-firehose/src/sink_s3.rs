//! The sink for the embedded S3 (`riffle-s3`): delivery puts objects
//! in-process, durably, in the same store the API port serves.

use bytes::Bytes;
use riffle_s3::{PutOptions, S3, S3Error};

use crate::sink::{OBJECT_CONTENT_TYPE, ObjectSink, SinkError, SinkFuture};

impl ObjectSink for S3 {
    fn put_object<'a>(&'a self, bucket: &'a str, key: &'a str, body: Bytes) -> SinkFuture<'a> {
        Box::pin(async move {
            let options = PutOptions {
                content_type: Some(OBJECT_CONTENT_TYPE.to_owned()),
                ..PutOptions::default()
            };
            S3::put_object_with(self, bucket, key, body, options)
                .await
                .map(|_| ())
                .map_err(|err| sink_error(bucket, err))
        })
    }
}

/// A missing bucket is its own kind (counted and logged apart); a disk
/// that fails may recover, so it is "unavailable"; anything else is the
/// store refusing this upload.
fn sink_error(bucket: &str, err: S3Error) -> SinkError {
    match err {
        S3Error::NoSuchBucket { .. } => SinkError::NoSuchBucket {
            bucket: bucket.to_owned(),
        },
        S3Error::Io { .. } => SinkError::Unavailable {
            reason: err.to_string(),
        },
        other => SinkError::Refused {
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn objects_land_in_the_embedded_store_as_opaque_bytes_and_a_missing_bucket_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let s3 = S3::open(dir.path()).unwrap();
        let sink: &dyn ObjectSink = &s3;
        let missing = sink.put_object("nope", "k", Bytes::from_static(b"x")).await;
        assert!(matches!(missing, Err(SinkError::NoSuchBucket { bucket }) if bucket == "nope"));
        s3.create_bucket("bucket").await.unwrap();
        sink.put_object("bucket", "2026/12/06/04/a", Bytes::from_static(b"ab"))
            .await
            .unwrap();
        let (meta, bytes) = s3.get_object("bucket", "2026/12/06/04/a").await.unwrap();
        assert_eq!(&bytes[..], b"ab");
        assert_eq!(meta.content_type.as_deref(), Some(OBJECT_CONTENT_TYPE));
        assert!(
            !meta.headers.contains_key("content-encoding"),
            "{:?}",
            meta.headers
        );
        let bad = sink.put_object("bucket", "", Bytes::new()).await;
        assert!(matches!(bad, Err(SinkError::Refused { .. })), "{bad:?}");
    }
}
