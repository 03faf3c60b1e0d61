"""HTTP ingest (`--ingest-listen`): JSON POSTed with curl or a browser-style
request, no SDK and no signature, becomes records of a stream or a delivery
stream; read back with boto3. API keys, their stream lists and throttles,
CORS, and the clear errors of bad bodies, oversized ones and unknown
streams."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import RiffleServer, make_client, scrape_samples
from kinesis_helpers import create_active_stream, hash_key, iterator, read_to_end, shard_for_hash
from test_firehose_s3 import clients, s3_destination, wait_active, wait_objects

INGEST_LINE = re.compile(r"^\s*ingest:\s+(http://\S+)/streams/<name>", re.MULTILINE)
METRICS_LINE = re.compile(r"^\s*metrics:\s+(http://\S+/metrics)\s*$", re.MULTILINE)
WEB_KEY = "webKey0123456789abcdefgh"
SLOW_KEY = "slowKey0123456789abcdefg"


def start(tmp_path, config: str | None = None) -> tuple[RiffleServer, str]:
    """A server with the ingest listener (and /metrics) on free ports."""
    args = ["--ingest-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]
    if config is not None:
        path = tmp_path / "riffle.toml"
        path.write_text(config)
        args += ["--config", str(path)]
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=args)
    srv.start()
    banner = (tmp_path / "riffle-1.stdout").read_text()
    srv.metrics_url = METRICS_LINE.search(banner).group(1)
    return srv, INGEST_LINE.search(banner).group(1)


@pytest.fixture
def open_ingest(tmp_path):
    srv, url = start(tmp_path)
    yield srv, url
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


@pytest.fixture
def keyed_ingest(tmp_path):
    config = f"""
[ingest_keys.web]
key = "{WEB_KEY}"
streams = ["clicks"]

[ingest_keys.slow]
key = "{SLOW_KEY}"
streams = ["*"]
rate_limit = 0.01
burst_limit = 2
"""
    srv, url = start(tmp_path, config)
    yield srv, url
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def post(url: str, body: bytes, headers: dict[str, str] | None = None, method: str = "POST"):
    """(status, headers (case-insensitive), JSON body) of one request."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read() or b"null")


def curl(url: str, body: str, *headers: str) -> tuple[int, dict]:
    """What curl, the client of the README's example, gets."""
    args = ["curl", "-s", "-w", "\n%{http_code}", url, "--data-binary", body]
    for header in headers:
        args += ["-H", header]
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout
    text, status = out.rsplit("\n", 1)
    return int(status), json.loads(text)


def stream_records(kinesis, stream: str) -> list[dict]:
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    records = []
    for shard in shards:
        found, _ = read_to_end(kinesis, iterator(kinesis, stream, shard["ShardId"]))
        records += found
    return records


def test_curl_posts_newline_delimited_json_keyed_by_a_field_as_put_records_would(open_ingest):
    srv, url = open_ingest
    kinesis = make_client(srv.endpoint)
    create_active_stream(kinesis, "clicks", shards=2)
    lines = ['{"user":"u1","page":"/"}', '{"user": "u2", "page": "/cart"}', '{"user":7,"page":"/x"}']
    status, answer = curl(f"{url}/streams/clicks?partition-key-field=user", "\n".join(lines) + "\n")
    assert status == 200, answer
    assert answer["FailedRecordCount"] == 0
    shards = kinesis.list_shards(StreamName="clicks")["Shards"]
    for entry, key in zip(answer["Records"], ["u1", "u2", "7"]):
        assert entry["ShardId"] == shard_for_hash(shards, hash_key(key))
    stored = {r["SequenceNumber"]: r for r in stream_records(kinesis, "clicks")}
    for entry, line, key in zip(answer["Records"], lines, ["u1", "u2", "7"]):
        record = stored[entry["SequenceNumber"]]
        assert record["Data"] == line.encode(), "a record is the JSON text as sent"
        assert record["PartitionKey"] == key


def test_a_json_array_becomes_one_record_per_element_keyed_by_a_header_or_at_random(open_ingest):
    srv, url = open_ingest
    kinesis = make_client(srv.endpoint)
    create_active_stream(kinesis, "events", shards=1)
    status, _, answer = post(
        f"{url}/streams/events?partition-key-header=X-Device", b'[{"a":1}, [2], "three"]', {"X-Device": "d-9"}
    )
    assert status == 200, answer
    assert len(answer["Records"]) == 3
    status, _, answer = post(f"{url}/streams/events", b'{"b":1}\n{"b":2}')
    assert status == 200, answer
    records = stream_records(kinesis, "events")
    assert [r["Data"] for r in records] == [b'{"a":1}', b"[2]", b'"three"', b'{"b":1}', b'{"b":2}']
    assert [r["PartitionKey"] for r in records[:3]] == ["d-9"] * 3
    random_keys = [r["PartitionKey"] for r in records[3:]]
    assert len(set(random_keys)) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", k) for k in random_keys)


def test_records_posted_to_a_delivery_stream_reach_its_bucket(open_ingest):
    srv, url = open_ingest
    firehose, s3 = clients(srv.endpoint)
    s3.create_bucket(Bucket="landing")
    firehose.create_delivery_stream(
        DeliveryStreamName="to-s3", ExtendedS3DestinationConfiguration=s3_destination("landing")
    )
    wait_active(firehose, "to-s3")
    status, _, answer = post(f"{url}/delivery-streams/to-s3", b'[{"n":1},{"n":2}]')
    assert status == 200, answer
    assert answer["FailedPutCount"] == 0 and len(answer["RequestResponses"]) == 2
    assert all(r.get("RecordId") for r in answer["RequestResponses"])
    (obj,) = wait_objects(s3, "landing")
    assert s3.get_object(Bucket="landing", Key=obj["Key"])["Body"].read() == b'{"n":1}{"n":2}'


def test_bad_bodies_unknown_streams_and_wrong_routes_get_clear_errors_and_nothing_is_written(open_ingest):
    srv, url = open_ingest
    kinesis = make_client(srv.endpoint)
    create_active_stream(kinesis, "s", shards=1)
    status, _, answer = post(f"{url}/streams/s", b'{"a":')
    assert status == 400 and "not a JSON array" in answer["message"], answer
    status, _, answer = post(f"{url}/streams/s", b"  ")
    assert (status, answer["message"]) == (400, "The body holds no records")
    status, _, answer = post(f"{url}/streams/s", json.dumps(list(range(501))).encode())
    assert status == 400 and "at most 500" in answer["message"], answer
    status, _, answer = post(f"{url}/streams/s?partition-key-field=user", b'{"user":"a"}\n{"id":1}')
    assert status == 400 and 'Record 1 has no string, number or boolean member "user"' in answer["message"]
    status, _, answer = post(f"{url}/streams/nope", b"{}")
    assert status == 400 and answer["__type"] == "ResourceNotFoundException", answer
    assert "nope" in answer["message"]
    status, _, answer = post(f"{url}/elsewhere/s", b"{}")
    assert status == 404 and "/streams/" in answer["message"]
    status, _, answer = post(f"{url}/streams/s", None, method="GET")
    assert status == 405, answer
    # One record over PutRecords' 1 MiB: the service's own validation.
    status, _, answer = post(f"{url}/streams/s", json.dumps("x" * (1024 * 1024)).encode())
    assert status == 400 and answer["__type"] == "ValidationException", answer
    status, _, answer = post(f"{url}/streams/s", b'"' + b"x" * (11 * 1024 * 1024) + b'"')
    assert status == 413 and answer["message"].startswith("Request Too Long"), answer
    assert stream_records(kinesis, "s") == [], "no refused request wrote a record"
    status, _, answer = post(f"{url}/streams/s", b'{"ok":true}')
    assert status == 200, "the listener still serves after bad requests"


def test_api_keys_admit_only_their_streams_within_their_throttle(keyed_ingest):
    srv, url = keyed_ingest
    kinesis = make_client(srv.endpoint)
    create_active_stream(kinesis, "clicks", shards=1)
    create_active_stream(kinesis, "orders", shards=1)
    assert post(f"{url}/streams/clicks", b"{}")[::2] == (403, {"message": "Forbidden"})
    assert post(f"{url}/streams/clicks", b"{}", {"x-api-key": "wrong" * 5})[::2] == (403, {"message": "Forbidden"})
    assert post(f"{url}/streams/clicks", b'{"w":1}', {"x-api-key": WEB_KEY})[0] == 200
    status, _, answer = post(f"{url}/streams/orders", b"{}", {"x-api-key": WEB_KEY})
    assert status == 403 and "may not write to orders" in answer["message"]
    # The slow key's burst of 2, then its 0.01/s rate: the third is throttled.
    assert post(f"{url}/streams/orders", b'{"s":1}', {"x-api-key": SLOW_KEY})[0] == 200
    assert post(f"{url}/streams/orders", b'{"s":2}', {"x-api-key": SLOW_KEY})[0] == 200
    assert post(f"{url}/streams/orders", b'{"s":3}', {"x-api-key": SLOW_KEY})[::2] == (
        429,
        {"message": "Too Many Requests"},
    )
    assert [r["Data"] for r in stream_records(kinesis, "orders")] == [b'{"s":1}', b'{"s":2}']
    assert [r["Data"] for r in stream_records(kinesis, "clicks")] == [b'{"w":1}']


def test_a_browser_page_on_another_origin_can_post(keyed_ingest):
    srv, url = keyed_ingest
    kinesis = make_client(srv.endpoint)
    create_active_stream(kinesis, "clicks", shards=1)
    origin = {"Origin": "https://shop.example"}
    status, headers, _ = post(
        f"{url}/streams/clicks",
        None,
        {**origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key,content-type"},
        method="OPTIONS",
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert headers["Access-Control-Allow-Headers"] == "x-api-key,content-type"
    status, headers, answer = post(
        f"{url}/streams/clicks", b'{"from":"page"}', {**origin, "x-api-key": WEB_KEY, "Content-Type": "application/json"}
    )
    assert status == 200, answer
    assert headers["Access-Control-Allow-Origin"] == "*"


def test_ingest_calls_are_counted_as_the_services_operations_with_their_protocol(open_ingest):
    srv, url = open_ingest
    kinesis = make_client(srv.endpoint)
    create_active_stream(kinesis, "m", shards=1)
    assert post(f"{url}/streams/m", b"{}")[0] == 200
    assert post(f"{url}/streams/missing", b"{}")[0] == 400
    samples = scrape_samples(srv.metrics_url)
    assert samples[("riffle_api_requests_by_protocol_total", 'service="kinesis",protocol="http-ingest"')] == 2
    ok = 'service="kinesis",operation="PutRecords",outcome="success"'
    refused = 'service="kinesis",operation="PutRecords",outcome="client_error"'
    assert samples[("riffle_api_requests_total", ok)] == 1
    assert samples[("riffle_api_requests_total", refused)] == 1


def test_records_from_ingest_survive_a_kill(tmp_path):
    srv, url = start(tmp_path)
    kinesis = make_client(srv.endpoint)
    create_active_stream(kinesis, "durable", shards=1)
    status, _, answer = post(f"{url}/streams/durable", b"\n".join(b'{"i":%d}' % i for i in range(100)))
    assert status == 200 and answer["FailedRecordCount"] == 0
    srv.kill()
    srv.start()
    kinesis = make_client(srv.endpoint)
    data = [r["Data"] for r in stream_records(kinesis, "durable")]
    assert data == [b'{"i":%d}' % i for i in range(100)]
    assert srv.terminate() == 0
