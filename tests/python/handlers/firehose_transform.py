"""Firehose transformation handlers, written as for AWS Lambda (the event
and answer of "Transform source data in Amazon Data Firehose") and run
unmodified through PyPI's awslambdaric as `[functions]` commands."""

import base64
import os
import time


def transform(event, context):
    """Upper-cases each record; a record starting with `drop` is Dropped,
    one starting with `fail` ProcessingFailed. A Kinesis source's record
    gets its partition key and shard in front, from kinesisRecordMetadata."""
    out = []
    for record in event["records"]:
        data = base64.b64decode(record["data"])
        if data.startswith(b"drop"):
            out.append({"recordId": record["recordId"], "result": "Dropped", "data": record["data"]})
            continue
        if data.startswith(b"fail"):
            out.append({"recordId": record["recordId"], "result": "ProcessingFailed", "data": record["data"]})
            continue
        meta = record.get("kinesisRecordMetadata")
        if meta is not None:
            head = f"{event['sourceKinesisStreamArn']}|{meta['shardId']}|{meta['partitionKey']}|".encode()
            data = head + data
        out.append({"recordId": record["recordId"], "result": "Ok", "data": base64.b64encode(data.upper()).decode()})
    return {"records": out}


def slow(event, context):
    """Runs past any short timeout."""
    time.sleep(30)
    return {"records": []}


def crash(event, context):
    """The process dies mid-invocation."""
    os._exit(1)


def forgetful(event, context):
    """Answers every record but the first, and the second twice."""
    records = event["records"]
    out = [{"recordId": r["recordId"], "result": "Ok", "data": r["data"]} for r in records[1:]]
    if len(records) > 1:
        out.append(out[0])
    return {"records": out}


def partition_by_first_word(event, context):
    """Keeps each record and gives its first word as partition key `word`."""
    out = []
    for record in event["records"]:
        word = base64.b64decode(record["data"]).split()[0].decode()
        out.append({
            "recordId": record["recordId"],
            "result": "Ok",
            "data": record["data"],
            "metadata": {"partitionKeys": {"word": word}},
        })
    return {"records": out}
