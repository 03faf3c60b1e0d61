//! AWS's custom S3 prefixes and object names: the example table of "Custom
//! Prefixes for Amazon S3 Objects" as a golden test, every validation rule with
//! the service's message, and the DateTimeFormatter subset.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use riffle_firehose::prefix::{
    self, ErrorOutputType, MAX_EVALUATED_PREFIX_CHARS, PartitionKeys, PrefixError, RandomSource,
    S3Prefixes, datetime::Pattern,
};

/// Hands out the bytes it was given, then zeros, so random parts are known.
struct Scripted(Vec<u8>);

impl RandomSource for Scripted {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = if self.0.is_empty() {
                0
            } else {
                self.0.remove(0)
            };
        }
    }
}

fn at(text: &str) -> Timestamp {
    text.parse().expect("test instants are valid RFC 3339")
}

fn prefixes(prefix: Option<&str>, error: Option<&str>) -> Result<S3Prefixes, PrefixError> {
    S3Prefixes::new(prefix, error, None, at("2018-08-27T10:30:00Z"))
}

fn evaluate(p: &S3Prefixes, when: &str, rng: &mut dyn RandomSource) -> (String, String) {
    let keys = PartitionKeys::default();
    (
        p.evaluate(at(when), &keys, rng),
        p.evaluate_error(at(when), ErrorOutputType::ProcessingFailed, rng),
    )
}

/// One row of the page's "Prefix and ErrorOutputPrefix examples" table.
struct Row {
    prefix: Option<&'static str>,
    error: Option<&'static str>,
    /// The page states one instant (10:30 UTC, Aug 27 2018) but prints dates
    /// from others; each row is evaluated at the instant its output shows.
    when: &'static str,
    expected: Result<(&'static str, &'static str), &'static str>,
}

#[test]
fn the_example_table_of_the_custom_prefixes_page_evaluates_as_documented() {
    let rows = [
        // The page prints "2018/08/10/": the default prefix is yyyy/MM/dd/HH/
        // ("Amazon S3 Object Name Format"), so the hour is there too.
        Row {
            prefix: None,
            error: Some("myFirehoseFailures/!{firehose:error-output-type}/"),
            when: "2018-08-10T10:30:00Z",
            expected: Ok(("2018/08/10/10/", "myFirehoseFailures/processing-failed/")),
        },
        // The page words it "ErrorOutputPrefix can't be null when Prefix
        // contains expressions"; this is the service's text.
        Row {
            prefix: Some("!{timestamp:yyyy/MM/dd}"),
            error: None,
            when: "2018-08-27T10:30:00Z",
            expected: Err(
                "Ths supplied prefix(es) do not satisfy the following constraint: \
                 ErrorOutputPrefix cannot be null or empty when Prefix contains expressions",
            ),
        },
        Row {
            prefix: Some(
                "myFirehose/DeliveredYear=!{timestamp:yyyy}/anyMonth/rand=!{firehose:random-string}",
            ),
            error: Some(
                "myFirehoseFailures/!{firehose:error-output-type}/!{timestamp:yyyy}/anyMonth/!{timestamp:dd}",
            ),
            when: "2018-08-10T10:30:00Z",
            expected: Ok((
                "myFirehose/DeliveredYear=2018/anyMonth/rand=5abf82daaa5",
                "myFirehoseFailures/processing-failed/2018/anyMonth/10",
            )),
        },
        Row {
            prefix: Some(
                "myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/",
            ),
            error: Some(
                "myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/!{firehose:error-output-type}",
            ),
            when: "2018-07-06T23:30:00Z",
            expected: Ok((
                "myPrefix/year=2018/month=07/day=06/hour=23/",
                "myErrorPrefix/year=2018/month=07/day=06/hour=23/processing-failed",
            )),
        },
        // The page prints "myFirehosePrefix/2018/08/27/" and
        // "myFirehosePrefix/processing-failed/2018/08/27/". Its semantic rules
        // say the Prefix gets `!{timestamp:yyyy/MM/dd/HH/}` appended, with no
        // slash added, and the error prefix is `<Prefix><error-output-type>`
        // then the time; that is what the service does.
        Row {
            prefix: Some("myFirehosePrefix"),
            error: None,
            when: "2018-08-27T10:30:00Z",
            expected: Ok((
                "myFirehosePrefix2018/08/27/10/",
                "myFirehosePrefixprocessing-failed/2018/08/27/10/",
            )),
        },
    ];
    for row in rows {
        let got = prefixes(row.prefix, row.error).map(|p| {
            // The random string the page shows, as indexes into the alphabet
            // (0-9, then a-z, then A-Z).
            let mut rng = Scripted(vec![5, 10, 11, 15, 8, 2, 13, 10, 10, 10, 5]);
            evaluate(&p, row.when, &mut rng)
        });
        let got = got
            .as_ref()
            .map(|(p, e)| (p.as_str(), e.as_str()))
            .map_err(|e| e.to_string());
        assert_eq!(
            got,
            row.expected.map_err(str::to_owned),
            "row {:?} / {:?}",
            row.prefix,
            row.error
        );
    }
}

#[test]
fn no_prefix_is_the_utc_hour_and_a_custom_time_zone_moves_it() {
    let p = prefixes(None, None).unwrap();
    assert_eq!(
        p.evaluate(
            at("2018-12-31T23:59:59Z"),
            &PartitionKeys::default(),
            &mut Scripted(vec![])
        ),
        "2018/12/31/23/"
    );
    let tokyo =
        S3Prefixes::new(None, None, Some("Asia/Tokyo"), at("2018-08-27T10:30:00Z")).unwrap();
    let keys = PartitionKeys::default();
    assert_eq!(
        tokyo.evaluate(at("2018-12-31T23:59:59Z"), &keys, &mut Scripted(vec![])),
        "2019/01/01/08/"
    );
    let empty = S3Prefixes::new(Some(""), Some(""), Some(""), at("2018-08-27T10:30:00Z")).unwrap();
    assert_eq!(
        empty.evaluate(at("2018-08-27T10:30:00Z"), &keys, &mut Scripted(vec![])),
        "2018/08/27/10/"
    );
}

#[test]
fn a_prefix_without_a_timestamp_gets_the_hour_appended_and_one_with_a_timestamp_does_not() {
    let mut rng = Scripted(vec![]);
    let keys = PartitionKeys::default();
    let when = at("2024-02-29T05:06:07Z");
    let literal = prefixes(Some("raw-data/"), None).unwrap();
    assert_eq!(
        literal.evaluate(when, &keys, &mut rng),
        "raw-data/2024/02/29/05/"
    );
    assert_eq!(
        literal.evaluate_error(when, ErrorOutputType::FormatConversionFailed, &mut rng),
        "raw-data/format-conversion-failed/2024/02/29/05/"
    );
    let random_only = prefixes(
        Some("r=!{firehose:random-string}/"),
        Some("e/!{firehose:error-output-type}/"),
    )
    .unwrap();
    assert_eq!(
        random_only.evaluate(when, &keys, &mut rng),
        "r=00000000000/2024/02/29/05/"
    );
    let timed = prefixes(
        Some("d=!{timestamp:yyyy-MM-dd}/"),
        Some("e/!{firehose:error-output-type}/"),
    )
    .unwrap();
    assert_eq!(timed.evaluate(when, &keys, &mut rng), "d=2024-02-29/");
}

#[test]
fn every_use_of_random_string_is_new_and_every_timestamp_is_the_same_instant() {
    let p = prefixes(
        Some(
            "!{firehose:random-string}/!{firehose:random-string}/!{timestamp:ss}/!{timestamp:ss}/",
        ),
        Some("!{firehose:error-output-type}/!{firehose:error-output-type}/"),
    )
    .unwrap();
    // 250 is past the last unbiased byte (247): drawn again.
    let mut bytes: Vec<u8> = (0u8..11).collect();
    bytes.extend([250, 36, 61, 62, 123, 200, 247, 248, 255, 37, 38, 39, 40, 41]);
    let mut rng = Scripted(bytes);
    let (prefix, error) = evaluate(&p, "2018-08-27T10:30:42Z", &mut rng);
    assert_eq!(prefix, "0123456789a/AZ0ZeZBCDEF/42/42/");
    assert_eq!(error, "processing-failed/processing-failed/");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let real = prefix::random_string(&mut prefix::ThreadRandom);
        assert_eq!(real.len(), 11);
        assert!(real.chars().all(|c| c.is_ascii_alphanumeric()), "{real}");
        seen.extend(real.chars());
    }
    assert_eq!(seen.len(), 62, "every letter and digit turns up");
}

fn refusal(prefix: Option<&str>, error: Option<&str>) -> String {
    prefixes(prefix, error)
        .expect_err("AWS refuses this configuration")
        .to_string()
}

#[test]
fn every_prefix_rule_is_refused_with_the_services_message() {
    const LEAD: &str = "Ths supplied prefix(es) do not satisfy the following constraint: ";
    let eot = "!{firehose:error-output-type}";
    let cases: Vec<(Option<String>, Option<String>, String)> = vec![
        (
            Some("a/!{timestamp:yyyy".into()),
            None,
            "Invalid expression usage".into(),
        ),
        (
            Some("a/!{timestamp:!{timestamp:yyyy}}".into()),
            Some(eot.into()),
            "Invalid expression usage".into(),
        ),
        (
            Some("a/!{timestamp}".into()),
            Some(eot.into()),
            "Invalid expression usage".into(),
        ),
        (
            Some("x".into()),
            Some(format!("e/{eot}/!{{")),
            "Invalid expression usage".into(),
        ),
        (
            Some("a/!{foo:bar}/".into()),
            Some(eot.into()),
            "Namespace to the left of colon (foo) is an invalid keyword!".into(),
        ),
        (
            Some("a/!{Timestamp:yyyy}/".into()),
            Some(eot.into()),
            "Namespace to the left of colon (Timestamp) is an invalid keyword!".into(),
        ),
        (
            Some("a/!{timestamp:yyyy-bb}/".into()),
            Some(eot.into()),
            "Invalid conversion character used in the value of the expression in Prefix".into(),
        ),
        (
            Some("a/!{firehose:uuid}/".into()),
            Some(eot.into()),
            "Invalid conversion character used in the value of the expression in Prefix".into(),
        ),
        (
            Some("a/!{timestamp:}/".into()),
            Some(eot.into()),
            "Invalid conversion character used in the value of the expression in Prefix".into(),
        ),
        (
            Some("a/".into()),
            Some(format!("{eot}/!{{timestamp:HHH}}")),
            "Invalid conversion character used in the value of the expression in ErrorOutputPrefix"
                .into(),
        ),
        (
            Some(format!("a/{eot}/")),
            Some(eot.into()),
            format!(
                "{LEAD}Prefix must not contain any occurrence of !{{firehose:error-output-type}}"
            ),
        ),
        (
            Some("a/!{timestamp:yyyy}/".into()),
            Some("e/!{timestamp:yyyy}/".into()),
            format!(
                "{LEAD}ErrorOutputPrefix must contain at least one occurrence of !{{firehose:error-output-type}}"
            ),
        ),
        (
            Some("a/!{firehose:random-string}/".into()),
            None,
            format!(
                "{LEAD}ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"
            ),
        ),
        (
            Some("a/!{timestamp:yyyy}/".into()),
            Some(String::new()),
            format!(
                "{LEAD}ErrorOutputPrefix cannot be null or empty when Prefix contains expressions"
            ),
        ),
        (
            Some("a/".into()),
            Some(format!("{eot}/!{{partitionKeyFromQuery:id}}/")),
            "Dynamic Partitioning Namespaces can't be part of an error prefix expression".into(),
        ),
        (
            Some("a/!{partitionKeyFromLambda:}/".into()),
            Some(eot.into()),
            "Invalid conversion character used in the value of the expression in Prefix".into(),
        ),
    ];
    for (prefix, error, message) in cases {
        assert_eq!(
            refusal(prefix.as_deref(), error.as_deref()),
            message,
            "{prefix:?} / {error:?}"
        );
    }
}

#[test]
fn a_literal_error_prefix_needs_no_error_output_type() {
    let p = prefixes(Some("a/!{timestamp:yyyy}/"), Some("errors/")).unwrap();
    let (_, error) = evaluate(&p, "2018-08-27T10:30:00Z", &mut Scripted(vec![]));
    assert_eq!(error, "errors/");
}

#[test]
fn prefixes_longer_than_512_characters_once_evaluated_are_refused() {
    // A literal prefix gets "yyyy/MM/dd/HH/" (14 characters) appended.
    let fits = "p".repeat(MAX_EVALUATED_PREFIX_CHARS - 14);
    assert!(prefixes(Some(&fits), None).is_ok());
    let over = "p".repeat(MAX_EVALUATED_PREFIX_CHARS - 13);
    assert_eq!(
        refusal(Some(&over), None),
        "Length of evaluated prefix cannot be greater than 512"
    );
    // Within the model's 1,024 characters as written, 513 once evaluated.
    let expands = format!("!{{timestamp:{}}}", "y".repeat(19)).repeat(27);
    assert!(expands.len() <= 1024);
    assert_eq!(
        refusal(Some(&expands), Some("!{firehose:error-output-type}")),
        "Length of evaluated prefix cannot be greater than 512"
    );
    // The error prefix is checked with the longest error type
    // ("format-conversion-failed", 24 characters).
    let error = format!(
        "{}!{{firehose:error-output-type}}",
        "e".repeat(MAX_EVALUATED_PREFIX_CHARS - 23)
    );
    assert_eq!(
        refusal(Some("ok/"), Some(&error)),
        "Length of evaluated ErrorOutputPrefix cannot be greater than 512"
    );
}

#[test]
fn partition_key_namespaces_parse_but_need_dynamic_partitioning() {
    let p = prefixes(
        Some("customer=!{partitionKeyFromQuery:customer_id}/fn=!{partitionKeyFromLambda:f}/"),
        Some("errors/!{firehose:error-output-type}/"),
    )
    .unwrap();
    assert!(p.uses_partition_keys());
    assert_eq!(
        p.check_dynamic_partitioning(false).unwrap_err().to_string(),
        "Dynamic Partitioning Namespaces can only be part of a prefix expression when Dynamic Partitioning is enabled."
    );
    assert!(p.check_dynamic_partitioning(true).is_ok());
    let keys = PartitionKeys {
        from_query: vec![("customer_id".into(), "c-42".into())],
        from_lambda: vec![("f".into(), "x".into())],
    };
    let evaluated = p.evaluate(at("2021-11-01T00:00:00Z"), &keys, &mut Scripted(vec![]));
    assert_eq!(evaluated, "customer=c-42/fn=x/2021/11/01/00/");

    let plain = prefixes(Some("plain/"), None).unwrap();
    assert!(!plain.uses_partition_keys());
    assert!(plain.check_dynamic_partitioning(false).is_ok());
    assert_eq!(
        plain
            .check_dynamic_partitioning(true)
            .unwrap_err()
            .to_string(),
        "S3 Prefix should contain Dynamic Partitioning namespaces when Dynamic Partitioning is enabled"
    );
}

#[test]
fn custom_time_zones_are_iana_names_in_the_models_alphabet() {
    assert_eq!(prefix::time_zone(None).unwrap(), TimeZone::UTC);
    assert!(prefix::time_zone(Some("America/Argentina/Buenos_Aires")).is_ok());
    assert!(
        prefix::time_zone(Some("Africa/Asmera")).is_ok(),
        "backward-compatible names AWS lists"
    );
    for bad in [
        "Mars/Olympus_Mons",
        "Etc/GMT+9",
        "asia/tokyo ",
        "Asia/Tokyo\n",
    ] {
        assert_eq!(
            prefix::time_zone(Some(bad)).unwrap_err(),
            PrefixError::UnknownTimeZone {
                name: bad.to_owned()
            },
            "{bad:?}"
        );
    }
    let err =
        S3Prefixes::new(None, None, Some("Nowhere/City"), at("2018-08-27T10:30:00Z")).unwrap_err();
    assert!(matches!(err, PrefixError::UnknownTimeZone { .. }));
}

#[test]
fn object_names_carry_stream_version_local_time_uuid_and_extension() {
    let id = prefix::random_uuid(&mut Scripted((1u8..=16).collect()));
    assert_eq!(id.get_version_num(), 4);
    let when = at("2018-08-27T10:30:05.9Z");
    let key = prefix::object_key(
        "raw-data/2018/08/27/10/",
        "orders",
        3,
        when,
        &TimeZone::UTC,
        id,
        ".gz",
    );
    assert_eq!(
        key,
        format!("raw-data/2018/08/27/10/orders-3-2018-08-27-10-30-05-{id}.gz")
    );
    let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
    let key = prefix::object_key("", "orders", 1, when, &tokyo, id, "");
    assert_eq!(key, format!("orders-1-2018-08-27-19-30-05-{id}"));
    assert_eq!(id.to_string().len(), 36);
}

#[test]
fn file_extensions_follow_the_models_pattern_and_replace_the_compressions() {
    for ok in [
        "",
        ".json",
        ".a.b",
        ".x!-_.*'()",
        &format!(".{}", "a".repeat(127)),
    ] {
        assert!(prefix::check_file_extension(ok).is_ok(), "{ok:?}");
    }
    for bad in [
        "json",
        ".",
        ".JSON",
        ".a b",
        ".é",
        &format!(".{}", "a".repeat(128)),
    ] {
        assert_eq!(
            prefix::check_file_extension(bad),
            Err(PrefixError::InvalidFileExtension {
                extension: bad.to_owned()
            }),
            "{bad:?}"
        );
    }
    assert_eq!(prefix::object_extension(Some(".ndjson"), ".gz"), ".ndjson");
    assert_eq!(prefix::object_extension(Some(""), ".gz"), ".gz");
    assert_eq!(prefix::object_extension(None, ".snappy"), ".snappy");
}

fn format(pattern: &str, when: &str, zone: &str) -> String {
    let zoned = at(when).to_zoned(TimeZone::get(zone).unwrap());
    let mut out = String::new();
    Pattern::parse(pattern)
        .unwrap_or_else(|_| panic!("{pattern} parses"))
        .format(&zoned, &mut out);
    out
}

#[test]
fn date_time_formatter_letters_print_as_java_prints_them() {
    // A Monday; day 239 of 2018; MJD 58357.
    let t = "2018-08-27T10:30:05.123456789Z";
    let cases = [
        ("yyyy", "2018"),
        ("yy", "18"),
        ("y", "2018"),
        ("yyyyy", "02018"),
        ("uuuu", "2018"),
        ("G", "AD"),
        ("GGGG", "Anno Domini"),
        ("GGGGG", "A"),
        ("M", "8"),
        ("MM", "08"),
        ("MMM", "Aug"),
        ("MMMM", "August"),
        ("MMMMM", "A"),
        ("LLL", "Aug"),
        ("d", "27"),
        ("dd", "27"),
        ("D", "239"),
        ("DDD", "239"),
        ("Q", "3"),
        ("QQ", "03"),
        ("QQQ", "Q3"),
        ("QQQQ", "3rd quarter"),
        ("E", "Mon"),
        ("EEEE", "Monday"),
        ("EEEEE", "M"),
        ("e", "2"),
        ("ee", "02"),
        ("eeee", "Monday"),
        ("c", "2"),
        ("w", "35"),
        ("W", "5"),
        ("F", "6"),
        ("YYYY", "2018"),
        ("H", "10"),
        ("HH", "10"),
        ("h", "10"),
        ("K", "10"),
        ("k", "10"),
        ("a", "AM"),
        ("B", "in the morning"),
        ("m", "30"),
        ("mm", "30"),
        ("s", "5"),
        ("ss", "05"),
        ("S", "1"),
        ("SSS", "123"),
        ("SSSSSSSSS", "123456789"),
        ("A", "37805123"),
        ("n", "123456789"),
        ("N", "37805123456789"),
        ("g", "58357"),
        ("X", "Z"),
        ("XXX", "Z"),
        ("x", "+00"),
        ("xx", "+0000"),
        ("xxx", "+00:00"),
        ("Z", "+0000"),
        ("ZZZZ", "GMT"),
        ("ZZZZZ", "Z"),
        ("O", "GMT"),
        ("VV", "UTC"),
        ("z", "UTC"),
        ("yyyy/MM/dd/HH/", "2018/08/27/10/"),
        ("'year='yyyy'/month='MM", "year=2018/month=08"),
        ("'it''s' yyyy", "it's 2018"),
        ("''HH''", "'10'"),
        ("yyyy[-MM]", "2018-08"),
        ("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "2018-08-27T10:30:05.123Z"),
    ];
    for (pattern, expected) in cases {
        assert_eq!(format(pattern, t, "UTC"), expected, "pattern {pattern}");
    }
}

#[test]
fn zone_letters_follow_the_custom_time_zone() {
    let t = "2018-08-27T10:30:05Z";
    let cases = [
        ("HH", "Asia/Tokyo", "19"),
        ("X", "Asia/Tokyo", "+09"),
        ("XX", "Asia/Tokyo", "+0900"),
        ("XXX", "Asia/Tokyo", "+09:00"),
        ("Z", "Asia/Tokyo", "+0900"),
        ("O", "Asia/Tokyo", "GMT+9"),
        ("OOOO", "Asia/Tokyo", "GMT+09:00"),
        ("VV", "Asia/Tokyo", "Asia/Tokyo"),
        ("z", "Asia/Tokyo", "JST"),
        ("O", "Asia/Kolkata", "GMT+5:30"),
        ("X", "Asia/Kolkata", "+0530"),
        ("xxx", "America/New_York", "-04:00"),
        ("z", "America/New_York", "EDT"),
        ("h a", "America/New_York", "6 AM"),
    ];
    for (pattern, zone, expected) in cases {
        assert_eq!(format(pattern, t, zone), expected, "{pattern} in {zone}");
    }
}

#[test]
fn week_based_years_and_twelve_hour_clocks_turn_where_java_turns_them() {
    // 2018-12-30 is a Sunday: US week 1 of 2019 (it holds January 1st).
    assert_eq!(
        format("YYYY-'w'w", "2018-12-30T00:00:00Z", "UTC"),
        "2019-w1"
    );
    assert_eq!(
        format("YYYY-'w'w", "2018-12-29T23:59:59Z", "UTC"),
        "2018-w52"
    );
    assert_eq!(format("YY", "2018-12-30T00:00:00Z", "UTC"), "19");
    assert_eq!(
        format("h K k H a B", "2018-08-27T00:00:00Z", "UTC"),
        "12 0 24 0 AM midnight"
    );
    assert_eq!(
        format("h K k H a B", "2018-08-27T12:00:00Z", "UTC"),
        "12 0 12 12 PM noon"
    );
    assert_eq!(
        format("hh KK kk HH a B", "2018-08-27T23:05:00Z", "UTC"),
        "11 11 23 23 PM at night"
    );
}

#[test]
fn the_pattern_letters_java_refuses_are_the_ones_the_service_refuses() {
    // Measured against the service over all 52 ASCII letters, one at a time.
    let refused: Vec<char> = ('A'..='Z')
        .chain('a'..='z')
        .filter(|c| Pattern::parse(&c.to_string()).is_err())
        .collect();
    assert_eq!(refused, "CIJPRTUVbfijloprt".chars().collect::<Vec<_>>());
    for bad in [
        "HHH",
        "aa",
        "ddd",
        "MMMMMM",
        "FF",
        "SSSSSSSSSS",
        "V",
        "VVV",
        "zzzzz",
        "cc",
        "'open",
        "yyyy]",
        "#",
        "{",
        "}",
        "",
    ] {
        assert!(Pattern::parse(bad).is_err(), "{bad:?} must be refused");
    }
}

/// Text made mostly of the characters the prefix grammar reacts to.
fn prefix_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        Just("!{".to_owned()),
        Just("}".to_owned()),
        Just(":".to_owned()),
        Just("'".to_owned()),
        Just("timestamp".to_owned()),
        Just("firehose:random-string".to_owned()),
        Just("firehose:error-output-type".to_owned()),
        Just("partitionKeyFromQuery:k".to_owned()),
        "[A-Za-z]{1,6}",
        "[/\\[\\]#{}'=. -]",
        any::<char>().prop_map(String::from),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

proptest::proptest! {
    #[test]
    fn any_prefix_is_refused_with_a_message_or_evaluates_within_512_characters(
        prefix in prefix_text(),
        error in prefix_text(),
        seconds in 0i64..4_102_444_800,
    ) {
        let when = Timestamp::from_second(seconds).unwrap();
        match S3Prefixes::new(Some(&prefix), Some(&error), Some("Asia/Kolkata"), when) {
            Err(e) => proptest::prop_assert!(!e.to_string().is_empty()),
            Ok(p) => {
                let keys = PartitionKeys::default();
                let evaluated = p.evaluate(when, &keys, &mut prefix::ThreadRandom);
                proptest::prop_assert!(evaluated.chars().count() <= MAX_EVALUATED_PREFIX_CHARS);
                let error = p.evaluate_error(when, ErrorOutputType::FormatConversionFailed, &mut prefix::ThreadRandom);
                proptest::prop_assert!(error.chars().count() <= MAX_EVALUATED_PREFIX_CHARS);
            }
        }
    }
}
