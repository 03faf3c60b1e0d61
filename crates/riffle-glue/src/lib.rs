//! `riffle-glue`: the part of the AWS Glue Data Catalog that defines a
//! table's schema, so that Firehose's format conversion finds its schema
//! where AWS's does and existing set-up scripts (boto3, the `aws` CLI,
//! Terraform's calls) work unchanged.
//!
//! Served (JSON 1.1, `AWSGlue`): CreateDatabase, GetDatabase,
//! GetDatabases, DeleteDatabase, CreateTable, GetTable, GetTables,
//! UpdateTable, DeleteTable. Databases and tables are kept as the shapes
//! GetDatabase and GetTable answer, in the metadata store (`store`);
//! column types are parsed by readers (`hive`), not by Glue, which keeps
//! any text (as AWS does).

mod errors;
pub mod hive;
mod store;

use std::sync::Arc;

use bytes::Bytes;
use riffle_coral::json::{Int, Text};
use riffle_coral::validate::Violations;
use riffle_log::{LogStore, MetaOp};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

pub use errors::GlueError;
pub use hive::{HiveType, TypeError};
pub use store::lookup_table;

/// The operations served, sorted (the edge answers any other
/// `UnknownOperationException`).
pub const OPERATIONS: &[&str] = &[
    "CreateDatabase",
    "CreateTable",
    "DeleteDatabase",
    "DeleteTable",
    "GetDatabase",
    "GetDatabases",
    "GetTable",
    "GetTables",
    "UpdateTable",
];

/// The model's NameString and CatalogIdString: 1 to 255 characters.
const NAME_MAX: usize = 255;
/// GetDatabases' and GetTables' page (the model's CatalogGetterPageSize:
/// 1 to 100; AWS's default page is the largest).
const PAGE_MAX: i64 = 100;
/// Lake Formation's default for a new database, which AWS shows on
/// GetDatabase: every IAM principal may do anything to its tables.
fn default_permissions() -> Json {
    json!([{
        "Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"},
        "Permissions": ["ALL"],
    }])
}

/// Where the catalog is: its default CatalogId is the account.
#[derive(Debug, Clone)]
pub struct GlueConfig {
    pub account_id: String,
}

impl Default for GlueConfig {
    fn default() -> GlueConfig {
        GlueConfig {
            account_id: "000000000000".to_owned(),
        }
    }
}

/// The catalog. Reads go to the metadata store; writes are queued on an
/// async lock so that a check (exists?) and its write are one step.
pub struct Glue {
    store: Arc<LogStore>,
    config: GlueConfig,
    writes: tokio::sync::Mutex<()>,
}

/// Every request's members, optional: each operation checks its own.
#[derive(Debug, Default, Deserialize)]
#[allow(non_snake_case)]
struct Request {
    CatalogId: Option<Text>,
    Name: Option<Text>,
    DatabaseName: Option<Text>,
    DatabaseInput: Option<Json>,
    TableInput: Option<Json>,
    NextToken: Option<Text>,
    MaxResults: Option<Int>,
    Expression: Option<Text>,
}

impl Glue {
    pub fn open(store: Arc<LogStore>, config: GlueConfig) -> Arc<Glue> {
        Arc::new(Glue {
            store,
            config,
            writes: tokio::sync::Mutex::new(()),
        })
    }

    /// Runs one operation of [`OPERATIONS`] on a JSON request body.
    pub async fn handle(&self, action: &str, body: &[u8]) -> Result<Bytes, GlueError> {
        let request: Request = riffle_coral::json::parse(body)?;
        let answer = match action {
            "CreateDatabase" => self.create_database(request).await?,
            "GetDatabase" => self.get_database(&request).await?,
            "GetDatabases" => self.get_databases(&request).await?,
            "DeleteDatabase" => self.delete_database(&request).await?,
            "CreateTable" => self.create_table(request).await?,
            "GetTable" => self.get_table(&request).await?,
            "GetTables" => self.get_tables(&request).await?,
            "UpdateTable" => self.update_table(request).await?,
            "DeleteTable" => self.delete_table(&request).await?,
            other => {
                return Err(GlueError::InvalidInput(format!(
                    "Riffle's Glue subset does not serve {other}"
                )));
            }
        };
        // JSON values always serialize.
        Ok(Bytes::from(
            serde_json::to_vec(&answer).expect("JSON serializes"),
        ))
    }

    fn catalog<'a>(&'a self, request: &'a Request) -> &'a str {
        request
            .CatalogId
            .as_ref()
            .map_or(&self.config.account_id, |c| c.as_str())
    }

    /// Runs a metadata-store call off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LogStore) -> Result<T, GlueError> + Send + 'static,
    ) -> Result<T, GlueError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| GlueError::Storage(e.to_string()))?
    }

    async fn database(&self, catalog: &str, name: &str) -> Result<Json, GlueError> {
        let key = store::database_key(catalog, name);
        let shape = self
            .blocking(move |s| store::get(s, &key, "database"))
            .await?;
        shape.ok_or_else(|| GlueError::database_not_found(name))
    }

    async fn table(&self, catalog: &str, database: &str, name: &str) -> Result<Json, GlueError> {
        self.database(catalog, database).await?;
        let key = store::table_key(catalog, database, name);
        let shape = self.blocking(move |s| store::get(s, &key, "table")).await?;
        shape.ok_or_else(|| GlueError::table_not_found(name))
    }

    async fn commit(&self, ops: Vec<MetaOp>) -> Result<(), GlueError> {
        self.blocking(move |s| store::commit(s, &ops)).await
    }

    async fn create_database(&self, request: Request) -> Result<Json, GlueError> {
        let mut v = Violations::new();
        check_catalog(&mut v, &request);
        v.required(&request.DatabaseInput, "databaseInput");
        v.into_result::<GlueError>()?;
        let input = request.DatabaseInput.clone().unwrap_or_default();
        let name = input_name(&input, "databaseInput.name")?;
        let catalog = self.catalog(&request).to_owned();
        let mut shape = object(input, "DatabaseInput")?;
        shape.insert("Name".to_owned(), Json::from(name.clone()));
        shape.insert("CreateTime".to_owned(), now_seconds());
        shape.insert("CatalogId".to_owned(), Json::from(catalog.clone()));
        shape
            .entry("CreateTableDefaultPermissions")
            .or_insert_with(default_permissions);
        let _writing = self.writes.lock().await;
        if self.database(&catalog, &name).await.is_ok() {
            return Err(GlueError::AlreadyExists(
                "Database already exists.".to_owned(),
            ));
        }
        let key = store::database_key(&catalog, &name);
        let value = store::encode("database", &Json::Object(shape));
        self.commit(vec![MetaOp::Put { key, value }]).await?;
        Ok(json!({}))
    }

    async fn get_database(&self, request: &Request) -> Result<Json, GlueError> {
        let name = required_name(request.Name.as_ref(), "name", request)?;
        let database = self.database(self.catalog(request), &name).await?;
        Ok(json!({"Database": database}))
    }

    async fn get_databases(&self, request: &Request) -> Result<Json, GlueError> {
        let page = page_size(request)?;
        let prefix = store::databases_prefix(self.catalog(request));
        let all = self
            .blocking(move |s| store::scan(s, &prefix, "database"))
            .await?;
        let (list, next) = paginate(all, request.NextToken.as_ref(), page);
        Ok(with_token(json!({"DatabaseList": list}), next))
    }

    /// Deletes the database and its tables, as AWS does.
    async fn delete_database(&self, request: &Request) -> Result<Json, GlueError> {
        let name = required_name(request.Name.as_ref(), "name", request)?;
        let catalog = self.catalog(request).to_owned();
        let _writing = self.writes.lock().await;
        self.database(&catalog, &name).await?;
        let prefix = store::tables_prefix(&catalog, &name);
        let tables = self
            .blocking(move |s| Ok(s.meta().scan_prefix(&prefix)?))
            .await?;
        let mut ops: Vec<MetaOp> = tables
            .into_iter()
            .map(|(key, _)| MetaOp::Delete { key })
            .collect();
        ops.push(MetaOp::Delete {
            key: store::database_key(&catalog, &name),
        });
        self.commit(ops).await?;
        Ok(json!({}))
    }

    async fn create_table(&self, request: Request) -> Result<Json, GlueError> {
        let database = required_name(request.DatabaseName.as_ref(), "databaseName", &request)?;
        let input = table_input(&request)?;
        let name = input_name(&input, "tableInput.name")?;
        let catalog = self.catalog(&request).to_owned();
        let now = now_seconds();
        let mut shape = table_shape(input, &name, &database, &catalog)?;
        shape.insert("CreateTime".to_owned(), now.clone());
        shape.insert("UpdateTime".to_owned(), now);
        shape.insert("VersionId".to_owned(), Json::from("0"));
        let _writing = self.writes.lock().await;
        self.database(&catalog, &database).await?;
        if self.table(&catalog, &database, &name).await.is_ok() {
            return Err(GlueError::AlreadyExists("Table already exists.".to_owned()));
        }
        let key = store::table_key(&catalog, &database, &name);
        let value = store::encode("table", &Json::Object(shape));
        self.commit(vec![MetaOp::Put { key, value }]).await?;
        Ok(json!({}))
    }

    async fn get_table(&self, request: &Request) -> Result<Json, GlueError> {
        let database = required_name(request.DatabaseName.as_ref(), "databaseName", request)?;
        let name = required_name(request.Name.as_ref(), "name", request)?;
        let table = self.table(self.catalog(request), &database, &name).await?;
        Ok(json!({"Table": table}))
    }

    async fn get_tables(&self, request: &Request) -> Result<Json, GlueError> {
        let database = required_name(request.DatabaseName.as_ref(), "databaseName", request)?;
        let page = page_size(request)?;
        let catalog = self.catalog(request);
        self.database(catalog, &database).await?;
        let prefix = store::tables_prefix(catalog, &database);
        let mut all = self
            .blocking(move |s| store::scan(s, &prefix, "table"))
            .await?;
        if let Some(pattern) = &request.Expression {
            all.retain(|t| hive_pattern_matches(pattern.as_str(), &shape_name(t)));
        }
        let (list, next) = paginate(all, request.NextToken.as_ref(), page);
        Ok(with_token(json!({"TableList": list}), next))
    }

    /// Replaces the table's definition by TableInput (what it leaves out
    /// is gone, as AWS does), keeping CreateTime; VersionId counts up.
    async fn update_table(&self, request: Request) -> Result<Json, GlueError> {
        let database = required_name(request.DatabaseName.as_ref(), "databaseName", &request)?;
        let input = table_input(&request)?;
        let name = input_name(&input, "tableInput.name")?;
        let catalog = self.catalog(&request).to_owned();
        let mut shape = table_shape(input, &name, &database, &catalog)?;
        let _writing = self.writes.lock().await;
        let current = self.table(&catalog, &database, &name).await?;
        let version = current
            .get("VersionId")
            .and_then(Json::as_str)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let created = current
            .get("CreateTime")
            .cloned()
            .unwrap_or_else(now_seconds);
        shape.insert("CreateTime".to_owned(), created);
        shape.insert("UpdateTime".to_owned(), now_seconds());
        shape.insert(
            "VersionId".to_owned(),
            Json::from((version + 1).to_string()),
        );
        let key = store::table_key(&catalog, &database, &name);
        let value = store::encode("table", &Json::Object(shape));
        self.commit(vec![MetaOp::Put { key, value }]).await?;
        Ok(json!({}))
    }

    async fn delete_table(&self, request: &Request) -> Result<Json, GlueError> {
        let database = required_name(request.DatabaseName.as_ref(), "databaseName", request)?;
        let name = required_name(request.Name.as_ref(), "name", request)?;
        let catalog = self.catalog(request).to_owned();
        let _writing = self.writes.lock().await;
        self.table(&catalog, &database, &name).await?;
        let key = store::table_key(&catalog, &database, &name);
        self.commit(vec![MetaOp::Delete { key }]).await?;
        Ok(json!({}))
    }
}

fn check_catalog(v: &mut Violations, request: &Request) {
    let catalog = request.CatalogId.as_ref().map(Text::as_str);
    v.length(catalog, "catalogId", 1, NAME_MAX);
}

/// A required name member (and the CatalogId), checked against the model,
/// lowercased as Glue stores names.
fn required_name(name: Option<&Text>, path: &str, request: &Request) -> Result<String, GlueError> {
    let mut v = Violations::new();
    check_catalog(&mut v, request);
    v.required(&name, path);
    v.length(name.map(Text::as_str), path, 1, NAME_MAX);
    v.into_result::<GlueError>()?;
    Ok(name.map(|n| n.as_str().to_lowercase()).unwrap_or_default())
}

/// The `Name` of a DatabaseInput or TableInput, lowercased.
fn input_name(input: &Json, path: &str) -> Result<String, GlueError> {
    let name = match input.get("Name") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(Text(s.clone())),
        Some(_) => {
            return Err(GlueError::Serialization(format!(
                "Unexpected value type in payload at '{path}'"
            )));
        }
    };
    let mut v = Violations::new();
    v.required(&name, path);
    v.length(name.as_ref().map(Text::as_str), path, 1, NAME_MAX);
    v.into_result::<GlueError>()?;
    Ok(name.map(|n| n.0.to_lowercase()).unwrap_or_default())
}

fn object(input: Json, what: &str) -> Result<Map<String, Json>, GlueError> {
    match input {
        Json::Object(map) => Ok(map),
        _ => Err(GlueError::Serialization(format!(
            "{what} must be a structure"
        ))),
    }
}

fn table_input(request: &Request) -> Result<Json, GlueError> {
    let mut v = Violations::new();
    v.required(&request.TableInput, "tableInput");
    v.into_result::<GlueError>()?;
    Ok(request.TableInput.clone().unwrap_or_default())
}

/// The stored `Table` of a TableInput: AWS's defaults filled in.
fn table_shape(
    input: Json,
    name: &str,
    database: &str,
    catalog: &str,
) -> Result<Map<String, Json>, GlueError> {
    let mut shape = object(input, "TableInput")?;
    if let Some(columns) = shape
        .get("StorageDescriptor")
        .and_then(|sd| sd.get("Columns"))
    {
        check_columns(columns)?;
    }
    shape.insert("Name".to_owned(), Json::from(name));
    shape.insert("DatabaseName".to_owned(), Json::from(database));
    shape.insert("CatalogId".to_owned(), Json::from(catalog));
    shape.entry("Retention").or_insert(Json::from(0));
    shape.entry("PartitionKeys").or_insert(json!([]));
    shape.insert(
        "IsRegisteredWithLakeFormation".to_owned(),
        Json::Bool(false),
    );
    Ok(shape)
}

/// Every column has a Name (the model's `Column` requires it).
fn check_columns(columns: &Json) -> Result<(), GlueError> {
    let Some(columns) = columns.as_array() else {
        return Err(GlueError::Serialization(
            "Start of structure or map found where not expected.".to_owned(),
        ));
    };
    let mut v = Violations::new();
    for (i, column) in columns.iter().enumerate() {
        let name = column.get("Name").and_then(Json::as_str);
        let path = format!("tableInput.storageDescriptor.columns.{}.member.name", i + 1);
        v.required(&name, &path);
        v.length(name, &path, 1, NAME_MAX);
    }
    v.into_result()
}

fn page_size(request: &Request) -> Result<usize, GlueError> {
    let mut v = Violations::new();
    check_catalog(&mut v, request);
    let max = request.MaxResults.map(|n| i64::from(n.0));
    v.range(max, "maxResults", Some(1), Some(PAGE_MAX));
    v.into_result::<GlueError>()?;
    // 1 to 100, checked above.
    Ok(max.unwrap_or(PAGE_MAX) as usize)
}

fn shape_name(shape: &Json) -> String {
    shape
        .get("Name")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A page of `all` (in name order) after the NextToken (the last name of
/// the previous page), and the token of the next page if there is one.
fn paginate(all: Vec<Json>, token: Option<&Text>, page: usize) -> (Vec<Json>, Option<String>) {
    let after = token.map(|t| t.as_str().to_owned());
    let rest: Vec<Json> = all
        .into_iter()
        .filter(|shape| after.as_ref().is_none_or(|a| shape_name(shape) > *a))
        .collect();
    let more = rest.len() > page;
    let list: Vec<Json> = rest.into_iter().take(page).collect();
    let next = more.then(|| list.last().map(shape_name).unwrap_or_default());
    (list, next)
}

fn with_token(mut answer: Json, next: Option<String>) -> Json {
    if let (Some(next), Some(map)) = (next, answer.as_object_mut()) {
        map.insert("NextToken".to_owned(), Json::from(next));
    }
    answer
}

/// Hive's table-name patterns, which Glue's GetTables `Expression` is:
/// `*` any characters, `|` between alternatives, case-insensitive.
fn hive_pattern_matches(pattern: &str, name: &str) -> bool {
    fn glob(pattern: &[char], name: &[char]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some(('*', rest)) => (0..=name.len()).any(|i| glob(rest, &name[i..])),
            Some((c, rest)) => name
                .split_first()
                .is_some_and(|(n, name)| c.eq_ignore_ascii_case(n) && glob(rest, name)),
        }
    }
    let name: Vec<char> = name.chars().collect();
    pattern.split('|').any(|alternative| {
        let alternative: Vec<char> = alternative.trim().chars().collect();
        glob(&alternative, &name)
    })
}

/// Now in epoch seconds, as JSON 1.1 timestamps are.
fn now_seconds() -> Json {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Json::from(ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests;
