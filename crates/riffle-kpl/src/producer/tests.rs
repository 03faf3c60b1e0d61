//! The producer's grouping, sealing, collection, rate limit and flush
//! interval, on its state alone (time is passed in: no clock, no sleeping).
//! Its calls to a real server are tested in `crates/riffle/tests/kpl.rs`.

use super::*;
use crate::format::decode;
use crate::shards::hash_key_of;

fn four_shards() -> ShardMap {
    let quarter = u128::MAX / 4 + 1;
    ShardMap::new(
        (0..4u128)
            .map(|i| {
                let end = if i == 3 {
                    u128::MAX
                } else {
                    (i + 1) * quarter - 1
                };
                (
                    i * quarter,
                    end,
                    Arc::from(format!("shardId-00000000000{i}").as_str()),
                )
            })
            .collect(),
    )
}

fn state() -> State {
    let mut state = State::default();
    state.install(four_shards());
    state
}

type Answer = oneshot::Receiver<Result<PutOutcome, ProduceError>>;

fn put(state: &mut State, config: &ProducerConfig, key: &str, data: &[u8], now: Instant) -> Answer {
    let (reply, answer) = oneshot::channel();
    let record = UserRecord {
        partition_key: key,
        explicit_hash_key: None,
        data,
    };
    let hash = hash_key_of(key, None).unwrap();
    state.add(config, &record, hash, reply, &|| now);
    answer
}

#[test]
fn user_records_are_grouped_by_the_shard_their_keys_map_to() {
    let config = ProducerConfig::default();
    let mut state = state();
    let now = Instant::now();
    let _answers: Vec<Answer> = (0..1000)
        .map(|i| put(&mut state, &config, &format!("key-{i}"), b"payload", now))
        .collect();
    state.flush = true;
    let plan = state.plan(&config, now);
    let sealed: Vec<&Sealed> = plan.calls.iter().flatten().collect();
    assert_eq!(sealed.len(), 4, "one aggregate per shard");
    let map = four_shards();
    let mut users = 0;
    for record in sealed {
        assert!(record.aggregated);
        let predicted = record.shard.as_ref().unwrap();
        // The aggregate's explicit hash key sends it to the shard it was grouped for.
        let ehk = record.explicit_hash_key.as_deref().unwrap();
        assert_eq!(map.route(ehk.parse().unwrap()).unwrap().1, predicted);
        for user in decode(&record.data).unwrap() {
            let hash = hash_key_of(user.partition_key, None).unwrap();
            assert_eq!(
                map.route(hash).unwrap().1,
                predicted,
                "{}",
                user.partition_key
            );
            users += 1;
        }
        assert_eq!(record.replies.len(), decode(&record.data).unwrap().len());
    }
    assert_eq!(users, 1000);
}

#[test]
fn an_aggregate_is_sealed_before_it_passes_the_size_limit() {
    let config = ProducerConfig {
        aggregation_max_size: 4096,
        ..ProducerConfig::default()
    };
    let mut state = state();
    let now = Instant::now();
    let _answers: Vec<Answer> = (0..500)
        .map(|_| put(&mut state, &config, "one-key", &[1; 100], now))
        .collect();
    state.flush = true;
    let plan = state.plan(&config, now);
    let sealed: Vec<&Sealed> = plan.calls.iter().flatten().collect();
    assert!(sealed.len() > 10, "{}", sealed.len());
    for record in &sealed {
        assert!(record.data.len() <= 4096, "{}", record.data.len());
    }
    let users: usize = sealed.iter().map(|r| decode(&r.data).unwrap().len()).sum();
    assert_eq!(users, 500);
}

#[test]
fn a_lone_record_is_sent_as_it_is() {
    let config = ProducerConfig::default();
    let mut state = state();
    let now = Instant::now();
    let _answer = put(&mut state, &config, "k", b"just me", now);
    state.flush = true;
    let plan = state.plan(&config, now);
    let record = &plan.calls[0][0];
    assert!(!record.aggregated);
    assert_eq!(record.data, b"just me");
    assert_eq!(record.partition_key, "k");
    assert_eq!(record.explicit_hash_key, None);
}

#[test]
fn records_wait_for_the_buffered_time_then_go_without_a_flush() {
    let config = ProducerConfig::default();
    let mut state = state();
    let start = Instant::now();
    let _a = put(&mut state, &config, "a", b"1", start);
    let _b = put(
        &mut state,
        &config,
        "a",
        b"2",
        start + Duration::from_millis(30),
    );
    let plan = state.plan(&config, start + Duration::from_millis(50));
    assert!(plan.calls.is_empty());
    assert_eq!(plan.next, Some(start + Duration::from_millis(100)));
    let plan = state.plan(&config, start + Duration::from_millis(100));
    assert_eq!(plan.calls.len(), 1);
    assert_eq!(decode(&plan.calls[0][0].data).unwrap().len(), 2);
}

#[test]
fn full_aggregates_wait_for_a_full_call_or_their_deadline() {
    let config = ProducerConfig {
        aggregation_max_size: 1024,
        ..ProducerConfig::default()
    };
    let mut state = state();
    let start = Instant::now();
    let _answers: Vec<Answer> = (0..30)
        .map(|_| put(&mut state, &config, "k", &[0; 200], start))
        .collect();
    let plan = state.plan(&config, start + Duration::from_millis(10));
    assert!(plan.calls.is_empty(), "a part-filled call waits");
    assert!(!state.ready.is_empty());
    let plan = state.plan(&config, start + Duration::from_millis(100));
    let sent: usize = plan.calls.iter().map(Vec::len).sum();
    assert!(sent >= 7, "{sent}");
}

#[test]
fn calls_hold_at_most_500_records_and_5_mib() {
    let config = ProducerConfig {
        aggregation_enabled: false,
        rate_limit: 1_000_000,
        ..ProducerConfig::default()
    };
    let mut state = state();
    let now = Instant::now();
    let data = vec![0u8; 30_000];
    let _answers: Vec<Answer> = (0..1200)
        .map(|i| put(&mut state, &config, &format!("k{i}"), &data, now))
        .collect();
    state.flush = true;
    let plan = state.plan(&config, now);
    assert_eq!(plan.calls.iter().map(Vec::len).sum::<usize>(), 1200);
    for call in &plan.calls {
        assert!(call.len() <= COLLECTION_MAX_COUNT_LIMIT);
        let bytes: usize = call.iter().map(Sealed::size).sum();
        assert!(bytes <= COLLECTION_MAX_SIZE_LIMIT, "{bytes}");
    }
}

#[test]
fn a_shard_gets_its_rate_and_the_rest_waits() {
    let config = ProducerConfig {
        rate_limit: 100,
        aggregation_max_size: 51_200,
        ..ProducerConfig::default()
    };
    let mut state = state();
    let now = Instant::now();
    // ~4 MiB for one shard: four seconds' worth at 1 MiB/s.
    let _answers: Vec<Answer> = (0..4096)
        .map(|_| put(&mut state, &config, "hot", &[7; 1000], now))
        .collect();
    state.flush = true;
    let plan = state.plan(&config, now);
    let sent: usize = plan.calls.iter().flatten().map(|r| r.size()).sum();
    assert!(sent <= 1_048_576, "{sent}");
    assert!(sent > 900_000, "{sent}");
    assert!(!state.ready.is_empty());
    let next = plan.next.expect("a time to try again");
    assert!(next > now && next <= now + Duration::from_secs(1));
}

#[test]
fn retries_back_off_doubling_up_to_the_cap() {
    let config = ProducerConfig::default();
    assert_eq!(pump_backoff(&config, 1), Duration::from_millis(50));
    assert_eq!(pump_backoff(&config, 2), Duration::from_millis(100));
    assert_eq!(pump_backoff(&config, 3), Duration::from_millis(200));
    assert_eq!(pump_backoff(&config, 40), RETRY_BACKOFF_MAX);
}

fn pump_backoff(config: &ProducerConfig, attempts: u32) -> Duration {
    pump::backoff(config, attempts)
}

#[test]
fn bad_records_are_refused_before_they_are_buffered() {
    assert!(validate("", b"x").is_err());
    assert!(validate(&"k".repeat(257), b"x").is_err());
    assert!(validate(&"é".repeat(256), b"x").is_ok());
    assert!(validate("k", &vec![0; RECORD_DATA_MAX + 1]).is_err());
}
