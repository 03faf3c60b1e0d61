"""Firehose to OpenSearch and Elasticsearch, through boto3 against `riffle
serve`: a real bulk-API server (PyPI's osmem-server, an in-memory
OpenSearch-compatible server, started per test on a free port) is named
by a DomainARN that `--firehose-opensearch-domains` maps to its URL.
Delivered documents are read back through its search API; documents it
refuses, and all of them while it is down past the retry duration, land in
the backup bucket under `elasticsearch-failed/` with AWS's error fields;
an outage shorter than the retry duration loses nothing."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.request
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError
from osmem_server import OsmemServer

from conftest import RiffleServer
from firehose_endpoints import backup_bucket, bucket_lines, put
from test_firehose_s3 import ROLE, clients, wait_active

DEADLINE_S = 60.0
POLL_INTERVAL_S = 0.1
DOMAIN = "arn:aws:es:us-east-1:000000000000:domain/logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def port():
    return free_port()


@pytest.fixture
def cluster(port):
    server = OsmemServer.start(freeze=False, japanese=False, addr=f"127.0.0.1:{port}")
    yield server
    server.close()


@pytest.fixture
def os_server(tmp_path, port):
    """A server whose DomainARN names the cluster's port (up or not)."""
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--firehose-opensearch-domains", f"{DOMAIN}=http://127.0.0.1:{port}"],
    )
    srv.start()
    yield srv
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def config(bucket: str, **extra) -> dict:
    c = {
        "RoleARN": ROLE,
        "DomainARN": DOMAIN,
        "IndexName": "logs",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        "S3Configuration": backup_bucket(bucket),
    }
    c.update(extra)
    return c


def search(url: str, index: str) -> list[dict]:
    """Every document of `index`, as the cluster's search API answers."""
    try:
        urllib.request.urlopen(urllib.request.Request(f"{url}/{index}/_refresh", method="POST"))
        body = json.dumps({"query": {"match_all": {}}, "size": 1000}).encode()
        req = urllib.request.Request(
            f"{url}/{index}/_search", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        return json.loads(urllib.request.urlopen(req).read())["hits"]["hits"]
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise


def wait_docs(url: str, index: str, count: int) -> list[dict]:
    deadline = time.monotonic() + DEADLINE_S
    while len(hits := search(url, index)) < count:
        assert time.monotonic() < deadline, f"{len(hits)} of {count} documents in {index}"
        time.sleep(POLL_INTERVAL_S)
    return hits


def today_index() -> str:
    return "logs-" + datetime.now(timezone.utc).strftime("%Y-%m-%d")


def test_every_document_is_indexed_in_the_days_index_and_found_by_search(os_server, cluster):
    firehose, s3 = clients(os_server.endpoint)
    s3.create_bucket(Bucket="os-backup")
    firehose.create_delivery_stream(
        DeliveryStreamName="to-os", AmazonopensearchserviceDestinationConfiguration=config("os-backup")
    )
    wait_active(firehose, "to-os")
    docs = [{"n": i, "msg": f"event {i}"} for i in range(40)]
    put(firehose, "to-os", [json.dumps(d).encode() + b"\n" for d in docs])
    hits = wait_docs(cluster.url, today_index(), len(docs))
    assert sorted(h["_source"]["n"] for h in hits) == list(range(40))
    # FIREHOSE_DEFAULT: Firehose-made ids, one per document.
    assert len({h["_id"] for h in hits}) == len(docs)
    stream = firehose.describe_delivery_stream(DeliveryStreamName="to-os")["DeliveryStreamDescription"]
    d = stream["Destinations"][0]["AmazonopensearchserviceDestinationDescription"]
    assert d["DomainARN"] == DOMAIN
    assert d["IndexRotationPeriod"] == "OneDay"
    assert d["S3BackupMode"] == "FailedDocumentsOnly"
    assert d["DocumentIdOptions"] == {"DefaultDocumentIdFormat": "FIREHOSE_DEFAULT"}
    assert d["RetryOptions"] == {"DurationInSeconds": 300}


def test_refused_documents_are_backed_up_with_awss_error_fields_and_the_rest_indexed(os_server, cluster):
    firehose, s3 = clients(os_server.endpoint)
    s3.create_bucket(Bucket="refused-backup")
    firehose.create_delivery_stream(
        DeliveryStreamName="refused",
        ElasticsearchDestinationConfiguration=config(
            "refused-backup", IndexRotationPeriod="NoRotation", RetryOptions={"DurationInSeconds": 1}
        ),
    )
    wait_active(firehose, "refused")
    put(firehose, "refused", [b'{"ok":1}', b"not a json document", b'{"ok":2}'])
    hits = wait_docs(cluster.url, "logs", 2)
    assert sorted(h["_source"]["ok"] for h in hits) == [1, 2]
    (line,) = bucket_lines(s3, "refused-backup", "elasticsearch-failed/", 1)
    assert base64.b64decode(line["rawData"]) == b"not a json document"
    assert line["errorCode"] == "400"
    assert "mapper_parsing_exception" in line["errorMessage"]
    assert line["esIndexName"] == "logs"
    assert line["esDocumentId"]
    assert line["esTypeName"] == ""
    assert line["attemptsMade"] >= 2
    assert set(line) >= {"arrivalTimestamp", "attemptEndingTimestamp", "subsequenceNumber"}
    described = firehose.describe_delivery_stream(DeliveryStreamName="refused")["DeliveryStreamDescription"]
    assert "ElasticsearchDestinationDescription" in described["Destinations"][0]


def test_a_cluster_down_for_a_while_gets_every_document_once_back(os_server, port):
    firehose, s3 = clients(os_server.endpoint)
    s3.create_bucket(Bucket="outage-backup")
    firehose.create_delivery_stream(
        DeliveryStreamName="outage",
        AmazonopensearchserviceDestinationConfiguration=config(
            "outage-backup", IndexRotationPeriod="NoRotation", DocumentIdOptions={"DefaultDocumentIdFormat": "NO_DOCUMENT_ID"}
        ),
    )
    wait_active(firehose, "outage")
    put(firehose, "outage", [json.dumps({"n": i}).encode() for i in range(10)])
    time.sleep(3)  # attempts fail meanwhile: nothing listens on the port
    cluster = OsmemServer.start(freeze=False, japanese=False, addr=f"127.0.0.1:{port}")
    try:
        hits = wait_docs(cluster.url, "logs", 10)
        assert sorted(h["_source"]["n"] for h in hits) == list(range(10))
    finally:
        cluster.close()
    assert s3.list_objects_v2(Bucket="outage-backup").get("KeyCount", 0) == 0


def test_a_cluster_down_past_the_retry_duration_leaves_every_document_in_the_backup_bucket(os_server):
    firehose, s3 = clients(os_server.endpoint)
    s3.create_bucket(Bucket="down-backup")
    firehose.create_delivery_stream(
        DeliveryStreamName="down",
        AmazonopensearchserviceDestinationConfiguration=config("down-backup", RetryOptions={"DurationInSeconds": 1}),
    )
    wait_active(firehose, "down")
    records = [json.dumps({"n": i}).encode() for i in range(5)]
    put(firehose, "down", records)
    lines = bucket_lines(s3, "down-backup", "elasticsearch-failed/", len(records))
    assert sorted(base64.b64decode(line["rawData"]) for line in lines) == sorted(records)
    assert all(line["errorCode"] == "OS.ConnectionFailed" for line in lines)
    assert all(line["esIndexName"] == today_index() for line in lines)


def test_an_unmapped_domain_or_a_plain_http_cluster_endpoint_is_refused(os_server):
    firehose, _ = clients(os_server.endpoint)
    with pytest.raises(ClientError) as err:
        firehose.create_delivery_stream(
            DeliveryStreamName="unmapped",
            AmazonopensearchserviceDestinationConfiguration=config(
                "b", DomainARN="arn:aws:es:us-east-1:000000000000:domain/other"
            ),
        )
    assert err.value.response["Error"]["Code"] == "InvalidArgumentException"
    c = config("b", ClusterEndpoint="http://127.0.0.1:9200")
    del c["DomainARN"]
    with pytest.raises(ClientError) as err:
        firehose.create_delivery_stream(DeliveryStreamName="plain", AmazonopensearchserviceDestinationConfiguration=c)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert "amazonopensearchserviceDestinationConfiguration.clusterEndpoint" in err.value.response["Error"]["Message"]
