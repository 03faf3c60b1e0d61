//! PutResourcePolicy, GetResourcePolicy and DeleteResourcePolicy:
//! <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_PutResourcePolicy.html>
//! and its siblings.
//!
//! A stream's policy is kept in its catalog entry (`settings.
//! resource_policy`), a consumer's in the consumer's entry (`policy`): each
//! goes with its resource, so deleting a stream or deregistering a
//! consumer takes its policy along, and a stream created again under the
//! same name starts without one. The document is stored as given and
//! answered back unchanged. This crate only keeps the documents; the edge
//! (`riffle-server`'s `policy`) evaluates them with the caller's identity
//! policy, and checks a document's grammar when it is put, through
//! [`crate::KinesisConfig::resource_policy_check`].

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::consumers;
use super::settings::{self, Needs};
use crate::json::{self, Str};
use crate::time::now_ms;
use crate::validate::{Shown, Violations};
use crate::{Kinesis, KinesisError};

/// What GetResourcePolicy answers for a resource without a policy: an
/// empty JSON object, not an error.
pub const NO_POLICY: &str = "{}";

/// The model's `ResourceARN` pattern, as AWS quotes it.
const RESOURCE_ARN_PATTERN: &str = r"arn:aws.*:kinesis:.*:\d{12}:.*(stream|channel|queue)/\S+";

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    ResourceARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
    #[serde(borrow)]
    Policy: Option<Str<'a>>,
}

/// The resource an ARN names.
#[derive(Debug, PartialEq, Eq)]
enum Resource {
    Stream(String),
    Consumer(String),
}

pub async fn run_put(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    check_arn(&mut v, &input);
    v.required(&input.Policy, "policy");
    v.into_result::<crate::validate::ValidationError>()?;
    let resource = resource(kinesis, &input)?;
    // Validated: present.
    let policy = input.Policy.as_ref().map_or("", Str::as_str);
    (kinesis.config().resource_policy_check)(policy).map_err(|reason| {
        KinesisError::InvalidArgument(format!("Invalid resource policy: {reason}"))
    })?;
    kinesis.note_resource_policy();
    match resource {
        Resource::Stream(name) => set_stream_policy(kinesis, &name, Some(policy)).await?,
        Resource::Consumer(arn) => {
            consumers::set_policy(kinesis, &arn, Some(policy.into())).await?
        }
    }
    Ok(Bytes::new())
}

pub fn run_get(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    check_arn(&mut v, &input);
    v.into_result::<crate::validate::ValidationError>()?;
    let policy = match resource(kinesis, &input)? {
        Resource::Stream(name) => {
            let stream = kinesis.lookup(&name, now_ms())?;
            stream.record.settings.resource_policy.clone()
        }
        Resource::Consumer(arn) => consumers::resolve_arn(kinesis, &arn, now_ms())?.1.policy,
    };
    #[derive(Serialize)]
    #[allow(non_snake_case)]
    struct Output<'a> {
        Policy: &'a str,
    }
    super::respond(&Output {
        Policy: policy.as_deref().unwrap_or(NO_POLICY),
    })
}

pub async fn run_delete(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    check_arn(&mut v, &input);
    v.into_result::<crate::validate::ValidationError>()?;
    match resource(kinesis, &input)? {
        Resource::Stream(name) => set_stream_policy(kinesis, &name, None).await?,
        Resource::Consumer(arn) => consumers::set_policy(kinesis, &arn, None).await?,
    }
    Ok(Bytes::new())
}

/// The model's constraints on `ResourceARN` and `StreamId`.
fn check_arn(v: &mut Violations, input: &Input<'_>) {
    let arn = input.ResourceARN.as_ref().map(Str::as_str);
    v.required(&input.ResourceARN, "resourceARN");
    // AWS reports a broken pattern before a broken length (see `validate`).
    if let Some(text) = arn {
        v.check(
            arn_matches(text),
            Shown::Text(text),
            "resourceARN",
            format_args!("Member must satisfy regular expression pattern: {RESOURCE_ARN_PATTERN}"),
        );
    }
    v.length(arn, "resourceARN", 1, 2048);
    super::check_stream_id(v, &input.StreamId);
}

/// `arn:aws.*:kinesis:.*:\d{12}:.*(stream|channel|queue)/\S+`, matched
/// whole, as AWS (Java) matches patterns.
fn arn_matches(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("arn:aws") else {
        return false;
    };
    let Some((_, after)) = rest.split_once(":kinesis:") else {
        return false;
    };
    // `.*:\d{12}:`: a run of exactly 12 digits between colons.
    let account_end = after.match_indices(':').find_map(|(at, _)| {
        let before = &after[..at];
        let digits = before.rsplit(':').next().unwrap_or_default();
        let bounded = before.len() > digits.len();
        (bounded && digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then_some(at + 1)
    });
    let Some(account_end) = account_end else {
        return false;
    };
    let tail = &after[account_end..];
    ["stream/", "channel/", "queue/"].iter().any(|kind| {
        tail.match_indices(kind).any(|(at, _)| {
            let id = &tail[at + kind.len()..];
            !id.is_empty() && !id.contains(char::is_whitespace)
        })
    })
}

/// The stream or consumer a (valid) `ResourceARN` names. Channels and
/// queues are in the model but not in Riffle: they do not exist.
fn resource(kinesis: &Kinesis, input: &Input<'_>) -> Result<Resource, KinesisError> {
    let arn = input.ResourceARN.as_ref().map_or("", Str::as_str);
    if arn.contains("/consumer/") {
        return Ok(Resource::Consumer(arn.to_owned()));
    }
    let is_stream = arn
        .split(':')
        .nth(5)
        .is_some_and(|resource| resource.starts_with("stream/"));
    if !is_stream {
        return Err(KinesisError::ResourceNotFound(format!(
            "Resource {arn} under account {} not found.",
            kinesis.account()
        )));
    }
    Ok(Resource::Stream(kinesis.target_name(None, Some(arn))?))
}

/// Replaces (or, with `None`, removes) stream `name`'s policy, durably.
async fn set_stream_policy(
    kinesis: &Kinesis,
    name: &str,
    policy: Option<&str>,
) -> Result<(), KinesisError> {
    settings::update(kinesis, name, Needs::Exists, |stream, _| {
        let mut record = stream.record.clone();
        record.settings.resource_policy = policy.map(str::to_owned);
        Ok((record, ()))
    })
    .await
}

/// The policy attached to the stream or consumer `arn`, if any (for the
/// edge's evaluation). `None` too for an ARN that names nothing.
pub(crate) fn attached(kinesis: &Kinesis, arn: &str) -> Option<String> {
    let now = now_ms();
    if arn.contains("/consumer/") {
        return consumers::resolve_arn(kinesis, arn, now).ok()?.1.policy;
    }
    let name = kinesis.target_name(None, Some(arn)).ok()?;
    let stream = kinesis.lookup(&name, now).ok()?;
    stream.record.settings.resource_policy.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_arns_match_the_model_pattern() {
        for good in [
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders",
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/app:1796400000",
            "arn:aws-cn:kinesis:cn-north-1:123456789012:queue/q",
            "arn:aws:kinesis:us-east-1:123456789012:channel/c",
        ] {
            assert!(arn_matches(good), "{good}");
        }
        for bad in [
            "",
            "stream/orders",
            "arn:aws:sqs:us-east-1:000000000000:stream/orders",
            "arn:aws:kinesis:us-east-1:0000:stream/orders",
            "arn:aws:kinesis:us-east-1:000000000000:table/orders",
            "arn:aws:kinesis:us-east-1:000000000000:stream/",
            "arn:aws:kinesis:us-east-1:000000000000:stream/a b",
        ] {
            assert!(!arn_matches(bad), "{bad}");
        }
    }
}
