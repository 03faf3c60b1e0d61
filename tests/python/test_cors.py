"""CORS as a browser meets it: the preflight a browser sends before a web
page's SDK call, byte for byte over a raw socket, answered as AWS answers it
(200, no signature needed), and the headers every answer to a page carries,
errors and event streams included; `--cors off` answers browsers like any
client."""

import socket
import time
from urllib.parse import urlsplit

import pytest

from conftest import RiffleServer, make_client
from kinesis_helpers import create_active_stream, error_of, shard_id, stream_arn

# A bound on waiting for a condition, never a sleep-to-hope.
DEADLINE_S = 10.0
ORIGIN = "http://localhost:3000"
EXPOSED = "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date"
# What the AWS SDK for JavaScript v3 asks to send from a page (Chrome lists
# the non-safelisted request headers, lower case, sorted, comma-separated).
ASKED_HEADERS = (
    "amz-sdk-invocation-id,amz-sdk-request,authorization,content-type,"
    "x-amz-content-sha256,x-amz-date,x-amz-target,x-amz-user-agent"
)


def browser_preflight(endpoint: str) -> bytes:
    """The preflight Chrome sends before a page's PutRecords: no credentials,
    no body, the Origin and what the real request will use."""
    host = urlsplit(endpoint).netloc
    return (
        "OPTIONS / HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        "Connection: keep-alive\r\n"
        "Accept: */*\r\n"
        "Access-Control-Request-Method: POST\r\n"
        f"Access-Control-Request-Headers: {ASKED_HEADERS}\r\n"
        f"Origin: {ORIGIN}\r\n"
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36\r\n"
        "Sec-Fetch-Mode: cors\r\n"
        "Sec-Fetch-Site: cross-site\r\n"
        "Sec-Fetch-Dest: empty\r\n"
        f"Referer: {ORIGIN}/\r\n"
        "Accept-Encoding: gzip, deflate, br, zstd\r\n"
        "Accept-Language: en-US,en;q=0.9\r\n"
        "\r\n"
    ).encode()


def exchange(endpoint: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Sends one raw HTTP/1.1 request and reads one response, framed by its
    Content-Length (the connection stays open, as a browser keeps it)."""
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
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            assert name.lower() not in headers, f"header {name} sent twice"
            headers[name.lower()] = value.strip()
        length = int(headers["content-length"])
        while len(body) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed mid-body"
            body += chunk
        return status, headers, body


def assert_preflight_answered(endpoint: str) -> None:
    status, headers, body = exchange(endpoint, browser_preflight(endpoint))
    assert status == 200, (status, headers, body)
    assert body == b""
    assert headers["content-length"] == "0"
    assert headers["access-control-allow-origin"] == "*"
    assert headers["access-control-max-age"] == "172800"
    assert headers["access-control-allow-methods"] == "POST"
    assert headers["access-control-allow-headers"] == ASKED_HEADERS
    assert "x-amzn-requestid" in headers


def with_origin(client):
    """The client sends an Origin on every call, as the SDK in a page does."""

    def add_origin(request, **_):
        request.headers["Origin"] = ORIGIN

    client.meta.events.register("before-send.kinesis.*", add_origin)
    return client


def assert_cors_headers(headers: dict) -> None:
    assert headers.get("access-control-allow-origin") == "*", headers
    assert headers.get("access-control-expose-headers") == EXPOSED, headers


def test_a_browser_preflight_gets_200_without_a_signature(server):
    assert_preflight_answered(server.endpoint)
    # Without the requested headers and method, nothing is echoed.
    host = urlsplit(server.endpoint).netloc
    bare = f"OPTIONS / HTTP/1.1\r\nHost: {host}\r\nOrigin: {ORIGIN}\r\n\r\n".encode()
    status, headers, body = exchange(server.endpoint, bare)
    assert (status, body) == (200, b"")
    assert "access-control-allow-headers" not in headers
    assert "access-control-allow-methods" not in headers


def test_every_answer_to_a_page_carries_the_cors_headers(server):
    kinesis = with_origin(make_client(server.endpoint))
    create_active_stream(kinesis, "page")
    put = kinesis.put_record(StreamName="page", PartitionKey="k", Data=b"from a page")
    assert_cors_headers(put["ResponseMetadata"]["HTTPHeaders"])

    # Errors too: the service's, and the edge's own refusals.
    missing = error_of(kinesis.describe_stream_summary, StreamName="ghost")
    assert missing.response["Error"]["Code"] == "ResourceNotFoundException"
    assert_cors_headers(missing.response["ResponseMetadata"]["HTTPHeaders"])
    host = urlsplit(server.endpoint).netloc
    unsigned = (
        f"POST / HTTP/1.1\r\nHost: {host}\r\nOrigin: {ORIGIN}\r\n"
        "Content-Type: application/x-amz-json-1.1\r\nX-Amz-Target: Kinesis_20131202.ListStreams\r\n"
        "Content-Length: 2\r\n\r\n{}"
    ).encode()
    status, headers, body = exchange(server.endpoint, unsigned)
    assert status == 400 and b"MissingAuthenticationTokenException" in body
    assert_cors_headers(headers)
    not_post = f"GET / HTTP/1.1\r\nHost: {host}\r\nOrigin: {ORIGIN}\r\n\r\n".encode()
    status, headers, _ = exchange(server.endpoint, not_post)
    assert status == 403
    assert_cors_headers(headers)

    # A request without an Origin is not a browser's: no CORS headers.
    plain = make_client(server.endpoint).list_streams()
    assert "access-control-allow-origin" not in plain["ResponseMetadata"]["HTTPHeaders"]


def test_an_event_stream_to_a_page_carries_the_cors_headers(server):
    kinesis = with_origin(make_client(server.endpoint))
    create_active_stream(kinesis, "page-efo")
    arn = kinesis.register_stream_consumer(StreamARN=stream_arn("page-efo"), ConsumerName="page")["Consumer"][
        "ConsumerARN"
    ]
    deadline = time.monotonic() + DEADLINE_S
    while kinesis.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "the consumer never became ACTIVE"
        time.sleep(0.01)
    subscribed = kinesis.subscribe_to_shard(ConsumerARN=arn, ShardId=shard_id(0), StartingPosition={"Type": "LATEST"})
    headers = subscribed["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == "application/vnd.amazon.eventstream"
    assert_cors_headers(headers)
    subscribed["EventStream"].close()


def test_a_preflight_needs_no_signature_when_signatures_are_verified(tmp_path):
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--access-key-id", "AKIDCORS", "--secret-access-key", "cors-secret"],
    )
    srv.start()
    try:
        assert_preflight_answered(srv.endpoint)
        # The call after it must still be signed with a configured key.
        stranger = with_origin(make_client(srv.endpoint))
        refused = error_of(stranger.list_streams)
        assert refused.response["Error"]["Code"] == "UnrecognizedClientException"
        assert_cors_headers(refused.response["ResponseMetadata"]["HTTPHeaders"])
        signed = with_origin(make_client(srv.endpoint, key_id="AKIDCORS", secret="cors-secret"))
        assert_cors_headers(signed.list_streams()["ResponseMetadata"]["HTTPHeaders"])
    finally:
        assert srv.terminate() == 0, srv.stderr_tail()


@pytest.mark.parametrize("switch", [["--cors", "off"], ["--config", "FILE"]], ids=["flag", "config-file"])
def test_cors_off_answers_browsers_like_any_client(tmp_path, switch):
    if switch[-1] == "FILE":
        config = tmp_path / "riffle.toml"
        config.write_text("cors = false\n")
        switch = ["--config", str(config)]
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=switch)
    srv.start()
    try:
        status, headers, body = exchange(srv.endpoint, browser_preflight(srv.endpoint))
        # An OPTIONS request is then what it is without CORS: with no
        # X-Amz-Target and not a POST, an S3 request, refused unsigned.
        assert status == 403 and b"<Code>AccessDenied</Code>" in body, (status, body)
        assert "access-control-allow-origin" not in headers
        answer = with_origin(make_client(srv.endpoint)).list_streams()
        assert "access-control-allow-origin" not in answer["ResponseMetadata"]["HTTPHeaders"]
    finally:
        assert srv.terminate() == 0, srv.stderr_tail()
