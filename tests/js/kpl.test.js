// KPL aggregation, both ways, with AWS's aws-kinesis-agg module and the AWS
// SDK for JavaScript v3 against one real `riffle serve` ($RIFFLE_BIN):
// records it aggregates come out of `riffle tail` as their user records,
// and what `riffle put --aggregate` writes is de-aggregated by its
// deaggregateSync (checksums verified) into the right keys, data and shards.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  KinesisClient,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordCommand,
  ListShardsCommand,
  GetShardIteratorCommand,
  GetRecordsCommand,
} from "@aws-sdk/client-kinesis";
import agg from "aws-kinesis-agg";
import { startRiffle, eventually } from "./riffle.js";

// Bounds a `riffle` command; reaching it fails the test.
const COMMAND_DEADLINE_MS = 60_000;

let server;
let kinesis;

before(async () => {
  server = await startRiffle();
  kinesis = new KinesisClient({
    endpoint: server.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDRIFFLEJSKPL", secretAccessKey: "riffle/js+kpl" },
    maxAttempts: 1,
  });
});

after(() => {
  kinesis?.destroy();
  server?.stop();
});

function riffle(args, input = "") {
  return execFileSync(process.env.RIFFLE_BIN, [...args, "--endpoint", server.endpoint], {
    input,
    timeout: COMMAND_DEADLINE_MS,
    encoding: "utf8",
  });
}

async function activeStream(name, shards) {
  await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  await eventually(`${name} ACTIVE`, async () => {
    const out = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
    return out.StreamDescriptionSummary.StreamStatus === "ACTIVE";
  });
}

/// aws-kinesis-agg's aggregated records of `records`, as its callbacks hand them over.
function aggregate(records) {
  return new Promise((resolve, reject) => {
    const encoded = [];
    agg.aggregate(
      records,
      (record, done) => {
        encoded.push(record);
        done();
      },
      () => resolve(encoded),
      (err) => reject(err),
    );
  });
}

function deaggregate(record) {
  return new Promise((resolve, reject) => {
    agg.deaggregateSync(record, true, (err, users) => (err ? reject(err) : resolve(users)));
  });
}

test("records aggregated by aws-kinesis-agg are tailed by riffle as user records", async () => {
  await activeStream("js-agg-in", 1);
  const users = Array.from({ length: 6 }, (_, i) => ({ partitionKey: `device-${i % 2}`, data: `reading ${i}` }));
  const [encoded, ...more] = await aggregate(users.map((u) => ({ ...u })));
  assert.equal(more.length, 0, "one aggregated record");
  const put = await kinesis.send(
    new PutRecordCommand({ StreamName: "js-agg-in", PartitionKey: encoded.partitionKey, Data: encoded.data }),
  );
  const out = riffle(["tail", "js-agg-in", "--from", "trim-horizon", "--count", String(users.length)]);
  const lines = out.trimEnd().split("\n").map((line) => line.split(" "));
  assert.equal(lines.length, users.length, out);
  lines.forEach(([shard, sequence, key, ...data], i) => {
    assert.equal(shard, put.ShardId);
    assert.equal(sequence, `${put.SequenceNumber}/${i}`);
    assert.equal(key, users[i].partitionKey);
    assert.equal(data.join(" "), users[i].data);
  });
});

function hashKey(partitionKey) {
  return BigInt("0x" + createHash("md5").update(partitionKey, "utf8").digest("hex"));
}

test("riffle put --aggregate is de-aggregated by aws-kinesis-agg onto the keys' shards", async () => {
  await activeStream("js-agg-out", 4);
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i}`);
  const written = riffle(["put", "js-agg-out", "--aggregate"], lines.join("\n") + "\n").trimEnd().split("\n");
  assert.equal(written.length, lines.length);
  const found = new Map();
  const { Shards } = await kinesis.send(new ListShardsCommand({ StreamName: "js-agg-out" }));
  for (const shard of Shards) {
    const low = BigInt(shard.HashKeyRange.StartingHashKey);
    const high = BigInt(shard.HashKeyRange.EndingHashKey);
    const { ShardIterator } = await kinesis.send(
      new GetShardIteratorCommand({ StreamName: "js-agg-out", ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }),
    );
    const { Records } = await kinesis.send(new GetRecordsCommand({ ShardIterator }));
    for (const record of Records) {
      const users = await deaggregate({
        partitionKey: record.PartitionKey,
        sequenceNumber: record.SequenceNumber,
        data: Buffer.from(record.Data).toString("base64"),
      });
      const aggregated = users.length > 1 || users[0].subSequenceNumber !== undefined;
      for (const user of users) {
        const hash = hashKey(user.partitionKey);
        assert.ok(low <= hash && hash <= high, `${user.partitionKey} is on its key's shard`);
        const name = aggregated ? `${record.SequenceNumber}/${user.subSequenceNumber}` : record.SequenceNumber;
        found.set(`${shard.ShardId} ${name}`, Buffer.from(user.data, "base64").toString());
      }
    }
  }
  assert.equal(found.size, lines.length);
  written.forEach((line, i) => assert.equal(found.get(line), lines[i], line));
  assert.ok(written.some((line) => line.endsWith("/1")), "records were aggregated");
});
