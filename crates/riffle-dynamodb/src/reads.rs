//! Query and Scan, on a table or a secondary index: key conditions,
//! filters, projections, `Limit`, pages (`ExclusiveStartKey` /
//! `LastEvaluatedKey`), parallel scan segments and `Select`.
//!
//! An index is not kept apart: its items are the table's items that carry
//! its key attributes, found by scanning the table (lease tables hold a
//! few thousand items at most), ordered by the index's sort key and then
//! the table's key.

use std::cmp::Ordering;

use riffle_coral::validate::Violations;
use serde_json::{Map, Value as Json, json};

use crate::DynamoDb;
use crate::errors::DynamoError;
use crate::expr::{self, Cmp, Cond, Operand, Path, Placeholders, Step};
use crate::items::{check_mixing, projection};
use crate::legacy;
use crate::request::{self, Request, string, table_name};
use crate::table::{IndexDef, ItemKey, KeyPart, TableDef};
use crate::value::{Item, item_size, item_to_json};

/// A page of Query or Scan holds at most 1 MB of items (API Reference,
/// Query: "A single Query operation will read up to the maximum number of
/// items set (if using the Limit parameter) or a maximum of 1 MB of data").
const PAGE_BYTES_MAX: usize = 1024 * 1024;

/// Where an item sorts in what is read: the index's sort key (if reading
/// an index), then the table's key.
type Position = (Option<KeyPart>, ItemKey);

/// What the read goes over: the table or one of its indexes.
struct Source<'a> {
    def: &'a TableDef,
    index: Option<&'a IndexDef>,
}

impl Source<'_> {
    fn hash(&self) -> &str {
        self.index.map_or(&self.def.hash, |i| &i.hash)
    }

    fn range(&self) -> Option<&str> {
        match self.index {
            Some(i) => i.range.as_deref(),
            None => self.def.range.as_deref(),
        }
    }

    fn key_part(&self, item: &Item, name: &str) -> Option<KeyPart> {
        let kind = self.def.attributes.get(name).map_or("S", String::as_str);
        KeyPart::of(item.get(name)?, kind)
    }

    /// The item's position, or `None` if an index does not hold it.
    fn position(&self, key: &ItemKey, item: &Item) -> Option<Position> {
        let Some(index) = self.index else {
            return Some((None, key.clone()));
        };
        self.key_part(item, &index.hash)?;
        let range = match &index.range {
            Some(r) => Some(self.key_part(item, r)?),
            None => None,
        };
        Some((range, key.clone()))
    }

    /// Where to start after `ExclusiveStartKey`.
    fn start(&self, start: &Item) -> Result<Position, DynamoError> {
        let invalid = || {
            DynamoError::validation(
                "The provided starting key is invalid: The provided key element does not match the schema",
            )
        };
        let key = self
            .def
            .key_of(&self.def.key_item(start, None), true)
            .map_err(|_| invalid())?;
        match self.index {
            None => Ok((None, key)),
            Some(index) => {
                let range = match &index.range {
                    Some(r) => Some(self.key_part(start, r).ok_or_else(invalid)?),
                    None => None,
                };
                Ok((range, key))
            }
        }
    }

    /// What an item of the index carries.
    fn shape(&self, item: &Item) -> Item {
        match self.index {
            Some(index) => index.projects(self.def, item),
            None => item.clone(),
        }
    }
}

/// Options shared by Query and Scan.
struct Read {
    filter: Option<Cond>,
    paths: Option<Vec<Path>>,
    limit: Option<usize>,
    start: Option<Item>,
    count_only: bool,
    forward: bool,
}

fn read_options(
    req: &Request,
    ph: &mut Placeholders,
    filter_member: &str,
) -> Result<Read, DynamoError> {
    let limit = request::integer(req, "Limit")?;
    let mut v = Violations::new();
    v.range(limit, "limit", Some(1), None);
    let select = string(req, "Select")?;
    v.one_of(
        select,
        "select",
        &[
            "ALL_ATTRIBUTES",
            "ALL_PROJECTED_ATTRIBUTES",
            "SPECIFIC_ATTRIBUTES",
            "COUNT",
        ],
    );
    v.into_result::<DynamoError>()?;
    let filter = match string(req, "FilterExpression")? {
        Some(text) => {
            let cond = ph.condition("FilterExpression", text)?;
            cond.check("FilterExpression")?;
            Some(cond)
        }
        None => match req.get(filter_member) {
            Some(filter) if !filter.is_null() => {
                legacy::filter(filter, string(req, "ConditionalOperator")?)?
            }
            _ => None,
        },
    };
    let paths = projection(req, ph)?;
    if select == Some("COUNT") && paths.is_some() {
        return Err(DynamoError::validation(
            "Cannot specify the AttributesToGet when choosing to get only the Count",
        ));
    }
    Ok(Read {
        filter,
        paths,
        limit: limit.map(|l| l as usize),
        start: request::item(req, "ExclusiveStartKey")?,
        count_only: select == Some("COUNT"),
        forward: request::boolean(req, "ScanIndexForward")?.unwrap_or(true),
    })
}

/// Runs a read over `candidates` (in order, already past the start key).
fn page<'a>(
    source: &Source<'_>,
    read: &Read,
    candidates: impl Iterator<Item = (Position, &'a Item)>,
    table_name: &str,
    req: &Request,
) -> Json {
    let mut items = Vec::new();
    let mut scanned = 0usize;
    let mut bytes = 0usize;
    let mut last: Option<&Item> = None;
    let mut more = false;
    let mut matched = 0usize;
    for (_, item) in candidates {
        if read.limit.is_some_and(|l| scanned >= l) || bytes >= PAGE_BYTES_MAX {
            more = true;
            break;
        }
        scanned += 1;
        bytes += item_size(item);
        last = Some(item);
        let shaped = source.shape(item);
        if read.filter.as_ref().is_some_and(|f| !f.eval(&shaped)) {
            continue;
        }
        matched += 1;
        if !read.count_only {
            let shown = match &read.paths {
                Some(paths) => expr::project(&shaped, paths),
                None => shaped,
            };
            items.push(item_to_json(&shown));
        }
    }
    let mut out = Map::new();
    out.insert("Count".to_owned(), json!(matched));
    out.insert("ScannedCount".to_owned(), json!(scanned));
    if !read.count_only {
        out.insert("Items".to_owned(), Json::Array(items));
    }
    if more && let Some(last) = last {
        out.insert(
            "LastEvaluatedKey".to_owned(),
            item_to_json(&source.def.key_item(last, source.index)),
        );
    }
    request::consumed(req, table_name, &mut out);
    Json::Object(out)
}

impl DynamoDb {
    pub(crate) async fn query(&self, req: &Request) -> Result<Json, DynamoError> {
        let (answer, seen) = self.query_seen(req)?;
        self.committer.visible(seen).await?;
        Ok(answer)
    }

    pub(crate) async fn scan(&self, req: &Request) -> Result<Json, DynamoError> {
        let (answer, seen) = self.scan_seen(req)?;
        self.committer.visible(seen).await?;
        Ok(answer)
    }

    /// A Query's answer, and the last write to the table it could reflect.
    fn query_seen(&self, req: &Request) -> Result<(Json, u64), DynamoError> {
        let name = table_name(req)?;
        let mut ph = Placeholders::from_request(req)?;
        check_mixing(req, &ph)?;
        let key_cond = match string(req, "KeyConditionExpression")? {
            Some(text) => Some(ph.condition("KeyConditionExpression", text)?),
            None => match req.get("KeyConditions") {
                Some(k) if !k.is_null() => legacy::filter(k, None)?,
                _ => None,
            },
        };
        let Some(key_cond) = key_cond else {
            return Err(DynamoError::validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
            ));
        };
        let read = read_options(req, &mut ph, "QueryFilter")?;
        ph.check_all_used()?;
        let table = self.table(&name)?;
        let state = table.lock();
        let source = source(&state.def, string(req, "IndexName")?)?;
        let (hash_value, range_cond) = key_condition(&source, &key_cond)?;
        let start = read.start.as_ref().map(|s| source.start(s)).transpose()?;
        let hash_name = source.hash().to_owned();
        let matches = |item: &Item| {
            source.key_part(item, &hash_name).as_ref() == Some(&hash_value)
                && range_cond.as_ref().is_none_or(|c| c.eval(item))
        };
        let mut found: Vec<(Position, &Item)> = if source.index.is_none() {
            let from = ItemKey(hash_value.clone(), None);
            state
                .items
                .range(from..)
                .take_while(|(k, _)| k.0 == hash_value)
                .filter(|(_, item)| matches(item))
                .map(|(k, item)| ((None, k.clone()), item))
                .collect()
        } else {
            let mut found: Vec<(Position, &Item)> = state
                .items
                .iter()
                .filter(|(_, item)| matches(item))
                .filter_map(|(k, item)| Some((source.position(k, item)?, item)))
                .collect();
            found.sort_by(|a, b| a.0.cmp(&b.0));
            found
        };
        if !read.forward {
            found.reverse();
        }
        let after = |pos: &Position| match &start {
            None => true,
            Some(s) => {
                let order = pos.cmp(s);
                if read.forward {
                    order == Ordering::Greater
                } else {
                    order == Ordering::Less
                }
            }
        };
        let candidates = found.into_iter().filter(|(p, _)| after(p));
        let answer = page(&source, &read, candidates, &name, req);
        Ok((answer, state.last_write()))
    }

    /// A Scan's answer, and the last write to the table it could reflect.
    fn scan_seen(&self, req: &Request) -> Result<(Json, u64), DynamoError> {
        let name = table_name(req)?;
        let mut ph = Placeholders::from_request(req)?;
        check_mixing(req, &ph)?;
        let segment = request::integer(req, "Segment")?;
        let total = request::integer(req, "TotalSegments")?;
        let mut v = Violations::new();
        v.range(segment, "segment", Some(0), Some(999_999));
        v.range(total, "totalSegments", Some(1), Some(1_000_000));
        v.into_result::<DynamoError>()?;
        let segments = match (segment, total) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(DynamoError::validation(
                    "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
                ));
            }
            (None, Some(_)) => {
                return Err(DynamoError::validation(
                    "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
                ));
            }
            (Some(s), Some(t)) if s >= t => {
                return Err(DynamoError::validation(format!(
                    "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is out of bounds; TotalSegments: {t}"
                )));
            }
            (Some(s), Some(t)) => Some((s as u64, t as u64)),
        };
        let read = read_options(req, &mut ph, "ScanFilter")?;
        ph.check_all_used()?;
        let table = self.table(&name)?;
        let state = table.lock();
        let source = source(&state.def, string(req, "IndexName")?)?;
        let start = read.start.as_ref().map(|s| source.start(s)).transpose()?;
        let in_segment = |key: &ItemKey| match segments {
            None => true,
            Some((s, t)) => segment_of(key, t) == s,
        };
        let mut found: Vec<(Position, &Item)> = state
            .items
            .iter()
            .filter(|(k, _)| in_segment(k))
            .filter_map(|(k, item)| Some((source.position(k, item)?, item)))
            .collect();
        if source.index.is_some() {
            found.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let candidates = found
            .into_iter()
            .filter(|(p, _)| start.as_ref().is_none_or(|s| p > s));
        let answer = page(&source, &read, candidates, &name, req);
        Ok((answer, state.last_write()))
    }
}

/// The segment of a parallel scan an item falls in: by its partition key,
/// so one partition's items stay in one segment.
fn segment_of(key: &ItemKey, total: u64) -> u64 {
    // FNV-1a: stable across runs and releases, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ItemKey(key.0.clone(), None).encode().bytes() {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % total
}

fn source<'a>(def: &'a TableDef, index: Option<&str>) -> Result<Source<'a>, DynamoError> {
    let index = match index {
        None => None,
        Some(name) => Some(def.index(name).ok_or_else(|| {
            DynamoError::validation(format!(
                "The table does not have the specified index: {name}"
            ))
        })?),
    };
    Ok(Source { def, index })
}

/// Splits a key condition into the partition key's value and the
/// condition on the sort key, refusing what DynamoDB refuses.
fn key_condition(source: &Source<'_>, cond: &Cond) -> Result<(KeyPart, Option<Cond>), DynamoError> {
    let mut parts = Vec::new();
    flatten_and(cond, &mut parts)?;
    let unsupported = || DynamoError::validation("Query key condition not supported");
    let mut hash = None;
    let mut range = None;
    for part in parts {
        let attr = key_attribute(part).ok_or_else(unsupported)?;
        if attr == source.hash() {
            let Cond::Cmp(Operand::Path(_), Cmp::Eq, Operand::Value(v)) = part else {
                return Err(unsupported());
            };
            if hash.is_some() {
                return Err(unsupported());
            }
            hash = Some(v.clone());
        } else if Some(attr) == source.range() {
            if matches!(part, Cond::Cmp(_, Cmp::Ne, _)) || range.is_some() {
                return Err(unsupported());
            }
            range = Some(part.clone());
        } else {
            return Err(DynamoError::validation(format!(
                "Query condition missed key schema element: {}",
                source.hash()
            )));
        }
    }
    let Some(hash) = hash else {
        return Err(DynamoError::validation(format!(
            "Query condition missed key schema element: {}",
            source.hash()
        )));
    };
    let kind = source
        .def
        .attributes
        .get(source.hash())
        .map_or("S", String::as_str);
    let hash = KeyPart::of(&hash, kind).ok_or_else(|| {
        DynamoError::validation("One or more parameter values were invalid: Condition parameter type does not match schema type")
    })?;
    Ok((hash, range))
}

fn flatten_and<'c>(cond: &'c Cond, out: &mut Vec<&'c Cond>) -> Result<(), DynamoError> {
    match cond {
        Cond::And(a, b) => {
            flatten_and(a, out)?;
            flatten_and(b, out)
        }
        Cond::Or(..) => Err(DynamoError::validation(
            "Invalid operator used in KeyConditionExpression: OR",
        )),
        Cond::Not(..) => Err(DynamoError::validation(
            "Invalid operator used in KeyConditionExpression: NOT",
        )),
        other => {
            out.push(other);
            Ok(())
        }
    }
}

/// The one top-level attribute a key condition part is about.
fn key_attribute(cond: &Cond) -> Option<&str> {
    let path = match cond {
        Cond::Cmp(Operand::Path(p), _, Operand::Value(_))
        | Cond::Between(Operand::Path(p), Operand::Value(_), Operand::Value(_))
        | Cond::BeginsWith(Operand::Path(p), Operand::Value(_)) => p,
        _ => return None,
    };
    match path.as_slice() {
        [Step::Name(name)] => Some(name),
        _ => None,
    }
}
