//! Per-operation request counts and latencies for the metrics endpoint
//! (CloudWatch's `<Operation>.Success` and `<Operation>.Latency`, and
//! errors by class) of every registered service, kept in atomics indexed by
//! the operation's position in its model, so recording a request takes no
//! lock and no allocation.
//!
//! Rendered as Prometheus series:
//!
//! ```text
//! riffle_api_requests_total{service="kinesis",operation="PutRecord",outcome="success"} 1200
//! riffle_api_request_duration_seconds_bucket{service="kinesis",operation="PutRecord",le="0.001"} 950
//! riffle_api_request_duration_seconds_sum{service="kinesis",operation="PutRecord"} 0.84
//! riffle_api_request_duration_seconds_count{service="kinesis",operation="PutRecord"} 1200
//! riffle_api_requests_by_protocol_total{service="kinesis",protocol="cbor"} 1150
//! ```
//!
//! The last counts each service's requests by the wire protocol the client
//! spoke ([`ApiProtocol`]), which proves what an SDK uses (the Java SDK's
//! CBOR for Kinesis, botocore's rpc-v2-cbor for CloudWatch).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::service::ServiceInfo;

/// Upper bounds of the latency buckets, in microseconds: 100 µs to 10 s,
/// about three per decade (a local API answers in well under a
/// millisecond; a long-poll or a full disk takes seconds).
const BUCKETS_MICROS: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    2_500_000, 10_000_000,
];

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    /// A 4xx answer: the caller's error, throttling included.
    ClientError,
    /// A 5xx answer.
    ServerError,
}

const OUTCOMES: [(Outcome, &str); 3] = [
    (Outcome::Success, "success"),
    (Outcome::ClientError, "client_error"),
    (Outcome::ServerError, "server_error"),
];

/// The wire protocols the port speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ApiProtocol {
    Json10,
    Json11,
    /// `application/x-amz-cbor-1.1` with `X-Amz-Target` (Kinesis).
    Cbor,
    /// Form posts of `Action=…&Version=…`.
    Query,
    /// smithy-rpc-v2-cbor.
    RpcV2Cbor,
    /// S3's REST API.
    RestXml,
    /// JSON posted to the HTTP ingest listener (`ingest`).
    HttpIngest,
    /// restJson1 (Lambda's API).
    RestJson,
    /// In-process calls of the web console (`direct`).
    Console,
}

impl ApiProtocol {
    const ALL: [(ApiProtocol, &'static str); 9] = [
        (ApiProtocol::Json10, "json1.0"),
        (ApiProtocol::Json11, "json1.1"),
        (ApiProtocol::Cbor, "cbor"),
        (ApiProtocol::Query, "query"),
        (ApiProtocol::RpcV2Cbor, "rpcv2cbor"),
        (ApiProtocol::RestXml, "rest-xml"),
        (ApiProtocol::HttpIngest, "http-ingest"),
        (ApiProtocol::RestJson, "rest-json"),
        (ApiProtocol::Console, "console"),
    ];

    fn slot(self) -> usize {
        ApiProtocol::ALL
            .iter()
            .position(|(p, _)| *p == self)
            .unwrap_or(0)
    }
}

#[derive(Default)]
struct Operation {
    outcomes: [AtomicU64; 3],
    /// Counts per bucket (not cumulative); the last counts what is slower.
    buckets: [AtomicU64; BUCKETS_MICROS.len() + 1],
    micros_sum: AtomicU64,
}

/// The counters of every operation of each service's model.
#[derive(Default)]
pub struct RequestMetrics {
    services: Vec<(&'static ServiceInfo, Vec<Operation>)>,
    /// Per service (in `services`' order), requests by [`ApiProtocol`].
    protocols: Vec<[AtomicU64; ApiProtocol::ALL.len()]>,
}

impl RequestMetrics {
    /// Counters for the operations of `services`.
    pub fn new(services: &[&'static ServiceInfo]) -> RequestMetrics {
        let services: Vec<_> = services
            .iter()
            .map(|&info| {
                let operations = info.operations.iter().map(|_| Operation::default());
                (info, operations.collect())
            })
            .collect();
        let protocols = services.iter().map(|_| Default::default()).collect();
        RequestMetrics {
            services,
            protocols,
        }
    }

    /// Counts a request of `service` in `protocol`.
    pub(crate) fn record_protocol(&self, service: &ServiceInfo, protocol: ApiProtocol) {
        let at = self
            .services
            .iter()
            .position(|(info, _)| info.signing_name == service.signing_name);
        if let Some(counts) = at.and_then(|at| self.protocols.get(at)) {
            counts[protocol.slot()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The protocol counts that are not zero.
    fn write_protocols(&self, out: &mut String) {
        out.push_str(
            "# HELP riffle_api_requests_by_protocol_total API requests by service and the wire protocol the client spoke.\n\
             # TYPE riffle_api_requests_by_protocol_total counter\n",
        );
        for ((info, _), counts) in self.services.iter().zip(&self.protocols) {
            for ((_, label), count) in ApiProtocol::ALL.iter().zip(counts) {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "riffle_api_requests_by_protocol_total{{service=\"{}\",protocol=\"{label}\"}} {count}",
                        info.signing_name
                    );
                }
            }
        }
    }

    pub(crate) fn record(
        &self,
        service: &ServiceInfo,
        operation: &str,
        outcome: Outcome,
        took: Duration,
    ) {
        let Some((info, operations)) = self
            .services
            .iter()
            .find(|(info, _)| info.signing_name == service.signing_name)
        else {
            return;
        };
        let Ok(at) = info.operations.binary_search(&operation) else {
            return;
        };
        let op = &operations[at];
        let slot = OUTCOMES
            .iter()
            .position(|(o, _)| *o == outcome)
            .unwrap_or(0);
        op.outcomes[slot].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_MICROS.partition_point(|&bound| bound < micros);
        op.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        op.micros_sum.fetch_add(micros, Ordering::Relaxed);
    }

    /// The series of every operation called at least once.
    pub(crate) fn write(&self, out: &mut String) {
        out.push_str(
            "# HELP riffle_api_requests_total API requests by operation and outcome (success, client_error for 4xx, server_error for 5xx).\n\
             # TYPE riffle_api_requests_total counter\n",
        );
        let called: Vec<(String, &Operation)> = self
            .services
            .iter()
            .flat_map(|(info, operations)| {
                let service = info.signing_name;
                info.operations
                    .iter()
                    .zip(operations)
                    .map(move |(name, op)| {
                        (format!("service=\"{service}\",operation=\"{name}\""), op)
                    })
            })
            .filter(|(_, op)| op.outcomes.iter().any(|n| n.load(Ordering::Relaxed) > 0))
            .collect();
        for (name, op) in &called {
            for ((_, label), count) in OUTCOMES.iter().zip(&op.outcomes) {
                let _ = writeln!(
                    out,
                    "riffle_api_requests_total{{{name},outcome=\"{label}\"}} {}",
                    count.load(Ordering::Relaxed)
                );
            }
        }
        out.push_str(
            "# HELP riffle_api_request_duration_seconds Time from the request's arrival to its answer (for SubscribeToShard, to the stream's start).\n\
             # TYPE riffle_api_request_duration_seconds histogram\n",
        );
        for (name, op) in &called {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS_MICROS.iter().zip(&op.buckets) {
                cumulative += count.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "riffle_api_request_duration_seconds_bucket{{{name},le=\"{}\"}} {cumulative}",
                    *bound as f64 / 1e6
                );
            }
            cumulative += op.buckets[BUCKETS_MICROS.len()].load(Ordering::Relaxed);
            let sum = op.micros_sum.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "riffle_api_request_duration_seconds_bucket{{{name},le=\"+Inf\"}} {cumulative}\n\
                 riffle_api_request_duration_seconds_sum{{{name}}} {sum}\n\
                 riffle_api_request_duration_seconds_count{{{name}}} {cumulative}"
            );
        }
        self.write_protocols(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::firehose::FIREHOSE;
    use crate::services::kinesis::KINESIS;

    #[test]
    fn requests_land_in_their_outcome_and_latency_bucket() {
        let metrics = RequestMetrics::new(&[&KINESIS, &FIREHOSE]);
        let record = |op, outcome, took| metrics.record(&KINESIS, op, outcome, took);
        record("PutRecord", Outcome::Success, Duration::from_micros(80));
        record("PutRecord", Outcome::Success, Duration::from_micros(1_000));
        record("PutRecord", Outcome::ClientError, Duration::from_secs(20));
        record("NotAnOperation", Outcome::Success, Duration::ZERO);
        // The same name in another service is another series.
        metrics.record(&FIREHOSE, "PutRecord", Outcome::Success, Duration::ZERO);
        let mut out = String::new();
        metrics.write(&mut out);
        for line in [
            r#"riffle_api_requests_total{service="kinesis",operation="PutRecord",outcome="success"} 2"#,
            r#"riffle_api_requests_total{service="kinesis",operation="PutRecord",outcome="client_error"} 1"#,
            r#"riffle_api_requests_total{service="kinesis",operation="PutRecord",outcome="server_error"} 0"#,
            r#"riffle_api_request_duration_seconds_bucket{service="kinesis",operation="PutRecord",le="0.0001"} 1"#,
            r#"riffle_api_request_duration_seconds_bucket{service="kinesis",operation="PutRecord",le="0.001"} 2"#,
            r#"riffle_api_request_duration_seconds_bucket{service="kinesis",operation="PutRecord",le="10"} 2"#,
            r#"riffle_api_request_duration_seconds_bucket{service="kinesis",operation="PutRecord",le="+Inf"} 3"#,
            r#"riffle_api_request_duration_seconds_sum{service="kinesis",operation="PutRecord"} 20.00108"#,
            r#"riffle_api_request_duration_seconds_count{service="kinesis",operation="PutRecord"} 3"#,
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line} in\n{out}");
        }
        assert!(out.contains(r#"{service="firehose",operation="PutRecord",outcome="success"} 1"#));
        // Operations never called have no series.
        assert!(!out.contains("GetRecords"));
    }

    #[test]
    fn requests_are_counted_by_the_protocol_spoken() {
        let metrics = RequestMetrics::new(&[&KINESIS, &FIREHOSE]);
        metrics.record_protocol(&KINESIS, ApiProtocol::Cbor);
        metrics.record_protocol(&KINESIS, ApiProtocol::Cbor);
        metrics.record_protocol(&FIREHOSE, ApiProtocol::Json11);
        let mut out = String::new();
        metrics.write(&mut out);
        for line in [
            r#"riffle_api_requests_by_protocol_total{service="kinesis",protocol="cbor"} 2"#,
            r#"riffle_api_requests_by_protocol_total{service="firehose",protocol="json1.1"} 1"#,
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line} in\n{out}");
        }
        assert!(!out.contains(r#"protocol="json1.0""#));
    }
}
