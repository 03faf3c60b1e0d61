"""The README's quick start, run literally: a new user pastes it into a shell
and must see `hello` come back (the commands are read from README.md, so the
test fails the day the text and the server disagree)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from conftest import AWS_CLI, RiffleServer

README = Path(__file__).resolve().parents[2] / "README.md"
DEFAULT_ENDPOINT = "http://127.0.0.1:4567"


def _shell_block_after(heading: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    match = re.search(r"```sh\n(.*?)```", text[start:], re.DOTALL)
    assert match, f"no sh block after {heading!r}"
    return match.group(1)


def test_readme_aws_cli_quick_start_puts_and_reads_back_hello(tmp_path):
    # The default CREATING pause of `riffle serve` (500 ms): the README's
    # wait must cover it, as a user's server has it.
    server = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, status_delay_ms=500)
    server.start()
    try:
        _run_quick_start(server.endpoint)
    finally:
        assert server.terminate() == 0


def _run_quick_start(endpoint: str) -> None:
    block = _shell_block_after("## Try it with the `aws` CLI")
    assert DEFAULT_ENDPOINT in block
    script = block.replace(DEFAULT_ENDPOINT, endpoint)
    env = dict(os.environ)
    # The venv's CLI (v1, what the README's --data form is written for).
    env["PATH"] = f"{AWS_CLI.parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # put-record's answer names the shard the README says user-1 goes to.
    assert any('"ShardId": "shardId-000000000001"' in line for line in lines), done.stdout
    assert "hello" in lines, done.stdout
    assert '"demo"' in done.stdout  # list-streams
