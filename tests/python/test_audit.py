"""The audit log with boto3 and the aws CLI: a server started with
--audit-log writes one CloudTrail-shaped JSON line per API call, failures and
refused signatures included, never a record's data, and data events only
when asked for. Lines are read after a SIGTERM, which flushes and syncs."""

import json
import os
import subprocess

import pytest

from conftest import AWS_CLI, RiffleServer, make_client
from kinesis_helpers import REGION, create_active_stream, error_of, get_records, iterator, shard_id

KEY_ID = "AKIDRIFFLETEST"  # what the suite's environment signs with (conftest.py)
SECRET = "riffle-test-secret"
PAYLOAD = b"do-not-log-this-payload"


def start(tmp_path, *extra):
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--audit-log", str(tmp_path / "audit.jsonl"), *extra],
    )
    srv.start()
    return srv


def stop_and_read(srv, tmp_path):
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"
    text = (tmp_path / "audit.jsonl").read_text()
    assert PAYLOAD.decode() not in text
    return [json.loads(line) for line in text.splitlines()]


def client(endpoint, secret=SECRET):
    return make_client(endpoint, key_id=KEY_ID, secret=secret)


def test_management_calls_failures_and_refused_signatures_are_audited(tmp_path):
    srv = start(tmp_path, "--access-key-id", KEY_ID, "--secret-access-key", SECRET)
    kinesis = client(srv.endpoint)
    create_active_stream(kinesis, "audited")
    kinesis.put_record(StreamName="audited", PartitionKey="k", Data=PAYLOAD)
    error_of(kinesis.describe_stream_summary, StreamName="missing")
    error_of(client(srv.endpoint, secret="wrong").delete_stream, StreamName="audited")
    cli = subprocess.run(
        [str(AWS_CLI), "--endpoint-url", srv.endpoint, "--region", REGION, "kinesis", "list-streams"],
        capture_output=True, text=True, timeout=60, env=os.environ, stdin=subprocess.DEVNULL,
    )
    assert cli.returncode == 0, cli.stderr
    records = stop_and_read(srv, tmp_path)

    names = [r["eventName"] for r in records]
    # PutRecord is a data event: not logged unless asked for.
    assert "PutRecord" not in names
    assert names[0] == "CreateStream"
    assert names[-3:] == ["DescribeStreamSummary", "DeleteStream", "ListStreams"]
    created, missing, refused, listed = records[0], records[-3], records[-2], records[-1]

    assert created["eventSource"] == "kinesis.amazonaws.com"
    assert created["awsRegion"] == REGION
    assert created["sourceIPAddress"] == "127.0.0.1"
    assert created["userIdentity"] == {"type": "IAMUser", "accountId": "000000000000", "accessKeyId": KEY_ID}
    assert created["requestParameters"] == {"streamName": "audited", "shardCount": 1}
    assert created["readOnly"] is False and created["managementEvent"] is True
    assert created["eventCategory"] == "Management"
    assert created["userAgent"].startswith("Boto3/")
    assert "errorCode" not in created
    assert len({r["eventID"] for r in records}) == len(records)

    assert missing["errorCode"] == "ResourceNotFoundException"
    assert "missing" in missing["errorMessage"]
    assert missing["readOnly"] is True
    assert missing["additionalEventData"]["httpStatus"] == 400

    # A refused signature is logged with the key it claimed, unproven.
    assert refused["errorCode"] == "InvalidSignatureException"
    assert refused["userIdentity"]["type"] == "Unknown"
    assert refused["userIdentity"]["accessKeyId"] == KEY_ID

    assert listed["userAgent"].startswith("aws-cli/")
    assert "errorCode" not in listed


def test_data_events_are_audited_without_their_data_when_asked_for(tmp_path):
    srv = start(tmp_path, "--audit-data-events", "on")
    kinesis = client(srv.endpoint)
    create_active_stream(kinesis, "data")
    kinesis.put_record(StreamName="data", PartitionKey="pk", Data=PAYLOAD)
    kinesis.put_records(StreamName="data", Records=[{"PartitionKey": "pk", "Data": PAYLOAD}] * 3)
    [record] = get_records(kinesis, ShardIterator=iterator(kinesis, "data", shard_id(0)), Limit=1)["Records"]
    assert record["Data"] == PAYLOAD
    records = stop_and_read(srv, tmp_path)

    by_name = {}
    for r in records:
        by_name.setdefault(r["eventName"], r)
    put = by_name["PutRecord"]
    assert put["eventCategory"] == "Data" and put["managementEvent"] is False
    assert put["requestParameters"] == {"streamName": "data", "partitionKey": "pk"}
    # Without signature verification the key id is only claimed.
    assert put["userIdentity"]["type"] == "Unknown"
    assert by_name["PutRecords"]["requestParameters"] == {"streamName": "data"}
    assert by_name["GetShardIterator"]["requestParameters"]["shardIteratorType"] == "TRIM_HORIZON"
    assert by_name["GetRecords"]["readOnly"] is True


def test_an_audit_log_that_cannot_be_opened_stops_the_start(tmp_path):
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--audit-log", str(tmp_path / "no-such-dir" / "audit.jsonl")],
    )
    with pytest.raises(pytest.fail.Exception, match="cannot open the audit log"):
        srv.start()
