//! The series put so far, in memory, and their Prometheus rendering.
//!
//! A series is one metric: namespace, name and sorted dimensions, as
//! CloudWatch identifies it. Each keeps its statistics since the server
//! started (count, sum, min, max) and the average of the last datum put
//! (what a gauge such as `MillisBehindLatest` graphs). At most
//! [`SERIES_MAX`] are kept: a new series beyond that evicts the one put
//! to least recently, so a misbehaving client cannot grow the server
//! without bound, and the evictions are counted.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::request::{Datum, Stats};

/// At most this many series are kept. A KCL worker publishes a few dozen
/// per shard it holds; 10,000 covers hundreds of shards, and each series
/// costs a few hundred bytes.
pub const SERIES_MAX: usize = 10_000;

/// A metric's identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SeriesKey {
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct Series {
    total: Stats,
    /// The average of the last datum put.
    last: f64,
    /// When it was last put to, in puts since start (the eviction order).
    touched: u64,
}

/// A metric family: its suffix, Prometheus type, help and value.
type Family = (&'static str, &'static str, &'static str, fn(&Series) -> f64);

/// Every series, and counters of what was put.
#[derive(Default)]
pub(crate) struct Registry {
    series: HashMap<SeriesKey, Series>,
    puts: u64,
    data_points: u64,
    evicted: u64,
}

impl Registry {
    /// Adds `datum` of `namespace` to its series.
    pub(crate) fn put(&mut self, namespace: &str, datum: Datum) {
        self.puts += 1;
        self.data_points += 1;
        let key = SeriesKey {
            namespace: namespace.to_owned(),
            name: datum.name,
            dimensions: datum.dimensions,
        };
        let stats = datum.stats;
        // Counts of zero (allowed in Values/Counts) have no average.
        let average = (stats.count > 0.0).then(|| stats.sum / stats.count);
        if let Some(series) = self.series.get_mut(&key) {
            series.total.count += stats.count;
            series.total.sum += stats.sum;
            series.total.min = series.total.min.min(stats.min);
            series.total.max = series.total.max.max(stats.max);
            series.last = average.unwrap_or(series.last);
            series.touched = self.puts;
            return;
        }
        if self.series.len() >= SERIES_MAX {
            self.evict_oldest();
        }
        let series = Series {
            total: stats,
            last: average.unwrap_or(0.0),
            touched: self.puts,
        };
        self.series.insert(key, series);
    }

    /// A linear scan, only when a new series arrives at the bound.
    fn evict_oldest(&mut self) {
        let oldest = self
            .series
            .iter()
            .min_by_key(|(_, series)| series.touched)
            .map(|(key, _)| key.clone());
        if let Some(key) = oldest {
            self.series.remove(&key);
            self.evicted += 1;
        }
    }

    /// Writes every series and the counters, in Prometheus's text format.
    pub(crate) fn write_metrics(&self, out: &mut String) {
        let mut keys: Vec<&SeriesKey> = self.series.keys().collect();
        keys.sort();
        let families: [Family; 5] = [
            (
                "count",
                "counter",
                "Samples put (SampleCount summed)",
                |s| s.total.count,
            ),
            ("sum", "counter", "Sum of the values put", |s| s.total.sum),
            ("min", "gauge", "Least value put", |s| s.total.min),
            ("max", "gauge", "Greatest value put", |s| s.total.max),
            ("last", "gauge", "Average of the last datum put", |s| s.last),
        ];
        for (suffix, kind, help, value) in families {
            let name = format!("riffle_cloudwatch_metric_{suffix}");
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {name} CloudWatch PutMetricData: {help}.");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for key in &keys {
                let series = &self.series[*key];
                let _ = writeln!(out, "{name}{} {}", labels(key), value(series));
            }
        }
        let counters = [
            (
                "riffle_cloudwatch_data_points_total",
                "MetricData entries accepted",
                self.data_points,
            ),
            (
                "riffle_cloudwatch_series_evicted_total",
                "Series dropped to stay within the bound",
                self.evicted,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}.\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let series = self.series.len();
        let _ = writeln!(
            out,
            "# HELP riffle_cloudwatch_series Series kept (at most {SERIES_MAX}).\n# TYPE riffle_cloudwatch_series gauge\nriffle_cloudwatch_series {series}"
        );
    }
}

/// `{namespace="…",metric="…",<dimension>="…",…}`: dimension names made
/// valid label names ([`label_name`]), values escaped.
fn labels(key: &SeriesKey) -> String {
    let mut used: Vec<String> = vec!["namespace".into(), "metric".into()];
    let mut out = format!(
        "{{namespace=\"{}\",metric=\"{}\"",
        escape(&key.namespace),
        escape(&key.name)
    );
    for (name, value) in &key.dimensions {
        let mut label = label_name(name);
        while used.contains(&label) {
            label.push('_');
        }
        let _ = write!(out, ",{label}=\"{}\"", escape(value));
        used.push(label);
    }
    out.push('}');
    out
}

/// A Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting `__`,
/// which Prometheus reserves): other characters become `_`, and a name
/// that would start with a digit or `__` is prefixed `dimension_`.
pub(crate) fn label_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.starts_with(|c: char| c.is_ascii_digit()) || cleaned.starts_with("__") {
        format!("dimension_{cleaned}")
    } else {
        cleaned
    }
}

/// A label value as the text format escapes it: `\`, `"` and newline.
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datum(name: &str, dimensions: &[(&str, &str)], value: f64) -> Datum {
        Datum {
            name: name.into(),
            dimensions: dimensions
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            stats: Stats {
                count: 1.0,
                sum: value,
                min: value,
                max: value,
            },
        }
    }

    #[test]
    fn series_render_with_escaped_values_and_sanitised_dimension_names() {
        let mut registry = Registry::default();
        registry.put(
            "KCL \"app\"",
            datum(
                "MillisBehindLatest",
                &[("2x", "a\\b"), ("ShardId", "shard-1")],
                10.0,
            ),
        );
        registry.put(
            "KCL \"app\"",
            datum(
                "MillisBehindLatest",
                &[("2x", "a\\b"), ("ShardId", "shard-1")],
                30.0,
            ),
        );
        let mut out = String::new();
        registry.write_metrics(&mut out);
        let labels = r#"{namespace="KCL \"app\"",metric="MillisBehindLatest",dimension_2x="a\\b",ShardId="shard-1"}"#;
        for line in [
            format!("riffle_cloudwatch_metric_count{labels} 2"),
            format!("riffle_cloudwatch_metric_sum{labels} 40"),
            format!("riffle_cloudwatch_metric_min{labels} 10"),
            format!("riffle_cloudwatch_metric_max{labels} 30"),
            format!("riffle_cloudwatch_metric_last{labels} 30"),
            "riffle_cloudwatch_data_points_total 2".to_owned(),
            "riffle_cloudwatch_series 1".to_owned(),
        ] {
            assert!(out.lines().any(|l| l == line), "{line} not in\n{out}");
        }
        assert_eq!(label_name("__x"), "dimension___x");
        assert_eq!(label_name("Worker-Id.1"), "Worker_Id_1");
    }

    #[test]
    fn a_new_series_beyond_the_bound_evicts_the_least_recently_put() {
        let mut registry = Registry::default();
        for i in 0..SERIES_MAX {
            registry.put("N", datum(&format!("m{i}"), &[], 1.0));
        }
        registry.put("N", datum("m0", &[], 2.0));
        registry.put("N", datum("new", &[], 1.0));
        assert_eq!(registry.series.len(), SERIES_MAX);
        assert_eq!(registry.evicted, 1);
        let has = |name: &str| registry.series.keys().any(|k| k.name == name);
        assert!(has("m0") && has("new") && !has("m1"));
    }
}
