//! The request path's CPU-heavy steps, one call each, for the criterion
//! benches in `benches/hotpath.rs`. Not part of the service's contract:
//! hidden from the docs and free to change with the code it measures.

use std::sync::Arc;

use bytes::Bytes;
use riffle_log::ReadBatch;

use crate::actions::{get_records, put_records};
use crate::iterator::ShardIterator;
use crate::stream::Stream;
use crate::time::now_ms;
use crate::{Codec, Kinesis, KinesisError, cbor, hashkey};

/// One stream of a running service, whose hot steps can be run alone.
pub struct HotPath {
    kinesis: Arc<Kinesis>,
    stream: Arc<Stream>,
}

impl HotPath {
    /// `None` if the service has no stream called `stream`.
    pub fn new(kinesis: Arc<Kinesis>, stream: &str) -> Option<HotPath> {
        let stream = kinesis.get(stream)?;
        Some(HotPath { kinesis, stream })
    }

    /// PutRecords' request decoding: the body parsed (from CBOR first
    /// with `Codec::Cbor`), every record's data base64-decoded into one
    /// buffer, the model's constraints checked. Returns the data bytes.
    pub fn decode_put_records(&self, body: &[u8], codec: Codec) -> Result<usize, KinesisError> {
        match codec {
            Codec::Json => Ok(put_records::decode(body)?.data_len()),
            Codec::Cbor => {
                let json = cbor::request_to_json(body)?;
                Ok(put_records::decode(&json)?.data_len())
            }
        }
    }

    /// GetRecords' response encoding of `batch`, read from shard `shard`.
    pub fn encode_get_records(
        &self,
        shard: u32,
        batch: &ReadBatch,
        codec: Codec,
    ) -> Result<Bytes, KinesisError> {
        let shard = self
            .stream
            .shard(shard)
            .ok_or_else(|| KinesisError::InvalidArgument(format!("no shard {shard}")))?;
        let now = now_ms();
        let iterator = self.iterator(shard.index, batch.next_seq, now);
        let records = &batch.records;
        let (kinesis, stream) = (&self.kinesis, &self.stream);
        match codec {
            Codec::Json => Ok(Bytes::from(get_records::encode(
                kinesis, stream, shard, iterator, batch, records, now,
            ))),
            Codec::Cbor => Ok(Bytes::from(get_records::encode_cbor(
                kinesis, stream, shard, iterator, batch, records, now,
            )?)),
        }
    }

    /// The shard a partition key routes to: its MD5 as a 128-bit hash key,
    /// then the open shard whose range holds it.
    pub fn route(&self, partition_key: &str) -> Option<u32> {
        let hash = hashkey::of_partition_key(partition_key.as_bytes());
        self.stream.route(hash).map(|shard| shard.index)
    }

    /// A signed shard iterator for `position` in shard `shard`.
    pub fn encode_iterator(&self, shard: u32, position: u64) -> String {
        self.iterator(shard, position, now_ms())
            .encode(self.kinesis.iterator_key())
    }

    /// The position a shard iterator names, if its signature holds.
    pub fn decode_iterator(&self, token: &str) -> Option<u64> {
        ShardIterator::decode(token, self.kinesis.iterator_key()).map(|it| it.position)
    }

    fn iterator(&self, shard: u32, position: u64, now: i64) -> ShardIterator {
        ShardIterator {
            issued_ms: now,
            incarnation: self.stream.record.incarnation,
            shard_index: shard,
            position,
            stream: self.stream.name().to_owned(),
        }
    }
}
