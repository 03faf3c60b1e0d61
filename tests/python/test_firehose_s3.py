"""Firehose to S3 on one port, through boto3 and the aws CLI against `riffle
serve`: a DirectPut delivery stream to a bucket of the embedded S3, records
in with PutRecordBatch, and the object they make read back through the S3
API; the edge's SigV4 scopes, identity policies, CORS and audit log for the
firehose and s3 signing names."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import AWS_CLI, RiffleServer
from kinesis_helpers import REGION

# A bound on waiting for delivery (IntervalInSeconds is 1), never a sleep-to-hope.
DELIVERY_DEADLINE_S = 30.0
POLL_INTERVAL_S = 0.1
ACCOUNT = "000000000000"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/firehose-delivery"
NO_RETRIES = Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})


def key_pattern(stream: str) -> re.Pattern:
    """Firehose's default prefix, `YYYY/MM/dd/HH/` in UTC, then
    `<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<random>`."""
    return re.compile(
        r"\d{4}/\d{2}/\d{2}/\d{2}/" + re.escape(stream) + r"-1-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f-]+"
    )


def clients(endpoint: str, key_id: str | None = None, secret: str | None = None):
    """boto3 firehose and s3 clients for `endpoint` (conftest's keys unless given)."""
    creds = {}
    if key_id:
        creds = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
    make = lambda service: boto3.client(  # noqa: E731
        service, endpoint_url=endpoint, region_name=REGION, config=NO_RETRIES, **creds
    )
    return make("firehose"), make("s3")


def s3_destination(bucket: str) -> dict:
    return {
        "RoleARN": ROLE,
        "BucketARN": f"arn:aws:s3:::{bucket}",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
    }


def wait_active(firehose, name: str) -> None:
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while True:
        status = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"][
            "DeliveryStreamStatus"
        ]
        if status == "ACTIVE":
            return
        assert time.monotonic() < deadline, f"{name} still {status}"
        time.sleep(POLL_INTERVAL_S)


def wait_objects(s3, bucket: str) -> list[dict]:
    """The bucket's objects once delivery has written at least one."""
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while True:
        contents = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        if contents:
            return contents
        assert time.monotonic() < deadline, f"nothing delivered to {bucket} within {DELIVERY_DEADLINE_S}s"
        time.sleep(POLL_INTERVAL_S)


def test_put_record_batch_arrives_as_one_object_of_the_records_concatenated(server):
    firehose, s3 = clients(server.endpoint)
    s3.create_bucket(Bucket="deliveries")
    firehose.create_delivery_stream(
        DeliveryStreamName="clicks",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration=s3_destination("deliveries"),
    )
    wait_active(firehose, "clicks")
    records = [f'{{"click":{i}}}\n'.encode() for i in range(50)]
    put = firehose.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": r} for r in records])
    assert put["FailedPutCount"] == 0
    assert all("RecordId" in r for r in put["RequestResponses"])

    [obj] = wait_objects(s3, "deliveries")
    assert key_pattern("clicks").fullmatch(obj["Key"]), obj["Key"]
    body = s3.get_object(Bucket="deliveries", Key=obj["Key"])["Body"].read()
    assert body == b"".join(records)
    # The object is a file of the embedded S3 under the data directory.
    assert (server.data_dir / "s3" / "deliveries").is_dir()


def aws(endpoint: str, *args: str) -> str:
    """Runs the aws CLI against `endpoint` (in conftest's offline environment)."""
    argv = [str(AWS_CLI), "--endpoint-url", endpoint, "--region", REGION, "--output", "json", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_aws_cli_delivers_to_a_bucket_it_made_and_lists_and_reads_the_object(server):
    endpoint = server.endpoint
    aws(endpoint, "s3", "mb", "s3://cli-deliveries")
    aws(
        endpoint,
        "firehose",
        "create-delivery-stream",
        "--delivery-stream-name",
        "cli-stream",
        "--delivery-stream-type",
        "DirectPut",
        "--extended-s3-destination-configuration",
        json.dumps(s3_destination("cli-deliveries")),
    )
    firehose, s3 = clients(endpoint)
    wait_active(firehose, "cli-stream")
    # awscli v1 sends a blob given as text as those bytes.
    out = json.loads(
        aws(
            endpoint,
            "firehose",
            "put-record-batch",
            "--delivery-stream-name",
            "cli-stream",
            "--records",
            json.dumps([{"Data": "alpha\n"}, {"Data": "beta\n"}]),
        )
    )
    assert out["FailedPutCount"] == 0
    [obj] = wait_objects(s3, "cli-deliveries")
    listing = aws(endpoint, "s3", "ls", "s3://cli-deliveries", "--recursive")
    assert obj["Key"] in listing
    assert key_pattern("cli-stream").search(listing), listing
    assert aws(endpoint, "s3", "cp", f"s3://cli-deliveries/{obj['Key']}", "-") == "alpha\nbeta\n"


KEY_ID, SECRET = "AKIDFIREHOSE", "firehose-secret"


@pytest.fixture
def signed_server(tmp_path):
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--access-key-id", KEY_ID, "--secret-access-key", SECRET],
    )
    srv.start()
    yield srv
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def test_signatures_are_verified_with_the_firehose_and_s3_signing_names(signed_server):
    firehose, s3 = clients(signed_server.endpoint, KEY_ID, SECRET)
    s3.create_bucket(Bucket="signed")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["signed"]
    s3.put_object(Bucket="signed", Key="a/b c+d.txt", Body=b"payload")
    assert s3.get_object(Bucket="signed", Key="a/b c+d.txt")["Body"].read() == b"payload"
    firehose.create_delivery_stream(
        DeliveryStreamName="signed-stream", ExtendedS3DestinationConfiguration=s3_destination("signed")
    )
    assert firehose.list_delivery_streams()["DeliveryStreamNames"] == ["signed-stream"]

    bad_firehose, bad_s3 = clients(signed_server.endpoint, KEY_ID, "wrong-secret")
    with pytest.raises(ClientError) as refused:
        bad_firehose.list_delivery_streams()
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
    with pytest.raises(ClientError) as refused:
        bad_s3.list_buckets()
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as unknown:
        clients(signed_server.endpoint, "AKIDNOBODY", SECRET)[1].list_buckets()
    assert unknown.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_a_firehose_call_signed_for_kinesis_is_refused_for_its_scope(signed_server):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    def list_signed_as(signing_name: str) -> tuple[int, dict]:
        url = signed_server.endpoint + "/"
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Firehose_20150804.ListDeliveryStreams"}
        request = AWSRequest(method="POST", url=url, data=b"{}", headers=headers)
        SigV4Auth(Credentials(KEY_ID, SECRET), signing_name, REGION).add_auth(request)
        prepared = urllib.request.Request(url, data=b"{}", headers=dict(request.headers), method="POST")
        try:
            with urllib.request.urlopen(prepared, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    assert list_signed_as("firehose") == (200, {"DeliveryStreamNames": [], "HasMoreDeliveryStreams": False})
    status, body = list_signed_as("kinesis")
    assert status == 400
    assert body["__type"] == "InvalidSignatureException"
    assert body["message"] == "Credential should be scoped to correct service: 'firehose'. "


PUT_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["firehose:PutRecord", "firehose:PutRecordBatch", "firehose:DescribeDeliveryStream"],
            "Resource": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/allowed",
        }
    ],
}
ADMIN, ADMIN_SECRET = "AKIDFHADMIN", "admin-secret"
PRODUCER, PRODUCER_SECRET = "AKIDFHPRODUCER", "producer-secret"


def test_an_identity_policy_limits_a_key_to_put_records_on_one_delivery_stream(tmp_path):
    policy = tmp_path / "producer.json"
    policy.write_text(json.dumps(PUT_ONLY))
    config = tmp_path / "riffle.toml"
    config.write_text(
        f'[credentials]\n{ADMIN} = "{ADMIN_SECRET}"\n{PRODUCER} = "{PRODUCER_SECRET}"\n\n'
        f'[policies]\n{PRODUCER} = "{policy}"\n'
    )
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=["--config", str(config)])
    srv.start()
    try:
        admin, admin_s3 = clients(srv.endpoint, ADMIN, ADMIN_SECRET)
        admin_s3.create_bucket(Bucket="governed")
        for name in ["allowed", "other"]:
            admin.create_delivery_stream(DeliveryStreamName=name, ExtendedS3DestinationConfiguration=s3_destination("governed"))
            wait_active(admin, name)
        producer, producer_s3 = clients(srv.endpoint, PRODUCER, PRODUCER_SECRET)
        out = producer.put_record_batch(DeliveryStreamName="allowed", Records=[{"Data": b"ok"}])
        assert out["FailedPutCount"] == 0
        with pytest.raises(ClientError) as denied:
            producer.put_record_batch(DeliveryStreamName="other", Records=[{"Data": b"no"}])
        error = denied.value.response["Error"]
        assert error["Code"] == "AccessDeniedException"
        assert error["Message"] == (
            f"User: arn:aws:iam::{ACCOUNT}:user/{PRODUCER} is not authorized to perform: firehose:PutRecordBatch "
            f"on resource: arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/other "
            "because no identity-based policy allows the firehose:PutRecordBatch action"
        )
        with pytest.raises(ClientError) as denied:
            producer.delete_delivery_stream(DeliveryStreamName="allowed")
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
        # The policy grants no s3 action: the bucket is closed to the key.
        with pytest.raises(ClientError) as denied:
            producer_s3.list_objects_v2(Bucket="governed")
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
        assert srv.terminate() == 0


def raw_exchange(endpoint: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    import socket

    parts = urlsplit(endpoint)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed before a response head: {raw!r}"
            raw += chunk
        head, body = raw.split(b"\r\n\r\n", 1)
        lines = head.decode("ascii").split("\r\n")
        headers = dict((k.lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines[1:]))
        return int(lines[0].split(" ")[1]), headers, body


def test_a_browser_preflight_for_a_firehose_call_is_answered_and_calls_carry_cors_headers(server):
    host = urlsplit(server.endpoint).netloc
    asked = "authorization,content-type,x-amz-date,x-amz-target"
    status, headers, _ = raw_exchange(
        server.endpoint,
        (
            f"OPTIONS / HTTP/1.1\r\nHost: {host}\r\nAccess-Control-Request-Method: POST\r\n"
            f"Access-Control-Request-Headers: {asked}\r\nOrigin: http://localhost:3000\r\n\r\n"
        ).encode(),
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-allow-headers"] == asked

    firehose, _ = clients(server.endpoint)
    seen = {}
    firehose.meta.events.register(
        "before-send.firehose.*", lambda request, **_: request.headers.__setitem__("Origin", "http://localhost:3000")
    )
    firehose.meta.events.register("after-call.firehose.*", lambda http_response, **_: seen.update(http_response.headers))
    firehose.list_delivery_streams()
    assert seen.get("access-control-allow-origin") == "*", seen


def test_firehose_calls_are_audited_with_their_event_source(tmp_path):
    audit = tmp_path / "audit.jsonl"
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=["--audit-log", str(audit)])
    srv.start()
    firehose, s3 = clients(srv.endpoint)
    s3.create_bucket(Bucket="audited")
    firehose.create_delivery_stream(DeliveryStreamName="audited", ExtendedS3DestinationConfiguration=s3_destination("audited"))
    with pytest.raises(ClientError):
        firehose.describe_delivery_stream(DeliveryStreamName="missing")
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    created = [l for l in lines if l["eventName"] == "CreateDeliveryStream"]
    assert len(created) == 1
    assert created[0]["eventSource"] == "firehose.amazonaws.com"
    assert created[0]["requestParameters"]["deliveryStreamName"] == "audited"
    [missing] = [l for l in lines if l["eventName"] == "DescribeDeliveryStream"]
    assert missing["eventSource"] == "firehose.amazonaws.com"
    assert missing["errorCode"] == "ResourceNotFoundException"


def test_s3_calls_are_audited_with_s3s_event_source_object_calls_as_data_events(tmp_path):
    audit = tmp_path / "audit.jsonl"
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--audit-log", str(audit), "--audit-data-events", "on"],
    )
    srv.start()
    _, s3 = clients(srv.endpoint)
    s3.create_bucket(Bucket="audited")
    s3.put_object(Bucket="audited", Key="dir/a b.txt", Body=b"data")
    with pytest.raises(ClientError):
        s3.get_object(Bucket="audited", Key="missing")
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    by_name = {l["eventName"]: l for l in lines}
    created = by_name["CreateBucket"]
    assert created["eventSource"] == "s3.amazonaws.com"
    assert created["requestParameters"] == {"bucketName": "audited"}
    assert created["eventCategory"] == "Management" and created["managementEvent"] is True
    put = by_name["PutObject"]
    assert put["requestParameters"] == {"bucketName": "audited", "key": "dir/a b.txt"}
    assert put["eventCategory"] == "Data" and put["readOnly"] is False
    assert put["additionalEventData"]["httpStatus"] == 200
    missing = by_name["GetObject"]
    assert missing["errorCode"] == "NoSuchKey" and missing["readOnly"] is True
    assert missing["additionalEventData"]["httpStatus"] == 404


def test_s3_object_calls_are_not_audited_without_data_events(tmp_path):
    audit = tmp_path / "audit.jsonl"
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=["--audit-log", str(audit)])
    srv.start()
    _, s3 = clients(srv.endpoint)
    s3.create_bucket(Bucket="quiet")
    s3.put_object(Bucket="quiet", Key="k", Body=b"data")
    s3.list_objects_v2(Bucket="quiet")
    assert srv.terminate() == 0
    names = [json.loads(line)["eventName"] for line in audit.read_text().splitlines()]
    assert names == ["CreateBucket", "ListObjectsV2"], names


def test_firehose_and_s3_operations_and_delivery_metrics_are_on_the_metrics_endpoint(tmp_path):
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=["--metrics-listen", "127.0.0.1:0"])
    srv.start()
    try:
        firehose, s3 = clients(srv.endpoint)
        s3.create_bucket(Bucket="metered")
        firehose.create_delivery_stream(DeliveryStreamName="metered", ExtendedS3DestinationConfiguration=s3_destination("metered"))
        wait_active(firehose, "metered")
        firehose.put_record_batch(DeliveryStreamName="metered", Records=[{"Data": b"12345"}])
        wait_objects(s3, "metered")
        stdout = (tmp_path / "riffle-1.stdout").read_text()
        url = re.search(r"metrics:\s+(\S+)", stdout).group(1)
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        assert 'riffle_api_requests_total{service="firehose",operation="PutRecordBatch",outcome="success"} 1' in text
        assert "metered" in text  # the delivery stream's own series
        # S3 requests are counted by the operation they are.
        assert 'riffle_api_requests_total{service="s3",operation="CreateBucket",outcome="success"} 1' in text
        assert 'riffle_api_requests_total{service="s3",operation="ListObjectsV2",outcome="success"}' in text
    finally:
        print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
        assert srv.terminate() == 0


def test_the_seeds_pipeline_stream_to_firehose_to_gzip_objects_under_raw_data(server):
    """Producers -> Kinesis -> Firehose (KinesisStreamAsSource, GZIP, a
    `raw-data/` prefix) -> S3, as the seeds draw it: every record put to the
    stream after the delivery stream is ACTIVE arrives, in order per shard,
    in gzip objects under `raw-data/<YYYY/MM/dd/HH>/`."""
    import gzip

    kinesis = boto3.client("kinesis", endpoint_url=server.endpoint, region_name=REGION, config=NO_RETRIES)
    firehose, s3 = clients(server.endpoint)
    kinesis.create_stream(StreamName="clicks", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="clicks", WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
    s3.create_bucket(Bucket="lake")
    destination = s3_destination("lake") | {"Prefix": "raw-data/", "CompressionFormat": "GZIP"}
    firehose.create_delivery_stream(
        DeliveryStreamName="clicks-to-lake",
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={
            "KinesisStreamARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/clicks",
            "RoleARN": ROLE,
        },
        ExtendedS3DestinationConfiguration=destination,
    )
    wait_active(firehose, "clicks-to-lake")
    sent = [f'{{"click":{i}}}\n'.encode() for i in range(200)]
    kinesis.put_records(StreamName="clicks", Records=[{"Data": d, "PartitionKey": "p"} for d in sent])

    received = b""
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while (lines := received.count(b"\n")) < len(sent):
        assert time.monotonic() < deadline, f"{lines} of {len(sent)} records delivered"
        objects = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="lake").get("Contents", []))
        received = b"".join(gzip.decompress(s3.get_object(Bucket="lake", Key=k)["Body"].read()) for k in objects)
        time.sleep(POLL_INTERVAL_S)
    for key in objects:
        assert re.fullmatch(r"raw-data/\d{4}/\d{2}/\d{2}/\d{2}/clicks-to-lake-1-[\d-]+-[0-9a-f-]+\.gz", key), key
        # As AWS stores them: opaque bytes under a `.gz` name, no
        # Content-Encoding (which would have downloads inflate them).
        head = s3.head_object(Bucket="lake", Key=key)
        assert "ContentEncoding" not in head, head
        assert head["ContentType"] == "application/octet-stream", head
    assert received == b"".join(sent)
    metrics = firehose.describe_delivery_stream(DeliveryStreamName="clicks-to-lake")["DeliveryStreamDescription"]
    assert metrics["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"].endswith(":stream/clicks")
