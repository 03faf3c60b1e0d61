//! The DynamoDB subset through the official AWS SDK for Rust
//! (aws-sdk-dynamodb) against `riffle serve`: a lease table made and
//! found ACTIVE, a lease taken with a condition and renewed by counter,
//! the SDK's typed ConditionalCheckFailedException and
//! ResourceNotFoundException from the JSON 1.0 errors, the leases found
//! again after a restart, every acknowledged renewal found again after a
//! SIGKILL in the middle of concurrent renewals (the journal's replay),
//! and Scan's pages as the SDK's paginator reads them.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use common::{Riffle, eventually, sdk_config};

const ACTIVE_TIME_MAX: Duration = Duration::from_secs(10);

fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config(endpoint))
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn key(lease: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([("leaseKey".to_owned(), s(lease))])
}

async fn create_lease_table(ddb: &aws_sdk_dynamodb::Client, name: &str) {
    ddb.create_table()
        .table_name(name)
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("leaseKey")
                .key_type(KeyType::Hash)
                .build()
                .expect("name and type are set"),
        )
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("leaseKey")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("name and type are set"),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("CreateTable");
    eventually(
        ACTIVE_TIME_MAX,
        "the lease table to become ACTIVE",
        || async {
            let table = ddb
                .describe_table()
                .table_name(name)
                .send()
                .await
                .ok()?
                .table?;
            (table.table_status == Some(TableStatus::Active)).then_some(())
        },
    )
    .await;
}

/// Renews `lease` if its counter is still `seen`, as KCL does.
async fn renew(
    ddb: &aws_sdk_dynamodb::Client,
    lease: &str,
    seen: u64,
) -> Result<HashMap<String, AttributeValue>, aws_sdk_dynamodb::Error> {
    let out = ddb
        .update_item()
        .table_name("leases")
        .set_key(Some(key(lease)))
        .update_expression("SET leaseCounter = leaseCounter + :one")
        .condition_expression("leaseCounter = :seen AND leaseOwner = :me")
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":seen", AttributeValue::N(seen.to_string()))
        .expression_attribute_values(":me", s("worker-1"))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
        .send()
        .await?;
    Ok(out.attributes.unwrap_or_default())
}

#[tokio::test]
async fn leases_are_taken_renewed_by_counter_and_kept_across_a_restart() {
    let data = tempfile::tempdir().expect("a data directory");
    let mut riffle = Riffle::start_in(data.path(), &[]);
    let ddb = client(&riffle.endpoint);
    create_lease_table(&ddb, "leases").await;

    ddb.put_item()
        .table_name("leases")
        .item("leaseKey", s("shardId-000000000000"))
        .item("leaseOwner", s("worker-1"))
        .item("leaseCounter", AttributeValue::N("0".into()))
        .condition_expression("attribute_not_exists(leaseKey)")
        .send()
        .await
        .expect("the lease is free");
    let taken = ddb
        .put_item()
        .table_name("leases")
        .item("leaseKey", s("shardId-000000000000"))
        .condition_expression("attribute_not_exists(leaseKey)")
        .send()
        .await
        .expect_err("the lease is taken");
    assert!(
        taken
            .as_service_error()
            .is_some_and(|e| e.is_conditional_check_failed_exception()),
        "{taken:?}"
    );
    assert_eq!(taken.message(), Some("The conditional request failed"));

    let renewed = renew(&ddb, "shardId-000000000000", 0)
        .await
        .expect("renewal");
    assert_eq!(renewed["leaseCounter"], AttributeValue::N("1".into()));
    let stale = renew(&ddb, "shardId-000000000000", 0)
        .await
        .expect_err("a stale counter");
    assert!(matches!(
        stale,
        aws_sdk_dynamodb::Error::ConditionalCheckFailedException(_)
    ));

    riffle.kill();
    let riffle = Riffle::start_in(data.path(), &[]);
    let ddb = client(&riffle.endpoint);
    let item = ddb
        .get_item()
        .table_name("leases")
        .set_key(Some(key("shardId-000000000000")))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
        .expect("the lease survived the kill");
    assert_eq!(item["leaseCounter"], AttributeValue::N("1".into()));

    let missing = ddb
        .get_item()
        .table_name("no-such-table")
        .set_key(Some(key("x")))
        .send()
        .await
        .expect_err("no such table");
    assert!(
        missing
            .as_service_error()
            .is_some_and(|e| e.is_resource_not_found_exception()),
        "{missing:?}"
    );
}

/// Leases renewed concurrently while the server is killed.
const KILLED_LEASES: usize = 8;
/// Renewals each lease has had acknowledged before the kill.
const RENEWALS_BEFORE_KILL: u64 = 40;
const RENEWALS_TIME_MAX: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_renewal_survives_a_kill_during_concurrent_renewals() {
    let data = tempfile::tempdir().expect("a data directory");
    let mut riffle = Riffle::start_in(data.path(), &[]);
    let ddb = client(&riffle.endpoint);
    create_lease_table(&ddb, "leases").await;
    let lease = |i: usize| format!("shardId-{i:012}");
    for i in 0..KILLED_LEASES {
        ddb.put_item()
            .table_name("leases")
            .item("leaseKey", s(&lease(i)))
            .item("leaseOwner", s("worker-1"))
            .item("leaseCounter", AttributeValue::N("0".into()))
            .send()
            .await
            .expect("PutItem");
    }
    // Each worker renews its lease until the server is gone, counting
    // what was acknowledged.
    let acked: Vec<Arc<AtomicU64>> = (0..KILLED_LEASES).map(|_| Arc::default()).collect();
    let workers: Vec<_> = (0..KILLED_LEASES)
        .map(|i| {
            let (ddb, acked, lease) = (ddb.clone(), Arc::clone(&acked[i]), lease(i));
            tokio::spawn(async move {
                let mut seen = 0;
                while renew(&ddb, &lease, seen).await.is_ok() {
                    seen += 1;
                    acked.store(seen, Ordering::SeqCst);
                }
            })
        })
        .collect();
    eventually(
        RENEWALS_TIME_MAX,
        "every worker to have renewals acknowledged",
        || {
            let done = acked
                .iter()
                .all(|a| a.load(Ordering::SeqCst) >= RENEWALS_BEFORE_KILL);
            async move { done.then_some(()) }
        },
    )
    .await;
    riffle.kill();
    for worker in workers {
        worker
            .await
            .expect("the worker ends once the server is gone");
    }

    let riffle = Riffle::start_in(data.path(), &[]);
    let ddb = client(&riffle.endpoint);
    for (i, acked) in acked.iter().enumerate() {
        let item = ddb
            .get_item()
            .table_name("leases")
            .set_key(Some(key(&lease(i))))
            .consistent_read(true)
            .send()
            .await
            .expect("GetItem")
            .item
            .expect("the lease survived the kill");
        let AttributeValue::N(counter) = &item["leaseCounter"] else {
            panic!("leaseCounter is a number: {item:?}");
        };
        let counter: u64 = counter.parse().expect("an integer counter");
        let acked = acked.load(Ordering::SeqCst);
        // The renewal in flight at the kill may have been made durable
        // without its answer getting out; none acknowledged may be lost.
        assert!(
            counter == acked || counter == acked + 1,
            "lease {i}: counter {counter} after {acked} acknowledged renewals"
        );
    }
}

#[tokio::test]
async fn the_sdks_scan_paginator_reads_every_lease_once() {
    let riffle = Riffle::start();
    let ddb = client(&riffle.endpoint);
    create_lease_table(&ddb, "leases").await;
    for i in 0..25 {
        ddb.put_item()
            .table_name("leases")
            .item("leaseKey", s(&format!("shardId-{i:012}")))
            .item("leaseCounter", AttributeValue::N(i.to_string()))
            .send()
            .await
            .expect("PutItem");
    }
    let pages: Vec<_> = ddb
        .scan()
        .table_name("leases")
        .limit(4)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("every page");
    let mut keys: Vec<String> = pages
        .iter()
        .map(|item| item["leaseKey"].as_s().expect("a string key").clone())
        .collect();
    keys.sort();
    let expected: Vec<String> = (0..25).map(|i| format!("shardId-{i:012}")).collect();
    assert_eq!(keys, expected);
}
