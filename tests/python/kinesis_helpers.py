"""What a Kinesis user computes on their side: the hash-key ranges AWS gives a
new stream, the shard a partition key lands in, and reading a shard to the end.
Written from AWS's documentation, independently of Riffle's code, so the tests
compare Riffle against AWS rather than against itself."""

from __future__ import annotations

import hashlib
import time

import pytest
from botocore.exceptions import ClientError

ACCOUNT_ID = "000000000000"
REGION = "us-east-1"
HASH_KEY_MAX = 2**128 - 1
# AWS's default shard count for an ON_DEMAND stream.
ON_DEMAND_SHARDS = 4
# Bounds the polling loops below: a server that never catches up fails the
# test instead of hanging it.
READ_DEADLINE_S = 20.0
# Back-off after ProvisionedThroughputExceededException, doubling up to the max.
THROTTLE_PAUSE_MIN_S = 0.1
THROTTLE_PAUSE_MAX_S = 1.0


def stream_arn(name: str) -> str:
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{name}"


def shard_id(index: int) -> str:
    return f"shardId-{index:012d}"


def expected_hash_ranges(shards: int) -> list[tuple[int, int]]:
    """AWS splits 0..2^128-1 into equal parts of floor(2^128 / n); the last
    shard also takes the remainder."""
    step = 2**128 // shards
    return [(i * step, HASH_KEY_MAX if i == shards - 1 else (i + 1) * step - 1) for i in range(shards)]


def hash_key(partition_key: str) -> int:
    """Kinesis routes by MD5(partition key, UTF-8) read as a big-endian 128-bit integer."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def shard_for_hash(shards: list[dict], key: int) -> str:
    for shard in shards:
        rng = shard["HashKeyRange"]
        if int(rng["StartingHashKey"]) <= key <= int(rng["EndingHashKey"]):
            return shard["ShardId"]
    raise AssertionError(f"no shard covers hash key {key}")


def create_active_stream(client, name: str, shards: int = 1) -> dict:
    """Creates a provisioned stream, waits for ACTIVE with boto3's own waiter
    (polling quickly: the test server has no status delay), and returns the
    DescribeStream description."""
    client.create_stream(StreamName=name, ShardCount=shards)
    wait_active(client, name)
    return client.describe_stream(StreamName=name)["StreamDescription"]


def register_active(client, stream: str, name: str) -> str:
    """Registers a consumer and waits (bounded) until it is ACTIVE."""
    consumer = client.register_stream_consumer(StreamARN=stream_arn(stream), ConsumerName=name)["Consumer"]
    assert consumer["ConsumerStatus"] == "CREATING"
    arn = consumer["ConsumerARN"]
    deadline = time.monotonic() + READ_DEADLINE_S
    while client.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "consumer never became ACTIVE"
        time.sleep(0.01)
    return arn


def wait_active(client, name: str) -> None:
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})


def iterator(client, stream: str, shard: str, kind: str = "TRIM_HORIZON", **extra) -> str:
    return client.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType=kind, **extra)["ShardIterator"]


def is_throttled(err: ClientError) -> bool:
    return err.response["Error"]["Code"] == "ProvisionedThroughputExceededException"


def get_records(client, **kwargs) -> dict:
    """GetRecords as a well-behaved consumer calls it: a shard serves five
    reads a second (AWS's limit, which Riffle enforces too), so a throttled
    call backs off and tries again instead of failing."""
    deadline = time.monotonic() + READ_DEADLINE_S
    pause = THROTTLE_PAUSE_MIN_S
    while True:
        try:
            return client.get_records(**kwargs)
        except ClientError as err:
            if not is_throttled(err) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, THROTTLE_PAUSE_MAX_S)


def put_records_retrying(client, stream: str, entries: list[dict]) -> list[dict]:
    """PutRecords as a well-behaved producer uses it: entries refused for
    throughput are sent again after a pause. Returns each entry's result,
    in request order."""
    results: list[dict | None] = [None] * len(entries)
    pending = list(range(len(entries)))
    deadline = time.monotonic() + READ_DEADLINE_S
    pause = THROTTLE_PAUSE_MIN_S
    while True:
        out = client.put_records(StreamName=stream, Records=[entries[i] for i in pending])
        assert len(out["Records"]) == len(pending)
        retry = []
        for i, result in zip(pending, out["Records"]):
            if "ErrorCode" in result:
                assert result["ErrorCode"] == "ProvisionedThroughputExceededException", result
                retry.append(i)
            else:
                results[i] = result
        assert out.get("FailedRecordCount", 0) == len(retry)
        if not retry:
            return results
        assert time.monotonic() < deadline, f"{len(retry)} records still throttled after {READ_DEADLINE_S}s"
        pending = retry
        time.sleep(pause)
        pause = min(pause * 2, THROTTLE_PAUSE_MAX_S)


def read_to_end(client, shard_iterator: str, limit: int | None = None) -> tuple[list[dict], str]:
    """Follows NextShardIterator until a call returns no records and reports
    being caught up; returns the records and the iterator to continue from."""
    records: list[dict] = []
    deadline = time.monotonic() + READ_DEADLINE_S
    while True:
        kwargs = {"ShardIterator": shard_iterator}
        if limit is not None:
            kwargs["Limit"] = limit
        out = get_records(client, **kwargs)
        records.extend(out["Records"])
        shard_iterator = out["NextShardIterator"]
        if not out["Records"] and out["MillisBehindLatest"] == 0:
            return records, shard_iterator
        if time.monotonic() > deadline:
            pytest.fail(f"shard not read to its end within {READ_DEADLINE_S}s ({len(records)} records so far)")


def read_shard(client, stream: str, shard: str) -> list[dict]:
    return read_to_end(client, iterator(client, stream, shard))[0]


def error_of(call, *args, **kwargs) -> ClientError:
    """Runs a call that must fail with an AWS error and returns that error."""
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value


def code_and_message(err: ClientError) -> tuple[str, str]:
    return err.response["Error"]["Code"], err.response["Error"]["Message"]
