"""IAM-style policies with boto3 and the aws CLI: a server whose config file
gives an access key a policy lets that key call only what the policy allows,
answering the rest with AWS's AccessDeniedException, while keys without a
policy may call everything. A policy that cannot be enforced as written
stops the start."""

import json
import os
import subprocess

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
