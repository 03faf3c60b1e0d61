//! UpdateStreamMode: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_UpdateStreamMode.html>
//!
//! Switches a stream between PROVISIONED and ON_DEMAND. The stream is
//! UPDATING for the configured status delay, then ACTIVE; its shards stay
//! as they are (AWS keeps the shard count across a switch). Both modes
//! enforce the same per-shard limits (see `throttle`); an on-demand
//! stream starts with 4 shards, i.e. AWS's initial on-demand write
//! capacity of 4 MiB/s and 4,000 records/s.

use bytes::Bytes;
use serde::Deserialize;

use super::create_stream::{ModeDetails, ON_DEMAND_STREAMS_MAX};
use super::settings::{self, Needs};
use crate::catalog::{Status, StreamMode, StreamRecord};
use crate::json::{self, Int, Str};
use crate::time::now_ms;
use crate::validate::{Pattern, Violations};
use crate::{Kinesis, KinesisError};

/// Mode switches per stream per day ("Choose the data stream capacity
/// mode": a stream can switch between on-demand and provisioned capacity
/// mode twice within 24 hours).
pub const MODE_SWITCHES_PER_DAY_MAX: usize = 2;
const DAY_MS: i64 = 24 * 3_600_000;

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
    #[serde(borrow)]
    StreamModeDetails: Option<ModeDetails<'a>>,
    WarmThroughputMiBps: Option<Int>,
}

fn validate(input: &Input<'_>) -> Result<(), KinesisError> {
    let mut v = Violations::new();
    let arn = input.StreamARN.as_ref().map(Str::as_str);
    v.required(&input.StreamARN, "streamARN");
    v.pattern(arn, "streamARN", Pattern::StreamArn);
    v.length(arn, "streamARN", 1, 2048);
    super::check_stream_id(&mut v, &input.StreamId);
    v.required(&input.StreamModeDetails, "streamModeDetails");
    if let Some(details) = &input.StreamModeDetails {
        v.required(&details.StreamMode, "streamModeDetails.streamMode");
        v.one_of(
            details.StreamMode.as_ref().map(Str::as_str),
            "streamModeDetails.streamMode",
            &["PROVISIONED", "ON_DEMAND"],
        );
    }
    v.range(
        input.WarmThroughputMiBps.map(|n| i64::from(n.0)),
        "warmThroughputMiBps",
        Some(0),
        None,
    );
    v.into_result()
}

pub async fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    validate(&input)?;
    let name = super::target(kinesis, &None, &input.StreamARN)?;
    // Validated: present and one of the two.
    let mode = match input
        .StreamModeDetails
        .as_ref()
        .and_then(|d| d.StreamMode.as_ref())
        .map(Str::as_str)
    {
        Some("ON_DEMAND") => StreamMode::OnDemand,
        _ => StreamMode::Provisioned,
    };
    let on_demand_now = on_demand_streams(kinesis);
    let account = kinesis.account().to_owned();
    let region = kinesis.config().region.clone();
    let delay_ms = settings::status_delay_ms(kinesis);
    settings::update(kinesis, &name, Needs::Active, |stream, now| {
        if stream.record.mode == mode {
            return Err(KinesisError::InvalidArgument(format!(
                "Stream {name} under account {account} is already in {} mode.",
                mode.as_str()
            )));
        }
        if mode == StreamMode::OnDemand && on_demand_now >= ON_DEMAND_STREAMS_MAX {
            return Err(KinesisError::LimitExceeded(format!(
                "This request would exceed the on-demand stream count limit for the account \
                 {account} in {region}. Current on-demand stream count: {on_demand_now}. Limit: \
                 {ON_DEMAND_STREAMS_MAX}."
            )));
        }
        let mut switches = stream.record.settings.mode_switches_ms.clone();
        switches.retain(|&at| now - at < DAY_MS);
        if switches.len() >= MODE_SWITCHES_PER_DAY_MAX {
            return Err(KinesisError::LimitExceeded(format!(
                "Stream {name} under account {account} has already switched its capacity mode \
                 {MODE_SWITCHES_PER_DAY_MAX} times in the last 24 hours."
            )));
        }
        switches.push(now);
        let mut record = StreamRecord {
            mode,
            status: if delay_ms == 0 {
                Status::Active
            } else {
                Status::Updating
            },
            status_until_ms: now.saturating_add(delay_ms),
            ..stream.record.clone()
        };
        record.settings.mode_switches_ms = switches;
        if let Some(mibps) = input.WarmThroughputMiBps {
            record.settings.warm_throughput_mibps = Some(mibps.0 as u32);
        }
        Ok((record, ()))
    })
    .await?;
    Ok(Bytes::new())
}

fn on_demand_streams(kinesis: &Kinesis) -> usize {
    let now = now_ms();
    kinesis
        .all()
        .iter()
        .filter(|s| s.status(now).is_some() && s.record.mode == StreamMode::OnDemand)
        .count()
}
