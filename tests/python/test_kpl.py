"""KPL aggregation, both ways, with AWS's own `aws_kinesis_agg` library:
records it aggregates and boto3 puts come out of Riffle's readers (`riffle
tail`, Firehose to the embedded S3) as their user records; records `riffle
put --aggregate` writes are de-aggregated by its deaggregator into the
right partition keys and data, on the shards those keys map to."""
from __future__ import annotations

import base64
import os
import subprocess
import time

import boto3
from aws_kinesis_agg.aggregator import RecordAggregator
from aws_kinesis_agg.deaggregator import iter_deaggregate_records
from botocore.config import Config

from conftest import _riffle_bin
from kinesis_helpers import REGION, create_active_stream, get_records, hash_key

# Bounds on waiting (commands, delivery), never sleeps to hope.
COMMAND_DEADLINE_S = 60.0
DELIVERY_DEADLINE_S = 30.0
POLL_INTERVAL_S = 0.1
ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose-delivery"


def riffle(server, *args: str, stdin: bytes | None = None) -> str:
    env = dict(os.environ, RIFFLE_ENDPOINT=server.endpoint)
    done = subprocess.run(
        [_riffle_bin(), *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=env,
        timeout=COMMAND_DEADLINE_S,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def aggregated(users: list[tuple[str, bytes]]) -> tuple[str, str | None, bytes]:
    """One aggregated record of `users` (partition key, data), by aws_kinesis_agg."""
    aggregator = RecordAggregator()
    for key, data in users:
        assert aggregator.add_user_record(key, data) is None, "all fit in one record"
    return aggregator.clear_and_get().get_contents()


def users_of(n: int) -> list[tuple[str, bytes]]:
    return [(f"user-{i % 3}", f"event {i}".encode()) for i in range(n)]


def test_records_aggregated_by_aws_kinesis_agg_are_tailed_as_user_records(server, kinesis):
    create_active_stream(kinesis, "agg-in", shards=1)
    users = users_of(5)
    key, ehk, data = aggregated(users)
    put = kinesis.put_record(StreamName="agg-in", PartitionKey=key, Data=data, **({"ExplicitHashKey": ehk} if ehk else {}))
    kinesis.put_record(StreamName="agg-in", PartitionKey="plain", Data=b"not aggregated")
    out = riffle(server, "tail", "agg-in", "--from", "trim-horizon", "--count", str(len(users) + 1))
    lines = [line.split(" ", 3) for line in out.splitlines()]
    assert len(lines) == len(users) + 1, out
    for i, ((shard, sequence, user_key, user_data), (want_key, want_data)) in enumerate(zip(lines, users)):
        assert shard == put["ShardId"]
        assert sequence == f"{put['SequenceNumber']}/{i}"
        assert user_key == want_key
        assert user_data == want_data.decode()
    shard, sequence, plain_key, plain_data = lines[-1]
    assert "/" not in sequence and plain_key == "plain" and plain_data == "not aggregated"


def test_firehose_delivers_the_user_records_of_aws_kinesis_agg_records(server):
    kinesis = boto3.client("kinesis", endpoint_url=server.endpoint, region_name=REGION)
    config = Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})
    firehose = boto3.client("firehose", endpoint_url=server.endpoint, region_name=REGION, config=config)
    s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name=REGION, config=config)
    create_active_stream(kinesis, "agg-src", shards=1)
    s3.create_bucket(Bucket="agg-lake")
    firehose.create_delivery_stream(
        DeliveryStreamName="agg-to-lake",
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={
            "KinesisStreamARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/agg-src",
            "RoleARN": ROLE,
        },
        ExtendedS3DestinationConfiguration={
            "RoleARN": ROLE,
            "BucketARN": "arn:aws:s3:::agg-lake",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
    )
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while firehose.describe_delivery_stream(DeliveryStreamName="agg-to-lake")["DeliveryStreamDescription"][
        "DeliveryStreamStatus"
    ] != "ACTIVE":
        assert time.monotonic() < deadline, "delivery stream not ACTIVE"
        time.sleep(POLL_INTERVAL_S)
    users = [(f"k{i}", f"<{i}>".encode()) for i in range(40)]
    key, _, data = aggregated(users)
    kinesis.put_record(StreamName="agg-src", PartitionKey=key, Data=data)

    want = b"".join(d for _, d in users)
    received = b""
    while received != want:
        assert time.monotonic() < deadline, f"delivered {received!r}"
        objects = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="agg-lake").get("Contents", []))
        received = b"".join(s3.get_object(Bucket="agg-lake", Key=k)["Body"].read() for k in objects)
        time.sleep(POLL_INTERVAL_S)
    assert b"\xf3\x89\x9a\xc2" not in received, "no aggregated record is delivered as it is"


def test_riffle_put_aggregate_is_deaggregated_by_aws_kinesis_agg(server, kinesis):
    create_active_stream(kinesis, "agg-out", shards=4)
    lines = [f"line {i}" for i in range(300)]
    out = riffle(server, "put", "agg-out", "--aggregate", stdin="\n".join(lines).encode() + b"\n")
    written = out.splitlines()
    assert len(written) == len(lines), out
    users: dict[tuple[str, int], tuple[str, str, bytes]] = {}
    for shard in kinesis.list_shards(StreamName="agg-out")["Shards"]:
        low = int(shard["HashKeyRange"]["StartingHashKey"])
        high = int(shard["HashKeyRange"]["EndingHashKey"])
        iterator = kinesis.get_shard_iterator(
            StreamName="agg-out", ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = get_records(kinesis, ShardIterator=iterator)["Records"]
        for user in iter_deaggregate_records(records, data_format="Boto3"):
            k = user["kinesis"]
            assert low <= hash_key(k["partitionKey"]) <= high, "a user record on its key's shard"
            sub = k["subSequenceNumber"] if k.get("aggregated") else None
            # The deaggregator hands user records' data base64-encoded (as
            # Lambda does), a plain record's as boto3 read it.
            data = base64.b64decode(k["data"]) if k.get("aggregated") else k["data"]
            users[(k["sequenceNumber"], sub)] = (shard["ShardId"], k["partitionKey"], data)
    assert len(users) == len(lines)
    assert any(seq_sub[1] is not None and seq_sub[1] > 0 for seq_sub in users), "records were aggregated"
    # Each output line names its input line's user record: SHARD SEQUENCE[/SUB].
    for line, answer in zip(lines, written):
        shard, name = answer.split(" ")
        sequence, _, sub = name.partition("/")
        shard_read, _key, data = users[(sequence, int(sub) if sub else None)]
        assert shard_read == shard
        assert data == line.encode()


def test_riffle_put_aggregate_keeps_the_given_partition_key(server, kinesis):
    create_active_stream(kinesis, "agg-key", shards=2)
    out = riffle(server, "put", "agg-key", "--aggregate", "-k", "tenant-7", "a", "b", "c")
    [shard] = {line.split(" ")[0] for line in out.splitlines()}
    iterator = kinesis.get_shard_iterator(StreamName="agg-key", ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    records = get_records(kinesis, ShardIterator=iterator)["Records"]
    assert len(records) == 1, "three records, one aggregated record"
    users = list(iter_deaggregate_records(records, data_format="Boto3"))
    assert [u["kinesis"]["partitionKey"] for u in users] == ["tenant-7"] * 3
    assert [u["kinesis"]["subSequenceNumber"] for u in users] == [0, 1, 2]
