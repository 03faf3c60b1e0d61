"""Stream settings a boto3 user changes after creating a stream: tags,
retention, enhanced monitoring and capacity mode, each visible afterwards
where AWS reports it."""

from kinesis_helpers import code_and_message, error_of, stream_arn, wait_active


def _tags(client, name: str) -> dict[str, str]:
    out = client.list_tags_for_stream(StreamName=name)
    assert out["HasMoreTags"] is False
    return {t["Key"]: t["Value"] for t in out["Tags"]}


def test_tags_given_at_creation_added_and_removed(kinesis):
    kinesis.create_stream(StreamName="tagged", ShardCount=1, Tags={"team": "data", "env": "dev"})
    wait_active(kinesis, "tagged")
    assert _tags(kinesis, "tagged") == {"team": "data", "env": "dev"}

    kinesis.add_tags_to_stream(StreamName="tagged", Tags={"owner": "ana", "env": "prod"})
    assert _tags(kinesis, "tagged") == {"team": "data", "env": "prod", "owner": "ana"}
    kinesis.remove_tags_from_stream(StreamName="tagged", TagKeys=["team"])
    assert _tags(kinesis, "tagged") == {"env": "prod", "owner": "ana"}
    by_arn = kinesis.list_tags_for_resource(ResourceARN=stream_arn("tagged"))["Tags"]
    assert {t["Key"]: t["Value"] for t in by_arn} == {"env": "prod", "owner": "ana"}


def test_retention_period_goes_up_and_down_within_awss_bounds(kinesis):
    kinesis.create_stream(StreamName="kept", ShardCount=1)
    wait_active(kinesis, "kept")

    kinesis.increase_stream_retention_period(StreamName="kept", RetentionPeriodHours=48)
    wait_active(kinesis, "kept")
    assert kinesis.describe_stream_summary(StreamName="kept")["StreamDescriptionSummary"]["RetentionPeriodHours"] == 48
    kinesis.decrease_stream_retention_period(StreamName="kept", RetentionPeriodHours=24)
    wait_active(kinesis, "kept")
    assert kinesis.describe_stream_summary(StreamName="kept")["StreamDescriptionSummary"]["RetentionPeriodHours"] == 24

    # 24 hours to 365 days, and each call only in its own direction.
    for call, hours in (
        (kinesis.decrease_stream_retention_period, 23),
        (kinesis.increase_stream_retention_period, 8761),
        (kinesis.increase_stream_retention_period, 12),
    ):
        err = error_of(call, StreamName="kept", RetentionPeriodHours=hours)
        assert code_and_message(err)[0] == "InvalidArgumentException", hours


def test_enhanced_monitoring_and_stream_mode_show_in_the_description(kinesis):
    kinesis.create_stream(StreamName="tuned", ShardCount=2)
    wait_active(kinesis, "tuned")

    out = kinesis.enable_enhanced_monitoring(StreamName="tuned", ShardLevelMetrics=["IncomingBytes", "OutgoingRecords"])
    assert out["CurrentShardLevelMetrics"] == []
    assert sorted(out["DesiredShardLevelMetrics"]) == ["IncomingBytes", "OutgoingRecords"]
    wait_active(kinesis, "tuned")
    monitoring = kinesis.describe_stream_summary(StreamName="tuned")["StreamDescriptionSummary"]["EnhancedMonitoring"]
    assert sorted(monitoring[0]["ShardLevelMetrics"]) == ["IncomingBytes", "OutgoingRecords"]

    kinesis.update_stream_mode(StreamARN=stream_arn("tuned"), StreamModeDetails={"StreamMode": "ON_DEMAND"})
    wait_active(kinesis, "tuned")
    summary = kinesis.describe_stream_summary(StreamName="tuned")["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    assert kinesis.describe_limits()["OnDemandStreamCount"] == 1
