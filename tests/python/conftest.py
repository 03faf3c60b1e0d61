"""Fixtures for the boto3 and aws CLI suite: a real `riffle serve` process per
test on a free port with its own data directory, clients pointed at it, and
an offline AWS environment so nothing reaches (or reads config for) real AWS.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from kinesis_helpers import REGION

# The banner line `riffle serve` prints once its listener is bound (README).
ENDPOINT_LINE = re.compile(r"^\s*endpoint:\s+(https?://\S+)\s*$", re.MULTILINE)
# A debug build on a busy 2-core machine can be slow to start; the deadline
# bounds a server that never prints its banner, it is not a wait-to-hope.
START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 10.0
POLL_INTERVAL_S = 0.01

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel sends it SIGKILL if pytest
    dies, so a crashed or killed test run leaves no server behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _riffle_bin() -> str:
    path = os.environ.get("RIFFLE_BIN")
    if not path:
        pytest.fail("RIFFLE_BIN is not set: run scripts/test-python (it builds target/debug/riffle)")
    if not os.access(path, os.X_OK):
        pytest.fail(f"RIFFLE_BIN={path} is not an executable")
    return path


@dataclass
class RiffleServer:
    """One `riffle serve` process; can be stopped and started again on the
    same data directory (the restart tests need that)."""

    data_dir: Path
    log_dir: Path
    extra_args: list[str] = field(default_factory=list)
    # Port 0 picks a free port; a test that restarts a server its clients
    # keep an endpoint of (the KCL tests) sets the port the first start got.
    listen: str = "127.0.0.1:0"
    # No CREATING/DELETING pause by default: tests wait on the waiters anyway.
    status_delay_ms: int = 0
    # No web console by default: servers in tests bind no fixed port, and
    # the console's default is one. None leaves riffle's own default.
    console_listen: str | None = "off"
    proc: subprocess.Popen | None = None
    endpoint: str = ""
    _starts: int = 0

    def start(self) -> str:
        assert self.proc is None, "server already running"
        self._starts += 1
        stdout_path = self.log_dir / f"riffle-{self._starts}.stdout"
        stderr_path = self.log_dir / f"riffle-{self._starts}.stderr"
        # Files, not pipes: a server that logs a lot can never block on a
        # full pipe nobody reads, and the logs survive for failure reports.
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [
                    _riffle_bin(),
                    "serve",
                    "--listen",
                    self.listen,
                    "--data-dir",
                    str(self.data_dir),
                    "--status-delay-ms",
                    str(self.status_delay_ms),
                    *(["--console-listen", self.console_listen] if self.console_listen else []),
                    *self.extra_args,
                ],
                # RIFFLE_* settings in the caller's shell (a config file, another
                # account id, fsync=never) must not change what the tests see.
                env={k: v for k, v in os.environ.items() if not k.startswith("RIFFLE_")},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                preexec_fn=_die_with_parent,
            )
        self.endpoint = self._wait_for_endpoint(stdout_path, stderr_path)
        return self.endpoint

    def _wait_for_endpoint(self, stdout_path: Path, stderr_path: Path) -> str:
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            match = ENDPOINT_LINE.search(stdout_path.read_text(errors="replace"))
            if match:
                return match.group(1)
            code = self.proc.poll()
            if code is not None or time.monotonic() > deadline:
                self.kill()
                why = f"exited with {code}" if code is not None else f"printed no endpoint within {START_DEADLINE_S}s"
                pytest.fail(
                    f"riffle serve {why}\n--- stdout ---\n{stdout_path.read_text(errors='replace')}"
                    f"\n--- stderr ---\n{stderr_path.read_text(errors='replace')[-4000:]}"
                )
            time.sleep(POLL_INTERVAL_S)

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush or clean up, as in a crash."""
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self.proc = None

    def terminate(self) -> int | None:
        """SIGTERM and wait for the graceful exit; SIGKILL if it hangs.
        Returns the exit code of the graceful exit, None if it had to be killed."""
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            code = self.proc.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self.proc = None
        return code

    def stderr_tail(self) -> str:
        path = self.log_dir / f"riffle-{self._starts}.stderr"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@pytest.fixture(scope="session", autouse=True)
def offline_aws_env(tmp_path_factory):
    """Credentials and region for boto3 and the CLI, with the shared config
    files pointed at paths that do not exist so no user profile leaks in."""
    home = tmp_path_factory.mktemp("aws-home")
    env = {
        "AWS_ACCESS_KEY_ID": "AKIDRIFFLETEST",
        "AWS_SECRET_ACCESS_KEY": "riffle-test-secret",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "no-such-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-such-credentials"),
        "AWS_PAGER": "",
    }
    dropped = ["AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS"]
    saved = {k: os.environ.get(k) for k in [*env, *dropped]}
    os.environ.update(env)
    for key in dropped:
        os.environ.pop(key, None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# The banner line that names the Prometheus endpoint.
METRICS_LINE = re.compile(r"^\s*metrics:\s+(http://\S+/metrics)\s*$", re.MULTILINE)
# One sample of the text format: name, labels (optional), value.
METRICS_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


@pytest.fixture
def metered(tmp_path):
    """A running server that also serves /metrics, at `metered.metrics_url`."""
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=["--metrics-listen", "127.0.0.1:0"])
    srv.start()
    srv.metrics_url = METRICS_LINE.search((tmp_path / "riffle-1.stdout").read_text()).group(1)
    yield srv
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def scrape_samples(url: str) -> dict[tuple[str, str], float]:
    """/metrics as {(name, labels as written, "" for none): value}."""
    import urllib.request
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, labels, value = METRICS_SAMPLE.match(line).groups()
            samples[(name, labels or "")] = float(value)
    return samples


@pytest.fixture
def server(tmp_path):
    """A fresh, running server with its own data directory."""
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path)
    srv.start()
    yield srv
    crashed = srv.proc is not None and srv.proc.poll() is not None
    # Captured output: pytest shows it only when the test fails.
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    code = srv.terminate()
    if crashed:
        pytest.fail("riffle serve died during the test (see its stderr above)")
    # SIGTERM must drain, flush and exit 0 (CLI.md), after any test.
    if code != 0:
        pytest.fail(f"riffle serve did not exit 0 on SIGTERM within {STOP_DEADLINE_S}s (exit {code})")


_session: boto3.session.Session | None = None


def make_client(
    endpoint: str,
    *,
    key_id: str | None = None,
    secret: str | None = None,
    token: str | None = None,
    region: str = REGION,
    verify: bool | str | None = None,
    **config,
):
    """A boto3 Kinesis client for `endpoint`. No retries: a server error must
    fail the test, not be papered over by the SDK. One shared session keeps
    the parsed service model (a session is not thread-safe: create clients on
    the main thread; the clients themselves are). Credentials default to the
    offline environment's; `verify` is a CA bundle for HTTPS."""
    global _session
    if _session is None:
        _session = boto3.session.Session()
    return _session.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
        verify=verify,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30, **config),
    )


@pytest.fixture
def kinesis(server):
    return make_client(server.endpoint)


@pytest.fixture
def raw_kinesis(server):
    """A client without botocore's own parameter checks, to reach the
    server's validation with values the SDK would refuse locally."""
    return make_client(server.endpoint, parameter_validation=False)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else None


AWS_CLI = Path(sys.executable).parent / "aws"


@pytest.fixture
def aws(server):
    """Runs the venv's `aws kinesis ...` against the server; returns a CliResult."""
    if not os.access(AWS_CLI, os.X_OK):
        pytest.fail(f"the aws CLI is not installed at {AWS_CLI}: run scripts/test-python")

    def run(*args: str, check: bool = True) -> CliResult:
        argv = [str(AWS_CLI), "--endpoint-url", server.endpoint, "--output", "json", "--region", REGION, "kinesis", *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        result = CliResult(done.returncode, done.stdout, done.stderr)
        if check and result.code != 0:
            pytest.fail(f"aws {' '.join(args)} exited {result.code}\nstdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    return run
