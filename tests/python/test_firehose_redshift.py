"""Firehose to Redshift on PostgreSQL, through boto3 (and one aws CLI
create) against `riffle serve`. PostgreSQL speaks Redshift's wire protocol:
the module starts a throwaway PostgreSQL 15 cluster from Debian's packages
(`initdb` into a temp dir, `postgres` on a free port of 127.0.0.1, as the
`postgres` user when the tests run as root), shared by the module's tests,
each with its own table. Every row is read back with `psql` and compared;
the staged objects and their manifests are read from the intermediate
bucket; a stopped PostgreSQL loses nothing, and a copy that keeps failing
leaves its manifest under `errors/manifests/`."""

from __future__ import annotations

import gzip
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import METRICS_LINE, RiffleServer, _die_with_parent, scrape_samples
from firehose_endpoints import backup_bucket, create_stream, put
from test_firehose_s3 import ROLE, aws, clients, wait_active

PG_BIN = Path("/usr/lib/postgresql/15/bin")
USER = "riffle"
PASSWORD = "riffle-pg-secret"
DEADLINE_S = 60.0
POLL_INTERVAL_S = 0.05
# The server retries a failed COPY this often (AWS: every 5 minutes).
RETRY_INTERVAL_S = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A PostgreSQL cluster in a temp dir; stop() and start() keep its data
    and port (the fault test stops it for a while)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="riffle-pg-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        # PostgreSQL refuses to run as root: the server runs as `postgres`.
        self.ids = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            self.ids = (entry.pw_uid, entry.pw_gid)
            os.chown(self.dir, *self.ids)
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD)
        if self.ids:
            os.chown(pwfile, *self.ids)
        self._run(
            [PG_BIN / "initdb", "-D", self.dir / "data", "-U", USER, "--pwfile", pwfile, "--auth", "scram-sha-256"],
        )

    def _preexec(self):
        _die_with_parent()
        if self.ids:
            os.setgid(self.ids[1])
            os.setuid(self.ids[0])

    def _run(self, argv) -> None:
        done = subprocess.run(
            [str(a) for a in argv], capture_output=True, text=True, timeout=120, preexec_fn=self._preexec
        )
        assert done.returncode == 0, done.stderr

    def start(self) -> None:
        log = open(self.dir / "postgres.log", "ab")
        self.proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.dir / "data"), "-k", str(self.dir), "-h", "127.0.0.1",
             "-p", str(self.port), "-c", "fsync=off", "-c", "full_page_writes=off"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=self._preexec,
        )
        log.close()
        deadline = time.monotonic() + DEADLINE_S
        while subprocess.run([str(PG_BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode:
            assert self.proc.poll() is None, (self.dir / "postgres.log").read_text()
            assert time.monotonic() < deadline, "PostgreSQL did not accept connections"
            time.sleep(POLL_INTERVAL_S)

    def stop(self) -> None:
        if self.proc is not None:
            # SIGINT: PostgreSQL's fast shutdown (ends open sessions).
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(timeout=30)
            self.proc = None

    def sql(self, query: str) -> str:
        done = subprocess.run(
            [str(PG_BIN / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
             "-U", USER, "-d", "postgres", "-c", query],
            capture_output=True, text=True, timeout=30, env={**os.environ, "PGPASSWORD": PASSWORD},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def rows(self, table: str, order: str = "id") -> list[dict]:
        out = self.sql(f"SELECT coalesce(json_agg(t ORDER BY {order}), '[]') FROM {table} t")
        return json.loads(out)

    def wait_rows(self, table: str, count: int) -> list[dict]:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            rows = self.rows(table)
            if len(rows) >= count:
                return rows
            assert time.monotonic() < deadline, f"{len(rows)} of {count} rows in {table}"
            time.sleep(POLL_INTERVAL_S)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pg():
    cluster = Postgres()
    cluster.start()
    yield cluster
    cluster.close()


@pytest.fixture
def rs_server(tmp_path):
    """A server that retries failed copies every second, with /metrics."""
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--firehose-redshift-retry-interval-s", str(RETRY_INTERVAL_S), "--metrics-listen", "127.0.0.1:0"],
    )
    srv.start()
    srv.metrics_url = METRICS_LINE.search((tmp_path / "riffle-1.stdout").read_text()).group(1)
    yield srv
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def jdbc_url(pg: Postgres) -> str:
    # A name the model's ClusterJDBCURL pattern accepts; Riffle resolves
    # *.localhost to the loopback address (RFC 6761).
    return f"jdbc:postgresql://riffle.redshift.localhost:{pg.port}/postgres"


def redshift_config(pg: Postgres, table: str, bucket: str, options: str, **extra) -> dict:
    config = {
        "RoleARN": ROLE,
        "ClusterJDBCURL": jdbc_url(pg),
        "CopyCommand": {"DataTableName": table, "CopyOptions": options},
        "Username": USER,
        "Password": PASSWORD,
        "S3Configuration": backup_bucket(bucket),
    }
    config.update(extra)
    return config


def objects(s3, bucket: str, prefix: str = "") -> dict[str, bytes]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def create(firehose, s3, name: str, config: dict) -> None:
    create_stream(firehose, s3, name, config, "RedshiftDestinationConfiguration")


def test_json_auto_rows_arrive_by_column_name_with_staged_objects_and_manifests(rs_server, pg):
    pg.sql("CREATE TABLE events_json (id int PRIMARY KEY, name varchar(40), score float8, at timestamp, tags text)")
    firehose, s3 = clients(rs_server.endpoint)
    config = redshift_config(pg, "events_json", "rs-json", "JSON 'auto' GZIP TIMEFORMAT 'auto'")
    config["S3Configuration"]["CompressionFormat"] = "GZIP"
    create(firehose, s3, "to-redshift", config)
    records = [
        json.dumps({"id": i, "name": f"n{i}", "score": i / 4, "at": f"2026-12-06T18:{i:02d}:00", "extra": True}).encode()
        for i in range(30)
    ]
    records.append(json.dumps({"id": 30, "tags": ["a", "b"]}).encode())
    put(firehose, "to-redshift", records)
    rows = pg.wait_rows("events_json", len(records))
    expected = [
        {"id": i, "name": f"n{i}", "score": i / 4, "at": f"2026-12-06T18:{i:02d}:00", "tags": None} for i in range(30)
    ]
    expected.append({"id": 30, "name": None, "score": None, "at": None, "tags": '["a","b"]'})
    assert rows == expected
    staged = objects(s3, "rs-json")
    manifests = {k: json.loads(v) for k, v in staged.items() if k.startswith("manifests/")}
    data = {k: v for k, v in staged.items() if not k.startswith("manifests/")}
    assert manifests and data
    listed = [e["url"] for m in manifests.values() for e in m["entries"]]
    assert sorted(listed) == sorted(f"s3://rs-json/{k}" for k in data)
    assert all(e["mandatory"] is True for m in manifests.values() for e in m["entries"])
    assert b"".join(gzip.decompress(v) for v in data.values()).count(b'"id"') == len(records)
    label = 'delivery_stream="to-redshift"'
    samples = scrape_samples(rs_server.metrics_url)
    assert samples[("riffle_firehose_delivery_to_redshift_records_total", label)] == len(records)
    assert samples[("riffle_firehose_delivery_to_redshift_failed_requests_total", label)] == 0
    assert samples[("riffle_firehose_delivery_to_s3_records_total", label)] == len(records)


def test_csv_with_columns_header_and_nulls_arrives_and_describe_hides_the_password(rs_server, pg):
    pg.sql("CREATE TABLE events_csv (id int, city text, note text, n int, loaded timestamp DEFAULT now())")
    firehose, s3 = clients(rs_server.endpoint)
    config = redshift_config(pg, "events_csv", "rs-csv", "CSV DELIMITER ';' NULL AS 'nil' EMPTYASNULL")
    config["CopyCommand"]["DataTableColumns"] = "id,city,note,n"
    create(firehose, s3, "csv-stream", config)
    records = [f'{i};"City; {i}";"say ""hi""";{i * 10}\n'.encode() for i in range(20)]
    records += [b"20;;nil;\n", b"21;\"\";x;nil\n"]
    put(firehose, "csv-stream", records)
    rows = pg.wait_rows("events_csv", len(records))
    got = [{k: r[k] for k in ("id", "city", "note", "n")} for r in rows]
    expected = [{"id": i, "city": f"City; {i}", "note": 'say "hi"', "n": i * 10} for i in range(20)]
    expected += [{"id": 20, "city": None, "note": None, "n": None}, {"id": 21, "city": None, "note": "x", "n": None}]
    assert got == expected
    d = firehose.describe_delivery_stream(DeliveryStreamName="csv-stream")["DeliveryStreamDescription"]
    rs = d["Destinations"][0]["RedshiftDestinationDescription"]
    assert rs["ClusterJDBCURL"] == jdbc_url(pg)
    assert rs["CopyCommand"] == config["CopyCommand"]
    assert rs["Username"] == USER
    assert "Password" not in rs and PASSWORD not in json.dumps(d, default=str)
    assert rs["RetryOptions"] == {"DurationInSeconds": 3600}
    assert rs["S3BackupMode"] == "Disabled"
    assert rs["S3DestinationDescription"]["BucketARN"] == "arn:aws:s3:::rs-csv"


def test_rows_put_while_postgres_is_stopped_all_arrive_once_it_is_back(rs_server, pg):
    pg.sql("CREATE TABLE events_down (id int PRIMARY KEY, v text)")
    firehose, s3 = clients(rs_server.endpoint)
    create(firehose, s3, "down", redshift_config(pg, "events_down", "rs-down", "JSON 'auto'"))
    put(firehose, "down", [json.dumps({"id": i, "v": "before"}).encode() for i in range(5)])
    pg.wait_rows("events_down", 5)
    pg.stop()
    try:
        put(firehose, "down", [json.dumps({"id": i, "v": "during"}).encode() for i in range(5, 15)])
        # A buffer is due and its copy fails at least once meanwhile.
        deadline = time.monotonic() + DEADLINE_S
        label = 'delivery_stream="down"'
        while scrape_samples(rs_server.metrics_url)[("riffle_firehose_delivery_to_redshift_failed_requests_total", label)] < 1:
            assert time.monotonic() < deadline, "no COPY attempt failed while PostgreSQL was stopped"
            time.sleep(POLL_INTERVAL_S)
    finally:
        pg.start()
    rows = pg.wait_rows("events_down", 15)
    assert rows == [{"id": i, "v": "before" if i < 5 else "during"} for i in range(15)]
    assert objects(s3, "rs-down", "errors/") == {}


def test_records_acknowledged_before_a_kill_9_are_copied_once_after_the_restart(rs_server, pg):
    pg.sql("CREATE TABLE events_crash (id int PRIMARY KEY)")
    firehose, s3 = clients(rs_server.endpoint)
    create(firehose, s3, "crash", redshift_config(pg, "events_crash", "rs-crash", "JSON 'auto'"))
    pg.stop()
    try:
        put(firehose, "crash", [json.dumps({"id": i}).encode() for i in range(10)])
        # Staged, and its COPY failing, when the server is killed.
        deadline = time.monotonic() + DEADLINE_S
        label = 'delivery_stream="crash"'
        while scrape_samples(rs_server.metrics_url)[("riffle_firehose_delivery_to_redshift_failed_requests_total", label)] < 1:
            assert time.monotonic() < deadline, "no COPY attempt failed while PostgreSQL was stopped"
            time.sleep(POLL_INTERVAL_S)
        rs_server.kill()
    finally:
        pg.start()
    rs_server.start()
    # Every row, each once (the primary key refuses a second copy).
    assert [r["id"] for r in pg.wait_rows("events_crash", 10)] == list(range(10))


def test_a_copy_into_a_missing_table_leaves_its_manifest_under_errors_after_the_retry_duration(rs_server, pg):
    firehose, s3 = clients(rs_server.endpoint)
    config = redshift_config(pg, "no_such_table", "rs-missing", "JSON 'auto'", RetryOptions={"DurationInSeconds": 2})
    create(firehose, s3, "missing", config)
    records = [json.dumps({"id": i}).encode() for i in range(4)]
    put(firehose, "missing", records)
    deadline = time.monotonic() + DEADLINE_S
    while not (errors := objects(s3, "rs-missing", "errors/manifests/")):
        assert time.monotonic() < deadline, "no manifest under errors/manifests/"
        time.sleep(POLL_INTERVAL_S)
    [(key, body)] = errors.items()
    [entry] = json.loads(body)["entries"]
    staged_key = entry["url"].removeprefix("s3://rs-missing/")
    assert s3.get_object(Bucket="rs-missing", Key=staged_key)["Body"].read() == b"".join(records)
    manifests = objects(s3, "rs-missing", "manifests/")
    assert [k.removeprefix("manifests/") for k in manifests] == [key.removeprefix("errors/manifests/")]
    label = 'delivery_stream="missing"'
    samples = scrape_samples(rs_server.metrics_url)
    assert samples[("riffle_firehose_delivery_to_redshift_records_total", label)] == 0
    # Attempts at 0 s, 1 s and the window's end (2 s).
    assert samples[("riffle_firehose_delivery_to_redshift_failed_requests_total", label)] >= 2


def test_processing_applies_before_the_copy_and_the_source_records_are_backed_up_when_enabled(rs_server, pg):
    pg.sql("CREATE TABLE events_backup (id int)")
    firehose, s3 = clients(rs_server.endpoint)
    s3.create_bucket(Bucket="rs-source-backup")
    config = redshift_config(
        pg, "events_backup", "rs-staging", "JSON 'auto'",
        ProcessingConfiguration={"Enabled": True, "Processors": [
            {"Type": "Decompression", "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]},
        ]},
        S3BackupMode="Enabled",
        S3BackupConfiguration={
            "RoleARN": ROLE,
            "BucketARN": "arn:aws:s3:::rs-source-backup",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
    )
    create(firehose, s3, "backed-up", config)
    # Each record GZIP-compressed: the Decompression processor inflates it
    # before staging; the backup keeps the source records as they came.
    records = [gzip.compress(json.dumps({"id": i}).encode()) for i in range(8)]
    put(firehose, "backed-up", records)
    assert [r["id"] for r in pg.wait_rows("events_backup", 8)] == list(range(8))
    deadline = time.monotonic() + DEADLINE_S
    while b"".join(objects(s3, "rs-source-backup").values()) != b"".join(records):
        assert time.monotonic() < deadline, "the source records were not backed up"
        time.sleep(POLL_INTERVAL_S)
    rs = firehose.describe_delivery_stream(DeliveryStreamName="backed-up")["DeliveryStreamDescription"][
        "Destinations"][0]["RedshiftDestinationDescription"]
    assert rs["S3BackupMode"] == "Enabled"
    assert rs["S3BackupDescription"]["BucketARN"] == "arn:aws:s3:::rs-source-backup"
    samples = scrape_samples(rs_server.metrics_url)
    assert samples[("riffle_firehose_backup_to_s3_records_total", 'delivery_stream="backed-up"')] == len(records)


def test_an_untranslatable_copy_option_is_refused_with_the_option_named(rs_server, pg):
    firehose, s3 = clients(rs_server.endpoint)
    with pytest.raises(ClientError) as refused:
        firehose.create_delivery_stream(
            DeliveryStreamName="lzop",
            RedshiftDestinationConfiguration=redshift_config(pg, "t", "rs-lzop", "JSON 'auto' LZOP"),
        )
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidArgumentException"
    assert error["Message"].startswith("CopyOptions LZOP is not supported: Riffle runs the COPY on PostgreSQL")
    # An update is checked the same way, and a good one takes effect.
    create(firehose, s3, "updated", redshift_config(pg, "t", "rs-update", "JSON 'auto'"))
    version = firehose.describe_delivery_stream(DeliveryStreamName="updated")["DeliveryStreamDescription"]["VersionId"]
    update = {"DeliveryStreamName": "updated", "CurrentDeliveryStreamVersionId": version,
              "DestinationId": "destinationId-000000000001"}
    with pytest.raises(ClientError) as refused:
        firehose.update_destination(**update, RedshiftDestinationUpdate={
            "CopyCommand": {"DataTableName": "t", "CopyOptions": "JSON 's3://b/jsonpaths.json'"}})
    assert "JSON 's3://b/jsonpaths.json' (a JSONPaths file)" in refused.value.response["Error"]["Message"]
    firehose.update_destination(**update, RedshiftDestinationUpdate={
        "CopyCommand": {"DataTableName": "t2", "CopyOptions": "CSV"}, "RetryOptions": {"DurationInSeconds": 60}})
    rs = firehose.describe_delivery_stream(DeliveryStreamName="updated")["DeliveryStreamDescription"][
        "Destinations"][0]["RedshiftDestinationDescription"]
    assert rs["CopyCommand"] == {"DataTableName": "t2", "CopyOptions": "CSV"}
    assert rs["RetryOptions"] == {"DurationInSeconds": 60}
    assert rs["Username"] == USER


def test_the_aws_cli_creates_a_redshift_stream_whose_rows_arrive(rs_server, pg):
    pg.sql("CREATE TABLE events_cli (id int, word text)")
    _, s3 = clients(rs_server.endpoint)
    s3.create_bucket(Bucket="rs-cli")
    config = redshift_config(pg, "events_cli", "rs-cli", "DELIMITER ','")
    aws(rs_server.endpoint, "firehose", "create-delivery-stream", "--delivery-stream-name", "cli-redshift",
        "--redshift-destination-configuration", json.dumps(config))
    firehose, _ = clients(rs_server.endpoint)
    wait_active(firehose, "cli-redshift")
    put(firehose, "cli-redshift", [b"1,one\n", b"2,two\n"])
    assert pg.wait_rows("events_cli", 2) == [{"id": 1, "word": "one"}, {"id": 2, "word": "two"}]
