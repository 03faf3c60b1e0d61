"""Lambda event source mappings through boto3's `lambda` client and the aws
CLI against `riffle serve`: the five mapping operations on a Kinesis
stream, Lambda's defaults, states and errors, paging, and mappings kept
across a restart. (What mappings invoke comes with the pollers.)"""

from __future__ import annotations

import json
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import AWS_CLI, RiffleServer, make_client
from kinesis_helpers import REGION, create_active_stream

ACCOUNT = "000000000000"
CONFIG = """
[functions.consumer]
url = "http://127.0.0.1:9/2015-03-31/functions/function/invocations"

[functions.other]
url = "http://127.0.0.1:9/2015-03-31/functions/function/invocations"
"""


@pytest.fixture
def lambda_server(tmp_path):
    config = tmp_path / "riffle.toml"
    config.write_text(CONFIG)
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=["--config", str(config)])
    srv.start()
    yield srv
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def lambda_client(endpoint: str, **config):
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


def stream_arn(name: str) -> str:
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def error_of(call, **kwargs) -> tuple[int, str, str]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    err = raised.value.response
    return err["ResponseMetadata"]["HTTPStatusCode"], err["Error"]["Code"], err["Error"]["Message"]


def test_a_mapping_is_created_with_lambdas_defaults_and_read_back(lambda_server):
    create_active_stream(make_client(lambda_server.endpoint), "orders", shards=2)
    client = lambda_client(lambda_server.endpoint)
    created = client.create_event_source_mapping(
        EventSourceArn=stream_arn("orders"), FunctionName="consumer", StartingPosition="TRIM_HORIZON"
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating"
    uuid = created["UUID"]
    assert created["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:consumer"
    assert created["EventSourceMappingArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:event-source-mapping:{uuid}"
    assert (created["BatchSize"], created["MaximumBatchingWindowInSeconds"], created["ParallelizationFactor"]) == (
        100,
        0,
        1,
    )
    assert (created["MaximumRetryAttempts"], created["MaximumRecordAgeInSeconds"]) == (-1, -1)
    assert created["BisectBatchOnFunctionError"] is False
    got = client.get_event_source_mapping(UUID=uuid)
    assert got["State"] == "Enabled"
    assert got["StateTransitionReason"] == "User action"
    assert got["EventSourceArn"] == stream_arn("orders")
    assert got["StartingPosition"] == "TRIM_HORIZON"


def test_updates_change_what_they_name_and_delete_removes(lambda_server):
    create_active_stream(make_client(lambda_server.endpoint), "s", shards=1)
    client = lambda_client(lambda_server.endpoint)
    uuid = client.create_event_source_mapping(
        EventSourceArn=stream_arn("s"),
        FunctionName=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:consumer",
        StartingPosition="LATEST",
        BatchSize=50,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )["UUID"]
    updated = client.update_event_source_mapping(UUID=uuid, BatchSize=7, Enabled=False, BisectBatchOnFunctionError=True)
    assert updated["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert updated["State"] == "Updating"
    got = client.get_event_source_mapping(UUID=uuid)
    assert (got["State"], got["BatchSize"], got["BisectBatchOnFunctionError"]) == ("Disabled", 7, True)
    assert got["FunctionResponseTypes"] == ["ReportBatchItemFailures"], "what the update did not name stays"
    assert got["StartingPosition"] == "LATEST"
    deleted = client.delete_event_source_mapping(UUID=uuid)
    assert (deleted["ResponseMetadata"]["HTTPStatusCode"], deleted["State"]) == (202, "Deleting")
    status, code, message = error_of(client.get_event_source_mapping, UUID=uuid)
    assert (status, code, message) == (404, "ResourceNotFoundException", "The resource you requested does not exist.")


def test_mappings_are_listed_by_source_or_function_a_page_at_a_time(lambda_server):
    kinesis = make_client(lambda_server.endpoint)
    for name in ("a", "b"):
        create_active_stream(kinesis, name, shards=1)
    client = lambda_client(lambda_server.endpoint)
    made = []
    for source, function in (("a", "consumer"), ("a", "other"), ("b", "consumer")):
        made.append(
            client.create_event_source_mapping(
                EventSourceArn=stream_arn(source), FunctionName=function, StartingPosition="LATEST"
            )["UUID"]
        )
    by_source = client.list_event_source_mappings(EventSourceArn=stream_arn("a"))["EventSourceMappings"]
    assert sorted(m["UUID"] for m in by_source) == sorted(made[:2])
    by_function = client.list_event_source_mappings(FunctionName="consumer")["EventSourceMappings"]
    assert sorted(m["UUID"] for m in by_function) == sorted([made[0], made[2]])
    seen, marker = [], None
    while True:
        kwargs = {"MaxItems": 2} | ({"Marker": marker} if marker else {})
        page = client.list_event_source_mappings(**kwargs)
        assert len(page["EventSourceMappings"]) <= 2
        seen += [m["UUID"] for m in page["EventSourceMappings"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert sorted(seen) == sorted(made), "paging lists each mapping once"


def test_lambdas_errors_for_conflicts_unknown_functions_streams_and_bad_values(lambda_server):
    create_active_stream(make_client(lambda_server.endpoint), "s", shards=1)
    client = lambda_client(lambda_server.endpoint)
    first = client.create_event_source_mapping(EventSourceArn=stream_arn("s"), FunctionName="consumer", StartingPosition="LATEST")
    status, code, message = error_of(
        client.create_event_source_mapping, EventSourceArn=stream_arn("s"), FunctionName="consumer", StartingPosition="LATEST"
    )
    assert (status, code) == (409, "ResourceConflictException")
    assert first["UUID"] in message
    status, code, message = error_of(
        client.create_event_source_mapping, EventSourceArn=stream_arn("s"), FunctionName="nope", StartingPosition="LATEST"
    )
    assert (status, code, message) == (
        404,
        "ResourceNotFoundException",
        f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:nope",
    )
    status, code, _ = error_of(
        client.create_event_source_mapping, EventSourceArn=stream_arn("missing"), FunctionName="other", StartingPosition="LATEST"
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    status, code, _ = error_of(client.create_event_source_mapping, EventSourceArn=stream_arn("s"), FunctionName="other")
    assert (status, code) == (400, "InvalidParameterValueException"), "a stream source needs a StartingPosition"
    unchecked = lambda_client(lambda_server.endpoint, parameter_validation=False)
    status, code, message = error_of(
        unchecked.create_event_source_mapping,
        EventSourceArn=stream_arn("s"),
        FunctionName="other",
        StartingPosition="LATEST",
        BatchSize=20000,
    )
    assert (status, code) == (400, "ValidationException")
    assert message == (
        "1 validation error detected: Value '20000' at 'batchSize' failed to satisfy constraint: "
        "Member must have value less than or equal to 10000"
    )
    status, code, _ = error_of(client.update_event_source_mapping, UUID="00000000-0000-4000-8000-000000000000", BatchSize=5)
    assert (status, code) == (404, "ResourceNotFoundException")


def test_mappings_survive_a_kill_and_the_aws_cli_manages_them(lambda_server):
    create_active_stream(make_client(lambda_server.endpoint), "s", shards=1)
    cli = [AWS_CLI, "--endpoint-url", lambda_server.endpoint, "--region", REGION, "--output", "json", "lambda"]
    out = subprocess.run(
        [*cli, "create-event-source-mapping", "--event-source-arn", stream_arn("s"), "--function-name", "consumer",
         "--starting-position", "TRIM_HORIZON", "--batch-size", "10"],
        check=True, capture_output=True, text=True, timeout=60,
    )
    uuid = json.loads(out.stdout)["UUID"]
    lambda_server.kill()
    lambda_server.start()
    out = subprocess.run(
        [*cli[:2], lambda_server.endpoint, *cli[3:], "list-event-source-mappings", "--function-name", "consumer"],
        check=True, capture_output=True, text=True, timeout=60,
    )
    (mapping,) = json.loads(out.stdout)["EventSourceMappings"]
    assert (mapping["UUID"], mapping["BatchSize"], mapping["State"]) == (uuid, 10, "Enabled")
