//! The in-process API Firehose delivery uses, durability across a reopen, and the exact
//! HTTP answers (error documents, headers) of `S3::handle` without a client in between.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use riffle_s3::{ListQuery, PutOptions, RequestId, S3, S3Body, S3Error};

fn open() -> (tempfile::TempDir, S3) {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3::open(dir.path().join("s3")).unwrap();
    (dir, s3)
}

async fn call(
    s3: &S3,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (StatusCode, http::HeaderMap, String) {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(Bytes::copy_from_slice(body)).unwrap();
    let response = s3.handle(request).await;
    let (parts, body): (_, S3Body) = response.into_parts();
    let bytes = body.collect().await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

#[tokio::test]
async fn in_process_puts_are_read_back_and_listed() {
    let (_dir, s3) = open();
    s3.create_bucket("delivery").await.unwrap();
    let meta = s3
        .put_object(
            "delivery",
            "raw-data/2026/12/06/02/s-1-x",
            Bytes::from_static(b"hello"),
        )
        .await
        .unwrap();
    assert_eq!(meta.etag, "5d41402abc4b2a76b9719d911017c592");
    let (read, bytes) = s3
        .get_object("delivery", "raw-data/2026/12/06/02/s-1-x")
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"hello");
    assert_eq!(read, meta);
    let page = s3
        .list_objects(
            "delivery",
            ListQuery {
                max_keys: 1000,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.objects, vec![meta]);
    assert!(matches!(
        s3.put_object("nowhere", "k", Bytes::new()).await,
        Err(S3Error::NoSuchBucket { .. })
    ));
}

#[tokio::test]
async fn objects_and_buckets_survive_a_reopen_and_half_written_files_never_show() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s3");
    {
        let s3 = S3::open(&root).unwrap();
        s3.create_bucket("durable").await.unwrap();
        let options = PutOptions {
            content_type: Some("application/gzip".into()),
            user_metadata: [("k".to_owned(), "v".to_owned())].into(),
            ..PutOptions::default()
        };
        s3.put_object_with("durable", "a/b.gz", Bytes::from_static(b"gz"), options)
            .await
            .unwrap();
        s3.create_multipart_upload("durable", "pending", PutOptions::default())
            .await
            .unwrap();
    }
    // What a crash mid-write leaves: a temp file, and an upload directory
    // whose record was never written.
    std::fs::write(root.join("durable/tmp/0123abcd"), b"half an object").unwrap();
    std::fs::create_dir(root.join("durable/uploads/00000000000000000000000000000000")).unwrap();
    std::fs::create_dir(root.join(".staging-deadbeef")).unwrap();

    let s3 = S3::open(&root).unwrap();
    assert!(
        std::fs::read_dir(root.join("durable/tmp"))
            .unwrap()
            .next()
            .is_none()
    );
    assert!(
        !root
            .join("durable/uploads/00000000000000000000000000000000")
            .exists()
    );
    assert!(!root.join(".staging-deadbeef").exists());
    let buckets = s3.list_buckets().await.unwrap();
    assert_eq!(
        buckets.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
        ["durable"]
    );
    let (meta, bytes) = s3.get_object("durable", "a/b.gz").await.unwrap();
    assert_eq!(&bytes[..], b"gz");
    assert_eq!(meta.content_type.as_deref(), Some("application/gzip"));
    assert_eq!(meta.user_metadata.get("k").map(String::as_str), Some("v"));
    let page = s3
        .list_objects(
            "durable",
            ListQuery {
                max_keys: 1000,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.objects.len(), 1);
}

#[tokio::test]
async fn a_temp_file_is_never_listed_or_served() {
    let (dir, s3) = open();
    s3.create_bucket("quiet").await.unwrap();
    std::fs::write(dir.path().join("s3/quiet/tmp/abc"), b"in flight").unwrap();
    let page = s3
        .list_objects(
            "quiet",
            ListQuery {
                max_keys: 1000,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert!(page.objects.is_empty());
    assert!(matches!(
        s3.get_object("quiet", "abc").await,
        Err(S3Error::NoSuchKey { .. })
    ));
}

#[tokio::test]
async fn errors_are_s3_xml_documents_with_the_resource_and_request_id() {
    let (_dir, s3) = open();
    s3.create_bucket("docs").await.unwrap();
    let request = Request::get("/docs/no%20such/key")
        .extension(RequestId("REQ123".into()))
        .body(Bytes::new())
        .unwrap();
    let response = s3.handle(request).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["x-amz-request-id"], "REQ123");
    assert_eq!(response.headers()["content-type"], "application/xml");
    let body = response.into_body().collect().await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&body),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>\
         <Message>The specified key does not exist.</Message><Key>no such/key</Key>\
         <RequestId>REQ123</RequestId><HostId>REQ123</HostId></Error>"
    );

    let (status, _, body) = call(&s3, Method::GET, "/missing/k", &[], b"").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body.contains("<Code>NoSuchBucket</Code>")
            && body.contains("<BucketName>missing</BucketName>"),
        "{body}"
    );

    // HEAD errors carry the status and no body.
    let (status, _, body) = call(&s3, Method::HEAD, "/docs/nothing", &[], b"").await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, ""));

    let (status, _, body) = call(&s3, Method::GET, "/docs?versioning", &[], b"").await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert!(body.contains("<Code>NotImplemented</Code>"), "{body}");

    let (status, _, body) = call(&s3, Method::PATCH, "/docs/k", &[], b"").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body.contains("<Code>MethodNotAllowed</Code>"), "{body}");

    let (status, _, body) = call(&s3, Method::POST, "/docs/k?uploadId=x", &[], b"<nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("<Code>NoSuchUpload</Code>"), "{body}");

    let (status, _, body) = call(&s3, Method::GET, "/docs/%FF", &[], b"").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("<Code>InvalidURI</Code>"), "{body}");

    let (status, _, body) = call(&s3, Method::GET, "/docs/k", &[("range", "bytes=5-")], b"").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn objects_answer_with_s3_headers_and_default_content_type() {
    let (_dir, s3) = open();
    s3.create_bucket("hdrs").await.unwrap();
    let (status, headers, _) = call(
        &s3,
        Method::PUT,
        "/hdrs/k",
        &[
            ("x-amz-meta-Color", "blue"),
            ("content-encoding", "gzip"),
            ("cache-control", "no-cache"),
        ],
        b"data",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["etag"], "\"8d777f385d3dfec8815d20f7496026dc\"");
    let (status, headers, body) = call(&s3, Method::GET, "/hdrs/k", &[], b"").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "data"));
    assert_eq!(headers["content-type"], "binary/octet-stream");
    assert_eq!(headers["content-length"], "4");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["x-amz-meta-color"], "blue");
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(headers["last-modified"].to_str().unwrap().ends_with(" GMT"));
    let (_, headers, _) = call(
        &s3,
        Method::GET,
        "/hdrs/k?response-content-type=text%2Fplain",
        &[],
        b"",
    )
    .await;
    assert_eq!(headers["content-type"], "text/plain");
}

#[tokio::test]
async fn aws_chunked_uploads_store_the_unframed_bytes() {
    let (_dir, s3) = open();
    s3.create_bucket("chunks").await.unwrap();
    let framed = b"4\r\nabcd\r\n3\r\nefg\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
    let headers = [
        ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "7"),
    ];
    let (status, _, body) = call(&s3, Method::PUT, "/chunks/k", &headers, framed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (meta, bytes) = s3.get_object("chunks", "k").await.unwrap();
    assert_eq!(&bytes[..], b"abcdefg");
    assert!(!meta.headers.contains_key("content-encoding"));
    let wrong_length = [
        headers[0],
        headers[1],
        ("x-amz-decoded-content-length", "8"),
    ];
    let (status, _, body) = call(&s3, Method::PUT, "/chunks/k", &wrong_length, framed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("<Code>IncompleteBody</Code>"), "{body}");
}

#[tokio::test]
async fn url_encoded_listings_encode_keys_and_prefixes() {
    let (_dir, s3) = open();
    s3.create_bucket("enc").await.unwrap();
    s3.put_object("enc", "dir one/ü+x", Bytes::from_static(b"1"))
        .await
        .unwrap();
    s3.put_object("enc", "top key", Bytes::from_static(b"2"))
        .await
        .unwrap();
    let (status, _, body) = call(
        &s3,
        Method::GET,
        "/enc?list-type=2&delimiter=%2F&encoding-type=url",
        &[],
        b"",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<Prefix>dir%20one/</Prefix>"), "{body}");
    assert!(body.contains("<Key>top%20key</Key>"), "{body}");
    assert!(body.contains("<EncodingType>url</EncodingType>"), "{body}");
    assert!(body.contains("<KeyCount>2</KeyCount>"), "{body}");
    let (status, _, body) = call(&s3, Method::GET, "/enc?list-type=2&max-keys=-1", &[], b"").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("<ArgumentName>max-keys</ArgumentName>"),
        "{body}"
    );
}

#[tokio::test]
async fn the_edge_renders_its_own_refusals_as_s3_errors() {
    let response = riffle_s3::error_response(
        &S3Error::InvalidAccessKeyId {
            access_key_id: "AKIDNOPE".into(),
        },
        "EDGE1",
        false,
    );
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.headers()["x-amz-request-id"], "EDGE1");
    // The audit log reads the code from the answer, not from its XML.
    assert_eq!(
        response
            .extensions()
            .get::<riffle_s3::ErrorInfo>()
            .map(|e| e.code),
        Some("InvalidAccessKeyId")
    );
    let body = response.into_body().collect().await.unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("<Code>InvalidAccessKeyId</Code>"), "{body}");
    assert!(
        body.contains("<AWSAccessKeyId>AKIDNOPE</AWSAccessKeyId>"),
        "{body}"
    );
    let too_big = S3Error::EntityTooLarge {
        size: 1 << 40,
        max: 1 << 30,
    };
    let head = riffle_s3::error_response(&too_big, "E2", true);
    assert_eq!(head.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        head.extensions()
            .get::<riffle_s3::ErrorInfo>()
            .map(|e| e.code),
        Some("EntityTooLarge")
    );
}

#[tokio::test]
async fn a_directory_made_by_hand_is_a_bucket() {
    let (dir, s3) = open();
    std::fs::create_dir(dir.path().join("s3/by-hand")).unwrap();
    s3.head_bucket("by-hand").await.unwrap();
    s3.put_object("by-hand", "k", Bytes::from_static(b"v"))
        .await
        .unwrap();
    assert_eq!(&s3.get_object("by-hand", "k").await.unwrap().1[..], b"v");
    let names: Vec<String> = s3
        .list_buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["by-hand"]);
}
