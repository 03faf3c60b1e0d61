"""Prometheus metrics with boto3 driving the traffic: --metrics-listen serves
/metrics on its own port, with CloudWatch's metrics per stream (and per shard
for the metrics a stream enabled with EnableEnhancedMonitoring), each equal
to what the API calls themselves reported."""

import re
import urllib.error
import urllib.request

import pytest

from conftest import make_client
from kinesis_helpers import create_active_stream, get_records, iterator, register_active, shard_id

# Labels are optional: the storage series have none.
SAMPLE = re.compile(r'^(\w+)(?:\{([^}]*)\})? (-?[0-9.e+-]+)$')


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, labels, value = SAMPLE.match(line).groups()
        samples[(name, labels)] = float(value) if "." in value or "e" in value else int(value)
    return samples


def test_stream_and_enabled_shard_metrics_match_the_traffic(metered):
    kinesis = make_client(metered.endpoint)
    create_active_stream(kinesis, "metered", shards=2)
    kinesis.enable_enhanced_monitoring(StreamName="metered", ShardLevelMetrics=["IncomingBytes", "IteratorAgeMilliseconds"])
    records = [{"PartitionKey": f"key-{i}", "Data": b"x" * (10 + i)} for i in range(20)]
    put = kinesis.put_records(StreamName="metered", Records=records)
    assert put["FailedRecordCount"] == 0
    payload = sum(len(r["Data"]) + len(r["PartitionKey"]) for r in records)

    read = get_records(kinesis, ShardIterator=iterator(kinesis, "metered", shard_id(0)), Limit=3)
    samples = scrape(metered.metrics_url)
    stream = 'stream="metered"'
    assert samples[("riffle_kinesis_incoming_records_total", stream)] == 20
    assert samples[("riffle_kinesis_incoming_bytes_total", stream)] == payload
    assert samples[("riffle_kinesis_outgoing_records_total", stream)] == len(read["Records"])
    assert samples[("riffle_kinesis_outgoing_bytes_total", stream)] == sum(
        len(r["Data"]) + len(r["PartitionKey"]) for r in read["Records"]
    )
    assert samples[("riffle_kinesis_iterator_age_milliseconds", stream)] == read["MillisBehindLatest"]

    per_shard = {
        labels: value for (name, labels), value in samples.items() if name == "riffle_kinesis_shard_incoming_bytes_total"
    }
    assert sorted(per_shard) == [f'{stream},shard="{shard_id(0)}"', f'{stream},shard="{shard_id(1)}"']
    assert sum(per_shard.values()) == payload
    # Not enabled per shard: no shard series.
    assert not any(name == "riffle_kinesis_shard_outgoing_bytes_total" for name, _ in samples)


def test_an_enhanced_fan_out_consumers_millis_behind_latest_has_its_own_series(metered):
    kinesis = make_client(metered.endpoint)
    create_active_stream(kinesis, "fanned")
    arn = register_active(kinesis, "fanned", "reader")
    kinesis.put_record(StreamName="fanned", PartitionKey="k", Data=b"r")
    events = kinesis.subscribe_to_shard(
        ConsumerARN=arn, ShardId=shard_id(0), StartingPosition={"Type": "TRIM_HORIZON"}
    )["EventStream"]
    try:
        event = next(iter(events))["SubscribeToShardEvent"]
        assert len(event["Records"]) == 1
        series = ("riffle_kinesis_consumer_millis_behind_latest", 'stream="fanned",consumer="reader"')
        assert scrape(metered.metrics_url)[series] == event["MillisBehindLatest"]
        # SubscribeToShardEvent.MillisBehindLatest, not the polling readers' age.
        assert scrape(metered.metrics_url)[("riffle_kinesis_iterator_age_milliseconds", 'stream="fanned"')] == 0
        kinesis.deregister_stream_consumer(ConsumerARN=arn)
        assert series not in scrape(metered.metrics_url)
    finally:
        events.close()


def test_requests_are_counted_by_operation_and_outcome_with_their_latency(metered):
    kinesis = make_client(metered.endpoint)
    create_active_stream(kinesis, "counted")
    for _ in range(3):
        kinesis.put_record(StreamName="counted", PartitionKey="k", Data=b"r")
    with pytest.raises(kinesis.exceptions.ResourceNotFoundException):
        kinesis.describe_stream_summary(StreamName="missing")
    samples = scrape(metered.metrics_url)
    put = 'service="kinesis",operation="PutRecord"'
    assert samples[("riffle_api_requests_total", f'{put},outcome="success"')] == 3
    assert samples[("riffle_api_requests_total", f'{put},outcome="client_error"')] == 0
    assert samples[("riffle_api_requests_total", 'service="kinesis",operation="DescribeStreamSummary",outcome="client_error"')] == 1
    assert samples[("riffle_api_request_duration_seconds_count", put)] == 3
    assert samples[("riffle_api_request_duration_seconds_bucket", f'{put},le="+Inf"')] == 3
    assert samples[("riffle_api_request_duration_seconds_sum", put)] > 0
    # Buckets are cumulative.
    buckets = [v for (n, labels), v in samples.items() if n == "riffle_api_request_duration_seconds_bucket" and put in labels]
    assert buckets == sorted(buckets)


def test_refused_writes_are_counted_as_the_api_reported_them(metered):
    kinesis = make_client(metered.endpoint)
    create_active_stream(kinesis, "hot")
    # One shard takes 1,000 records a second with a second of burst: 1,500
    # at once get some refused, and the metric counts exactly those.
    failed = 0
    for _ in range(3):
        out = kinesis.put_records(StreamName="hot", Records=[{"PartitionKey": "k", "Data": b"r"}] * 500)
        failed += out["FailedRecordCount"]
    assert failed > 0
    samples = scrape(metered.metrics_url)
    assert samples[("riffle_kinesis_write_provisioned_throughput_exceeded_total", 'stream="hot"')] == failed
    assert samples[("riffle_kinesis_incoming_records_total", 'stream="hot"')] == 1500 - failed


def test_storage_series_say_the_disk_is_not_full(metered):
    samples = scrape(metered.metrics_url)
    assert samples[("riffle_storage_disk_full", None)] == 0
    assert samples[("riffle_storage_disk_free_bytes", None)] > 0
    assert samples[("riffle_storage_disk_free_min_bytes", None)] == 64 * 1024 * 1024
    assert samples[("riffle_storage_appends_refused_total", 'cause="disk_full"')] == 0
    assert samples[("riffle_storage_logs_refusing_writes", 'cause="io_error"')] == 0


def test_only_get_metrics_is_served(metered):
    base = metered.metrics_url.removesuffix("/metrics")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(base + "/other", timeout=10)
    assert missing.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as posted:
        urllib.request.urlopen(urllib.request.Request(metered.metrics_url, data=b"x", method="POST"), timeout=10)
    assert posted.value.code == 405
