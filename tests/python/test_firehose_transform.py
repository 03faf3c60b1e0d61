"""Firehose record transformation through boto3 against `riffle serve`: a
delivery stream with a Lambda processor whose function is a Python handler
run unmodified through awslambdaric (a `[functions]` command); the objects
it delivers and the `processing-failed/` error records are read back from
the embedded S3 and compared exactly."""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import METRICS_LINE, RiffleServer, scrape_samples
from kinesis_helpers import REGION
from test_firehose_crash import Bucket
from test_firehose_s3 import ACCOUNT, NO_RETRIES, ROLE, clients, wait_active

HANDLERS = Path(__file__).parent / "handlers"
DEADLINE_S = 60.0
POLL_INTERVAL_S = 0.1


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def functions_toml(**timeouts: int) -> str:
    """A `[functions.<handler>]` table per handler of handlers/firehose_transform.py."""
    tables = []
    for handler in ("transform", "slow", "crash", "forgetful", "partition_by_first_word"):
        tables.append(
            f"[functions.{handler}]\n"
            f"command = [{json.dumps(sys.executable)}, \"-m\", \"awslambdaric\", \"firehose_transform.{handler}\"]\n"
            f"working_dir = {json.dumps(str(HANDLERS))}\n"
            f"timeout_seconds = {timeouts.get(handler, 10)}\n"
            "max_instances = 2\n"
        )
    return "\n".join(tables)


@pytest.fixture
def lambda_server(tmp_path):
    """A server whose config file defines the handlers as functions, with /metrics."""
    config = tmp_path / "riffle.toml"
    config.write_text(functions_toml(slow=1))
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--config", str(config), "--metrics-listen", "127.0.0.1:0"],
    )
    srv.start()
    srv.metrics_url = METRICS_LINE.search((tmp_path / "riffle-1.stdout").read_text()).group(1)
    yield srv
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def processing(function: str, **params: str) -> dict:
    parameters = [{"ParameterName": "LambdaArn", "ParameterValue": function_arn(function)}]
    parameters += [{"ParameterName": k, "ParameterValue": v} for k, v in params.items()]
    return {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": parameters}]}


def destination(bucket: str, function: str, **params: str) -> dict:
    return {
        "RoleARN": ROLE,
        "BucketARN": f"arn:aws:s3:::{bucket}",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "ProcessingConfiguration": processing(function, **params),
    }


def create(firehose, s3, name: str, function: str, **params: str) -> None:
    s3.create_bucket(Bucket=name)
    firehose.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration=destination(name, function, **params),
    )
    wait_active(firehose, name)


def wait_keys(bucket: Bucket, *patterns: str) -> dict[str, bytes]:
    """The bucket's objects once one matches each pattern (regexes on keys)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        bodies = bucket.refresh()
        if all(any(re.fullmatch(p, key) for key in bodies) for p in patterns):
            return bodies
        assert time.monotonic() < deadline, f"no object for each of {patterns} within {DEADLINE_S}s: {sorted(bodies)}"
        time.sleep(POLL_INTERVAL_S)


def only(bodies: dict[str, bytes], pattern: str) -> bytes:
    matching = [body for key, body in bodies.items() if re.fullmatch(pattern, key)]
    assert len(matching) == 1, f"{len(matching)} objects match {pattern}: {sorted(bodies)}"
    return matching[0]


DATA_KEY = r"\d{4}/\d{2}/\d{2}/\d{2}/[\w.-]+-1-[\d-]+-[0-9a-f-]+"
FAILED_KEY = r"processing-failed/\d{4}/\d{2}/\d{2}/\d{2}/[\w.-]+-1-[\d-]+-[0-9a-f-]+"


def error_records(body: bytes) -> list[dict]:
    assert body.endswith(b"\n"), body[-40:]
    return [json.loads(line) for line in body.decode().splitlines()]


def test_ok_records_are_delivered_transformed_dropped_ones_vanish_and_failed_ones_go_to_processing_failed(lambda_server):
    firehose, s3 = clients(lambda_server.endpoint)
    create(firehose, s3, "orders", "transform", NumberOfRetries="0")
    described = firehose.describe_delivery_stream(DeliveryStreamName="orders")["DeliveryStreamDescription"]
    shown = described["Destinations"][0]["ExtendedS3DestinationDescription"]["ProcessingConfiguration"]
    assert shown == processing("transform", NumberOfRetries="0")

    before = int(time.time() * 1000)
    records = [b"first\n", b"drop me\n", b"fail me\n", b"last\n"]
    out = firehose.put_record_batch(DeliveryStreamName="orders", Records=[{"Data": r} for r in records])
    assert out["FailedPutCount"] == 0

    bodies = wait_keys(Bucket(s3, "orders"), DATA_KEY, FAILED_KEY)
    assert only(bodies, DATA_KEY) == b"FIRST\nLAST\n"
    [failed] = error_records(only(bodies, FAILED_KEY))
    assert set(failed) == {
        "attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage", "attemptEndingTimestamp", "rawData", "lambdaArn",
    }
    assert failed["errorCode"] == "Lambda.ProcessingFailedStatus"
    assert failed["attemptsMade"] == 1
    assert base64.b64decode(failed["rawData"]) == b"fail me\n"
    assert failed["lambdaArn"] == function_arn("transform")
    assert before <= failed["arrivalTimestamp"] <= failed["attemptEndingTimestamp"]

    samples = scrape_samples(lambda_server.metrics_url)
    label = 'delivery_stream="orders"'
    assert samples[("riffle_firehose_succeed_processing_records_total", label)] == 3
    assert samples[("riffle_firehose_succeed_processing_bytes_total", label)] == len(b"FIRST\nLAST\n")
    assert samples[("riffle_firehose_execute_processing_successes_total", label)] == 1
    assert samples[("riffle_firehose_delivery_to_s3_records_total", label)] == 2


@pytest.mark.parametrize(
    ("function", "retries"),
    [("slow", "1"), ("crash", "2")],
    ids=["timeout", "crash"],
)
def test_a_function_that_times_out_or_crashes_sends_every_record_to_processing_failed_after_its_retries(
    lambda_server, function, retries
):
    firehose, s3 = clients(lambda_server.endpoint)
    name = f"to-{function}"
    create(firehose, s3, name, function, NumberOfRetries=retries)
    records = [b"one\n", b"two\n"]
    firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])

    bodies = wait_keys(Bucket(s3, name), FAILED_KEY)
    failed = error_records(only(bodies, FAILED_KEY))
    assert [base64.b64decode(f["rawData"]) for f in failed] == records
    assert {f["errorCode"] for f in failed} == {"Lambda.FunctionError"}
    assert {f["attemptsMade"] for f in failed} == {int(retries) + 1}
    assert not [key for key in bodies if re.fullmatch(DATA_KEY, key)], "nothing was transformed"
    label = f'delivery_stream="{name}"'
    samples = scrape_samples(lambda_server.metrics_url)
    assert samples[("riffle_firehose_execute_processing_invocations_total", label)] == int(retries) + 1
    assert samples[("riffle_firehose_execute_processing_successes_total", label)] == 0


def test_record_ids_left_out_or_repeated_fail_those_records(lambda_server):
    firehose, s3 = clients(lambda_server.endpoint)
    create(firehose, s3, "forgets", "forgetful")
    records = [b"a\n", b"b\n", b"c\n"]
    firehose.put_record_batch(DeliveryStreamName="forgets", Records=[{"Data": r} for r in records])

    bodies = wait_keys(Bucket(s3, "forgets"), DATA_KEY, FAILED_KEY)
    assert only(bodies, DATA_KEY) == b"c\n"
    failed = error_records(only(bodies, FAILED_KEY))
    assert [(f["errorCode"], base64.b64decode(f["rawData"])) for f in failed] == [
        ("Lambda.MissingRecordId", b"a\n"),
        ("Lambda.DuplicatedRecordId", b"b\n"),
    ]


def test_a_function_missing_from_the_config_file_fails_records_as_resource_not_found(lambda_server):
    firehose, s3 = clients(lambda_server.endpoint)
    create(firehose, s3, "nowhere", "not-defined")
    firehose.put_record_batch(DeliveryStreamName="nowhere", Records=[{"Data": b"lost?\n"}])

    failed = error_records(only(wait_keys(Bucket(s3, "nowhere"), FAILED_KEY), FAILED_KEY))
    assert [(f["errorCode"], f["attemptsMade"], base64.b64decode(f["rawData"])) for f in failed] == [
        ("Lambda.ResourceNotFound", 1, b"lost?\n")
    ]
    # AWS's text; Riffle's log names the function.
    assert failed[0]["errorMessage"] == (
        "The specified Lambda function does not exist. Use a different function that does exist."
    )


def test_the_source_records_are_backed_up_untransformed(lambda_server):
    firehose, s3 = clients(lambda_server.endpoint)
    s3.create_bucket(Bucket="main")
    s3.create_bucket(Bucket="raw")
    config = destination("main", "transform")
    config["S3BackupMode"] = "Enabled"
    config["S3BackupConfiguration"] = {
        "RoleARN": ROLE,
        "BucketARN": "arn:aws:s3:::raw",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
    }
    firehose.create_delivery_stream(DeliveryStreamName="backed", ExtendedS3DestinationConfiguration=config)
    wait_active(firehose, "backed")
    firehose.put_record_batch(DeliveryStreamName="backed", Records=[{"Data": b"x\n"}, {"Data": b"drop\n"}])

    assert only(wait_keys(Bucket(s3, "main"), DATA_KEY), DATA_KEY) == b"X\n"
    assert only(wait_keys(Bucket(s3, "raw"), DATA_KEY), DATA_KEY) == b"x\ndrop\n"


def test_a_kinesis_sources_records_reach_the_function_with_their_kinesis_metadata(lambda_server):
    kinesis = boto3.client("kinesis", endpoint_url=lambda_server.endpoint, region_name=REGION, config=NO_RETRIES)
    firehose, s3 = clients(lambda_server.endpoint)
    kinesis.create_stream(StreamName="clicks", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="clicks", WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    s3.create_bucket(Bucket="clicks")
    stream_arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks"
    firehose.create_delivery_stream(
        DeliveryStreamName="clicks",
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration=destination("clicks", "transform"),
    )
    wait_active(firehose, "clicks")
    kinesis.put_record(StreamName="clicks", Data=b"hello\n", PartitionKey="user-7")

    body = only(wait_keys(Bucket(s3, "clicks"), DATA_KEY), DATA_KEY)
    assert body == f"{stream_arn}|shardId-000000000000|user-7|hello\n".upper().encode()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"NumberOfRetries": "301"}, "NumberOfRetries"),
        ({"BufferSizeInMBs": "4"}, "BufferSizeInMBs"),
        ({"BufferIntervalInSeconds": "30"}, "BufferIntervalInSeconds"),
    ],
)
def test_lambda_processor_parameters_outside_awss_bounds_are_refused(lambda_server, params, message):
    firehose, s3 = clients(lambda_server.endpoint)
    with pytest.raises(ClientError) as err:
        firehose.create_delivery_stream(
            DeliveryStreamName="refused", ExtendedS3DestinationConfiguration=destination("b", "transform", **params)
        )
    assert err.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert message in err.value.response["Error"]["Message"]


def test_a_lambda_processor_without_its_arn_is_refused(lambda_server):
    firehose, _ = clients(lambda_server.endpoint)
    config = destination("b", "transform")
    config["ProcessingConfiguration"]["Processors"][0]["Parameters"] = []
    with pytest.raises(ClientError) as err:
        firehose.create_delivery_stream(DeliveryStreamName="refused", ExtendedS3DestinationConfiguration=config)
    assert err.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert "LambdaArn" in err.value.response["Error"]["Message"]


def test_sigkill_during_transformation_loses_no_acknowledged_record(lambda_server):
    """Records acknowledged before a SIGKILL (some in a buffer being
    transformed, some still buffering for 60 s) reach the bucket
    transformed after a restart: at least once, never lost."""
    from test_firehose_crash import BATCH_MAX, acknowledged, record, records_in

    firehose, s3 = clients(lambda_server.endpoint)
    s3.create_bucket(Bucket="crashing")
    config = destination("crashing", "transform")
    config["BufferingHints"] = {"SizeInMBs": 1, "IntervalInSeconds": 60}
    firehose.create_delivery_stream(DeliveryStreamName="crashing", ExtendedS3DestinationConfiguration=config)
    wait_active(firehose, "crashing")

    sent = [record(i) for i in range(3000)]
    acked: list[bytes] = []
    for i in range(0, len(sent), BATCH_MAX):
        batch = sent[i : i + BATCH_MAX]
        acked += acknowledged(batch, firehose.put_record_batch(DeliveryStreamName="crashing", Records=[{"Data": r} for r in batch]))
    assert len(acked) == len(sent)
    lambda_server.kill()
    lambda_server.start()

    firehose, s3 = clients(lambda_server.endpoint)
    bucket = Bucket(s3, "crashing")
    wanted = {r.upper() for r in acked}
    deadline = time.monotonic() + 60 + DEADLINE_S
    while True:
        bodies = bucket.refresh()
        seen = {r for key, body in bodies.items() for r in records_in(body, {r.upper() for r in sent}, key)}
        missing = wanted - seen
        if not missing:
            break
        assert time.monotonic() < deadline, f"{len(missing)} of {len(wanted)} acknowledged records not delivered"
        time.sleep(0.5)
