"""What the tests of Firehose's endpoint destinations (HTTP endpoint,
OpenSearch, Splunk, Redshift) share: the backup bucket every one of them
needs, creating a stream of one destination kind, putting a batch, and
reading the error records a failed delivery leaves in the bucket."""

from __future__ import annotations

import json
import time

from test_firehose_s3 import ROLE, wait_active

# Small buffers flushed each second, so a test sees its delivery at once.
FAST_HINTS = {"SizeInMBs": 1, "IntervalInSeconds": 1}
DEADLINE_S = 60.0
POLL_INTERVAL_S = 0.05


def backup_bucket(bucket: str) -> dict:
    """An `S3Configuration` for `bucket`: the backup (or, for Redshift, the
    staging) bucket of an endpoint destination."""
    return {"RoleARN": ROLE, "BucketARN": f"arn:aws:s3:::{bucket}", "BufferingHints": dict(FAST_HINTS)}


def create_stream(firehose, s3, name: str, config: dict, member: str) -> None:
    """Creates the backup bucket, then delivery stream `name` with `config`
    as its `member` (e.g. `SplunkDestinationConfiguration`), and waits for it."""
    s3.create_bucket(Bucket=config["S3Configuration"]["BucketARN"].split(":::")[1])
    firehose.create_delivery_stream(DeliveryStreamName=name, **{member: config})
    wait_active(firehose, name)


def put(firehose, name: str, records: list[bytes]) -> None:
    answer = firehose.put_record_batch(DeliveryStreamName=name, Records=[{"Data": r} for r in records])
    assert answer["FailedPutCount"] == 0


def bucket_lines(s3, bucket: str, prefix: str, count: int) -> list[dict]:
    """The error records under `prefix` once there are `count` of them."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        lines = []
        for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            lines += [json.loads(line) for line in body.splitlines() if line]
        if len(lines) >= count:
            return lines
        assert time.monotonic() < deadline, f"{len(lines)} of {count} error records under {prefix}"
        time.sleep(POLL_INTERVAL_S)
