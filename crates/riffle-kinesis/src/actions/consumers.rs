//! The enhanced fan-out consumers of a stream: RegisterStreamConsumer,
//! DescribeStreamConsumer, ListStreamConsumers and DeregisterStreamConsumer
//! (<https://docs.aws.amazon.com/kinesis/latest/APIReference/API_RegisterStreamConsumer.html>
//! and its siblings), and their catalog entries.
//!
//! # Format
//!
//! Key `kinesis/consumer/<StreamName>/<ConsumerName>`, value a UTF-8 JSON
//! object:
//!
//! ```text
//! {"v":1,                          format version; any other is refused
//!  "name":"reader",
//!  "stream_incarnation":1234,      the stream incarnation it belongs to
//!  "created_ms":1795000000000,     its ARN ends in these epoch seconds
//!  "status":"CREATING",            CREATING | ACTIVE | DELETING
//!  "status_until_ms":1795000000500,  when CREATING ends, DELETING completes
//!  "policy":"{\"Version\":…}"}     PutResourcePolicy's document; absent without one
//! ```
//!
//! The status is computed from the clock (as a stream's is), so nothing
//! has to run at `status_until_ms`. An entry whose stream incarnation is
//! not the stream's current one (the stream was deleted and recreated), or
//! whose deletion is due, is no consumer; it is overwritten by the next
//! registration of its name.

use base64_simd::URL_SAFE_NO_PAD as TOKEN;
use bytes::Bytes;
use riffle_log::MetaOp;
use serde::{Deserialize, Serialize};

use super::epoch_seconds;
use crate::catalog::Status;
use crate::json::{self, Int, Str, Timestamp};
use crate::stream::Stream;
use crate::time::now_ms;
use crate::validate::{Pattern, Shown, Violations};
use crate::{Kinesis, KinesisError, errors};

/// Consumers per stream (AWS quota: "a maximum of 20 consumers registered
/// per data stream").
pub const CONSUMERS_PER_STREAM_MAX: usize = 20;
/// Consumers one ListStreamConsumers call returns at most (API reference:
/// "If you specify a value greater than 100, at most 100 results are returned").
pub const LIST_CONSUMERS_MAX: usize = 100;
const CONSUMER_PREFIX: &str = "kinesis/consumer/";
const CONSUMER_VERSION: u32 = 1;
const TOKEN_PREFIX: &str = "lc1:";
/// The model's `ConsumerARN` pattern.
const CONSUMER_ARN_PATTERN: &str =
    r"^(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+";

/// One consumer's catalog entry (see the module's format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerRecord {
    pub v: u32,
    pub name: String,
    pub stream_incarnation: u64,
    pub created_ms: i64,
    pub status: Status,
    pub status_until_ms: i64,
    /// The resource policy attached to the consumer (PutResourcePolicy),
    /// as the text it was given. Entries written before it existed have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

impl ConsumerRecord {
    fn encode(&self) -> Vec<u8> {
        // Plain strings and numbers always serialize.
        serde_json::to_vec(self).expect("a consumer record always serializes")
    }

    fn decode(key: &str, bytes: &[u8]) -> Result<ConsumerRecord, KinesisError> {
        let corrupt = |reason: String| {
            errors::catalog(crate::catalog::CatalogError::Corrupt {
                key: key.to_owned(),
                reason,
            })
        };
        let record: ConsumerRecord =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        if record.v != CONSUMER_VERSION {
            return Err(errors::catalog(
                crate::catalog::CatalogError::UnsupportedVersion {
                    key: key.to_owned(),
                    found: record.v,
                },
            ));
        }
        Ok(record)
    }

    /// The status as of `now`; `None` once a deletion has completed.
    pub fn status(&self, now: i64) -> Option<Status> {
        let due = now >= self.status_until_ms;
        match self.status {
            Status::Creating if due => Some(Status::Active),
            Status::Deleting if due => None,
            status => Some(status),
        }
    }

    pub fn arn(&self, stream: &Stream) -> String {
        consumer_arn(&stream.arn, &self.name, self.created_ms)
    }
}

fn consumer_key(stream: &str, consumer: &str) -> String {
    format!("{CONSUMER_PREFIX}{stream}/{consumer}")
}

/// `<stream ARN>/consumer/<name>:<creation epoch seconds>`, as AWS forms it.
pub fn consumer_arn(stream_arn: &str, name: &str, created_ms: i64) -> String {
    format!("{stream_arn}/consumer/{name}:{}", created_ms / 1000)
}

/// The stream's live consumers (this incarnation, deletion not complete),
/// in name order.
pub fn list(
    kinesis: &Kinesis,
    stream: &Stream,
    now: i64,
) -> Result<Vec<ConsumerRecord>, KinesisError> {
    let prefix = consumer_key(stream.name(), "");
    let mut out = Vec::new();
    for (key, value) in kinesis.store().meta().scan_prefix(&prefix)? {
        let record = ConsumerRecord::decode(&key, &value)?;
        if record.stream_incarnation == stream.record.incarnation && record.status(now).is_some() {
            out.push(record);
        }
    }
    Ok(out)
}

/// Deregisters every consumer of a stream being deleted (DeleteStream with
/// EnforceConsumerDeletion), ending their subscriptions. Caller holds the
/// catalog lock.
pub async fn remove_all(kinesis: &Kinesis, stream: &Stream, now: i64) -> Result<(), KinesisError> {
    let consumers = list(kinesis, stream, now)?;
    if consumers.is_empty() {
        return Ok(());
    }
    let ops = consumers
        .iter()
        .map(|c| MetaOp::Delete {
            key: consumer_key(stream.name(), &c.name),
        })
        .collect();
    kinesis.commit(ops).await?;
    for consumer in &consumers {
        kinesis.subscriptions.end_consumer(&consumer.arn(stream));
    }
    Ok(())
}

/// How many consumers the stream has (DescribeStreamSummary's ConsumerCount).
pub fn count(kinesis: &Kinesis, stream: &Stream, now: i64) -> Result<usize, KinesisError> {
    Ok(list(kinesis, stream, now)?.len())
}

fn get(
    kinesis: &Kinesis,
    stream: &Stream,
    name: &str,
    now: i64,
) -> Result<Option<ConsumerRecord>, KinesisError> {
    let key = consumer_key(stream.name(), name);
    let Some(value) = kinesis.store().meta().get(&key)? else {
        return Ok(None);
    };
    let record = ConsumerRecord::decode(&key, &value)?;
    let live =
        record.stream_incarnation == stream.record.incarnation && record.status(now).is_some();
    Ok(live.then_some(record))
}

fn consumer_not_found(what: &str, account: &str) -> KinesisError {
    KinesisError::ResourceNotFound(format!(
        "Consumer {what} under account {account} not found."
    ))
}

/// A consumer named by `ConsumerARN`: its stream and entry.
pub fn resolve_arn(
    kinesis: &Kinesis,
    arn: &str,
    now: i64,
) -> Result<(std::sync::Arc<Stream>, ConsumerRecord), KinesisError> {
    let not_found = || consumer_not_found(arn, kinesis.account());
    let (stream_arn, rest) = arn.rsplit_once("/consumer/").ok_or_else(not_found)?;
    let (name, created_secs) = rest.rsplit_once(':').ok_or_else(not_found)?;
    let stream_name = kinesis
        .target_name(None, Some(stream_arn))
        .map_err(|_| not_found())?;
    let stream = kinesis.lookup(&stream_name, now).map_err(|_| not_found())?;
    let record = get(kinesis, &stream, name, now)?
        .filter(|r| (r.created_ms / 1000).to_string() == created_secs)
        .ok_or_else(not_found)?;
    Ok((stream, record))
}

/// Attaches `policy` to the consumer `arn` (or removes its policy, with
/// `None`), durably.
pub(crate) async fn set_policy(
    kinesis: &Kinesis,
    arn: &str,
    policy: Option<String>,
) -> Result<(), KinesisError> {
    let _catalog = kinesis.catalog_guard().await;
    let (stream, mut record) = resolve_arn(kinesis, arn, now_ms())?;
    record.policy = policy;
    kinesis
        .commit(vec![MetaOp::Put {
            key: consumer_key(stream.name(), &record.name),
            value: record.encode(),
        }])
        .await
}

/// Whether any consumer entry may hold a resource policy (read at
/// start-up). An entry that cannot be read does not stop the start (the
/// calls that use it report it); it may hold one.
pub(crate) fn any_policy(store: &riffle_log::LogStore) -> Result<bool, KinesisError> {
    for (key, value) in store.meta().scan_prefix(CONSUMER_PREFIX)? {
        if ConsumerRecord::decode(&key, &value).map_or(true, |r| r.policy.is_some()) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn consumer_arn_matches(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("arn:aws") else {
        return false;
    };
    let Some((head, tail)) = rest.rsplit_once("/consumer/") else {
        return false;
    };
    let Some((name, secs)) = tail.rsplit_once(':') else {
        return false;
    };
    let stream = head.rsplit_once("stream/").map_or("", |(_, s)| s);
    head.contains(":kinesis:")
        && Pattern::Name.matches(stream)
        && Pattern::Name.matches(name)
        && !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
}

pub(super) fn check_consumer_arn(v: &mut Violations, arn: &Option<Str<'_>>) {
    let arn = arn.as_ref().map(Str::as_str);
    if let Some(text) = arn {
        let constraint =
            format_args!("Member must satisfy regular expression pattern: {CONSUMER_ARN_PATTERN}");
        v.check(
            consumer_arn_matches(text),
            Shown::Text(text),
            "consumerARN",
            constraint,
        );
    }
    v.length(arn, "consumerARN", 1, 2048);
}

fn check_consumer_name(v: &mut Violations, name: &Option<Str<'_>>) {
    let name = name.as_ref().map(Str::as_str);
    v.pattern(name, "consumerName", Pattern::Name);
    v.length(name, "consumerName", 1, 128);
}

fn check_stream_arn(v: &mut Violations, arn: &Option<Str<'_>>) {
    let arn = arn.as_ref().map(Str::as_str);
    v.pattern(arn, "streamARN", Pattern::StreamArn);
    v.length(arn, "streamARN", 1, 2048);
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Consumer<'a> {
    ConsumerName: &'a str,
    ConsumerARN: String,
    ConsumerStatus: &'static str,
    ConsumerCreationTimestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    StreamARN: Option<&'a str>,
}

fn describe<'a>(
    stream: &'a Stream,
    record: &'a ConsumerRecord,
    now: i64,
    with_stream: bool,
) -> Consumer<'a> {
    Consumer {
        ConsumerName: &record.name,
        ConsumerARN: record.arn(stream),
        ConsumerStatus: record.status(now).unwrap_or(Status::Deleting).as_str(),
        ConsumerCreationTimestamp: epoch_seconds(record.created_ms),
        StreamARN: with_stream.then_some(stream.arn.as_str()),
    }
}

#[derive(Deserialize)]
#[allow(non_snake_case, dead_code)]
struct RegisterInput<'a> {
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    ConsumerName: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
    /// Checked as the model says; consumer tags are not kept.
    #[serde(borrow)]
    Tags: Option<std::collections::BTreeMap<String, Str<'a>>>,
}

pub async fn run_register(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: RegisterInput = json::parse(body)?;
    let mut v = Violations::new();
    v.required(&input.StreamARN, "streamARN");
    check_stream_arn(&mut v, &input.StreamARN);
    v.required(&input.ConsumerName, "consumerName");
    check_consumer_name(&mut v, &input.ConsumerName);
    super::check_stream_id(&mut v, &input.StreamId);
    if let Some(tags) = &input.Tags {
        super::create_stream::check_tags(&mut v, tags);
    }
    v.into_result::<crate::validate::ValidationError>()?;
    let name = super::target(kinesis, &None, &input.StreamARN)?;
    // Validated: present.
    let consumer = input.ConsumerName.as_ref().map_or("", Str::as_str);

    let _catalog = kinesis.catalog_guard().await;
    let now = now_ms();
    let stream = kinesis.lookup(&name, now)?;
    if !stream.is_usable(now) {
        let status = stream.status(now).unwrap_or(Status::Deleting);
        return Err(errors::stream_not_active(
            &name,
            kinesis.account(),
            status.as_str(),
        ));
    }
    let existing = list(kinesis, &stream, now)?;
    if existing.iter().any(|c| c.name == consumer) {
        return Err(KinesisError::ResourceInUse(format!(
            "Consumer {} under account {} already exists.",
            consumer_arn(&stream.arn, consumer, now),
            kinesis.account()
        )));
    }
    if existing.len() >= CONSUMERS_PER_STREAM_MAX {
        return Err(KinesisError::LimitExceeded(format!(
            "Stream {} under account {} has reached its limit of {CONSUMERS_PER_STREAM_MAX} consumers.",
            stream.arn,
            kinesis.account()
        )));
    }
    let delay_ms = i64::try_from(kinesis.config().status_delay.as_millis()).unwrap_or(i64::MAX);
    let record = ConsumerRecord {
        v: CONSUMER_VERSION,
        name: consumer.to_owned(),
        stream_incarnation: stream.record.incarnation,
        created_ms: now,
        status: Status::Creating,
        status_until_ms: now.saturating_add(delay_ms),
        policy: None,
    };
    kinesis
        .commit(vec![MetaOp::Put {
            key: consumer_key(&name, consumer),
            value: record.encode(),
        }])
        .await?;
    #[derive(Serialize)]
    #[allow(non_snake_case)]
    struct Output<'a> {
        Consumer: Consumer<'a>,
    }
    // AWS answers CREATING even with no delay: the consumer is new.
    let mut shown = describe(&stream, &record, now, false);
    shown.ConsumerStatus = Status::Creating.as_str();
    super::respond(&Output { Consumer: shown })
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct TargetInput<'a> {
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    ConsumerName: Option<Str<'a>>,
    #[serde(borrow)]
    ConsumerARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

/// The consumer a Describe/Deregister request names: by `ConsumerARN`, or
/// by `StreamARN` and `ConsumerName`.
fn target_consumer(
    kinesis: &Kinesis,
    body: &[u8],
    now: i64,
) -> Result<(std::sync::Arc<Stream>, ConsumerRecord), KinesisError> {
    let input: TargetInput = json::parse(body)?;
    let mut v = Violations::new();
    check_stream_arn(&mut v, &input.StreamARN);
    check_consumer_name(&mut v, &input.ConsumerName);
    check_consumer_arn(&mut v, &input.ConsumerARN);
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result::<crate::validate::ValidationError>()?;
    if let Some(arn) = &input.ConsumerARN {
        return resolve_arn(kinesis, arn.as_str(), now);
    }
    let (Some(stream_arn), Some(consumer)) = (&input.StreamARN, &input.ConsumerName) else {
        return Err(KinesisError::InvalidArgument(
            "Either ConsumerARN or both ConsumerName and StreamARN must be provided.".to_owned(),
        ));
    };
    let name = super::target(kinesis, &None, &input.StreamARN)?;
    let stream = kinesis.lookup(&name, now)?;
    let not_found = || {
        consumer_not_found(
            &format!("{} of stream {}", consumer.as_str(), stream_arn.as_str()),
            kinesis.account(),
        )
    };
    let record = get(kinesis, &stream, consumer.as_str(), now)?.ok_or_else(not_found)?;
    Ok((stream, record))
}

pub fn run_describe(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let now = now_ms();
    let (stream, record) = target_consumer(kinesis, body, now)?;
    #[derive(Serialize)]
    #[allow(non_snake_case)]
    struct Output<'a> {
        ConsumerDescription: Consumer<'a>,
    }
    super::respond(&Output {
        ConsumerDescription: describe(&stream, &record, now, true),
    })
}

pub async fn run_deregister(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let _catalog = kinesis.catalog_guard().await;
    let now = now_ms();
    let (stream, record) = target_consumer(kinesis, body, now)?;
    let key = consumer_key(stream.name(), &record.name);
    let delay_ms = i64::try_from(kinesis.config().status_delay.as_millis()).unwrap_or(i64::MAX);
    let op = if delay_ms == 0 {
        MetaOp::Delete { key }
    } else {
        let deleting = ConsumerRecord {
            status: Status::Deleting,
            status_until_ms: now.saturating_add(delay_ms),
            ..record.clone()
        };
        MetaOp::Put {
            key,
            value: deleting.encode(),
        }
    };
    kinesis.commit(vec![op]).await?;
    // Its subscriptions end now: a DELETING consumer reads nothing.
    kinesis.subscriptions.end_consumer(&record.arn(&stream));
    Ok(Bytes::new())
}

#[derive(Deserialize)]
#[allow(non_snake_case, dead_code)]
struct ListInput<'a> {
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    NextToken: Option<Str<'a>>,
    MaxResults: Option<Int>,
    /// Accepted; a stream name has one incarnation at a time here.
    StreamCreationTimestamp: Option<Timestamp>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

pub fn run_list(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: ListInput = json::parse(body)?;
    let mut v = Violations::new();
    v.required(&input.StreamARN, "streamARN");
    check_stream_arn(&mut v, &input.StreamARN);
    let token = input.NextToken.as_ref().map(Str::as_str);
    v.length(token, "nextToken", 1, 1_048_576);
    v.range(
        input.MaxResults.map(|n| i64::from(n.0)),
        "maxResults",
        Some(1),
        Some(10000),
    );
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result::<crate::validate::ValidationError>()?;
    let name = super::target(kinesis, &None, &input.StreamARN)?;
    let now = now_ms();
    let stream = kinesis.lookup(&name, now)?;
    let after = token.map(decode_token).transpose()?;
    let limit = input
        .MaxResults
        .map_or(LIST_CONSUMERS_MAX, |n| n.0 as usize)
        .min(LIST_CONSUMERS_MAX);
    let all = list(kinesis, &stream, now)?;
    let start = after.map_or(0, |a| {
        all.partition_point(|c| c.name.as_str() <= a.as_str())
    });
    let page = &all[start..all.len().min(start + limit)];
    let more = start + page.len() < all.len();
    #[derive(Serialize)]
    #[allow(non_snake_case)]
    struct Output<'a> {
        Consumers: Vec<Consumer<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        NextToken: Option<String>,
    }
    super::respond(&Output {
        Consumers: page
            .iter()
            .map(|c| describe(&stream, c, now, false))
            .collect(),
        NextToken: page
            .last()
            .filter(|_| more)
            .map(|c| TOKEN.encode_to_string(format!("{TOKEN_PREFIX}{}", c.name))),
    })
}

/// The consumer name a `NextToken` continues after.
fn decode_token(token: &str) -> Result<String, KinesisError> {
    TOKEN
        .decode_to_vec(token)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|text| text.strip_prefix(TOKEN_PREFIX).map(str::to_owned))
        .ok_or_else(|| KinesisError::InvalidArgument("Invalid NextToken.".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ConsumerRecord {
        ConsumerRecord {
            v: CONSUMER_VERSION,
            name: "reader".into(),
            stream_incarnation: 1234,
            created_ms: 1_795_000_000_000,
            status: Status::Creating,
            status_until_ms: 1_795_000_000_500,
            policy: None,
        }
    }

    #[test]
    fn consumer_records_round_trip_in_the_documented_json() {
        let record = sample();
        let bytes = record.encode();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            r#"{"v":1,"name":"reader","stream_incarnation":1234,"created_ms":1795000000000,"status":"CREATING","status_until_ms":1795000000500}"#
        );
        assert_eq!(ConsumerRecord::decode("k", &bytes).unwrap(), record);
    }

    #[test]
    fn unknown_versions_and_corrupt_consumer_records_are_refused() {
        let text = String::from_utf8(sample().encode()).unwrap();
        for bad in [text.replacen(r#""v":1"#, r#""v":2"#, 1), "{}".to_owned()] {
            assert!(matches!(
                ConsumerRecord::decode("k", bad.as_bytes()),
                Err(KinesisError::Storage(_))
            ));
        }
    }

    #[test]
    fn consumer_status_follows_the_clock() {
        let record = sample();
        assert_eq!(
            record.status(record.status_until_ms - 1),
            Some(Status::Creating)
        );
        assert_eq!(record.status(record.status_until_ms), Some(Status::Active));
        let deleting = ConsumerRecord {
            status: Status::Deleting,
            ..record
        };
        assert_eq!(deleting.status(deleting.status_until_ms), None);
    }

    #[test]
    fn consumer_arns_match_the_model_pattern() {
        let arn = consumer_arn(
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders",
            "reader",
            1_795_000_000_999,
        );
        assert_eq!(
            arn,
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/reader:1795000000"
        );
        assert!(consumer_arn_matches(&arn));
        for bad in [
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders",
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/reader",
            "arn:aws:kinesis:us-east-1:000000000000:stream/orders/consumer/r d:1",
        ] {
            assert!(!consumer_arn_matches(bad), "{bad}");
        }
    }

    #[test]
    fn list_tokens_round_trip() {
        let token = TOKEN.encode_to_string(format!("{TOKEN_PREFIX}reader"));
        assert_eq!(decode_token(&token).unwrap(), "reader");
        assert!(decode_token("nope").is_err());
    }
}
