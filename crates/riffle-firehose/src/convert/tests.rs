//! The converter as a pure function: records in, a Parquet file read back
//! by the reference reader, failed records out.

use super::*;
use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Int64Type, TimestampMicrosecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn schema(columns: &[(&str, &str)]) -> TableSchema {
    let columns: Vec<Value> = columns
        .iter()
        .map(|(n, t)| json!({"Name": n, "Type": t}))
        .collect();
    TableSchema::from_table(&json!({"StorageDescriptor": {"Columns": columns}})).unwrap()
}

fn openx() -> Reader {
    Reader::new(&Deserializer::OpenX {
        case_insensitive: true,
        dots_to_underscores: false,
        mappings: Vec::new(),
    })
}

fn settings() -> Output {
    Output::Parquet(config::ParquetSettings {
        page_size: config::PAGE_SIZE_DEFAULT,
        compression: "SNAPPY".to_owned(),
        dictionary: false,
        writer_v2: false,
    })
}

fn records(lines: &[&'static str]) -> Vec<InRecord<'static>> {
    lines
        .iter()
        .map(|l| InRecord {
            data: l.as_bytes(),
            arrival_ms: 1,
        })
        .collect()
}

fn read_back(body: Vec<u8>) -> RecordBatch {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(body))
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    arrow_select_concat(&batches)
}

fn arrow_select_concat(batches: &[RecordBatch]) -> RecordBatch {
    assert_eq!(batches.len(), 1, "one batch in these small files");
    batches[0].clone()
}

#[test]
fn records_that_fit_are_written_and_the_others_fail_with_the_reason() {
    let schema = schema(&[
        ("id", "bigint"),
        ("price", "decimal(10,2)"),
        ("at", "timestamp"),
        ("tags", "array<string>"),
    ]);
    let input = records(&[
        r#"{"ID": 1, "price": "12.34", "at": "2018-02-07T19:58:48Z", "tags": ["a", null]}"#,
        r#"not json"#,
        r#"{"id": "x"}"#,
        r#"{"id": 3, "price": null}"#,
        r#"[1, 2]"#,
        " \n",
        "42",
    ]);
    let out = convert(&input, &schema, &openx(), &settings()).unwrap();
    let failed: Vec<(usize, &str)> = out.failed.iter().map(|f| (f.index, f.code)).collect();
    assert_eq!(
        failed,
        [
            (1, PARSE_ERROR),
            (2, MALFORMED_DATA),
            (4, MALFORMED_DATA),
            (5, MALFORMED_DATA),
            (6, MALFORMED_DATA)
        ]
    );
    assert!(
        out.failed[0]
            .message
            .starts_with("Encountered malformed JSON. ")
    );
    assert_eq!(
        out.failed[1].message,
        "Data does not match the schema. Cannot convert \"x\" to bigint for column id."
    );
    assert_eq!(out.failed[3].message, EMPTY_MESSAGE);
    assert_eq!(
        out.failed[4].message,
        "The input JSON contained a primitive at the top level. The top level must be an object or array."
    );
    let batch = read_back(out.body.unwrap());
    assert_eq!(batch.num_rows(), 2);
    let ids = batch.column(0).as_primitive::<Int64Type>();
    assert_eq!((ids.value(0), ids.value(1)), (1, 3));
    let prices = batch.column(1).as_primitive::<Decimal128Type>();
    assert_eq!(prices.value(0), 1234);
    assert!(prices.is_null(1));
    let at = batch.column(2).as_primitive::<TimestampMicrosecondType>();
    assert_eq!(at.value(0), 1_518_033_528_000_000);
    let tags = batch.column(3).as_list::<i32>();
    assert_eq!(tags.value(0).len(), 2);
    assert!(tags.is_null(1));
}

#[test]
fn maps_and_structs_nest_and_keys_follow_the_serde() {
    let schema = schema(&[
        ("user_name", "string"),
        ("m", "map<string,int>"),
        ("s", "struct<a:int,b:array<struct<c:string>>>"),
        ("renamed", "string"),
    ]);
    let reader = Reader::new(&Deserializer::OpenX {
        case_insensitive: true,
        dots_to_underscores: true,
        mappings: vec![("renamed".to_owned(), "Original Key".to_owned())],
    });
    let input = records(&[
        r#"{"User.Name": "ann", "m": {"x": 1, "y": 2}, "s": {"A": 7, "b": [{"C": "deep"}]}, "Original Key": "v"}"#,
    ]);
    let out = convert(&input, &schema, &reader, &settings()).unwrap();
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    let batch = read_back(out.body.unwrap());
    assert_eq!(batch.column(0).as_string::<i32>().value(0), "ann");
    let m = batch.column(1).as_map();
    assert_eq!(m.value(0).len(), 2);
    let s = batch.column(2).as_struct();
    assert_eq!(
        s.column(0)
            .as_primitive::<arrow_array::types::Int32Type>()
            .value(0),
        7
    );
    let b = s.column(1).as_list::<i32>().value(0);
    assert_eq!(b.as_struct().column(0).as_string::<i32>().value(0), "deep");
    assert_eq!(batch.column(3).as_string::<i32>().value(0), "v");
}

#[test]
fn no_record_that_fits_makes_no_file() {
    let out = convert(
        &records(&["nope"]),
        &schema(&[("a", "int")]),
        &openx(),
        &settings(),
    )
    .unwrap();
    assert!(out.body.is_none());
    assert_eq!(out.failed.len(), 1);
}

#[test]
fn a_table_whose_types_do_not_parse_is_refused_with_the_column() {
    let table =
        json!({"StorageDescriptor": {"Columns": [{"Name": "u", "Type": "uniontype<int>"}]}});
    let err = TableSchema::from_table(&table).unwrap_err();
    assert!(err.starts_with("Column u: "), "{err}");
}

#[test]
fn failed_lines_carry_awss_fields() {
    let records = records(&["oops"]);
    let failed = vec![(records[0], MALFORMED_DATA, "bad".to_owned())];
    let lines = failed_lines(&failed, &json!({"tableName": "t"}), 5);
    let line: Value = serde_json::from_slice(&lines).unwrap();
    assert_eq!(
        line,
        json!({"attemptsMade": 1, "arrivalTimestamp": 1, "lastErrorCode": MALFORMED_DATA, "lastErrorMessage": "bad",
               "attemptEndingTimestamp": 5, "rawData": "b29wcw==", "dataCatalogTable": {"tableName": "t"}})
    );
}

#[test]
fn records_whose_keys_all_differ_still_find_their_columns_past_the_key_index() {
    let lines: Vec<String> = (0..KEY_INDEX_MAX + 100)
        .map(|i| format!(r#"{{"unique-{i}": true, "ID": {i}}}"#))
        .collect();
    let input: Vec<InRecord<'_>> = lines
        .iter()
        .map(|l| InRecord {
            data: l.as_bytes(),
            arrival_ms: 1,
        })
        .collect();
    let out = convert(&input, &schema(&[("id", "bigint")]), &openx(), &settings()).unwrap();
    assert!(out.failed.is_empty());
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out.body.unwrap()))
        .unwrap()
        .build()
        .unwrap();
    let ids: Vec<i64> = reader
        .map(Result::unwrap)
        .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
        .collect();
    assert_eq!(ids, (0..(KEY_INDEX_MAX + 100) as i64).collect::<Vec<_>>());
}
