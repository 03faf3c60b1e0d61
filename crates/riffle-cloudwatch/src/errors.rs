//! CloudWatch's errors: each variant is one of the model's (or the query
//! front end's) error codes, with AWS's wording.

/// What PutMetricData (or any other operation) refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudWatchError {
    /// `InvalidParameterValueException` (query code `InvalidParameterValue`).
    #[error("InvalidParameterValue: {0}")]
    InvalidParameterValue(String),
    /// `MissingRequiredParameterException` (query code `MissingParameter`).
    #[error("MissingParameter: {0}")]
    MissingParameter(String),
    /// `InvalidParameterCombinationException` (`InvalidParameterCombination`).
    #[error("InvalidParameterCombination: {0}")]
    InvalidParameterCombination(String),
    /// The body is not the protocol's encoding of a structure.
    #[error("SerializationException: {0}")]
    Serialization(String),
    /// A CloudWatch operation Riffle does not serve.
    #[error("InvalidAction: {0}")]
    Unsupported(&'static str),
}

impl CloudWatchError {
    /// The query-protocol error code, which `x-amzn-query-error` carries in
    /// the JSON and CBOR protocols (the model is `awsQueryCompatible`).
    pub fn code(&self) -> &'static str {
        match self {
            CloudWatchError::InvalidParameterValue(_) => "InvalidParameterValue",
            CloudWatchError::MissingParameter(_) => "MissingParameter",
            CloudWatchError::InvalidParameterCombination(_) => "InvalidParameterCombination",
            CloudWatchError::Serialization(_) => "SerializationException",
            // The query front end's code for an action it does not serve.
            CloudWatchError::Unsupported(_) => "InvalidAction",
        }
    }

    /// The error's shape in the model: the JSON and CBOR `__type`.
    pub fn shape(&self) -> &'static str {
        match self {
            CloudWatchError::InvalidParameterValue(_) => "InvalidParameterValueException",
            CloudWatchError::MissingParameter(_) => "MissingRequiredParameterException",
            CloudWatchError::InvalidParameterCombination(_) => {
                "InvalidParameterCombinationException"
            }
            CloudWatchError::Serialization(_) => "SerializationException",
            CloudWatchError::Unsupported(_) => "InvalidAction",
        }
    }

    /// AWS's message.
    pub fn message(&self) -> String {
        match self {
            CloudWatchError::InvalidParameterValue(m)
            | CloudWatchError::MissingParameter(m)
            | CloudWatchError::InvalidParameterCombination(m)
            | CloudWatchError::Serialization(m) => m.clone(),
            CloudWatchError::Unsupported(action) => format!(
                "Riffle does not support the CloudWatch operation {action}; it serves PutMetricData."
            ),
        }
    }
}
