"""Handlers of Kinesis event source mappings, written as for AWS Lambda and
run unmodified through PyPI's awslambdaric as `[functions]` commands. Each
appends what it was given (one JSON line per invocation) to the file named
by the function's INVOCATIONS environment variable, for the test to read."""

import base64
import json
import os
import time


def _log(event) -> list[bytes]:
    datas = [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]
    with open(os.environ["INVOCATIONS"], "a") as out:
        out.write(json.dumps(event) + "\n")
    return datas


def record(event, context):
    """Takes every record."""
    _log(event)


def slow(event, context):
    """Takes every record, a quarter second a batch."""
    _log(event)
    time.sleep(0.25)


def poison(event, context):
    """Fails any batch that holds a record starting with `poison`."""
    if any(d.startswith(b"poison") for d in _log(event)):
        raise ValueError("a poisoned record")


def fails(event, context):
    """Fails every batch."""
    _log(event)
    raise RuntimeError("always")


def once_bad(event, context):
    """Reports, under ReportBatchItemFailures, each record starting with
    `bad` the first time it sees it (kept in a file beside INVOCATIONS)."""
    seen_path = os.environ["INVOCATIONS"] + ".seen"
    seen = set(open(seen_path).read().split()) if os.path.exists(seen_path) else set()
    failures = []
    for r, data in zip(event["Records"], _log(event)):
        sequence = r["kinesis"]["sequenceNumber"]
        if data.startswith(b"bad") and sequence not in seen:
            failures.append({"itemIdentifier": sequence})
            with open(seen_path, "a") as out:
                out.write(sequence + "\n")
    return {"batchItemFailures": failures}


def count(event, context):
    """Counts a tumbling window's records in its state."""
    _log(event)
    state = dict(event.get("state") or {})
    state["count"] = state.get("count", 0) + len(event["Records"])
    return {"state": state}
