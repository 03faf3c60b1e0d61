//! The DynamoDB subset's errors, each one AWS error code with AWS's
//! message; the edge (`riffle-server`'s `errors`) writes them in the JSON
//! 1.0 shape (`__type` qualified by the model's namespace).

use riffle_coral::json::SerializationError;
use riffle_coral::validate::ValidationError;

/// ConditionalCheckFailedException's message.
const CONDITION_FAILED: &str = "The conditional request failed";

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
    /// `item`: the item as it was, when the request asked for it
    /// (`ReturnValuesOnConditionCheckFailure: ALL_OLD`), in the wire's JSON.
    #[error("ConditionalCheckFailedException")]
    ConditionalCheckFailed { item: Option<serde_json::Value> },
    /// TransactWriteItems: one reason code per action, in order (`None`
    /// for the actions that did not fail).
    #[error("TransactionCanceledException: {reasons:?}")]
    TransactionCanceled { reasons: Vec<&'static str> },
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
            DynamoError::ConditionalCheckFailed { .. } => "ConditionalCheckFailedException",
            DynamoError::TransactionCanceled { .. } => "TransactionCanceledException",
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
            DynamoError::ConditionalCheckFailed { .. } => CONDITION_FAILED.to_owned(),
            DynamoError::TransactionCanceled { reasons } => format!(
                "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
                reasons.join(", ")
            ),
            DynamoError::Storage(_) => "Internal server error".to_owned(),
        }
    }

    /// The exception's members besides its message: a failed condition's
    /// `Item`, a cancelled transaction's `CancellationReasons` (each
    /// `{"Code":…}` with the message for a failed condition), as the
    /// model's exception shapes name them.
    pub fn members(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        match self {
            DynamoError::ConditionalCheckFailed { item: Some(item) } => Some(
                serde_json::Map::from_iter([("Item".to_owned(), item.clone())]),
            ),
            DynamoError::TransactionCanceled { reasons } => {
                let reasons = reasons
                    .iter()
                    .map(|code| match *code {
                        "ConditionalCheckFailed" => {
                            serde_json::json!({"Code": code, "Message": CONDITION_FAILED})
                        }
                        _ => serde_json::json!({"Code": code}),
                    })
                    .collect();
                Some(serde_json::Map::from_iter([(
                    "CancellationReasons".to_owned(),
                    serde_json::Value::Array(reasons),
                )]))
            }
            _ => None,
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
