//! ListShards: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListShards.html>
//!
//! `NextToken` is the URL-safe base64 of `sh1:<o>:<last index>:<stream>`,
//! where `o` is 1 when only open shards are listed (filter `AT_LATEST`);
//! the next page lists shards after that index.

use base64_simd::URL_SAFE_NO_PAD as TOKEN;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::describe_stream::ShardOut;
use crate::catalog::{self, Status};
use crate::json::{self, Int, Str, Timestamp};
use crate::time::now_ms;
use crate::validate::{Pattern, Violations};
use crate::{Kinesis, KinesisError, errors};

/// Shards one call lists by default (API_ListShards: MaxResults "the
/// default value is 1000. If you specify a value greater than 1000, at
/// most 1000 results are returned."); the model allows asking up to 10,000.
pub const LIST_SHARDS_MAX: usize = 1000;
const TOKEN_PREFIX: &str = "sh1:";

const FILTER_TYPES: &[&str] = &[
    "AFTER_SHARD_ID",
    "AT_TRIM_HORIZON",
    "FROM_TRIM_HORIZON",
    "AT_LATEST",
    "AT_TIMESTAMP",
    "FROM_TIMESTAMP",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    NextToken: Option<Str<'a>>,
    #[serde(borrow)]
    ExclusiveStartShardId: Option<Str<'a>>,
    MaxResults: Option<Int>,
    StreamCreationTimestamp: Option<Timestamp>,
    #[serde(borrow)]
    ShardFilter: Option<Filter<'a>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
struct Filter<'a> {
    #[serde(borrow)]
    Type: Option<Str<'a>>,
    #[serde(borrow)]
    ShardId: Option<Str<'a>>,
    Timestamp: Option<Timestamp>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Output<'a> {
    Shards: Vec<ShardOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    NextToken: Option<String>,
}

/// Where a page starts and what it lists.
struct Page {
    stream: String,
    after: Option<u32>,
    open_only: bool,
}

fn validate(input: &Input<'_>) -> Result<(), KinesisError> {
    let mut v = Violations::new();
    let name = input.StreamName.as_ref().map(Str::as_str);
    v.length(name, "streamName", 1, 128);
    v.pattern(name, "streamName", Pattern::Name);
    v.length(
        input.NextToken.as_ref().map(Str::as_str),
        "nextToken",
        1,
        1_048_576,
    );
    let start = input.ExclusiveStartShardId.as_ref().map(Str::as_str);
    v.length(start, "exclusiveStartShardId", 1, 128);
    v.pattern(start, "exclusiveStartShardId", Pattern::Name);
    v.range(
        input.MaxResults.map(|n| i64::from(n.0)),
        "maxResults",
        Some(1),
        Some(10000),
    );
    if let Some(filter) = &input.ShardFilter {
        v.required(&filter.Type, "shardFilter.type");
        v.one_of(
            filter.Type.as_ref().map(Str::as_str),
            "shardFilter.type",
            FILTER_TYPES,
        );
        let id = filter.ShardId.as_ref().map(Str::as_str);
        v.length(id, "shardFilter.shardId", 1, 128);
        v.pattern(id, "shardFilter.shardId", Pattern::Name);
    }
    let arn = input.StreamARN.as_ref().map(Str::as_str);
    v.length(arn, "streamARN", 1, 2048);
    v.pattern(arn, "streamARN", Pattern::StreamArn);
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result()
}

fn page(kinesis: &Kinesis, input: &Input<'_>) -> Result<Page, KinesisError> {
    let named = input.StreamName.is_some() || input.StreamARN.is_some();
    if let Some(token) = &input.NextToken {
        if named {
            return Err(KinesisError::InvalidArgument(
                "NextToken and StreamName cannot be provided together.".to_owned(),
            ));
        }
        if input.ExclusiveStartShardId.is_some() || input.StreamCreationTimestamp.is_some() {
            return Err(KinesisError::InvalidArgument(
                "NextToken cannot be provided together with ExclusiveStartShardId or StreamCreationTimestamp."
                    .to_owned(),
            ));
        }
        return decode_token(token.as_str());
    }
    if !named {
        return Err(KinesisError::InvalidArgument(
            "Either NextToken or StreamName should be provided.".to_owned(),
        ));
    }
    let stream = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    let mut after = input
        .ExclusiveStartShardId
        .as_ref()
        .and_then(|id| catalog::parse_shard_id(id.as_str()));
    let mut open_only = false;
    if let Some(filter) = &input.ShardFilter {
        // Validated: present and one of FILTER_TYPES.
        match filter.Type.as_ref().map_or("", Str::as_str) {
            "AFTER_SHARD_ID" => {
                let Some(id) = &filter.ShardId else {
                    return Err(KinesisError::InvalidArgument(
                        "ShardId must be supplied in a ShardFilter with a Type of AFTER_SHARD_ID"
                            .to_owned(),
                    ));
                };
                let index = catalog::parse_shard_id(id.as_str());
                after = after.max(index);
            }
            "AT_TIMESTAMP" | "FROM_TIMESTAMP" if filter.Timestamp.is_none() => {
                return Err(KinesisError::InvalidArgument(
                    "Timestamp must be supplied in a ShardFilter with a Type of FROM_TIMESTAMP or AT_TIMESTAMP"
                        .to_owned(),
                ));
            }
            // Without resharding every shard is open and as old as the
            // stream, so the trim-horizon and timestamp filters list all.
            "AT_LATEST" => open_only = true,
            _ => {}
        }
    }
    Ok(Page {
        stream,
        after,
        open_only,
    })
}

pub fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    validate(&input)?;
    let page = page(kinesis, &input)?;
    let now = now_ms();
    let stream = kinesis.lookup(&page.stream, now)?;
    if stream.status(now) == Some(Status::Creating) {
        return Err(errors::stream_not_active(
            stream.name(),
            kinesis.account(),
            "CREATING",
        ));
    }
    let limit = input
        .MaxResults
        .map_or(LIST_SHARDS_MAX, |n| (n.0 as usize).min(LIST_SHARDS_MAX));
    let listed: Vec<_> = stream
        .shards
        .iter()
        .filter(|s| page.after.is_none_or(|a| s.index > a) && !(page.open_only && s.closed))
        .collect();
    let shown = &listed[..listed.len().min(limit)];
    let next = (listed.len() > shown.len())
        .then(|| {
            shown
                .last()
                .map(|s| encode_token(page.open_only, s.index, stream.name()))
        })
        .flatten();
    super::respond(&Output {
        Shards: shown.iter().map(|s| ShardOut::of(&stream, s)).collect(),
        NextToken: next,
    })
}

fn encode_token(open_only: bool, last: u32, stream: &str) -> String {
    TOKEN.encode_to_string(format!(
        "{TOKEN_PREFIX}{}:{last}:{stream}",
        u8::from(open_only)
    ))
}

fn decode_token(token: &str) -> Result<Page, KinesisError> {
    let invalid = || KinesisError::InvalidArgument(format!("Invalid NextToken: {token}"));
    let raw = TOKEN.decode_to_vec(token).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let rest = text.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid)?;
    let mut parts = rest.splitn(3, ':');
    let (Some(open), Some(last), Some(stream)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    Ok(Page {
        stream: stream.to_owned(),
        after: Some(last.parse().map_err(|_| invalid())?),
        open_only: open == "1",
    })
}
