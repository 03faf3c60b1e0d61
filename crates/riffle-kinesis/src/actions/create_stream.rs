//! CreateStream: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_CreateStream.html>

use std::collections::BTreeMap;

use bytes::Bytes;
use riffle_log::MetaOp;
use serde::Deserialize;

use crate::catalog::{CATALOG_VERSION, ShardRecord, Status, StreamMode, StreamRecord};
use crate::json::{self, Int, Str};
use crate::service::stream_arn;
use crate::stream::Stream;
use crate::time::now_ms;
use crate::validate::{Pattern, Shown, Violations};
use crate::{Kinesis, KinesisError, errors, hashkey};

/// Shards of a new ON_DEMAND stream (API_CreateStream: "the default shard
/// count for on-demand streams is 4").
pub const ON_DEMAND_SHARDS: u32 = 4;
/// Streams keep records 24 hours unless the retention is increased
/// (API_CreateStream / retention docs).
pub const RETENTION_HOURS_DEFAULT: u32 = 24;
/// The default maximum record size, 1 MiB (MaxRecordSizeInKiB default).
pub const MAX_RECORD_KIB_DEFAULT: u32 = 1024;
/// On-demand streams per account ("Quotas and limits": 50 by default).
pub const ON_DEMAND_STREAMS_MAX: usize = 50;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    ShardCount: Option<Int>,
    #[serde(borrow)]
    StreamModeDetails: Option<ModeDetails<'a>>,
    #[serde(borrow)]
    Tags: Option<BTreeMap<String, Str<'a>>>,
    WarmThroughputMiBps: Option<Int>,
    MaxRecordSizeInKiB: Option<Int>,
    #[serde(borrow)]
    RecordDistributionStrategy: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
pub(crate) struct ModeDetails<'a> {
    #[serde(borrow)]
    pub StreamMode: Option<Str<'a>>,
}

fn validate(input: &Input<'_>) -> Result<(), KinesisError> {
    let mut v = Violations::new();
    let name = input.StreamName.as_ref().map(Str::as_str);
    v.required(&input.StreamName, "streamName");
    v.pattern(name, "streamName", Pattern::Name);
    v.length(name, "streamName", 1, 128);
    v.range(
        input.ShardCount.map(|n| i64::from(n.0)),
        "shardCount",
        Some(1),
        None,
    );
    if let Some(details) = &input.StreamModeDetails {
        v.required(&details.StreamMode, "streamModeDetails.streamMode");
        let mode = details.StreamMode.as_ref().map(Str::as_str);
        v.one_of(
            mode,
            "streamModeDetails.streamMode",
            &["PROVISIONED", "ON_DEMAND"],
        );
    }
    if let Some(tags) = &input.Tags {
        check_tags(&mut v, tags);
    }
    v.range(
        input.WarmThroughputMiBps.map(|n| i64::from(n.0)),
        "warmThroughputMiBps",
        Some(0),
        None,
    );
    let kib = input.MaxRecordSizeInKiB.map(|n| i64::from(n.0));
    v.range(kib, "maxRecordSizeInKiB", Some(1024), Some(10240));
    let strategy = input.RecordDistributionStrategy.as_ref().map(Str::as_str);
    v.one_of(
        strategy,
        "recordDistributionStrategy",
        &["AUTO", "USER_PARTITION_KEY"],
    );
    v.into_result()
}

/// The model's `TagMap`: 1 to 200 entries, keys of 1 to 128 characters,
/// values of at most 256 (tags themselves are kept by a later issue).
pub(super) fn check_tags(v: &mut Violations, tags: &BTreeMap<String, Str<'_>>) {
    let units = |text: &str| text.encode_utf16().count();
    let keys_ok = tags.keys().all(|k| (1..=128).contains(&units(k)));
    let values_ok = tags.values().all(|val| units(val.as_str()) <= 256);
    let count_ok = (1..=200).contains(&tags.len());
    if keys_ok && values_ok && count_ok {
        return;
    }
    let entries: Vec<String> = tags
        .iter()
        .map(|(k, val)| format!("{k}={}", val.as_str()))
        .collect();
    let shown = format!("{{{}}}", entries.join(", "));
    let count = tags.len();
    let shown = || Shown::Text(&shown);
    v.check(
        count >= 1,
        shown(),
        "tags",
        "Member must have length greater than or equal to 1",
    );
    v.check(
        count <= 200,
        shown(),
        "tags",
        "Member must have length less than or equal to 200",
    );
    v.check(
        keys_ok,
        shown(),
        "tags",
        "Map keys must satisfy constraint: [Member must have length less than or equal to 128, \
         Member must have length greater than or equal to 1]",
    );
    v.check(
        values_ok,
        shown(),
        "tags",
        "Map value must satisfy constraint: [Member must have length less than or equal to 256, \
         Member must have length greater than or equal to 0]",
    );
}

pub async fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    validate(&input)?;
    // Validated: present.
    let name = input
        .StreamName
        .as_ref()
        .map(Str::as_str)
        .unwrap_or_default()
        .to_owned();
    let mode_given = input
        .StreamModeDetails
        .as_ref()
        .and_then(|d| d.StreamMode.as_ref())
        .map(Str::as_str);
    let mode = match (mode_given, input.ShardCount) {
        (Some("ON_DEMAND"), _) | (None, None) => StreamMode::OnDemand,
        _ => StreamMode::Provisioned,
    };
    let shard_count = match mode {
        StreamMode::OnDemand => ON_DEMAND_SHARDS,
        // Validated: at least 1.
        StreamMode::Provisioned => match input.ShardCount {
            Some(n) => n.0 as u32,
            None => {
                return Err(KinesisError::InvalidArgument(
                    "ShardCount must be specified for a stream in PROVISIONED mode.".to_owned(),
                ));
            }
        },
    };
    let max_record_kib = input
        .MaxRecordSizeInKiB
        .map_or(MAX_RECORD_KIB_DEFAULT, |n| n.0 as u32);

    let _catalog = kinesis.catalog_guard().await;
    let now = now_ms();
    if let Some(existing) = kinesis.get(&name) {
        if existing.status(now).is_some() {
            return Err(errors::stream_exists(&name, kinesis.account()));
        }
        // A deletion is due but the background task has not completed it.
        kinesis.purge(&existing).await?;
    }
    check_limits(kinesis, mode, shard_count, now)?;
    let mut record = new_record(kinesis, name, mode, shard_count, max_record_kib, now);
    record.settings.tags = input
        .Tags
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().to_owned()))
        .collect();
    record.settings.warm_throughput_mibps = input.WarmThroughputMiBps.map(|n| n.0 as u32);
    let arn = stream_arn(kinesis.config(), &record.name);
    let store = kinesis.store().clone();
    let opened = record.clone();
    let stream = tokio::task::spawn_blocking(move || Stream::open(&store, opened, arn))
        .await
        .map_err(errors::task)??;
    kinesis
        .commit(vec![MetaOp::Put {
            key: record.key(),
            value: record.encode(),
        }])
        .await?;
    kinesis.insert(stream);
    Ok(Bytes::new())
}

fn new_record(
    kinesis: &Kinesis,
    name: String,
    mode: StreamMode,
    shard_count: u32,
    max_record_kib: u32,
    now: i64,
) -> StreamRecord {
    let delay_ms = i64::try_from(kinesis.config().status_delay.as_millis()).unwrap_or(i64::MAX);
    let shards = hashkey::split_evenly(shard_count)
        .into_iter()
        .enumerate()
        .map(|(index, range)| ShardRecord {
            index: index as u32,
            start_hash: range.start.to_string(),
            end_hash: range.end.to_string(),
            parent: None,
            adjacent_parent: None,
            created_ms: now,
            closed: false,
        })
        .collect();
    StreamRecord {
        v: CATALOG_VERSION,
        name,
        incarnation: rand::random(),
        created_ms: now,
        mode,
        retention_hours: RETENTION_HOURS_DEFAULT,
        max_record_kib,
        status: if delay_ms == 0 {
            Status::Active
        } else {
            Status::Creating
        },
        status_until_ms: now.saturating_add(delay_ms),
        shards,
        pending: None,
        settings: Default::default(),
    }
}

fn check_limits(
    kinesis: &Kinesis,
    mode: StreamMode,
    shard_count: u32,
    now: i64,
) -> Result<(), KinesisError> {
    let live: Vec<_> = kinesis
        .all()
        .into_iter()
        .filter(|s| s.status(now).is_some())
        .collect();
    let open: usize = live.iter().map(|s| s.open_shard_count()).sum();
    let limit = super::shard_limit(&kinesis.config().region);
    if open + shard_count as usize > limit as usize {
        return Err(KinesisError::LimitExceeded(format!(
            "This request would exceed the shard limit for the account {} in {}. Current shard count for \
             the account: {open}. Limit: {limit}. Number of additional shards that would have resulted \
             from this request: {shard_count}. Refer to the AWS Service Limits page \
             (https://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits \
             and how to request higher limits.",
            kinesis.account(),
            kinesis.config().region
        )));
    }
    let on_demand = live
        .iter()
        .filter(|s| s.record.mode == StreamMode::OnDemand)
        .count();
    if mode == StreamMode::OnDemand && on_demand >= ON_DEMAND_STREAMS_MAX {
        return Err(KinesisError::LimitExceeded(format!(
            "This request would exceed the on-demand stream count limit for the account {} in {}. \
             Current on-demand stream count: {on_demand}. Limit: {ON_DEMAND_STREAMS_MAX}.",
            kinesis.account(),
            kinesis.config().region
        )));
    }
    Ok(())
}
