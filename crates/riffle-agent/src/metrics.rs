//! The agent's CloudWatch metrics: per destination, BytesSent,
//! RecordSendAttempts, RecordSendErrors and ServiceErrors, with the
//! dimension `Destination` = `KinesisStream:<name>` or
//! `DeliveryStream:<name>`, put every `cloudwatch.metricsBufferTimeMillis`
//! in `cloudwatch.namespace`, as the Java agent's senders count them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_cloudwatch::error::DisplayErrorContext;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

/// The counts of one destination since the last put.
#[derive(Debug)]
pub struct SendMetrics {
    destination: String,
    bytes_sent: AtomicU64,
    attempts: AtomicU64,
    record_errors: AtomicU64,
    service_errors: AtomicU64,
}

impl SendMetrics {
    pub fn new(destination: String) -> SendMetrics {
        SendMetrics {
            destination,
            bytes_sent: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            record_errors: AtomicU64::new(0),
            service_errors: AtomicU64::new(0),
        }
    }

    /// A call that was answered: its records, the failed ones, the bytes taken.
    pub fn answered(&self, attempted: usize, failed: usize, bytes: usize) {
        self.attempts.fetch_add(attempted as u64, Ordering::Relaxed);
        self.record_errors
            .fetch_add(failed as u64, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A call that failed as a whole.
    pub fn call_failed(&self, attempted: usize) {
        self.attempts.fetch_add(attempted as u64, Ordering::Relaxed);
        self.service_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts since the last take, as CloudWatch data, reset to zero.
    fn take(&self) -> Vec<MetricDatum> {
        let dimension = Dimension::builder()
            .name("Destination")
            .value(&self.destination)
            .build();
        [
            ("BytesSent", &self.bytes_sent, StandardUnit::Bytes),
            ("RecordSendAttempts", &self.attempts, StandardUnit::Count),
            ("RecordSendErrors", &self.record_errors, StandardUnit::Count),
            ("ServiceErrors", &self.service_errors, StandardUnit::Count),
        ]
        .into_iter()
        .map(|(name, counter, unit)| {
            MetricDatum::builder()
                .metric_name(name)
                .dimensions(dimension.clone())
                .value(counter.swap(0, Ordering::Relaxed) as f64)
                .unit(unit)
                .build()
        })
        .collect()
    }
}

/// Puts every destination's counts each `interval`, until aborted.
pub async fn emit(
    client: aws_sdk_cloudwatch::Client,
    namespace: String,
    interval: Duration,
    destinations: Vec<Arc<SendMetrics>>,
) {
    loop {
        tokio::time::sleep(interval).await;
        let data: Vec<MetricDatum> = destinations.iter().flat_map(|d| d.take()).collect();
        let put = client
            .put_metric_data()
            .namespace(&namespace)
            .set_metric_data(Some(data))
            .send()
            .await;
        if let Err(err) = put {
            tracing::warn!("PutMetricData failed: {}", DisplayErrorContext(&err));
        }
    }
}
