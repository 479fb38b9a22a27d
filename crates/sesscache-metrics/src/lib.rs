//! sesscache's numbers as Prometheus metrics: a cache's statistics (OpenSSL's
//! `SSL_CTX_sess_*` counters, the number of sessions and the size limit, why handshakes did
//! not resume), how long its operations took, and any other snapshot that describes itself
//! ([`Describe`]) and implements `serde::Serialize` (the fleet tier's, a server's own), in
//! the Prometheus text format.
//!
//! The values come from serializing the statistics; each field's name, type and help come
//! from its type's description (`session_cache::metrics`), written once next to the type.
//! Every field a snapshot serializes is described, as each type's unit tests check with
//! [`undescribed`]. The text is written by the `prometheus` crate's encoder; a server with a
//! `prometheus` registry of its own registers a [`Collector`] in it instead.
//!
//! ```
//! use session_cache::{CacheConfig, SessionCache};
//!
//! let cache = SessionCache::new(CacheConfig { timing: true, ..Default::default() });
//! let text = sesscache_metrics::Metrics::new().cache(&cache).encode();
//! assert!(text.contains("sesscache_hits_total 0"));
//! ```

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};
use serde::Serialize;
use serde_json::Value;
use session_cache::metrics::{Describe, Metric as Description, MetricKind};
use session_cache::{Latency, Operation, SessionCache};

mod collector;

pub use collector::Collector;

/// The content type of [`Metrics::encode`]'s text (the Prometheus text format, 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics of one scrape, gathered from snapshots and encoded as text.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    families: Vec<MetricFamily>,
}

impl Metrics {
    /// No metrics yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache's statistics (`sesscache_*`, as [`Stats`](session_cache::Stats) describes them) and the latency of
    /// its operations (`sesscache_operation_duration_seconds{op=...}`, a histogram per
    /// operation, as [`Latency`] describes it; empty unless the cache times them).
    pub fn cache(&mut self, cache: &SessionCache) -> &mut Self {
        self.snapshot("sesscache_", &cache.stats());
        let [described] = Latency::METRICS else {
            unreachable!("a latency snapshot is one histogram");
        };
        let mut family = family(
            &format!("sesscache_{}", described.name()),
            described.help(),
            MetricType::HISTOGRAM,
        );
        for op in Operation::ALL {
            let latency = cache.latency(op);
            let mut histogram = Histogram::default();
            histogram.set_sample_count(latency.count);
            histogram.set_sample_sum(latency.sum_seconds);
            histogram.set_bucket(
                latency
                    .buckets
                    .iter()
                    .map(|&(bound, count)| {
                        let mut bucket = Bucket::default();
                        bucket.set_upper_bound(bound);
                        bucket.set_cumulative_count(count);
                        bucket
                    })
                    .collect(),
            );
            let mut metric = Metric::from_label(vec![label(described.label_name(), op.name())]);
            metric.set_histogram(histogram);
            family.mut_metric().push(metric);
        }
        self.families.push(family);
        self
    }

    /// The fleet tier's counters (`sesscache_tier_*`, as `sesscache_redis::TierStats`
    /// describes them).
    pub fn tier(&mut self, stats: &(impl Describe + Serialize)) -> &mut Self {
        self.snapshot("sesscache_tier_", stats)
    }

    /// Any snapshot that describes itself and serializes as a struct: each field becomes a
    /// metric named `<prefix><name>` (`_total` added for counters), with its description's
    /// type and help. A number is the metric's value; a struct of numbers is one metric with
    /// a series per part, labelled by the description's label name; a string is a gauge of 1
    /// labelled with it; a boolean is a gauge of 0 or 1. A snapshot that does not serialize
    /// as a struct adds nothing, and neither does a field without a counter's or a gauge's
    /// description (a bug that [`undescribed`] finds in the type's tests).
    pub fn snapshot<T: Describe + Serialize>(&mut self, prefix: &str, value: &T) -> &mut Self {
        let Ok(Value::Object(map)) = serde_json::to_value(value) else {
            return self;
        };
        for (key, value) in &map {
            let Some(described) = T::metric(key) else {
                debug_assert!(false, "{key} is not described");
                continue;
            };
            let kind = described.kind();
            let name = match kind {
                MetricKind::Counter => format!("{prefix}{}_total", described.name()),
                MetricKind::Gauge => format!("{prefix}{}", described.name()),
                _ => {
                    debug_assert!(false, "{key} is not a counter or a gauge");
                    continue;
                }
            };
            let label_name = described.label_name();
            let mut out = family(&name, described.help(), metric_type(kind));
            match value {
                Value::Object(parts) => {
                    for (part, value) in parts {
                        if let Some(v) = number(value) {
                            out.mut_metric()
                                .push(sample(kind, vec![label(label_name, part)], v));
                        }
                    }
                }
                Value::String(state) => {
                    out.set_field_type(MetricType::GAUGE);
                    out.mut_metric().push(sample(
                        MetricKind::Gauge,
                        vec![label(label_name, state)],
                        1.0,
                    ));
                }
                other => {
                    if let Some(v) = number(other) {
                        out.mut_metric().push(sample(kind, Vec::new(), v));
                    }
                }
            }
            if !out.get_metric().is_empty() {
                self.families.push(out);
            }
        }
        self
    }

    /// The metric families gathered, in the order they were added.
    pub fn families(&self) -> &[MetricFamily] {
        &self.families
    }

    /// The metrics in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        // Every family built here has a name and at least one metric, the encoder's only
        // conditions; writing to a Vec cannot fail.
        match TextEncoder::new().encode(&self.families, &mut out) {
            Ok(()) => String::from_utf8(out).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

fn family(name: &str, help: &str, kind: MetricType) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.to_owned());
    family.set_help(help.to_owned());
    family.set_field_type(kind);
    family
}

fn metric_type(kind: MetricKind) -> MetricType {
    match kind {
        MetricKind::Counter => MetricType::COUNTER,
        MetricKind::Gauge => MetricType::GAUGE,
        MetricKind::Histogram => MetricType::HISTOGRAM,
        _ => MetricType::UNTYPED,
    }
}

fn label(name: &str, value: &str) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name.to_owned());
    pair.set_value(value.to_owned());
    pair
}

fn sample(kind: MetricKind, labels: Vec<LabelPair>, value: f64) -> Metric {
    let mut metric = Metric::from_label(labels);
    if kind == MetricKind::Gauge {
        let mut g = Gauge::default();
        g.set_value(value);
        metric.set_gauge(g);
    } else {
        let mut c = Counter::default();
        c.set_value(value);
        metric.set_counter(c);
    }
    metric
}

/// A JSON number or boolean as a sample value.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// What is wrong with how `snapshot`'s type describes it: each field it serializes (as
/// `field`, or `field.part` for a struct's parts) without exactly one description, each
/// description without its field, each description without help. A type's unit test
/// serializes a snapshot and expects none.
pub fn undescribed<T: Describe + Serialize>(snapshot: &T) -> Vec<String> {
    let mut wrong = Vec::new();
    match serde_json::to_value(snapshot) {
        Ok(value) => check(T::METRICS, &value, "", &mut wrong),
        Err(e) => wrong.push(format!("does not serialize: {e}")),
    }
    wrong
}

fn check(described: &[Description], value: &Value, path: &str, wrong: &mut Vec<String>) {
    let Value::Object(fields) = value else {
        wrong.push(format!("{path}: not a struct"));
        return;
    };
    for (key, field) in fields {
        let at = format!("{path}{key}");
        let found: Vec<_> = described.iter().filter(|d| d.key() == key).collect();
        match (&found[..], field) {
            ([d], Value::Object(_)) => check(d.parts(), field, &format!("{at}."), wrong),
            ([d], _) if !d.parts().is_empty() => wrong.push(format!("{at}: parts of no struct")),
            ([_], _) => {}
            (found, _) => wrong.push(format!("{at}: described {} times", found.len())),
        }
    }
    for d in described {
        if !fields.contains_key(d.key()) {
            wrong.push(format!("{path}{}: described, not serialized", d.key()));
        }
        if d.help().is_empty() {
            wrong.push(format!("{path}{}: no help", d.key()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_statistics_are_described_field_by_field() {
        assert_eq!(
            undescribed(&session_cache::Stats::default()),
            Vec::<String>::new()
        );
    }

    #[derive(Serialize)]
    struct Sloppy {
        described: u64,
        extra: u64,
        parts: Parts,
    }

    #[derive(Serialize)]
    struct Parts {
        a: u64,
    }

    impl Describe for Sloppy {
        const METRICS: &'static [Description] = &[
            Description::counter("described", "Described."),
            Description::counter("parts", "").with_parts(&[]),
            Description::gauge("gone", "Not a field."),
        ];
    }

    #[test]
    fn undescribed_names_every_field_and_description_that_do_not_match() {
        let sloppy = Sloppy {
            described: 1,
            extra: 2,
            parts: Parts { a: 3 },
        };
        let mut wrong = undescribed(&sloppy);
        wrong.sort();
        assert_eq!(
            wrong,
            [
                "extra: described 0 times",
                "gone: described, not serialized",
                "parts.a: described 0 times",
                "parts: no help",
            ]
        );
    }
}
