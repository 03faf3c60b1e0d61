"""The `aws` CLI (v1, from the venv) against Riffle: the commands a user
types from the README, checked against what boto3 reads back."""

import base64

from kinesis_helpers import create_active_stream, get_records, shard_id, stream_arn


def test_cli_stream_lifecycle_and_records_round_trip(aws, kinesis):
    created = aws("create-stream", "--stream-name", "cli", "--shard-count", "2")
    assert created.stdout.strip() == "", "CreateStream has no output"
    aws("wait", "stream-exists", "--stream-name", "cli")

    summary = aws("describe-stream-summary", "--stream-name", "cli").json["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["StreamARN"] == stream_arn("cli")
    assert summary["OpenShardCount"] == 2

    # awscli v1 sends --data as the raw text it is given (base64-encoded on
    # the wire by the CLI), so the record holds exactly these bytes.
    put = aws("put-record", "--stream-name", "cli", "--partition-key", "user-1", "--data", "hello from the cli").json
    assert put["ShardId"] in (shard_id(0), shard_id(1))
    assert put["SequenceNumber"].isdigit()
    it = kinesis.get_shard_iterator(StreamName="cli", ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON")
    [record] = get_records(kinesis, ShardIterator=it["ShardIterator"])["Records"]
    assert record["Data"] == b"hello from the cli"
    assert record["SequenceNumber"] == put["SequenceNumber"]

    iterator = aws(
        "get-shard-iterator", "--stream-name", "cli", "--shard-id", put["ShardId"], "--shard-iterator-type", "TRIM_HORIZON"
    ).json["ShardIterator"]
    got = aws("get-records", "--shard-iterator", iterator).json
    [cli_record] = got["Records"]
    # The CLI prints blobs base64-encoded.
    assert base64.b64decode(cli_record["Data"]) == b"hello from the cli"
    assert cli_record["PartitionKey"] == "user-1"
    assert cli_record["SequenceNumber"] == put["SequenceNumber"]
    assert got["NextShardIterator"]

    aws("delete-stream", "--stream-name", "cli")
    aws("wait", "stream-not-exists", "--stream-name", "cli")
    assert aws("list-streams").json["StreamNames"] == []


def test_cli_list_streams_follows_pagination(aws, kinesis):
    names = [f"page-{i}" for i in range(5)]
    for name in names:
        create_active_stream(kinesis, name)

    # --page-size makes the CLI fetch one stream per call and merge the pages.
    listed = aws("list-streams", "--page-size", "2").json
    assert listed["StreamNames"] == names
    assert [s["StreamName"] for s in listed["StreamSummaries"]] == names


def test_cli_error_exits_non_zero_with_the_aws_message(aws):
    failed = aws("describe-stream", "--stream-name", "ghost", check=False)

    assert failed.code == 255, "awscli v1 exits 255 on a service error"
    assert failed.stdout == ""
    assert (
        "An error occurred (ResourceNotFoundException) when calling the DescribeStream operation: "
        "Stream ghost under account 000000000000 not found." in failed.stderr
    )
