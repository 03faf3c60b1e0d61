// CORS with the AWS SDK for JavaScript v3 as a web page uses it: the browser's
// preflight (sent here with node:http, as a browser sends it: no credentials),
// then the SDK's signed calls carrying an Origin over its default HTTP/2
// handler. Every answer must let the page read it: Access-Control-Allow-Origin
// and Access-Control-Expose-Headers, on successes, errors and the
// SubscribeToShard event stream alike. SigV4 verification is on, so the
// preflight is shown to need no signature.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import {
  KinesisClient,
  DescribeStreamSummaryCommand,
  PutRecordCommand,
} from "@aws-sdk/client-kinesis";
import { startRiffle, activeConsumer, subscribeFromLatest, nextEvent } from "./riffle.js";

const ACCESS_KEY_ID = "AKIDRIFFLECORS";
const SECRET_ACCESS_KEY = "riffle/cors+secret";
const ORIGIN = "http://localhost:5173";
const EXPOSED = "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date";

let server;
let client;
// The headers of the last response the client received.
let lastHeaders;

before(async () => {
  server = await startRiffle({
    extraEnv: { RIFFLE_ACCESS_KEY_ID: ACCESS_KEY_ID, RIFFLE_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY },
  });
  client = new KinesisClient({
    endpoint: server.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
    maxAttempts: 1,
  });
  // A browser adds the page's Origin to every request the SDK sends.
  client.middlewareStack.add(
    (next) => (args) => {
      args.request.headers.origin = ORIGIN;
      return next(args);
    },
    { step: "build", name: "addOrigin" },
  );
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        const out = await next(args);
        lastHeaders = out.response.headers;
        return out;
      } catch (err) {
        lastHeaders = err.$response?.headers;
        throw err;
      }
    },
    { step: "deserialize", name: "keepResponseHeaders", priority: "low" },
  );
});

after(() => {
  client?.destroy();
  server?.stop();
});

function assertReadableByThePage(headers) {
  assert.ok(headers, "no response headers captured");
  assert.equal(headers["access-control-allow-origin"], "*");
  assert.equal(headers["access-control-expose-headers"], EXPOSED);
}

test("the browser's preflight is answered 200 without a signature", async () => {
  const { hostname, port } = new URL(server.endpoint);
  const asked = "amz-sdk-invocation-id,amz-sdk-request,authorization,content-type,x-amz-date,x-amz-target,x-amz-user-agent";
  const response = await new Promise((resolve, reject) => {
    const req = http.request(
      {
        hostname,
        port,
        method: "OPTIONS",
        path: "/",
        headers: {
          Origin: ORIGIN,
          "Access-Control-Request-Method": "POST",
          "Access-Control-Request-Headers": asked,
          Accept: "*/*",
          "Sec-Fetch-Mode": "cors",
        },
      },
      (res) => {
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
  assert.equal(response.status, 200);
  assert.equal(response.body, "");
  assert.equal(response.headers["access-control-allow-origin"], "*");
  assert.equal(response.headers["access-control-allow-methods"], "POST");
  assert.equal(response.headers["access-control-allow-headers"], asked);
  assert.equal(response.headers["access-control-max-age"], "172800");
});

test("answers to the page's calls, errors and event streams carry the CORS headers", async () => {
  const consumerArn = await activeConsumer(client, "cors", "page");
  assertReadableByThePage(lastHeaders);

  const put = await client.send(
    new PutRecordCommand({ StreamName: "cors", PartitionKey: "k", Data: new TextEncoder().encode("hi") }),
  );
  assertReadableByThePage(lastHeaders);
  // The SDK read the request id a page may read only when it is exposed.
  assert.match(put.$metadata.requestId, /^[0-9a-f-]{36}$/);

  await assert.rejects(client.send(new DescribeStreamSummaryCommand({ StreamName: "ghost" })), (err) => {
    assert.equal(err.name, "ResourceNotFoundException");
    return true;
  });
  assertReadableByThePage(lastHeaders);

  const events = await subscribeFromLatest(client, consumerArn);
  assertReadableByThePage(lastHeaders);
  assert.equal(lastHeaders["content-type"], "application/vnd.amazon.eventstream");
  assert.deepEqual((await nextEvent(events)).Records, []);
  await events.return?.();
});
