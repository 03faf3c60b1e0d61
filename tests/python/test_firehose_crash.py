"""Firehose across a crash: records a delivery stream acknowledged, still in
its buffer or in an object being stored when `riffle serve` is SIGKILLed,
reach the bucket after a restart on the same data directory. At least once:
an object may be delivered again, a record is never lost, and every object
is whole records (a crash never leaves a torn object in the bucket)."""

from __future__ import annotations

import threading
import time

import boto3

from kinesis_helpers import REGION
from test_firehose_s3 import ACCOUNT, NO_RETRIES, ROLE, clients, wait_active

# IntervalInSeconds is 60 so that records sit in the buffer when the server
# is killed; after the restart they are due 60 s after they arrived. The
# deadline bounds that wait (plus a slow debug build), it is not a sleep.
LONG_INTERVAL_S = 60
RECOVERY_DEADLINE_S = LONG_INTERVAL_S + 90.0
POLL_INTERVAL_S = 0.5
# PutRecordBatch takes at most 500 records (the botocore model's
# PutRecordBatchRequestEntryList max).
BATCH_MAX = 500


def record(i: int, size: int = 1024) -> bytes:
    """A unique, newline-terminated record of `size` bytes: an object split
    on newlines must give back exactly records that were sent."""
    head = f"record-{i:07d}-".encode()
    return head + b"x" * (size - len(head) - 1) + b"\n"


def acknowledged(records: list[bytes], response: dict) -> list[bytes]:
    """The records of a PutRecordBatch the service took: all of them when
    FailedPutCount is 0, otherwise those whose entry has a RecordId."""
    if response["FailedPutCount"] == 0:
        return records
    return [r for r, entry in zip(records, response["RequestResponses"]) if "RecordId" in entry]


class Bucket:
    """The objects of a bucket, each read once (objects are immutable)."""

    def __init__(self, s3, name: str):
        self.s3, self.name, self.bodies = s3, name, {}

    def refresh(self) -> dict[str, bytes]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.name)
        for obj in (o for page in pages for o in page.get("Contents", [])):
            if obj["Key"] not in self.bodies:
                self.bodies[obj["Key"]] = self.s3.get_object(Bucket=self.name, Key=obj["Key"])["Body"].read()
        return self.bodies


def records_in(body: bytes, sent: set[bytes], key: str) -> list[bytes]:
    """The records of one object, asserting it is whole records that were sent."""
    assert body.endswith(b"\n"), f"{key} ends in a torn record: {body[-40:]!r}"
    lines = [line + b"\n" for line in body[:-1].split(b"\n")]
    torn = [line[:40] for line in lines if line not in sent]
    assert not torn, f"{key} holds bytes that are no whole record sent: {torn[:3]}"
    return lines


def wait_all_delivered(bucket: Bucket, acked: set[bytes], sent: set[bytes]) -> dict[str, bytes]:
    """Polls until every acknowledged record is in the bucket's objects
    (duplicates allowed), checking each object is whole records."""
    deadline = time.monotonic() + RECOVERY_DEADLINE_S
    while True:
        bodies = bucket.refresh()
        seen = {r for key, body in bodies.items() for r in records_in(body, sent, key)}
        missing = acked - seen
        if not missing:
            return bodies
        assert time.monotonic() < deadline, (
            f"{len(missing)} of {len(acked)} acknowledged records not delivered within "
            f"{RECOVERY_DEADLINE_S}s of the restart, e.g. {sorted(missing)[0][:20]!r}"
        )
        time.sleep(POLL_INTERVAL_S)


def long_buffer(bucket: str) -> dict:
    return {
        "RoleARN": ROLE,
        "BucketARN": f"arn:aws:s3:::{bucket}",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": LONG_INTERVAL_S},
    }


def test_sigkill_with_records_buffered_and_an_object_in_flight_loses_no_acknowledged_record(server):
    firehose, s3 = clients(server.endpoint)
    s3.create_bucket(Bucket="crash")
    firehose.create_delivery_stream(
        DeliveryStreamName="crashing", DeliveryStreamType="DirectPut", ExtendedS3DestinationConfiguration=long_buffer("crash")
    )
    wait_active(firehose, "crashing")

    # 2,000 records of 1 KiB (about two size-triggered objects of 1 MiB and a
    # remainder left in the 60 s buffer), then large ones last: the final
    # batch fills a buffer, so an object is being made or stored as the
    # server dies.
    sent = [record(i) for i in range(2000)] + [record(2000 + i, 200 * 1024) for i in range(8)]
    acked: list[bytes] = []
    batches = [sent[i : i + BATCH_MAX] for i in range(0, 2000, BATCH_MAX)] + [sent[2000:]]
    for batch in batches:
        out = firehose.put_record_batch(DeliveryStreamName="crashing", Records=[{"Data": r} for r in batch])
        acked += acknowledged(batch, out)
    assert len(acked) > 2000, f"only {len(acked)} of {len(sent)} records acknowledged"

    server.kill()
    server.start()
    firehose, s3 = clients(server.endpoint)
    bodies = wait_all_delivered(Bucket(s3, "crash"), set(acked), set(sent))
    # Size-triggered objects were made before the crash, the buffered
    # remainder after it: the data spans more than one object.
    assert len(bodies) >= 2, sorted(bodies)
    assert firehose.describe_delivery_stream(DeliveryStreamName="crashing")["DeliveryStreamDescription"][
        "DeliveryStreamStatus"
    ] == "ACTIVE"


def test_sigkill_mid_stream_of_a_kinesis_source_loses_no_acknowledged_kinesis_record(server):
    kinesis = boto3.client("kinesis", endpoint_url=server.endpoint, region_name=REGION, config=NO_RETRIES)
    firehose, s3 = clients(server.endpoint)
    kinesis.create_stream(StreamName="events", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="events", WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    s3.create_bucket(Bucket="sourced")
    firehose.create_delivery_stream(
        DeliveryStreamName="events-to-s3",
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/events", "RoleARN": ROLE},
        ExtendedS3DestinationConfiguration=long_buffer("sourced"),
    )
    wait_active(firehose, "events-to-s3")

    # A producer puts 100-record batches until the server dies under it;
    # a record is acknowledged when its PutRecords entry has a sequence number.
    sent: list[bytes] = []
    acked: list[bytes] = []
    stop = threading.Event()

    def produce() -> None:
        i = 0
        while not stop.is_set():
            batch = [record(i + n) for n in range(100)]
            i += len(batch)
            sent.extend(batch)
            try:
                out = kinesis.put_records(
                    StreamName="events", Records=[{"Data": d, "PartitionKey": f"k{n}"} for n, d in enumerate(batch)]
                )
            except Exception:  # the connection dies with the server: unknown, not acknowledged
                return
            acked.extend(d for d, entry in zip(batch, out["Records"]) if "SequenceNumber" in entry)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        # Kill once a size-triggered object proves delivery is under way
        # (about 1 MiB of records), with the producer still sending.
        bucket = Bucket(s3, "sourced")
        deadline = time.monotonic() + RECOVERY_DEADLINE_S
        while not bucket.refresh():
            assert producer.is_alive(), "the producer stopped before the crash"
            assert time.monotonic() < deadline, "no size-triggered object before the crash"
            time.sleep(POLL_INTERVAL_S)
        server.kill()
    finally:
        stop.set()
        producer.join(timeout=60)
    assert not producer.is_alive()
    assert len(acked) > 1000, f"only {len(acked)} records acknowledged before the crash"

    server.start()
    firehose, s3 = clients(server.endpoint)
    wait_all_delivered(Bucket(s3, "sourced"), set(acked), set(sent))
