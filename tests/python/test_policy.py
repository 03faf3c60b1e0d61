"""IAM-style policies with boto3 and the aws CLI: a server whose config file
gives an access key a policy lets that key call only what the policy allows,
answering the rest with AWS's AccessDeniedException, while keys without a
policy may call everything. A policy that cannot be enforced as written
stops the start."""

import json
import os
import subprocess
import time

import pytest

from conftest import AWS_CLI, RiffleServer, make_client
from kinesis_helpers import REGION, code_and_message, create_active_stream, error_of, get_records, iterator, shard_id

ADMIN, ADMIN_SECRET = "AKIDRIFFLEADMIN", "admin-secret"
READER, READER_SECRET = "AKIDRIFFLEREADER", "reader-secret"
ACCOUNT = "000000000000"

READ_ORDERS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["kinesis:Describe*", "kinesis:Get*", "kinesis:ListShards"],
            "Resource": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/orders*",
        },
        {"Effect": "Allow", "Action": "kinesis:ListStreams", "Resource": "*"},
        {"Effect": "Deny", "Action": "kinesis:GetRecords", "Resource": f"arn:aws:kinesis:*:*:stream/orders-audit"},
    ],
}


def config_file(tmp_path, policy_text):
    policy = tmp_path / "reader-policy.json"
    policy.write_text(policy_text)
    config = tmp_path / "riffle.toml"
    config.write_text(
        f'[credentials]\n{ADMIN} = "{ADMIN_SECRET}"\n{READER} = "{READER_SECRET}"\n\n[policies]\n{READER} = "{policy}"\n'
    )
    return config


@pytest.fixture
def governed_server(tmp_path):
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--config", str(config_file(tmp_path, json.dumps(READ_ORDERS)))],
    )
    srv.start()
    yield srv
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def client(endpoint, key_id, secret):
    return make_client(endpoint, key_id=key_id, secret=secret)


def denied(call, **kwargs):
    err = error_of(call, **kwargs)
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    code, message = code_and_message(err)
    assert code == "AccessDeniedException"
    return message


def test_a_key_with_a_policy_calls_only_what_it_allows(governed_server):
    admin = client(governed_server.endpoint, ADMIN, ADMIN_SECRET)
    reader = client(governed_server.endpoint, READER, READER_SECRET)
    for name in ["orders", "orders-audit", "payments"]:
        create_active_stream(admin, name)
        admin.put_record(StreamName=name, PartitionKey="k", Data=b"r")

    assert reader.describe_stream_summary(StreamName="orders")["StreamDescriptionSummary"]["StreamName"] == "orders"
    assert len(get_records(reader, ShardIterator=iterator(reader, "orders", shard_id(0)))["Records"]) == 1
    assert sorted(reader.list_streams()["StreamNames"]) == ["orders", "orders-audit", "payments"]

    orders_arn = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/orders"
    assert denied(reader.put_record, StreamName="orders", PartitionKey="k", Data=b"x") == (
        f"User: arn:aws:iam::{ACCOUNT}:user/{READER} is not authorized to perform: kinesis:PutRecord "
        f"on resource: {orders_arn} because no identity-based policy allows the kinesis:PutRecord action"
    )
    assert "stream/payments" in denied(reader.describe_stream_summary, StreamName="payments")
    audit_iterator = iterator(reader, "orders-audit", shard_id(0))
    assert denied(reader.get_records, ShardIterator=audit_iterator).endswith(
        "with an explicit deny in an identity-based policy"
    )
    # Denied calls changed nothing; the key without a policy still may.
    assert len(get_records(admin, ShardIterator=iterator(admin, "orders", shard_id(0)))["Records"]) == 1
    admin.delete_stream(StreamName="payments")


def test_the_aws_cli_gets_access_denied(governed_server):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": READER, "AWS_SECRET_ACCESS_KEY": READER_SECRET}
    argv = [str(AWS_CLI), "--endpoint-url", governed_server.endpoint, "--region", REGION, "kinesis", "create-stream",
            "--stream-name", "orders-new", "--shard-count", "1"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 255
    assert "(AccessDeniedException) when calling the CreateStream operation" in result.stderr
    assert "kinesis:CreateStream on resource: arn:aws:kinesis:us-east-1:000000000000:stream/orders-new" in result.stderr


def test_a_policy_with_a_condition_stops_the_start(tmp_path):
    conditional = {"Statement": [{"Effect": "Allow", "Action": "kinesis:*", "Resource": "*", "Condition": {}}]}
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--config", str(config_file(tmp_path, json.dumps(conditional)))],
    )
    with pytest.raises(pytest.fail.Exception, match="reader-policy.json is not usable: \"Condition\" is not supported"):
        srv.start()


def test_a_denial_is_written_with_the_iam_authorizers_message_member(governed_server):
    # The SDKs read `message` or `Message`; raw HTTP clients see AWS's own
    # spelling for the authorizer's AccessDeniedException: `Message`.
    reader = client(governed_server.endpoint, READER, READER_SECRET)
    bodies = []
    reader.meta.events.register("after-call.kinesis.*", lambda http_response, **_: bodies.append(http_response.content))
    denied(reader.create_stream, StreamName="orders-new", ShardCount=1)
    body = json.loads(bodies[-1])
    assert set(body) == {"__type", "Message"}, body
    assert body["__type"] == "AccessDeniedException"
    assert body["Message"].startswith(f"User: arn:aws:iam::{ACCOUNT}:user/{READER} is not authorized")


def stream_arn_of(name):
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


def resource_policy(effect, principal, actions, resource):
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": effect, "Principal": principal, "Action": actions, "Resource": resource}],
        }
    )


def active_consumer(client, stream, name):
    """Registers a consumer and waits, with a deadline, until it is ACTIVE."""
    arn = client.register_stream_consumer(StreamARN=stream_arn_of(stream), ConsumerName=name)["Consumer"]["ConsumerARN"]
    deadline = time.monotonic() + 10
    while client.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "the consumer never became ACTIVE"
        time.sleep(0.01)
    return arn


def test_resource_policies_are_put_read_and_deleted_durably(governed_server):
    admin = client(governed_server.endpoint, ADMIN, ADMIN_SECRET)
    create_active_stream(admin, "orders")
    arn = stream_arn_of("orders")
    # A resource without a policy answers an empty JSON object.
    assert admin.get_resource_policy(ResourceARN=arn)["Policy"] == "{}"
    text = resource_policy("Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{READER}"}, "kinesis:PutRecord", arn)
    admin.put_resource_policy(ResourceARN=arn, Policy=text)
    assert admin.get_resource_policy(ResourceARN=arn)["Policy"] == text
    consumer = active_consumer(admin, "orders", "app")
    consumer_text = resource_policy("Allow", "*", "kinesis:SubscribeToShard", consumer)
    admin.put_resource_policy(ResourceARN=consumer, Policy=consumer_text)

    # Kept across a restart, each with its resource.
    assert governed_server.terminate() == 0
    governed_server.start()
    admin = client(governed_server.endpoint, ADMIN, ADMIN_SECRET)
    assert admin.get_resource_policy(ResourceARN=arn)["Policy"] == text
    assert admin.get_resource_policy(ResourceARN=consumer)["Policy"] == consumer_text

    admin.delete_resource_policy(ResourceARN=consumer)
    assert admin.get_resource_policy(ResourceARN=consumer)["Policy"] == "{}"
    # A stream created again under the same name starts without one.
    admin.delete_stream(StreamName="orders", EnforceConsumerDeletion=True)
    create_active_stream(admin, "orders")
    assert admin.get_resource_policy(ResourceARN=arn)["Policy"] == "{}"


def test_resource_policy_calls_refuse_what_aws_refuses(governed_server):
    admin = client(governed_server.endpoint, ADMIN, ADMIN_SECRET)
    create_active_stream(admin, "orders")
    arn = stream_arn_of("orders")
    allow_all = resource_policy("Allow", "*", "kinesis:*", arn)

    err = error_of(admin.get_resource_policy, ResourceARN=stream_arn_of("missing"))
    assert code_and_message(err) == ("ResourceNotFoundException", f"Stream missing under account {ACCOUNT} not found.")
    err = error_of(admin.put_resource_policy, ResourceARN=f"{arn}/consumer/nope:1", Policy=allow_all)
    assert code_and_message(err)[0] == "ResourceNotFoundException"
    err = error_of(admin.put_resource_policy, ResourceARN="arn:aws:s3:::bucket", Policy=allow_all)
    code, message = code_and_message(err)
    assert code == "ValidationException" and "resourceARN" in message
    for malformed in ["not json", "[]", json.dumps({"Statement": [{"Effect": "Allow", "Action": "kinesis:*", "Resource": "*"}]})]:
        err = error_of(admin.put_resource_policy, ResourceARN=arn, Policy=malformed)
        assert code_and_message(err)[0] == "InvalidArgumentException", malformed
    # Nothing was stored by the refused calls.
    assert admin.get_resource_policy(ResourceARN=arn)["Policy"] == "{}"


def test_resource_policies_are_evaluated_with_identity_policies(governed_server):
    admin = client(governed_server.endpoint, ADMIN, ADMIN_SECRET)
    reader = client(governed_server.endpoint, READER, READER_SECRET)
    for name in ["orders", "orders-audit", "payments"]:
        create_active_stream(admin, name)
    reader_arn = f"arn:aws:iam::{ACCOUNT}:user/{READER}"

    # An Allow naming the user grants what its identity policy does not.
    denied(reader.put_record, StreamName="orders", PartitionKey="k", Data=b"x")
    admin.put_resource_policy(
        ResourceARN=stream_arn_of("orders"),
        Policy=resource_policy("Allow", {"AWS": [reader_arn]}, ["kinesis:PutRecord"], stream_arn_of("orders")),
    )
    reader.put_record(StreamName="orders", PartitionKey="k", Data=b"x")
    denied(reader.put_records, StreamName="orders", Records=[{"PartitionKey": "k", "Data": b"x"}])

    # An Allow naming the account delegates to the identity policies, as in IAM.
    admin.put_resource_policy(
        ResourceARN=stream_arn_of("payments"),
        Policy=resource_policy("Allow", {"AWS": ACCOUNT}, "kinesis:PutRecord", stream_arn_of("payments")),
    )
    denied(reader.put_record, StreamName="payments", PartitionKey="k", Data=b"x")

    # An explicit Deny in the identity policy wins over the resource's Allow.
    admin.put_resource_policy(
        ResourceARN=stream_arn_of("orders-audit"),
        Policy=resource_policy("Allow", "*", "kinesis:GetRecords", stream_arn_of("orders-audit")),
    )
    audit_iterator = iterator(reader, "orders-audit", shard_id(0))
    assert denied(reader.get_records, ShardIterator=audit_iterator).endswith(
        "with an explicit deny in an identity-based policy"
    )

    # An explicit Deny in the resource policy binds even a key without an
    # identity policy; the account's principal covers all its users.
    admin.put_resource_policy(
        ResourceARN=stream_arn_of("payments"),
        Policy=resource_policy("Deny", {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "kinesis:PutRecord", "*"),
    )
    message = denied(admin.put_record, StreamName="payments", PartitionKey="k", Data=b"x")
    assert message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/{ADMIN} is not authorized to perform: kinesis:PutRecord "
        f"on resource: {stream_arn_of('payments')} with an explicit deny in a resource-based policy"
    )
    admin.describe_stream_summary(StreamName="payments")
    admin.delete_resource_policy(ResourceARN=stream_arn_of("payments"))
    admin.put_record(StreamName="payments", PartitionKey="k", Data=b"x")


def test_a_consumer_policy_grants_subscribe_to_shard(governed_server):
    admin = client(governed_server.endpoint, ADMIN, ADMIN_SECRET)
    reader = client(governed_server.endpoint, READER, READER_SECRET)
    create_active_stream(admin, "orders")
    consumer = active_consumer(admin, "orders", "app")
    position = {"Type": "LATEST"}
    message = denied(reader.subscribe_to_shard, ConsumerARN=consumer, ShardId=shard_id(0), StartingPosition=position)
    assert f"kinesis:SubscribeToShard on resource: {consumer} " in message
    admin.put_resource_policy(
        ResourceARN=consumer,
        Policy=resource_policy("Allow", {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{READER}"}, "kinesis:SubscribeToShard", consumer),
    )
    events = reader.subscribe_to_shard(ConsumerARN=consumer, ShardId=shard_id(0), StartingPosition=position)["EventStream"]
    first = next(iter(events))["SubscribeToShardEvent"]
    assert first["Records"] == []
    events.close()
