//! The S3 REST API (path-style `/bucket/key`), served by `riffle-s3`: how
//! a request is recognised as S3, and the IAM action each one is.
//!
//! A request is S3's when it has no `X-Amz-Target` and is not a `POST /`:
//! every JSON-protocol call is a `POST /` (with or without a target, which
//! keeps AWS's answers to malformed JSON calls), and no path-style S3
//! operation posts to `/`.

use hyper::Method;
use hyper::http::request::Parts;

use crate::service::{JsonVersion, ServiceInfo};
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

/// The S3 operations riffle-s3 serves, as the S3 model names them, sorted:
/// the edge counts requests by them.
pub static S3_INFO: ServiceInfo = ServiceInfo {
    target_prefix: "",
    signing_name: "s3",
    iam_prefix: "s3",
    event_source: "s3.amazonaws.com",
    operations: &[
        "AbortMultipartUpload",
        "CompleteMultipartUpload",
        "CopyObject",
        "CreateBucket",
        "CreateMultipartUpload",
        "DeleteBucket",
        "DeleteObject",
        "DeleteObjects",
        "GetObject",
        "HeadBucket",
        "HeadObject",
        "ListBuckets",
        "ListMultipartUploads",
        "ListObjects",
        "ListObjectsV2",
        "ListParts",
        "PutObject",
        "UploadPart",
    ],
    // CloudTrail's S3 data events are the object-level operations; bucket
    // operations (listings included) are management events.
    data_events: &[
        "AbortMultipartUpload",
        "CompleteMultipartUpload",
        "CopyObject",
        "CreateMultipartUpload",
        "DeleteObject",
        "DeleteObjects",
        "GetObject",
        "HeadObject",
        "ListParts",
        "PutObject",
        "UploadPart",
    ],
    cbor: false,
    json_version: JsonVersion::V1_1,
    error_namespace: None,
    query: None,
    rpc_v2_cbor: None,
    rest_json: &[],
};

/// A request's bucket and key (empty when absent), as sent.
fn bucket_and_key(parts: &Parts) -> (&str, &str) {
    let path = parts.uri.path().trim_start_matches('/');
    path.split_once('/').unwrap_or((path, ""))
}

/// The request's parameters for its audit line, as CloudTrail records an
/// S3 call's: `{"bucketName":…,"key":…}` (each only when the path names
/// it; the key percent-decoded). The audit log lowers the first letters.
pub(crate) fn request_parameters(parts: &Parts) -> bytes::Bytes {
    let (bucket, key) = bucket_and_key(parts);
    let mut members = serde_json::Map::new();
    if !bucket.is_empty() {
        members.insert("BucketName".into(), decoded(bucket).into());
    }
    if !key.is_empty() {
        members.insert("Key".into(), decoded(key).into());
    }
    serde_json::Value::Object(members).to_string().into()
}

fn decoded(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// The S3 operation a path-style request is, by method, path and
/// sub-resource, as riffle-s3 routes it.
pub(crate) fn operation(parts: &Parts) -> &'static str {
    let (bucket, key) = bucket_and_key(parts);
    let query = parts.uri.query().unwrap_or_default();
    let has = |name: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(name))
    };
    let method = &parts.method;
    if bucket.is_empty() {
        return "ListBuckets";
    }
    if key.is_empty() {
        return match *method {
            Method::PUT => "CreateBucket",
            Method::DELETE => "DeleteBucket",
            Method::HEAD => "HeadBucket",
            Method::POST => "DeleteObjects",
            _ if has("uploads") => "ListMultipartUploads",
            _ if query.contains("list-type=2") => "ListObjectsV2",
            _ => "ListObjects",
        };
    }
    match *method {
        Method::GET if has("uploadId") => "ListParts",
        Method::GET => "GetObject",
        Method::HEAD => "HeadObject",
        Method::PUT if has("uploadId") => "UploadPart",
        Method::PUT if parts.headers.contains_key("x-amz-copy-source") => "CopyObject",
        Method::PUT => "PutObject",
        Method::POST if has("uploads") => "CreateMultipartUpload",
        Method::POST => "CompleteMultipartUpload",
        Method::DELETE if has("uploadId") => "AbortMultipartUpload",
        _ => "DeleteObject",
    }
}

/// The IAM action and resource an S3 request is authorized as (AWS's
/// mapping of operations to actions; multipart steps are `s3:PutObject`).
pub(crate) fn action_and_resource(parts: &Parts) -> (&'static str, String) {
    let (bucket, key) = bucket_and_key(parts);
    let action = match operation(parts) {
        "ListBuckets" => return ("s3:ListAllMyBuckets", "*".to_owned()),
        "CreateBucket" => "s3:CreateBucket",
        "DeleteBucket" => "s3:DeleteBucket",
        "HeadBucket" | "ListObjects" | "ListObjectsV2" => "s3:ListBucket",
        "ListMultipartUploads" => "s3:ListBucketMultipartUploads",
        "DeleteObjects" | "DeleteObject" => "s3:DeleteObject",
        "GetObject" | "HeadObject" => "s3:GetObject",
        "ListParts" => "s3:ListMultipartUploadParts",
        "AbortMultipartUpload" => "s3:AbortMultipartUpload",
        _ => "s3:PutObject",
    };
    let resource = if key.is_empty() {
        format!("arn:aws:s3:::{bucket}")
    } else {
        format!("arn:aws:s3:::{bucket}/{key}")
    };
    (action, resource)
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
    fn requests_are_named_by_the_operation_riffle_s3_routes_them_to() {
        let of = |method, uri| operation(&parts(method, uri, None));
        assert_eq!(of("GET", "/"), "ListBuckets");
        assert_eq!(of("GET", "/b?list-type=2&prefix=x"), "ListObjectsV2");
        assert_eq!(of("POST", "/b?delete"), "DeleteObjects");
        assert_eq!(of("POST", "/b/k?uploads"), "CreateMultipartUpload");
        assert_eq!(of("PUT", "/b/k?partNumber=2&uploadId=u"), "UploadPart");
        assert_eq!(of("POST", "/b/k?uploadId=u"), "CompleteMultipartUpload");
        assert_eq!(of("HEAD", "/b/k"), "HeadObject");
        assert!(S3_INFO.operations.is_sorted());
        for op in [
            "GetObject",
            "ListBuckets",
            "UploadPart",
            "CompleteMultipartUpload",
        ] {
            assert_eq!(S3_INFO.operation(op), Some(op));
        }
    }

    #[test]
    fn audit_parameters_name_the_bucket_and_the_decoded_key() {
        let of = |uri| {
            let json = request_parameters(&parts("GET", uri, None));
            serde_json::from_slice::<serde_json::Value>(&json).unwrap()
        };
        assert_eq!(
            of("/lake/raw-data/a%20b.gz?x=1"),
            serde_json::json!({"BucketName": "lake", "Key": "raw-data/a b.gz"})
        );
        assert_eq!(of("/lake"), serde_json::json!({"BucketName": "lake"}));
        assert_eq!(of("/"), serde_json::json!({}));
        assert!(S3_INFO.data_events.is_sorted());
        assert!(
            S3_INFO
                .data_events
                .iter()
                .all(|op| S3_INFO.operation(op).is_some())
        );
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
