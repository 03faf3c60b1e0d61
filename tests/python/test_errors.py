"""AWS-shaped errors as boto3 users catch them: the modeled exception
classes, the error codes and AWS's exact messages, HTTP 400, and a server
that keeps serving afterwards."""

import pytest

from kinesis_helpers import code_and_message, create_active_stream, error_of, get_records, shard_id

VALIDATION_PREFIX = "1 validation error detected: "


def test_missing_stream_is_resource_not_found_with_the_aws_message(kinesis):
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException) as info:
        kinesis.describe_stream(StreamName="ghost")

    err = info.value
    assert code_and_message(err) == ("ResourceNotFoundException", "Stream ghost under account 000000000000 not found.")
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize(
    "call",
    [
        lambda k: k.describe_stream_summary(StreamName="ghost"),
        lambda k: k.put_record(StreamName="ghost", PartitionKey="k", Data=b"x"),
        lambda k: k.put_records(StreamName="ghost", Records=[{"PartitionKey": "k", "Data": b"x"}]),
        lambda k: k.list_shards(StreamName="ghost"),
        lambda k: k.delete_stream(StreamName="ghost"),
    ],
    ids=["DescribeStreamSummary", "PutRecord", "PutRecords", "ListShards", "DeleteStream"],
)
def test_every_action_naming_a_missing_stream_says_not_found(kinesis, call):
    err = error_of(call, kinesis)
    assert code_and_message(err) == ("ResourceNotFoundException", "Stream ghost under account 000000000000 not found.")


def test_iterator_on_a_missing_stream_names_the_shard(kinesis):
    # GetShardIterator words it from the shard's side, as AWS does.
    err = error_of(kinesis.get_shard_iterator, StreamName="ghost", ShardId=shard_id(0), ShardIteratorType="LATEST")
    assert code_and_message(err) == (
        "ResourceNotFoundException",
        "Shard shardId-000000000000 in stream ghost under account 000000000000 does not exist",
    )


def test_creating_an_existing_stream_is_resource_in_use(kinesis):
    create_active_stream(kinesis, "twice")

    with pytest.raises(kinesis.exceptions.ResourceInUseException) as info:
        kinesis.create_stream(StreamName="twice", ShardCount=1)

    assert code_and_message(info.value) == (
        "ResourceInUseException",
        "Stream twice under account 000000000000 already exists.",
    )
    # The first stream is untouched.
    assert kinesis.describe_stream_summary(StreamName="twice")["StreamDescriptionSummary"]["OpenShardCount"] == 1


def test_bad_stream_name_is_a_validation_error(kinesis):
    err = error_of(kinesis.create_stream, StreamName="bad name!", ShardCount=1)
    assert code_and_message(err) == (
        "ValidationException",
        "1 validation error detected: Value 'bad name!' at 'streamName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
    )
    assert kinesis.list_streams()["StreamNames"] == []


def test_zero_shards_is_a_validation_error(raw_kinesis):
    # boto3 refuses ShardCount=0 itself; this client lets it reach the server.
    err = error_of(raw_kinesis.create_stream, StreamName="empty", ShardCount=0)
    assert code_and_message(err) == (
        "ValidationException",
        "1 validation error detected: Value '0' at 'shardCount' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
    )


def test_oversized_partition_key_is_a_validation_error(kinesis, raw_kinesis):
    create_active_stream(kinesis, "keys")
    err = error_of(raw_kinesis.put_record, StreamName="keys", PartitionKey="k" * 257, Data=b"x")
    code, message = code_and_message(err)
    assert code == "ValidationException"
    assert message.startswith(VALIDATION_PREFIX)
    assert "at 'partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256" in message


def test_put_records_with_too_many_or_no_records_is_a_validation_error(kinesis, raw_kinesis):
    create_active_stream(kinesis, "bulk")
    for records in ([], [{"PartitionKey": "k", "Data": b"x"}] * 501):
        err = error_of(raw_kinesis.put_records, StreamName="bulk", Records=records)
        code, message = code_and_message(err)
        assert code == "ValidationException"
        assert message.startswith(VALIDATION_PREFIX)
        assert "at 'records' failed to satisfy constraint" in message
    # Nothing from the refused calls was written.
    assert kinesis.describe_stream(StreamName="bulk")["StreamDescription"]["StreamStatus"] == "ACTIVE"
    out = get_records(
        kinesis,
        ShardIterator=kinesis.get_shard_iterator(StreamName="bulk", ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ]
    )
    assert out["Records"] == []


def test_malformed_starting_sequence_number_is_a_validation_error(kinesis):
    create_active_stream(kinesis, "seqs")
    err = error_of(
        kinesis.get_shard_iterator,
        StreamName="seqs",
        ShardId=shard_id(0),
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber="not-a-number",
    )
    code, message = code_and_message(err)
    assert code == "ValidationException"
    assert "at 'startingSequenceNumber'" in message


def test_server_keeps_serving_after_errors(kinesis, raw_kinesis):
    for _ in range(3):
        error_of(kinesis.describe_stream, StreamName="ghost")
        error_of(raw_kinesis.create_stream, StreamName="zero", ShardCount=0)
        error_of(kinesis.get_records, ShardIterator="garbage-iterator")
    create_active_stream(kinesis, "alive")
    kinesis.put_record(StreamName="alive", PartitionKey="k", Data=b"still here")
    assert kinesis.list_streams()["StreamNames"] == ["alive"]


def test_explicit_hash_key_outside_the_key_space_is_invalid_argument(kinesis):
    create_active_stream(kinesis, "space")
    err = error_of(kinesis.put_record, StreamName="space", PartitionKey="k", ExplicitHashKey=str(2**128), Data=b"x")
    code, message = code_and_message(err)
    assert code == "InvalidArgumentException"
    assert message.startswith("Invalid ExplicitHashKey.")


def test_stream_arn_and_name_of_different_streams_is_invalid_argument(kinesis):
    create_active_stream(kinesis, "one")
    create_active_stream(kinesis, "other")
    err = error_of(
        kinesis.describe_stream_summary, StreamName="one", StreamARN="arn:aws:kinesis:us-east-1:000000000000:stream/other"
    )
    assert code_and_message(err)[0] == "InvalidArgumentException"


def test_reading_a_deleted_stream_is_resource_not_found(kinesis):
    create_active_stream(kinesis, "gone")
    kinesis.put_record(StreamName="gone", PartitionKey="k", Data=b"x")
    it = kinesis.get_shard_iterator(StreamName="gone", ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    kinesis.delete_stream(StreamName="gone")
    kinesis.get_waiter("stream_not_exists").wait(StreamName="gone", WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})

    err = error_of(kinesis.get_records, ShardIterator=it)
    assert code_and_message(err)[0] == "ResourceNotFoundException"
