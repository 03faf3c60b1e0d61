//! The agent's errors: a configuration it refuses (exit 2) or a failure to
//! keep its checkpoints (exit 1). Failed sends are retried, never errors.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot read {}: {source}", path.display())]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("agent.json: {0}")]
    Config(String),
    #[error("checkpoint file {}: {source}", path.display())]
    Checkpoint {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint file {}: not a riffle agent checkpoint file: {reason}", path.display())]
    CheckpointFormat { path: PathBuf, reason: String },
}

impl AgentError {
    /// Whether the error is the user's configuration (exit status 2).
    pub fn is_config(&self) -> bool {
        matches!(self, AgentError::ReadConfig { .. } | AgentError::Config(_))
    }
}
