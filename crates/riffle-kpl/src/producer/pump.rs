//! The pump: seals due aggregates, collects sealed records into PutRecords
//! calls within the rate limits, sends them, and settles their answers
//! (success, retry with backoff, final failure, or "wrong shard").

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, ShardFilter, ShardFilterType};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{ProduceError, ProducerConfig, PutOutcome, RETRY_BACKOFF_MAX, Sealed, Shared, State};
use crate::rate::ShardRate;
use crate::shards::{ShardMap, hash_key_of};

/// The pause before reading the shard map again after ListShards failed.
const MAP_RETRY: Duration = Duration::from_secs(1);

/// Errors of a whole PutRecords call that retrying does not mend; any
/// other (throttling, InternalFailure, a transport error) is retried.
const FINAL_ERRORS: &[&str] = &[
    "ResourceNotFoundException",
    "InvalidArgumentException",
    "ValidationException",
    "SerializationException",
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSInvalidStateException",
    "KMSNotFoundException",
    "KMSOptInRequired",
];

/// The stream's open shards and their hash-key ranges (ListShards with
/// the AT_LATEST filter, every page).
pub(super) async fn list_open_shards(
    client: &Client,
    stream: &str,
) -> Result<ShardMap, ProduceError> {
    let failed = |err: &dyn std::fmt::Display| ProduceError::Shards(err.to_string());
    let filter = ShardFilter::builder()
        .r#type(ShardFilterType::AtLatest)
        .build()
        .map_err(|e| failed(&e))?;
    let mut ranges = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let request = match token.take() {
            Some(next) => client.list_shards().next_token(next),
            None => client
                .list_shards()
                .stream_name(stream)
                .shard_filter(filter.clone()),
        };
        let page = request.send().await.map_err(|e| match e.code() {
            Some(code) => ProduceError::Rejected {
                code: code.to_owned(),
                message: e.message().unwrap_or_default().to_owned(),
            },
            None => failed(&DisplayErrorContext(&e)),
        })?;
        for shard in page.shards.unwrap_or_default() {
            let range = shard.hash_key_range.as_ref();
            let bound = |text: Option<&str>| text.and_then(|t| t.parse::<u128>().ok());
            let start = bound(range.map(|r| r.starting_hash_key.as_str()));
            let end = bound(range.map(|r| r.ending_hash_key.as_str()));
            if let (Some(start), Some(end)) = (start, end) {
                ranges.push((start, end, Arc::from(shard.shard_id.as_str())));
            }
        }
        match page.next_token {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    Ok(ShardMap::new(ranges))
}

/// What one look at the state decided.
pub(super) struct Plan {
    pub(super) calls: Vec<Vec<Sealed>>,
    /// When to look again without being woken.
    pub(super) next: Option<Instant>,
}

pub(super) async fn run(shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(shared.config.max_in_flight));
    loop {
        let mut next = None;
        if shared.state.lock().map_stale {
            next = refresh(&shared).await;
        }
        let plan = shared.state.lock().plan(&shared.config, Instant::now());
        for call in plan.calls {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return; // the semaphore is never closed
            };
            tokio::spawn(send(Arc::clone(&shared), call, permit));
        }
        if shared.state.lock().closed
            && shared
                .outstanding
                .load(std::sync::atomic::Ordering::Relaxed)
                == 0
        {
            return;
        }
        match earliest(next, plan.next) {
            Some(at) => {
                tokio::select! {
                    () = shared.wake.notified() => {}
                    () = tokio::time::sleep_until(at) => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Reads the shard map again and puts the misrouted user records again;
/// on failure, when to try again.
async fn refresh(shared: &Shared) -> Option<Instant> {
    match list_open_shards(&shared.client, &shared.stream).await {
        Ok(map) => {
            debug!(stream = %shared.stream, shards = map.len(), "shard map read again");
            let mut state = shared.state.lock();
            state.install(map);
            let misrouted = std::mem::take(&mut state.misrouted);
            let failed = state.put_again(&shared.config, misrouted);
            drop(state);
            shared.resolved(failed);
            None
        }
        Err(err) => {
            warn!(stream = %shared.stream, "{err}");
            Some(Instant::now() + MAP_RETRY)
        }
    }
}

impl State {
    /// Seals the aggregates that are due and takes the PutRecords calls to
    /// make now.
    pub(super) fn plan(&mut self, config: &ProducerConfig, now: Instant) -> Plan {
        let mut next = None;
        for index in 0..self.buffers.len() {
            let Some((first, _, _)) = &self.buffers[index].first else {
                continue;
            };
            let due = *first + config.record_max_buffered_time;
            if self.flush || due <= now {
                self.seal(index, now);
            } else {
                next = earliest(next, Some(due));
            }
        }
        let mut calls = Vec::new();
        let mut call: Vec<Sealed> = Vec::new();
        let (mut call_bytes, mut call_due) = (0, None::<Instant>);
        let mut held = VecDeque::new();
        while let Some(record) = self.ready.pop_front() {
            if record.not_before > now {
                next = earliest(next, Some(record.not_before));
                held.push_back(record);
                continue;
            }
            if let Some(shard) = &record.shard {
                let rate = self
                    .rates
                    .entry(Arc::clone(shard))
                    .or_insert_with(|| ShardRate::new(config.rate_limit, now));
                if let Err(wait) = rate.take(record.size(), now) {
                    next = earliest(next, Some(now + wait));
                    held.push_back(record);
                    continue;
                }
            }
            if call.len() >= config.collection_max_count
                || call_bytes + record.size() > config.collection_max_size
            {
                calls.push(std::mem::take(&mut call));
                (call_bytes, call_due) = (0, None);
            }
            call_bytes += record.size();
            call_due = earliest(
                call_due,
                Some(record.born + config.record_max_buffered_time),
            );
            call.push(record);
        }
        match call_due {
            Some(due) if !self.flush && due > now => {
                // Not full and not due: it waits for more, its tokens given back.
                for record in call.into_iter().rev() {
                    if let Some(rate) = record.shard.as_ref().and_then(|s| self.rates.get_mut(s)) {
                        rate.give_back(record.size());
                    }
                    held.push_front(record);
                }
                next = earliest(next, Some(due));
            }
            _ if !call.is_empty() => calls.push(call),
            _ => {}
        }
        self.ready = held;
        if self.ready.is_empty() {
            self.flush = false;
        }
        Plan { calls, next }
    }

    /// Routes the user records of misrouted aggregates again; how many
    /// could not be read back (failed).
    fn put_again(&mut self, config: &ProducerConfig, misrouted: Vec<Sealed>) -> u64 {
        let mut failed = 0;
        let now = Instant::now();
        for sealed in misrouted {
            let records = crate::format::decode(&sealed.data).unwrap_or_default();
            if records.len() != sealed.replies.len() {
                failed += sealed.replies.len() as u64;
                for reply in sealed.replies {
                    let _ = reply.send(Err(ProduceError::Stopped));
                }
                continue;
            }
            for (record, reply) in records.iter().zip(sealed.replies) {
                let user = crate::format::UserRecord {
                    partition_key: record.partition_key,
                    explicit_hash_key: record.explicit_hash_key,
                    data: record.data,
                };
                let hash = hash_key_of(record.partition_key, record.explicit_hash_key);
                self.add(config, &user, hash.unwrap_or(0), reply, &|| now);
            }
        }
        failed
    }
}

/// Makes one PutRecords call and settles its records.
async fn send(shared: Arc<Shared>, call: Vec<Sealed>, permit: OwnedSemaphorePermit) {
    let entries = call
        .iter()
        .filter_map(|record| {
            PutRecordsRequestEntry::builder()
                .data(Blob::new(record.data.clone()))
                .partition_key(&record.partition_key)
                .set_explicit_hash_key(record.explicit_hash_key.clone())
                .build()
                .ok() // data and partition key are both set
        })
        .collect();
    let answer = shared
        .client
        .put_records()
        .stream_name(&shared.stream)
        .set_records(Some(entries))
        .send()
        .await;
    drop(permit);
    let now = Instant::now();
    let mut settle = Settle::default();
    match answer {
        Ok(output) => {
            let mut results = output.records.into_iter();
            for record in call {
                let Some(result) = results.next() else {
                    settle.retry(&shared.config, record, "InternalFailure", "no result", now);
                    continue;
                };
                match (result.shard_id, result.sequence_number) {
                    (Some(shard), Some(sequence)) => settle.written(record, &shard, &sequence),
                    _ => settle.retry(
                        &shared.config,
                        record,
                        result.error_code.as_deref().unwrap_or("InternalFailure"),
                        result.error_message.as_deref().unwrap_or_default(),
                        now,
                    ),
                }
            }
        }
        Err(err) => {
            let code = err.code().unwrap_or("Transport").to_owned();
            let message = err
                .message()
                .map_or_else(|| DisplayErrorContext(&err).to_string(), str::to_owned);
            let final_error = FINAL_ERRORS.contains(&code.as_str());
            for record in call {
                if final_error {
                    settle.fail(
                        record,
                        ProduceError::Rejected {
                            code: code.clone(),
                            message: message.clone(),
                        },
                    );
                } else {
                    settle.retry(&shared.config, record, &code, &message, now);
                }
            }
        }
    }
    settle.apply(&shared);
}

/// What a call's answer does to its records, applied under one lock.
#[derive(Default)]
struct Settle {
    resolved: u64,
    again: Vec<Sealed>,
    misrouted: Vec<Sealed>,
    map_stale: bool,
}

impl Settle {
    fn written(&mut self, mut record: Sealed, shard: &str, sequence: &str) {
        record.attempts += 1;
        let wrong_shard = record.shard.as_deref().is_some_and(|p| p != shard);
        self.map_stale |= wrong_shard;
        if wrong_shard && record.aggregated {
            debug!(shard, predicted = ?record.shard, "aggregated record on another shard: put again");
            self.misrouted.push(record);
            return;
        }
        let (shard, sequence): (Arc<str>, Arc<str>) = (Arc::from(shard), Arc::from(sequence));
        self.resolved += record.replies.len() as u64;
        for (index, reply) in record.replies.into_iter().enumerate() {
            let _ = reply.send(Ok(PutOutcome {
                shard_id: Arc::clone(&shard),
                sequence_number: Arc::clone(&sequence),
                sub_sequence_number: if record.aggregated { index as u64 } else { 0 },
                aggregated: record.aggregated,
                attempts: record.attempts,
            }));
        }
    }

    fn retry(
        &mut self,
        config: &ProducerConfig,
        mut record: Sealed,
        code: &str,
        message: &str,
        now: Instant,
    ) {
        record.attempts += 1;
        if now >= record.born + config.record_ttl {
            let attempts = record.attempts;
            self.fail(
                record,
                ProduceError::Expired {
                    attempts,
                    code: code.to_owned(),
                    message: message.to_owned(),
                },
            );
            return;
        }
        record.not_before = now + backoff(config, record.attempts);
        self.again.push(record);
    }

    fn fail(&mut self, record: Sealed, error: ProduceError) {
        self.resolved += record.replies.len() as u64;
        for reply in record.replies {
            let _ = reply.send(Err(error.clone()));
        }
    }

    fn apply(self, shared: &Shared) {
        {
            let mut state = shared.state.lock();
            state.map_stale |= self.map_stale;
            state.ready.extend(self.again);
            state.misrouted.extend(self.misrouted);
        }
        shared.resolved(self.resolved);
        shared.wake.notify_one();
    }
}

/// The pause before attempt `attempts + 1`: half the buffered time (the
/// KPL's retry deadline), doubling, at most [`RETRY_BACKOFF_MAX`].
pub(super) fn backoff(config: &ProducerConfig, attempts: u32) -> Duration {
    let base = (config.record_max_buffered_time / 2).max(Duration::from_millis(1));
    base.saturating_mul(1 << attempts.saturating_sub(1).min(16))
        .min(RETRY_BACKOFF_MAX)
}
