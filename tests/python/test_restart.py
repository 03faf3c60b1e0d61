"""Durability as a boto3 user sees it: every acknowledged record survives a
SIGKILL of the server, and sequence numbers keep growing after the restart."""

from conftest import make_client
from kinesis_helpers import create_active_stream, read_shard, shard_id


def _write(client, stream: str, rounds: int) -> dict[str, list[tuple[str, bytes, str]]]:
    """Writes with both PutRecords and PutRecord; returns what was
    acknowledged per shard as (partition key, data, sequence number)."""
    acked: dict[str, list[tuple[str, bytes, str]]] = {}
    for r in range(rounds):
        entries = [{"PartitionKey": f"key-{r}-{i}", "Data": f"batch {r} record {i}".encode()} for i in range(50)]
        out = client.put_records(StreamName=stream, Records=entries)
        assert out["FailedRecordCount"] == 0
        for entry, result in zip(entries, out["Records"]):
            acked.setdefault(result["ShardId"], []).append((entry["PartitionKey"], entry["Data"], result["SequenceNumber"]))
        single = client.put_record(StreamName=stream, PartitionKey=f"single-{r}", Data=bytes([r]) * 100)
        acked.setdefault(single["ShardId"], []).append((f"single-{r}", bytes([r]) * 100, single["SequenceNumber"]))
    return acked


def _read_all(client, stream: str, shards: int) -> dict[str, list[tuple[str, bytes, str]]]:
    found = {}
    for i in range(shards):
        records = read_shard(client, stream, shard_id(i))
        if records:
            found[shard_id(i)] = [(r["PartitionKey"], r["Data"], r["SequenceNumber"]) for r in records]
    return found


def test_acknowledged_records_survive_sigkill_and_sequence_numbers_keep_growing(server, kinesis):
    create_active_stream(kinesis, "durable", shards=3)
    acked = _write(kinesis, "durable", rounds=4)

    server.kill()
    server.start()
    client = make_client(server.endpoint)

    desc = client.describe_stream(StreamName="durable")["StreamDescription"]
    assert desc["StreamStatus"] == "ACTIVE"
    assert [s["ShardId"] for s in desc["Shards"]] == [shard_id(i) for i in range(3)]
    assert _read_all(client, "durable", 3) == acked

    for sid, records in acked.items():
        newest = max(int(seq) for _, _, seq in records)
        key = records[0][0]  # the same key routes to the same shard
        again = client.put_record(StreamName="durable", PartitionKey=key, Data=b"after restart")
        assert again["ShardId"] == sid
        assert int(again["SequenceNumber"]) > newest


def test_stream_created_just_before_a_crash_is_still_there(server, kinesis):
    kinesis.create_stream(StreamName="fresh", ShardCount=2)

    server.kill()
    server.start()
    client = make_client(server.endpoint)

    client.get_waiter("stream_exists").wait(StreamName="fresh", WaiterConfig={"Delay": 0.05, "MaxAttempts": 200})
    assert client.describe_stream_summary(StreamName="fresh")["StreamDescriptionSummary"]["OpenShardCount"] == 2


def test_sigterm_exits_zero_and_keeps_every_record(server, kinesis):
    create_active_stream(kinesis, "graceful", shards=2)
    acked = _write(kinesis, "graceful", rounds=2)

    assert server.terminate() == 0
    server.start()
    client = make_client(server.endpoint)

    assert _read_all(client, "graceful", 2) == acked
