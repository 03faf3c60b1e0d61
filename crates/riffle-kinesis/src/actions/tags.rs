//! Stream tags:
//! AddTagsToStream <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_AddTagsToStream.html>,
//! RemoveTagsFromStream <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_RemoveTagsFromStream.html>,
//! ListTagsForStream <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_ListTagsForStream.html>,
//! and their ARN-addressed forms TagResource, UntagResource and
//! ListTagsForResource (`.../API_TagResource.html` etc.).
//!
//! Tags are kept in the stream's catalog entry (`settings.tags`), so they
//! are durable and disappear with the stream.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::create_stream::check_tags;
use super::settings::{self, Needs};
use crate::catalog::StreamRecord;
use crate::json::{self, Int, Str};
use crate::validate::{Pattern, Shown, Violations};
use crate::{Kinesis, KinesisError};

/// Tags per stream ("Tag your Amazon Kinesis Data Streams resources": a
/// stream can have up to 50 tags).
pub const TAGS_PER_STREAM_MAX: usize = 50;
/// Keys per RemoveTagsFromStream/UntagResource (the model's `TagKeyList`).
pub const TAG_KEYS_PER_CALL_MAX: usize = 50;
/// ListTagsForStream's `Limit` bounds (the model's
/// `ListTagsForStreamInputLimit`); without one, all tags fit.
pub const LIST_LIMIT_MAX: i64 = 50;
/// Tag key length bounds (the model's `TagKey`).
pub const TAG_KEY_CHARS_MAX: usize = 128;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct AddInput<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    Tags: Option<BTreeMap<String, Str<'a>>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct RemoveInput<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    TagKeys: Option<Vec<Str<'a>>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct ListInput<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    ExclusiveStartTagKey: Option<Str<'a>>,
    Limit: Option<Int>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct ResourceInput<'a> {
    #[serde(borrow)]
    ResourceARN: Option<Str<'a>>,
    #[serde(borrow)]
    Tags: Option<BTreeMap<String, Str<'a>>>,
    #[serde(borrow)]
    TagKeys: Option<Vec<Str<'a>>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct TagOut<'a> {
    Key: &'a str,
    Value: &'a str,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct ListOutput<'a> {
    Tags: Vec<TagOut<'a>>,
    HasMoreTags: bool,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct ResourceListOutput<'a> {
    Tags: Vec<TagOut<'a>>,
}

pub async fn run_add(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: AddInput = json::parse(body)?;
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    v.required(&input.Tags, "tags");
    if let Some(tags) = &input.Tags {
        check_tags(&mut v, tags);
    }
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result::<crate::validate::ValidationError>()?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    add(kinesis, &name, input.Tags.unwrap_or_default()).await
}

pub async fn run_remove(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: RemoveInput = json::parse(body)?;
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    check_keys(&mut v, &input.TagKeys);
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result::<crate::validate::ValidationError>()?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    remove(kinesis, &name, &input.TagKeys.unwrap_or_default()).await
}

pub fn run_list(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: ListInput = json::parse(body)?;
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    let start = input.ExclusiveStartTagKey.as_ref().map(Str::as_str);
    v.length(start, "exclusiveStartTagKey", 1, TAG_KEY_CHARS_MAX);
    let limit = input.Limit.map(|n| i64::from(n.0));
    v.range(limit, "limit", Some(1), Some(LIST_LIMIT_MAX));
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result::<crate::validate::ValidationError>()?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    let stream = kinesis.lookup(&name, crate::time::now_ms())?;
    let after: Vec<(&String, &String)> = stream
        .record
        .settings
        .tags
        .iter()
        .filter(|(k, _)| start.is_none_or(|s| k.as_str() > s))
        .collect();
    let limit = limit.map_or(usize::MAX, |n| n as usize);
    super::respond(&ListOutput {
        Tags: after
            .iter()
            .take(limit)
            .map(|(k, v)| TagOut { Key: k, Value: v })
            .collect(),
        HasMoreTags: after.len() > limit,
    })
}

pub async fn run_tag_resource(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: ResourceInput = json::parse(body)?;
    let mut v = Violations::new();
    v.required(&input.Tags, "tags");
    if let Some(tags) = &input.Tags {
        check_tags(&mut v, tags);
    }
    let name = resource_target(kinesis, &mut v, &input)?;
    add(kinesis, &name, input.Tags.unwrap_or_default()).await
}

pub async fn run_untag_resource(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: ResourceInput = json::parse(body)?;
    let mut v = Violations::new();
    check_keys(&mut v, &input.TagKeys);
    let name = resource_target(kinesis, &mut v, &input)?;
    remove(kinesis, &name, input.TagKeys.as_deref().unwrap_or_default()).await
}

pub fn run_list_for_resource(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: ResourceInput = json::parse(body)?;
    let name = resource_target(kinesis, &mut Violations::new(), &input)?;
    let stream = kinesis.lookup(&name, crate::time::now_ms())?;
    super::respond(&ResourceListOutput {
        Tags: stream
            .record
            .settings
            .tags
            .iter()
            .map(|(k, v)| TagOut { Key: k, Value: v })
            .collect(),
    })
}

/// Checks `ResourceARN` (and the rest of `v`) and names the stream it
/// refers to. Only stream ARNs name a resource Riffle has; any other ARN
/// the model's pattern allows (a consumer's, a channel's) names one that
/// does not exist.
fn resource_target(
    kinesis: &Kinesis,
    v: &mut Violations,
    input: &ResourceInput<'_>,
) -> Result<String, KinesisError> {
    let arn = input.ResourceARN.as_ref().map(Str::as_str);
    v.required(&input.ResourceARN, "resourceARN");
    let pattern_ok = arn.is_none_or(|a| Pattern::StreamArn.matches(a) || is_other_resource(a));
    v.check(
        pattern_ok,
        Shown::Text(arn.unwrap_or_default()),
        "resourceARN",
        r"Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\d{12}:.*(stream|channel|queue)/\S+",
    );
    v.length(arn, "resourceARN", 1, 2048);
    super::check_stream_id(v, &input.StreamId);
    std::mem::take(v).into_result::<crate::validate::ValidationError>()?;
    let arn = arn.unwrap_or_default();
    if is_other_resource(arn) && !Pattern::StreamArn.matches(arn) {
        return Err(crate::errors::stream_not_found(arn, kinesis.account()));
    }
    kinesis.target_name(None, Some(arn))
}

/// A channel or queue ARN: in the model, not in Riffle.
fn is_other_resource(arn: &str) -> bool {
    arn.starts_with("arn:aws") && (arn.contains(":channel/") || arn.contains(":queue/"))
}

/// The model's `TagKeyList`: required, 1 to 50 keys of 1 to 128 characters.
fn check_keys(v: &mut Violations, keys: &Option<Vec<Str<'_>>>) {
    v.required(keys, "tagKeys");
    let Some(keys) = keys else { return };
    let units = |k: &Str<'_>| k.as_str().encode_utf16().count();
    let lengths_ok = keys
        .iter()
        .all(|k| (1..=TAG_KEY_CHARS_MAX).contains(&units(k)));
    let count_ok = (1..=TAG_KEYS_PER_CALL_MAX).contains(&keys.len());
    if lengths_ok && count_ok {
        return;
    }
    let shown: Vec<&str> = keys.iter().map(Str::as_str).collect();
    let shown = format!("[{}]", shown.join(", "));
    v.check(
        !keys.is_empty(),
        Shown::Text(&shown),
        "tagKeys",
        "Member must have length greater than or equal to 1",
    );
    v.check(
        keys.len() <= TAG_KEYS_PER_CALL_MAX,
        Shown::Text(&shown),
        "tagKeys",
        format_args!("Member must have length less than or equal to {TAG_KEYS_PER_CALL_MAX}"),
    );
    v.check(
        lengths_ok,
        Shown::Text(&shown),
        "tagKeys",
        format_args!(
            "Member must satisfy constraint: [Member must have length less than or equal to \
             {TAG_KEY_CHARS_MAX}, Member must have length greater than or equal to 1]"
        ),
    );
}

/// The characters AWS allows in tag keys and values: Unicode letters,
/// digits, white space and `_ . / = + - % @ :` — with `%` refused later
/// by a second check, as AWS does.
fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "_./=+-@%: ".contains(c)
        || ('\u{00C0}'..='\u{1FFF}').contains(&c)
        || ('\u{2C00}'..='\u{D7FF}').contains(&c)
}

/// AWS's character checks on tag texts, with its two messages. AWS takes
/// `:` although its first message does not list it.
fn check_chars<'t>(
    texts: impl Iterator<Item = &'t str> + Clone,
    verb: &str,
    name: &str,
    account: &str,
) -> Result<(), KinesisError> {
    if !texts.clone().all(|t| t.chars().all(allowed_char)) {
        return Err(KinesisError::InvalidArgument(
            "Some tags contain invalid characters. Valid characters: Unicode letters, digits, \
             white space, _ . / = + - % @."
                .to_owned(),
        ));
    }
    if texts.clone().any(|t| t.contains('%')) {
        return Err(KinesisError::InvalidArgument(format!(
            "Failed to {verb} stream {name} under account {account} because some tags contained \
             illegal characters. The allowed characters are Unicode letters, white-spaces, \
             '_',',','/','=','+','-','@',':'."
        )));
    }
    Ok(())
}

async fn add(
    kinesis: &Kinesis,
    name: &str,
    tags: BTreeMap<String, Str<'_>>,
) -> Result<Bytes, KinesisError> {
    let account = kinesis.account();
    let texts = tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]);
    settings::update(kinesis, name, Needs::Exists, |stream, _| {
        check_chars(texts, "add tags to", name, account)?;
        let mut record: StreamRecord = stream.record.clone();
        let merged = &mut record.settings.tags;
        for (k, v) in &tags {
            merged.insert(k.clone(), v.as_str().to_owned());
        }
        if merged.len() > TAGS_PER_STREAM_MAX {
            // AWS's text still names the old limit of 10 while enforcing 50
            // (as recorded by kinesalite's tests against AWS).
            return Err(KinesisError::InvalidArgument(format!(
                "Failed to add tags to stream {name} under account {account} because a given \
                 stream cannot have more than 10 tags associated with it."
            )));
        }
        Ok((record, ()))
    })
    .await?;
    Ok(Bytes::new())
}

async fn remove(kinesis: &Kinesis, name: &str, keys: &[Str<'_>]) -> Result<Bytes, KinesisError> {
    let account = kinesis.account();
    settings::update(kinesis, name, Needs::Exists, |stream, _| {
        check_chars(
            keys.iter().map(Str::as_str),
            "remove tags from",
            name,
            account,
        )?;
        let mut record = stream.record.clone();
        for key in keys {
            record.settings.tags.remove(key.as_str());
        }
        Ok((record, ()))
    })
    .await?;
    Ok(Bytes::new())
}
