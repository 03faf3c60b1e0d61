"""Stream lifecycle with boto3: create (provisioned and on-demand), the
waiters, describe, list with pagination, limits, delete, and StreamARN in
place of StreamName. Expectations are AWS's documented behaviour."""

from datetime import datetime

from conftest import RiffleServer, make_client
from kinesis_helpers import (
    ON_DEMAND_SHARDS,
    code_and_message,
    create_active_stream,
    error_of,
    expected_hash_ranges,
    get_records,
    shard_id,
    stream_arn,
    wait_active,
)


def test_provisioned_stream_becomes_active_with_evenly_split_hash_ranges(kinesis):
    desc = create_active_stream(kinesis, "orders", shards=3)

    assert desc["StreamName"] == "orders"
    assert desc["StreamARN"] == stream_arn("orders")
    assert desc["StreamStatus"] == "ACTIVE"
    assert desc["HasMoreShards"] is False
    assert desc["RetentionPeriodHours"] == 24
    assert desc["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert desc["EncryptionType"] == "NONE"
    assert isinstance(desc["StreamCreationTimestamp"], datetime)
    assert desc["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]
    assert [s["ShardId"] for s in desc["Shards"]] == [shard_id(i) for i in range(3)]
    ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in desc["Shards"]]
    assert ranges == expected_hash_ranges(3)
    for shard in desc["Shards"]:
        seq = shard["SequenceNumberRange"]
        assert seq["StartingSequenceNumber"].isdigit()
        assert "EndingSequenceNumber" not in seq, "a new shard is open"
        assert "ParentShardId" not in shard


def test_on_demand_stream_gets_four_shards(kinesis):
    kinesis.create_stream(StreamName="events", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    wait_active(kinesis, "events")

    summary = kinesis.describe_stream_summary(StreamName="events")["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert summary["OpenShardCount"] == ON_DEMAND_SHARDS
    shards = kinesis.list_shards(StreamName="events")["Shards"]
    ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"])) for s in shards]
    assert ranges == expected_hash_ranges(ON_DEMAND_SHARDS)


def test_describe_stream_summary_reports_the_stream(kinesis):
    create_active_stream(kinesis, "summary", shards=2)

    summary = kinesis.describe_stream_summary(StreamName="summary")["StreamDescriptionSummary"]

    assert summary["StreamName"] == "summary"
    assert summary["StreamARN"] == stream_arn("summary")
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["RetentionPeriodHours"] == 24
    assert summary["OpenShardCount"] == 2
    assert summary["ConsumerCount"] == 0
    assert summary["EncryptionType"] == "NONE"
    assert summary["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
    assert isinstance(summary["StreamCreationTimestamp"], datetime)
    assert summary["EnhancedMonitoring"] == [{"ShardLevelMetrics": []}]


def test_describe_stream_pages_through_shards(kinesis):
    create_active_stream(kinesis, "wide", shards=5)

    first = kinesis.describe_stream(StreamName="wide", Limit=2)["StreamDescription"]
    assert [s["ShardId"] for s in first["Shards"]] == [shard_id(0), shard_id(1)]
    assert first["HasMoreShards"] is True
    rest = kinesis.describe_stream(StreamName="wide", ExclusiveStartShardId=shard_id(1))["StreamDescription"]
    assert [s["ShardId"] for s in rest["Shards"]] == [shard_id(i) for i in range(2, 5)]
    assert rest["HasMoreShards"] is False

    pages = list(kinesis.get_paginator("describe_stream").paginate(StreamName="wide", PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    ids = [s["ShardId"] for p in pages for s in p["StreamDescription"]["Shards"]]
    assert ids == [shard_id(i) for i in range(5)]


def test_default_page_sizes_are_awss(kinesis):
    create_active_stream(kinesis, "many", shards=150)

    # DescribeStream returns 100 shards unless told otherwise ...
    desc = kinesis.describe_stream(StreamName="many")["StreamDescription"]
    assert len(desc["Shards"]) == 100
    assert desc["HasMoreShards"] is True
    # ... and never more than 100, even when asked for more ...
    assert len(kinesis.describe_stream(StreamName="many", Limit=200)["StreamDescription"]["Shards"]) == 100
    # ... and ListShards up to 1000.
    listed = kinesis.list_shards(StreamName="many")
    assert [s["ShardId"] for s in listed["Shards"]] == [shard_id(i) for i in range(150)]
    assert "NextToken" not in listed


def test_list_streams_pages_in_name_order(kinesis):
    names = ["delta", "alpha", "echo", "charlie", "bravo"]
    for name in names:
        kinesis.create_stream(StreamName=name, ShardCount=1)
    for name in names:
        wait_active(kinesis, name)

    pages = list(kinesis.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["StreamNames"]) for p in pages] == [2, 2, 1]
    assert [p["HasMoreStreams"] for p in pages] == [True, True, False]
    listed = [n for p in pages for n in p["StreamNames"]]
    assert listed == sorted(names)
    summaries = [s for p in pages for s in p["StreamSummaries"]]
    assert [s["StreamName"] for s in summaries] == sorted(names)
    for summary in summaries:
        assert summary["StreamARN"] == stream_arn(summary["StreamName"])
        assert summary["StreamStatus"] == "ACTIVE"
        assert summary["StreamModeDetails"] == {"StreamMode": "PROVISIONED"}
        assert isinstance(summary["StreamCreationTimestamp"], datetime)

    after = kinesis.list_streams(ExclusiveStartStreamName="bravo")
    assert after["StreamNames"] == ["charlie", "delta", "echo"]
    assert after["HasMoreStreams"] is False


def test_list_shards_pages_with_next_token_and_filters(kinesis):
    create_active_stream(kinesis, "sharded", shards=5)

    # As on AWS, a NextToken names the stream by itself: later pages pass only
    # the token. (boto3's list_shards paginator repeats StreamName, which AWS
    # refuses; see below.)
    pages = [kinesis.list_shards(StreamName="sharded", MaxResults=2)]
    while "NextToken" in pages[-1]:
        pages.append(kinesis.list_shards(NextToken=pages[-1]["NextToken"], MaxResults=2))
        assert len(pages) <= 5, "NextToken never ran out"
    assert [len(p["Shards"]) for p in pages] == [2, 2, 1]
    assert [s["ShardId"] for p in pages for s in p["Shards"]] == [shard_id(i) for i in range(5)]

    after = kinesis.list_shards(StreamName="sharded", ExclusiveStartShardId=shard_id(2))["Shards"]
    assert [s["ShardId"] for s in after] == [shard_id(3), shard_id(4)]
    latest = kinesis.list_shards(StreamName="sharded", ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert [s["ShardId"] for s in latest] == [shard_id(i) for i in range(5)]

    # AWS refuses a NextToken together with StreamName.
    err = error_of(kinesis.list_shards, StreamName="sharded", NextToken=pages[0]["NextToken"])
    assert code_and_message(err) == ("InvalidArgumentException", "NextToken and StreamName cannot be provided together.")


def test_describe_limits_counts_open_shards_and_on_demand_streams(kinesis):
    empty = kinesis.describe_limits()
    assert empty["OpenShardCount"] == 0
    assert empty["OnDemandStreamCount"] == 0

    create_active_stream(kinesis, "three", shards=3)
    kinesis.create_stream(StreamName="auto", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    wait_active(kinesis, "auto")

    limits = kinesis.describe_limits()
    assert limits["OpenShardCount"] == 3 + ON_DEMAND_SHARDS
    assert limits["OnDemandStreamCount"] == 1
    assert limits["ShardLimit"] >= limits["OpenShardCount"]
    assert limits["OnDemandStreamCountLimit"] >= 1


def test_delete_stream_then_stream_not_exists_waiter(kinesis):
    create_active_stream(kinesis, "doomed", shards=2)
    create_active_stream(kinesis, "kept")

    kinesis.delete_stream(StreamName="doomed")
    kinesis.get_waiter("stream_not_exists").wait(StreamName="doomed", WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})

    assert kinesis.list_streams()["StreamNames"] == ["kept"]
    err = error_of(kinesis.describe_stream_summary, StreamName="doomed")
    assert code_and_message(err) == (
        "ResourceNotFoundException",
        "Stream doomed under account 000000000000 not found.",
    )
    # The name is free again.
    create_active_stream(kinesis, "doomed")


def test_stream_arn_works_wherever_a_stream_name_does(kinesis):
    create_active_stream(kinesis, "by-arn", shards=2)
    arn = stream_arn("by-arn")

    assert kinesis.describe_stream(StreamARN=arn)["StreamDescription"]["StreamName"] == "by-arn"
    assert kinesis.describe_stream_summary(StreamARN=arn)["StreamDescriptionSummary"]["OpenShardCount"] == 2
    assert len(kinesis.list_shards(StreamARN=arn)["Shards"]) == 2
    put = kinesis.put_record(StreamARN=arn, PartitionKey="k", Data=b"via arn")
    batch = kinesis.put_records(StreamARN=arn, Records=[{"PartitionKey": "k", "Data": b"batch via arn"}])
    assert batch["FailedRecordCount"] == 0
    it = kinesis.get_shard_iterator(StreamARN=arn, ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON")
    got = get_records(kinesis, ShardIterator=it["ShardIterator"], StreamARN=arn)["Records"]
    assert [r["Data"] for r in got] == [b"via arn", b"batch via arn"]

    kinesis.delete_stream(StreamARN=arn, EnforceConsumerDeletion=True)
    kinesis.get_waiter("stream_not_exists").wait(StreamARN=arn, WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})


def test_status_goes_creating_to_active_and_deleting_to_gone(tmp_path):
    # A server with AWS-like transitions (1 s instead of AWS's seconds),
    # which is what boto3's waiters exist for.
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, status_delay_ms=1000)
    srv.start()
    try:
        client = make_client(srv.endpoint)
        client.create_stream(StreamName="slow", ShardCount=1)
        assert client.describe_stream(StreamName="slow")["StreamDescription"]["StreamStatus"] == "CREATING"
        # A second create while the first is in progress is refused too.
        assert code_and_message(error_of(client.create_stream, StreamName="slow", ShardCount=1))[0] == "ResourceInUseException"
        wait_active(client, "slow")

        client.delete_stream(StreamName="slow")
        assert client.describe_stream(StreamName="slow")["StreamDescription"]["StreamStatus"] == "DELETING"
        client.get_waiter("stream_not_exists").wait(StreamName="slow", WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
        assert client.list_streams()["StreamNames"] == []
    finally:
        srv.terminate()


def test_no_streams_lists_empty(kinesis):
    out = kinesis.list_streams()
    assert out["StreamNames"] == []
    assert out["HasMoreStreams"] is False
