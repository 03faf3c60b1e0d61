//! SigV4 signature verification, when `riffle serve` is given credentials.
//!
//! Without credentials Riffle accepts any signed request, as local
//! emulators do; with them it recomputes each request's signature the way
//! AWS does and refuses what does not match, with AWS's errors:
//!
//! ```text
//! canonical request                       string to sign
//! POST                                    AWS4-HMAC-SHA256
//! <path, URI-encoded again>               <X-Amz-Date>
//! <query, sorted and URI-encoded>         <day>/<region>/kinesis/aws4_request
//! <name>:<trimmed values>\n  per signed    hex(sha256(canonical request))
//!   header, in SignedHeaders' order
//! (empty line)
//! <SignedHeaders>
//! hex(sha256(body))
//!
//! signing key = HMAC("AWS4" + secret, day) → region → "kinesis" → "aws4_request"
//! signature   = hex(HMAC(signing key, string to sign))
//! ```
//!
//! The credential scope names the service called ([`Signing::service`],
//! the model's `signingName`). The payload hash is always computed from
//! the body received, never taken from an `X-Amz-Content-SHA256` header,
//! so a changed body cannot pass; S3 differs in two ways, as AWS's S3
//! does: its path is signed as sent (not URI-encoded again), and its
//! payload hash is the `x-amz-content-sha256` header, which must equal the
//! body's hash unless it is `UNSIGNED-PAYLOAD` (or the trailer-checksum
//! `STREAMING-UNSIGNED-PAYLOAD-TRAILER`, whose checksum riffle-s3 checks).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, HOST};
use hyper::http::request::Parts;
use parking_lot::Mutex;
use riffle_kinesis::{amz_date, parse_amz_date};
use sha2::{Digest, Sha256};

use crate::auth::AuthError;

/// The only algorithm AWS accepts in a SigV4 `Authorization` header.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How a service's requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signing {
    /// The service in the credential scope (the model's `signingName`).
    pub(crate) service: &'static str,
    /// S3's rules: the path as sent, the payload hash from its header.
    pub(crate) s3: bool,
}

/// S3's header naming the payload hash that was signed.
const CONTENT_SHA256: &str = "x-amz-content-sha256";
/// Payload hashes S3 accepts in place of the body's SHA-256.
const UNSIGNED_PAYLOADS: [&str; 2] = ["UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"];
/// HTTP/2's host pseudo-header, as a signed header name.
const AUTHORITY: &str = ":authority";
/// The last element of every SigV4 credential scope.
const TERMINATOR: &str = "aws4_request";
/// How far a request's time may be from the server's. AWS: "Signature
/// expired: … is now earlier than … (… - 5 min.)" (SigV4 requests must
/// reach AWS within five minutes of their time stamp).
const CLOCK_SKEW_MAX_SECS: i64 = 5 * 60;
/// The longest a presigned URL may be valid (SigV4 query authentication:
/// `X-Amz-Expires` up to 604,800 seconds, seven days).
const PRESIGNED_EXPIRES_MAX_SECS: i64 = 604_800;

/// The access keys a server accepts, and the region their scope must name.
pub struct Credentials {
    region: String,
    secrets: HashMap<String, Secret>,
}

struct Secret {
    secret_access_key: String,
    /// The signing key of the last day and service seen: it changes once a
    /// day, and deriving it costs four HMACs per request otherwise.
    day_key: Mutex<Option<(String, &'static str, [u8; 32])>>,
}

impl Credentials {
    /// `keys` are (access key id, secret access key) pairs.
    pub fn new(region: &str, keys: impl IntoIterator<Item = (String, String)>) -> Credentials {
        let secrets = keys
            .into_iter()
            .map(|(id, secret_access_key)| {
                let secret = Secret {
                    secret_access_key,
                    day_key: Mutex::new(None),
                };
                (id, secret)
            })
            .collect();
        Credentials {
            region: region.to_owned(),
            secrets,
        }
    }

    /// How many access keys are accepted.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether no key is accepted (every request would be refused).
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Whether `secret` is access key `id`'s secret (a console login),
    /// compared in constant time as signatures are.
    pub(crate) fn secret_matches(&self, id: &str, secret: &str) -> bool {
        self.secrets
            .get(id)
            .is_some_and(|known| same_bytes(known.secret_access_key.as_bytes(), secret.as_bytes()))
    }

    /// Verifies the signature of a request that [`crate::auth::check`]
    /// found complete, at the server's clock.
    pub(crate) fn verify(
        &self,
        parts: &Parts,
        body: &[u8],
        signing: Signing,
    ) -> Result<(), AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.verify_signed(parts, body, signing, now)
    }

    #[cfg(test)]
    fn verify_at(&self, parts: &Parts, body: &[u8], now: i64) -> Result<(), AuthError> {
        let kinesis = Signing {
            service: "kinesis",
            s3: false,
        };
        self.verify_signed(parts, body, kinesis, now)
    }

    fn verify_signed(
        &self,
        parts: &Parts,
        body: &[u8],
        signing: Signing,
        now: i64,
    ) -> Result<(), AuthError> {
        let presented = match parts.headers.get(AUTHORIZATION) {
            Some(header) => {
                Presented::from_header(&String::from_utf8_lossy(header.as_bytes()), &parts.headers)?
            }
            None => Presented::from_query(parts.uri.query().unwrap_or_default())?,
        };
        if presented.algorithm != ALGORITHM {
            return Err(AuthError::Incomplete(format!(
                "Unsupported AWS 'algorithm': '{}'",
                presented.algorithm
            )));
        }
        let scope: Vec<&str> = presented.credential.split('/').collect();
        let &[key_id, day, region, service, terminator] = scope.as_slice() else {
            return Err(AuthError::Incomplete(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
                presented.credential
            )));
        };
        let Some(secret) = self.secrets.get(key_id) else {
            return Err(AuthError::UnknownKey);
        };
        if terminator != TERMINATOR {
            return Err(AuthError::Invalid(format!(
                "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'. "
            )));
        }
        if region != self.region {
            return Err(AuthError::Invalid(format!(
                "Credential should be scoped to a valid region, not '{region}'. "
            )));
        }
        if service != signing.service {
            return Err(AuthError::Invalid(format!(
                "Credential should be scoped to correct service: '{}'. ",
                signing.service
            )));
        }
        let Some(signed_at) = parse_amz_date(&presented.date) else {
            return Err(AuthError::Incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
                presented.date
            )));
        };
        if !presented.date.starts_with(day) || day.len() != 8 {
            return Err(AuthError::Invalid(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{day}' != '{}', from '{}'.",
                &presented.date[..8],
                presented.date
            )));
        }

        let payload = payload_hash(parts, &presented, body, signing.s3)?;
        let canonical = canonical_request(parts, &presented, &payload, signing.s3);
        let mut to_sign = format!(
            "{ALGORITHM}\n{}\n{}\n",
            presented.date,
            &presented.credential[key_id.len() + 1..]
        );
        hex_into(&mut to_sign, &Sha256::digest(canonical.as_bytes()));
        let key = secret.signing_key(day, region, signing.service);
        let mut expected = String::with_capacity(64);
        hex_into(&mut expected, &hmac(&key, to_sign.as_bytes()));
        if !same_bytes(expected.as_bytes(), presented.signature.as_bytes()) {
            return Err(AuthError::Invalid(format!(
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\n\
                 The Canonical String for this request should have been\n'{canonical}'\n\n\
                 The String-to-Sign should have been\n'{to_sign}'\n"
            )));
        }

        // The time is checked once the signature proves it is the sender's.
        let (earliest, latest) = match presented.expires {
            Some(expires) => (signed_at - CLOCK_SKEW_MAX_SECS, signed_at + expires),
            None => (
                signed_at - CLOCK_SKEW_MAX_SECS,
                signed_at + CLOCK_SKEW_MAX_SECS,
            ),
        };
        if now > latest {
            let message = match presented.expires {
                Some(expires) => format!(
                    "Signature expired: {} is now earlier than {} ({} - {expires} sec.)",
                    presented.date,
                    amz_date(now - expires),
                    amz_date(now)
                ),
                None => format!(
                    "Signature expired: {} is now earlier than {} ({} - 5 min.)",
                    presented.date,
                    amz_date(now - CLOCK_SKEW_MAX_SECS),
                    amz_date(now)
                ),
            };
            return Err(AuthError::Invalid(message));
        }
        if now < earliest {
            return Err(AuthError::Invalid(format!(
                "Signature not yet current: {} is still later than {} ({} + 5 min.)",
                presented.date,
                amz_date(now + CLOCK_SKEW_MAX_SECS),
                amz_date(now)
            )));
        }
        Ok(())
    }
}

impl Secret {
    fn signing_key(&self, day: &str, region: &str, service: &'static str) -> [u8; 32] {
        let mut cached = self.day_key.lock();
        if let Some((cached_day, cached_service, key)) = cached.as_ref()
            && cached_day == day
            && *cached_service == service
        {
            return *key;
        }
        let secret = format!("AWS4{}", self.secret_access_key);
        let key = [day, region, service, TERMINATOR]
            .iter()
            .fold(None::<[u8; 32]>, |key, part| {
                let key = key.as_ref().map_or(secret.as_bytes(), |k| &k[..]);
                Some(hmac(key, part.as_bytes()))
            })
            .expect("four parts were hashed");
        *cached = Some((day.to_owned(), service, key));
        key
    }
}

/// What a request claims about its signature, from the `Authorization`
/// header or a presigned URL's query.
struct Presented {
    algorithm: String,
    /// `<key id>/<day>/<region>/<service>/aws4_request`.
    credential: String,
    /// Lower-case header names joined by `;`, as the client signed them.
    signed_headers: String,
    signature: String,
    /// `X-Amz-Date` (ISO-8601 basic).
    date: String,
    /// A presigned URL's lifetime in seconds; `None` for header signatures.
    expires: Option<i64>,
}

impl Presented {
    fn from_header(header: &str, headers: &HeaderMap) -> Result<Presented, AuthError> {
        let (algorithm, params) = header.trim().split_once(' ').unwrap_or((header, ""));
        let mut presented = Presented {
            algorithm: algorithm.to_owned(),
            credential: String::new(),
            signed_headers: String::new(),
            signature: String::new(),
            date: String::new(),
            expires: None,
        };
        for pair in params.split(',') {
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let slot = match name {
                "Credential" => &mut presented.credential,
                "SignedHeaders" => &mut presented.signed_headers,
                "Signature" => &mut presented.signature,
                _ => continue,
            };
            *slot = value.trim().to_owned();
        }
        presented.date = match headers.get("x-amz-date") {
            Some(date) => String::from_utf8_lossy(date.as_bytes()).into_owned(),
            // `Date` is the fallback SigV4 allows; its RFC 1123 form is not
            // the basic format, and the date check says so.
            None => headers
                .get(hyper::header::DATE)
                .map(|d| String::from_utf8_lossy(d.as_bytes()).into_owned())
                .unwrap_or_default(),
        };
        Ok(presented)
    }

    fn from_query(query: &str) -> Result<Presented, AuthError> {
        let value = |name: &str| {
            query
                .split('&')
                .find_map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (percent_decode(k) == name).then(|| percent_decode(v))
                })
                .unwrap_or_default()
        };
        let expires = match value("X-Amz-Expires").as_str() {
            // SigV4 query signing without a lifetime: the usual skew applies.
            "" => CLOCK_SKEW_MAX_SECS,
            text => match text.parse::<i64>() {
                Ok(secs) if (1..=PRESIGNED_EXPIRES_MAX_SECS).contains(&secs) => secs,
                _ => {
                    return Err(AuthError::Invalid(format!(
                        "X-Amz-Expires must be an integer between 1 and {PRESIGNED_EXPIRES_MAX_SECS}, got '{text}'"
                    )));
                }
            },
        };
        Ok(Presented {
            algorithm: value("X-Amz-Algorithm"),
            credential: value("X-Amz-Credential"),
            signed_headers: value("X-Amz-SignedHeaders"),
            signature: value("X-Amz-Signature"),
            date: value("X-Amz-Date"),
            expires: Some(expires),
        })
    }
}

/// The payload hash of the canonical request, in hex: the body's, or for
/// S3 the `x-amz-content-sha256` header's (presigned S3 URLs sign
/// `UNSIGNED-PAYLOAD`).
fn payload_hash(
    parts: &Parts,
    presented: &Presented,
    body: &[u8],
    s3: bool,
) -> Result<String, AuthError> {
    let mut computed = String::with_capacity(64);
    hex_into(&mut computed, &Sha256::digest(body));
    if !s3 {
        return Ok(computed);
    }
    let Some(declared) = parts.headers.get(CONTENT_SHA256) else {
        return Ok(if presented.expires.is_some() {
            UNSIGNED_PAYLOADS[0].to_owned()
        } else {
            computed
        });
    };
    let declared = String::from_utf8_lossy(declared.as_bytes());
    if UNSIGNED_PAYLOADS.contains(&declared.as_ref()) {
        return Ok(declared.into_owned());
    }
    if declared.eq_ignore_ascii_case(&computed) {
        return Ok(declared.into_owned());
    }
    // Signed aws-chunked uploads sign each chunk; their chunk signatures
    // are not verified here, so they are refused rather than trusted.
    if declared.starts_with("STREAMING-") {
        return Err(AuthError::Invalid(format!(
            "The payload hash '{declared}' (signed aws-chunked) is not accepted when signatures are verified; sign the payload's SHA-256 or UNSIGNED-PAYLOAD."
        )));
    }
    Err(AuthError::Invalid(format!(
        "The provided 'x-amz-content-sha256' header does not match what was computed: '{declared}'."
    )))
}

/// The canonical request of SigV4 for `parts` as the client signed it.
fn canonical_request(parts: &Parts, presented: &Presented, payload: &str, s3: bool) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(parts.method.as_str());
    out.push('\n');
    let path = parts.uri.path();
    if path.is_empty() {
        out.push('/');
    } else if s3 {
        out.push_str(path);
    } else {
        // Services other than S3 sign the path URI-encoded once more.
        uri_encode_into(&mut out, path.as_bytes(), false);
    }
    out.push('\n');
    canonical_query_into(
        &mut out,
        parts.uri.query().unwrap_or_default(),
        presented.expires.is_some(),
    );
    out.push('\n');
    for name in presented.signed_headers.split(';') {
        out.push_str(name);
        out.push(':');
        canonical_header_value_into(&mut out, parts, name);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&presented.signed_headers);
    out.push('\n');
    out.push_str(payload);
    out
}

/// A signed header's values joined by `,`, each trimmed with its inner runs
/// of spaces collapsed to one.
///
/// HTTP/2 carries the host as the `:authority` pseudo-header, which hyper
/// puts in the URI: a signed `host` is read from there when no `Host`
/// header came, and the JavaScript SDK, which signs `:authority` itself
/// over HTTP/2, gets the same value.
fn canonical_header_value_into(out: &mut String, parts: &Parts, name: &str) {
    let mut values = parts.headers.get_all(name).iter().peekable();
    if name == AUTHORITY || (name == HOST.as_str() && values.peek().is_none()) {
        let authority = parts.uri.authority().map(|a| a.as_str());
        let host = parts.headers.get(HOST).and_then(|h| h.to_str().ok());
        out.push_str(authority.or(host).unwrap_or_default());
        return;
    }
    let mut first = true;
    for value in values {
        if !first {
            out.push(',');
        }
        first = false;
        let text = String::from_utf8_lossy(value.as_bytes());
        let mut words = text.split([' ', '\t']).filter(|w| !w.is_empty());
        if let Some(word) = words.next() {
            out.push_str(word);
        }
        for word in words {
            out.push(' ');
            out.push_str(word);
        }
    }
}

/// The query's parameters decoded, URI-encoded strictly and sorted by name
/// then value; a presigned URL's own signature is left out.
fn canonical_query_into(out: &mut String, query: &str, presigned: bool) {
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .filter(|(k, _)| !(presigned && k == "X-Amz-Signature"))
        .collect();
    params.sort();
    for (at, (name, value)) in params.iter().enumerate() {
        if at > 0 {
            out.push('&');
        }
        uri_encode_into(out, name.as_bytes(), true);
        out.push('=');
        uri_encode_into(out, value.as_bytes(), true);
    }
}

/// SigV4's URI encoding: every byte but `A-Z a-z 0-9 - _ . ~` becomes
/// `%XX` (upper-case hex); `/` too unless it separates path segments.
fn uri_encode_into(out: &mut String, bytes: &[u8], encode_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        let keep = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if keep || (b == b'/' && !encode_slash) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// Decodes `%XX` escapes; a malformed escape is kept as it is. `+` stays a
/// plus sign, as SigV4 treats it.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[at] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(at + 1).copied().and_then(hex),
                bytes.get(at + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hex_into(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        // Writing into a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
}

/// Compares in time that depends only on the lengths, so that a signature
/// cannot be guessed byte by byte from response times.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials as SdkCredentials;
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    use aws_smithy_runtime_api::client::identity::Identity;
    use hyper::Request;
    use std::time::Duration;

    #[test]
    fn s3_signs_the_declared_payload_hash_which_must_be_the_bodys_or_unsigned() {
        let presented = Presented {
            algorithm: ALGORITHM.to_owned(),
            credential: String::new(),
            signed_headers: String::new(),
            signature: String::new(),
            date: String::new(),
            expires: None,
        };
        let with = |value: &str| {
            let (parts, ()) = Request::builder()
                .header(CONTENT_SHA256, value)
                .body(())
                .unwrap()
                .into_parts();
            parts
        };
        let body = b"payload";
        let mut hash = String::new();
        hex_into(&mut hash, &Sha256::digest(body));
        let of = |value: &str, s3| payload_hash(&with(value), &presented, body, s3);
        assert_eq!(
            of("UNSIGNED-PAYLOAD", true),
            Ok("UNSIGNED-PAYLOAD".to_owned())
        );
        assert_eq!(of(&hash, true), Ok(hash.clone()));
        assert!(of(&"0".repeat(64), true).is_err(), "a hash of another body");
        assert!(of("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", true).is_err());
        // Other services hash the body whatever the header says.
        assert_eq!(of("UNSIGNED-PAYLOAD", false), Ok(hash));
    }

    const KEY_ID: &str = "AKIDRIFFLETEST";
    const SECRET: &str = "riffle/secret+key";
    const BODY: &[u8] = br#"{"StreamName":"s","Data":"AAEC","PartitionKey":"k"}"#;
    /// 2026-11-23T13:55:21Z.
    const SIGNED_AT: i64 = 1_795_442_121;

    fn credentials() -> Credentials {
        Credentials::new("us-east-1", [(KEY_ID.to_owned(), SECRET.to_owned())])
    }

    /// A request signed by `aws_sigv4`, the signer of the AWS SDK for Rust.
    fn signed(
        key_id: &str,
        secret: &str,
        region: &str,
        token: Option<&str>,
        at: i64,
        location: SignatureLocation,
    ) -> Parts {
        let creds = SdkCredentials::new(key_id, secret, token.map(str::to_owned), None, "test");
        let identity: Identity = creds.into();
        let mut settings = SigningSettings::default();
        settings.signature_location = location;
        settings.expires_in = Some(Duration::from_secs(900));
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("kinesis")
            .time(UNIX_EPOCH + Duration::from_secs(at as u64))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let headers = [
            ("host", "127.0.0.1:4567"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Kinesis_20131202.PutRecord"),
            ("x-riffle-note", "  riffle  test   note "),
        ];
        let url = "http://127.0.0.1:4567/?b=2&a=x%2Fy";
        let request =
            SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(BODY))
                .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut out = http::Request::builder().method("POST").uri(url);
        for (name, value) in headers {
            out = out.header(name, value);
        }
        let mut out = out.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut out);
        let (parts, ()) = out.into_parts();
        // Rebuild with hyper's types (the same `http` crate underneath).
        let mut rebuilt = Request::builder().method("POST").uri(parts.uri);
        for (name, value) in &parts.headers {
            rebuilt = rebuilt.header(name, value);
        }
        rebuilt.body(()).unwrap().into_parts().0
    }

    fn header_signed(key_id: &str, secret: &str, region: &str, at: i64) -> Parts {
        signed(key_id, secret, region, None, at, SignatureLocation::Headers)
    }

    fn invalid_message(result: Result<(), AuthError>) -> String {
        match result {
            Err(AuthError::Invalid(message)) => message,
            other => panic!("expected InvalidSignature, got {other:?}"),
        }
    }

    #[test]
    fn what_the_aws_sdk_signs_is_accepted_with_and_without_a_session_token() {
        let creds = credentials();
        let parts = header_signed(KEY_ID, SECRET, "us-east-1", SIGNED_AT);
        assert_eq!(creds.verify_at(&parts, BODY, SIGNED_AT), Ok(()));
        let parts = signed(
            KEY_ID,
            SECRET,
            "us-east-1",
            Some("token/=+"),
            SIGNED_AT,
            SignatureLocation::Headers,
        );
        assert!(parts.headers.contains_key("x-amz-security-token"));
        assert_eq!(creds.verify_at(&parts, BODY, SIGNED_AT), Ok(()));
        // A second request of the day is served from the cached key.
        assert_eq!(creds.verify_at(&parts, BODY, SIGNED_AT + 1), Ok(()));
    }

    #[test]
    fn a_presigned_url_is_accepted_until_it_expires() {
        let creds = credentials();
        let parts = signed(
            KEY_ID,
            SECRET,
            "us-east-1",
            None,
            SIGNED_AT,
            SignatureLocation::QueryParams,
        );
        assert!(!parts.headers.contains_key(AUTHORIZATION));
        assert_eq!(creds.verify_at(&parts, BODY, SIGNED_AT + 899), Ok(()));
        let message = invalid_message(creds.verify_at(&parts, BODY, SIGNED_AT + 901));
        assert_eq!(
            message,
            "Signature expired: 20261123T135521Z is now earlier than 20261123T135522Z (20261123T141022Z - 900 sec.)"
        );
    }

    #[test]
    fn a_wrong_secret_or_a_changed_request_does_not_match() {
        let creds = credentials();
        let parts = header_signed(KEY_ID, "not the secret", "us-east-1", SIGNED_AT);
        let message = invalid_message(creds.verify_at(&parts, BODY, SIGNED_AT));
        assert!(message.starts_with(
            "The request signature we calculated does not match the signature you provided."
        ));
        // The canonical request quoted is the one the SDK signed: trimmed
        // header values, the query sorted and re-encoded.
        assert!(message.contains("'POST\n/\na=x%2Fy&b=2\ncontent-type:application/x-amz-json-1.1\nhost:127.0.0.1:4567\n"), "{message}");
        assert!(
            message.contains("x-riffle-note:riffle test note\n"),
            "{message}"
        );

        let parts = header_signed(KEY_ID, SECRET, "us-east-1", SIGNED_AT);
        let tampered = br#"{"StreamName":"t","Data":"AAEC","PartitionKey":"k"}"#;
        invalid_message(creds.verify_at(&parts, tampered, SIGNED_AT));
        let mut changed = parts.clone();
        changed.headers.insert(
            "x-amz-target",
            "Kinesis_20131202.DeleteStream".parse().unwrap(),
        );
        invalid_message(creds.verify_at(&changed, BODY, SIGNED_AT));
    }

    #[test]
    fn an_unknown_key_is_unrecognized() {
        let parts = header_signed("AKIDSOMEONEELSE", SECRET, "us-east-1", SIGNED_AT);
        assert_eq!(
            credentials().verify_at(&parts, BODY, SIGNED_AT),
            Err(AuthError::UnknownKey)
        );
    }

    #[test]
    fn the_scope_must_name_this_region_and_kinesis() {
        let creds = credentials();
        let parts = header_signed(KEY_ID, SECRET, "eu-west-1", SIGNED_AT);
        assert_eq!(
            invalid_message(creds.verify_at(&parts, BODY, SIGNED_AT)),
            "Credential should be scoped to a valid region, not 'eu-west-1'. "
        );
        let mut parts = header_signed(KEY_ID, SECRET, "us-east-1", SIGNED_AT);
        let header = parts.headers[AUTHORIZATION]
            .to_str()
            .unwrap()
            .replace("/kinesis/", "/firehose/");
        parts.headers.insert(AUTHORIZATION, header.parse().unwrap());
        assert_eq!(
            invalid_message(creds.verify_at(&parts, BODY, SIGNED_AT)),
            "Credential should be scoped to correct service: 'kinesis'. "
        );
        let header = header.replace(KEY_ID, &format!("{KEY_ID}/extra"));
        parts.headers.insert(AUTHORIZATION, header.parse().unwrap());
        assert!(matches!(
            creds.verify_at(&parts, BODY, SIGNED_AT),
            Err(AuthError::Incomplete(m)) if m.starts_with("Credential must have exactly 5 slash-delimited elements")
        ));
    }

    #[test]
    fn the_scope_day_must_be_the_request_day() {
        let mut parts = header_signed(KEY_ID, SECRET, "us-east-1", SIGNED_AT);
        parts
            .headers
            .insert("x-amz-date", "20261124T000000Z".parse().unwrap());
        assert_eq!(
            invalid_message(credentials().verify_at(&parts, BODY, SIGNED_AT)),
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '20261123' != '20261124', from '20261124T000000Z'."
        );
        parts
            .headers
            .insert("x-amz-date", "yesterday".parse().unwrap());
        assert!(matches!(
            credentials().verify_at(&parts, BODY, SIGNED_AT),
            Err(AuthError::Incomplete(m)) if m.starts_with("Date must be in ISO-8601 'basic format'. Got 'yesterday'.")
        ));
    }

    #[test]
    fn a_request_more_than_five_minutes_off_the_clock_is_refused() {
        let creds = credentials();
        let parts = header_signed(KEY_ID, SECRET, "us-east-1", SIGNED_AT);
        assert_eq!(creds.verify_at(&parts, BODY, SIGNED_AT + 300), Ok(()));
        assert_eq!(creds.verify_at(&parts, BODY, SIGNED_AT - 300), Ok(()));
        assert_eq!(
            invalid_message(creds.verify_at(&parts, BODY, SIGNED_AT + 301)),
            "Signature expired: 20261123T135521Z is now earlier than 20261123T135522Z (20261123T140022Z - 5 min.)"
        );
        assert_eq!(
            invalid_message(creds.verify_at(&parts, BODY, SIGNED_AT - 301)),
            "Signature not yet current: 20261123T135521Z is still later than 20261123T135520Z (20261123T135020Z + 5 min.)"
        );
    }

    #[test]
    fn http2_requests_sign_their_authority_as_host() {
        let mut parts = header_signed(KEY_ID, SECRET, "us-east-1", SIGNED_AT);
        parts.headers.remove(HOST);
        parts.uri = "http://127.0.0.1:4567/?b=2&a=x%2Fy".parse().unwrap();
        assert_eq!(credentials().verify_at(&parts, BODY, SIGNED_AT), Ok(()));
    }

    #[test]
    fn a_signed_authority_pseudo_header_is_the_http2_authority() {
        let (parts, ()) = Request::builder()
            .uri("http://127.0.0.1:4567/")
            .body(())
            .unwrap()
            .into_parts();
        for name in [AUTHORITY, "host"] {
            let mut out = String::new();
            canonical_header_value_into(&mut out, &parts, name);
            assert_eq!(out, "127.0.0.1:4567", "{name}");
        }
        let (parts, ()) = Request::builder()
            .uri("/")
            .header(HOST, "example:1")
            .body(())
            .unwrap()
            .into_parts();
        let mut out = String::new();
        canonical_header_value_into(&mut out, &parts, AUTHORITY);
        assert_eq!(out, "example:1");
    }

    #[test]
    fn uri_encoding_and_decoding_follow_sigv4() {
        let mut out = String::new();
        uri_encode_into(&mut out, b"a b/c~d+e%", true);
        assert_eq!(out, "a%20b%2Fc~d%2Be%25");
        let mut out = String::new();
        uri_encode_into(&mut out, b"/x y/", false);
        assert_eq!(out, "/x%20y/");
        assert_eq!(percent_decode("a%2Fb+c%zz%4"), "a/b+c%zz%4");
        assert!(same_bytes(b"abc", b"abc"));
        assert!(!same_bytes(b"abc", b"abd"));
        assert!(!same_bytes(b"abc", b"ab"));
    }
}
