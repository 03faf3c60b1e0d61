//! TagDeliveryStream: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_TagDeliveryStream.html>,
//! UntagDeliveryStream: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_UntagDeliveryStream.html>
//! and ListTagsForDeliveryStream: <https://docs.aws.amazon.com/firehose/latest/APIReference/API_ListTagsForDeliveryStream.html>
//!
//! Tags live in the stream's catalog entry, in key order.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::json::{self, Int, Text};
use crate::validate::{Pattern, Shown, Violations};
use crate::{Firehose, FirehoseError};

/// Tags per stream and per call (model `TagDeliveryStreamInputTagList`,
/// `TagKeyList`; "You can assign up to 50 tags to a Firehose stream").
pub const TAGS_MAX: usize = 50;
/// The model's `TagKey` and `TagValue` lengths.
const TAG_KEY_CHARS_MAX: usize = 128;
const TAG_VALUE_CHARS_MAX: usize = 256;

/// `Tag`.
#[derive(Deserialize)]
#[allow(non_snake_case)]
pub struct TagInput {
    Key: Option<Text>,
    Value: Option<Text>,
}

/// A `TagDeliveryStreamInputTagList` member's constraints.
pub fn check_tags(v: &mut Violations, tags: &[TagInput], path: &str) {
    let shown = format!("[{} tags]", tags.len());
    check_count(v, tags.len(), &shown, path);
    for (i, tag) in tags.iter().enumerate().take(TAGS_MAX) {
        let key_path = format!("{path}.{}.member.key", i + 1);
        v.required(&tag.Key, &key_path);
        let key = tag.Key.as_ref().map(Text::as_str);
        v.length(key, &key_path, 1, TAG_KEY_CHARS_MAX);
        v.pattern(key, &key_path, Pattern::TagKey);
        let value_path = format!("{path}.{}.member.value", i + 1);
        let value = tag.Value.as_ref().map(Text::as_str);
        v.length(value, &value_path, 0, TAG_VALUE_CHARS_MAX);
        v.pattern(value, &value_path, Pattern::TagValue);
    }
}

fn check_count(v: &mut Violations, count: usize, shown: &str, path: &str) {
    v.check(
        count >= 1,
        Shown::Text(shown),
        path,
        "Member must have length greater than or equal to 1",
    );
    v.check(
        count <= TAGS_MAX,
        Shown::Text(shown),
        path,
        format_args!("Member must have length less than or equal to {TAGS_MAX}"),
    );
}

/// Checked tags as the catalog keeps them (a later duplicate key wins).
pub fn into_map(tags: Vec<TagInput>) -> BTreeMap<String, String> {
    tags.into_iter()
        .filter_map(|t| Some((t.Key?.0, t.Value.map(|v| v.0).unwrap_or_default())))
        .collect()
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct TagInputs {
    DeliveryStreamName: Option<Text>,
    Tags: Option<Vec<TagInput>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct UntagInput {
    DeliveryStreamName: Option<Text>,
    TagKeys: Option<Vec<Text>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct ListInput {
    DeliveryStreamName: Option<Text>,
    ExclusiveStartTagKey: Option<Text>,
    Limit: Option<Int>,
}

pub async fn run_tag(firehose: &Firehose, body: &[u8]) -> Result<Bytes, FirehoseError> {
    let input: TagInputs = json::parse(body)?;
    let mut v = Violations::new();
    let name = input.DeliveryStreamName.as_ref().map(Text::as_str);
    super::check_name(&mut v, name, "deliveryStreamName", true);
    v.required(&input.Tags, "tags");
    if let Some(tags) = &input.Tags {
        check_tags(&mut v, tags, "tags");
    }
    v.into_result::<crate::validate::ValidationError>()?;
    let name = name.unwrap_or_default();
    let added = into_map(input.Tags.unwrap_or_default());
    let _guard = firehose.lock_catalog().await;
    let stream = firehose.lookup(name)?;
    let mut record = stream.record();
    record.tags.extend(added);
    if record.tags.len() > TAGS_MAX {
        return Err(FirehoseError::LimitExceeded(format!(
            "Firehose {name} under account {} cannot have more than {TAGS_MAX} tags.",
            firehose.account()
        )));
    }
    firehose.save(&stream, record).await?;
    Ok(super::json_body(&json!({})))
}

pub async fn run_untag(firehose: &Firehose, body: &[u8]) -> Result<Bytes, FirehoseError> {
    let input: UntagInput = json::parse(body)?;
    let mut v = Violations::new();
    let name = input.DeliveryStreamName.as_ref().map(Text::as_str);
    super::check_name(&mut v, name, "deliveryStreamName", true);
    v.required(&input.TagKeys, "tagKeys");
    if let Some(keys) = &input.TagKeys {
        let shown: Vec<&str> = keys.iter().map(Text::as_str).collect();
        let shown = format!("[{}]", shown.join(", "));
        check_count(&mut v, keys.len(), &shown, "tagKeys");
        for (i, key) in keys.iter().enumerate().take(TAGS_MAX) {
            let path = format!("tagKeys.{}.member", i + 1);
            v.length(Some(key.as_str()), &path, 1, TAG_KEY_CHARS_MAX);
            v.pattern(Some(key.as_str()), &path, Pattern::TagKey);
        }
    }
    v.into_result::<crate::validate::ValidationError>()?;
    let _guard = firehose.lock_catalog().await;
    let stream = firehose.lookup(name.unwrap_or_default())?;
    let mut record = stream.record();
    for key in input.TagKeys.iter().flatten() {
        record.tags.remove(key.as_str());
    }
    firehose.save(&stream, record).await?;
    Ok(super::json_body(&json!({})))
}

pub fn run_list(firehose: &Firehose, body: &[u8]) -> Result<Bytes, FirehoseError> {
    let input: ListInput = json::parse(body)?;
    let mut v = Violations::new();
    let name = input.DeliveryStreamName.as_ref().map(Text::as_str);
    super::check_name(&mut v, name, "deliveryStreamName", true);
    let start = input.ExclusiveStartTagKey.as_ref().map(Text::as_str);
    v.length(start, "exclusiveStartTagKey", 1, TAG_KEY_CHARS_MAX);
    v.pattern(start, "exclusiveStartTagKey", Pattern::TagKey);
    let limit = input.Limit.map(|n| i64::from(n.0));
    v.range(limit, "limit", Some(1), Some(TAGS_MAX as i64));
    v.into_result::<crate::validate::ValidationError>()?;
    let stream = firehose.lookup(name.unwrap_or_default())?;
    let record = stream.record();
    let limit = limit.map_or(TAGS_MAX, |n| usize::try_from(n).unwrap_or(TAGS_MAX));
    let mut tags = record
        .tags
        .iter()
        .filter(|(k, _)| start.is_none_or(|s| k.as_str() > s));
    let page: Vec<_> = tags
        .by_ref()
        .take(limit)
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    let more = tags.next().is_some();
    Ok(super::json_body(
        &json!({ "Tags": page, "HasMoreTags": more }),
    ))
}
