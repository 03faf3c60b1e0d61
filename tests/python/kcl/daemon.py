"""Runs the real Java KCL 3.1.3 MultiLangDaemon (the jars `kclpy-ext` ships)
against a Riffle server, with tests/python/kcl/processor.py as the record
processor, and reads back what the processor saw.

Both `kinesisEndpoint` and `dynamoDBEndpoint` are the one Riffle endpoint: the
lease table, the coordinator state and the worker metrics live in Riffle's
DynamoDB subset. Each daemon runs in its own process group (the processors
are its children), so a test can SIGKILL a whole worker at once, and the
kernel kills the daemon if pytest dies.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import amazon_kclpy

PROCESSOR = Path(__file__).with_name("processor.py")
JARS = Path(amazon_kclpy.__file__).parent / "jars"
POLL_INTERVAL_S = 0.2

# DEBUG for the KCL itself (its lease and shard-sync decisions are what a
# failing test needs), INFO for the SDK underneath.
LOGBACK = """<configuration>
  <appender name="FILE" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} [%thread] %-5level %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <logger name="software.amazon.kinesis" level="DEBUG"/>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
"""

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the daemon before exec: SIGKILL it if pytest dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def java() -> str:
    path = shutil.which("java")
    if path is None:
        raise RuntimeError("java is not installed: scripts/test-python installs openjdk-17-jdk-headless")
    return path


@dataclass
class Worker:
    """One KCL worker (a MultiLangDaemon) of application `app` on `stream`."""

    workdir: Path
    endpoint: str
    stream: str
    app: str
    name: str
    # FANOUT (KCL's default: SubscribeToShard over HTTP/2) or POLLING.
    mode: str = "FANOUT"
    extra: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    _starts: int = 0

    @property
    def out(self) -> Path:
        """The processor's JSON lines, over every start of this worker."""
        return self.workdir / f"{self.name}.jsonl"

    def properties(self) -> dict[str, str]:
        props = {
            "executableName": f"{sys.executable} {PROCESSOR}",
            "streamName": self.stream,
            "applicationName": self.app,
            "workerIdentifier": self.name,
            "regionName": "us-east-1",
            "AwsCredentialsProvider": "DefaultCredentialsProvider",
            "initialPositionInStream": "TRIM_HORIZON",
            "kinesisEndpoint": self.endpoint,
            "dynamoDBEndpoint": self.endpoint,
            "retrievalMode": self.mode,
            "metricsLevel": "NONE",
            # KCL's defaults suit a fleet in AWS (a minute between shard
            # syncs, 10 s to call a worker dead); a test wants to see a
            # reshard or a dead worker within seconds.
            "shardSyncIntervalMillis": "1000",
            "failoverTimeMillis": "3000",
            "leaseAssignmentIntervalMillis": "1000",
            "parentShardPollIntervalMillis": "500",
            "idleTimeBetweenReadsInMillis": "250",
            # KCL 3's leader counts a worker alive for two reporting periods
            # after its last WorkerMetricStats (30 s each by default), and
            # keeps giving a dead one leases until then.
            "workerMetricsReporterFreqInMillis": "1000",
        }
        props.update(self.extra)
        return props

    def start(self) -> None:
        assert self.proc is None, f"worker {self.name} already running"
        self._starts += 1
        self.workdir.mkdir(parents=True, exist_ok=True)
        props = self.workdir / f"{self.name}.properties"
        props.write_text("".join(f"{k} = {v}\n" for k, v in self.properties().items()))
        logback = self.workdir / "logback.xml"
        logback.write_text(LOGBACK)
        classpath = ":".join([*(str(j) for j in sorted(JARS.glob("*.jar")))])
        env = dict(os.environ, KCL_OUT=str(self.out), KCL_WORKER=self.name)
        with open(self.log_path(), "wb") as log:
            self.proc = subprocess.Popen(
                [
                    java(),
                    "-cp",
                    classpath,
                    "software.amazon.kinesis.multilang.MultiLangDaemon",
                    "--properties-file",
                    str(props),
                    "--log-configuration",
                    str(logback),
                ],
                env=env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def log_path(self, start: int | None = None) -> Path:
        return self.workdir / f"{self.name}-{start or self._starts}.log"

    def log_tail(self, chars: int = 6000) -> str:
        path = self.log_path()
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the daemon and every record processor it started: a
        worker dying without a word, as a crashed host does."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def events(self, kind: str | None = None) -> list[dict]:
        if not self.out.exists():
            return []
        lines = self.out.read_text().splitlines()
        # A worker killed mid-write may leave one torn last line.
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return [e for e in events if kind is None or e["event"] == kind]


def records(workers: list[Worker]) -> list[dict]:
    """Every record event of these workers."""
    return [e for w in workers for e in w.events("record")]


def wait_for(what: str, check, workers: list[Worker], deadline_s: float):
    """Polls `check()` until it returns something truthy; fails with the
    workers' log tails if `deadline_s` passes or a worker dies first."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        dead = [w for w in workers if w.proc is not None and w.proc.poll() is not None]
        if dead or time.monotonic() > deadline:
            why = f"worker {dead[0].name} exited {dead[0].proc.returncode}" if dead else f"not within {deadline_s}s"
            tails = "\n".join(f"--- {w.name} log (tail) ---\n{w.log_tail()}" for w in workers)
            raise AssertionError(f"{what}: {why}\n{tails}")
        time.sleep(POLL_INTERVAL_S)
