"""DescribeAccountSettings and UpdateAccountSettings through boto3: the
minimum throughput billing commitment as the model documents it (at least
24 hours; an early disable waits for the earliest allowed end, and enabling
again before then cancels it), kept across a SIGKILL of the server."""

from datetime import timedelta

from conftest import make_client
from kinesis_helpers import code_and_message, error_of


def commitment(answer: dict) -> dict:
    return answer["MinimumThroughputBillingCommitment"]


def test_a_new_account_has_no_commitment(kinesis):
    assert commitment(kinesis.describe_account_settings()) == {"Status": "DISABLED"}


def test_a_commitment_lasts_a_day_and_survives_a_crash(server, kinesis):
    enabled = commitment(kinesis.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"}))
    assert enabled["Status"] == "ENABLED"
    assert enabled["EarliestAllowedEndAt"] - enabled["StartedAt"] == timedelta(hours=24)
    assert "EndedAt" not in enabled
    assert commitment(kinesis.describe_account_settings()) == enabled

    # Disabling within the first 24 hours only schedules the end.
    pending = commitment(kinesis.update_account_settings(MinimumThroughputBillingCommitment={"Status": "DISABLED"}))
    assert pending == {**enabled, "Status": "ENABLED_UNTIL_EARLIEST_ALLOWED_END"}

    server.kill()
    server.start()
    client = make_client(server.endpoint)
    assert commitment(client.describe_account_settings()) == pending
    # Enabling again before the earliest end cancels the pending disable.
    kept = commitment(client.update_account_settings(MinimumThroughputBillingCommitment={"Status": "ENABLED"}))
    assert kept == enabled


def test_update_account_settings_validates_as_the_model_says(kinesis):
    err = error_of(kinesis.update_account_settings, MinimumThroughputBillingCommitment={"Status": "PAUSED"})
    code, message = code_and_message(err)
    assert code == "ValidationException"
    assert "minimumThroughputBillingCommitment.status" in message and "[ENABLED, DISABLED]" in message
    assert commitment(kinesis.describe_account_settings()) == {"Status": "DISABLED"}
