//! The lease table's operations, each the conditional write the Java KCL
//! makes, so Rust and Java workers can share one table.
//!
//! Every change of ownership is conditional: taking expects the counter the
//! taker last saw (someone else's renewal in between makes it fail), and
//! renewal, checkpoints and release expect `leaseOwner` to still be this
//! worker (a thief's take makes them fail, and the lease is lost), and no
//! `checkpointOwner` beside it: with one, the lease is in a KCL 3.x graceful
//! hand-over, and only the `checkpointOwner` (the old owner, finishing) may
//! renew and checkpoint it until it hands the lease over.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType, TableStatus,
};

use crate::KclError;
use crate::lease::*;

/// How long `ensure` waits for a new table to become ACTIVE (AWS takes
/// seconds to a minute; Riffle is immediate).
const TABLE_ACTIVE_TIME_MAX: Duration = Duration::from_secs(120);

/// What a renewal found.
#[derive(Debug, PartialEq, Eq)]
pub enum Renewal {
    /// Still this worker's; the counter after the renewal.
    Renewed(i64),
    /// A KCL 3.x leader moved the lease to `to` gracefully: this worker
    /// finishes (the processor checkpoints), then hands it over.
    HandOff { to: String },
    /// Another worker owns it now.
    Lost,
}

/// The outcome of a conditional write.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The condition failed: another worker changed the lease first.
    Lost,
}

/// One application's lease table (named after the application, as KCL
/// names it).
#[derive(Debug, Clone)]
pub struct LeaseTable {
    client: Client,
    name: String,
}

impl LeaseTable {
    pub fn new(client: Client, name: &str) -> LeaseTable {
        LeaseTable {
            client,
            name: name.to_owned(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Creates the table (on-demand, hash key `leaseKey`) unless it exists,
    /// and waits until it is ACTIVE.
    pub async fn ensure(&self) -> Result<(), KclError> {
        let created = self
            .client
            .create_table()
            .table_name(&self.name)
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(LEASE_KEY)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(ddb)?,
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(LEASE_KEY)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(ddb)?,
            )
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        if let Err(error) = created
            && error.code() != Some("ResourceInUseException")
        {
            return Err(ddb(error));
        }
        self.wait_active().await
    }

    async fn wait_active(&self) -> Result<(), KclError> {
        let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIME_MAX;
        loop {
            let described = self
                .client
                .describe_table()
                .table_name(&self.name)
                .send()
                .await;
            let status = described.map_err(ddb)?.table.and_then(|t| t.table_status);
            if status == Some(TableStatus::Active) {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(KclError::DynamoDb(format!(
                    "table {} never became ACTIVE",
                    self.name
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Every lease, read with consistent Scans page by page.
    pub async fn list(&self) -> Result<Vec<Lease>, KclError> {
        let mut leases = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.name)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(ddb)?;
            for item in page.items() {
                leases.push(Lease::from_item(item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(leases),
            }
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Lease>, KclError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb)?;
        got.item.as_ref().map(Lease::from_item).transpose()
    }

    /// Creates a lease unless one exists for the shard (KCL's
    /// `createLeaseIfNotExists`).
    pub async fn create(&self, lease: &Lease) -> Result<Outcome, KclError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(lease.to_item()))
            .condition_expression("attribute_not_exists(#k)")
            .expression_attribute_names("#k", LEASE_KEY)
            .send()
            .await;
        outcome(put.map(|_| ()))
    }

    /// Takes a free, expired or stolen lease: expects the counter seen
    /// when it was judged, bumps it, and counts an owner switch.
    pub async fn take(&self, lease: &Lease, me: &str) -> Result<Option<i64>, KclError> {
        let switched = lease.owner.as_deref() != Some(me);
        let updated = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(&lease.key))
            .condition_expression("#c = :seen")
            .update_expression("SET #o = :me ADD #c :one, #sw :switch REMOVE #co")
            .expression_attribute_names("#c", LEASE_COUNTER)
            .expression_attribute_names("#o", LEASE_OWNER)
            .expression_attribute_names("#sw", OWNER_SWITCHES)
            .expression_attribute_names("#co", CHECKPOINT_OWNER)
            .expression_attribute_values(":seen", n(lease.counter))
            .expression_attribute_values(":me", s(me))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":switch", n(i64::from(switched)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        counter_after(updated)
    }

    /// The heartbeat: bumps the counter while this worker owns the lease,
    /// or still finishes it in a KCL 3.x graceful hand-over (it is the
    /// `checkpointOwner` then, as Java's renewer keeps renewing it).
    /// `throughput_kbps`, the lease's recent read rate, is written as Java's
    /// renewer writes it, for a KCL 3.x leader to balance by.
    pub async fn renew(
        &self,
        key: &str,
        me: &str,
        throughput_kbps: Option<f64>,
    ) -> Result<Renewal, KclError> {
        let request = self
            .owned_update(key, me)
            .expression_attribute_names("#c", LEASE_COUNTER)
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew);
        let request = match throughput_kbps {
            Some(kbps) => request
                .update_expression("SET #t = :t ADD #c :one")
                .expression_attribute_names("#t", THROUGHPUT_KBPS)
                .expression_attribute_values(":t", AttributeValue::N(kbps.to_string())),
            None => request.update_expression("ADD #c :one"),
        };
        let updated = request.send().await;
        match updated {
            Ok(output) => {
                let lease = Lease::from_item(&output.attributes.unwrap_or_default())?;
                Ok(match lease.checkpoint_owner.as_deref() {
                    Some(owner) if owner == me && lease.owner.as_deref() != Some(me) => {
                        Renewal::HandOff {
                            to: lease.owner.unwrap_or_default(),
                        }
                    }
                    _ => Renewal::Renewed(lease.counter),
                })
            }
            Err(error) if is_condition_failure(&error) => Ok(Renewal::Lost),
            Err(error) => Err(ddb(error)),
        }
    }

    /// Gives a lease up: the owner is removed so any worker may take it at
    /// once (KCL's `evictLease`); in a graceful hand-over this worker is
    /// finishing, only `checkpointOwner` is removed, and the new owner
    /// starts from the checkpoint just written (Java's `evictLease` with a
    /// checkpoint owner).
    pub async fn release(&self, key: &str, me: &str) -> Result<Outcome, KclError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .condition_expression("#o = :me AND attribute_not_exists(#co)")
            .update_expression("REMOVE #o ADD #c :one")
            .expression_attribute_names("#o", LEASE_OWNER)
            .expression_attribute_names("#co", CHECKPOINT_OWNER)
            .expression_attribute_names("#c", LEASE_COUNTER)
            .expression_attribute_values(":me", s(me))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        match outcome(updated.map(|_| ()))? {
            Outcome::Done => Ok(Outcome::Done),
            Outcome::Lost => self.hand_over(key, me).await,
        }
    }

    /// Ends this worker's part in a graceful hand-over: removes it as
    /// `checkpointOwner`, so the new `leaseOwner` may start.
    pub async fn hand_over(&self, key: &str, me: &str) -> Result<Outcome, KclError> {
        let updated = self
            .client
            .update_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .condition_expression("#co = :me")
            .update_expression("REMOVE #co ADD #c :one")
            .expression_attribute_names("#co", CHECKPOINT_OWNER)
            .expression_attribute_names("#c", LEASE_COUNTER)
            .expression_attribute_values(":me", s(me))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        outcome(updated.map(|_| ()))
    }

    /// Records a checkpoint and clears any prepared one.
    pub async fn checkpoint(
        &self,
        key: &str,
        me: &str,
        at: &Checkpoint,
    ) -> Result<Outcome, KclError> {
        let updated = self
            .owned_update(key, me)
            .update_expression(
                "SET #cp = :cp, #cps = :cps, #sw = :zero ADD #c :one REMOVE #p, #ps, #pst",
            )
            .expression_attribute_names("#cp", CHECKPOINT)
            .expression_attribute_names("#cps", CHECKPOINT_SUB)
            .expression_attribute_names("#sw", OWNER_SWITCHES)
            .expression_attribute_names("#c", LEASE_COUNTER)
            .expression_attribute_names("#p", PENDING_CHECKPOINT)
            .expression_attribute_names("#ps", PENDING_CHECKPOINT_SUB)
            .expression_attribute_names("#pst", PENDING_CHECKPOINT_STATE)
            .expression_attribute_values(":cp", s(at.as_attribute()))
            .expression_attribute_values(":cps", n(at.sub_sequence()))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        outcome(updated.map(|_| ()))
    }

    /// Records a prepared (two-phase) checkpoint beside the current one.
    pub async fn prepare(&self, key: &str, me: &str, at: &Checkpoint) -> Result<Outcome, KclError> {
        let updated = self
            .owned_update(key, me)
            .update_expression("SET #p = :p, #ps = :ps ADD #c :one")
            .expression_attribute_names("#p", PENDING_CHECKPOINT)
            .expression_attribute_names("#ps", PENDING_CHECKPOINT_SUB)
            .expression_attribute_names("#c", LEASE_COUNTER)
            .expression_attribute_values(":p", s(at.as_attribute()))
            .expression_attribute_values(":ps", n(at.sub_sequence()))
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        outcome(updated.map(|_| ()))
    }

    /// Names a finished shard's children on its lease, as KCL does at
    /// SHARD_END.
    pub async fn set_children(
        &self,
        key: &str,
        me: &str,
        children: &BTreeSet<String>,
    ) -> Result<Outcome, KclError> {
        if children.is_empty() {
            return Ok(Outcome::Done);
        }
        let updated = self
            .owned_update(key, me)
            .update_expression("SET #ch = :ch")
            .expression_attribute_names("#ch", CHILD_SHARD_IDS)
            .expression_attribute_values(":ch", ss(children))
            .send()
            .await;
        outcome(updated.map(|_| ()))
    }

    fn owned_update(
        &self,
        key: &str,
        me: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.name)
            .key(LEASE_KEY, s(key))
            .condition_expression("(#o = :me AND attribute_not_exists(#co)) OR #co = :me")
            .expression_attribute_names("#o", LEASE_OWNER)
            .expression_attribute_names("#co", CHECKPOINT_OWNER)
            .expression_attribute_values(":me", s(me))
    }
}

fn is_condition_failure<E: ProvideErrorMetadata>(error: &SdkError<E>) -> bool {
    error.code() == Some("ConditionalCheckFailedException")
}

fn outcome<E>(result: Result<(), SdkError<E>>) -> Result<Outcome, KclError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(()) => Ok(Outcome::Done),
        Err(error) if is_condition_failure(&error) => Ok(Outcome::Lost),
        Err(error) => Err(ddb(error)),
    }
}

fn counter_after<E>(
    result: Result<aws_sdk_dynamodb::operation::update_item::UpdateItemOutput, SdkError<E>>,
) -> Result<Option<i64>, KclError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result {
        Ok(output) => {
            let item = output.attributes.unwrap_or_default();
            Ok(Some(Lease::from_item(&item)?.counter))
        }
        Err(error) if is_condition_failure(&error) => Ok(None),
        Err(error) => Err(ddb(error)),
    }
}

pub(crate) fn ddb<E: std::error::Error + Send + Sync + 'static>(error: E) -> KclError {
    KclError::DynamoDb(aws_error_text(&error))
}

/// The error and its sources on one line: the SDK's top-level text alone
/// ("service error") says nothing.
pub(crate) fn aws_error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
