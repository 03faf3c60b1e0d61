//! The credentials check: a request must be signed, the way every real SDK
//! signs. Whether the signature is right is [`crate::sigv4`]'s question,
//! asked only when the server was given credentials.
//!
//! AWS refuses unsigned or half-signed requests before looking at their
//! parameters; these checks and their messages copy what it answers.

use hyper::HeaderMap;
use hyper::header::{AUTHORIZATION, HeaderValue};

/// Why a request's credentials are refused. Mapped to AWS errors in
/// [`crate::errors`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthError {
    /// Neither an `Authorization` header nor a presigned query string.
    Missing,
    /// Both an `Authorization` header and `X-Amz-Algorithm` in the query.
    Ambiguous,
    /// A signature lacking parts SigV4 requires; the message lists them in
    /// AWS's words.
    Incomplete(String),
    /// An access key the server was not given.
    UnknownKey,
    /// A signature that does not verify: wrong secret, scope or time; the
    /// message says which in AWS's words.
    Invalid(String),
}

impl AuthError {
    /// One line for logs: the kind, and a message's first line.
    pub(crate) fn summary(&self) -> &str {
        let first_line = |m: &'_ str| -> usize { m.find('\n').unwrap_or(m.len()) };
        match self {
            AuthError::Missing => "no signature",
            AuthError::Ambiguous => "signed in both the header and the query",
            AuthError::UnknownKey => "unknown access key",
            AuthError::Incomplete(m) | AuthError::Invalid(m) => &m[..first_line(m)],
        }
    }
}

/// What a SigV4 `Authorization` header must carry, besides its algorithm.
const HEADER_PARAMS: [&str; 3] = ["Credential", "Signature", "SignedHeaders"];

/// What a presigned URL's query string must carry.
const QUERY_PARAMS: [&str; 5] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-SignedHeaders",
    "X-Amz-Date",
];

/// Checks that the request is signed at all; not whether it is signed right.
pub(crate) fn check(headers: &HeaderMap, query: Option<&str>) -> Result<(), AuthError> {
    let header = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
    let presigned = query.is_some_and(|q| query_value(q, "X-Amz-Algorithm").is_some());
    match (header, presigned) {
        (Some(_), true) => Err(AuthError::Ambiguous),
        (None, false) => Err(AuthError::Missing),
        (Some(header), false) => check_header(header, headers),
        (None, true) => check_query(query.unwrap_or_default()),
    }
}

/// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`
fn check_header(header: &[u8], headers: &HeaderMap) -> Result<(), AuthError> {
    // The first word is the algorithm; the rest are `Name=value` pairs
    // separated by commas and/or spaces.
    // One pass over the header's bytes (every request has one; it is text
    // only when quoted in an error), noting which required parameters it
    // carries.
    let mut found = [false; HEADER_PARAMS.len()];
    let pairs = header
        .split(|&b| b == b',' || b == b' ')
        .filter(|s| !s.is_empty())
        .skip(1);
    for pair in pairs {
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (name, value) = (&pair[..eq], &pair[eq + 1..]);
        if let Some(at) = HEADER_PARAMS.iter().position(|p| p.as_bytes() == name) {
            found[at] |= !value.is_empty();
        }
    }
    let mut message = String::new();
    for (param, found) in HEADER_PARAMS.into_iter().zip(found) {
        if !found {
            message.push_str(&format!(
                "Authorization header requires '{param}' parameter. "
            ));
        }
    }
    if !headers.contains_key("x-amz-date") && !headers.contains_key(hyper::header::DATE) {
        message.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    if message.is_empty() {
        return Ok(());
    }
    message.push_str("Authorization=");
    message.push_str(&String::from_utf8_lossy(header));
    Err(AuthError::Incomplete(message))
}

fn check_query(query: &str) -> Result<(), AuthError> {
    let mut message = String::new();
    for param in QUERY_PARAMS {
        if query_value(query, param).is_none_or(str::is_empty) {
            message.push_str(&format!(
                "AWS query-string parameters must include '{param}'. "
            ));
        }
    }
    if message.is_empty() {
        return Ok(());
    }
    message.push_str("Re-examine the query-string parameters.");
    Err(AuthError::Incomplete(message))
}

/// The raw (still percent-encoded) value of `name` in a query string.
/// The service of a request's SigV4 credential scope
/// (`Credential=<key>/<date>/<region>/<service>/aws4_request`), from its
/// `Authorization` header: what tells apart query services that share a
/// `Version`.
pub(crate) fn scope_service(headers: &HeaderMap) -> Option<&str> {
    let text = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let at = text.find("Credential=")? + "Credential=".len();
    let credential = text[at..].split([',', ' ']).next()?;
    credential.split('/').nth(3)
}

/// The access key id a request claims: the first part of its SigV4
/// credential, from the `Authorization` header or a presigned query.
pub(crate) fn access_key_id(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let credential = match headers.get(AUTHORIZATION) {
        Some(header) => {
            let text = header.to_str().ok()?;
            let at = text.find("Credential=")? + "Credential=".len();
            text[at..].to_owned()
        }
        // `%2F` is the encoded `/` after the key id.
        None => query_value(query?, "X-Amz-Credential")?.replace("%2F", "/"),
    };
    let id = credential.split(['/', ',', ' ']).next()?;
    (!id.is_empty()).then(|| id.to_owned())
}

fn query_value<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .find_map(|pair| match pair.split_once('=') {
            Some((k, v)) if k == name => Some(v),
            None if pair == name => Some(""),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    const SIGNED: &str = "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/kinesis/aws4_request, \
                          SignedHeaders=host;x-amz-date, Signature=abc123";

    #[test]
    fn a_signed_request_passes_whatever_its_credentials() {
        let h = headers(&[
            ("authorization", SIGNED),
            ("x-amz-date", "20260101T000000Z"),
        ]);
        assert_eq!(check(&h, None), Ok(()));
    }

    #[test]
    fn the_claimed_access_key_id_comes_from_the_header_or_the_query() {
        let h = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDX/20261204/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=ab",
        )]);
        assert_eq!(access_key_id(&h, None).as_deref(), Some("AKIDX"));
        let query =
            "X-Amz-Credential=AKIDQ%2F20261204%2Fus-east-1%2Fkinesis%2Faws4_request&X-Amz-Date=x";
        assert_eq!(
            access_key_id(&HeaderMap::new(), Some(query)).as_deref(),
            Some("AKIDQ")
        );
        assert_eq!(access_key_id(&HeaderMap::new(), None), None);
        let h = headers(&[("authorization", "AWS4-HMAC-SHA256 Credential=/x")]);
        assert_eq!(access_key_id(&h, None), None);
    }

    #[test]
    fn log_summaries_stop_before_a_quoted_canonical_request() {
        let mismatch = AuthError::Invalid("does not match.\n\n'x-amz-security-token:t'".into());
        assert_eq!(mismatch.summary(), "does not match.");
        assert_eq!(AuthError::UnknownKey.summary(), "unknown access key");
    }

    #[test]
    fn an_unsigned_request_is_missing_its_token() {
        assert_eq!(check(&HeaderMap::new(), None), Err(AuthError::Missing));
        assert_eq!(
            check(&HeaderMap::new(), Some("a=b")),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn header_and_presigned_query_together_are_ambiguous() {
        let h = headers(&[
            ("authorization", SIGNED),
            ("x-amz-date", "20260101T000000Z"),
        ]);
        assert_eq!(
            check(&h, Some("X-Amz-Algorithm=AWS4-HMAC-SHA256")),
            Err(AuthError::Ambiguous)
        );
    }

    #[test]
    fn a_header_without_its_parts_lists_each_missing_part() {
        let h = headers(&[("authorization", "AWS4-HMAC-SHA256 Credential=x")]);
        let Err(AuthError::Incomplete(message)) = check(&h, None) else {
            panic!("accepted")
        };
        assert_eq!(
            message,
            "Authorization header requires 'Signature' parameter. \
             Authorization header requires 'SignedHeaders' parameter. \
             Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
             Authorization=AWS4-HMAC-SHA256 Credential=x"
        );
    }

    #[test]
    fn a_header_with_bytes_outside_utf8_is_checked_and_quoted_lossily() {
        let mut h = HeaderMap::new();
        let signed = [SIGNED.as_bytes(), b" Extra=\xff"].concat();
        h.insert(AUTHORIZATION, HeaderValue::from_bytes(&signed).unwrap());
        h.insert("x-amz-date", HeaderValue::from_static("20260101T000000Z"));
        assert_eq!(check(&h, None), Ok(()));
        let mut h = HeaderMap::new();
        let value = HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 Credential=\xff").unwrap();
        h.insert(AUTHORIZATION, value);
        let Err(AuthError::Incomplete(message)) = check(&h, None) else {
            panic!("accepted")
        };
        assert!(message.ends_with("Authorization=AWS4-HMAC-SHA256 Credential=\u{fffd}"));
    }

    #[test]
    fn a_complete_presigned_query_passes_and_an_incomplete_one_is_named() {
        let full = "X-Amz-Algorithm=A&X-Amz-Credential=c&X-Amz-Signature=s&X-Amz-SignedHeaders=host&X-Amz-Date=d";
        assert_eq!(check(&HeaderMap::new(), Some(full)), Ok(()));
        let Err(AuthError::Incomplete(message)) =
            check(&HeaderMap::new(), Some("X-Amz-Algorithm=A&X-Amz-Date=d"))
        else {
            panic!("accepted")
        };
        assert!(
            message.starts_with("AWS query-string parameters must include 'X-Amz-Credential'. ")
        );
        assert!(message.ends_with("Re-examine the query-string parameters."));
    }
}
