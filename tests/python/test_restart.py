"""Durability as a boto3 user sees it: every acknowledged record survives a
SIGKILL of the server, and sequence numbers keep growing after the restart."""

import itertools
import threading

from botocore.exceptions import BotoCoreError, ClientError

from conftest import make_client
from kinesis_helpers import create_active_stream, get_records, is_throttled, put_records_retrying, read_shard, shard_id


def _write(client, stream: str, rounds: int) -> dict[str, list[tuple[str, bytes, str]]]:
    """Writes with both PutRecords and PutRecord; returns what was
    acknowledged per shard as (partition key, data, sequence number)."""
    acked: dict[str, list[tuple[str, bytes, str]]] = {}
    for r in range(rounds):
        entries = [{"PartitionKey": f"key-{r}-{i}", "Data": f"batch {r} record {i}".encode()} for i in range(50)]
        for entry, result in zip(entries, put_records_retrying(client, stream, entries)):
            acked.setdefault(result["ShardId"], []).append((entry["PartitionKey"], entry["Data"], result["SequenceNumber"]))
        single = client.put_record(StreamName=stream, PartitionKey=f"single-{r}", Data=bytes([r]) * 100)
        acked.setdefault(single["ShardId"], []).append((f"single-{r}", bytes([r]) * 100, single["SequenceNumber"]))
    # A retried record is acknowledged later, with a larger sequence number.
    return {shard: sorted(records, key=lambda r: int(r[2])) for shard, records in acked.items()}


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


def test_sigkill_in_the_middle_of_writes_keeps_every_acknowledged_record(server, kinesis):
    create_active_stream(kinesis, "torn", shards=2)
    clients = [make_client(server.endpoint) for _ in range(3)]
    acked: list[tuple[str, bytes, str, str]] = []
    lock = threading.Lock()
    enough = threading.Event()

    def produce(worker: int) -> None:
        for batch in itertools.count():
            entries = [{"PartitionKey": f"{worker}-{batch}-{i}", "Data": f"{worker}/{batch}/{i}".encode() * 20} for i in range(25)]
            try:
                out = clients[worker].put_records(StreamName="torn", Records=entries)
            except (BotoCoreError, ClientError) as err:
                if isinstance(err, ClientError) and is_throttled(err):
                    continue
                return  # the server is gone: what was acknowledged so far counts
            with lock:
                # Records refused for throughput (ErrorCode set) were not written.
                acked.extend(
                    (e["PartitionKey"], e["Data"], r["SequenceNumber"], r["ShardId"])
                    for e, r in zip(entries, out["Records"])
                    if "ErrorCode" not in r
                )
                if len(acked) >= 1500:
                    enough.set()

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    assert enough.wait(timeout=60), "writers never got 1500 records acknowledged"
    server.kill()  # while the writers are still sending
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()

    server.start()
    client = make_client(server.endpoint)
    for shard in (shard_id(0), shard_id(1)):
        got = [(r["PartitionKey"], r["Data"], r["SequenceNumber"]) for r in read_shard(client, "torn", shard)]
        mine = {(k, d, s) for k, d, s, sid in acked if sid == shard}
        assert mine <= set(got), f"{len(mine - set(got))} acknowledged records of {shard} lost"
        assert [int(s) for _, _, s in got] == sorted(int(s) for _, _, s in got)
        key = got[0][0]
        again = client.put_record(StreamName="torn", PartitionKey=key, Data=b"after")
        assert again["ShardId"] == shard
        assert int(again["SequenceNumber"]) > int(got[-1][2])


def test_a_shard_iterator_taken_before_a_restart_still_reads(server, kinesis):
    create_active_stream(kinesis, "consumer")
    kinesis.put_records(StreamName="consumer", Records=[{"PartitionKey": "k", "Data": bytes([i])} for i in range(5)])
    first = get_records(
        kinesis,
        ShardIterator=kinesis.get_shard_iterator(StreamName="consumer", ShardId=shard_id(0), ShardIteratorType="TRIM_HORIZON")[
            "ShardIterator"
        ],
        Limit=2,
    )
    assert [r["Data"] for r in first["Records"]] == [b"\x00", b"\x01"]

    server.kill()
    server.start()
    client = make_client(server.endpoint)

    # A consumer carries on where it stopped, as it would across a Kinesis failover.
    rest = get_records(client, ShardIterator=first["NextShardIterator"])
    assert [r["Data"] for r in rest["Records"]] == [bytes([i]) for i in range(2, 5)]
