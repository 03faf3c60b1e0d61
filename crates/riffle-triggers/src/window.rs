//! `TumblingWindowInSeconds`: Lambda's tumbling windows on a Kinesis
//! source ("Implementing stateful Kinesis Data Streams processing in
//! Lambda"). A record belongs to the window its arrival time falls in
//! (windows of N seconds from the epoch); each batch holds records of one
//! window and is given the state the previous invocation of that window
//! answered; when the window has closed, the function is invoked once more
//! with no records and `isFinalInvokeForWindow`, and the state is dropped.
//! An answer without `state` fails the invocation, as on Lambda.
//!
//! # Stored state
//!
//! The open window of each shard is kept beside the shard's position and
//! committed with it: key `lambda/event-source-mapping-windows/<UUID>/<stream
//! incarnation, 16 hex>/<ShardId>`, value the JSON
//! `{"start_ms": <window start, ms since the epoch>, "state": <the state>}`;
//! no key: no window is open.

use riffle_log::MetaOp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

const PREFIX: &str = "lambda/event-source-mapping-windows/";

/// A shard's open window and its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenWindow {
    pub start_ms: i64,
    pub state: Value,
}

impl OpenWindow {
    pub fn new(start_ms: i64) -> OpenWindow {
        OpenWindow {
            start_ms,
            state: json!({}),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // A number and a JSON value always serialize.
        serde_json::to_vec(self).expect("a window serializes")
    }

    pub fn decode(value: &[u8]) -> Option<OpenWindow> {
        serde_json::from_slice(value).ok()
    }
}

/// The start of the window of `arrival_ms`, windows being `length_ms` long.
pub fn start_of(arrival_ms: i64, length_ms: i64) -> i64 {
    arrival_ms.div_euclid(length_ms) * length_ms
}

/// Every window of the mapping `uuid`.
pub fn mapping_prefix(uuid: &str) -> String {
    format!("{PREFIX}{uuid}/")
}

pub fn key(uuid: &str, incarnation: u64, shard_id: &str) -> String {
    format!("{}{incarnation:016x}/{shard_id}", mapping_prefix(uuid))
}

/// The operation that stores a shard's open window (or its absence).
pub fn op(uuid: &str, incarnation: u64, shard_id: &str, open: Option<&OpenWindow>) -> MetaOp {
    let key = key(uuid, incarnation, shard_id);
    match open {
        Some(open) => MetaOp::Put {
            key,
            value: open.encode(),
        },
        None => MetaOp::Delete { key },
    }
}

/// Adds the tumbling-window members to a Kinesis event.
pub fn decorate(
    event: &mut Value,
    open: &OpenWindow,
    length_ms: i64,
    shard_id: &str,
    stream_arn: &str,
    last: bool,
) {
    event["window"] = json!({
        "start": seconds_iso8601(open.start_ms),
        "end": seconds_iso8601(open.start_ms + length_ms),
    });
    event["state"] = open.state.clone();
    event["shardId"] = json!(shard_id);
    event["eventSourceARN"] = json!(stream_arn);
    event["isFinalInvokeForWindow"] = json!(last);
    event["isWindowTerminatedEarly"] = json!(false);
}

/// The state an answer carries: `None` (a failed invocation) without one.
pub fn answered_state(payload: &[u8]) -> Option<Value> {
    let answer: Value = serde_json::from_slice(payload).ok()?;
    match answer.get("state") {
        Some(state @ Value::Object(_)) => Some(state.clone()),
        _ => None,
    }
}

/// `2020-12-09T07:04:00Z`, as Lambda writes window bounds.
fn seconds_iso8601(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_window_reads_back_as_written() {
        let open = OpenWindow {
            start_ms: 1_607_497_440_000,
            state: json!({"1": 282, "2": 715}),
        };
        assert_eq!(OpenWindow::decode(&open.encode()), Some(open));
        assert_eq!(OpenWindow::decode(b"{}"), None);
    }

    #[test]
    fn records_fall_in_windows_from_the_epoch() {
        assert_eq!(start_of(1_607_497_475_000, 120_000), 1_607_497_440_000);
        assert_eq!(start_of(119_999, 120_000), 0);
        assert_eq!(start_of(120_000, 120_000), 120_000);
    }

    #[test]
    fn the_event_gets_lambdas_window_members() {
        let mut event = json!({"Records": []});
        let open = OpenWindow {
            start_ms: 1_607_497_440_000,
            state: json!({"1": 282}),
        };
        decorate(
            &mut event,
            &open,
            120_000,
            "shardId-000000000006",
            "arn:s",
            true,
        );
        assert_eq!(
            event,
            json!({"Records": [], "window": {"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"},
                "state": {"1": 282}, "shardId": "shardId-000000000006", "eventSourceARN": "arn:s",
                "isFinalInvokeForWindow": true, "isWindowTerminatedEarly": false})
        );
        assert_eq!(
            answered_state(br#"{"state": {"n": 1}}"#),
            Some(json!({"n": 1}))
        );
        assert_eq!(answered_state(br#"{"batchItemFailures": []}"#), None);
        assert_eq!(answered_state(b"null"), None);
    }
}
