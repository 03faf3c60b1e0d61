//! Fuzzes the segment decoders: whatever the bytes, decoding never panics,
//! and a batch that decodes re-encodes to one that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use riffle_log::format::{self, RecordRef};

fuzz_target!(|data: &[u8]| {
    let _ = format::decode_segment_header(data);
    let _ = format::decode_index(data);
    let _ = format::decode_closed(data);
    let Ok(batch) = format::decode_batch(data) else { return };
    // An encrypted batch's records are checked once decrypted, not here.
    if batch.encryption.is_some() {
        return;
    }
    assert!(batch.len() <= data.len());
    let records: Vec<RecordRef> = batch.records().collect();
    assert_eq!(records.len() as u64, u64::from(batch.count));
    let mut again = format::encode_batch(records.iter().copied()).expect("decoded records are within limits");
    format::seal_batch(&mut again, batch.first_seq, batch.arrival_ms);
    let round = format::decode_batch(&again).expect("a re-encoded batch decodes");
    assert!(round.records().eq(records.iter().copied()));
    assert_eq!((round.first_seq, round.arrival_ms), (batch.first_seq, batch.arrival_ms));
});
