//! Which leases a worker takes: KCL's `DynamoDBLeaseTaker` arithmetic.
//!
//! Each worker aims at `ceil(leases / workers)` leases. It first takes
//! leases that are free or expired (their counter did not move for the
//! failover time); when none are, it steals from the most loaded worker,
//! one at a time, only while that worker holds more than its share, so the
//! spread converges without two workers trading a lease back and forth.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::lease::Lease;

/// How many leases a worker steals in one round (KCL's
/// `maxLeasesToStealAtOneTime` default).
pub const MAX_LEASES_TO_STEAL_AT_ONE_TIME: usize = 1;

/// When each lease's counter was last seen to move, by this worker's clock:
/// leases expire by observation, never by comparing clocks across hosts.
#[derive(Debug, Default)]
pub struct Observations {
    seen: HashMap<String, (i64, Instant)>,
}

impl Observations {
    /// Records a scan of the table; returns the keys of expired leases
    /// (free ones, and owned ones whose counter stood still for `failover`).
    pub fn observe(&mut self, leases: &[Lease], now: Instant, failover: Duration) -> Vec<String> {
        let mut expired = Vec::new();
        let mut seen = HashMap::with_capacity(leases.len());
        for lease in leases {
            let since = match self.seen.get(&lease.key) {
                Some((counter, since)) if *counter == lease.counter => *since,
                _ => now,
            };
            seen.insert(lease.key.clone(), (lease.counter, since));
            if lease.owner.is_none() || now.duration_since(since) > failover {
                expired.push(lease.key.clone());
            }
        }
        self.seen = seen;
        expired
    }
}

/// What one taking round decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    Nothing,
    /// Take these free or expired leases.
    Take(Vec<String>),
    /// Steal these live leases from an over-loaded worker.
    Steal(Vec<String>),
}

/// Decides one round for worker `me` over the table's (unfinished) leases.
/// `held` are the leases `me` holds now and `expired` those [`Observations`]
/// found expired.
pub fn plan(
    me: &str,
    leases: &[Lease],
    expired: &[String],
    held: usize,
    max_leases: usize,
) -> Plan {
    let counts = live_counts(me, leases, expired, held);
    let target = target(leases.len(), counts.len(), max_leases);
    let needed = target.saturating_sub(held);
    if needed == 0 {
        return Plan::Nothing;
    }
    if !expired.is_empty() {
        let mut candidates = expired.to_vec();
        fastrand::shuffle(&mut candidates);
        candidates.truncate(needed);
        return Plan::Take(candidates);
    }
    let steal = steal_count(&counts, me, needed, target);
    if steal == 0 {
        return Plan::Nothing;
    }
    let (victim, _) = most_loaded(&counts, me);
    let mut theirs: Vec<String> = leases
        .iter()
        .filter(|l| l.owner.as_deref() == Some(victim))
        .map(|l| l.key.clone())
        .collect();
    fastrand::shuffle(&mut theirs);
    theirs.truncate(steal);
    Plan::Steal(theirs)
}

/// Leases per live owner; `me` counts with what it holds, even none.
fn live_counts<'a>(
    me: &'a str,
    leases: &'a [Lease],
    expired: &[String],
    held: usize,
) -> BTreeMap<&'a str, usize> {
    let mut counts = BTreeMap::new();
    for lease in leases {
        let Some(owner) = lease.owner.as_deref() else {
            continue;
        };
        if owner != me && !expired.contains(&lease.key) {
            *counts.entry(owner).or_insert(0) += 1;
        }
    }
    counts.insert(me, held);
    counts
}

/// Each worker's share: `ceil(leases / workers)`, at least one while any
/// lease exists, at most `max_leases`.
pub fn target(leases: usize, workers: usize, max_leases: usize) -> usize {
    if leases == 0 {
        return 0;
    }
    let share = if workers >= leases {
        1
    } else {
        leases.div_ceil(workers.max(1))
    };
    share.min(max_leases)
}

fn most_loaded<'a>(counts: &BTreeMap<&'a str, usize>, me: &str) -> (&'a str, usize) {
    counts
        .iter()
        .filter(|(owner, _)| **owner != me)
        .max_by_key(|(_, count)| **count)
        .map(|(owner, count)| (*owner, *count))
        .unwrap_or(("", 0))
}

/// KCL's rule: steal only from a worker over the target (or at it when this
/// worker needs more than one), never more than it is over, one at a time.
pub fn steal_count(
    counts: &BTreeMap<&str, usize>,
    me: &str,
    needed: usize,
    target: usize,
) -> usize {
    let (_, most) = most_loaded(counts, me);
    let steal = if needed > 1 && most >= target {
        (most - target).min(needed).max(1)
    } else if most > target {
        1
    } else {
        0
    };
    steal.min(MAX_LEASES_TO_STEAL_AT_ONE_TIME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lease::Checkpoint;

    fn leases(owners: &[Option<&str>]) -> Vec<Lease> {
        owners
            .iter()
            .enumerate()
            .map(|(i, owner)| {
                let mut lease = Lease::new(&format!("shardId-{i:012}"), Checkpoint::TrimHorizon);
                lease.owner = owner.map(str::to_owned);
                lease
            })
            .collect()
    }

    #[test]
    fn the_target_is_an_even_share_rounded_up() {
        assert_eq!(target(4, 2, usize::MAX), 2);
        assert_eq!(target(5, 2, usize::MAX), 3);
        assert_eq!(target(3, 5, usize::MAX), 1);
        assert_eq!(target(0, 1, usize::MAX), 0);
        assert_eq!(target(10, 1, 4), 4);
    }

    #[test]
    fn a_lone_worker_takes_every_free_lease() {
        let all = leases(&[None, None, None, None]);
        let expired: Vec<String> = all.iter().map(|l| l.key.clone()).collect();
        let Plan::Take(keys) = plan("a", &all, &expired, 0, usize::MAX) else {
            panic!("expected to take");
        };
        assert_eq!(keys.len(), 4);
    }

    #[test]
    fn a_new_worker_steals_one_lease_at_a_time_from_the_busiest() {
        let all = leases(&[Some("a"), Some("a"), Some("a"), Some("a")]);
        let Plan::Steal(keys) = plan("b", &all, &[], 0, usize::MAX) else {
            panic!("expected to steal");
        };
        assert_eq!(keys.len(), 1);
        assert!(
            all.iter()
                .any(|l| l.key == keys[0] && l.owner.as_deref() == Some("a"))
        );
    }

    #[test]
    fn an_even_spread_is_left_alone() {
        let all = leases(&[Some("a"), Some("a"), Some("b"), Some("b")]);
        assert_eq!(plan("b", &all, &[], 2, usize::MAX), Plan::Nothing);
        // 3 against 2 of 5: b is at ceil(5/2) - 1 but a is not over target.
        let odd = leases(&[Some("a"), Some("a"), Some("a"), Some("b"), Some("b")]);
        assert_eq!(plan("b", &odd, &[], 2, usize::MAX), Plan::Nothing);
    }

    #[test]
    fn expired_leases_are_taken_before_anything_is_stolen() {
        let all = leases(&[Some("dead"), Some("dead"), Some("a"), Some("a")]);
        let expired = vec![all[0].key.clone(), all[1].key.clone()];
        let Plan::Take(mut keys) = plan("a", &all, &expired, 2, usize::MAX) else {
            panic!("expected to take");
        };
        keys.sort();
        assert_eq!(keys, expired);
    }

    #[test]
    fn leases_expire_only_after_their_counter_stands_still_for_the_failover_time() {
        let mut all = leases(&[Some("a"), None]);
        let mut seen = Observations::default();
        let start = Instant::now();
        let failover = Duration::from_secs(10);
        assert_eq!(
            seen.observe(&all, start, failover),
            vec![all[1].key.clone()]
        );
        all[0].counter += 1;
        let later = start + Duration::from_secs(8);
        assert_eq!(seen.observe(&all, later, failover).len(), 1);
        let after_failover = later + Duration::from_secs(11);
        assert_eq!(seen.observe(&all, after_failover, failover).len(), 2);
    }
}
