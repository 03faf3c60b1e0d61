//! The checkpoint file: per flow and file, the byte offset up to which every
//! record was acknowledged by the service (or dropped by a converter), so a
//! restart, even after `kill -9`, resumes there and loses no line.
//!
//! Layout (JSON, one document, replaced whole on each write):
//!
//! ```json
//! {"version": 1,
//!  "files": [{"flow": "kinesis:logs:/var/log/app/*.log*",
//!             "path": "/var/log/app/app.log", "dev": 2049, "inode": 131,
//!             "offset": 5120, "headLength": 1024, "headCrc32c": 3735928559}]}
//! ```
//!
//! `dev` and `inode` identify the file across renames; `headLength` bytes
//! from its start, whose CRC-32C is `headCrc32c`, tell it from a file that
//! reuses the inode and find it again in a copy (copy-truncate rotation).
//! A write goes to `<file>.tmp`, is fsynced, renamed over the file, and the
//! directory fsynced: a crash leaves the old file or the new one, whole.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::AgentError;

/// The format's version; a file of another is refused, not misread.
const VERSION: u32 = 1;

/// One file's acknowledged position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileCheckpoint {
    pub flow: String,
    pub path: PathBuf,
    pub dev: u64,
    pub inode: u64,
    pub offset: u64,
    pub head_length: u32,
    #[serde(rename = "headCrc32c")]
    pub head_crc32c: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct Document {
    version: u32,
    files: Vec<FileCheckpoint>,
}

/// Reads the checkpoint file; none yet is an empty list.
pub fn load(path: &Path) -> Result<Vec<FileCheckpoint>, AgentError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(AgentError::Checkpoint {
                path: path.to_owned(),
                source,
            });
        }
    };
    let document: Document =
        serde_json::from_slice(&bytes).map_err(|err| AgentError::CheckpointFormat {
            path: path.to_owned(),
            reason: err.to_string(),
        })?;
    if document.version != VERSION {
        return Err(AgentError::CheckpointFormat {
            path: path.to_owned(),
            reason: format!("version {} (this agent writes {VERSION})", document.version),
        });
    }
    Ok(document.files)
}

/// Replaces the checkpoint file atomically and durably.
pub fn store(path: &Path, files: &[FileCheckpoint]) -> Result<(), AgentError> {
    let failed = |source| AgentError::Checkpoint {
        path: path.to_owned(),
        source,
    };
    let document = Document {
        version: VERSION,
        files: files.to_vec(),
    };
    // Serializing plain structs of strings and integers cannot fail.
    let bytes = serde_json::to_vec(&document).expect("a checkpoint document serializes");
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let mut file = std::fs::File::create(&temp).map_err(failed)?;
    file.write_all(&bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    drop(file);
    std::fs::rename(&temp, path).map_err(failed)?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints");
        assert_eq!(load(&path).unwrap(), Vec::new());
        let files = vec![FileCheckpoint {
            flow: "kinesis:s:/var/log/*.log".into(),
            path: "/var/log/a.log".into(),
            dev: 2049,
            inode: u64::MAX,
            offset: 5120,
            head_length: 1024,
            head_crc32c: 0xdead_beef,
        }];
        store(&path, &files).unwrap();
        assert_eq!(load(&path).unwrap(), files);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"headCrc32c\":3735928559"), "{text}");
        assert!(!dir.path().join("checkpoints.tmp").exists());
    }

    #[test]
    fn a_file_of_another_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints");
        std::fs::write(&path, br#"{"version": 2, "files": []}"#).unwrap();
        assert!(matches!(
            load(&path),
            Err(AgentError::CheckpointFormat { .. })
        ));
        std::fs::write(&path, b"SQLite format 3\0").unwrap();
        assert!(load(&path).is_err());
    }
}
