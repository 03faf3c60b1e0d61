//! The DynamoDB subset's errors, each one AWS error code with AWS's
//! message; the edge (`riffle-server`'s `errors`) writes them in the JSON
//! 1.0 shape (`__type` qualified by the model's namespace).

use riffle_coral::json::SerializationError;
use riffle_coral::validate::ValidationError;

#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    #[error("SerializationException: {0}")]
    Serialization(String),
    #[error("ValidationException: {0}")]
    Validation(String),
    #[error("ResourceNotFoundException: {0}")]
    ResourceNotFound(String),
    #[error("ResourceInUseException: {0}")]
    ResourceInUse(String),
    #[error("ConditionalCheckFailedException")]
    ConditionalCheckFailed,
    /// TransactWriteItems: the reasons, one per action, in order.
    #[error("TransactionCanceledException: {0}")]
    TransactionCanceled(String),
    #[error("LimitExceededException: {0}")]
    LimitExceeded(String),
    /// The metadata store failed; the client gets AWS's generic text.
    #[error("storage failure: {0}")]
    Storage(String),
}

impl DynamoError {
    pub fn validation(message: impl Into<String>) -> DynamoError {
        DynamoError::Validation(message.into())
    }

    /// `One or more parameter values were invalid: <detail>`.
    pub fn invalid(detail: impl std::fmt::Display) -> DynamoError {
        DynamoError::Validation(format!(
            "One or more parameter values were invalid: {detail}"
        ))
    }

    /// What item operations on a missing table answer.
    pub fn not_found() -> DynamoError {
        DynamoError::ResourceNotFound("Requested resource not found".to_owned())
    }

    pub fn code(&self) -> &'static str {
        match self {
            DynamoError::Serialization(_) => "SerializationException",
            DynamoError::Validation(_) => "ValidationException",
            DynamoError::ResourceNotFound(_) => "ResourceNotFoundException",
            DynamoError::ResourceInUse(_) => "ResourceInUseException",
            DynamoError::ConditionalCheckFailed => "ConditionalCheckFailedException",
            DynamoError::TransactionCanceled(_) => "TransactionCanceledException",
            DynamoError::LimitExceeded(_) => "LimitExceededException",
            DynamoError::Storage(_) => "InternalServerError",
        }
    }

    pub fn message(&self) -> String {
        match self {
            DynamoError::Serialization(m)
            | DynamoError::Validation(m)
            | DynamoError::ResourceNotFound(m)
            | DynamoError::ResourceInUse(m)
            | DynamoError::LimitExceeded(m) => m.clone(),
            DynamoError::ConditionalCheckFailed => "The conditional request failed".to_owned(),
            DynamoError::TransactionCanceled(reasons) => {
                format!(
                    "Transaction cancelled, please refer cancellation reasons for specific reasons [{reasons}]"
                )
            }
            DynamoError::Storage(_) => "Internal server error".to_owned(),
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            DynamoError::Storage(_) => 500,
            _ => 400,
        }
    }
}

impl From<SerializationError> for DynamoError {
    fn from(err: SerializationError) -> DynamoError {
        DynamoError::Serialization(err.0)
    }
}

impl From<ValidationError> for DynamoError {
    fn from(err: ValidationError) -> DynamoError {
        DynamoError::Validation(err.to_string())
    }
}

impl From<riffle_log::LogError> for DynamoError {
    fn from(err: riffle_log::LogError) -> DynamoError {
        DynamoError::Storage(err.to_string())
    }
}
