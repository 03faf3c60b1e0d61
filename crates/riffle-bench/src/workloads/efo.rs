//! The enhanced fan-out consumer of `e2e --consumer efo`: one
//! SubscribeToShard per shard through the official SDK, so the event
//! stream is decoded exactly as a real consumer decodes it. A subscription
//! that ends (AWS ends them after 5 minutes) is renewed after the last
//! event's continuation sequence number.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::types::{ShardIteratorType, StartingPosition, SubscribeToShardEventStream};
use tokio::task::JoinHandle;

use super::Ctx;
use super::read::ReadShared;
use crate::client::error_chain;
use crate::control;
use crate::error::BenchError;
use crate::stats;

/// The consumer name the bench registers, followed by the run id (a
/// reused stream may still have another run's consumer).
const CONSUMER_PREFIX: &str = "riffle-bench";
/// Pause before subscribing again after a failed SubscribeToShard (AWS
/// refuses a new subscription of the same shard within 5 s with
/// ResourceInUseException).
const RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(200);

/// Registers the consumer and subscribes to every shard; returns once each
/// subscription is open, so no record written afterwards is missed. Also
/// returns the consumer's ARN.
pub async fn spawn_subscribers(
    ctx: &Arc<Ctx>,
    shared: &Arc<ReadShared>,
) -> Result<(Vec<JoinHandle<()>>, String), BenchError> {
    let name = format!("{CONSUMER_PREFIX}-{:08x}", ctx.maker.run());
    let consumer = control::register_consumer(&ctx.sdk, &ctx.stream, &name).await?;
    let start = start_type(ctx);
    let mut tasks = Vec::new();
    for shard in &ctx.stream.shards {
        let position = StartingPosition::builder()
            .r#type(start.clone())
            .build()
            .map_err(|e| subscribe_error(ctx, &e))?;
        let events = subscribe(ctx, &consumer, shard, position).await?;
        let (ctx, shared, consumer, shard) =
            (ctx.clone(), shared.clone(), consumer.clone(), shard.clone());
        tasks.push(tokio::spawn(async move {
            follow(&ctx, &shared, &consumer, &shard, events).await
        }));
    }
    Ok((tasks, consumer))
}

/// Where subscriptions start: a fresh stream from its start, a reused one
/// at its tip (as the polling readers).
fn start_type(ctx: &Ctx) -> ShardIteratorType {
    if ctx.plan.reuse_stream {
        ShardIteratorType::Latest
    } else {
        ShardIteratorType::TrimHorizon
    }
}

type Events = aws_sdk_kinesis::primitives::event_stream::EventReceiver<
    SubscribeToShardEventStream,
    aws_sdk_kinesis::types::error::SubscribeToShardEventStreamError,
>;

fn subscribe_error(ctx: &Ctx, err: &dyn std::error::Error) -> BenchError {
    BenchError::ControlPlane {
        action: "SubscribeToShard",
        stream: ctx.stream.name.clone(),
        message: error_chain(err),
    }
}

async fn subscribe(
    ctx: &Ctx,
    consumer: &str,
    shard: &str,
    position: StartingPosition,
) -> Result<Events, BenchError> {
    let out = ctx
        .sdk
        .subscribe_to_shard()
        .consumer_arn(consumer)
        .shard_id(shard)
        .starting_position(position)
        .send()
        .await
        .map_err(|e| subscribe_error(ctx, &e))?;
    Ok(out.event_stream)
}

/// Reads events until told to stop, resubscribing when a subscription ends.
async fn follow(ctx: &Ctx, shared: &ReadShared, consumer: &str, shard: &str, mut events: Events) {
    let c = &shared.measured.reads;
    let mut e2e = stats::histogram();
    let mut stop = shared.stop.clone();
    let mut continuation: Option<String> = None;
    // A closed shard's last event names its children instead of a
    // continuation: the shard is done, there is nothing to resubscribe to.
    let mut shard_ended = false;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = stop.changed() => break,
        };
        match event {
            Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(event))) => {
                c.add(&c.requests, 1);
                let mut counted = 0;
                for record in event.records() {
                    if let Some(sent_ns) = ctx.verifier.observe(record.data().as_ref())
                        && shared.counts(sent_ns)
                    {
                        counted += 1;
                        stats::record(&mut e2e, ctx.since_sent(sent_ns));
                    }
                }
                c.add(&c.records, counted);
                c.add(&c.bytes, counted * ctx.plan.record_size as u64);
                if event.child_shards().is_empty() {
                    continuation = Some(event.continuation_sequence_number().to_owned());
                } else {
                    shard_ended = true;
                }
            }
            Ok(None) if shard_ended => break,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                if let Err(err) = &event {
                    c.add(&c.errors, 1);
                    ctx.note_error(|| {
                        format!("SubscribeToShard event stream: {}", error_chain(err))
                    });
                }
                match resubscribe(ctx, consumer, shard, continuation.as_deref(), &mut stop).await {
                    Some(next) => events = next,
                    None => break,
                }
            }
        }
    }
    shared.measured.e2e_latency.merge(&e2e);
}

/// Subscribes again after `continuation` (or from the start), until it
/// works or the run stops.
async fn resubscribe(
    ctx: &Ctx,
    consumer: &str,
    shard: &str,
    continuation: Option<&str>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
) -> Option<Events> {
    loop {
        if *stop.borrow() {
            return None;
        }
        let position = match continuation {
            Some(seq) => StartingPosition::builder()
                .r#type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            None => StartingPosition::builder().r#type(start_type(ctx)),
        }
        .build()
        .ok()?;
        match subscribe(ctx, consumer, shard, position).await {
            Ok(events) => return Some(events),
            Err(err) => {
                ctx.note_error(|| err.to_string());
                tokio::time::sleep(RESUBSCRIBE_PAUSE).await;
            }
        }
    }
}
