// Shared by the test files: a real `riffle serve` ($RIFFLE_BIN) on a free
// port and a temporary data directory, and a bounded wait for a condition.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand,
  SubscribeToShardCommand,
} from "@aws-sdk/client-kinesis";

// Bounds on waiting; reaching one fails the test.
const START_DEADLINE_MS = 30_000;
export const WAIT_DEADLINE_MS = 10_000;

/// Starts a server with `extraArgs` and `extraEnv` (RIFFLE_* variables of
/// the caller's shell are dropped). Resolves to { endpoint, dataDir, stop }.
export function startRiffle({ extraArgs = [], extraEnv = {} } = {}) {
  const bin = process.env.RIFFLE_BIN;
  assert.ok(bin, "RIFFLE_BIN is not set: run scripts/test-js");
  const dataDir = mkdtempSync(join(tmpdir(), "riffle-js-"));
  const args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--status-delay-ms", "0", "--fsync", "always", ...extraArgs];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("RIFFLE_")));
  Object.assign(env, extraEnv);
  const server = spawn(bin, args, { env, stdio: ["ignore", "pipe", "inherit"] });
  const stop = () => {
    server.kill("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  };
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no endpoint within ${START_DEADLINE_MS} ms:\n${out}`)), START_DEADLINE_MS);
    server.stdout.on("data", (chunk) => {
      out += chunk;
      const found = out.match(/^\s*endpoint:\s+(https?:\/\/\S+)\s*$/m);
      if (found) {
        clearTimeout(timer);
        resolve({ endpoint: found[1], dataDir, stop });
      }
    });
    server.on("exit", (code) => reject(new Error(`riffle serve exited with ${code}:\n${out}`)));
  });
}

/// Polls `check` until it returns something truthy, for at most WAIT_DEADLINE_MS.
export async function eventually(what, check) {
  const deadline = Date.now() + WAIT_DEADLINE_MS;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/// The next event of a SubscribeToShard stream, within WAIT_DEADLINE_MS.
export async function nextEvent(events) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("no event in time")), WAIT_DEADLINE_MS);
  });
  const { value, done } = await Promise.race([events.next(), timeout]).finally(() => clearTimeout(timer));
  assert.ok(!done, "the event stream ended early");
  assert.ok(value.SubscribeToShardEvent, `unexpected event ${JSON.stringify(value)}`);
  return value.SubscribeToShardEvent;
}

/// Creates a one-shard stream, registers a consumer on it, waits until both
/// are ACTIVE, and resolves to the consumer's ARN.
export async function activeConsumer(client, streamName, consumerName) {
  await client.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 1 }));
  const summary = await eventually("stream ACTIVE", async () => {
    const out = await client.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    return out.StreamDescriptionSummary.StreamStatus === "ACTIVE" && out.StreamDescriptionSummary;
  });
  const registered = await client.send(
    new RegisterStreamConsumerCommand({ StreamARN: summary.StreamARN, ConsumerName: consumerName }),
  );
  const consumerArn = registered.Consumer.ConsumerARN;
  await eventually("consumer ACTIVE", async () => {
    const out = await client.send(new DescribeStreamConsumerCommand({ ConsumerARN: consumerArn }));
    return out.ConsumerDescription.ConsumerStatus === "ACTIVE";
  });
  return consumerArn;
}

/// Subscribes the consumer to shard 0 from LATEST; resolves to the events.
export async function subscribeFromLatest(client, consumerArn) {
  const subscription = await client.send(
    new SubscribeToShardCommand({
      ConsumerARN: consumerArn,
      ShardId: "shardId-000000000000",
      StartingPosition: { Type: "LATEST" },
    }),
  );
  return subscription.EventStream[Symbol.asyncIterator]();
}
