"""SigV4 verification with boto3 and the aws CLI: a server given credentials
accepts what the SDKs sign with them and refuses everything else with the
errors AWS answers, while it keeps serving."""

import os
import subprocess

import pytest

from conftest import AWS_CLI, RiffleServer, make_client
from kinesis_helpers import REGION, code_and_message, create_active_stream, error_of, get_records, iterator, shard_id

# The suite's offline environment signs with this pair (conftest.py).
KEY_ID = "AKIDRIFFLETEST"
SECRET = "riffle-test-secret"
# A second identity, from the config file's [credentials] table.
OTHER_KEY_ID = "AKIDRIFFLEOTHER"
OTHER_SECRET = "other/secret+key"


@pytest.fixture
def signed_server(tmp_path):
    config = tmp_path / "riffle.toml"
    config.write_text(f'[credentials]\n{OTHER_KEY_ID} = "{OTHER_SECRET}"\n')
    srv = RiffleServer(
        data_dir=tmp_path / "data",
        log_dir=tmp_path,
        extra_args=["--access-key-id", KEY_ID, "--secret-access-key", SECRET, "--config", str(config)],
    )
    srv.start()
    yield srv
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def client(endpoint, key_id=KEY_ID, secret=SECRET, token=None, region=REGION):
    return make_client(endpoint, key_id=key_id, secret=secret, token=token, region=region)


def test_the_configured_keys_sign_every_call_of_a_round_trip(signed_server):
    kinesis = client(signed_server.endpoint)
    create_active_stream(kinesis, "signed")
    put = kinesis.put_record(StreamName="signed", PartitionKey="k", Data=b"signed payload")
    [record] = get_records(kinesis, ShardIterator=iterator(kinesis, "signed", shard_id(0)))["Records"]
    assert record["Data"] == b"signed payload"
    assert record["SequenceNumber"] == put["SequenceNumber"]

    # The table's key, and temporary credentials (the session token is a
    # signed header), are accepted as well.
    other = client(signed_server.endpoint, OTHER_KEY_ID, OTHER_SECRET, token="session/token+=")
    assert other.list_streams()["StreamNames"] == ["signed"]


def test_a_wrong_secret_an_unknown_key_or_another_region_is_refused(signed_server):
    wrong_secret = client(signed_server.endpoint, secret="not-the-secret")
    code, message = code_and_message(error_of(wrong_secret.list_streams))
    assert code == "InvalidSignatureException"
    assert message.startswith("The request signature we calculated does not match the signature you provided.")
    assert "The Canonical String for this request should have been" in message

    unknown = client(signed_server.endpoint, key_id="AKIDNOBODY")
    err = error_of(unknown.list_streams)
    assert code_and_message(err) == ("UnrecognizedClientException", "The security token included in the request is invalid.")
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    elsewhere = client(signed_server.endpoint, region="eu-west-1")
    assert code_and_message(error_of(elsewhere.list_streams)) == (
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'eu-west-1'. ",
    )

    # A refused request changes nothing, and the server keeps serving.
    wrong_put = error_of(wrong_secret.create_stream, StreamName="never", ShardCount=1)
    assert code_and_message(wrong_put)[0] == "InvalidSignatureException"
    assert client(signed_server.endpoint).list_streams()["StreamNames"] == []


def run_cli(endpoint, key_id, secret, *args):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}
    argv = [str(AWS_CLI), "--endpoint-url", endpoint, "--output", "json", "--region", REGION, "kinesis", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)


def test_the_aws_cli_signs_with_its_configured_keys(signed_server):
    created = run_cli(signed_server.endpoint, KEY_ID, SECRET, "create-stream", "--stream-name", "cli", "--shard-count", "1")
    assert created.returncode == 0, created.stderr
    listed = run_cli(signed_server.endpoint, OTHER_KEY_ID, OTHER_SECRET, "list-streams")
    assert listed.returncode == 0, listed.stderr
    assert '"cli"' in listed.stdout

    refused = run_cli(signed_server.endpoint, KEY_ID, "wrong", "list-streams")
    assert refused.returncode == 255
    assert "(InvalidSignatureException) when calling the ListStreams operation" in refused.stderr


def test_without_credentials_configured_any_signature_is_accepted(server):
    assert client(server.endpoint, key_id="AKIDANY", secret="anything").list_streams()["StreamNames"] == []
