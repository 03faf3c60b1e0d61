"""The DynamoDB subset (what the Kinesis Client Library keeps its leases in)
through boto3's client and its `Table` resource, against the real server:
tables, items of every type, condition and update expressions, the legacy
conditional parameters, Query and Scan with their pages, batches, and
DynamoDB's errors and messages. Lease traffic is checked for atomicity
under concurrency and for durability across SIGKILL."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from kinesis_helpers import REGION

DEADLINE_S = 10.0


def dynamodb_client(endpoint: str, **config):
    """No retries: a server error must fail the test."""
    return boto3.session.Session().client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30, **config),
    )


@pytest.fixture
def ddb(server):
    return dynamodb_client(server.endpoint)


@pytest.fixture
def raw_ddb(server):
    """Without botocore's own parameter checks, to reach the server's."""
    return dynamodb_client(server.endpoint, parameter_validation=False)


@pytest.fixture
def resource(server):
    return boto3.session.Session().resource(
        "dynamodb", endpoint_url=server.endpoint, region_name=REGION, config=Config(retries={"total_max_attempts": 1})
    )


def error(call, *args, **kwargs) -> dict:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    return info.value.response["Error"]


def create_leases(ddb, name: str = "leases", **extra) -> None:
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 10})


def create_ranged(ddb, name: str = "events") -> None:
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )


def lease(key: str, owner: str = "worker-1", counter: int = 0) -> dict:
    return {"leaseKey": {"S": key}, "leaseOwner": {"S": owner}, "leaseCounter": {"N": str(counter)}}


# ---------------------------------------------------------------- tables


def test_a_table_is_created_creating_then_active_protected_from_deletion_and_deleted(ddb):
    created = ddb.create_table(
        TableName="app-leases",
        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        DeletionProtectionEnabled=True,
    )["TableDescription"]
    assert created["TableStatus"] == "CREATING"
    assert created["TableArn"] == f"arn:aws:dynamodb:{REGION}:000000000000:table/app-leases"
    ddb.get_waiter("table_exists").wait(TableName="app-leases", WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    table = ddb.describe_table(TableName="app-leases")["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionProtectionEnabled"] is True
    assert table["KeySchema"] == [{"AttributeName": "leaseKey", "KeyType": "HASH"}]
    assert table["ItemCount"] == 0

    refused = error(ddb.delete_table, TableName="app-leases")
    assert refused["Code"] == "ValidationException"
    assert "protected against deletion" in refused["Message"]

    ddb.update_table(TableName="app-leases", DeletionProtectionEnabled=False)
    deleted = ddb.delete_table(TableName="app-leases")["TableDescription"]
    assert deleted["TableStatus"] == "DELETING"
    ddb.get_waiter("table_not_exists").wait(TableName="app-leases", WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    gone = error(ddb.describe_table, TableName="app-leases")
    assert gone == {
        "Code": "ResourceNotFoundException",
        "Message": "Requested resource not found: Table: app-leases not found",
    }


def test_creating_an_existing_table_or_a_bad_schema_is_refused_with_dynamodbs_errors(ddb, raw_ddb):
    create_leases(ddb)
    again = error(
        ddb.create_table,
        TableName="leases",
        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert again == {"Code": "ResourceInUseException", "Message": "Table already exists: leases"}

    undefined = error(
        ddb.create_table,
        TableName="tbl1",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "other", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert undefined["Code"] == "ValidationException"
    assert "Some index key attributes are not defined in AttributeDefinitions" in undefined["Message"]

    no_capacity = error(
        ddb.create_table,
        TableName="tbl2",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
    )
    assert no_capacity["Message"] == (
        "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be "
        "specified when BillingMode is PROVISIONED"
    )

    range_first = error(
        ddb.create_table,
        TableName="tbl3",
        KeySchema=[{"AttributeName": "id", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert range_first["Message"] == "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"

    short = error(
        raw_ddb.create_table,
        TableName="ab",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert short["Message"] == (
        "1 validation error detected: Value 'ab' at 'tableName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 3"
    )


def test_list_tables_pages_in_name_order(ddb):
    names = [f"table-{i}" for i in range(5)]
    for name in reversed(names):
        create_leases(ddb, name)
    first = ddb.list_tables(Limit=2)
    assert first["TableNames"] == names[:2]
    assert first["LastEvaluatedTableName"] == names[1]
    pages = ddb.get_paginator("list_tables").paginate(PaginationConfig={"PageSize": 2})
    assert [n for page in pages for n in page["TableNames"]] == names
    last = ddb.list_tables(ExclusiveStartTableName=names[2])
    assert last["TableNames"] == names[3:]
    assert "LastEvaluatedTableName" not in last


def test_kcl3_adds_a_keys_only_owner_index_waits_for_it_and_queries_it(ddb):
    create_leases(ddb)
    for i, owner in enumerate(["w1", "w2", "w1", "w1"]):
        item = lease(f"shard-{i}", owner) | {"checkpoint": {"S": "TRIM_HORIZON"}}
        ddb.put_item(TableName="leases", Item=item)
    updated = ddb.update_table(
        TableName="leases",
        AttributeDefinitions=[{"AttributeName": "leaseOwner", "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "LeaseOwnerToLeaseKeyIndex",
                    "KeySchema": [
                        {"AttributeName": "leaseOwner", "KeyType": "HASH"},
                        {"AttributeName": "leaseKey", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            }
        ],
    )["TableDescription"]
    assert updated["GlobalSecondaryIndexes"][0]["IndexStatus"] == "CREATING"
    deadline = time.monotonic() + DEADLINE_S
    while True:
        indexes = ddb.describe_table(TableName="leases")["Table"]["GlobalSecondaryIndexes"]
        if indexes[0]["IndexStatus"] == "ACTIVE":
            break
        assert time.monotonic() < deadline, "the index never became ACTIVE"
        time.sleep(0.05)
    assert indexes[0]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    mine = ddb.query(
        TableName="leases",
        IndexName="LeaseOwnerToLeaseKeyIndex",
        KeyConditionExpression="leaseOwner = :o",
        ExpressionAttributeValues={":o": {"S": "w1"}},
    )
    assert mine["Items"] == [
        {"leaseOwner": {"S": "w1"}, "leaseKey": {"S": f"shard-{i}"}} for i in (0, 2, 3)
    ]
    page = ddb.query(
        TableName="leases",
        IndexName="LeaseOwnerToLeaseKeyIndex",
        KeyConditionExpression="leaseOwner = :o",
        ExpressionAttributeValues={":o": {"S": "w1"}},
        Limit=2,
    )
    assert page["LastEvaluatedKey"] == {"leaseOwner": {"S": "w1"}, "leaseKey": {"S": "shard-2"}}
    rest = ddb.query(
        TableName="leases",
        IndexName="LeaseOwnerToLeaseKeyIndex",
        KeyConditionExpression="leaseOwner = :o",
        ExpressionAttributeValues={":o": {"S": "w1"}},
        ExclusiveStartKey=page["LastEvaluatedKey"],
    )
    assert [i["leaseKey"]["S"] for i in rest["Items"]] == ["shard-3"]
    wrong_type = error(ddb.put_item, TableName="leases", Item={"leaseKey": {"S": "x"}, "leaseOwner": {"N": "1"}})
    assert wrong_type["Message"] == (
        "One or more parameter values were invalid: Type mismatch for Index Key leaseOwner Expected: S "
        "Actual: N IndexName: LeaseOwnerToLeaseKeyIndex"
    )


# ---------------------------------------------------------------- items


def test_put_get_and_delete_answer_the_old_item_when_asked(ddb):
    create_leases(ddb)
    assert "Attributes" not in ddb.put_item(TableName="leases", Item=lease("s-1"), ReturnValues="ALL_OLD")
    replaced = ddb.put_item(TableName="leases", Item=lease("s-1", "w2"), ReturnValues="ALL_OLD")
    assert replaced["Attributes"] == lease("s-1")
    got = ddb.get_item(TableName="leases", Key={"leaseKey": {"S": "s-1"}}, ConsistentRead=True)
    assert got["Item"] == lease("s-1", "w2")
    projected = ddb.get_item(
        TableName="leases",
        Key={"leaseKey": {"S": "s-1"}},
        ProjectionExpression="#o, leaseKey",
        ExpressionAttributeNames={"#o": "leaseOwner"},
    )
    assert projected["Item"] == {"leaseKey": {"S": "s-1"}, "leaseOwner": {"S": "w2"}}
    deleted = ddb.delete_item(TableName="leases", Key={"leaseKey": {"S": "s-1"}}, ReturnValues="ALL_OLD")
    assert deleted["Attributes"] == lease("s-1", "w2")
    assert "Item" not in ddb.get_item(TableName="leases", Key={"leaseKey": {"S": "s-1"}})
    bad_return = error(ddb.put_item, TableName="leases", Item=lease("s-2"), ReturnValues="ALL_NEW")
    assert bad_return == {"Code": "ValidationException", "Message": "ReturnValues can only be ALL_OLD or NONE"}


def test_every_attribute_type_round_trips_and_numbers_are_normalised(ddb):
    create_leases(ddb)
    item = {
        "leaseKey": {"S": "types"},
        "s": {"S": "text ü"},
        "n": {"N": "1.50"},
        "zero": {"N": "-0"},
        "big": {"N": "1e2"},
        "b": {"B": b"\x00\x01\xff"},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "l": {"L": [{"S": "a"}, {"N": "2"}, {"L": []}]},
        "m": {"M": {"inner": {"M": {"deep": {"BOOL": False}}}}},
        "ss": {"SS": ["b", "a"]},
        "ns": {"NS": ["10", "9.0"]},
        "bs": {"BS": [b"\x01", b"\x00"]},
    }
    ddb.put_item(TableName="leases", Item=item)
    got = ddb.get_item(TableName="leases", Key={"leaseKey": {"S": "types"}})["Item"]
    assert got["n"] == {"N": "1.5"}
    assert got["zero"] == {"N": "0"}
    assert got["big"] == {"N": "100"}
    assert got["b"] == {"B": b"\x00\x01\xff"}
    assert sorted(got["ss"]["SS"]) == ["a", "b"]
    assert sorted(got["ns"]["NS"], key=Decimal) == ["9", "10"]
    assert sorted(got["bs"]["BS"]) == [b"\x00", b"\x01"]
    for name in ("s", "t", "z", "l", "m"):
        assert got[name] == item[name], name


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("abc", "A value provided cannot be converted into a number"),
        ("1" * 39, "Attempting to store more than 38 significant digits in a Number"),
        ("1e126", "Number overflow. Attempting to store a number with magnitude larger than supported range"),
        ("1e-131", "Number underflow. Attempting to store a number with magnitude smaller than supported range"),
    ],
)
def test_numbers_beyond_dynamodbs_range_or_precision_are_refused(ddb, number, message):
    create_leases(ddb)
    refused = error(ddb.put_item, TableName="leases", Item={"leaseKey": {"S": "n"}, "v": {"N": number}})
    assert refused == {"Code": "ValidationException", "Message": message}


def test_sets_must_be_non_empty_and_without_duplicates(raw_ddb):
    create_leases(raw_ddb)
    empty = error(raw_ddb.put_item, TableName="leases", Item={"leaseKey": {"S": "k"}, "s": {"SS": []}})
    assert empty["Message"] == "One or more parameter values were invalid: An string set  may not be empty"
    dup = error(raw_ddb.put_item, TableName="leases", Item={"leaseKey": {"S": "k"}, "s": {"NS": ["1", "1.0"]}})
    assert dup["Message"] == "One or more parameter values were invalid: Input collection [1, 1] contains duplicates."


def test_an_item_over_400_kb_is_refused_and_one_under_is_kept(ddb):
    create_leases(ddb)
    big = error(ddb.put_item, TableName="leases", Item={"leaseKey": {"S": "k"}, "v": {"S": "x" * (400 * 1024)}})
    assert big == {"Code": "ValidationException", "Message": "Item size has exceeded the maximum allowed size"}
    ddb.put_item(TableName="leases", Item={"leaseKey": {"S": "k"}, "v": {"S": "x" * (400 * 1024 - 20)}})
    assert len(ddb.get_item(TableName="leases", Key={"leaseKey": {"S": "k"}})["Item"]["v"]["S"]) == 400 * 1024 - 20


def test_keys_missing_mistyped_or_not_matching_the_schema_are_refused(ddb):
    create_leases(ddb)
    missing = error(ddb.put_item, TableName="leases", Item={"other": {"S": "x"}})
    assert missing["Message"] == "One or more parameter values were invalid: Missing the key leaseKey in the item"
    mistyped = error(ddb.put_item, TableName="leases", Item={"leaseKey": {"N": "1"}})
    assert mistyped["Message"] == (
        "One or more parameter values were invalid: Type mismatch for key leaseKey expected: S actual: N"
    )
    extra = error(ddb.get_item, TableName="leases", Key={"leaseKey": {"S": "a"}, "x": {"S": "b"}})
    assert extra["Message"] == "The provided key element does not match the schema"
    empty = error(ddb.put_item, TableName="leases", Item={"leaseKey": {"S": ""}})
    assert "cannot contain an empty string value. Key: leaseKey" in empty["Message"]
    unknown = error(ddb.get_item, TableName="nope", Key={"leaseKey": {"S": "a"}})
    assert unknown == {"Code": "ResourceNotFoundException", "Message": "Requested resource not found"}


# ---------------------------------------------------------------- expressions


CONDITIONS = [
    ("attribute_exists(leaseKey)", True),
    ("attribute_not_exists(leaseKey)", False),
    ("attribute_not_exists(#missing)", True),
    ("leaseOwner = :w1 AND leaseCounter = :seven", True),
    ("leaseOwner <> :w1 OR leaseCounter > :seven", False),
    ("NOT (leaseOwner <> :w1)", True),
    ("leaseCounter BETWEEN :five AND :ten", True),
    ("leaseCounter IN (:five, :seven)", True),
    ("leaseCounter < :ten AND leaseCounter >= :seven", True),
    ("begins_with(leaseKey, :prefix)", True),
    ("contains(parents, :parent)", True),
    ("attribute_type(parents, :ss)", True),
    ("size(leaseOwner) = :two", True),
    ("(leaseOwner = :w2 OR leaseCounter = :five) AND attribute_exists(leaseKey)", False),
]


@pytest.mark.parametrize(("expression", "holds"), CONDITIONS)
def test_condition_expressions_decide_conditional_writes(ddb, expression, holds):
    create_leases(ddb)
    ddb.put_item(TableName="leases", Item=lease("shard-1", "w1", 7) | {"parents": {"SS": ["shard-0"]}})
    values = {
        ":w1": {"S": "w1"},
        ":w2": {"S": "w2"},
        ":seven": {"N": "7"},
        ":five": {"N": "5"},
        ":ten": {"N": "10"},
        ":prefix": {"S": "shard"},
        ":parent": {"S": "shard-0"},
        ":ss": {"S": "SS"},
        ":two": {"N": "2"},
    }
    used = {k: v for k, v in values.items() if k in expression}
    names = {"#missing": "nothing"} if "#missing" in expression else None
    kwargs = {"ExpressionAttributeNames": names} if names else {}
    call = dict(
        TableName="leases",
        Key={"leaseKey": {"S": "shard-1"}},
        UpdateExpression="SET touched = :true",
        ConditionExpression=expression,
        ExpressionAttributeValues=used | {":true": {"BOOL": True}},
        **kwargs,
    )
    if holds:
        ddb.update_item(**call)
        assert ddb.get_item(TableName="leases", Key={"leaseKey": {"S": "shard-1"}})["Item"]["touched"] == {"BOOL": True}
    else:
        assert error(ddb.update_item, **call) == {
            "Code": "ConditionalCheckFailedException",
            "Message": "The conditional request failed",
        }


def test_the_table_resource_builds_conditions_and_updates_that_the_server_runs(resource):
    table = resource.create_table(
        TableName="leases",
        KeySchema=[{"AttributeName": "leaseKey", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "leaseKey", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    table.wait_until_exists()
    table.put_item(Item={"leaseKey": "shard-0", "leaseOwner": "w1", "leaseCounter": 1}, ConditionExpression=Attr("leaseKey").not_exists())
    with pytest.raises(ClientError) as taken:
        table.put_item(Item={"leaseKey": "shard-0"}, ConditionExpression=Attr("leaseKey").not_exists())
    assert taken.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert "Item" not in taken.value.response
    with pytest.raises(ClientError) as shown:
        table.put_item(
            Item={"leaseKey": "shard-0"},
            ConditionExpression=Attr("leaseKey").not_exists(),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    # The SDK reads the item as it was from the error, as KCL-style callers do.
    assert shown.value.response["Item"] == {
        "leaseKey": {"S": "shard-0"},
        "leaseOwner": {"S": "w1"},
        "leaseCounter": {"N": "1"},
    }
    renewed = table.update_item(
        Key={"leaseKey": "shard-0"},
        UpdateExpression="SET leaseCounter = leaseCounter + :one",
        ConditionExpression=Attr("leaseOwner").eq("w1") & Attr("leaseCounter").eq(1),
        ExpressionAttributeValues={":one": 1},
        ReturnValues="UPDATED_NEW",
    )
    assert renewed["Attributes"] == {"leaseCounter": Decimal(2)}
    with pytest.raises(ClientError):
        table.update_item(
            Key={"leaseKey": "shard-0"},
            UpdateExpression="SET leaseOwner = :w",
            ConditionExpression=Attr("leaseCounter").eq(1) | Attr("leaseOwner").is_in(["w3", "w4"]),
            ExpressionAttributeValues={":w": "w2"},
        )
    assert table.get_item(Key={"leaseKey": "shard-0"})["Item"]["leaseOwner"] == "w1"


def test_update_expressions_set_remove_add_and_delete_and_answer_what_changed(ddb):
    create_leases(ddb)
    ddb.put_item(
        TableName="leases",
        Item={
            "leaseKey": {"S": "k"},
            "n": {"N": "10"},
            "gone": {"S": "x"},
            "tags": {"SS": ["a", "b"]},
            "retired": {"SS": ["a", "b"]},
            "hist": {"L": [{"N": "1"}]},
            "m": {"M": {"x": {"N": "1"}}},
        },
    )
    old = ddb.update_item(
        TableName="leases",
        Key={"leaseKey": {"S": "k"}},
        UpdateExpression=(
            "SET n = n - :one, fresh = if_not_exists(fresh, :zero), hist = list_append(hist, :more), m.y = :one "
            "REMOVE gone ADD tags :c, adds :one DELETE retired :a"
        ),
        ExpressionAttributeValues={
            ":one": {"N": "1"},
            ":zero": {"N": "0"},
            ":more": {"L": [{"N": "2"}]},
            ":c": {"SS": ["c"]},
            ":a": {"SS": ["a"]},
        },
        ReturnValues="UPDATED_OLD",
    )["Attributes"]
    assert old["n"] == {"N": "10"} and old["gone"] == {"S": "x"} and "fresh" not in old
    item = ddb.get_item(TableName="leases", Key={"leaseKey": {"S": "k"}})["Item"]
    assert item["n"] == {"N": "9"}
    assert item["fresh"] == {"N": "0"}
    assert item["hist"] == {"L": [{"N": "1"}, {"N": "2"}]}
    assert item["m"] == {"M": {"x": {"N": "1"}, "y": {"N": "1"}}}
    assert "gone" not in item
    assert item["adds"] == {"N": "1"}
    assert sorted(item["tags"]["SS"]) == ["a", "b", "c"]
    assert item["retired"] == {"SS": ["b"]}
    all_new = ddb.update_item(
        TableName="leases",
        Key={"leaseKey": {"S": "new"}},
        UpdateExpression="SET v = :v",
        ExpressionAttributeValues={":v": {"S": "created"}},
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert all_new == {"leaseKey": {"S": "new"}, "v": {"S": "created"}}


def test_bad_update_expressions_are_refused_with_dynamodbs_texts(ddb):
    create_leases(ddb)
    ddb.put_item(TableName="leases", Item={"leaseKey": {"S": "k"}, "s": {"S": "text"}})
    cases = [
        (
            dict(UpdateExpression="SET s = s + :one", ExpressionAttributeValues={":one": {"N": "1"}}),
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: STRING",
        ),
        (
            dict(UpdateExpression="SET leaseKey = :v", ExpressionAttributeValues={":v": {"S": "x"}}),
            "One or more parameter values were invalid: Cannot update attribute leaseKey. This attribute is part of the key",
        ),
        (
            dict(UpdateExpression="SET a = :v, a = :v", ExpressionAttributeValues={":v": {"S": "x"}}),
            "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a]",
        ),
        (
            dict(UpdateExpression="SET a = :v", ExpressionAttributeValues={":v": {"S": "x"}, ":w": {"S": "y"}}),
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}",
        ),
        (
            dict(UpdateExpression="SET #a = :v", ExpressionAttributeValues={":v": {"S": "x"}}),
            "Invalid UpdateExpression: An expression attribute name used in the document path is not defined; attribute name: #a",
        ),
        (
            dict(UpdateExpression="SET a = :nope"),
            "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :nope",
        ),
        (
            dict(UpdateExpression="SET a = ", ExpressionAttributeValues={":v": {"S": "x"}}),
            'Invalid UpdateExpression: Syntax error; token: "<EOF>", near: "="',
        ),
        (
            dict(
                UpdateExpression="SET a = :v",
                ExpressionAttributeValues={":v": {"S": "x"}},
                Expected={"a": {"Exists": False}},
            ),
            "Can not use both expression and non-expression parameters in the same request: "
            "Non-expression parameters: {Expected} Expression parameters: {UpdateExpression}",
        ),
    ]
    for kwargs, message in cases:
        refused = error(ddb.update_item, TableName="leases", Key={"leaseKey": {"S": "k"}}, **kwargs)
        assert refused == {"Code": "ValidationException", "Message": message}, kwargs


def test_kcl1_legacy_expected_and_attribute_updates(ddb):
    create_leases(ddb)
    # createLeaseIfNotExists: Expected leaseKey Exists false.
    ddb.put_item(TableName="leases", Item=lease("shard-0", "w1", 0), Expected={"leaseKey": {"Exists": False}})
    taken = error(ddb.put_item, TableName="leases", Item=lease("shard-0"), Expected={"leaseKey": {"Exists": False}})
    assert taken["Code"] == "ConditionalCheckFailedException"
    # renewLease: the counter as expected, then ADD 1.
    renewed = ddb.update_item(
        TableName="leases",
        Key={"leaseKey": {"S": "shard-0"}},
        Expected={"leaseCounter": {"Value": {"N": "0"}}, "leaseOwner": {"Value": {"S": "w1"}}},
        AttributeUpdates={
            "leaseCounter": {"Action": "ADD", "Value": {"N": "1"}},
            "checkpoint": {"Action": "PUT", "Value": {"S": "49590338271490256608559692538361571095921575989136588898"}},
            "ownerSwitchesSinceCheckpoint": {"Action": "DELETE"},
            "parents": {"Action": "ADD", "Value": {"SS": ["p1"]}},
        },
        ReturnValues="ALL_NEW",
    )["Attributes"]
    assert renewed["leaseCounter"] == {"N": "1"}
    assert renewed["parents"] == {"SS": ["p1"]}
    stale = error(
        ddb.update_item,
        TableName="leases",
        Key={"leaseKey": {"S": "shard-0"}},
        Expected={"leaseCounter": {"Value": {"N": "0"}}},
        AttributeUpdates={"leaseOwner": {"Action": "PUT", "Value": {"S": "thief"}}},
    )
    assert stale["Code"] == "ConditionalCheckFailedException"
    ddb.update_item(
        TableName="leases",
        Key={"leaseKey": {"S": "shard-0"}},
        Expected={"leaseCounter": {"ComparisonOperator": "GE", "AttributeValueList": [{"N": "1"}]}},
        AttributeUpdates={"parents": {"Action": "DELETE", "Value": {"SS": ["p1"]}}},
    )
    assert "parents" not in ddb.get_item(TableName="leases", Key={"leaseKey": {"S": "shard-0"}})["Item"]
    contradictory = error(
        ddb.put_item, TableName="leases", Item=lease("x"), Expected={"leaseKey": {"Exists": True}}
    )
    assert contradictory["Message"] == (
        "One or more parameter values were invalid: Value must be provided when Exists is true for Attribute: leaseKey"
    )
    # Deleting on the leaseOwner condition (KCL's deleteLease).
    ddb.delete_item(TableName="leases", Key={"leaseKey": {"S": "shard-0"}}, Expected={"leaseOwner": {"Value": {"S": "w1"}}})
    assert ddb.scan(TableName="leases")["Count"] == 0


# ---------------------------------------------------------------- reads


def test_query_by_key_conditions_in_both_directions_with_pages_and_filters(ddb):
    create_ranged(ddb)
    for sk in range(10):
        ddb.put_item(TableName="events", Item={"pk": {"S": "a"}, "sk": {"N": str(sk)}, "even": {"BOOL": sk % 2 == 0}})
    ddb.put_item(TableName="events", Item={"pk": {"S": "b"}, "sk": {"N": "1"}})

    def sks(**kwargs):
        result = ddb.query(TableName="events", **kwargs)
        return [int(i["sk"]["N"]) for i in result.get("Items", [])], result

    values = {":a": {"S": "a"}, ":three": {"N": "3"}, ":six": {"N": "6"}}
    assert sks(KeyConditionExpression="pk = :a", ExpressionAttributeValues={":a": values[":a"]})[0] == list(range(10))
    for op, expected in [("<", [0, 1, 2]), ("<=", [0, 1, 2, 3]), (">", list(range(4, 10))), (">=", list(range(3, 10))), ("=", [3])]:
        got, _ = sks(
            KeyConditionExpression=f"pk = :a AND sk {op} :three",
            ExpressionAttributeValues={":a": values[":a"], ":three": values[":three"]},
        )
        assert got == expected, op
    between, _ = sks(KeyConditionExpression="pk = :a AND sk BETWEEN :three AND :six", ExpressionAttributeValues=values)
    assert between == [3, 4, 5, 6]
    backwards, _ = sks(KeyConditionExpression="pk = :a", ExpressionAttributeValues={":a": values[":a"]}, ScanIndexForward=False, Limit=3)
    assert backwards == [9, 8, 7]
    filtered, result = sks(
        KeyConditionExpression="pk = :a",
        FilterExpression="even = :t",
        ExpressionAttributeValues={":a": values[":a"], ":t": {"BOOL": True}},
    )
    assert filtered == [0, 2, 4, 6, 8]
    assert (result["Count"], result["ScannedCount"]) == (5, 10)
    counted = ddb.query(TableName="events", KeyConditionExpression="pk = :a", ExpressionAttributeValues={":a": values[":a"]}, Select="COUNT")
    assert counted["Count"] == 10 and "Items" not in counted
    pages = ddb.get_paginator("query").paginate(
        TableName="events",
        KeyConditionExpression="pk = :a",
        ExpressionAttributeValues={":a": values[":a"]},
        PaginationConfig={"PageSize": 3},
    )
    assert [int(i["sk"]["N"]) for page in pages for i in page["Items"]] == list(range(10))
    legacy = ddb.query(
        TableName="events",
        KeyConditions={
            "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "a"}]},
            "sk": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "7"}]},
        },
    )
    assert [int(i["sk"]["N"]) for i in legacy["Items"]] == [8, 9]


def test_queries_without_a_partition_key_condition_are_refused(ddb):
    create_ranged(ddb)
    missing = error(ddb.query, TableName="events")
    assert missing["Message"] == (
        "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
    )
    only_range = error(ddb.query, TableName="events", KeyConditionExpression="sk > :v", ExpressionAttributeValues={":v": {"N": "1"}})
    assert only_range["Message"] == "Query condition missed key schema element: pk"
    with_or = error(
        ddb.query,
        TableName="events",
        KeyConditionExpression="pk = :v OR sk > :n",
        ExpressionAttributeValues={":v": {"S": "a"}, ":n": {"N": "1"}},
    )
    assert with_or["Message"] == "Invalid operator used in KeyConditionExpression: OR"
    no_index = error(
        ddb.query, TableName="events", IndexName="nope", KeyConditionExpression="pk = :v", ExpressionAttributeValues={":v": {"S": "a"}}
    )
    assert no_index["Message"] == "The table does not have the specified index: nope"


def test_scan_pages_and_parallel_segments_cover_every_item_once(ddb):
    create_leases(ddb)
    keys = {f"shard-{i:04d}" for i in range(60)}
    for key in keys:
        ddb.put_item(TableName="leases", Item=lease(key, "w1" if key < "shard-0030" else "w2"))
    pages = ddb.get_paginator("scan").paginate(TableName="leases", PaginationConfig={"PageSize": 7})
    seen = [i["leaseKey"]["S"] for page in pages for i in page["Items"]]
    assert sorted(seen) == sorted(keys)
    segmented = []
    for segment in range(4):
        for page in ddb.get_paginator("scan").paginate(
            TableName="leases", Segment=segment, TotalSegments=4, PaginationConfig={"PageSize": 5}
        ):
            segmented.extend(i["leaseKey"]["S"] for i in page["Items"])
    assert sorted(segmented) == sorted(keys)
    limited = ddb.scan(TableName="leases", Limit=10)
    assert limited["Count"] == 10 and "LastEvaluatedKey" in limited
    filtered = ddb.scan(TableName="leases", FilterExpression="leaseOwner = :o", ExpressionAttributeValues={":o": {"S": "w2"}})
    assert filtered["Count"] == 30 and filtered["ScannedCount"] == 60
    counted = ddb.scan(TableName="leases", Select="COUNT")
    assert counted["Count"] == 60 and "Items" not in counted
    out_of_range = error(ddb.scan, TableName="leases", Segment=4, TotalSegments=4)
    assert out_of_range["Message"] == (
        "The Segment parameter is zero-based and must be less than parameter TotalSegments: "
        "Segment: 4 is out of bounds; TotalSegments: 4"
    )


# ---------------------------------------------------------------- batches, TTL, tags


def test_batch_writes_and_gets(ddb):
    create_leases(ddb)
    writes = [{"PutRequest": {"Item": lease(f"k{i}")}} for i in range(20)]
    assert ddb.batch_write_item(RequestItems={"leases": writes})["UnprocessedItems"] == {}
    ddb.batch_write_item(RequestItems={"leases": [{"DeleteRequest": {"Key": {"leaseKey": {"S": "k0"}}}}]})
    got = ddb.batch_get_item(
        RequestItems={"leases": {"Keys": [{"leaseKey": {"S": k}} for k in ("k0", "k1", "k19")], "ProjectionExpression": "leaseKey"}}
    )
    assert sorted(i["leaseKey"]["S"] for i in got["Responses"]["leases"]) == ["k1", "k19"]
    assert got["Responses"]["leases"][0].keys() == {"leaseKey"}
    too_many = error(ddb.batch_write_item, RequestItems={"leases": [{"PutRequest": {"Item": lease(f"x{i}")}} for i in range(26)]})
    assert too_many["Code"] == "ValidationException"


def test_transact_write_items_applies_all_or_nothing(ddb):
    create_leases(ddb)
    ddb.put_item(TableName="leases", Item=lease("a", counter=1))
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "leases", "Item": lease("b"), "ConditionExpression": "attribute_not_exists(leaseKey)"}},
            {
                "Update": {
                    "TableName": "leases",
                    "Key": {"leaseKey": {"S": "a"}},
                    "UpdateExpression": "SET leaseCounter = leaseCounter + :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}},
                }
            },
        ]
    )
    assert ddb.get_item(TableName="leases", Key={"leaseKey": {"S": "a"}})["Item"]["leaseCounter"] == {"N": "2"}
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as info:
        ddb.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": "leases", "Key": {"leaseKey": {"S": "a"}}}},
                {"ConditionCheck": {"TableName": "leases", "Key": {"leaseKey": {"S": "b"}}, "ConditionExpression": "attribute_not_exists(leaseKey)"}},
            ],
        )
    cancelled = info.value.response
    assert "[None, ConditionalCheckFailed]" in cancelled["Error"]["Message"]
    assert cancelled["CancellationReasons"] == [
        {"Code": "None"},
        {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"},
    ]
    assert "Item" in ddb.get_item(TableName="leases", Key={"leaseKey": {"S": "a"}})


def test_time_to_live_and_tags_are_kept(ddb):
    create_leases(ddb)
    assert ddb.describe_time_to_live(TableName="leases")["TimeToLiveDescription"]["TimeToLiveStatus"] == "DISABLED"
    ddb.update_time_to_live(TableName="leases", TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"})
    ttl = ddb.describe_time_to_live(TableName="leases")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    arn = ddb.describe_table(TableName="leases")["Table"]["TableArn"]
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": "app", "Value": "kcl"}, {"Key": "team", "Value": "data"}])
    ddb.untag_resource(ResourceArn=arn, TagKeys=["team"])
    assert ddb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [{"Key": "app", "Value": "kcl"}]


# ---------------------------------------------------------------- the wire


def raw_call(endpoint: str, action: str, body: dict, content_type: str = "application/x-amz-json-1.0"):
    data = json.dumps(body).encode()
    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=data,
        headers={"Content-Type": content_type, "X-Amz-Target": f"DynamoDB_20120810.{action}"},
    )
    SigV4Auth(Credentials("AKIDRIFFLETEST", "riffle-test-secret"), "dynamodb", REGION).add_auth(request)
    prepared = urllib.request.Request(endpoint + "/", data=data, headers=dict(request.headers), method="POST")
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, response.headers["Content-Type"], json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        raw = err.read()
        is_json = (err.headers["Content-Type"] or "").startswith("application/x-amz-json")
        return err.code, err.headers["Content-Type"], (json.loads(raw) if is_json else raw)


def test_answers_are_json_1_0_with_dynamodbs_qualified_error_types(server, ddb):
    create_leases(ddb)
    status, content_type, body = raw_call(server.endpoint, "ListTables", {})
    assert (status, content_type, body) == (200, "application/x-amz-json-1.0", {"TableNames": ["leases"]})
    status, content_type, body = raw_call(server.endpoint, "GetItem", {"TableName": "nope", "Key": {"k": {"S": "x"}}})
    assert (status, content_type) == (400, "application/x-amz-json-1.0")
    assert body == {
        "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
        "message": "Requested resource not found",
    }
    _, _, body = raw_call(server.endpoint, "GetItem", {"TableName": "leases", "Key": {"k": {"S": "x"}}})
    assert body["__type"] == "com.amazon.coral.validate#ValidationException"
    status, _, body = raw_call(server.endpoint, "DescribeLimits", {})
    assert (status, body.get("__type")) == (400, "com.amazon.coral.service#UnknownOperationException")
    # DynamoDB does not speak JSON 1.1.
    status, _, _ = raw_call(server.endpoint, "ListTables", {}, content_type="application/x-amz-json-1.1")
    assert status == 404


# ---------------------------------------------------------------- lease traffic


def renew(client, key: str, workers_counter: dict) -> bool:
    """One KCL-style renewal: read the counter, then bump it on the
    condition that nobody else did. Returns whether it was acknowledged."""
    item = client.get_item(TableName="leases", Key={"leaseKey": {"S": key}}, ConsistentRead=True)["Item"]
    counter = int(item["leaseCounter"]["N"])
    try:
        client.update_item(
            TableName="leases",
            Key={"leaseKey": {"S": key}},
            UpdateExpression="SET leaseCounter = leaseCounter + :one",
            ConditionExpression="leaseCounter = :seen",
            ExpressionAttributeValues={":one": {"N": "1"}, ":seen": {"N": str(counter)}},
        )
    except ClientError as err:
        if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    workers_counter[key] = max(workers_counter.get(key, 0), counter + 1)
    return True


def test_conditional_renewals_from_many_workers_never_lose_an_increment(server, ddb):
    create_leases(ddb)
    ddb.put_item(TableName="leases", Item=lease("hot"))
    clients = [dynamodb_client(server.endpoint) for _ in range(8)]
    acknowledged = [0] * len(clients)
    failures = []

    def work(i):
        try:
            seen = {}
            while acknowledged[i] < 15:
                if renew(clients[i], "hot", seen):
                    acknowledged[i] += 1
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    final = ddb.get_item(TableName="leases", Key={"leaseKey": {"S": "hot"}})["Item"]["leaseCounter"]["N"]
    assert int(final) == sum(acknowledged) == 8 * 15


def test_acknowledged_lease_writes_survive_sigkill(server, ddb):
    create_leases(ddb)
    keys = [f"shard-{i}" for i in range(8)]
    for key in keys:
        ddb.put_item(TableName="leases", Item=lease(key))
    clients = [dynamodb_client(server.endpoint) for _ in keys]
    acked: dict[str, int] = {}
    stop = threading.Event()
    started = threading.Barrier(len(keys) + 1)

    def work(i):
        started.wait()
        while not stop.is_set():
            try:
                renew(clients[i], keys[i], acked)
            except Exception:  # noqa: BLE001 - the server is killed under it
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(keys))]
    for t in threads:
        t.start()
    started.wait()
    deadline = time.monotonic() + DEADLINE_S
    while sum(acked.values()) < 100:
        assert time.monotonic() < deadline, "renewals did not get going"
        time.sleep(0.01)
    server.kill()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    server.start()
    client = dynamodb_client(server.endpoint)
    for key in keys:
        counter = int(client.get_item(TableName="leases", Key={"leaseKey": {"S": key}})["Item"]["leaseCounter"]["N"])
        # The last renewal may have been durable without being acknowledged.
        assert acked.get(key, 0) <= counter <= acked.get(key, 0) + 1, key
    assert client.describe_table(TableName="leases")["Table"]["ItemCount"] == len(keys)
