//! The embedded S3 through the official AWS SDK for Rust's S3 client (path-style), over HTTP.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use common::{code, start, status};
use md5::{Digest, Md5};

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn content_md5(data: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(Md5::digest(data))
}

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

async fn get(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {key}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("body")
        .into_bytes()
        .to_vec()
}

#[tokio::test]
async fn buckets_are_created_listed_headed_and_deleted_with_s3_errors() {
    let s = start().await;
    let c = &s.client;
    c.create_bucket()
        .bucket("logs")
        .send()
        .await
        .expect("create");
    c.create_bucket()
        .bucket("archive.2026")
        .send()
        .await
        .expect("create");
    assert_eq!(
        code(c.create_bucket().bucket("logs").send().await),
        "BucketAlreadyOwnedByYou"
    );
    assert_eq!(status(c.create_bucket().bucket("logs").send().await), 409);
    for bad in ["Upper", "a_b", "ab", "192.168.1.1", "x..y"] {
        assert_eq!(
            code(c.create_bucket().bucket(bad).send().await),
            "InvalidBucketName",
            "{bad}"
        );
    }

    let listed = c.list_buckets().send().await.expect("list");
    let names: Vec<&str> = listed.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["archive.2026", "logs"]);
    assert!(listed.buckets().iter().all(|b| b.creation_date().is_some()));

    c.head_bucket().bucket("logs").send().await.expect("head");
    assert_eq!(status(c.head_bucket().bucket("nope").send().await), 404);

    put(c, "logs", "a", b"x").await;
    assert_eq!(
        code(c.delete_bucket().bucket("logs").send().await),
        "BucketNotEmpty"
    );
    c.delete_object()
        .bucket("logs")
        .key("a")
        .send()
        .await
        .expect("delete object");
    c.delete_bucket()
        .bucket("logs")
        .send()
        .await
        .expect("delete bucket");
    assert_eq!(
        code(c.delete_bucket().bucket("logs").send().await),
        "NoSuchBucket"
    );
    assert_eq!(status(c.head_bucket().bucket("logs").send().await), 404);
}

#[tokio::test]
async fn objects_keep_their_bytes_etag_content_type_and_user_metadata() {
    let s = start().await;
    let c = &s.client;
    c.create_bucket().bucket("bkt1").send().await.unwrap();
    let body = b"{\"hello\":\"world\"}\n".repeat(100);
    let written = c
        .put_object()
        .bucket("bkt1")
        .key("data/one.json")
        .body(ByteStream::from(body.clone()))
        .content_type("application/json")
        .content_md5(content_md5(&body))
        .metadata("origin", "firehose")
        .metadata("batch", "7")
        .send()
        .await
        .expect("put");
    let etag = format!("\"{}\"", md5_hex(&body));
    assert_eq!(written.e_tag(), Some(etag.as_str()));

    let got = c
        .get_object()
        .bucket("bkt1")
        .key("data/one.json")
        .send()
        .await
        .expect("get");
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(got.content_type(), Some("application/json"));
    assert_eq!(got.content_length(), Some(body.len() as i64));
    assert!(got.last_modified().is_some());
    let meta = got.metadata().expect("metadata");
    assert_eq!(meta.get("origin").map(String::as_str), Some("firehose"));
    assert_eq!(meta.get("batch").map(String::as_str), Some("7"));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().to_vec(),
        body
    );

    let head = c
        .head_object()
        .bucket("bkt1")
        .key("data/one.json")
        .send()
        .await
        .expect("head");
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(head.content_length(), Some(body.len() as i64));
    assert_eq!(head.content_type(), Some("application/json"));

    // A second put replaces the first, metadata included.
    put(c, "bkt1", "data/one.json", b"v2").await;
    let got = c
        .get_object()
        .bucket("bkt1")
        .key("data/one.json")
        .send()
        .await
        .unwrap();
    assert!(got.metadata().is_none_or(|m| m.is_empty()));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"v2"
    );

    // An empty object is an object.
    put(c, "bkt1", "empty", b"").await;
    assert_eq!(get(c, "bkt1", "empty").await, b"");
}

#[tokio::test]
async fn content_md5_is_checked() {
    let s = start().await;
    let c = &s.client;
    c.create_bucket().bucket("bkt2").send().await.unwrap();
    let wrong = c
        .put_object()
        .bucket("bkt2")
        .key("k")
        .body(ByteStream::from_static(b"payload"))
        .content_md5(content_md5(b"something else"))
        .send()
        .await;
    assert_eq!(code(wrong), "BadDigest");
    let invalid = c
        .put_object()
        .bucket("bkt2")
        .key("k")
        .body(ByteStream::from_static(b"payload"))
        .content_md5("not-base64!")
        .send()
        .await;
    assert_eq!(code(invalid), "InvalidDigest");
    // Neither left an object behind.
    assert_eq!(
        code(c.head_object().bucket("bkt2").key("k").send().await),
        "NotFound"
    );
}

#[tokio::test]
async fn missing_objects_and_buckets_get_s3_errors_and_deletes_are_idempotent() {
    let s = start().await;
    let c = &s.client;
    c.create_bucket().bucket("bkt3").send().await.unwrap();
    let missing = c
        .get_object()
        .bucket("bkt3")
        .key("no/such key")
        .send()
        .await;
    let err = missing.expect_err("missing key");
    assert!(
        err.as_service_error().is_some_and(|e| e.is_no_such_key()),
        "{err:?}"
    );
    assert_eq!(
        code(c.get_object().bucket("bkt3").key("x").send().await),
        "NoSuchKey"
    );
    assert_eq!(
        status(c.get_object().bucket("bkt3").key("x").send().await),
        404
    );
    assert_eq!(
        code(c.get_object().bucket("nobucket").key("x").send().await),
        "NoSuchBucket"
    );
    assert_eq!(
        code(c.put_object().bucket("nobucket").key("x").send().await),
        "NoSuchBucket"
    );
    assert_eq!(
        status(c.head_object().bucket("bkt3").key("x").send().await),
        404
    );
    c.delete_object()
        .bucket("bkt3")
        .key("never-existed")
        .send()
        .await
        .expect("204 even if absent");
    let long = "k".repeat(1025);
    assert_eq!(
        code(c.put_object().bucket("bkt3").key(long).send().await),
        "KeyTooLongError"
    );
}

#[tokio::test]
async fn keys_with_slashes_unicode_and_reserved_characters_round_trip() {
    let s = start().await;
    let c = &s.client;
    c.create_bucket().bucket("keys").send().await.unwrap();
    let keys = [
        "raw-data/2026/12/06/02/stream-1-2026-12-06-02-43-20-abc",
        "ünïcødé/日本語 ファイル.json",
        "spaces and+plus&amp=%25?#",
        "dir/",
        "a//b",
        "./dot",
        "..",
        "~tilde",
        &"long/".repeat(204),
    ];
    for (i, key) in keys.iter().enumerate() {
        put(c, "keys", key, format!("object {i}").as_bytes()).await;
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            get(c, "keys", key).await,
            format!("object {i}").as_bytes(),
            "{key}"
        );
    }
    let listed = c
        .list_objects_v2()
        .bucket("keys")
        .send()
        .await
        .expect("list");
    let mut expected: Vec<&str> = keys.to_vec();
    expected.sort();
    let got: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn ranges_answer_206_with_content_range_and_416_past_the_end() {
    let s = start().await;
    let c = &s.client;
    c.create_bucket().bucket("ranges").send().await.unwrap();
    let body: Vec<u8> = (0..100u8).collect();
    put(c, "ranges", "r", &body).await;
    for (range, start, end) in [
        ("bytes=10-19", 10, 19),
        ("bytes=90-", 90, 99),
        ("bytes=-5", 95, 99),
        ("bytes=98-500", 98, 99),
    ] {
        let out = c
            .get_object()
            .bucket("ranges")
            .key("r")
            .range(range)
            .send()
            .await
            .expect(range);
        assert_eq!(
            out.content_range(),
            Some(format!("bytes {start}-{end}/100").as_str())
        );
        assert_eq!(out.content_length(), Some(end - start + 1));
        let bytes = out.body.collect().await.unwrap().into_bytes();
        assert_eq!(&bytes[..], &body[start as usize..=end as usize], "{range}");
    }
    let head = c
        .head_object()
        .bucket("ranges")
        .key("r")
        .range("bytes=0-0")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(1));
    let past = c
        .get_object()
        .bucket("ranges")
        .key("r")
        .range("bytes=100-")
        .send()
        .await;
    assert_eq!(status(past), 416);
    let past = c
        .get_object()
        .bucket("ranges")
        .key("r")
        .range("bytes=100-")
        .send()
        .await;
    assert_eq!(code(past), "InvalidRange");
}

#[tokio::test]
async fn large_objects_stream_back_whole() {
    let s = start().await;
    let c = &s.client;
    c.create_bucket().bucket("big").send().await.unwrap();
    let body: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    put(c, "big", "blob", &body).await;
    let got = get(c, "big", "blob").await;
    assert_eq!(got.len(), body.len());
    assert!(got == body);

    // From a file, the SDK streams the body (aws-chunked, with a trailing
    // checksum where it chooses to); the stored bytes are the file's.
    let path = s.dir.path().join("upload.bin");
    std::fs::write(&path, &body).unwrap();
    let from_file = ByteStream::from_path(&path).await.expect("file body");
    c.put_object()
        .bucket("big")
        .key("from-file")
        .body(from_file)
        .send()
        .await
        .expect("put file");
    let got = get(c, "big", "from-file").await;
    assert!(got == body, "{} bytes back for {}", got.len(), body.len());
}

const PART: usize = 5 * 1024 * 1024;

async fn upload_part(c: &aws_sdk_s3::Client, key: &str, id: &str, n: i32, data: &[u8]) -> String {
    let out = c
        .upload_part()
        .bucket("mpu")
        .key(key)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload part {n}: {e:?}"));
    out.e_tag().expect("etag").to_owned()
}

fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(*e).build())
                .collect(),
        ))
        .build()
}

#[tokio::test]
async fn multipart_uploads_assemble_parts_under_the_md5_of_md5s_etag() {
    let s = start().await;
    let c = &s.client;
    c.create_bucket().bucket("mpu").send().await.unwrap();
    let first = vec![b'a'; PART];
    let second = b"the tail".to_vec();
    let created = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("big/object")
        .content_type("text/plain")
        .metadata("kind", "multipart")
        .send()
        .await
        .expect("create upload");
    let id = created.upload_id().expect("upload id");
    let e1 = upload_part(c, "big/object", id, 1, &first).await;
    let e2 = upload_part(c, "big/object", id, 2, &second).await;
    assert_eq!(e1, format!("\"{}\"", md5_hex(&first)));

    let parts = c
        .list_parts()
        .bucket("mpu")
        .key("big/object")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    let listed: Vec<(i32, i64)> = parts
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap(), p.size().unwrap()))
        .collect();
    assert_eq!(listed, [(1, PART as i64), (2, second.len() as i64)]);

    // Not yet visible.
    assert_eq!(
        code(c.head_object().bucket("mpu").key("big/object").send().await),
        "NotFound"
    );
    let done = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("big/object")
        .upload_id(id)
        .multipart_upload(completed(&[(1, &e1), (2, &e2)]))
        .send()
        .await
        .expect("complete");
    let mut md5s = Md5::digest(&first).to_vec();
    md5s.extend(Md5::digest(&second));
    let expected = format!("\"{}-2\"", md5_hex(&md5s));
    assert_eq!(done.e_tag(), Some(expected.as_str()));

    let got = c
        .get_object()
        .bucket("mpu")
        .key("big/object")
        .send()
        .await
        .unwrap();
    assert_eq!(got.e_tag(), Some(expected.as_str()));
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("kind"))
            .map(String::as_str),
        Some("multipart")
    );
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.len(), PART + second.len());
    assert!(bytes[..PART] == first[..] && bytes[PART..] == second[..]);

    // The upload is gone once completed.
    let again = c
        .list_parts()
        .bucket("mpu")
        .key("big/object")
        .upload_id(id)
        .send()
        .await;
    assert_eq!(code(again), "NoSuchUpload");
}

#[tokio::test]
async fn multipart_uploads_refuse_bad_part_lists_and_can_be_aborted() {
    let s = start().await;
    let c = &s.client;
    c.create_bucket().bucket("mpu").send().await.unwrap();
    let id = c
        .create_multipart_upload()
        .bucket("mpu")
        .key("k")
        .send()
        .await
        .unwrap();
    let id = id.upload_id().unwrap();
    let small = upload_part(c, "k", id, 1, b"too small to be first").await;
    let last = upload_part(c, "k", id, 2, b"last").await;
    let complete = |parts: CompletedMultipartUpload| {
        c.complete_multipart_upload()
            .bucket("mpu")
            .key("k")
            .upload_id(id)
            .multipart_upload(parts)
            .send()
    };
    assert_eq!(
        code(complete(completed(&[(1, &small), (2, &last)])).await),
        "EntityTooSmall"
    );
    assert_eq!(
        code(complete(completed(&[(2, &last), (1, &small)])).await),
        "InvalidPartOrder"
    );
    assert_eq!(
        code(complete(completed(&[(1, "\"0000\"")])).await),
        "InvalidPart"
    );
    assert_eq!(
        code(complete(completed(&[(3, &last)])).await),
        "InvalidPart"
    );
    let bad_number = c
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(id)
        .part_number(10_001)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(bad_number), "InvalidArgument");

    c.abort_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(id)
        .send()
        .await
        .expect("abort");
    let after = c
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code(after), "NoSuchUpload");
    let abort_again = c
        .abort_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(id)
        .send()
        .await;
    assert_eq!(code(abort_again), "NoSuchUpload");
    let made_up = c
        .abort_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id("../../x")
        .send()
        .await;
    assert_eq!(code(made_up), "NoSuchUpload");
}

#[tokio::test]
async fn listing_rolls_up_common_prefixes_and_pages_with_continuation_tokens() {
    let s = start().await;
    let c = &s.client;
    c.create_bucket().bucket("list").send().await.unwrap();
    let keys = [
        "raw-data/2026/12/06/01/a",
        "raw-data/2026/12/06/02/b",
        "raw-data/2026/12/06/02/c",
        "raw-data/2026/12/07/00/d",
        "errors/x",
        "top",
    ];
    for key in keys {
        put(c, "list", key, key.as_bytes()).await;
    }

    let out = c
        .list_objects_v2()
        .bucket("list")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["errors/", "raw-data/"]);
    let objects: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(objects, ["top"]);
    assert_eq!(out.key_count(), Some(3));
    let top = &out.contents()[0];
    assert_eq!(top.size(), Some(3));
    assert_eq!(
        top.e_tag(),
        Some(format!("\"{}\"", md5_hex(b"top")).as_str())
    );

    let out = c
        .list_objects_v2()
        .bucket("list")
        .prefix("raw-data/2026/12/06/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(
        prefixes,
        ["raw-data/2026/12/06/01/", "raw-data/2026/12/06/02/"]
    );

    // Pages of two, through the SDK's paginator.
    let pages: Vec<_> = c
        .list_objects_v2()
        .bucket("list")
        .max_keys(2)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await;
    assert_eq!(pages.len(), 3);
    let mut all = Vec::new();
    for page in pages {
        let page = page.expect("page");
        assert!(page.key_count().unwrap() <= 2);
        all.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned)),
        );
    }
    let mut expected: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    expected.sort();
    assert_eq!(all, expected);

    let out = c
        .list_objects_v2()
        .bucket("list")
        .start_after("raw-data/2026/12/06/02/c")
        .send()
        .await
        .unwrap();
    let objects: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(objects, ["raw-data/2026/12/07/00/d", "top"]);

    let bad = c
        .list_objects_v2()
        .bucket("list")
        .continuation_token("garbage")
        .send()
        .await;
    assert_eq!(code(bad), "InvalidArgument");
    assert_eq!(
        code(c.list_objects_v2().bucket("missing").send().await),
        "NoSuchBucket"
    );

    // ListObjects (v1) over the same keys.
    let v1 = c
        .list_objects()
        .bucket("list")
        .prefix("raw-data/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<&str> = v1
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["raw-data/2026/"]);
}

#[tokio::test]
async fn delete_objects_removes_a_batch() {
    let s = start().await;
    let c = &s.client;
    c.create_bucket().bucket("del").send().await.unwrap();
    for key in ["a", "b/c"] {
        put(c, "del", key, b"x").await;
    }
    let delete = Delete::builder()
        .set_objects(Some(
            ["a", "b/c", "never"]
                .iter()
                .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
                .collect(),
        ))
        .build()
        .unwrap();
    let out = c
        .delete_objects()
        .bucket("del")
        .delete(delete)
        .send()
        .await
        .expect("delete objects");
    let deleted: Vec<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
    assert_eq!(deleted, ["a", "b/c", "never"]);
    assert!(out.errors().is_empty());
    let listed = c.list_objects_v2().bucket("del").send().await.unwrap();
    assert!(listed.contents().is_empty());
}

#[tokio::test]
async fn copy_object_copies_bytes_and_keeps_or_replaces_metadata() {
    let s = start().await;
    let c = &s.client;
    c.create_bucket().bucket("src").send().await.unwrap();
    c.create_bucket().bucket("dst").send().await.unwrap();
    c.put_object()
        .bucket("src")
        .key("dir/ü file")
        .body(ByteStream::from_static(b"copy me"))
        .content_type("text/plain")
        .metadata("m", "1")
        .send()
        .await
        .unwrap();
    let source = "src/dir/%C3%BC%20file";
    let out = c
        .copy_object()
        .bucket("dst")
        .key("copied")
        .copy_source(source)
        .send()
        .await
        .expect("copy");
    let etag = format!("\"{}\"", md5_hex(b"copy me"));
    assert_eq!(
        out.copy_object_result().and_then(|r| r.e_tag()),
        Some(etag.as_str())
    );
    let got = c
        .get_object()
        .bucket("dst")
        .key("copied")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(
        got.metadata().and_then(|m| m.get("m")).map(String::as_str),
        Some("1")
    );
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"copy me"
    );

    c.copy_object()
        .bucket("dst")
        .key("replaced")
        .copy_source(source)
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .content_type("application/octet-stream")
        .metadata("m", "2")
        .send()
        .await
        .expect("copy with replace");
    let head = c
        .head_object()
        .bucket("dst")
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata().and_then(|m| m.get("m")).map(String::as_str),
        Some("2")
    );

    let to_itself = c
        .copy_object()
        .bucket("src")
        .key("dir/ü file")
        .copy_source(source)
        .send()
        .await;
    assert_eq!(code(to_itself), "InvalidRequest");
    let missing = c
        .copy_object()
        .bucket("dst")
        .key("x")
        .copy_source("src/none")
        .send()
        .await;
    assert_eq!(code(missing), "NoSuchKey");
}
