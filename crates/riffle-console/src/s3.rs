//! The embedded S3 browser's reads: `GET /api/s3/buckets`,
//! `/api/s3/objects?bucket=&prefix=` (one level, `/` the delimiter, or
//! every key under the prefix with `&recursive=1`),
//! `/api/s3/object?bucket=&key=` (the download) and
//! `/api/s3/preview?bucket=&key=` (the first bytes as text, gunzipped when
//! the object is gzip; a Parquet object's schema and first rows). Each is checked against the session key's policy
//! and audited as the S3 operation it is ([`riffle_server::DirectCalls::authorize`]).

use std::io::Read as _;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::CONTENT_DISPOSITION;
use riffle_s3::{ListQuery, S3Error};
use riffle_server::services::s3::S3_INFO;
use serde_json::json;

use crate::api::{Answer, Api, ApiError, Who};

/// Keys listed per page (ListObjectsV2's MaxKeys default and most).
const LIST_KEYS_MAX: usize = 1000;

/// How much of an object a preview shows, after decompression.
pub const PREVIEW_BYTES_MAX: usize = 64 * 1024;

pub(crate) async fn answer(
    api: &Api,
    who: &Who<'_>,
    path: &str,
    query: &str,
) -> Result<Answer, ApiError> {
    let Some(store) = api.config.s3.as_ref() else {
        return Err(ApiError::BadRequest(
            "the embedded S3 is not served (Firehose delivers to --s3-endpoint)".into(),
        ));
    };
    let arg = |name: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    };
    let bucket = arg("bucket").unwrap_or_default();
    let key = arg("key").unwrap_or_default();
    let calls = &api.config.calls;
    match path {
        "/api/s3/buckets" => {
            calls
                .authorize(
                    who.caller(),
                    &S3_INFO,
                    ("ListBuckets", "ListAllMyBuckets"),
                    "*",
                    b"{}",
                )
                .await?;
            let buckets = store.list_buckets().await.map_err(s3_error)?;
            let names: Vec<_> = buckets
                .iter()
                .map(|b| json!({"name": b.name, "created": b.created_ms}))
                .collect();
            Ok(Answer::json(&json!({"buckets": names})))
        }
        "/api/s3/objects" => {
            let prefix = arg("prefix").unwrap_or_default();
            let parameters = json!({"bucketName": bucket, "prefix": prefix}).to_string();
            calls
                .authorize(
                    who.caller(),
                    &S3_INFO,
                    ("ListObjectsV2", "ListBucket"),
                    &format!("arn:aws:s3:::{bucket}"),
                    parameters.as_bytes(),
                )
                .await?;
            let query = ListQuery {
                prefix,
                delimiter: arg("recursive").is_none().then(|| "/".to_owned()),
                max_keys: LIST_KEYS_MAX,
                start_after: arg("startAfter"),
                after: None,
            };
            let page = store.list_objects(&bucket, query).await.map_err(s3_error)?;
            let objects: Vec<_> = page
                .objects
                .iter()
                .map(|o| json!({"key": o.key, "size": o.size, "lastModified": o.last_modified_ms, "etag": o.etag}))
                .collect();
            Ok(Answer::json(&json!({
                "objects": objects,
                "prefixes": page.common_prefixes,
                "truncated": page.next_token.is_some(),
            })))
        }
        "/api/s3/object" | "/api/s3/preview" => {
            let parameters = json!({"bucketName": bucket, "key": key}).to_string();
            calls
                .authorize(
                    who.caller(),
                    &S3_INFO,
                    ("GetObject", "GetObject"),
                    &format!("arn:aws:s3:::{bucket}/{key}"),
                    parameters.as_bytes(),
                )
                .await?;
            let (meta, body) = store.get_object(&bucket, &key).await.map_err(s3_error)?;
            if path == "/api/s3/preview" {
                return Ok(Answer::json(&preview(&body)));
            }
            let file = key.rsplit('/').next().unwrap_or("object").replace('"', "");
            Ok(Answer {
                content_type: "application/octet-stream",
                body,
                headers: vec![(
                    CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{file}\"; size={}", meta.size),
                )],
            })
        }
        _ => Err(ApiError::NotFound),
    }
}

/// The rows of a Parquet object a preview shows.
pub const PREVIEW_ROWS_MAX: usize = 20;

/// Parquet's magic bytes, at a file's start and end.
const PARQUET_MAGIC: &[u8] = b"PAR1";

/// The first [`PREVIEW_BYTES_MAX`] bytes of an object as text: gunzipped
/// when it starts with gzip's magic bytes; for a Parquet file, its schema
/// and first [`PREVIEW_ROWS_MAX`] rows.
pub fn preview(body: &Bytes) -> serde_json::Value {
    if body.len() >= 8 && body.starts_with(PARQUET_MAGIC) && body.ends_with(PARQUET_MAGIC) {
        return match parquet_preview(body) {
            Ok(shown) => shown,
            Err(err) => {
                json!({"size": body.len(), "text": format!("not a readable Parquet file: {err}")})
            }
        };
    }
    let gzip = body.starts_with(&[0x1f, 0x8b]);
    let mut shown = Vec::with_capacity(PREVIEW_BYTES_MAX.min(body.len()));
    if gzip {
        let decoder = flate2::read::MultiGzDecoder::new(&body[..]);
        // A corrupt stream shows what decompressed before the damage.
        let _ = decoder
            .take(PREVIEW_BYTES_MAX as u64)
            .read_to_end(&mut shown);
    } else {
        shown.extend_from_slice(&body[..body.len().min(PREVIEW_BYTES_MAX)]);
    }
    json!({
        "gzip": gzip,
        "size": body.len(),
        "truncated": shown.len() >= PREVIEW_BYTES_MAX,
        "text": String::from_utf8_lossy(&shown),
    })
}

fn parquet_preview(body: &Bytes) -> Result<serde_json::Value, parquet::errors::ParquetError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(body.clone())?;
    let metadata = reader.metadata().file_metadata();
    let mut schema = Vec::new();
    parquet::schema::printer::print_schema(&mut schema, metadata.schema());
    let rows = reader
        .get_row_iter(None)?
        .take(PREVIEW_ROWS_MAX)
        .map(|row| row.map(|r| r.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "size": body.len(),
        "parquet": {
            "schema": String::from_utf8_lossy(&schema),
            "rowCount": metadata.num_rows(),
            "rows": rows,
        },
    }))
}

fn s3_error(err: S3Error) -> ApiError {
    ApiError::Aws {
        status: StatusCode::from_u16(err.status().as_u16()).unwrap_or(StatusCode::BAD_REQUEST),
        code: err.code(),
        message: Some(err.wire_message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn previews_show_text_and_gunzip_gzip() {
        let plain = preview(&Bytes::from_static(b"{\"a\":1}\n"));
        assert_eq!(plain["text"], "{\"a\":1}\n");
        assert_eq!(plain["gzip"], false);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"hello gzip").unwrap();
        let zipped = preview(&Bytes::from(gz.finish().unwrap()));
        assert_eq!(zipped["text"], "hello gzip");
        assert_eq!(zipped["gzip"], true);
        let big = preview(&Bytes::from(vec![b'x'; PREVIEW_BYTES_MAX + 10]));
        assert_eq!(big["truncated"], true);
        assert_eq!(big["text"].as_str().unwrap().len(), PREVIEW_BYTES_MAX);
    }
}
