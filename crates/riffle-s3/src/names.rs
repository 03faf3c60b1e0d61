//! Bucket names and object keys: AWS's rules for them, and the file names keys are stored under.

use sha2::{Digest, Sha256};

use crate::S3Error;

/// "The name for a key is a sequence of Unicode characters whose UTF-8
/// encoding is at most 1,024 bytes long." (S3 User Guide, object keys)
pub const MAX_KEY_LEN: usize = 1024;

/// Bucket names are 3 to 63 characters long (S3 User Guide, general purpose
/// bucket naming rules).
const BUCKET_NAME_LEN: std::ops::RangeInclusive<usize> = 3..=63;
const RESERVED_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
const RESERVED_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

/// An encoded key longer than this is stored under its hash instead: file
/// names are limited to 255 bytes, and the hash form is 65.
const MAX_PLAIN_FILE_NAME: usize = 240;
/// The first character of a hashed file name; never produced by encoding.
const HASHED_MARK: char = '~';

/// Checks AWS's general purpose bucket naming rules. A valid name is also a
/// safe directory name: no `/`, never `.` or `..`.
pub fn validate_bucket_name(name: &str) -> Result<(), S3Error> {
    if is_valid_bucket_name(name) {
        Ok(())
    } else {
        Err(S3Error::InvalidBucketName {
            bucket: name.to_owned(),
        })
    }
}

pub(crate) fn is_valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    BUCKET_NAME_LEN.contains(&bytes.len())
        && bytes.iter().all(|b| alnum(b) || *b == b'.' || *b == b'-')
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && !name.contains("..")
        && !looks_like_ipv4(name)
        && !RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
        && !RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s))
}

fn looks_like_ipv4(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks a key's length (S3 accepts any UTF-8 key of 1 to 1,024 bytes).
pub fn validate_key(key: &str) -> Result<(), S3Error> {
    if key.is_empty() {
        return Err(S3Error::invalid_argument(
            "Object key must not be empty",
            "key",
            "",
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(S3Error::KeyTooLong {
            size: key.len(),
            max: MAX_KEY_LEN,
        });
    }
    Ok(())
}

/// The file name an object's key is stored under in its bucket's `objects/`.
///
/// ASCII letters, digits, `-`, `_` and (past the first byte) `.` stay as
/// they are; every other byte becomes `%XX`, so `raw-data/2026/a.gz` is
/// `raw-data%2F2026%2Fa.gz`. An encoding longer than 240 bytes is replaced
/// by `~` and the key's SHA-256 in hex; such files carry their key in their
/// header, which is the truth for every object anyway.
pub fn key_to_file_name(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for (i, b) in key.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() > MAX_PLAIN_FILE_NAME {
        let digest = Sha256::digest(key.as_bytes());
        out = format!("{HASHED_MARK}{}", hex(&digest));
    }
    out
}

/// The key of a plainly encoded file name; `None` for a hashed name (read
/// the header) or a name this store did not write.
pub fn file_name_to_key(name: &str) -> Option<String> {
    if name.starts_with(HASHED_MARK) {
        return None;
    }
    let decoded: Vec<u8> = percent_encoding::percent_decode_str(name).collect();
    String::from_utf8(decoded).ok()
}

/// Whether a file name is in the hashed form.
pub fn is_hashed_file_name(name: &str) -> bool {
    name.starts_with(HASHED_MARK)
}

/// Lower-case hex, as in ETags.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_aws_rules() {
        for ok in ["abc", "my-bucket.logs", "a1b", "0bucket9", &"a".repeat(63)] {
            assert!(is_valid_bucket_name(ok), "{ok} should be valid");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "-abc",
            "abc-",
            "a..b",
            "a_b",
            "192.168.5.4",
            "xn--abc",
            "sthree-abc",
            "abc-s3alias",
            "abc--ol-s3",
            "..",
            "a/b",
        ] {
            assert!(!is_valid_bucket_name(bad), "{bad} should be invalid");
        }
    }

    #[test]
    fn keys_round_trip_through_file_names() {
        for key in [
            "a",
            "raw-data/2026/12/06/x.gz",
            ".hidden",
            "..",
            "dir/",
            "a%2Fb",
            "spaces and+plus",
            "ünïcødé/日本",
            "~tilde",
        ] {
            let name = key_to_file_name(key);
            assert!(!name.contains('/'), "{name}");
            assert!(name != "." && name != "..");
            assert_eq!(file_name_to_key(&name).as_deref(), Some(key));
        }
    }

    #[test]
    fn long_keys_get_a_fixed_length_hashed_name() {
        let key = "k/".repeat(200);
        let name = key_to_file_name(&key);
        assert!(is_hashed_file_name(&name));
        assert_eq!(name.len(), 65);
        assert_eq!(file_name_to_key(&name), None);
        assert_ne!(name, key_to_file_name(&"j/".repeat(200)));
    }

    #[test]
    fn key_length_is_checked_in_bytes() {
        assert!(validate_key(&"é".repeat(512)).is_ok());
        assert!(matches!(
            validate_key(&"é".repeat(513)),
            Err(S3Error::KeyTooLong { size: 1026, .. })
        ));
        assert!(validate_key("").is_err());
    }
}
