//! The S3 REST API (path-style `/bucket/key`), served by `riffle-s3`: how
//! a request is recognised as S3, and the IAM action each one is.
//!
//! A request is S3's when it has no `X-Amz-Target` and is not a `POST /`:
//! every JSON-protocol call is a `POST /` (with or without a target, which
//! keeps AWS's answers to malformed JSON calls), and no path-style S3
//! operation posts to `/`.

use hyper::Method;
use hyper::http::request::Parts;

use crate::sigv4::Signing;

/// S3's SigV4 rules (the model's `signingName` is `s3`).
pub(crate) const SIGNING: Signing = Signing {
    service: "s3",
    s3: true,
};

/// Whether the request is an S3 REST request.
pub(crate) fn is_s3(parts: &Parts) -> bool {
    let json_call = parts.headers.contains_key("x-amz-target")
        || (parts.method == Method::POST && parts.uri.path() == "/");
    !json_call
}

/// The IAM action and resource an S3 request is authorized as (the
/// operations riffle-s3 serves; multipart parts are `s3:PutObject`).
pub(crate) fn action_and_resource(parts: &Parts) -> (&'static str, String) {
    let path = parts.uri.path().trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let query = parts.uri.query().unwrap_or_default();
    let has = |name: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(name))
    };
    if bucket.is_empty() {
        return ("s3:ListAllMyBuckets", "*".to_owned());
    }
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    if key.is_empty() {
        let action = match parts.method {
            Method::PUT => "s3:CreateBucket",
            Method::DELETE => "s3:DeleteBucket",
            // DeleteObjects (`POST /bucket?delete`) is DeleteObject on each.
            Method::POST if has("delete") => "s3:DeleteObject",
            _ if has("uploads") => "s3:ListBucketMultipartUploads",
            _ => "s3:ListBucket",
        };
        return (action, bucket_arn);
    }
    let action = match parts.method {
        Method::GET | Method::HEAD if has("uploadId") => "s3:ListMultipartUploadParts",
        Method::GET | Method::HEAD => "s3:GetObject",
        Method::DELETE if has("uploadId") => "s3:AbortMultipartUpload",
        Method::DELETE => "s3:DeleteObject",
        _ => "s3:PutObject",
    };
    (action, format!("{bucket_arn}/{key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, target: Option<&str>) -> Parts {
        let mut builder = hyper::Request::builder().method(method).uri(uri);
        if let Some(target) = target {
            builder = builder.header("x-amz-target", target);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn s3_is_what_is_neither_targeted_nor_a_post_to_the_root() {
        assert!(is_s3(&parts("GET", "/", None)));
        assert!(is_s3(&parts("PUT", "/bucket/key", None)));
        assert!(is_s3(&parts("POST", "/bucket?delete", None)));
        assert!(!is_s3(&parts("POST", "/", None)));
        assert!(!is_s3(&parts(
            "POST",
            "/",
            Some("Firehose_20150804.PutRecord")
        )));
        assert!(!is_s3(&parts(
            "GET",
            "/x",
            Some("Kinesis_20131202.ListStreams")
        )));
    }

    #[test]
    fn requests_are_authorized_as_the_s3_action_on_their_bucket_or_object() {
        let of = |method, uri| action_and_resource(&parts(method, uri, None));
        assert_eq!(of("GET", "/"), ("s3:ListAllMyBuckets", "*".to_owned()));
        assert_eq!(
            of("PUT", "/b"),
            ("s3:CreateBucket", "arn:aws:s3:::b".to_owned())
        );
        assert_eq!(
            of("GET", "/b?list-type=2"),
            ("s3:ListBucket", "arn:aws:s3:::b".to_owned())
        );
        assert_eq!(
            of("GET", "/b/k/x"),
            ("s3:GetObject", "arn:aws:s3:::b/k/x".to_owned())
        );
        assert_eq!(
            of("PUT", "/b/k?partNumber=1&uploadId=u"),
            ("s3:PutObject", "arn:aws:s3:::b/k".to_owned())
        );
        assert_eq!(
            of("DELETE", "/b/k"),
            ("s3:DeleteObject", "arn:aws:s3:::b/k".to_owned())
        );
    }
}
