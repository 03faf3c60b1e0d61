"""Writing and reading records with boto3: PutRecord/PutRecords routing by
MD5 of the partition key, every shard iterator type, and GetRecords giving
back exactly the bytes that were written."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from conftest import RiffleServer, make_client

from kinesis_helpers import (
    code_and_message,
    create_active_stream,
    error_of,
    expected_hash_ranges,
    get_records,
    hash_key,
    is_throttled,
    iterator,
    put_records_retrying,
    read_shard,
    read_to_end,
    shard_for_hash,
    shard_id,
)


def test_put_record_routes_by_md5_of_the_partition_key(kinesis):
    shards = create_active_stream(kinesis, "routed", shards=4)["Shards"]

    last_seq: dict[str, int] = {}
    # Keys beyond ASCII too: the hash is over the key's UTF-8 bytes.
    keys = [f"customer-{i}" for i in range(30)] + [f"ключ-{i}" for i in range(5)] + [f"客户-{i}-✓" for i in range(5)]
    for i, key in enumerate(keys):
        out = kinesis.put_record(StreamName="routed", PartitionKey=key, Data=f"order {i}".encode())
        assert out["ShardId"] == shard_for_hash(shards, hash_key(key)), key
        seq = int(out["SequenceNumber"])
        assert seq > last_seq.get(out["ShardId"], -1), "sequence numbers grow within a shard"
        last_seq[out["ShardId"]] = seq
    assert len(last_seq) == 4, "the keys spread over all 4 shards"


def test_explicit_hash_key_overrides_the_partition_key(kinesis):
    create_active_stream(kinesis, "explicit", shards=4)
    for index, (start, end) in enumerate(expected_hash_ranges(4)):
        for key in (start, end):
            out = kinesis.put_record(StreamName="explicit", PartitionKey="same", ExplicitHashKey=str(key), Data=b"x")
            assert out["ShardId"] == shard_id(index)
    entries = [{"PartitionKey": "same", "ExplicitHashKey": str(start), "Data": b"y"} for start, _ in expected_hash_ranges(4)]
    batch = kinesis.put_records(StreamName="explicit", Records=entries)
    assert [r["ShardId"] for r in batch["Records"]] == [shard_id(i) for i in range(4)]


def test_put_records_answers_in_request_order_and_reads_back_per_shard(kinesis):
    shards = create_active_stream(kinesis, "batch", shards=3)["Shards"]
    entries = [{"PartitionKey": f"device-{i % 17}", "Data": f"reading {i}".encode() * (i % 5 + 1)} for i in range(120)]

    out = kinesis.put_records(StreamName="batch", Records=entries)

    assert out["FailedRecordCount"] == 0
    assert len(out["Records"]) == len(entries)
    for entry, result in zip(entries, out["Records"]):
        assert "ErrorCode" not in result
        assert result["ShardId"] == shard_for_hash(shards, hash_key(entry["PartitionKey"]))
        assert result["SequenceNumber"].isdigit()
    for shard in shards:
        sid = shard["ShardId"]
        sent = [(e["PartitionKey"], e["Data"], r["SequenceNumber"]) for e, r in zip(entries, out["Records"]) if r["ShardId"] == sid]
        got = [(r["PartitionKey"], r["Data"], r["SequenceNumber"]) for r in read_shard(kinesis, "batch", sid)]
        assert got == sent, f"{sid} gives back its records in order"


def test_get_records_returns_exact_bytes_and_arrival_timestamps(kinesis):
    create_active_stream(kinesis, "bytes")
    payloads = [bytes(range(256)), b"\x00" * 1000, "ünïcødé ✓".encode(), b"A" * (1024 * 1024 - 64)]
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    seqs = [kinesis.put_record(StreamName="bytes", PartitionKey="k", Data=p)["SequenceNumber"] for p in payloads]
    after = datetime.now(timezone.utc) + timedelta(seconds=5)

    records = read_shard(kinesis, "bytes", shard_id(0))

    assert [r["Data"] for r in records] == payloads
    assert [r["SequenceNumber"] for r in records] == seqs
    assert [r["PartitionKey"] for r in records] == ["k"] * len(payloads)
    for record in records:
        arrived = record["ApproximateArrivalTimestamp"]
        assert isinstance(arrived, datetime)
        assert before <= arrived <= after


def test_get_records_honours_limit_and_reports_caught_up(kinesis):
    create_active_stream(kinesis, "limited")
    kinesis.put_records(StreamName="limited", Records=[{"PartitionKey": "k", "Data": bytes([i])} for i in range(7)])

    first = get_records(kinesis, ShardIterator=iterator(kinesis, "limited", shard_id(0)), Limit=3)
    assert [r["Data"] for r in first["Records"]] == [bytes([i]) for i in range(3)]
    assert first["MillisBehindLatest"] >= 0
    rest, _ = read_to_end(kinesis, first["NextShardIterator"], limit=3)
    assert [r["Data"] for r in rest] == [bytes([i]) for i in range(3, 7)]


def test_empty_shard_gives_no_records_and_a_next_iterator(kinesis):
    create_active_stream(kinesis, "quiet")
    out = get_records(kinesis, ShardIterator=iterator(kinesis, "quiet", shard_id(0)))
    assert out["Records"] == []
    assert out["NextShardIterator"]
    assert out["MillisBehindLatest"] == 0


def test_latest_iterator_sees_only_records_put_after_it(kinesis):
    create_active_stream(kinesis, "tail")
    for i in range(3):
        kinesis.put_record(StreamName="tail", PartitionKey="k", Data=f"old {i}".encode())

    latest = iterator(kinesis, "tail", shard_id(0), "LATEST")
    nothing = get_records(kinesis, ShardIterator=latest)
    assert nothing["Records"] == []
    for i in range(2):
        kinesis.put_record(StreamName="tail", PartitionKey="k", Data=f"new {i}".encode())

    records, _ = read_to_end(kinesis, nothing["NextShardIterator"])
    assert [r["Data"] for r in records] == [b"new 0", b"new 1"]


def test_at_and_after_sequence_number_iterators(kinesis):
    create_active_stream(kinesis, "seq")
    seqs = [kinesis.put_record(StreamName="seq", PartitionKey="k", Data=bytes([i]))["SequenceNumber"] for i in range(6)]

    at = iterator(kinesis, "seq", shard_id(0), "AT_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2])
    assert [r["SequenceNumber"] for r in read_to_end(kinesis, at)[0]] == seqs[2:]
    after = iterator(kinesis, "seq", shard_id(0), "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[2])
    assert [r["SequenceNumber"] for r in read_to_end(kinesis, after)[0]] == seqs[3:]
    after_last = iterator(kinesis, "seq", shard_id(0), "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seqs[-1])
    assert read_to_end(kinesis, after_last)[0] == []


def test_at_timestamp_iterator_starts_at_the_first_record_arriving_then(kinesis):
    create_active_stream(kinesis, "clock")
    # Put records until the server's arrival clock has visibly ticked, so the
    # stream holds records on both sides of one arrival timestamp.
    deadline = time.monotonic() + 10
    written = []
    while True:
        written.append(kinesis.put_record(StreamName="clock", PartitionKey="k", Data=str(len(written)).encode()))
        records = read_shard(kinesis, "clock", shard_id(0))
        arrivals = [r["ApproximateArrivalTimestamp"] for r in records]
        if arrivals[-1] > arrivals[0]:
            break
        assert time.monotonic() < deadline, "arrival timestamps never advanced"
    split = next(i for i, a in enumerate(arrivals) if a > arrivals[0])

    at = iterator(kinesis, "clock", shard_id(0), "AT_TIMESTAMP", Timestamp=arrivals[split])
    assert read_to_end(kinesis, at)[0] == records[split:]
    from_epoch = iterator(kinesis, "clock", shard_id(0), "AT_TIMESTAMP", Timestamp=datetime(2000, 1, 1, tzinfo=timezone.utc))
    assert read_to_end(kinesis, from_epoch)[0] == records
    # AWS refuses a timestamp in the future rather than waiting for it.
    future = datetime.now(timezone.utc) + timedelta(hours=1)
    err = error_of(kinesis.get_shard_iterator, StreamName="clock", ShardId=shard_id(0), ShardIteratorType="AT_TIMESTAMP", Timestamp=future)
    code, message = code_and_message(err)
    assert code == "InvalidArgumentException"
    assert message.startswith("The timestampInMillis parameter cannot be greater than the currentTimestampInMillis.")


def test_sequence_numbers_are_unique_across_the_stream(kinesis):
    create_active_stream(kinesis, "unique", shards=4)
    out = kinesis.put_records(StreamName="unique", Records=[{"PartitionKey": str(i), "Data": b"x"} for i in range(200)])
    seqs = [r["SequenceNumber"] for r in out["Records"]]
    assert len(set(seqs)) == len(seqs)


def test_iterator_for_a_missing_shard_is_resource_not_found(kinesis):
    create_active_stream(kinesis, "two", shards=2)
    err = error_of(kinesis.get_shard_iterator, StreamName="two", ShardId=shard_id(9), ShardIteratorType="TRIM_HORIZON")
    code, message = code_and_message(err)
    assert code == "ResourceNotFoundException"
    assert shard_id(9) in message


@pytest.mark.parametrize(
    "forge",
    [
        lambda it: "AAAAAAAAAAGnotarealiteratorAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        lambda it: it[: len(it) // 2] + ("A" if it[len(it) // 2] != "A" else "B") + it[len(it) // 2 + 1 :],
        lambda it: it[:-4],
    ],
    ids=["made-up", "one-character-flipped", "truncated"],
)
def test_forged_or_corrupt_iterator_is_invalid_argument(kinesis, forge):
    create_active_stream(kinesis, "guarded")
    kinesis.put_record(StreamName="guarded", PartitionKey="k", Data=b"secret")
    genuine = iterator(kinesis, "guarded", shard_id(0))

    err = error_of(kinesis.get_records, ShardIterator=forge(genuine))

    assert code_and_message(err)[0] == "InvalidArgumentException"
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The server is unharmed and the genuine iterator still reads.
    assert [r["Data"] for r in get_records(kinesis, ShardIterator=genuine)["Records"]] == [b"secret"]


def test_iterator_expires_after_its_time_to_live(tmp_path):
    # A server whose iterators live 300 ms instead of AWS's 5 minutes.
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=["--shard-iterator-ttl-ms", "300"])
    srv.start()
    try:
        client = make_client(srv.endpoint)
        create_active_stream(client, "short")
        old = iterator(client, "short", shard_id(0))
        deadline = time.monotonic() + 10
        while True:
            try:
                client.get_records(ShardIterator=old)
            except client.exceptions.ExpiredIteratorException as err:
                assert code_and_message(err)[0] == "ExpiredIteratorException"
                break
            except ClientError as err:
                if not is_throttled(err):  # five reads a second per shard
                    raise
            assert time.monotonic() < deadline, "the iterator never expired"
            time.sleep(0.1)
        # A fresh iterator works again.
        assert get_records(client, ShardIterator=iterator(client, "short", shard_id(0)))["Records"] == []
    finally:
        srv.terminate()


def test_concurrent_producers_lose_nothing_and_each_shard_reads_in_sequence_order(kinesis, server):
    create_active_stream(kinesis, "busy", shards=2)

    clients = [make_client(server.endpoint) for _ in range(4)]

    def produce(worker: int) -> list[tuple[str, bytes, str, str]]:
        client = clients[worker]
        acked = []
        for batch in range(10):
            entries = [{"PartitionKey": f"w{worker}-{i}", "Data": f"w{worker} b{batch} r{i}".encode()} for i in range(20)]
            results = put_records_retrying(client, "busy", entries)
            acked += [(e["PartitionKey"], e["Data"], r["SequenceNumber"], r["ShardId"]) for e, r in zip(entries, results)]
        return acked

    with ThreadPoolExecutor(max_workers=4) as pool:
        acked = [record for result in pool.map(produce, range(4)) for record in result]

    for shard in (shard_id(0), shard_id(1)):
        got = [(r["PartitionKey"], r["Data"], r["SequenceNumber"]) for r in read_shard(kinesis, "busy", shard)]
        assert sorted(got, key=lambda r: int(r[2])) == got, "a shard reads in sequence-number order"
        assert sorted(got) == sorted((k, d, s) for k, d, s, sid in acked if sid == shard)


def test_get_records_limit_above_ten_thousand_is_a_validation_error(kinesis):
    create_active_stream(kinesis, "cap")
    err = error_of(kinesis.get_records, ShardIterator=iterator(kinesis, "cap", shard_id(0)), Limit=10001)
    assert code_and_message(err) == (
        "ValidationException",
        "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 10000",
    )


def test_one_get_records_returns_at_most_ten_mib(tmp_path):
    # 12 MiB in one shard takes 12 s at AWS's 1 MiB/s write rate, so this
    # server runs without throughput limits; the 10 MiB cap holds regardless.
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=["--throughput-limits", "off"])
    srv.start()
    try:
        client = make_client(srv.endpoint)
        create_active_stream(client, "heavy")
        payloads = [bytes([i]) * (1024 * 1024 - 100) for i in range(12)]  # ~12 MiB in all
        for payload in payloads:
            client.put_record(StreamName="heavy", PartitionKey="k", Data=payload)

        first = client.get_records(ShardIterator=iterator(client, "heavy", shard_id(0)))
        size = sum(len(r["Data"]) + len(r["PartitionKey"]) for r in first["Records"])
        assert 0 < len(first["Records"]) < len(payloads)
        assert size <= 10 * 1024 * 1024
        rest, _ = read_to_end(client, first["NextShardIterator"])
        assert [r["Data"] for r in first["Records"] + rest] == payloads
    finally:
        assert srv.terminate() == 0


def test_put_records_over_the_shard_rate_fails_per_record_and_retries_succeed(kinesis):
    create_active_stream(kinesis, "hot")
    # A shard takes 1,000 records a second; keep sending until it says no.
    deadline = time.monotonic() + 20
    written: list[tuple[bytes, str]] = []
    throttled = []
    while not throttled:
        assert time.monotonic() < deadline, "a shard took records far above 1,000 a second"
        entries = [{"PartitionKey": "k", "Data": f"{len(written)}-{i}".encode()} for i in range(500)]
        out = kinesis.put_records(StreamName="hot", Records=entries)
        assert len(out["Records"]) == len(entries)
        failed = [(e, r) for e, r in zip(entries, out["Records"]) if "ErrorCode" in r]
        assert out["FailedRecordCount"] == len(failed)
        for entry, result in zip(entries, out["Records"]):
            if "ErrorCode" not in result:
                assert "SequenceNumber" in result and result["ShardId"] == shard_id(0)
                written.append((entry["Data"], result["SequenceNumber"]))
        throttled = failed

    for _, result in throttled:
        assert result["ErrorCode"] == "ProvisionedThroughputExceededException"
        assert result["ErrorMessage"] == "Rate exceeded for shard shardId-000000000000 in stream hot under account 000000000000."
        assert "SequenceNumber" not in result
    # A producer that backs off gets the refused records in.
    retried = put_records_retrying(kinesis, "hot", [entry for entry, _ in throttled])
    written += [(entry["Data"], r["SequenceNumber"]) for (entry, _), r in zip(throttled, retried)]

    got = [(r["Data"], r["SequenceNumber"]) for r in read_shard(kinesis, "hot", shard_id(0))]
    assert got == sorted(written, key=lambda w: int(w[1])), "exactly the accepted records, each once"


def test_sequence_number_for_ordering_is_accepted_and_order_holds(kinesis):
    create_active_stream(kinesis, "ordered")
    previous = kinesis.put_record(StreamName="ordered", PartitionKey="k", Data=b"0")["SequenceNumber"]
    for i in range(1, 5):
        seq = kinesis.put_record(
            StreamName="ordered", PartitionKey="k", Data=str(i).encode(), SequenceNumberForOrdering=previous
        )["SequenceNumber"]
        assert int(seq) > int(previous)
        previous = seq
    assert [r["Data"] for r in read_shard(kinesis, "ordered", shard_id(0))] == [str(i).encode() for i in range(5)]
