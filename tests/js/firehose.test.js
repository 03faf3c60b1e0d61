// Firehose into the embedded S3 with the AWS SDK for JavaScript v3
// (@aws-sdk/client-firehose and @aws-sdk/client-s3, path-style) against one
// real `riffle serve` ($RIFFLE_BIN) per test file, with SigV4 verification
// on for both signing names (firehose and s3) on the one port.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  FirehoseClient,
  CreateDeliveryStreamCommand,
  DescribeDeliveryStreamCommand,
  PutRecordBatchCommand,
} from "@aws-sdk/client-firehose";
import { S3Client, CreateBucketCommand, ListObjectsV2Command, GetObjectCommand } from "@aws-sdk/client-s3";
import { startRiffle, eventually } from "./riffle.js";

const ACCESS_KEY_ID = "AKIDRIFFLEJSFH";
const SECRET_ACCESS_KEY = "riffle/js+firehose";
const ROLE = "arn:aws:iam::000000000000:role/firehose-delivery";

let server;
let firehose;
let s3;

before(async () => {
  server = await startRiffle({
    extraEnv: { RIFFLE_ACCESS_KEY_ID: ACCESS_KEY_ID, RIFFLE_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY },
  });
  const common = {
    endpoint: server.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
    maxAttempts: 1,
  };
  firehose = new FirehoseClient(common);
  // The embedded S3 is path-style only (no per-bucket host names).
  s3 = new S3Client({ ...common, forcePathStyle: true });
});

after(() => {
  firehose?.destroy();
  s3?.destroy();
  server?.stop();
});

test("PutRecordBatch to a DirectPut stream arrives as one S3 object of the records concatenated", async () => {
  await s3.send(new CreateBucketCommand({ Bucket: "js-deliveries" }));
  await firehose.send(
    new CreateDeliveryStreamCommand({
      DeliveryStreamName: "js-clicks",
      DeliveryStreamType: "DirectPut",
      ExtendedS3DestinationConfiguration: {
        RoleARN: ROLE,
        BucketARN: "arn:aws:s3:::js-deliveries",
        BufferingHints: { SizeInMBs: 1, IntervalInSeconds: 1 },
      },
    }),
  );
  await eventually("delivery stream ACTIVE", async () => {
    const out = await firehose.send(new DescribeDeliveryStreamCommand({ DeliveryStreamName: "js-clicks" }));
    return out.DeliveryStreamDescription.DeliveryStreamStatus === "ACTIVE";
  });

  const records = Array.from({ length: 20 }, (_, i) => Buffer.from(`{"click":${i}}\n`));
  const put = await firehose.send(
    new PutRecordBatchCommand({ DeliveryStreamName: "js-clicks", Records: records.map((Data) => ({ Data })) }),
  );
  assert.equal(put.FailedPutCount, 0);
  assert.equal(put.RequestResponses.length, records.length);
  assert.ok(put.RequestResponses.every((r) => r.RecordId && !r.ErrorCode));

  const contents = await eventually("an object in js-deliveries", async () => {
    const out = await s3.send(new ListObjectsV2Command({ Bucket: "js-deliveries" }));
    return out.Contents?.length > 0 && out.Contents;
  });
  assert.equal(contents.length, 1);
  assert.match(contents[0].Key, /^\d{4}\/\d{2}\/\d{2}\/\d{2}\/js-clicks-1-\d{4}(-\d{2}){5}-[0-9a-f-]+$/);
  const object = await s3.send(new GetObjectCommand({ Bucket: "js-deliveries", Key: contents[0].Key }));
  const body = Buffer.from(await object.Body.transformToByteArray());
  assert.deepEqual(body, Buffer.concat(records));
});

test("PutRecordBatch to an unknown delivery stream rejects with ResourceNotFoundException", async () => {
  await assert.rejects(
    firehose.send(new PutRecordBatchCommand({ DeliveryStreamName: "js-missing", Records: [{ Data: Buffer.from("x") }] })),
    (err) => {
      assert.equal(err.name, "ResourceNotFoundException");
      assert.equal(err.$metadata.httpStatusCode, 400);
      return true;
    },
  );
});
