// Enhanced fan-out with the AWS SDK for JavaScript v3 (@aws-sdk/client-kinesis),
// which sends SubscribeToShard over HTTP/2 (its default NodeHttp2Handler; over
// cleartext with prior knowledge here). A real `riffle serve` ($RIFFLE_BIN) is
// started per test file on a free port and a temporary data directory, with
// SigV4 verification on, so that signing over HTTP/2 (:authority as the host)
// is checked as well.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  KinesisClient,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand,
  SubscribeToShardCommand,
  PutRecordCommand,
} from "@aws-sdk/client-kinesis";
import { NodeHttp2Handler } from "@smithy/node-http-handler";

// Bounds on waiting for a condition; reaching one fails the test.
const START_DEADLINE_MS = 30_000;
const WAIT_DEADLINE_MS = 10_000;
const SAMPLES = 100;
const ACCESS_KEY_ID = "AKIDRIFFLEJS";
const SECRET_ACCESS_KEY = "riffle/js+secret";

let server;
let dataDir;
let client;

function startServer() {
  const bin = process.env.RIFFLE_BIN;
  assert.ok(bin, "RIFFLE_BIN is not set: run scripts/test-js");
  dataDir = mkdtempSync(join(tmpdir(), "riffle-js-"));
  const args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--status-delay-ms", "0", "--fsync", "always"];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("RIFFLE_")));
  env.RIFFLE_ACCESS_KEY_ID = ACCESS_KEY_ID;
  env.RIFFLE_SECRET_ACCESS_KEY = SECRET_ACCESS_KEY;
  server = spawn(bin, args, { env, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no endpoint within ${START_DEADLINE_MS} ms:\n${out}`)), START_DEADLINE_MS);
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const found = out.match(/^\s*endpoint:\s+(http:\/\/\S+)\s*$/m);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    server.on("exit", (code) => reject(new Error(`riffle serve exited with ${code}:\n${out}`)));
  });
}

async function eventually(what, check) {
  const deadline = Date.now() + WAIT_DEADLINE_MS;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let endpoint;

function clientWith(secretAccessKey) {
  return new KinesisClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey },
    maxAttempts: 1,
    // The client's default already; named so the test cannot silently fall
    // back to HTTP/1.1 if that default changes.
    requestHandler: new NodeHttp2Handler(),
  });
}

before(async () => {
  endpoint = await startServer();
  client = clientWith(SECRET_ACCESS_KEY);
});

after(() => {
  client?.destroy();
  server?.kill("SIGKILL");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("SubscribeToShard over HTTP/2 pushes records put after subscribing", async () => {
  await client.send(new CreateStreamCommand({ StreamName: "js", ShardCount: 1 }));
  const summary = await eventually("stream ACTIVE", async () => {
    const out = await client.send(new DescribeStreamSummaryCommand({ StreamName: "js" }));
    return out.StreamDescriptionSummary.StreamStatus === "ACTIVE" && out.StreamDescriptionSummary;
  });
  const registered = await client.send(
    new RegisterStreamConsumerCommand({ StreamARN: summary.StreamARN, ConsumerName: "node" }),
  );
  const consumerArn = registered.Consumer.ConsumerARN;
  await eventually("consumer ACTIVE", async () => {
    const out = await client.send(new DescribeStreamConsumerCommand({ ConsumerARN: consumerArn }));
    return out.ConsumerDescription.ConsumerStatus === "ACTIVE";
  });

  const subscription = await client.send(
    new SubscribeToShardCommand({
      ConsumerARN: consumerArn,
      ShardId: "shardId-000000000000",
      StartingPosition: { Type: "LATEST" },
    }),
  );
  const events = subscription.EventStream[Symbol.asyncIterator]();
  const nextEvent = async () => {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error("no event in time")), WAIT_DEADLINE_MS);
    });
    const { value, done } = await Promise.race([events.next(), timeout]).finally(() => clearTimeout(timer));
    assert.ok(!done, "the event stream ended early");
    assert.ok(value.SubscribeToShardEvent, `unexpected event ${JSON.stringify(value)}`);
    return value.SubscribeToShardEvent;
  };
  const first = await nextEvent();
  assert.deepEqual(first.Records, []);

  const latencies = [];
  for (let i = 0; i < SAMPLES; i++) {
    const data = new TextEncoder().encode(`record ${i}`);
    const put = await client.send(new PutRecordCommand({ StreamName: "js", PartitionKey: "k", Data: data }));
    const returned = process.hrtime.bigint();
    let event;
    do {
      event = await nextEvent();
    } while (event.Records.length === 0);
    latencies.push(Number(process.hrtime.bigint() - returned) / 1e6);
    assert.equal(event.Records.length, 1);
    assert.equal(event.Records[0].SequenceNumber, put.SequenceNumber);
    assert.deepEqual(Buffer.from(event.Records[0].Data), Buffer.from(data));
    assert.equal(event.ContinuationSequenceNumber, put.SequenceNumber);
  }
  latencies.sort((a, b) => a - b);
  const at = (p) => latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * p) - 1)];
  console.log(
    `JS SDK v3 SubscribeToShard (HTTP/2), fsync=always, put-return-to-receive over ${SAMPLES} records: ` +
      `p50 ${at(0.5).toFixed(2)} ms, p99 ${at(0.99).toFixed(2)} ms`,
  );
  await events.return?.();
});

test("a request signed with the wrong secret is refused as AWS refuses it", async () => {
  const wrong = clientWith("not the secret");
  try {
    await assert.rejects(wrong.send(new DescribeStreamSummaryCommand({ StreamName: "js" })), (err) => {
      assert.equal(err.name, "InvalidSignatureException");
      assert.equal(err.$metadata.httpStatusCode, 400);
      assert.match(err.message, /^The request signature we calculated does not match the signature you provided\./);
      return true;
    });
  } finally {
    wrong.destroy();
  }
});
