//! The table operations: CreateTable, DescribeTable, UpdateTable,
//! DeleteTable, ListTables, the TTL setting and tags.

use std::collections::BTreeMap;
use std::sync::Arc;

use riffle_coral::validate::Violations;
use riffle_log::MetaOp;
use serde_json::{Map, Value as Json, json};

use crate::errors::DynamoError;
use crate::request::{self, Request, check_name, string, table_name};
use crate::store::{self, Table, TableState};
use crate::table::{IndexDef, TABLE_VERSION, TableDef};
use crate::{DynamoDb, now_ms};

/// Global secondary indexes per table (Developer Guide, "Secondary
/// indexes" quotas: 20 per table by default).
pub const GSIS_MAX: usize = 20;
/// Local secondary indexes per table (5, ibid.).
pub const LSIS_MAX: usize = 5;
/// ListTables' page (the model's ListTablesInputLimit: 1 to 100).
const LIST_LIMIT_MAX: i64 = 100;
/// Tags per resource (DynamoDB's tagging quota: 50).
const TAGS_MAX: usize = 50;

fn table_not_found(name: &str) -> DynamoError {
    DynamoError::ResourceNotFound(format!(
        "Requested resource not found: Table: {name} not found"
    ))
}

/// A KeySchema: (hash, range).
fn key_schema(json: Option<&Json>, what: &str) -> Result<(String, Option<String>), DynamoError> {
    let elements = json.and_then(Json::as_array).cloned().unwrap_or_default();
    if elements.is_empty() || elements.len() > 2 {
        let mut v = Violations::new();
        let shown = format!("{}", elements.len());
        v.check(
            false,
            riffle_coral::validate::Shown::Text(&shown),
            what,
            if elements.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 2"
            },
        );
        v.into_result::<DynamoError>()?;
    }
    let part = |e: &Json| {
        (
            e.get("AttributeName")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned(),
            e.get("KeyType")
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let (hash, hash_type) = part(&elements[0]);
    if hash_type != "HASH" {
        return Err(DynamoError::validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ));
    }
    let range = match elements.get(1).map(part) {
        None => None,
        Some((name, kind)) => {
            if kind != "RANGE" {
                return Err(DynamoError::validation(
                    "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
                ));
            }
            if name == hash {
                return Err(DynamoError::invalid(
                    "Both the Hash Key and the Range Key element in the KeySchema have the same name",
                ));
            }
            Some(name)
        }
    };
    Ok((hash, range))
}

/// (ReadCapacityUnits, WriteCapacityUnits) for `billing`.
fn capacity(spec: Option<&Json>, billing: &str) -> Result<(i64, i64), DynamoError> {
    let units = |m: &str| spec.and_then(|s| s.get(m)).and_then(Json::as_i64);
    match (billing, spec) {
        ("PAY_PER_REQUEST", None) => Ok((0, 0)),
        ("PAY_PER_REQUEST", Some(_)) => Err(DynamoError::invalid(
            "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
        )),
        (_, _) => match (units("ReadCapacityUnits"), units("WriteCapacityUnits")) {
            (Some(r), Some(w)) if r >= 1 && w >= 1 => Ok((r, w)),
            (Some(_), Some(_)) => Err(DynamoError::validation(
                "1 validation error detected: Value '0' at 'provisionedThroughput.readCapacityUnits' failed to satisfy constraint: Member must have value greater than or equal to 1",
            )),
            _ => Err(DynamoError::invalid(
                "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
            )),
        },
    }
}

fn index_def(
    json: &Json,
    path: &str,
    billing: &str,
    created_ms: i64,
) -> Result<IndexDef, DynamoError> {
    let name = json.get("IndexName").and_then(Json::as_str);
    let mut v = Violations::new();
    check_name(&mut v, name, &format!("{path}.member.indexName"));
    v.into_result::<DynamoError>()?;
    let (hash, range) = key_schema(json.get("KeySchema"), &format!("{path}.member.keySchema"))?;
    let projection = json.get("Projection").cloned().unwrap_or(Json::Null);
    let kind = projection.get("ProjectionType").and_then(Json::as_str);
    if !matches!(kind, Some("ALL" | "KEYS_ONLY" | "INCLUDE")) {
        return Err(DynamoError::invalid("Unknown ProjectionType: null"));
    }
    let (rcu, wcu) = if path.starts_with("local") {
        (0, 0)
    } else {
        capacity(json.get("ProvisionedThroughput"), billing)?
    };
    Ok(IndexDef {
        name: name.unwrap_or_default().to_owned(),
        hash,
        range,
        projection,
        rcu,
        wcu,
        created_ms,
    })
}

fn attribute_definitions(req: &Request) -> Result<BTreeMap<String, String>, DynamoError> {
    let defs = req
        .get("AttributeDefinitions")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for def in &defs {
        let name = def
            .get("AttributeName")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let kind = def
            .get("AttributeType")
            .and_then(Json::as_str)
            .unwrap_or_default();
        if !matches!(kind, "S" | "N" | "B") {
            let mut v = Violations::new();
            v.one_of(
                Some(kind),
                "attributeDefinitions.member.attributeType",
                &["B", "N", "S"],
            );
            v.into_result::<DynamoError>()?;
        }
        if out.insert(name.to_owned(), kind.to_owned()).is_some() {
            return Err(DynamoError::invalid(format!(
                "Cannot have two attributes with the same name. Attribute name: {name}"
            )));
        }
    }
    Ok(out)
}

/// Every key attribute of the table and its indexes must be defined, and
/// every definition used.
fn check_definitions(def: &TableDef) -> Result<(), DynamoError> {
    let mut used: Vec<&str> = def.key_names();
    for index in def.gsis.iter().chain(&def.lsis) {
        used.push(&index.hash);
        used.extend(index.range.as_deref());
    }
    let missing: Vec<&str> = used
        .iter()
        .copied()
        .filter(|n| !def.attributes.contains_key(*n))
        .collect();
    if !missing.is_empty() {
        let defined: Vec<&str> = def.attributes.keys().map(String::as_str).collect();
        return Err(DynamoError::invalid(format!(
            "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
            missing.join(", "),
            defined.join(", ")
        )));
    }
    if def.attributes.keys().any(|a| !used.contains(&a.as_str())) {
        return Err(DynamoError::invalid(
            "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    Ok(())
}

fn check_indexes(def: &TableDef) -> Result<(), DynamoError> {
    if def.gsis.len() > GSIS_MAX {
        return Err(DynamoError::LimitExceeded(format!(
            "Subscriber limit exceeded: The number of global secondary indexes exceeds the limit of {GSIS_MAX}"
        )));
    }
    if def.lsis.len() > LSIS_MAX {
        return Err(DynamoError::invalid(
            "Number of LocalSecondaryIndexes exceeds per-table limit of 5",
        ));
    }
    let mut names: Vec<&str> = def
        .gsis
        .iter()
        .chain(&def.lsis)
        .map(|i| i.name.as_str())
        .collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(DynamoError::invalid(format!(
            "Duplicate index name: {}",
            w[0]
        )));
    }
    for lsi in &def.lsis {
        if lsi.hash != def.hash || def.range.is_none() {
            return Err(DynamoError::invalid(format!(
                "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex; or the index {} does not have the same hash key as the table",
                lsi.name
            )));
        }
    }
    Ok(())
}

impl DynamoDb {
    fn describe(&self, state: &TableState, status: &str) -> Json {
        self.describe_creating(state, status, &[])
    }

    fn describe_creating(&self, state: &TableState, status: &str, creating: &[&str]) -> Json {
        state.def.describe(
            status,
            &self.config.region,
            &self.config.account_id,
            state.items.len(),
            state.bytes,
            creating,
        )
    }

    pub(crate) async fn create_table(&self, req: &Request) -> Result<Json, DynamoError> {
        let name = table_name(req)?;
        let billing = string(req, "BillingMode")?
            .unwrap_or("PROVISIONED")
            .to_owned();
        if !matches!(billing.as_str(), "PROVISIONED" | "PAY_PER_REQUEST") {
            let mut v = Violations::new();
            v.one_of(
                Some(&billing),
                "billingMode",
                &["PROVISIONED", "PAY_PER_REQUEST"],
            );
            v.into_result::<DynamoError>()?;
        }
        let (hash, range) = key_schema(req.get("KeySchema"), "keySchema")?;
        let (rcu, wcu) = capacity(req.get("ProvisionedThroughput"), &billing)?;
        let created_ms = now_ms();
        let indexes = |member: &str, path: &str| -> Result<Vec<IndexDef>, DynamoError> {
            req.get(member)
                .and_then(Json::as_array)
                .map(|list| {
                    list.iter()
                        .map(|j| index_def(j, path, &billing, created_ms - 1))
                        .collect()
                })
                .unwrap_or(Ok(Vec::new()))
        };
        let def = TableDef {
            v: TABLE_VERSION,
            name: name.clone(),
            id: uuid::Uuid::new_v4().to_string(),
            incarnation: rand_incarnation(),
            created_ms,
            attributes: attribute_definitions(req)?,
            hash,
            range,
            billing: billing.clone(),
            rcu,
            wcu,
            gsis: indexes("GlobalSecondaryIndexes", "globalSecondaryIndexes")?,
            lsis: indexes("LocalSecondaryIndexes", "localSecondaryIndexes")?,
            deletion_protection: request::boolean(req, "DeletionProtectionEnabled")?
                .unwrap_or(false),
            ttl_attribute: None,
            tags: tags_of(req.get("Tags"))?,
        };
        check_definitions(&def)?;
        check_indexes(&def)?;
        let (description, pending) = {
            let mut tables = self.tables.write();
            if tables.contains_key(&name) {
                return Err(DynamoError::ResourceInUse(format!(
                    "Table already exists: {name}"
                )));
            }
            let pending = self.committer.submit(vec![store::put_table(&def)]);
            let state = TableState::new(def);
            let description = self.describe(&state, "CREATING");
            tables.insert(name, Arc::new(Table::new(state)));
            (description, pending)
        };
        pending.durable().await?;
        Ok(json!({ "TableDescription": description }))
    }

    pub(crate) fn describe_table(&self, req: &Request) -> Result<Json, DynamoError> {
        let name = table_name(req)?;
        let table = self.table(&name).map_err(|_| table_not_found(&name))?;
        let state = table.lock();
        Ok(json!({ "Table": self.describe(&state, "ACTIVE") }))
    }

    pub(crate) async fn update_table(&self, req: &Request) -> Result<Json, DynamoError> {
        let name = table_name(req)?;
        let table = self.table(&name).map_err(|_| table_not_found(&name))?;
        let new_attributes = attribute_definitions(req)?;
        let (description, pending) = {
            let mut state = table.lock();
            if state.deleted {
                return Err(table_not_found(&name));
            }
            let mut def = state.def.clone();
            if let Some(billing) = string(req, "BillingMode")? {
                def.billing = billing.to_owned();
                (def.rcu, def.wcu) = capacity(req.get("ProvisionedThroughput"), billing)?;
            } else if let Some(spec) = req.get("ProvisionedThroughput") {
                (def.rcu, def.wcu) = capacity(Some(spec), &def.billing)?;
            }
            if let Some(protect) = request::boolean(req, "DeletionProtectionEnabled")? {
                def.deletion_protection = protect;
            }
            for (k, t) in new_attributes {
                def.attributes.entry(k).or_insert(t);
            }
            let updates = req
                .get("GlobalSecondaryIndexUpdates")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            let now = now_ms();
            for update in &updates {
                self.index_update(&mut def, update, now)?;
            }
            // Definitions no key uses any more are dropped.
            let mut used: Vec<String> = def.key_names().iter().map(|s| s.to_string()).collect();
            for index in def.gsis.iter().chain(&def.lsis) {
                used.push(index.hash.clone());
                used.extend(index.range.clone());
            }
            def.attributes.retain(|k, _| used.contains(k));
            check_definitions(&def)?;
            check_indexes(&def)?;
            let pending = self.committer.submit(vec![store::put_table(&def)]);
            let created: Vec<String> = def
                .gsis
                .iter()
                .filter(|i| state.def.index(&i.name).is_none())
                .map(|i| i.name.clone())
                .collect();
            state.def = def;
            let created: Vec<&str> = created.iter().map(String::as_str).collect();
            (self.describe_creating(&state, "ACTIVE", &created), pending)
        };
        pending.durable().await?;
        Ok(json!({ "TableDescription": description }))
    }

    fn index_update(&self, def: &mut TableDef, update: &Json, now: i64) -> Result<(), DynamoError> {
        if let Some(create) = update.get("Create") {
            // CREATING in this answer; ACTIVE from the next call on.
            let index = index_def(create, "globalSecondaryIndexUpdates", &def.billing, now)?;
            if def.index(&index.name).is_some() {
                return Err(DynamoError::invalid(format!(
                    "Attempting to create an index which already exists; index name: {}",
                    index.name
                )));
            }
            def.gsis.push(index);
        } else if let Some(delete) = update.get("Delete") {
            let name = delete
                .get("IndexName")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let before = def.gsis.len();
            def.gsis.retain(|i| i.name != name);
            if def.gsis.len() == before {
                return Err(DynamoError::ResourceNotFound(format!(
                    "Requested resource not found: Index: {name} not found"
                )));
            }
        } else if let Some(change) = update.get("Update") {
            let name = change
                .get("IndexName")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let billing = def.billing.clone();
            let index = def
                .gsis
                .iter_mut()
                .find(|i| i.name == name)
                .ok_or_else(|| {
                    DynamoError::ResourceNotFound(format!(
                        "Requested resource not found: Index: {name} not found"
                    ))
                })?;
            (index.rcu, index.wcu) = capacity(change.get("ProvisionedThroughput"), &billing)?;
        }
        Ok(())
    }

    pub(crate) async fn delete_table(&self, req: &Request) -> Result<Json, DynamoError> {
        let name = table_name(req)?;
        let (description, pending) = {
            let mut tables = self.tables.write();
            let table = tables
                .get(&name)
                .cloned()
                .ok_or_else(DynamoError::not_found)?;
            let mut state = table.lock();
            if state.def.deletion_protection {
                return Err(DynamoError::validation(format!(
                    "Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first. Table: {name}"
                )));
            }
            let incarnation = state.def.incarnation;
            let mut ops: Vec<MetaOp> = state
                .items
                .keys()
                .map(|k| store::delete_item(incarnation, k))
                .collect();
            ops.push(MetaOp::Delete {
                key: store::table_key(&name),
            });
            let pending = self.committer.submit(ops);
            let description = self.describe(&state, "DELETING");
            state.deleted = true;
            state.items.clear();
            tables.remove(&name);
            (description, pending)
        };
        pending.durable().await?;
        Ok(json!({ "TableDescription": description }))
    }

    pub(crate) fn list_tables(&self, req: &Request) -> Result<Json, DynamoError> {
        let limit = request::integer(req, "Limit")?;
        let start = string(req, "ExclusiveStartTableName")?;
        let mut v = Violations::new();
        v.range(limit, "limit", Some(1), Some(LIST_LIMIT_MAX));
        v.into_result::<DynamoError>()?;
        let limit = limit.unwrap_or(LIST_LIMIT_MAX) as usize;
        let tables = self.tables.read();
        let names: Vec<&String> = tables
            .keys()
            .filter(|n| start.is_none_or(|s| n.as_str() > s))
            .take(limit + 1)
            .collect();
        let mut out = Map::new();
        let more = names.len() > limit;
        let page: Vec<&String> = names.into_iter().take(limit).collect();
        if more && let Some(last) = page.last() {
            out.insert("LastEvaluatedTableName".to_owned(), json!(last));
        }
        out.insert("TableNames".to_owned(), json!(page));
        Ok(Json::Object(out))
    }

    pub(crate) async fn update_ttl(&self, req: &Request) -> Result<Json, DynamoError> {
        let name = table_name(req)?;
        let spec = req
            .get("TimeToLiveSpecification")
            .cloned()
            .unwrap_or(Json::Null);
        let enabled = spec.get("Enabled").and_then(Json::as_bool).unwrap_or(false);
        let attribute = spec
            .get("AttributeName")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let table = self.table(&name)?;
        let pending = {
            let mut state = table.lock();
            let current = state.def.ttl_attribute.clone();
            if enabled && current.is_some() {
                return Err(DynamoError::validation("TimeToLive is already enabled"));
            }
            if !enabled && current.is_none() {
                return Err(DynamoError::validation("TimeToLive is already disabled"));
            }
            state.def.ttl_attribute = enabled.then(|| attribute.to_owned());
            self.committer.submit(vec![store::put_table(&state.def)])
        };
        pending.durable().await?;
        Ok(json!({ "TimeToLiveSpecification": spec }))
    }

    pub(crate) fn describe_ttl(&self, req: &Request) -> Result<Json, DynamoError> {
        let name = table_name(req)?;
        let table = self.table(&name)?;
        let state = table.lock();
        let description = match &state.def.ttl_attribute {
            Some(attribute) => json!({"TimeToLiveStatus": "ENABLED", "AttributeName": attribute}),
            None => json!({"TimeToLiveStatus": "DISABLED"}),
        };
        Ok(json!({ "TimeToLiveDescription": description }))
    }

    /// The table an ARN names (tags are kept on tables only).
    fn table_of_arn(&self, req: &Request) -> Result<Arc<Table>, DynamoError> {
        let arn = string(req, "ResourceArn")?.unwrap_or_default();
        let name = arn
            .rsplit_once(":table/")
            .map(|(_, n)| n)
            .unwrap_or_default();
        if name.is_empty() || name.contains('/') {
            return Err(DynamoError::validation(format!("Invalid TableArn: {arn}")));
        }
        self.table(name)
    }

    pub(crate) async fn tag_resource(&self, req: &Request) -> Result<Json, DynamoError> {
        let tags = tags_of(req.get("Tags"))?;
        let table = self.table_of_arn(req)?;
        let pending = {
            let mut state = table.lock();
            state.def.tags.extend(tags);
            if state.def.tags.len() > TAGS_MAX {
                return Err(DynamoError::LimitExceeded(
                    "The number of tags on the resource exceeds the limit of 50".to_owned(),
                ));
            }
            self.committer.submit(vec![store::put_table(&state.def)])
        };
        pending.durable().await?;
        Ok(json!({}))
    }

    pub(crate) async fn untag_resource(&self, req: &Request) -> Result<Json, DynamoError> {
        let keys: Vec<String> = req
            .get("TagKeys")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let table = self.table_of_arn(req)?;
        let pending = {
            let mut state = table.lock();
            state.def.tags.retain(|k, _| !keys.contains(k));
            self.committer.submit(vec![store::put_table(&state.def)])
        };
        pending.durable().await?;
        Ok(json!({}))
    }

    pub(crate) fn list_tags(&self, req: &Request) -> Result<Json, DynamoError> {
        let table = self.table_of_arn(req)?;
        let state = table.lock();
        let tags: Vec<Json> = state
            .def
            .tags
            .iter()
            .map(|(k, v)| json!({"Key": k, "Value": v}))
            .collect();
        Ok(json!({ "Tags": tags }))
    }
}

fn tags_of(json: Option<&Json>) -> Result<BTreeMap<String, String>, DynamoError> {
    let list = json.and_then(Json::as_array).cloned().unwrap_or_default();
    let tags: BTreeMap<String, String> = list
        .iter()
        .map(|t| {
            (
                t.get("Key")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                t.get("Value")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    if tags.len() > TAGS_MAX {
        return Err(DynamoError::LimitExceeded(
            "The number of tags on the resource exceeds the limit of 50".to_owned(),
        ));
    }
    Ok(tags)
}

/// A new incarnation: random, so a recreated table's items never meet a
/// deleted one's.
fn rand_incarnation() -> u64 {
    let id = uuid::Uuid::new_v4();
    let bytes = id.as_bytes();
    u64::from_le_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}
