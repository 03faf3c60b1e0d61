//! The `firehose` workload: PutRecordBatch into a DirectPut delivery stream
//! for the measured time, then every delivered object read back through the
//! S3 API (ListObjectsV2 + GetObject, GZIP inflated) until each
//! acknowledged record was found or the drain timeout passed.
//!
//! Nothing is read while the writers run, so the read-back costs the
//! measured server nothing. When each object landed is its LastModified
//! (the store's clock at upload, the same machine's wall clock as the
//! bench's), which gives delivered throughput and DataFreshness (the age of
//! an object's oldest record when it landed) after the fact.

use std::collections::HashSet;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::{Ctx, write};
use crate::args::{Compression, FirehosePlan};
use crate::delivery::{self, Clients, Listed};
use crate::error::BenchError;
use crate::payload::Verifier;
use crate::report::Summary;
use crate::stats::{self, MB, Measured};

/// Between two listings while waiting for the last objects.
const DRAIN_POLL: Duration = Duration::from_millis(200);
/// The two bytes every gzip member starts with (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// What `firehose` reports beside the write side and the verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FirehoseReport {
    pub delivery_stream: String,
    pub bucket: String,
    pub compression: String,
    pub buffer_size_mb: u32,
    pub buffer_interval_s: u32,
    /// The Lambda processor's function, when records were transformed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transform_function: Option<String>,
    /// The MetadataExtraction query, when records were partitioned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_query: Option<String>,
    /// Objects read back.
    pub objects: u64,
    /// Record payload bytes found in them (inflated).
    pub delivered_bytes: u64,
    /// Bytes the objects take in the store (compressed, for GZIP).
    pub stored_bytes: u64,
    /// Payload MB/s delivered while the writers ran: bytes of the objects
    /// that landed by the end of writing, from the first acknowledgement
    /// to that end. The sustained rate, which the last, partial buffer
    /// (delivered by the interval hint) does not dilute.
    pub delivered_mb_per_s: f64,
    /// Payload MB/s from the first acknowledgement to the last object
    /// landed, that last buffer included.
    pub delivered_to_last_mb_per_s: f64,
    /// Seconds from the end of writing to the last object landed.
    pub last_object_after_writes_s: f64,
    /// DataFreshness per object, in milliseconds: from its oldest record's
    /// send to the object's LastModified.
    pub freshness_ms: Option<Freshness>,
    /// Objects that were not gzip although GZIP was asked for (read as
    /// they are).
    pub objects_not_compressed: u64,
    /// Objects whose length is not a whole number of records.
    pub ragged_objects: u64,
    /// Every acknowledged record arrived before the drain timeout.
    pub drained: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Freshness {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

impl Freshness {
    fn of(mut ages: Vec<u64>) -> Option<Freshness> {
        ages.sort_unstable();
        let at = |q: f64| ages[((ages.len() - 1) as f64 * q).round() as usize];
        (!ages.is_empty()).then(|| Freshness {
            p50: at(0.50),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

/// What one object held.
struct ObjectCheck {
    payload_bytes: u64,
    oldest_sent_ns: Option<u64>,
    gzip: bool,
    ragged: bool,
}

/// Creates the bucket and the delivery stream, runs the writers, reads
/// everything back, cleans up.
pub async fn run(
    ctx: &Arc<Ctx>,
    plan: &FirehosePlan,
    clients: &Clients,
) -> Result<Summary, BenchError> {
    let stream = &ctx.stream.name;
    let created = delivery::create_bucket(&clients.s3, &plan.bucket).await?;
    // The bucket the bench created holds only this run's objects; in a
    // given one, the run's own prefix keeps them apart.
    let prefix = format!("{stream}/");
    delivery::create_delivery_stream(&clients.firehose, stream, plan, &prefix).await?;
    let list_prefix = if created { "" } else { prefix.as_str() };
    let outcome = measure(ctx, plan, clients, list_prefix).await;
    let keys = match &outcome {
        Ok((_, keys)) => keys.clone(),
        Err(_) => Vec::new(),
    };
    let cleaned = delivery::clean_up(clients, stream, &plan.bucket, &keys, created).await;
    let (summary, _) = outcome?;
    cleaned?;
    Ok(summary)
}

async fn measure(
    ctx: &Arc<Ctx>,
    plan: &FirehosePlan,
    clients: &Clients,
    prefix: &str,
) -> Result<(Summary, Vec<String>), BenchError> {
    let wall_at_epoch = wall_ms() - ctx.epoch.elapsed().as_millis() as u64;
    let measured = Arc::new(Measured::default());
    let cpu = stats::Cpu::now();
    let spec = write::PassSpec::measured(ctx);
    let (elapsed, samples) = write::pass(ctx, spec, &measured, "firehose").await;
    let cpu = cpu.elapsed();
    let writes_end_ms = wall_ms();
    let drained = drain(ctx, plan, clients, prefix).await?;
    let verdict = ctx.verifier.verdict(ctx.issued());
    let first_ack_ns = ctx.first_ack_ns.load(std::sync::atomic::Ordering::Relaxed);
    let first_ack_ms =
        wall_at_epoch + first_ack_ns.min(ctx.ns_since_epoch(Instant::now())) / 1_000_000;
    let report = drained.report(ctx, plan, first_ack_ms, writes_end_ms, wall_at_epoch);
    let mut summary = Summary::build(ctx, &measured, elapsed, cpu, samples, Some(verdict));
    summary.firehose = Some(report);
    Ok((summary, drained.keys))
}

/// The objects read back, and what each held.
#[derive(Default)]
struct Drained {
    keys: Vec<String>,
    /// (object, what it held), in the order they were read.
    objects: Vec<(Listed, ObjectCheck)>,
    complete: bool,
}

/// Lists and reads objects until every acknowledged record was seen, or
/// the interval hint plus the drain timeout passed since writing ended.
async fn drain(
    ctx: &Ctx,
    plan: &FirehosePlan,
    clients: &Clients,
    prefix: &str,
) -> Result<Drained, BenchError> {
    let deadline =
        Instant::now() + Duration::from_secs(u64::from(plan.buffer_interval)) + plan.drain_timeout;
    let mut seen = HashSet::new();
    let mut drained = Drained::default();
    loop {
        for object in delivery::list(&clients.s3, &plan.bucket, prefix).await? {
            if !seen.insert(object.key.clone()) {
                continue;
            }
            let body = delivery::get(&clients.s3, &plan.bucket, &object.key).await?;
            // Inline: the writers are done, nothing else waits for this
            // thread.
            let check = match plan.partition_query {
                Some(_) => verify_json_records(&ctx.verifier, &body),
                None => verify_records(&ctx.verifier, &body, ctx.plan.record_size),
            };
            drained.keys.push(object.key.clone());
            drained.objects.push((object, check));
        }
        drained.complete = ctx.verifier.complete();
        if drained.complete || Instant::now() > deadline {
            return Ok(drained);
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

impl Drained {
    fn report(
        &self,
        ctx: &Ctx,
        plan: &FirehosePlan,
        first_ack_ms: u64,
        writes_end_ms: u64,
        wall_at_epoch: u64,
    ) -> FirehoseReport {
        let total: u64 = self.objects.iter().map(|(_, c)| c.payload_bytes).sum();
        let under_load: u64 = self
            .objects
            .iter()
            .filter(|(o, _)| o.last_modified_ms <= writes_end_ms)
            .map(|(_, c)| c.payload_bytes)
            .sum();
        let last_ms = self
            .objects
            .iter()
            .map(|(o, _)| o.last_modified_ms)
            .max()
            .unwrap_or(writes_end_ms);
        let rate = |bytes: u64, until_ms: u64| {
            let secs = until_ms.saturating_sub(first_ack_ms) as f64 / 1000.0;
            if secs > 0.0 {
                bytes as f64 / MB / secs
            } else {
                0.0
            }
        };
        let ages = self
            .objects
            .iter()
            .filter_map(|(o, c)| {
                let oldest_ms = wall_at_epoch + c.oldest_sent_ns? / 1_000_000;
                Some(o.last_modified_ms.saturating_sub(oldest_ms))
            })
            .collect();
        FirehoseReport {
            delivery_stream: ctx.stream.name.clone(),
            bucket: plan.bucket.clone(),
            compression: plan.compression.as_str().to_owned(),
            buffer_size_mb: plan.buffer_size_mb,
            buffer_interval_s: plan.buffer_interval,
            transform_function: plan.transform_function.clone(),
            partition_query: plan.partition_query.clone(),
            objects: self.objects.len() as u64,
            delivered_bytes: total,
            stored_bytes: self.objects.iter().map(|(o, _)| o.size).sum(),
            delivered_mb_per_s: rate(under_load, writes_end_ms),
            delivered_to_last_mb_per_s: rate(total, last_ms),
            last_object_after_writes_s: last_ms.saturating_sub(writes_end_ms) as f64 / 1000.0,
            freshness_ms: Freshness::of(ages),
            objects_not_compressed: if plan.compression == Compression::Gzip {
                self.objects.iter().filter(|(_, c)| !c.gzip).count() as u64
            } else {
                0
            },
            ragged_objects: self.objects.iter().filter(|(_, c)| c.ragged).count() as u64,
            drained: self.complete,
        }
    }
}

/// Splits an object (inflated if it is gzip) into `record_size` payloads
/// and hands each to the verifier.
fn verify_records(verifier: &Verifier, body: &[u8], record_size: usize) -> ObjectCheck {
    let gzip = body.starts_with(&GZIP_MAGIC);
    let inflated;
    let data: &[u8] = if gzip {
        let mut out = Vec::with_capacity(body.len() * 4);
        // A body that does not inflate is reported through its records:
        // whatever came out is checked, the rest counts as lost.
        let _ = flate2::read::MultiGzDecoder::new(body).read_to_end(&mut out);
        inflated = out;
        &inflated
    } else {
        body
    };
    let mut oldest: Option<u64> = None;
    for payload in data.chunks(record_size) {
        if let Some(sent) = verifier.observe(payload) {
            oldest = Some(oldest.map_or(sent, |o| o.min(sent)));
        }
    }
    ObjectCheck {
        payload_bytes: data.len() as u64,
        oldest_sent_ns: oldest,
        gzip,
        ragged: !data.len().is_multiple_of(record_size),
    }
}

/// Customers of partitioned records: well under AWS's 500 active
/// partitions, so that every record is delivered and none goes to the
/// error output.
const CUSTOMERS: u64 = 100;

/// Record `id` as a partitioned run sends it, `{"customer_id":"c<n>",
/// "data":"<base64 payload>"}`, written into `out` (cleared first).
pub fn json_record(id: u64, payload: &[u8], out: &mut Vec<u8>) {
    use std::io::Write;
    out.clear();
    let spread = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{{\"customer_id\":\"c{:02}\",\"data\":\"",
        spread % CUSTOMERS
    );
    let mut encoded = String::new();
    base64_simd::STANDARD.encode_append(payload, &mut encoded);
    out.extend_from_slice(encoded.as_bytes());
    out.extend_from_slice(b"\"}");
}

/// A partitioned record read back.
#[derive(serde::Deserialize)]
struct JsonRecord {
    data: String,
}

/// Reads an object of partitioned records (JSON objects side by side)
/// and hands each payload to the verifier; what does not parse is
/// reported as ragged.
fn verify_json_records(verifier: &Verifier, body: &[u8]) -> ObjectCheck {
    let mut oldest: Option<u64> = None;
    let mut ragged = false;
    let mut payload_bytes = 0;
    for record in serde_json::Deserializer::from_slice(body).into_iter::<JsonRecord>() {
        let Ok(record) = record else {
            ragged = true;
            break;
        };
        let Ok(payload) = base64_simd::STANDARD.decode_to_vec(record.data.as_bytes()) else {
            ragged = true;
            continue;
        };
        payload_bytes += payload.len() as u64;
        if let Some(sent) = verifier.observe(&payload) {
            oldest = Some(oldest.map_or(sent, |o| o.min(sent)));
        }
    }
    ObjectCheck {
        payload_bytes,
        oldest_sent_ns: oldest,
        gzip: false,
        ragged,
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::PayloadMaker;

    #[test]
    fn partitioned_records_are_json_whose_payloads_verify_when_read_back() {
        let maker = PayloadMaker::new(7, 64);
        let verifier = Verifier::new(7);
        let (mut raw, mut json, mut object) = (Vec::new(), Vec::new(), Vec::new());
        for id in 0..3 {
            maker.write(id, 1_000 + id, &mut raw);
            verifier.acknowledge(id);
            json_record(id, &raw, &mut json);
            let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
            assert!(value["customer_id"].as_str().unwrap().starts_with('c'));
            object.extend_from_slice(&json);
        }
        let check = verify_json_records(&verifier, &object);
        assert!(!check.ragged);
        assert_eq!(check.payload_bytes, 3 * 64);
        assert_eq!(check.oldest_sent_ns, Some(1_000));
        assert!(verifier.complete());
        assert!(verify_json_records(&verifier, b"{\"data\":").ragged);
    }
}
