"""Server-side encryption through boto3: StartStreamEncryption and
StopStreamEncryption as AWS reports them, records written while encrypted
read back decrypted with EncryptionType KMS, and never stored in plaintext
in the server's segment files."""

from pathlib import Path

from conftest import make_client
from kinesis_helpers import code_and_message, create_active_stream, error_of, read_shard, shard_id, wait_active

KEY = "alias/aws/kinesis"


def _on_disk(data_dir: Path, needle: bytes) -> bool:
    return any(needle in p.read_bytes() for p in data_dir.rglob("*.seg"))


def _summary(client, name: str) -> dict:
    return client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]


def test_encrypted_records_read_back_as_kms_and_are_not_plaintext_on_disk(kinesis, server):
    create_active_stream(kinesis, "enc")
    before = kinesis.put_record(StreamName="enc", PartitionKey="pk", Data=b"plain-before-51c3")
    assert before["EncryptionType"] == "NONE"

    kinesis.start_stream_encryption(StreamName="enc", EncryptionType="KMS", KeyId=KEY)
    wait_active(kinesis, "enc")
    summary = _summary(kinesis, "enc")
    assert (summary["EncryptionType"], summary["KeyId"]) == ("KMS", KEY)
    description = kinesis.describe_stream(StreamName="enc")["StreamDescription"]
    assert (description["EncryptionType"], description["KeyId"]) == ("KMS", KEY)

    one = kinesis.put_record(StreamName="enc", PartitionKey="pk", Data=b"secret-one-51c3")
    assert one["EncryptionType"] == "KMS"
    many = kinesis.put_records(
        StreamName="enc",
        Records=[{"PartitionKey": "pk", "Data": f"secret-many-{i}-51c3".encode()} for i in range(3)],
    )
    assert (many["EncryptionType"], many["FailedRecordCount"]) == ("KMS", 0)

    assert _on_disk(server.data_dir, b"plain-before-51c3")
    assert not _on_disk(server.data_dir, b"secret-one-51c3")
    assert not _on_disk(server.data_dir, b"secret-many-")

    kinesis.stop_stream_encryption(StreamName="enc", EncryptionType="KMS", KeyId=KEY)
    wait_active(kinesis, "enc")
    summary = _summary(kinesis, "enc")
    assert summary["EncryptionType"] == "NONE" and "KeyId" not in summary
    after = kinesis.put_record(StreamName="enc", PartitionKey="pk", Data=b"plain-after-51c3")
    assert after["EncryptionType"] == "NONE"

    records = read_shard(kinesis, "enc", shard_id(0))
    assert [(r["Data"], r["EncryptionType"]) for r in records] == [
        (b"plain-before-51c3", "NONE"),
        (b"secret-one-51c3", "KMS"),
        *[(f"secret-many-{i}-51c3".encode(), "KMS") for i in range(3)],
        (b"plain-after-51c3", "NONE"),
    ]


def test_encrypted_records_survive_a_restart(kinesis, server):
    create_active_stream(kinesis, "kept")
    kinesis.start_stream_encryption(StreamName="kept", EncryptionType="KMS", KeyId=KEY)
    wait_active(kinesis, "kept")
    kinesis.put_record(StreamName="kept", PartitionKey="pk", Data=b"secret-kept-9e0d")
    server.kill()
    server.start()
    client = make_client(server.endpoint)
    assert _summary(client, "kept")["EncryptionType"] == "KMS"
    records = read_shard(client, "kept", shard_id(0))
    assert [(r["Data"], r["EncryptionType"]) for r in records] == [(b"secret-kept-9e0d", "KMS")]
    assert not _on_disk(server.data_dir, b"secret-kept-9e0d")


def test_encryption_errors_as_aws_reports_them(kinesis):
    create_active_stream(kinesis, "e")
    code, _ = code_and_message(
        error_of(kinesis.stop_stream_encryption, StreamName="e", EncryptionType="KMS", KeyId=KEY)
    )
    assert code == "InvalidArgumentException"
    code, _ = code_and_message(
        error_of(kinesis.start_stream_encryption, StreamName="missing", EncryptionType="KMS", KeyId=KEY)
    )
    assert code == "ResourceNotFoundException"
    code, message = code_and_message(
        error_of(kinesis.start_stream_encryption, StreamName="e", EncryptionType="KMS", KeyId="k" * 2049)
    )
    assert code == "ValidationException" and "keyId" in message

    kinesis.start_stream_encryption(StreamName="e", EncryptionType="KMS", KeyId=KEY)
    wait_active(kinesis, "e")
    code, _ = code_and_message(
        error_of(kinesis.stop_stream_encryption, StreamName="e", EncryptionType="KMS", KeyId="alias/other")
    )
    assert code == "InvalidArgumentException"
