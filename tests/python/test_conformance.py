"""Differences from AWS that an independent suite recorded against live AWS
found (issue 15), each checked here through boto3 or raw HTTP: unknown
members, the shard map while a reshard is UPDATING, MergeShards' pair
order, and how shard ids are read."""

from __future__ import annotations

import json

import raw_http
from kinesis_helpers import (
    ACCOUNT_ID,
    code_and_message,
    create_active_stream,
    error_of,
)


def test_members_the_model_does_not_have_are_ignored_in_json(server, kinesis):
    create_active_stream(kinesis, "extra", 1)
    # CreateStream's input sent to DescribeStream and DeleteStream.
    status, out = raw_http.call_json(
        server.endpoint, "DescribeStream", {"StreamName": "extra", "ShardCount": 2, "Future": {"x": [1]}}
    )
    assert status == 200, out
    assert out["StreamDescription"]["StreamName"] == "extra"
    status, out = raw_http.call_json(server.endpoint, "DeleteStream", {"StreamName": "extra", "ShardCount": 2})
    assert status == 200, out
    assert kinesis.list_streams()["StreamNames"] == []


def test_members_the_model_does_not_have_are_ignored_in_cbor(server, kinesis):
    create_active_stream(kinesis, "extra", 1)
    body = raw_http.cbor({"StreamName": "extra", "ShardCount": 2, "Future": [True]})
    status, raw = raw_http.call(server.endpoint, "DeleteStream", body, raw_http.CBOR_1_1)
    assert status == 200, raw
    assert kinesis.list_streams()["StreamNames"] == []


def test_a_known_member_of_the_wrong_type_is_still_refused(server, kinesis):
    create_active_stream(kinesis, "typed", 1)
    status, out = raw_http.call_json(server.endpoint, "DescribeStream", {"StreamName": "typed", "Limit": "2"})
    assert status == 400
    assert out["__type"] == "SerializationException"
    assert json.dumps(out).count("class java.lang.String can not be converted to an Integer") == 1


def test_merge_shards_with_the_pair_reversed_is_refused(kinesis):
    create_active_stream(kinesis, "pair", 2)
    err = error_of(
        kinesis.merge_shards, StreamName="pair", ShardToMerge="shardId-000000000001", AdjacentShardToMerge="shardId-000000000000"
    )
    assert code_and_message(err) == (
        "InvalidArgumentException",
        f"Shards shardId-000000000001 and shardId-000000000000 in stream pair under account {ACCOUNT_ID} "
        "are not an adjacent pair of shards eligible for merging",
    )
    kinesis.merge_shards(StreamName="pair", ShardToMerge="shardId-000000000000", AdjacentShardToMerge="shardId-000000000001")


def test_reshards_report_a_shard_id_that_names_no_shard_before_an_unknown_stream(kinesis):
    for bad in ["2147483648", "shardId-002147483648", "ABKLFD8", "2.14E4"]:
        expected = ("ResourceNotFoundException", f"Could not find shard {bad} in stream nope under account {ACCOUNT_ID}.")
        err = error_of(kinesis.split_shard, StreamName="nope", ShardToSplit=bad, NewStartingHashKey="5")
        assert code_and_message(err) == expected
        err = error_of(kinesis.merge_shards, StreamName="nope", ShardToMerge="x-0", AdjacentShardToMerge=bad)
        assert code_and_message(err) == expected
    for good in ["2147483647", "x-2147483647", "a-00002147483647", "-00002147483647"]:
        err = error_of(kinesis.split_shard, StreamName="nope", ShardToSplit=good, NewStartingHashKey="5")
        assert code_and_message(err) == ("ResourceNotFoundException", f"Stream nope under account {ACCOUNT_ID} not found.")


def test_shard_ids_are_read_loosely_and_named_in_normal_form(kinesis):
    create_active_stream(kinesis, "loose", 1)
    for loose in ["0", "shardId-0", "a-00000", "x-y-0"]:
        assert kinesis.get_shard_iterator(StreamName="loose", ShardId=loose, ShardIteratorType="LATEST")["ShardIterator"]
    err = error_of(kinesis.get_shard_iterator, StreamName="loose", ShardId="shardId-5", ShardIteratorType="LATEST")
    assert code_and_message(err) == (
        "ResourceNotFoundException",
        f"Shard shardId-000000000005 in stream loose under account {ACCOUNT_ID} does not exist",
    )
    err = error_of(kinesis.get_shard_iterator, StreamName="nope", ShardId="a-00002147483647", ShardIteratorType="LATEST")
    assert code_and_message(err) == (
        "ResourceNotFoundException",
        f"Shard shardId-002147483647 in stream nope under account {ACCOUNT_ID} does not exist",
    )
    err = error_of(kinesis.split_shard, StreamName="loose", ShardToSplit="shardId-5", NewStartingHashKey="5")
    assert code_and_message(err) == (
        "ResourceNotFoundException",
        f"Could not find shard shardId-000000000005 in stream loose under account {ACCOUNT_ID}.",
    )
