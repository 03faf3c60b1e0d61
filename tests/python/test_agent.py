"""`riffle agent --config agent.json`, the Kinesis Agent, against `riffle
serve`: log files written and rotated (by rename and by copy-truncate) while
the agent runs, the agent killed with SIGKILL and restarted, and every line
found in the stream (duplicates only of lines sent before the kill); CSV and
Apache logs converted to the agent's JSON, into a stream and through
Firehose into the embedded S3."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from conftest import _die_with_parent, _riffle_bin, make_client, scrape_samples
from kinesis_helpers import REGION, create_active_stream, read_shard, shard_id

# Bounds on waiting for the agent's deliveries, never a sleep-to-hope.
DELIVERY_DEADLINE_S = 60.0
STOP_DEADLINE_S = 20.0
POLL_INTERVAL_S = 0.1


class Agent:
    """One `riffle agent` process over a config file; restartable."""

    def __init__(self, config: Path, log_dir: Path):
        self.config = config
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.log_dir / f"agent-{self.starts}.stderr", "wb") as err:
            self.proc = subprocess.Popen(
                [_riffle_bin(), "agent", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                preexec_fn=_die_with_parent,
            )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def terminate(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(timeout=STOP_DEADLINE_S)
        self.proc = None
        return code

    def log(self) -> str:
        return "".join(
            (self.log_dir / f"agent-{i}.stderr").read_text(errors="replace") for i in range(1, self.starts + 1)
        )


@pytest.fixture
def agent_for(tmp_path):
    """Makes an Agent for a config dict; kills it after the test."""
    agents = []

    def make(config: dict) -> Agent:
        path = tmp_path / "agent.json"
        path.write_text(json.dumps(config))
        agent = Agent(path, tmp_path)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        print(f"--- riffle agent log ---\n{agent.log()[-6000:]}")
        if agent.proc is not None:
            agent.proc.kill()
            agent.proc.wait()


def append(path: Path, lines: list[str]) -> None:
    with open(path, "a") as f:
        f.writelines(line + "\n" for line in lines)


def lines(start: int, end: int) -> list[str]:
    return [f"line {i:06d} of the application log" for i in range(start, end)]


def stream_data(kinesis, stream: str) -> list[str]:
    return [r["Data"].decode() for r in read_shard(kinesis, stream, shard_id(0))]


def wait_for_lines(kinesis, stream: str, expected: set[str], agent: Agent) -> list[str]:
    """The stream's records once every expected line is among them."""
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while True:
        got = stream_data(kinesis, stream)
        missing = expected - {g.removesuffix("\n") for g in got}
        if not missing:
            return got
        assert agent.proc is None or agent.proc.poll() is None, f"agent exited:\n{agent.log()[-3000:]}"
        assert time.monotonic() < deadline, f"{len(missing)} lines missing, e.g. {sorted(missing)[:3]}"
        time.sleep(POLL_INTERVAL_S)


def test_every_line_reaches_the_stream_through_rotations_and_kill_9(server, kinesis, agent_for, tmp_path):
    create_active_stream(kinesis, "logs")
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    agent = agent_for(
        {
            "kinesis.endpoint": server.endpoint,
            "checkpointFile": str(tmp_path / "checkpoints"),
            "flows": [
                {
                    "filePattern": f"{logs}/app.log*",
                    "kinesisStream": "logs",
                    "initialPosition": "START_OF_FILE",
                    "maxBufferAgeMillis": 1000,
                    "maxBufferSizeRecords": 50,
                }
            ],
        }
    )
    append(app, lines(0, 300))
    agent.start()
    wait_for_lines(kinesis, "logs", set(lines(0, 300)), agent)

    # Rotation by rename: the old file is finished, the new one followed.
    append(app, lines(300, 350))
    app.rename(logs / "app.log.1")
    append(app, lines(350, 500))
    wait_for_lines(kinesis, "logs", set(lines(0, 500)), agent)

    # SIGKILL while lines arrive: what was acknowledged is checkpointed.
    append(app, lines(500, 700))
    agent.kill()
    before_kill = set(stream_data(kinesis, "logs"))
    append(app, lines(700, 800))

    # Rotation by copy-truncate while the agent is down, then more lines.
    (logs / "app.log.1").rename(logs / "app.log.2")
    shutil.copyfile(app, logs / "app.log.1")
    with open(app, "r+") as f:
        f.truncate(0)
    append(app, lines(800, 900))
    agent.start()
    wait_for_lines(kinesis, "logs", set(lines(0, 900)), agent)

    # Copy-truncate while it runs.
    os.remove(logs / "app.log.2")
    (logs / "app.log.1").rename(logs / "app.log.2")
    append(app, lines(900, 950))
    shutil.copyfile(app, logs / "app.log.1")
    with open(app, "r+") as f:
        f.truncate(0)
    append(app, lines(950, 1000))
    got = wait_for_lines(kinesis, "logs", set(lines(0, 1000)), agent)
    assert agent.terminate() == 0

    assert all(g.endswith("\n") for g in got), "the agent sends each line with its newline"
    seen: set[str] = set()
    for record in got:
        if record in seen:
            assert record in before_kill, f"{record!r} sent twice, not across the kill"
        seen.add(record)
    assert "Progress:" in agent.log()


def test_csv_and_apache_logs_become_the_agents_json_in_a_stream_and_through_firehose(
    server, kinesis, agent_for, tmp_path
):
    create_active_stream(kinesis, "web")
    make = lambda service: boto3.client(  # noqa: E731
        service,
        endpoint_url=server.endpoint,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    firehose, s3 = make("firehose"), make("s3")
    s3.create_bucket(Bucket="csv-bucket")
    firehose.create_delivery_stream(
        DeliveryStreamName="csv-ds",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::000000000000:role/firehose",
            "BucketARN": "arn:aws:s3:::csv-bucket",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 1},
        },
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    agent = agent_for(
        {
            "kinesis.endpoint": server.endpoint,
            "firehose.endpoint": server.endpoint,
            "checkpointFile": str(tmp_path / "checkpoints"),
            "flows": [
                {
                    "filePattern": f"{logs}/access.log",
                    "kinesisStream": "web",
                    "partitionKeyOption": "DETERMINISTIC",
                    "initialPosition": "START_OF_FILE",
                    "maxBufferAgeMillis": 1000,
                    "dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG"}],
                },
                {
                    "filePattern": f"{logs}/*.csv",
                    "deliveryStream": "csv-ds",
                    "initialPosition": "START_OF_FILE",
                    "maxBufferAgeMillis": 1000,
                    "skipHeaderLines": 1,
                    "dataProcessingOptions": [
                        {"optionName": "CSVTOJSON", "customFieldNames": ["id", "name", "city"], "delimiter": ","}
                    ],
                },
            ],
        }
    )
    # The developer guide's LOGTOJSON example, a line that is no access log
    # (the agent drops it) and one with a size.
    append(
        logs / "access.log",
        [
            '64.242.88.10 - - [07/Mar/2004:16:10:02 -0800] "GET /mailman/listinfo/hsdivision HTTP/1.1" 200 6291',
            "this is not an access log line",
            '10.0.0.1 - alice [07/Mar/2004:16:11:58 -0800] "POST /login HTTP/1.1" 302 -',
        ],
    )
    append(logs / "people.csv", ["id,name,city", "1,Ada,London", "2,Grace", "3,Linus,Helsinki"])
    agent.start()

    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while len(records := read_shard(kinesis, "web", shard_id(0))) < 2:
        assert time.monotonic() < deadline, f"access log not delivered:\n{agent.log()[-3000:]}"
        time.sleep(POLL_INTERVAL_S)
    assert [r["Data"].decode() for r in records] == [
        '{"host":"64.242.88.10","ident":null,"authuser":null,"datetime":"07/Mar/2004:16:10:02 -0800",'
        '"request":"GET /mailman/listinfo/hsdivision HTTP/1.1","response":"200","bytes":"6291"}\n',
        '{"host":"10.0.0.1","ident":null,"authuser":"alice","datetime":"07/Mar/2004:16:11:58 -0800",'
        '"request":"POST /login HTTP/1.1","response":"302","bytes":null}\n',
    ]
    import hashlib

    assert records[0]["PartitionKey"] == hashlib.md5(records[0]["Data"]).hexdigest()

    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    delivered = b""
    while delivered.count(b"\n") < 3:
        assert time.monotonic() < deadline, f"csv not delivered: {delivered!r}\n{agent.log()[-3000:]}"
        time.sleep(POLL_INTERVAL_S)
        objects = s3.list_objects_v2(Bucket="csv-bucket").get("Contents", [])
        delivered = b"".join(
            s3.get_object(Bucket="csv-bucket", Key=o["Key"])["Body"].read()
            for o in sorted(objects, key=lambda o: o["Key"])
        )
    assert delivered.decode() == (
        '{"id":"1","name":"Ada","city":"London"}\n'
        '{"id":"2","name":"Grace","city":null}\n'
        '{"id":"3","name":"Linus","city":"Helsinki"}\n'
    )
    assert agent.terminate() == 0


def test_lines_for_a_missing_stream_wait_and_survive_sigterm(server, kinesis, agent_for, tmp_path):
    agent = agent_for(
        {
            "kinesis.endpoint": server.endpoint,
            "checkpointFile": str(tmp_path / "checkpoints"),
            "shutdownTimeoutMillis": 500,
            "flows": [
                {
                    "filePattern": f"{tmp_path}/later.log",
                    "kinesisStream": "later",
                    "initialPosition": "START_OF_FILE",
                    "maxBufferAgeMillis": 1000,
                }
            ],
        }
    )
    append(tmp_path / "later.log", lines(0, 3))
    agent.start()
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while "sending 3 records failed" not in agent.log():
        assert time.monotonic() < deadline, f"no failed send reported:\n{agent.log()[-3000:]}"
        time.sleep(POLL_INTERVAL_S)
    # Unacknowledged records do not hold SIGTERM past shutdownTimeoutMillis,
    # and their positions are not checkpointed.
    assert agent.terminate() == 0
    create_active_stream(kinesis, "later")
    agent.start()
    got = wait_for_lines(kinesis, "later", set(lines(0, 3)), agent)
    assert len(got) == 3
    assert agent.terminate() == 0


def test_the_agents_cloudwatch_metrics_count_what_was_sent(metered, agent_for, tmp_path):
    kinesis = make_client(metered.endpoint)
    create_active_stream(kinesis, "m")
    agent = agent_for(
        {
            "kinesis.endpoint": metered.endpoint,
            "cloudwatch.endpoint": metered.endpoint,
            "cloudwatch.metricsBufferTimeMillis": 1000,
            "checkpointFile": str(tmp_path / "checkpoints"),
            "flows": [
                {
                    "filePattern": f"{tmp_path}/m.log",
                    "kinesisStream": "m",
                    "initialPosition": "START_OF_FILE",
                    "maxBufferAgeMillis": 1000,
                }
            ],
        }
    )
    append(tmp_path / "m.log", ["a", "bb", "ccc"])
    agent.start()
    labels = 'namespace="AWSKinesisAgent",metric="{}",Destination="KinesisStream:m"'
    deadline = time.monotonic() + DELIVERY_DEADLINE_S
    while scrape_samples(metered.metrics_url).get(("riffle_cloudwatch_metric_sum", labels.format("BytesSent"))) != 9:
        assert time.monotonic() < deadline, f"no BytesSent of 9:\n{agent.log()[-3000:]}"
        time.sleep(POLL_INTERVAL_S)
    samples = scrape_samples(metered.metrics_url)
    assert samples[("riffle_cloudwatch_metric_sum", labels.format("RecordSendAttempts"))] == 3
    assert samples[("riffle_cloudwatch_metric_sum", labels.format("RecordSendErrors"))] == 0
    assert samples[("riffle_cloudwatch_metric_sum", labels.format("ServiceErrors"))] == 0
    assert agent.terminate() == 0


def test_a_config_the_agent_cannot_use_is_refused_with_its_reason(tmp_path):
    config = tmp_path / "agent.json"
    config.write_text(json.dumps({"flows": [{"filePattern": "/tmp/x.log", "kinesisStream": "s", "deliveryStream": "d"}]}))
    done = subprocess.run(
        [_riffle_bin(), "agent", "--config", str(config)], capture_output=True, text=True, timeout=STOP_DEADLINE_S
    )
    assert done.returncode == 2
    assert "exactly one of kinesisStream and deliveryStream" in done.stderr
