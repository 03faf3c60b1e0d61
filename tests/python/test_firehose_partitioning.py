"""Firehose dynamic partitioning through boto3 against `riffle serve`: keys
from a MetadataExtraction JQ query (AWS's documented example) and from a
Lambda function's `metadata.partitionKeys`, one object per partition under
the evaluated `!{partitionKeyFrom…:…}` prefix, records whose keys cannot be
extracted in `processing-failed/`, and AWS's rules on the configuration."""

from __future__ import annotations

import base64
import json
import re

import pytest
from botocore.exceptions import ClientError

from test_firehose_crash import Bucket
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


def partitioned(bucket: str, prefix: str, processing: dict, size_mb: int = 64) -> dict:
    return {
        "RoleARN": ROLE,
        "BucketARN": f"arn:aws:s3:::{bucket}",
        "Prefix": prefix,
        "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
        "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": 1},
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
