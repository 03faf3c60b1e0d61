"""CloudWatch PutMetricData, so a KCL application's own metrics show on
Riffle's /metrics: through boto3 in each of the three protocols of
CloudWatch's model (botocore resolves `json`, JSON 1.0, by default; a copy
of its model listing one protocol makes it speak smithy-rpc-v2-cbor or
query), the aws CLI, and a raw query-protocol form signed with botocore's
SigV4Auth (what the AWS SDK for Java v2 inside KCL 3.x sends). What was put
is read back from /metrics; bad input gets CloudWatch's error codes."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import boto3
import botocore
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import AWS_CLI, RiffleServer, scrape_samples
from kinesis_helpers import REGION

CLI_DEADLINE_S = 60
# botocore's protocol names, as riffle_api_requests_by_protocol_total labels them.
PROTOCOL_LABELS = {"smithy-rpc-v2-cbor": "rpcv2cbor", "json": "json1.0", "query": "query"}


MODEL_DIR = Path(botocore.__file__).parent / "data" / "cloudwatch" / "2010-08-01"


@pytest.fixture(params=["json", "smithy-rpc-v2-cbor", "query"])
def protocol(request, tmp_path_factory):
    """A botocore data path whose CloudWatch model lists only this protocol
    (None: botocore's own model and choice)."""
    if request.param == "json":
        return request.param, None
    models = tmp_path_factory.mktemp("models")
    target = models / "cloudwatch" / "2010-08-01"
    shutil.copytree(MODEL_DIR, target)
    compressed = target / "service-2.json.gz"
    model = json.loads(gzip.decompress(compressed.read_bytes()) if compressed.exists()
                       else (target / "service-2.json").read_text())
    compressed.unlink(missing_ok=True)
    model["metadata"]["protocols"] = [request.param]
    model["metadata"]["protocol"] = request.param
    (target / "service-2.json").write_text(json.dumps(model))
    return request.param, models


def cloudwatch(endpoint: str, models: Path | None = None, **config):
    """No retries: a server error must fail the test."""
    session = botocore.session.Session()
    if models is not None:
        session.get_component("data_loader").search_paths.insert(0, str(models))
    return boto3.session.Session(botocore_session=session).client(
        "cloudwatch",
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=30, **config),
    )


def error(call, **kwargs) -> dict:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return raised.value.response


def test_boto3_puts_show_per_dimension_series_on_metrics(metered, protocol):
    name, models = protocol
    client = cloudwatch(metered.endpoint, models)
    assert client.meta.service_model.resolved_protocol == name
    shard = [{"Name": "ShardId", "Value": "shardId-000000000003"}, {"Name": "Operation", "Value": "ProcessTask"}]
    client.put_metric_data(
        Namespace="orders-app",
        MetricData=[
            {"MetricName": "MillisBehindLatest", "Dimensions": shard, "Unit": "Milliseconds",
             "StatisticValues": {"SampleCount": 2, "Sum": 500, "Minimum": 100, "Maximum": 400}},
            {"MetricName": "RecordsProcessed", "Dimensions": shard[:1], "Unit": "Count",
             "Values": [10, 20], "Counts": [1, 3]},
            {"MetricName": "LeasesHeld", "Value": 2},
        ],
    )
    samples = scrape_samples(metered.metrics_url)
    behind = 'namespace="orders-app",metric="MillisBehindLatest",Operation="ProcessTask",ShardId="shardId-000000000003"'
    assert samples[("riffle_cloudwatch_metric_count", behind)] == 2
    assert samples[("riffle_cloudwatch_metric_sum", behind)] == 500
    assert samples[("riffle_cloudwatch_metric_min", behind)] == 100
    assert samples[("riffle_cloudwatch_metric_max", behind)] == 400
    assert samples[("riffle_cloudwatch_metric_last", behind)] == 250
    processed = 'namespace="orders-app",metric="RecordsProcessed",ShardId="shardId-000000000003"'
    assert samples[("riffle_cloudwatch_metric_sum", processed)] == 70
    assert samples[("riffle_cloudwatch_metric_count", processed)] == 4
    assert samples[("riffle_cloudwatch_metric_last", 'namespace="orders-app",metric="LeasesHeld"')] == 2
    # The protocol botocore spoke is the one the server saw.
    label = PROTOCOL_LABELS[name]
    assert samples[("riffle_api_requests_by_protocol_total", f'service="monitoring",protocol="{label}"')] == 1


def test_boto3_gets_cloudwatchs_error_codes_and_the_server_keeps_serving(metered, protocol):
    # Unvalidated, so the server (not botocore) judges the empty name.
    client = cloudwatch(metered.endpoint, protocol[1], parameter_validation=False)
    too_many = error(client.put_metric_data, Namespace="n",
                     MetricData=[{"MetricName": "m", "Value": i} for i in range(1001)])
    assert too_many["Error"]["Code"] == "InvalidParameterValue"
    assert too_many["Error"]["Message"] == "The collection MetricData must not have a size greater than 1000."
    dimensions = [{"Name": f"d{i}", "Value": "v"} for i in range(31)]
    wide = error(client.put_metric_data, Namespace="n",
                 MetricData=[{"MetricName": "m", "Value": 1, "Dimensions": dimensions}])
    assert wide["Error"]["Code"] == "InvalidParameterValue"
    assert wide["Error"]["Message"] == "The collection MetricData.member.1.Dimensions must not have a size greater than 30."
    empty = error(client.put_metric_data, Namespace="n", MetricData=[{"MetricName": "", "Value": 1}])
    assert empty["Error"]["Code"] == "InvalidParameterValue"
    both = error(client.put_metric_data, Namespace="n", MetricData=[
        {"MetricName": "m", "Value": 1, "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}])
    assert both["Error"]["Code"] == "InvalidParameterCombination"
    unsupported = error(client.list_metrics)
    assert unsupported["Error"]["Code"] == "InvalidAction"
    assert "ListMetrics" in unsupported["Error"]["Message"]
    client.put_metric_data(Namespace="n", MetricData=[{"MetricName": "after", "Value": 1}])
    samples = scrape_samples(metered.metrics_url)
    assert samples[("riffle_cloudwatch_data_points_total", "")] == 1
    assert samples[("riffle_cloudwatch_metric_sum", 'namespace="n",metric="after"')] == 1


def test_the_aws_cli_puts_metric_data(metered):
    done = subprocess.run(
        [str(AWS_CLI), "--endpoint-url", metered.endpoint, "--region", REGION, "cloudwatch", "put-metric-data",
         "--namespace", "cli-app", "--metric-name", "RecordsProcessed", "--value", "42", "--unit", "Count",
         "--dimensions", "ShardId=shardId-000000000000,Operation=ProcessTask"],
        capture_output=True, text=True, timeout=CLI_DEADLINE_S, env=os.environ, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    samples = scrape_samples(metered.metrics_url)
    series = 'namespace="cli-app",metric="RecordsProcessed",Operation="ProcessTask",ShardId="shardId-000000000000"'
    assert samples[("riffle_cloudwatch_metric_last", series)] == 42


def signed_form(endpoint: str, form: dict[str, str]) -> urllib.request.Request:
    """A query-protocol POST signed for `monitoring`, as the Java SDK v2 sends it."""
    body = urllib.parse.urlencode(form)
    request = AWSRequest(method="POST", url=endpoint + "/", data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials("AKIDTEST", "secret"), "monitoring", REGION).add_auth(request)
    prepared = request.prepare()
    return urllib.request.Request(prepared.url, data=body.encode(), headers=dict(prepared.headers), method="POST")


def send(request: urllib.request.Request) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers["Content-Type"], refused.read().decode()


def test_a_signed_query_form_is_answered_in_xml(metered):
    status, content_type, body = send(signed_form(metered.endpoint, {
        "Action": "PutMetricData", "Version": "2010-08-01", "Namespace": "KinesisClientLibrary",
        "MetricData.member.1.MetricName": "MillisBehindLatest",
        "MetricData.member.1.Dimensions.member.1.Name": "ShardId",
        "MetricData.member.1.Dimensions.member.1.Value": "shardId-000000000001",
        "MetricData.member.1.StatisticValues.SampleCount": "1.0",
        "MetricData.member.1.StatisticValues.Sum": "1200.0",
        "MetricData.member.1.StatisticValues.Minimum": "1200.0",
        "MetricData.member.1.StatisticValues.Maximum": "1200.0",
        "MetricData.member.1.Unit": "Milliseconds",
        "MetricData.member.1.Timestamp": "2026-01-01T00:00:00Z",
    }))
    assert (status, content_type) == (200, "text/xml"), body
    assert body.startswith('<PutMetricDataResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">')
    assert "<RequestId>" in body
    status, _, body = send(signed_form(metered.endpoint, {
        "Action": "PutMetricData", "Version": "2010-08-01", "Namespace": "n",
        "MetricData.member.1.MetricName": "m", "MetricData.member.1.Value": "1",
        "MetricData.member.1.Values.member.1": "1",
    }))
    assert status == 400
    assert "<Type>Sender</Type>" in body and "<Code>InvalidParameterCombination</Code>" in body, body
    samples = scrape_samples(metered.metrics_url)
    series = 'namespace="KinesisClientLibrary",metric="MillisBehindLatest",ShardId="shardId-000000000001"'
    assert samples[("riffle_cloudwatch_metric_last", series)] == 1200
    assert samples[("riffle_api_requests_by_protocol_total", 'service="monitoring",protocol="query"')] == 2


def test_policies_govern_cloudwatch_put_metric_data_and_calls_are_audited_as_monitoring(tmp_path):
    """`cloudwatch:PutMetricData` is the IAM action (signing name
    `monitoring`), and the audit line's eventSource is CloudWatch's."""
    policies = {}
    for key, action in [("AKIDMETRICS", "cloudwatch:PutMetricData"), ("AKIDSTREAMS", "kinesis:ListStreams")]:
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps({"Version": "2012-10-17",
                                    "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}))
        policies[key] = path
    config = tmp_path / "riffle.toml"
    config.write_text(
        '[credentials]\nAKIDMETRICS = "metrics-secret"\nAKIDSTREAMS = "streams-secret"\n\n[policies]\n'
        + "".join(f'{key} = "{path}"\n' for key, path in policies.items())
    )
    audit = tmp_path / "audit.jsonl"
    srv = RiffleServer(data_dir=tmp_path / "data", log_dir=tmp_path, extra_args=[
        "--config", str(config), "--audit-log", str(audit), "--audit-data-events", "on"])
    srv.start()
    try:
        def client(key, secret):
            return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret).client(
                "cloudwatch", endpoint_url=srv.endpoint, region_name=REGION,
                config=Config(retries={"total_max_attempts": 1}))

        data = [{"MetricName": "RecordsProcessed", "Value": 1}]
        client("AKIDMETRICS", "metrics-secret").put_metric_data(Namespace="app", MetricData=data)
        refused = error(client("AKIDSTREAMS", "streams-secret").put_metric_data, Namespace="app", MetricData=data)
        assert refused["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert refused["Error"]["Code"] == "AccessDenied"
        assert "cloudwatch:PutMetricData" in refused["Error"]["Message"]
        wrong = error(client("AKIDMETRICS", "not-the-secret").put_metric_data, Namespace="app", MetricData=data)
        assert wrong["Error"]["Code"] == "SignatureDoesNotMatch"
    finally:
        print(f"--- riffle stderr (tail) ---\n{srv.stderr_tail()}")
        assert srv.terminate() == 0, "riffle serve did not exit 0 on SIGTERM"
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    puts = [line for line in lines if line["eventName"] == "PutMetricData"]
    assert [line["eventSource"] for line in puts] == ["monitoring.amazonaws.com"] * 3
    assert puts[0]["userIdentity"]["accessKeyId"] == "AKIDMETRICS"
    assert puts[0]["requestParameters"]["namespace"] == "app"
    assert puts[1]["errorCode"] == "AccessDeniedException"
