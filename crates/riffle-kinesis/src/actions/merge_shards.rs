//! MergeShards: <https://docs.aws.amazon.com/kinesis/latest/APIReference/API_MergeShards.html>
//!
//! Two open shards whose hash-key ranges are adjacent, `ShardToMerge` the
//! lower and `AdjacentShardToMerge` the upper (the other order is refused,
//! as AWS refuses it), become one child; its `ParentShardId` is
//! `ShardToMerge` and its `AdjacentParentShardId` `AdjacentShardToMerge`.

use bytes::Bytes;
use serde::Deserialize;

use super::split_shard::{
    check_shard_id, open_shard, require_active, require_provisioned, shard_index,
};
use crate::json::{self, Str};
use crate::reshard;
use crate::time::now_ms;
use crate::validate::Violations;
use crate::{Kinesis, KinesisError};

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct Input<'a> {
    #[serde(borrow)]
    StreamName: Option<Str<'a>>,
    #[serde(borrow)]
    ShardToMerge: Option<Str<'a>>,
    #[serde(borrow)]
    AdjacentShardToMerge: Option<Str<'a>>,
    #[serde(borrow)]
    StreamARN: Option<Str<'a>>,
    #[serde(borrow)]
    StreamId: Option<Str<'a>>,
}

pub async fn run(kinesis: &Kinesis, body: &[u8]) -> Result<Bytes, KinesisError> {
    let input: Input = json::parse(body)?;
    let mut v = Violations::new();
    super::check_target(&mut v, &input.StreamName, &input.StreamARN);
    check_shard_id(&mut v, &input.ShardToMerge, "shardToMerge");
    check_shard_id(&mut v, &input.AdjacentShardToMerge, "adjacentShardToMerge");
    super::check_stream_id(&mut v, &input.StreamId);
    v.into_result::<crate::validate::ValidationError>()?;
    let name = super::target(kinesis, &input.StreamName, &input.StreamARN)?;
    // Validated: present.
    let first = input.ShardToMerge.as_ref().map_or("", Str::as_str);
    let second = input.AdjacentShardToMerge.as_ref().map_or("", Str::as_str);

    // AWS reads both shard ids before it looks for the stream.
    let (first, second) = (
        shard_index(kinesis, first, &name)?,
        shard_index(kinesis, second, &name)?,
    );

    let _catalog = kinesis.catalog_guard().await;
    let now = now_ms();
    let stream = kinesis.lookup(&name, now)?;
    require_provisioned(&stream, "MergeShards")?;
    let a = open_shard(kinesis, &stream, first, now, "merging")?;
    let b = open_shard(kinesis, &stream, second, now, "merging")?;
    // The pair is ordered: AdjacentShardToMerge must be the upper
    // neighbour, or AWS refuses it (the child's parent is ShardToMerge).
    let adjacent = a.range.end.checked_add(1) == Some(b.range.start);
    if !adjacent {
        return Err(KinesisError::InvalidArgument(format!(
            "Shards {} and {} in stream {name} under account {} are not an adjacent pair of shards \
             eligible for merging",
            a.id,
            b.id,
            kinesis.account()
        )));
    }
    require_active(kinesis, &stream, now)?;
    let plan = reshard::merge(&stream.record, a.index, b.index, now);
    kinesis.reshard(&stream, plan, now).await?;
    Ok(Bytes::new())
}
