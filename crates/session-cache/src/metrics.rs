//! What a statistics snapshot's fields are, said once next to its type: each field's metric
//! name, kind and help for an exporter (`sesscache-metrics`), and its label in a report
//! written for people (`sesscache serve`'s and `simulate`'s).
//!
//! A snapshot type implements [`Describe`]: one [`Metric`] per field it serializes, under the
//! field's serialized name. A field without a description is a bug, which each type's unit
//! tests catch by serializing a snapshot and looking every field up.
//!
//! ```
//! use session_cache::metrics::{Describe, MetricKind};
//! use session_cache::Stats;
//!
//! let hits = Stats::metric("hits").unwrap();
//! assert_eq!((hits.name(), hits.kind()), ("hits", MetricKind::Counter));
//! assert_eq!(Stats::metric("number").unwrap().name(), "sessions");
//! assert_eq!(Stats::metric("cache_full").unwrap().report_label(), Some("evictions (cache full)"));
//! ```

/// What kind of metric a field is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricKind {
    /// Only goes up (Prometheus adds `_total` to its name).
    Counter,
    /// A level that goes up and down.
    Gauge,
    /// A distribution, as buckets, a count and a sum ([`Latency`](crate::Latency)).
    Histogram,
}

/// How one field of a statistics snapshot is exported and reported.
///
/// A field that is a struct of numbers is one metric with a series per part, labelled by
/// [`label_name`](Self::label_name) (its parts described by [`parts`](Self::parts)); a
/// string is a gauge of 1 labelled with it; a number is the metric's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    key: &'static str,
    name: Option<&'static str>,
    kind: MetricKind,
    help: &'static str,
    report_label: Option<&'static str>,
    label_name: &'static str,
    parts: &'static [Metric],
}

impl Metric {
    const fn new(key: &'static str, kind: MetricKind, help: &'static str) -> Self {
        Self {
            key,
            name: None,
            kind,
            help,
            report_label: None,
            label_name: "kind",
            parts: &[],
        }
    }

    /// A counter, exported under its key.
    pub const fn counter(key: &'static str, help: &'static str) -> Self {
        Self::new(key, MetricKind::Counter, help)
    }

    /// A gauge, exported under its key.
    pub const fn gauge(key: &'static str, help: &'static str) -> Self {
        Self::new(key, MetricKind::Gauge, help)
    }

    /// A histogram: the description of a whole distribution snapshot, whose key is the
    /// metric's name.
    pub const fn histogram(key: &'static str, help: &'static str) -> Self {
        Self::new(key, MetricKind::Histogram, help)
    }

    /// Exported under `name` instead of the key.
    pub const fn named(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    /// Shown in reports for people as `label`; a metric without one is left out of them.
    pub const fn reported(mut self, label: &'static str) -> Self {
        self.report_label = Some(label);
        self
    }

    /// For a field that is a struct of numbers, or a string (or a histogram's series): the
    /// label its parts' names (or the string) go in. `kind` unless set.
    pub const fn labelled(mut self, label_name: &'static str) -> Self {
        self.label_name = label_name;
        self
    }

    /// For a field that is a struct of numbers: the description of its parts.
    pub const fn with_parts(mut self, parts: &'static [Metric]) -> Self {
        self.parts = parts;
        self
    }

    /// The field's name in the serialized snapshot.
    pub fn key(&self) -> &'static str {
        self.key
    }

    /// The metric's name, before an exporter's prefix and suffix: the key unless
    /// [`named`](Self::named) otherwise.
    pub fn name(&self) -> &'static str {
        self.name.unwrap_or(self.key)
    }

    /// Counter, gauge or histogram.
    pub fn kind(&self) -> MetricKind {
        self.kind
    }

    /// One sentence on what it counts.
    pub fn help(&self) -> &'static str {
        self.help
    }

    /// Its label in reports for people, if they show it.
    pub fn report_label(&self) -> Option<&'static str> {
        self.report_label
    }

    /// The label a part's name (or a string's value) goes in.
    pub fn label_name(&self) -> &'static str {
        self.label_name
    }

    /// The parts of a field that is a struct of numbers; empty for any other.
    pub fn parts(&self) -> &'static [Metric] {
        self.parts
    }
}

/// A statistics snapshot that describes its fields.
pub trait Describe {
    /// One description per serialized field (for a histogram, one for the whole snapshot),
    /// in the order reports show them.
    const METRICS: &'static [Metric];

    /// The description of the field `key`.
    fn metric(key: &str) -> Option<&'static Metric> {
        Self::METRICS.iter().find(|m| m.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Latency, Resumption, Resumptions, Stats};

    /// Every field `snapshot` serializes has exactly one description in `T`, every
    /// description is of a field, and a struct field's parts are described too.
    #[track_caller]
    fn check_described<T: Describe + serde::Serialize>(snapshot: &T) {
        let value = serde_json::to_value(snapshot).unwrap();
        check_fields(T::METRICS, &value, std::any::type_name::<T>());
    }

    #[track_caller]
    fn check_fields(metrics: &[Metric], value: &serde_json::Value, what: &str) {
        let fields = value
            .as_object()
            .expect("a snapshot serializes as a struct");
        for (key, field) in fields {
            let found: Vec<_> = metrics.iter().filter(|m| m.key() == key).collect();
            assert_eq!(
                found.len(),
                1,
                "{what}.{key}: described {} times",
                found.len()
            );
            if let Some(parts) = field.as_object() {
                check_fields(found[0].parts(), field, &format!("{what}.{key}"));
                assert!(!parts.is_empty());
            } else {
                assert!(found[0].parts().is_empty(), "{what}.{key} has no parts");
            }
        }
        for m in metrics {
            assert!(
                fields.contains_key(m.key()),
                "{what} has no field {}",
                m.key()
            );
            assert!(!m.help().is_empty(), "{what}.{} has no help", m.key());
        }
    }

    #[test]
    fn every_field_of_the_cache_statistics_is_described() {
        check_described(&Stats::default());
        check_described(&Resumptions::default());
    }

    #[test]
    fn resumptions_are_described_in_their_outcomes_order_and_names() {
        let keys: Vec<_> = Resumptions::METRICS.iter().map(|m| m.key()).collect();
        let names: Vec<_> = Resumption::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(keys, names);
        let stats = Stats::metric("resumptions").unwrap();
        assert_eq!(stats.parts(), Resumptions::METRICS);
        assert_eq!(stats.label_name(), "outcome");
    }

    #[test]
    fn a_latency_snapshot_is_one_histogram() {
        let [histogram] = Latency::METRICS else {
            panic!("one description");
        };
        assert_eq!(histogram.kind(), MetricKind::Histogram);
        assert_eq!(histogram.label_name(), "op");
        // What a histogram is made of, and nothing else.
        let latency = crate::timing::Timing::new(true).snapshot(crate::Operation::Add);
        let value = serde_json::to_value(latency).unwrap();
        let mut fields: Vec<_> = value.as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(fields, ["buckets", "count", "sum_seconds"]);
    }

    #[test]
    fn builders_set_what_they_say() {
        const M: Metric = Metric::gauge("number", "Sessions.")
            .named("sessions")
            .reported("sessions cached")
            .labelled("state");
        assert_eq!(
            (M.key(), M.name(), M.kind()),
            ("number", "sessions", MetricKind::Gauge)
        );
        assert_eq!(
            (M.report_label(), M.label_name()),
            (Some("sessions cached"), "state")
        );
        let plain = Metric::counter("hits", "Hits.");
        assert_eq!((plain.name(), plain.report_label()), ("hits", None));
        assert_eq!(plain.label_name(), "kind");
    }
}
