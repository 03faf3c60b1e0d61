//! Every action's validation, errors and answers, through `Firehose::handle`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::testkit::{Harness, ROLE, config};

fn s3(bucket: &str) -> Value {
    json!({"RoleARN": ROLE, "BucketARN": format!("arn:aws:s3:::{bucket}")})
}

fn b64(data: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(data)
}

#[tokio::test]
async fn invalid_requests_get_awss_errors() {
    let h = Harness::new();
    h.create("s", 1, 60).await;
    h.call(
        "CreateDeliveryStream",
        json!({"DeliveryStreamName": "k", "DeliveryStreamType": "KinesisStreamAsSource",
               "KinesisStreamSourceConfiguration": {
                   "KinesisStreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/src",
                   "RoleARN": ROLE},
               "S3DestinationConfiguration": s3("b")}),
    )
    .await
    .unwrap();
    let big = b64(&vec![0; 1_024_001]);
    let five_mb: Vec<Value> = (0..5)
        .map(|_| json!({"Data": b64(&vec![1; 1_000_000])}))
        .collect();
    let many: Vec<Value> = (0..501).map(|_| json!({"Data": "YQ=="})).collect();
    let tags51: Vec<Value> = (0..51).map(|i| json!({"Key": format!("k{i}")})).collect();
    let table: Vec<(&str, Value, &str, String)> = vec![
        ("CreateDeliveryStream", json!({}), "ValidationException",
         "1 validation error detected: Value null at 'deliveryStreamName' failed to satisfy constraint: Member must not be null".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "a b", "S3DestinationConfiguration": s3("b")}), "ValidationException",
         "1 validation error detected: Value 'a b' at 'deliveryStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "x".repeat(65), "S3DestinationConfiguration": s3("b")}), "ValidationException",
         format!("1 validation error detected: Value '{}' at 'deliveryStreamName' failed to satisfy constraint: Member must have length less than or equal to 64", "x".repeat(65))),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "n", "ExtendedS3DestinationConfiguration": {
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::b", "BufferingHints": {"SizeInMBs": 0, "IntervalInSeconds": 901}}}),
         "ValidationException",
         "2 validation errors detected: Value '0' at 'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed to satisfy constraint: Member must have value greater than or equal to 1; Value '901' at 'extendedS3DestinationConfiguration.bufferingHints.intervalInSeconds' failed to satisfy constraint: Member must have value less than or equal to 900".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "n", "S3DestinationConfiguration": {
            "RoleARN": ROLE, "BucketARN": "arn:aws:s3:::b", "CompressionFormat": "BZIP2"}}),
         "ValidationException",
         "1 validation error detected: Value 'BZIP2' at 's3DestinationConfiguration.compressionFormat' failed to satisfy constraint: Member must satisfy enum value set: [UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY]".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "n", "S3DestinationConfiguration": {"BucketARN": "bucket"}}),
         "ValidationException",
         "2 validation errors detected: Value null at 's3DestinationConfiguration.roleARN' failed to satisfy constraint: Member must not be null; Value 'bucket' at 's3DestinationConfiguration.bucketARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:.*:s3:::[\\w\\.\\-]{1,255}".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "n", "DeliveryStreamType": "MSKAsSource", "S3DestinationConfiguration": s3("b")}),
         "InvalidArgumentException", "DeliveryStreamType MSKAsSource is not supported by Riffle yet.".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "n", "DeliveryStreamType": "DatabaseAsSource", "S3DestinationConfiguration": s3("b")}),
         "InvalidArgumentException", "DeliveryStreamType DatabaseAsSource is not supported by Riffle yet.".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "n", "RedshiftDestinationConfiguration": {}}),
         "ValidationException", "4 validation errors detected: Value null at 'redshiftDestinationConfiguration.roleARN' failed to satisfy constraint: Member must not be null; Value null at 'redshiftDestinationConfiguration.clusterJDBCURL' failed to satisfy constraint: Member must not be null; Value null at 'redshiftDestinationConfiguration.copyCommand' failed to satisfy constraint: Member must not be null; Value null at 'redshiftDestinationConfiguration.s3Configuration' failed to satisfy constraint: Member must not be null".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "n", "RedshiftDestinationConfiguration": {
            "RoleARN": ROLE, "ClusterJDBCURL": "jdbc:redshift://c.x.redshift.amazonaws.com:5439/dev", "Username": "u", "Password": "secret-1",
            "CopyCommand": {"DataTableName": "t", "CopyOptions": "JSON 'auto' LZOP"}, "S3Configuration": s3("b")}}),
         "InvalidArgumentException", "CopyOptions LZOP is not supported: Riffle runs the COPY on PostgreSQL and translates only JSON 'auto', JSON 'auto ignorecase', CSV [QUOTE AS], DELIMITER, GZIP, IGNOREHEADER, NULL AS, EMPTYASNULL, BLANKSASNULL, TRIMBLANKS, TIMEFORMAT ('auto', 'epochsecs', 'epochmillisecs', year-month-day formats), DATEFORMAT ('auto', 'YYYY-MM-DD'), COMPUPDATE, STATUPDATE.".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "n"}),
         "InvalidArgumentException", "Exactly one destination configuration is supported for a Firehose".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "n", "DeliveryStreamType": "KinesisStreamAsSource", "S3DestinationConfiguration": s3("b")}),
         "InvalidArgumentException", "KinesisSourceStreamConfig is required for KinesisStreamAsSource delivery stream type.".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "s", "S3DestinationConfiguration": s3("b")}),
         "ResourceInUseException", "Firehose s under accountId 000000000000 already exists".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "n", "S3DestinationConfiguration": s3("b"), "Tags": [{"Key": "aws:x"}]}),
         "ValidationException",
         "1 validation error detected: Value 'aws:x' at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: ^(?!aws:)[\\p{L}\\p{Z}\\p{N}_.:\\/=+\\-@%]*$".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": 1}), "SerializationException",
         "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String".into()),
        ("CreateDeliveryStream", json!({"DeliveryStreamName": "n", "DeliveryStreamEncryptionConfigurationInput": {"KeyType": "CUSTOMER_MANAGED_CMK"},
            "S3DestinationConfiguration": s3("b")}),
         "InvalidArgumentException", "KeyARN must be provided when KeyType is CUSTOMER_MANAGED_CMK.".into()),
        ("DescribeDeliveryStream", json!({"DeliveryStreamName": "nope"}),
         "ResourceNotFoundException", "Firehose nope under account 000000000000 not found.".into()),
        ("DescribeDeliveryStream", json!({"DeliveryStreamName": "s", "Limit": 0}), "ValidationException",
         "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1".into()),
        ("DeleteDeliveryStream", json!({"DeliveryStreamName": "nope"}),
         "ResourceNotFoundException", "Firehose nope under account 000000000000 not found.".into()),
        ("ListDeliveryStreams", json!({"Limit": 10001}), "ValidationException",
         "1 validation error detected: Value '10001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000".into()),
        ("PutRecord", json!({"DeliveryStreamName": "s"}), "ValidationException",
         "1 validation error detected: Value null at 'record' failed to satisfy constraint: Member must not be null".into()),
        ("PutRecord", json!({"DeliveryStreamName": "s", "Record": {"Data": big}}), "ValidationException",
         "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1024001 cap=1024001]' at 'record.data' failed to satisfy constraint: Member must have length less than or equal to 1024000".into()),
        ("PutRecord", json!({"DeliveryStreamName": "s", "Record": {"Data": "abc"}}), "SerializationException",
         "'abc' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 3".into()),
        ("PutRecord", json!({"DeliveryStreamName": "nope", "Record": {"Data": "YQ=="}}),
         "ResourceNotFoundException", "Firehose nope under account 000000000000 not found.".into()),
        ("PutRecord", json!({"DeliveryStreamName": "k", "Record": {"Data": "YQ=="}}),
         "InvalidArgumentException", "This operation is not permitted on KinesisStreamAsSource delivery stream type.".into()),
        ("PutRecordBatch", json!({"DeliveryStreamName": "s", "Records": []}), "ValidationException",
         "1 validation error detected: Value '[0 records]' at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1".into()),
        ("PutRecordBatch", json!({"DeliveryStreamName": "s", "Records": many}), "ValidationException",
         "1 validation error detected: Value '[501 records]' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500".into()),
        ("PutRecordBatch", json!({"DeliveryStreamName": "s", "Records": five_mb}),
         "InvalidArgumentException", "Records size exceeds 4 MB limit".into()),
        ("PutRecordBatch", json!({"DeliveryStreamName": "s", "Records": [{}]}), "ValidationException",
         "1 validation error detected: Value null at 'records.1.member.data' failed to satisfy constraint: Member must not be null".into()),
        ("PutRecordBatch", json!({"DeliveryStreamName": "k", "Records": [{"Data": "YQ=="}]}),
         "InvalidArgumentException", "This operation is not permitted on KinesisStreamAsSource delivery stream type.".into()),
        ("UpdateDestination", json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "7", "DestinationId": "destinationId-000000000001"}),
         "ConcurrentModificationException",
         "Cannot update firehose: s since the current version id: 1 and specified version id: 7 do not match".into()),
        ("UpdateDestination", json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "1", "DestinationId": "destinationId-000000000002"}),
         "InvalidArgumentException", "Destination Id destinationId-000000000002 not found".into()),
        ("UpdateDestination", json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "v1", "DestinationId": "d"}),
         "ValidationException",
         "1 validation error detected: Value 'v1' at 'currentDeliveryStreamVersionId' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9]+".into()),
        ("UpdateDestination", json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "1", "DestinationId": "destinationId-000000000001",
            "RedshiftDestinationUpdate": {}}),
         "InvalidArgumentException", "ClusterJDBCURL and CopyCommand are required to change the destination to Redshift.".into()),
        ("UpdateDestination", json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "1", "DestinationId": "destinationId-000000000001",
            "SplunkDestinationUpdate": {}}),
         "InvalidArgumentException", "HECEndpoint is required to change the destination to Splunk.".into()),
        ("UpdateDestination", json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": "1", "DestinationId": "destinationId-000000000001",
            "AmazonopensearchserviceDestinationUpdate": {"IndexName": "x"}}),
         "InvalidArgumentException", "Switching between Amazon OpenSearch Service and other destinations is not supported.".into()),
        ("TagDeliveryStream", json!({"DeliveryStreamName": "s", "Tags": tags51}), "ValidationException",
         "1 validation error detected: Value '[51 tags]' at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50".into()),
        ("TagDeliveryStream", json!({"DeliveryStreamName": "nope", "Tags": [{"Key": "a"}]}),
         "ResourceNotFoundException", "Firehose nope under account 000000000000 not found.".into()),
        ("UntagDeliveryStream", json!({"DeliveryStreamName": "s", "TagKeys": []}), "ValidationException",
         "1 validation error detected: Value '[]' at 'tagKeys' failed to satisfy constraint: Member must have length greater than or equal to 1".into()),
        ("ListTagsForDeliveryStream", json!({"DeliveryStreamName": "s", "Limit": 51}), "ValidationException",
         "1 validation error detected: Value '51' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 50".into()),
        ("StartDeliveryStreamEncryption", json!({"DeliveryStreamName": "k"}),
         "InvalidArgumentException", "Server-side encryption is not supported for delivery streams with KinesisStreamAsSource type.".into()),
        ("StopDeliveryStreamEncryption", json!({"DeliveryStreamName": "nope"}),
         "ResourceNotFoundException", "Firehose nope under account 000000000000 not found.".into()),
        ("CreateStream", json!({}), "UnknownOperationException", String::new()),
    ];
    for (action, body, code, message) in table {
        let got = h.error(action, body.clone()).await;
        assert_eq!(got, (code, message), "{action} {body:.200}");
    }
}

#[tokio::test]
async fn describe_shows_awss_defaults_and_pages_destinations() {
    let h = Harness::new();
    let created = h
        .call(
            "CreateDeliveryStream",
            json!({"DeliveryStreamName": "s", "S3DestinationConfiguration": s3("logs")}),
        )
        .await
        .unwrap();
    assert_eq!(
        created,
        json!({"DeliveryStreamARN": "arn:aws:firehose:us-east-1:000000000000:deliverystream/s"})
    );
    let d = h
        .call("DescribeDeliveryStream", json!({"DeliveryStreamName": "s"}))
        .await
        .unwrap()["DeliveryStreamDescription"]
        .clone();
    assert_eq!(d["DeliveryStreamStatus"], "ACTIVE");
    assert_eq!(d["DeliveryStreamType"], "DirectPut");
    assert_eq!(d["VersionId"], "1");
    assert_eq!(d["HasMoreDestinations"], false);
    assert_eq!(
        d["DeliveryStreamEncryptionConfiguration"],
        json!({"Status": "DISABLED"})
    );
    assert!(d["CreateTimestamp"].as_f64().unwrap() > 1.7e9);
    let dest = &d["Destinations"][0];
    assert_eq!(dest["DestinationId"], "destinationId-000000000001");
    let expected = json!({
        "RoleARN": ROLE,
        "BucketARN": "arn:aws:s3:::logs",
        "BufferingHints": {"SizeInMBs": 5, "IntervalInSeconds": 300},
        "CompressionFormat": "UNCOMPRESSED",
        "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
        "CloudWatchLoggingOptions": {"Enabled": false},
    });
    assert_eq!(dest["S3DestinationDescription"], expected);
    assert_eq!(
        dest["ExtendedS3DestinationDescription"]["S3BackupMode"],
        "Disabled"
    );
    let after = h
        .call(
            "DescribeDeliveryStream",
            json!({"DeliveryStreamName": "s", "ExclusiveStartDestinationId": "destinationId-000000000001"}),
        )
        .await
        .unwrap();
    assert_eq!(
        after["DeliveryStreamDescription"]["Destinations"],
        json!([])
    );
}

#[tokio::test]
async fn list_pages_by_name_and_filters_by_type() {
    let h = Harness::new();
    for name in ["c", "a", "d", "b"] {
        h.create(name, 1, 60).await;
    }
    h.call(
        "CreateDeliveryStream",
        json!({"DeliveryStreamName": "k", "DeliveryStreamType": "KinesisStreamAsSource",
               "KinesisStreamSourceConfiguration": {
                   "KinesisStreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/src",
                   "RoleARN": ROLE},
               "S3DestinationConfiguration": s3("b")}),
    )
    .await
    .unwrap();
    let page = h
        .call("ListDeliveryStreams", json!({"Limit": 2}))
        .await
        .unwrap();
    assert_eq!(
        page,
        json!({"DeliveryStreamNames": ["a", "b"], "HasMoreDeliveryStreams": true})
    );
    let page = h
        .call(
            "ListDeliveryStreams",
            json!({"Limit": 2, "ExclusiveStartDeliveryStreamName": "b"}),
        )
        .await
        .unwrap();
    assert_eq!(
        page,
        json!({"DeliveryStreamNames": ["c", "d"], "HasMoreDeliveryStreams": true})
    );
    let page = h
        .call(
            "ListDeliveryStreams",
            json!({"ExclusiveStartDeliveryStreamName": "bb", "DeliveryStreamType": "DirectPut"}),
        )
        .await
        .unwrap();
    assert_eq!(
        page,
        json!({"DeliveryStreamNames": ["c", "d"], "HasMoreDeliveryStreams": false})
    );
    let page = h
        .call(
            "ListDeliveryStreams",
            json!({"DeliveryStreamType": "KinesisStreamAsSource"}),
        )
        .await
        .unwrap();
    assert_eq!(
        page,
        json!({"DeliveryStreamNames": ["k"], "HasMoreDeliveryStreams": false})
    );
    let d = h
        .call("DescribeDeliveryStream", json!({"DeliveryStreamName": "k"}))
        .await
        .unwrap();
    let source = &d["DeliveryStreamDescription"]["Source"]["KinesisStreamSourceDescription"];
    assert_eq!(
        source["KinesisStreamARN"],
        "arn:aws:kinesis:us-east-1:000000000000:stream/src"
    );
}

#[tokio::test]
async fn a_stale_version_is_a_concurrent_modification_and_updates_bump_the_version() {
    let h = Harness::new();
    h.create("s", 1, 60).await;
    let update = |version: &str| {
        json!({"DeliveryStreamName": "s", "CurrentDeliveryStreamVersionId": version,
               "DestinationId": "destinationId-000000000001",
               "ExtendedS3DestinationUpdate": {"Prefix": "raw-data/", "BufferingHints": {"IntervalInSeconds": 120}}})
    };
    h.call("UpdateDestination", update("1")).await.unwrap();
    // A second writer that read version 1 loses.
    let (code, _) = h.error("UpdateDestination", update("1")).await;
    assert_eq!(code, "ConcurrentModificationException");
    h.call("UpdateDestination", update("2")).await.unwrap();
    let d = h
        .call("DescribeDeliveryStream", json!({"DeliveryStreamName": "s"}))
        .await
        .unwrap();
    let d = &d["DeliveryStreamDescription"];
    assert_eq!(d["VersionId"], "3");
    assert!(d["LastUpdateTimestamp"].is_number());
    let ext = &d["Destinations"][0]["ExtendedS3DestinationDescription"];
    assert_eq!(ext["Prefix"], "raw-data/");
    assert_eq!(
        ext["BufferingHints"],
        json!({"SizeInMBs": 1, "IntervalInSeconds": 120})
    );
}

#[tokio::test]
async fn tags_are_added_listed_in_pages_and_removed() {
    let h = Harness::new();
    h.call(
        "CreateDeliveryStream",
        json!({"DeliveryStreamName": "s", "S3DestinationConfiguration": s3("b"), "Tags": [{"Key": "a", "Value": "1"}]}),
    )
    .await
    .unwrap();
    h.call(
        "TagDeliveryStream",
        json!({"DeliveryStreamName": "s", "Tags": [{"Key": "c", "Value": "3"}, {"Key": "b"}]}),
    )
    .await
    .unwrap();
    let page = h
        .call(
            "ListTagsForDeliveryStream",
            json!({"DeliveryStreamName": "s", "Limit": 2}),
        )
        .await
        .unwrap();
    assert_eq!(
        page,
        json!({"Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": ""}], "HasMoreTags": true})
    );
    let page = h
        .call(
            "ListTagsForDeliveryStream",
            json!({"DeliveryStreamName": "s", "ExclusiveStartTagKey": "b"}),
        )
        .await
        .unwrap();
    assert_eq!(
        page,
        json!({"Tags": [{"Key": "c", "Value": "3"}], "HasMoreTags": false})
    );
    h.call(
        "UntagDeliveryStream",
        json!({"DeliveryStreamName": "s", "TagKeys": ["a", "c"]}),
    )
    .await
    .unwrap();
    let all = h
        .call(
            "ListTagsForDeliveryStream",
            json!({"DeliveryStreamName": "s"}),
        )
        .await
        .unwrap();
    assert_eq!(all["Tags"], json!([{"Key": "b", "Value": ""}]));
    // 50 tags at most on a stream.
    let more: Vec<Value> = (0..50)
        .map(|i| json!({"Key": format!("k{i:02}")}))
        .collect();
    let (code, _) = h
        .error(
            "TagDeliveryStream",
            json!({"DeliveryStreamName": "s", "Tags": more}),
        )
        .await;
    assert_eq!(code, "LimitExceededException");
}

#[tokio::test]
async fn puts_answer_per_record_in_order() {
    let h = Harness::new();
    h.create("s", 128, 900).await;
    let one = h
        .call(
            "PutRecord",
            json!({"DeliveryStreamName": "s", "Record": {"Data": b64(b"a")}}),
        )
        .await
        .unwrap();
    assert_eq!(one["Encrypted"], false);
    let batch = h.put_batch("s", &[b"b".to_vec(), b"c".to_vec()]).await;
    assert_eq!(batch["FailedPutCount"], 0);
    let ids: Vec<&str> = batch["RequestResponses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["RecordId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(one["RecordId"].as_str().unwrap() < ids[0] && ids[0] < ids[1]);
}

#[tokio::test(start_paused = true)]
async fn throughput_limits_refuse_records_past_five_mib_a_second() {
    let h = Harness::with_config(crate::FirehoseConfig {
        throughput_limits: true,
        ..config()
    });
    h.create("s", 128, 900).await;
    // 4 MB of this second's 5 MiB taken already (directly: a put would
    // wait for the disk, during which paused time may start a new second).
    let stream = h.firehose.get("s").unwrap();
    assert_eq!(stream.throttle.admit([4_000_000].into_iter()), Some(1));
    // 2 MB more in the same second: the first 1 MB fits, the second not.
    let second = h
        .put_batch("s", &crate::testkit::records(2, 1_000_000))
        .await;
    assert_eq!(second["FailedPutCount"], 1);
    assert_eq!(
        second["RequestResponses"][1],
        json!({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."})
    );
    assert!(second["RequestResponses"][0]["RecordId"].is_string());
}

#[tokio::test]
async fn encryption_starts_and_stops_and_records_say_so() {
    let h = Harness::new();
    h.create("s", 128, 900).await;
    h.call(
        "StartDeliveryStreamEncryption",
        json!({"DeliveryStreamName": "s"}),
    )
    .await
    .unwrap();
    let d = h
        .call("DescribeDeliveryStream", json!({"DeliveryStreamName": "s"}))
        .await
        .unwrap();
    assert_eq!(
        d["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"],
        json!({"KeyType": "AWS_OWNED_CMK", "Status": "ENABLED"})
    );
    let put = h
        .call(
            "PutRecord",
            json!({"DeliveryStreamName": "s", "Record": {"Data": b64(b"secret")}}),
        )
        .await
        .unwrap();
    assert_eq!(put["Encrypted"], true);
    let stream = h.firehose.get("s").unwrap();
    let read = stream
        .log
        .read(
            0,
            riffle_log::ReadLimits {
                records_max: 10,
                bytes_max: 1 << 20,
            },
        )
        .unwrap();
    assert!(read.records[0].encrypted);
    assert_eq!(&read.records[0].data[..], b"secret");
    h.call(
        "StopDeliveryStreamEncryption",
        json!({"DeliveryStreamName": "s"}),
    )
    .await
    .unwrap();
    let put = h
        .call(
            "PutRecord",
            json!({"DeliveryStreamName": "s", "Record": {"Data": b64(b"plain")}}),
        )
        .await
        .unwrap();
    assert_eq!(put["Encrypted"], false);
    let d = h
        .call("DescribeDeliveryStream", json!({"DeliveryStreamName": "s"}))
        .await
        .unwrap();
    assert_eq!(
        d["DeliveryStreamDescription"]["DeliveryStreamEncryptionConfiguration"]["Status"],
        "DISABLED"
    );
}

#[tokio::test]
async fn statuses_go_creating_active_deleting_gone() {
    let h = Harness::with_config(crate::FirehoseConfig {
        // Long enough that a slow disk cannot make CREATING pass unseen.
        status_delay: Duration::from_millis(1_500),
        ..config()
    });
    h.create("s", 1, 60).await;
    let status = |v: Value| {
        v["DeliveryStreamDescription"]["DeliveryStreamStatus"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let d = h
        .call("DescribeDeliveryStream", json!({"DeliveryStreamName": "s"}))
        .await
        .unwrap();
    assert_eq!(status(d), "CREATING");
    let (code, _) = h
        .error(
            "PutRecord",
            json!({"DeliveryStreamName": "s", "Record": {"Data": "YQ=="}}),
        )
        .await;
    assert_eq!(code, "ResourceNotFoundException");
    let (code, _) = h
        .error("DeleteDeliveryStream", json!({"DeliveryStreamName": "s"}))
        .await;
    assert_eq!(code, "ResourceInUseException");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let d = h
            .call("DescribeDeliveryStream", json!({"DeliveryStreamName": "s"}))
            .await
            .unwrap();
        if status(d) == "ACTIVE" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.call(
        "DeleteDeliveryStream",
        json!({"DeliveryStreamName": "s", "AllowForceDelete": true}),
    )
    .await
    .unwrap();
    let d = h
        .call("DescribeDeliveryStream", json!({"DeliveryStreamName": "s"}))
        .await
        .unwrap();
    assert_eq!(status(d), "DELETING");
    loop {
        match h
            .call("DescribeDeliveryStream", json!({"DeliveryStreamName": "s"}))
            .await
        {
            Err(e) => {
                assert_eq!(e.code(), "ResourceNotFoundException");
                break;
            }
            Ok(_) => assert!(tokio::time::Instant::now() < deadline),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The name is free again, and the new stream starts empty.
    h.create("s", 1, 60).await;
}

/// AWS skips members it does not model, at every depth (what lets a newer
/// SDK talk to an older service); a known member of the wrong type is still
/// refused.
#[tokio::test]
async fn unknown_members_are_ignored_and_known_ones_still_typed() {
    let h = Harness::new();
    h.call(
        "CreateDeliveryStream",
        json!({"DeliveryStreamName": "u", "ShardCount": 3, "FutureMember": {"X": 1},
               "S3DestinationConfiguration": {"RoleARN": ROLE, "BucketARN": "arn:aws:s3:::b",
                                              "NewerSetting": true}}),
    )
    .await
    .unwrap();
    h.call(
        "DescribeDeliveryStream",
        json!({"DeliveryStreamName": "u", "ShardCount": 1}),
    )
    .await
    .unwrap();
    let err = h
        .call("DescribeDeliveryStream", json!({"DeliveryStreamName": 5}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "SerializationException");
}
