// Enhanced fan-out with the AWS SDK for JavaScript v3 (@aws-sdk/client-kinesis),
// which sends SubscribeToShard over HTTP/2 (its default NodeHttp2Handler; over
// cleartext with prior knowledge here). A real `riffle serve` ($RIFFLE_BIN) is
// started per test file on a free port and a temporary data directory, with
// SigV4 verification on, so that signing over HTTP/2 (:authority as the host)
// is checked as well.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  KinesisClient,
  DescribeStreamSummaryCommand,
  PutRecordCommand,
} from "@aws-sdk/client-kinesis";
import { NodeHttp2Handler } from "@smithy/node-http-handler";
import { startRiffle, activeConsumer, subscribeFromLatest, nextEvent as next } from "./riffle.js";

const SAMPLES = 100;
const ACCESS_KEY_ID = "AKIDRIFFLEJS";
const SECRET_ACCESS_KEY = "riffle/js+secret";

let server;
let client;
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
  server = await startRiffle({
    extraEnv: { RIFFLE_ACCESS_KEY_ID: ACCESS_KEY_ID, RIFFLE_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY },
  });
  endpoint = server.endpoint;
  client = clientWith(SECRET_ACCESS_KEY);
});

after(() => {
  client?.destroy();
  server?.stop();
});

test("SubscribeToShard over HTTP/2 pushes records put after subscribing", async () => {
  const consumerArn = await activeConsumer(client, "js", "node");

  const events = await subscribeFromLatest(client, consumerArn);
  const nextEvent = () => next(events);
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
