//! The JSON codec of AWS's Java front end ("coral"), which Kinesis,
//! Firehose and the other JSON services share: request members typed as
//! AWS types them (with AWS's own SerializationException texts for a wrong
//! type), and the small writer the responses are built with.
//!
//! AWS's JSON front end is Java ("coral"): an integer member given `1.9`
//! takes `1`, one given `1e20` takes `2147483647`, a string given a number
//! fails with `class com.amazon.coral.value.json.numbers.TruncatingBigNumber
//! can not be converted to an String`. The wrappers here copy that.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

const NUMBER_CLASS: &str = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber";
const STRUCT_FOUND: &str = "Start of structure or map found where not expected.";
const LIST_FOUND: &str = "Start of list found where not expected";

/// Parses a request body into its shape; any JSON or type error is a
/// `SerializationException`. Members the shape does not have are skipped,
/// at every depth, as AWS skips them: that is what lets a newer SDK, whose
/// model has more members, talk to an older service. (So no shape may say
/// `deny_unknown_fields`.)
pub fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, SerializationError> {
    serde_json::from_slice(body).map_err(|err| serialization_error(&err))
}

fn serialization_error(err: &serde_json::Error) -> SerializationError {
    use serde_json::error::Category;
    match err.classify() {
        // Not JSON at all: AWS sends no message.
        Category::Syntax | Category::Eof | Category::Io => SerializationError(String::new()),
        Category::Data => {
            let text = err.to_string();
            // serde_json appends the position; AWS's texts have none.
            let text = text.rfind(" at line ").map_or(&text[..], |at| &text[..at]);
            SerializationError(aws_wording(text))
        }
    }
}

/// Rewords serde's own messages (for structures, lists and maps, which the
/// wrappers do not cover) the way AWS words them.
fn aws_wording(text: &str) -> String {
    // A derived struct also reads a JSON array positionally; a wrong-length
    // one is AWS's "list found" (a right-length one is accepted: harmless).
    if text.starts_with("invalid length ") && text.contains("expected struct") {
        return LIST_FOUND.to_owned();
    }
    if !text.starts_with("invalid type: ") {
        return text.to_owned();
    }
    let found_list = text.starts_with("invalid type: sequence");
    let found_map = text.starts_with("invalid type: map");
    if text.contains("expected a sequence") {
        if found_map {
            STRUCT_FOUND
        } else {
            "Expected list or null"
        }
        .to_owned()
    } else if text.contains("expected a map") {
        if found_list {
            LIST_FOUND
        } else {
            "Expected map or null"
        }
        .to_owned()
    } else if text.contains("expected struct") {
        if found_list {
            LIST_FOUND
        } else {
            "Expected null"
        }
        .to_owned()
    } else {
        text.to_owned()
    }
}

/// The error for a JSON value of the wrong kind, as AWS words it. `target`
/// is AWS's name for the expected type, with its article ("an Integer").
fn wrong_kind<E: de::Error>(found: Found, target: &str) -> E {
    E::custom(match found {
        Found::Bool => format!("class java.lang.Boolean can not be converted to {target}"),
        Found::Number => format!("{NUMBER_CLASS} can not be converted to {target}"),
        Found::Str => format!("class java.lang.String can not be converted to {target}"),
        Found::Map => STRUCT_FOUND.to_owned(),
        Found::List => LIST_FOUND.to_owned(),
    })
}

enum Found {
    Bool,
    Number,
    Str,
    Map,
    List,
}

/// Implements the visitor methods for every JSON kind a wrapper refuses.
macro_rules! refuse {
    ($target:expr; $($kind:ident),*) => {
        $(refuse!(@one $kind, $target);)*
    };
    (@one bool, $target:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> { Err(wrong_kind(Found::Bool, $target)) }
    };
    (@one number, $target:expr) => {
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> { Err(wrong_kind(Found::Number, $target)) }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> { Err(wrong_kind(Found::Number, $target)) }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> { Err(wrong_kind(Found::Number, $target)) }
    };
    (@one str, $target:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> { Err(wrong_kind(Found::Str, $target)) }
    };
    (@one containers, $target:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> { Err(wrong_kind(Found::Map, $target)) }
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> { Err(wrong_kind(Found::List, $target)) }
    };
}

/// A `string` member, borrowed from the body when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Str::deserialize_as(d, "an String")
    }
}

impl Str<'_> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A `blob` member: base64 text, decoded later (straight into the buffer
/// that goes to the engine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Blob<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Str::deserialize_as(d, "a Blob").map(|s| Blob(s.0))
    }
}

impl<'a> Str<'a> {
    fn deserialize_as<'de: 'a, D: Deserializer<'de>>(
        d: D,
        target: &'static str,
    ) -> Result<Str<'a>, D::Error> {
        struct V<'a>(&'static str, std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Err(wrong_kind(Found::Bool, self.0))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(wrong_kind(Found::Number, self.0))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(wrong_kind(Found::Number, self.0))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Err(wrong_kind(Found::Number, self.0))
            }
            fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(wrong_kind(Found::Map, self.0))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
                Err(wrong_kind(Found::List, self.0))
            }
        }
        d.deserialize_any(V(target, std::marker::PhantomData))
    }
}

impl Blob<'_> {
    /// The decoded length, without decoding; `None` if the text is not
    /// well-formed base64 (length, padding).
    pub fn decoded_len(&self) -> Option<usize> {
        let text = self.0.as_bytes();
        if !text.len().is_multiple_of(4) {
            return None;
        }
        base64_simd::STANDARD.decoded_length(text).ok()
    }

    /// Decodes into the end of `out`, or gives AWS's SerializationException
    /// (leaving `out` as it was).
    pub fn decode_into(&self, out: &mut Vec<u8>) -> Result<(), SerializationError> {
        let text = self.0.as_bytes();
        if !text.len().is_multiple_of(4) {
            return Err(SerializationError(format!(
                "'{}' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: {}",
                self.0,
                text.len()
            )));
        }
        let bad = || {
            SerializationError(format!(
                "'{}' can not be converted to a Blob: {}",
                self.0,
                bad_base64_reason(text)
            ))
        };
        // The library sizes the output from the padding; asking it first
        // keeps its decoder from ever seeing a too-small buffer.
        let len = base64_simd::STANDARD
            .decoded_length(text)
            .map_err(|_| bad())?;
        let start = out.len();
        out.resize(start + len, 0);
        match base64_simd::STANDARD.decode(text, base64_simd::Out::from_slice(&mut out[start..])) {
            Ok(_) => Ok(()),
            Err(_) => {
                out.truncate(start);
                Err(bad())
            }
        }
    }
}

fn bad_base64_reason(text: &[u8]) -> String {
    let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let body_end = text.iter().rposition(|&b| b != b'=').map_or(0, |i| i + 1);
    match text[..body_end].iter().find(|&&b| !valid(b)) {
        Some(&b) => format!("Invalid Base64 character: '{}'", char::from(b)),
        None => "Invalid last non-pad Base64 character dectected".to_owned(),
    }
}

macro_rules! integer_wrapper {
    ($name:ident, $ty:ty, $target:expr) => {
        /// An integer member: a fraction is truncated and an out-of-range
        /// value clamped, as AWS's JSON reader does.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(pub $ty);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a number")
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$name, E> {
                        Ok($name(<$ty>::try_from(v).unwrap_or(<$ty>::MAX)))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$name, E> {
                        Ok($name(<$ty>::try_from(v).unwrap_or(if v < 0 { <$ty>::MIN } else { <$ty>::MAX })))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$name, E> {
                        // `as` saturates and maps NaN to 0.
                        Ok($name(v.floor() as $ty))
                    }
                    refuse!($target; bool, str, containers);
                }
                d.deserialize_any(V)
            }
        }
    };
}

integer_wrapper!(Int, i32, "an Integer");

/// A `boolean` member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bool(pub bool);

impl<'de> Deserialize<'de> for Bool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bool;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Bool, E> {
                Ok(Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Bool, E> {
                // AWS's reader also takes these spellings of a boolean.
                match v.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => Ok(Bool(true)),
                    "false" | "0" | "no" => Ok(Bool(false)),
                    _ => Err(E::custom(format!(
                        "'{}' can not be converted to an Boolean",
                        v.to_uppercase()
                    ))),
                }
            }
            refuse!("an Boolean"; number, containers);
        }
        d.deserialize_any(V)
    }
}

/// A `timestamp` member: epoch seconds, possibly fractional, held in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub i64);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp(
                    i64::try_from(v)
                        .unwrap_or(i64::MAX / 1000)
                        .saturating_mul(1000),
                ))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v.saturating_mul(1000)))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Ok(Timestamp(seconds_to_ms(v)))
            }
            refuse!("milliseconds since epoch"; bool, str, containers);
        }
        d.deserialize_any(V)
    }
}

/// Appends `text` as a JSON string (quoted and escaped).
pub fn write_str(out: &mut String, text: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1F => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// Where a record's data lies in the buffer of [`decode_blobs`]; `None`
/// for a record without data.
pub type Span = Option<(usize, usize)>;

/// Decodes the blobs of a batch (PutRecords, PutRecordBatch) into one
/// buffer sized once, so a batch costs one allocation, not one per record;
/// returns the buffer and each blob's span in it, in order.
pub fn decode_blobs<'b, 'a: 'b>(
    blobs: impl Iterator<Item = Option<&'b Blob<'a>>> + Clone,
) -> Result<(Vec<u8>, Vec<Span>), SerializationError> {
    let total: usize = blobs.clone().filter_map(|b| b?.decoded_len()).sum();
    let mut arena = Vec::with_capacity(total);
    let mut spans = Vec::new();
    for blob in blobs {
        spans.push(match blob {
            Some(blob) => {
                let start = arena.len();
                blob.decode_into(&mut arena)?;
                Some((start, arena.len()))
            }
            None => None,
        });
    }
    Ok((arena, spans))
}

/// A request body that is not JSON, or a member of the wrong type: AWS's
/// `SerializationException`, with its message (empty where AWS sends none).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SerializationError(pub String);

/// Epoch seconds (a JSON number, possibly fractional) to milliseconds,
/// rounded to the nearest millisecond and saturating at the ends of i64.
pub fn seconds_to_ms(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

/// A `string` member owned, for the control-plane shapes (nested
/// configurations), where borrowing from the body buys nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Str::deserialize_as(d, "an String").map(|s| Text(s.0.into_owned()))
    }
}

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug)]
    #[allow(non_snake_case, dead_code)]
    struct Shape<'a> {
        #[serde(borrow)]
        S: Option<Str<'a>>,
        I: Option<Int>,
        B: Option<Bool>,
        T: Option<Timestamp>,
        #[serde(borrow)]
        D: Option<Blob<'a>>,
        L: Option<Vec<Int>>,
        M: Option<Inner>,
    }

    #[derive(Deserialize, Debug)]
    #[allow(non_snake_case, dead_code)]
    struct Inner {
        X: Option<Int>,
    }

    fn error_of(json: &str) -> String {
        match parse::<Shape>(json.as_bytes()) {
            Err(SerializationError(m)) => m,
            other => panic!("{json}: {other:?}"),
        }
    }

    #[test]
    fn wrong_types_get_aws_texts() {
        let table = [
            (
                r#"{"S":1}"#,
                "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String",
            ),
            (
                r#"{"S":true}"#,
                "class java.lang.Boolean can not be converted to an String",
            ),
            (
                r#"{"S":{}}"#,
                "Start of structure or map found where not expected.",
            ),
            (r#"{"S":[]}"#, "Start of list found where not expected"),
            (
                r#"{"I":"1"}"#,
                "class java.lang.String can not be converted to an Integer",
            ),
            (
                r#"{"I":false}"#,
                "class java.lang.Boolean can not be converted to an Integer",
            ),
            (
                r#"{"B":"maybe"}"#,
                "'MAYBE' can not be converted to an Boolean",
            ),
            (
                r#"{"T":"x"}"#,
                "class java.lang.String can not be converted to milliseconds since epoch",
            ),
            (
                r#"{"D":1}"#,
                "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to a Blob",
            ),
            (r#"{"L":1}"#, "Expected list or null"),
            (
                r#"{"L":{}}"#,
                "Start of structure or map found where not expected.",
            ),
            (r#"{"M":"x"}"#, "Expected null"),
            (r#"{"M":[]}"#, "Start of list found where not expected"),
        ];
        for (json, message) in table {
            assert_eq!(error_of(json), message, "{json}");
        }
    }

    #[test]
    fn malformed_json_has_no_message() {
        assert_eq!(error_of("{"), "");
        assert_eq!(error_of("nope"), "");
        assert_eq!(error_of(r#"{"Nope":[1,{"x":"#), "");
    }

    #[test]
    fn unknown_members_are_ignored_at_every_depth_whatever_their_value() {
        // AWS ignores members its model does not have (a newer SDK's
        // members reach an older service); known ones keep their types.
        let shape: Shape =
            parse(br#"{"Nope":{"a":[1,"x",null]},"I":3,"M":{"X":1,"Y":true},"Z":"q"}"#).unwrap();
        assert_eq!(shape.I, Some(Int(3)));
        assert_eq!(shape.M.unwrap().X, Some(Int(1)));
        assert_eq!(
            error_of(r#"{"Nope":1,"I":"1"}"#),
            "class java.lang.String can not be converted to an Integer"
        );
    }

    #[test]
    fn integers_truncate_and_clamp_and_nulls_are_absent() {
        let shape: Shape = parse(br#"{"I":1.9,"S":null,"L":[1e20,-5]}"#).unwrap();
        assert_eq!(shape.I, Some(Int(1)));
        assert_eq!(shape.S, None);
        assert_eq!(shape.L, Some(vec![Int(i32::MAX), Int(-5)]));
        let shape: Shape = parse(br#"{"T":1700000000.5,"B":"true"}"#).unwrap();
        assert_eq!(shape.T, Some(Timestamp(1_700_000_000_500)));
        assert_eq!(shape.B, Some(Bool(true)));
    }

    #[test]
    fn strings_borrow_from_the_body_when_unescaped() {
        let body = br#"{"S":"plain","D":"aGk="}"#;
        let shape: Shape = parse(body).unwrap();
        assert!(matches!(shape.S.unwrap().0, Cow::Borrowed("plain")));
        let mut out = Vec::new();
        shape.D.unwrap().decode_into(&mut out).unwrap();
        assert_eq!(out, b"hi");
    }

    #[test]
    fn bad_base64_gets_aws_texts() {
        let cases = [
            (
                "abc",
                "'abc' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 3",
            ),
            (
                "ab!c",
                "'ab!c' can not be converted to a Blob: Invalid Base64 character: '!'",
            ),
            (
                "aGl=",
                "'aGl=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected",
            ),
        ];
        for (text, message) in cases {
            let mut out = vec![1];
            match Blob(Cow::Borrowed(text)).decode_into(&mut out) {
                Err(SerializationError(m)) => assert_eq!(m, message),
                other => panic!("{text}: {other:?}"),
            }
            assert_eq!(out, vec![1]);
        }
    }

    #[test]
    fn odd_padding_never_panics() {
        for text in [
            "====",
            "a===",
            "ab=c",
            "=abc",
            "ab==",
            "abc=",
            "a=b=",
            "AA==AA==",
            "\u{e9}abc",
        ] {
            let mut out = Vec::new();
            let _ = Blob(Cow::Borrowed(text)).decode_into(&mut out);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_base64_like_text_decodes_or_fails_cleanly(text in "[A-Za-z0-9+/=]{0,24}") {
            let mut out = vec![7];
            match Blob(Cow::Borrowed(&text)).decode_into(&mut out) {
                Ok(()) => proptest::prop_assert_eq!(base64_simd::STANDARD.encode_to_string(&out[1..]), text),
                Err(SerializationError(_)) => proptest::prop_assert_eq!(out, vec![7]),
            }
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        write_str(&mut out, "a\"b\\c\n\u{1}é");
        assert_eq!(out, r#""a\"b\\c\n\u0001é""#);
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{1}é");
    }
}
