"""Differences from AWS that an independent suite recorded against live AWS
found (issue 15), each checked here through boto3 or raw HTTP: unknown
members, the shard map while a reshard is UPDATING, MergeShards' pair
order, and how shard ids are read."""

from __future__ import annotations

import json

import raw_http
from conftest import RiffleServer, make_client
from kinesis_helpers import (
    ACCOUNT_ID,
    HASH_KEY_MAX,
    code_and_message,
    create_active_stream,
    error_of,
    iterator,
    shard_id,
    wait_active,
)

# Long enough that the checks right after a reshard see UPDATING even on a
# loaded machine; each is a handful of local calls.
UPDATING_DELAY_MS = 2000


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


def _shard_map(client, name: str) -> list[tuple[str, bool]]:
    """(shard id, open) of every shard DescribeStream lists."""
    shards = client.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    return [(s["ShardId"], "EndingSequenceNumber" not in s["SequenceNumberRange"]) for s in shards]


def _read_closed(client, name: str, shard: str) -> list[bytes]:
    """The data of a closed shard, read to its end (no NextShardIterator)."""
    data, it = [], iterator(client, name, shard)
    while it:
        out = client.get_records(ShardIterator=it)
        data += [r["Data"] for r in out["Records"]]
        it = out.get("NextShardIterator")
    return data


def _put_top(client, name: str, data: bytes) -> dict:
    return client.put_record(StreamName=name, Data=data, PartitionKey="k", ExplicitHashKey=str(HASH_KEY_MAX))


def test_while_a_reshard_is_updating_every_view_shows_the_shard_map_as_it_was(tmp_path):
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, status_delay_ms=UPDATING_DELAY_MS)
    srv.start()
    try:
        client = make_client(srv.endpoint)
        create_active_stream(client, "resh", 2)
        before = [(shard_id(0), True), (shard_id(1), True)]

        client.split_shard(StreamName="resh", ShardToSplit=shard_id(1), NewStartingHashKey=str(2**127 + 2**126))
        assert client.describe_stream(StreamName="resh")["StreamDescription"]["StreamStatus"] == "UPDATING"
        assert _shard_map(client, "resh") == before
        assert [s["ShardId"] for s in client.list_shards(StreamName="resh")["Shards"]] == [shard_id(0), shard_id(1)]
        summary = client.describe_stream_summary(StreamName="resh")["StreamDescriptionSummary"]
        assert summary["OpenShardCount"] == 2
        # Records still go to the parent, durably, and only there.
        during = _put_top(client, "resh", b"during split")
        assert during["ShardId"] == shard_id(1)
        wait_active(client, "resh")
        assert _shard_map(client, "resh") == [(shard_id(0), True), (shard_id(1), False), (shard_id(2), True), (shard_id(3), True)]
        assert _read_closed(client, "resh", shard_id(1)) == [b"during split"]
        assert _put_top(client, "resh", b"after split")["ShardId"] == shard_id(3)

        client.merge_shards(StreamName="resh", ShardToMerge=shard_id(2), AdjacentShardToMerge=shard_id(3))
        assert len(_shard_map(client, "resh")) == 4
        assert _put_top(client, "resh", b"during merge")["ShardId"] == shard_id(3)
        wait_active(client, "resh")
        assert _shard_map(client, "resh")[-1] == (shard_id(4), True)
        assert _read_closed(client, "resh", shard_id(3)) == [b"after split", b"during merge"]

        client.update_shard_count(StreamName="resh", TargetShardCount=4, ScalingType="UNIFORM_SCALING")
        summary = client.describe_stream_summary(StreamName="resh")["StreamDescriptionSummary"]
        assert (summary["StreamStatus"], summary["OpenShardCount"]) == ("UPDATING", 2)
        wait_active(client, "resh")
        summary = client.describe_stream_summary(StreamName="resh")["StreamDescriptionSummary"]
        assert summary["OpenShardCount"] == 4
    finally:
        srv.terminate()
