use proptest::prelude::*;

use super::*;

fn user<'a>(pk: &'a str, ehk: Option<&'a str>, data: &'a [u8]) -> UserRecord<'a> {
    UserRecord {
        partition_key: pk,
        explicit_hash_key: ehk,
        data,
    }
}

#[test]
fn round_trip_keeps_keys_data_and_order_as_sub_sequence_numbers() {
    let records = [
        user("a", None, b"one"),
        user("b", Some("12345"), b""),
        user("a", Some("12345"), b"three"),
    ];
    let bytes = encode(&records);
    assert_eq!(bytes[..4], MAGIC);
    let decoded = decode(&bytes).expect("an aggregated record");
    assert_eq!(decoded.len(), 3);
    for (i, (got, want)) in decoded.iter().zip(&records).enumerate() {
        assert_eq!(got.partition_key, want.partition_key);
        assert_eq!(got.explicit_hash_key, want.explicit_hash_key);
        assert_eq!(got.data, want.data);
        assert_eq!(got.sub_sequence_number, i as u64);
    }
}

#[test]
fn repeated_keys_are_stored_once_in_the_tables() {
    let one = encode(&[user("same-key", None, b"x")]);
    let two = encode(&[user("same-key", None, b"x"), user("same-key", None, b"x")]);
    // The second record adds only its own entry (key, length, index, data).
    assert_eq!(two.len() - one.len(), 1 + 1 + 2 + 3);
}

#[test]
fn the_layout_is_magic_then_tables_then_records_then_md5() {
    let bytes = encode(&[user("k", Some("7"), b"hi")]);
    let message: &[u8] = &[
        0x0A, 1, b'k', // partition_key_table
        0x12, 1, b'7', // explicit_hash_key_table
        0x1A, 8, 0x08, 0, 0x10, 0, 0x1A, 2, b'h', b'i', // records[0]
    ];
    assert_eq!(&bytes[4..bytes.len() - 16], message);
    assert_eq!(&bytes[bytes.len() - 16..], Md5::digest(message).as_slice());
}

#[test]
fn size_with_predicts_the_finished_size_exactly() {
    let mut aggregator = Aggregator::new();
    let data = vec![7u8; 300];
    for i in 0..200 {
        let key = format!("key-{}", i % 37);
        let ehk = (i % 5 == 0).then(|| format!("{}", i * 1000));
        let record = user(&key, ehk.as_deref(), &data[..i]);
        let predicted = aggregator.size_with(&record);
        aggregator.add(&record);
        assert_eq!(aggregator.size(), predicted);
    }
    let size = aggregator.size();
    assert_eq!(aggregator.finish().len(), size);
    assert!(aggregator.is_empty());
    assert_eq!(aggregator.size(), OVERHEAD);
}

#[test]
fn try_add_stops_at_the_size_and_count_limits_exactly() {
    let mut aggregator = Aggregator::new();
    let record = user("key", Some("99"), &[5; 50]);
    let one = aggregator.size_with(&record);
    assert!(!aggregator.try_add(&record, one - 1, 10), "one byte short");
    assert!(
        aggregator.is_empty() && aggregator.size() == OVERHEAD,
        "nothing changed"
    );
    assert!(aggregator.try_add(&record, one, 10));
    let two = aggregator.size_with(&record);
    assert!(aggregator.try_add(&record, two, 10));
    assert_eq!(aggregator.size(), two);
    assert!(
        !aggregator.try_add(&record, usize::MAX, 2),
        "the count limit"
    );
    let bytes = aggregator.finish();
    let records = decode(&bytes).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].explicit_hash_key, Some("99"));
}

#[test]
fn anything_not_aggregated_is_one_plain_record() {
    let good = encode(&[user("k", None, b"data"), user("j", None, b"more")]);
    let mut bad_digest = good.clone();
    *bad_digest.last_mut().unwrap() ^= 1;
    let mut bad_magic = good.clone();
    bad_magic[0] = 0;
    let cases: [&[u8]; 5] = [b"", b"plain text", &MAGIC, &bad_digest, &bad_magic];
    for data in cases {
        assert_eq!(decode(data), None);
        let records = deaggregate(data, "pk", Some("5"));
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].data, data);
        assert_eq!(records[0].partition_key, "pk");
        assert_eq!(records[0].explicit_hash_key, Some("5"));
        assert_eq!(records[0].sub_sequence_number, 0);
    }
}

/// Magic and a valid MD5 around `message`.
fn wrap(message: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(message);
    out.extend_from_slice(&Md5::digest(message));
    out
}

#[test]
fn a_valid_digest_over_a_broken_message_is_a_plain_record() {
    // An index past the partition-key table, a truncated field, a record
    // without data, and a wire type protobuf does not have.
    let cases: [&[u8]; 4] = [
        &[0x0A, 1, b'k', 0x1A, 4, 0x08, 1, 0x1A, 0],
        &[0x0A, 5, b'k'],
        &[0x0A, 1, b'k', 0x1A, 2, 0x08, 0],
        &[0x0F],
    ];
    for message in cases {
        let data = wrap(message);
        assert_eq!(decode(&data), None, "{message:?}");
        assert_eq!(deaggregate(&data, "pk", None).len(), 1);
    }
}

#[test]
fn tags_and_unknown_fields_are_read_or_skipped() {
    let message: &[u8] = &[
        0x0A, 1, b'k', // partition_key_table
        0x28, 9, // field 5 (unknown varint)
        0x1A, 18, 0x08, 0, 0x1A, 1, b'd', // record: index, data
        0x22, 6, 0x0A, 1, b't', 0x12, 1, b'v', // tag t=v
        0x3D, 0, 0, 0, 0, // field 7 (unknown fixed32) inside the record
    ];
    let data = wrap(message);
    let records = decode(&data).expect("aggregated");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].data, b"d");
    assert_eq!(records[0].tags, vec![("t", Some("v"))]);
}

#[test]
fn an_empty_message_is_a_plain_record_not_nothing() {
    assert_eq!(decode(&wrap(&[])), None);
    assert_eq!(deaggregate(&wrap(&[]), "pk", None).len(), 1);
    // An unknown field alone: aggregated, with no user records.
    assert_eq!(decode(&wrap(&[0x28, 1])), Some(Vec::new()));
}

proptest! {
    #[test]
    fn any_records_round_trip(
        records in proptest::collection::vec(
            ("[a-zA-Z0-9é]{1,20}", proptest::option::of("[0-9]{1,39}"),
             proptest::collection::vec(any::<u8>(), 0..200)),
            1..40,
        )
    ) {
        let users: Vec<UserRecord<'_>> = records
            .iter()
            .map(|(pk, ehk, data)| user(pk, ehk.as_deref(), data))
            .collect();
        let bytes = encode(&users);
        let decoded = decode(&bytes).expect("aggregated");
        prop_assert_eq!(decoded.len(), users.len());
        for (got, want) in decoded.iter().zip(&users) {
            prop_assert_eq!(got.partition_key, want.partition_key);
            prop_assert_eq!(got.explicit_hash_key, want.explicit_hash_key);
            prop_assert_eq!(got.data, want.data);
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(message in proptest::collection::vec(any::<u8>(), 0..64)) {
        let data = wrap(&message);
        let _ = deaggregate(&data, "pk", None);
    }
}
