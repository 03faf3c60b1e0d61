"""Enhanced fan-out with boto3: consumers registered, listed, described and
deregistered as AWS does, and SubscribeToShard pushing records over an
HTTP/1.1 event stream as soon as they are written (the put-to-receive
latency is printed; run with -s to see it)."""

import statistics
import time

from botocore.exceptions import ClientError, EventStreamError

from kinesis_helpers import (
    code_and_message,
    create_active_stream,
    error_of,
    register_active,
    shard_id,
    stream_arn,
    wait_active,
)

# A bound on waiting for a condition, never a sleep-to-hope.
DEADLINE_S = 10.0


def next_event(events) -> dict:
    event = next(iter(events))
    assert set(event) == {"SubscribeToShardEvent"}, event
    return event["SubscribeToShardEvent"]


def test_consumers_are_registered_listed_described_and_deregistered(kinesis):
    create_active_stream(kinesis, "fanout")
    arn = register_active(kinesis, "fanout", "reader")
    created = kinesis.describe_stream_consumer(StreamARN=stream_arn("fanout"), ConsumerName="reader")
    description = created["ConsumerDescription"]
    assert description["ConsumerARN"] == arn
    assert description["StreamARN"] == stream_arn("fanout")
    epoch = int(description["ConsumerCreationTimestamp"].timestamp())
    assert arn == f"{stream_arn('fanout')}/consumer/reader:{epoch}"

    err = error_of(kinesis.register_stream_consumer, StreamARN=stream_arn("fanout"), ConsumerName="reader")
    assert code_and_message(err)[0] == "ResourceInUseException"

    for i in range(1, 20):
        kinesis.register_stream_consumer(StreamARN=stream_arn("fanout"), ConsumerName=f"reader-{i:02}")
    err = error_of(kinesis.register_stream_consumer, StreamARN=stream_arn("fanout"), ConsumerName="one-too-many")
    assert code_and_message(err)[0] == "LimitExceededException"

    summary = kinesis.describe_stream_summary(StreamName="fanout")["StreamDescriptionSummary"]
    assert summary["ConsumerCount"] == 20
    pages = kinesis.get_paginator("list_stream_consumers").paginate(
        StreamARN=stream_arn("fanout"), PaginationConfig={"PageSize": 7}
    )
    names = [c["ConsumerName"] for page in pages for c in page["Consumers"]]
    assert names == sorted(names) and len(names) == 20 and "reader" in names

    err = error_of(kinesis.delete_stream, StreamName="fanout")
    assert code_and_message(err)[0] == "ResourceInUseException"

    kinesis.deregister_stream_consumer(ConsumerARN=arn)
    err = error_of(kinesis.describe_stream_consumer, ConsumerARN=arn)
    assert code_and_message(err)[0] == "ResourceNotFoundException"
    kinesis.deregister_stream_consumer(StreamARN=stream_arn("fanout"), ConsumerName="reader-01")
    assert len(kinesis.list_stream_consumers(StreamARN=stream_arn("fanout"))["Consumers"]) == 18
    kinesis.delete_stream(StreamName="fanout", EnforceConsumerDeletion=True)


def test_subscribe_to_shard_pushes_records_written_after_subscribing(kinesis):
    create_active_stream(kinesis, "pushed")
    arn = register_active(kinesis, "pushed", "pusher")
    events = kinesis.subscribe_to_shard(ConsumerARN=arn, ShardId=shard_id(0), StartingPosition={"Type": "LATEST"})[
        "EventStream"
    ]
    first = next_event(events)
    assert first["Records"] == [] and first["MillisBehindLatest"] == 0

    latencies_ms = []
    for i in range(50):
        data = f"record {i}".encode()
        started = time.perf_counter()
        put = kinesis.put_record(StreamName="pushed", PartitionKey="k", Data=data)
        put_returned = time.perf_counter()
        received = []
        while not received:
            assert time.perf_counter() - started < DEADLINE_S, "record never pushed"
            received = next_event(events)["Records"]
        latencies_ms.append((time.perf_counter() - put_returned) * 1000)
        assert [(r["Data"], r["SequenceNumber"]) for r in received] == [(data, put["SequenceNumber"])]
    latencies_ms.sort()
    print(
        f"\nboto3 SubscribeToShard put-return-to-receive latency over {len(latencies_ms)} records: "
        f"p50 {statistics.median(latencies_ms):.2f} ms, max {latencies_ms[-1]:.2f} ms"
    )
    events.close()


def test_subscribe_to_shard_replays_from_trim_horizon_and_continues(kinesis):
    create_active_stream(kinesis, "replayed")
    for i in range(5):
        kinesis.put_record(StreamName="replayed", PartitionKey="k", Data=f"old {i}".encode())
    arn = register_active(kinesis, "replayed", "replayer")
    events = kinesis.subscribe_to_shard(
        ConsumerARN=arn, ShardId=shard_id(0), StartingPosition={"Type": "TRIM_HORIZON"}
    )["EventStream"]
    first = next_event(events)
    assert [r["Data"] for r in first["Records"]] == [f"old {i}".encode() for i in range(5)]
    assert first["ContinuationSequenceNumber"] == first["Records"][-1]["SequenceNumber"]
    events.close()


def test_a_second_subscription_within_five_seconds_is_refused(kinesis):
    create_active_stream(kinesis, "busy")
    arn = register_active(kinesis, "busy", "twice")
    position = {"Type": "LATEST"}
    events = kinesis.subscribe_to_shard(ConsumerARN=arn, ShardId=shard_id(0), StartingPosition=position)["EventStream"]
    next_event(events)
    err = error_of(kinesis.subscribe_to_shard, ConsumerARN=arn, ShardId=shard_id(0), StartingPosition=position)
    assert code_and_message(err)[0] == "ResourceInUseException"
    events.close()


def test_subscribe_to_shard_refuses_unknown_consumers_and_shards(kinesis):
    create_active_stream(kinesis, "refusing")
    arn = register_active(kinesis, "refusing", "picky")
    position = {"Type": "LATEST"}
    err = error_of(kinesis.subscribe_to_shard, ConsumerARN=arn + "0", ShardId=shard_id(0), StartingPosition=position)
    assert code_and_message(err)[0] == "ResourceNotFoundException"
    err = error_of(kinesis.subscribe_to_shard, ConsumerARN=arn, ShardId=shard_id(7), StartingPosition=position)
    assert code_and_message(err)[0] == "ResourceNotFoundException"


def test_deregistering_a_consumer_ends_its_subscription_with_an_exception(kinesis):
    create_active_stream(kinesis, "ending")
    arn = register_active(kinesis, "ending", "leaver")
    events = kinesis.subscribe_to_shard(ConsumerARN=arn, ShardId=shard_id(0), StartingPosition={"Type": "LATEST"})[
        "EventStream"
    ]
    next_event(events)
    kinesis.deregister_stream_consumer(ConsumerARN=arn)
    try:
        for _ in events:
            pass
        raise AssertionError("the stream should have ended with an exception")
    except EventStreamError as err:
        assert err.response["Error"]["Code"] == "ResourceInUseException"
    except ClientError as err:  # pragma: no cover - botocore version differences
        assert err.response["Error"]["Code"] == "ResourceInUseException"


def assert_kcl_accepts(shard: str, event: dict) -> None:
    """The Java KCL's rule (FanOutRecordsPublisher): an event carries a
    ContinuationSequenceNumber or, at a closed shard's end, ChildShards;
    one with both or neither is rejected, and the KCL subscribes again."""
    continues = event.get("ContinuationSequenceNumber") is not None
    ends = bool(event.get("ChildShards"))
    assert continues != ends, f"{shard}: the KCL rejects this event: {event}"


def read_shard_events(client, consumer: str, shard: str, wanted: int | None = None) -> tuple[list[bytes], list[str]]:
    """Reads a shard from its trim horizon through one subscription, each
    event checked as the KCL checks it, until its end (then returns its
    children) or, for an open shard, until `wanted` records arrived."""
    events = client.subscribe_to_shard(ConsumerARN=consumer, ShardId=shard, StartingPosition={"Type": "TRIM_HORIZON"})[
        "EventStream"
    ]
    data = []
    deadline = time.monotonic() + DEADLINE_S
    for wrapped in events:
        assert time.monotonic() < deadline, f"{shard}: never reached its end"
        event = wrapped["SubscribeToShardEvent"]
        assert_kcl_accepts(shard, event)
        data.extend(r["Data"] for r in event["Records"])
        if event.get("ChildShards"):
            # The shard's last event ends the subscription.
            assert list(events) == []
            return data, [c["ShardId"] for c in event["ChildShards"]]
        if wanted is not None and len(data) >= wanted:
            events.close()
            return data, []
    raise AssertionError(f"{shard}: the subscription ended before the shard's end")


def put_numbered(client, stream: str, prefix: str, count: int) -> list[bytes]:
    data = [f"{prefix}-{i}".encode() for i in range(count)]
    for i, item in enumerate(data):
        client.put_record(StreamName=stream, PartitionKey=f"key-{i}", Data=item)
    return data


def test_a_kcl_style_reader_follows_a_split_and_a_merge_to_every_record(kinesis):
    create_active_stream(kinesis, "lineage")
    arn = register_active(kinesis, "lineage", "kcl")
    written = put_numbered(kinesis, "lineage", "before-split", 5)
    kinesis.split_shard(StreamName="lineage", ShardToSplit=shard_id(0), NewStartingHashKey=str(2**127))
    wait_active(kinesis, "lineage")
    written += put_numbered(kinesis, "lineage", "after-split", 20)
    kinesis.merge_shards(StreamName="lineage", ShardToMerge=shard_id(1), AdjacentShardToMerge=shard_id(2))
    wait_active(kinesis, "lineage")
    after_merge = put_numbered(kinesis, "lineage", "after-merge", 5)
    written += after_merge

    read, children = read_shard_events(kinesis, arn, shard_id(0))
    assert children == [shard_id(1), shard_id(2)]
    merged_into = []
    for child in children:
        records, grandchildren = read_shard_events(kinesis, arn, child)
        read += records
        merged_into += grandchildren
    assert merged_into == [shard_id(3)] * 2
    records, none = read_shard_events(kinesis, arn, shard_id(3), wanted=len(after_merge))
    assert none == []
    read += records
    assert sorted(read) == sorted(written)
