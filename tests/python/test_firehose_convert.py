"""Firehose's record format conversion through boto3 against `riffle serve`:
a Glue table defines the schema, JSON records go in, and the Parquet object
in the embedded S3 is read back by two independent readers, pyarrow and
DuckDB, every value compared; records that do not fit land under
format-conversion-failed/ as AWS writes them."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import time
from decimal import Decimal

import boto3
import duckdb
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kinesis_helpers import REGION

DELIVERY_DEADLINE_S = 30.0
POLL_INTERVAL_S = 0.1
ROLE = "arn:aws:iam::000000000000:role/firehose-delivery"
NO_RETRIES = Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"})

COLUMNS = [
    ("b", "boolean"),
    ("ti", "tinyint"),
    ("si", "smallint"),
    ("i", "int"),
    ("bi", "bigint"),
    ("f", "float"),
    ("d", "double"),
    ("s", "string"),
    ("c", "char(3)"),
    ("vc", "varchar(4)"),
    ("bin", "binary"),
    ("dec", "decimal(10,2)"),
    ("ts", "timestamp"),
    ("dt", "date"),
    ("arr", "array<int>"),
    ("m", "map<string,bigint>"),
    ("st", "struct<name:string,inner:array<struct<x:double>>>"),
]

FULL = {
    "B": True,
    "ti": -7,
    "si": 300,
    "i": 70000,
    "bi": 9007199254740993,
    "f": 1.5,
    "d": 2.25,
    "s": "héllo",
    "c": "abcdef",
    "vc": "truncated",
    "bin": base64.b64encode(b"\x00\xffraw").decode(),
    "dec": "12345678.91",
    "ts": "2026-12-06T12:34:56.789Z",
    "dt": "2026-12-06",
    "arr": [1, None, 3],
    "m": {"a": 1, "b": None},
    "st": {"Name": "n", "inner": [{"x": 0.5}, None]},
}
# Every column null or absent.
NULLS = {"b": None, "st": None}
WANT_FULL = {
    "b": True,
    "ti": -7,
    "si": 300,
    "i": 70000,
    "bi": 9007199254740993,
    "f": 1.5,
    "d": 2.25,
    "s": "héllo",
    "c": "abc",
    "vc": "trun",
    "bin": b"\x00\xffraw",
    "dec": Decimal("12345678.91"),
    "ts": dt.datetime(2026, 12, 6, 12, 34, 56, 789000, tzinfo=dt.timezone.utc),
    "dt": dt.date(2026, 12, 6),
    "arr": [1, None, 3],
    "m": {"a": 1, "b": None},
    "st": {"name": "n", "inner": [{"x": 0.5}, None]},
}
BAD_TYPE = b'{"i": "not a number"}'
NOT_JSON = b"this is not json"


def clients(endpoint: str):
    make = lambda service: boto3.client(service, endpoint_url=endpoint, region_name=REGION, config=NO_RETRIES)  # noqa: E731
    return make("glue"), make("firehose"), make("s3")


def conversion(table: str = "events", serializer: dict | None = None) -> dict:
    return {
        "Enabled": True,
        "SchemaConfiguration": {"DatabaseName": "analytics", "TableName": table, "RoleARN": ROLE, "Region": REGION},
        "InputFormatConfiguration": {"Deserializer": {"OpenXJsonSerDe": {}}},
        "OutputFormatConfiguration": {"Serializer": serializer or {"ParquetSerDe": {"Compression": "SNAPPY"}}},
    }


def destination(bucket: str, **extra) -> dict:
    return {
        "RoleARN": ROLE,
        "BucketARN": f"arn:aws:s3:::{bucket}",
        "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 1},
        **extra,
    }


def wait_keys(s3, bucket: str, count: int) -> list[str]:
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while True:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        if len(keys) >= count:
            return sorted(keys)
        assert time.monotonic() < deadline, f"only {keys} delivered to {bucket} within {DELIVERY_DEADLINE_S}s"
        time.sleep(POLL_INTERVAL_S)


def wait_active(firehose, name: str) -> None:
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]["DeliveryStreamStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, f"{name} never became ACTIVE"
        time.sleep(POLL_INTERVAL_S)


def create_table(glue) -> None:
    glue.create_database(DatabaseInput={"Name": "analytics"})
    glue.create_table(
        DatabaseName="analytics",
        TableInput={"Name": "events", "StorageDescriptor": {"Columns": [{"Name": n, "Type": t} for n, t in COLUMNS]}},
    )


def normalize_arrow(row: dict) -> dict:
    """pyarrow gives maps as lists of pairs."""
    out = dict(row)
    if out.get("m") is not None:
        out["m"] = dict(out["m"])
    return out


def test_json_records_become_a_parquet_file_that_pyarrow_and_duckdb_read_back(server, tmp_path):
    glue, firehose, s3 = clients(server.endpoint)
    create_table(glue)
    s3.create_bucket(Bucket="lake")
    firehose.create_delivery_stream(
        DeliveryStreamName="events",
        ExtendedS3DestinationConfiguration=destination("lake", DataFormatConversionConfiguration=conversion()),
    )
    wait_active(firehose, "events")
    records = [json.dumps(FULL).encode(), BAD_TYPE, json.dumps(NULLS).encode(), NOT_JSON]
    answer = firehose.put_record_batch(DeliveryStreamName="events", Records=[{"Data": r} for r in records])
    assert answer["FailedPutCount"] == 0
    keys = wait_keys(s3, "lake", 2)
    failed_keys = [k for k in keys if k.startswith("format-conversion-failed/")]
    parquet_keys = [k for k in keys if k.endswith(".parquet")]
    assert len(failed_keys) == 1 and len(parquet_keys) == 1, keys

    body = s3.get_object(Bucket="lake", Key=parquet_keys[0])["Body"].read()
    table = pq.read_table(io.BytesIO(body))
    assert table.column_names == [n for n, _ in COLUMNS]
    rows = [normalize_arrow(r) for r in table.to_pylist()]
    assert rows[0] == WANT_FULL
    assert rows[1] == {n: None for n, _ in COLUMNS}
    assert pq.ParquetFile(io.BytesIO(body)).metadata.row_group(0).column(0).compression == "SNAPPY"

    path = tmp_path / "events.parquet"
    path.write_bytes(body)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    got = con.execute(
        f"SELECT b, ti, si, i, bi, f, d, s, c, vc, bin, dec, epoch_us(ts), dt, arr, m, st FROM read_parquet('{path}')"
    ).fetchall()
    want_ts_us = int(WANT_FULL["ts"].timestamp() * 1_000_000)
    assert got[0] == (
        True, -7, 300, 70000, 9007199254740993, 1.5, 2.25, "héllo", "abc", "trun", b"\x00\xffraw",
        Decimal("12345678.91"), want_ts_us, dt.date(2026, 12, 6), [1, None, 3], {"a": 1, "b": None},
        {"name": "n", "inner": [{"x": 0.5}, None]},
    )
    assert got[1] == (None,) * len(COLUMNS)

    lines = s3.get_object(Bucket="lake", Key=failed_keys[0])["Body"].read().decode().splitlines()
    failed = [json.loads(line) for line in lines]
    assert [base64.b64decode(f["rawData"]) for f in failed] == [BAD_TYPE, NOT_JSON]
    # AWS's codes: JSON that does not fit, and text that is not JSON.
    assert [f["lastErrorCode"] for f in failed] == ["DataFormatConversion.MalformedData", "DataFormatConversion.ParseError"]
    for f in failed:
        assert f["attemptsMade"] == 1
        assert f["arrivalTimestamp"] <= f["attemptEndingTimestamp"]
        assert f["dataCatalogTable"]["databaseName"] == "analytics"
        assert f["dataCatalogTable"]["tableName"] == "events"
    assert failed[0]["lastErrorMessage"].startswith("Data does not match the schema. ")
    assert "column i" in failed[0]["lastErrorMessage"]
    assert failed[1]["lastErrorMessage"].startswith("Encountered malformed JSON.")


def test_a_missing_table_fails_every_record_at_delivery_as_aws_does(server):
    glue, firehose, s3 = clients(server.endpoint)
    s3.create_bucket(Bucket="lake")
    firehose.create_delivery_stream(
        DeliveryStreamName="orphan",
        ExtendedS3DestinationConfiguration=destination("lake", DataFormatConversionConfiguration=conversion("nope")),
    )
    wait_active(firehose, "orphan")
    firehose.put_record(DeliveryStreamName="orphan", Record={"Data": b'{"i": 1}'})
    keys = wait_keys(s3, "lake", 1)
    assert keys[0].startswith("format-conversion-failed/"), keys
    line = json.loads(s3.get_object(Bucket="lake", Key=keys[0])["Body"].read())
    assert line["lastErrorCode"] == "DataFormatConversion.EntityNotFound"
    assert line["lastErrorMessage"].startswith("The specified table/database could not be found.")
    assert base64.b64decode(line["rawData"]) == b'{"i": 1}'


@pytest.mark.parametrize(
    "extra, says",
    [
        ({"BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 60}}, "at least 64"),
        ({"CompressionFormat": "GZIP"}, "UNCOMPRESSED"),
        (
            {"DataFormatConversionConfiguration": conversion(serializer={"ParquetSerDe": {}, "OrcSerDe": {}})},
            "Exactly one",
        ),
    ],
)
def test_conversion_settings_aws_refuses_are_refused_at_create(server, extra, says):
    _, firehose, _ = clients(server.endpoint)
    config = {**destination("lake"), "DataFormatConversionConfiguration": conversion(), **extra}
    with pytest.raises(ClientError) as err:
        firehose.create_delivery_stream(DeliveryStreamName="bad", ExtendedS3DestinationConfiguration=config)
    assert err.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert says in err.value.response["Error"]["Message"]


def test_conversion_buffers_default_to_128_mib(server):
    _, firehose, _ = clients(server.endpoint)
    config = {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::lake", "DataFormatConversionConfiguration": conversion()}
    firehose.create_delivery_stream(DeliveryStreamName="defaults", ExtendedS3DestinationConfiguration=config)
    described = firehose.describe_delivery_stream(DeliveryStreamName="defaults")["DeliveryStreamDescription"]
    extended = described["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert extended["BufferingHints"]["SizeInMBs"] == 128
    assert extended["DataFormatConversionConfiguration"]["Enabled"] is True


FLAT = [("b", "boolean"), ("i", "int"), ("bi", "bigint"), ("d", "double"), ("s", "varchar(4)"), ("bin", "binary"),
        ("ts", "timestamp"), ("dt", "date")]


def test_json_records_become_an_orc_file_that_pyarrow_reads_back(server):
    glue, firehose, s3 = clients(server.endpoint)
    glue.create_database(DatabaseInput={"Name": "analytics"})
    glue.create_table(
        DatabaseName="analytics",
        TableInput={"Name": "flat", "StorageDescriptor": {"Columns": [{"Name": n, "Type": t} for n, t in FLAT]}},
    )
    s3.create_bucket(Bucket="lake")
    orc_conversion = conversion("flat", serializer={"OrcSerDe": {"Compression": "ZLIB"}})
    firehose.create_delivery_stream(
        DeliveryStreamName="flat",
        ExtendedS3DestinationConfiguration=destination("lake", DataFormatConversionConfiguration=orc_conversion),
    )
    wait_active(firehose, "flat")
    record = {k: FULL[k] for k, _ in FLAT if k in FULL}
    record["b"] = FULL["B"]
    record["s"] = "abcdef"
    firehose.put_record_batch(
        DeliveryStreamName="flat", Records=[{"Data": json.dumps(record).encode()}, {"Data": b"{}"}]
    )
    keys = wait_keys(s3, "lake", 1)
    assert len(keys) == 1 and keys[0].endswith(".orc"), keys
    body = s3.get_object(Bucket="lake", Key=keys[0])["Body"].read()
    rows = orc.ORCFile(io.BytesIO(body)).read().to_pylist()
    want = {k: WANT_FULL[k] for k, _ in FLAT}
    want["s"] = "abcd"
    # ORC's timestamp has no zone (Hive's): the UTC wall-clock time.
    want["ts"] = want["ts"].replace(tzinfo=None)
    assert rows == [want, {k: None for k, _ in FLAT}]


# orc-rust 0.9 (its latest release) has no writer for these types.
@pytest.mark.parametrize("kind, hive_type", [
    ("decimal", "decimal(10,2)"), ("array", "array<int>"), ("map", "map<string,int>"), ("struct", "struct<a:int>"),
])
def test_orc_output_of_a_table_orc_rust_cannot_write_is_refused_at_create(server, kind, hive_type):
    glue, firehose, _ = clients(server.endpoint)
    glue.create_database(DatabaseInput={"Name": "analytics"})
    columns = [{"Name": "id", "Type": "bigint"}, {"Name": "x", "Type": hive_type}]
    glue.create_table(DatabaseName="analytics", TableInput={"Name": "t", "StorageDescriptor": {"Columns": columns}})
    config = destination("lake", DataFormatConversionConfiguration=conversion("t", serializer={"OrcSerDe": {}}))
    with pytest.raises(ClientError) as err:
        firehose.create_delivery_stream(DeliveryStreamName="nested", ExtendedS3DestinationConfiguration=config)
    assert err.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert err.value.response["Error"]["Message"] == (
        f"Column x is a {kind}, which Riffle's ORC output (orc-rust) cannot write yet; use ParquetSerDe."
    )
