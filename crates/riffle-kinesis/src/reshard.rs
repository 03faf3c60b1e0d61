//! Resharding: the children of a split, a merge or a uniform rescale
//! (plain functions over the shard map), and applying such a plan so that
//! every record goes to the parents until the children are open, then to
//! the children, never lost and never to both.
//!
//! # Protocol
//!
//! 1. Commit the stream record with the plan in `pending` (and UPDATING).
//!    Records still go to the parents, and every view (DescribeStream,
//!    ListShards, the open shard count) shows the shard map as it was, as
//!    AWS shows it until the stream is ACTIVE again. The next steps follow
//!    at once when there is no status delay, else when the delay is over
//!    (the background duty of `service`).
//! 2. Open the children's logs, then close the parents' logs
//!    ([`riffle_log::ShardLog::close`], durable). An append that loses the
//!    race gets `LogError::Closed` and waits for step 3 (see
//!    [`wait_reshard`]), then goes to a child: the parent's end is final.
//! 3. Commit the record with the parents closed, the children added and
//!    `pending` cleared, and swap the stream in memory.
//!
//! A crash after step 1 leaves `pending` in the catalog; opening the
//! service finishes the reshard ([`recover`]) before serving: closing a
//! closed log is a no-op, so steps 2 and 3 can be repeated.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::future::join_all;
use riffle_log::{LogError, LogStore, MetaOp};
use tracing::info;

use crate::catalog::{Reshard, ShardRecord, Status, StreamRecord};
use crate::hashkey::{self, HashRange};
use crate::stream::{Shard, Stream};
use crate::{Kinesis, KinesisError, errors};

/// How long an append that found its shard closed waits for the reshard
/// to be committed before it fails. A reshard commits within milliseconds;
/// only a failing metadata store takes longer.
const RESHARD_WAIT_MAX: Duration = Duration::from_secs(10);

/// The creation time of the shards a reshard opens: now, but at least in
/// the second after every parent's, so that the children's sequence
/// numbers (whose high bits are the shard's creation second) sort after
/// every number of their parents.
fn children_created_ms(parents: &[&ShardRecord], now_ms: i64) -> i64 {
    parents
        .iter()
        .map(|p| (p.created_ms.div_euclid(1000) + 1) * 1000)
        .fold(now_ms, i64::max)
}

fn shard_record(index: u32, range: HashRange, parents: [Option<u32>; 2], at: i64) -> ShardRecord {
    ShardRecord {
        index,
        start_hash: range.start.to_string(),
        end_hash: range.end.to_string(),
        parent: parents[0],
        adjacent_parent: parents[1],
        created_ms: at,
        closed: false,
    }
}

/// Splits open shard `parent` of `record` at `at` (validated: inside its
/// range, above its start): two children, lower range first.
pub fn split(record: &StreamRecord, parent: u32, at: u128, now_ms: i64) -> Reshard {
    let shard = &record.shards[parent as usize];
    // Validated by the caller: a stored range parses.
    let range = shard.range().expect("stored ranges are valid");
    let created = children_created_ms(&[shard], now_ms);
    let next = record.shards.len() as u32;
    let low = HashRange {
        start: range.start,
        end: at - 1,
    };
    let high = HashRange {
        start: at,
        end: range.end,
    };
    Reshard {
        close: vec![parent],
        open: vec![
            shard_record(next, low, [Some(parent), None], created),
            shard_record(next + 1, high, [Some(parent), None], created),
        ],
    }
}

/// Merges open shards `shard` and `adjacent` (validated: adjacent ranges)
/// into one child whose parent is `shard`, as AWS reports it.
pub fn merge(record: &StreamRecord, shard: u32, adjacent: u32, now_ms: i64) -> Reshard {
    let (a, b) = (
        &record.shards[shard as usize],
        &record.shards[adjacent as usize],
    );
    // Validated by the caller: stored ranges parse.
    let (ra, rb) = (a.range().expect("valid"), b.range().expect("valid"));
    let range = HashRange {
        start: ra.start.min(rb.start),
        end: ra.end.max(rb.end),
    };
    let created = children_created_ms(&[a, b], now_ms);
    Reshard {
        close: vec![shard, adjacent],
        open: vec![shard_record(
            record.shards.len() as u32,
            range,
            [Some(shard), Some(adjacent)],
            created,
        )],
    }
}

/// Rescales the open shards of `record` to `target` shards that tile the
/// hash-key space evenly, as CreateStream would lay them out.
///
/// Done as AWS does it, with splits and merges, so that every child has
/// at most two parents: each open shard crossed by a new boundary is split
/// into pieces at those boundaries; a new range made of several pieces is
/// merged from them left to right, the intermediate merges being shards
/// that are closed at birth (empty, listed with their lineage). An open
/// shard whose range is already a new range stays as it is.
pub fn uniform(record: &StreamRecord, target: u32, now_ms: i64) -> Reshard {
    let mut open: Vec<&ShardRecord> = record.shards.iter().filter(|s| !s.closed).collect();
    open.sort_by_key(|s| s.range().map(|r| r.start));
    let wanted = hashkey::split_evenly(target);
    let mut plan = PlanBuilder {
        plan: Reshard {
            close: Vec::new(),
            open: Vec::new(),
        },
        base: record.shards.len() as u32,
        next: record.shards.len() as u32,
        created: children_created_ms(&open, now_ms),
    };
    let pieces = plan.cut(&open, &wanted);
    plan.merge(&pieces, &wanted);
    plan.plan
}

/// A plan being built: its new shards get indexes `base..` in order.
struct PlanBuilder {
    plan: Reshard,
    base: u32,
    next: u32,
    created: i64,
}

impl PlanBuilder {
    fn add(&mut self, range: HashRange, parents: [Option<u32>; 2]) -> u32 {
        let index = self.next;
        let child = shard_record(index, range, parents, self.created);
        self.plan.open.push(child);
        self.next += 1;
        index
    }

    /// Marks `index` closed: born closed if this plan opens it, else a
    /// parent.
    fn close(&mut self, index: u32) {
        match index.checked_sub(self.base) {
            Some(at) => self.plan.open[at as usize].closed = true,
            None => self.plan.close.push(index),
        }
    }

    /// Splits each open shard at the `wanted` boundaries strictly inside
    /// it. Returns the pieces (shard index, range), in hash order, tiling
    /// the space: uncut shards are their own piece.
    fn cut(&mut self, open: &[&ShardRecord], wanted: &[HashRange]) -> Vec<(u32, HashRange)> {
        let starts: Vec<u128> = wanted.iter().map(|w| w.start).collect();
        let mut pieces = Vec::new();
        for shard in open {
            let range = shard.range().expect("stored ranges are valid");
            let cuts = &starts[starts.partition_point(|&b| b <= range.start)
                ..starts.partition_point(|&b| b <= range.end)];
            if cuts.is_empty() {
                pieces.push((shard.index, range));
                continue;
            }
            self.plan.close.push(shard.index);
            let mut start = range.start;
            for end in cuts.iter().map(|c| c - 1).chain([range.end]) {
                let piece = HashRange { start, end };
                pieces.push((self.add(piece, [Some(shard.index), None]), piece));
                start = end.wrapping_add(1);
            }
        }
        pieces
    }

    /// Merges the pieces making up each `wanted` range, left to right.
    fn merge(&mut self, pieces: &[(u32, HashRange)], wanted: &[HashRange]) {
        let mut pieces = pieces.iter().copied();
        for range in wanted {
            // The pieces tile the space and every wanted start is a cut.
            let (mut acc, mut acc_range) = pieces.next().expect("pieces cover every range");
            while acc_range.end < range.end {
                let (piece, piece_range) = pieces.next().expect("pieces cover every range");
                self.close(acc);
                self.close(piece);
                acc_range.end = piece_range.end;
                acc = self.add(acc_range, [Some(acc), Some(piece)]);
            }
            debug_assert_eq!(acc_range, *range);
        }
    }
}

/// The record once `record.pending` is applied: parents closed, children
/// added, nothing pending.
fn applied(record: &StreamRecord) -> StreamRecord {
    let mut out = record.clone();
    if let Some(plan) = out.pending.take() {
        for index in &plan.close {
            if let Some(shard) = out.shards.get_mut(*index as usize) {
                shard.closed = true;
            }
        }
        out.shards.extend(plan.open);
    }
    out
}

impl Kinesis {
    /// Starts `plan` on `stream` (see the module's protocol). The caller
    /// holds the catalog lock and has validated the plan. The stream is
    /// UPDATING for the configured status delay and keeps its shard map
    /// meanwhile, as on AWS: records still go to the parents, which every
    /// view shows open, and no view shows the children. When the delay is
    /// over, the background duty applies the plan ([`Kinesis::finish_reshard`]);
    /// with no delay it is applied here and now.
    pub(crate) async fn reshard(
        &self,
        stream: &Stream,
        plan: Reshard,
        now_ms: i64,
    ) -> Result<(), KinesisError> {
        let delay_ms = i64::try_from(self.config().status_delay.as_millis()).unwrap_or(i64::MAX);
        let mut record = stream.record.clone();
        record.status = if delay_ms == 0 {
            Status::Active
        } else {
            Status::Updating
        };
        record.status_until_ms = now_ms.saturating_add(delay_ms);
        record.pending = Some(plan);
        self.commit(vec![put(&record)]).await?;
        let staged = Arc::new(stream.with_record(record));
        self.insert_arc(staged.clone());
        if delay_ms == 0 {
            self.finish_reshard(&staged).await?;
        }
        Ok(())
    }

    /// Steps 2 and 3 of the protocol for a stream whose record has a plan;
    /// the stream is ACTIVE afterwards. The caller holds the catalog lock.
    /// The children are born now (see [`restamped`]).
    pub(crate) async fn finish_reshard(&self, stream: &Arc<Stream>) -> Result<(), KinesisError> {
        let store = self.store().clone();
        let record = restamped(&stream.record, crate::time::now_ms());
        let planned = record.clone();
        let children = tokio::task::spawn_blocking(move || open_children(&store, &planned))
            .await
            .map_err(errors::task)??;
        close_logs(stream, &children).await?;
        let mut record = applied(&record);
        record.status = Status::Active;
        self.commit(vec![put(&record)]).await?;
        info!(
            stream = stream.name(),
            shards = record.shards.len(),
            "reshard applied"
        );
        self.insert_arc(Arc::new(stream.resharded(record, children)));
        Ok(())
    }
}

/// `record` with the shards its plan opens created at `now_ms` if that is
/// later than planned: a plan is applied when the stream's UPDATING delay
/// is over, and the children's creation is when their parents closed
/// (their records' arrival times and the shard filters of ListShards rely
/// on it). Never earlier than planned, so still in a later second than
/// every parent. Nothing was written to the children before the plan is
/// applied, so a crash after a restamp changes nothing on disk.
fn restamped(record: &StreamRecord, now_ms: i64) -> StreamRecord {
    let mut out = record.clone();
    for child in out.pending.iter_mut().flat_map(|p| p.open.iter_mut()) {
        child.created_ms = child.created_ms.max(now_ms);
    }
    out
}

fn put(record: &StreamRecord) -> MetaOp {
    MetaOp::Put {
        key: record.key(),
        value: record.encode(),
    }
}

fn open_children(store: &LogStore, record: &StreamRecord) -> Result<Vec<Shard>, KinesisError> {
    let plan = record.pending.iter().flat_map(|p| &p.open);
    plan.map(|child| Shard::open(store, record, child))
        .collect()
}

/// Closes the logs of children born closed, then the parents' logs. The
/// parents go last and all at once: appends that find a parent closed
/// wait until the commit that follows, so that window stays short even
/// for a rescale with hundreds of short-lived shards.
async fn close_logs(stream: &Stream, children: &[Shard]) -> Result<(), KinesisError> {
    let born_closed = children.iter().filter(|c| c.closed);
    join_all(born_closed.map(|c| c.log.close()))
        .await
        .into_iter()
        .try_for_each(|closed| closed.map(drop))?;
    let plan = stream.record.pending.iter().flat_map(|p| &p.close);
    let parents = plan.filter_map(|&i| stream.shard(i));
    join_all(parents.map(|p| p.log.close()))
        .await
        .into_iter()
        .try_for_each(|closed| closed.map(drop))?;
    Ok(())
}

/// Finishes a reshard a crash interrupted (steps 2 and 3), at start-up,
/// before anything is served. Blocking.
pub fn recover(store: &LogStore, stream: Stream) -> Result<Stream, KinesisError> {
    if stream.record.pending.is_none() {
        return Ok(stream);
    }
    let record = restamped(&stream.record, crate::time::now_ms());
    let children = open_children(store, &record)?;
    block_on(close_logs(&stream, &children))?;
    let record = applied(&record);
    store.meta().commit(&[put(&record)])?;
    info!(stream = stream.name(), "interrupted reshard finished");
    Ok(stream.resharded(record, children))
}

/// Waits, after an append found shard `index` of `stream` closed, until the
/// reshard that closed it is committed; returns the stream as it is then,
/// whose routing sends the record to a child.
pub async fn wait_reshard(
    kinesis: &Kinesis,
    stream: &Stream,
    index: u32,
) -> Result<Arc<Stream>, KinesisError> {
    let deadline = tokio::time::Instant::now() + RESHARD_WAIT_MAX;
    loop {
        let changed = kinesis.shard_maps.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let current = kinesis
            .get(stream.name())
            .filter(|s| s.record.incarnation == stream.record.incarnation)
            .ok_or_else(|| errors::stream_not_found(stream.name(), kinesis.account()))?;
        if current.shard(index).is_some_and(|s| s.closed) {
            return Ok(current);
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            let name = stream.shard(index).map_or("", |s| s.log.name()).to_owned();
            return Err(KinesisError::Storage(LogError::Closed { name }));
        }
    }
}

/// Runs a future to completion on this thread. Only for start-up, where
/// the service is not serving yet and the future (a log close) is resolved
/// by the store's writer thread, not by an async runtime.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CATALOG_VERSION, StreamMode};

    fn stream_of(count: u32) -> StreamRecord {
        let shards = hashkey::split_evenly(count)
            .into_iter()
            .enumerate()
            .map(|(i, r)| shard_record(i as u32, r, [None, None], 1_000_500))
            .collect();
        StreamRecord {
            v: CATALOG_VERSION,
            name: "s".into(),
            incarnation: 1,
            created_ms: 1_000_500,
            mode: StreamMode::Provisioned,
            retention_hours: 24,
            max_record_kib: 1024,
            status: Status::Active,
            status_until_ms: 0,
            shards,
            pending: None,
            settings: Default::default(),
        }
    }

    fn ranges_of_open(record: &StreamRecord) -> Vec<HashRange> {
        let mut open: Vec<HashRange> = record
            .shards
            .iter()
            .filter(|s| !s.closed)
            .map(|s| s.range().unwrap())
            .collect();
        open.sort_by_key(|r| r.start);
        open
    }

    /// Every child's parents are earlier shards that are closed, and their
    /// ranges together are exactly the child's when a merge, or contain it.
    fn assert_lineage_consistent(record: &StreamRecord) {
        for shard in &record.shards {
            let range = shard.range().unwrap();
            let parents: Vec<&ShardRecord> = [shard.parent, shard.adjacent_parent]
                .into_iter()
                .flatten()
                .map(|p| &record.shards[p as usize])
                .collect();
            for p in &parents {
                assert!(p.closed && p.index < shard.index, "{shard:?} / {p:?}");
            }
            if let [a, b] = parents[..] {
                let (ra, rb) = (a.range().unwrap(), b.range().unwrap());
                assert_eq!(ra.end + 1, rb.start);
                assert_eq!((ra.start, rb.end), (range.start, range.end));
            } else if let [a] = parents[..] {
                let ra = a.range().unwrap();
                assert!(ra.start <= range.start && range.end <= ra.end);
            }
        }
    }

    #[test]
    fn a_split_makes_two_children_covering_the_parent() {
        let record = stream_of(1);
        let at = 1u128 << 100;
        let plan = split(&record, 0, at, 5_000_000);
        assert_eq!(plan.close, vec![0]);
        let ranges: Vec<_> = plan.open.iter().map(|s| s.range().unwrap()).collect();
        assert_eq!(
            ranges,
            vec![
                HashRange {
                    start: 0,
                    end: at - 1
                },
                HashRange {
                    start: at,
                    end: u128::MAX
                }
            ]
        );
        assert!(plan.open.iter().all(|s| s.parent == Some(0)));
        assert_eq!(plan.open[0].index, 1);
        assert_eq!(plan.open[1].index, 2);
    }

    #[test]
    fn children_are_created_in_a_later_second_than_their_parents() {
        let record = stream_of(2);
        // Same second as the parents: pushed to the next second.
        let plan = merge(&record, 0, 1, 1_000_900);
        assert_eq!(plan.open[0].created_ms, 1_001_000);
        assert_eq!(
            (plan.open[0].parent, plan.open[0].adjacent_parent),
            (Some(0), Some(1))
        );
        assert_eq!(plan.open[0].range().unwrap().start, 0);
        assert_eq!(plan.open[0].range().unwrap().end, u128::MAX);
        // Later: now.
        assert_eq!(
            merge(&record, 0, 1, 7_777_777).open[0].created_ms,
            7_777_777
        );
    }

    #[test]
    fn uniform_scaling_tiles_the_space_evenly_with_consistent_lineage() {
        for from in 1..=9u32 {
            for to in from.div_ceil(2)..=from * 2 {
                let mut record = stream_of(from);
                record.pending = Some(uniform(&record, to, 9_000_000));
                let after = applied(&record);
                assert_eq!(
                    ranges_of_open(&after),
                    hashkey::split_evenly(to),
                    "{from}->{to}"
                );
                assert_lineage_consistent(&after);
                assert!(
                    after
                        .shards
                        .iter()
                        .enumerate()
                        .all(|(i, s)| s.index == i as u32)
                );
            }
        }
    }

    #[test]
    fn uniform_scaling_after_uneven_splits_still_tiles_evenly() {
        let mut record = stream_of(3);
        let mut now = 2_000_000;
        for _ in 0..4 {
            // Split the widest-indexed open shard slightly off centre.
            let open = record.shards.iter().rev().find(|s| !s.closed).unwrap();
            let r = open.range().unwrap();
            let at = r.start + (r.end - r.start) / 3;
            record.pending = Some(split(&record, open.index, at, now));
            record = applied(&record);
            now += 1_000;
        }
        for to in [4, 5, 7, 12] {
            let mut next = record.clone();
            next.pending = Some(uniform(&next, to, now));
            let after = applied(&next);
            assert_eq!(ranges_of_open(&after), hashkey::split_evenly(to));
            assert_lineage_consistent(&after);
        }
    }

    #[test]
    fn scaling_a_large_stream_stays_consistent() {
        // Plans are computed with binary searches and direct indexing, so
        // the largest rescales (to 10,000 shards) are cheap.
        for (from, to) in [(5_000, 10_000), (10_000, 5_000), (7_919, 10_000)] {
            let mut record = stream_of(from);
            record.pending = Some(uniform(&record, to, 9_000_000));
            let after = applied(&record);
            assert_eq!(ranges_of_open(&after), hashkey::split_evenly(to));
            assert_lineage_consistent(&after);
        }
    }

    #[test]
    fn scaling_to_the_same_layout_changes_nothing() {
        let record = stream_of(4);
        let plan = uniform(&record, 4, 9_000_000);
        assert!(plan.close.is_empty() && plan.open.is_empty());
    }

    #[test]
    fn block_on_runs_a_future_woken_from_another_thread() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sender = std::thread::spawn(move || tx.send(7).unwrap());
        assert_eq!(block_on(rx), Ok(7));
        sender.join().unwrap();
    }
}
