//! ListStreams: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListStreams.html>
//!
//! `NextToken` is the base64 of `ls1:` and the last stream name returned;
//! the next page starts after that name.

use base64_simd::URL_SAFE_NO_PAD as TOKEN;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{StreamModeDetails, epoch_seconds};
use crate::json::{self, Int, Str};
use crate::time::now_ms;
use crate::validate::{Pattern, Violations};
use crate::{Kinesis, KinesisError};

/// Streams one call lists at most (API_ListStreams: "The default value is
/// 100. If you specify a value greater than 100, at most 100 results are
/// returned.").
pub const LIST_STREAMS_MAX: usize = 100;
const TOKEN_PREFIX: &str = "ls1:";

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    Limit: Option<Int>,
    #[serde(borrow)]
    ExclusiveStartStreamName: Option<Str<'a>>,
    #[serde(borrow)]
    NextToken: Option<Str<'a>>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Summary<'a> {
    StreamName: &'a str,
    StreamARN: &'a str,
    StreamStatus: &'static str,
    StreamModeDetails: StreamModeDetails,
    StreamCreationTimestamp: f64,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Output<'a> {
    StreamNames: Vec<&'a str>,
    HasMoreStreams: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    NextToken: Option<String>,
    StreamSummaries: Vec<Summary<'a>>,
}

pub fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    v.range(
        input.Limit.map(|n| i64::from(n.0)),
        "limit",
        Some(1),
        Some(10000),
    );
    let start = input.ExclusiveStartStreamName.as_ref().map(Str::as_str);
    v.pattern(start, "exclusiveStartStreamName", Pattern::Name);
    v.length(start, "exclusiveStartStreamName", 1, 128);
    let token = input.NextToken.as_ref().map(Str::as_str);
    v.length(token, "nextToken", 1, 1_048_576);
    v.into_result::<crate::validate::ValidationError>()?;
    let after = match token {
        Some(token) => Some(decode_token(token)?),
        None => start.map(str::to_owned),
    };
    let limit = input
        .Limit
        .map_or(LIST_STREAMS_MAX, |n| (n.0 as usize).min(LIST_STREAMS_MAX));
    let now = now_ms();
    let streams: Vec<_> = kinesis
        .all()
        .into_iter()
        .filter(|s| s.status(now).is_some() && after.as_deref().is_none_or(|a| s.name() > a))
        .collect();
    let page = &streams[..streams.len().min(limit)];
    let more = streams.len() > page.len();
    super::respond(&Output {
        StreamNames: page.iter().map(|s| s.name()).collect(),
        HasMoreStreams: more,
        NextToken: more
            .then(|| page.last().map(|s| encode_token(s.name())))
            .flatten(),
        StreamSummaries: page
            .iter()
            .map(|s| Summary {
                StreamName: s.name(),
                StreamARN: &s.arn,
                // Filtered above: the stream is not gone.
                StreamStatus: s.status(now).map_or("DELETING", |st| st.as_str()),
                StreamModeDetails: StreamModeDetails {
                    StreamMode: s.record.mode.as_str(),
                },
                StreamCreationTimestamp: epoch_seconds(s.record.created_ms),
            })
            .collect(),
    })
}

fn encode_token(last: &str) -> String {
    TOKEN.encode_to_string(format!("{TOKEN_PREFIX}{last}"))
}

fn decode_token(token: &str) -> Result<String, KinesisError> {
    TOKEN
        .decode_to_vec(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|text| text.strip_prefix(TOKEN_PREFIX).map(str::to_owned))
        .ok_or_else(|| KinesisError::InvalidArgument(format!("Invalid NextToken: {token}")))
}
