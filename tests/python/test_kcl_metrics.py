"""The real Java KCL 3.1.3 (its MultiLangDaemon) publishing its own metrics
to Riffle: `metricsLevel = SUMMARY` and `AWS_ENDPOINT_URL_CLOUDWATCH` (the
daemon has no property for a CloudWatch endpoint; the AWS SDK for Java v2
in it reads that variable) make KCL's PutMetricData calls land on Riffle
(in the query protocol), and its metrics show on /metrics under the
application's namespace, RecordsProcessed among them."""

from __future__ import annotations

from conftest import make_client, scrape_samples
from kcl.daemon import Worker, records, wait_for
from kinesis_helpers import create_active_stream, put_records_retrying

# JVM start, KCL's random 1-30 s wait before its first shard sync, leases,
# then a metrics buffer period (1 s here).
METRICS_DEADLINE_S = 120.0


def test_the_java_kcls_own_metrics_show_on_metrics(metered, tmp_path, monkeypatch):
    kinesis = make_client(metered.endpoint)
    create_active_stream(kinesis, "kcl-metered")
    put_records_retrying(kinesis, "kcl-metered",
                         [{"PartitionKey": f"k{i}", "Data": f"r{i}".encode()} for i in range(10)])
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", metered.endpoint)
    worker = Worker(workdir=tmp_path / "kcl", endpoint=metered.endpoint, stream="kcl-metered",
                    app="kcl-metered-app", name="w1", mode="POLLING",
                    extra={"metricsLevel": "SUMMARY", "metricsBufferTimeMillis": "1000"})
    worker.start()
    try:
        wait_for("the records processed", lambda: len(records([worker])) >= 10, [worker], METRICS_DEADLINE_S)

        def kcl_series():
            samples = scrape_samples(metered.metrics_url)
            return {labels: value for (name, labels), value in samples.items()
                    if name == "riffle_cloudwatch_metric_sum" and 'namespace="kcl-metered-app"' in labels}

        series = wait_for("KCL's metrics on /metrics", kcl_series, [worker], METRICS_DEADLINE_S)
        print("KCL's series:", *sorted(series), sep="\n  ")
        # What the SDK for Java v2 in KCL 3.1.3 spoke: the query protocol to
        # CloudWatch, and CBOR (its default) to Kinesis, which this test's
        # own boto3 calls never use (they are JSON 1.1).
        protocols = {labels for (name, labels) in scrape_samples(metered.metrics_url)
                     if name == "riffle_api_requests_by_protocol_total"}
        assert {p for p in protocols if 'service="monitoring"' in p} == {'service="monitoring",protocol="query"'}
        assert 'service="kinesis",protocol="cbor"' in protocols, protocols
        processed = wait_for(
            "RecordsProcessed",
            lambda: [v for labels, v in kcl_series().items() if 'metric="RecordsProcessed"' in labels],
            [worker], METRICS_DEADLINE_S)
        assert sum(processed) >= 10
    finally:
        worker.kill()
