//! The catalog's operations on a real metadata store.

use super::*;

fn open(dir: &std::path::Path) -> Arc<Glue> {
    let store = Arc::new(LogStore::open(dir, Default::default()).expect("a store"));
    Glue::open(store, GlueConfig::default())
}

async fn call(glue: &Glue, action: &str, body: Json) -> Result<Json, GlueError> {
    let answer = glue.handle(action, body.to_string().as_bytes()).await?;
    Ok(serde_json::from_slice(&answer).expect("answers are JSON"))
}

fn table_input(name: &str) -> Json {
    json!({"Name": name, "StorageDescriptor": {"Columns": [
        {"Name": "id", "Type": "bigint"},
        {"Name": "tags", "Type": "map<string,string>"},
    ]}})
}

#[tokio::test]
async fn tables_survive_a_reopen_with_lowercased_names() {
    let dir = tempfile::tempdir().unwrap();
    {
        let glue = open(dir.path());
        call(
            &glue,
            "CreateDatabase",
            json!({"DatabaseInput": {"Name": "Sales"}}),
        )
        .await
        .unwrap();
        call(
            &glue,
            "CreateTable",
            json!({"DatabaseName": "sales", "TableInput": table_input("Orders")}),
        )
        .await
        .unwrap();
    }
    let glue = open(dir.path());
    let got = call(
        &glue,
        "GetTable",
        json!({"DatabaseName": "SALES", "Name": "orders"}),
    )
    .await
    .unwrap();
    let table = &got["Table"];
    assert_eq!(table["Name"], "orders");
    assert_eq!(table["DatabaseName"], "sales");
    assert_eq!(table["CatalogId"], "000000000000");
    assert_eq!(table["VersionId"], "0");
    assert_eq!(
        table["StorageDescriptor"]["Columns"][1]["Type"],
        "map<string,string>"
    );
    let store = Arc::clone(&glue.store);
    let found = lookup_table(&store, "000000000000", "Sales", "ORDERS").unwrap();
    assert_eq!(found.as_ref(), Some(table));
}

#[tokio::test]
async fn missing_and_duplicate_entities_get_awss_errors() {
    let dir = tempfile::tempdir().unwrap();
    let glue = open(dir.path());
    let err = call(&glue, "GetDatabase", json!({"Name": "nope"}))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            "EntityNotFoundException",
            "Database nope not found.".to_owned()
        )
    );
    let err = call(
        &glue,
        "CreateTable",
        json!({"DatabaseName": "nope", "TableInput": table_input("t")}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "EntityNotFoundException");
    call(
        &glue,
        "CreateDatabase",
        json!({"DatabaseInput": {"Name": "db"}}),
    )
    .await
    .unwrap();
    let err = call(
        &glue,
        "CreateDatabase",
        json!({"DatabaseInput": {"Name": "DB"}}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        (
            "AlreadyExistsException",
            "Database already exists.".to_owned()
        )
    );
    call(
        &glue,
        "CreateTable",
        json!({"DatabaseName": "db", "TableInput": table_input("t")}),
    )
    .await
    .unwrap();
    let err = call(
        &glue,
        "CreateTable",
        json!({"DatabaseName": "db", "TableInput": table_input("t")}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "AlreadyExistsException");
    let err = call(
        &glue,
        "GetTable",
        json!({"DatabaseName": "db", "Name": "u"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err.code(), err.message()),
        ("EntityNotFoundException", "Table u not found.".to_owned())
    );
    let err = call(&glue, "GetTable", json!({"DatabaseName": "db"}))
        .await
        .unwrap_err();
    assert_eq!(
        err.message(),
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
    );
}

#[tokio::test]
async fn an_update_replaces_the_definition_and_counts_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let glue = open(dir.path());
    call(
        &glue,
        "CreateDatabase",
        json!({"DatabaseInput": {"Name": "db"}}),
    )
    .await
    .unwrap();
    call(
        &glue,
        "CreateTable",
        json!({"DatabaseName": "db", "TableInput": table_input("t")}),
    )
    .await
    .unwrap();
    let before = call(
        &glue,
        "GetTable",
        json!({"DatabaseName": "db", "Name": "t"}),
    )
    .await
    .unwrap();
    let update =
        json!({"Name": "t", "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "int"}]}});
    call(
        &glue,
        "UpdateTable",
        json!({"DatabaseName": "db", "TableInput": update}),
    )
    .await
    .unwrap();
    let after = call(
        &glue,
        "GetTable",
        json!({"DatabaseName": "db", "Name": "t"}),
    )
    .await
    .unwrap();
    assert_eq!(after["Table"]["VersionId"], "1");
    assert_eq!(after["Table"]["CreateTime"], before["Table"]["CreateTime"]);
    assert_eq!(
        after["Table"]["StorageDescriptor"]["Columns"],
        json!([{"Name": "id", "Type": "int"}])
    );
}

#[tokio::test]
async fn listings_page_filter_and_a_deleted_database_takes_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let glue = open(dir.path());
    call(
        &glue,
        "CreateDatabase",
        json!({"DatabaseInput": {"Name": "db"}}),
    )
    .await
    .unwrap();
    for name in ["a1", "a2", "b1"] {
        call(
            &glue,
            "CreateTable",
            json!({"DatabaseName": "db", "TableInput": table_input(name)}),
        )
        .await
        .unwrap();
    }
    let page = call(
        &glue,
        "GetTables",
        json!({"DatabaseName": "db", "MaxResults": 2}),
    )
    .await
    .unwrap();
    assert_eq!(page["TableList"].as_array().unwrap().len(), 2);
    let token = page["NextToken"].as_str().unwrap().to_owned();
    let rest = call(
        &glue,
        "GetTables",
        json!({"DatabaseName": "db", "NextToken": token}),
    )
    .await
    .unwrap();
    assert_eq!(rest["TableList"][0]["Name"], "b1");
    assert!(rest.get("NextToken").is_none());
    let matched = call(
        &glue,
        "GetTables",
        json!({"DatabaseName": "db", "Expression": "a*|B1"}),
    )
    .await
    .unwrap();
    assert_eq!(matched["TableList"].as_array().unwrap().len(), 3);
    let matched = call(
        &glue,
        "GetTables",
        json!({"DatabaseName": "db", "Expression": "*2"}),
    )
    .await
    .unwrap();
    assert_eq!(matched["TableList"][0]["Name"], "a2");
    call(
        &glue,
        "DeleteTable",
        json!({"DatabaseName": "db", "Name": "a1"}),
    )
    .await
    .unwrap();
    call(&glue, "DeleteDatabase", json!({"Name": "db"}))
        .await
        .unwrap();
    call(
        &glue,
        "CreateDatabase",
        json!({"DatabaseInput": {"Name": "db"}}),
    )
    .await
    .unwrap();
    let none = call(&glue, "GetTables", json!({"DatabaseName": "db"}))
        .await
        .unwrap();
    assert_eq!(none["TableList"], json!([]));
    let dbs = call(&glue, "GetDatabases", json!({})).await.unwrap();
    assert_eq!(dbs["DatabaseList"][0]["Name"], "db");
}
