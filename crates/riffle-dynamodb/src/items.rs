//! The item operations: GetItem, PutItem, UpdateItem, DeleteItem, and the
//! batches (BatchGetItem, BatchWriteItem, TransactWriteItems).
//!
//! A write's condition is checked, and the item changed, under its table's
//! lock: conditional writes to one item are atomic. See `store` for when
//! the write is durable.

use std::collections::BTreeSet;
use std::sync::Arc;

use riffle_log::MetaOp;
use serde_json::{Map, Value as Json, json};

use crate::DynamoDb;
use crate::errors::DynamoError;
use crate::expr::{self, Action, Cond, Path, Placeholders, Step};
use crate::legacy::{self, AttributeUpdate};
use crate::request::{self, Request, string, table_name};
use crate::store::{self, Pending, Table, TableState};
use crate::table::{ItemKey, TableDef};
use crate::value::{ITEM_BYTES_MAX, Item, item_size, item_to_json};

/// Keys one BatchGetItem reads at most (DynamoDB API Reference,
/// BatchGetItem: "up to 100 items").
const BATCH_GET_MAX: usize = 100;
/// Writes one BatchWriteItem makes at most ("up to 25 put or delete
/// requests").
const BATCH_WRITE_MAX: usize = 25;
/// Actions one TransactWriteItems makes at most (the model's
/// TransactWriteItemList: 100).
const TRANSACT_MAX: usize = 100;

/// The parameters that came before expressions, per expression member.
const LEGACY_MEMBERS: &[&str] = &[
    "Expected",
    "AttributeUpdates",
    "AttributesToGet",
    "KeyConditions",
    "QueryFilter",
    "ScanFilter",
    "ConditionalOperator",
];
const EXPRESSION_MEMBERS: &[&str] = &[
    "ConditionExpression",
    "UpdateExpression",
    "ProjectionExpression",
    "KeyConditionExpression",
    "FilterExpression",
];

fn present<'a>(req: &Request, members: &[&'a str]) -> Vec<&'a str> {
    members
        .iter()
        .copied()
        .filter(|m| req.get(*m).is_some_and(|v| !v.is_null()))
        .collect()
}

/// Refuses a request mixing legacy and expression parameters, or giving
/// placeholders with no expression, as DynamoDB does.
pub fn check_mixing(req: &Request, ph: &Placeholders) -> Result<(), DynamoError> {
    let legacy = present(req, LEGACY_MEMBERS);
    let expressions = present(req, EXPRESSION_MEMBERS);
    if !legacy.is_empty() && !expressions.is_empty() {
        return Err(DynamoError::validation(format!(
            "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
            legacy.join(", "),
            expressions.join(", ")
        )));
    }
    if expressions.is_empty() && !ph.is_empty() {
        let member = if req.contains_key("ExpressionAttributeNames") {
            "ExpressionAttributeNames"
        } else {
            "ExpressionAttributeValues"
        };
        return Err(DynamoError::validation(format!(
            "{member} can only be specified when using expressions"
        )));
    }
    Ok(())
}

/// The condition of a write: `ConditionExpression` or `Expected`.
fn write_condition(req: &Request, ph: &mut Placeholders) -> Result<Option<Cond>, DynamoError> {
    if let Some(text) = string(req, "ConditionExpression")? {
        let cond = ph.condition("ConditionExpression", text)?;
        cond.check("ConditionExpression")?;
        return Ok(Some(cond));
    }
    match req.get("Expected") {
        Some(expected) if !expected.is_null() => {
            legacy::expected(expected, string(req, "ConditionalOperator")?)
        }
        _ => Ok(None),
    }
}

/// `ProjectionExpression` or `AttributesToGet`, as paths.
pub fn projection(req: &Request, ph: &mut Placeholders) -> Result<Option<Vec<Path>>, DynamoError> {
    if let Some(text) = string(req, "ProjectionExpression")? {
        return Ok(Some(ph.projection(text)?));
    }
    match req.get("AttributesToGet").and_then(Json::as_array) {
        Some(names) => Ok(Some(
            names
                .iter()
                .filter_map(Json::as_str)
                .map(|n| vec![Step::Name(n.to_owned())])
                .collect(),
        )),
        None => Ok(None),
    }
}

/// Checks a whole item about to be stored: its size and the types of the
/// index keys it carries.
fn check_item(def: &TableDef, item: &Item, updating: bool) -> Result<(), DynamoError> {
    if item_size(item) > ITEM_BYTES_MAX {
        return Err(DynamoError::validation(if updating {
            "Item size to update has exceeded the maximum allowed size"
        } else {
            "Item size has exceeded the maximum allowed size"
        }));
    }
    for index in def.gsis.iter().chain(&def.lsis) {
        for name in std::iter::once(&index.hash).chain(index.range.as_ref()) {
            let expected = def.attributes.get(name).map_or("S", String::as_str);
            if let Some(value) = item.get(name)
                && value.type_name() != expected
            {
                return Err(DynamoError::invalid(format!(
                    "Type mismatch for Index Key {name} Expected: {expected} Actual: {} IndexName: {}",
                    value.type_name(),
                    index.name
                )));
            }
        }
    }
    Ok(())
}

/// Whether a failed condition answers the item as it was
/// (`ReturnValuesOnConditionCheckFailure`: `ALL_OLD`, or `NONE`).
fn item_on_failure(req: &Request) -> Result<bool, DynamoError> {
    let value = string(req, "ReturnValuesOnConditionCheckFailure")?;
    let mut v = riffle_coral::validate::Violations::new();
    v.one_of(
        value,
        "returnValuesOnConditionCheckFailure",
        &["ALL_OLD", "NONE"],
    );
    v.into_result::<DynamoError>()?;
    Ok(value == Some("ALL_OLD"))
}

/// Drops a failed condition's item unless the request asked for it.
fn unless_asked(keep: bool) -> impl Fn(DynamoError) -> DynamoError {
    move |err| match err {
        DynamoError::ConditionalCheckFailed { .. } if !keep => {
            DynamoError::ConditionalCheckFailed { item: None }
        }
        other => other,
    }
}

fn attributes(out: &mut Map<String, Json>, item: Option<&Item>) {
    if let Some(item) = item {
        out.insert("Attributes".to_owned(), item_to_json(item));
    }
}

/// Only the attributes in `names`.
fn only(item: &Item, names: &BTreeSet<String>) -> Item {
    item.iter()
        .filter(|(k, _)| names.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// What PutItem and DeleteItem share: the table, the condition, and what
/// to answer (`ReturnValues` NONE or ALL_OLD; the item that failed the
/// condition, with `ReturnValuesOnConditionCheckFailure`).
struct WholeItemWrite {
    name: String,
    all_old: bool,
    cond: Option<Cond>,
    keep: bool,
}

impl WholeItemWrite {
    /// `bad_return_values` is the operation's own text for a ReturnValues
    /// other than NONE or ALL_OLD.
    fn parse(req: &Request, bad_return_values: &str) -> Result<WholeItemWrite, DynamoError> {
        let name = table_name(req)?;
        let mut ph = Placeholders::from_request(req)?;
        check_mixing(req, &ph)?;
        let returns = request::return_values(req, &["NONE", "ALL_OLD"], bad_return_values)?;
        let cond = write_condition(req, &mut ph)?;
        ph.check_all_used()?;
        Ok(WholeItemWrite {
            name,
            all_old: returns == "ALL_OLD",
            cond,
            keep: item_on_failure(req)?,
        })
    }

    /// The answer: the old item if asked for, and the consumed capacity.
    fn answer(&self, req: &Request, old: Option<&Item>) -> Json {
        let mut out = Map::new();
        if self.all_old {
            attributes(&mut out, old);
        }
        request::consumed(req, &self.name, &mut out);
        Json::Object(out)
    }
}

/// How a write changes the item it found (`None`: there was none).
type Change<'a> = Box<dyn FnOnce(Option<&Item>) -> Result<Option<Item>, DynamoError> + Send + 'a>;

impl DynamoDb {
    /// Checks `cond` against the item at `key` and applies `change`, under
    /// the table's lock; waits until the change is durable. Returns the
    /// item before and after.
    async fn write(
        &self,
        table: &Arc<Table>,
        key: ItemKey,
        cond: Option<&Cond>,
        change: Change<'_>,
    ) -> Result<(Option<Item>, Option<Item>), DynamoError> {
        let (old, new, pending) = {
            let mut state = table.lock();
            if state.deleted {
                return Err(DynamoError::not_found());
            }
            let (old, new, ops) = plan(&state, &key, cond, change)?;
            let pending = self.committer.submit(ops);
            state.note_write(&key, pending.seq(), self.committer.durable_seq());
            state.set(key, new.clone());
            (old, new, pending)
        };
        pending.durable().await?;
        Ok((old, new))
    }

    pub(crate) async fn get_item(&self, req: &Request) -> Result<Json, DynamoError> {
        let name = table_name(req)?;
        let mut ph = Placeholders::from_request(req)?;
        check_mixing(req, &ph)?;
        let paths = projection(req, &mut ph)?;
        ph.check_all_used()?;
        let key_item = request::item(req, "Key")?.unwrap_or_default();
        let table = self.table(&name)?;
        let mut out = Map::new();
        let seen = {
            let state = table.lock();
            let key = state.def.key_of(&key_item, true)?;
            if let Some(item) = state.items.get(&key) {
                let item = match &paths {
                    Some(paths) => expr::project(item, paths),
                    None => item.clone(),
                };
                out.insert("Item".to_owned(), item_to_json(&item));
            }
            state.written_at(&key)
        };
        self.committer.visible(seen).await?;
        request::consumed(req, &name, &mut out);
        Ok(Json::Object(out))
    }

    pub(crate) async fn put_item(&self, req: &Request) -> Result<Json, DynamoError> {
        let put = WholeItemWrite::parse(req, "ReturnValues can only be ALL_OLD or NONE")?;
        let item = request::item(req, "Item")?.ok_or_else(|| {
            DynamoError::validation(
                "1 validation error detected: Value null at 'item' failed to satisfy constraint: Member must not be null",
            )
        })?;
        let table = self.table(&put.name)?;
        let key = {
            let state = table.lock();
            let key = state.def.key_of(&item, false)?;
            key.check_lengths()?;
            check_item(&state.def, &item, false)?;
            key
        };
        let (old, _) = self
            .write(
                &table,
                key,
                put.cond.as_ref(),
                Box::new(move |_| Ok(Some(item))),
            )
            .await
            .map_err(unless_asked(put.keep))?;
        Ok(put.answer(req, old.as_ref()))
    }

    pub(crate) async fn delete_item(&self, req: &Request) -> Result<Json, DynamoError> {
        let delete = WholeItemWrite::parse(req, "Return values set to invalid value")?;
        let key_item = request::item(req, "Key")?.unwrap_or_default();
        let table = self.table(&delete.name)?;
        let key = table.lock().def.key_of(&key_item, true)?;
        let (old, _) = self
            .write(&table, key, delete.cond.as_ref(), Box::new(|_| Ok(None)))
            .await
            .map_err(unless_asked(delete.keep))?;
        Ok(delete.answer(req, old.as_ref()))
    }

    pub(crate) async fn update_item(&self, req: &Request) -> Result<Json, DynamoError> {
        let name = table_name(req)?;
        let mut ph = Placeholders::from_request(req)?;
        check_mixing(req, &ph)?;
        let returns = request::return_values(
            req,
            &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"],
            "",
        )?;
        let update = parse_update(req, &mut ph)?;
        let cond = write_condition(req, &mut ph)?;
        ph.check_all_used()?;
        let keep = item_on_failure(req)?;
        let key_item = request::item(req, "Key")?.unwrap_or_default();
        let table = self.table(&name)?;
        let (key, def) = {
            let state = table.lock();
            (state.def.key_of(&key_item, true)?, state.def.clone())
        };
        update.check_keys(&def)?;
        let touched = update.touched();
        let (old, new) = self
            .write(
                &table,
                key,
                cond.as_ref(),
                Box::new(move |old| {
                    let mut item = old.cloned().unwrap_or(key_item);
                    update.apply(&mut item)?;
                    check_item(&def, &item, true)?;
                    Ok(Some(item))
                }),
            )
            .await
            .map_err(unless_asked(keep))?;
        let mut out = Map::new();
        match returns {
            "ALL_OLD" => attributes(&mut out, old.as_ref()),
            "ALL_NEW" => attributes(&mut out, new.as_ref()),
            "UPDATED_OLD" => attributes(&mut out, old.map(|o| only(&o, &touched)).as_ref()),
            "UPDATED_NEW" => attributes(&mut out, new.map(|n| only(&n, &touched)).as_ref()),
            _ => {}
        }
        if out
            .get("Attributes")
            .is_some_and(|a| a.as_object().is_some_and(Map::is_empty))
        {
            out.remove("Attributes");
        }
        request::consumed(req, &name, &mut out);
        Ok(Json::Object(out))
    }

    pub(crate) async fn batch_get_item(&self, req: &Request) -> Result<Json, DynamoError> {
        let requests = req
            .get("RequestItems")
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        if requests.is_empty() {
            return Err(DynamoError::validation(
                "1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null",
            ));
        }
        let total: usize = requests
            .values()
            .map(|r| r.get("Keys").and_then(Json::as_array).map_or(0, Vec::len))
            .sum();
        if total > BATCH_GET_MAX {
            return Err(DynamoError::validation(
                "Too many items requested for the BatchGetItem call",
            ));
        }
        let mut responses = Map::new();
        let mut seen_write = 0;
        for (raw_name, spec) in &requests {
            let name = request::table_name_of(Some(raw_name))?;
            let spec: Request = spec.as_object().cloned().unwrap_or_default();
            let mut ph = Placeholders::from_request(&spec)?;
            let paths = projection(&spec, &mut ph)?;
            ph.check_all_used()?;
            let table = self.table(&name)?;
            let state = table.lock();
            let mut found = Vec::new();
            let mut seen = BTreeSet::new();
            for key_json in spec
                .get("Keys")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
            {
                let key_item = crate::value::item_from_json(key_json)?;
                let key = state.def.key_of(&key_item, true)?;
                if !seen.insert(key.clone()) {
                    return Err(DynamoError::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
                if let Some(item) = state.items.get(&key) {
                    let item = match &paths {
                        Some(paths) => expr::project(item, paths),
                        None => item.clone(),
                    };
                    found.push(item_to_json(&item));
                }
                seen_write = seen_write.max(state.written_at(&key));
            }
            responses.insert(raw_name.clone(), Json::Array(found));
        }
        self.committer.visible(seen_write).await?;
        Ok(json!({"Responses": responses, "UnprocessedKeys": {}}))
    }

    pub(crate) async fn batch_write_item(&self, req: &Request) -> Result<Json, DynamoError> {
        let requests = req
            .get("RequestItems")
            .and_then(Json::as_object)
            .cloned()
            .unwrap_or_default();
        let total: usize = requests
            .values()
            .map(|r| r.as_array().map_or(0, Vec::len))
            .sum();
        if total == 0 {
            return Err(DynamoError::validation(
                "1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null",
            ));
        }
        if total > BATCH_WRITE_MAX {
            return Err(DynamoError::validation(
                "Too many items requested for the BatchWriteItem call",
            ));
        }
        // Everything is checked before anything is written.
        let mut writes: Vec<(Arc<Table>, ItemKey, Option<Item>)> = Vec::new();
        for (raw_name, list) in &requests {
            let name = request::table_name_of(Some(raw_name))?;
            let table = self.table(&name)?;
            let mut seen = BTreeSet::new();
            for entry in list.as_array().into_iter().flatten() {
                let state = table.lock();
                let (key, item) = if let Some(put) = entry.get("PutRequest") {
                    let item =
                        crate::value::item_from_json(put.get("Item").unwrap_or(&Json::Null))?;
                    let key = state.def.key_of(&item, false)?;
                    key.check_lengths()?;
                    check_item(&state.def, &item, false)?;
                    (key, Some(item))
                } else if let Some(delete) = entry.get("DeleteRequest") {
                    let key_item =
                        crate::value::item_from_json(delete.get("Key").unwrap_or(&Json::Null))?;
                    (state.def.key_of(&key_item, true)?, None)
                } else {
                    return Err(DynamoError::validation(
                        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                    ));
                };
                if !seen.insert(key.clone()) {
                    return Err(DynamoError::validation(
                        "Provided list of item keys contains duplicates",
                    ));
                }
                writes.push((Arc::clone(&table), key, item));
            }
        }
        let mut waits: Vec<Pending> = Vec::new();
        for (table, key, item) in writes {
            let mut state = table.lock();
            if state.deleted {
                continue;
            }
            let incarnation = state.def.incarnation;
            let op = match &item {
                Some(item) => store::put_item(incarnation, &key, item),
                None => store::delete_item(incarnation, &key),
            };
            let pending = self.committer.submit(vec![op]);
            state.note_write(&key, pending.seq(), self.committer.durable_seq());
            waits.push(pending);
            state.set(key, item);
        }
        for wait in waits {
            wait.durable().await?;
        }
        Ok(json!({"UnprocessedItems": {}}))
    }

    pub(crate) async fn transact_write_items(&self, req: &Request) -> Result<Json, DynamoError> {
        let actions = req
            .get("TransactItems")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        if actions.is_empty() || actions.len() > TRANSACT_MAX {
            return Err(DynamoError::validation(format!(
                "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to {TRANSACT_MAX} and greater than or equal to 1"
            )));
        }
        let mut planned = Vec::with_capacity(actions.len());
        for action in &actions {
            planned.push(self.transact_action(action)?);
        }
        let mut keys = BTreeSet::new();
        for p in &planned {
            if !keys.insert((p.table_name.clone(), p.key.clone())) {
                return Err(DynamoError::validation(
                    "Transaction request cannot include multiple operations on one item",
                ));
            }
        }
        // Tables are locked in name order, so transactions never deadlock.
        let mut names: Vec<String> = planned.iter().map(|p| p.table_name.clone()).collect();
        names.sort();
        names.dedup();
        let tables: Vec<Arc<Table>> = names
            .iter()
            .map(|n| self.table(n))
            .collect::<Result<_, _>>()?;
        let pending = {
            let mut guards: Vec<_> = tables.iter().map(|t| t.lock()).collect();
            let at = |name: &str| names.iter().position(|n| n == name).unwrap_or(0);
            let mut reasons = Vec::new();
            let mut results = Vec::new();
            for p in planned {
                let state = &guards[at(&p.table_name)];
                match plan(state, &p.key, p.cond.as_ref(), p.change) {
                    Ok((_, new, ops)) => {
                        reasons.push("None");
                        results.push((p.table_name, p.key, new, ops, p.check_only));
                    }
                    Err(DynamoError::ConditionalCheckFailed { .. }) => {
                        reasons.push("ConditionalCheckFailed");
                        results.clear();
                    }
                    Err(other) => return Err(other),
                }
            }
            if reasons.iter().any(|r| *r != "None") {
                return Err(DynamoError::TransactionCanceled { reasons });
            }
            let mut all_ops: Vec<MetaOp> = Vec::new();
            let mut written = Vec::new();
            for (table_name, key, new, ops, check_only) in results {
                if check_only {
                    continue;
                }
                all_ops.extend(ops);
                written.push((at(&table_name), key, new));
            }
            let pending = self.committer.submit(all_ops);
            let durable = self.committer.durable_seq();
            for (table, key, new) in written {
                guards[table].note_write(&key, pending.seq(), durable);
                guards[table].set(key, new);
            }
            pending
        };
        pending.durable().await?;
        Ok(json!({}))
    }

    fn transact_action(&self, action: &Json) -> Result<Transacted, DynamoError> {
        let (kind, body) = ["ConditionCheck", "Put", "Delete", "Update"]
            .iter()
            .find_map(|k| action.get(*k).map(|b| (*k, b)))
            .ok_or_else(|| {
                DynamoError::validation(
                    "TransactItems can only contain one of Check, Put, Update or Delete",
                )
            })?;
        let req: Request = body.as_object().cloned().unwrap_or_default();
        let name = table_name(&req)?;
        let mut ph = Placeholders::from_request(&req)?;
        let update = if kind == "Update" {
            Some(parse_update(&req, &mut ph)?)
        } else {
            None
        };
        let cond = write_condition(&req, &mut ph)?;
        ph.check_all_used()?;
        let table = self.table(&name)?;
        let def = table.lock().def.clone();
        let (key, change): (ItemKey, Change<'static>) = match kind {
            "Put" => {
                let item = request::item(&req, "Item")?.unwrap_or_default();
                let key = def.key_of(&item, false)?;
                check_item(&def, &item, false)?;
                (key, Box::new(move |_| Ok(Some(item))))
            }
            "Delete" => {
                let key_item = request::item(&req, "Key")?.unwrap_or_default();
                (def.key_of(&key_item, true)?, Box::new(|_| Ok(None)))
            }
            "Update" => {
                let key_item = request::item(&req, "Key")?.unwrap_or_default();
                let key = def.key_of(&key_item, true)?;
                // Set just above for Update.
                let update = update.unwrap_or(Update::Legacy(Vec::new()));
                update.check_keys(&def)?;
                (
                    key,
                    Box::new(move |old| {
                        let mut item = old.cloned().unwrap_or(key_item);
                        update.apply(&mut item)?;
                        check_item(&def, &item, true)?;
                        Ok(Some(item))
                    }),
                )
            }
            _ => {
                let key_item = request::item(&req, "Key")?.unwrap_or_default();
                (
                    def.key_of(&key_item, true)?,
                    Box::new(|old: Option<&Item>| Ok(old.cloned())),
                )
            }
        };
        Ok(Transacted {
            table_name: name,
            key,
            cond,
            change,
            check_only: kind == "ConditionCheck",
        })
    }
}

struct Transacted {
    table_name: String,
    key: ItemKey,
    cond: Option<Cond>,
    change: Change<'static>,
    check_only: bool,
}

/// An item before and after a write, and the write's store changes.
type Planned = (Option<Item>, Option<Item>, Vec<MetaOp>);

/// The item at `key` before and after `change`, if `cond` holds, and the
/// store changes; nothing is applied.
fn plan(
    state: &TableState,
    key: &ItemKey,
    cond: Option<&Cond>,
    change: Change<'_>,
) -> Result<Planned, DynamoError> {
    let old = state.items.get(key).cloned();
    if let Some(cond) = cond {
        let empty = Item::new();
        if !cond.eval(old.as_ref().unwrap_or(&empty)) {
            return Err(DynamoError::ConditionalCheckFailed {
                item: old.as_ref().map(item_to_json),
            });
        }
    }
    let new = change(old.as_ref())?;
    let incarnation = state.def.incarnation;
    let op = match &new {
        Some(item) => store::put_item(incarnation, key, item),
        None => store::delete_item(incarnation, key),
    };
    Ok((old, new, vec![op]))
}

/// An UpdateItem's changes: an expression or `AttributeUpdates`.
enum Update {
    Expression(Vec<Action>),
    Legacy(Vec<AttributeUpdate>),
}

fn parse_update(req: &Request, ph: &mut Placeholders) -> Result<Update, DynamoError> {
    if let Some(text) = string(req, "UpdateExpression")? {
        return Ok(Update::Expression(ph.update(text)?));
    }
    match req.get("AttributeUpdates") {
        Some(updates) if !updates.is_null() => {
            Ok(Update::Legacy(legacy::attribute_updates(updates)?))
        }
        _ => Ok(Update::Legacy(Vec::new())),
    }
}

impl Update {
    fn touched(&self) -> BTreeSet<String> {
        match self {
            Update::Expression(actions) => expr::touched(actions),
            Update::Legacy(updates) => updates.iter().map(|u| u.name.clone()).collect(),
        }
    }

    /// Key attributes cannot be updated.
    fn check_keys(&self, def: &TableDef) -> Result<(), DynamoError> {
        if let Some(name) = self.touched().into_iter().find(|n| def.is_key(n)) {
            return Err(DynamoError::invalid(format!(
                "Cannot update attribute {name}. This attribute is part of the key"
            )));
        }
        Ok(())
    }

    fn apply(&self, item: &mut Item) -> Result<(), DynamoError> {
        match self {
            Update::Expression(actions) => expr::apply_update(item, actions),
            Update::Legacy(updates) => legacy::apply_attribute_updates(item, updates),
        }
    }
}
