"""Resharding as a boto3 user drives it: UpdateShardCount, SplitShard and
MergeShards close parent shards, open children with AWS's lineage fields,
and a reader that follows a parent to its end is pointed at its children."""

from kinesis_helpers import (
    create_active_stream,
    expected_hash_ranges,
    get_records,
    hash_key,
    iterator,
    shard_for_hash,
    shard_id,
    wait_active,
)


def _is_open(shard: dict) -> bool:
    return "EndingSequenceNumber" not in shard["SequenceNumberRange"]


def _range(shard: dict) -> tuple[int, int]:
    return int(shard["HashKeyRange"]["StartingHashKey"]), int(shard["HashKeyRange"]["EndingHashKey"])


def _read_closed_shard(client, stream: str, shard: str) -> tuple[list[dict], list[dict]]:
    """Reads a closed shard to its end: AWS then gives no NextShardIterator
    and lists the ChildShards to continue with."""
    records: list[dict] = []
    it = iterator(client, stream, shard)
    for _ in range(100):
        out = get_records(client, ShardIterator=it)
        records += out["Records"]
        if "NextShardIterator" not in out:
            return records, out["ChildShards"]
        it = out["NextShardIterator"]
    raise AssertionError(f"{shard} never reached its end")


def test_update_shard_count_closes_parents_and_readers_follow_child_shards(kinesis):
    shards = create_active_stream(kinesis, "scaled", shards=2)["Shards"]
    before: dict[str, list[bytes]] = {}
    for i in range(20):
        key = f"user-{i}"
        out = kinesis.put_record(StreamName="scaled", PartitionKey=key, Data=key.encode())
        assert out["ShardId"] == shard_for_hash(shards, hash_key(key))
        before.setdefault(out["ShardId"], []).append(key.encode())

    answer = kinesis.update_shard_count(StreamName="scaled", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
    assert (answer["StreamName"], answer["CurrentShardCount"], answer["TargetShardCount"]) == ("scaled", 2, 4)
    wait_active(kinesis, "scaled")

    assert kinesis.describe_stream_summary(StreamName="scaled")["StreamDescriptionSummary"]["OpenShardCount"] == 4
    listed = kinesis.list_shards(StreamName="scaled")["Shards"]
    open_shards = [s for s in listed if _is_open(s)]
    assert sorted(_range(s) for s in open_shards) == expected_hash_ranges(4)
    assert {s["ShardId"] for s in listed if not _is_open(s)} == {shard_id(0), shard_id(1)}
    latest = kinesis.list_shards(StreamName="scaled", ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert {s["ShardId"] for s in latest} == {s["ShardId"] for s in open_shards}

    for parent in (shard_id(0), shard_id(1)):
        records, children = _read_closed_shard(kinesis, "scaled", parent)
        assert [r["Data"] for r in records] == before[parent]
        expected_children = {s["ShardId"] for s in listed if s.get("ParentShardId") == parent or s.get("AdjacentParentShardId") == parent}
        assert {c["ShardId"] for c in children} == expected_children
        for child in children:
            assert parent in child["ParentShards"]

    for i in range(20):
        key = f"after-{i}"
        out = kinesis.put_record(StreamName="scaled", PartitionKey=key, Data=b"x")
        assert out["ShardId"] == shard_for_hash(open_shards, hash_key(key))


def test_split_then_merge_keeps_the_lineage_aws_reports(kinesis):
    create_active_stream(kinesis, "split", shards=2)
    start, end = expected_hash_ranges(2)[0]
    middle = (start + end) // 2

    kinesis.split_shard(StreamName="split", ShardToSplit=shard_id(0), NewStartingHashKey=str(middle))
    wait_active(kinesis, "split")
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName="split")["Shards"]}
    assert not _is_open(shards[shard_id(0)])
    low, high = shards[shard_id(2)], shards[shard_id(3)]
    assert (low["ParentShardId"], _range(low)) == (shard_id(0), (start, middle - 1))
    assert (high["ParentShardId"], _range(high)) == (shard_id(0), (middle, end))

    kinesis.merge_shards(StreamName="split", ShardToMerge=shard_id(2), AdjacentShardToMerge=shard_id(3))
    wait_active(kinesis, "split")
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName="split")["Shards"]}
    merged = shards[shard_id(4)]
    assert merged["ParentShardId"] == shard_id(2)
    assert merged["AdjacentParentShardId"] == shard_id(3)
    assert _range(merged) == (start, end)
    assert [s for s in shards.values() if _is_open(s)] == [shards[shard_id(1)], merged]

    out = kinesis.put_record(StreamName="split", PartitionKey="k", ExplicitHashKey=str(start), Data=b"low")
    assert out["ShardId"] == shard_id(4)
