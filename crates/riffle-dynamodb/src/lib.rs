//! `riffle-dynamodb`: the subset of Amazon DynamoDB that the Kinesis Client
//! Library keeps its leases and checkpoints in, so a KCL application needs
//! nothing but Riffle. Not a database: tables with a hash (and optional
//! range) key, secondary indexes queried by scanning the table, items in
//! memory (a sorted map per table) written through to the metadata store.
//!
//! Served (JSON 1.0, `DynamoDB_20120810`): CreateTable, DescribeTable,
//! UpdateTable (billing, deletion protection, adding and deleting global
//! secondary indexes), DeleteTable, ListTables, GetItem, PutItem,
//! UpdateItem, DeleteItem, Query, Scan, BatchGetItem, BatchWriteItem,
//! TransactWriteItems, UpdateTimeToLive, DescribeTimeToLive, TagResource,
//! UntagResource, ListTagsOfResource; both the expression parameters and
//! the legacy ones (`Expected`, `AttributeUpdates`, `KeyConditions`,
//! `ScanFilter`, `QueryFilter`, `AttributesToGet`).
//!
//! Modules: `number` (DynamoDB's decimal), `value` (AttributeValues),
//! `expr` (the expression languages), `legacy` (the pre-expression
//! parameters), `table` (definitions, keys), `store` (on-disk layout, group
//! commit), `journal` (the write-ahead journal that makes a group durable), `tables` and `items` and `reads` (the operations).

mod errors;
mod expr;
mod items;
mod journal;
mod legacy;
mod number;
mod reads;
mod request;
mod store;
mod table;
mod tables;
mod value;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::RwLock;
use riffle_log::LogStore;

pub use errors::DynamoError;
pub use number::Number;

use store::{Committer, Table, TableState};

/// The operations served, sorted (the edge answers any other
/// `UnknownOperationException`).
pub const OPERATIONS: &[&str] = &[
    "BatchGetItem",
    "BatchWriteItem",
    "CreateTable",
    "DeleteItem",
    "DeleteTable",
    "DescribeTable",
    "DescribeTimeToLive",
    "GetItem",
    "ListTables",
    "ListTagsOfResource",
    "PutItem",
    "Query",
    "Scan",
    "TagResource",
    "TransactWriteItems",
    "UntagResource",
    "UpdateItem",
    "UpdateTable",
    "UpdateTimeToLive",
];

/// Where the service runs, for ARNs.
#[derive(Debug, Clone)]
pub struct DynamoConfig {
    pub region: String,
    pub account_id: String,
}

impl Default for DynamoConfig {
    fn default() -> DynamoConfig {
        DynamoConfig {
            region: "us-east-1".to_owned(),
            account_id: "000000000000".to_owned(),
        }
    }
}

/// The DynamoDB subset: its tables in memory, written through the store.
pub struct DynamoDb {
    config: DynamoConfig,
    tables: RwLock<BTreeMap<String, Arc<Table>>>,
    committer: Committer,
}

impl DynamoDb {
    /// Loads every table and item from the store.
    pub fn open(store: Arc<LogStore>, config: DynamoConfig) -> Result<Arc<DynamoDb>, DynamoError> {
        // The committer replays its journal into the store first.
        let committer = Committer::start(Arc::clone(&store))?;
        let loaded = store::load(&store)?;
        let tables = loaded
            .into_iter()
            .map(|t: TableState| (t.def.name.clone(), Arc::new(Table::new(t))))
            .collect();
        Ok(Arc::new(DynamoDb {
            config,
            tables: RwLock::new(tables),
            committer,
        }))
    }

    /// Runs one operation of [`OPERATIONS`] on a JSON request body.
    pub async fn handle(&self, action: &str, body: &[u8]) -> Result<Bytes, DynamoError> {
        let request = request::parse(body)?;
        let answer = match action {
            "CreateTable" => self.create_table(&request).await?,
            "DescribeTable" => self.describe_table(&request)?,
            "UpdateTable" => self.update_table(&request).await?,
            "DeleteTable" => self.delete_table(&request).await?,
            "ListTables" => self.list_tables(&request)?,
            "UpdateTimeToLive" => self.update_ttl(&request).await?,
            "DescribeTimeToLive" => self.describe_ttl(&request)?,
            "TagResource" => self.tag_resource(&request).await?,
            "UntagResource" => self.untag_resource(&request).await?,
            "ListTagsOfResource" => self.list_tags(&request)?,
            "GetItem" => self.get_item(&request).await?,
            "PutItem" => self.put_item(&request).await?,
            "UpdateItem" => self.update_item(&request).await?,
            "DeleteItem" => self.delete_item(&request).await?,
            "BatchGetItem" => self.batch_get_item(&request).await?,
            "BatchWriteItem" => self.batch_write_item(&request).await?,
            "TransactWriteItems" => self.transact_write_items(&request).await?,
            "Query" => self.query(&request).await?,
            "Scan" => self.scan(&request).await?,
            other => {
                return Err(DynamoError::validation(format!(
                    "Riffle's DynamoDB subset does not serve {other}"
                )));
            }
        };
        // JSON values always serialize.
        Ok(Bytes::from(
            serde_json::to_vec(&answer).expect("JSON serializes"),
        ))
    }

    /// The table named, or DynamoDB's ResourceNotFoundException.
    fn table(&self, name: &str) -> Result<Arc<Table>, DynamoError> {
        self.tables
            .read()
            .get(name)
            .cloned()
            .ok_or_else(DynamoError::not_found)
    }

    /// How many tables there are (for metrics and tests).
    pub fn table_count(&self) -> usize {
        self.tables.read().len()
    }
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value as Json, json};

    async fn call(db: &DynamoDb, action: &str, body: Json) -> Result<Json, DynamoError> {
        let answer = db.handle(action, body.to_string().as_bytes()).await?;
        Ok(serde_json::from_slice(&answer).expect("answers are JSON"))
    }

    fn open(dir: &std::path::Path) -> Arc<DynamoDb> {
        let store = Arc::new(LogStore::open(dir, Default::default()).expect("a store"));
        DynamoDb::open(store, DynamoConfig::default()).expect("the tables load")
    }

    const CREATE: &str = r#"{"TableName":"leases","BillingMode":"PAY_PER_REQUEST",
        "KeySchema":[{"AttributeName":"k","KeyType":"HASH"}],
        "AttributeDefinitions":[{"AttributeName":"k","AttributeType":"S"}]}"#;

    #[tokio::test]
    async fn items_are_found_after_a_reopen_and_a_recreated_table_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let create: Json = serde_json::from_str(CREATE).unwrap();
        {
            let db = open(dir.path());
            call(&db, "CreateTable", create.clone()).await.unwrap();
            let item = json!({"TableName": "leases", "Item": {"k": {"S": "a"}, "n": {"N": "1"}}});
            call(&db, "PutItem", item).await.unwrap();
        }
        let db = open(dir.path());
        let got = call(
            &db,
            "GetItem",
            json!({"TableName": "leases", "Key": {"k": {"S": "a"}}}),
        )
        .await
        .unwrap();
        assert_eq!(got["Item"]["n"], json!({"N": "1"}));
        call(&db, "DeleteTable", json!({"TableName": "leases"}))
            .await
            .unwrap();
        call(&db, "CreateTable", create).await.unwrap();
        drop(db);
        let db = open(dir.path());
        let scan = call(&db, "Scan", json!({"TableName": "leases"}))
            .await
            .unwrap();
        assert_eq!(scan["Count"], json!(0));
    }

    #[tokio::test]
    async fn concurrent_conditional_increments_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        call(&db, "CreateTable", serde_json::from_str(CREATE).unwrap())
            .await
            .unwrap();
        let item = json!({"TableName": "leases", "Item": {"k": {"S": "hot"}, "c": {"N": "0"}}});
        call(&db, "PutItem", item).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let db = Arc::clone(&db);
            tasks.push(tokio::spawn(async move {
                let mut done = 0;
                while done < 20 {
                    let key = json!({"TableName": "leases", "Key": {"k": {"S": "hot"}}});
                    let seen = call(&db, "GetItem", key).await.unwrap()["Item"]["c"]["N"].clone();
                    let renew = json!({
                        "TableName": "leases", "Key": {"k": {"S": "hot"}},
                        "UpdateExpression": "SET c = c + :one", "ConditionExpression": "c = :seen",
                        "ExpressionAttributeValues": {":one": {"N": "1"}, ":seen": {"N": seen}},
                    });
                    match call(&db, "UpdateItem", renew).await {
                        Ok(_) => done += 1,
                        Err(DynamoError::ConditionalCheckFailed { .. }) => {}
                        Err(other) => panic!("{other}"),
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let key = json!({"TableName": "leases", "Key": {"k": {"S": "hot"}}});
        let got = call(&db, "GetItem", key).await.unwrap();
        assert_eq!(got["Item"]["c"], json!({"N": "160"}));
    }
}
