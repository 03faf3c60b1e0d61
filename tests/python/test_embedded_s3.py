"""The embedded S3 through boto3 and the aws CLI, against `riffle serve`: the
S3 REST API (path-style) on the same port as Kinesis and Firehose, buckets
as directories under `<data-dir>/s3/`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

CLI_DEADLINE_S = 120


@pytest.fixture
def endpoint(server) -> str:
    return server.endpoint


def s3_client(endpoint: str, **kwargs):
    """A boto3 S3 client for `endpoint`, path-style, without retries."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        **kwargs,
    )


@pytest.fixture
def s3(endpoint: str):
    return s3_client(endpoint)


def aws(endpoint: str, *args: str) -> str:
    """Runs the aws CLI against `endpoint` (in conftest's offline environment)."""
    cli = shutil.which("aws", path=os.path.dirname(sys.executable))
    assert cli, "the aws CLI is not installed next to this Python"
    done = subprocess.run(
        [cli, "--endpoint-url", endpoint, *args], capture_output=True, text=True, timeout=CLI_DEADLINE_S
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_boto3_reads_back_objects_metadata_and_ranges(s3):
    s3.create_bucket(Bucket="deliveries")
    body = b"record\n" * 1000
    put = s3.put_object(
        Bucket="deliveries", Key="raw-data/ü/1.txt", Body=body, ContentType="text/plain", Metadata={"src": "fh"}
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket="deliveries", Key="raw-data/ü/1.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"src": "fh"}
    part = s3.get_object(Bucket="deliveries", Key="raw-data/ü/1.txt", Range="bytes=7-13")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes 7-13/{len(body)}"
    assert part["Body"].read() == b"record\n"
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket="deliveries", Key="nope")
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    with pytest.raises(ClientError) as exists:
        s3.create_bucket(Bucket="deliveries")
    assert exists.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"


def test_boto3_paginates_listings_with_common_prefixes(s3):
    s3.create_bucket(Bucket="listing")
    keys = [f"raw-data/2026/12/06/{h:02}/obj-{i}" for h in range(3) for i in range(4)] + ["top key+1"]
    for key in keys:
        s3.put_object(Bucket="listing", Key=key, Body=key.encode())
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="listing", PaginationConfig={"PageSize": 5})
    listed = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert listed == sorted(keys)
    out = s3.list_objects_v2(Bucket="listing", Prefix="raw-data/2026/12/06/", Delimiter="/")
    assert [p["Prefix"] for p in out["CommonPrefixes"]] == [f"raw-data/2026/12/06/{h:02}/" for h in range(3)]


def test_boto3_multipart_upload_and_ranged_download(s3, tmp_path: Path):
    s3.create_bucket(Bucket="big")
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(12 * 1024 * 1024 + 3))
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3.upload_file(str(source), "big", "blob.bin", Config=config)
    head = s3.head_object(Bucket="big", Key="blob.bin")
    assert head["ETag"].endswith('-3"')
    target = tmp_path / "back.bin"
    s3.download_file("big", "blob.bin", str(target), Config=config)
    assert target.read_bytes() == source.read_bytes()


def test_aws_cli_copies_lists_and_removes(endpoint: str, tmp_path: Path):
    aws(endpoint, "s3", "mb", "s3://cli-bucket")
    local = tmp_path / "data.gz"
    local.write_bytes(b"\x1f\x8b" + os.urandom(7 * 1024 * 1024))
    aws(endpoint, "s3", "cp", str(local), "s3://cli-bucket/raw-data/2026/12/06/stream-1.gz")
    listing = aws(endpoint, "s3", "ls", "s3://cli-bucket", "--recursive")
    assert "raw-data/2026/12/06/stream-1.gz" in listing
    assert str(local.stat().st_size) in listing
    assert "PRE raw-data/" in aws(endpoint, "s3", "ls", "s3://cli-bucket/")
    back = tmp_path / "back.gz"
    aws(endpoint, "s3", "cp", "s3://cli-bucket/raw-data/2026/12/06/stream-1.gz", str(back))
    assert back.read_bytes() == local.read_bytes()
    aws(endpoint, "s3", "rm", "s3://cli-bucket", "--recursive")
    aws(endpoint, "s3", "rb", "s3://cli-bucket")
    assert "cli-bucket" not in aws(endpoint, "s3", "ls")
