//! A delivery buffer: the records `[from, end)` of a stream's log, kept as
//! one flat body with each record's end offset and arrival time (no
//! allocation per record), so that the body is an uncompressed object as
//! it is, and record transformation and format conversion still see each
//! record. The log's partition-key slot of each record (a Kinesis source's
//! [`crate::source::SourceMeta`]) is kept the same way, only when a
//! transformation needs it.

use riffle_log::{Record, Seq};

/// Records as one flat body and the end offset of each: what an object is
/// made of; with each record's arrival time, which format conversion's
/// error lines report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Records {
    pub data: Vec<u8>,
    pub ends: Vec<usize>,
    /// Each record's arrival time, ms since the epoch.
    pub arrivals: Vec<i64>,
}

impl Records {
    /// The records each followed by a newline (AppendDelimiterToRecord).
    pub fn delimited(self) -> Records {
        let mut out = Records {
            data: Vec::with_capacity(self.data.len() + self.ends.len()),
            ends: Vec::with_capacity(self.ends.len()),
            arrivals: self.arrivals,
        };
        let mut start = 0;
        for &end in &self.ends {
            out.data.extend_from_slice(&self.data[start..end]);
            out.data.push(b'\n');
            out.ends.push(out.data.len());
            start = end;
        }
        out
    }

    /// Appends a record that arrived at `arrival_ms`.
    pub fn push(&mut self, data: &[u8], arrival_ms: i64) {
        self.data.extend_from_slice(data);
        self.ends.push(self.data.len());
        self.arrivals.push(arrival_ms);
    }

    /// Each record's end offset in `data` and its arrival time.
    pub fn bounds(&self) -> Vec<(usize, i64)> {
        self.ends
            .iter()
            .copied()
            .zip(self.arrivals.iter().copied())
            .collect()
    }

    /// Record `i`'s data.
    pub fn record(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }
}

/// A full (or due) buffer.
#[derive(Debug, Default)]
pub struct Buffer {
    /// The records' data, one after another.
    pub data: Vec<u8>,
    /// The end offset in `data` of each record.
    pub ends: Vec<usize>,
    /// Each record's arrival time, ms since the epoch.
    pub arrivals: Vec<i64>,
    /// The partition-key slots, flat, and the end of each (empty unless
    /// the buffer was filled with `keep_slots`).
    pub slots: Vec<u8>,
    pub slot_ends: Vec<usize>,
    /// The log position of the first record, and the one after the last.
    pub from: Seq,
    pub end: Seq,
    pub first_arrival_ms: Option<i64>,
    pub last_arrival_ms: i64,
}

impl Buffer {
    pub fn new(from: Seq) -> Buffer {
        Buffer {
            from,
            end: from,
            ..Buffer::default()
        }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Record `i`'s data.
    pub fn record(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    /// Record `i`'s partition-key slot; empty when slots were not kept.
    pub fn slot(&self, i: usize) -> &[u8] {
        let Some(&end) = self.slot_ends.get(i) else {
            return &[];
        };
        let start = if i == 0 { 0 } else { self.slot_ends[i - 1] };
        &self.slots[start..end]
    }

    /// Appends a record read from the log.
    pub fn push(&mut self, record: &Record, keep_slots: bool) {
        self.first_arrival_ms.get_or_insert(record.arrival_ms);
        self.data.extend_from_slice(&record.data);
        self.ends.push(self.data.len());
        self.arrivals.push(record.arrival_ms);
        if keep_slots {
            self.slots.extend_from_slice(&record.partition_key);
            self.slot_ends.push(self.slots.len());
        }
        self.last_arrival_ms = record.arrival_ms;
    }

    /// Appends a record made from a source record (a sub-record of it,
    /// or its data decompressed), which keeps the source's arrival time and
    /// partition-key slot.
    pub fn push_derived(&mut self, data: &[u8], arrival_ms: i64, slot: Option<&[u8]>) {
        self.first_arrival_ms.get_or_insert(arrival_ms);
        self.data.extend_from_slice(data);
        self.ends.push(self.data.len());
        self.arrivals.push(arrival_ms);
        if let Some(slot) = slot {
            self.slots.extend_from_slice(slot);
            self.slot_ends.push(self.slots.len());
        }
        self.last_arrival_ms = self.last_arrival_ms.max(arrival_ms);
    }

    /// The records, without their slots.
    pub fn into_records(self) -> Records {
        Records {
            data: self.data,
            ends: self.ends,
            arrivals: self.arrivals,
        }
    }

    /// The arrival time of the oldest record (names the buffer's objects).
    pub fn oldest_ms(&self) -> i64 {
        self.first_arrival_ms.unwrap_or(self.last_arrival_ms)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn delimited_records_each_end_with_a_newline_and_keep_their_arrivals() {
        let mut records = Records::default();
        records.push(b"{\"a\":1}", 5);
        records.push(b"", 6);
        records.push(b"x", 7);
        let out = records.delimited();
        assert_eq!(out.data, b"{\"a\":1}\n\nx\n");
        assert_eq!(out.ends, [8, 9, 11]);
        assert_eq!(out.arrivals, [5, 6, 7]);
    }

    fn record(seq: Seq, key: &'static [u8], data: &'static [u8], at: i64) -> Record {
        Record {
            seq,
            arrival_ms: at,
            partition_key: Bytes::from_static(key),
            explicit_hash_key: None,
            data: Bytes::from_static(data),
            encrypted: false,
        }
    }

    #[test]
    fn records_keep_their_boundaries_arrivals_and_slots() {
        let mut buffer = Buffer::new(10);
        buffer.push(&record(10, b"k1", b"abc", 5), true);
        buffer.push(&record(11, b"", b"", 6), true);
        buffer.push(&record(12, b"k333", b"de", 7), true);
        assert_eq!(buffer.data, b"abcde");
        assert_eq!(
            (0..3).map(|i| buffer.record(i)).collect::<Vec<_>>(),
            [&b"abc"[..], b"", b"de"]
        );
        assert_eq!(
            (0..3).map(|i| buffer.slot(i)).collect::<Vec<_>>(),
            [&b"k1"[..], b"", b"k333"]
        );
        assert_eq!(buffer.arrivals, [5, 6, 7]);
        assert_eq!(buffer.oldest_ms(), 5);
        let mut plain = Buffer::new(0);
        plain.push(&record(0, b"key", b"x", 1), false);
        assert_eq!(plain.slot(0), b"");
    }
}
