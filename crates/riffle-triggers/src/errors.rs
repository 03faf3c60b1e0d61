//! The Lambda API's errors for event source mappings: each variant one of
//! the model's error shapes, with Lambda's wording.

use riffle_coral::validate::ValidationError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggersError {
    /// A member's model constraint (length, range, enum), in the front
    /// end's `ValidationException` text.
    #[error("ValidationException: {0}")]
    Validation(String),
    /// `InvalidParameterValueException`: a value Lambda refuses for what it
    /// means (a stream it cannot read, a starting position it lacks).
    #[error("InvalidParameterValueException: {0}")]
    InvalidParameterValue(String),
    /// `ResourceNotFoundException` (404): no such function or mapping.
    #[error("ResourceNotFoundException: {0}")]
    ResourceNotFound(String),
    /// `ResourceConflictException` (409): a mapping of that function to
    /// that source exists already.
    #[error("ResourceConflictException: {0}")]
    ResourceConflict(String),
    /// `ServiceException` (500): the metadata store failed.
    #[error("ServiceException: {0}")]
    Service(String),
}

impl TriggersError {
    /// The model's shape name: restJson1's `x-amzn-ErrorType`.
    pub fn code(&self) -> &'static str {
        match self {
            TriggersError::Validation(_) => "ValidationException",
            TriggersError::InvalidParameterValue(_) => "InvalidParameterValueException",
            TriggersError::ResourceNotFound(_) => "ResourceNotFoundException",
            TriggersError::ResourceConflict(_) => "ResourceConflictException",
            TriggersError::Service(_) => "ServiceException",
        }
    }

    /// The HTTP status Lambda answers it with (the model's `httpStatusCode`).
    pub fn status(&self) -> u16 {
        match self {
            TriggersError::Validation(_) | TriggersError::InvalidParameterValue(_) => 400,
            TriggersError::ResourceNotFound(_) => 404,
            TriggersError::ResourceConflict(_) => 409,
            TriggersError::Service(_) => 500,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            TriggersError::Validation(m)
            | TriggersError::InvalidParameterValue(m)
            | TriggersError::ResourceNotFound(m)
            | TriggersError::ResourceConflict(m)
            | TriggersError::Service(m) => m,
        }
    }
}

impl From<ValidationError> for TriggersError {
    fn from(err: ValidationError) -> Self {
        TriggersError::Validation(err.0)
    }
}

impl From<riffle_log::LogError> for TriggersError {
    fn from(err: riffle_log::LogError) -> Self {
        TriggersError::Service(format!("The mapping could not be stored: {err}"))
    }
}
