"""The real Java KCL (3.1.3, through its MultiLangDaemon, with a Python record
processor) against Riffle alone: Kinesis and the lease table (Riffle's
DynamoDB subset) at one endpoint, as a user runs it with `kinesisEndpoint`
and `dynamoDBEndpoint` both set to Riffle.

KCL is slow to start (a new application waits a random 1 to 30 s before its
first shard sync, hard-coded), so each test runs its applications side by
side: the fan-out and the polling application of a scenario consume the same
stream at once, each with its own lease table, and every assertion names the
mode it is about. What the processors saw is read from their JSON lines (see
kcl/processor.py), which are written in the order the processors saw it.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections import defaultdict
from urllib.parse import urlparse

import boto3
import pytest
from aws_kinesis_agg.aggregator import RecordAggregator
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from conftest import _riffle_bin, make_client
from kcl.daemon import Worker, records, wait_for
from kinesis_helpers import REGION, create_active_stream, hash_key, put_records_retrying, shard_for_hash, shard_id

MODES = ("FANOUT", "POLLING")
# A new application's first records: JVM start, KCL's random 1-30 s wait
# for another worker to sync shards, table creation, lease assignment.
FIRST_RECORDS_DEADLINE_S = 90.0
# Records put to a running application, or picked up after a restart or a
# takeover (failoverTimeMillis is 3 s in these tests).
DELIVERY_DEADLINE_S = 60.0


@pytest.fixture
def workers(tmp_path, server):
    """Makes KCL workers; the finalizer SIGKILLs every one (daemon and record
    processors, by process group), whatever the test did, before the server
    it depends on is stopped."""
    made: list[Worker] = []

    def make(endpoint: str, stream: str, app: str, name: str, mode: str = "FANOUT", **extra: str) -> Worker:
        worker = Worker(workdir=tmp_path / "kcl", endpoint=endpoint, stream=stream, app=app, name=name, mode=mode,
                        extra=extra)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.kill()


def dynamodb(endpoint: str):
    return boto3.session.Session().client(
        "dynamodb", endpoint_url=endpoint, region_name=REGION,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30),
    )


# --- what was put -----------------------------------------------------------

def put_plain(kinesis, stream: str, tag: str, count: int) -> dict[str, tuple[str, int]]:
    """Puts `count` records whose data is their name; returns name ->
    (shard, sequence number) as PutRecords acknowledged them."""
    entries = [{"PartitionKey": f"{tag}-{i}", "Data": f"{tag}-{i}".encode()} for i in range(count)]
    results = put_records_retrying(kinesis, stream, entries)
    return {e["Data"].decode(): (r["ShardId"], int(r["SequenceNumber"])) for e, r in zip(entries, results)}


def put_aggregated(kinesis, stream: str, tag: str, count: int) -> dict[str, tuple[str, int, int]]:
    """Puts `count` user records in KPL-aggregated records (aws_kinesis_agg),
    grouped per shard as the KPL groups them: KCL drops a user record whose
    hash key is outside the shard its aggregate landed in. Returns name ->
    (shard, the aggregate's sequence number, sub-sequence number)."""
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    per_shard: dict[str, list[str]] = defaultdict(list)
    for i in range(count):
        name = f"{tag}-{i}"
        per_shard[shard_for_hash(shards, hash_key(name))].append(name)
    expected = {}
    for names in per_shard.values():
        aggregator = RecordAggregator()
        for name in names:
            assert aggregator.add_user_record(name, name.encode()) is None, "one aggregate per shard fits 1 MB"
        partition_key, explicit_hash_key, data = aggregator.clear_and_get().get_contents()
        entry = {"PartitionKey": partition_key, "Data": data}
        if explicit_hash_key is not None:
            entry["ExplicitHashKey"] = explicit_hash_key
        [result] = put_records_retrying(kinesis, stream, [entry])
        for sub, name in enumerate(names):
            expected[name] = (result["ShardId"], int(result["SequenceNumber"]), sub)
    return expected


def put_riffle_aggregated(server, stream: str, tag: str, count: int) -> dict[str, tuple[str, int, int]]:
    """Puts `count` user records through `riffle put --aggregate` (Riffle's
    KPL producer, riffle-kpl); returns name -> (shard, sequence number,
    sub-sequence number) as it printed them (`SHARD SEQUENCE[/SUB]`)."""
    names = [f"{tag}-{i}" for i in range(count)]
    done = subprocess.run(
        [_riffle_bin(), "put", stream, "--aggregate"],
        input=("\n".join(names) + "\n").encode(),
        capture_output=True,
        env=dict(os.environ, RIFFLE_ENDPOINT=server.endpoint),
        timeout=DELIVERY_DEADLINE_S,
    )
    assert done.returncode == 0, done.stderr.decode()
    expected = {}
    for name, line in zip(names, done.stdout.decode().splitlines(), strict=True):
        shard, position = line.split(" ")
        sequence, _, sub = position.partition("/")
        expected[name] = (shard, int(sequence), int(sub) if sub else 0)
    assert any(sub > 0 for _, _, sub in expected.values()), "riffle put --aggregate aggregated"
    return expected


# --- what the processors saw ------------------------------------------------

def received(workers: list[Worker]) -> dict[str, list[dict]]:
    """Record name -> every delivery of it."""
    seen: dict[str, list[dict]] = defaultdict(list)
    for event in records(workers):
        seen[event["data"]].append(event)
    return seen


def all_received(workers: list[Worker], names) -> bool:
    seen = received(workers)
    return all(name in seen for name in names)


def position(event: dict) -> tuple[int, int]:
    return int(event["seq"]), int(event.get("sub") or 0)


def assert_once_in_order(worker: Worker, expected: dict[str, tuple]) -> None:
    """Each expected record delivered exactly once, on the shard and at the
    sequence number it was acknowledged with, each shard in order."""
    seen = received([worker])
    missing = sorted(set(expected) - set(seen))
    assert not missing, f"{worker.name}: {len(missing)} records never delivered, e.g. {missing[:5]}"
    twice = sorted(name for name in expected if len(seen[name]) > 1)
    assert not twice, f"{worker.name}: records delivered more than once: {twice[:5]}"
    for name, where in expected.items():
        event = seen[name][0]
        assert (event["shard"], int(event["seq"])) == where[:2], f"{worker.name}: {name} delivered as {event}"
    by_shard: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for event in worker.events("record"):
        by_shard[event["shard"]].append(position(event))
    for shard, positions in by_shard.items():
        assert positions == sorted(positions), f"{worker.name}: {shard} delivered out of sequence order"


def last_checkpoints(*workers: Worker) -> dict[str, tuple[int, int]]:
    """Per shard, the furthest checkpoint at a record that any of these
    workers' processors made (and KCL acknowledged): a shard's lease may
    have moved between them."""
    done: dict[str, tuple[int, int]] = {}
    for worker in workers:
        for event in worker.events("checkpoint"):
            if event["seq"] is not None:
                done[event["shard"]] = max(done.get(event["shard"], (-1, -1)), position(event))
    return done


def checkpointed_all(expected: dict[str, tuple], *workers: Worker) -> bool:
    """Whether each shard's last expected record is checkpointed."""
    last: dict[str, tuple[int, int]] = {}
    for where in expected.values():
        pos = (where[1], where[2] if len(where) > 2 else 0)
        last[where[0]] = max(last.get(where[0], pos), pos)
    done = last_checkpoints(*workers)
    return all(done.get(shard, (-1, -1)) >= pos for shard, pos in last.items())


# --- the scenarios ------------------------------------------------------------

def test_every_record_delivered_once_in_order_and_resumed_from_checkpoints_after_a_worker_is_killed(
        server, kinesis, workers):
    """Both retrieval modes at once on one stream: plain and KPL-aggregated
    records (by aws_kinesis_agg and by `riffle put --aggregate`) reach the
    processor once each, in sequence order per shard, the aggregated ones
    de-aggregated with their sub-sequence numbers. Then each
    worker is SIGKILLed; records put while it is down are delivered after a
    restart, which resumes at its checkpoints: nothing checkpointed again."""
    create_active_stream(kinesis, "orders", shards=2)
    expected = put_plain(kinesis, "orders", "plain", 60)
    aggregated = put_aggregated(kinesis, "orders", "agg", 40)
    aggregated.update(put_riffle_aggregated(server, "orders", "kpl", 40))
    apps = {mode: workers(server.endpoint, "orders", f"orders-{mode.lower()}", f"{mode.lower()}-1", mode)
            for mode in MODES}
    for worker in apps.values():
        worker.start()
    for mode, worker in apps.items():
        wait_for(f"{mode}: every record delivered", lambda: all_received([worker], {**expected, **aggregated}),
                 [worker], FIRST_RECORDS_DEADLINE_S)

    for mode, worker in apps.items():
        assert_once_in_order(worker, {**expected, **aggregated})
        seen = received([worker])
        for name, (shard, seq, sub) in aggregated.items():
            event = seen[name][0]
            assert (event["shard"], int(event["seq"]), event["sub"]) == (shard, seq, sub), \
                f"{mode}: user record {name} of an aggregate delivered as {event}"

    # Killed once everything it saw is checkpointed: KCL must resume at the
    # checkpoints, so no record of before is delivered again.
    for mode, worker in apps.items():
        wait_for(f"{mode}: checkpoints of every record", lambda: checkpointed_all({**expected, **aggregated}, worker),
                 [worker], DELIVERY_DEADLINE_S)
    before = {mode: last_checkpoints(worker) for mode, worker in apps.items()}
    lines_before = {mode: len(worker.events()) for mode, worker in apps.items()}
    for worker in apps.values():
        worker.kill()
    later = put_plain(kinesis, "orders", "later", 40)
    for worker in apps.values():
        worker.start()
    for mode, worker in apps.items():
        wait_for(f"{mode}: records put while the worker was down delivered after its restart",
                 lambda: all_received([worker], later), [worker], DELIVERY_DEADLINE_S)

    for mode, worker in apps.items():
        after = worker.events()[lines_before[mode]:]
        again = [e["data"] for e in after if e["event"] == "record" and e["data"] not in later]
        assert not again, f"{mode}: checkpointed records delivered again after the restart: {again[:5]}"
        resumed = {e["shard"]: (e["seq"], e["sub"]) for e in after if e["event"] == "initialize"}
        for shard, (seq, sub) in before[mode].items():
            assert resumed.get(shard) == (str(seq), sub), \
                f"{mode}: {shard} resumed at {resumed.get(shard)}, its checkpoint was {(seq, sub)}"
        deliveries = defaultdict(int)
        for event in after:
            if event["event"] == "record":
                deliveries[event["data"]] += 1
        twice = [name for name in later if deliveries[name] > 1]
        assert not twice, f"{mode}: records put while the worker was down delivered twice: {twice[:5]}"


def assert_parents_before_children(worker: Worker, lineage: dict[str, list[str]]) -> None:
    """In the order the processors saw them, every record of a parent shard
    comes before any record of its child."""
    order = worker.events("record")
    for child, parents in lineage.items():
        child_first = next((i for i, e in enumerate(order) if e["shard"] == child), None)
        assert child_first is not None, f"{worker.name}: nothing delivered from {child}"
        for parent in parents:
            parent_last = max(i for i, e in enumerate(order) if e["shard"] == parent)
            assert parent_last < child_first, \
                f"{worker.name}: {child} delivered {order[child_first]} before the end of its parent {parent}"


def test_parents_before_children_across_a_split_and_a_merge(server, kinesis, workers):
    """A shard split before the application starts and a merge while it
    runs: in both modes every record of a parent reaches the processor
    before any record of its child, once each, and the parent's processor is
    told its shard ended."""
    create_active_stream(kinesis, "lineage", shards=2)
    expected = put_plain(kinesis, "lineage", "first", 30)
    # shardId-0 covers [0, 2^127): its children are 2 = [0, 2^126) and 3.
    kinesis.split_shard(StreamName="lineage", ShardToSplit=shard_id(0), NewStartingHashKey=str(2**126))
    kinesis.get_waiter("stream_exists").wait(StreamName="lineage", WaiterConfig={"Delay": 0.1})
    expected.update(put_plain(kinesis, "lineage", "split", 30))
    apps = {mode: workers(server.endpoint, "lineage", f"lineage-{mode.lower()}", f"{mode.lower()}-1", mode)
            for mode in MODES}
    for worker in apps.values():
        worker.start()
    for mode, worker in apps.items():
        wait_for(f"{mode}: the split's parent and children read", lambda: all_received([worker], expected),
                 [worker], FIRST_RECORDS_DEADLINE_S)

    # 3 = [2^126, 2^127) and 1 = [2^127, 2^128) are adjacent: 4 covers both.
    kinesis.merge_shards(StreamName="lineage", ShardToMerge=shard_id(3), AdjacentShardToMerge=shard_id(1))
    kinesis.get_waiter("stream_exists").wait(StreamName="lineage", WaiterConfig={"Delay": 0.1})
    merged = put_plain(kinesis, "lineage", "merged", 30)
    assert {shard for shard, _ in merged.values()} == {shard_id(2), shard_id(4)}
    expected.update(merged)
    for mode, worker in apps.items():
        wait_for(f"{mode}: the merged shard read", lambda: all_received([worker], expected), [worker],
                 DELIVERY_DEADLINE_S)

    lineage = {}
    for shard in kinesis.list_shards(StreamName="lineage")["Shards"]:
        parents = [shard[k] for k in ("ParentShardId", "AdjacentParentShardId") if k in shard]
        if parents:
            lineage[shard["ShardId"]] = parents
    assert lineage == {shard_id(2): [shard_id(0)], shard_id(3): [shard_id(0)],
                       shard_id(4): [shard_id(3), shard_id(1)]}
    for mode, worker in apps.items():
        assert_once_in_order(worker, expected)
        assert_parents_before_children(worker, lineage)
        ended = {e["shard"] for e in worker.events("shard_ended")}
        assert {shard_id(0), shard_id(1), shard_id(3)} <= ended, f"{mode}: parents told they ended: {ended}"


def held_shards(worker: Worker) -> set[str]:
    """Shards whose processor the worker started and did not lose or end."""
    held: set[str] = set()
    for event in worker.events():
        if event["event"] == "initialize":
            held.add(event["shard"])
        elif event["event"] in ("lease_lost", "shard_ended"):
            held.discard(event["shard"])
    return held


def test_a_killed_workers_leases_are_taken_over_from_its_checkpoints_and_nothing_is_lost(server, kinesis, workers):
    """Two workers of one application share a 4-shard stream; the one that
    is not the leader is SIGKILLed. The leader takes its leases over once
    they expire, starts at the dead worker's checkpoints, and every record,
    those put after the kill included, is delivered."""
    create_active_stream(kinesis, "shared", shards=4)
    expected = put_plain(kinesis, "shared", "first", 80)
    pair = [workers(server.endpoint, "shared", "shared-app", name) for name in ("worker-a", "worker-b")]
    for worker in pair:
        worker.start()
    wait_for("both workers hold leases and every record is delivered",
             lambda: all(held_shards(w) for w in pair) and all_received(pair, expected), pair,
             FIRST_RECORDS_DEADLINE_S)
    # The leader (the DynamoDB lock client's lock in the CoordinatorState
    # table) assigns leases; a new leader takes over only when the dead one's
    # lock expires, which KCL 3.1.3 hard-codes at 2 minutes. The worker that
    # dies here is the other one, whose leases the leader reassigns as soon
    # as they expire (failoverTimeMillis).
    lock = dynamodb(server.endpoint).get_item(TableName="shared-app-CoordinatorState", Key={"key": {"S": "Leader"}},
                                              ConsistentRead=True)["Item"]
    [survivor] = [w for w in pair if w.name == lock["ownerName"]["S"]]
    [victim] = [w for w in pair if w is not survivor]
    orphaned = held_shards(victim)
    assert not orphaned & held_shards(survivor), "two workers held one shard's lease"
    wait_for("every record checkpointed", lambda: checkpointed_all(expected, *pair), pair, DELIVERY_DEADLINE_S)
    checkpoints = last_checkpoints(*pair)
    survivor_lines = len(survivor.events())

    victim.kill()
    later = put_plain(kinesis, "shared", "later", 80)
    assert {shard for shard, _ in later.values()} >= orphaned, "records must be put to the orphaned shards too"
    every_shard = {shard_id(i) for i in range(4)}
    wait_for(f"{survivor.name} took over {sorted(orphaned)} and delivered what was put after the kill",
             lambda: held_shards(survivor) == every_shard and all_received([survivor], later), [survivor],
             DELIVERY_DEADLINE_S)

    seen = received(pair)
    lost = sorted((set(expected) | set(later)) - set(seen))
    assert not lost, f"records never delivered: {lost[:5]}"
    after = survivor.events()[survivor_lines:]
    taken = {e["shard"]: (e["seq"], e["sub"]) for e in after if e["event"] == "initialize" and e["shard"] in orphaned}
    for shard in orphaned:
        seq, sub = checkpoints[shard]
        assert taken[shard] == (str(seq), sub), \
            f"{survivor.name} took {shard} over at {taken[shard]}, {victim.name}'s checkpoint was {(seq, sub)}"
    again = [e["data"] for e in after if e["event"] == "record" and e["data"] in expected]
    assert not again, f"records checkpointed by {victim.name} delivered again: {again[:5]}"


class Producer(threading.Thread):
    """Puts small batches of uniquely named records until stopped, keeping
    the names PutRecords acknowledged; a call that fails (the server is
    down) is not retried: what it carried was never acknowledged."""

    def __init__(self, client, stream: str):
        super().__init__(daemon=True)
        self.client, self.stream = client, stream
        self.acked: dict[str, tuple[str, int]] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        batch = 0
        while not self.stop.is_set():
            names = [f"live-{batch}-{i}" for i in range(5)]
            batch += 1
            try:
                out = self.client.put_records(StreamName=self.stream, Records=[
                    {"PartitionKey": name, "Data": name.encode()} for name in names])
            except (BotoCoreError, ClientError):
                self.stop.wait(0.05)
                continue
            for name, result in zip(names, out["Records"]):
                if "ErrorCode" not in result:
                    self.acked[name] = (result["ShardId"], int(result["SequenceNumber"]))
            self.stop.wait(0.05)

    def acked_count(self) -> int:
        return len(self.acked)


def lease_checkpoints(endpoint: str, table: str) -> dict[str, tuple[int, int]]:
    """The checkpoints in a KCL lease table (leaseKey, checkpoint and
    checkpointSubSequenceNumber are KCL's attribute names)."""
    items = dynamodb(endpoint).scan(TableName=table, ConsistentRead=True)["Items"]
    return {item["leaseKey"]["S"]: (int(item["checkpoint"]["S"]), int(item["checkpointSubSequenceNumber"]["N"]))
            for item in items if item["checkpoint"]["S"].isdigit()}


def test_applications_recover_from_a_server_sigkill_under_lease_traffic_and_nothing_acknowledged_is_lost(
        server, kinesis, workers):
    """Riffle is SIGKILLed while a fan-out and a polling application renew
    leases, checkpoint, and a producer writes, then restarted on the same
    port. Every checkpoint KCL had acknowledged is in the lease tables, and
    every record PutRecords acknowledged, before or after the crash, reaches
    both applications."""
    create_active_stream(kinesis, "crash", shards=2)
    first = put_plain(kinesis, "crash", "first", 40)
    apps = {mode: workers(server.endpoint, "crash", f"crash-{mode.lower()}", f"{mode.lower()}-1", mode)
            for mode in MODES}
    for worker in apps.values():
        worker.start()
    for mode, worker in apps.items():
        wait_for(f"{mode}: first records delivered", lambda: all_received([worker], first), [worker],
                 FIRST_RECORDS_DEADLINE_S)

    producer = Producer(make_client(server.endpoint), "crash")
    producer.start()
    try:
        wait_for("live records delivered", lambda: producer.acked_count() >= 50 and all(
            sum(name.startswith("live-") for name in received([w])) >= 25 for w in apps.values()),
            list(apps.values()), DELIVERY_DEADLINE_S)
        acknowledged = {mode: last_checkpoints(worker) for mode, worker in apps.items()}
        server.kill()
        server.listen = urlparse(server.endpoint).netloc
        server.start()
        for mode, worker in apps.items():
            stored = lease_checkpoints(server.endpoint, f"crash-{mode.lower()}")
            for shard, checkpoint in acknowledged[mode].items():
                assert stored.get(shard, (-1, -1)) >= checkpoint, \
                    f"{mode}: {shard}'s acknowledged checkpoint {checkpoint} lost: the table has {stored.get(shard)}"
        after_crash = producer.acked_count()
        wait_for("the producer is acknowledged again", lambda: producer.acked_count() >= after_crash + 50,
                 list(apps.values()), DELIVERY_DEADLINE_S)
    finally:
        producer.stop.set()
        producer.join()

    acked = {**first, **producer.acked}
    for mode, worker in apps.items():
        wait_for(f"{mode}: every acknowledged record delivered after the crash",
                 lambda: all_received([worker], acked), [worker], DELIVERY_DEADLINE_S)
