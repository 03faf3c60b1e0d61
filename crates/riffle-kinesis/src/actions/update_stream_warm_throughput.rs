//! UpdateStreamWarmThroughput: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_UpdateStreamWarmThroughput.html>
//!
//! Accepted, stored and reported (DescribeStreamSummary `WarmThroughput`).
//! Riffle has no capacity to warm up, so the current value is the target
//! at once.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::settings::{self, Needs};
use crate::json::{self, Int, Str};
use crate::validate::Violations;
use crate::{Kinesis, KinesisError};

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
    WarmThroughputMiBps: Option<Int>,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub(crate) struct WarmThroughput {
    pub TargetMiBps: u32,
    pub CurrentMiBps: u32,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
struct Output<'a> {
    StreamARN: &'a str,
    StreamName: &'a str,
    WarmThroughput: WarmThroughput,
}

pub async fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    super::check_stream_id(&mut v, &input.StreamId);
    v.required(&input.WarmThroughputMiBps, "warmThroughputMiBps");
    v.range(
        input.WarmThroughputMiBps.map(|n| i64::from(n.0)),
        "warmThroughputMiBps",
        Some(0),
        None,
    );
    v.into_result::<crate::validate::ValidationError>()?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    // Validated: present and not negative.
    let mibps = input.WarmThroughputMiBps.map_or(0, |n| n.0 as u32);
    let arn = settings::update(kinesis, &name, Needs::Active, |stream, _| {
        let mut record = stream.record.clone();
        record.settings.warm_throughput_mibps = Some(mibps);
        Ok((record, stream.arn.clone()))
    })
    .await?;
    super::respond(&Output {
        StreamARN: &arn,
        StreamName: &name,
        WarmThroughput: WarmThroughput {
            TargetMiBps: mibps,
            CurrentMiBps: mibps,
        },
    })
}
