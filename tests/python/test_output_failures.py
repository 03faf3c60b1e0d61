"""A log that cannot be written never changes what a request gets. With the
server's stdout and stderr opened on /dev/full (every write fails with
ENOSPC, as on a full disk the output is redirected to) and debug logging
(a line per request), and the audit log on /dev/full as well, every
request, failing ones included, gets its proper answer, the server keeps
serving, and SIGTERM still stops it with status 0."""

import os
import socket
import subprocess
import time

import pytest

from conftest import START_DEADLINE_S, STOP_DEADLINE_S, _die_with_parent, _riffle_bin, make_client
from kinesis_helpers import (
    code_and_message,
    create_active_stream,
    error_of,
    get_records,
    iterator,
    shard_id,
    stream_arn,
)
from test_cors import browser_preflight, exchange

FULL = "/dev/full"
POLL_INTERVAL_S = 0.01


def free_port() -> int:
    """A port free right now. The banner that names the port cannot be read
    from /dev/full, so the test picks it; the server fails to start (and the
    test says so) in the unlikely case it is taken in between."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_on_full_output(tmp_path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RIFFLE_")}
    env["RUST_LOG"] = "debug"
    with open(FULL, "wb") as full:
        proc = subprocess.Popen(
            [
                _riffle_bin(),
                "serve",
                "--listen",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(tmp_path / "data"),
                "--status-delay-ms",
                "0",
                *extra,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=full,
            stderr=full,
            preexec_fn=_die_with_parent,
        )
    deadline = time.monotonic() + START_DEADLINE_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            pass
        code = proc.poll()
        if code is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"riffle serve with output on {FULL} never listened (exit {code})")
        time.sleep(POLL_INTERVAL_S)


def stop(proc: subprocess.Popen) -> int | None:
    proc.terminate()
    try:
        return proc.wait(timeout=STOP_DEADLINE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


@pytest.fixture(autouse=True)
def full_device_exists():
    if not os.path.exists(FULL):
        pytest.fail(f"{FULL} is missing: these tests need Linux's always-full device")


def test_requests_get_their_answers_when_no_log_line_can_be_written(tmp_path):
    # The audit log, too, is on the full device: every call's line is lost.
    proc, endpoint = start_on_full_output(tmp_path, "--audit-log", FULL, "--audit-data-events", "on")
    try:
        kinesis = make_client(endpoint)
        raw = make_client(endpoint, parameter_validation=False)
        create_active_stream(kinesis, "full-output", shards=2)
        entries = [{"PartitionKey": f"k{i}", "Data": f"record {i}".encode()} for i in range(10)]
        for _ in range(5):
            # The failing calls log a warning each; none may cost its answer.
            put = kinesis.put_records(StreamName="full-output", Records=entries)
            assert put["FailedRecordCount"] == 0
            missing = error_of(kinesis.put_records, StreamName="ghost", Records=entries)
            assert code_and_message(missing) == (
                "ResourceNotFoundException",
                "Stream ghost under account 000000000000 not found.",
            )
            invalid = error_of(raw.put_records, StreamName="full-output", Records=[])
            assert code_and_message(invalid)[0] == "ValidationException"
            wrong_type = error_of(raw.create_stream, StreamName="s", ShardCount="one")
            assert code_and_message(wrong_type)[0] == "SerializationException"
        records = get_records(kinesis, ShardIterator=iterator(kinesis, "full-output", shard_id(0)))["Records"]
        records += get_records(kinesis, ShardIterator=iterator(kinesis, "full-output", shard_id(1)))["Records"]
        assert len(records) == 5 * len(entries)
        assert kinesis.list_streams()["StreamNames"] == ["full-output"]

        # An event stream, and a CORS preflight, log as they go too.
        consumer = kinesis.register_stream_consumer(StreamARN=stream_arn("full-output"), ConsumerName="c")
        arn = consumer["Consumer"]["ConsumerARN"]
        deadline = time.monotonic() + STOP_DEADLINE_S
        while kinesis.describe_stream_consumer(ConsumerARN=arn)["ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
            assert time.monotonic() < deadline, "the consumer never became ACTIVE"
            time.sleep(POLL_INTERVAL_S)
        subscribed = kinesis.subscribe_to_shard(
            ConsumerARN=arn, ShardId=shard_id(0), StartingPosition={"Type": "TRIM_HORIZON"}
        )
        first = next(iter(subscribed["EventStream"]))["SubscribeToShardEvent"]
        assert first["Records"], "the shard's records come first from TRIM_HORIZON"
        subscribed["EventStream"].close()
        status, _, _ = exchange(endpoint, browser_preflight(endpoint))
        assert status == 200
        assert proc.poll() is None, "the server died"
    finally:
        code = stop(proc)
    # SIGTERM's shutdown logs too; it must still drain, flush and exit 0.
    assert code == 0, f"exit {code} on SIGTERM"


def test_a_refused_option_still_exits_2_when_stderr_is_full(tmp_path):
    with open(FULL, "wb") as full:
        done = subprocess.run(
            [_riffle_bin(), "serve", "--data-dir", str(tmp_path / "data"), "--fsync", "sometimes"],
            env={k: v for k, v in os.environ.items() if not k.startswith("RIFFLE_")},
            stdin=subprocess.DEVNULL,
            stdout=full,
            stderr=full,
            timeout=STOP_DEADLINE_S,
        )
    # 101 would be a panic on the failed error report.
    assert done.returncode == 2
