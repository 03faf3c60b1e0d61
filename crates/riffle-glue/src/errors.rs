//! The Glue subset's errors, each one of the model's error shapes with
//! AWS's message; the edge (`riffle-server`'s `errors`) writes them in the
//! JSON 1.1 shape.

use riffle_coral::json::SerializationError;
use riffle_coral::validate::ValidationError;

#[derive(Debug, thiserror::Error)]
pub enum GlueError {
    #[error("SerializationException: {0}")]
    Serialization(String),
    #[error("ValidationException: {0}")]
    Validation(String),
    #[error("InvalidInputException: {0}")]
    InvalidInput(String),
    #[error("EntityNotFoundException: {0}")]
    EntityNotFound(String),
    #[error("AlreadyExistsException: {0}")]
    AlreadyExists(String),
    /// The metadata store failed; the client gets AWS's generic text.
    #[error("storage failure: {0}")]
    Storage(String),
}

impl GlueError {
    pub fn database_not_found(name: &str) -> GlueError {
        GlueError::EntityNotFound(format!("Database {name} not found."))
    }

    pub fn table_not_found(name: &str) -> GlueError {
        GlueError::EntityNotFound(format!("Table {name} not found."))
    }

    /// The model's error shape (the `__type`).
    pub fn code(&self) -> &'static str {
        match self {
            GlueError::Serialization(_) => "SerializationException",
            GlueError::Validation(_) => "ValidationException",
            GlueError::InvalidInput(_) => "InvalidInputException",
            GlueError::EntityNotFound(_) => "EntityNotFoundException",
            GlueError::AlreadyExists(_) => "AlreadyExistsException",
            GlueError::Storage(_) => "InternalServiceException",
        }
    }

    pub fn message(&self) -> String {
        match self {
            GlueError::Serialization(m)
            | GlueError::Validation(m)
            | GlueError::InvalidInput(m)
            | GlueError::EntityNotFound(m)
            | GlueError::AlreadyExists(m) => m.clone(),
            GlueError::Storage(_) => "Internal service error".to_owned(),
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            GlueError::Storage(_) => 500,
            _ => 400,
        }
    }
}

impl From<SerializationError> for GlueError {
    fn from(err: SerializationError) -> GlueError {
        GlueError::Serialization(err.0)
    }
}

impl From<ValidationError> for GlueError {
    fn from(err: ValidationError) -> GlueError {
        GlueError::Validation(err.to_string())
    }
}

impl From<riffle_log::LogError> for GlueError {
    fn from(err: riffle_log::LogError) -> GlueError {
        GlueError::Storage(err.to_string())
    }
}
