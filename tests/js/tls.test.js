// HTTPS with the AWS SDK for JavaScript v3: a `riffle serve --tls-cert
// --tls-key` server, a client that trusts its certificate through the HTTP/2
// handler's connect options, and SubscribeToShard over HTTP/2 negotiated by
// ALPN, as the SDK talks to AWS. The certificate is made per run by
// `selfsigned` (Node's WebCrypto underneath).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import selfsigned from "selfsigned";
import {
  KinesisClient,
  ListStreamsCommand,
  PutRecordCommand,
} from "@aws-sdk/client-kinesis";
import { NodeHttp2Handler } from "@smithy/node-http-handler";
import { startRiffle, activeConsumer, subscribeFromLatest, nextEvent } from "./riffle.js";

let server;
let certDir;
let certPem;

function clientTrusting(ca) {
  return new KinesisClient({
    endpoint: server.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "AKIDRIFFLEJS", secretAccessKey: "any" },
    maxAttempts: 1,
    requestHandler: new NodeHttp2Handler({ nodeHttp2ConnectOptions: ca ? { ca } : {} }),
  });
}

before(async () => {
  const pems = await selfsigned.generate([{ name: "commonName", value: "localhost" }], {
    keyType: "ec",
    algorithm: "sha256",
    extensions: [
      // Not a CA: rustls-based clients refuse a self-signed CA as a server.
      { name: "basicConstraints", cA: false },
      { name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] },
    ],
  });
  certDir = mkdtempSync(join(tmpdir(), "riffle-js-tls-"));
  certPem = pems.cert;
  writeFileSync(join(certDir, "cert.pem"), pems.cert);
  writeFileSync(join(certDir, "key.pem"), pems.private);
  server = await startRiffle({
    extraArgs: ["--tls-cert", join(certDir, "cert.pem"), "--tls-key", join(certDir, "key.pem")],
  });
});

after(() => {
  server?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

test("SubscribeToShard over HTTPS (HTTP/2 by ALPN) pushes what is put", async () => {
  assert.match(server.endpoint, /^https:\/\/127\.0\.0\.1:\d+$/);
  const client = clientTrusting(certPem);
  try {
    const consumerArn = await activeConsumer(client, "secure", "node-tls");
    const events = await subscribeFromLatest(client, consumerArn);
    assert.deepEqual((await nextEvent(events)).Records, []);
    const data = new TextEncoder().encode("over tls");
    const put = await client.send(new PutRecordCommand({ StreamName: "secure", PartitionKey: "k", Data: data }));
    let event;
    do {
      event = await nextEvent(events);
    } while (event.Records.length === 0);
    assert.equal(event.Records[0].SequenceNumber, put.SequenceNumber);
    assert.deepEqual(Buffer.from(event.Records[0].Data), Buffer.from(data));
    await events.return?.();
  } finally {
    client.destroy();
  }
});

test("a client that does not trust the certificate refuses the server", async () => {
  const stranger = clientTrusting(undefined);
  try {
    await assert.rejects(stranger.send(new ListStreamsCommand({})), (err) => {
      // Node's TLS check, through the handler's wrapping.
      assert.match(err.message, /self-signed certificate/);
      assert.equal(err.$metadata?.httpStatusCode, undefined, "no HTTP answer was received");
      return true;
    });
  } finally {
    stranger.destroy();
  }
  // The refused handshake left the server serving.
  const trusted = clientTrusting(certPem);
  try {
    const listed = await trusted.send(new ListStreamsCommand({}));
    assert.ok(Array.isArray(listed.StreamNames));
  } finally {
    trusted.destroy();
  }
});
