"""Firehose dynamic partitioning through boto3 against `riffle serve`: keys
from a MetadataExtraction JQ query (AWS's documented example) and from a
Lambda function's `metadata.partitionKeys`, one object per partition under
the evaluated `!{partitionKeyFrom…:…}` prefix, records whose keys cannot be
extracted in `processing-failed/`, and AWS's rules on the configuration."""

from __future__ import annotations

import base64
import gzip
import json
import re
import time

import pytest
from botocore.exceptions import ClientError

from test_firehose_crash import POLL_INTERVAL_S, RECOVERY_DEADLINE_S, Bucket, acknowledged
from test_firehose_s3 import ROLE, clients, wait_active
from test_firehose_transform import function_arn, lambda_server, wait_keys  # noqa: F401 (fixture)

# AWS's example record ("Partitioning keys with inline parsing").
def click(customer: str, device: str) -> bytes:
    return json.dumps(
        {"type": {"device": device, "event": "user_clicked_submit_button"}, "customer_id": customer,
         "event_timestamp": 1565382027, "region": "sample_value"}
    ).encode()


def extraction(query: str, delimiter: bool = True) -> dict:
    processors = [{
        "Type": "MetadataExtraction",
        "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": query},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
        ],
    }]
    if delimiter:
        processors.append({"Type": "AppendDelimiterToRecord"})
    return {"Enabled": True, "Processors": processors}


def partitioned(bucket: str, prefix: str, processing: dict, size_mb: int = 64, interval_s: int = 1) -> dict:
    return {
        "RoleARN": ROLE,
        "BucketARN": f"arn:aws:s3:::{bucket}",
        "Prefix": prefix,
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": interval_s},
        "DynamicPartitioningConfiguration": {"Enabled": True, "RetryOptions": {"DurationInSeconds": 300}},
        "ProcessingConfiguration": processing,
    }


def create(firehose, s3, name: str, config: dict) -> None:
    s3.create_bucket(Bucket=name)
    firehose.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=config)
    wait_active(firehose, name)


def under(bodies: dict[str, bytes], prefix: str) -> bytes:
    """The one object whose key starts with `prefix`."""
    matching = [body for key, body in bodies.items() if key.startswith(prefix)]
    assert len(matching) == 1, f"{len(matching)} objects under {prefix}: {sorted(bodies)}"
    return matching[0]


def test_awss_documented_query_partitions_records_by_customer_and_device(lambda_server):
    firehose, s3 = clients(lambda_server.endpoint)
    query = "{customer_id: .customer_id, device: .type.device}"
    prefix = "data/customer_id=!{partitionKeyFromQuery:customer_id}/device=!{partitionKeyFromQuery:device}/!{timestamp:yyyy}/"
    create(firehose, s3, "clicks", partitioned("clicks", prefix, extraction(query)))
    shown = firehose.describe_delivery_stream(DeliveryStreamName="clicks")["DeliveryStreamDescription"][
        "Destinations"][0]["ExtendedS3DestinationDescription"]
    assert shown["DynamicPartitioningConfiguration"] == {"Enabled": True, "RetryOptions": {"DurationInSeconds": 300}}
    assert shown["ProcessingConfiguration"] == extraction(query)

    records = [click("1", "mobile"), click("2", "desktop"), b"not json", click("1", "mobile"), click("1", "tablet")]
    firehose.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": r} for r in records])

    year = r"\d{4}"
    bodies = wait_keys(
        Bucket(s3, "clicks"),
        rf"data/customer_id=1/device=mobile/{year}/clicks-1-.*",
        rf"data/customer_id=2/device=desktop/{year}/clicks-1-.*",
        rf"data/customer_id=1/device=tablet/{year}/clicks-1-.*",
        r"errors/processing-failed/clicks-1-.*",
    )
    assert under(bodies, "data/customer_id=1/device=mobile/") == records[0] + b"\n" + records[3] + b"\n"
    assert under(bodies, "data/customer_id=2/device=desktop/") == records[1] + b"\n"
    assert under(bodies, "data/customer_id=1/device=tablet/") == records[4] + b"\n"
    [failed] = [json.loads(line) for line in under(bodies, "errors/processing-failed/").decode().splitlines()]
    assert failed["errorCode"] == "DynamicPartitioning.MetadataExtractionFailed"
    assert base64.b64decode(failed["rawData"]) == b"not json"
    assert "lambdaArn" not in failed


def test_a_lambda_functions_partition_keys_name_the_objects(lambda_server):
    firehose, s3 = clients(lambda_server.endpoint)
    processing = {"Enabled": True, "Processors": [{"Type": "Lambda", "Parameters": [
        {"ParameterName": "LambdaArn", "ParameterValue": function_arn("partition_by_first_word")}]}]}
    create(firehose, s3, "words", partitioned("words", "by-word/!{partitionKeyFromLambda:word}/", processing))
    firehose.put_record_batch(
        DeliveryStreamName="words", Records=[{"Data": d} for d in (b"apple 1\n", b"pear 2\n", b"apple 3\n")]
    )
    bodies = wait_keys(Bucket(s3, "words"), r"by-word/apple/.*words-1-.*", r"by-word/pear/.*words-1-.*")
    assert under(bodies, "by-word/apple/") == b"apple 1\napple 3\n"
    assert under(bodies, "by-word/pear/") == b"pear 2\n"


def refused(call) -> str:
    with pytest.raises(ClientError) as err:
        call()
    assert err.value.response["Error"]["Code"] == "InvalidArgumentException", err.value.response
    return err.value.response["Error"]["Message"]


def test_awss_rules_on_dynamic_partitioning(lambda_server):
    firehose, s3 = clients(lambda_server.endpoint)
    prefix = "p/!{partitionKeyFromQuery:k}/"
    small = partitioned("b", prefix, extraction("{k: .k}"), size_mb=5)
    assert "at least 64" in refused(
        lambda: firehose.create_delivery_stream(DeliveryStreamName="small", ExtendedS3DestinationConfiguration=small)
    )
    plain = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::b", "ProcessingConfiguration": extraction("{k: .k}")}
    assert "dynamic partitioning" in refused(
        lambda: firehose.create_delivery_stream(DeliveryStreamName="plain", ExtendedS3DestinationConfiguration=plain)
    )
    bad = partitioned("b", prefix, extraction("{k: .k"))
    assert "not a valid JQ query" in refused(
        lambda: firehose.create_delivery_stream(DeliveryStreamName="bad", ExtendedS3DestinationConfiguration=bad)
    )

    create(firehose, s3, "keeps", partitioned("keeps", prefix, extraction("{k: .k}")))
    version = firehose.describe_delivery_stream(DeliveryStreamName="keeps")["DeliveryStreamDescription"]["VersionId"]
    assert "cannot be disabled" in refused(
        lambda: firehose.update_destination(
            DeliveryStreamName="keeps", CurrentDeliveryStreamVersionId=version, DestinationId="destinationId-000000000001",
            ExtendedS3DestinationUpdate={"DynamicPartitioningConfiguration": {"Enabled": False}},
        )
    )
    create(firehose, s3, "never", {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::never"})
    version = firehose.describe_delivery_stream(DeliveryStreamName="never")["DeliveryStreamDescription"]["VersionId"]
    assert "only be enabled when the Firehose stream is created" in refused(
        lambda: firehose.update_destination(
            DeliveryStreamName="never", CurrentDeliveryStreamVersionId=version, DestinationId="destinationId-000000000001",
            ExtendedS3DestinationUpdate={
                "DynamicPartitioningConfiguration": {"Enabled": True},
                "BufferingHints": {"SizeInMBs": 64},
            },
        )
    )


# Each partition's buffer is delivered PARTITION_INTERVAL_S after its own
# first record: the puts below are spaced STEP_S apart, 1.5 s away from
# either partition's deadline either way.
PARTITION_INTERVAL_S = 6
STEP_S = 3.0


def put(firehose, name: str, *records: bytes) -> list[bytes]:
    out = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    assert out["FailedPutCount"] == 0, out
    return list(records)


def lines_by_partition(bodies: dict[str, bytes], prefix: str) -> dict[str, list[list[bytes]]]:
    """Each partition's objects (by key, so in time order) as lists of lines."""
    out: dict[str, list[list[bytes]]] = {}
    for key in sorted(bodies):
        if key.startswith(prefix):
            partition = key[len(prefix):].split("/", 1)[0]
            out.setdefault(partition, []).append(bodies[key].splitlines())
    return out


def test_each_partition_is_delivered_when_its_own_interval_passes(server):
    firehose, s3 = clients(server.endpoint)
    processing = extraction("{c: .c}")
    create(firehose, s3, "rates", partitioned("rates", "p/!{partitionKeyFromQuery:c}/", processing,
                                              interval_s=PARTITION_INTERVAL_S))
    rec = lambda c, n: json.dumps({"c": c, "n": n}).encode()  # noqa: E731
    put(firehose, "rates", rec("a", 1))                      # a's buffer: due at 6 s
    time.sleep(STEP_S)
    put(firehose, "rates", rec("b", 1))                      # b's buffer: due at 9 s
    time.sleep(1.5 * STEP_S)
    put(firehose, "rates", rec("b", 2), rec("a", 2))         # 7.5 s: b's buffer still open, a's delivered
    bucket = Bucket(s3, "rates")
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while sum(len(b.splitlines()) for b in bucket.refresh().values()) < 4:
        assert time.monotonic() < deadline, sorted(bucket.bodies)
        time.sleep(POLL_INTERVAL_S)
    got = lines_by_partition(bucket.bodies, "p/")
    # One lane buffer for all partitions would have cut b's records at a's
    # deadline; b's own buffer holds both of them.
    assert got["b"] == [[rec("b", 1), rec("b", 2)]], got
    assert got["a"] == [[rec("a", 1)], [rec("a", 2)]], got


def test_sigkill_while_a_partition_buffer_holds_records_loses_none_of_them(server):
    firehose, s3 = clients(server.endpoint)
    processing = extraction("{c: .c}")
    create(firehose, s3, "held", partitioned("held", "p/!{partitionKeyFromQuery:c}/", processing,
                                             interval_s=PARTITION_INTERVAL_S))
    rec = lambda c, n: json.dumps({"c": c, "n": n, "pad": "x" * 200}).encode()  # noqa: E731
    acked = put(firehose, "held", *[rec("early", n) for n in range(50)])
    time.sleep(STEP_S)
    acked += put(firehose, "held", *[rec("late", n) for n in range(50)])
    # Once the early partition is delivered, records of the late one (read
    # after the early one's) are still only in its buffer; then more of
    # both arrive and the server dies before the late buffer is due.
    bucket = Bucket(s3, "held")
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while not any(key.startswith("p/early/") for key in bucket.refresh()):
        assert time.monotonic() < deadline, "the early partition was never delivered"
        time.sleep(0.1)
    assert not any(key.startswith("p/late/") for key in bucket.bodies), sorted(bucket.bodies)
    batch = [rec(c, 100 + n) for n in range(100) for c in ("early", "late")]
    out = firehose.put_record_batch(DeliveryStreamName="held", Records=[{"Data": r} for r in batch])
    acked += acknowledged(batch, out)
    server.kill()
    server.start()
    firehose, s3 = clients(server.endpoint)
    bucket = Bucket(s3, "held")
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while True:
        got = lines_by_partition(bucket.refresh(), "p/")
        seen = {line for objects in got.values() for lines in objects for line in lines}
        missing = set(acked) - seen
        if not missing:
            break
        assert time.monotonic() < deadline, f"{len(missing)} acknowledged records lost, e.g. {sorted(missing)[0][:40]!r}"
        time.sleep(POLL_INTERVAL_S)
    for partition, objects in got.items():
        for lines in objects:
            assert all(json.loads(line)["c"] == partition for line in lines), (partition, lines[:2])


def logs_payload(message_type: str, messages: list[str]) -> bytes:
    """A CloudWatch Logs subscription payload, gzipped as Logs sends it to Firehose."""
    events = [{"id": f"{i:056d}", "timestamp": 1510109208016 + i, "message": m} for i, m in enumerate(messages)]
    return gzip.compress(json.dumps({
        "messageType": message_type, "owner": "123456789012", "logGroup": "/app/web", "logStream": "i-0abc",
        "subscriptionFilters": ["to-firehose"], "logEvents": events,
    }).encode())


CLOUDWATCH_LOGS = [
    {"Type": "Decompression", "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]},
    {"Type": "CloudWatchLogProcessing", "Parameters": [{"ParameterName": "DataMessageExtraction", "ParameterValue": "true"}]},
]


def test_cloudwatch_logs_payloads_are_delivered_as_their_messages(server):
    firehose, s3 = clients(server.endpoint)
    config = {
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::logs", "Prefix": "logs/",
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "ProcessingConfiguration": {"Enabled": True, "Processors": CLOUDWATCH_LOGS},
    }
    create(firehose, s3, "logs", config)
    control = logs_payload("CONTROL_MESSAGE", ["CWL CONTROL MESSAGE: Checking health of destination Firehose."])
    put(firehose, "logs", logs_payload("DATA_MESSAGE", ["GET /a 200\n", "GET /b 404\n"]), control,
        b"plain, not gzip", logs_payload("DATA_MESSAGE", ["POST /c 201\n"]))
    bodies = wait_keys(Bucket(s3, "logs"), r"logs/.*logs-1-.*", r"errors/decompression-failed/logs-1-.*")
    assert under(bodies, "logs/") == b"GET /a 200\nGET /b 404\nPOST /c 201\n"
    [failed] = [json.loads(line) for line in under(bodies, "errors/decompression-failed/").splitlines()]
    assert base64.b64decode(failed["rawData"]) == b"plain, not gzip"


def test_a_newline_delimiter_needs_no_dynamic_partitioning_but_deaggregation_does(server):
    firehose, s3 = clients(server.endpoint)
    config = {
        "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lines", "Prefix": "lines/",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "ProcessingConfiguration": {"Enabled": True, "Processors": [{"Type": "AppendDelimiterToRecord"}]},
    }
    create(firehose, s3, "lines", config)
    put(firehose, "lines", b'{"n":1}', b'{"n":2}', b"three")
    bodies = wait_keys(Bucket(s3, "lines"), r"lines/.*lines-1-.*")
    assert under(bodies, "lines/") == b'{"n":1}\n{"n":2}\nthree\n'

    deaggregation = {"Type": "RecordDeAggregation", "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]}
    plain = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lines",
             "ProcessingConfiguration": {"Enabled": True, "Processors": [deaggregation]}}
    assert refused(
        lambda: firehose.create_delivery_stream(DeliveryStreamName="agg-plain", ExtendedS3DestinationConfiguration=plain)
    ) == "Processor type RecordDeAggregation is only supported when dynamic partitioning is enabled."


def test_log_messages_and_aggregated_records_are_partitioned_one_by_one(server):
    firehose, s3 = clients(server.endpoint)
    query = extraction("{customer_id: .customer_id}")
    logs = {"Enabled": True, "Processors": CLOUDWATCH_LOGS + query["Processors"]}
    create(firehose, s3, "cwl", partitioned("cwl", "c=!{partitionKeyFromQuery:customer_id}/", logs))
    messages = [json.dumps({"customer_id": c, "path": p}) for c, p in (("1", "/a"), ("2", "/b"), ("1", "/c"))]
    put(firehose, "cwl", logs_payload("DATA_MESSAGE", messages))
    bodies = wait_keys(Bucket(s3, "cwl"), r"c=1/.*cwl-1-.*", r"c=2/.*cwl-1-.*")
    assert under(bodies, "c=1/") == (messages[0] + "\n" + messages[2] + "\n").encode()
    assert under(bodies, "c=2/") == (messages[1] + "\n").encode()

    deaggregation = {"Type": "RecordDeAggregation", "Parameters": [{"ParameterName": "SubRecordType", "ParameterValue": "JSON"}]}
    aggregated = {"Enabled": True, "Processors": [deaggregation] + query["Processors"]}
    create(firehose, s3, "agg", partitioned("agg", "c=!{partitionKeyFromQuery:customer_id}/", aggregated))
    # AWS's valid inputs: objects side by side, and one a line.
    put(firehose, "agg", b'{"customer_id":"1","n":1}{"customer_id":"2","n":2}', b'{"customer_id":"1","n":3}\n{"customer_id":"1","n":4}\n')
    bodies = wait_keys(Bucket(s3, "agg"), r"c=1/.*agg-1-.*", r"c=2/.*agg-1-.*")
    assert under(bodies, "c=1/") == b'{"customer_id":"1","n":1}\n{"customer_id":"1","n":3}\n{"customer_id":"1","n":4}\n'
    assert under(bodies, "c=2/") == b'{"customer_id":"2","n":2}\n'


# AWS's default quota of active partitions per Firehose stream ("Buffer data
# for dynamic partitioning").
ACTIVE_PARTITIONS_MAX = 500


def test_records_of_a_partition_past_the_active_limit_go_to_the_error_output(server):
    firehose, s3 = clients(server.endpoint)
    create(firehose, s3, "wide", partitioned("wide", "p/!{partitionKeyFromQuery:c}/", extraction("{c: .c}"),
                                             interval_s=PARTITION_INTERVAL_S))
    rec = lambda c: json.dumps({"c": f"{c:03d}"}).encode()  # noqa: E731
    # One PutRecordBatch, so that every record lands in the same chunk and
    # all 500 partitions are active when the 501st appears.
    sent = [rec(c) for c in range(ACTIVE_PARTITIONS_MAX)]
    put(firehose, "wide", *sent)
    put(firehose, "wide", rec(ACTIVE_PARTITIONS_MAX), rec(0))
    bucket = Bucket(s3, "wide")
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while True:
        bodies = bucket.refresh()
        errors = [k for k in bodies if k.startswith("errors/")]
        delivered = lines_by_partition(bodies, "p/")
        if errors and len(delivered) == ACTIVE_PARTITIONS_MAX and len(delivered["000"][0]) == 2:
            break
        assert time.monotonic() < deadline, f"{len(delivered)} partitions, errors {errors}"
        time.sleep(POLL_INTERVAL_S)
    assert all(key.startswith("errors/processing-failed/") for key in errors), errors
    failed = [json.loads(line) for key in errors for line in bodies[key].splitlines()]
    assert [base64.b64decode(f["rawData"]) for f in failed] == [rec(ACTIVE_PARTITIONS_MAX)]
    assert failed[0]["errorCode"] == "DynamicPartitioning.ActivePartitionsLimitExceeded"
    # A known partition still takes records past the limit.
    assert delivered["000"] == [[rec(0), rec(0)]]
