"""Event source mappings that invoke: a Kinesis stream mapped with boto3's
`lambda` client to a Python handler run unmodified through awslambdaric (a
`[functions]` command, handlers/triggers.py). Each handler writes the events
it is given to a file, which the tests read: Lambda's event shape, order per
shard, starting positions, batching, disable/enable/delete, a kill -9 in
the middle of a batch, retries, bisection, partial batch responses,
on-failure destinations, filters, KPL aggregates, parallelization and
resharding."""

from __future__ import annotations

import base64
import json
import sys
import time
from pathlib import Path

import boto3
import pytest

from conftest import RiffleServer, make_client
from kinesis_helpers import REGION, create_active_stream, put_records_retrying, shard_id
from test_kpl import aggregated
from test_triggers import ACCOUNT, error_of, lambda_client, stream_arn

HANDLERS = Path(__file__).parent / "handlers"
FUNCTIONS = ("record", "slow", "poison", "fails", "once_bad", "count")
DEADLINE_S = 60.0
POLL_INTERVAL_S = 0.1


def functions_toml(tmp_path: Path) -> str:
    return "\n".join(
        f"[functions.{name}]\n"
        f"command = [{json.dumps(sys.executable)}, \"-m\", \"awslambdaric\", \"triggers.{name}\"]\n"
        f"working_dir = {json.dumps(str(HANDLERS))}\n"
        f"env = {{ INVOCATIONS = {json.dumps(str(tmp_path / (name + '.jsonl')))} }}\n"
        "timeout_seconds = 10\n"
        for name in FUNCTIONS
    )


class Setup:
    def __init__(self, srv: RiffleServer, tmp_path: Path):
        self.srv = srv
        self.tmp_path = tmp_path

    @property
    def kinesis(self):
        return make_client(self.srv.endpoint)

    @property
    def lam(self):
        return lambda_client(self.srv.endpoint)

    def invocations(self, function: str) -> list[dict]:
        path = self.tmp_path / f"{function}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]

    def seen(self, function: str) -> list[tuple[str, str, str, bytes]]:
        """Every record given to `function`: (shard, sequence number, key, data), in invocation order."""
        out = []
        for event in self.invocations(function):
            for r in event["Records"]:
                shard = r["eventID"].split(":")[0]
                k = r["kinesis"]
                out.append((shard, k["sequenceNumber"], k["partitionKey"], base64.b64decode(k["data"])))
        return out

    def map(self, stream: str, function: str, **params) -> str:
        params.setdefault("StartingPosition", "TRIM_HORIZON")
        return self.lam.create_event_source_mapping(EventSourceArn=stream_arn(stream), FunctionName=function, **params)[
            "UUID"
        ]

    def put(self, stream: str, datas: list[bytes], key=lambda i: f"k{i % 5}") -> None:
        put_records_retrying(self.kinesis, stream, [{"PartitionKey": key(i), "Data": d} for i, d in enumerate(datas)])


@pytest.fixture
def setup(tmp_path):
    config = tmp_path / "riffle.toml"
    config.write_text(functions_toml(tmp_path))
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=["--config", str(config)])
    srv.start()
    yield Setup(srv, tmp_path)
    print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
    assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"


def wait_for(check, what: str, deadline_s: float = DEADLINE_S):
    deadline = time.monotonic() + deadline_s
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"not within {deadline_s}s: {what}"
        time.sleep(POLL_INTERVAL_S)


def datas(seen) -> list[bytes]:
    return [s[3] for s in seen]


def test_records_reach_the_function_in_lambdas_event_in_order_per_shard(setup):
    create_active_stream(setup.kinesis, "orders", shards=2)
    uuid = setup.map("orders", "record", BatchSize=7)
    sent = [f"order {i}".encode() for i in range(60)]
    setup.put("orders", sent)
    wait_for(lambda: len(setup.seen("record")) >= 60, "every record given to the function")
    seen = setup.seen("record")
    assert sorted(datas(seen)) == sorted(sent) and len(seen) == 60, "each record once"
    for shard in {s[0] for s in seen}:
        sequences = [int(s[1]) for s in seen if s[0] == shard]
        assert sequences == sorted(sequences), f"{shard} in sequence order"
    for key in {s[2] for s in seen}:
        of_key = [d for _, _, k, d in seen if k == key]
        assert of_key == [d for i, d in enumerate(sent) if f"k{i % 5}" == key], "in put order per key"
    events = setup.invocations("record")
    assert all(1 <= len(e["Records"]) <= 7 for e in events), "BatchSize bounds each event"
    record = events[0]["Records"][0]
    assert set(record) == {
        "kinesis", "eventSource", "eventVersion", "eventID", "eventName", "invokeIdentityArn", "awsRegion", "eventSourceARN"
    }
    assert (record["eventSource"], record["eventVersion"], record["eventName"]) == ("aws:kinesis", "1.0", "aws:kinesis:record")
    assert (record["awsRegion"], record["eventSourceARN"]) == (REGION, stream_arn("orders"))
    assert record["eventID"] == f"{record['eventID'].split(':')[0]}:{record['kinesis']['sequenceNumber']}"
    assert record["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert abs(record["kinesis"]["approximateArrivalTimestamp"] - time.time()) < 120
    got = setup.lam.get_event_source_mapping(UUID=uuid)
    assert (got["State"], got["LastProcessingResult"]) == ("Enabled", "OK")


def test_latest_starts_at_the_mapping_and_at_timestamp_at_its_time(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    setup.put("s", [b"before"])
    time.sleep(0.05)  # arrival times are in ms: the mark falls strictly between
    mark = time.time()
    time.sleep(0.05)
    setup.map("s", "record", StartingPosition="LATEST")
    setup.map("s", "poison", StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=mark)
    setup.put("s", [b"after"])
    wait_for(lambda: setup.seen("record") and setup.seen("poison"), "both mappings invoked")
    assert datas(setup.seen("record")) == [b"after"]
    assert datas(setup.seen("poison")) == [b"after"]


def test_the_batching_window_gathers_records_put_apart(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    setup.map("s", "record", BatchSize=100, MaximumBatchingWindowInSeconds=3)
    for i in range(4):
        setup.kinesis.put_record(StreamName="s", PartitionKey="k", Data=f"r{i}".encode())
    wait_for(lambda: setup.invocations("record"), "an invocation")
    (event,) = setup.invocations("record")
    assert len(event["Records"]) == 4, "one batch within the window"


def test_disable_stops_invoking_enable_resumes_and_delete_stops(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    uuid = setup.map("s", "record")
    setup.put("s", [b"one"])
    wait_for(lambda: setup.seen("record"), "the first record")
    setup.lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert setup.lam.get_event_source_mapping(UUID=uuid)["State"] == "Disabled"
    setup.put("s", [b"two"])
    time.sleep(2)  # a disabled mapping invokes nothing: two poll intervals
    assert datas(setup.seen("record")) == [b"one"]
    setup.lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    wait_for(lambda: len(setup.seen("record")) == 2, "the record put while disabled")
    assert datas(setup.seen("record")) == [b"one", b"two"], "nothing skipped nor repeated"
    setup.lam.delete_event_source_mapping(UUID=uuid)
    setup.put("s", [b"three"])
    time.sleep(2)
    assert datas(setup.seen("record")) == [b"one", b"two"], "a deleted mapping invokes nothing"


def test_a_kill_in_the_middle_of_a_batch_repeats_at_most_that_batch(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    setup.map("s", "slow", BatchSize=5)
    sent = [f"r{i:03}".encode() for i in range(60)]
    setup.put("s", sent)
    wait_for(lambda: len(setup.invocations("slow")) >= 3, "a few batches")
    setup.srv.kill()
    setup.srv.start()
    wait_for(lambda: set(datas(setup.seen("slow"))) == set(sent), "every record after the restart")
    seen = datas(setup.seen("slow"))
    assert len(seen) - len(sent) <= 5, f"{len(seen) - len(sent)} repeated: more than the batch in flight"
    first_repeat = next((i for i, d in enumerate(seen) if d in seen[:i]), len(seen))
    assert seen[first_repeat:] == sorted(seen[first_repeat:]), "after the restart, in order from the last position"


def test_bisection_isolates_a_poisoned_record_which_goes_to_the_failure_stream(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    create_active_stream(setup.kinesis, "dlq", shards=1)
    uuid = setup.map(
        "s", "poison", BatchSize=8, MaximumBatchingWindowInSeconds=2, BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": stream_arn("dlq")}},
    )
    sent = [b"a", b"b", b"c", b"poison!", b"d", b"e", b"f", b"g"]
    setup.put("s", sent, key=lambda i: "k")
    poisoned_seq = wait_for(
        lambda: next((s[1] for s in setup.seen("poison") if s[3] == b"poison!"), None), "the poisoned record given"
    )
    shard = setup.kinesis.list_shards(StreamName="dlq")["Shards"][0]["ShardId"]
    it = setup.kinesis.get_shard_iterator(StreamName="dlq", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    failure = wait_for(lambda: setup.kinesis.get_records(ShardIterator=it)["Records"], "a failure record in the stream")
    doc = json.loads(failure[0]["Data"])
    assert doc["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert doc["requestContext"]["functionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:poison"
    assert doc["requestContext"]["approximateInvokeCount"] == 2
    assert doc["responseContext"]["functionError"] == "Unhandled"
    info = doc["KinesisBatchInfo"]
    assert (info["batchSize"], info["startSequenceNumber"], info["endSequenceNumber"]) == (1, poisoned_seq, poisoned_seq)
    assert (info["shardId"], info["streamArn"]) == (shard_id(0), stream_arn("s"))
    good = {d for d in datas(setup.seen("poison")) if d != b"poison!"}
    succeeded = [e for e in setup.invocations("poison") if all(b"poison" not in base64.b64decode(r["kinesis"]["data"]) for r in e["Records"])]
    assert {base64.b64decode(r["kinesis"]["data"]) for e in succeeded for r in e["Records"]} == good == set(sent) - {b"poison!"}
    assert setup.lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled"


def test_a_partial_batch_response_resumes_at_the_failed_record(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    setup.map("s", "once_bad", BatchSize=10, MaximumBatchingWindowInSeconds=2,
              FunctionResponseTypes=["ReportBatchItemFailures"])
    setup.put("s", [b"ok1", b"bad", b"ok2"], key=lambda i: "k")
    wait_for(lambda: len(setup.invocations("once_bad")) >= 2, "the retry")
    events = [[base64.b64decode(r["kinesis"]["data"]) for r in e["Records"]] for e in setup.invocations("once_bad")]
    assert events == [[b"ok1", b"bad", b"ok2"], [b"bad", b"ok2"]]


def test_exhausted_retries_write_lambdas_failure_object_to_a_bucket(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    s3 = boto3.client("s3", endpoint_url=setup.srv.endpoint, region_name=REGION)
    s3.create_bucket(Bucket="failures")
    uuid = setup.map("s", "fails", MaximumRetryAttempts=2, DestinationConfig={"OnFailure": {"Destination": "arn:aws:s3:::failures"}})
    setup.put("s", [b"doomed"])
    objects = wait_for(lambda: s3.list_objects_v2(Bucket="failures").get("Contents"), "an object in the bucket")
    (obj,) = objects
    assert obj["Key"].startswith(f"aws/lambda/{uuid}/{shard_id(0)}/")
    assert len(setup.invocations("fails")) == 3, "the first invocation and two retries"
    doc = json.loads(s3.get_object(Bucket="failures", Key=obj["Key"])["Body"].read())
    assert doc["requestContext"]["approximateInvokeCount"] == 3
    payload = json.loads(doc["payload"])
    assert base64.b64decode(payload["Records"][0]["kinesis"]["data"]) == b"doomed"
    got = setup.lam.get_event_source_mapping(UUID=uuid)
    assert got["LastProcessingResult"] == "PROBLEM: Function call failed"
    setup.put("s", [b"next"])
    wait_for(lambda: b"next" in datas(setup.seen("fails")), "the shard moved on past the discarded batch")


def test_filters_skip_records_that_do_not_match(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    pattern = {"data": {"kind": ["order"], "total": [{"numeric": [">", 10]}]}}
    setup.map("s", "record", FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]})
    sent = [
        {"kind": "order", "total": 5}, {"kind": "refund", "total": 50}, {"kind": "order", "total": 50},
    ]
    setup.put("s", [json.dumps(d).encode() for d in sent] + [b"not json"])
    setup.put("s", [json.dumps({"kind": "order", "total": 11}).encode()])
    wait_for(lambda: len(setup.seen("record")) >= 2, "the matching records")
    assert [json.loads(d)["total"] for d in datas(setup.seen("record"))] == [50, 11]


def test_kpl_aggregated_records_are_given_as_their_user_records(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    setup.map("s", "record")
    users = [(f"user-{i % 3}", f"event {i}".encode()) for i in range(12)]
    key, ehk, data = aggregated(users)
    setup.kinesis.put_record(StreamName="s", PartitionKey=key, Data=data, **({"ExplicitHashKey": ehk} if ehk else {}))
    wait_for(lambda: len(setup.seen("record")) >= 12, "every user record")
    assert [(s[2], s[3]) for s in setup.seen("record")] == users


def test_parallelization_keeps_each_keys_order(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    setup.map("s", "slow", BatchSize=3, ParallelizationFactor=4)
    sent = [f"{i % 6}:{i}".encode() for i in range(48)]
    setup.put("s", sent, key=lambda i: f"key{i % 6}")
    wait_for(lambda: len(setup.seen("slow")) >= 48, "every record")
    seen = setup.seen("slow")
    assert sorted(datas(seen)) == sorted(sent)
    for k in range(6):
        assert [d for _, _, key, d in seen if key == f"key{k}"] == [d for d in sent if d.startswith(f"{k}:".encode())]
    assert len(setup.invocations("slow")) >= 48 // 3


def test_a_split_shards_parent_is_processed_before_its_children(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    setup.map("s", "record", BatchSize=5)
    setup.put("s", [f"parent {i}".encode() for i in range(20)], key=lambda i: f"k{i}")
    setup.kinesis.split_shard(StreamName="s", ShardToSplit=shard_id(0), NewStartingHashKey=str(2**127))
    wait_for(lambda: setup.kinesis.describe_stream_summary(StreamName="s")["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", "active")
    setup.put("s", [f"child {i}".encode() for i in range(20)], key=lambda i: f"k{i}")
    wait_for(lambda: len(setup.seen("record")) >= 40, "every record")
    seen = setup.seen("record")
    shards = [s[0] for s in seen]
    assert shards[:20] == [shard_id(0)] * 20, "the parent's records first"
    assert set(shards[20:]) <= {shard_id(1), shard_id(2)}
    assert sorted(datas(seen)) == sorted([f"parent {i}".encode() for i in range(20)] + [f"child {i}".encode() for i in range(20)])


def test_tumbling_windows_pass_state_between_invocations_and_end_with_a_final_one(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    setup.map("s", "count", BatchSize=2, TumblingWindowInSeconds=2)
    setup.put("s", [f"r{i}".encode() for i in range(7)], key=lambda i: "k")
    finals = lambda: [e for e in setup.invocations("count") if e["isFinalInvokeForWindow"]]
    wait_for(lambda: sum(e["state"].get("count", 0) for e in finals()) == 7, "every window closed with its count")
    events = setup.invocations("count")
    by_window: dict[str, list[dict]] = {}
    for e in events:
        assert (e["shardId"], e["eventSourceARN"], e["isWindowTerminatedEarly"]) == (shard_id(0), stream_arn("s"), False)
        by_window.setdefault(e["window"]["start"], []).append(e)
    for start, window_events in by_window.items():
        *batches, final = window_events
        assert final["isFinalInvokeForWindow"] and final["Records"] == [], f"window {start} ends with a final invocation"
        assert not any(b["isFinalInvokeForWindow"] for b in batches)
        seen = 0
        for b in batches:
            assert b["state"].get("count", 0) == seen, "each invocation gets the state the previous one answered"
            assert 1 <= len(b["Records"]) <= 2
            seen += len(b["Records"])
        assert final["state"]["count"] == seen
        end = time.strptime(final["window"]["end"], "%Y-%m-%dT%H:%M:%SZ")
        begin = time.strptime(start, "%Y-%m-%dT%H:%M:%SZ")
        assert time.mktime(end) - time.mktime(begin) == 2


def test_a_stream_deleted_and_created_again_is_read_from_its_start(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    setup.map("s", "record")
    setup.put("s", [b"old"])
    wait_for(lambda: setup.seen("record"), "the first stream's record")
    setup.kinesis.delete_stream(StreamName="s")
    wait_for(lambda: "s" not in setup.kinesis.list_streams()["StreamNames"], "the stream gone")
    create_active_stream(setup.kinesis, "s", shards=1)
    setup.put("s", [b"new"])
    wait_for(lambda: len(setup.seen("record")) >= 2, "the new stream's record")
    assert datas(setup.seen("record")) == [b"old", b"new"], "the old stream's position does not apply to the new one"


def test_destinations_riffle_cannot_write_and_bad_filter_patterns_are_refused(setup):
    create_active_stream(setup.kinesis, "s", shards=1)
    status, code, message = error_of(
        setup.lam.create_event_source_mapping, EventSourceArn=stream_arn("s"), FunctionName="record",
        StartingPosition="LATEST", DestinationConfig={"OnFailure": {"Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:dlq"}},
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message.startswith("Unsupported destination type.")
    status, code, message = error_of(
        setup.lam.create_event_source_mapping, EventSourceArn=stream_arn("s"), FunctionName="record",
        StartingPosition="LATEST", FilterCriteria={"Filters": [{"Pattern": '{"data": "x"}'}]},
    )
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message == 'Invalid filter pattern definition. {"data": "x"}'
    assert setup.lam.list_event_source_mappings()["EventSourceMappings"] == [], "nothing was created"
