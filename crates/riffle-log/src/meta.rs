//! The metadata store: a single redb table of UTF-8 keys to opaque values,
//! where every commit is one atomic, durable write transaction.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, TableDefinition};

use crate::{LogError, MetaOp, Result};

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

pub(crate) struct Meta {
    db: redb::Database,
    path: PathBuf,
}

/// redb's errors are several types; all become `LogError::Meta` naming the
/// database file.
fn meta_err<E: std::fmt::Display>(path: &Path) -> impl FnOnce(E) -> LogError + '_ {
    move |e| LogError::Meta(format!("{}: {e}", path.display()))
}

impl Meta {
    pub fn open(path: &Path) -> Result<Meta> {
        let db = redb::Database::create(path).map_err(meta_err(path))?;
        // Create the table up front so readers never see it missing.
        let tx = db.begin_write().map_err(meta_err(path))?;
        tx.open_table(TABLE).map_err(meta_err(path))?;
        tx.commit().map_err(meta_err(path))?;
        Ok(Meta {
            db,
            path: path.to_path_buf(),
        })
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let get = || -> Result<Option<Vec<u8>>, redb::Error> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(TABLE)?;
            Ok(table.get(key)?.map(|v| v.value().to_vec()))
        };
        get().map_err(meta_err(&self.path))
    }

    pub fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let scan = || -> Result<Vec<(String, Vec<u8>)>, redb::Error> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(TABLE)?;
            let mut out = Vec::new();
            for entry in table.range(prefix..)? {
                let (k, v) = entry?;
                if !k.value().starts_with(prefix) {
                    break;
                }
                out.push((k.value().to_string(), v.value().to_vec()));
            }
            Ok(out)
        };
        scan().map_err(meta_err(&self.path))
    }

    /// One write transaction of `ops`; `durable` false commits it with
    /// `Durability::None` (no sync; durable with the next durable commit).
    pub fn commit(&self, ops: &[MetaOp], durable: bool) -> Result<()> {
        let commit = || -> Result<(), redb::Error> {
            let mut tx = self.db.begin_write()?;
            if !durable {
                tx.set_durability(redb::Durability::None)?;
            }
            {
                let mut table = tx.open_table(TABLE)?;
                for op in ops {
                    match op {
                        MetaOp::Put { key, value } => {
                            table.insert(key.as_str(), value.as_slice())?;
                        }
                        MetaOp::Delete { key } => {
                            table.remove(key.as_str())?;
                        }
                    }
                }
            }
            // Durability::Immediate (the default): durable once this returns,
            // and so is every Durability::None commit before it.
            Ok(tx.commit()?)
        };
        commit().map_err(meta_err(&self.path))
    }
}
