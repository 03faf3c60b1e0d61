"""HTTPS with boto3, the aws CLI and Python's own TLS stack: a server given
a certificate speaks only TLS on its port, offers HTTP/2 and HTTP/1.1 by
ALPN, and clients verify it against the CA that signed it (made per test by
trustme, the test-CA library)."""

import os
import socket
import ssl
import subprocess
from urllib.parse import urlsplit

import pytest
import trustme
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, SSLError

from conftest import AWS_CLI, RiffleServer, make_client
from kinesis_helpers import REGION, create_active_stream, get_records, iterator, shard_id


@pytest.fixture
def ca():
    return trustme.CA()


@pytest.fixture
def tls_server(tmp_path, ca):
    cert = ca.issue_cert("localhost", "127.0.0.1")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    # The server's certificate, then its issuer: the chain clients are sent.
    cert.cert_chain_pems[0].write_to_path(chain)
    ca.cert_pem.write_to_path(chain, append=True)
    cert.private_key_pem.write_to_path(key)
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--tls-cert", str(chain), "--tls-key", str(key)],
    )
    srv.start()
    yield srv
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


@pytest.fixture
def ca_file(tmp_path, ca):
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(path)
    return str(path)


def client(endpoint, verify):
    return make_client(endpoint, verify=verify)


def test_boto3_round_trips_records_over_https(tls_server, ca_file):
    assert tls_server.endpoint.startswith("https://127.0.0.1:")
    kinesis = client(tls_server.endpoint, ca_file)
    create_active_stream(kinesis, "secure")
    put = kinesis.put_records(
        StreamName="secure",
        Records=[{"PartitionKey": "k", "Data": f"record {i}".encode()} for i in range(10)],
    )
    assert put["FailedRecordCount"] == 0
    records = get_records(kinesis, ShardIterator=iterator(kinesis, "secure", shard_id(0)))["Records"]
    assert [r["Data"] for r in records] == [f"record {i}".encode() for i in range(10)]


def test_an_untrusted_certificate_or_plain_http_fails_and_the_server_keeps_serving(tls_server, ca_file):
    # The system's CAs did not sign it: botocore's own check refuses it.
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        client(tls_server.endpoint, True).list_streams()
    # Plain HTTP to the TLS port: no handshake, so the server hangs up.
    plain = tls_server.endpoint.replace("https://", "http://")
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        client(plain, True).list_streams()
    assert client(tls_server.endpoint, ca_file).list_streams()["StreamNames"] == []


def test_alpn_offers_http2_and_http11(tls_server, ca_file):
    address = urlsplit(tls_server.endpoint)
    for offered, chosen in [(["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1"), (["h2"], "h2")]:
        context = ssl.create_default_context(cafile=ca_file)
        context.set_alpn_protocols(offered)
        with socket.create_connection((address.hostname, address.port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                assert tls.selected_alpn_protocol() == chosen
                assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_the_aws_cli_uses_its_ca_bundle(tls_server, ca_file):
    def cli(*args):
        argv = [str(AWS_CLI), "--endpoint-url", tls_server.endpoint, "--output", "json", "--region", REGION, *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=os.environ, stdin=subprocess.DEVNULL)

    created = cli("--ca-bundle", ca_file, "kinesis", "create-stream", "--stream-name", "cli", "--shard-count", "1")
    assert created.returncode == 0, created.stderr
    listed = cli("--ca-bundle", ca_file, "kinesis", "list-streams")
    assert listed.returncode == 0, listed.stderr
    assert '"cli"' in listed.stdout

    refused = cli("kinesis", "list-streams")
    assert refused.returncode == 255
    assert "SSL validation failed" in refused.stderr
