//! The live charts' data: the samples of the metrics the services already
//! keep (what `/metrics` shows), read from their Prometheus text into
//! `(name, labels, value)` triples. The page polls them and charts the
//! differences between polls as rates.

use serde::Serialize;

/// The series the console charts: streams', delivery streams' and the
/// storage engine's (not the per-operation request counters).
const SHOWN_PREFIXES: [&str; 3] = ["riffle_kinesis_", "riffle_firehose_", "riffle_storage_"];

/// One sample of one series.
#[derive(Debug, PartialEq, Serialize)]
pub struct Sample {
    pub name: String,
    /// Label names and values in the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// The samples of `text` (Prometheus's text format 0.0.4) in the shown
/// series; comment lines and lines it cannot read are left out.
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| SHOWN_PREFIXES.iter().any(|p| line.starts_with(p)))
        .filter_map(sample)
        .collect()
}

fn sample(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)?),
        None => (series, Vec::new()),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `a="x",b="y\"z"` → `[(a, x), (b, y"z)]`, with Prometheus's escapes.
fn labels(mut text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    while !text.is_empty() {
        let (name, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (at, '"') => break at,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        out.push((name.to_owned(), value));
        text = rest[end + 1..].trim_start_matches(',');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_with_their_labels_and_unshown_series_left_out() {
        let text = "# HELP riffle_kinesis_incoming_bytes_total IncomingBytes.\n\
                    # TYPE riffle_kinesis_incoming_bytes_total counter\n\
                    riffle_kinesis_incoming_bytes_total{stream=\"orders\"} 1048576\n\
                    riffle_kinesis_shard_incoming_bytes_total{stream=\"a\\\"b\",shard=\"shardId-000000000000\"} 12\n\
                    riffle_api_requests_total{service=\"kinesis\"} 3\n\
                    riffle_storage_disk_full 0\n\
                    riffle_kinesis_broken{stream=\"x\" 1\n";
        let got = samples(text);
        assert_eq!(
            got,
            vec![
                Sample {
                    name: "riffle_kinesis_incoming_bytes_total".into(),
                    labels: vec![("stream".into(), "orders".into())],
                    value: 1_048_576.0,
                },
                Sample {
                    name: "riffle_kinesis_shard_incoming_bytes_total".into(),
                    labels: vec![
                        ("stream".into(), "a\"b".into()),
                        ("shard".into(), "shardId-000000000000".into())
                    ],
                    value: 12.0,
                },
                Sample {
                    name: "riffle_storage_disk_full".into(),
                    labels: vec![],
                    value: 0.0,
                },
            ]
        );
    }
}
