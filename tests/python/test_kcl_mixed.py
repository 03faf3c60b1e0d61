"""A Rust KCL worker (`riffle tail --group`, crates/riffle-kcl) and a Java
KCL 3.1.3 worker (the MultiLangDaemon of kcl/daemon.py) in one application,
against Riffle alone: one lease table, one `<app>-CoordinatorState`, one
`<app>-WorkerMetricStats`, as issue 17 asks ("a Rust worker and a Java
worker share one application").

The Rust worker starts first and takes every lease with KCL 2.x's taker (no
KCL 3.x leader exists yet). The Java worker then becomes the 3.x leader; the
Rust worker sees the live leader lock, stops taking, reports itself in
WorkerMetricStats, and the leader moves leases to the Java worker by KCL
3.x's graceful hand-over (`checkpointOwner`): the Rust worker finishes,
checkpoints and hands over, and the Java worker resumes at that checkpoint.
Then the Rust worker is SIGKILLed and the leader gives its leases to the
Java worker once they expire, which resumes from the Rust checkpoints; a
new Rust worker joins and the leader hands it leases gracefully from the
Java worker, the other way round. A second test runs a Rust and a Java
worker in KCL 3.x's 2.x-compatible mode, where both take and steal leases.

What the Rust worker processed is what it printed on stdout (`SHARD
SEQUENCE KEY DATA`, flushed line by line, checkpointed after each batch is
printed); what the Java worker processed is its processor's JSON lines.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import _riffle_bin
from kcl.daemon import Worker, records, wait_for
from kinesis_helpers import create_active_stream, shard_id
from test_kcl import Producer, dynamodb, held_shards, workers  # noqa: F401  (workers: a fixture)

APP = "mixed-app"
STREAM = "mixed"
SHARDS = 4
# KCL's failoverTimeMillis for every worker of the application (daemon.py
# sets the Java one): a lease unrenewed this long is reassigned.
FAILOVER_MS = 3000
# workerMetricsReporterFreqInMillis, as daemon.py sets it for Java.
METRICS_MS = 1000
# JVM start, Java's table creation and leader lock, the leader's
# throughput-based rebalancing (it needs records flowing to see a load).
SHARING_DEADLINE_S = 150.0
# A dead worker's leases expire (3 s) and are reassigned; records flow again.
TAKEOVER_DEADLINE_S = 60.0

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass
class RustWorker:
    """`riffle tail STREAM --group APP`: a riffle-kcl worker printing what it
    processed."""

    workdir: Path
    endpoint: str
    name: str = "rust"
    proc: subprocess.Popen | None = None

    @property
    def out(self) -> Path:
        return self.workdir / "rust.out"

    @property
    def err(self) -> Path:
        return self.workdir / "rust.err"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [_riffle_bin(), "tail", STREAM, "--group", APP, "--from", "trim-horizon",
                 "--failover-millis", str(FAILOVER_MS), "--worker-metrics-millis", str(METRICS_MS)],
                env=dict(os.environ, RIFFLE_ENDPOINT=self.endpoint),
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True, preexec_fn=_die_with_parent,
            )

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def worker_id(self) -> str | None:
        """The id it announced on stderr (`following S as worker ID of
        group APP`): its leaseOwner."""
        for line in self.err.read_text(errors="replace").splitlines() if self.err.exists() else []:
            if line.startswith("following ") and " as worker " in line:
                return line.split(" as worker ", 1)[1].split(" ", 1)[0]
        return None

    def deliveries(self) -> list[dict]:
        """Every record it printed, in order (a line torn by the kill is
        left out)."""
        text = self.out.read_text(errors="replace") if self.out.exists() else ""
        lines = text.split("\n")[:-1]  # the last piece has no newline yet
        out = []
        for line in lines:
            shard, sequence, _key, data = line.split(" ", 3)
            seq, _, sub = sequence.partition("/")
            out.append({"worker": "rust", "shard": shard, "seq": seq, "sub": int(sub or 0), "data": data})
        return out

    def starts(self) -> dict[str, int]:
        """How often it started each shard (`SHARD: printed here from now
        on` on stderr)."""
        counts: dict[str, int] = defaultdict(int)
        for line in self.err.read_text(errors="replace").splitlines() if self.err.exists() else []:
            if line.endswith(": printed here from now on"):
                counts[line.split(":", 1)[0]] += 1
        return counts

    def log_tail(self, chars: int = 6000) -> str:
        return self.err.read_text(errors="replace")[-chars:] if self.err.exists() else ""


@pytest.fixture
def rust_workers(tmp_path, server):
    """Makes `riffle tail --group` workers; the finalizer SIGKILLs them."""
    made: list[RustWorker] = []

    def make(name: str) -> RustWorker:
        worker = RustWorker(workdir=tmp_path / name, endpoint=server.endpoint, name=name)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.kill()


def lease_table(endpoint: str) -> list[dict]:
    return dynamodb(endpoint).scan(TableName=APP, ConsistentRead=True)["Items"]


def owners(endpoint: str) -> dict[str, str | None]:
    return {item["leaseKey"]["S"]: item.get("leaseOwner", {}).get("S") for item in lease_table(endpoint)}


def checkpoints(endpoint: str) -> dict[str, tuple[int, int]]:
    return {item["leaseKey"]["S"]: (int(item["checkpoint"]["S"]), int(item["checkpointSubSequenceNumber"]["N"]))
            for item in lease_table(endpoint) if item["checkpoint"]["S"].isdigit()}


def position(event: dict) -> tuple[int, int]:
    return int(event["seq"]), int(event.get("sub") or 0)


def deliveries(rusts: list[RustWorker], java: Worker) -> list[dict]:
    return [e for rust in rusts for e in rust.deliveries()] + records([java])


def delivered_names(rusts: list[RustWorker], java: Worker) -> set[str]:
    return {e["data"] for e in deliveries(rusts, java)}


def sessions(rusts: list[RustWorker], java: Worker) -> dict[str, int]:
    """Per shard, how many times a worker started processing it."""
    counts: dict[str, int] = defaultdict(int)
    for rust in rusts:
        for shard, count in rust.starts().items():
            counts[shard] += count
    for event in java.events("initialize"):
        counts[event["shard"]] += 1
    return counts


def assert_in_order_per_session(rusts: list[RustWorker], java: Worker) -> None:
    """Each worker delivered each shard in sequence order, except where it
    started the shard again (it then resumes at a checkpoint, at or before
    where it was)."""
    for rust in rusts:
        starts = rust.starts()
        by_shard: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for event in rust.deliveries():
            by_shard[event["shard"]].append(position(event))
        for shard, positions in by_shard.items():
            backs = sum(1 for a, b in zip(positions, positions[1:]) if b <= a)
            assert backs <= starts[shard] - 1, f"{rust.name} delivered {shard} out of order"
    session: dict[str, list[tuple[int, int]]] = {}
    for event in java.events():
        if event["event"] == "initialize":
            session[event["shard"]] = []
        elif event["event"] == "record":
            seen = session.setdefault(event["shard"], [])
            assert not seen or position(event) > seen[-1], f"java delivered {event['shard']} out of order"
            seen.append(position(event))


def test_a_rust_and_a_java_kcl_worker_share_one_application_hand_leases_over_and_resume_at_each_others_checkpoints(
        server, kinesis, workers, rust_workers):  # noqa: F811  (workers: the fixture imported above)
    create_active_stream(kinesis, STREAM, shards=SHARDS)
    every_shard = {shard_id(i) for i in range(SHARDS)}
    producer = Producer(kinesis, STREAM)
    producer.start()
    rust, late_rust = rust_workers("rust"), rust_workers("rust-late")
    try:
        rust.start()
        java = workers(server.endpoint, STREAM, APP, "java-a", mode="POLLING")
        wait_for("the Rust worker took every lease before a KCL 3.x leader existed",
                 lambda: rust.worker_id() and set(rust.starts()) == every_shard, [rust], SHARING_DEADLINE_S)
        rust_id = rust.worker_id()
        java.start()

        snapshot = []

        def shared() -> bool:
            table = owners(server.endpoint)
            java_held = held_shards(java)
            if {rust_id, "java-a"} <= set(table.values()) and java_held and rust.deliveries():
                snapshot.append((table, java_held, rust.deliveries(), java.events("initialize")))
                return True
            return False

        wait_for("the Java leader moved leases to the Java worker: the lease table shows both owners",
                 shared, [java, rust], SHARING_DEADLINE_S)
        table, moved_to_java, rust_before, java_starts = snapshot[-1]
        assert set(table) == every_shard, table
        assert all(owner in (rust_id, "java-a") for owner in table.values()), table
        # Every lease the Java worker holds came from the Rust worker by a
        # graceful hand-over: the Rust worker finished, checkpointed the
        # last record it printed and handed over, and the Java worker began
        # right after it, nothing skipped, nothing twice.
        for shard in moved_to_java:
            printed = [position(e) for e in rust_before if e["shard"] == shard]
            [first] = [e for e in java_starts if e["shard"] == shard][:1]
            assert printed, f"the Rust worker printed nothing of {shard} before handing it over"
            assert (int(first["seq"]), first["sub"] or 0) == printed[-1], \
                f"java started {shard} at {first}, the Rust worker's last record was {printed[-1]}"
        # The Rust worker reports itself as Java does, so the leader counts
        # it; it never takes the leader lock.
        rows = dynamodb(server.endpoint).scan(TableName=f"{APP}-WorkerMetricStats", ConsistentRead=True)["Items"]
        assert {row["wid"]["S"] for row in rows} >= {rust_id, "java-a"}, rows
        lock = dynamodb(server.endpoint).get_item(TableName=f"{APP}-CoordinatorState", Key={"key": {"S": "Leader"}},
                                                  ConsistentRead=True)["Item"]
        assert lock["ownerName"]["S"] == "java-a", lock

        # SIGKILL the Rust worker: its checkpoints are all that is left of it.
        rust.kill()
        frozen = checkpoints(server.endpoint)
        rust_shards = {shard for shard, owner in owners(server.endpoint).items() if owner == rust_id}
        java_lines = len(java.events())
        wait_for(f"the Java worker took over {sorted(rust_shards)} from the dead Rust worker",
                 lambda: held_shards(java) == every_shard, [java], TAKEOVER_DEADLINE_S)

        # A new Rust worker joins: the leader moves leases from the Java
        # worker to it by graceful hand-over, and it resumes at the Java
        # checkpoints.
        late_rust.start()
        wait_for("the leader gave the new Rust worker leases and it printed their records",
                 lambda: late_rust.worker_id() in owners(server.endpoint).values() and late_rust.deliveries(),
                 [java, late_rust], SHARING_DEADLINE_S)
        producer.stop.set()
        producer.join()
        acked = dict(producer.acked)
        wait_for("every acknowledged record delivered",
                 lambda: set(acked) <= delivered_names([rust, late_rust], java), [java, late_rust],
                 TAKEOVER_DEADLINE_S)
    finally:
        producer.stop.set()

    # Nothing lost, each record on the shard it was acknowledged on.
    seen: dict[str, list[dict]] = defaultdict(list)
    for event in deliveries([rust, late_rust], java):
        seen[event["data"]].append(event)
    for name, (shard, sequence) in acked.items():
        assert any((e["shard"], int(e["seq"])) == (shard, sequence) for e in seen[name]), f"{name}: {seen[name]}"
    # Exactly once unless the record's shard moved between workers (then at
    # least once): a graceful hand-over resumes at the old owner's last
    # checkpoint, a dead worker's shard at its last checkpoint.
    moved = {shard for shard, count in sessions([rust, late_rust], java).items() if count > 1}
    twice = sorted(name for name, events in seen.items() if len(events) > 1 and events[0]["shard"] not in moved)
    assert not twice, f"records delivered twice on shards that never moved: {twice[:5]}"
    assert_in_order_per_session([rust, late_rust], java)
    # The Java worker started each of the dead Rust worker's shards at the
    # checkpoint the Rust worker left.
    after_kill = java.events()[java_lines:]
    for shard in rust_shards:
        starts = [e for e in after_kill if e["event"] == "initialize" and e["shard"] == shard]
        assert starts, f"java never started {shard} after the kill"
        if shard in frozen:
            assert (int(starts[0]["seq"]), starts[0]["sub"] or 0) == frozen[shard], \
                f"java took {shard} over at {starts[0]}, the Rust checkpoint was {frozen[shard]}"
    # What the Java worker handed to the new Rust worker gracefully was
    # neither skipped (nothing lost, above) nor processed twice.
    java_after = {e["data"] for e in after_kill if e["event"] == "record"}
    again = sorted(java_after & {e["data"] for e in late_rust.deliveries()})
    assert not again, f"records both the Java worker and the new Rust worker processed: {again[:5]}"


def test_in_a_kcl3_application_compatible_with_2x_rust_and_java_workers_take_and_steal_leases_alike(
        server, kinesis, workers, rust_workers):  # noqa: F811  (workers: the fixture imported above)
    """KCL 3.x's migration mode (`clientVersionConfig =
    CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X`): its workers take and steal
    leases as KCL 2.x does, and so does the Rust worker, which sees the
    2.x-compatible client version in CoordinatorState."""
    create_active_stream(kinesis, STREAM, shards=SHARDS)
    every_shard = {shard_id(i) for i in range(SHARDS)}
    producer = Producer(kinesis, STREAM)
    producer.start()
    rust = rust_workers("rust")
    try:
        java = workers(server.endpoint, STREAM, APP, "java-a", mode="POLLING",
                       clientVersionConfig="CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X")
        java.start()
        rust.start()
        wait_for("the Rust and the Java worker each took leases and processed records",
                 lambda: rust.worker_id() in owners(server.endpoint).values()
                 and "java-a" in owners(server.endpoint).values()
                 and rust.deliveries() and records([java]),
                 [java, rust], SHARING_DEADLINE_S)
        state = dynamodb(server.endpoint).get_item(TableName=f"{APP}-CoordinatorState",
                                                   Key={"key": {"S": "Migration3.0"}}, ConsistentRead=True)
        assert state["Item"]["cv"]["S"] in ("CLIENT_VERSION_UPGRADE_FROM_2X", "CLIENT_VERSION_2X"), state

        rust.kill()
        wait_for("the Java worker took the dead Rust worker's leases",
                 lambda: held_shards(java) == every_shard, [java], TAKEOVER_DEADLINE_S)
        producer.stop.set()
        producer.join()
        acked = dict(producer.acked)
        wait_for("every acknowledged record delivered",
                 lambda: set(acked) <= delivered_names([rust], java), [java], TAKEOVER_DEADLINE_S)
    finally:
        producer.stop.set()
    seen: dict[str, list[dict]] = defaultdict(list)
    for event in deliveries([rust], java):
        seen[event["data"]].append(event)
    moved = {shard for shard, count in sessions([rust], java).items() if count > 1}
    twice = sorted(name for name, events in seen.items() if len(events) > 1 and events[0]["shard"] not in moved)
    assert not twice, f"records delivered twice on shards that never moved: {twice[:5]}"
    assert_in_order_per_session([rust], java)
