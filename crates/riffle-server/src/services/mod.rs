//! The registrations of the services served on the port: each implements
//! [`crate::Service`] with its model's facts (target prefix, signing name,
//! eventSource, operations) and hands calls to its crate. Nothing here is
//! called by name from the request path; `riffle serve` lists the
//! services it runs.

pub mod cloudwatch;
pub mod dynamodb;
pub mod firehose;
pub mod glue;
pub mod kinesis;
pub mod lambda;
pub mod s3;

pub use cloudwatch::CloudWatchService;
pub use dynamodb::DynamoDbService;
pub use firehose::FirehoseService;
pub use glue::GlueService;
pub use kinesis::KinesisService;
pub use lambda::LambdaService;

#[cfg(test)]
mod tests {
    use crate::service::ServiceInfo;

    /// Every registration, S3's included.
    const ALL: [&ServiceInfo; 7] = [
        &super::kinesis::KINESIS,
        &super::lambda::LAMBDA,
        &super::firehose::FIREHOSE,
        &super::dynamodb::DYNAMODB,
        &super::cloudwatch::CLOUDWATCH,
        &super::glue::GLUE,
        &super::s3::S3_INFO,
    ];

    #[test]
    fn operations_are_sorted_and_data_events_are_among_them() {
        for info in ALL {
            let name = info.signing_name;
            assert!(info.operations.is_sorted(), "{name}'s operations");
            assert!(info.data_events.is_sorted(), "{name}'s data events");
            for op in info.data_events {
                assert_eq!(info.operation(op), Some(*op), "{name}'s {op}");
            }
        }
    }

    #[test]
    fn no_two_services_claim_the_same_target_query_version_or_rpc_name() {
        for (i, a) in ALL.iter().enumerate() {
            for b in &ALL[i + 1..] {
                let (x, y) = (a.signing_name, b.signing_name);
                assert!(
                    a.target_prefix.is_empty() || a.target_prefix != b.target_prefix,
                    "{x}, {y}"
                );
                assert!(
                    a.rpc_v2_cbor.is_none() || a.rpc_v2_cbor != b.rpc_v2_cbor,
                    "{x}, {y}"
                );
                let version = |i: &ServiceInfo| i.query.map(|q| q.version);
                assert!(version(a).is_none() || version(a) != version(b), "{x}, {y}");
            }
        }
    }
}
