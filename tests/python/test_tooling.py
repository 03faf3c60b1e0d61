"""The suite's own tools are the real ones, installed and runnable: a missing
or half-installed aws CLI must fail the run, never skip the CLI tests."""

import subprocess

import boto3
import botocore

from conftest import AWS_CLI


def test_aws_cli_from_the_venv_runs_and_is_v1():
    done = subprocess.run([str(AWS_CLI), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # awscli v1 prints its version on stdout or stderr depending on release.
    assert (done.stdout + done.stderr).startswith("aws-cli/1."), done.stdout + done.stderr


def test_botocore_ships_the_kinesis_model_the_server_copies():
    model = boto3.session.Session().get_available_services()
    assert "kinesis" in model
    assert botocore.__version__
