//! The record browser's reads: `POST /api/records` reads a page of records
//! from one shard or every shard of a stream with the same ListShards,
//! GetShardIterator and GetRecords calls a client makes (as the session's
//! key), and expands KPL-aggregated records into their user records.
//!
//! Request: `{stream, shard?, position, sequenceNumber?, timestamp?,
//! iterators?, limit?}`. Without `iterators` the read starts at
//! `position` (TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER with
//! `sequenceNumber`, AT_TIMESTAMP with `timestamp` in epoch seconds); the
//! answer's `iterators` (shard → NextShardIterator) continue it, which is
//! how the page follows a stream live. Answer: `{records: [{shardId,
//! sequenceNumber, subSequenceNumber, partitionKey, arrival, aggregated,
//! data}], iterators, millisBehindLatest}`, `data` in base64.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{Answer, Api, ApiError, Who};

/// The most records one GetRecords returns (API_GetRecords: 10,000); the
/// browser asks for fewer per shard.
pub const RECORDS_LIMIT_MAX: u32 = 10_000;
const RECORDS_LIMIT_DEFAULT: u32 = 100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadRequest {
    stream: String,
    /// One shard's id; absent: every shard.
    shard: Option<String>,
    #[serde(default = "trim_horizon")]
    position: String,
    sequence_number: Option<String>,
    timestamp: Option<f64>,
    iterators: Option<BTreeMap<String, String>>,
    limit: Option<u32>,
}

fn trim_horizon() -> String {
    "TRIM_HORIZON".to_owned()
}

/// One user record as the page shows it.
#[derive(Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Shown {
    pub shard_id: String,
    pub sequence_number: String,
    /// Its index in an aggregated record (0 for a plain record).
    pub sub_sequence_number: u64,
    pub partition_key: String,
    /// ApproximateArrivalTimestamp, epoch seconds.
    pub arrival: f64,
    pub aggregated: bool,
    /// The user record's bytes in base64.
    pub data: String,
}

pub(crate) async fn read(api: &Api, who: &Who<'_>, body: &[u8]) -> Result<Answer, ApiError> {
    let request: ReadRequest = serde_json::from_slice(body)
        .map_err(|err| ApiError::BadRequest(format!("a read is {{stream, position, …}}: {err}")))?;
    let limit = request
        .limit
        .unwrap_or(RECORDS_LIMIT_DEFAULT)
        .clamp(1, RECORDS_LIMIT_MAX);
    let iterators = match &request.iterators {
        Some(given) => given.clone(),
        None => start(api, who, &request).await?,
    };
    let mut records = Vec::new();
    let mut next = BTreeMap::new();
    let mut behind = BTreeMap::new();
    for (shard, iterator) in iterators {
        let input = json!({"ShardIterator": iterator, "Limit": limit});
        let answer = api
            .call_service(who, "kinesis", "GetRecords", &input)
            .await?;
        let answer: Value = serde_json::from_slice(&answer)
            .map_err(|err| ApiError::BadRequest(format!("GetRecords answered {err}")))?;
        for record in answer["Records"].as_array().into_iter().flatten() {
            records.extend(expand(&shard, record));
        }
        if let Some(iterator) = answer["NextShardIterator"].as_str() {
            next.insert(shard.clone(), iterator.to_owned());
        }
        behind.insert(shard, answer["MillisBehindLatest"].clone());
    }
    records.sort_by(|a: &Shown, b: &Shown| a.arrival.total_cmp(&b.arrival));
    Ok(Answer::json(&json!({
        "records": records,
        "iterators": next,
        "millisBehindLatest": behind,
    })))
}

/// Each chosen shard's first iterator at the request's position.
async fn start(
    api: &Api,
    who: &Who<'_>,
    request: &ReadRequest,
) -> Result<BTreeMap<String, String>, ApiError> {
    let shards = match &request.shard {
        Some(shard) => vec![shard.clone()],
        None => shard_ids(api, who, &request.stream).await?,
    };
    let mut iterators = BTreeMap::new();
    for shard in shards {
        let mut input = json!({
            "StreamName": request.stream,
            "ShardId": shard,
            "ShardIteratorType": request.position,
        });
        if let Some(sequence) = &request.sequence_number {
            input["StartingSequenceNumber"] = sequence.clone().into();
        }
        if let Some(at) = request.timestamp {
            input["Timestamp"] = at.into();
        }
        let answer = api
            .call_service(who, "kinesis", "GetShardIterator", &input)
            .await?;
        let answer: Value = serde_json::from_slice(&answer)
            .map_err(|err| ApiError::BadRequest(format!("GetShardIterator answered {err}")))?;
        if let Some(iterator) = answer["ShardIterator"].as_str() {
            iterators.insert(shard, iterator.to_owned());
        }
    }
    Ok(iterators)
}

/// Every shard of `stream`, open and closed, page by page.
async fn shard_ids(api: &Api, who: &Who<'_>, stream: &str) -> Result<Vec<String>, ApiError> {
    let mut ids = Vec::new();
    let mut input = json!({"StreamName": stream});
    loop {
        let answer = api
            .call_service(who, "kinesis", "ListShards", &input)
            .await?;
        let answer: Value = serde_json::from_slice(&answer)
            .map_err(|err| ApiError::BadRequest(format!("ListShards answered {err}")))?;
        for shard in answer["Shards"].as_array().into_iter().flatten() {
            if let Some(id) = shard["ShardId"].as_str() {
                ids.push(id.to_owned());
            }
        }
        match answer["NextToken"].as_str() {
            Some(token) => input = json!({"NextToken": token}),
            None => return Ok(ids),
        }
    }
}

/// The user records of one GetRecords record (several if aggregated).
pub fn expand(shard: &str, record: &Value) -> Vec<Shown> {
    let text = |name: &str| record[name].as_str().unwrap_or_default().to_owned();
    let data = base64_simd::STANDARD
        .decode_to_vec(record["Data"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let partition_key = text("PartitionKey");
    let sequence_number = text("SequenceNumber");
    let arrival = record["ApproximateArrivalTimestamp"]
        .as_f64()
        .unwrap_or_default();
    let aggregated = riffle_kpl::format::is_aggregated(&data);
    riffle_kpl::deaggregate(&data, &partition_key, None)
        .into_iter()
        .map(|user| Shown {
            shard_id: shard.to_owned(),
            sequence_number: sequence_number.clone(),
            sub_sequence_number: user.sub_sequence_number,
            partition_key: user.partition_key.to_owned(),
            arrival,
            aggregated,
            data: base64_simd::STANDARD.encode_to_string(user.data),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_records_are_expanded_and_plain_ones_kept() {
        let users = [
            riffle_kpl::UserRecord {
                partition_key: "a",
                explicit_hash_key: None,
                data: b"one",
            },
            riffle_kpl::UserRecord {
                partition_key: "b",
                explicit_hash_key: None,
                data: b"{\"two\":2}",
            },
        ];
        let aggregated = riffle_kpl::format::encode(&users);
        let record = json!({
            "SequenceNumber": "49",
            "PartitionKey": "a",
            "ApproximateArrivalTimestamp": 1700000000.5,
            "Data": base64_simd::STANDARD.encode_to_string(&aggregated),
        });
        let shown = expand("shardId-000000000000", &record);
        assert_eq!(shown.len(), 2);
        assert!(
            shown
                .iter()
                .all(|s| s.aggregated && s.sequence_number == "49")
        );
        assert_eq!(shown[1].partition_key, "b");
        assert_eq!(shown[1].sub_sequence_number, 1);
        assert_eq!(
            shown[1].data,
            base64_simd::STANDARD.encode_to_string(b"{\"two\":2}")
        );

        let plain = json!({
            "SequenceNumber": "50",
            "PartitionKey": "k",
            "ApproximateArrivalTimestamp": 1700000001.0,
            "Data": base64_simd::STANDARD.encode_to_string(b"hello"),
        });
        let shown = expand("shardId-000000000001", &plain);
        assert_eq!(
            shown,
            vec![Shown {
                shard_id: "shardId-000000000001".into(),
                sequence_number: "50".into(),
                sub_sequence_number: 0,
                partition_key: "k".into(),
                arrival: 1700000001.0,
                aggregated: false,
                data: base64_simd::STANDARD.encode_to_string(b"hello"),
            }]
        );
    }
}
