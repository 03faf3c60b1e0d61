"""Throughput limits and the settings that go with them, through boto3
against a real server with AWS's limits on (the default): GetRecords and
PutRecord refusals in AWS's words, larger records after UpdateMaxRecordSize,
warm throughput, tags by ARN and the tag limit, and `--throughput-limits off`.

Rates here are real: each loop runs until the server refuses (it must,
long before the deadline) rather than assuming how fast a call is."""

import time

from conftest import RiffleServer, make_client
from kinesis_helpers import code_and_message, create_active_stream, error_of, iterator, shard_id, stream_arn

# Far more calls than a shard allows in the time they take; reaching it
# means the server did not throttle.
CALLS_MAX = 400


def test_get_records_past_five_calls_a_second_is_refused_in_awss_words(kinesis):
    create_active_stream(kinesis, "polled")
    it = iterator(kinesis, "polled", shard_id(0))
    started = time.monotonic()
    for calls in range(CALLS_MAX):
        try:
            kinesis.get_records(ShardIterator=it)
        except kinesis.exceptions.ProvisionedThroughputExceededException as err:
            assert code_and_message(err) == (
                "ProvisionedThroughputExceededException",
                "Rate exceeded for Shard - 000000000000/polled/shardId-000000000000",
            )
            break
    else:
        raise AssertionError(f"{CALLS_MAX} GetRecords calls were never throttled")
    # One second's burst (5 calls) plus what refilled while they ran.
    elapsed = time.monotonic() - started
    assert 5 <= calls <= 5 + 5 * elapsed + 1, (calls, elapsed)


def test_put_record_past_one_mib_a_second_is_refused_in_awss_words(kinesis):
    create_active_stream(kinesis, "fast")
    payload = b"x" * (256 * 1024)
    for _ in range(CALLS_MAX):
        try:
            kinesis.put_record(StreamName="fast", PartitionKey="k", Data=payload)
        except kinesis.exceptions.ProvisionedThroughputExceededException as err:
            assert code_and_message(err) == (
                "ProvisionedThroughputExceededException",
                "Rate exceeded for shard shardId-000000000000 in stream fast under account 000000000000.",
            )
            break
    else:
        raise AssertionError("a shard took far more than 1 MiB a second")


def test_update_max_record_size_admits_records_up_to_ten_mib(kinesis):
    create_active_stream(kinesis, "large")
    big = b"L" * (3 * 1024 * 1024)
    err = error_of(kinesis.put_record, StreamName="large", PartitionKey="k", Data=big)
    assert code_and_message(err)[0] == "ValidationException"
    kinesis.update_max_record_size(StreamARN=stream_arn("large"), MaxRecordSizeInKiB=10240)
    summary = kinesis.describe_stream_summary(StreamName="large")["StreamDescriptionSummary"]
    assert summary["MaxRecordSizeInKiB"] == 10240
    # A large record is a burst: accepted on a rested shard.
    out = kinesis.put_record(StreamName="large", PartitionKey="k", Data=big)
    assert out["ShardId"] == shard_id(0)
    got = kinesis.get_records(ShardIterator=iterator(kinesis, "large", shard_id(0)))["Records"]
    assert [r["Data"] for r in got] == [big]
    err = error_of(kinesis.update_max_record_size, StreamARN=stream_arn("large"), MaxRecordSizeInKiB=10241)
    assert code_and_message(err)[0] == "ValidationException"


TEN_MIB = 10 * 1024 * 1024


def test_ten_mib_records_go_through_put_record_put_records_get_records_and_subscribe_to_shard(kinesis):
    kinesis.create_stream(StreamName="huge", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="huge", WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
    # The default limit, 1 MiB, refuses one byte more in AWS's words.
    over = b"o" * (1024 * 1024 + 1)
    err = error_of(kinesis.put_record, StreamName="huge", PartitionKey="k", Data=over)
    assert code_and_message(err) == (
        "ValidationException",
        "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]' at 'data' "
        "failed to satisfy constraint: Member must have length less than or equal to 1048576",
    )
    err = error_of(kinesis.put_records, StreamName="huge", Records=[{"PartitionKey": "k", "Data": over}])
    code, message = code_and_message(err)
    assert code == "ValidationException" and "at 'records.1.member.data'" in message, message

    kinesis.update_max_record_size(StreamARN=stream_arn("huge"), MaxRecordSizeInKiB=10240)
    consumer = kinesis.register_stream_consumer(StreamARN=stream_arn("huge"), ConsumerName="big-reader")["Consumer"]
    low, high = "0", str(2**128 - 1)
    # Each large record is a burst its (rested) shard admits.
    by_put_record = bytes(range(256)) * (TEN_MIB // 256)
    out = kinesis.put_record(StreamName="huge", PartitionKey="k", Data=by_put_record, ExplicitHashKey=low)
    assert out["ShardId"] == shard_id(0)
    # PutRecords takes 10 MiB per request, partition keys included.
    by_put_records = b"R" * (TEN_MIB - 1)
    out = kinesis.put_records(
        StreamName="huge", Records=[{"PartitionKey": "k", "Data": by_put_records, "ExplicitHashKey": high}]
    )
    assert out["FailedRecordCount"] == 0 and out["Records"][0]["ShardId"] == shard_id(1)
    err = error_of(kinesis.put_record, StreamName="huge", PartitionKey="k", Data=b"x" * (TEN_MIB + 1))
    assert code_and_message(err)[0] == "ValidationException"

    for shard, data in [(shard_id(0), by_put_record), (shard_id(1), by_put_records)]:
        got = kinesis.get_records(ShardIterator=iterator(kinesis, "huge", shard))["Records"]
        assert [r["Data"] for r in got] == [data]

    arn = consumer["ConsumerARN"]
    deadline = time.monotonic() + 10
    while kinesis.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "the consumer never became ACTIVE"
        time.sleep(0.01)
    events = kinesis.subscribe_to_shard(
        ConsumerARN=arn, ShardId=shard_id(0), StartingPosition={"Type": "TRIM_HORIZON"}
    )["EventStream"]
    first = next(iter(events))["SubscribeToShardEvent"]
    assert [r["Data"] for r in first["Records"]] == [by_put_record]
    events.close()


def test_warm_throughput_is_reported_after_an_update(kinesis):
    kinesis.create_stream(StreamName="warm", StreamModeDetails={"StreamMode": "ON_DEMAND"})
    kinesis.get_waiter("stream_exists").wait(StreamName="warm", WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
    out = kinesis.update_stream_warm_throughput(StreamARN=stream_arn("warm"), WarmThroughputMiBps=20)
    assert out["WarmThroughput"] == {"TargetMiBps": 20, "CurrentMiBps": 20}
    summary = kinesis.describe_stream_summary(StreamName="warm")["StreamDescriptionSummary"]
    assert summary["WarmThroughput"] == {"TargetMiBps": 20, "CurrentMiBps": 20}


def test_tags_by_arn_and_the_fifty_tag_limit(kinesis):
    create_active_stream(kinesis, "labelled")
    arn = stream_arn("labelled")
    kinesis.tag_resource(ResourceARN=arn, Tags={f"k{i}": "v" for i in range(50)})
    kinesis.untag_resource(ResourceARN=arn, TagKeys=["k0", "k1"])
    tags = kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"]
    assert len(tags) == 48 and {"Key": "k2", "Value": "v"} in tags
    page = kinesis.list_tags_for_stream(StreamName="labelled", Limit=10, ExclusiveStartTagKey="k2")
    assert page["HasMoreTags"] is True and len(page["Tags"]) == 10
    assert all(t["Key"] > "k2" for t in page["Tags"])
    err = error_of(kinesis.add_tags_to_stream, StreamName="labelled", Tags={"a": "1", "b": "2", "c": "3"})
    code, message = code_and_message(err)
    assert code == "InvalidArgumentException"
    assert message.startswith("Failed to add tags to stream labelled under account 000000000000")
    err = error_of(kinesis.add_tags_to_stream, StreamName="labelled", Tags={"bad*key": "1"})
    assert code_and_message(err)[0] == "InvalidArgumentException"


def test_limits_off_lets_a_shard_take_any_rate(tmp_path):
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=["--throughput-limits", "off"])
    srv.start()
    try:
        client = make_client(srv.endpoint)
        create_active_stream(client, "raw")
        records = [{"PartitionKey": "k", "Data": b"r"} for _ in range(500)]
        for _ in range(4):
            assert client.put_records(StreamName="raw", Records=records)["FailedRecordCount"] == 0
        it = iterator(client, "raw", shard_id(0))
        for _ in range(20):
            client.get_records(ShardIterator=it, Limit=1)
    finally:
        assert srv.terminate() == 0
