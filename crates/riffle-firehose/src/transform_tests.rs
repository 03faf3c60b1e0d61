//! The event's and answer's shapes, batching, and the error records.

use super::*;

fn buffer(records: &[&[u8]]) -> Buffer {
    let mut buffer = Buffer::new(100);
    for (i, data) in records.iter().enumerate() {
        let record = riffle_log::Record {
            seq: 100 + i as u64,
            arrival_ms: 1_000 + i as i64,
            partition_key: Bytes::new(),
            explicit_hash_key: None,
            data: Bytes::copy_from_slice(data),
            encrypted: false,
        };
        buffer.push(&record, false);
    }
    buffer
}

fn b64(data: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(data)
}

#[test]
fn an_answer_maps_each_record_id_to_its_outcome() {
    let payload = serde_json::json!({"records": [
        {"recordId": "101", "result": "Dropped", "data": ""},
        {"recordId": "100", "result": "Ok", "data": b64(b"ONE"),
         "metadata": {"partitionKeys": {"customer": "7"}}},
        {"recordId": "102", "result": "ProcessingFailed", "data": b64(b"x")},
        {"recordId": "999", "result": "Ok", "data": b64(b"stranger")},
    ]})
    .to_string();
    let answer = parse_answer(payload.as_bytes(), 4, 100).unwrap();
    assert_eq!(answer.data, b"ONE");
    let keys = BTreeMap::from([("customer".to_owned(), "7".to_owned())]);
    assert_eq!(
        answer.outcomes,
        [
            Outcome::Ok(0..3, keys),
            Outcome::Dropped,
            Outcome::Failed(Failure::processing_failed()),
            Outcome::Failed(Failure::missing_id()),
        ]
    );
}

#[test]
fn a_repeated_record_id_fails_that_record() {
    let payload = serde_json::json!({"records": [
        {"recordId": "100", "result": "Ok", "data": b64(b"a")},
        {"recordId": "100", "result": "Ok", "data": b64(b"b")},
        {"recordId": "101", "result": "Ok", "data": b64(b"c")},
    ]})
    .to_string();
    let answer = parse_answer(payload.as_bytes(), 2, 100).unwrap();
    assert_eq!(
        answer.outcomes[0],
        Outcome::Failed(Failure::duplicated_id())
    );
    assert!(matches!(answer.outcomes[1], Outcome::Ok(..)));
}

#[test]
fn an_answer_outside_the_status_model_fails_the_invocation() {
    for bad in [
        &b"not json"[..],
        br#"{"records": [{"recordId": "100", "result": "Maybe", "data": ""}]}"#,
        br#"{"records": [{"recordId": "100", "result": "Ok"}]}"#,
        br#"{"nothing": []}"#,
    ] {
        assert_eq!(parse_answer(bad, 1, 100), Err(Failure::json()), "{bad:?}");
    }
    let bad_base64 = br#"{"records": [{"recordId": "100", "result": "Ok", "data": "%%%"}]}"#;
    assert_eq!(
        parse_answer(bad_base64, 1, 100),
        Err(Failure::function_error())
    );
}

#[test]
fn batches_hold_at_most_the_processor_size_and_one_record_at_least() {
    let big = vec![b'x'; 700];
    let buffer = buffer(&[&big, &big, &big, b"", &big]);
    assert_eq!(batches(&buffer, 1500), [0..2, 2..5]);
    // Each record past the size alone; the empty one after an oversized
    // one does not join it.
    assert_eq!(batches(&buffer, 100), [0..1, 1..2, 2..3, 3..4, 4..5]);
    assert_eq!(batches(&Buffer::new(0), 100), Vec::<Range<usize>>::new());
}

#[test]
fn the_error_record_is_awss_json_line() {
    let mut out = Vec::new();
    let failure = Failure::function_error();
    error_line(
        &mut out,
        &ErrorRecord {
            attempts: 4,
            arrival_ms: 1_764_987_907_000,
            failure: &failure,
            ended_ms: 1_764_987_968_000,
            raw: b"{\"a\":1}",
            lambda_arn: Some("arn:aws:lambda:us-east-1:000000000000:function:f"),
        },
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("}\n"));
    assert_eq!(
        text,
        "{\"attemptsMade\":4,\"arrivalTimestamp\":1764987907000,\"errorCode\":\"Lambda.FunctionError\",\
         \"errorMessage\":\"The Lambda function was successfully invoked but it returned an error result.\",\
         \"attemptEndingTimestamp\":1764987968000,\"rawData\":\"eyJhIjoxfQ==\",\
         \"lambdaArn\":\"arn:aws:lambda:us-east-1:000000000000:function:f\"}\n"
    );
    // Round trip: the line is JSON whose rawData decodes to the record.
    let parsed: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
    let raw = base64_simd::STANDARD
        .decode_to_vec(parsed["rawData"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, b"{\"a\":1}");
}

#[test]
fn a_batch_whose_task_died_fails_its_records_rather_than_losing_them() {
    let ok = |records: Range<usize>| BatchResult {
        records,
        attempts: 1,
        ended_ms: 5,
        answer: Ok(Answer::default()),
    };
    let out = with_lost_batches(&[0..2, 2..3, 3..5], vec![ok(0..2), ok(3..5)]);
    let ranges: Vec<_> = out.iter().map(|r| r.records.clone()).collect();
    assert_eq!(ranges, [0..2, 2..3, 3..5]);
    assert!(out[1].answer.is_err());
    assert!(out[0].answer.is_ok() && out[2].answer.is_ok());
}

#[test]
fn functions_riffle_cannot_invoke_fail_with_firehoses_documented_codes() {
    let missing = Failure::registry(&LambdaError::NotFound {
        name: "gone".to_owned(),
    });
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (
            "Lambda.ResourceNotFound",
            "The specified Lambda function does not exist. Use a different function that does exist."
        )
    );
    let invalid = Failure::registry(&LambdaError::InvalidName {
        given: "arn:aws:lambda:::".to_owned(),
        reason: "no name",
    });
    assert_eq!(
        (invalid.code, invalid.message.as_str()),
        (
            "Lambda.InvokeAccessDenied",
            "Access was denied. Ensure that the access policy allows access to the Lambda function."
        )
    );
}
