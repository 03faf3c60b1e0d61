//! SigV4 for the lean client, with the per-day signing key and the
//! per-second date strings cached.
//!
//! `aws_sigv4::http_request::sign` derives the signing key (four HMACs) and
//! builds the canonical request through general-purpose string formatting
//! on every call: about a quarter of the bench's CPU per PutRecord. Every
//! request the bench sends has the same shape (`POST /`, the same four
//! headers), so the canonical request is one fixed template; the key
//! derivation and the final HMAC are still `aws_sigv4`'s own functions,
//! and a test checks the result is byte-for-byte what `aws_sigv4` signs.
//!
//! ```text
//! canonical request          string to sign
//! POST                       AWS4-HMAC-SHA256
//! /                          20261123T135521Z
//! (empty query)              20261123/us-east-1/kinesis/aws4_request
//! content-type:…             hex(sha256(canonical request))
//! host:…
//! x-amz-date:20261123T135521Z
//! [x-amz-security-token:…]
//! x-amz-target:…
//! (empty line)
//! content-type;host;x-amz-date;[x-amz-security-token;]x-amz-target
//! hex(sha256(body))
//! ```

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use sha2::{Digest, Sha256};

/// The headers a signed request carries besides the ones it was built with.
pub struct Signature {
    /// `x-amz-date`, e.g. `20261123T135521Z`.
    pub amz_date: String,
    pub authorization: String,
}

/// Signs requests for one identity, region and service.
pub struct Signer {
    credentials: Credentials,
    region: String,
    service: &'static str,
    /// Tells this signer's cache entries from another's on the same thread.
    id: u64,
}

/// The next [`Signer::id`].
static NEXT_SIGNER: AtomicU64 = AtomicU64::new(0);

/// What is reused between requests of one thread.
struct Cache {
    signer: u64,
    /// The second the date strings are for.
    second: u64,
    amz_date: String,
    /// `YYYYMMDD`, the day the signing key is for.
    day: String,
    key: Vec<u8>,
}

thread_local! {
    static CACHE: RefCell<Option<Cache>> = const { RefCell::new(None) };
}

impl Signer {
    pub fn new(credentials: Credentials, region: &str, service: &'static str) -> Signer {
        Signer {
            credentials,
            region: region.to_owned(),
            service,
            id: NEXT_SIGNER.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub fn session_token(&self) -> Option<&str> {
        self.credentials.session_token()
    }

    /// Signs `POST /` with these header values and body, at `now`.
    pub fn sign(
        &self,
        host: &str,
        content_type: &str,
        target: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Signature {
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        CACHE.with_borrow_mut(|cache| {
            let fresh = cache
                .as_ref()
                .is_some_and(|c| c.signer == self.id && c.second == second);
            if !fresh {
                *cache = Some(self.cache_for(second, now, cache.take()));
            }
            // Just filled in above.
            let cache = cache.as_ref().expect("the cache was filled");
            self.sign_with(cache, host, content_type, target, body)
        })
    }

    fn cache_for(&self, second: u64, now: SystemTime, old: Option<Cache>) -> Cache {
        let (amz_date, day) = amz_date(second);
        let key = match old {
            Some(old) if old.signer == self.id && old.day == day => old.key,
            _ => aws_sigv4::sign::v4::generate_signing_key(
                self.credentials.secret_access_key(),
                now,
                &self.region,
                self.service,
            )
            .as_ref()
            .to_vec(),
        };
        Cache {
            signer: self.id,
            second,
            amz_date,
            day,
            key,
        }
    }

    fn sign_with(
        &self,
        cache: &Cache,
        host: &str,
        content_type: &str,
        target: &str,
        body: &[u8],
    ) -> Signature {
        let token = self.credentials.session_token();
        let signed_headers = match token {
            Some(_) => "content-type;host;x-amz-date;x-amz-security-token;x-amz-target",
            None => "content-type;host;x-amz-date;x-amz-target",
        };
        let mut canonical = String::with_capacity(320);
        // Writing into a String cannot fail.
        let _ = write!(
            canonical,
            "POST\n/\n\ncontent-type:{content_type}\nhost:{host}\nx-amz-date:{}\n",
            cache.amz_date
        );
        if let Some(token) = token {
            let _ = writeln!(canonical, "x-amz-security-token:{token}");
        }
        let _ = write!(canonical, "x-amz-target:{target}\n\n{signed_headers}\n");
        hex_into(&mut canonical, &Sha256::digest(body));
        let scope = format!(
            "{}/{}/{}/aws4_request",
            cache.day, self.region, self.service
        );
        let mut to_sign = format!("AWS4-HMAC-SHA256\n{}\n{scope}\n", cache.amz_date);
        hex_into(&mut to_sign, &Sha256::digest(canonical.as_bytes()));
        let signature = aws_sigv4::sign::v4::calculate_signature(&cache.key, to_sign.as_bytes());
        Signature {
            amz_date: cache.amz_date.clone(),
            authorization: format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                self.credentials.access_key_id()
            ),
        }
    }
}

fn hex_into(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// `YYYYMMDDTHHMMSSZ` and `YYYYMMDD` of a Unix second (UTC).
fn amz_date(second: u64) -> (String, String) {
    let days = (second / 86_400) as i64;
    let rest = second % 86_400;
    let (year, month, day) = civil_from_days(days);
    let day_text = format!("{year:04}{month:02}{day:02}");
    let amz = format!(
        "{day_text}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    );
    (amz, day_text)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_smithy_runtime_api::client::identity::Identity;
    use std::time::Duration;

    /// The reference: what `aws_sigv4` itself puts in the headers.
    fn reference(creds: &Credentials, body: &[u8], now: SystemTime) -> (String, String) {
        let identity: Identity = creds.clone().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-3")
            .name("kinesis")
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers = [
            ("host", "127.0.0.1:4567"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Kinesis_20131202.PutRecord"),
        ];
        let request = SignableRequest::new(
            "POST",
            "http://127.0.0.1:4567/",
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(request, &params).unwrap().into_parts();
        let mut out = http::Request::new(());
        instructions.apply_to_request_http1x(&mut out);
        let get = |name: &str| out.headers()[name].to_str().unwrap().to_owned();
        (get("x-amz-date"), get("authorization"))
    }

    #[test]
    fn signatures_match_aws_sigv4_byte_for_byte() {
        let body = br#"{"StreamName":"s","Data":"AAEC","PartitionKey":"k"}"#;
        let plain = Credentials::new("AKIDEXAMPLE", "secret/key+1", None, None, "test");
        let session = Credentials::new("AKIDEXAMPLE", "secret", Some("token/=".into()), None, "t");
        // A leap day, a year end and an ordinary afternoon, twice each (the
        // second call is served from the cache).
        for secs in [1_709_164_800 + 3_723, 1_767_225_599, 1_795_442_121] {
            let now = UNIX_EPOCH + Duration::from_secs(secs);
            for creds in [&plain, &session] {
                let signer = Signer::new(creds.clone(), "eu-west-3", "kinesis");
                for _ in 0..2 {
                    let ours = signer.sign(
                        "127.0.0.1:4567",
                        "application/x-amz-json-1.1",
                        "Kinesis_20131202.PutRecord",
                        body,
                        now,
                    );
                    let (date, authorization) = reference(creds, body, now);
                    assert_eq!(ours.amz_date, date);
                    assert_eq!(ours.authorization, authorization);
                }
            }
        }
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(amz_date(0), ("19700101T000000Z".into(), "19700101".into()));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
