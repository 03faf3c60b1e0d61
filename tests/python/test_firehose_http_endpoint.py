"""Firehose to an HTTP endpoint, through boto3 against `riffle serve`: a
real HTTPS receiver in the test (Python's `http.server` behind `ssl`, its
certificate from a trustme CA the server is given with
`--firehose-destination-ca`) logs every request, and the requests are
checked against AWS's "HTTP endpoint delivery request and response
specifications": headers, body, GZIP, the request id kept across retries,
retries through 500s, timeouts and an endpoint that is down, then the S3
backup of what failed for the whole retry duration, with AWS's error
record fields."""

from __future__ import annotations

import base64
import gzip
import json
import re
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme
from botocore.exceptions import ClientError

from conftest import METRICS_LINE, RiffleServer, scrape_samples
from firehose_endpoints import backup_bucket, bucket_lines, create_stream, put
from test_firehose_s3 import ACCOUNT, clients
from kinesis_helpers import REGION

DEADLINE_S = 60.0
POLL_INTERVAL_S = 0.05
# The server's response timeout: a hanging receiver fails an attempt fast.
TIMEOUT_S = 1


class Receiver:
    """An HTTPS endpoint following the specification's response format.
    `mode` says how it answers: "ok" (200 echoing the requestId), "500",
    or "hang" (answers only after the server's timeout). Every request is
    logged with its headers and decoded body."""

    def __init__(self, ca: trustme.CA):
        self.cert = ca.issue_cert("127.0.0.1")
        self.mode = "ok"
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.port = 0
        self.httpd: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
                parsed = json.loads(body)
                with receiver.lock:
                    mode = receiver.mode
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": parsed, "mode": mode}
                    )
                if mode == "hang":
                    time.sleep(TIMEOUT_S + 1)
                if mode == "500":
                    answer, status = {"requestId": parsed["requestId"], "errorMessage": "try later"}, 500
                else:
                    answer, status = {"requestId": parsed["requestId"], "timestamp": int(time.time() * 1000)}, 200
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass  # the client timed out and hung up: as meant

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.cert.configure_cert(context)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Down: nothing listens on the port until `start` again."""
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/firehose/in?tenant=t1"

    def delivered(self) -> list[bytes]:
        """The records of every request answered 200, in arrival order."""
        with self.lock:
            return [
                base64.b64decode(r["data"])
                for req in self.requests
                if req["mode"] == "ok"
                for r in req["body"]["records"]
            ]

    def wait_records(self, count: int) -> list[bytes]:
        deadline = time.monotonic() + DEADLINE_S
        while len(got := self.delivered()) < count:
            assert time.monotonic() < deadline, f"{len(got)} of {count} records arrived"
            time.sleep(POLL_INTERVAL_S)
        return got


@pytest.fixture
def ca():
    return trustme.CA()


@pytest.fixture
def receiver(ca):
    r = Receiver(ca)
    r.start()
    yield r
    r.stop()


@pytest.fixture
def http_server(tmp_path, ca):
    """A server trusting the receiver's CA, with a short response timeout."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=[
            "--firehose-destination-ca",
            str(ca_file),
            "--firehose-destination-timeout-s",
            str(TIMEOUT_S),
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    )
    srv.start()
    srv.metrics_url = METRICS_LINE.search((tmp_path / "riffle-1.stdout").read_text()).group(1)
    yield srv
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def http_destination(url: str, bucket: str, **extra) -> dict:
    config = {
        "EndpointConfiguration": {"Url": url, "Name": "receiver", "AccessKey": "key-123"},
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "S3Configuration": backup_bucket(bucket),
    }
    config.update(extra)
    return config


def create(firehose, s3, name: str, config: dict) -> None:
    create_stream(firehose, s3, name, config, "HttpEndpointDestinationConfiguration")


def test_every_record_arrives_with_the_specifications_headers_and_gzip_body(http_server, receiver):
    firehose, s3 = clients(http_server.endpoint)
    config = http_destination(
        receiver.url,
        "backup",
        RequestConfiguration={
            "ContentEncoding": "GZIP",
            "CommonAttributes": [
                {"AttributeName": "env", "AttributeValue": "test"},
                {"AttributeName": "team", "AttributeValue": "data"},
            ],
        },
    )
    create(firehose, s3, "to-http", config)
    records = [json.dumps({"n": i}).encode() for i in range(50)] + [b"\x00\xffbinary"]
    put(firehose, "to-http", records)
    assert sorted(receiver.wait_records(len(records))) == sorted(records)
    for req in receiver.requests:
        headers = {k.lower(): v for k, v in req["headers"].items()}
        assert req["path"] == "/firehose/in?tenant=t1"
        assert headers["x-amz-firehose-protocol-version"] == "1.0"
        assert headers["x-amz-firehose-request-id"] == req["body"]["requestId"]
        uuid.UUID(headers["x-amz-firehose-request-id"])
        assert headers["x-amz-firehose-source-arn"] == f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/to-http"
        assert headers["x-amz-firehose-access-key"] == "key-123"
        assert json.loads(headers["x-amz-firehose-common-attributes"]) == {
            "commonAttributes": {"env": "test", "team": "data"}
        }
        assert headers["content-type"] == "application/json"
        assert headers["content-encoding"] == "gzip"
        assert isinstance(req["body"]["timestamp"], int)
        assert set(req["body"]) == {"requestId", "timestamp", "records"}
    # FailedDataOnly: nothing failed, so nothing was backed up.
    assert s3.list_objects_v2(Bucket="backup").get("KeyCount", 0) == 0
    # DeliveryToHttpEndpoint.Records and .Bytes, for this stream.
    samples = scrape_samples(http_server.metrics_url)
    label = 'delivery_stream="to-http"'
    assert samples[("riffle_firehose_delivery_to_http_endpoint_records_total", label)] == len(records)
    assert samples[("riffle_firehose_delivery_to_http_endpoint_bytes_total", label)] == sum(map(len, records))
    assert samples[("riffle_firehose_delivery_to_http_endpoint_failed_requests_total", label)] == 0


def test_describe_shows_the_endpoint_without_its_access_key_and_update_changes_it(http_server, receiver):
    firehose, s3 = clients(http_server.endpoint)
    create(firehose, s3, "described", http_destination(receiver.url, "described-backup"))
    stream = firehose.describe_delivery_stream(DeliveryStreamName="described")["DeliveryStreamDescription"]
    (destination,) = stream["Destinations"]
    http = destination["HttpEndpointDestinationDescription"]
    assert http["EndpointConfiguration"] == {"Url": receiver.url, "Name": "receiver"}
    assert "key-123" not in json.dumps(stream, default=str)
    assert http["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 1}
    assert http["RetryOptions"] == {"DurationInSeconds": 300}
    assert http["S3BackupMode"] == "FailedDataOnly"
    assert http["RequestConfiguration"]["ContentEncoding"] == "NONE"
    assert http["S3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::described-backup"
    firehose.update_destination(
        DeliveryStreamName="described",
        CurrentDeliveryStreamVersionId=stream["VersionId"],
        DestinationId=destination["DestinationId"],
        HttpEndpointDestinationUpdate={
            "RetryOptions": {"DurationInSeconds": 60},
            "RequestConfiguration": {"ContentEncoding": "GZIP"},
            "S3BackupMode": "AllData",
        },
    )
    after = firehose.describe_delivery_stream(DeliveryStreamName="described")["DeliveryStreamDescription"]
    http = after["Destinations"][0]["HttpEndpointDestinationDescription"]
    assert after["VersionId"] == "2"
    assert http["RetryOptions"] == {"DurationInSeconds": 60}
    assert http["RequestConfiguration"]["ContentEncoding"] == "GZIP"
    assert http["S3BackupMode"] == "AllData"
    assert http["EndpointConfiguration"]["Url"] == receiver.url
    # The access key was kept: deliveries still carry it.
    put(firehose, "described", [b"after-update"])
    receiver.wait_records(1)
    assert receiver.requests[-1]["headers"]["X-Amz-Firehose-Access-Key"] == "key-123"


def test_an_http_url_or_an_out_of_range_hint_gets_awss_validation_error(http_server):
    firehose, _ = clients(http_server.endpoint)
    config = http_destination("http://127.0.0.1:1/in", "b")
    config["BufferingHints"] = {"SizeInMBs": 65, "IntervalInSeconds": 1}
    with pytest.raises(ClientError) as err:
        firehose.create_delivery_stream(DeliveryStreamName="plain", HttpEndpointDestinationConfiguration=config)
    error = err.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "Value 'http://127.0.0.1:1/in' at 'httpEndpointDestinationConfiguration.endpointConfiguration.url' failed to satisfy constraint: Member must satisfy regular expression pattern: https://.*" in error["Message"]
    assert "'httpEndpointDestinationConfiguration.bufferingHints.sizeInMBs' failed to satisfy constraint: Member must have value less than or equal to 64" in error["Message"]


def test_500s_and_timeouts_are_retried_with_the_same_request_id_until_every_record_arrives(http_server, receiver):
    firehose, s3 = clients(http_server.endpoint)
    receiver.mode = "500"
    create(firehose, s3, "flaky", http_destination(receiver.url, "flaky-backup"))
    records = [f"r{i}".encode() for i in range(20)]
    put(firehose, "flaky", records)
    deadline = time.monotonic() + DEADLINE_S
    while len(receiver.requests) < 2:
        assert time.monotonic() < deadline, "no retry of a 500"
        time.sleep(POLL_INTERVAL_S)
    receiver.mode = "hang"
    while not any(r["mode"] == "hang" for r in receiver.requests):
        assert time.monotonic() < deadline, "no retry after the 500s"
        time.sleep(POLL_INTERVAL_S)
    receiver.mode = "ok"
    assert sorted(receiver.wait_records(len(records))) == sorted(records)
    # Every attempt of the one batch carried the same request id.
    ids = {r["body"]["requestId"] for r in receiver.requests}
    assert len(ids) == 1, ids
    assert s3.list_objects_v2(Bucket="flaky-backup").get("KeyCount", 0) == 0


def test_an_endpoint_down_for_a_while_gets_every_record_once_back(http_server, receiver):
    firehose, s3 = clients(http_server.endpoint)
    create(firehose, s3, "outage", http_destination(receiver.url, "outage-backup"))
    receiver.stop()
    records = [f"down-{i}".encode() for i in range(30)]
    put(firehose, "outage", records)
    # Long enough for a buffer to be due and attempts to fail.
    time.sleep(3)
    assert receiver.delivered() == []
    receiver.start()
    assert sorted(receiver.wait_records(len(records))) == sorted(records)


def test_records_failing_past_the_retry_duration_are_backed_up_with_awss_error_fields(http_server, receiver):
    firehose, s3 = clients(http_server.endpoint)
    receiver.mode = "500"
    config = http_destination(receiver.url, "failed-backup", RetryOptions={"DurationInSeconds": 2})
    create(firehose, s3, "gives-up", config)
    records = [f"lost-{i}".encode() for i in range(10)]
    before = int(time.time() * 1000)
    put(firehose, "gives-up", records)
    lines = bucket_lines(s3, "failed-backup", "http-endpoint-failed/", len(records))
    assert sorted(base64.b64decode(line["rawData"]) for line in lines) == sorted(records)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="failed-backup")["Contents"]]
    assert all(re.fullmatch(r"http-endpoint-failed/\d{4}/\d{2}/\d{2}/\d{2}/gives-up-1-.+", k) for k in keys), keys
    for line in lines:
        assert set(line) == {
            "attemptsMade",
            "arrivalTimestamp",
            "errorCode",
            "errorMessage",
            "attemptEndingTimestamp",
            "rawData",
        }
        assert line["errorCode"] == "HttpEndpoint.DestinationException"
        assert line["errorMessage"].startswith(
            "The following response was received from the endpoint destination. 500:"
        )
        assert line["attemptsMade"] >= 2
        assert before <= line["arrivalTimestamp"] <= line["attemptEndingTimestamp"]


def test_all_data_backs_every_record_up_besides_delivering_it(http_server, receiver):
    firehose, s3 = clients(http_server.endpoint)
    create(firehose, s3, "all-data", http_destination(receiver.url, "all-backup", S3BackupMode="AllData"))
    records = [f"both-{i}".encode() for i in range(10)]
    put(firehose, "all-data", records)
    assert sorted(receiver.wait_records(len(records))) == sorted(records)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        backed_up = b"".join(
            s3.get_object(Bucket="all-backup", Key=o["Key"])["Body"].read()
            for o in s3.list_objects_v2(Bucket="all-backup").get("Contents", [])
        )
        if len(backed_up) >= len(b"".join(records)):
            break
        assert time.monotonic() < deadline, "the backup bucket did not get every record"
        time.sleep(POLL_INTERVAL_S)
    assert sorted(re.findall(rb"both-\d", backed_up)) == sorted(records)


def test_a_hanging_endpoint_does_not_hold_up_another_streams_deliveries(http_server, ca):
    stuck, healthy = Receiver(ca), Receiver(ca)
    stuck.start()
    healthy.start()
    try:
        stuck.mode = "hang"
        firehose, s3 = clients(http_server.endpoint)
        create(firehose, s3, "stuck", http_destination(stuck.url, "stuck-backup"))
        create(firehose, s3, "healthy", http_destination(healthy.url, "healthy-backup"))
        put(firehose, "stuck", [b"waiting"])
        deadline = time.monotonic() + DEADLINE_S
        while not stuck.requests:
            assert time.monotonic() < deadline, "the stuck endpoint got no request"
            time.sleep(POLL_INTERVAL_S)
        records = [f"h{i}".encode() for i in range(5)]
        put(firehose, "healthy", records)
        assert sorted(healthy.wait_records(len(records))) == sorted(records)
        assert stuck.delivered() == []
    finally:
        stuck.mode = "ok"
        stuck.stop()
        healthy.stop()


def test_records_acknowledged_while_the_endpoint_fails_survive_a_sigkill(http_server, receiver):
    firehose, s3 = clients(http_server.endpoint)
    receiver.mode = "500"
    create(firehose, s3, "crashy", http_destination(receiver.url, "crashy-backup"))
    records = [f"kept-{i}".encode() for i in range(15)]
    put(firehose, "crashy", records)
    deadline = time.monotonic() + DEADLINE_S
    while not receiver.requests:
        assert time.monotonic() < deadline, "no attempt before the crash"
        time.sleep(POLL_INTERVAL_S)
    http_server.kill()
    receiver.mode = "ok"
    http_server.start()
    assert sorted(set(receiver.wait_records(len(records)))) == sorted(records)
