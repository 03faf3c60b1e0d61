"""The Glue Data Catalog subset through boto3 and the aws CLI against `riffle
serve`: databases and tables as set-up scripts create them, AWS's errors for
missing and duplicate ones, and a catalog that survives a restart."""

from __future__ import annotations

import json
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import AWS_CLI, RiffleServer
from kinesis_helpers import REGION

NO_RETRIES = Config(retries={"max_attempts": 1})
COLUMNS = [
    {"Name": "id", "Type": "bigint"},
    {"Name": "tags", "Type": "map<string,array<struct<k:string,v:decimal(10,2)>>>"},
]


def glue_client(endpoint: str):
    return boto3.client("glue", endpoint_url=endpoint, region_name=REGION, config=NO_RETRIES)


def create_orders(glue) -> None:
    glue.create_database(DatabaseInput={"Name": "Sales", "Description": "orders and such"})
    glue.create_table(
        DatabaseName="sales",
        TableInput={"Name": "Orders", "StorageDescriptor": {"Columns": COLUMNS}, "TableType": "EXTERNAL_TABLE"},
    )


def test_tables_are_defined_read_and_listed_as_aws_answers(server):
    glue = glue_client(server.endpoint)
    create_orders(glue)
    table = glue.get_table(DatabaseName="sales", Name="orders")["Table"]
    assert table["Name"] == "orders"
    assert table["DatabaseName"] == "sales"
    assert table["StorageDescriptor"]["Columns"] == COLUMNS
    assert table["VersionId"] == "0"
    assert table["CreateTime"].year >= 2024
    database = glue.get_database(Name="SALES")["Database"]
    assert (database["Name"], database["Description"]) == ("sales", "orders and such")
    assert [d["Name"] for d in glue.get_databases()["DatabaseList"]] == ["sales"]
    glue.update_table(DatabaseName="sales", TableInput={"Name": "orders", "StorageDescriptor": {"Columns": COLUMNS[:1]}})
    tables = glue.get_tables(DatabaseName="sales")["TableList"]
    assert [(t["Name"], t["VersionId"], len(t["StorageDescriptor"]["Columns"])) for t in tables] == [("orders", "1", 1)]
    glue.delete_table(DatabaseName="sales", Name="orders")
    assert glue.get_tables(DatabaseName="sales")["TableList"] == []
    glue.delete_database(Name="sales")
    assert glue.get_databases()["DatabaseList"] == []


def test_missing_and_duplicate_entities_get_awss_errors(server):
    glue = glue_client(server.endpoint)
    with pytest.raises(ClientError) as err:
        glue.get_table(DatabaseName="nope", Name="t")
    assert err.value.response["Error"] == {"Code": "EntityNotFoundException", "Message": "Database nope not found."}
    create_orders(glue)
    with pytest.raises(ClientError) as err:
        glue.get_table(DatabaseName="sales", Name="missing")
    assert err.value.response["Error"] == {"Code": "EntityNotFoundException", "Message": "Table missing not found."}
    with pytest.raises(ClientError) as err:
        glue.create_table(DatabaseName="sales", TableInput={"Name": "ORDERS"})
    assert err.value.response["Error"]["Code"] == "AlreadyExistsException"
    with pytest.raises(ClientError) as err:
        glue.create_database(DatabaseInput={"Name": "sales"})
    assert err.value.response["Error"] == {"Code": "AlreadyExistsException", "Message": "Database already exists."}
    with pytest.raises(ClientError) as err:
        glue.get_partitions(DatabaseName="sales", TableName="orders")
    assert err.value.response["Error"]["Code"] == "UnknownOperationException"


def test_the_catalog_survives_a_restart(tmp_path):
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path)
    srv.start()
    try:
        create_orders(glue_client(srv.endpoint))
    finally:
        assert srv.terminate() == 0
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path)
    srv.start()
    try:
        table = glue_client(srv.endpoint).get_table(DatabaseName="sales", Name="orders")["Table"]
        assert table["StorageDescriptor"]["Columns"] == COLUMNS
    finally:
        assert srv.terminate() == 0


def test_the_aws_cli_creates_and_reads_a_table(server):
    def aws(*args: str) -> dict | None:
        argv = [str(AWS_CLI), "--endpoint-url", server.endpoint, "--output", "json", "--region", REGION, "glue", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    aws("create-database", "--database-input", json.dumps({"Name": "web"}))
    table_input = {"Name": "clicks", "StorageDescriptor": {"Columns": [{"Name": "url", "Type": "string"}]}}
    aws("create-table", "--database-name", "web", "--table-input", json.dumps(table_input))
    got = aws("get-table", "--database-name", "web", "--name", "clicks")
    assert got["Table"]["StorageDescriptor"]["Columns"] == [{"Name": "url", "Type": "string"}]
