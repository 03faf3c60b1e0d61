//! ListShards: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListShards.html>
//!
//! `NextToken` is the URL-safe base64 of
//! `sh2:<filter>:<timestamp ms>:<last index>:<stream>`, where `filter` is
//! the [`Filter`] code (its timestamp is 0 when it has none); the next page
//! lists the shards the same filter selects after that index.
//!
//! Filters (API_ShardFilter), with the trim horizon `now - retention` (no
//! earlier than the stream's creation) and a shard's end being when its
//! children were created:
//! - `FROM_TRIM_HORIZON` (also no filter): every shard within retention;
//!   closed shards past it have left the stream and are never listed.
//! - `AT_TRIM_HORIZON`: the shards open at the trim horizon.
//! - `AT_LATEST`: the open shards.
//! - `AT_TIMESTAMP`: shards started at or before it and open at it.
//! - `FROM_TIMESTAMP`: open shards and those closed at or after it; a
//!   timestamp before the trim horizon counts as the trim horizon.
//! - `AFTER_SHARD_ID`: every shard after the one named.

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
const TOKEN_PREFIX: &str = "sh2:";

const FILTER_TYPES: &[&str] = &[
    "AFTER_SHARD_ID",
    "AT_TRIM_HORIZON",
    "FROM_TRIM_HORIZON",
    "AT_LATEST",
    "AT_TIMESTAMP",
    "FROM_TIMESTAMP",
];

#[derive(Deserialize)]
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
    ShardFilter: Option<FilterInput<'a>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct FilterInput<'a> {
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
    filter: Filter,
}

/// Which shards a listing selects (besides `after`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    FromTrimHorizon,
    AtTrimHorizon,
    AtLatest,
    AtTimestamp(i64),
    FromTimestamp(i64),
}

impl Filter {
    fn code(self) -> (u8, i64) {
        match self {
            Filter::FromTrimHorizon => (0, 0),
            Filter::AtTrimHorizon => (1, 0),
            Filter::AtLatest => (2, 0),
            Filter::AtTimestamp(at) => (3, at),
            Filter::FromTimestamp(at) => (4, at),
        }
    }

    fn from_code(code: u8, at: i64) -> Option<Filter> {
        Some(match code {
            0 => Filter::FromTrimHorizon,
            1 => Filter::AtTrimHorizon,
            2 => Filter::AtLatest,
            3 => Filter::AtTimestamp(at),
            4 => Filter::FromTimestamp(at),
            _ => return None,
        })
    }

    /// Whether a shard that started at `start` and is open (`end` none) or
    /// ended at `end` is selected, given the trim horizon.
    fn selects(self, start: i64, end: Option<i64>, horizon: i64) -> bool {
        let open_at = |t: i64| start <= t && end.is_none_or(|e| e >= t);
        match self {
            Filter::FromTrimHorizon => true,
            Filter::AtTrimHorizon => open_at(horizon),
            Filter::AtLatest => end.is_none(),
            Filter::AtTimestamp(at) => open_at(at.max(horizon)),
            Filter::FromTimestamp(at) => end.is_none_or(|e| e >= at.max(horizon)),
        }
    }
}

fn validate(input: &Input<'_>) -> Result<(), KinesisError> {
    let mut v = Violations::new();
    let name = input.StreamName.as_ref().map(Str::as_str);
    v.pattern(name, "streamName", Pattern::Name);
    v.length(name, "streamName", 1, 128);
    v.length(
        input.NextToken.as_ref().map(Str::as_str),
        "nextToken",
        1,
        1_048_576,
    );
    let start = input.ExclusiveStartShardId.as_ref().map(Str::as_str);
    v.pattern(start, "exclusiveStartShardId", Pattern::Name);
    v.length(start, "exclusiveStartShardId", 1, 128);
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
        v.pattern(id, "shardFilter.shardId", Pattern::Name);
        v.length(id, "shardFilter.shardId", 1, 128);
    }
    let arn = input.StreamARN.as_ref().map(Str::as_str);
    v.pattern(arn, "streamARN", Pattern::StreamArn);
    v.length(arn, "streamARN", 1, 2048);
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
    let mut filter = Filter::FromTrimHorizon;
    if let Some(given) = &input.ShardFilter {
        let at = given.Timestamp.map(|t| t.0);
        // Validated: present and one of FILTER_TYPES.
        filter = match (given.Type.as_ref().map_or("", Str::as_str), at) {
            ("AFTER_SHARD_ID", _) => {
                let Some(id) = &given.ShardId else {
                    return Err(KinesisError::InvalidArgument(
                        "ShardId must be supplied in a ShardFilter with a Type of AFTER_SHARD_ID"
                            .to_owned(),
                    ));
                };
                after = after.max(catalog::parse_shard_id(id.as_str()));
                Filter::FromTrimHorizon
            }
            ("AT_TIMESTAMP" | "FROM_TIMESTAMP", None) => {
                return Err(KinesisError::InvalidArgument(
                    "Timestamp must be supplied in a ShardFilter with a Type of FROM_TIMESTAMP or AT_TIMESTAMP"
                        .to_owned(),
                ));
            }
            ("AT_TIMESTAMP", Some(at)) => Filter::AtTimestamp(at),
            ("FROM_TIMESTAMP", Some(at)) => Filter::FromTimestamp(at),
            ("AT_TRIM_HORIZON", _) => Filter::AtTrimHorizon,
            ("AT_LATEST", _) => Filter::AtLatest,
            _ => Filter::FromTrimHorizon,
        };
    }
    Ok(Page {
        stream,
        after,
        filter,
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
    let horizon = stream.trim_horizon_ms(now).max(stream.record.created_ms);
    let listed: Vec<_> = stream
        .listed(now)
        .filter(|s| {
            page.after.is_none_or(|a| s.index > a)
                && page
                    .filter
                    .selects(s.created_ms, stream.closed_ms(s), horizon)
        })
        .collect();
    let shown = &listed[..listed.len().min(limit)];
    let next = (listed.len() > shown.len())
        .then(|| {
            shown
                .last()
                .map(|s| encode_token(page.filter, s.index, stream.name()))
        })
        .flatten();
    super::respond(&Output {
        Shards: shown.iter().map(|s| ShardOut::of(&stream, s)).collect(),
        NextToken: next,
    })
}

fn encode_token(filter: Filter, last: u32, stream: &str) -> String {
    let (code, at) = filter.code();
    TOKEN.encode_to_string(format!("{TOKEN_PREFIX}{code}:{at}:{last}:{stream}"))
}

fn decode_token(token: &str) -> Result<Page, KinesisError> {
    let invalid = || KinesisError::InvalidArgument(format!("Invalid NextToken: {token}"));
    let raw = TOKEN.decode_to_vec(token).map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let rest = text.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid)?;
    let mut parts = rest.splitn(4, ':');
    let (Some(code), Some(at), Some(last), Some(stream)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let at: i64 = at.parse().map_err(|_| invalid())?;
    let filter = code
        .parse()
        .ok()
        .and_then(|code| Filter::from_code(code, at))
        .ok_or_else(invalid)?;
    Ok(Page {
        stream: stream.to_owned(),
        after: Some(last.parse().map_err(|_| invalid())?),
        filter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_every_filter() {
        for filter in [
            Filter::FromTrimHorizon,
            Filter::AtTrimHorizon,
            Filter::AtLatest,
            Filter::AtTimestamp(1_795_000_000_123),
            Filter::FromTimestamp(-5),
        ] {
            let page = decode_token(&encode_token(filter, 42, "a:b")).unwrap();
            assert_eq!(
                (page.filter, page.after, page.stream.as_str()),
                (filter, Some(42), "a:b")
            );
        }
        for bad in ["", "c2gyOjk6MDoxOnM", "c2gxOjA6MTpz"] {
            assert!(decode_token(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn filters_select_as_documented() {
        // A parent 0..=100 closed at 100; its child from 100, open.
        let (parent, child) = ((0, Some(100)), (100, None));
        let horizon = 10;
        let sel = |f: Filter, (start, end): (i64, Option<i64>)| f.selects(start, end, horizon);
        assert!(sel(Filter::AtTrimHorizon, parent) && !sel(Filter::AtTrimHorizon, child));
        assert!(!sel(Filter::AtLatest, parent) && sel(Filter::AtLatest, child));
        assert!(sel(Filter::FromTrimHorizon, parent) && sel(Filter::FromTrimHorizon, child));
        assert!(sel(Filter::AtTimestamp(50), parent) && !sel(Filter::AtTimestamp(50), child));
        // At the moment of the reshard both are open.
        assert!(sel(Filter::AtTimestamp(100), parent) && sel(Filter::AtTimestamp(100), child));
        assert!(!sel(Filter::AtTimestamp(150), parent) && sel(Filter::AtTimestamp(150), child));
        // Before the trim horizon counts as the trim horizon.
        assert!(sel(Filter::AtTimestamp(-99), parent) && !sel(Filter::AtTimestamp(-99), child));
        assert!(sel(Filter::FromTimestamp(50), parent) && sel(Filter::FromTimestamp(50), child));
        assert!(!sel(Filter::FromTimestamp(150), parent) && sel(Filter::FromTimestamp(150), child));
    }
}
