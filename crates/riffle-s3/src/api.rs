//! The HTTP entry point: a path-style S3 REST request in, its answer out.
//!
//! The edge has already read the body and authenticated the caller; this
//! module routes by method, path and sub-resource, reads S3's headers and
//! query parameters, and writes S3's headers and XML documents, errors
//! included (S3's `<Error>` document is rendered here, in `error_response`).

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::list::{ListQuery, MAX_KEYS, Marker};
use crate::store::{CopySource, ObjectPage, OpenObject, PutOptions};
use crate::xml::{self, Xml};
use crate::{S3, S3Body, S3Error, time};

/// The request ID of a call, when the edge has one (for its audit log):
/// put it in the request's extensions and the answer carries it.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The S3 error an answer carries, in its extensions (the document itself
/// is XML in the body): the edge's audit log reads the code and message
/// from here without parsing the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorInfo {
    pub code: &'static str,
    pub message: String,
}

/// The owner every bucket and object shows: the embedded S3 has one account.
const OWNER_ID: &str = "riffle";
/// What S3 answers for an object stored without a Content-Type.
const DEFAULT_CONTENT_TYPE: &str = "binary/octet-stream";
const META_PREFIX: &str = "x-amz-meta-";
/// The headers S3 stores with an object and returns on GET and HEAD.
const STORED_HEADERS: [&str; 5] = [
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];
/// Sub-resources of S3 this subset does not serve: answered with
/// NotImplemented rather than mistaken for a plain GET or PUT.
const UNSUPPORTED_SUBRESOURCES: [&str; 32] = [
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "logging",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "renameObject",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "session",
    "tagging",
    "torrent",
    "versioning",
    "versions",
    "website",
    "versionId",
];
/// `GetObject`'s query parameters that override a response header.
const RESPONSE_OVERRIDES: [(&str, &str); 6] = [
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

/// A request taken apart.
struct Req {
    method: Method,
    bucket: Option<String>,
    key: Option<String>,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
}

impl Req {
    fn parse(request: Request<Bytes>) -> Result<Self, S3Error> {
        let (parts, body) = request.into_parts();
        let path = parts
            .uri
            .path()
            .strip_prefix('/')
            .unwrap_or(parts.uri.path());
        let (bucket, key) = match path.split_once('/') {
            Some((b, k)) => (b, k),
            None => (path, ""),
        };
        let decode = |s: &str| -> Result<Option<String>, S3Error> {
            let bytes: Vec<u8> = percent_encoding::percent_decode_str(s).collect();
            let text = String::from_utf8(bytes).map_err(|_| S3Error::InvalidUri)?;
            Ok((!text.is_empty()).then_some(text))
        };
        let query = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Ok(Self {
            method: parts.method,
            bucket: decode(bucket)?,
            key: decode(key)?,
            query,
            headers: parts.headers,
            body,
        })
    }

    fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.query.iter().any(|(k, _)| k == name)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The uploaded bytes, with `aws-chunked` framing removed.
    fn payload(&self) -> Result<Bytes, S3Error> {
        let chunked = self
            .header("x-amz-content-sha256")
            .is_some_and(|v| v.starts_with("STREAMING-"))
            || self
                .header("content-encoding")
                .is_some_and(|v| v.split(',').any(|t| t.trim() == "aws-chunked"));
        if !chunked {
            return Ok(self.body.clone());
        }
        let decoded = decode_aws_chunked(&self.body)?;
        if let Some(declared) = self.header("x-amz-decoded-content-length")
            && declared.parse::<usize>().ok() != Some(decoded.len())
        {
            return Err(S3Error::IncompleteBody {
                message: "You did not provide the number of bytes specified by the x-amz-decoded-content-length header".into(),
            });
        }
        Ok(decoded)
    }

    /// Content type, user metadata, stored headers and Content-MD5.
    fn put_options(&self) -> PutOptions {
        let mut options = PutOptions {
            content_type: self.header("content-type").map(str::to_owned),
            content_md5: self.header("content-md5").map(str::to_owned),
            ..PutOptions::default()
        };
        for (name, value) in &self.headers {
            let Ok(value) = value.to_str() else { continue };
            if let Some(meta) = name.as_str().strip_prefix(META_PREFIX) {
                options
                    .user_metadata
                    .insert(meta.to_owned(), value.to_owned());
            } else if STORED_HEADERS.contains(&name.as_str()) {
                let value = if name == header::CONTENT_ENCODING {
                    without_aws_chunked(value)
                } else {
                    value.to_owned()
                };
                if !value.is_empty() {
                    options.headers.insert(name.as_str().to_owned(), value);
                }
            }
        }
        options
    }
}

fn without_aws_chunked(encoding: &str) -> String {
    encoding
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != "aws-chunked")
        .collect::<Vec<_>>()
        .join(",")
}

/// Removes `aws-chunked` framing (`<hex size>[;chunk-signature=…]\r\n<data>\r\n`
/// … `0…\r\n` then trailers), which SDKs use for streaming and checksummed
/// uploads. Chunk signatures are the edge's to check; trailers are ignored.
fn decode_aws_chunked(body: &[u8]) -> Result<Bytes, S3Error> {
    let incomplete = || S3Error::IncompleteBody {
        message: "The aws-chunked body is malformed or incomplete".into(),
    };
    let mut out = BytesMut::with_capacity(body.len());
    let mut rest = body;
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(incomplete)?;
        let size_field = rest[..line_end]
            .split(|b| *b == b';')
            .next()
            .unwrap_or_default();
        let size = std::str::from_utf8(size_field)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or_else(incomplete)?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out.freeze());
        }
        if rest.len() < size + 2 || &rest[size..size + 2] != b"\r\n" {
            return Err(incomplete());
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A `Range` header S3 serves: one range of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RangeSpec {
    From(u64, Option<u64>),
    Suffix(u64),
}

/// `None` for a header S3 ignores (not `bytes=`, several ranges, bad
/// syntax): the whole object is served, as S3 does.
fn parse_range(value: &str) -> Option<RangeSpec> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return last.parse().ok().map(RangeSpec::Suffix);
    }
    let first: u64 = first.parse().ok()?;
    let last = if last.is_empty() {
        None
    } else {
        Some(last.parse::<u64>().ok().filter(|l| *l >= first)?)
    };
    Some(RangeSpec::From(first, last))
}

/// The (start, length) of a range in an object of `size` bytes, or `None`
/// if it is not satisfiable.
fn resolve_range(spec: RangeSpec, size: u64) -> Option<(u64, u64)> {
    match spec {
        RangeSpec::From(first, _) if first >= size => None,
        RangeSpec::From(first, last) => {
            let end = last.map_or(size - 1, |l| l.min(size - 1));
            Some((first, end - first + 1))
        }
        RangeSpec::Suffix(0) => None,
        RangeSpec::Suffix(_) if size == 0 => None,
        RangeSpec::Suffix(n) => {
            let n = n.min(size);
            Some((size - n, n))
        }
    }
}

fn new_request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}

fn set(response: &mut Response<S3Body>, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
        response.headers_mut().insert(name, value);
    }
}

fn empty(status: StatusCode) -> Response<S3Body> {
    let mut response = Response::new(S3Body::empty());
    *response.status_mut() = status;
    response
}

fn xml_response(status: StatusCode, document: String) -> Response<S3Body> {
    let mut response = Response::new(S3Body::full(document));
    *response.status_mut() = status;
    set(&mut response, "content-type", "application/xml");
    response
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// S3's `<Error>` document for `error` (no body for a HEAD request), with
/// its status. [`S3::handle`] answers every failure with it; the edge uses
/// it for what it refuses before calling `handle` (a bad signature, a body
/// over its cap), so that S3 clients always read an S3 error.
pub fn error_response(error: &S3Error, request_id: &str, head: bool) -> Response<S3Body> {
    if error.status().is_server_error() {
        tracing::error!(%error, request_id, "S3 request failed");
    }
    let info = ErrorInfo {
        code: error.code(),
        message: error.wire_message(),
    };
    if head {
        let mut response = empty(error.status());
        set(&mut response, "x-amz-request-id", request_id);
        response.extensions_mut().insert(info);
        return response;
    }
    let mut doc = Xml::bare("Error");
    doc.elem("Code", error.code())
        .elem("Message", error.wire_message());
    for (name, value) in error.details() {
        doc.elem(name, value);
    }
    doc.elem("RequestId", request_id).elem("HostId", request_id);
    let mut response = xml_response(error.status(), doc.finish("Error"));
    set(&mut response, "x-amz-request-id", request_id);
    response.extensions_mut().insert(info);
    response
}

/// Percent-encodes as S3 does for `encoding-type=url` (all but unreserved
/// characters and `/`).
fn url_encode(text: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(text, KEEP).to_string()
}

fn method_not_allowed(method: &Method, resource: &'static str) -> S3Error {
    S3Error::MethodNotAllowed {
        method: method.to_string(),
        resource,
    }
}

impl S3 {
    /// Serves one S3 REST request (path-style: `/bucket/key`), already
    /// authenticated by the edge. Never fails: errors are S3's XML error
    /// documents with S3's statuses.
    ///
    /// The body arrives whole, so the edge's body-size cap is the largest
    /// PutObject or UploadPart it lets through; objects larger than that
    /// are uploaded in parts. GetObject's answer streams from the file.
    pub async fn handle(&self, request: Request<Bytes>) -> Response<S3Body> {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map_or_else(new_request_id, |id| id.0.clone());
        let head = request.method() == Method::HEAD;
        let result = match Req::parse(request) {
            Ok(req) => self.route(req).await,
            Err(e) => Err(e),
        };
        result.map_or_else(
            |e| error_response(&e, &request_id, head),
            |mut response| {
                set(&mut response, "x-amz-request-id", &request_id);
                response
            },
        )
    }

    async fn route(&self, req: Req) -> Result<Response<S3Body>, S3Error> {
        if let Some(sub) = UNSUPPORTED_SUBRESOURCES.iter().find(|s| req.has(s)) {
            return Err(S3Error::NotImplemented {
                what: (*sub).to_owned(),
            });
        }
        match (req.bucket.clone(), req.key.clone()) {
            (None, _) if req.method == Method::GET => {
                self.list_buckets().await.map(list_buckets_response)
            }
            (None, _) => Err(method_not_allowed(&req.method, "SERVICE")),
            (Some(bucket), None) => self.bucket_request(&bucket, req).await,
            (Some(bucket), Some(key)) => self.object_request(&bucket, &key, req).await,
        }
    }

    async fn bucket_request(&self, bucket: &str, req: Req) -> Result<Response<S3Body>, S3Error> {
        match req.method {
            Method::PUT => {
                xml::check_create_bucket_configuration(&req.body)?;
                self.create_bucket(bucket).await?;
                let mut response = empty(StatusCode::OK);
                set(&mut response, "location", &format!("/{bucket}"));
                Ok(response)
            }
            Method::HEAD => {
                self.head_bucket(bucket).await?;
                let mut response = empty(StatusCode::OK);
                set(&mut response, "x-amz-bucket-region", "us-east-1");
                Ok(response)
            }
            Method::DELETE => {
                self.delete_bucket(bucket).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            Method::GET if req.has("location") => {
                self.head_bucket(bucket).await?;
                Ok(xml_response(
                    StatusCode::OK,
                    Xml::document("LocationConstraint").finish("LocationConstraint"),
                ))
            }
            Method::GET if req.has("uploads") => Err(S3Error::NotImplemented {
                what: "ListMultipartUploads".into(),
            }),
            Method::GET => self.list_objects_request(bucket, &req).await,
            Method::POST if req.has("delete") => self.delete_objects(bucket, &req).await,
            _ => Err(method_not_allowed(&req.method, "BUCKET")),
        }
    }

    async fn object_request(
        &self,
        bucket: &str,
        key: &str,
        req: Req,
    ) -> Result<Response<S3Body>, S3Error> {
        let upload_id = req.q("uploadId").map(str::to_owned);
        match (&req.method, upload_id) {
            (&Method::PUT, Some(id)) => self.upload_part_request(bucket, key, &id, &req).await,
            (&Method::PUT, None) if req.headers.contains_key("x-amz-copy-source") => {
                self.copy_object_request(bucket, key, &req).await
            }
            (&Method::PUT, None) => {
                let meta = self
                    .put_object_with(bucket, key, req.payload()?, req.put_options())
                    .await?;
                let mut response = empty(StatusCode::OK);
                set(&mut response, "etag", &quoted(&meta.etag));
                Ok(response)
            }
            (&Method::GET, Some(id)) => self.list_parts_request(bucket, key, &id).await,
            (&Method::GET | &Method::HEAD, None) => {
                self.get_object_request(bucket, key, &req).await
            }
            (&Method::DELETE, Some(id)) => {
                self.abort_multipart_upload(bucket, key, &id).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            (&Method::DELETE, None) => {
                self.delete_object(bucket, key).await?;
                Ok(empty(StatusCode::NO_CONTENT))
            }
            (&Method::POST, None) if req.has("uploads") => {
                let id = self
                    .create_multipart_upload(bucket, key, req.put_options())
                    .await?;
                let mut doc = Xml::document("InitiateMultipartUploadResult");
                doc.elem("Bucket", bucket)
                    .elem("Key", key)
                    .elem("UploadId", &id);
                Ok(xml_response(
                    StatusCode::OK,
                    doc.finish("InitiateMultipartUploadResult"),
                ))
            }
            (&Method::POST, Some(id)) => self.complete_request(bucket, key, &id, &req).await,
            _ => Err(method_not_allowed(&req.method, "OBJECT")),
        }
    }

    async fn get_object_request(
        &self,
        bucket: &str,
        key: &str,
        req: &Req,
    ) -> Result<Response<S3Body>, S3Error> {
        if req.has("partNumber") {
            return Err(S3Error::NotImplemented {
                what: "partNumber".into(),
            });
        }
        let object = self.open_object(bucket, key).await?;
        let size = object.meta.size;
        let range_header = req.header("range");
        let range = match range_header.and_then(parse_range) {
            None => None,
            Some(spec) => Some(
                resolve_range(spec, size).ok_or_else(|| S3Error::InvalidRange {
                    requested: range_header.unwrap_or_default().to_owned(),
                    size,
                })?,
            ),
        };
        let (start, len) = range.unwrap_or((0, size));
        let mut response = object_headers(&object, req);
        if let Some((start, len)) = range {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let last = start + len - 1;
            set(
                &mut response,
                "content-range",
                &format!("bytes {start}-{last}/{size}"),
            );
        }
        set(&mut response, "content-length", &len.to_string());
        if req.method == Method::GET {
            *response.body_mut() = object.body(start, len).await?;
        }
        Ok(response)
    }

    async fn list_objects_request(
        &self,
        bucket: &str,
        req: &Req,
    ) -> Result<Response<S3Body>, S3Error> {
        let v2 = match req.q("list-type") {
            None => false,
            Some("2") => true,
            Some(other) => {
                return Err(S3Error::invalid_argument(
                    "Invalid List Type specified in Request",
                    "list-type",
                    other,
                ));
            }
        };
        let listing = Listing::parse(req, v2)?;
        let page = self.list_objects(bucket, listing.query.clone()).await?;
        Ok(xml_response(
            StatusCode::OK,
            listing.render(bucket, &page, req.q("fetch-owner") == Some("true")),
        ))
    }

    async fn delete_objects(&self, bucket: &str, req: &Req) -> Result<Response<S3Body>, S3Error> {
        let body = req.payload()?;
        if let Some(md5) = req.header("content-md5") {
            let expected = crate::store::content_md5_of(&body);
            if md5 != expected {
                return Err(S3Error::BadDigest {
                    expected: md5.to_owned(),
                    calculated: expected,
                });
            }
        }
        let (keys, quiet) = xml::parse_delete(&body)?;
        self.head_bucket(bucket).await?;
        let mut doc = Xml::document("DeleteResult");
        for key in keys {
            match self.delete_object(bucket, &key).await {
                Ok(()) if quiet => {}
                Ok(()) => {
                    doc.open("Deleted").elem("Key", &key).close("Deleted");
                }
                Err(e) => {
                    doc.open("Error")
                        .elem("Key", &key)
                        .elem("Code", e.code())
                        .elem("Message", e.wire_message())
                        .close("Error");
                }
            }
        }
        Ok(xml_response(StatusCode::OK, doc.finish("DeleteResult")))
    }

    async fn copy_object_request(
        &self,
        bucket: &str,
        key: &str,
        req: &Req,
    ) -> Result<Response<S3Body>, S3Error> {
        let source = req.header("x-amz-copy-source").unwrap_or_default();
        let source = source
            .split_once('?')
            .map_or(source, |(path, _version)| path);
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(source).collect();
        let decoded = String::from_utf8(bytes).map_err(|_| S3Error::InvalidUri)?;
        let bad_source = || {
            S3Error::invalid_argument(
                "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
                "x-amz-copy-source",
                source,
            )
        };
        let (src_bucket, src_key) = decoded
            .trim_start_matches('/')
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(bad_source)?;
        let replace = match req.header("x-amz-metadata-directive").unwrap_or("COPY") {
            "COPY" => None,
            "REPLACE" => Some(req.put_options()),
            other => {
                return Err(S3Error::invalid_argument(
                    "Unknown metadata directive.",
                    "x-amz-metadata-directive",
                    other,
                ));
            }
        };
        let copy = CopySource {
            bucket: src_bucket.to_owned(),
            key: src_key.to_owned(),
            replace,
        };
        let meta = self.copy_object(copy, bucket, key).await?;
        let mut doc = Xml::document("CopyObjectResult");
        doc.elem("LastModified", time::iso8601(meta.last_modified_ms))
            .elem("ETag", quoted(&meta.etag));
        Ok(xml_response(StatusCode::OK, doc.finish("CopyObjectResult")))
    }

    async fn upload_part_request(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        req: &Req,
    ) -> Result<Response<S3Body>, S3Error> {
        if req.headers.contains_key("x-amz-copy-source") {
            return Err(S3Error::NotImplemented {
                what: "UploadPartCopy".into(),
            });
        }
        let raw = req.q("partNumber").unwrap_or_default();
        let number = raw.parse::<u32>().map_err(|_| {
            S3Error::invalid_argument(
                "Part number must be an integer between 1 and 10000, inclusive",
                "partNumber",
                raw,
            )
        })?;
        let md5 = req.header("content-md5").map(str::to_owned);
        let etag = self
            .upload_part(bucket, key, id, number, req.payload()?, md5)
            .await?;
        let mut response = empty(StatusCode::OK);
        set(&mut response, "etag", &quoted(&etag));
        Ok(response)
    }

    async fn complete_request(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        req: &Req,
    ) -> Result<Response<S3Body>, S3Error> {
        let parts = match req.payload().and_then(|body| xml::parse_complete(&body)) {
            Ok(parts) => parts,
            Err(e) => {
                // An upload that does not exist is the error to report first.
                self.list_parts(bucket, key, id).await?;
                return Err(e);
            }
        };
        let meta = self
            .complete_multipart_upload(bucket, key, id, parts)
            .await?;
        let host = req.header("host").unwrap_or("localhost");
        let mut doc = Xml::document("CompleteMultipartUploadResult");
        doc.elem(
            "Location",
            format!("http://{host}/{bucket}/{}", url_encode(key)),
        )
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("ETag", quoted(&meta.etag));
        Ok(xml_response(
            StatusCode::OK,
            doc.finish("CompleteMultipartUploadResult"),
        ))
    }

    async fn list_parts_request(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
    ) -> Result<Response<S3Body>, S3Error> {
        let parts = self.list_parts(bucket, key, id).await?;
        let mut doc = Xml::document("ListPartsResult");
        doc.elem("Bucket", bucket)
            .elem("Key", key)
            .elem("UploadId", id)
            .elem("PartNumberMarker", "0")
            .elem(
                "NextPartNumberMarker",
                parts.last().map_or(0, |p| p.part_number).to_string(),
            )
            .elem("MaxParts", "10000")
            .elem("IsTruncated", "false");
        for part in &parts {
            doc.open("Part")
                .elem("PartNumber", part.part_number.to_string())
                .elem("LastModified", time::iso8601(part.last_modified_ms))
                .elem("ETag", quoted(&part.etag))
                .elem("Size", part.size.to_string())
                .close("Part");
        }
        doc.elem("StorageClass", "STANDARD");
        Ok(xml_response(StatusCode::OK, doc.finish("ListPartsResult")))
    }
}

/// The headers of GetObject and HeadObject.
fn object_headers(object: &OpenObject, req: &Req) -> Response<S3Body> {
    let meta = &object.meta;
    let mut response = empty(StatusCode::OK);
    set(&mut response, "etag", &quoted(&meta.etag));
    set(
        &mut response,
        "last-modified",
        &time::http_date(meta.last_modified_ms),
    );
    set(&mut response, "accept-ranges", "bytes");
    set(
        &mut response,
        "content-type",
        meta.content_type.as_deref().unwrap_or(DEFAULT_CONTENT_TYPE),
    );
    for (name, value) in &meta.headers {
        set(&mut response, name, value);
    }
    for (name, value) in &meta.user_metadata {
        set(&mut response, &format!("{META_PREFIX}{name}"), value);
    }
    for (param, name) in RESPONSE_OVERRIDES {
        if let Some(value) = req.q(param) {
            set(&mut response, name, value);
        }
    }
    response
}

fn list_buckets_response(buckets: Vec<crate::BucketInfo>) -> Response<S3Body> {
    let mut doc = Xml::document("ListAllMyBucketsResult");
    doc.open("Owner")
        .elem("ID", OWNER_ID)
        .elem("DisplayName", OWNER_ID)
        .close("Owner")
        .open("Buckets");
    for bucket in &buckets {
        doc.open("Bucket")
            .elem("Name", &bucket.name)
            .elem("CreationDate", time::iso8601(bucket.created_ms))
            .close("Bucket");
    }
    doc.close("Buckets");
    xml_response(StatusCode::OK, doc.finish("ListAllMyBucketsResult"))
}

/// The parameters of ListObjectsV2 (or ListObjects), as given.
struct Listing {
    v2: bool,
    query: ListQuery,
    max_keys: usize,
    url: bool,
    token: Option<String>,
    marker: Option<String>,
}

impl Listing {
    fn parse(req: &Req, v2: bool) -> Result<Self, S3Error> {
        let max_keys = match req.q("max-keys") {
            None => MAX_KEYS,
            Some(raw) => raw
                .parse::<u64>()
                .map_err(|_| {
                    S3Error::invalid_argument(
                        "Provided max-keys not an integer or within integer range",
                        "max-keys",
                        raw,
                    )
                })?
                .min(MAX_KEYS as u64) as usize,
        };
        let url = match req.q("encoding-type") {
            None => false,
            Some("url") => true,
            Some(other) => {
                return Err(S3Error::invalid_argument(
                    "Invalid Encoding Method specified in Request",
                    "encoding-type",
                    other,
                ));
            }
        };
        let token = req
            .q("continuation-token")
            .filter(|_| v2)
            .map(str::to_owned);
        let after = match &token {
            None => None,
            Some(t) => Some(Marker::from_token(t).ok_or_else(|| {
                S3Error::invalid_argument(
                    "The continuation token provided is incorrect",
                    "continuation-token",
                    t.clone(),
                )
            })?),
        };
        let marker = if v2 {
            None
        } else {
            req.q("marker").map(str::to_owned)
        };
        let start_after = if v2 {
            req.q("start-after").map(str::to_owned)
        } else {
            marker.clone()
        };
        Ok(Self {
            v2,
            query: ListQuery {
                prefix: req.q("prefix").unwrap_or_default().to_owned(),
                delimiter: req.q("delimiter").map(str::to_owned),
                max_keys,
                start_after,
                after,
            },
            max_keys,
            url,
            token,
            marker,
        })
    }

    fn enc(&self, text: &str) -> String {
        if self.url {
            url_encode(text)
        } else {
            text.to_owned()
        }
    }

    fn render(&self, bucket: &str, page: &ObjectPage, fetch_owner: bool) -> String {
        let q = &self.query;
        let mut doc = Xml::document("ListBucketResult");
        doc.elem("Name", bucket).elem("Prefix", self.enc(&q.prefix));
        if self.v2 {
            doc.opt("StartAfter", q.start_after.as_deref().map(|s| self.enc(s)))
                .opt("ContinuationToken", self.token.as_deref())
                .opt("NextContinuationToken", page.next_token.as_deref())
                .elem("KeyCount", page.key_count.to_string());
        } else {
            doc.elem(
                "Marker",
                self.enc(self.marker.as_deref().unwrap_or_default()),
            );
            if q.delimiter.is_some() {
                doc.opt(
                    "NextMarker",
                    page.next_marker.as_deref().map(|m| self.enc(m)),
                );
            }
        }
        doc.elem("MaxKeys", self.max_keys.to_string())
            .opt("Delimiter", q.delimiter.as_deref().map(|d| self.enc(d)))
            .opt("EncodingType", self.url.then_some("url"))
            .elem("IsTruncated", page.next_token.is_some().to_string());
        for object in &page.objects {
            doc.open("Contents")
                .elem("Key", self.enc(&object.key))
                .elem("LastModified", time::iso8601(object.last_modified_ms))
                .elem("ETag", quoted(&object.etag))
                .elem("Size", object.size.to_string());
            if fetch_owner || !self.v2 {
                doc.open("Owner")
                    .elem("ID", OWNER_ID)
                    .elem("DisplayName", OWNER_ID)
                    .close("Owner");
            }
            doc.elem("StorageClass", "STANDARD").close("Contents");
        }
        for prefix in &page.common_prefixes {
            doc.open("CommonPrefixes")
                .elem("Prefix", self.enc(prefix))
                .close("CommonPrefixes");
        }
        doc.finish("ListBucketResult")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_as_s3_serves_them() {
        let r = |h: &str, size| parse_range(h).map(|s| resolve_range(s, size));
        assert_eq!(r("bytes=0-9", 100), Some(Some((0, 10))));
        assert_eq!(r("bytes=90-200", 100), Some(Some((90, 10))));
        assert_eq!(r("bytes=10-", 100), Some(Some((10, 90))));
        assert_eq!(r("bytes=-10", 100), Some(Some((90, 10))));
        assert_eq!(r("bytes=-500", 100), Some(Some((0, 100))));
        assert_eq!(r("bytes=100-", 100), Some(None));
        assert_eq!(r("bytes=0-", 0), Some(None));
        assert_eq!(r("bytes=-0", 100), Some(None));
        // Ignored: the whole object is served.
        assert_eq!(r("bytes=5-1", 100), None);
        assert_eq!(r("bytes=0-1,5-6", 100), None);
        assert_eq!(r("items=0-1", 100), None);
    }

    #[test]
    fn aws_chunked_bodies_are_unframed() {
        let body = b"5;chunk-signature=abc\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        assert_eq!(&decode_aws_chunked(body).unwrap()[..], b"hello world");
        assert!(decode_aws_chunked(b"5\r\nhel").is_err());
        assert!(decode_aws_chunked(b"zz\r\n").is_err());
        assert_eq!(without_aws_chunked("aws-chunked, gzip"), "gzip");
    }

    #[test]
    fn url_encoding_keeps_slashes_and_unreserved() {
        assert_eq!(url_encode("a b/ü+~"), "a%20b/%C3%BC%2B~");
    }
}
