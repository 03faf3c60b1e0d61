//! The registrations of the services served on the port: each implements
//! [`crate::Service`] with its model's facts (target prefix, signing name,
//! eventSource, operations) and hands calls to its crate. Nothing here is
//! called by name from the request path; `riffle serve` lists the
//! services it runs.

pub mod cloudwatch;
pub mod dynamodb;
pub mod firehose;
pub mod kinesis;
pub mod s3;

pub use cloudwatch::CloudWatchService;
pub use dynamodb::DynamoDbService;
pub use firehose::FirehoseService;
pub use kinesis::KinesisService;
