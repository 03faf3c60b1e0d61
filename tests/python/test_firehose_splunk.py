"""Firehose to Splunk, through boto3 against `riffle serve`. No real Splunk
can run here: the destination is a receiver in this test that follows
Splunk's documented HTTP Event Collector protocol (`/services/collector/raw`
and `/event` with `Authorization: Splunk <token>`, indexer acknowledgement:
an `ackId` per request on its `X-Splunk-Request-Channel`, then
`/services/collector/ack` answering `{"acks":{"<id>":true}}` once
"indexed"). Every event must arrive and be acknowledged; a busy HEC (503)
is retried; one down past the retry duration leaves the events in the
backup bucket under `splunk-failed/` with AWS's error fields, and so does
one that never acknowledges (`Splunk.AckTimeout`, after the ack timeout,
shortened by `--firehose-splunk-ack-timeout-s`), counted in BackupToS3.*."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import METRICS_LINE, RiffleServer, scrape_samples
from firehose_endpoints import backup_bucket, bucket_lines, create_stream, put
from test_firehose_s3 import clients

DEADLINE_S = 60.0
POLL_INTERVAL_S = 0.05
TOKEN = "11111111-2222-3333-4444-555555555555"
# Polls of /ack that answer false before an ack turns true ("indexing").
ACK_AFTER_POLLS = 2


class Hec:
    """HEC with indexer acknowledgement on. `mode`: "ok", "busy" (503) or
    "noack" (events accepted, their acks never true)."""

    def __init__(self):
        self.mode = "ok"
        self.lock = threading.Lock()
        self.events: list[dict] = []  # {"path", "channel", "body", "ack"}
        self.acks: dict[tuple[str, int], int] = {}  # (channel, ackId) -> polls seen
        self.next_ack = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def _handler(self):
        hec = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Authorization") != f"Splunk {TOKEN}":
                    return self.answer(403, {"text": "Invalid token", "code": 4})
                channel = self.headers.get("X-Splunk-Request-Channel")
                if not channel:
                    return self.answer(400, {"text": "Data channel is missing", "code": 10})
                if self.path == "/services/collector/ack":
                    return self.ack(channel, json.loads(body)["acks"])
                if hec.mode == "busy":
                    return self.answer(503, {"text": "Server is busy", "code": 9})
                with hec.lock:
                    ack = hec.next_ack
                    hec.next_ack += 1
                    hec.acks[(channel, ack)] = 0
                    hec.events.append({"path": self.path, "channel": channel, "body": body, "ack": ack})
                self.answer(200, {"text": "Success", "code": 0, "ackId": ack})

            def ack(self, channel: str, ids: list[int]) -> None:
                with hec.lock:
                    status = {}
                    for i in ids:
                        polls = hec.acks.get((channel, i))
                        if polls is not None:
                            hec.acks[(channel, i)] = polls + 1
                        status[str(i)] = polls is not None and polls >= ACK_AFTER_POLLS and hec.mode != "noack"
                self.answer(200, {"acks": status})

            def log_message(self, *args):
                pass

        return Handler

    def acknowledged(self) -> list[dict]:
        """Requests whose ack was asked until it was true."""
        with self.lock:
            return [e for e in self.events if self.acks[(e["channel"], e["ack"])] > ACK_AFTER_POLLS]

    def wait_acknowledged_lines(self, count: int) -> list[bytes]:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            lines = [line for e in self.acknowledged() for line in e["body"].splitlines()]
            if len(lines) >= count:
                return lines
            assert time.monotonic() < deadline, f"{len(lines)} of {count} events acknowledged"
            time.sleep(POLL_INTERVAL_S)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hec():
    h = Hec()
    yield h
    h.close()


def splunk_config(url: str, bucket: str, endpoint_type: str = "Raw", **extra) -> dict:
    config = {
        "HECEndpoint": url,
        "HECEndpointType": endpoint_type,
        "HECToken": TOKEN,
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "S3Configuration": backup_bucket(bucket),
    }
    config.update(extra)
    return config


def create(firehose, s3, name: str, config: dict) -> None:
    create_stream(firehose, s3, name, config, "SplunkDestinationConfiguration")


def test_raw_events_arrive_with_the_token_and_a_channel_and_are_acknowledged(server, hec):
    firehose, s3 = clients(server.endpoint)
    create(firehose, s3, "to-splunk", splunk_config(hec.url, "splunk-backup"))
    records = [f"2026-12-06 event {i}".encode() for i in range(25)]
    put(firehose, "to-splunk", records)
    assert sorted(hec.wait_acknowledged_lines(len(records))) == sorted(records)
    assert {e["path"] for e in hec.events} == {"/services/collector/raw"}
    described = firehose.describe_delivery_stream(DeliveryStreamName="to-splunk")["DeliveryStreamDescription"]
    d = described["Destinations"][0]["SplunkDestinationDescription"]
    assert d["HECEndpoint"] == hec.url
    assert d["HECEndpointType"] == "Raw"
    assert d["HECAcknowledgmentTimeoutInSeconds"] == 180
    assert d["S3BackupMode"] == "FailedEventsOnly"


def test_event_records_go_to_the_event_endpoint_and_a_busy_hec_is_retried(server, hec):
    firehose, s3 = clients(server.endpoint)
    hec.mode = "busy"
    create(firehose, s3, "events", splunk_config(hec.url, "events-backup", "Event"))
    records = [json.dumps({"event": {"n": i}, "sourcetype": "test"}).encode() for i in range(10)]
    put(firehose, "events", records)
    time.sleep(2)  # a buffer is due and answered 503 meanwhile
    assert hec.events == []
    hec.mode = "ok"
    lines = hec.wait_acknowledged_lines(len(records))
    assert sorted(json.loads(line)["event"]["n"] for line in lines) == list(range(10))
    assert {e["path"] for e in hec.events} == {"/services/collector/event"}
    assert s3.list_objects_v2(Bucket="events-backup").get("KeyCount", 0) == 0


def test_events_undelivered_past_the_retry_duration_are_backed_up_with_awss_fields(server, hec):
    firehose, s3 = clients(server.endpoint)
    hec.mode = "busy"
    config = splunk_config(hec.url, "failed-splunk", RetryOptions={"DurationInSeconds": 1})
    create(firehose, s3, "gives-up", config)
    records = [f"lost {i}".encode() for i in range(6)]
    put(firehose, "gives-up", records)
    lines = bucket_lines(s3, "failed-splunk", "splunk-failed/", len(records))
    assert sorted(base64.b64decode(line["rawData"]) for line in lines) == sorted(records)
    for line in lines:
        assert line["errorCode"] == "Splunk.ServerError"
        assert line["errorMessage"] == "503: Server is busy"
        assert line["EventId"]
        assert set(line) == {
            "attemptsMade",
            "arrivalTimestamp",
            "errorCode",
            "errorMessage",
            "attemptEndingTimestamp",
            "rawData",
            "EventId",
        }


@pytest.fixture
def ack_server(tmp_path):
    """A server giving Splunk 1 s to acknowledge (AWS's minimum is 180 s), with /metrics."""
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--firehose-splunk-ack-timeout-s", "1", "--metrics-listen", "127.0.0.1:0"],
    )
    srv.start()
    srv.metrics_url = METRICS_LINE.search((tmp_path / "riffle-1.stdout").read_text()).group(1)
    yield srv
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def test_events_never_acknowledged_are_sent_again_then_backed_up_as_ack_timeouts(ack_server, hec):
    firehose, s3 = clients(ack_server.endpoint)
    hec.mode = "noack"
    config = splunk_config(hec.url, "unacked", RetryOptions={"DurationInSeconds": 3})
    create(firehose, s3, "unacked", config)
    records = [f"unacked {i}".encode() for i in range(5)]
    put(firehose, "unacked", records)
    lines = bucket_lines(s3, "unacked", "splunk-failed/", len(records))
    assert sorted(base64.b64decode(line["rawData"]) for line in lines) == sorted(records)
    for line in lines:
        assert line["errorCode"] == "Splunk.AckTimeout"
        assert line["errorMessage"].startswith("Did not receive an acknowledgement from HEC")
        assert line["attemptsMade"] >= 2
    # Retried after each timeout: the same events again, on the batch's channel.
    with hec.lock:
        sent = list(hec.events)
    assert len(sent) >= 2
    assert {e["channel"] for e in sent} == {sent[0]["channel"]}
    assert all(sorted(e["body"].splitlines()) == sorted(records) for e in sent)
    # Each request's ack was asked for (and never answered true).
    with hec.lock:
        assert all(hec.acks[(e["channel"], e["ack"])] >= 1 for e in sent)
    # The backup of failed events is BackupToS3.*, as AWS counts it.
    label = 'delivery_stream="unacked"'
    samples = scrape_samples(ack_server.metrics_url)
    assert samples[("riffle_firehose_backup_to_s3_records_total", label)] == len(records)
    assert samples[("riffle_firehose_backup_to_s3_object_count_total", label)] == 1
    assert samples[("riffle_firehose_backup_to_s3_success", label)] == 1
    assert samples[("riffle_firehose_delivery_to_s3_records_total", label)] == 0
    assert samples[("riffle_firehose_delivery_to_splunk_records_total", label)] == 0
    assert samples[("riffle_firehose_delivery_to_splunk_failed_requests_total", label)] >= 2
